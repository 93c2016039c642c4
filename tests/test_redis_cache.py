"""RedisCache against a real redis-server: replicas over copies of one database file
share answers through it, never across scopes or data versions, never from altered
bytes, and a Redis that is down, hung or absent only costs misses.

Each replica counts its own DuckDB executions: a replica that answered without running
the query got the answer from Redis. Expected rows come from Polars over the raw rows.
"""

from __future__ import annotations

import logging
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import redis

import embedkit as ek

REDIS_SERVER = Path("/usr/bin/redis-server")
T0 = datetime(2026, 11, 1)
ROWS = pl.DataFrame(
    {
        "seller": ["acme", "acme", "acme", "globex", "globex", "initech"],
        "region": ["EU", "US", "EU", "EU", "APAC", "US"],
        "amount": [10.0, 5.0, 2.5, 700.0, 100.0, 0.25],
        "placed_at": [T0 + timedelta(days=i) for i in range(6)],
    }
)
BY_REGION = {"measures": ["orders.revenue"], "dimensions": ["orders.region"]}
KEY = re.compile(r"embedkit:[0-9a-f]{64}")


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_redis(directory: Path, port: int | None = None) -> RedisServer:
    """A throwaway redis-server on 127.0.0.1 that keeps nothing on disk, once it answers."""
    if not REDIS_SERVER.exists():
        pytest.fail(f"{REDIS_SERVER} is missing: `make` installs Debian's redis-server")
    port = port or free_port()
    log = (directory / f"redis-{port}.log").open("ab")
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        [str(REDIS_SERVER), *args, "--daemonize", "no", "--dir", str(directory)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    server = RedisServer(port, process)
    probe = redis.Redis(port=port, socket_timeout=0.2, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        try:
            probe.ping()
            probe.close()
            return server
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                text = (directory / f"redis-{port}.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server did not start:\n{text}") from None
            time.sleep(0.02)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    running = start_redis(tmp_path_factory.mktemp("redis"))
    yield running
    running.stop()


@pytest.fixture
def raw(server: RedisServer) -> Iterator[redis.Redis]:
    """A plain client on an empty server: what an operator (or attacker) of Redis sees."""
    client = server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[Callable[..., ek.EmbedKit]]:
    """Makes app replicas, each over its own copy of one database file."""
    source = tmp_path / "orders.parquet"
    ROWS.write_parquet(source)
    dataset = replace(orders(), source=str(source))
    ek.EmbedKit(dataset, database=tmp_path / "seed.duckdb").close()
    kits: list[ek.EmbedKit] = []

    def make(cache: ek.RedisCache) -> ek.EmbedKit:
        copy = tmp_path / f"replica-{len(kits)}.duckdb"
        shutil.copy(tmp_path / "seed.duckdb", copy)
        kit = ek.EmbedKit(dataset, database=copy, shared_cache=cache)
        kit.executions = 0  # type: ignore[attr-defined]
        execute = kit._store.execute

        def counted(compiled: Any) -> Any:
            kit.executions += 1  # type: ignore[attr-defined]
            return execute(compiled)

        kit._store.execute = counted  # type: ignore[method-assign]
        kits.append(kit)
        return kit

    yield make
    for kit in kits:
        kit.close()


def orders() -> ek.Dataset:
    return ek.Dataset(
        "orders",
        ROWS,
        tenant_key="seller",
        time="placed_at",
        dimensions=["region"],
        measures=[ek.Measure("revenue", "sum", sql="amount")],
    )


def expected(seller: str, rows: pl.DataFrame = ROWS) -> list[dict[str, Any]]:
    """Revenue by region of one seller, computed by Polars, not embedkit."""
    sums = rows.filter(pl.col("seller") == seller).group_by("region").agg(pl.col("amount").sum())
    renamed = sums.rename({"region": "orders.region", "amount": "orders.revenue"})
    return sorted(renamed.to_dicts(), key=repr)


def rows_of(result: ek.QueryResult) -> list[dict[str, Any]]:
    return sorted(result.to_pylist(), key=repr)


def keys(raw: redis.Redis) -> list[bytes]:
    return sorted(raw.scan_iter("*"))


def test_a_second_replica_answers_from_redis_without_running_the_query(
    server: RedisServer, raw: redis.Redis, replica: Callable[..., ek.EmbedKit]
) -> None:
    """Replica 2 never ran the query replica 1 answered, and got the same rows."""
    first = replica(ek.RedisCache(server.url))
    # A client made elsewhere works too (as long as it returns bytes).
    second = replica(ek.RedisCache(server.client()))
    acme = ek.Principal("acme")
    a = first.query(BY_REGION, principal=acme)
    assert a.cache == "miss" and first.executions == 1 and len(keys(raw)) == 1
    b = second.query(BY_REGION, principal=acme)
    assert second.executions == 0
    assert rows_of(b) == rows_of(a) == expected("acme")


def test_one_tenants_answer_never_reaches_another(
    server: RedisServer, raw: redis.Redis, replica: Callable[..., ek.EmbedKit]
) -> None:
    """The same query for another tenant is another key; and a value moved under
    another key is not trusted there."""
    first, second = replica(ek.RedisCache(server.url)), replica(ek.RedisCache(server.url))
    assert rows_of(first.query(BY_REGION, principal=ek.Principal("acme"))) == expected("acme")
    [acme_key] = keys(raw)
    globex = second.query(BY_REGION, principal=ek.Principal("globex"))
    assert second.executions == 1 and rows_of(globex) == expected("globex")
    [globex_key] = [k for k in keys(raw) if k != acme_key]
    # Someone with access to Redis copies acme's answer over globex's.
    raw.set(globex_key, raw.get(acme_key) or b"")
    third = replica(ek.RedisCache(server.url))
    assert rows_of(third.query(BY_REGION, principal=ek.Principal("globex"))) == expected("globex")
    assert third.executions == 1


def test_after_an_append_the_new_version_is_a_miss_and_keys_name_nothing(
    server: RedisServer, raw: redis.Redis, replica: Callable[..., ek.EmbedKit]
) -> None:
    """An append moves the version: the appending replica computes again and is right;
    a replica that has not seen the append still reads the answer for its own version.
    Keys are the prefix and a hex HMAC: no tenant, no SQL, no member name."""
    first, second = replica(ek.RedisCache(server.url)), replica(ek.RedisCache(server.url))
    acme = ek.Principal("acme")
    first.query(BY_REGION, principal=acme)
    row = {"seller": "acme", "region": "APAC", "amount": 4.0, "placed_at": T0}
    first.append("orders", [row])
    after = first.query(BY_REGION, principal=acme)
    assert first.executions == 2 and after.cache == "miss"
    assert rows_of(after) == expected("acme", pl.concat([ROWS, pl.DataFrame([row])]))
    assert rows_of(second.query(BY_REGION, principal=acme)) == expected("acme")
    assert second.executions == 0
    found = keys(raw)
    assert len(found) == 2 and all(KEY.fullmatch(k.decode()) for k in found)
    text = b" ".join(found).lower()
    for word in (b"acme", b"select", b"orders", b"revenue", b"region", b"seller"):
        assert word not in text


def test_an_altered_value_is_a_miss_not_wrong_rows(
    server: RedisServer, raw: redis.Redis, replica: Callable[..., ek.EmbedKit]
) -> None:
    first = replica(ek.RedisCache(server.url))
    first.query(BY_REGION, principal=ek.Principal("acme"))
    [key] = keys(raw)
    stored = raw.get(key)
    assert stored is not None
    for at in (0, 40, len(stored) - 1):  # the MAC, the Arrow header, the last byte
        raw.set(key, stored[:at] + bytes([stored[at] ^ 1]) + stored[at + 1 :])
        kit = replica(ek.RedisCache(server.url))
        assert rows_of(kit.query(BY_REGION, principal=ek.Principal("acme"))) == expected("acme")
        assert kit.executions == 1
        assert raw.get(key) == stored  # the recomputed answer replaced the altered one


def test_keys_expire_and_large_answers_are_not_stored(
    server: RedisServer, raw: redis.Redis, replica: Callable[..., ek.EmbedKit]
) -> None:
    acme = ek.Principal("acme")
    replica(ek.RedisCache(server.url)).query(BY_REGION, principal=acme)
    [key] = keys(raw)
    assert 86_000 < raw.ttl(key) <= 86_400  # the default: one day
    size = raw.strlen(key)
    raw.flushall()
    replica(ek.RedisCache(server.url, max_value_bytes=size - 1)).query(BY_REGION, principal=acme)
    assert keys(raw) == []
    short = ek.RedisCache(server.url, max_value_bytes=size, ttl=timedelta(minutes=5))
    replica(short).query(BY_REGION, principal=acme)
    assert 0 < raw.ttl(key) <= 300
    raw.flushall()
    replica(ek.RedisCache(server.url, ttl=None)).query(BY_REGION, principal=acme)
    assert raw.ttl(key) == -1  # no expiry: eviction is left to Redis


def test_a_redis_that_goes_down_costs_misses_and_comes_back(
    tmp_path: Path, replica: Callable[..., ek.EmbedKit], caplog: pytest.LogCaptureFixture
) -> None:
    """Queries answer correctly while Redis is down; failures are logged once, without
    keys; after a restart the same cache objects share answers again."""
    own = start_redis(tmp_path)
    try:
        first = replica(ek.RedisCache(own.url, retry_after=0))
        second = replica(ek.RedisCache(own.url, retry_after=0))
        first.query(BY_REGION, principal=ek.Principal("acme"))
        own.stop()
        with caplog.at_level(logging.WARNING, logger="embedkit.cache.redis"):
            for seller in ("acme", "globex", "initech"):
                got = second.query(BY_REGION, principal=ek.Principal(seller))
                assert rows_of(got) == expected(seller)
        assert second.executions == 3
        [record] = caplog.records  # six failed calls, one log line
        assert "ConnectionError" in record.getMessage() and record.exc_info is None
        assert not re.search(r"[0-9a-f]{64}", record.getMessage())
        own = start_redis(tmp_path, port=own.port)
        total = {"measures": ["orders.revenue"]}  # a query neither replica has cached
        first.query(total, principal=ek.Principal("globex"))  # stored again
        got = second.query(total, principal=ek.Principal("globex"))
        assert got.to_pylist() == [{"orders.revenue": 800.0}]
        assert second.executions == 3  # the same pool reconnected, and Redis answered
    finally:
        own.stop()


def test_no_redis_at_all_or_a_hung_one_still_answers(
    replica: Callable[..., ek.EmbedKit], caplog: pytest.LogCaptureFixture
) -> None:
    """A closed port refuses at once; a host that accepts and never replies times out
    after socket_timeout, and then the cache stays out of the way for retry_after."""
    closed = replica(ek.RedisCache(f"redis://127.0.0.1:{free_port()}/0"))
    assert rows_of(closed.query(BY_REGION, principal=ek.Principal("acme"))) == expected("acme")
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)  # connections complete in the kernel; nothing ever answers
        url = f"redis://127.0.0.1:{hung.getsockname()[1]}/0"
        kit = replica(ek.RedisCache(url, socket_timeout=0.1, retry_after=60))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="embedkit.cache.redis"):
            for seller in ("acme", "globex", "initech"):
                got = kit.query(BY_REGION, principal=ek.Principal(seller))
                assert rows_of(got) == expected(seller)
        hung.setblocking(False)
        attempts = 0
        while True:
            try:
                hung.accept()[0].close()
            except BlockingIOError:
                break
            attempts += 1
    assert kit.executions == 3
    assert attempts == 1  # one timeout, then Redis was left alone for retry_after
    [record] = caplog.records
    assert "Timeout" in record.getMessage()


