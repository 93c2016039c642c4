"""Time grains, time zones (DST days included), date ranges and period comparisons.

Expected buckets and ranges are computed a second way with Python's ``zoneinfo`` over
the raw instants; embedkit is only asked the query under test. The kit's clock is the
shared fixed "now" (2024-04-01 02:30 UTC, which is 2024-03-31 22:30 in New York).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pyarrow as pa
import pytest

import embedkit as ek

NEW_YORK = "America/New_York"
KATHMANDU = "Asia/Kathmandu"  # UTC+05:45: hour buckets do not line up with UTC hours

# (tenant, instant in UTC, value, a calendar date)
EVENTS: list[tuple[str, str, int, str]] = [
    # New York spring-forward day, 2024-03-10: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
    ("acme", "2024-03-10T04:30:00", 1, "2024-03-09"),  # 03-09 23:30 EST
    ("acme", "2024-03-10T05:30:00", 2, "2024-03-10"),  # 03-10 00:30 EST
    ("acme", "2024-03-10T06:30:00", 4, "2024-03-10"),  # 01:30 EST
    ("acme", "2024-03-10T07:30:00", 8, "2024-03-10"),  # 03:30 EDT
    ("acme", "2024-03-11T03:30:00", 16, "2024-03-10"),  # 03-10 23:30 EDT
    ("acme", "2024-03-11T04:30:00", 32, "2024-03-11"),  # 03-11 00:30 EDT
    # New York fall-back day, 2024-11-03: 02:00 EDT falls back to 01:00 EST (06:00 UTC).
    ("acme", "2024-11-03T03:30:00", 64, "2024-11-02"),  # 11-02 23:30 EDT
    ("acme", "2024-11-03T04:30:00", 128, "2024-11-03"),  # 11-03 00:30 EDT
    ("acme", "2024-11-03T05:30:00", 256, "2024-11-03"),  # 01:30 EDT
    ("acme", "2024-11-03T06:30:00", 512, "2024-11-03"),  # 01:30 EST (the hour repeats)
    ("acme", "2024-11-03T07:30:00", 1024, "2024-11-03"),  # 02:30 EST
    ("acme", "2024-11-04T04:30:00", 2048, "2024-11-03"),  # 11-03 23:30 EST
    ("acme", "2024-11-04T05:30:00", 4096, "2024-11-04"),  # 11-04 00:30 EST
    # Around "now" (2024-04-01 02:30 UTC).
    ("acme", "2024-04-01T02:00:00", 3, "2024-04-01"),  # NY 03-31 22:00
    ("acme", "2024-04-01T00:30:00", 5, "2024-03-31"),  # NY 03-31 20:30
    ("acme", "2024-03-31T14:05:30", 7, "2024-03-31"),
    ("acme", "2024-03-31T14:05:59", 11, "2024-03-31"),
    ("acme", "2024-03-31T14:06:00", 13, "2024-03-31"),
    ("acme", "2024-03-30T20:00:00", 17, "2024-03-30"),
    ("acme", "2024-03-25T10:00:00", 19, "2024-03-25"),
    ("acme", "2024-03-24T10:00:00", 23, "2024-03-24"),
    ("acme", "2024-03-01T03:00:00", 29, "2024-03-01"),  # NY 02-29 22:00
    ("acme", "2024-02-15T12:00:00", 31, "2024-02-15"),
    ("acme", "2024-02-01T04:00:00", 37, "2024-01-31"),  # NY 01-31 23:00
    ("acme", "2024-01-01T04:59:59", 41, "2023-12-31"),  # NY 2023-12-31 23:59:59
    ("acme", "2023-12-31T23:00:00", 43, "2023-12-31"),
    ("acme", "2023-10-01T03:00:00", 47, "2023-09-30"),  # NY 09-30 23:00: Q3 there, Q4 in UTC
    ("acme", "2023-04-15T12:00:00", 53, "2023-04-15"),
    ("acme", "2023-03-31T12:00:00", 59, "2023-03-31"),
    ("acme", "2023-01-02T00:00:00", 61, "2023-01-02"),  # a Monday
    # Another tenant at the same instants: never counted for acme.
    ("globex", "2024-03-10T06:30:00", 100_000, "2024-03-10"),
    ("globex", "2024-03-31T14:05:30", 100_000, "2024-03-31"),
    ("globex", "2024-11-03T06:30:00", 100_000, "2024-11-03"),
]

ACME = ek.Principal(tenant="acme")


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def events_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "tenant": [e[0] for e in EVENTS],
            "at": [datetime.fromisoformat(e[1]) for e in EVENTS],
            "at_tz": [_instant(e[1]) for e in EVENTS],
            "value": [e[2] for e in EVENTS],
            "on_day": [date.fromisoformat(e[3]) for e in EVENTS],
        },
        schema={
            "tenant": pl.String,
            "at": pl.Datetime("us"),
            "at_tz": pl.Datetime("us", "UTC"),
            "value": pl.Int64,
            "on_day": pl.Date,
        },
    )


@pytest.fixture(scope="module")
def events_kit(
    events_frame: pl.DataFrame, shop_clock: Callable[[], datetime]
) -> Iterator[ek.EmbedKit]:
    kit = ek.EmbedKit(
        [
            ek.Dataset(
                "events",
                events_frame,
                tenant_key="tenant",
                time="at",
                time_dimensions=[ek.TimeDimension("at_tz"), ek.TimeDimension("on_day")],
                measures=[ek.Measure("total", "sum", sql="value"), ek.Measure("count", "count")],
            )
        ],
        clock=shop_clock,
    )
    yield kit
    kit.close()


# -- the second way: plain Python ------------------------------------------------------


def acme_events() -> list[tuple[datetime, int, date]]:
    return [(_instant(at), v, date.fromisoformat(d)) for t, at, v, d in EVENTS if t == "acme"]


def truncate(local: datetime, grain: str) -> datetime:
    """``local`` (naive wall-clock time) truncated to ``grain``; weeks start on Monday."""
    if grain == "minute":
        return local.replace(second=0, microsecond=0)
    if grain == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    if grain == "quarter":
        return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)
    return day.replace(month=1, day=1)


def wall_clock(instant: datetime, tz: str) -> datetime:
    return instant.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def expected_buckets(tz: str, grain: str) -> dict[datetime, int]:
    sums: dict[datetime, int] = defaultdict(int)
    for instant, value, _ in acme_events():
        sums[truncate(wall_clock(instant, tz), grain)] += value
    return dict(sums)


def local_midnight(d: date, tz: str) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(tz))


def add_months(d: date, months: int) -> date:
    index = d.year * 12 + d.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def expected_range(phrase: str, tz: str, now: datetime) -> tuple[datetime, datetime]:
    """The documented meaning of each relative phrase, as [start, end) local midnights."""
    today = now.astimezone(ZoneInfo(tz)).date()
    month = today.replace(day=1)
    quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    first, stop = {
        "today": (today, today + timedelta(days=1)),
        "yesterday": (today - timedelta(days=1), today),
        "this month": (month, add_months(month, 1)),
        "last month": (add_months(month, -1), month),
        # Cube's meaning: the N whole periods before the current one.
        "last 7 days": (today - timedelta(days=7), today),
        "last 12 months": (add_months(month, -12), month),
        "this quarter": (quarter, add_months(quarter, 3)),
        "this year": (date(today.year, 1, 1), date(today.year + 1, 1, 1)),
    }[phrase]
    return local_midnight(first, tz), local_midnight(stop, tz)


def total_between(start: datetime, end: datetime) -> int | None:
    values = [v for instant, v, _ in acme_events() if start <= instant < end]
    return sum(values) if values else None


def total_of(kit: ek.EmbedKit, query: ek.Query) -> int | None:
    rows = kit.query(query, principal=ACME).to_pylist()
    assert len(rows) == 1
    return rows[0]["events.total"]


def buckets_of(result: ek.QueryResult, column: str) -> dict[Any, int]:
    return {r[column]: r["events.total"] for r in result.to_pylist()}


# -- grains and zones --------------------------------------------------------------------

GRAINS = ["minute", "hour", "day", "week", "month", "quarter", "year"]


@pytest.mark.parametrize("tz", ["UTC", NEW_YORK, KATHMANDU])
@pytest.mark.parametrize("grain", GRAINS)
@pytest.mark.parametrize("column", ["at", "at_tz"], ids=["timestamp", "timestamptz"])
def test_grain_buckets_instants_by_the_wall_clock_of_the_query_zone(
    events_kit: ek.EmbedKit, column: str, grain: str, tz: str
) -> None:
    q = ek.Query(
        measures=["events.total"],
        time=[ek.Time(f"events.{column}", grain=grain)],
        timezone=tz,
    )
    result = events_kit.query(q, principal=ACME)
    assert buckets_of(result, f"events.{column}.{grain}") == expected_buckets(tz, grain)


def test_new_york_spring_forward_day_is_one_23_hour_day_bucket(events_kit: ek.EmbedKit) -> None:
    q = ek.Query(
        measures=["events.total", "events.count"],
        time=[ek.Time("events.at", grain="day", date_range=["2024-03-10", "2024-03-10"])],
        timezone=NEW_YORK,
    )
    rows = events_kit.query(q, principal=ACME).to_pylist()
    start = local_midnight(date(2024, 3, 10), NEW_YORK)
    end = local_midnight(date(2024, 3, 11), NEW_YORK)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)
    assert rows == [
        {
            "events.at.day": datetime(2024, 3, 10),
            "events.total": total_between(start, end),
            "events.count": 4,
        }
    ]


def test_new_york_fall_back_day_is_one_25_hour_day_bucket(events_kit: ek.EmbedKit) -> None:
    q = ek.Query(
        measures=["events.total"],
        time=[ek.Time("events.at_tz", grain="day", date_range=["2024-11-03", "2024-11-03"])],
        timezone=NEW_YORK,
    )
    rows = events_kit.query(q, principal=ACME).to_pylist()
    start = local_midnight(date(2024, 11, 3), NEW_YORK)
    end = local_midnight(date(2024, 11, 4), NEW_YORK)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=25)
    assert rows == [
        {"events.at_tz.day": datetime(2024, 11, 3), "events.total": 128 + 256 + 512 + 1024 + 2048}
    ]
    assert rows[0]["events.total"] == total_between(start, end)


def test_hour_buckets_skip_the_missing_hour_of_spring_forward(events_kit: ek.EmbedKit) -> None:
    q = ek.Query(
        measures=["events.total"],
        time=[ek.Time("events.at", grain="hour", date_range=["2024-03-10", "2024-03-10"])],
        timezone=NEW_YORK,
    )
    got = buckets_of(events_kit.query(q, principal=ACME), "events.at.hour")
    assert got == {
        datetime(2024, 3, 10, 0): 2,
        datetime(2024, 3, 10, 1): 4,
        datetime(2024, 3, 10, 3): 8,  # 01:30 EST is followed by 03:30 EDT one hour later
        datetime(2024, 3, 10, 23): 16,
    }


def test_hour_buckets_of_fall_back_label_the_repeated_hour_once(events_kit: ek.EmbedKit) -> None:
    """Results carry naive wall-clock times, so 01:30 EDT and 01:30 EST share the 01:00 label."""
    q = ek.Query(
        measures=["events.total"],
        time=[ek.Time("events.at_tz", grain="hour", date_range=["2024-11-03", "2024-11-03"])],
        timezone=NEW_YORK,
    )
    got = buckets_of(events_kit.query(q, principal=ACME), "events.at_tz.hour")
    assert got == {
        datetime(2024, 11, 3, 0): 128,
        datetime(2024, 11, 3, 1): 256 + 512,
        datetime(2024, 11, 3, 2): 1024,
        datetime(2024, 11, 3, 23): 2048,
    }


@pytest.mark.parametrize("tz", ["UTC", NEW_YORK])
@pytest.mark.parametrize("grain", ["day", "week", "month", "quarter", "year"])
def test_date_column_buckets_ignore_the_query_zone(
    events_kit: ek.EmbedKit, grain: str, tz: str
) -> None:
    q = ek.Query(
        measures=["events.total"],
        time=[ek.Time("events.on_day", grain=grain)],
        timezone=tz,
    )
    expected: dict[date, int] = defaultdict(int)
    for _, value, day in acme_events():
        expected[truncate(datetime(day.year, day.month, day.day), grain).date()] += value
    result = events_kit.query(q, principal=ACME)
    assert buckets_of(result, f"events.on_day.{grain}") == dict(expected)


@pytest.mark.parametrize("grain", ["minute", "hour"])
def test_sub_day_grain_on_a_date_column_is_refused(events_kit: ek.EmbedKit, grain: str) -> None:
    q = ek.Query(measures=["events.total"], time=[ek.Time("events.on_day", grain=grain)])
    with pytest.raises(ek.QueryError, match="day or coarser"):
        events_kit.query(q, principal=ACME)


def test_unknown_grain_lists_the_grains(events_kit: ek.EmbedKit) -> None:
    q = ek.Query(measures=["events.total"], time=[ek.Time("events.at", grain="fortnight")])
    with pytest.raises(ek.QueryError, match="minute, hour, day, week, month, quarter, year"):
        events_kit.query(q, principal=ACME)


def test_unknown_time_zone_is_a_query_error_naming_it(events_kit: ek.EmbedKit) -> None:
    q = ek.Query(measures=["events.total"], timezone="Mars/Olympus_Mons")
    with pytest.raises(ek.QueryError, match="Mars/Olympus_Mons"):
        events_kit.query(q, principal=ACME)


def test_two_grains_of_one_time_dimension_in_one_query(events_kit: ek.EmbedKit) -> None:
    q = ek.Query(
        measures=["events.total"],
        time=[ek.Time("events.at", grain="year"), ek.Time("events.at", grain="month")],
        timezone=NEW_YORK,
    )
    got = {
        (r["events.at.year"], r["events.at.month"]): r["events.total"]
        for r in events_kit.query(q, principal=ACME).to_pylist()
    }
    expected: dict[tuple[datetime, datetime], int] = defaultdict(int)
    for instant, value, _ in acme_events():
        local = wall_clock(instant, NEW_YORK)
        expected[(truncate(local, "year"), truncate(local, "month"))] += value
    assert got == dict(expected)


# -- date ranges ---------------------------------------------------------------------------

PHRASES = [
    "today",
    "yesterday",
    "this month",
    "last month",
    "last 7 days",
    "last 12 months",
    "this quarter",
    "this year",
]


@pytest.mark.parametrize("tz", ["UTC", NEW_YORK])
@pytest.mark.parametrize("phrase", PHRASES)
@pytest.mark.parametrize("column", ["at", "at_tz"], ids=["timestamp", "timestamptz"])
def test_relative_date_range_is_read_in_the_query_zone(
    events_kit: ek.EmbedKit, shop_now: datetime, column: str, phrase: str, tz: str
) -> None:
    q = ek.Query(
        measures=["events.total"],
        time=[ek.Time(f"events.{column}", date_range=phrase)],
        timezone=tz,
    )
    assert total_of(events_kit, q) == total_between(*expected_range(phrase, tz, shop_now))


@pytest.mark.parametrize("tz", ["UTC", NEW_YORK])
@pytest.mark.parametrize("phrase", PHRASES)
def test_relative_date_range_on_a_date_column_selects_local_calendar_days(
    events_kit: ek.EmbedKit, shop_now: datetime, phrase: str, tz: str
) -> None:
    q = ek.Query(
        measures=["events.total"],
        time=[ek.Time("events.on_day", date_range=phrase)],
        timezone=tz,
    )
    start, end = expected_range(phrase, tz, shop_now)
    values = [v for _, v, day in acme_events() if start.date() <= day < end.date()]
    assert total_of(events_kit, q) == (sum(values) if values else None)


def test_today_differs_between_utc_and_new_york_late_in_the_evening(
    events_kit: ek.EmbedKit,
) -> None:
    def today_in(tz: str) -> int | None:
        q = ek.Query(
            measures=["events.total"],
            time=[ek.Time("events.at", date_range="today")],
            timezone=tz,
        )
        return total_of(events_kit, q)

    assert today_in("UTC") == 3 + 5  # 2024-04-01 in UTC
    assert today_in(NEW_YORK) == 3 + 5 + 7 + 11 + 13  # 2024-03-31 in New York


@pytest.mark.parametrize("column", ["at", "at_tz"], ids=["timestamp", "timestamptz"])
def test_absolute_date_range_includes_the_whole_last_day_in_the_zone(
    events_kit: ek.EmbedKit, column: str
) -> None:
    q = ek.Query(
        measures=["events.total"],
        time=[ek.Time(f"events.{column}", date_range=["2024-01-01", "2024-03-31"])],
        timezone=NEW_YORK,
    )
    start = local_midnight(date(2024, 1, 1), NEW_YORK)
    end = local_midnight(date(2024, 4, 1), NEW_YORK)
    assert total_of(events_kit, q) == total_between(start, end)


def test_absolute_date_range_with_times_is_inclusive_to_the_instant(
    events_kit: ek.EmbedKit,
) -> None:
    q = ek.Query(
        measures=["events.total"],
        time=[ek.Time("events.at", date_range=["2024-03-31T14:05:30", "2024-03-31T14:05:59"])],
    )
    assert total_of(events_kit, q) == 7 + 11


def test_absolute_date_range_on_a_date_column_is_inclusive(events_kit: ek.EmbedKit) -> None:
    q = ek.Query(
        measures=["events.total"],
        time=[ek.Time("events.on_day", date_range=["2024-03-10", "2024-03-11"])],
        timezone=NEW_YORK,
    )
    values = [v for _, v, d in acme_events() if date(2024, 3, 10) <= d <= date(2024, 3, 11)]
    assert total_of(events_kit, q) == sum(values)


@pytest.mark.parametrize(
    "bad", ["someday", "last -3 days", "last 0 days", "this 3 months", "2024-13-01"]
)
def test_unreadable_date_range_is_a_query_error(events_kit: ek.EmbedKit, bad: str) -> None:
    q = ek.Query(measures=["events.total"], time=[ek.Time("events.at", date_range=bad)])
    with pytest.raises(ek.QueryError):
        events_kit.query(q, principal=ACME)


def test_date_range_error_names_the_time_dimension(events_kit: ek.EmbedKit) -> None:
    q = ek.Query(measures=["events.total"], time=[ek.Time("events.at", date_range="someday")])
    with pytest.raises(ek.QueryError, match=r"events\.at"):
        events_kit.query(q, principal=ACME)


# -- comparisons ---------------------------------------------------------------------------


def test_previous_period_of_this_month_is_last_month(
    events_kit: ek.EmbedKit, shop_now: datetime
) -> None:
    q = ek.Query(
        measures=["events.total"],
        time=[ek.Time("events.at", date_range="this month")],
        timezone=NEW_YORK,
        compare="previous_period",
    )
    result = events_kit.query(q, principal=ACME)
    assert result.previous is not None
    this = expected_range("this month", NEW_YORK, shop_now)
    last = expected_range("last month", NEW_YORK, shop_now)
    assert result.to_pylist() == [{"events.total": total_between(*this)}]
    assert result.previous.to_pylist() == [{"events.total": total_between(*last)}]


def test_previous_period_of_seven_days_is_the_seven_days_before_by_day(
    events_kit: ek.EmbedKit,
) -> None:
    q = ek.Query(
        measures=["events.total"],
        time=[ek.Time("events.at", grain="day", date_range=["2024-03-10", "2024-03-16"])],
        timezone=NEW_YORK,
        compare="previous_period",
    )
    result = events_kit.query(q, principal=ACME)
    assert result.previous is not None
    previous = buckets_of(result.previous, "events.at.day")
    expected: dict[datetime, int] = defaultdict(int)
    start = local_midnight(date(2024, 3, 3), NEW_YORK)
    end = local_midnight(date(2024, 3, 10), NEW_YORK)
    for instant, value, _ in acme_events():
        if start <= instant < end:
            expected[truncate(wall_clock(instant, NEW_YORK), "day")] += value
    assert previous == dict(expected)
    assert buckets_of(result, "events.at.day") == {
        datetime(2024, 3, 10): 2 + 4 + 8 + 16,
        datetime(2024, 3, 11): 32,
    }


def test_previous_period_of_the_day_after_spring_forward_is_the_whole_short_day(
    events_kit: ek.EmbedKit,
) -> None:
    """The day before 2024-03-11 in New York lasts 23 hours; it is still one calendar day."""
    q = ek.Query(
        measures=["events.total"],
        time=[ek.Time("events.at", date_range=["2024-03-11", "2024-03-11"])],
        timezone=NEW_YORK,
        compare="previous_period",
    )
    result = events_kit.query(q, principal=ACME)
    assert result.previous is not None
    start = local_midnight(date(2024, 3, 10), NEW_YORK)
    end = local_midnight(date(2024, 3, 11), NEW_YORK)
    assert result.previous.to_pylist() == [{"events.total": total_between(start, end)}]
    assert total_between(start, end) == 2 + 4 + 8 + 16


def test_previous_period_of_a_quarter_is_the_quarter_before(
    events_kit: ek.EmbedKit,
) -> None:
    q = ek.Query(
        measures=["events.total"],
        time=[ek.Time("events.at_tz", date_range=["2024-01-01", "2024-03-31"])],
        compare="previous_period",
    )
    result = events_kit.query(q, principal=ACME)
    assert result.previous is not None
    expected = total_between(datetime(2023, 10, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC))
    assert result.previous.to_pylist() == [{"events.total": expected}]


def test_previous_period_needs_a_date_range(events_kit: ek.EmbedKit) -> None:
    q = ek.Query(
        measures=["events.total"],
        time=[ek.Time("events.at", grain="day")],
        compare="previous_period",
    )
    with pytest.raises(ek.QueryError, match="date range"):
        events_kit.query(q, principal=ACME)


def test_compare_date_range_runs_the_query_once_per_range(events_kit: ek.EmbedKit) -> None:
    ranges = [["2024-03-01", "2024-03-31"], ["2024-02-01", "2024-02-29"], "last 12 months"]
    q = ek.Query(
        measures=["events.total"],
        time=[ek.Time("events.at", grain="month", compare_date_range=ranges)],
        timezone=NEW_YORK,
    )
    result = events_kit.query(q, principal=ACME)
    answers = [result, *result.comparisons]
    assert len(answers) == 3
    windows = [
        (local_midnight(date(2024, 3, 1), NEW_YORK), local_midnight(date(2024, 4, 1), NEW_YORK)),
        (local_midnight(date(2024, 2, 1), NEW_YORK), local_midnight(date(2024, 3, 1), NEW_YORK)),
        (local_midnight(date(2023, 3, 1), NEW_YORK), local_midnight(date(2024, 3, 1), NEW_YORK)),
    ]
    for answer, (start, end) in zip(answers, windows, strict=True):
        expected: dict[datetime, int] = defaultdict(int)
        for instant, value, _ in acme_events():
            if start <= instant < end:
                expected[truncate(wall_clock(instant, NEW_YORK), "month")] += value
        assert buckets_of(answer, "events.at.month") == dict(expected)
    assert result.previous is None
    assert [a.date_range for a in answers] == [
        tuple(r) if isinstance(r, list) else r for r in ranges
    ]


def test_compare_date_range_from_json(events_kit: ek.EmbedKit) -> None:
    result = events_kit.query(
        {
            "measures": ["events.total"],
            "timeDimensions": [
                {
                    "dimension": "events.at",
                    "compareDateRange": [["2024-03-10", "2024-03-10"], "yesterday"],
                }
            ],
            "timezone": NEW_YORK,
        },
        principal=ACME,
    )
    assert result.to_pylist() == [{"events.total": 2 + 4 + 8 + 16}]
    assert [c.to_pylist() for c in result.comparisons] == [[{"events.total": 17}]]


def test_other_tenants_events_never_enter_a_bucket(events_kit: ek.EmbedKit) -> None:
    q = ek.Query(measures=["events.total"], time=[ek.Time("events.at", grain="minute")])
    got = buckets_of(events_kit.query(q, principal=ACME), "events.at.minute")
    assert sum(got.values()) == sum(v for _, v, _ in acme_events())
    assert max(got.values()) < 100_000


@pytest.mark.parametrize("hour", [4, 5, 6, 7])
def test_relative_hours_on_the_fall_back_night_are_real_hours(hour: int) -> None:
    """New York repeats 01:00-02:00 on 2024-11-03: 'this hour', 'last 2 hours' and the
    previous period are absolute hours, never a wall-clock hour read twice."""
    at = [datetime(2024, 11, 3) + timedelta(minutes=10 * i) for i in range(6 * 12)]
    now = datetime(2024, 11, 3, hour, 30, tzinfo=UTC)
    kit = ek.EmbedKit(
        [
            ek.Dataset(
                "e",
                pl.DataFrame({"t": [1] * len(at), "at": at}),
                tenant_key="t",
                time="at",
                measures=[ek.Measure("n", "count")],
            )
        ],
        clock=lambda: now,
    )
    top = now.replace(minute=0, tzinfo=None)  # whole hours here are whole local hours too

    def rows_between(start: datetime, end: datetime) -> int:
        return sum(1 for a in at if start <= a < end)

    def ask(date_range: str, **extra: Any) -> ek.QueryResult:
        q = ek.Query(
            measures=["e.n"],
            time=[ek.Time("e.at", date_range=date_range)],
            timezone="America/New_York",
            **extra,
        )
        return kit.query(q, principal=ek.Principal(1))

    def count(result: ek.QueryResult) -> int:
        return int(result.to_pylist()[0]["e.n"])

    hour_ = timedelta(hours=1)
    assert count(ask("this hour")) == rows_between(top, top + hour_)
    assert count(ask("last 2 hours")) == rows_between(top - 2 * hour_, top)
    previous = ask("this hour", compare="previous_period").previous
    assert previous is not None
    assert count(previous) == rows_between(top - hour_, top)


# -- time parts: hour of day, day of week ------------------------------------------------

PARTS = ["hour_of_day", "day_of_week"]
ENGINES = ["duckdb", "polars"]


def polars_part(column: str, part: str, tz: str) -> pl.Expr:
    """The part computed by Polars over the raw column (naive means UTC), in ``tz``."""
    instant = pl.col(column)
    if column == "at":
        instant = instant.dt.replace_time_zone("UTC")
    local = instant.dt.convert_time_zone(tz)
    return local.dt.hour() if part == "hour_of_day" else local.dt.weekday()


def polars_totals(frame: pl.DataFrame, parts: dict[str, pl.Expr]) -> dict[Any, int]:
    """Acme's totals grouped by ``parts`` (name -> expression), keyed by part values."""
    grouped = (
        frame.filter(pl.col("tenant") == "acme")
        .group_by(**parts)
        .agg(pl.col("value").sum())
        .iter_rows(named=True)
    )
    names = list(parts)
    return {
        (r[names[0]] if len(names) == 1 else tuple(r[n] for n in names)): r["value"]
        for r in grouped
    }


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("tz", ["UTC", NEW_YORK])
@pytest.mark.parametrize("part", PARTS)
@pytest.mark.parametrize("column", ["at", "at_tz"], ids=["timestamp", "timestamptz"])
def test_time_part_reads_the_wall_clock_of_the_query_zone(
    events_kit: ek.EmbedKit,
    events_frame: pl.DataFrame,
    column: str,
    part: str,
    tz: str,
    engine: Any,
) -> None:
    q = ek.Query(
        measures=["events.total"], time=[ek.Time(f"events.{column}", grain=part)], timezone=tz
    )
    result = events_kit.query(q, principal=ACME, engine=engine)
    name = f"events.{column}.{part}"
    assert result.table.schema.field(name).type == pa.int64()
    values = result.table.column(name).to_pylist()
    assert values == sorted(values)  # ascending by the part, by default
    assert set(values) <= set(range(24) if part == "hour_of_day" else range(1, 8))
    want = polars_totals(events_frame, {"p": polars_part(column, part, tz)})
    assert buckets_of(result, name) == want


