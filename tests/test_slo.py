"""SLOs: validation, the objective math, and objectives scored by the Monitor's rolling window.

Every expected number is worked out by hand in the test, with the arithmetic in a comment.
The windows use 1-minute buckets and a 10-minute window, so the edge rule ("a bucket counts
when its start is at or after now - window") can be checked minute by minute.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from embedkit.trust.monitor import Monitor
from embedkit.trust.slo import SLO, Objective

T0 = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def at(self, text: str) -> None:
        """Set the time to ``at(text)``."""
        self.now = at(text)


def at(text: str) -> datetime:
    """10:MM:SS on T0's day: ``at("03:30")`` is 10:03:30, ``at("-1:00")`` 09:59:00."""
    minutes, seconds = text.split(":")
    return T0 + timedelta(minutes=int(minutes), seconds=int(seconds))


def by_name(objectives: tuple[Objective, ...]) -> dict[str, Objective]:
    return {o.name: o for o in objectives}


def monitor(clock: FakeClock, **kwargs: int) -> Monitor:
    return Monitor(clock=clock, resolution=MINUTE, **kwargs)


# --- SLO declaration -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("availability", 99, "availability must be a share between 0 and 1 such as 0.99, got 99"),
        ("availability", 1.0, "availability must be a share between 0 and 1"),
        ("availability", 0, "availability must be a share between 0 and 1"),
        ("error_rate", 1.5, "error_rate must be a share between 0 and 1 such as 0.01"),
        ("defect_free", -0.1, "defect_free must be a share between 0 and 1 such as 0.95"),
        ("latency_target", 95, "latency_target must be a share between 0 and 1"),
        ("freshness_target", 1, "freshness_target must be a share between 0 and 1"),
        ("availability", float("nan"), "availability must be a share"),
        ("latency_ms", 0, "latency_ms must be a positive number of milliseconds such as 250"),
        ("latency_ms", -5.0, "latency_ms must be a positive number of milliseconds"),
        ("freshness", timedelta(0), "freshness must be a positive duration such as '15m'"),
        ("freshness", "soon", "freshness must be a positive duration such as '15m', '2h', '7d'"),
        ("freshness", "-5m", "freshness must be a positive duration"),
        ("window", -60, "window must be a positive duration"),
        ("window", "0d", "window must be a positive duration"),
    ],
)
def test_slo_refuses_bad_values_with_a_message_that_says_what_to_write(
    field: str, value: object, words: str
) -> None:
    with pytest.raises(ValueError) as caught:
        SLO(**{field: value})  # type: ignore[arg-type]
    assert words in str(caught.value)


@pytest.mark.parametrize(
    "field", ["availability", "error_rate", "defect_free", "latency_ms", "freshness", "window"]
)
def test_slo_refuses_bools_and_non_numbers(field: str) -> None:
    with pytest.raises(TypeError, match=f"{field} must be .* got True \\(bool\\)"):
        SLO(**{field: True})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=field):
        SLO(**{field: [1]})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("1w", timedelta(days=7)),
        (" 1.5h ", timedelta(minutes=90)),
        (90, timedelta(seconds=90)),
        (0.5, timedelta(milliseconds=500)),
        (timedelta(hours=3), timedelta(hours=3)),
    ],
)
def test_slo_reads_durations_as_strings_seconds_or_timedeltas(
    text: object, expected: timedelta
) -> None:
    slo = SLO(freshness=text, window=text)  # type: ignore[arg-type]
    assert slo.freshness == expected
    assert slo.window == expected


def test_slo_defaults_measure_nothing_over_seven_days() -> None:
    slo = SLO()
    assert slo.objectives() == ()
    assert slo.window == timedelta(days=7)


def test_slo_from_mapping_reads_yaml_keys() -> None:
    slo = SLO.from_mapping(
        {"availability": 0.99, "latency_p95_ms": 300, "freshness": "15m", "window": "2d"},
        "model.yml: datasets[0].slo",
    )
    assert slo == SLO(
        availability=0.99,
        latency_ms=300.0,
        latency_target=0.95,
        freshness=timedelta(minutes=15),
        window=timedelta(days=2),
    )
    custom = SLO.from_mapping({"latency_ms": 200, "latency_target": 0.9}, "here")
    assert (custom.latency_ms, custom.latency_target) == (200.0, 0.9)


