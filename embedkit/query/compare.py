"""Comparing ranges: this period against the previous one, or several date ranges.

``compare="previous_period"`` and Cube's ``compareDateRange`` both turn one query
into several that differ only in one time dimension's date range.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from embedkit.errors import QueryError
from embedkit.query.dates import previous_period, resolve_range, zone
from embedkit.query.spec import Query

__all__ = ["MAX_COMPARISONS", "comparisons", "range_of"]

MAX_COMPARISONS = 24


def comparisons(q: Query, now: datetime) -> list[Query]:
    """The queries to run for ``q``'s comparisons (empty when it compares nothing)."""
    with_compare = [i for i, t in enumerate(q.time) if t.compare_date_range]
    if q.compare == "previous_period":
        ranged = [i for i, t in enumerate(q.time) if t.date_range is not None]
        if len(ranged) != 1 or with_compare:
            raise QueryError(
                "query: compare='previous_period' needs exactly one time "
                "dimension with a date range"
            )
        index = ranged[0]
        rng = q.time[index].date_range
        assert rng is not None
        interval = resolve_range(rng, zone(q.timezone), now)
        before = previous_period(interval)
        # Both ends of a pair are inclusive: the previous period ends just before
        # the current one starts.
        # Instants with their offsets, so a repeated DST hour stays unambiguous.
        start = before.start.astimezone(UTC).isoformat()
        end = (before.end.astimezone(UTC) - timedelta(microseconds=1)).isoformat()
        return [q.with_date_range(index, rng), q.with_date_range(index, (start, end))]
    if not with_compare:
        return []
    if len(with_compare) > 1:
        raise QueryError("query: only one time dimension may have compareDateRange")
    index = with_compare[0]
    ranges = q.time[index].compare_date_range or ()
    if len(ranges) > MAX_COMPARISONS:
        raise QueryError(f"query: compareDateRange holds more than {MAX_COMPARISONS} ranges")
    return [q.with_date_range(index, r) for r in ranges]


def range_of(q: Query) -> str | tuple[str, ...] | None:
    """Which date range a comparison result covers."""
    ranged = [t.date_range for t in q.time if t.date_range is not None]
    if not ranged:
        return None
    rng = ranged[0]
    return rng if isinstance(rng, str) else tuple(rng)
