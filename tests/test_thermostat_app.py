"""The thermostat example, end to end: simulator, advice, benchmark and the host app.

Expected figures are computed a second way, with Polars straight over the simulated
rows (or in closed form for the synthetic advice data), never read back from the code
under test. The app runs on a pinned clock without its live feed, so every window
("last 7 days", "this month") has one right answer; one test runs the live feed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import random
import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

import embedkit as ek
from examples.thermostat_app.advice import advice_for, advise, fit, history
from examples.thermostat_app.analytics import create_kit, priced, write_history
from examples.thermostat_app.app import create_app
from examples.thermostat_app.benchmark import Benchmark, peer_averages
from examples.thermostat_app.feed import run_feed
from examples.thermostat_app.fleet import (
    CLIMATES,
    THERMOSTAT_ROOM,
    Household,
    Room,
    Schedule,
    make_fleet,
)
from examples.thermostat_app.simulator import HYSTERESIS_C, SCHEMA, backfill

NOW = datetime(2025, 1, 15, 10, 17, 30, tzinfo=UTC)  # a Wednesday, mid-month
SECRET = "tS9-thermostat-tests-only-8Kq2zLr7Wm4Vn1Xb6Yc3Pd5F"
ORIGIN = "http://127.0.0.1:8001"
HISTORY_DAYS = 4


def utc_naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None)


def local_day(zone: str) -> pl.Expr:
    """The local calendar day of a reading's (naive UTC) timestamp."""
    return pl.col("ts").dt.replace_time_zone("UTC").dt.convert_time_zone(zone).dt.date()


# -- the advice model ------------------------------------------------------------------

A, B, C = 0.12, 0.045, -0.06  # energy per hour = A + B * degree-hours + C * home share
SYNTHETIC_START = datetime(2025, 1, 1)  # local wall-clock time; 14 days from here


def synthetic_hours(days: int = 14, *, seed: int = 3) -> pl.DataFrame:
    """Hours of a home whose energy follows the model exactly, plus a little noise.

    It keeps 21 °C by day and 19 °C from 23:00 to 06:00; nobody is home on weekdays from
    09:00 to 17:00. Outdoors stays below 10 °C, so every hour has degree-hours.
    """
    rng = random.Random(seed)
    rows = []
    for n in range(days * 24):
        at = SYNTHETIC_START + timedelta(hours=n)
        outdoor = (
            3
            + 4 * math.cos(2 * math.pi * (at.hour - 15) / 24)
            + 3 * math.sin(2 * math.pi * n / (24 * 5.3))
        )
        home = 0.0 if at.weekday() < 5 and 9 <= at.hour < 17 else 1.0
        setpoint = 21.0 if 6 <= at.hour < 23 else 19.0
        energy = A + B * max(0.0, setpoint - outdoor) + C * home + rng.gauss(0, 0.003)
        rows.append(
            {
                "hour": at,
                "energy_kwh": energy,
                "setpoint_c": setpoint,
                "outdoor_c": outdoor,
                "home_share": home,
            }
        )
    return pl.DataFrame(rows)


def analytic_saving(days: int = 14) -> float:
    """What 3 °C lower from 23:00 to 06:00 and while away saves, in closed form.

    Comfort is 21 °C, so the proposal keeps at most 18 °C then. Nights (7 hours) were
    at 19 °C: one degree-hour saved each. Away hours (8 per weekday) were at 21 °C:
    three each. Outdoors is always colder than 18 °C, so no saving is cut off at zero.
    """
    weekdays = sum((SYNTHETIC_START + timedelta(days=d)).weekday() < 5 for d in range(days))
    return B * (7 * days * 1 + 8 * weekdays * 3)


