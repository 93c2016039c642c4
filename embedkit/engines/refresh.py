"""Refreshing a rollup after an append: only the groups the batch touched.

A rollup row depends on the base rows of its own group and nothing else, so an
append can change only the groups its stored rows fall into. Those groups are
deleted from the rollup's table and computed again from the base rows of those
groups, inside the append's transaction. Recomputing (rather than adding the
batch's partial aggregates to the stored ones) is exactly right for every part,
a ``min`` or ``max`` included, with no special case per aggregate.

The base scan is limited on the raw columns, to the batch's tenants (and their
shards) and to the span of its time buckets, so DuckDB skips the row groups
outside them; a null-safe semi-join on the group keys then keeps exactly the
touched groups (a group whose dimension is null is one of them).

Refreshed rows go at the end of the rollup's table, sorted among themselves, as
an append puts rows at the end of the base's: the row groups written before keep
their tenant and time ranges, only the tail mixes tenants, and shard routing is
by tenant, so reads stay correct and almost as well pruned. When a batch touches
more than :data:`FULL_REBUILD_SHARE` of the rollup's rows, the rollup is rebuilt
whole instead (as cheap by then, and it sorts the table again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb
from sqlglot import exp

from embedkit.compile import stored_table
from embedkit.dataset import Dataset
from embedkit.rollups import group_keys

if TYPE_CHECKING:
    from embedkit.engines.duckdb import DuckDBStore

__all__ = ["FULL_REBUILD_SHARE", "refresh_rollup"]

#: Above this share of a rollup's rows touched by one batch, rebuild the rollup whole.
FULL_REBUILD_SHARE = 0.25

_TOUCHED = "__embedkit_touched"


@dataclass(frozen=True)
class _Plan:
    """What a refresh of one rollup needs to know."""

    rollup: Dataset
    base: Dataset
    query: exp.Select  # the rollup's query over its base
    keys: list[tuple[str, exp.Expr]]  # group key column -> its expression over base rows
    tenant_key: str | None  # the key column that limits scans, when there is one
    time: str | None  # the bucket column, when there is one
    marks: list[str] = field(init=False)  # the touched table's column for each key

    def __post_init__(self) -> None:
        object.__setattr__(self, "marks", [f"__embedkit_k{i}" for i in range(len(self.keys))])

    def mark(self, key: str) -> exp.Column:
        index = [name for name, _ in self.keys].index(key)
        return exp.column(self.marks[index], table=_TOUCHED, quoted=True)


def refresh_rollup(
    store: DuckDBStore, cur: duckdb.DuckDBPyConnection, rollup: Dataset, batch: exp.Select
) -> bool:
    """Bring ``rollup``'s stored rows up to date after ``batch`` (the base rows just
    stored, as a query) went into its base, in ``cur``'s transaction.

    Returns False, having changed nothing, when the rollup must be rebuilt whole:
    its definition or stored columns are not as :func:`~embedkit.rollups.rollup_datasets`
    makes them, or the batch touches more than :data:`FULL_REBUILD_SHARE` of its rows.
    """
    plan = _plan(store, rollup)
    if plan is None:
        return False
    made = [
        exp.alias_(e.copy(), m, quoted=True)
        for (_, e), m in zip(plan.keys, plan.marks, strict=True)
    ]
    rows = batch.subquery(exp.to_identifier(plan.base.name, quoted=True))
    touched = exp.select(*made).distinct().from_(rows)
    create = exp.Create(
        this=_touched(),
        kind="TABLE",
        expression=touched,
        replace=True,
        properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
    )
    cur.execute(create.sql("duckdb"))
    # On an error the append rolls back, and the temporary table with it.
    refreshed = _refresh(store, cur, plan)
    cur.execute(exp.Drop(tables=[_touched()], kind="TABLE", exists=True).sql("duckdb"))
    return refreshed


def _plan(store: DuckDBStore, rollup: Dataset) -> _Plan | None:
    shape = group_keys(rollup)
    base = store.definitions.get(str(rollup.meta.get("rollup_of")))
    if shape is None or base is None:
        return None
    query, keys = shape
    outputs = [item.alias_or_name for item in query.expressions]
    if len(set(outputs)) != len(outputs) or set(outputs) != set(store.columns(rollup.name)):
        return None  # stored otherwise than this definition makes it: rebuild
    names = {name for name, _ in keys}
    tenant_key = base.tenant_key if base.public is not True else None
    return _Plan(
        rollup,
        base,
        query,
        keys,
        tenant_key if tenant_key in names else None,
        rollup.time if rollup.time in names else None,
    )


def _refresh(store: DuckDBStore, cur: duckdb.DuckDBPyConnection, plan: _Plan) -> bool:
    count, tenants, first, end, null_time = _span(cur, plan)
    if count == 0 or (plan.tenant_key is not None and not tenants):
        return True  # nothing stored, or only rows without a tenant (in no rollup row)
    held = cur.execute(
        exp.select(exp.Count(this=exp.Star())).from_(stored_table(plan.rollup.name)).sql("duckdb")
    ).fetchall()[0][0]
    if count > FULL_REBUILD_SHARE * int(held):
        return False
    routes = store.shards.get(plan.rollup.name) if plan.tenant_key else None
    targets: dict[int | None, list[Any]] = {None: tenants}
    if routes is not None:
        targets = {}
        for tenant in tenants:
            targets.setdefault(routes.get(tenant, 0), []).append(tenant)
    kind = None
    if plan.time:
        kind = exp.DataType.build(store.columns(plan.rollup.name)[plan.time], dialect="duckdb")
    for shard, members in targets.items():
        table = stored_table(plan.rollup.name, shard)
        params: list[Any] = []
        same = [
            exp.NullSafeEQ(this=exp.column(name, quoted=True), expression=plan.mark(name))
            for name, _ in plan.keys
        ]
        where = exp.and_(*_in_tenants(plan, members, params), *same)
        delete = exp.Delete(this=table.copy(), using=[_touched()], where=exp.Where(this=where))
        cur.execute(delete.sql("duckdb"), params)
        params = []
        scan = [*_in_tenants(plan, members, params)]
        if kind is not None:
            scan += _in_span(plan, kind, first, end, null_time, params)
        cur.execute(_recompute(store, plan, members, scan, table).sql("duckdb"), params)
    if routes is not None:
        for tenant in tenants:
            routes.setdefault(tenant, 0)  # where reads route a tenant new to the rollup
    return True


def _span(cur: duckdb.DuckDBPyConnection, plan: _Plan) -> tuple[int, list[Any], Any, Any, bool]:
    """How many groups the batch touched, their tenants, and the start of their first
    time bucket, the end of their last one, and whether one is null."""
    items: list[exp.Expr] = [exp.Count(this=exp.Star())]
    if plan.tenant_key:
        items.append(exp.func("list", exp.Distinct(expressions=[plan.mark(plan.tenant_key)])))
    if plan.time:
        bucket = plan.mark(plan.time)
        grain = str(plan.rollup.meta["rollup"].grain).upper()
        step = exp.Interval(this=exp.Literal.string("1"), unit=exp.Var(this=grain))
        items += [
            exp.Min(this=bucket.copy()),
            exp.Add(this=exp.Max(this=bucket.copy()), expression=step),
            exp.func("bool_or", exp.Is(this=bucket.copy(), expression=exp.Null())),
        ]
    row = list(cur.execute(exp.select(*items).from_(_touched()).sql("duckdb")).fetchall()[0])
    count = int(row.pop(0))
    tenants = [t for t in (row.pop(0) or []) if t is not None] if plan.tenant_key else []
    first, end, null_time = row if plan.time else (None, None, False)
    return count, tenants, first, end, bool(null_time)


def _in_tenants(plan: _Plan, tenants: list[Any], params: list[Any]) -> list[exp.Expr]:
    if plan.tenant_key is None:
        return []
    listed = [_bind(params, t) for t in tenants]
    return [exp.In(this=exp.column(plan.tenant_key, quoted=True), expressions=listed)]


def _in_span(
    plan: _Plan, kind: exp.DataType, first: Any, end: Any, null_time: bool, params: list[Any]
) -> list[exp.Expr]:
    """The raw time column within the touched buckets' span (or null, when a touched
    bucket is), as constants DuckDB checks against each row group's min and max."""
    column = exp.column(plan.time or "", quoted=True)
    within: list[exp.Expr] = []
    if first is not None:
        low = exp.Cast(this=_bind(params, first), to=kind.copy())
        high = exp.Cast(this=_bind(params, end), to=kind.copy())
        within.append(
            exp.and_(
                exp.GTE(this=column.copy(), expression=low),
                exp.LT(this=column.copy(), expression=high),
            )
        )
    if null_time:
        within.append(exp.Is(this=column.copy(), expression=exp.Null()))
    return [exp.or_(*within)] if within else []


