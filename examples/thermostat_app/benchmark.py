"""The similar-homes benchmark: how much energy homes like yours used, revealing nobody.

Every household sees its daily energy next to the average of *similar homes*: homes
of the same size class (small, medium, large) in the same season (heating or cooling).
That average is published in ``peer_days``, a public dataset every household may read,
so it must never let anyone learn a single other household's use. The rules:

1. **At least 5 homes.** A group's day is published only when 5 or more households
   had complete data that day (``MIN_HOMES``); smaller groups are never published.
   A household knows its own figure, so it can take itself out of the average, and
   two colluding households can take both out: what is left is still the average of
   3 or more other homes, never one home's figure.
2. **One number per group and day, the same for everyone.** No "average of the others"
   tailored per household: two such numbers would give away each other's use. The
   group's size is not published either.
3. **Published once, never revised.** A day is published after it has ended for every
   home of the fleet (plus ``GRACE``), from the households whose data covers the whole
   day, and never recomputed. A revision (a late household's readings arriving, a
   partial day growing) would make the change between two versions one household's
   use.
4. **On the clock, not on the data.** The job runs every few minutes and publishes
   days that have ended; when an update lands says nothing about anyone's activity.
   Appends to a public dataset wake every viewer's live stream, so that matters.

The job reads each household's daily energy through ``kit.query`` as that household
(the same definition of energy as the charts) and writes two datasets: ``peer_days``
(the benchmark) and ``daily_energy`` (each household's own day next to its group's
average, for its chart).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import polars as pl

import embedkit as ek

from .accounts import owner_principal
from .fleet import Household

MIN_HOMES = 5
GRACE = timedelta(minutes=30)
#: A day counts for a household when its readings cover at least this share of it.
COMPLETE = 0.95

PEER_SCHEMA: dict[str, pl.DataType] = {
    "season": pl.String(),
    "size_class": pl.String(),
    "day": pl.Date(),
    "avg_kwh": pl.Float64(),
}
DAILY_SCHEMA: dict[str, pl.DataType] = {
    "household_id": pl.String(),
    "day": pl.Date(),
    "energy_kwh": pl.Float64(),
    "peer_kwh": pl.Float64(),
}


def peer_averages(days: pl.DataFrame, *, min_homes: int = MIN_HOMES) -> pl.DataFrame:
    """The benchmark rows of ``days`` (one row per household and local day, with
    ``season``, ``size_class``, ``day``, ``energy_kwh`` and ``complete``): the mean
    energy per group and day, for groups of at least ``min_homes`` complete homes."""
    return (
        days.filter(pl.col("complete"))
        .group_by("season", "size_class", "day")
        .agg(pl.len().alias("homes"), pl.col("energy_kwh").mean().alias("avg_kwh"))
        .filter(pl.col("homes") >= min_homes)
        .select(list(PEER_SCHEMA))
        .cast(PEER_SCHEMA)  # type: ignore[arg-type]
        .sort("season", "size_class", "day")
    )


def household_days(kit: ek.EmbedKit, household: Household, first: date, last: date) -> pl.DataFrame:
    """The household's energy per local day from ``first`` to ``last``, and whether
    its readings cover the whole day, read through the model as its owner."""
    result = kit.query(
        ek.Query(
            measures=("readings.energy", "readings.seconds"),
            time=(
                ek.Time(
                    "readings.ts", grain="day", date_range=(first.isoformat(), last.isoformat())
                ),
            ),
            timezone=household.zone,
        ),
        principal=owner_principal(household),
    )
    zone = ZoneInfo(household.zone)
    rows = []
    for row in result.to_pylist():
        day = row["readings.ts.day"].date()
        start = datetime.combine(day, time(), zone)
        length = (datetime.combine(day + timedelta(days=1), time(), zone) - start).total_seconds()
        covered = (row["readings.seconds"] or 0.0) / len(household.rooms)
        rows.append(
            {
                "household_id": household.household_id,
                "season": household.season,
                "size_class": household.size_class,
                "day": day,
                "energy_kwh": row["readings.energy"] or 0.0,
                "complete": covered >= COMPLETE * length,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "household_id": pl.String,
            "season": pl.String,
            "size_class": pl.String,
            "day": pl.Date,
            "energy_kwh": pl.Float64,
            "complete": pl.Boolean,
        },
    )


class Benchmark:
    """Publishes the benchmark of every ended day, once (see the module docstring).

    Args:
        kit: the app's kit, with ``readings``, ``peer_days`` and ``daily_energy``.
        households: the whole fleet.
        since: the first local day that may hold readings.
    """

    def __init__(
        self,
        kit: ek.EmbedKit,
        households: Sequence[Household],
        *,
        since: date,
        min_homes: int = MIN_HOMES,
        grace: timedelta = GRACE,
    ) -> None:
        self.kit = kit
        self.households = list(households)
        self.min_homes = min_homes
        self.grace = grace
        self.next_day = since
        #: (season, size class) of every group published so far.
        self.groups: set[tuple[str, str]] = set()

    def last_ended(self, now: datetime) -> date:
        """The latest day that has ended, plus the grace, in every home's time zone."""
        day = now.astimezone(UTC).date() + timedelta(days=1)
        zones = {ZoneInfo(h.zone) for h in self.households}
        while any(
            datetime.combine(day + timedelta(days=1), time(), z) + self.grace > now for z in zones
        ):
            day -= timedelta(days=1)
        return day

    def has_peers(self, household: Household) -> bool:
        """Whether the household's group has ever been published."""
        return (household.season, household.size_class) in self.groups

    def refresh(self, now: datetime) -> list[date]:
        """Publish the days that ended since the last call; returns them."""
        first, last = self.next_day, self.last_ended(now)
        if first > last:
            return []
        days = pl.concat([household_days(self.kit, h, first, last) for h in self.households])
        peers = peer_averages(days, min_homes=self.min_homes)
        own = (
            days.filter(pl.col("complete"))
            .join(peers, on=["season", "size_class", "day"], how="left")
            .select("household_id", "day", "energy_kwh", pl.col("avg_kwh").alias("peer_kwh"))
            .cast(DAILY_SCHEMA)  # type: ignore[arg-type]
        )
        if peers.height:
            self.kit.append("peer_days", peers)
        if own.height:
            self.kit.append("daily_energy", own)
        self.groups |= set(peers.select("season", "size_class").iter_rows())
        self.next_day = last + timedelta(days=1)
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]
