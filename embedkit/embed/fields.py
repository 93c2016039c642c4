"""The fields of a widget's result, as charts and tables in the browser see them.

Result columns are named by member (``orders.revenue``); Vega-Lite reads a dot
as a path into nested objects, so the browser gets each column under a short
key (``revenue``) with the member's title and number format beside it.

A time dimension bucketed by a grain is a ``time`` field (a temporal axis). One
read as a time part (``hour_of_day``, ``day_of_week``) is an ordinal ``dimension``
field of integers, keyed with the part's name (``ordered_at_hour_of_day``) so that
both parts of one member fit in one widget (hour by weekday heatmaps).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from embedkit.semantic.members import PARTS

__all__ = ["Field", "field_for", "field_key"]

Role = Literal["time", "dimension", "measure"]


@dataclass(frozen=True)
class Field:
    """One column of a widget's data."""

    key: str  # the member name without its dataset: ``revenue``
    member: str  # ``orders.revenue``
    title: str
    role: Role
    grain: str | None = None  # time members only: a grain, or a time part (role dimension)
    format: str | None = None  # number | integer | currency | percent (measures only)

    @property
    def part(self) -> str | None:
        """The time part (``hour_of_day``, ``day_of_week``) this field holds, if any."""
        return self.grain if self.grain in PARTS else None

    @property
    def column(self) -> str:
        """The result column: ``orders.revenue``, ``orders.ordered_at.day``."""
        return f"{self.member}.{self.grain}" if self.grain else self.member

    def to_json(self) -> dict[str, Any]:
        """The field as the browser receives it."""
        return {
            "key": self.key,
            "member": self.member,
            "title": self.title,
            "role": self.role,
            "grain": self.grain,
            "format": self.format,
        }


def _title(name: str) -> str:
    return name.replace("_", " ").strip().capitalize()


def field_key(member: str, grain: str | None = None) -> str:
    """The browser's key of a result column: ``revenue`` for ``orders.revenue``;
    a time part adds its name (``ordered_at_day_of_week``)."""
    key = member.split(".")[1]
    return f"{key}_{grain}" if grain in PARTS else key


def field_for(
    model: Any,
    member: str,
    *,
    grain: str | None = None,
    formats: Mapping[str, str] | None = None,
) -> Field:
    """The :class:`Field` of ``member`` (qualified name) in ``model``.

    ``grain`` is the grain or time part of a time member; a part makes the field an
    ordinal dimension of integers (``hour_of_day`` 0-23, ``day_of_week`` 1-7)."""
    m = model.member(member)
    key = member.split(".")[1]
    if m is None:
        raise KeyError(member)
    role: Role = "measure" if m.kind == "measure" else "time" if m.kind == "time" else "dimension"
    grain = grain if role == "time" else None
    title = m.title or _title(key)
    if grain in PARTS:
        role = "dimension"
        title = f"{title} ({str(grain).replace('_', ' ')})"
    fmt = (formats or {}).get(member)
    if fmt is None and role == "measure":
        fmt = m.format if m.format in ("number", "integer", "currency", "percent") else None
        if fmt is None and m.agg in ("count", "count_distinct"):
            fmt = "integer"
    return Field(
        key=field_key(member, grain),
        member=member,
        title=title,
        role=role,
        grain=grain,
        format=fmt,
    )
