"""Rolling windows: events counted into time buckets, and freshness as a step function.

Time is cut into buckets of ``resolution`` aligned on the Unix epoch: bucket *i* covers
``[i * resolution, (i + 1) * resolution)``. An evaluation at ``now`` covers the buckets
whose start is ``>= now - window``, up to the one holding ``now``. So the span scored is
``[W, now]``, where ``W`` is the first bucket boundary at or after ``now - window``: between
``window - resolution`` and ``window`` long. Freshness is scored over exactly that span,
to the microsecond.

Freshness is a step function: the newest time value known changes only when it is
recorded. A closed step is spread over the buckets it spans when the next one starts; the
step still open is added on the fly when scoring. Time before the first step is not
observed; time while the newest value is ``None`` (no rows) counts as stale.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import takewhile

from embedkit.trust.slo import SLO, Tally

__all__ = ["DEFAULT_WINDOW", "Bucket", "Series", "Window", "micros"]

#: The rolling window of a dataset without an SLO.
DEFAULT_WINDOW = timedelta(days=7)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_COUNTS = ("queries", "no_fault", "ok", "fast", "received", "passed")


def micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch; a naive datetime is taken as UTC."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return (moment - _EPOCH) // _US


class Bucket:
    """Events of one bucket; ``fresh`` and ``observed`` are microseconds."""

    __slots__ = ("fast", "fresh", "no_fault", "observed", "ok", "passed", "queries", "received")

    def __init__(self) -> None:
        self.queries = self.no_fault = self.ok = self.fast = self.received = self.passed = 0
        self.fresh = self.observed = 0


class Series:
    """The sparse buckets of a dataset, or of one tenant of it, and its open freshness step."""

    __slots__ = ("buckets", "step")

    def __init__(self) -> None:
        self.buckets: dict[int, Bucket] = {}  # in creation order, which is time order
        self.step: tuple[int, int | None] | None = None  # (since, newest), microseconds

    def bucket(self, index: int, first: int) -> Bucket:
        """The bucket ``index``, created if new; creating one drops those before ``first``."""
        found = self.buckets.get(index)
        if found is None:
            found = self.buckets[index] = Bucket()
            for old in list(takewhile(lambda key: key < first, self.buckets)):
                del self.buckets[old]
        return found

    def restart(self, now: int) -> None:
        """Forget every bucket; the newest value stays known, observed again from ``now``."""
        self.buckets = {}
        if self.step is not None:
            self.step = (now, self.step[1])


_NICE = tuple(timedelta(minutes=m) for m in (1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440))


def nice_resolution(window: timedelta) -> timedelta:
    """The default bucket size: the largest round step (1, 5, 10, 15, 30 minutes; 1, 2,
    3, 6, 12 hours; 1 day) that cuts ``window`` into at least 100 buckets, so a 7-day
    window has hourly buckets and a 1-day window 10-minute ones; a window under 100
    minutes gets buckets of a hundredth of it."""
    fitting = [step for step in _NICE if window / step >= 100]
    return fitting[-1] if fitting else window / 100


class Window:
    """The bucket geometry and the thresholds a dataset's SLO sets, in microseconds.

    ``resolution`` overrides the default bucket size (see :func:`nice_resolution`).
    """

    __slots__ = ("fast_seconds", "max_age", "resolution", "slo", "span")

    def __init__(self, slo: SLO | None, resolution: timedelta | None) -> None:
        self.slo = slo
        window = DEFAULT_WINDOW if slo is None else slo.span
        self.span = window // _US
        self.resolution = max(1, (resolution or nice_resolution(window)) // _US)
        # seconds <= latency_ms / 1000 compares exactly where seconds * 1000 would not
        self.fast_seconds = None if slo is None or slo.latency_ms is None else slo.latency_ms / 1000
        self.max_age = None if slo is None or slo.max_age is None else slo.max_age // _US

    def same_rules(self, other: Window) -> bool:
        """True when buckets cut and counted under ``other`` remain valid under this window."""
        return (self.span, self.resolution, self.fast_seconds, self.max_age) == (
            other.span,
            other.resolution,
            other.fast_seconds,
            other.max_age,
        )

    def first(self, now: int) -> int:
        """The window's first bucket: the first one starting at or after ``now - window``."""
        return -((self.span - now) // self.resolution)

    def index(self, now: int) -> int:
        """The bucket holding ``now``."""
        return now // self.resolution

    def close(self, series: Series, now: int) -> None:
        """Spread the series' open freshness step, which ends at ``now``, over its buckets."""
        first = self.first(now)
        for index, fresh, observed in self._pieces(series, now):
            bucket = series.bucket(index, first)
            bucket.fresh += fresh
            bucket.observed += observed

    def _pieces(self, series: Series, now: int) -> Iterator[tuple[int, int, int]]:
        """The open step cut at the window start and at bucket bounds: (bucket, fresh, observed)."""
        if series.step is None or self.max_age is None:
            return
        since, newest = series.step
        res = self.resolution
        start = max(since, self.first(now) * res)
        # fresh while (t - newest) <= max_age, that is until newest + max_age
        fresh_end = start if newest is None else min(max(newest + self.max_age, start), now)
        for index in range(start // res, (now - 1) // res + 1):
            low, high = max(start, index * res), min(now, (index + 1) * res)
            yield index, max(0, min(high, fresh_end) - low), high - low

    def tallies(
        self, counts: Series, fresh: Series, now: int
    ) -> tuple[Tally, list[tuple[datetime, Tally]]]:
        """Per-bucket tallies over the window at ``now`` (queries and rows from ``counts``,
        freshness from ``fresh``), and their sum."""
        open_step = {index: (f, o) for index, f, o in self._pieces(fresh, now)}
        sums = [0] * 8
        series = []
        for index in range(self.first(now), self.index(now) + 1):
            bucket, fresh_bucket = counts.buckets.get(index), fresh.buckets.get(index)
            values = [getattr(bucket, name) if bucket else 0 for name in _COUNTS]
            f, o = open_step.get(index, (0, 0))
            if fresh_bucket is not None:
                f, o = f + fresh_bucket.fresh, o + fresh_bucket.observed
            values += [f, o]
            sums = [a + b for a, b in zip(sums, values, strict=True)]
            series.append((_EPOCH + index * self.resolution * _US, _tally(values)))
        return _tally(sums), series


def _tally(values: list[int]) -> Tally:
    queries, no_fault, ok, fast, received, passed, fresh, observed = values
    return Tally(
        queries=queries,
        no_fault=no_fault,
        ok=ok,
        fast=fast,
        received=received,
        passed=passed,
        fresh_seconds=fresh / 1e6,
        observed_seconds=observed / 1e6,
    )
