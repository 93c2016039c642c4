"""The semantic query: what a caller asks for, in member names.

A :class:`Query` names measures, dimensions, time buckets, filters and
segments of the model. It says nothing about tables or SQL; the scoping step
checks it against the model and the caller's principal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeAlias

__all__ = [
    "OPERATORS",
    "And",
    "Filter",
    "FilterNode",
    "Or",
    "Query",
    "Time",
]

#: Every filter operator, in Cube's spelling (which embedkit uses as its own).
OPERATORS: tuple[str, ...] = (
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
    "contains",
    "notContains",
    "startsWith",
    "notStartsWith",
    "endsWith",
    "notEndsWith",
    "set",
    "notSet",
    "inDateRange",
    "notInDateRange",
    "onTheDate",
    "beforeDate",
    "beforeOrOnDate",
    "afterDate",
    "afterOrOnDate",
)

DateRange: TypeAlias = str | Sequence[str]


@dataclass(frozen=True)
class Filter:
    """``member operator values``; values are always bound as parameters."""

    member: str
    operator: str
    values: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.values, str | bytes) or not isinstance(self.values, Sequence):
            object.__setattr__(self, "values", (self.values,))
        else:
            object.__setattr__(self, "values", tuple(self.values))


@dataclass(frozen=True)
class And:
    """All of the nested filters hold."""

    items: tuple[FilterNode, ...]

    def __init__(self, *items: FilterNode) -> None:
        object.__setattr__(self, "items", tuple(items))


@dataclass(frozen=True)
class Or:
    """At least one of the nested filters holds."""

    items: tuple[FilterNode, ...]

    def __init__(self, *items: FilterNode) -> None:
        object.__setattr__(self, "items", tuple(items))


FilterNode: TypeAlias = Filter | And | Or


@dataclass(frozen=True)
class Time:
    """A time dimension in a query: bucketed by ``grain``, limited to ``date_range``.

    ``date_range`` is a pair of ISO dates or datetimes (both ends inclusive, as in
    Cube) or a relative phrase: ``today``, ``yesterday``, ``this week``, ``last
    month``, ``last 30 days``, ``last 12 months``... read in the query's time zone.
    ``compare_date_range`` (Cube's name) asks for the same query over several ranges.
    """

    dimension: str
    grain: str | None = None
    date_range: DateRange | None = None
    compare_date_range: tuple[DateRange, ...] | None = None

    def __post_init__(self) -> None:
        if self.date_range is not None and not isinstance(self.date_range, str):
            object.__setattr__(self, "date_range", tuple(self.date_range))
        if self.compare_date_range is not None:
            object.__setattr__(
                self,
                "compare_date_range",
                tuple(r if isinstance(r, str) else tuple(r) for r in self.compare_date_range),
            )


Direction = Literal["asc", "desc"]


@dataclass(frozen=True)
class Query:
    """A semantic query.

    Args:
        measures: qualified measure names, e.g. ``"orders.revenue"``.
        dimensions: qualified dimension names to group by.
        time: time dimensions with grain and/or date range.
        filters: :class:`Filter` leaves nested with :class:`And` / :class:`Or`;
            several top-level filters are and-ed. Filters on measures apply after
            aggregation.
        segments: qualified segment names (named filters), and-ed.
        order: ``[(member, "asc" | "desc"), ...]``; default: first time bucket
            ascending, else first measure descending, else first dimension ascending.
        limit / offset: paging; ``total=True`` also reports the row count before paging.
        timezone: IANA zone in which grains are truncated and dates are read.
        compare: ``"previous_period"`` also runs the query over the period just
            before the date range (this month vs last month), for KPI deltas.
    """

    measures: tuple[str, ...] = ()
    dimensions: tuple[str, ...] = ()
    time: tuple[Time, ...] = ()
    filters: tuple[FilterNode, ...] = ()
    segments: tuple[str, ...] = ()
    order: tuple[tuple[str, Direction], ...] | None = None
    limit: int | None = None
    offset: int | None = None
    timezone: str = "UTC"
    total: bool = False
    compare: Literal["previous_period"] | None = None
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        for name in ("measures", "dimensions", "segments"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            object.__setattr__(self, name, tuple(value))
        time = self.time
        object.__setattr__(self, "time", (time,) if isinstance(time, Time) else tuple(time))
        filters = self.filters
        if isinstance(filters, Filter | And | Or):
            filters = (filters,)
        object.__setattr__(self, "filters", tuple(filters))
        if self.order is not None:
            order = self.order
            if isinstance(order, Mapping):
                order = tuple(order.items())
            object.__setattr__(self, "order", tuple((str(m), d) for m, d in order))

    def with_date_range(self, index: int, date_range: DateRange) -> Query:
        """A copy with time entry ``index`` limited to ``date_range`` and no comparison."""
        time = list(self.time)
        time[index] = replace(time[index], date_range=date_range, compare_date_range=None)
        return replace(self, time=tuple(time), compare=None)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Query:
        """Parse the JSON form (Cube's REST query format where the two overlap)."""
        from embedkit.query.json import query_from_json

        return query_from_json(data)

    def to_json(self) -> dict[str, Any]:
        """The JSON form of this query."""
        from embedkit.query.json import query_to_json

        return query_to_json(self)