def test_the_advice_recovers_the_slope_and_the_saving_of_a_known_home() -> None:
    """On hours where energy = a + b * degree-hours (+ home), the fit finds b and the
    saving matches the one computed by hand."""
    hours = synthetic_hours()
    fitted = fit(hours, "heating")
    assert fitted is not None
    assert fitted.kwh_per_degree_hour == pytest.approx(B, rel=0.02)
    assert fitted.home_kwh == pytest.approx(C, abs=0.01)
    assert fitted.r2 > 0.95
    assert (fitted.hours, fitted.days) == (14 * 24, 14)

    advice = advise(hours, season="heating", price_kwh=0.30, currency="EUR")
    assert advice is not None
    expected = analytic_saving()
    assert advice.saved_kwh == pytest.approx(expected, rel=0.02)
    assert advice.saved_low_kwh <= expected <= advice.saved_high_kwh
    assert advice.saved_money == pytest.approx(advice.saved_kwh * 0.30)
    assert advice.used_kwh == pytest.approx(hours["energy_kwh"].sum())
    words = " ".join(advice.sentences())
    assert f"about {advice.saved_kwh:.0f} kWh" in words and "€" in words
    assert f"{fitted.r2:.0%}" in words and "14 days" in words


def test_the_advice_needs_history_and_a_link_to_the_weather() -> None:
    assert advise(synthetic_hours(days=1), season="heating", price_kwh=0.3, currency="EUR") is None
    flat = synthetic_hours().with_columns(energy_kwh=pl.lit(0.5))
    assert advise(flat, season="heating", price_kwh=0.3, currency="EUR") is None


def test_the_advice_reads_the_household_history_through_the_kit(tmp_path: Path) -> None:
    """The same synthetic home stored as readings in Berlin: the hourly history comes
    back in local time, and the advice equals the closed-form saving."""
    home = Household(
        household_id="t01",
        name="Test",
        climate=CLIMATES["Europe/Berlin"],
        size_m2=80,
        insulation="average",
        rooms=(Room("living", loss=1.0, share=1.0),),
        schedule=Schedule(comfort_c=21, night_setback_c=2, away_setback_c=0),
        price_kwh=0.30,
    )
    hours = synthetic_hours()
    berlin = ZoneInfo("Europe/Berlin")
    readings = pl.DataFrame(
        {
            "household_id": "t01",
            "room": "living",
            # Mid-hour, so each reading falls in its local hour's bucket.
            "ts": [
                utc_naive((h + timedelta(minutes=30)).replace(tzinfo=berlin)) for h in hours["hour"]
            ],
            "indoor_c": hours["setpoint_c"],
            "outdoor_c": hours["outdoor_c"],
            "setpoint_c": hours["setpoint_c"],
            "hvac_on": True,
            "occupied": hours["home_share"] > 0.5,
            "energy_kwh": hours["energy_kwh"],
            "interval_s": 3600.0,
        },
        schema=SCHEMA,
    )
    write_history(tmp_path, priced(readings, [home]))
    kit = create_kit(
        tmp_path,
        secret=SECRET,
        host_origins=(ORIGIN,),
        clock=lambda: datetime(2025, 1, 15, 12, tzinfo=berlin),
    )
    got = history(kit, home).sort("hour")
    assert got["hour"].to_list() == hours["hour"].to_list()
    assert got["energy_kwh"].to_list() == pytest.approx(hours["energy_kwh"].to_list())
    assert got["home_share"].to_list() == hours["home_share"].to_list()

    advice = advice_for(kit, home)
    assert advice is not None
    assert advice.saved_kwh == pytest.approx(analytic_saving(), rel=0.02)
    kit.close()


# -- the simulator ---------------------------------------------------------------------


def test_the_simulator_is_deterministic_for_a_seed() -> None:
    """The same seed and the same reading times give the same rows; another seed does not."""
    fleet = make_fleet(7)
    assert make_fleet(7) == fleet

    def run(seed: int) -> pl.DataFrame:
        sim, rows = backfill(fleet, seed=seed, end=NOW, days=1)
        live = [sim.advance(NOW + timedelta(seconds=5 * n)) for n in range(1, 4)]
        return pl.concat([rows, *live])

    first, again, other = run(11), run(11), run(12)
    assert first.equals(again)
    assert not first.equals(other)
    assert first.schema == pl.Schema(SCHEMA)


