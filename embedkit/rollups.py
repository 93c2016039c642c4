"""Pre-aggregations: declared rollups, stored as datasets, chosen automatically.

A :class:`Rollup` on a dataset (``Dataset(rollups=[...])``) becomes a hidden SQL
dataset ``<dataset>__<rollup>``: one row per tenant, rollup dimension, row-rule
column and time bucket, holding each measure's re-aggregable parts. Being a
dataset, it is stored, scoped and rebuilt on appends like any other, and a query
answered from it goes through the same scoping step: the tenant predicate and
row rules apply to the rollup's rows exactly as to the base rows.

:func:`rewrite` answers a query from a rollup when that gives the same result:

- every measure is in the rollup. ``sum``, ``count``, ``min`` and ``max`` re-aggregate
  (a sum of sums, a sum of counts, a min of mins); ``avg`` is kept as a sum and a
  count and divided after; a derived measure (a ratio such as ``revenue / orders``) is
  computed from its re-aggregated parts, never as an average of ratios.
  ``count_distinct`` cannot be added up from parts, so a query with one is answered
  from the base rows;
- every dimension and filter is on the rollup's dimensions, with no segment;
- the time dimension, if any, is the rollup's, at its grain or a coarser one, in the
  rollup's time zone, and the date range starts and ends on bucket boundaries.

Otherwise the query reads the base rows, as it would without a rollup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from embedkit.dataset import SQL, Dataset
from embedkit.query.dates import resolve_range, zone
from embedkit.query.spec import And, Filter, FilterNode, Or, Query
from embedkit.security.rules import ColumnRule
from embedkit.semantic.expressions import parse_expression
from embedkit.semantic.members import Dimension, Measure, Rollup

__all__ = ["Rollup", "group_keys", "rewrite", "rollup_datasets"]

#: The query grains each rollup grain can answer (weeks straddle months and years).
_COARSER = {
    "hour": ("hour", "day", "week", "month", "quarter", "year"),
    "day": ("day", "week", "month", "quarter", "year"),
    "week": ("week",),
    "month": ("month", "quarter", "year"),
}
_ADDITIVE = {"sum": "sum", "count": "sum", "min": "min", "max": "max"}


def dataset_name(base: str, rollup: Rollup) -> str:
    return f"{base}__{rollup.name}"


def group_keys(ds: Dataset) -> tuple[exp.Select, list[tuple[str, exp.Expr]]] | None:
    """A rollup dataset's query over its base, and its group keys: each key column's
    name with the expression over the base rows that makes it (tenant key, row-rule
    columns, dimensions, time bucket). None when ``ds`` is not shaped as
    :func:`rollup_datasets` makes them (then only a full rebuild is safe)."""
    base = ds.meta.get("rollup_of")
    if not isinstance(ds.source, SQL) or not isinstance(ds.meta.get("rollup"), Rollup):
        return None
    parsed = _parsed(ds.source.query)
    if parsed is None:
        return None
    query = parsed.copy()  # the cached tree stays as parsed
    group = query.args.get("group")
    tables = list(query.find_all(exp.Table))
    if not isinstance(query, exp.Select) or group is None or len(tables) != 1:
        return None
    count = len(group.expressions)
    positions = [e.this if isinstance(e, exp.Literal) else None for e in group.expressions]
    if tables[0].name != base or positions != [str(i + 1) for i in range(count)]:
        return None
    return query, [(item.alias_or_name, item.unalias()) for item in query.expressions[:count]]


@lru_cache(maxsize=256)
def _parsed(sql: str) -> exp.Expr | None:
    """A rollup's SQL parsed once (parsing costs more than the refresh's statements)."""
    try:
        return sqlglot.parse_one(sql, read="duckdb")
    except ParseError:
        return None


def _parts(base: Dataset, names: Iterable[str]) -> list[Measure]:
    """The measures ``names`` with every measure a derived one reads, in order."""
    by_name = {m.name: m for m in base.measures}
    out: dict[str, Measure] = {}

    def visit(name: str) -> None:
        measure = by_name.get(name)
        if measure is None:
            raise ValueError(f"rollup: dataset '{base.name}' has no measure '{name}'")
        if measure.agg == "count_distinct":
            raise ValueError(
                f"rollup: measure '{name}' counts distinct values, which cannot be added up "
                "from parts; leave it out (queries with it read the base rows)"
            )
        if measure.agg == "derived":
            for dep in sorted(parse_expression(measure.sql or "").names):
                visit(dep)
        out.setdefault(name, measure)

    for name in names:
        visit(name)
    return list(out.values())


def rollup_datasets(base: Dataset) -> list[Dataset]:
    """The SQL datasets that store ``base``'s rollups (raises ValueError on a bad one)."""
    made: list[Dataset] = []
    for rollup in getattr(base, "rollups", ()):
        dims = {d.name: d for d in base.dimensions}
        select: list[exp.Expr] = []
        kept: list[Dimension] = []
        guarded = {r.column for r in base.row_rules} | ({base.tenant_key} - {None})
        for name in rollup.dimensions:
            dim = dims.get(name)
            if dim is not None and name in guarded and dim.sql and dim.sql.strip() != name:
                # The rollup's rules and tenant key read the column of that name: it must
                # hold the raw values, not an expression's.
                raise ValueError(
                    f"rollup '{rollup.name}': dimension '{name}' is computed ({dim.sql}) but "
                    f"shares its name with a row-rule or tenant column of '{base.name}'; "
                    "rename the dimension, or leave it out of the rollup"
                )
            if dim is None:
                raise ValueError(
                    f"rollup '{rollup.name}': dataset '{base.name}' has no dimension '{name}'"
                )
            tree = parse_expression(dim.sql).tree if dim.sql else exp.column(name, quoted=True)
            select.append(exp.alias_(tree, name, quoted=True))
            kept.append(Dimension(name, title=dim.title, description=dim.description))
        extra = [r.column for r in base.row_rules if r.column not in rollup.dimensions]
        keys = [k for k in (base.tenant_key, *extra) if k]
        select = [exp.column(k, quoted=True) for k in dict.fromkeys(keys)] + select
        time = base.time if rollup.time == "" else rollup.time
        if time:
            bucket = exp.func(
                "date_trunc", exp.Literal.string(rollup.grain), exp.column(time, quoted=True)
            )
            if rollup.timezone != "UTC":
                raise ValueError(f"rollup '{rollup.name}': only UTC buckets are stored for now")
            select.append(exp.alias_(bucket, time, quoted=True))
        measures: list[Measure] = []
        reads: dict[str, set[str]] = {}  # rollup column -> base columns it is made of
        for name in rollup.dimensions:
            sql = dims[name].sql
            reads[name] = set(parse_expression(sql).names) if sql else {name}
        for m in _parts(base, rollup.measures):
            value = parse_expression(m.sql).tree if m.sql else None
            flt = parse_expression(m.filter).tree if m.filter else None
            if m.agg != "derived":
                used = {
                    c.name for t in (value, flt) if t is not None for c in t.find_all(exp.Column)
                }
                stored = {
                    "count": [f"{m.name}__count"],
                    "avg": [f"{m.name}__sum", f"{m.name}__count"],
                }
                for column in stored.get(m.agg, [m.name]):
                    reads[column] = used
            if m.agg == "count":
                # A sum of counts over no rows is null where a count is 0.
                part = f"{m.name}__count"
                select.append(exp.alias_(_aggregate("count", value, flt), part, quoted=True))
                measures.append(Measure(part, "sum", sql=part))
                measures.append(replace(m, agg="derived", sql=f"coalesce({part}, 0)", filter=None))
            elif m.agg in _ADDITIVE:
                select.append(exp.alias_(_aggregate(m.agg, value, flt), m.name, quoted=True))
                measures.append(replace(m, agg=_ADDITIVE[m.agg], sql=m.name, filter=None))  # type: ignore[arg-type]
            elif m.agg == "avg":
                parts = (f"{m.name}__sum", f"{m.name}__count")
                select.append(exp.alias_(_aggregate("sum", value, flt), parts[0], quoted=True))
                select.append(exp.alias_(_aggregate("count", value, flt), parts[1], quoted=True))
                measures += [
                    Measure(parts[0], "sum", sql=parts[0]),
                    Measure(parts[1], "sum", sql=parts[1]),
                ]
                measures.append(
                    replace(m, agg="derived", sql=f"{parts[0]} / {parts[1]}", filter=None)
                )
            else:  # derived: the same arithmetic over the re-aggregated parts
                measures.append(m)
        query = (
            exp.select(*select)
            .from_(exp.table_(base.name))
            .group_by(*[exp.Literal.number(i + 1) for i in range(_group_count(select))])
        )
        made.append(
            Dataset(
                dataset_name(base.name, rollup),
                SQL(query.sql("duckdb")),
                tenant_key=base.tenant_key,
                public=base.public,
                time=time or None,
                description=f"Rollup '{rollup.name}' of {base.name}, by {rollup.grain}",
                owner=base.owner,
                dimensions=kept,
                measures=measures,
                row_rules=base.row_rules,
                column_rules=_column_rules(base, reads),
                meta={"rollup_of": base.name, "rollup": rollup},
            )
        )
    return made


