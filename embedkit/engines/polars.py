"""The Polars engine: a scoped plan run on Polars LazyFrames, answering as DuckDB does.

:mod:`embedkit.compile` is the reference. This module gives the same plan the same
meaning (SQL's three-valued logic, safe division, DuckDB's aggregate, cast and
rounding rules, time buckets in the query's zone) and returns the same Arrow table.
Like the SQL path it compiles first, into a :class:`CompiledPolars` that only this
module can make, and executes second. Each relation is limited by its scope
predicates before any join, so no row of another tenant meets a filter or an
aggregate. Values reach Polars as literals (``pl.lit``), never as code.

Known differences, all outside what a sane model or query does: where DuckDB raises
(``x % 0``, integer overflow, a text that does not cast) Polars gives null, NaN or a
wrapped integer; decimals always carry precision 38 (DuckDB's varies, scales agree);
``CAST(1e-05 AS VARCHAR)`` is ``0.00001`` here.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Callable
from typing import Any

import polars as pl
import pyarrow as pa

from embedkit.compile import TOTAL_COLUMN
from embedkit.engines.polars_expressions import DTypeOf, Translator, literal_of
from embedkit.errors import ExecutionError, first_line
from embedkit.plan import BoolNode, Bucket, Condition, Node, Relation, ScopedQuery
from embedkit.semantic.model import Member, aggregate

__all__ = ["CompiledPolars", "PolarsEngine", "compile_plan", "execute"]

_COMPILE_KEY = object()
_GRAINS = {
    "minute": "1m",
    "hour": "1h",
    "day": "1d",
    "week": "1w",
    "month": "1mo",
    "quarter": "1q",
    "year": "1y",
}
# Time parts, read off a local datetime (or a date) as Int64 like DuckDB's BIGINT.
_PARTS: dict[str, Callable[[pl.Expr], pl.Expr]] = {
    "hour_of_day": lambda local: local.dt.hour(),
    "day_of_week": lambda local: local.dt.weekday(),  # ISO: Monday 1 .. Sunday 7
}
_OPERATORS: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    "eq": operator.eq,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
_NEGATED = {
    "ne": "eq",
    "notIn": "in",
    "notBetween": "between",
    "notContains": "contains",
    "notStartsWith": "startsWith",
    "notEndsWith": "endsWith",
}
_TEXT_TESTS: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    "contains": lambda e, p: e.str.contains(p, literal=True),
    "startsWith": lambda e, p: e.str.starts_with(p),
    "endsWith": lambda e, p: e.str.ends_with(p),
}


class CompiledPolars:
    """A scoped query as a Polars lazy plan, made only by :func:`compile_plan`."""

    __slots__ = ("frame", "outputs", "scoped")
    frame: pl.LazyFrame
    outputs: tuple[str, ...]
    scoped: ScopedQuery

    def __init__(
        self, *, frame: pl.LazyFrame, outputs: tuple[str, ...], scoped: ScopedQuery, key: object
    ) -> None:
        if key is not _COMPILE_KEY:
            raise TypeError("a CompiledPolars is made only by embedkit's Polars compiler")
        seal = object.__setattr__
        seal(self, "frame", frame)
        seal(self, "outputs", outputs)
        seal(self, "scoped", scoped)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a CompiledPolars cannot be changed after compiling")


class PolarsEngine:
    """Runs scoped queries on Polars, keeping one LazyFrame per dataset.

    Args:
        load: returns all stored rows of a dataset (the DuckDB store's ``arrow``);
            called on a dataset's first use and again when its data version changes.
        versions: a dataset's whole data version (the store's ``versions.get``); without
            it every query loads its datasets again.
    """

    def __init__(
        self, load: Callable[[str], pa.Table], *, versions: Callable[[str], int] | None = None
    ) -> None:
        self._load = load
        self._versions = versions
        self._frames: dict[str, tuple[int, pl.LazyFrame]] = {}
        self._lock = threading.Lock()

    def frame(self, dataset: str, version: int = 0) -> pl.LazyFrame:
        """The rows of ``dataset`` at ``version`` (loaded once, then cached)."""
        with self._lock:
            cached = self._frames.get(dataset)
            if cached is None or cached[0] != version:
                cached = (version, _lazy(self._load(dataset)))
                self._frames[dataset] = cached
            return cached[1]

    def compile(self, scoped: ScopedQuery) -> CompiledPolars:
        """Plan ``scoped`` over this engine's frames."""
        if not isinstance(scoped, ScopedQuery):
            raise TypeError("the Polars engine runs only a ScopedQuery (see EmbedKit.query)")
        scoped.check()
        versions = self._versions
        if versions is None:
            return compile_plan(scoped, lambda name: _lazy(self._load(name)))
        # A frame holds every tenant's rows: it is kept by the dataset's whole version.
        return compile_plan(scoped, lambda name: self.frame(name, versions(name)))

    def run(self, scoped: ScopedQuery) -> pa.Table:
        """Compile and execute ``scoped``; the table DuckDB would return for it."""
        return execute(self.compile(scoped))


