"""Appending rows to a stored dataset: checked, atomic, versioned.

One append is one DuckDB transaction on its own cursor: the batch is checked
against the dataset's contract, its good rows go into the dataset's table (or
into their tenants' shards), its bad rows into the quarantine, the dataset's
rollups are refreshed in the groups the good rows fall into (engines/refresh.py)
and every other SQL dataset built on it is rebuilt, then everything commits at
once. Queries run on other cursors and see the data from before the commit or
after it, never a part of a batch. Appends are serialised (one writer at a
time), so ``unique`` is checked against every row committed before.

The data version moves after the commit, and so do the views of the tenants
whose rows were stored (engines/versions.py): other tenants' cached answers stay
valid. A query reads the versions before it runs, so the version a result reports
is never newer than the rows it saw: a cache keyed by version can hold a result
that is fresher than its key, never one that is staler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl
import pyarrow as pa
from sqlglot import exp

from embedkit.compile import stored_table
from embedkit.dataset import SQL
from embedkit.engines import catalog
from embedkit.engines.refresh import refresh_rollup
from embedkit.engines.sql_datasets import materialisation
from embedkit.engines.versions import advance, stored_tenants
from embedkit.errors import BatchRejected, first_line
from embedkit.trust.checks import TENANT, VIOLATIONS
from embedkit.trust.contract import Contract
from embedkit.trust.ingest import (
    QUARANTINE,
    BatchReport,
    check,
    count,
    good_rows,
    quarantine_bad_rows,
)

if TYPE_CHECKING:
    from embedkit.engines.duckdb import DuckDBStore

__all__ = ["Rows", "append", "as_arrow", "rebuild_dependents"]

#: What an append takes: a pyarrow Table or RecordBatch, a Polars DataFrame or
#: LazyFrame, a list of dicts (one per row) or a dict of columns.
Rows = Any

_BATCH = "__embedkit_batch"
_CHECKED = "__embedkit_checked"


def as_arrow(rows: Rows, dataset: str) -> pa.Table:
    """``rows`` as an Arrow table, or BatchRejected saying what to pass."""
    if isinstance(rows, pa.Table):
        return rows
    if isinstance(rows, pa.RecordBatch):
        return pa.Table.from_batches([rows])
    if isinstance(rows, pl.LazyFrame):
        rows = rows.collect()
    if isinstance(rows, pl.DataFrame):
        return rows.to_arrow()
    try:
        if isinstance(rows, Mapping):
            return pa.Table.from_pydict(dict(rows))
        if isinstance(rows, Sequence) and not isinstance(rows, str | bytes):
            if not all(isinstance(r, Mapping) for r in rows):
                raise TypeError("every row must be a dict")
            return pa.Table.from_pylist([dict(r) for r in rows])
    except (pa.ArrowException, TypeError, ValueError) as err:
        raise BatchRejected(
            f"dataset '{dataset}': cannot read the rows: {first_line(err)}; give each column "
            "one type, or pass an Arrow table / Polars DataFrame"
        ) from None
    raise BatchRejected(
        f"dataset '{dataset}': append takes a pyarrow Table, a Polars DataFrame, a list of "
        f"dicts or a dict of columns, not {type(rows).__name__}"
    )


def append(
    store: DuckDBStore,
    name: str,
    rows: pa.Table,
    contract: Contract,
    *,
    batch: str,
    origin: str,
    now: datetime,
    replaying: Sequence[int] = (),
    time_column: str | None = None,
) -> tuple[BatchReport, dict[str, int]]:
    """Check and store ``rows`` in dataset ``name`` in one transaction.

    Returns the batch report (with the newest ``time_column`` value stored per
    tenant) and the new data versions of every dataset that changed (``name`` and
    the SQL datasets built on it). A replay (``replaying``) is an append of the
    replayed rows. Raises BatchRejected,
    with nothing stored, when the batch does not fit or too many rows fail.
    """
    definition = store.definitions.get(name)
    if definition is None:
        known = ", ".join(sorted(store.definitions)) or "(none)"
        raise BatchRejected(f"no dataset '{name}' to append to; datasets are: {known}")
    if isinstance(definition.source, SQL):
        raise BatchRejected(
            f"dataset '{name}' is built from its SQL; append to the datasets it reads and it "
            "is rebuilt"
        )
    columns = dict(store.columns(name))
    extra = [c for c in rows.column_names if c not in columns]
    if extra:
        raise BatchRejected(
            f"dataset '{name}': the batch has column(s) {', '.join(extra)} that the dataset "
            f"does not; its columns are: {', '.join(columns)}; nothing was stored"
        )
    tenant_key = None if definition.public is True else definition.tenant_key
    order = [c for c in (tenant_key, definition.time) if c and c in columns]
    with store._lock:
        cur = store._con.cursor()
        try:
            cur.register(_BATCH, rows)
            cur.execute("BEGIN")
            try:
                report = _write(
                    store, cur, name, contract, columns, tenant_key, order, batch, origin, now
                )
                if time_column in columns:
                    report = replace(report, newest=_newest(cur, time_column))
                if replaying:
                    _mark_replayed(cur, replaying, now)
                stored = good_rows(_checked(), list(columns))
                changed = rebuild_dependents(store, cur, name, stored)
                cur.execute(f"DROP TABLE {_CHECKED}")
                if store.persistent:
                    for dataset in (name, *changed):
                        catalog.set_version(cur, dataset, store.versions.get(dataset, 0) + 1)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        except duckdb.Error as err:
            raise BatchRejected(
                f"dataset '{name}': the batch could not be stored: {first_line(err)}; nothing "
                "was stored"
            ) from None
        finally:
            cur.close()
        # Only the tenants whose rows were stored see a change (engines/versions.py);
        # rows of a public dataset are everyone's.
        tenants = None if tenant_key is None else stored_tenants(report)
        return report, advance(store, name, changed, tenants)


def _write(
    store: DuckDBStore,
    cur: duckdb.DuckDBPyConnection,
    name: str,
    contract: Contract,
    columns: dict[str, str],
    tenant_key: str | None,
    order: list[str],
    batch: str,
    origin: str,
    now: datetime,
) -> BatchReport:
    checked, params, _ = check(
        cur,
        source=exp.table_(_BATCH, quoted=True),
        target_types=columns,
        contract=contract,
        tenant_key=tenant_key,
        existing=stored_table(name),
        reference=lambda target: store._reference(target, store.definitions),
    )
    # The checks read the stored table; materialise once so they run once.
    cur.execute(f"CREATE OR REPLACE TEMP TABLE {_CHECKED} AS {checked.sql('duckdb')}", params)
    rows = _checked()
    report = count(
        cur, rows, [], dataset=name, contract=contract, batch=batch, origin=origin, now=now
    )
    if origin == "replay":
        # Replayed rows are quarantined already: those still failing just stay there.
        report = replace(report, rejected=False)
    if report.rejected:
        raise BatchRejected(
            f"dataset '{name}': {report.quarantined} of {report.received} rows "
            f"({report.defect_share:.1%}) break the contract ({report.summary()}); the limit is "
            f"{contract.reject_above:.0%}, so the whole batch was refused and nothing was stored",
            report=report,
        )
    quarantine_bad_rows(cur, rows, [], report)
    good = good_rows(rows, list(columns))
    if order:
        good = good.order_by(*[exp.column(c, quoted=True) for c in order])
    routes = store.shards.get(name)
    if routes is None or tenant_key is None:
        cur.execute(exp.insert(good, stored_table(name)).sql("duckdb"))
    else:
        _insert_into_shards(cur, name, good, tenant_key, routes)
    return report


def _checked() -> exp.Expr:
    """The batch's checked rows, aliased ``k`` as the trust helpers expect."""
    return exp.alias_(exp.table_(_CHECKED, quoted=True), "k", table=True)


