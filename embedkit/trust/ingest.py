"""Checking a batch against its contract and putting its bad rows in quarantine.

Used by the store for both ways rows arrive: the source read at registration
and every append. Everything runs on the caller's cursor, inside the caller's
transaction, so a batch is stored and quarantined together or not at all.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
from sqlglot import exp

from embedkit.compile import STORE
from embedkit.errors import Problem, first_line
from embedkit.trust.checks import POSITION, RAW, TENANT, VIOLATIONS, Reference, checked_rows
from embedkit.trust.contract import Contract

__all__ = [
    "QUARANTINE",
    "BatchReport",
    "check",
    "count",
    "create_quarantine",
    "forget_registration",
    "good_rows",
    "new_batch_id",
    "quarantine_bad_rows",
]

#: The table holding quarantined rows, beside (never among) the datasets.
QUARANTINE = exp.table_("quarantine", db="embedkit", catalog=STORE, quoted=True)


def new_batch_id() -> str:
    """A fresh batch id (random, sortable enough for people to tell batches apart)."""
    return secrets.token_hex(6)


@dataclass(frozen=True)
class BatchReport:
    """What happened to one batch of rows: how many arrived, were stored, quarantined.

    ``tenants`` maps each tenant (as text; None for rows without one) to
    ``(received, quarantined)``; ``rules`` counts quarantined rows per broken rule
    (a row breaking two rules counts under both); ``versions`` holds the new data
    version of each dataset an append changed; ``newest`` the newest time value of
    the stored rows of each tenant in the batch.
    """

    dataset: str
    batch: str
    origin: str
    received: int
    quarantined: int
    rules: Mapping[str, int] = field(default_factory=dict)
    tenants: Mapping[str | None, tuple[int, int]] = field(default_factory=dict)
    rejected: bool = False
    at: datetime | None = None
    versions: Mapping[str, int] = field(default_factory=dict)
    newest: Mapping[str | None, Any] = field(default_factory=dict)

    @property
    def stored(self) -> int:
        """Rows that passed and were stored (0 when the batch was rejected)."""
        return 0 if self.rejected else self.received - self.quarantined

    @property
    def defect_share(self) -> float:
        """The share of received rows that broke the contract."""
        return self.quarantined / self.received if self.received else 0.0

    def summary(self) -> str:
        """The broken rules with their counts, most frequent first."""
        ranked = sorted(self.rules.items(), key=lambda kv: (-kv[1], kv[0]))
        return ", ".join(f"{rule} {count}" for rule, count in ranked[:8])


def create_quarantine(con: duckdb.DuckDBPyConnection) -> None:
    """Create the quarantine table if this database does not have one yet."""
    schema = exp.table_("embedkit", db=STORE, quoted=True).sql("duckdb")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {QUARANTINE.sql('duckdb')} ("
        "id BIGINT NOT NULL, dataset VARCHAR NOT NULL, batch VARCHAR NOT NULL, "
        "origin VARCHAR NOT NULL, rules VARCHAR[] NOT NULL, tenant VARCHAR, "
        "quarantined_at TIMESTAMPTZ NOT NULL, row_json VARCHAR NOT NULL, status VARCHAR NOT NULL, "
        "resolved_at TIMESTAMPTZ)"
    )


def forget_registration(con: duckdb.DuckDBPyConnection, dataset: str) -> None:
    """Drop the rows an earlier registration of ``dataset`` quarantined (the source is
    read again, so they would be counted twice); appended rows' records stay."""
    delete = exp.delete(QUARANTINE.copy()).where(
        exp.and_(
            exp.EQ(this=exp.column("dataset"), expression=exp.Placeholder(this="1")),
            exp.EQ(this=exp.column("origin"), expression=exp.Literal.string("register")),
        )
    )
    con.execute(delete.sql("duckdb"), [dataset])


def check(
    cur: duckdb.DuckDBPyConnection,
    *,
    source: exp.Expr,
    target_types: Mapping[str, str] | None,
    contract: Contract,
    tenant_key: str | None,
    existing: exp.Table | None,
    reference: Callable[[str], Reference],
) -> tuple[exp.Select, list[Any], dict[str, str]]:
    """The checked query over ``source``, its parameters and the stored column types.

    ``target_types`` are the stored columns (appends); None means "the source's
    columns, with the contract's declared types" (registration).
    """
    described = cur.execute(f"DESCRIBE {exp.select(exp.Star()).from_(source.copy()).sql('duckdb')}")
    source_types = {str(r[0]): str(r[1]) for r in described.fetchall()}
    if target_types is None:
        target_types = {c: contract.types.get(c, t) for c, t in source_types.items()}
    params: list[Any] = []
    checked = checked_rows(
        source,
        source_types,
        target_types,
        contract,
        tenant_key=tenant_key,
        existing=existing,
        reference=reference,
        params=params,
    )
    return checked, params, dict(target_types)


