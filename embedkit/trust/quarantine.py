"""The quarantine: rows that broke a contract, kept for the host app, never served.

Rows live in a table beside the datasets (in the same DuckDB database, so a
database file keeps them across restarts) that no query can reach: the scoping
step only ever reads registered datasets. Each row keeps the dataset, the rules
it broke, its tenant, the batch it came in, when, and its values exactly as they
arrived (as JSON), so nothing is lost and it can be replayed after a fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import polars as pl
import pyarrow as pa
from sqlglot import exp

from embedkit.trust.ingest import QUARANTINE

if TYPE_CHECKING:
    from embedkit.engines.duckdb import DuckDBStore
    from embedkit.trust.ingest import BatchReport

__all__ = ["Quarantine", "QuarantinedRow", "Status"]

Status = Literal["held", "replayed", "discarded", "any"]
_MAX_ROWS = 100_000


@dataclass(frozen=True)
class QuarantinedRow:
    """One quarantined row: where it belongs, what it broke, and its values as received."""

    id: int
    dataset: str
    batch: str
    origin: str  # "register" | "append" | "replay"
    rules: tuple[str, ...]
    tenant: str | None
    at: datetime
    row: dict[str, Any]
    status: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (for the admin endpoint)."""
        return {
            "id": self.id,
            "dataset": self.dataset,
            "batch": self.batch,
            "origin": self.origin,
            "rules": list(self.rules),
            "tenant": self.tenant,
            "at": self.at.isoformat(),
            "row": self.row,
            "status": self.status,
        }


