"""A cache several app processes share: the interface, and an in-memory reference.

Replicas of an app behind a load balancer each hold their own in-process cache; a
shared backend lets one replica's answer serve the others. Any store with ``get``
and ``set`` of bytes fits (Redis, Memcached, a database table): implement
:class:`SharedCache` and pass it as ``EmbedKit(shared_cache=...)``.

Keys are HMACs, under the store's own random key kept in its database file, of
what the answer depends on (the compiled SQL, every bound value, the tenant's view
of each dataset read: engines/versions.py): a key reveals no tenant or query, and
only processes over the same database file compute the same keys, so replicas share
and other apps never collide. Values are Arrow IPC bytes of the rows with an HMAC in
front; an altered value is a miss. A replica that has not seen an append still
computes its keys from its own (older) views and so can only read answers for
those; a view names the same rows in every process, restarted or not, as long as
replicas apply the same appends in the same order. Replicas share answers when they
open the same database file (or copies of it); an in-memory store has a key of its
own.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Protocol, runtime_checkable

__all__ = ["MemoryCache", "SharedCache"]


@runtime_checkable
class SharedCache(Protocol):
    """What embedkit needs from a shared cache. Both calls must be thread-safe, and may
    fail: embedkit treats any exception as a miss (the cache is never the truth)."""

    def get(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or None."""
        ...

    def set(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key`` (the store may evict it at any time)."""
        ...


class MemoryCache:
    """A :class:`SharedCache` in this process's memory, for tests and single hosts:
    several EmbedKit objects given the same one share answers."""

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def set(self, key: str, value: bytes) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            self._size -= len(old or b"")
            self._items[key] = value
            self._size += len(value)
            while self._size > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)
