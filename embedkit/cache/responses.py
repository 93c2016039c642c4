"""Cached embed responses: the bytes of a widget's answer, its ETag and compressed forms.

An entry belongs to one *scope* (what a grant lets its viewer see: resource, tenant,
claims, locked and editable params, display settings), one widget, one request (its
params, page, order and format) and one minute (relative dates such as "last 7 days"
move at most once a minute). It stays valid while the data versions of the datasets
its queries read, as the scope's tenant sees them, are unchanged: an append of that
tenant's rows to any of them (or any change of a public one) makes it stale at once;
other tenants' appends, and appends elsewhere, do not. Two viewers with the same scope
share entries; a viewer of another scope never reaches them, since the scope is part of
the key.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from collections.abc import Callable, Hashable, Mapping

import brotli

from embedkit.cache.local import LocalCache

__all__ = ["COMPRESS_FROM", "Body", "ResponseCache", "make_body"]

#: Bodies at least this long are also kept compressed (gzip and brotli).
COMPRESS_FROM = 1024


class Body:
    """A response body with what serving it needs; compressed forms are made on the
    first request that accepts them, then kept with it."""

    __slots__ = ("_encoded", "body", "etag", "media_type", "versions")

    def __init__(
        self, body: bytes, media_type: str, etag: str, versions: tuple[tuple[str, int], ...]
    ) -> None:
        self.body, self.media_type, self.etag, self.versions = body, media_type, etag, versions
        self._encoded: dict[str, bytes] = {}

    @property
    def size(self) -> int:
        # Room for the compressed forms too (they are smaller than the body).
        return 2 * len(self.body) + 256

    def fresh(self, versions: Mapping[str, int]) -> bool:
        """Whether every dataset this body was computed from is still at its version."""
        return all(versions.get(name) == version for name, version in self.versions)

    def encoded(self, accept_encoding: str) -> tuple[bytes, str | None]:
        """The body in the best encoding ``accept_encoding`` allows (brotli, then gzip)
        when it is large enough to gain from it; with the Content-Encoding to send."""
        if len(self.body) < COMPRESS_FROM:
            return self.body, None
        accepted = _accepted(accept_encoding)
        for name in ("br", "gzip"):
            if name in accepted:
                found = self._encoded.get(name)
                if found is None:
                    found = self._encoded[name] = (
                        brotli.compress(self.body, quality=5)
                        if name == "br"
                        else gzip.compress(self.body, compresslevel=6, mtime=0)
                    )
                return found, name
        return self.body, None


@functools.lru_cache(maxsize=256)
def _accepted(accept_encoding: str) -> frozenset[str]:
    """The codings an Accept-Encoding value names (browsers send a handful of values)."""
    names = set()
    for part in accept_encoding.split(","):
        name, _, params = part.partition(";")
        q = params.strip().lower().removeprefix("q=").strip() if params else "1"
        try:
            if float(q) <= 0:  # "gzip;q=0": explicitly not acceptable
                continue
        except ValueError:
            continue
        names.add(name.strip().lower())
    return frozenset(names)


def make_body(body: bytes, media_type: str, versions: Mapping[str, int]) -> Body:
    """A :class:`Body` with its strong ETag."""
    etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
    return Body(body, media_type, etag, tuple(sorted(versions.items())))


class ResponseCache:
    """Bodies by (scope, request, minute), checked against the data versions on read."""

    def __init__(self, max_bytes: int) -> None:
        self._bodies: LocalCache[Body] = LocalCache(max_bytes)
        self._flights: LocalCache[Body] = LocalCache(0)  # single-flight only

    @property
    def enabled(self) -> bool:
        return self._bodies.max_bytes > 0

    def get(self, key: Hashable, versions: Mapping[str, int]) -> Body | None:
        """The cached body of ``key`` if its data is unchanged, else None."""
        found = self._bodies.get(key)
        return found if found is not None and found.fresh(versions) else None

    def compute(self, key: Hashable, versions: Mapping[str, int], make: Callable[[], Body]) -> Body:
        """``make()``'s body, computed once however many requests for ``key`` arrive
        together, and kept for the next ones."""
        flight = (key, tuple(sorted(versions.items())))
        body, _ = self._flights.get_or_compute(flight, make, lambda b: b.size)
        if self.enabled:
            self._bodies.put(key, body, body.size)
        return body

    def stats(self) -> tuple[int, int]:
        """Hits and entries so far."""
        s = self._bodies.stats()
        return s.hits, s.entries
