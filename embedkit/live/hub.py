"""Who should hear about an append: a change feed kept per tenant.

Every append stores rows of some tenants and moves the data versions of some
datasets (the one appended to, and those built on it). The hub tells exactly the
live streams of *those tenants* that read *those datasets*, and no one else. A
stream of another tenant is not woken, so it cannot learn even when someone else's
data arrived. Rows of a public dataset are everyone's: an append to one wakes every
stream that reads it.

Each tenant has its own change counter, and public appends have a counter of
their own. A stream's event id is the pair (``"7.2"``), so it counts only changes
its viewer may know about, and a reconnecting page (``Last-Event-ID``) is told
whether anything it may see changed while it was away.

Appends run on worker threads; streams wait in the event loop. A subscription
is woken with ``call_soon_threadsafe``, and keeps the set of datasets changed
since it last looked, so a burst of appends is one wake-up (the stream then waits
a short while for more before it recomputes: see ``coalesce`` in the route).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["ChangeHub", "Subscription"]

_PUBLIC = object()  # the key of the public counter


@dataclass(eq=False)
class Subscription:
    """One live stream's interest: a tenant and the datasets its widgets read."""

    tenant: str | None
    datasets: frozenset[str]
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event = field(default_factory=asyncio.Event)
    changed: set[str] = field(default_factory=set)  # datasets changed since taken
    closed: bool = False  # set by ChangeHub.close_all: the stream ends (the page reconnects)

    def take(self) -> set[str]:
        """The datasets changed since the last call, and clear the wake-up."""
        self.event.clear()
        changed, self.changed = self.changed, set()
        return changed

    def _wake(self, datasets: set[str]) -> None:  # in the loop's thread
        self.changed |= datasets
        self.event.set()

    def _close(self) -> None:  # in the loop's thread
        self.closed = True
        self.event.set()


class ChangeHub:
    """Tells live streams which datasets changed for their tenant (see module doc)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[object, int] = {}
        self._subs: set[Subscription] = set()

    def position(self, tenant: str | None) -> str:
        """The event id a stream of ``tenant`` is at now: ``"<tenant>.<public>"``."""
        with self._lock:
            return f"{self._counts.get(_key(tenant), 0)}.{self._counts.get(_PUBLIC, 0)}"

    def subscribe(self, tenant: str | None, datasets: Iterable[str]) -> Subscription:
        """A subscription for the running event loop; :meth:`unsubscribe` it when done."""
        sub = Subscription(tenant, frozenset(datasets), asyncio.get_running_loop())
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def close_all(self) -> int:
        """End every open stream (before a shutdown or a deploy: pages reconnect, to
        this process or another, and get what they missed). Returns how many."""
        with self._lock:
            subs, self._subs = list(self._subs), set()
        for sub in subs:
            with contextlib.suppress(RuntimeError):  # its loop has closed already
                sub.loop.call_soon_threadsafe(sub._close)
        return len(subs)

    @property
    def subscribers(self) -> int:
        """Streams open now."""
        with self._lock:
            return len(self._subs)

    def publish(self, datasets: Iterable[str], tenants: Iterable[str | None] | None) -> None:
        """``datasets`` changed for rows of ``tenants`` (None: a public append, which is
        everyone's). Wakes the subscriptions of those tenants that read any of them."""
        changed = set(datasets)
        if not changed:
            return
        with self._lock:
            if tenants is None:
                self._counts[_PUBLIC] = self._counts.get(_PUBLIC, 0) + 1
                reached = [s for s in self._subs if s.datasets & changed]
            else:
                keys = {_key(t) for t in tenants}
                for key in keys:
                    self._counts[key] = self._counts.get(key, 0) + 1
                reached = [s for s in self._subs if _key(s.tenant) in keys and s.datasets & changed]
        for sub in reached:
            try:
                sub.loop.call_soon_threadsafe(sub._wake, changed & sub.datasets)
            except RuntimeError:  # its loop has closed: the stream is gone
                self.unsubscribe(sub)


def _key(tenant: str | None) -> object:
    return ("tenant", None if tenant is None else str(tenant))
