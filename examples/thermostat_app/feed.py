"""The live device feed: simulated readings streamed into the kit as they arrive.

In production this would read the devices' message queue; here the simulator is the
queue. The host's whole job is three lines: take readings as they come, stamp the
price on them, and hand them to ``kit.stream_async``. embedkit checks each batch
against the contract (bad rows go to quarantine), stores it atomically, and tells the
open embeds *of the households in the batch*, and no others, that their data changed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

import polars as pl

import embedkit as ek

from .analytics import priced
from .fleet import Household
from .simulator import Simulator

log = logging.getLogger("thermostat_app.feed")


async def priced_readings(
    simulator: Simulator,
    households: Sequence[Household],
    *,
    tick: float,
    clock: Callable[[], datetime],
) -> AsyncIterator[pl.DataFrame]:
    """The simulator's readings every ``tick`` seconds, priced."""
    async for readings in simulator.live(tick=tick, clock=clock):
        yield priced(readings, households)


def _report(batch: ek.BatchReport) -> None:
    if batch.quarantined:
        log.warning("readings: %d of %d rows quarantined", batch.quarantined, batch.received)


async def run_feed(
    kit: ek.EmbedKit,
    simulator: Simulator,
    households: Sequence[Household],
    *,
    tick: float,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Stream readings into ``readings`` until cancelled (``clock`` says when "now" is).

    Each tick's readings (one row per room of the fleet) are one append:
    ``max_delay=0`` appends what has arrived at once rather than waiting to fill a
    batch, since a tick is already a natural batch.
    """
    await kit.stream_async(
        "readings",
        priced_readings(simulator, households, tick=tick, clock=clock),
        batch_rows=5_000,
        max_delay=0.0,
        on_batch=_report,
    )
