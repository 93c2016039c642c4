"""The simulated customers: households, their homes, rooms, climates and schedules.

Nothing here is embedkit's. A real thermostat company keeps this in its own device
registry; the simulator (``simulator.py``) reads it to decide how each home behaves,
and the app reads it to know which rooms a household has and what it pays per kWh.

Every household is made from a fixed plan (its time zone and floor area, so the
size classes of the demo never change) and a seed (everything else: insulation,
comfort temperature, schedules, rooms, price). The same seed gives the same fleet.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Season = Literal["heating", "cooling"]
Insulation = Literal["poor", "average", "good"]

#: Hours it takes an unheated home to lose 63% of its lead over the outdoor temperature.
TIME_CONSTANT_H: dict[Insulation, float] = {"poor": 16.0, "average": 28.0, "good": 45.0}
#: Rooms a home can have, in the order they are listed.
ROOMS = ("living", "kitchen", "bedroom", "office", "kids")
#: The thermostat hangs in the living room: it switches the heat pump (or the air
#: conditioner) by the temperature there.
THERMOSTAT_ROOM = "living"


@dataclass(frozen=True)
class Climate:
    """Outdoor weather of a time zone: a daily mean, a swing around it, and the season.

    The simulator keeps one season per zone: it is always winter in Berlin and
    summer in Sydney here, so that a demo started any day of the year looks alive.
    """

    zone: str
    mean_c: float
    swing_c: float  # half the gap between the afternoon high and the night low
    season: Season
    currency: str
    price_kwh: tuple[float, float]  # range of electricity prices, in ``currency``


CLIMATES: dict[str, Climate] = {
    c.zone: c
    for c in (
        Climate("Europe/Berlin", 1.0, 4.0, "heating", "EUR", (0.30, 0.40)),
        Climate("Europe/London", 5.0, 3.0, "heating", "GBP", (0.24, 0.30)),
        Climate("Europe/Stockholm", -3.0, 3.0, "heating", "SEK", (1.60, 2.40)),
        Climate("America/Chicago", -2.0, 5.0, "heating", "USD", (0.14, 0.19)),
        Climate("America/New_York", 1.0, 4.5, "heating", "USD", (0.18, 0.24)),
        Climate("America/Toronto", -5.0, 4.5, "heating", "CAD", (0.12, 0.17)),
        Climate("Australia/Sydney", 27.0, 5.0, "cooling", "AUD", (0.30, 0.36)),
    )
}


@dataclass(frozen=True)
class Room:
    """One room: how fast it loses heat and how much of the HVAC's output reaches it,
    both relative to the home's average (1.0)."""

    name: str
    loss: float
    share: float


@dataclass(frozen=True)
class Schedule:
    """The thermostat program, in local time.

    ``night_setback_c`` and ``away_setback_c`` say by how many degrees the program
    lowers the setpoint (raises it, when cooling) at night and while nobody is home;
    0 means the program has no such setback. ``away`` is the weekday span when the
    home is empty (minutes after midnight), or None when someone is always home.
    """

    comfort_c: float
    night_setback_c: float
    away_setback_c: float
    night: tuple[int, int] = (22 * 60 + 30, 6 * 60 + 30)
    away: tuple[int, int] | None = None

    def occupied(self, weekday: int, minute: int) -> bool:
        """Is someone home at ``minute`` after local midnight of ``weekday`` (0 Monday)?"""
        if self.away is None or weekday >= 5:
            return True
        return not self.away[0] <= minute < self.away[1]

    def setpoint(self, season: Season, weekday: int, minute: int) -> float:
        """The programmed setpoint at that local time."""
        start, end = self.night
        if minute >= start or minute < end:
            setback = self.night_setback_c
        elif not self.occupied(weekday, minute):
            setback = self.away_setback_c
        else:
            setback = 0.0
        return self.comfort_c - setback if season == "heating" else self.comfort_c + setback