def test_slo_from_mapping_names_unknown_keys_and_lists_valid_ones() -> None:
    with pytest.raises(ValueError) as caught:
        SLO.from_mapping({"availabilty": 0.99, "uptime": 1}, "model.yml: datasets[0].slo")
    text = str(caught.value)
    assert text.startswith("model.yml: datasets[0].slo: unknown SLO keys 'availabilty', 'uptime'")
    assert "valid keys are: availability, error_rate, latency_p95_ms, latency_ms" in text


def test_slo_from_mapping_prefixes_value_errors_with_where() -> None:
    with pytest.raises(ValueError, match=r"^orders\.slo: availability must be a share"):
        SLO.from_mapping({"availability": 99}, "orders.slo")
    with pytest.raises(ValueError, match="either latency_p95_ms, or latency_ms"):
        SLO.from_mapping({"latency_p95_ms": 300, "latency_ms": 200}, "orders.slo")
    with pytest.raises(TypeError, match=r"orders\.slo: slo must be a mapping"):
        SLO.from_mapping([("availability", 0.99)], "orders.slo")  # type: ignore[arg-type]


def test_objective_descriptions_read_as_sentences() -> None:
    slo = SLO(
        availability=0.99,
        error_rate=0.01,
        latency_ms=300,
        freshness="15m",
        defect_free=0.95,
    )
    clock = FakeClock()
    mon = Monitor(clock=clock)
    mon.set_slo("orders", slo)
    words = {o.name: o.description for o in mon.objectives("orders")}
    assert words == {
        "availability": "99% of queries answered without a server fault over 7 days",
        "error_rate": "99% of queries answered, at most 1% failing over 7 days",
        "latency": "95% of successful queries answered within 300 ms over 7 days",
        "freshness": "data at most 15 minutes old during 99% of the time over 7 days",
        "defect_free": "95% of received rows pass the contract over 7 days",
    }


# --- Objective math -----------------------------------------------------------------------


def test_objective_budget_exactly_spent_is_zero_left_and_still_met() -> None:
    # target 0.99 of 1000 events: budget (1 - 0.99) * 1000 = 10 bad; 10 seen -> 0 left
    o = Objective(name="availability", target=0.99, good=990, total=1000, description="")
    assert o.attainment == pytest.approx(0.99)
    assert o.met
    assert o.budget == pytest.approx(10)
    assert o.spent == 10
    assert o.budget_left == pytest.approx(0.0)


def test_objective_overspent_budget_goes_negative() -> None:
    # budget 0.1 * 50 = 5 bad; 15 bad seen -> 1 - 15/5 = -2 (three budgets' worth)
    o = Objective(name="defect_free", target=0.9, good=35, total=50, description="")
    assert not o.met
    assert o.budget_left == pytest.approx(-2.0)


def test_objective_without_events_is_met_with_the_whole_budget_left() -> None:
    o = Objective(name="latency", target=0.95, good=0, total=0, description="")
    assert (o.attainment, o.met, o.budget, o.spent, o.budget_left) == (None, True, 0, 0, 1.0)
    with pytest.raises(ValueError, match="good must lie between 0 and total"):
        Objective(name="latency", target=0.95, good=3, total=2, description="")


# --- Query objectives over the rolling window ---------------------------------------------

QUERY_SLO = SLO(availability=0.9, error_rate=0.3, latency_ms=250, latency_target=0.75, window="10m")
# (time 10:MM:SS, tenant, seconds, outcome)
QUERIES = [
    ("00:10", "a", 0.1, "ok"),  # fast
    ("00:20", "a", 0.25, "ok"),  # exactly at the threshold: fast
    ("02:00", "b", 0.05, "server_error"),
    ("02:30", "b", 0.4, "ok"),  # slow
    ("05:00", "a", 0.01, "client_error"),
    ("05:59", "b", 0.2, "ok"),  # fast
    ("09:00", "a", 0.3, "ok"),  # slow
]


def _queries_recorded() -> tuple[FakeClock, Monitor]:
    clock = FakeClock()
    mon = monitor(clock)
    mon.set_slo("orders", QUERY_SLO)
    for when, tenant, seconds, outcome in QUERIES:
        clock.at(when)
        mon.record_query(
            datasets=["orders"], tenant=tenant, seconds=seconds, rows=1, outcome=outcome
        )
    return clock, mon