def _recompute(
    store: DuckDBStore, plan: _Plan, tenants: list[Any], scan: list[exp.Expr], into: exp.Table
) -> exp.Insert:
    """Insert into ``into`` the touched groups of ``tenants``, computed again from the
    base rows that ``scan`` admits (read from those tenants' shards only)."""
    routes = store.shards.get(plan.base.name) if plan.tenant_key else None
    tables = [stored_table(plan.base.name)]
    if routes is not None:
        tables = [
            stored_table(plan.base.name, s) for s in sorted({routes.get(t, 0) for t in tenants})
        ]
    union: exp.Query | None = None
    for table in tables:
        part = exp.select(exp.Star()).from_(table)
        if scan:
            part = part.where(exp.and_(*[c.copy() for c in scan]))
        union = part if union is None else exp.union(union, part, distinct=False)
    assert union is not None
    fresh = plan.query.copy()
    source = fresh.find(exp.Table)
    assert source is not None  # group_keys checked that the query reads its base
    source.replace(union.subquery(exp.to_identifier(plan.base.name, quoted=True)))
    same = [
        exp.NullSafeEQ(this=expr.copy(), expression=plan.mark(name)) for name, expr in plan.keys
    ]
    fresh = fresh.join(_touched(), on=exp.and_(*same), join_type="semi")
    rows = exp.select(exp.Star()).from_(fresh.subquery("fresh"))
    order = [exp.column(c, quoted=True) for c in (plan.tenant_key, plan.time) if c]
    if order:
        rows = rows.order_by(*order)
    columns = [
        exp.to_identifier(item.alias_or_name, quoted=True) for item in plan.query.expressions
    ]
    return exp.insert(rows, into.copy(), columns=columns)


def _touched() -> exp.Table:
    return exp.table_(_TOUCHED, quoted=True)


def _bind(params: list[Any], value: Any) -> exp.Placeholder:
    params.append(value)
    return exp.Placeholder(this=str(len(params)))