def test_the_simulator_is_physically_sane() -> None:
    """Energy is never negative, rooms stay livable, the thermostat switches on the wrong
    side of its band, afternoons are warmer than nights, and readings tile time."""
    fleet = make_fleet(7)
    _, rows = backfill(fleet, seed=7, end=NOW, days=3)
    assert rows["energy_kwh"].min() >= 0
    assert rows["indoor_c"].min() > 10 and rows["indoor_c"].max() < 32
    season = pl.DataFrame(
        {"household_id": [h.household_id for h in fleet], "season": [h.season for h in fleet]}
    )
    thermostat = rows.filter(pl.col("room") == THERMOSTAT_ROOM).join(season, on="household_id")
    gap = pl.when(pl.col("season") == "heating").then(1).otherwise(-1) * (
        pl.col("setpoint_c") - pl.col("indoor_c")
    )
    wrong_side = thermostat.filter(gap > HYSTERESIS_C)
    past_band = thermostat.filter(gap < -HYSTERESIS_C)
    assert wrong_side.height > 0 and wrong_side["hvac_on"].all()
    assert past_band.height > 0 and not past_band["hvac_on"].any()
    # Energy only while running: a household's energy over an interval is at most its
    # power for that long.
    per_reading = rows.group_by("household_id", "ts").agg(
        pl.col("energy_kwh").sum(), pl.col("interval_s").first()
    )
    power = pl.DataFrame(
        {"household_id": [h.household_id for h in fleet], "kw": [h.power_kw for h in fleet]}
    )
    bound = per_reading.join(power, on="household_id")
    assert (bound["energy_kwh"] <= bound["kw"] * bound["interval_s"] / 3600 + 1e-9).all()
    for h in fleet:
        local = rows.filter(pl.col("household_id") == h.household_id).with_columns(
            hour=pl.col("ts").dt.replace_time_zone("UTC").dt.convert_time_zone(h.zone).dt.hour()
        )
        afternoon = local.filter(pl.col("hour").is_between(14, 16))["outdoor_c"].mean()
        night = local.filter(pl.col("hour").is_between(2, 4))["outdoor_c"].mean()
        assert afternoon > night, h.household_id  # type: ignore[operator]
        # Intervals tile the history: they add up to the time covered, per room.
        covered = local.filter(pl.col("room") == THERMOSTAT_ROOM)["interval_s"].sum()
        assert covered == pytest.approx(3 * 86400)


def test_backfill_and_live_readings_meet_the_contract(tmp_path: Path) -> None:
    """Nothing the simulator emits is quarantined: not the history registered at start-up,
    nor the readings the live feed streams in afterwards."""
    fleet = make_fleet(7)
    sim, rows = backfill(fleet, seed=7, end=NOW, days=2)
    write_history(tmp_path, priced(rows, fleet))
    kit = create_kit(tmp_path, secret=SECRET, host_origins=(ORIGIN,), clock=lambda: NOW)
    assert kit.quarantine.count() == 0
    version = kit.data_versions["readings"]

    ticks = iter(NOW + timedelta(seconds=5 * n) for n in range(1, 10_000))

    async def feed_a_while() -> None:
        task = asyncio.create_task(run_feed(kit, sim, fleet, tick=0.001, clock=lambda: next(ticks)))
        while kit.data_versions["readings"] < version + 12:
            await asyncio.sleep(0.005)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(feed_a_while())
    assert kit.quarantine.count() == 0
    appended = kit.data_versions["readings"] - version
    assert appended >= 12
    stored = kit.query(
        ek.Query(measures=("readings.seconds",)),
        principal=ek.Principal("h01", {"rooms": list(fleet[0].room_names)}),
    ).to_pylist()[0]["readings.seconds"]
    # Each tick is one append of one reading per room, covering 5 seconds.
    assert stored == pytest.approx((2 * 86400 + appended * 5) * len(fleet[0].rooms))
    kit.close()


# -- the benchmark ---------------------------------------------------------------------


def test_peer_averages_publish_groups_of_five_complete_homes_only() -> None:
    days = pl.DataFrame(
        {
            "household_id": ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"],
            "season": ["heating"] * 10,
            "size_class": ["small"] * 5 + ["medium"] * 5,
            "day": [date(2025, 1, 2)] * 10,
            "energy_kwh": [1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0],
            # One medium home's day is incomplete: four are left, too few to publish.
            "complete": [True] * 9 + [False],
        }
    )
    assert peer_averages(days).to_dicts() == [
        {"season": "heating", "size_class": "small", "day": date(2025, 1, 2), "avg_kwh": 3.0}
    ]


def test_the_benchmark_refuses_groups_under_five_households(tmp_path: Path) -> None:
    """Six small homes are compared; three medium ones are not, on any day, and each
    published average is the mean of the small homes' own local-day totals."""
    plan = [
        ("s1", "A", "Europe/Berlin", 60),
        ("s2", "B", "Europe/London", 70),
        ("s3", "C", "America/Chicago", 75),
        ("s4", "D", "Europe/Berlin", 80),
        ("s5", "E", "America/New_York", 65),
        ("s6", "F", "Europe/Stockholm", 85),
        ("m1", "G", "Europe/Berlin", 120),
        ("m2", "H", "America/Chicago", 110),
        ("m3", "I", "Europe/London", 130),
    ]
    fleet = make_fleet(5, plan)
    _, rows = backfill(fleet, seed=5, end=NOW, days=3)
    write_history(tmp_path, priced(rows, fleet))
    kit = create_kit(tmp_path, secret=SECRET, host_origins=(ORIGIN,), clock=lambda: NOW)
    benchmark = Benchmark(kit, fleet, since=date(2025, 1, 10))
    published = benchmark.refresh(NOW)
    assert published[-1] == date(2025, 1, 14)  # ended everywhere (Chicago last) by NOW
    assert benchmark.refresh(NOW) == []  # published once, never revised

    # Independently: each home's local-day totals, for days its readings fully cover.
    start = NOW - timedelta(days=3)
    totals = []
    for h in fleet:
        zone = ZoneInfo(h.zone)
        own = rows.filter(pl.col("household_id") == h.household_id)
        for day, group in own.group_by(local_day(h.zone)):
            d = day[0]
            begins = datetime.combine(d, datetime.min.time(), zone)
            if begins >= start and begins + timedelta(days=1) <= NOW:
                totals.append((h.household_id, h.size_class, d, group["energy_kwh"].sum()))
    expected = (
        pl.DataFrame(totals, schema=["household_id", "size_class", "day", "kwh"], orient="row")
        .filter(pl.col("size_class") == "small")
        .group_by("day")
        .agg(pl.col("kwh").mean(), pl.len().alias("homes"))
        .filter(pl.col("homes") >= 5)
        .sort("day")
    )
    assert expected.height >= 2

    anyone = ek.Principal("s1", {"role": "owner", "rooms": ["living"]})
    peers = kit.query(
        ek.Query(
            measures=("peer_days.energy",),
            dimensions=("peer_days.size_class",),
            time=(ek.Time("peer_days.day", grain="day"),),
        ),
        principal=anyone,
    ).to_polars()
    assert set(peers["peer_days.size_class"]) == {"small"}
    got = peers.sort("peer_days.day.day")
    assert got["peer_days.day.day"].to_list() == expected["day"].to_list()
    assert got["peer_days.energy"].to_list() == pytest.approx(expected["kwh"].to_list())

    # The medium homes still see their own days, with no benchmark beside them.
    for h in fleet:
        mine = kit.query(
            ek.Query(measures=("daily_energy.energy", "daily_energy.peer_energy")),
            principal=ek.Principal(h.household_id, {"role": "owner"}),
        ).to_pylist()[0]
        assert mine["daily_energy.energy"] > 0
        assert (mine["daily_energy.peer_energy"] is None) == (h.size_class == "medium")
    assert kit.quarantine.count() == 0
    kit.close()


# -- the host app over HTTP ------------------------------------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Starlette:
    return create_app(
        tmp_path_factory.mktemp("thermostat-data"),
        SECRET,
        host_origins=(ORIGIN,),
        history_days=HISTORY_DAYS,
        tick=None,
        clock=lambda: NOW,
    )


@pytest.fixture(scope="module")
def rows(app: Starlette) -> pl.DataFrame:
    """The simulated history, priced, exactly as the app stored it."""
    return priced(app.state.history, make_fleet(7))


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, base_url=ORIGIN) as c:
        yield c


def sign_in(client: TestClient, email: str) -> str:
    """Sign in and return the embed URL of the household page."""
    answer = client.post(
        "/login", data={"email": email, "password": "demo"}, follow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/home"
    page = client.get("/home")
    assert page.status_code == 200
    urls = re.findall(r'<embedkit-dashboard id="dashboard" src="([^"]+)"', page.text)
    assert len(urls) == 1
    return str(urls[0])


def payload(url: str) -> dict[str, Any]:
    """The claims of an embed URL's token (read, not verified: the server verifies)."""
    token = url.split("#token=", 1)[1]
    body = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


def open_session(client: TestClient, url: str) -> str:
    path, _, fragment = url.partition("#")
    answer = client.post(
        "/analytics/session",
        json={"token": fragment.removeprefix("token="), "resource": path.split("/embed/")[1]},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["session"])


def widget(client: TestClient, session: str, name: str) -> Any:
    answer = client.get(f"/analytics/data/{name}", headers={"Authorization": f"Bearer {session}"})
    return answer


def window(rows: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    return rows.filter((pl.col("ts") >= utc_naive(start)) & (pl.col("ts") < utc_naive(end)))


def test_sign_in_embeds_the_household_of_the_session_only(client: TestClient) -> None:
    assert client.get("/home", follow_redirects=False).headers["location"] == "/login"
    assert client.get("/embed-url").status_code == 401
    wrong = client.post("/login", data={"email": "mia@h01", "password": "nope"})
    assert "wrong password" in wrong.text and "embedkit-dashboard" not in wrong.text

    url = sign_in(client, "mia@h01")
    claims = payload(url)
    assert claims["resource"] == "home" and claims["tenant"] == "h01"
    assert claims["claims"] == {"role": "owner", "rooms": ["living", "kitchen", "bedroom", "kids"]}
    assert claims["timezone"] == "Europe/Berlin"
    # The token provider signs for the session's household, whatever the request asks.
    again = client.get("/embed-url", params={"tenant": "h02", "household": "h02"})
    assert payload(again.text)["tenant"] == "h01"
    page = client.get("/home").text
    assert "Schedule advice" in page and "Becker home" in page
    client.post("/logout", data={"csrf": "forged"})
    assert client.get("/embed-url").status_code == 200  # a forged logout does nothing


def test_an_owner_sees_their_own_numbers_and_no_one_elses(
    client: TestClient, rows: pl.DataFrame
) -> None:
    """Energy by room, cost this month and the daily comparison equal Polars over h01's
    rows; any other household's rows would change them."""
    session = open_session(client, sign_in(client, "mia@h01"))
    berlin = ZoneInfo("Europe/Berlin")
    mine = rows.filter(pl.col("household_id") == "h01")

    today = NOW.astimezone(berlin).replace(hour=0, minute=0, second=0, microsecond=0)
    week = window(mine, today - timedelta(days=7), today)
    expected = dict(week.group_by("room").agg(pl.col("energy_kwh").sum()).iter_rows())
    by_room = widget(client, session, "energy_by_room").json()["rows"]
    assert {r["room"]: r["energy"] for r in by_room} == pytest.approx(expected)

    month = mine.filter(pl.col("ts") >= utc_naive(today.replace(day=1)))
    cost = widget(client, session, "cost_month").json()["kpi"]["value"]
    assert cost == pytest.approx((month["energy_kwh"] * month["price_kwh"]).sum())

    # Each home's total per day of its own time zone, for the days the history fully
    # covers (it starts HISTORY_DAYS before NOW); similar homes: small, heated, 5 or more.
    fleet = make_fleet(7)
    start = NOW - timedelta(days=HISTORY_DAYS)
    totals = []
    for h in fleet:
        zone = ZoneInfo(h.zone)
        own = rows.filter(pl.col("household_id") == h.household_id)
        for (d,), group in own.group_by(local_day(h.zone)):
            begins = datetime.combine(d, datetime.min.time(), zone)
            if begins >= start and begins + timedelta(days=1) <= NOW:
                totals.append(
                    (h.household_id, h.season, h.size_class, d, group["energy_kwh"].sum())
                )
    days = pl.DataFrame(
        totals, schema=["household_id", "season", "size_class", "day", "kwh"], orient="row"
    )
    peers = (
        days.filter((pl.col("season") == "heating") & (pl.col("size_class") == "small"))
        .group_by("day")
        .agg(pl.col("kwh").mean().alias("peer"), pl.len().alias("homes"))
        .filter(pl.col("homes") >= 5)
    )
    want = days.filter(pl.col("household_id") == "h01").join(peers, on="day").sort("day")
    got = widget(client, session, "vs_similar_homes").json()["rows"]
    assert [r["day"][:10] for r in got] == [d.isoformat() for d in want["day"]]
    assert [r["energy"] for r in got] == pytest.approx(want["kwh"].to_list())
    assert [r["peer_energy"] for r in got] == pytest.approx(want["peer"].to_list())

    temperatures = widget(client, session, "temperatures").json()["rows"]
    assert {r["room"] for r in temperatures} == {"living", "kitchen", "bedroom", "kids"}
    # Asking for another household through the request is refused, not answered.
    for params in ({"household_id": "h02"}, {"tenant": "h02"}):
        asked = client.get(
            "/analytics/data/energy_by_room",
            params={"params": json.dumps(params)},
            headers={"Authorization": f"Bearer {session}"},
        )
        assert asked.status_code == 400 and "rows" not in asked.json()


def test_a_guest_sees_only_the_rooms_of_their_claim(
    app: Starlette, client: TestClient, rows: pl.DataFrame
) -> None:
    """Sam may see the kids' room and the living room of h01: every widget holds those
    rooms only, with the numbers of those rooms, and no money or household totals."""
    url = sign_in(client, "sam@h01")
    claims = payload(url)
    assert claims["resource"] == "guest" and claims["tenant"] == "h01"
    assert claims["claims"] == {"role": "guest", "rooms": ["kids", "living"]}
    assert "Schedule advice" not in client.get("/home").text
    session = open_session(client, url)
    shared = rows.filter(
        (pl.col("household_id") == "h01") & pl.col("room").is_in(["kids", "living"])
    )

    temperatures = widget(client, session, "temperatures").json()["rows"]
    assert temperatures and {r["room"] for r in temperatures} == {"kids", "living"}
    minute = NOW.replace(second=0, microsecond=0)
    day = window(shared, minute - timedelta(minutes=1440), minute)
    kpi = widget(client, session, "energy_24h").json()["kpi"]
    assert kpi["value"] == pytest.approx(day["energy_kwh"].sum())
    by_room = widget(client, session, "energy_by_room").json()["rows"]
    assert {r["room"] for r in by_room} == {"kids", "living"}

    # Handed the owner's dashboard, the guest still gets their rooms only, and the
    # column rules refuse cost and the household's daily totals.
    owners = app.state.kit.embed_url("home", tenant="h01", claims=claims["claims"])
    session = open_session(client, owners)
    for name in ("cost_month", "vs_similar_homes"):
        refused = widget(client, session, name)
        assert refused.status_code == 403 and "column rule" in refused.json()["detail"]
    by_room = widget(client, session, "energy_by_room").json()["rows"]
    assert {r["room"] for r in by_room} == {"kids", "living"}
    # And without a rooms claim at all, nothing: the row rule denies by default.
    bare = open_session(client, app.state.kit.embed_url("home", tenant="h01"))
    refused = widget(client, bare, "energy_by_room")
    assert refused.status_code == 403 and "needs claim 'rooms'" in refused.json()["detail"]


def test_the_live_feed_streams_contract_valid_readings_while_the_app_runs(
    tmp_path: Path,
) -> None:
    app = create_app(
        tmp_path,
        SECRET,
        host_origins=(ORIGIN,),
        households=make_fleet(7)[:3],
        history_days=0.25,
        tick=0.05,
    )
    kit = app.state.kit
    version = kit.data_versions["readings"]
    with TestClient(app, base_url=ORIGIN):
        deadline = time.monotonic() + 60
        while kit.data_versions["readings"] < version + 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert kit.data_versions["readings"] >= version + 3
    assert kit.quarantine.count() == 0