def _bad(alias: str = "k") -> exp.Expr:
    broken = exp.column(VIOLATIONS, table=alias, quoted=True)
    return exp.GT(this=exp.ArraySize(this=broken), expression=exp.Literal.number(0))


def count(
    cur: duckdb.DuckDBPyConnection,
    rows: exp.Expr,
    params: list[Any],
    *,
    dataset: str,
    contract: Contract,
    batch: str,
    origin: str,
    now: datetime,
) -> BatchReport:
    """Count the checked ``rows`` (a subquery or table aliased ``k``) per tenant and rule."""
    tenant = exp.column(TENANT, table="k", quoted=True)
    failed = exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=_bad()))
    per_tenant = (
        exp.select(tenant, exp.Count(this=exp.Star()), failed)
        .from_(rows.copy())
        .group_by(tenant.copy())
    )
    tenants: dict[str | None, tuple[int, int]] = {}
    for who, received, bad in cur.execute(per_tenant.sql("duckdb"), params).fetchall():
        tenants[who] = (int(received), int(bad))
    received = sum(r for r, _ in tenants.values())
    quarantined = sum(f for _, f in tenants.values())
    rules: dict[str, int] = {}
    if quarantined:
        rule = exp.column("rule", quoted=True)
        unnest = exp.Unnest(expressions=[exp.column(VIOLATIONS, table="k", quoted=True)])
        by_rule = (
            exp.select(exp.alias_(unnest, "rule", quoted=True)).from_(rows.copy()).where(_bad())
        )
        counted = (
            exp.select(rule, exp.Count(this=exp.Star()))
            .from_(by_rule.subquery("u"))
            .group_by(rule.copy())
        )
        rules = {str(r): int(n) for r, n in cur.execute(counted.sql("duckdb"), params).fetchall()}
    return BatchReport(
        dataset=dataset,
        batch=batch,
        origin=origin,
        received=received,
        quarantined=quarantined,
        rules=rules,
        tenants=tenants,
        rejected=bool(received) and quarantined / received > contract.reject_above,
        at=now,
    )


def good_rows(rows: exp.Expr, columns: list[str]) -> exp.Select:
    """The checked ``rows`` (aliased ``k``) that broke no rule, stored columns only."""
    return (
        exp.select(*[exp.column(c, table="k", quoted=True) for c in columns])
        .from_(rows.copy())
        .where(exp.Not(this=_bad()))
    )


def quarantine_bad_rows(
    cur: duckdb.DuckDBPyConnection,
    rows: exp.Expr,
    params: list[Any],
    report: BatchReport,
) -> None:
    """Insert the checked ``rows`` (aliased ``k``) that broke a rule into the quarantine."""
    if not report.quarantined:
        return
    broken = exp.column(VIOLATIONS, table="k", quoted=True)
    start = exp.select(
        exp.Coalesce(this=exp.Max(this=exp.column("id")), expressions=[exp.Literal.number(0)])
    ).from_(QUARANTINE.copy())
    row_id = exp.Add(
        this=exp.paren(start.subquery()),
        expression=exp.Window(
            this=exp.RowNumber(),
            order=exp.Order(expressions=[exp.column(POSITION, table="k", quoted=True)]),
        ),
    )
    extra = len(params)
    rows = (
        exp.select(
            row_id,
            exp.Placeholder(this=str(extra + 1)),
            exp.Placeholder(this=str(extra + 2)),
            exp.Placeholder(this=str(extra + 3)),
            broken.copy(),
            exp.column(TENANT, table="k", quoted=True),
            exp.Placeholder(this=str(extra + 4)),
            exp.column(RAW, table="k", quoted=True),
            exp.Literal.string("held"),
            exp.Cast(this=exp.Null(), to=exp.DataType.build("TIMESTAMPTZ")),
        )
        .from_(rows.copy())
        .where(_bad())
    )
    insert = exp.Insert(this=QUARANTINE.copy(), expression=rows)
    values = [*params, report.dataset, report.batch, report.origin, report.at]
    cur.execute(insert.sql("duckdb"), values)


def reject_problem(report: BatchReport, contract: Contract) -> Problem:
    """The registration problem for a source whose bad share is above the limit."""
    return Problem(
        report.dataset,
        "contract",
        f"{report.quarantined} of {report.received} rows ({report.defect_share:.1%}) break the "
        f"contract ({report.summary()}); the limit is {contract.reject_above:.0%}, so nothing "
        "was registered",
        "fix the source rows, or raise Contract(reject_above=...) if this share is expected",
    )


def binder_problem(dataset: str, err: duckdb.Error) -> Problem:
    """A contract DuckDB cannot evaluate (a range against text, a bad pattern...)."""
    return Problem(
        dataset,
        "contract",
        f"cannot be checked: {first_line(err)}",
        "compare columns with values of their own type, and check regex patterns (RE2)",
    )
