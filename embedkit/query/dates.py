"""Date ranges: absolute pairs and relative phrases, read in an IANA time zone.

Every range resolves to a half-open interval ``[start, end)`` of aware datetimes
in the query's zone. Both ends of an absolute pair are inclusive, as in Cube:
``["2024-01-01", "2024-01-31"]`` covers the whole of January 31st.

A single ISO date or datetime string stands for that one day (or instant).
Relative phrases: ``today``, ``yesterday``, ``tomorrow``, ``this|last|next
week|month|quarter|year`` (calendar periods; weeks start on Monday), ``last N
minutes|hours|days|weeks|months|quarters|years`` (the N whole periods before the
current one, as in Cube: ``last 7 days`` ends with yesterday, ``last 1 month`` is
``last month``) and ``next N ...`` (the N periods after the current one).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from embedkit.errors import QueryError

__all__ = ["Interval", "previous_period", "resolve_range", "zone"]

_RELATIVE = re.compile(r"^(this|last|next)\s+(\d+\s+)?(minute|hour|day|week|month|quarter|year)s?$")


@dataclass(frozen=True)
class Interval:
    """A half-open interval ``[start, end)`` of aware datetimes."""

    start: datetime
    end: datetime


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``, or a QueryError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        raise QueryError(
            f"query: unknown time zone {name!r}; use an IANA name such as 'UTC' or 'Europe/Paris'"
        ) from None


def _local(d: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(d, time(), tzinfo=tz)


def _add_months(d: date, months: int) -> date:
    index = d.year * 12 + (d.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def _period_start(now: datetime, unit: str) -> datetime:
    tz = now.tzinfo
    if unit == "minute":
        return now.replace(second=0, microsecond=0)
    if unit == "hour":
        return now.replace(minute=0, second=0, microsecond=0)
    today = now.date()
    if unit == "day":
        start = today
    elif unit == "week":
        start = today - timedelta(days=today.weekday())
    elif unit == "month":
        start = today.replace(day=1)
    elif unit == "quarter":
        start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    else:
        start = date(today.year, 1, 1)
    return datetime.combine(start, time(), tzinfo=tz)


def _shift(start: datetime, unit: str, count: int) -> datetime:
    """``start`` moved by ``count`` units: minutes and hours in absolute time (a DST
    night has 23 or 25 hours), days and longer on the local calendar."""
    if unit == "minute":
        return _absolute(start, timedelta(minutes=count))
    if unit == "hour":
        return _absolute(start, timedelta(hours=count))
    if unit in ("day", "week"):
        days = count * (7 if unit == "week" else 1)
        return datetime.combine(start.date() + timedelta(days=days), start.time(), start.tzinfo)
    months = count * {"month": 1, "quarter": 3, "year": 12}[unit]
    return datetime.combine(_add_months(start.date(), months), start.time(), start.tzinfo)


def _absolute(dt: datetime, delta: timedelta) -> datetime:
    # Python adds a timedelta to an aware datetime on the wall clock; go through UTC.
    return (dt.astimezone(UTC) + delta).astimezone(dt.tzinfo)


def _parse_point(text: str, tz: ZoneInfo, *, end: bool) -> datetime:
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return _local(d + timedelta(days=1), tz) if end else _local(d, tz)
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(
            f"query: {text!r} is not an ISO date (2024-01-31) or datetime (2024-01-31T12:00:00)"
        ) from None
    dt = dt.replace(tzinfo=tz) if dt.tzinfo is None else dt.astimezone(tz)
    return _absolute(dt, timedelta(microseconds=1)) if end else dt


def resolve_range(value: str | Sequence[str], tz: ZoneInfo, now: datetime) -> Interval:
    """Resolve an absolute pair or a relative phrase to ``[start, end)`` in ``tz``."""
    try:
        return _resolve_range(value, tz, now)
    except (OverflowError, ValueError):
        raise QueryError(
            f"query: date range {value if isinstance(value, str) else list(value)!r} reaches "
            "outside the years 1 to 9999"
        ) from None


def _resolve_range(value: str | Sequence[str], tz: ZoneInfo, now: datetime) -> Interval:
    now = now.astimezone(tz)
    if not isinstance(value, str):
        if len(value) != 2:
            raise QueryError("query: a date range pair has exactly two dates")
        start = _parse_point(value[0], tz, end=False)
        stop = _parse_point(value[1], tz, end=True)
        if stop.astimezone(UTC) <= start.astimezone(UTC):  # same-zone compare ignores fold
            raise QueryError(f"query: date range {list(value)} ends before it starts")
        return Interval(start, stop)
    phrase = " ".join(value.lower().split())
    if phrase[:1].isdigit():  # one ISO date or datetime: that day, or that instant
        return _resolve_range((value.strip(), value.strip()), tz, now)
    if phrase in ("today", "yesterday", "tomorrow"):
        start = _period_start(now, "day")
        offset = {"today": 0, "yesterday": -1, "tomorrow": 1}[phrase]
        start = _shift(start, "day", offset)
        return Interval(start, _shift(start, "day", 1))
    match = _RELATIVE.match(phrase)
    if match:
        which, count_text, unit = match.groups()
        count = int(count_text) if count_text else 1
        if count < 1 or count > 100_000:
            raise QueryError(f"query: date range {value!r} needs a count from 1 to 100000")
        current = _period_start(now, unit)
        if which == "this":
            if count_text:
                raise QueryError(f"query: say 'last {count} {unit}s', not 'this {count} ...'")
            return Interval(current, _shift(current, unit, 1))
        if which == "next":
            start = _shift(current, unit, 1)
            return Interval(start, _shift(start, unit, count))
        # last N units: the N whole periods before the current one (Cube's meaning).
        return Interval(_shift(current, unit, -count), current)
    raise QueryError(
        f"query: cannot read date range {value!r}; use a pair of ISO dates, or one of: today, "
        "yesterday, this month, last month, last 7 days, last 12 months, this year..."
    )


def previous_period(interval: Interval) -> Interval:
    """The period just before ``interval``: the previous month(s) when it is whole
    calendar months, the previous day(s) when whole days, else the same duration."""
    try:
        return _previous_period(interval)
    except (OverflowError, ValueError):
        raise QueryError("query: the previous period reaches before the year 1") from None


def _previous_period(interval: Interval) -> Interval:
    start, end = interval.start, interval.end
    midnight = time()
    if start.time() == midnight and end.time() == midnight:
        if start.day == 1 and end.day == 1:
            months = (end.year - start.year) * 12 + end.month - start.month
            return Interval(_shift(start, "month", -months), start)
        days = (end.date() - start.date()).days
        return Interval(_shift(start, "day", -days), start)
    length = end.astimezone(UTC) - start.astimezone(UTC)
    return Interval(_absolute(start, -length), start)
