"""Counters, the query log and the Prometheus exposition of a Monitor.

The /metrics text is parsed back with prometheus-client's own parser, and every value is
checked against the events the test recorded, worked out by hand.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from prometheus_client.parser import text_string_to_metric_families

from embedkit.trust.metrics import CONTENT_TYPE, DatasetFacts, MetricsCollector, render
from embedkit.trust.monitor import Monitor
from embedkit.trust.querylog import QueryLogEntry
from embedkit.trust.slo import SLO

T0 = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def scrape(collector: MetricsCollector) -> Samples:
    """Render /metrics and parse it back: {(sample name, sorted labels): value}."""
    text = render(collector).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


# --- The scenario scraped below ---------------------------------------------------------------
# (datasets, tenant, seconds, rows, outcome, error)
QUERIES = [
    (["orders"], "a", 0.0005, 10, "ok", None),  # le 0.001
    (["orders"], "b", 0.003, 5, "ok", None),  # le 0.005
    (["orders"], "c", 0.2, 0, "client_error", "QueryError"),  # le 0.25
    (["orders", "products"], "a", 2.0, 0, "server_error", "ExecutionError"),  # le 2.5
    (["orders"], None, 12.0, 7, "ok", None),  # above 10: +Inf only
    (["products"], "b", 0.05, 3, "ok", None),  # exactly on the 0.05 bound: le 0.05
]


def _scenario() -> tuple[FakeClock, Monitor, MetricsCollector]:
    clock = FakeClock()
    mon = Monitor(clock=clock, resolution=timedelta(minutes=1))
    mon.set_slo("orders", SLO(availability=0.9, latency_ms=100, window="10m"))
    mon.set_slo("products", SLO(defect_free=0.99, window="10m"))
    for datasets, tenant, seconds, rows, outcome, error in QUERIES:
        mon.record_query(
            datasets=datasets,
            tenant=tenant,
            seconds=seconds,
            rows=rows,
            outcome=outcome,  # type: ignore[arg-type]
            error=error,
        )
    mon.record_rows(
        "orders", received={"a": 8, "b": 2}, quarantined={"a": 1}, rules={"amount_positive": 1}
    )
    mon.record_rows(
        "orders", received={"a": 4}, quarantined={"a": 4}, rules={"x": 4}, rejected=True
    )
    mon.record_newest("orders", T0 - timedelta(seconds=90))
    clock.now = T0 + timedelta(seconds=30)
    facts = {"orders": DatasetFacts(version=3, held=1, rows=9), "products": DatasetFacts(1, 0)}
    return clock, mon, MetricsCollector(mon, lambda: facts)


def test_counters_and_histogram_match_the_recorded_queries() -> None:
    _, _, collector = _scenario()
    s = scrape(collector)
    assert value(s, "embedkit_queries_total", dataset="orders", outcome="ok") == 3
    assert value(s, "embedkit_queries_total", dataset="orders", outcome="client_error") == 1
    assert value(s, "embedkit_queries_total", dataset="orders", outcome="server_error") == 1
    assert value(s, "embedkit_queries_total", dataset="products", outcome="ok") == 1
    assert value(s, "embedkit_queries_total", dataset="products", outcome="server_error") == 1
    assert value(s, "embedkit_query_errors_total", dataset="orders", kind="QueryError") == 1
    assert value(s, "embedkit_query_errors_total", dataset="orders", kind="ExecutionError") == 1
    assert value(s, "embedkit_rows_served_total", dataset="orders") == 10 + 5 + 0 + 0 + 7
    assert value(s, "embedkit_rows_served_total", dataset="products") == 0 + 3
    # orders durations 0.0005, 0.003, 0.2, 2.0, 12.0: cumulative counts per upper bound
    cumulative = {
        "0.001": 1,
        "0.0025": 1,
        "0.005": 2,
        "0.01": 2,
        "0.025": 2,
        "0.05": 2,
        "0.1": 2,
        "0.25": 3,
        "0.5": 3,
        "1.0": 3,
        "2.5": 4,
        "5.0": 4,
        "10.0": 4,
        "+Inf": 5,
    }
    for le, count in cumulative.items():
        got = value(s, "embedkit_query_duration_seconds_bucket", dataset="orders", le=le)
        assert got == count, le
    assert value(s, "embedkit_query_duration_seconds_count", dataset="orders") == 5
    got_sum = value(s, "embedkit_query_duration_seconds_sum", dataset="orders")
    assert got_sum == pytest.approx(0.0005 + 0.003 + 0.2 + 2.0 + 12.0)
    # products: 2.0 and 0.05 (on the bound, so counted in le="0.05")
    assert value(s, "embedkit_query_duration_seconds_bucket", dataset="products", le="0.025") == 0
    assert value(s, "embedkit_query_duration_seconds_bucket", dataset="products", le="0.05") == 1
    assert value(s, "embedkit_query_duration_seconds_bucket", dataset="products", le="2.5") == 2


def test_row_counters_and_gauges_match_batches_and_facts() -> None:
    _, _, collector = _scenario()
    s = scrape(collector)
    assert value(s, "embedkit_rows_received_total", dataset="orders") == 10 + 4
    assert value(s, "embedkit_rows_rejected_total", dataset="orders") == 4
    assert (
        value(s, "embedkit_rows_quarantined_total", dataset="orders", rule="amount_positive") == 1
    )
    assert value(s, "embedkit_rows_quarantined_total", dataset="orders", rule="x") is None
    assert value(s, "embedkit_batches_total", dataset="orders", outcome="accepted") == 1
    assert value(s, "embedkit_batches_total", dataset="orders", outcome="rejected") == 1
    assert value(s, "embedkit_quarantine_held_rows", dataset="orders") == 1
    assert value(s, "embedkit_data_version", dataset="orders") == 3
    assert value(s, "embedkit_data_version", dataset="products") == 1
    assert value(s, "embedkit_rows_stored", dataset="orders") == 9
    assert value(s, "embedkit_rows_stored", dataset="products") is None
    # newest 09:58:30, now 10:00:30 -> 120 s; products never said its newest value
    assert value(s, "embedkit_freshness_lag_seconds", dataset="orders") == 120
    assert value(s, "embedkit_freshness_lag_seconds", dataset="products") is None


def test_slo_gauges_match_the_window() -> None:
    _, _, collector = _scenario()
    s = scrape(collector)
    o = {"dataset": "orders"}
    # availability: 5 orders queries, 1 server fault -> 0.8; budget 0.1 * 5 = 0.5,
    # spent 1 -> 1 - 1/0.5 = -1
    assert value(s, "embedkit_slo_target_ratio", **o, objective="availability") == 0.9
    assert value(s, "embedkit_slo_attainment_ratio", **o, objective="availability") == 0.8
    budget = value(s, "embedkit_slo_error_budget_remaining_ratio", **o, objective="availability")
    assert budget == pytest.approx(-1.0)
    # latency: 3 ok queries, 0.0005 and 0.003 within 100 ms, 12.0 not -> 2/3;
    # budget 0.05 * 3 = 0.15, spent 1 -> 1 - 1/0.15 = -17/3
    assert value(s, "embedkit_slo_target_ratio", **o, objective="latency") == 0.95
    attained = value(s, "embedkit_slo_attainment_ratio", **o, objective="latency")
    assert attained == pytest.approx(2 / 3)
    budget = value(s, "embedkit_slo_error_budget_remaining_ratio", **o, objective="latency")
    assert budget == pytest.approx(-17 / 3)
    # products: defect_free declared but no stored rows -> target and a full budget only
    p = {"dataset": "products", "objective": "defect_free"}
    assert value(s, "embedkit_slo_target_ratio", **p) == 0.99
    assert value(s, "embedkit_slo_attainment_ratio", **p) is None
    assert value(s, "embedkit_slo_error_budget_remaining_ratio", **p) == 1.0
    assert value(s, "embedkit_slo_target_ratio", **o, objective="freshness") is None


def test_no_tenant_label_by_default() -> None:
    _, _, collector = _scenario()
    s = scrape(collector)
    assert not any("tenant" in dict(labels) for _, labels in s)


def test_tenant_labels_for_the_first_tenants_and_other_for_the_rest() -> None:
    _, mon, _ = _scenario()
    collector = MetricsCollector(mon, dict, tenant_labels=1)
    s = scrape(collector)
    q = "embedkit_queries_total"
    # first tenant seen is "a"; b and c go under _other; the query without tenant under ""
    assert value(s, q, dataset="orders", outcome="ok", tenant="a") == 1
    assert value(s, q, dataset="orders", outcome="server_error", tenant="a") == 1
    assert value(s, q, dataset="orders", outcome="ok", tenant="_other") == 1
    assert value(s, q, dataset="orders", outcome="client_error", tenant="_other") == 1
    assert value(s, q, dataset="orders", outcome="ok", tenant="") == 1
    assert value(s, q, dataset="orders", outcome="ok", tenant="b") is None
    r = "embedkit_rows_served_total"
    assert value(s, r, dataset="orders", tenant="a") == 10
    assert value(s, r, dataset="orders", tenant="_other") == 5 + 0
    assert value(s, r, dataset="orders", tenant="") == 7
    three = scrape(MetricsCollector(mon, dict, tenant_labels=3))
    assert value(three, q, dataset="orders", outcome="client_error", tenant="c") == 1
    assert value(three, q, dataset="orders", outcome="ok", tenant="_other") is None


def test_label_values_are_escaped_and_render_uses_a_private_registry() -> None:
    from prometheus_client import REGISTRY

    mon = Monitor(clock=FakeClock())
    odd = 'we"ird\\name\nnext'
    mon.record_query(datasets=[odd], tenant=None, seconds=0.1, rows=1, outcome="ok")
    collector = MetricsCollector(mon, dict)
    s = scrape(collector)
    assert value(s, "embedkit_queries_total", dataset=odd, outcome="ok") == 1
    assert CONTENT_TYPE.startswith("text/plain")
    assert REGISTRY.get_sample_value("embedkit_queries_total", {"dataset": odd}) is None
    with pytest.raises(ValueError, match="tenant_labels"):
        MetricsCollector(mon, dict, tenant_labels=-1)


def test_counters_never_go_down_when_the_window_moves_on() -> None:
    clock, _, collector = _scenario()
    clock.now = T0 + timedelta(hours=5)
    s = scrape(collector)
    assert value(s, "embedkit_queries_total", dataset="orders", outcome="ok") == 3
    assert (
        value(s, "embedkit_slo_attainment_ratio", dataset="orders", objective="availability")
        is None
    )


# --- Query log --------------------------------------------------------------------------------


def _logged(log_size: int = 10) -> tuple[FakeClock, Monitor]:
    clock = FakeClock()
    mon = Monitor(clock=clock, log_size=log_size)
    for minute, tenant in enumerate(["a", "b", "a", "c", "a"]):
        clock.now = T0 + timedelta(minutes=minute)
        mon.record_query(
            datasets=["orders"],
            tenant=tenant,
            seconds=0.25,
            rows=minute,
            outcome="ok",
            channel="http",
            subject="user-1",
            resource="dash/sales",
            query={"measures": ["orders.revenue"], "since": T0},
            cache="miss",
            data_versions={"orders": 4},
        )
    return clock, mon


def test_query_log_is_a_ring_buffer_of_log_size() -> None:
    _, mon = _logged(log_size=3)
    assert [e.rows for e in mon.log()] == [2, 3, 4]


def test_query_log_filters_by_since_tenant_and_limit() -> None:
    _, mon = _logged()
    assert [e.rows for e in mon.log(tenant="a")] == [0, 2, 4]
    assert [e.rows for e in mon.log(since=T0 + timedelta(minutes=3))] == [3, 4]
    assert [e.rows for e in mon.log(limit=2)] == [3, 4]
    assert [e.rows for e in mon.log(tenant="a", limit=2)] == [2, 4]
    assert mon.log(limit=0) == []


def test_query_log_frame_has_typed_columns() -> None:
    _, mon = _logged()
    frame = mon.log_frame(tenant="a")
    assert frame.height == 3
    assert frame.schema["at"] == pl.Datetime("us", "UTC")
    assert frame.schema["ms"] == pl.Float64
    assert frame.schema["rows"] == pl.Int64
    assert frame.schema["datasets"] == pl.List(pl.String)
    assert frame.schema["outcome"] == pl.Enum(["ok", "client_error", "server_error"])
    assert frame["at"].to_list() == [T0, T0 + timedelta(minutes=2), T0 + timedelta(minutes=4)]
    assert frame["ms"].to_list() == [250.0, 250.0, 250.0]
    assert frame["data_versions"][0].to_list() == [{"dataset": "orders", "version": 4}]
    assert json.loads(frame["query"][0]) == {
        "measures": ["orders.revenue"],
        "since": "2024-01-01T10:00:00+00:00",
    }
    assert Monitor(clock=FakeClock()).log_frame().schema == frame.schema


def test_export_log_writes_ndjson_that_reads_back(tmp_path: Path) -> None:
    _, mon = _logged()
    path = tmp_path / "log.ndjson"
    assert mon.export_log(path) == 5
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5
    assert json.loads(lines[1]) == {
        "at": "2024-01-01T10:01:00+00:00",
        "channel": "http",
        "tenant": "b",
        "subject": "user-1",
        "resource": "dash/sales",
        "datasets": ["orders"],
        "query": {"measures": ["orders.revenue"], "since": "2024-01-01T10:00:00+00:00"},
        "ms": 250.0,
        "rows": 1,
        "outcome": "ok",
        "error": None,
        "cache": "miss",
        "data_versions": {"orders": 4},
    }
    stream = io.StringIO()
    assert mon.export_log(stream) == 5
    assert stream.getvalue().splitlines() == lines
    assert mon.export_log(str(path)) == 5  # a path given as text


def test_subscribers_see_each_query_until_they_unsubscribe() -> None:
    clock, mon = _logged()
    seen: list[QueryLogEntry] = []
    unsubscribe = mon.subscribe(seen.append)
    mon.record_query(datasets=["orders"], tenant="z", seconds=0.1, rows=9, outcome="ok")
    unsubscribe()
    unsubscribe()  # twice is harmless
    mon.record_query(datasets=["orders"], tenant="z", seconds=0.1, rows=8, outcome="ok")
    assert [(e.tenant, e.rows) for e in seen] == [("z", 9)]
    assert seen[0].at == clock.now


def test_a_raising_subscriber_does_not_break_recording(caplog: pytest.LogCaptureFixture) -> None:
    mon = Monitor(clock=FakeClock())
    seen: list[int] = []

    def broken(entry: QueryLogEntry) -> None:
        raise RuntimeError("subscriber bug")

    mon.subscribe(broken)
    mon.subscribe(lambda entry: seen.append(entry.rows))
    with caplog.at_level(logging.ERROR, logger="embedkit.trust"):
        mon.record_query(datasets=["orders"], tenant="a", seconds=0.1, rows=4, outcome="ok")
    assert seen == [4]
    assert mon.counters().datasets["orders"].queries == {"ok": 1}
    assert any("subscriber" in r.getMessage() for r in caplog.records)
    assert any(r.exc_info and "subscriber bug" in str(r.exc_info[1]) for r in caplog.records)


def test_record_query_refuses_an_unknown_outcome() -> None:
    mon = Monitor(clock=FakeClock())
    with pytest.raises(ValueError, match="outcome must be one of ok, client_error, server_error"):
        mon.record_query(datasets=["o"], tenant=None, seconds=0.1, rows=0, outcome="fine")  # type: ignore[arg-type]


# --- Thread safety ----------------------------------------------------------------------------


def test_many_threads_recording_lose_no_event() -> None:
    """Totals after concurrent recording equal the totals of the plan, counted separately."""
    clock = FakeClock()
    mon = Monitor(clock=clock, log_size=100_000)
    mon.set_slo("orders", SLO(availability=0.5, latency_ms=100, window="1h"))
    outcomes = ["ok", "ok", "client_error", "server_error"]
    plans = [
        [(f"t{(w + i) % 5}", outcomes[(w * i) % 4], (i % 7) * 0.03, i % 11) for i in range(400)]
        for w in range(8)
    ]

    def work(plan: list[tuple[str, str, float, int]]) -> None:
        for tenant, outcome, seconds, rows in plan:
            mon.record_query(
                datasets=["orders"],
                tenant=tenant,
                seconds=seconds,
                rows=rows,
                outcome=outcome,  # type: ignore[arg-type]
            )
            mon.record_rows("orders", received={tenant: 2}, quarantined={tenant: 1}, rules={})

    threads = [threading.Thread(target=work, args=(plan,)) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = [event for plan in plans for event in plan]
    counts = mon.counters().datasets["orders"]
    assert counts.queries == dict(Counter(outcome for _, outcome, _, _ in events))
    assert counts.rows_served == sum(rows for *_, rows in events)
    assert sum(counts.durations) == len(events) == 3200
    assert counts.rows_received == 2 * len(events)
    assert len(mon.log()) == len(events)
    got = {o.name: o for o in mon.objectives("orders")}
    assert got["availability"].total == len(events)
    assert got["availability"].good == sum(o != "server_error" for _, o, _, _ in events)
    fast = sum(o == "ok" and s <= 0.1 for _, o, s, _ in events)
    assert got["latency"].good == fast
    for tenant in ("t0", "t3"):
        mine = [e for e in events if e[0] == tenant]
        view = {o.name: o for o in mon.objectives("orders", tenant=tenant)}
        assert view["availability"].total == len(mine)