@pytest.mark.parametrize("engine", ENGINES)
def test_time_parts_on_the_new_york_spring_forward_day(
    events_kit: ek.EmbedKit, events_frame: pl.DataFrame, engine: Any
) -> None:
    """2024-03-10 in New York: 02:00 EST jumps to 03:00 EDT, so there is no hour 2; the
    day is a Sunday there, and its last event (03:30 UTC on Monday) is still Sunday."""
    day = ["2024-03-10", "2024-03-10"]
    q = ek.Query(
        measures=["events.total"],
        time=[
            ek.Time("events.at", grain="hour_of_day", date_range=day),
            ek.Time("events.at", grain="day_of_week"),
        ],
        timezone=NEW_YORK,
    )
    rows = events_kit.query(q, principal=ACME, engine=engine).to_pylist()
    got = {
        (r["events.at.hour_of_day"], r["events.at.day_of_week"]): r["events.total"] for r in rows
    }
    assert got == {(0, 7): 2, (1, 7): 4, (3, 7): 8, (23, 7): 16}
    start, end = (
        local_midnight(date(2024, 3, 10), NEW_YORK),
        local_midnight(date(2024, 3, 11), NEW_YORK),
    )
    that_day = events_frame.filter(
        pl.col("at_tz").is_between(start.astimezone(UTC), end.astimezone(UTC), closed="left")
    )
    want = polars_totals(
        that_day,
        {
            "h": polars_part("at", "hour_of_day", NEW_YORK),
            "d": polars_part("at", "day_of_week", NEW_YORK),
        },
    )
    assert got == want
    # The same query in UTC reads the UTC day, 2024-03-10: an hour per event, none skipped.
    utc = events_kit.query(replace(q, timezone="UTC"), principal=ACME, engine=engine)
    got = {
        (r["events.at.hour_of_day"], r["events.at.day_of_week"]): r["events.total"]
        for r in utc.to_pylist()
    }
    assert got == {(4, 7): 1, (5, 7): 2, (6, 7): 4, (7, 7): 8}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("tz", ["UTC", NEW_YORK])
