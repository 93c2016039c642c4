"""The fields of a widget's result, as charts and tables in the browser see them.

Result columns are named by member (``orders.revenue``); Vega-Lite reads a dot
as a path into nested objects, so the browser gets each column under a short
key (``revenue``) with the member's title and number format beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Field", "field_for"]

Role = Literal["time", "dimension", "measure"]


@dataclass(frozen=True)
class Field:
    """One column of a widget's data."""

    key: str  # the member name without its dataset: ``revenue``
    member: str  # ``orders.revenue``
    title: str
    role: Role
    grain: str | None = None  # time fields only
    format: str | None = None  # number | integer | currency | percent (measures only)

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


def field_for(
    model: Any,
    member: str,
    *,
    grain: str | None = None,
    formats: Mapping[str, str] | None = None,
) -> Field:
    """The :class:`Field` of ``member`` (qualified name) in ``model``."""
    m = model.member(member)
    key = member.split(".")[1]
    if m is None:
        raise KeyError(member)
    role: Role = "measure" if m.kind == "measure" else "time" if m.kind == "time" else "dimension"
    fmt = (formats or {}).get(member)
    if fmt is None and role == "measure":
        fmt = m.format if m.format in ("number", "integer", "currency", "percent") else None
        if fmt is None and m.agg in ("count", "count_distinct"):
            fmt = "integer"
    return Field(
        key=key,
        member=member,
        title=m.title or _title(key),
        role=role,
        grain=grain if role == "time" else None,
        format=fmt,
    )
