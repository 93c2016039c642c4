"""Compile a ScopedQuery into SQL (a sqlglot tree rendered for a dialect) + parameters.

The SQL text depends only on the plan's shape, never on values, so it is built
once per shape and reused: values reach the engine as bound parameters. Every
relation appears as a subquery already limited by its scope predicates, so a
row of another tenant is gone before any join, filter or aggregate sees it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from embedkit.plan import (
    BoolNode,
    Condition,
    Node,
    Plan,
    Relation,
    RowPredicate,
    ScopedQuery,
    Slot,
)
from embedkit.semantic.expressions import safe_arithmetic
from embedkit.semantic.model import Member, Model, measure_expression

__all__ = ["STORE", "TOTAL_COLUMN", "CompiledQuery", "Compiler", "stored_table"]

TOTAL_COLUMN = "__embedkit_total__"
#: The DuckDB catalog that holds every dataset (see engines/duckdb.py).
STORE = "store"


SHARD_SCHEMA = "shards"


def stored_table(dataset: str, shard: int | None = None) -> exp.Table:
    """The table (or view over shards) holding ``dataset``'s rows, or one shard of it."""
    if shard is not None:
        return exp.table_(f"{dataset}.{shard:04d}", db=SHARD_SCHEMA, catalog=STORE, quoted=True)
    return exp.table_(dataset, db="main", catalog=STORE, quoted=True)


_COMPILE_KEY = object()
# Time parts: the DuckDB function that reads each off a local timestamp (or a date).
_PARTS = {"hour_of_day": "hour", "day_of_week": "isodow"}


class CompiledQuery:
    """SQL text plus its parameters, made only by :class:`Compiler` from a ScopedQuery."""

    __slots__ = ("outputs", "params", "scoped", "sql")
    sql: str
    params: tuple[Any, ...]
    outputs: tuple[str, ...]
    scoped: ScopedQuery

    def __init__(
        self,
        *,
        sql: str,
        params: tuple[Any, ...],
        outputs: tuple[str, ...],
        scoped: ScopedQuery,
        key: object,
    ) -> None:
        if key is not _COMPILE_KEY:
            raise TypeError("a CompiledQuery is made only by embedkit's compiler")
        seal = object.__setattr__
        seal(self, "sql", sql)
        seal(self, "params", tuple(params))
        seal(self, "outputs", outputs)
        seal(self, "scoped", scoped)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a CompiledQuery cannot be changed after compiling")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("a CompiledQuery cannot be changed after compiling")


@dataclass(frozen=True)
class _Template:
    sql: str
    slots: tuple[int, ...]  # params order: $1 is params[slots[0]], ...


class Compiler:
    """Compiles scoped queries for one dialect, caching SQL text by plan shape."""

    def __init__(self, dialect: str = "duckdb", *, max_shapes: int = 4096) -> None:
        self.dialect = dialect
        self._cache: dict[tuple[int, Plan], _Template] = {}
        self._lock = threading.Lock()
        self._max = max_shapes

    def compile(self, scoped: ScopedQuery) -> CompiledQuery:
        if not isinstance(scoped, ScopedQuery):
            raise TypeError("the compiler accepts only a ScopedQuery (see EmbedKit.query)")
        scoped.check()
        key = (id(scoped.model), scoped.plan)
        template = self._cache.get(key)
        if template is None:
            template = self._render(scoped.plan, scoped.model)
            with self._lock:
                if len(self._cache) >= self._max:
                    self._cache.clear()
                self._cache[key] = template
        params = tuple(scoped.params[i] for i in template.slots)
        return CompiledQuery(
            sql=template.sql,
            params=params,
            outputs=scoped.plan.outputs,
            scoped=scoped,
            key=_COMPILE_KEY,
        )

    def _render(self, plan: Plan, model: Model) -> _Template:
        r = _Renderer(plan, model)
        tree = r.select()
        return _Template(sql=tree.sql(self.dialect), slots=tuple(r.used))


def _rewrite(tree: exp.Expr, column: Callable[[exp.Column], exp.Expr]) -> exp.Expr:
    """A copy of ``tree`` with columns replaced and every division and remainder made
    safe (``x / 0`` and ``x % 0`` are null, not an error)."""
    out = tree.copy()
    for node in list(out.find_all(exp.Column)):
        replacement = column(node)
        if node is out:
            out = replacement
        else:
            node.replace(replacement)
    return safe_arithmetic(out)


