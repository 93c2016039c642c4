"""The :class:`Monitor`: what happened to each dataset, cheap enough to record every query.

It keeps three things, each O(1) to record:

- **rolling buckets** (:mod:`embedkit.trust.window`) per dataset, and per (dataset, tenant)
  for the first ``max_tenants`` tenants seen (later tenants count at dataset level only),
  from which :meth:`Monitor.objectives` scores the dataset's :class:`~embedkit.trust.slo.SLO`;
- **cumulative counters** that never reset, for Prometheus (:mod:`embedkit.trust.metrics`);
- a **query log** (:mod:`embedkit.trust.querylog`) of the last ``log_size`` queries.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import polars as pl

from embedkit.trust.querylog import OUTCOMES, Outcome, QueryLog, QueryLogEntry
from embedkit.trust.slo import SLO, Objective, score
from embedkit.trust.window import DEFAULT_WINDOW, Series, Window, micros

__all__ = [
    "DEFAULT_WINDOW",
    "DURATION_BOUNDS",
    "OTHER",
    "Counters",
    "DatasetCounters",
    "Monitor",
    "Outcome",
    "QueryLogEntry",
]

#: Upper bounds (seconds) of the query duration histogram.
DURATION_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Stands for tenants (or error kinds) beyond the tracked limit in cumulative counters.
OTHER = "_other"

_MAX_KINDS = 100  # distinct error kinds per dataset; more are counted under OTHER


@dataclass(frozen=True)
class DatasetCounters:
    """Cumulative counters of one dataset; they only ever grow."""

    queries: Mapping[str, int]  # outcome -> queries
    errors: Mapping[str, int]  # error kind -> failed queries
    durations: tuple[int, ...]  # queries per DURATION_BOUNDS slot (not cumulative), then +Inf
    duration_sum: float  # seconds
    rows_served: int
    rows_received: int  # every row received, rejected batches included
    rows_rejected: int  # rows of rejected batches
    quarantined: Mapping[str, int]  # rule -> rows quarantined (accepted batches)
    batches: Mapping[str, int]  # "accepted" | "rejected" -> batches
    tenant_queries: Mapping[tuple[str | None, str], int]  # (tenant or OTHER or None, outcome)
    tenant_rows_served: Mapping[str | None, int]


@dataclass(frozen=True)
class Counters:
    """A snapshot of every dataset's counters, and the tracked tenants in first-seen order."""

    datasets: Mapping[str, DatasetCounters]
    tenants: tuple[str, ...]


class _Totals:
    __slots__ = tuple(DatasetCounters.__dataclass_fields__)

    def __init__(self) -> None:
        self.queries: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.durations = [0] * (len(DURATION_BOUNDS) + 1)
        self.duration_sum = 0.0
        self.rows_served = self.rows_received = self.rows_rejected = 0
        self.quarantined: dict[str, int] = {}
        self.batches: dict[str, int] = {}
        self.tenant_queries: dict[tuple[str | None, str], int] = {}
        self.tenant_rows_served: dict[str | None, int] = {}

    def snapshot(self) -> DatasetCounters:
        values: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            values[name] = dict(value) if isinstance(value, dict) else value
        values["durations"] = tuple(self.durations)
        return DatasetCounters(**values)


def _add(counts: dict[Any, int], key: Any, amount: int = 1) -> None:
    counts[key] = counts.get(key, 0) + amount


class _Dataset:
    __slots__ = ("series", "tenants", "totals", "window")

    def __init__(self, resolution: timedelta | None) -> None:
        self.window = Window(None, resolution)
        self.series = Series()
        self.tenants: dict[str, Series] = {}
        self.totals = _Totals()


