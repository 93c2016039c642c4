"""An in-process cache with a byte budget and single-flight.

:class:`LocalCache` keeps the most recently used entries up to ``max_bytes``
(sizes are the caller's estimate) and makes concurrent requests for the same key
share one computation: the first caller computes, the others wait for its
answer. A failed computation is not cached; every waiter gets the error.

Keys always include the data versions an entry was computed from (as its tenant
sees them: engines/versions.py), so an entry is never invalidated by time: an
append moves a version, new requests use new keys, and the old entry ages out of
the LRU.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["CacheStats", "LocalCache"]

V = TypeVar("V")


@dataclass(frozen=True)
class CacheStats:
    """What a cache did since it was made."""

    hits: int
    misses: int
    waits: int  # requests that waited for a computation already running (single-flight)
    entries: int
    bytes: int
    evictions: int


class _Flight(Generic[V]):
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: V | None = None
        self.error: BaseException | None = None


class LocalCache(Generic[V]):
    """LRU entries up to ``max_bytes``, with single-flight computation.

    ``max_bytes=0`` turns caching off; single-flight still applies.
    """

    def __init__(self, max_bytes: int) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError("max_bytes must be a whole number of bytes, 0 to turn caching off")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._flights: dict[Hashable, _Flight[V]] = {}
        self._lock = threading.Lock()
        self._bytes = 0
        self._hits = self._misses = self._waits = self._evictions = 0

    def get(self, key: Hashable) -> V | None:
        """The entry for ``key`` (now the most recently used), or None."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return found[0]

    def put(self, key: Hashable, value: V, size: int) -> None:
        """Keep ``value`` under ``key``; entries larger than the budget are not kept."""
        if self.max_bytes == 0 or size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes and self._entries:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
                self._evictions += 1

    def get_or_compute(
        self, key: Hashable, compute: Callable[[], V], size: Callable[[V], int]
    ) -> tuple[V, bool]:
        """The cached value of ``key``, or the one ``compute`` returns (computed once
        however many threads ask at the same time). The flag says whether it was a hit."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self._hits += 1
                return found[0], True
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
                self._misses += 1
            else:
                self._waits += 1
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            assert flight.value is not None
            return flight.value, True
        try:
            value = compute()
        except BaseException as err:
            flight.error = err
            raise
        else:
            flight.value = value
            self.put(key, value, size(value))
            return value, False
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def stats(self) -> CacheStats:
        """Hits, misses, waits, entries, bytes and evictions so far."""
        with self._lock:
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                waits=self._waits,
                entries=len(self._entries),
                bytes=self._bytes,
                evictions=self._evictions,
            )
