"""The result cache: never another scope's rows, never stale after an append, one
computation for many identical concurrent queries."""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import embedkit as ek
from embedkit.cache.local import LocalCache
from embedkit.cache.shared import MemoryCache

T0 = datetime(2026, 11, 1)
ROWS = pl.DataFrame(
    {
        "seller": [1, 1, 1, 2, 2, 3, 3, 3, 3],
        "region": ["EU", "US", "EU", "EU", "APAC", "US", "US", "EU", "APAC"],
        "status": ["paid", "paid", "lost", "paid", "paid", "lost", "paid", "paid", "paid"],
        "amount": [10.0, 5.0, 2.5, 7.0, 1.0, 4.0, 8.0, 3.0, 6.0],
        "placed_at": [T0 + timedelta(days=i) for i in range(9)],
    }
)


def orders() -> ek.Dataset:
    return ek.Dataset(
        "orders",
        ROWS,
        tenant_key="seller",
        time="placed_at",
        dimensions=["region", "status"],
        measures=[ek.Measure("revenue", "sum", sql="amount"), ek.Measure("count", "count")],
        row_rules=[ek.RowRule("region", claim="regions")],
    )


def make_kit(cache_bytes: int) -> ek.EmbedKit:
    return ek.EmbedKit(orders(), cache_bytes=cache_bytes, shard_rows=4)


QUERIES = st.sampled_from(
    [
        {"measures": ["orders.revenue", "orders.count"]},
        {"measures": ["orders.revenue"], "dimensions": ["orders.region"]},
        {"measures": ["orders.count"], "dimensions": ["orders.status"]},
        {
            "measures": ["orders.revenue"],
            "filters": [{"member": "orders.status", "operator": "equals", "values": ["paid"]}],
        },
        {"dimensions": ["orders.region", "orders.status"], "measures": ["orders.count"]},
    ]
)
PRINCIPALS = st.builds(
    lambda tenant, regions, text: ek.Principal(
        str(tenant) if text else tenant, {"regions": regions}
    ),
    st.integers(1, 4),
    st.lists(st.sampled_from(["EU", "US", "APAC"]), min_size=1, max_size=3, unique=True),
    st.booleans(),
)
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("query"), QUERIES, PRINCIPALS),
        st.tuples(
            st.just("append"),
            st.integers(1, 4),
            st.sampled_from(["EU", "US", "APAC"]),
            st.integers(1, 50),
        ),
    ),
    min_size=1,
    max_size=25,
)


def rows_of(result: ek.QueryResult) -> list[dict[str, Any]]:
    return sorted(result.to_pylist(), key=repr)