def test_query_objectives_over_the_whole_window() -> None:
    clock, mon = _queries_recorded()
    clock.at("09:30")  # now - 10 min = 09:59:30: the first bucket in is 10:00, so all 7 count
    got = by_name(mon.objectives("orders"))
    # availability: 7 queries, 1 server fault -> 6/7; budget 0.1 * 7 = 0.7; 1 - 1/0.7 = -3/7
    assert (got["availability"].good, got["availability"].total) == (6, 7)
    assert got["availability"].budget_left == pytest.approx(-3 / 7)
    assert not got["availability"].met
    # error_rate: 5 ok of 7 = 0.714 >= 0.7; budget 0.3 * 7 = 2.1, 2 failed -> 1 - 2/2.1 = 1/21
    assert (got["error_rate"].good, got["error_rate"].total) == (5, 7)
    assert got["error_rate"].target == pytest.approx(0.7)
    assert got["error_rate"].budget_left == pytest.approx(1 / 21)
    assert got["error_rate"].met
    # latency: of 5 ok, 3 within 250 ms (0.1, 0.25, 0.2) -> 0.6; budget 0.25 * 5 = 1.25,
    # 2 slow -> 1 - 2/1.25 = -0.6
    assert (got["latency"].good, got["latency"].total) == (3, 5)
    assert got["latency"].attainment == pytest.approx(0.6)
    assert got["latency"].budget_left == pytest.approx(-0.6)
    # series: one point per bucket 10:00 .. 10:09
    series = got["availability"].series
    assert [start for start, _ in series] == [T0 + i * MINUTE for i in range(10)]
    # 10:00 two ok; 10:02 one fault of two -> 0.5; 10:05 two, no fault; 10:09 one ok
    expected = [1.0, None, 0.5, None, None, 1.0, None, None, None, 1.0]
    assert [share for _, share in series] == expected


def test_window_edge_keeps_a_bucket_starting_exactly_at_now_minus_window() -> None:
    clock, mon = _queries_recorded()
    clock.at("10:00")  # now - 10 min = 10:00:00, and bucket 10:00 starts there: still in
    got = by_name(mon.objectives("orders"))
    assert got["availability"].total == 7
    assert len(got["availability"].series) == 11  # 10:00 .. 10:10


def test_window_edge_drops_the_whole_bucket_once_its_start_is_older_than_the_window() -> None:
    clock, mon = _queries_recorded()
    clock.at("10:01")  # now - 10 min = 10:00:01 > bucket start 10:00: both 10:00 queries go
    got = by_name(mon.objectives("orders"))
    # left: 02:00 fault, 02:30 ok slow, 05:00 client error, 05:59 ok fast, 09:00 ok slow
    assert (got["availability"].good, got["availability"].total) == (4, 5)
    assert (got["error_rate"].good, got["error_rate"].total) == (3, 5)
    assert (got["latency"].good, got["latency"].total) == (1, 3)
    clock.at("12:30")  # now - 10 min = 10:02:30: first bucket 10:03, the 10:02 pair goes too
    got = by_name(mon.objectives("orders"))
    # left: 05:00 client error, 05:59 ok fast, 09:00 ok slow
    assert (got["availability"].good, got["availability"].total) == (3, 3)
    assert got["availability"].budget_left == 1.0
    assert (got["error_rate"].good, got["error_rate"].total) == (2, 3)
    assert (got["latency"].good, got["latency"].total) == (1, 2)
    assert got["availability"].series[0][0] == at("03:00")
    clock.at("25:00")  # nothing left: no events, objectives met, whole budget
    got = by_name(mon.objectives("orders"))
    assert all(o.total == 0 and o.met and o.budget_left == 1.0 for o in got.values())


def test_tenant_objectives_count_only_that_tenants_queries() -> None:
    clock, mon = _queries_recorded()
    clock.at("09:30")
    a = by_name(mon.objectives("orders", tenant="a"))
    b = by_name(mon.objectives("orders", tenant="b"))
    # a: 00:10 ok fast, 00:20 ok fast, 05:00 client error, 09:00 ok slow
    assert (a["availability"].good, a["availability"].total) == (4, 4)
    assert (a["error_rate"].good, a["error_rate"].total) == (3, 4)
    assert (a["latency"].good, a["latency"].total) == (2, 3)
    # b: 02:00 server error, 02:30 ok slow, 05:59 ok fast
    assert (b["availability"].good, b["availability"].total) == (2, 3)
    assert (b["error_rate"].good, b["error_rate"].total) == (2, 3)
    assert (b["latency"].good, b["latency"].total) == (1, 2)


