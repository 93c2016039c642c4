"""A :class:`~embedkit.cache.shared.SharedCache` over Redis, for replicas of one app.

Pass ``EmbedKit(shared_cache=RedisCache("redis://host:6379/0"))`` to every replica
(each over a copy of the same database file) and an answer one computes serves the
others. embedkit hands this class HMAC keys and authenticated values (see
:mod:`embedkit.cache.shared`), so Redis holds nothing a tenant or another app can read
or forge; this class only stores bytes.

Redis is never the truth and never on the critical path: timeouts are short, a
failure is a miss (``get``) or a no-op (``set``), and after one the cache stays out of
the way for a moment instead of making every query wait on a dead host. Failures are
logged at most once a minute, without keys, values or tracebacks.

The ``redis`` package is imported when a :class:`RedisCache` is made, so ``import
embedkit`` does not need it: ``pip install 'embedkit[redis]'``.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis as redis_py

__all__ = ["RedisCache"]

_logger = logging.getLogger(__name__)

_INSTALL = "embedkit.RedisCache needs the redis client: pip install 'embedkit[redis]'"


class RedisCache:
    """A shared result cache in Redis: thread-safe, and a miss whenever Redis is not there.

    Args:
        target: a URL (``"redis://127.0.0.1:6379/0"``, ``"rediss://..."`` for TLS,
            ``"unix:///run/redis.sock"``) or a ``redis.Redis`` client made elsewhere
            (its own timeouts and retries then apply; it must not decode responses).
        prefix: put in front of every key, so embedkit's keys are easy to find, count
            or delete, and never collide with other users of the same database.
        ttl: how long a stored answer lives (seconds or a timedelta; default one day;
            None for no expiry, leaving eviction to Redis's ``maxmemory-policy``).
            Answers are keyed by the data versions they read, so they never go stale:
            the TTL only lets answers nobody asks for again leave memory.
        max_value_bytes: answers larger than this are not stored (default 8 MiB), so
            one huge result cannot crowd out many small ones or slow every replica.
        socket_timeout: seconds to wait for a reply on an open connection (URL only;
            default 0.25).
        socket_connect_timeout: seconds to wait for a connection (URL only; default 0.1).
        retry_after: after a failure, seconds during which calls skip Redis (a miss
            at once) before trying it again, so a down host costs one timeout per
            period, not one per query (default 1; 0 tries every call).
        log_every: log a failure at most once per this many seconds (default 60).
    """

    def __init__(
        self,
        target: str | redis_py.Redis,
        /,
        *,
        prefix: str = "embedkit:",
        ttl: float | timedelta | None = timedelta(days=1),
        max_value_bytes: int = 8 * 2**20,
        socket_timeout: float | None = None,
        socket_connect_timeout: float | None = None,
        retry_after: float = 1.0,
        log_every: float = 60.0,
    ) -> None:
        try:
            import redis as redis_py
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError as exc:
            raise ImportError(_INSTALL) from exc
        seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else ttl
        if seconds is not None and seconds < 0.001:
            raise ValueError(f"RedisCache(ttl={ttl!r}): a positive duration, or None")
        if max_value_bytes < 0:
            raise ValueError(f"RedisCache(max_value_bytes={max_value_bytes}): 0 or more bytes")
        if retry_after < 0 or log_every < 0:
            raise ValueError("RedisCache: retry_after and log_every are 0 or more seconds")
        for name, value in (
            ("socket_timeout", socket_timeout),
            ("socket_connect_timeout", socket_connect_timeout),
        ):
            if value is not None and value <= 0:
                raise ValueError(f"RedisCache({name}={value}): a positive number of seconds")
        if isinstance(target, str):
            # No retries: a miss costs less than waiting for a host that may be gone.
            self._client: Any = redis_py.Redis.from_url(
                target,
                socket_timeout=0.25 if socket_timeout is None else socket_timeout,
                socket_connect_timeout=(
                    0.1 if socket_connect_timeout is None else socket_connect_timeout
                ),
                retry=Retry(NoBackoff(), 0),
            )
            self._owned = True
        elif callable(getattr(target, "get", None)) and callable(getattr(target, "set", None)):
            if socket_timeout is not None or socket_connect_timeout is not None:
                raise TypeError(
                    "RedisCache: timeouts apply to a URL; set them on the redis client you pass"
                )
            self._client, self._owned = target, False
        else:
            raise TypeError(
                f"RedisCache(target=...): a redis:// URL or a redis.Redis client, "
                f"not {type(target).__name__}"
            )
        self.prefix = prefix
        self.ttl_ms = None if seconds is None else int(seconds * 1000)
        self.max_value_bytes = max_value_bytes
        self.retry_after = retry_after
        self.log_every = log_every
        self._socket_errors = (redis_py.ConnectionError, redis_py.TimeoutError, OSError)
        self._lock = threading.Lock()
        self._skip_until = 0.0  # monotonic time before which Redis is not tried
        self._logged_at: float | None = None
        self._unlogged = 0  # failures since the last log line

    def get(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or None (also when Redis fails)."""
        if self._resting():
            return None
        try:
            value = self._client.get(self.prefix + key)
        except Exception as exc:  # the cache is never the truth: a failure is a miss
            self._failed(exc)
            return None
        # A client that decodes responses returns str: not embedkit's bytes, so a miss.
        return value if isinstance(value, bytes) else None

    def set(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key`` with the TTL; skipped when too large or on failure."""
        if len(value) > self.max_value_bytes or self._resting():
            return
        try:
            self._client.set(self.prefix + key, value, px=self.ttl_ms)
        except Exception as exc:
            self._failed(exc)

    def close(self) -> None:
        """Close the connections this cache opened (a client passed in is left open)."""
        if self._owned:
            self._client.close()

    def __repr__(self) -> str:
        return f"RedisCache({self._where()}, prefix={self.prefix!r})"

    def _resting(self) -> bool:
        return self._skip_until > time.monotonic()

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            self._skip_until = now + self.retry_after
            if self._logged_at is not None and now - self._logged_at < self.log_every:
                self._unlogged += 1
                return
            self._logged_at, skipped, self._unlogged = now, self._unlogged, 0
        # Only the error's class, and the text of connection errors (which name a host,
        # never a key): no key, value or traceback reaches the log.
        name = type(exc).__name__
        text = f"{name}: {exc}" if isinstance(exc, self._socket_errors) else name
        more = f" (and {skipped} more since the last report)" if skipped else ""
        _logger.warning(
            "shared cache %s failed (%s)%s; answering from the database, trying Redis again in %gs",
            self._where(),
            text,
            more,
            self.retry_after,
        )

    def _where(self) -> str:
        """Host, port and database of the client, never its password."""
        pool = getattr(self._client, "connection_pool", None)
        kwargs: dict[str, Any] = getattr(pool, "connection_kwargs", {}) or {}
        if "path" in kwargs:
            return f"unix://{kwargs['path']}"
        if "host" in kwargs:
            return f"redis://{kwargs['host']}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
        return type(self._client).__name__