class _Renderer:
    def __init__(self, plan: Plan, model: Model) -> None:
        self.plan = plan
        self.model = model
        self.aliases = {rel.dataset: rel.alias for rel in plan.relations}
        self.used: list[int] = []
        self._numbers: dict[int, int] = {}

    # -- parameters --------------------------------------------------------------

    def param(self, slot: Slot) -> exp.Expr:
        number = self._numbers.get(slot.index)
        if number is None:
            self.used.append(slot.index)
            number = self._numbers[slot.index] = len(self.used)
        return exp.Placeholder(this=str(number))

    # -- member expressions --------------------------------------------------------

    def qualify(self, tree: exp.Expr, dataset: str) -> exp.Expr:
        alias = self.aliases[dataset]
        return _rewrite(tree, lambda c: exp.column(c.name, table=alias, quoted=True))

    def member(self, name: str) -> Member:
        member = self.model.member(name)
        if member is None:  # scoping resolved it; the model cannot have changed under it
            raise RuntimeError(f"member {name!r} vanished between scoping and compiling")
        return member

    def scalar(self, name: str) -> exp.Expr:
        m = self.member(name)
        assert m.tree is not None
        value = self.qualify(m.tree, m.dataset)
        # Keep a member's expression whole inside the conditions built around it.
        return value if isinstance(value, exp.Column | exp.Literal) else exp.Paren(this=value)

    def measure(self, name: str) -> exp.Expr:
        m = self.member(name)
        whole = measure_expression(m, lambda other: self.member(f"{m.dataset}.{other}"))
        return self.qualify(whole, m.dataset)

    def bucket(self, member_name: str, grain: str | None) -> exp.Expr:
        m = self.member(member_name)
        value = self.scalar(member_name)
        if grain is None:
            return value
        unit = exp.Literal.string(grain)
        if m.value_kind == "date":
            if grain in _PARTS:  # a date's own weekday (scoping refuses its hour)
                return self.part(grain, value)
            trunc = exp.Anonymous(this="date_trunc", expressions=[unit, value])
            return exp.Cast(this=trunc, to=exp.DataType.build("DATE"))
        if m.value_kind == "timestamp":
            value = exp.Cast(this=value, to=exp.DataType.build("TIMESTAMPTZ"))
        local = exp.Anonymous(this="timezone", expressions=[self.param(self.plan.timezone), value])
        if grain in _PARTS:
            return self.part(grain, local)
        return exp.Anonymous(this="date_trunc", expressions=[unit, local])

    def part(self, part: str, local: exp.Expr) -> exp.Expr:
        """A time part (``hour_of_day``, ``day_of_week``) of a local time, as BIGINT."""
        read = exp.Anonymous(this=_PARTS[part], expressions=[local])
        return exp.Cast(this=read, to=exp.DataType.build("BIGINT"))

    # -- conditions ----------------------------------------------------------------

    def condition(self, node: Node, value_of: Callable[[str], exp.Expr]) -> exp.Expr:
        if isinstance(node, BoolNode):
            parts = [self.condition(item, value_of) for item in node.items]
            joined = exp.and_(*parts) if node.op == "and" else exp.or_(*parts)
            return exp.Paren(this=joined)
        return self.leaf(node, value_of(node.member))

    def leaf(self, c: Condition, e: exp.Expr) -> exp.Expr:
        ps = [self.param(s) for s in c.values]
        op = c.operator
        if op == "set":
            return exp.Not(this=exp.Is(this=e, expression=exp.Null()))
        if op == "notSet":
            return exp.Is(this=e, expression=exp.Null())
        simple = {"eq": exp.EQ, "gt": exp.GT, "gte": exp.GTE, "lt": exp.LT, "lte": exp.LTE}
        if op in simple:
            return simple[op](this=e, expression=ps[0])
        if op == "in":
            return exp.In(this=e, expressions=ps)
        if op == "between":
            return exp.Between(this=e, low=ps[0], high=ps[1])
        positive = {
            "ne": "eq",
            "notIn": "in",
            "notBetween": "between",
            "notContains": "contains",
            "notStartsWith": "startsWith",
            "notEndsWith": "endsWith",
        }
        if op in positive:
            # Negations keep rows where the value is null, as Cube does.
            inner = self.leaf(Condition(c.member, positive[op], c.values), e)
            return exp.Paren(
                this=exp.or_(
                    exp.Not(this=exp.Paren(this=inner)),
                    exp.Is(this=e.copy(), expression=exp.Null()),
                )
            )
        func = {"contains": "contains", "startsWith": "starts_with", "endsWith": "ends_with"}[op]
        tests = [
            exp.Anonymous(this=func, expressions=[exp.Lower(this=e.copy()), exp.Lower(this=p)])
            for p in ps
        ]
        return exp.Paren(this=exp.or_(*tests)) if len(tests) > 1 else tests[0]

    # -- the statement -------------------------------------------------------------

    def relation(self, rel: Relation) -> exp.Expr:
        """A joined dataset: a subquery already limited by its scope predicates, so
        the LEFT JOIN can only ever meet rows the principal may see."""
        preds = [self.predicate(p) for p in rel.predicates]
        sub = exp.select(exp.Star()).from_(stored_table(rel.dataset, rel.shard))
        if preds:
            sub = sub.where(exp.and_(*preds))
        return exp.Subquery(
            this=sub, alias=exp.TableAlias(this=exp.to_identifier(rel.alias, quoted=True))
        )

    def predicate(self, p: RowPredicate, table: str | None = None) -> exp.Expr:
        column = exp.column(p.column, table=table, quoted=True)
        if p.operator == "eq":
            return exp.EQ(this=column, expression=self.param(p.values[0]))
        return exp.In(this=column, expressions=[self.param(v) for v in p.values])

    def select(self) -> exp.Select:
        plan = self.plan
        for rel in plan.relations:
            if not rel.public and not rel.tenant_scoped:
                raise RuntimeError(f"refusing to compile unscoped relation '{rel.dataset}'")
        projections: list[exp.Expr] = []
        groups: list[exp.Expr] = []
        for name in plan.dimensions:
            e = self.scalar(name)
            projections.append(exp.alias_(e, name, quoted=True))
            groups.append(e)
        for b in plan.buckets:
            e = self.bucket(b.member, b.grain)
            projections.append(exp.alias_(e, b.output, quoted=True))
            groups.append(e)
        for name in plan.measures:
            projections.append(exp.alias_(self.measure(name), name, quoted=True))
        if plan.total:
            total = exp.Window(this=exp.Count(this=exp.Star()))
            projections.append(exp.alias_(total, TOTAL_COLUMN, quoted=True))
        root, *joined = plan.relations
        # The measured dataset is read directly and limited by its scope predicates
        # in WHERE, AND-ed in front of every caller condition (a subquery here costs
        # DuckDB measurable planning time); joined datasets are scoped subqueries.
        query = exp.select(*projections).from_(
            exp.alias_(stored_table(root.dataset, root.shard), root.alias, table=True, quoted=True)
        )
        for rel in joined:
            on = exp.and_(
                *[
                    exp.EQ(
                        this=exp.column(left, table=rel.parent, quoted=True),
                        expression=exp.column(right, table=rel.alias, quoted=True),
                    )
                    for left, right in rel.on
                ]
            )
            query = query.join(self.relation(rel), on=on, join_type="left")
        conditions: list[exp.Expr] = [self.predicate(p, root.alias) for p in root.predicates]
        if plan.where is not None:
            conditions.append(self.condition(plan.where, self.scalar))
        for seg in plan.segments:
            conditions.append(exp.Paren(this=self.scalar(seg)))
        if conditions:
            query = query.where(exp.and_(*conditions))
        if groups:
            query = query.group_by(*[exp.Literal.number(i + 1) for i in range(len(groups))])
        if plan.having is not None:
            query = query.having(self.condition(plan.having, self.measure))
        ordered = {column for column, _ in plan.order}
        keys = list(plan.order) + [
            (c, False)
            for c in (*plan.dimensions, *(b.output for b in plan.buckets))
            if c not in ordered
        ]
        query = query.order_by(
            *[
                exp.Ordered(this=exp.column(c, quoted=True), desc=desc, nulls_first=False)
                for c, desc in keys
            ]
        )
        if plan.limit is not None:
            query = query.limit(self.param(plan.limit))
        if plan.offset is not None:
            query = query.offset(self.param(plan.offset))
        return query
