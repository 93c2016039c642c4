"""The semantic query: what a caller asks for, in member names.

A :class:`Query` names measures, dimensions, time buckets, filters and
segments of the model. It says nothing about tables or SQL; the scoping step
checks it against the model and the caller's principal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeAlias

from embedkit.errors import QueryError

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
        if not isinstance(self.member, str) or not isinstance(self.operator, str):
            raise QueryError(
                "query: a filter is Filter('<dataset.member>', '<operator>', [values])"
            )
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
        if not isinstance(self.dimension, str):
            raise QueryError("query: Time takes a time dimension name, e.g. 'orders.ordered_at'")
        if self.grain is not None and not isinstance(self.grain, str):
            raise QueryError(f"query: the grain of '{self.dimension}' must be a name like 'day'")
        if self.date_range is not None:
            object.__setattr__(self, "date_range", _date_range(self.date_range, self.dimension))
        if self.compare_date_range is not None:
            ranges = self.compare_date_range
            if isinstance(ranges, str) or not isinstance(ranges, Sequence):
                raise QueryError(
                    f"query: compare_date_range of '{self.dimension}' is a list of date ranges"
                )
            object.__setattr__(
                self, "compare_date_range", tuple(_date_range(r, self.dimension) for r in ranges)
            )


def _date_range(value: Any, dimension: str) -> str | tuple[str, ...]:
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise QueryError(
        f"query: the date range of '{dimension}' must be a phrase such as 'last 7 days' or a "
        "pair of ISO dates ('2024-01-01', '2024-01-31')"
    )


def _names(value: Any, field: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise QueryError(f"query: '{field}' must be a list of member names, e.g. ['orders.revenue']")


Direction = Literal["asc", "desc"]

#: How deep and/or groups may nest (deeper is refused: it only ever means abuse).
MAX_DEPTH = 16


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
            object.__setattr__(self, name, _names(getattr(self, name), name))
        time: Any = self.time
        time = (time,) if isinstance(time, Time) else time
        if (
            isinstance(time, str)
            or not isinstance(time, Sequence)
            or not all(isinstance(t, Time) for t in time)
        ):
            raise QueryError(
                "query: 'time' takes Time entries, e.g. [Time('orders.ordered_at', grain='day')]"
            )
        object.__setattr__(self, "time", tuple(time))
        filters: Any = self.filters
        filters = (filters,) if isinstance(filters, Filter | And | Or) else filters
        if (
            isinstance(filters, str | Mapping)
            or not isinstance(filters, Sequence)
            or not all(isinstance(f, Filter | And | Or) for f in filters)
        ):
            raise QueryError(
                "query: 'filters' takes Filter, And and Or entries (for the JSON form, use "
                "Query.from_json)"
            )
        object.__setattr__(self, "filters", tuple(filters))
        if self.order is not None:
            order: Any = self.order
            if isinstance(order, Mapping):
                order = tuple(order.items())
            if (
                isinstance(order, str)
                or not isinstance(order, Sequence)
                or not all(
                    isinstance(o, Sequence)
                    and not isinstance(o, str)
                    and len(o) == 2
                    and isinstance(o[0], str)
                    for o in order
                )
            ):
                raise QueryError(
                    "query: 'order' takes (member, 'asc' | 'desc') pairs or a mapping of them"
                )
            object.__setattr__(self, "order", tuple((m, d) for m, d in order))
        if self.compare not in (None, "previous_period"):
            raise QueryError("query: compare must be 'previous_period' or None")
        if not isinstance(self.timezone, str):
            raise QueryError("query: timezone must be an IANA name such as 'Europe/Paris'")
        if not isinstance(self.total, bool):
            raise QueryError("query: total must be True or False")

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