def test_tenants_beyond_max_tenants_count_only_at_dataset_level() -> None:
    clock = FakeClock()
    mon = monitor(clock, max_tenants=2)
    mon.set_slo("orders", SLO(availability=0.9, window="10m"))
    for tenant, outcome in [("a", "ok"), ("b", "ok"), ("c", "server_error"), ("c", "ok")]:
        mon.record_query(datasets=["orders"], tenant=tenant, seconds=0.1, rows=1, outcome=outcome)
    assert by_name(mon.objectives("orders"))["availability"].total == 4
    assert by_name(mon.objectives("orders", tenant="a"))["availability"].total == 1
    assert mon.objectives("orders", tenant="c") == ()
    assert mon.counters().tenants == ("a", "b")


def test_a_query_over_several_datasets_counts_for_each() -> None:
    clock = FakeClock()
    mon = monitor(clock)
    mon.set_slo("orders", SLO(availability=0.9, window="10m"))
    mon.set_slo("products", SLO(availability=0.9, window="10m"))
    mon.record_query(
        datasets=["orders", "products"], tenant="a", seconds=0.1, rows=3, outcome="server_error"
    )
    for name in ("orders", "products"):
        assert by_name(mon.objectives(name))["availability"].spent == 1
    assert len(mon.log()) == 1
    assert mon.objectives("unknown") == ()


# --- Freshness: a step function -------------------------------------------------------------


def _freshness_recorded() -> tuple[FakeClock, Monitor]:
    clock = FakeClock()
    mon = monitor(clock)
    mon.set_slo("readings", SLO(freshness="2m", freshness_target=0.9, window="10m"))
    clock.at("00:00")
    mon.record_newest("readings", at("-1:00"))  # newest 09:59 -> fresh until 10:01
    clock.at("03:00")
    mon.record_newest("readings", at("02:30"))  # stale 10:01-10:03; fresh until 10:04:30
    clock.at("04:00")
    mon.record_newest("readings", None)  # emptied: stale from 10:04
    clock.at("05:00")
    mon.record_newest("readings", at("05:00"))  # fresh until 10:07
    return clock, mon


def test_freshness_counts_fresh_seconds_of_the_step_function() -> None:
    clock, mon = _freshness_recorded()
    clock.at("06:00")
    o = by_name(mon.objectives("readings"))["freshness"]
    # observed 10:00 -> 10:06 = 360 s; fresh [00,01) + [03,04) + [05,06) = 3 * 60 = 180 s
    assert (o.good, o.total) == (180, 360)
    # budget 0.1 * 360 = 36 s; spent 180 s -> 1 - 180/36 = -4
    assert o.budget_left == pytest.approx(-4.0)
    clock.at("08:00")
    o = by_name(mon.objectives("readings"))["freshness"]
    # the open step is fresh until 10:07: +60 s fresh; observed 480 s
    assert (o.good, o.total) == (240, 480)
    # buckets 09:58 .. 10:08 (10:08 - 10 min = 09:58): nothing observed before 10:00 nor yet
    # in the 10:08 bucket (None); then minute by minute fresh, stale, stale, fresh, stale...
    assert [share for _, share in o.series] == [
        *(None, None),
        *(1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0),
        None,
    ]


def test_freshness_window_start_cuts_a_stale_period() -> None:
    clock, mon = _freshness_recorded()
    clock.at("11:30")  # now - 10 min = 10:01:30 -> window starts at 10:02, inside the 01-03 gap
    o = by_name(mon.objectives("readings"))["freshness"]
    # observed 10:02 -> 10:11:30 = 570 s; fresh [03,04) + [05,07) = 180 s;
    # stale: [02,03) 60 + [04,05) 60 + [07,11:30) 270 = 390 = 570 - 180
    assert (o.good, o.total) == (180, 570)
    assert o.attainment == pytest.approx(180 / 570)
    assert o.series[0] == (at("02:00"), 0.0)
    assert o.series[-1] == (at("11:00"), 0.0)
    assert mon.freshness_lag("readings") == 6 * 60 + 30  # 10:11:30 - 10:05:00