def _column_rules(base: Dataset, reads: dict[str, set[str]]) -> list[ColumnRule]:
    """The base's column rules carried over: a rollup column made from a hidden base
    column is hidden by the same rule (so every measure built on it is too)."""
    rules: list[ColumnRule] = []
    for rule in base.column_rules:
        hidden = set(rule.columns)
        columns = sorted(c for c, used in reads.items() if used & hidden)
        if columns:
            rules.append(ColumnRule(columns, claim=rule.claim, allow=rule.allow))
    return rules


def _group_count(select: list[exp.Expr]) -> int:
    """How many leading select items are grouping keys (the rest are aggregates)."""
    count = 0
    for item in select:
        if item.find(exp.AggFunc) is not None:
            break
        count += 1
    return count


def _aggregate(agg: str, value: exp.Expr | None, flt: exp.Expr | None) -> exp.Expr:
    inner: exp.Expr = value.copy() if value is not None else exp.Literal.number(1)
    if flt is not None:
        inner = exp.Case(ifs=[exp.If(this=flt.copy(), true=inner)])
    if agg == "count":
        if value is None and flt is None:
            return exp.Count(this=exp.Star())
        return exp.Count(this=inner)
    return {"sum": exp.Sum, "min": exp.Min, "max": exp.Max}[agg](this=inner)


