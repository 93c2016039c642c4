"""Prometheus metrics over a :class:`~embedkit.trust.monitor.Monitor`.

:class:`MetricsCollector` is a prometheus-client custom collector: it reads the monitor
(and the facts only the store knows: data version, rows held in quarantine) at scrape
time, so recording never touches prometheus-client. :func:`render` gives the text
exposition for a ``/metrics`` route, from a private registry (never the global one).

Families, all prefixed ``embedkit_``::

    queries_total{dataset,outcome}                  counter  (+tenant, see below)
    query_errors_total{dataset,kind}                counter  kind: the error's kind
    query_duration_seconds{dataset}                 histogram, every outcome
    rows_served_total{dataset}                      counter  (+tenant, see below)
    rows_received_total{dataset}                    counter  rejected batches included
    rows_rejected_total{dataset}                    counter  rows of rejected batches
    rows_quarantined_total{dataset,rule}            counter  accepted batches
    batches_total{dataset,outcome}                  counter  accepted | rejected
    quarantine_held_rows{dataset}                   gauge
    data_version{dataset}                           gauge
    rows_stored{dataset}                            gauge    when known
    freshness_lag_seconds{dataset}                  gauge    when known
    slo_target_ratio{dataset,objective}             gauge
    slo_attainment_ratio{dataset,objective}         gauge    when the window has events
    slo_error_budget_remaining_ratio{dataset,objective}  gauge

Tenant labels are off by default, so a scrape has a bounded number of series whatever the
number of tenants. With ``tenant_labels=N``, ``queries_total`` and ``rows_served_total``
get a ``tenant`` label for the first N tenants the monitor saw; every other tenant is
summed under ``tenant="_other"`` and queries without a tenant under ``tenant=""``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from embedkit.trust.monitor import DURATION_BOUNDS, OTHER, Counters, DatasetCounters, Monitor

__all__ = ["CONTENT_TYPE", "DatasetFacts", "MetricsCollector", "render"]

#: The ``Content-Type`` of :func:`render`'s output.
CONTENT_TYPE: str = CONTENT_TYPE_LATEST


@dataclass(frozen=True)
class DatasetFacts:
    """What the store knows of a dataset right now."""

    version: int
    held: int  # rows in quarantine now
    rows: int | None = None  # rows stored now, when cheap to know


class MetricsCollector(Collector):
    """A prometheus-client collector reading ``monitor`` and ``facts()`` at each scrape.

    Args:
        monitor: the source of counters, freshness and SLO scores.
        facts: returns :class:`DatasetFacts` per dataset name.
        tenant_labels: how many tenants (first seen) get their own ``tenant`` label on
            ``queries_total`` and ``rows_served_total``; 0 (default) adds no tenant label.
    """

    def __init__(
        self,
        monitor: Monitor,
        facts: Callable[[], Mapping[str, DatasetFacts]],
        *,
        tenant_labels: int = 0,
    ) -> None:
        if tenant_labels < 0:
            raise ValueError(f"tenant_labels must be 0 or more, got {tenant_labels!r}")
        self._monitor = monitor
        self._facts = facts
        self._tenant_labels = tenant_labels

    def collect(self) -> Iterator[Metric]:
        """Yield every family, read fresh from the monitor and the facts."""
        counters = self._monitor.counters()
        facts = dict(self._facts())
        names = sorted(set(counters.datasets) | set(facts))
        yield from self._traffic(counters)
        yield from self._rows(counters.datasets)
        yield from self._state(names, facts)
        yield from self._slos(names)

    def _tenant(self, counters: Counters) -> Callable[[str | None], str]:
        labelled = set(counters.tenants[: self._tenant_labels])
        return lambda t: "" if t is None else t if t in labelled else OTHER

    def _traffic(self, counters: Counters) -> Iterator[Metric]:
        by_tenant = self._tenant_labels > 0
        labels = ["dataset", "outcome", "tenant"] if by_tenant else ["dataset", "outcome"]
        queries = CounterMetricFamily(
            "embedkit_queries", "Queries answered, by outcome.", labels=labels
        )
        served = CounterMetricFamily(
            "embedkit_rows_served",
            "Rows returned by queries.",
            labels=["dataset", "tenant"] if by_tenant else ["dataset"],
        )
        errors = CounterMetricFamily(
            "embedkit_query_errors", "Failed queries, by error kind.", labels=["dataset", "kind"]
        )
        durations = HistogramMetricFamily(
            "embedkit_query_duration_seconds", "Query duration in seconds.", labels=["dataset"]
        )
        label = self._tenant(counters)
        for name, c in sorted(counters.datasets.items()):
            if by_tenant:
                per_query: dict[tuple[str, str], int] = {}
                per_rows: dict[str, int] = {}
                for (tenant, outcome), count in c.tenant_queries.items():
                    key = (outcome, label(tenant))
                    per_query[key] = per_query.get(key, 0) + count
                for tenant, rows in c.tenant_rows_served.items():
                    per_rows[label(tenant)] = per_rows.get(label(tenant), 0) + rows
                for (outcome, tenant), count in sorted(per_query.items()):
                    queries.add_metric([name, outcome, tenant], count)
                for tenant, rows in sorted(per_rows.items()):
                    served.add_metric([name, tenant], rows)
            else:
                for outcome, count in sorted(c.queries.items()):
                    queries.add_metric([name, outcome], count)
                served.add_metric([name], c.rows_served)
            for kind, count in sorted(c.errors.items()):
                errors.add_metric([name, kind], count)
            durations.add_metric([name], _buckets(c), c.duration_sum)
        yield from (queries, errors, durations, served)

    def _rows(self, datasets: Mapping[str, DatasetCounters]) -> Iterator[Metric]:
        received = CounterMetricFamily(
            "embedkit_rows_received",
            "Rows received, rejected batches included.",
            labels=["dataset"],
        )
        rejected = CounterMetricFamily(
            "embedkit_rows_rejected", "Rows of batches rejected whole.", labels=["dataset"]
        )
        quarantined = CounterMetricFamily(
            "embedkit_rows_quarantined",
            "Rows put in quarantine, by contract rule.",
            labels=["dataset", "rule"],
        )
        batches = CounterMetricFamily(
            "embedkit_batches", "Row batches, accepted or rejected.", labels=["dataset", "outcome"]
        )
        for name, c in sorted(datasets.items()):
            received.add_metric([name], c.rows_received)
            rejected.add_metric([name], c.rows_rejected)
            for rule, count in sorted(c.quarantined.items()):
                quarantined.add_metric([name, rule], count)
            for outcome, count in sorted(c.batches.items()):
                batches.add_metric([name, outcome], count)
        yield from (received, rejected, quarantined, batches)

    def _state(self, names: list[str], facts: Mapping[str, DatasetFacts]) -> Iterator[Metric]:
        held = GaugeMetricFamily(
            "embedkit_quarantine_held_rows", "Rows in quarantine now.", labels=["dataset"]
        )
        version = GaugeMetricFamily(
            "embedkit_data_version", "Data version of the dataset.", labels=["dataset"]
        )
        stored = GaugeMetricFamily("embedkit_rows_stored", "Rows stored now.", labels=["dataset"])
        lag = GaugeMetricFamily(
            "embedkit_freshness_lag_seconds",
            "Seconds between now and the newest time value of the dataset.",
            labels=["dataset"],
        )
        for name in names:
            fact = facts.get(name)
            if fact is not None:
                held.add_metric([name], fact.held)
                version.add_metric([name], fact.version)
                if fact.rows is not None:
                    stored.add_metric([name], fact.rows)
            seconds = self._monitor.freshness_lag(name)
            if seconds is not None:
                lag.add_metric([name], seconds)
        yield from (held, version, stored, lag)

    def _slos(self, names: list[str]) -> Iterator[Metric]:
        labels = ["dataset", "objective"]
        target = GaugeMetricFamily(
            "embedkit_slo_target_ratio", "Target share of good events.", labels=labels
        )
        attainment = GaugeMetricFamily(
            "embedkit_slo_attainment_ratio",
            "Share of good events over the SLO window (absent without events).",
            labels=labels,
        )
        budget = GaugeMetricFamily(
            "embedkit_slo_error_budget_remaining_ratio",
            "Share of the error budget left over the SLO window (negative when overspent).",
            labels=labels,
        )
        for name in names:
            for objective in self._monitor.objectives(name):
                key = [name, objective.name]
                target.add_metric(key, objective.target)
                if objective.attainment is not None:
                    attainment.add_metric(key, objective.attainment)
                budget.add_metric(key, objective.budget_left)
        yield from (target, attainment, budget)


def _buckets(counters: DatasetCounters) -> list[tuple[str, float]]:
    """Cumulative (upper bound, count) pairs, ending with +Inf."""
    result, running = [], 0
    bounds = [repr(float(bound)) for bound in DURATION_BOUNDS] + ["+Inf"]
    for bound, count in zip(bounds, counters.durations, strict=True):
        running += count
        result.append((bound, float(running)))
    return result


def render(collector: MetricsCollector) -> bytes:
    """The Prometheus text exposition of ``collector`` (serve it with :data:`CONTENT_TYPE`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)