class Quarantine:
    """Read, count, replay and discard quarantined rows (``kit.quarantine``).

    Quarantined rows are for the host app's operators; no tenant ever sees them.
    """

    def __init__(
        self,
        store: DuckDBStore,
        replay: Callable[[str, pa.Table, Sequence[int]], BatchReport],
    ) -> None:
        self._store = store
        self._replay = replay

    def _where(
        self,
        dataset: str | None,
        tenant: str | int | None,
        status: Status,
        batch: str | None = None,
        rule: str | None = None,
    ) -> tuple[exp.Expr, list[Any]]:
        params: list[Any] = []
        conditions: list[exp.Expr] = [exp.true()]

        def bind(value: Any) -> exp.Placeholder:
            params.append(value)
            return exp.Placeholder(this=str(len(params)))

        for column, value in (("dataset", dataset), ("batch", batch)):
            if value is not None:
                conditions.append(exp.EQ(this=exp.column(column), expression=bind(value)))
        if tenant is not None:
            conditions.append(exp.EQ(this=exp.column("tenant"), expression=bind(str(tenant))))
        if status != "any":
            if status not in ("held", "replayed", "discarded"):
                raise ValueError("status must be 'held', 'replayed', 'discarded' or 'any'")
            conditions.append(exp.EQ(this=exp.column("status"), expression=bind(status)))
        if rule is not None:
            contains = exp.ArrayContains(this=exp.column("rules"), expression=bind(rule))
            conditions.append(contains)
        return exp.and_(*conditions), params

    def _run(self, query: exp.Expr, params: list[Any]) -> list[tuple[Any, ...]]:
        cur = self._store._con.cursor()
        try:
            return cur.execute(query.sql("duckdb"), params).fetchall()
        finally:
            cur.close()

    def count(
        self,
        dataset: str | None = None,
        *,
        tenant: str | int | None = None,
        rule: str | None = None,
        status: Status = "held",
    ) -> int:
        """Quarantined rows of ``dataset`` (all when None), of one tenant, breaking ``rule``."""
        where, params = self._where(dataset, tenant, status, rule=rule)
        query = exp.select(exp.Count(this=exp.Star())).from_(QUARANTINE.copy()).where(where)
        return int(self._run(query, params)[0][0])

    def counts(self, *, status: Status = "held") -> dict[str, dict[str | None, int]]:
        """Quarantined rows per dataset, then per tenant."""
        where, params = self._where(None, None, status)
        query = (
            exp.select("dataset", "tenant", exp.Count(this=exp.Star()))
            .from_(QUARANTINE.copy())
            .where(where)
            .group_by("dataset", "tenant")
            .order_by("dataset", "tenant")
        )
        out: dict[str, dict[str | None, int]] = {}
        for dataset, tenant, rows in self._run(query, params):
            out.setdefault(dataset, {})[tenant] = int(rows)
        return out

    def by_rule(self, dataset: str, *, status: Status = "held") -> dict[str, int]:
        """Quarantined rows of ``dataset`` per broken rule (a row may count under several)."""
        where, params = self._where(dataset, None, status)
        unnest = exp.alias_(exp.Unnest(expressions=[exp.column("rules")]), "rule", quoted=True)
        rules = exp.select(unnest).from_(QUARANTINE.copy()).where(where)
        query = (
            exp.select("rule", exp.Count(this=exp.Star()))
            .from_(rules.subquery("r"))
            .group_by("rule")
        )
        return {str(r): int(n) for r, n in self._run(query, params)}

    def rows(
        self,
        dataset: str | None = None,
        *,
        tenant: str | int | None = None,
        batch: str | None = None,
        rule: str | None = None,
        status: Status = "held",
        limit: int = 1000,
    ) -> list[QuarantinedRow]:
        """Quarantined rows, oldest first, at most ``limit`` (up to 100,000)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= _MAX_ROWS:
            raise ValueError(f"limit must be between 1 and {_MAX_ROWS:,}")
        where, params = self._where(dataset, tenant, status, batch, rule)
        query = (
            exp.select(
                "id",
                "dataset",
                "batch",
                "origin",
                "rules",
                "tenant",
                "quarantined_at",
                "row_json",
                "status",
            )
            .from_(QUARANTINE.copy())
            .where(where)
            .order_by("id")
            .limit(limit)
        )
        return [
            QuarantinedRow(
                id=int(r[0]),
                dataset=r[1],
                batch=r[2],
                origin=r[3],
                rules=tuple(r[4]),
                tenant=r[5],
                at=r[6],
                row=json.loads(r[7]),
                status=r[8],
            )
            for r in self._run(query, params)
        ]

    def frame(self, dataset: str | None = None, **filters: Any) -> pl.DataFrame:
        """:meth:`rows` as a Polars DataFrame (the row's values as a JSON text column)."""
        rows = self.rows(dataset, **filters)
        return pl.DataFrame(
            {
                "id": [r.id for r in rows],
                "dataset": [r.dataset for r in rows],
                "batch": [r.batch for r in rows],
                "origin": [r.origin for r in rows],
                "rules": [list(r.rules) for r in rows],
                "tenant": [r.tenant for r in rows],
                "at": [r.at for r in rows],
                "row": [json.dumps(r.row, sort_keys=True) for r in rows],
                "status": [r.status for r in rows],
            },
            schema={
                "id": pl.Int64,
                "dataset": pl.String,
                "batch": pl.String,
                "origin": pl.String,
                "rules": pl.List(pl.String),
                "tenant": pl.String,
                "at": pl.Datetime("us", "UTC"),
                "row": pl.String,
                "status": pl.String,
            },
        )

    def replay(
        self,
        dataset: str,
        *,
        ids: Sequence[int] | None = None,
        fix: Callable[[dict[str, Any]], Mapping[str, Any] | None] | None = None,
        limit: int = _MAX_ROWS,
    ) -> BatchReport:
        """Send held rows of ``dataset`` through the contract again, after a fix.

        Fix the contract (:meth:`~embedkit.EmbedKit.set_contract`) or the rows:
        ``fix`` gets each row's values as a dict and returns the corrected row, or
        None to leave that row held. In one transaction, the rows that pass now
        are stored, those that still fail are quarantined again (in a new batch),
        and the replayed ones are marked ``replayed``. Nothing changes when the
        batch is refused.
        """
        held = [r for r in self.rows(dataset, limit=limit) if ids is None or r.id in set(ids)]
        chosen: list[int] = []
        fixed: list[dict[str, Any]] = []
        for record in held:
            row = fix(dict(record.row)) if fix is not None else record.row
            if row is None:
                continue
            if not isinstance(row, Mapping):
                raise TypeError(f"fix must return a dict or None, not {type(row).__name__}")
            chosen.append(record.id)
            fixed.append(dict(row))
        return self._replay(dataset, _as_table(fixed), chosen)

    def discard(self, ids: Sequence[int]) -> int:
        """Mark held rows as discarded (kept for the record, no longer counted as held)."""
        if not ids:
            return 0
        marks = [exp.Placeholder(this=str(i + 1)) for i in range(len(ids))]
        update = (
            exp.update(QUARANTINE.copy(), {"status": exp.Literal.string("discarded")})
            .where(exp.In(this=exp.column("id"), expressions=marks))
            .where(exp.EQ(this=exp.column("status"), expression=exp.Literal.string("held")))
        )
        cur = self._store._con.cursor()
        try:
            with self._store._lock:
                result = cur.execute(update.sql("duckdb") + " RETURNING id", list(ids))
                return len(result.fetchall())
        finally:
            cur.close()


def _as_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as Arrow with the types their JSON values have; a column whose values
    differ in type (a number and the text that broke ``type:``) becomes text, which
    the append path reads as the stored type, as it would read a CSV."""
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowException, TypeError, ValueError):
        return _as_text_table(rows)


def _as_text_table(rows: list[dict[str, Any]]) -> pa.Table:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    data = {c: [_text(row.get(c)) for row in rows] for c in columns}
    return pa.table({c: pa.array(v, pa.string()) for c, v in data.items()})


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value)