def _newest(cur: duckdb.DuckDBPyConnection, column: str) -> dict[str | None, Any]:
    """The newest ``column`` value among the batch's stored rows, per tenant (as text)."""
    tenant = exp.column(TENANT, quoted=True)
    query = (
        exp.select(tenant, exp.Max(this=exp.column(column, quoted=True)))
        .from_(exp.table_(_CHECKED, quoted=True))
        .where(
            exp.EQ(
                this=exp.ArraySize(this=exp.column(VIOLATIONS, quoted=True)),
                expression=exp.Literal.number(0),
            )
        )
        .group_by(tenant.copy())
    )
    return {who: value for who, value in cur.execute(query.sql("duckdb")).fetchall()}


def _insert_into_shards(
    cur: duckdb.DuckDBPyConnection,
    name: str,
    good: exp.Select,
    tenant_key: str,
    routes: dict[Any, int],
) -> None:
    """Each tenant's rows into its shard; a tenant new to the dataset goes where the
    scoping step already routes unknown tenants (shard 0), so reads find it at once."""
    key = exp.column(tenant_key, quoted=True)
    tenants = cur.execute(
        exp.select(key).distinct().from_(good.copy().order_by().subquery("g")).sql("duckdb")
    ).fetchall()
    by_shard: dict[int, list[Any]] = {}
    for (tenant,) in tenants:
        by_shard.setdefault(routes.get(tenant, 0), []).append(tenant)
    for shard, members in by_shard.items():
        marks = [exp.Placeholder(this=str(i + 1)) for i in range(len(members))]
        part = good.copy().where(exp.In(this=key.copy(), expressions=marks))
        cur.execute(exp.insert(part, stored_table(name, shard)).sql("duckdb"), members)
    for tenant in (t for (t,) in tenants):
        routes.setdefault(tenant, 0)


def _mark_replayed(cur: duckdb.DuckDBPyConnection, ids: Sequence[int], now: datetime) -> None:
    marks = [exp.Placeholder(this=str(i + 2)) for i in range(len(ids))]
    update = (
        exp.update(QUARANTINE.copy(), {"status": exp.Literal.string("replayed")})
        .where(exp.In(this=exp.column("id"), expressions=marks))
        .where(exp.EQ(this=exp.column("status"), expression=exp.Literal.string("held")))
    )
    update.set(
        "expressions",
        [
            *update.expressions,
            exp.EQ(this=exp.column("resolved_at"), expression=exp.Placeholder(this="1")),
        ],
    )
    cur.execute(update.sql("duckdb"), [now, *ids])


def rebuild_dependents(
    store: DuckDBStore, cur: duckdb.DuckDBPyConnection, name: str, stored: exp.Select | None
) -> list[str]:
    """Bring up to date, in the same transaction, every SQL dataset built (directly or
    not) on ``name``, whose new rows are ``stored``; return their names. A rollup of
    ``name`` is refreshed in the groups those rows touch; anything else is rebuilt
    (everything, when ``stored`` is None: rows changed other than by appending)."""
    changed: list[str] = []
    frontier = [name]
    while frontier:
        current = frontier.pop(0)
        for dataset, reads in store.reads.items():
            if current in reads and dataset not in changed:
                definition = store.definitions[dataset]
                rollup = current == name and definition.meta.get("rollup_of") == name
                if not (rollup and stored and refresh_rollup(store, cur, definition, stored)):
                    body = materialisation(definition, store.definitions)
                    order = [c for c in (definition.tenant_key, definition.time) if c]
                    store._store(cur, definition, body, [], order)
                changed.append(dataset)
                frontier.append(dataset)
    return changed
