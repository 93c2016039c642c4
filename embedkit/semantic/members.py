"""Semantic members: what a dataset offers to queries.

These are plain, frozen definitions. Nothing here touches data; the model
(:mod:`embedkit.semantic.model`) checks them against the stored schema when
the dataset is registered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "AGGREGATIONS",
    "GRAINS",
    "PARTS",
    "Aggregation",
    "Dimension",
    "Grain",
    "Join",
    "Measure",
    "Part",
    "Relationship",
    "Rollup",
    "Segment",
    "TimeDimension",
]

Aggregation = Literal["count", "count_distinct", "sum", "avg", "min", "max", "derived"]
AGGREGATIONS: tuple[str, ...] = (
    "count",
    "count_distinct",
    "sum",
    "avg",
    "min",
    "max",
    "derived",
)
#: Truncations: a bucket is the local start of its minute, hour, ... year.
Grain = Literal["minute", "hour", "day", "week", "month", "quarter", "year"]
GRAINS: tuple[str, ...] = ("minute", "hour", "day", "week", "month", "quarter", "year")
#: Time parts: a bucket is an integer read off the local time, the same for every day
#: (``hour_of_day``: 0 to 23) or every week (``day_of_week``: ISO, Monday 1 to Sunday 7).
Part = Literal["hour_of_day", "day_of_week"]
PARTS: tuple[str, ...] = ("hour_of_day", "day_of_week")
Relationship = Literal["many_to_one", "one_to_one", "one_to_many"]


@dataclass(frozen=True)
class Dimension:
    """A column, or an expression over the dataset's columns, to group and filter by.

    ``sql`` defaults to the column of the same name. It is parsed with sqlglot
    and may use only the dataset's own columns.
    """

    name: str
    sql: str | None = None
    description: str = ""
    title: str | None = None

    def __post_init__(self) -> None:
        _check_texts(self)


@dataclass(frozen=True)
class TimeDimension:
    """A date or timestamp column (or expression) that queries can bucket by grain.

    Naive timestamps are taken as UTC; grains are truncated, and time parts
    (``hour_of_day``, ``day_of_week``) read, in the query's time zone.
    """

    name: str
    sql: str | None = None
    description: str = ""
    title: str | None = None

    def __post_init__(self) -> None:
        _check_texts(self)


@dataclass(frozen=True)
class Measure:
    """An aggregation, a filtered aggregation, or arithmetic of other measures.

    - ``Measure("orders", "count")``: count of rows.
    - ``Measure("revenue", "sum", sql="amount")``: an aggregation of an expression.
    - ``Measure("returned", "count", filter="status = 'returned'")``: filtered.
    - ``Measure("return_rate", "derived", sql="returned / orders")``: arithmetic of
      other measures of the same dataset; every division is safe (``x / 0`` is null).
    """

    name: str
    agg: Aggregation
    sql: str | None = None
    filter: str | None = None
    description: str = ""
    title: str | None = None
    format: str | None = None

    def __post_init__(self) -> None:
        _check_texts(self)


@dataclass(frozen=True)
class Segment:
    """A named, reusable row filter, e.g. ``Segment("completed", "status = 'completed'")``."""

    name: str
    sql: str
    description: str = ""

    def __post_init__(self) -> None:
        _check_texts(self)


@dataclass(frozen=True)
class Join:
    """A declared relationship from this dataset to ``to``.

    ``on`` maps this dataset's columns to the other dataset's columns. Queries may
    use the other dataset's dimensions through a ``many_to_one`` or ``one_to_one``
    join. Anything that would repeat a row of the measured dataset (a
    ``one_to_many`` join, or walking a many-to-one join backwards) is refused,
    because it would silently multiply sums and counts.
    """

    to: str
    on: Mapping[str, str] = field(default_factory=dict)
    relationship: Relationship = "many_to_one"

    def __post_init__(self) -> None:
        # Shorthands: on="product_id" or on=["a", "b"] join same-named columns.
        on: Any = self.on
        if isinstance(on, str):
            on = {on: on}
        elif isinstance(on, Sequence):
            on = {c: c for c in on}
        if not isinstance(on, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in on.items()
        ):
            raise TypeError(
                f"Join('{self.to}'): on must map this dataset's columns to the other's, "
                "e.g. on={'product_id': 'product_id'}"
            )
        object.__setattr__(self, "on", dict(on))

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """(this dataset's column, the other dataset's column) pairs."""
        return tuple(self.on.items())


def names(items: Sequence[Dimension | TimeDimension | Measure | Segment]) -> list[str]:
    return [item.name for item in items]


def _check_texts(member: Dimension | TimeDimension | Measure | Segment) -> None:
    kind = type(member).__name__
    if not isinstance(member.name, str):
        raise TypeError(f"{kind}: the name must be a string, got {member.name!r}")
    for field_name in ("sql", "filter"):
        value = getattr(member, field_name, None)
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{kind}('{member.name}'): {field_name} must be SQL text")


@dataclass(frozen=True)
class Rollup:
    """A pre-aggregation of a dataset: ``measures`` by ``dimensions`` by ``time`` bucket.

    Args:
        name: its name; the rollup is stored as the dataset ``<dataset>__<name>``.
        measures: names of the dataset's measures (derived ones bring their parts).
        dimensions: names of the dataset's dimensions it keeps.
        time: the time column it buckets (default: the dataset's ``time``); None for
            no time bucket.
        grain: the bucket: ``"hour"``, ``"day"`` (default), ``"week"`` or ``"month"``.
        timezone: the zone buckets are cut in; only queries in this zone use it.
    """

    name: str
    measures: Sequence[str]
    dimensions: Sequence[str] = ()
    time: str | None = ""
    grain: str = "day"
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        where = f"Rollup({self.name!r})"
        for name in ("measures", "dimensions"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise TypeError(f"{where}: {name} must be a list of names")
            object.__setattr__(self, name, tuple(value))
        if self.grain not in ("hour", "day", "week", "month"):
            raise ValueError(f"{where}: grain must be 'hour', 'day', 'week' or 'month'")
        from embedkit.query.dates import zone

        zone(self.timezone)