def rewrite(
    q: Query,
    rollups: Sequence[Dataset],
    now: Callable[[], datetime],
    measures_of: Callable[[str], set[str]],
) -> tuple[Query, str, str] | None:
    """``q`` over the first rollup that answers it exactly, with the rollup's and the
    base's prefixes (to name the result's columns back); None when none does."""
    if q.segments:
        return None
    for ds in rollups:
        rollup: Rollup = ds.meta["rollup"]
        base = ds.meta["rollup_of"]
        prefix, target = f"{base}.", f"{ds.name}."
        names = [*q.measures, *q.dimensions]
        if not all(n.startswith(prefix) for n in names):
            continue
        have = measures_of(ds.name)
        if not all(m[len(prefix) :] in have for m in q.measures):
            continue
        dims = set(rollup.dimensions)
        if not all(d[len(prefix) :] in dims for d in q.dimensions):
            continue
        if not all(_filter_ok(f, prefix, dims, have) for f in q.filters):
            continue
        if not _time_ok(q, ds, rollup, prefix, now):
            continue
        return _renamed(q, prefix, target), target, prefix
    return None


def _filter_ok(node: FilterNode, prefix: str, dims: set[str], measures: set[str]) -> bool:
    if isinstance(node, And | Or):
        return all(_filter_ok(n, prefix, dims, measures) for n in node.items)
    assert isinstance(node, Filter)
    name = node.member[len(prefix) :] if node.member.startswith(prefix) else None
    return name is not None and (name in dims or name in measures)


def _time_ok(
    q: Query, ds: Dataset, rollup: Rollup, prefix: str, now: Callable[[], datetime]
) -> bool:
    if not q.time:
        return True
    if len(q.time) > 1 or ds.time is None or q.timezone != rollup.timezone:
        return False
    t = q.time[0]
    if t.dimension != f"{prefix}{ds.time}":
        return False
    if t.grain is not None and t.grain not in _COARSER[rollup.grain]:
        return False
    ranges = [t.date_range] if t.date_range is not None else []
    ranges += list(t.compare_date_range or ())
    tz = zone(q.timezone)
    for value in ranges:
        interval = resolve_range(value, tz, now())
        for point in (interval.start, interval.end):
            local = point.astimezone(tz)
            if not _on_boundary(local, rollup.grain):
                return False
    return True


def _on_boundary(moment: datetime, grain: str) -> bool:
    if (moment.minute, moment.second, moment.microsecond) != (0, 0, 0):
        return False
    if grain == "hour":
        return True
    if moment.hour != 0:
        return False
    if grain == "week":
        return moment.weekday() == 0
    if grain == "month":
        return moment.day == 1
    return True


def _renamed(q: Query, prefix: str, target: str) -> Query:
    def name(n: str) -> str:
        return target + n[len(prefix) :] if n.startswith(prefix) else n

    def node(f: FilterNode) -> FilterNode:
        if isinstance(f, And):
            return And(*[node(i) for i in f.items])
        if isinstance(f, Or):
            return Or(*[node(i) for i in f.items])
        assert isinstance(f, Filter)
        return replace(f, member=name(f.member))

    order = None if q.order is None else tuple((name(m), d) for m, d in q.order)
    return replace(
        q,
        measures=tuple(name(m) for m in q.measures),
        dimensions=tuple(name(d) for d in q.dimensions),
        time=tuple(replace(t, dimension=name(t.dimension)) for t in q.time),
        filters=tuple(node(f) for f in q.filters),
        order=order,
    )