def test_hour_by_weekday_grid_matches_polars(
    events_kit: ek.EmbedKit, events_frame: pl.DataFrame, tz: str, engine: Any
) -> None:
    q = ek.Query(
        measures=["events.total"],
        time=[
            ek.Time("events.at_tz", grain="hour_of_day"),
            ek.Time("events.at_tz", grain="day_of_week"),
        ],
        timezone=tz,
    )
    rows = events_kit.query(q, principal=ACME, engine=engine).to_pylist()
    keys = [(r["events.at_tz.hour_of_day"], r["events.at_tz.day_of_week"]) for r in rows]
    assert keys == sorted(keys)
    got = dict(zip(keys, (r["events.total"] for r in rows), strict=True))
    parts = {p: polars_part("at_tz", p, tz) for p in PARTS}
    assert got == polars_totals(events_frame, parts)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("tz", ["UTC", NEW_YORK])
def test_day_of_week_of_a_date_column_ignores_the_query_zone(
    events_kit: ek.EmbedKit, events_frame: pl.DataFrame, tz: str, engine: Any
) -> None:
    q = ek.Query(
        measures=["events.total"], time=[ek.Time("events.on_day", grain="day_of_week")], timezone=tz
    )
    result = events_kit.query(q, principal=ACME, engine=engine)
    assert result.table.schema.field("events.on_day.day_of_week").type == pa.int64()
    want = polars_totals(events_frame, {"d": pl.col("on_day").dt.weekday()})
    assert buckets_of(result, "events.on_day.day_of_week") == want


