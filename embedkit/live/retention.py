"""Retention: old raw rows rolled up into coarser rows, so a stream's dataset stays bounded.

A thermostat reporting every few seconds makes 30,000 rows a day per household.
Nobody charts last month by the second. A :class:`Retention` on the dataset keeps
raw rows for ``keep`` and then replaces them with one row per tenant, group and
``grain`` bucket, aggregating each listed column. Every other column (besides the
time column) is a group key: a room, a device, a status.

Rows are rolled up whole buckets at a time: the cutoff (now minus ``keep``) is
rounded down to the grain, so a bucket is either all raw or all rolled up, and
rolling up again changes nothing (one row per group stays itself under sum, avg,
min and max). Each run reads only the rows since the previous run's cutoff.

Sums, minimums and maximums of rolled-up rows equal those of the raw rows. An
``avg`` is the mean of the bucket's rows; averaged again over a longer range, the
buckets weigh the same (fine for evenly spaced readings; say ``sum`` for counts and
amounts). The run is one transaction; it moves the data version (caches
invalidate) and rebuilds what is built on the dataset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb
from sqlglot import exp

from embedkit.compile import stored_table
from embedkit.engines.appends import rebuild_dependents
from embedkit.engines.duckdb import DuckDBStore
from embedkit.engines.versions import advance
from embedkit.errors import Problem
from embedkit.live.policy import Retention

__all__ = ["Retention", "apply_retention", "retention_problems"]

_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL")


def retention_problems(
    name: str,
    retention: Retention,
    time: str | None,
    columns: Mapping[str, str],
    guarded: Sequence[str] = (),
) -> list[Problem]:
    """What is wrong with ``retention`` on dataset ``name`` (stored ``columns``;
    ``guarded``: the tenant key and the columns row rules read, which must stay keys)."""
    if time is None:
        fix = "set Dataset(time=...) to the column that dates each row"
        return [Problem(name, "retention", "needs the dataset's time column", fix)]
    problems = []
    for column, how in retention.aggregate.items():
        kind = columns.get(column)
        if column in guarded:
            # Aggregated, it would stop being a group key: rows of two tenants (or of
            # two rooms a rule keeps apart) would be rolled into one.
            fix = "leave it out of aggregate: rows are rolled up within each of its values"
            problems.append(
                Problem(name, f"retention.{column}", "is the tenant key or a row-rule column", fix)
            )
        elif kind is None:
            fix = f"columns are: {', '.join(columns)}"
            problems.append(Problem(name, f"retention.{column}", "is not a column", fix))
        elif column == time:
            fix = "leave the time column out of aggregate: it becomes the bucket"
            problems.append(Problem(name, f"retention.{column}", "is the time column", fix))
        elif how in ("sum", "avg") and not kind.upper().startswith(_NUMERIC):
            fix = "use min or max, or leave it out to group by it"
            verb = "summed" if how == "sum" else "averaged"
            problems.append(
                Problem(name, f"retention.{column}", f"is {kind}, so it cannot be {verb}", fix)
            )
    return problems


def cutoff(retention: Retention, now: datetime) -> datetime:
    """``now - keep``, rounded down to the grain (naive UTC, as times are stored)."""
    edge = (now - retention.span).replace(second=0, microsecond=0)
    if retention.grain in ("hour", "day"):
        edge = edge.replace(minute=0)
    if retention.grain == "day":
        edge = edge.replace(hour=0)
    return edge


def apply_retention(
    store: DuckDBStore,
    cur: duckdb.DuckDBPyConnection,
    name: str,
    retention: Retention,
    time: str,
    edge: datetime,
    since: datetime | None,
) -> tuple[int, int]:
    """Roll up ``name``'s rows dated before ``edge`` (and from ``since``) in every table
    it is stored in, inside the caller's transaction. Returns the rows removed (net)
    and the rows rewritten (deleted before the rolled-up ones were inserted)."""
    columns = list(store.columns(name))
    keys = [c for c in columns if c != time and c not in retention.aggregate]
    at = exp.column(time, quoted=True)
    old: exp.Expr = exp.LT(this=at, expression=exp.Placeholder(this="1"))
    params: list[Any] = [edge]
    if since is not None:
        old = exp.and_(old, exp.GTE(this=at.copy(), expression=exp.Placeholder(this="2")))
        params.append(since)
    bucket = exp.func("date_trunc", exp.Literal.string(retention.grain), at.copy())
    items: dict[str, exp.Expr] = {c: exp.column(c, quoted=True) for c in keys}
    items[time] = bucket
    for column, how in retention.aggregate.items():
        items[column] = exp.func(how, exp.column(column, quoted=True))
    removed = deleted = 0
    for table in _tables(store, name):
        rolled = (
            exp.select(*[exp.alias_(items[c], c, quoted=True) for c in columns])
            .from_(table.copy())
            .where(old.copy())
            .group_by(*[items[c].copy() for c in [*keys, time]])
        )
        cur.execute(f"CREATE OR REPLACE TEMP TABLE _ek_rolled AS {rolled.sql('duckdb')}", params)
        gone = exp.delete(table.copy(), where=old.copy())
        count = int(cur.execute(gone.sql("duckdb"), params).fetchall()[0][0])
        removed += count
        deleted += count
        cur.execute(
            exp.insert(
                exp.select(*[exp.column(c, quoted=True) for c in columns]).from_("_ek_rolled"),
                table.copy(),
            ).sql("duckdb")
        )
        removed -= int(cur.execute("SELECT count(*) FROM _ek_rolled").fetchall()[0][0])
        cur.execute("DROP TABLE _ek_rolled")
    return removed, deleted


def _tables(store: DuckDBStore, name: str) -> list[exp.Table]:
    routes = store.shards.get(name)
    if not routes:
        return [stored_table(name)]
    return [stored_table(name, shard) for shard in sorted(set(routes.values()) | {0})]


def run_retention(
    store: DuckDBStore,
    name: str,
    retention: Retention,
    time: str,
    now: datetime,
    since: datetime | None,
) -> tuple[int, datetime, dict[str, int]]:
    """One retention run of dataset ``name`` as a transaction: returns rows removed, the
    cutoff (the next run's ``since``) and the new data versions."""
    from embedkit.engines import catalog

    edge = cutoff(retention, now)
    with store._lock:
        cur = store._con.cursor()
        try:
            cur.execute("BEGIN")
            try:
                removed, rewritten = apply_retention(store, cur, name, retention, time, edge, since)
                # Rows rewritten move the version even when as many came back (times
                # cut to the bucket): cached answers and rollups must not outlive them.
                changed = rebuild_dependents(store, cur, name, None) if rewritten else []
                touched = [name, *changed] if rewritten else []
                if store.persistent:
                    for dataset in touched:
                        catalog.set_version(cur, dataset, store.versions.get(dataset, 0) + 1)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        finally:
            cur.close()
        # Rows of every tenant may have been rewritten: every view moves.
        versions = advance(store, name, changed, None) if rewritten else {}
    return removed, edge, versions