def test_replicas_share_answers_under_concurrent_queries(
    server: RedisServer, raw: redis.Redis, replica: Callable[..., ek.EmbedKit]
) -> None:
    """Many threads over one RedisCache (one connection pool) each get their own rows."""
    kits = [replica(ek.RedisCache(server.url)) for _ in range(2)]
    sellers = ["acme", "globex", "initech"]
    wrong: list[str] = []

    def work(i: int) -> None:
        seller = sellers[i % 3]
        got = kits[i % 2].query(BY_REGION, principal=ek.Principal(seller))
        if rows_of(got) != expected(seller):
            wrong.append(seller)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == [] and len(keys(raw)) == 3


def test_options_are_checked_and_a_missing_client_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, server: RedisServer
) -> None:
    for bad in ({"ttl": 0}, {"ttl": timedelta(seconds=-1)}, {"max_value_bytes": -1}):
        with pytest.raises(ValueError, match="RedisCache"):
            ek.RedisCache(server.url, **bad)
    with pytest.raises(TypeError, match="timeouts"):
        ek.RedisCache(server.client(), socket_timeout=1)
    with pytest.raises(TypeError, match="redis:// URL"):
        ek.RedisCache(6379)  # type: ignore[arg-type]
    secret = ek.RedisCache("redis://:hunter2@127.0.0.1:6379/0")
    assert "hunter2" not in repr(secret)
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'embedkit[redis]'")):
        ek.RedisCache(server.url)


def test_a_client_that_decodes_responses_is_a_miss_not_an_error(
    server: RedisServer, raw: redis.Redis, replica: Callable[..., ek.EmbedKit]
) -> None:
    decoding = redis.Redis(port=server.port, decode_responses=True)
    replica(ek.RedisCache(server.url)).query(BY_REGION, principal=ek.Principal("acme"))
    kit = replica(ek.RedisCache(decoding))
    assert rows_of(kit.query(BY_REGION, principal=ek.Principal("acme"))) == expected("acme")
    assert kit.executions == 1