def test_freshness_before_the_first_observation_counts_for_nothing() -> None:
    clock = FakeClock()
    mon = monitor(clock)
    mon.set_slo("readings", SLO(freshness="1m", window="10m"))
    clock.at("03:00")
    assert by_name(mon.objectives("readings"))["freshness"].total == 0
    assert mon.freshness_lag("readings") is None
    clock.at("03:30")
    mon.record_newest("readings", at("03:00"))  # fresh until 10:04
    clock.at("05:00")
    o = by_name(mon.objectives("readings"))["freshness"]
    # observed 10:03:30 -> 10:05 = 90 s, fresh 10:03:30 -> 10:04 = 30 s
    assert (o.good, o.total) == (30, 90)


def test_tenant_freshness_is_its_own_or_else_the_datasets() -> None:
    clock = FakeClock()
    mon = monitor(clock)
    mon.set_slo("readings", SLO(freshness="1m", window="10m"))
    mon.record_newest("readings", at("00:00"))  # dataset: fresh until 10:01
    mon.record_newest("readings", at("00:00"), tenant="a")
    clock.at("00:30")
    mon.record_newest("readings", at("00:30"), tenant="a")  # a: fresh until 10:01:30
    clock.at("03:00")
    # dataset: 60 of 180 s; tenant a: 90 of 180 s; tenant b has no value: the dataset's
    assert by_name(mon.objectives("readings"))["freshness"].good == 60
    assert by_name(mon.objectives("readings", tenant="a"))["freshness"].good == 90
    assert by_name(mon.objectives("readings", tenant="b"))["freshness"].good == 60


# --- Defect-free rows ------------------------------------------------------------------------


def test_defect_free_counts_stored_rows_and_not_rejected_batches() -> None:
    clock = FakeClock()
    mon = monitor(clock)
    mon.set_slo("orders", SLO(defect_free=0.95, window="10m"))
    mon.record_rows(
        "orders",
        received={"a": 60, "b": 40},
        quarantined={"a": 3, "b": 2},
        rules={"amount_positive": 4, "status_known": 1},
    )
    clock.at("01:00")
    mon.record_rows(
        "orders",
        received={"a": 100},
        quarantined={"a": 100},
        rules={"amount_positive": 100},
        rejected=True,
    )
    clock.at("02:00")
    mon.record_rows(
        "orders", received={"b": 100}, quarantined={"b": 10}, rules={"amount_positive": 10}
    )
    clock.at("03:00")
    got = by_name(mon.objectives("orders"))["defect_free"]
    # stored batches only: good 95 + 90 = 185 of 200 = 0.925; budget 0.05 * 200 = 10,
    # spent 15 -> 1 - 15/10 = -0.5
    assert (got.good, got.total) == (185, 200)
    assert got.budget_left == pytest.approx(-0.5)
    assert not got.met
    a = by_name(mon.objectives("orders", tenant="a"))["defect_free"]
    # a: 57 of 60 = 0.95 exactly met; budget 3, spent 3 -> 0 left
    assert (a.good, a.total, a.met) == (57, 60, True)
    assert a.budget_left == pytest.approx(0.0)
    b = by_name(mon.objectives("orders", tenant="b"))["defect_free"]
    assert (b.good, b.total) == (38 + 90, 140)
    c = mon.counters().datasets["orders"]
    assert c.batches == {"accepted": 2, "rejected": 1}
    assert (c.rows_received, c.rows_rejected) == (300, 100)
    assert c.quarantined == {"amount_positive": 14, "status_known": 1}


def test_record_rows_refuses_more_quarantined_than_received() -> None:
    mon = monitor(FakeClock())
    with pytest.raises(ValueError, match="tenant 'a' has 5 quarantined rows but 4 received"):
        mon.record_rows("orders", received={"a": 4}, quarantined={"a": 5}, rules={})


def test_changing_the_slo_window_restarts_the_rolling_window_but_not_counters() -> None:
    clock = FakeClock()
    mon = monitor(clock)
    mon.set_slo("orders", SLO(availability=0.9, window="10m"))
    mon.record_query(datasets=["orders"], tenant=None, seconds=0.1, rows=1, outcome="ok")
    mon.set_slo("orders", SLO(availability=0.99, window="10m"))  # same window: kept
    assert by_name(mon.objectives("orders"))["availability"].total == 1
    mon.set_slo("orders", SLO(availability=0.99, window="20m"))
    assert by_name(mon.objectives("orders"))["availability"].total == 0
    assert mon.counters().datasets["orders"].queries == {"ok": 1}
