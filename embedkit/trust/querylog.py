"""The query log: the last N queries, with filters, a Polars view, NDJSON export and subscribers.

:class:`~embedkit.trust.monitor.Monitor` owns one and appends every query it records.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

import orjson
import polars as pl

__all__ = ["OUTCOMES", "Outcome", "QueryLog", "QueryLogEntry"]

Outcome = Literal["ok", "client_error", "server_error"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "client_error", "server_error")

_logger = logging.getLogger(__name__)

_SCHEMA = pl.Schema(
    {
        "at": pl.Datetime("us", "UTC"),
        "channel": pl.String(),
        "tenant": pl.String(),
        "subject": pl.String(),
        "resource": pl.String(),
        "datasets": pl.List(pl.String()),
        "query": pl.String(),  # JSON text: queries have no fixed shape
        "ms": pl.Float64(),
        "rows": pl.Int64(),
        "outcome": pl.Enum(list(OUTCOMES)),
        "error": pl.String(),
        "cache": pl.String(),
        "data_versions": pl.List(pl.Struct({"dataset": pl.String(), "version": pl.Int64()})),
    }
)


def _json_text(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


@dataclass(frozen=True)
class QueryLogEntry:
    """One finished query. ``at`` is when it finished, in UTC; ``ms`` how long it took."""

    at: datetime
    channel: str
    tenant: str | None
    subject: str | None
    resource: str | None
    datasets: tuple[str, ...]
    query: dict[str, Any] | None
    ms: float
    rows: int
    outcome: Outcome
    error: str | None
    cache: str
    data_versions: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict: ``at`` in ISO 8601, values JSON cannot hold as strings."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        result: dict[str, Any] = orjson.loads(_json_text(data))
        return result


class QueryLog:
    """A thread-safe ring buffer of :class:`QueryLogEntry` that tells subscribers of each one."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"log_size must be a positive number of queries, got {size!r}")
        self._lock = threading.Lock()
        self._entries: deque[QueryLogEntry] = deque(maxlen=size)
        self._subscribers: list[Callable[[QueryLogEntry], None]] = []

    def append(self, entry: QueryLogEntry) -> None:
        """Keep ``entry`` (dropping the oldest when full), then call the subscribers.

        Subscribers run in the caller's thread, outside the lock; one that raises is
        logged and skipped, so it can never break recording.
        """
        with self._lock:
            self._entries.append(entry)
            subscribers = tuple(self._subscribers)
        for callback in subscribers:
            try:
                callback(entry)
            except Exception:
                _logger.exception("query log subscriber %r failed; recording goes on", callback)

    def entries(
        self, *, since: datetime | None = None, tenant: str | None = None, limit: int | None = None
    ) -> list[QueryLogEntry]:
        """Entries oldest first: at or after ``since``, of ``tenant``, then the last ``limit``."""
        with self._lock:
            found = list(self._entries)
        if since is not None:
            start = since.replace(tzinfo=UTC) if since.tzinfo is None else since
            found = [e for e in found if e.at >= start]
        if tenant is not None:
            found = [e for e in found if e.tenant == tenant]
        if limit is not None:
            found = found[-limit:] if limit > 0 else []
        return found

    def frame(
        self, *, since: datetime | None = None, tenant: str | None = None, limit: int | None = None
    ) -> pl.DataFrame:
        """The same entries as a typed Polars frame.

        ``at`` is ``Datetime("us", "UTC")``, ``outcome`` an Enum, ``datasets`` a list of
        strings, ``query`` JSON text and ``data_versions`` a list of {dataset, version}.
        """
        found = self.entries(since=since, tenant=tenant, limit=limit)
        columns: dict[str, list[Any]] = {
            name: [getattr(e, name) for e in found] for name in _SCHEMA.names()
        }
        columns["datasets"] = [list(e.datasets) for e in found]
        columns["query"] = [None if e.query is None else _json_text(e.query) for e in found]
        columns["data_versions"] = [
            [{"dataset": k, "version": v} for k, v in e.data_versions.items()] for e in found
        ]
        return pl.DataFrame(columns, schema=_SCHEMA)

    def export(self, target: str | Path | IO[str]) -> int:
        """Write every entry as NDJSON (one :meth:`QueryLogEntry.to_json` a line); lines written."""
        lines = [_json_text(entry.to_json()) + "\n" for entry in self.entries()]
        if isinstance(target, str | Path):
            with Path(target).open("w", encoding="utf-8") as handle:
                handle.writelines(lines)
        else:
            target.writelines(lines)
        return len(lines)

    def subscribe(self, callback: Callable[[QueryLogEntry], None]) -> Callable[[], None]:
        """Call ``callback`` with each new entry; returns a function that unsubscribes."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe
