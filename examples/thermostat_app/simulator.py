"""A fleet of smart thermostats, simulated: the live device feed of the demo.

Each household of ``fleet.py`` is a small physical model, stepped at most two
minutes at a time:

- **Outdoor** temperature follows a daily cycle in the home's local time (coldest
  around 03:00, warmest around 15:00), plus slow "weather" waves of one to five days
  shared by the homes of a zone, plus a small offset per home.
- **Indoor**, each room drifts towards the outdoor temperature at a rate set by the
  home's insulation (its time constant) and the room's own heat loss, mixes a little
  with the other rooms, and gains some heat from people and appliances when someone
  is home.
- **HVAC**: the thermostat in the living room switches the heat pump (or the air
  conditioner) on when the measured temperature is more than 0.3 °C on the wrong
  side of the setpoint and off when it is 0.3 °C past it (hysteresis). While it
  runs it draws ``power_kw`` (proportional to the floor area) and moves each room's
  temperature by about 4 °C an hour (3 °C when cooling), shared by room.
- **Energy** of an interval is the power times the time the HVAC ran, split between
  rooms by their share of its output, so a household's rooms add up to its meter.

A reading is one row per room at one instant: the temperatures then, whether the HVAC
runs then, and the energy used since the previous reading (``interval_s`` seconds).
:meth:`Simulator.run` emits readings on a grid (the history: every 5 minutes);
:meth:`Simulator.live` emits one reading per room every ``tick`` seconds of wall
time, stamped with the real time, so simulated time is real time. Everything random
comes from the seed: the same seed and the same reading times give the same rows.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from .fleet import THERMOSTAT_ROOM, TIME_CONSTANT_H, Household

#: The columns of a reading, as the devices send them (the app adds ``price_kwh``).
SCHEMA: dict[str, pl.DataType] = {
    "household_id": pl.String(),
    "room": pl.String(),
    "ts": pl.Datetime("us"),  # UTC, without a zone: embedkit reads it as UTC
    "indoor_c": pl.Float64(),
    "outdoor_c": pl.Float64(),
    "setpoint_c": pl.Float64(),
    "hvac_on": pl.Boolean(),
    "occupied": pl.Boolean(),
    "energy_kwh": pl.Float64(),
    "interval_s": pl.Float64(),
}

HYSTERESIS_C = 0.3
MAX_STEP_S = 120.0  # the longest physics step (live ticks are shorter)
HVAC_RATE_C_H = {"heating": 4.0, "cooling": 3.0}
MIXING_H = 0.6  # how fast rooms even out with each other, per hour
GAIN_C_H = {True: 0.25, False: 0.05}  # heat from people and appliances: home / away


class Simulator:
    """The homes of ``households`` from ``start`` on (see the module docstring)."""

    def __init__(self, households: Sequence[Household], *, seed: int, start: datetime) -> None:
        self.households = list(households)
        self.now = _utc(start)
        self._rng = random.Random(seed)
        self._offsets: dict[tuple[str, int], float] = {}
        self._weather = {
            zone: _waves(random.Random(f"{seed}/{zone}"))
            for zone in sorted({h.zone for h in self.households})
        }
        self._zones = {zone: ZoneInfo(zone) for zone in self._weather}
        self._micro = [self._rng.uniform(-0.8, 0.8) for _ in self.households]
        self._temps: list[list[float]] = []
        self._on: list[bool] = [False] * len(self.households)
        self._rooms = [_room_factors(h) for h in self.households]
        self._thermostat = [h.room_names.index(THERMOSTAT_ROOM) for h in self.households]
        for h in self.households:
            weekday, minute = self._local(h.zone, self.now.timestamp())
            start_c = h.schedule.setpoint(h.season, weekday, minute)
            self._temps.append([start_c + self._rng.uniform(-0.5, 0.5) for _ in h.rooms])
        self._energy = [[0.0] * len(h.rooms) for h in self.households]
        self._last = [t[i] for t, i in zip(self._temps, self._thermostat, strict=True)]
        self._since = self.now

    # -- emitting readings ---------------------------------------------------------------

    def run(self, until: datetime, *, every: timedelta) -> pl.DataFrame:
        """Readings on the grid of ``every`` (aligned to the epoch) up to ``until``,
        and one at ``until`` itself: the history, emitted quickly."""
        until, step = _utc(until), every.total_seconds()
        columns: dict[str, list[object]] = {name: [] for name in SCHEMA}
        while self.now < until:
            grid = (math.floor(self.now.timestamp() / step) + 1) * step
            at = min(until, datetime.fromtimestamp(grid, UTC))
            self._advance(at)
            self._emit(columns)
        return pl.DataFrame(columns, schema=SCHEMA)

    def advance(self, to: datetime) -> pl.DataFrame:
        """One reading per room at ``to``, covering the time since the previous one."""
        columns: dict[str, list[object]] = {name: [] for name in SCHEMA}
        self._advance(_utc(to))
        self._emit(columns)
        return pl.DataFrame(columns, schema=SCHEMA)

    async def live(
        self, *, tick: float, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> AsyncIterator[pl.DataFrame]:
        """Every ``tick`` seconds, the readings of every room at the current time."""
        while True:
            await asyncio.sleep(tick)
            now = _utc(clock())
            if now > self.now:
                yield self.advance(now)

    # -- the physics ---------------------------------------------------------------------

    def _advance(self, to: datetime) -> None:
        # Stepped in epoch seconds: datetimes cost more than the physics.
        now, end = self.now.timestamp(), to.timestamp()
        while now < end:
            step_to = min(now + MAX_STEP_S, end)  # the last step ends exactly at ``to``
            self._step(step_to, (step_to - now) / 3600)
            now = step_to
        self.now = to

    def _step(self, ts: float, hours: float) -> None:
        weather = {zone: self._zone_weather(zone, ts) for zone in self._weather}
        for i, h in enumerate(self.households):
            weekday, minute = self._local(h.zone, ts)
            outdoor = self._outdoor(i, h, ts, weather[h.zone])
            home = h.schedule.occupied(weekday, minute)
            sign = 1.0 if h.season == "heating" else -1.0
            push = sign * HVAC_RATE_C_H[h.season] if self._on[i] else 0.0
            energy = h.power_kw * hours if self._on[i] else 0.0
            gain = GAIN_C_H[home]
            temps, used = self._temps[i], self._energy[i]
            mean = sum(temps) / len(temps)
            for r, (loss, share, part) in enumerate(self._rooms[i]):
                t = temps[r]
                temps[r] = t + hours * (
                    loss * (outdoor - t) + push * share + MIXING_H * (mean - t) + gain
                )
                used[r] += energy * part
            # The thermostat switches on what it measures, noise included.
            measured = self._last[i] = self._measure(temps[self._thermostat[i]])
            error = (h.schedule.setpoint(h.season, weekday, minute) - measured) * sign
            if error > HYSTERESIS_C:  # on the wrong side of the setpoint
                self._on[i] = True
            elif error < -HYSTERESIS_C:
                self._on[i] = False

    def _emit(self, columns: dict[str, list[object]]) -> None:
        ts = self.now.timestamp()
        stamp = self.now.replace(tzinfo=None)
        interval = (self.now - self._since).total_seconds()
        for i, h in enumerate(self.households):
            weekday, minute = self._local(h.zone, ts)
            setpoint = h.schedule.setpoint(h.season, weekday, minute)
            home = h.schedule.occupied(weekday, minute)
            outdoor = self._outdoor(i, h, ts, self._zone_weather(h.zone, ts))
            outdoor = round(outdoor + self._rng.gauss(0, 0.1), 2)
            for r, room in enumerate(h.rooms):
                # The thermostat's room reports the value the thermostat switched on,
                # so a reading never contradicts the HVAC state beside it.
                t = self._last[i] if r == self._thermostat[i] else self._measure(self._temps[i][r])
                columns["household_id"].append(h.household_id)
                columns["room"].append(room.name)
                columns["ts"].append(stamp)
                columns["indoor_c"].append(t)
                columns["outdoor_c"].append(outdoor)
                columns["setpoint_c"].append(setpoint)
                columns["hvac_on"].append(self._on[i])
                columns["occupied"].append(home)
                columns["energy_kwh"].append(self._energy[i][r])
                columns["interval_s"].append(interval)
                self._energy[i][r] = 0.0
        self._since = self.now

    def _measure(self, true_c: float) -> float:
        return round(true_c + self._rng.gauss(0, 0.05), 2)

    def _outdoor(self, i: int, h: Household, ts: float, weather: float) -> float:
        local = (ts / 3600 + self._offset(h.zone, ts)) % 24
        daily = h.climate.swing_c * math.cos(2 * math.pi * (local - 15) / 24)
        return h.climate.mean_c + daily + weather + self._micro[i]

    def _zone_weather(self, zone: str, ts: float) -> float:
        """The slow weather waves of ``zone`` at ``ts``, in °C around its mean."""
        hours = ts / 3600
        return sum(
            a * math.sin(2 * math.pi * hours / period + phase)
            for a, period, phase in self._weather[zone]
        )

    def _offset(self, zone: str, ts: float) -> float:
        """Hours the zone is ahead of UTC at ``ts`` (cached per hour: the zones of the
        fleet change their offset on the hour)."""
        key = (zone, int(ts // 3600))
        offset = self._offsets.get(key)
        if offset is None:
            at = datetime.fromtimestamp(ts, self._zones[zone])
            offset = (at.utcoffset() or timedelta()).total_seconds() / 3600
            self._offsets[key] = offset
        return offset

    def _local(self, zone: str, ts: float) -> tuple[int, int]:
        """(weekday, minute after midnight) of ``ts`` in ``zone``; 0 is Monday."""
        local = ts + self._offset(zone, ts) * 3600
        days, seconds = divmod(local, 86400)
        return (int(days) + 3) % 7, int(seconds // 60)  # 1970-01-01 was a Thursday


def backfill(
    households: Sequence[Household],
    *,
    seed: int,
    end: datetime,
    days: float,
    every: timedelta = timedelta(minutes=5),
) -> tuple[Simulator, pl.DataFrame]:
    """``days`` of history up to ``end``, every ``every``; and the simulator, ready
    to go on from ``end`` (for :meth:`Simulator.live`)."""
    simulator = Simulator(households, seed=seed, start=_utc(end) - timedelta(days=days))
    return simulator, simulator.run(end, every=every)


def _room_factors(h: Household) -> list[tuple[float, float, float]]:
    """Per room: (heat loss per hour, share of the HVAC's output, share of its energy)."""
    total = sum(r.share for r in h.rooms)
    return [(r.loss / TIME_CONSTANT_H[h.insulation], r.share, r.share / total) for r in h.rooms]


def _waves(rng: random.Random) -> list[tuple[float, float, float]]:
    """Three slow waves (amplitude °C, period hours, phase): a zone's weather."""
    return [
        (rng.uniform(0.8, 2.0), rng.uniform(30, 130), rng.uniform(0, 2 * math.pi)) for _ in range(3)
    ]


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"give an aware datetime (UTC), not {at!r}")
    return at.astimezone(UTC)
