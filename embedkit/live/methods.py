"""The live side of :class:`~embedkit.EmbedKit`: streaming appends, and telling open
embeds about them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from embedkit.engines.appends import as_arrow
from embedkit.engines.duckdb import DuckDBStore
from embedkit.live.hub import ChangeHub
from embedkit.trust.ingest import BatchReport
from embedkit.trust.service import Trust

__all__ = ["LiveMethods", "StreamReport"]

#: Seconds between retention runs while a stream appends.
RETENTION_EVERY = 60.0


@dataclass
class StreamReport:
    """What a stream stored: one :class:`BatchReport` per append, and totals."""

    dataset: str
    batches: list[BatchReport] = field(default_factory=list)

    @property
    def received(self) -> int:
        return sum(b.received for b in self.batches)

    @property
    def stored(self) -> int:
        return sum(b.stored for b in self.batches)

    @property
    def quarantined(self) -> int:
        return sum(b.quarantined for b in self.batches)


class _Buffer:
    """Rows waiting for their append: at most ``limit`` rows, then flushed."""

    def __init__(self, dataset: str, limit: int, delay: float) -> None:
        if limit < 1:
            raise ValueError("batch_rows must be at least 1")
        if delay < 0:
            raise ValueError("max_delay must be 0 or more seconds")
        self.dataset, self.limit, self.delay = dataset, limit, delay
        self.parts: list[pa.Table] = []
        self.rows = 0
        self.since = 0.0  # monotonic time of the oldest buffered row
        self.retained = 0.0  # monotonic time of the last retention run

    def add(self, item: Any) -> None:
        rows = [item] if isinstance(item, dict) else item
        table = as_arrow(rows, self.dataset)
        if table.num_rows == 0:
            return
        if not self.parts:
            self.since = time.monotonic()
        self.parts.append(table)
        self.rows += table.num_rows

    def due(self) -> bool:
        return self.rows >= self.limit or (
            bool(self.parts) and time.monotonic() - self.since >= self.delay
        )

    def left(self) -> float | None:
        """Seconds until the buffered rows are due (None when there are none)."""
        if not self.parts:
            return None
        return max(0.0, self.delay - (time.monotonic() - self.since))

    def take(self) -> pa.Table | None:
        if not self.parts:
            return None
        table = pa.concat_tables(self.parts, promote_options="permissive")
        self.parts, self.rows = [], 0
        return table


class LiveMethods:
    """Streaming appends and the change feed (mixed into EmbedKit)."""

    _store: DuckDBStore
    _trust: Trust
    _changes: ChangeHub
    _clock: Callable[[], datetime]
    _retained: dict[str, datetime]  # each dataset's last retention cutoff

    def _publish(self, report: BatchReport) -> None:
        """Tell the streams of the tenants whose rows were stored (everyone's, for a
        public dataset) that these datasets changed."""
        if not report.versions or report.stored == 0:
            return
        definition = self._store.definitions.get(report.dataset)
        if definition is not None and (definition.public or not definition.tenant_key):
            self._changes.publish(report.versions, None)
            return
        stored = [t for t, (received, held) in report.tenants.items() if received > held]
        if stored:
            self._changes.publish(report.versions, stored)

    def apply_retention(self, dataset: str | None = None) -> dict[str, int]:
        """Roll up rows older than each dataset's :class:`~embedkit.Retention` (or only
        ``dataset``'s); returns the rows removed per dataset. Streaming appends run it
        by themselves about once a minute."""
        from embedkit.live.retention import run_retention

        out: dict[str, int] = {}
        for name, definition in list(self._store.definitions.items()):
            policy = getattr(definition, "retention", None)
            if policy is None or (dataset is not None and name != dataset):
                continue
            assert definition.time is not None  # checked at registration
            removed, edge, _ = run_retention(
                self._store, name, policy, definition.time, self._clock(), self._retained.get(name)
            )
            self._retained[name] = edge
            out[name] = removed
        if dataset is not None and dataset not in out:
            raise ValueError(f"dataset '{dataset}' has no retention (Dataset(retention=...))")
        return out

    def end_live_streams(self) -> int:
        """End every open live stream of this process's embeds (before a shutdown or a
        deploy). Pages reconnect, here or to another replica, and receive what changed
        while they were away. Returns how many streams were open."""
        return self._changes.close_all()

    def stream(
        self,
        dataset: str,
        source: Iterable[Any],
        *,
        batch_rows: int = 5_000,
        max_delay: float = 1.0,
        on_batch: Callable[[BatchReport], None] | None = None,
    ) -> StreamReport:
        """Append what ``source`` yields, in batches, until it ends.

        ``source`` yields rows (dicts) or batches (anything :meth:`append` takes).
        Rows are appended once ``batch_rows`` have gathered or the oldest has waited
        ``max_delay`` seconds (checked as items arrive; use :meth:`stream_async` for
        a source that can pause), so at most about ``batch_rows`` rows are held in
        memory. Each batch is one :meth:`append`: checked against the contract,
        atomic, bad rows quarantined; a rejected batch raises
        :class:`~embedkit.errors.BatchRejected` after the batches before it are
        stored. Open embeds of the tenants concerned update as each batch lands.
        """
        buffer = _Buffer(dataset, batch_rows, max_delay)
        report = StreamReport(dataset)
        for item in source:
            buffer.add(item)
            if buffer.due():
                self._flush(buffer, report, on_batch)
        self._flush(buffer, report, on_batch)
        return report

    async def stream_async(
        self,
        dataset: str,
        source: AsyncIterable[Any],
        *,
        batch_rows: int = 5_000,
        max_delay: float = 1.0,
        on_batch: Callable[[BatchReport], None] | None = None,
    ) -> StreamReport:
        """:meth:`stream` for an async source: rows are appended after ``max_delay``
        even while the source is quiet, and appends run on a worker thread so the
        event loop keeps serving."""
        buffer = _Buffer(dataset, batch_rows, max_delay)
        report = StreamReport(dataset)
        items = source.__aiter__()
        pending: asyncio.Task[Any] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(items.__anext__())
                done, _ = await asyncio.wait({pending}, timeout=buffer.left())
                if done:
                    try:
                        item = pending.result()
                    except StopAsyncIteration:
                        pending = None
                        break
                    pending = None
                    buffer.add(item)
                if buffer.due():
                    await asyncio.to_thread(self._flush, buffer, report, on_batch)
        finally:
            if pending is not None:
                pending.cancel()
        await asyncio.to_thread(self._flush, buffer, report, on_batch)
        return report

    def _flush(
        self,
        buffer: _Buffer,
        report: StreamReport,
        on_batch: Callable[[BatchReport], None] | None,
    ) -> None:
        table = buffer.take()
        if table is None:
            return
        batch = self._trust.append(buffer.dataset, table)
        report.batches.append(batch)
        if on_batch is not None:
            on_batch(batch)
        definition = self._store.definitions.get(buffer.dataset)
        due = time.monotonic() - buffer.retained >= RETENTION_EVERY
        if getattr(definition, "retention", None) is not None and due:
            buffer.retained = time.monotonic()
            self.apply_retention(buffer.dataset)
