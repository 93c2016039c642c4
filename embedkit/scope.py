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
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from embedkit.engines.versions import TenantVersions, View
from embedkit.errors import AccessDenied, QueryError, UnknownMemberError
from embedkit.filters import MAX_PAGE, Filters, Params, filter_members
from embedkit.plan import (
    _SCOPE_KEY,
    BoolNode,
    Bucket,
    Node,
    Plan,
    Relation,
    RowPredicate,
    ScopedQuery,
    Slot,
)
from embedkit.query.dates import zone
from embedkit.query.spec import Query
from embedkit.security.rules import Principal
from embedkit.semantic.members import GRAINS, PARTS
from embedkit.semantic.model import Member, MemberKind, Model, ResolvedDataset
from embedkit.values import coerce

__all__ = ["scope"]


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
        self.params = Params()
        self.filters = Filters(self.member, self.params, self.tz, self.now)
        self._hidden: dict[str, frozenset[str]] = {}

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
        error = UnknownMemberError(str(name), valid, kind=what)
        if found is not None and self.visible(found):
            where = {"measure": "measures", "segment": "segments"}.get(found.kind, "dimensions")
            error.args = (f"{error.args[0]} ('{name}' is a {found.kind}: put it in {where})",)
        raise error

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
                if t.grain not in GRAINS and t.grain not in PARTS:
                    raise QueryError(
                        f"query: grain '{t.grain}' of '{t.dimension}' is unknown; "
                        f"grains are: {', '.join(GRAINS)}; time parts are: {', '.join(PARTS)}"
                    )
                if member.value_kind == "date" and t.grain == "hour_of_day":
                    raise QueryError(f"query: '{t.dimension}' is a date: it has no hour")
                if member.value_kind == "date" and t.grain in ("minute", "hour"):
                    raise QueryError(
                        f"query: '{t.dimension}' is a date; use a grain of day or coarser"
                    )
                output = f"{member.qualified}.{t.grain}"
                if all(b.output != output for b in buckets):
                    buckets.append(Bucket(member.qualified, t.grain, output))
            if t.date_range is not None:
                interval = self.filters.interval(member, t.date_range)
                where.append(self.filters.range_condition(member, interval))
        for f in q.filters:
            node, is_measure = self.filters.node(f)
            (having if is_measure else where).append(node)
        segments = [self.member(s, ("segment",), "segment") for s in _unique(q.segments)]
        referenced.extend(segments)
        for f in q.filters:
            for name in filter_members(f):
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
        views = {rel.dataset: _view(data_versions, rel.dataset) for rel in relations}
        scoped = ScopedQuery(
            plan=plan,
            params=tuple(self.params.values),
            principal=self.principal,
            model=self.model,
            data_versions={name: view.number for name, view in views.items()},
            views=views,
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


def _unique(items: Any) -> list[Any]:
    seen: dict[Any, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


def _view(versions: Mapping[str, int], dataset: str) -> View:
    """The principal's view of ``dataset``; plain versions are whole-dataset views."""
    if isinstance(versions, TenantVersions):
        return versions.view(dataset)
    return View(versions.get(dataset, 0), 0)


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

    ``data_versions`` are the datasets' versions: plain numbers, or the principal's
    tenant's :class:`~embedkit.engines.versions.TenantVersions`, which move only
    with changes that tenant can see (what caches key on). ``shards`` maps each
    sharded dataset's tenants to their shard (see engines/shards.py); it only routes
    reads. Raises UnknownMemberError, QueryError or AccessDenied; never returns an
    unscoped plan.
    """
    if not isinstance(principal, Principal):
        raise AccessDenied("a query needs a verified Principal; nothing was run")
    if not isinstance(query, Query):
        raise QueryError(f"query: expected a Query or its JSON form, got {type(query).__name__}")
    return _Scoper(model, query, principal, now, shards or {}).run(data_versions)