@dataclass(frozen=True)
class Household:
    """A customer: one home, one thermostat, one tenant of the analytics."""

    household_id: str
    name: str
    climate: Climate
    size_m2: float
    insulation: Insulation
    rooms: tuple[Room, ...]
    schedule: Schedule
    price_kwh: float

    @property
    def zone(self) -> str:
        return self.climate.zone

    @property
    def season(self) -> Season:
        return self.climate.season

    @property
    def currency(self) -> str:
        return self.climate.currency

    @property
    def room_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.rooms)

    @property
    def size_class(self) -> str:
        """``small`` (under 90 m²), ``medium`` (90 to 150 m²) or ``large``: the
        similar-homes benchmark compares homes of one class and season."""
        if self.size_m2 < 90:
            return "small"
        return "medium" if self.size_m2 < 150 else "large"

    @property
    def power_kw(self) -> float:
        """Electric power the heat pump (or air conditioner) draws while it runs."""
        return round(self.size_m2 * (0.030 if self.season == "heating" else 0.025), 2)


#: The demo fleet: (household id, family name, time zone, floor area in m²). Homes
#: heated in winter: five small ones and five medium ones (enough for a benchmark each),
#: one large one; and one cooled home in Sydney. Those last two have no similar homes
#: to compare with, and the app says so.
PLAN: tuple[tuple[str, str, str, float], ...] = (
    ("h01", "Becker", "Europe/Berlin", 72),
    ("h02", "Johnson", "America/Chicago", 128),
    ("h03", "Patel", "Europe/London", 64),
    ("h04", "Nguyen", "Australia/Sydney", 118),
    ("h05", "Lindqvist", "Europe/Stockholm", 185),
    ("h06", "Tremblay", "America/Toronto", 96),
    ("h07", "Schulz", "Europe/Berlin", 84),
    ("h08", "Garcia", "America/New_York", 140),
    ("h09", "Evans", "Europe/London", 58),
    ("h10", "Miller", "America/Chicago", 110),
    ("h11", "Berg", "Europe/Stockholm", 80),
    ("h12", "Rossi", "America/New_York", 135),
)


def make_fleet(
    seed: int = 7, plan: Sequence[tuple[str, str, str, float]] = PLAN
) -> list[Household]:
    """The households of ``plan``, their details drawn from ``seed`` (deterministic)."""
    rng = random.Random(seed)
    return [_household(rng, *entry) for entry in plan]


def _household(
    rng: random.Random, household_id: str, name: str, zone: str, size_m2: float
) -> Household:
    climate = CLIMATES[zone]
    heating = climate.season == "heating"
    insulation: Insulation = rng.choice(("poor", "average", "average", "good"))
    extra = rng.sample(ROOMS[3:], k=rng.randint(1, 2))
    names = ["living", "kitchen", "bedroom", *sorted(extra, key=ROOMS.index)]
    shares = [rng.uniform(0.8, 1.2) for _ in names]
    mean_share = sum(shares) / len(shares)
    rooms = tuple(
        Room(n, loss=round(rng.uniform(0.8, 1.3), 2), share=round(s / mean_share, 3))
        for n, s in zip(names, shares, strict=True)
    )
    works = rng.random() < 0.6  # empty on weekday office hours
    leave = rng.choice((7 * 60 + 30, 8 * 60, 8 * 60 + 30))
    schedule = Schedule(
        comfort_c=round(rng.uniform(20.0, 22.0) if heating else rng.uniform(23.5, 25.0), 1),
        night_setback_c=rng.choice((0.0, 0.0, 2.0, 3.0)),
        away_setback_c=rng.choice((0.0, 3.0)) if works else 0.0,
        away=(leave, leave + 9 * 60 + 30) if works else None,
    )
    low, high = climate.price_kwh
    return Household(
        household_id=household_id,
        name=name,
        climate=climate,
        size_m2=float(size_m2),
        insulation=insulation,
        rooms=rooms,
        schedule=schedule,
        price_kwh=round(rng.uniform(low, high), 3),
    )
