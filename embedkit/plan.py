"""The scoped plan: a query after scoping, with every value moved out into parameters.

A :class:`ScopedQuery` is the only thing the compilers accept, and only
:func:`embedkit.scope.scope` can make one (its constructor demands a private key).
The plan inside holds member names, operators and :class:`Slot` references; the
values live in ``params``. Two queries that differ only in values therefore
share a plan, and a compiled plan (SQL text) is reused for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

from embedkit.security.rules import Principal
from embedkit.semantic.model import Model

__all__ = [
    "BoolNode",
    "Bucket",
    "Condition",
    "Node",
    "Plan",
    "Relation",
    "RowPredicate",
    "ScopedQuery",
    "Slot",
]


@dataclass(frozen=True, slots=True)
class Slot:
    """A bound parameter: ``params[index]``."""

    index: int


@dataclass(frozen=True, slots=True)
class RowPredicate:
    """A scope predicate on one relation: ``column = slot`` or ``column IN (slots)``."""

    column: str
    operator: Literal["eq", "in"]
    values: tuple[Slot, ...]


@dataclass(frozen=True, slots=True)
class Relation:
    """One dataset in the FROM clause, already limited by its scope predicates.

    ``tenant_scoped`` is True when the tenant-key predicate is among
    ``predicates``; a relation of a non-public dataset without it is never
    compiled (the compilers check again).
    """

    dataset: str
    alias: str
    predicates: tuple[RowPredicate, ...]
    tenant_scoped: bool
    public: bool
    parent: str | None = None
    on: tuple[tuple[str, str], ...] = ()  # (parent column, this column)
    shard: int | None = None  # the tenant's shard of a large dataset (speed only)


@dataclass(frozen=True, slots=True)
class Condition:
    """A filter leaf on a member. ``operator`` is one of the internal operators:
    eq, ne, in, notIn, gt, gte, lt, lte, between, notBetween, contains,
    notContains, startsWith, notStartsWith, endsWith, notEndsWith, set, notSet."""

    member: str
    operator: str
    values: tuple[Slot, ...]


@dataclass(frozen=True, slots=True)
class BoolNode:
    op: Literal["and", "or"]
    items: tuple[Node, ...]


Node: TypeAlias = Condition | BoolNode


@dataclass(frozen=True, slots=True)
class Bucket:
    """A time dimension truncated to ``grain`` in the query's zone (``grain=None``: raw).

    ``grain`` may also be a time part (``hour_of_day``, ``day_of_week``): an integer."""

    member: str
    grain: str | None
    output: str


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything the compilers need, minus the values."""

    relations: tuple[Relation, ...]
    dimensions: tuple[str, ...]
    buckets: tuple[Bucket, ...]
    measures: tuple[str, ...]
    where: Node | None
    having: Node | None
    segments: tuple[str, ...]
    order: tuple[tuple[str, bool], ...]  # (output column, descending)
    limit: Slot | None
    offset: Slot | None
    timezone: Slot
    total: bool

    def relation_of(self, dataset: str) -> Relation:
        for rel in self.relations:
            if rel.dataset == dataset:
                return rel
        raise KeyError(dataset)

    @property
    def outputs(self) -> tuple[str, ...]:
        return (*self.dimensions, *(b.output for b in self.buckets), *self.measures)


_SCOPE_KEY = object()


class ScopedQuery:
    """A query that went through scoping: a plan, its parameters and who asked.

    Only the scoping step can create one; constructing it any other way raises.
    """

    __slots__ = ("data_versions", "model", "params", "plan", "principal", "views")
    plan: Plan
    params: tuple[Any, ...]
    principal: Principal
    model: Model
    #: each dataset read -> its data version as this principal sees it
    data_versions: Mapping[str, int]
    #: each dataset read -> (epoch, own count): what cached answers are keyed by
    #: (see engines/versions.py)
    views: Mapping[str, tuple[int, int]]

    def __init__(
        self,
        *,
        plan: Plan,
        params: tuple[Any, ...],
        principal: Principal,
        model: Model,
        data_versions: Mapping[str, int],
        key: object,
        views: Mapping[str, tuple[int, int]] | None = None,
    ) -> None:
        if key is not _SCOPE_KEY:
            raise TypeError(
                "a ScopedQuery is made only by embedkit's scoping step; call EmbedKit.query()"
            )
        seal = object.__setattr__
        seal(self, "plan", plan)
        seal(self, "params", tuple(params))
        seal(self, "principal", principal)
        seal(self, "model", model)
        seal(self, "data_versions", MappingProxyType(dict(data_versions)))
        if views is None:
            views = {name: (version, 0) for name, version in data_versions.items()}
        seal(self, "views", MappingProxyType(dict(views)))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a ScopedQuery cannot be changed after scoping")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("a ScopedQuery cannot be changed after scoping")

    def check(self) -> None:
        """Refuse a plan that is not scoped to its principal (defence in depth).

        Checked against the model, not the plan's own flags: every relation of a
        dataset the model does not declare public must carry the tenant-key
        predicate, bound to this principal's tenant.
        """
        from embedkit.values import coerce

        for rel in self.plan.relations:
            dataset = self.model.datasets.get(rel.dataset)
            if dataset is None:
                raise RuntimeError(f"relation '{rel.dataset}' is not in the model; refusing")
            if dataset.definition.public is True:
                continue
            key = dataset.tenant_key
            tenant = coerce(self.principal.tenant, dataset.column_kind(key or ""), strict=True)
            if (
                not any(
                    p.column == key
                    and p.operator == "eq"
                    and len(p.values) == 1
                    and self.params[p.values[0].index] == tenant
                    for p in rel.predicates
                )
                or not rel.tenant_scoped
                or rel.public
            ):
                raise RuntimeError(
                    f"relation '{rel.dataset}' is not scoped to the principal's tenant; refusing"
                )
