"""The one scoping step: (model, query, principal) -> ScopedQuery.

This is the choke point every read goes through. It resolves member names
against the model, refuses members hidden by column rules, picks the measured
dataset and the joins its dimensions need (refusing joins that would repeat
rows), and gives every relation its row predicates: the tenant key always (for
non-public datasets) and each row rule from the principal's claims. Every value,
the caller's filter values and the principal's claims alike, becomes a bound
parameter. A rule whose claim is missing, null or empty refuses the query.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from embedkit.errors import AccessDenied, QueryError, UnknownMemberError
from embedkit.plan import (
    _SCOPE_KEY,
    BoolNode,
    Bucket,
    Condition,
    Node,
    Plan,
    Relation,
    RowPredicate,
    ScopedQuery,
    Slot,
)
from embedkit.query.dates import Interval, resolve_range, zone
from embedkit.query.spec import And, Filter, FilterNode, Or, Query
from embedkit.security.rules import Principal
from embedkit.semantic.members import GRAINS
from embedkit.semantic.model import Member, MemberKind, Model, ResolvedDataset, ValueKind
from embedkit.values import coerce

__all__ = ["scope"]

_ORDERED = ("integer", "number", "date", "timestamp", "timestamptz", "string")
_TEMPORAL = ("date", "timestamp", "timestamptz")
_DIMENSION_OPS: dict[str, tuple[str, ...]] = {
    "equals": (),
    "notEquals": (),
    "in": (),
    "notIn": (),
    "set": (),
    "notSet": (),
    "gt": _ORDERED,
    "gte": _ORDERED,
    "lt": _ORDERED,
    "lte": _ORDERED,
    "between": _ORDERED,
    "notBetween": _ORDERED,
    "contains": ("string",),
    "notContains": ("string",),
    "startsWith": ("string",),
    "notStartsWith": ("string",),
    "endsWith": ("string",),
    "notEndsWith": ("string",),
    "inDateRange": _TEMPORAL,
    "onTheDate": _TEMPORAL,
    "notInDateRange": _TEMPORAL,
    "beforeDate": _TEMPORAL,
    "beforeOrOnDate": _TEMPORAL,
    "afterDate": _TEMPORAL,
    "afterOrOnDate": _TEMPORAL,
}
_MEASURE_OPS = (
    "equals",
    "notEquals",
    "in",
    "notIn",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "notBetween",
    "set",
    "notSet",
)
#: Limits that keep one request from tying up a worker (measured: thousands of
#: filters make DuckDB's planner take seconds).
MAX_DEPTH = 16
MAX_FILTERS = 100
MAX_VALUES = 1000
MAX_PAGE = 2**53

_ONE_VALUE = (
    "gt",
    "gte",
    "lt",
    "lte",
    "beforeDate",
    "beforeOrOnDate",
    "afterDate",
    "afterOrOnDate",
)


class _Params:
    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> Slot:
        self.values.append(value)
        return Slot(len(self.values) - 1)


class _Scoper:
    def __init__(
        self,
        model: Model,
        query: Query,
        principal: Principal,
        now: datetime,
        shards: Mapping[str, Mapping[Any, int]],
    ) -> None:
        self.shards = shards
        self.tenants: dict[str, Any] = {}  # dataset -> the principal's tenant, typed for it
        self.model = model
        self.query = query
        self.principal = principal
        self.tz: ZoneInfo = zone(query.timezone)
        self.now = now if now.tzinfo else now.replace(tzinfo=UTC)
        self.params = _Params()
        self._hidden: dict[str, frozenset[str]] = {}
        self.leaves = 0

    # -- members -----------------------------------------------------------------

    def hidden_columns(self, dataset: ResolvedDataset) -> frozenset[str]:
        if dataset.name not in self._hidden:
            hidden: set[str] = set()
            for rule in dataset.definition.column_rules:
                if not rule.permits(self.principal):
                    hidden.update(rule.columns)
            self._hidden[dataset.name] = frozenset(hidden)
        return self._hidden[dataset.name]

    def visible(self, member: Member) -> bool:
        ds = self.model.datasets[member.dataset]
        return not (member.columns & self.hidden_columns(ds))

    def member(self, name: str, kinds: Sequence[MemberKind], what: str) -> Member:
        found = self.model.member(name) if isinstance(name, str) else None
        if found is not None and found.kind in kinds and self.visible(found):
            return found
        if found is not None and found.kind in kinds:
            raise AccessDenied(
                f"member '{name}' is not available to this principal (a column rule hides it)"
            )
        valid = sorted(m.qualified for m in self.model.members(kinds) if self.visible(m))
        raise UnknownMemberError(str(name), valid, kind=what)

    # -- relations ---------------------------------------------------------------

    def relations(self, root: str, needed: Sequence[str]) -> tuple[Relation, ...]:
        paths: dict[str, tuple[str | None, tuple[tuple[str, str], ...]]] = {root: (None, ())}
        queue = deque([root])
        while queue:
            current = queue.popleft()
            for edge in self.model.edges:
                if edge.source == current and edge.target not in paths:
                    paths[edge.target] = (current, edge.on)
                    queue.append(edge.target)
        order: list[str] = [root]
        for name in needed:
            if name not in paths:
                fan = [e for e in self.model.fanout if e.target == name]
                if fan:
                    raise QueryError(
                        f"query: using '{name}' with measures of '{root}' would repeat each "
                        f"'{root}' row once per matching '{name}' row and inflate the measures "
                        f"(the join between them is one-to-many from '{root}'); query measures "
                        f"of '{name}' instead, or define the measure on '{name}'"
                    )
                raise QueryError(
                    f"query: no join path from '{root}' to '{name}'; declare "
                    f"Join('{name}', on={{...}}) on '{root}' (many-to-one)"
                )
            chain = []
            step: str | None = name
            while step is not None and step not in order:
                chain.append(step)
                step = paths[step][0]
            order.extend(reversed(chain))
        aliases = {name: f"t{i}" for i, name in enumerate(order)}
        out = []
        for name in order:
            parent, on = paths[name]
            if parent is not None:
                # Grouping or filtering through a join must not reveal a hidden key.
                hidden_left = self.hidden_columns(self.model.datasets[parent])
                hidden_right = self.hidden_columns(self.model.datasets[name])
                if any(left in hidden_left or right in hidden_right for left, right in on):
                    raise AccessDenied(
                        f"the join from '{parent}' to '{name}' uses a column that a column rule "
                        "hides from this principal; nothing was run"
                    )
            preds, tenant_scoped = self.row_predicates(self.model.datasets[name])
            out.append(
                Relation(
                    dataset=name,
                    alias=aliases[name],
                    predicates=preds,
                    tenant_scoped=tenant_scoped,
                    public=self.model.datasets[name].definition.public is True,
                    parent=aliases[parent] if parent else None,
                    on=on,
                    shard=self.shard(name),
                )
            )
        return tuple(out)

    def shard(self, dataset: str) -> int | None:
        """The shard holding this principal's rows of a sharded dataset (speed only:
        every shard read still carries the tenant predicate)."""
        routes = self.shards.get(dataset)
        if routes is None or dataset not in self.tenants:
            return None
        return routes.get(self.tenants[dataset], 0)

    def row_predicates(self, ds: ResolvedDataset) -> tuple[tuple[RowPredicate, ...], bool]:
        preds: list[RowPredicate] = []
        tenant_scoped = False
        if ds.definition.public is not True:
            key = ds.tenant_key
            assert key is not None  # the model refuses a non-public dataset without one
            kind = ds.column_kind(key)
            try:
                value = coerce(self.principal.tenant, kind, strict=True)
            except ValueError:
                raise AccessDenied(
                    f"dataset '{ds.name}': the principal's tenant does not fit tenant key "
                    f"'{key}' ({ds.columns[key]}); nothing was run"
                ) from None
            preds.append(RowPredicate(key, "eq", (self.params.add(value),)))
            self.tenants[ds.name] = value
            tenant_scoped = True
        for rule in ds.definition.row_rules:
            claim = self.principal.claims.get(rule.claim)
            values = list(claim) if isinstance(claim, list | tuple | set | frozenset) else [claim]
            if claim is None or claim == "" or not values or any(v is None for v in values):
                raise AccessDenied(
                    f"dataset '{ds.name}' has a row rule on '{rule.column}' that needs claim "
                    f"'{rule.claim}', which this principal lacks (or is empty); nothing was run"
                )
            if rule.operator == "equals" and len(values) != 1:
                raise AccessDenied(
                    f"dataset '{ds.name}': claim '{rule.claim}' must be a single value for the "
                    f"row rule on '{rule.column}'; nothing was run"
                )
            kind = ds.column_kind(rule.column)
            try:
                slots = tuple(self.params.add(coerce(v, kind, strict=True)) for v in values)
            except ValueError:
                raise AccessDenied(
                    f"dataset '{ds.name}': claim '{rule.claim}' does not fit column "
                    f"'{rule.column}' ({ds.columns[rule.column]}); nothing was run"
                ) from None
            preds.append(RowPredicate(rule.column, "eq" if len(slots) == 1 else "in", slots))
        return tuple(preds), tenant_scoped

    # -- filters -----------------------------------------------------------------

    def value(self, member: Member, raw: Any, what: str) -> Slot:
        try:
            return self.params.add(coerce(raw, member.value_kind, tz=self.tz))
        except ValueError as err:
            raise QueryError(f"query: {what} on '{member.qualified}': {err}") from None

    def interval(self, member: Member, rng: str | Sequence[str]) -> Interval:
        try:
            return resolve_range(rng, self.tz, self.now)
        except QueryError as err:
            reason = str(err).removeprefix("query: ")
            raise QueryError(f"query: date range of '{member.qualified}': {reason}") from None

    def instant(self, member: Member, point: datetime) -> Slot:
        try:
            return self.params.add(_instant(point, member.value_kind))
        except (OverflowError, ValueError):
            raise QueryError(
                f"query: a date on '{member.qualified}' reaches outside the years 1 to 9999"
            ) from None

    def range_condition(self, member: Member, interval: Interval, negate: bool = False) -> Node:
        start = self.instant(member, interval.start)
        end = self.instant(member, interval.end)
        if negate:
            return BoolNode(
                "or",
                (
                    Condition(member.qualified, "lt", (start,)),
                    Condition(member.qualified, "gte", (end,)),
                ),
            )
        return BoolNode(
            "and",
            (
                Condition(member.qualified, "gte", (start,)),
                Condition(member.qualified, "lt", (end,)),
            ),
        )

    def condition(self, f: Filter) -> tuple[Node, bool]:
        """A filter leaf as a plan node, and whether it is on a measure."""
        member = self.member(f.member, ("dimension", "time", "measure"), "member")
        op = f.operator
        is_measure = member.kind == "measure"
        allowed_kinds = _DIMENSION_OPS.get(op)
        if allowed_kinds is None or (is_measure and op not in _MEASURE_OPS):
            ops = _MEASURE_OPS if is_measure else tuple(_DIMENSION_OPS)
            raise QueryError(
                f"query: operator '{op}' cannot filter '{member.qualified}'; use one of: "
                f"{', '.join(ops)}"
            )
        if allowed_kinds and member.value_kind not in allowed_kinds:
            raise QueryError(
                f"query: operator '{op}' needs a {' or '.join(allowed_kinds)} member, but "
                f"'{member.qualified}' is {member.dtype}"
            )
        values = f.values
        name = member.qualified
        if op in ("set", "notSet"):
            if values:
                raise QueryError(f"query: operator '{op}' on '{name}' takes no values")
            return Condition(name, op, ()), is_measure
        if not values:
            raise QueryError(f"query: operator '{op}' on '{name}' needs at least one value")
        if any(v is None for v in values):
            raise QueryError(
                f"query: values of '{op}' on '{name}' must not be null; use 'set' / 'notSet'"
            )
        if op in _ONE_VALUE and len(values) != 1:
            raise QueryError(f"query: operator '{op}' on '{name}' takes exactly one value")
        if op in ("between", "notBetween") and len(values) != 2:
            raise QueryError(f"query: operator '{op}' on '{name}' takes exactly two values")
        if op == "onTheDate":
            if len(values) != 1 or not isinstance(values[0], str):
                raise QueryError(f"query: 'onTheDate' on '{name}' takes one ISO date")
            return self.range_condition(member, self.interval(member, values[0])), False
        if op in ("inDateRange", "notInDateRange"):
            if len(values) not in (1, 2) or not all(isinstance(v, str) for v in values):
                raise QueryError(
                    f"query: '{op}' on '{name}' takes a relative range ('last 7 days') "
                    "or two ISO dates"
                )
            rng: str | tuple[str, ...] = values[0] if len(values) == 1 else tuple(values)
            interval = self.interval(member, rng)
            return self.range_condition(member, interval, negate=op == "notInDateRange"), False
        if op in ("beforeDate", "beforeOrOnDate", "afterDate", "afterOrOnDate"):
            text = values[0]
            if not isinstance(text, str):
                raise QueryError(f"query: '{op}' on '{name}' takes an ISO date string")
            try:
                point = _point(text, self.tz, end=op in ("beforeOrOnDate", "afterDate"))
            except (OverflowError, ValueError):
                raise QueryError(
                    f"query: '{op}' on '{name}': {text!r} reaches outside the years 1 to 9999"
                ) from None
            except QueryError as err:
                reason = str(err).removeprefix("query: ")
                raise QueryError(f"query: '{op}' on '{name}': {reason}") from None
            internal = "lt" if op.startswith("before") else "gte"
            return Condition(name, internal, (self.instant(member, point),)), False
        slots = tuple(self.value(member, v, f"'{op}'") for v in values)
        if op == "equals":
            return Condition(name, "eq" if len(slots) == 1 else "in", slots), is_measure
        if op == "notEquals":
            return Condition(name, "ne" if len(slots) == 1 else "notIn", slots), is_measure
        return Condition(name, op, slots), is_measure

    def node(self, f: FilterNode, depth: int = 0) -> tuple[Node, bool]:
        if depth > MAX_DEPTH:
            raise QueryError(f"query: filters nest deeper than {MAX_DEPTH} levels")
        if isinstance(f, Filter):
            self.leaves += 1
            if self.leaves > MAX_FILTERS:
                raise QueryError(f"query: more than {MAX_FILTERS} filters")
            if len(f.values) > MAX_VALUES:
                raise QueryError(
                    f"query: a filter on '{f.member}' has more than {MAX_VALUES} values"
                )
            return self.condition(f)
        if not isinstance(f, And | Or):
            raise QueryError(f"query: a filter must be Filter, And or Or, not {type(f).__name__}")
        if not f.items:
            raise QueryError("query: an 'and' / 'or' filter needs at least one item")
        parts = [self.node(item, depth + 1) for item in f.items]
        kinds = {is_measure for _, is_measure in parts}
        if len(kinds) > 1:
            raise QueryError(
                "query: one 'and' / 'or' group mixes measure and dimension filters; measure "
                "filters apply after aggregation, so put them in their own group"
            )
        return BoolNode(
            "and" if isinstance(f, And) else "or", tuple(n for n, _ in parts)
        ), kinds.pop()

    # -- the query ---------------------------------------------------------------

    def run(self, data_versions: Mapping[str, int]) -> ScopedQuery:
        q = self.query
        tz_slot = self.params.add(q.timezone)
        measures = [self.member(m, ("measure",), "measure") for m in _unique(q.measures)]
        dimensions = [
            self.member(d, ("dimension", "time"), "dimension") for d in _unique(q.dimensions)
        ]
        buckets: list[Bucket] = []
        where: list[Node] = []
        having: list[Node] = []
        referenced: list[Member] = [*measures, *dimensions]
        for t in q.time:
            member = self.member(t.dimension, ("time",), "time dimension")
            referenced.append(member)
            if t.grain is not None:
                if t.grain not in GRAINS:
                    raise QueryError(
                        f"query: grain '{t.grain}' of '{t.dimension}' is unknown; "
                        f"grains are: {', '.join(GRAINS)}"
                    )
                if member.value_kind == "date" and t.grain in ("minute", "hour"):
                    raise QueryError(
                        f"query: '{t.dimension}' is a date; use a grain of day or coarser"
                    )
                output = f"{member.qualified}.{t.grain}"
                if all(b.output != output for b in buckets):
                    buckets.append(Bucket(member.qualified, t.grain, output))
            if t.date_range is not None:
                interval = self.interval(member, t.date_range)
                where.append(self.range_condition(member, interval))
        for f in q.filters:
            node, is_measure = self.node(f)
            (having if is_measure else where).append(node)
        segments = [self.member(s, ("segment",), "segment") for s in _unique(q.segments)]
        referenced.extend(segments)
        for f in q.filters:
            for name in _filter_members(f):
                found = self.model.member(name)
                if found is not None:  # unknown names were refused above
                    referenced.append(found)
        outputs = (
            [d.qualified for d in dimensions]
            + [b.output for b in buckets]
            + [m.qualified for m in measures]
        )
        root = self.root(measures, referenced)
        if not outputs or not root:
            raise QueryError("query: ask for at least one measure, dimension or time grain")
        needed = _unique(m.dataset for m in referenced if m.dataset != root)
        relations = self.relations(root, needed)
        order = self.order(q, dimensions, buckets, measures, outputs)
        limit = self.paging(q.limit, "limit")
        offset = self.paging(q.offset, "offset")
        plan = Plan(
            relations=relations,
            dimensions=tuple(d.qualified for d in dimensions),
            buckets=tuple(buckets),
            measures=tuple(m.qualified for m in measures),
            where=_conjoin(where),
            having=_conjoin(having),
            segments=tuple(s.qualified for s in segments),
            order=order,
            limit=limit,
            offset=offset,
            timezone=tz_slot,
            total=bool(q.total),
        )
        versions = {rel.dataset: data_versions.get(rel.dataset, 0) for rel in relations}
        scoped = ScopedQuery(
            plan=plan,
            params=tuple(self.params.values),
            principal=self.principal,
            model=self.model,
            data_versions=versions,
            key=_SCOPE_KEY,
        )
        scoped.check()
        return scoped

    def root(self, measures: Sequence[Member], referenced: Sequence[Member]) -> str:
        measured: list[str] = _unique(m.dataset for m in measures)
        if len(measured) > 1:
            raise QueryError(
                f"query: measures come from several datasets ({', '.join(measured)}); one query "
                "aggregates one dataset, reaching others through many-to-one joins; split it "
                "into one query per dataset"
            )
        if measured:
            return measured[0]
        names: list[str] = _unique(m.dataset for m in referenced)
        for candidate in names:
            reach = {candidate}
            frontier = [candidate]
            while frontier:
                cur = frontier.pop()
                for e in self.model.edges:
                    if e.source == cur and e.target not in reach:
                        reach.add(e.target)
                        frontier.append(e.target)
            if all(n in reach for n in names):
                return candidate
        return names[0] if names else ""

    def order(
        self,
        q: Query,
        dimensions: Sequence[Member],
        buckets: Sequence[Bucket],
        measures: Sequence[Member],
        outputs: Sequence[str],
    ) -> tuple[tuple[str, bool], ...]:
        if q.order is None:
            if buckets:
                return ((buckets[0].output, False),)
            if measures:
                return ((measures[0].qualified, True),)
            return ((outputs[0], False),)
        out = []
        for name, direction in q.order:
            if direction not in ("asc", "desc"):
                raise QueryError(f"query: order of '{name}' must be 'asc' or 'desc'")
            column = (
                name
                if name in outputs
                else next((b.output for b in buckets if b.member == name), None)
            )
            if column is None:
                raise QueryError(
                    f"query: cannot order by '{name}', which the query does not "
                    f"return; it returns: {', '.join(outputs)}"
                )
            out.append((column, direction == "desc"))
        return tuple(out)

    def paging(self, value: int | None, what: str) -> Slot | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PAGE:
            raise QueryError(f"query: '{what}' must be an integer from 0 to {MAX_PAGE}")
        return self.params.add(value)


def _point(text: str, tz: ZoneInfo, *, end: bool) -> datetime:
    from embedkit.query.dates import _parse_point

    return _parse_point(text, tz, end=end)


def _instant(point: datetime, kind: ValueKind) -> Any:
    if kind == "date":
        local = point.replace(tzinfo=None)
        d = local.date()
        return d if local.time() == datetime.min.time() else d + timedelta(days=1)
    utc = point.astimezone(UTC)
    return utc if kind == "timestamptz" else utc.replace(tzinfo=None)


def _filter_members(f: FilterNode) -> list[str]:
    if isinstance(f, Filter):
        return [f.member]
    return [m for item in f.items for m in _filter_members(item)]


def _unique(items: Any) -> list[Any]:
    seen: dict[Any, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


def _conjoin(nodes: list[Node]) -> Node | None:
    if not nodes:
        return None
    return nodes[0] if len(nodes) == 1 else BoolNode("and", tuple(nodes))


def scope(
    model: Model,
    query: Query,
    principal: Principal,
    *,
    now: datetime,
    data_versions: Mapping[str, int],
    shards: Mapping[str, Mapping[Any, int]] | None = None,
) -> ScopedQuery:
    """Check ``query`` against ``model`` for ``principal`` and return its scoped plan.

    ``shards`` maps each sharded dataset's tenants to their shard (see
    engines/shards.py); it only routes reads. Raises UnknownMemberError,
    QueryError or AccessDenied; never returns an unscoped plan.
    """
    if not isinstance(principal, Principal):
        raise AccessDenied("a query needs a verified Principal; nothing was run")
    if not isinstance(query, Query):
        raise QueryError(f"query: expected a Query or its JSON form, got {type(query).__name__}")
    return _Scoper(model, query, principal, now, shards or {}).run(data_versions)