@pytest.mark.parametrize("engine", ENGINES)
def test_hour_of_day_of_a_date_column_is_refused(events_kit: ek.EmbedKit, engine: Any) -> None:
    q = ek.Query(measures=["events.total"], time=[ek.Time("events.on_day", grain="hour_of_day")])
    with pytest.raises(ek.QueryError, match=r"'events\.on_day' is a date: it has no hour"):
        events_kit.query(q, principal=ACME, engine=engine)


def test_time_parts_in_json_form(events_kit: ek.EmbedKit, events_frame: pl.DataFrame) -> None:
    body = {
        "measures": ["events.total"],
        "timeDimensions": [{"dimension": "events.at", "granularity": "day_of_week"}],
        "timezone": NEW_YORK,
    }
    assert ek.Query.from_json(body).to_json() == body
    for engine in ENGINES:
        result = events_kit.query(body, principal=ACME, engine=engine)
        want = polars_totals(events_frame, {"d": polars_part("at", "day_of_week", NEW_YORK)})
        assert buckets_of(result, "events.at.day_of_week") == want
    with pytest.raises(ek.QueryError, match="time parts are: hour_of_day, day_of_week"):
        ek.Query.from_json(
            {**body, "timeDimensions": [{"dimension": "events.at", "granularity": "weekday"}]}
        )


def test_unknown_grain_lists_the_time_parts_too(events_kit: ek.EmbedKit) -> None:
    q = ek.Query(measures=["events.total"], time=[ek.Time("events.at", grain="weekday")])
    with pytest.raises(ek.QueryError, match="; time parts are: hour_of_day, day_of_week"):
        events_kit.query(q, principal=ACME)