@given(steps=STEPS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_cached_answers_equal_uncached_ones_for_every_scope(steps: list[tuple[Any, ...]]) -> None:
    """Interleaved queries of random principals (tenant, as int or text, and a region
    rule) and appends: the cached kit answers exactly what an uncached kit answers, so no
    principal ever got rows cached for another scope, or rows from before an append."""
    cached, plain = make_kit(64 * 2**20), make_kit(0)
    for step in steps:
        if step[0] == "append":
            _, seller, region, amount = step
            row = {"seller": seller, "region": region, "status": "paid", "amount": float(amount)}
            row["placed_at"] = T0 + timedelta(days=20)
            cached.append("orders", [row])
            plain.append("orders", [row])
            continue
        _, query, principal = step
        got = cached.query(query, principal=principal)
        assert rows_of(got) == rows_of(plain.query(query, principal=principal))
    assert cached.data_versions == plain.data_versions


def test_a_repeated_query_is_a_hit_and_an_append_makes_it_a_miss() -> None:
    kit = make_kit(64 * 2**20)
    anna = ek.Principal(1, {"regions": ["EU", "US"]})
    q = {"measures": ["orders.revenue"]}
    first, second = kit.query(q, principal=anna), kit.query(q, principal=anna)
    assert (first.cache, second.cache) == ("miss", "hit")
    assert second.to_pylist() == first.to_pylist() == [{"orders.revenue": 17.5}]
    kit.append(
        "orders", [{"seller": 1, "region": "EU", "status": "paid", "amount": 2.0, "placed_at": T0}]
    )
    third = kit.query(q, principal=anna)
    assert third.cache == "miss" and third.to_pylist() == [{"orders.revenue": 19.5}]
    # Another principal of the same tenant with other claims is another scope.
    eu_only = kit.query(q, principal=ek.Principal(1, {"regions": ["EU"]}))
    assert eu_only.cache == "miss" and eu_only.to_pylist() == [{"orders.revenue": 14.5}]
    log = kit.monitor.log()
    assert [e.cache for e in log[-4:]] == ["miss", "hit", "miss", "miss"]


def test_cache_off_reports_off() -> None:
    kit = make_kit(0)
    result = kit.query(
        {"measures": ["orders.count"]}, principal=ek.Principal(2, {"regions": ["EU"]})
    )
    assert result.cache == "off"


def test_concurrent_identical_queries_run_once() -> None:
    cache: LocalCache[str] = LocalCache(1024)
    runs = 0
    gate = threading.Event()

    def compute() -> str:
        nonlocal runs
        runs += 1
        gate.wait(5)
        return "rows"

    answers: list[tuple[str, bool]] = []
    threads = [
        threading.Thread(target=lambda: answers.append(cache.get_or_compute("k", compute, len)))
        for _ in range(16)
    ]
    for t in threads:
        t.start()
    while cache.stats().waits < 15:
        time.sleep(0.01)
    gate.set()
    for t in threads:
        t.join()
    assert runs == 1
    assert sorted(answers) == [("rows", False)] + [("rows", True)] * 15
    stats = cache.stats()
    assert (stats.misses, stats.waits, stats.entries) == (1, 15, 1)


def test_a_failed_computation_is_not_cached_and_reaches_every_waiter() -> None:
    cache: LocalCache[str] = LocalCache(1024)
    calls = 0

    def broken() -> str:
        nonlocal calls
        calls += 1
        raise RuntimeError("engine down")

    for _ in range(2):
        with pytest.raises(RuntimeError, match="engine down"):
            cache.get_or_compute("k", broken, len)
    assert calls == 2 and cache.stats().entries == 0


def test_the_byte_budget_evicts_least_recently_used() -> None:
    cache: LocalCache[str] = LocalCache(10)
    for key in "abc":
        cache.put(key, key * 4, 4)
    assert cache.get("a") is None  # 12 bytes > 10: the oldest went
    assert cache.get("b") == "bbbb"
    cache.put("d", "dddd", 4)  # "c" is now the least recently used
    assert cache.get("c") is None and cache.get("b") == "bbbb"
    cache.put("huge", "x" * 11, 11)
    assert cache.get("huge") is None and cache.stats().evictions == 2
    with pytest.raises(ValueError, match="max_bytes"):
        LocalCache(-1)


class FlakyStore(MemoryCache):
    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.gets = 0

    def get(self, key: str) -> bytes | None:
        self.gets += 1
        if self.down:
            raise ConnectionError("store down")
        return super().get(key)


def test_replicas_share_answers_through_a_shared_cache(tmp_path: Path) -> None:
    """Two processes over copies of one database file share answers; a store over other
    data, with the same SQL and versions, never reads them; altered bytes are a miss."""
    source = tmp_path / "orders.parquet"
    ROWS.write_parquet(source)

    def dataset() -> ek.Dataset:
        return replace(orders(), source=str(source))

    ek.EmbedKit(dataset(), database=tmp_path / "a.duckdb").close()
    shutil.copy(tmp_path / "a.duckdb", tmp_path / "b.duckdb")
    shared = FlakyStore()
    first = ek.EmbedKit(dataset(), database=tmp_path / "a.duckdb", shared_cache=shared)
    second = ek.EmbedKit(dataset(), database=tmp_path / "b.duckdb", shared_cache=shared)
    anna = ek.Principal(1, {"regions": ["EU", "US"]})
    q = {"measures": ["orders.revenue"], "dimensions": ["orders.region"], "total": True, "limit": 1}
    a = first.query(q, principal=anna)
    assert a.cache == "miss" and len(shared._items) == 1
    calls = 0
    execute = second._store.execute

    def counted(compiled: Any) -> Any:
        nonlocal calls
        calls += 1
        return execute(compiled)

    second._store.execute = counted  # type: ignore[method-assign]
    b = second.query(q, principal=anna)
    assert calls == 0 and b.to_pylist() == a.to_pylist() and b.total == a.total == 2
    # Another store over other rows: same SQL, same versions, never the first's answer.
    other = ek.EmbedKit(
        replace(orders(), source=ROWS.with_columns(pl.col("amount") * 100)), shared_cache=shared
    )
    theirs = other.query(q, principal=anna).to_pylist()
    assert theirs != a.to_pylist() and theirs[0]["orders.revenue"] == pytest.approx(
        100 * a.to_pylist()[0]["orders.revenue"]
    )
    # Bytes altered in the store are not trusted: the answer is computed again.
    for key, value in list(shared._items.items()):
        shared._items[key] = value[:40] + bytes([value[40] ^ 1]) + value[41:]
    second.close()
    third = ek.EmbedKit(dataset(), database=tmp_path / "b.duckdb", shared_cache=shared)
    runs = 0
    own = third._store.execute

    def counted_third(compiled: Any) -> Any:
        nonlocal runs
        runs += 1
        return own(compiled)

    third._store.execute = counted_third  # type: ignore[method-assign]
    assert third.query(q, principal=anna).to_pylist() == a.to_pylist() and runs == 1
    # A store that fails is a miss, not an error.
    shared.down = True
    assert first.query({"measures": ["orders.count"]}, principal=anna).cache == "miss"