class Monitor:
    """Records queries, row batches and freshness; scores SLOs; keeps counters and a query log.

    Args:
        clock: returns the current time (aware; naive is taken as UTC).
        resolution: bucket size for every dataset; by default a round step giving
            at least 100 buckets per SLO window (hourly for 7 days).
        log_size: queries the log keeps (the oldest go first).
        max_tenants: distinct tenants with series and counters of their own; later tenants
            count at dataset level only (and under ``OTHER`` in per-tenant counters).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], datetime],
        resolution: timedelta | None = None,
        log_size: int = 10_000,
        max_tenants: int = 10_000,
    ) -> None:
        if resolution is not None and resolution < timedelta(microseconds=1):
            raise ValueError(f"resolution must be a positive timedelta, got {resolution!r}")
        self._clock = clock
        self._resolution = resolution
        self._max_tenants = max_tenants
        self._lock = threading.Lock()
        self._datasets: dict[str, _Dataset] = {}
        self._tenants: dict[str, None] = {}  # tracked tenants, first seen first
        self._log = QueryLog(log_size)

    def _dataset(self, name: str) -> _Dataset:
        found = self._datasets.get(name)
        if found is None:
            found = self._datasets[name] = _Dataset(self._resolution)
        return found

    def _track(self, tenant: str) -> bool:
        if tenant in self._tenants:
            return True
        if len(self._tenants) < self._max_tenants:
            self._tenants[tenant] = None
            return True
        return False

    def set_slo(self, dataset: str, slo: SLO | None) -> None:
        """Declare (or remove) a dataset's SLO.

        Changing its window, latency_ms or freshness restarts the dataset's rolling window
        (the old buckets were cut and counted for another rule); counters and the newest
        value known are kept, and freshness is observed again from now.
        """
        with self._lock:
            now = micros(self._clock())
            ds = self._dataset(dataset)
            old, ds.window = ds.window, Window(slo, self._resolution)
            if not ds.window.same_rules(old):
                for series in (ds.series, *ds.tenants.values()):
                    series.restart(now)

    def slo(self, dataset: str) -> SLO | None:
        """The dataset's SLO, if one was set."""
        with self._lock:
            found = self._datasets.get(dataset)
            return None if found is None else found.window.slo

    def record_query(
        self,
        *,
        datasets: Sequence[str],
        tenant: str | None,
        seconds: float,
        rows: int,
        outcome: Outcome,
        error: str | None = None,
        channel: str = "python",
        subject: str | None = None,
        resource: str | None = None,
        query: Mapping[str, Any] | None = None,
        cache: str = "off",
        data_versions: Mapping[str, int] | None = None,
    ) -> None:
        """Record one finished query; it counts once for each dataset it read.

        ``error`` is a short error kind such as the exception's class name (it labels
        ``query_errors_total``; without it the outcome is used).
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
        at = self._clock()
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        entry = QueryLogEntry(
            at=at,
            channel=channel,
            tenant=tenant,
            subject=subject,
            resource=resource,
            datasets=tuple(datasets),
            query=None if query is None else dict(query),
            ms=seconds * 1000,
            rows=rows,
            outcome=outcome,
            error=error,
            cache=cache,
            data_versions=dict(data_versions or {}),
        )
        slot = bisect_left(DURATION_BOUNDS, seconds)
        with self._lock:
            now = micros(at)
            tracked = tenant is not None and self._track(tenant)
            key = tenant if tenant is None or tracked else OTHER
            for name in dict.fromkeys(datasets):
                ds = self._dataset(name)
                window = ds.window
                first, index = window.first(now), window.index(now)
                fast = outcome == "ok" and seconds <= (window.fast_seconds or -1.0)
                targets = [ds.series]
                if tracked and tenant is not None:
                    targets.append(ds.tenants.setdefault(tenant, Series()))
                for series in targets:
                    bucket = series.bucket(index, first)
                    bucket.queries += 1
                    bucket.no_fault += outcome != "server_error"
                    bucket.ok += outcome == "ok"
                    bucket.fast += fast
                totals = ds.totals
                _add(totals.queries, outcome)
                if outcome != "ok":
                    kind = error or outcome
                    if kind not in totals.errors and len(totals.errors) >= _MAX_KINDS:
                        kind = OTHER
                    _add(totals.errors, kind)
                totals.durations[slot] += 1
                totals.duration_sum += seconds
                totals.rows_served += rows
                _add(totals.tenant_queries, (key, outcome))
                _add(totals.tenant_rows_served, key, rows)
        self._log.append(entry)

    def record_rows(
        self,
        dataset: str,
        *,
        received: Mapping[str | None, int],
        quarantined: Mapping[str | None, int],
        rules: Mapping[str, int],
        rejected: bool = False,
    ) -> None:
        """Record one batch of rows checked against the dataset's contract.

        ``received`` and ``quarantined`` are rows per tenant (``None``: a dataset without
        tenant key); ``rules`` is quarantined rows per rule name. A rejected batch counts in
        the cumulative counters (``batches{rejected}``, rows received and rejected) but not
        in ``defect_free``: nothing of it was stored, and the caller still holds its rows.
        """
        for tenant, count in quarantined.items():
            if not 0 <= count <= received.get(tenant, 0):
                raise ValueError(
                    f"dataset '{dataset}': tenant {tenant!r} has {count} quarantined rows but "
                    f"{received.get(tenant, 0)} received; quarantined rows are a part of those"
                )
        if any(count < 0 for count in (*received.values(), *rules.values())):
            raise ValueError(f"dataset '{dataset}': row counts must not be negative")
        total = sum(received.values())
        with self._lock:
            now = micros(self._clock())
            ds = self._dataset(dataset)
            ds.totals.rows_received += total
            if rejected:
                _add(ds.totals.batches, "rejected")
                ds.totals.rows_rejected += total
                return
            _add(ds.totals.batches, "accepted")
            for rule, count in rules.items():
                _add(ds.totals.quarantined, rule, count)
            first, index = ds.window.first(now), ds.window.index(now)
            if total:
                bucket = ds.series.bucket(index, first)
                bucket.received += total
                bucket.passed += total - sum(quarantined.values())
            for tenant, count in received.items():
                if tenant is not None and count and self._track(tenant):
                    bucket = ds.tenants.setdefault(tenant, Series()).bucket(index, first)
                    bucket.received += count
                    bucket.passed += count - quarantined.get(tenant, 0)

    def record_newest(
        self, dataset: str, newest: datetime | None, *, tenant: str | None = None
    ) -> None:
        """Say which newest time value the dataset (or one tenant of it) holds from now on."""
        with self._lock:
            now = micros(self._clock())
            ds = self._dataset(dataset)
            if tenant is None:
                series = ds.series
            elif self._track(tenant):
                series = ds.tenants.setdefault(tenant, Series())
            else:
                return
            ds.window.close(series, now)
            series.step = (now, None if newest is None else micros(newest))

    def objectives(self, dataset: str, *, tenant: str | None = None) -> tuple[Objective, ...]:
        """Score the dataset's SLO over its window; ``()`` without SLO.

        With ``tenant``, only that tenant's queries and rows count; its freshness is its own
        if ``record_newest(tenant=...)`` was called for it, else the dataset's. A tenant
        beyond ``max_tenants`` has no series of its own: ``()``.
        """
        with self._lock:
            now = micros(self._clock())
            ds = self._datasets.get(dataset)
            slo = None if ds is None else ds.window.slo
            if ds is None or slo is None:
                return ()
            counts = ds.series if tenant is None else ds.tenants.get(tenant)
            if counts is None:
                if tenant not in self._tenants and len(self._tenants) >= self._max_tenants:
                    return ()
                counts = Series()
            fresh = counts if counts.step is not None else ds.series
            total, series = ds.window.tallies(counts, fresh, now)
        return score(slo, total, series)

    def freshness_lag(self, dataset: str) -> float | None:
        """Seconds between now and the dataset's newest time value; ``None`` if unknown."""
        with self._lock:
            now = micros(self._clock())
            ds = self._datasets.get(dataset)
            if ds is None or ds.series.step is None or ds.series.step[1] is None:
                return None
            return (now - ds.series.step[1]) / 1e6

    def newest(self, dataset: str) -> datetime | None:
        """The dataset's newest time value as last recorded; ``None`` if unknown."""
        with self._lock:
            ds = self._datasets.get(dataset)
            if ds is None or ds.series.step is None or ds.series.step[1] is None:
                return None
            return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ds.series.step[1])

    def counters(self) -> Counters:
        """A snapshot of the cumulative counters (never reset: Prometheus counters)."""
        with self._lock:
            return Counters(
                datasets={name: ds.totals.snapshot() for name, ds in self._datasets.items()},
                tenants=tuple(self._tenants),
            )

    def log(
        self, *, since: datetime | None = None, tenant: str | None = None, limit: int | None = None
    ) -> list[QueryLogEntry]:
        """Logged queries, oldest first: at or after ``since``, of ``tenant``, the last ``limit``
        of them."""
        return self._log.entries(since=since, tenant=tenant, limit=limit)

    def log_frame(
        self, *, since: datetime | None = None, tenant: str | None = None, limit: int | None = None
    ) -> pl.DataFrame:
        """:meth:`log` as a typed Polars frame (see :meth:`QueryLog.frame`)."""
        return self._log.frame(since=since, tenant=tenant, limit=limit)

    def export_log(self, target: str | Path | IO[str]) -> int:
        """Write the log as NDJSON to a path or text stream; returns the lines written."""
        return self._log.export(target)

    def subscribe(self, callback: Callable[[QueryLogEntry], None]) -> Callable[[], None]:
        """Call ``callback`` with each logged query; returns a function that unsubscribes.

        Callbacks run in the recording thread after the counts are updated; one that raises
        is logged (``logging``) and ignored, so it never breaks recording.
        """
        return self._log.subscribe(callback)
