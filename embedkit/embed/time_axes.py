"""Time axes of charts: per grain, the UTC time unit, label and tooltip formats.

Buckets hold the embed zone's wall-clock time marked as UTC, so every unit and
format here is UTC. Ticks that fall between buckets get no label.
"""

from __future__ import annotations

from typing import NamedTuple

from embedkit.embed.fields import Field

__all__ = ["GRAIN_AXES", "RAW", "Grain", "grain_axis", "label_expr"]


class Grain(NamedTuple):
    """The UTC time unit and d3 formats of one grain."""

    unit: str  # UTC time unit: truncating a bucket to it changes nothing
    axis: str  # d3 time format of axis labels
    tip: str  # d3 time format of tooltips
    aligned: str  # expression: a tick at ``datum.value`` falls on a bucket boundary


_DAY_START = "utchours(datum.value) == 0 && utcminutes(datum.value) == 0"
_MONTH_START = f"utcdate(datum.value) == 1 && {_DAY_START}"
_TIME_TIP = "%b %-d, %Y %H:%M"
GRAIN_AXES: dict[str, Grain] = {
    "minute": Grain(
        "utcyearmonthdatehoursminutes", "%H:%M", _TIME_TIP, "utcseconds(datum.value) == 0"
    ),
    "hour": Grain("utcyearmonthdatehours", "%H:%M", _TIME_TIP, "utcminutes(datum.value) == 0"),
    "day": Grain("utcyearmonthdate", "%b %-d", "%a %b %-d, %Y", _DAY_START),
    "week": Grain("utcyearmonthdate", "%b %-d", "%b %-d, %Y", _DAY_START),
    "month": Grain("utcyearmonth", "%b %Y", "%B %Y", _MONTH_START),
    "quarter": Grain(
        "utcyearquarter", "Q%q %Y", "Q%q %Y", f"utcmonth(datum.value) % 3 == 0 && {_MONTH_START}"
    ),
    "year": Grain("utcyear", "%Y", "%Y", f"utcmonth(datum.value) == 0 && {_MONTH_START}"),
}
# A time field without a grain: raw instants, shown to the second.
RAW = Grain("utcyearmonthdatehoursminutesseconds", "", "%Y-%m-%d %H:%M:%S", "true")


def grain_axis(field: Field) -> Grain:
    """How the time axis of ``field`` is cut, labelled and described (by its grain)."""
    return GRAIN_AXES.get(field.grain or "", RAW)


def label_expr(grain: Grain) -> str:
    """Blank the labels of ticks between buckets; minute and hour axes name each new day."""
    if grain is GRAIN_AXES["minute"] or grain is GRAIN_AXES["hour"]:
        day = "utcFormat(datum.value, '%b %-d')"
        return f"({grain.aligned}) ? (({_DAY_START}) ? {day} : datum.label) : ''"
    return f"({grain.aligned}) ? datum.label : ''"