def compile_plan(scoped: ScopedQuery, frames: Callable[[str], pl.LazyFrame]) -> CompiledPolars:
    """Turn ``scoped`` into a lazy plan over ``frames`` (dataset name -> its rows)."""
    if not isinstance(scoped, ScopedQuery):
        raise TypeError("the Polars compiler accepts only a ScopedQuery (see EmbedKit.query)")
    scoped.check()
    try:
        frame = _Planner(scoped, frames).frame()
    except pl.exceptions.PolarsError as err:
        raise ExecutionError(f"the query cannot be planned in Polars: {first_line(err)}") from None
    return CompiledPolars(frame=frame, outputs=scoped.plan.outputs, scoped=scoped, key=_COMPILE_KEY)


def execute(compiled: CompiledPolars) -> pa.Table:
    """Run a compiled plan and return its rows with DuckDB's Arrow types."""
    if not isinstance(compiled, CompiledPolars):
        raise TypeError("the Polars executor runs only plans compiled by embedkit")
    compiled.scoped.check()
    try:
        table = compiled.frame.collect().to_arrow()
    except pl.exceptions.PolarsError as err:
        raise ExecutionError(f"the query failed in Polars: {first_line(err)}") from None
    plain = {
        pa.large_string(): pa.string(),
        pa.string_view(): pa.string(),
        pa.large_binary(): pa.binary(),
        pa.binary_view(): pa.binary(),
    }
    return table.cast(
        pa.schema([pa.field(f.name, plain.get(f.type, f.type)) for f in table.schema])
    )


class _Planner:
    """Builds the lazy plan of one scoped query, mirroring compile.py's SELECT."""

    def __init__(self, scoped: ScopedQuery, frames: Callable[[str], pl.LazyFrame]) -> None:
        self.plan = scoped.plan
        self.params = scoped.params
        self.model = scoped.model
        self.frames = frames
        self.aliases = {rel.dataset: rel.alias for rel in self.plan.relations}
        self.probe = pl.LazyFrame()  # the joined rows' schema, for typing expressions
        self.inputs: list[pl.Expr] = []  # per-row values that aggregates consume
        self._scalars: dict[str, pl.Expr] = {}
        self._measures: dict[str, pl.Expr] = {}

    def frame(self) -> pl.LazyFrame:
        plan = self.plan
        for rel in plan.relations:
            if not rel.public and not rel.tenant_scoped:
                raise RuntimeError(f"refusing to compile unscoped relation '{rel.dataset}'")
        root, *joined = plan.relations
        lf = self.relation(root)
        for rel in joined:
            lf = lf.join(
                self.relation(rel),
                how="left",
                coalesce=False,
                left_on=[f"{rel.parent}.{left}" for left, _ in rel.on],
                right_on=[f"{rel.alias}.{right}" for _, right in rel.on],
            )
        self.probe = pl.LazyFrame(schema=lf.collect_schema())
        conditions = [self.condition(plan.where, self.scalar, self.dtype_of)] if plan.where else []
        conditions += [self.scalar(seg) for seg in plan.segments]
        if conditions:
            lf = lf.filter(*conditions)
        keys = [self.scalar(d).alias(d) for d in plan.dimensions]
        keys += [self.bucket(b).alias(b.output) for b in plan.buckets]
        wanted = list(plan.measures)  # plus measures only the HAVING clause reads
        wanted += [m for m in _members(plan.having) if m not in wanted]
        aggs = [self.measure(name).alias(name) for name in wanted]
        if self.inputs:
            lf = lf.with_columns(self.inputs)
        lf = lf.group_by(keys).agg(aggs) if keys else lf.select(aggs)
        if plan.having is not None:
            schema = lf.collect_schema()
            lf = lf.filter(
                self.condition(plan.having, pl.col, lambda e: schema[e.meta.output_name()])
            )
        if plan.total:
            lf = lf.with_columns(pl.len().cast(pl.Int64).alias(TOTAL_COLUMN))
        ordered = {column for column, _ in plan.order}
        order = list(plan.order) + [
            (c, False)
            for c in (*plan.dimensions, *(b.output for b in plan.buckets))
            if c not in ordered
        ]
        lf = lf.sort([c for c, _ in order], descending=[d for _, d in order], nulls_last=True)
        if plan.limit is not None or plan.offset is not None:
            offset = int(self.params[plan.offset.index]) if plan.offset else 0
            limit = int(self.params[plan.limit.index]) if plan.limit else None
            lf = lf.slice(offset, limit)
        return lf.select(*plan.outputs, *([TOTAL_COLUMN] if plan.total else []))

    def relation(self, rel: Relation) -> pl.LazyFrame:
        """A dataset's rows, limited by the relation's scope predicates, columns prefixed."""
        lf = self.frames(rel.dataset)
        schema = lf.collect_schema()
        predicates = [
            pl.any_horizontal(
                *[
                    pl.col(p.column) == literal_of(self.params[s.index], schema[p.column])
                    for s in p.values
                ]
            )
            for p in rel.predicates
        ]
        if predicates:
            lf = lf.filter(*predicates)
        return lf.rename({c: f"{rel.alias}.{c}" for c in schema.names()})

    def dtype_of(self, e: pl.Expr) -> pl.DataType:
        return self.probe.with_columns(self.inputs).select(e.alias("v")).collect_schema()["v"]

    def member(self, name: str) -> Member:
        member = self.model.member(name)
        if member is None:  # scoping resolved it; the model cannot have changed under it
            raise RuntimeError(f"member {name!r} vanished between scoping and compiling")
        return member

    def columns(self, dataset: str) -> Callable[[str], pl.Expr]:
        alias = self.aliases[dataset]
        return lambda column: pl.col(f"{alias}.{column}")

    def scalar(self, name: str) -> pl.Expr:
        if name not in self._scalars:
            m = self.member(name)
            assert m.tree is not None
            self._scalars[name] = Translator(self.columns(m.dataset), self.dtype_of)(m.tree)
        return self._scalars[name]

    def measure(self, name: str) -> pl.Expr:
        if name not in self._measures:
            m = self.member(name)
            if m.agg == "derived":
                assert m.tree is not None
                dataset = m.dataset

                def dependency(other: str) -> pl.Expr:
                    return self.measure(f"{dataset}.{other}")

                self._measures[name] = Translator(dependency, self.dtype_of)(m.tree)
            else:
                tree = aggregate(m.agg or "count", m.tree, m.filter)
                value = Translator(self.columns(m.dataset), self.dtype_of, self.inputs)(tree)
                if m.agg == "sum" and m.value_kind == "integer":  # as compile.py: BIGINT
                    value = value.cast(pl.Int64)
                self._measures[name] = value
        return self._measures[name]

    def bucket(self, b: Bucket) -> pl.Expr:
        value = self.scalar(b.member)
        if b.grain is None:
            return value
        part = _PARTS.get(b.grain)
        kind = self.member(b.member).value_kind
        if kind == "date":
            if part is not None:  # a date's own weekday (scoping refuses its hour)
                return part(value).cast(pl.Int64)
            return value.dt.truncate(_GRAINS[b.grain])
        if kind == "timestamp":  # naive timestamps are UTC
            value = value.dt.cast_time_unit("us").dt.replace_time_zone("UTC")
        zone = str(self.params[self.plan.timezone.index])
        local = value.dt.convert_time_zone(zone).dt.replace_time_zone(None)
        if part is not None:
            return part(local).cast(pl.Int64)
        return local.dt.cast_time_unit("us").dt.truncate(_GRAINS[b.grain])

    def condition(
        self, node: Node, value_of: Callable[[str], pl.Expr], dtype_of: DTypeOf
    ) -> pl.Expr:
        if isinstance(node, BoolNode):
            parts = [self.condition(item, value_of, dtype_of) for item in node.items]
            return pl.all_horizontal(*parts) if node.op == "and" else pl.any_horizontal(*parts)
        value = value_of(node.member)
        return self.leaf(node, value, dtype_of(value))

    def leaf(self, c: Condition, e: pl.Expr, dtype: pl.DataType) -> pl.Expr:
        op = c.operator
        ps = [literal_of(self.params[s.index], dtype) for s in c.values]
        if op == "set":
            return e.is_not_null()
        if op == "notSet":
            return e.is_null()
        if op in _OPERATORS:
            return _OPERATORS[op](e, ps[0])
        if op == "in":
            return pl.any_horizontal(*[e == p for p in ps])
        if op == "between":
            return (e >= ps[0]) & (e <= ps[1])
        if op in _NEGATED:  # negations keep rows where the value is null, as Cube does
            return ~self.leaf(Condition(c.member, _NEGATED[op], c.values), e, dtype) | e.is_null()
        test = _TEXT_TESTS[op]
        return pl.any_horizontal(*[test(e.str.to_lowercase(), p.str.to_lowercase()) for p in ps])


def _lazy(table: pa.Table) -> pl.LazyFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    # DuckDB ENUMs arrive as dictionaries; they compare and filter as text.
    categorical = [n for n, d in frame.schema.items() if isinstance(d, pl.Categorical | pl.Enum)]
    return frame.lazy().with_columns(pl.col(c).cast(pl.String) for c in categorical)


def _members(node: Node | None) -> list[str]:
    if node is None:
        return []
    if isinstance(node, Condition):
        return [node.member]
    return [m for item in node.items for m in _members(item)]
