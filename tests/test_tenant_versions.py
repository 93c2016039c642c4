"""Caches move with a tenant's own data only: another tenant's append leaves a tenant's
cached answers valid (so their latency cannot reveal it), while every answer stays
exactly what a fresh computation over the rows gives."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import Response
from starlette.testclient import TestClient

import embedkit as ek
from embedkit.cache.shared import MemoryCache
from embedkit.http.live import LiveStreams
from embedkit.http.routes import Routes
from tests.embed_fixtures import NOW, make_kit, sales_rows

T0 = datetime(2026, 11, 1)
TENANTS = (1, 2, 3, 4, 5)  # 5 has no rows until an append brings some
REGIONS = ("EU", "US", "APAC", "LATAM")
ORDERS = pl.DataFrame(
    {
        "seller": [1, 1, 2, 2, 2, 3, 4, 4],
        "region": ["EU", "US", "EU", "APAC", "LATAM", "US", "EU", "LATAM"],
        "amount": [10.0, 5.0, 7.0, 1.0, 3.0, 4.0, 8.0, 6.0],
        "placed_at": [T0 + timedelta(days=i) for i in range(8)],
    }
)
ZONES = pl.DataFrame({"region": ["EU", "US", "APAC"], "zone": ["west", "west", "east"]})
QUERIES: dict[str, dict[str, Any]] = {
    "total": {"measures": ["orders.revenue", "orders.count"]},
    "by_region": {"measures": ["orders.revenue"], "dimensions": ["orders.region"]},
    "by_zone": {"measures": ["orders.count"], "dimensions": ["zones.zone"]},
}


def orders(source: Any = ORDERS, **kw: Any) -> ek.Dataset:
    return ek.Dataset(
        "orders",
        source,
        tenant_key="seller",
        time="placed_at",
        dimensions=["region"],
        measures=[ek.Measure("revenue", "sum", sql="amount"), ek.Measure("count", "count")],
        joins=[ek.Join("zones", on={"region": "region"})],
        **kw,
    )


def zones() -> ek.Dataset:
    return ek.Dataset(
        "zones",
        ZONES,
        public=True,
        primary_key="region",
        dimensions=["zone"],
        contract=ek.Contract(unique=["region"]),
    )


def make(**kw: Any) -> ek.EmbedKit:
    return ek.EmbedKit([zones(), orders()], shard_rows=3, **kw)


def order(seller: int, region: str = "EU", amount: float = 1.0) -> dict[str, Any]:
    return {"seller": seller, "region": region, "amount": amount, "placed_at": T0}


def expected(name: str, tenant: int, rows: pl.DataFrame, zone: pl.DataFrame) -> list[Any]:
    """The answer of query ``name`` for ``tenant``, computed with Polars from the rows."""
    own = rows.filter(pl.col("seller") == tenant)
    if name == "total":
        revenue = own["amount"].sum() if own.height else None
        return [{"orders.revenue": revenue, "orders.count": own.height}]
    if name == "by_region":
        grouped = own.group_by("region").agg(pl.col("amount").sum())
        return sorted(
            ({"orders.region": r, "orders.revenue": a} for r, a in grouped.iter_rows()),
            key=repr,
        )
    joined = own.join(zone, on="region", how="left").group_by("zone").agg(pl.len())
    return sorted(({"zones.zone": z, "orders.count": n} for z, n in joined.iter_rows()), key=repr)


def answer(kit: ek.EmbedKit, name: str, tenant: Any) -> ek.QueryResult:
    return kit.query(QUERIES[name], principal=ek.Principal(tenant))


def rows_of(result: ek.QueryResult) -> list[Any]:
    return sorted(result.to_pylist(), key=repr)


# -- kit.query -------------------------------------------------------------------------


def test_another_tenants_append_leaves_my_cached_answer_a_hit() -> None:
    kit = make()
    first = answer(kit, "by_region", 2)
    assert first.cache == "miss" and answer(kit, "by_region", 2).cache == "hit"
    mine = answer(kit, "total", 1)
    version = kit.data_versions["orders"]
    kit.append("orders", [order(1, "US", 50.0)])
    assert kit.data_versions["orders"] == version + 1  # the dataset's version still moves
    after = answer(kit, "by_region", 2)
    assert after.cache == "hit" and rows_of(after) == rows_of(first)
    assert after.data_versions == first.data_versions  # nothing of tenant 1 shows
    rows = pl.concat([ORDERS, pl.DataFrame([order(1, "US", 50.0)], schema=ORDERS.schema)])
    own = answer(kit, "total", 1)
    assert own.cache == "miss" and rows_of(own) == expected("total", 1, rows, ZONES)
    assert own.data_versions["orders"] == mine.data_versions["orders"] + 1


def test_a_public_append_invalidates_everyone() -> None:
    kit = make()
    before = {t: answer(kit, "by_zone", t) for t in (1, 2)}
    assert all(answer(kit, "by_zone", t).cache == "hit" for t in (1, 2))
    kit.append("zones", [{"region": "LATAM", "zone": "south"}])
    zone = pl.concat([ZONES, pl.DataFrame({"region": ["LATAM"], "zone": ["south"]})])
    for tenant in (1, 2):
        now = answer(kit, "by_zone", tenant)
        assert now.cache == "miss" and rows_of(now) == expected("by_zone", tenant, ORDERS, zone)
        assert now.data_versions["zones"] == before[tenant].data_versions["zones"] + 1
    assert rows_of(answer(kit, "by_zone", 2)) != rows_of(before[2])  # LATAM got its zone


def test_a_replay_of_quarantined_rows_is_that_tenants_append() -> None:
    contract = ek.Contract(ranges={"amount": (0, 100)}, reject_above=0.5)
    kit = ek.EmbedKit([zones(), orders(contract=contract)], shard_rows=3)
    kit.append("orders", [order(1, "EU", 500.0), order(1, "EU", 2.0)])  # the first is held
    mine, theirs = answer(kit, "total", 1), answer(kit, "total", 2)
    kit.set_contract("orders", ek.Contract(ranges={"amount": (0, 1000)}))
    report = kit.quarantine.replay("orders")
    assert (report.origin, report.stored) == ("replay", 1)
    assert answer(kit, "total", 2).cache == "hit"
    again = answer(kit, "total", 1)
    assert again.cache == "miss" and rows_of(again)[0]["orders.revenue"] == pytest.approx(
        mine.to_pylist()[0]["orders.revenue"] + 500.0
    )
    assert rows_of(theirs) == expected("total", 2, ORDERS, ZONES)


def test_sql_datasets_and_rollups_built_on_a_tenant_dataset_follow_the_tenant() -> None:
    daily = ek.Dataset(
        "per_region",
        ek.SQL("SELECT seller, region, sum(amount) AS amount FROM orders GROUP BY ALL"),
        tenant_key="seller",
        dimensions=["region"],
        measures=[ek.Measure("amount", "sum", sql="amount")],
    )
    rollup = ek.Rollup("by_region", measures=["revenue", "count"], dimensions=["region"])
    kit = ek.EmbedKit([zones(), orders(rollups=[rollup]), daily], shard_rows=3)
    sql_query = {"measures": ["per_region.amount"], "dimensions": ["per_region.region"]}
    for tenant in (1, 2):
        kit.query(sql_query, principal=ek.Principal(tenant))
        assert answer(kit, "by_region", tenant).rollup == "orders__by_region"
    report = kit.append("orders", [order(1, "APAC", 9.0)])
    assert set(report.versions) == {"orders", "orders__by_region", "per_region"}
    rows = pl.concat([ORDERS, pl.DataFrame([order(1, "APAC", 9.0)], schema=ORDERS.schema)])
    theirs = kit.query(sql_query, principal=ek.Principal(2))
    assert theirs.cache == "hit" and answer(kit, "by_region", 2).cache == "hit"
    mine = answer(kit, "by_region", 1)
    assert mine.cache == "miss" and mine.rollup == "orders__by_region"
    assert rows_of(mine) == expected("by_region", 1, rows, ZONES)
    own = kit.query(sql_query, principal=ek.Principal(1))
    assert own.cache == "miss"
    assert rows_of(own) == [
        {"per_region.region": r["orders.region"], "per_region.amount": r["orders.revenue"]}
        for r in expected("by_region", 1, rows, ZONES)
    ]


def test_a_retention_run_invalidates_everyone() -> None:
    now = datetime(2026, 11, 20, tzinfo=UTC)
    later = ORDERS.with_columns(pl.col("placed_at") + timedelta(minutes=7))
    frame = pl.concat([ORDERS, later])  # two rows a day: a day's rows roll up into one
    dataset = orders(frame, retention=ek.Retention("1d", "day", {"amount": "sum"}))
    kit = ek.EmbedKit([zones(), dataset], clock=lambda: now, shard_rows=3)
    before = {t: answer(kit, "by_region", t) for t in (1, 2)}
    assert kit.apply_retention()["orders"] == ORDERS.height
    for tenant in (1, 2):
        after = answer(kit, "by_region", tenant)
        assert after.cache == "miss" and rows_of(after) == rows_of(before[tenant])
        assert after.data_versions["orders"] > before[tenant].data_versions["orders"]


UUIDS = {1: "0b9f4a52-6c1e-4d7e-9a3b-2f1c5d8e7a61", 2: "5e2d8c14-3a7b-4f9e-8d6c-1b0a9e8f7d52"}


@pytest.mark.parametrize(
    ("kind", "key", "principal"),
    [
        # DuckDB writes DOUBLE 1 as "1.0"; a principal may say 1 or "1".
        ("DOUBLE", float, str),
        # DuckDB writes a UUID in lower case; a principal may use upper case.
        ("UUID", UUIDS.get, lambda t: UUIDS[t].upper()),
    ],
)
def test_tenant_keys_of_other_types_are_matched_as_duckdb_writes_them(
    kind: str, key: Any, principal: Any
) -> None:
    """An append must move the view of the tenant it stored rows for, however the
    principal writes that tenant, and no other tenant's."""
    own = ORDERS.filter(pl.col("seller") <= 2).to_dicts()
    frame = pl.DataFrame([{**row, "seller": key(row["seller"])} for row in own])
    contract = ek.Contract(types={"seller": kind})
    kit = ek.EmbedKit([zones(), orders(frame, contract=contract)])
    assert kit._store.columns("orders")["seller"] == kind
    answer(kit, "total", principal(1)), answer(kit, "total", principal(2))
    kit.append("orders", [{**order(1, "EU", 30.0), "seller": key(1)}])
    assert answer(kit, "total", principal(2)).cache == "hit"
    mine = answer(kit, "total", principal(1))
    assert mine.cache == "miss" and mine.to_pylist()[0]["orders.revenue"] == pytest.approx(45.0)


# -- the property ----------------------------------------------------------------------

QUERY = st.tuples(
    st.just("query"), st.sampled_from(sorted(QUERIES)), st.sampled_from(TENANTS), st.booleans()
)
APPEND = st.tuples(
    st.just("append"),
    st.lists(
        st.tuples(st.sampled_from(TENANTS), st.sampled_from(REGIONS), st.integers(1, 9)),
        min_size=1,
        max_size=3,
    ),
)
PUBLIC = st.tuples(st.just("public"), st.sampled_from(["LATAM", "ANZ"]))
# Mostly queries, so a tenant often asks the same again after others' appends.
STEP = st.sampled_from([QUERY, QUERY, QUERY, APPEND, APPEND, PUBLIC]).flatmap(lambda step: step)
STEPS = st.lists(STEP, min_size=8, max_size=40)


@given(steps=STEPS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_answers_are_never_stale_and_hit_while_nothing_of_the_tenant_changed(
    steps: list[tuple[Any, ...]],
) -> None:
    """Random appends (of random tenants, and of public rows) between queries of random
    tenants: every answer equals Polars over the rows stored so far, and a query is a
    hit whenever none of its tenant's rows, nor public rows, changed since the tenant
    last asked it."""
    kit = make()
    rows, zone = ORDERS, ZONES
    changes = dict.fromkeys(TENANTS, 0)  # appends that stored a tenant's rows, or public
    asked: dict[tuple[str, int], int] = {}  # (query, tenant) -> changes when last asked
    for step in steps:
        if step[0] == "append":
            batch = [order(t, r, float(a)) for t, r, a in step[1]]
            kit.append("orders", batch)
            rows = pl.concat([rows, pl.DataFrame(batch, schema=ORDERS.schema)])
            for tenant in {t for t, _, _ in step[1]}:
                changes[tenant] += 1
        elif step[0] == "public":
            if step[1] in zone["region"].to_list():
                continue
            kit.append("zones", [{"region": step[1], "zone": "south"}])
            zone = pl.concat([zone, pl.DataFrame({"region": [step[1]], "zone": ["south"]})])
            changes = {t: n + 1 for t, n in changes.items()}
        else:
            _, name, tenant, as_text = step
            result = answer(kit, name, str(tenant) if as_text else tenant)
            assert rows_of(result) == expected(name, tenant, rows, zone)
            if asked.get((name, tenant)) == changes[tenant]:
                assert result.cache == "hit"
            asked[(name, tenant)] = changes[tenant]


# -- HTTP: /data and /live -------------------------------------------------------------


@pytest.fixture()
def sales_kit() -> Iterator[ek.EmbedKit]:
    kit = make_kit(sales_rows())
    yield kit
    kit.close()


def sale(seller: str, amount: float) -> dict[str, Any]:
    return {
        "order_id": 10**6 + int(amount),
        "seller_id": seller,
        "category": "books",
        "region": "north",
        "status": "completed",
        "customer": "Z",
        "amount": amount,
        "ordered_at": (NOW - timedelta(days=2)).replace(tzinfo=None),
    }


def revenue_last_30_days(rows: pl.DataFrame, seller: str) -> float:
    """What the revenue KPI shows ``seller`` ("last 30 days": the 30 whole days before
    NOW's), with Polars."""
    window = rows.filter(
        (pl.col("seller_id") == seller)
        & (pl.col("ordered_at") >= datetime(2024, 5, 2))
        & (pl.col("ordered_at") < datetime(2024, 6, 1))
    )
    return float(window["amount"].sum())


def test_another_tenants_append_leaves_my_http_answer_cached(
    sales_kit: ek.EmbedKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    route = Routes.data

    async def counted(self: Routes, request: Request) -> Response:
        calls.append(request.url.path)
        return await route(self, request)

    monkeypatch.setattr(Routes, "data", counted)
    with TestClient(sales_kit.asgi()) as client:

        def session(tenant: str) -> dict[str, str]:
            token = sales_kit.embed_url("sales", tenant=tenant).split("#token=")[1]
            made = client.post("/session", json={"token": token, "resource": "sales"})
            return {"Authorization": f"Bearer {made.json()['session']}"}

        s1, s2 = session("s1"), session("s2")
        first = client.get("/data/kpi_revenue", headers=s1)
        client.get("/data/kpi_revenue", headers=s2)
        assert len(calls) == 2
        sales_kit.append("orders", [sale("s2", 250.0)])
        again = client.get("/data/kpi_revenue", headers=s1)
        assert len(calls) == 2  # answered from the response cache, never reached the route
        assert again.headers["etag"] == first.headers["etag"]
        assert again.content == first.content
        conditional = {**s1, "If-None-Match": first.headers["etag"]}
        assert client.get("/data/kpi_revenue", headers=conditional).status_code == 304
        theirs = client.get("/data/kpi_revenue", headers=s2)
        assert len(calls) == 3  # only the tenant whose rows arrived reached the route
        rows = pl.concat([sales_rows(), pl.DataFrame([sale("s2", 250.0)])], how="diagonal_relaxed")
        assert theirs.json()["kpi"]["value"] == pytest.approx(revenue_last_30_days(rows, "s2"))
        assert first.json()["kpi"]["value"] == pytest.approx(revenue_last_30_days(rows, "s1"))


def test_another_tenants_append_leaves_my_live_answer_cached(sales_kit: ek.EmbedKit) -> None:
    embedder = sales_kit._embedding
    streams = LiveStreams(Routes(embedder, None), sales_kit._changes)

    def grant(tenant: str) -> Any:
        token = sales_kit.embed_url("sales", tenant=tenant).split("#token=")[1]
        return embedder.session(embedder.open_session(token, "sales")["session"])

    (g1, seen1), (g2, seen2) = grant("s1"), grant("s2")
    mine, theirs = (streams._body(g, s, "kpi_revenue", {}) for g, s in ((g1, seen1), (g2, seen2)))
    sales_kit.append("orders", [sale("s2", 99.0)])
    assert streams._body(g1, seen1, "kpi_revenue", {}) is mine
    assert streams._body(g2, seen2, "kpi_revenue", {}).etag != theirs.etag


# -- the shared cache ------------------------------------------------------------------


def test_replicas_over_copies_of_a_file_never_share_a_stale_answer(tmp_path: Path) -> None:
    """Two kits over copies of one file, one shared cache: appends applied to one or to
    both, and a restart of one (its counts start again). Every answer equals Polars over
    the rows that kit holds, and applying the same append to both still shares."""
    source = tmp_path / "orders.parquet"
    ORDERS.write_parquet(source)

    def dataset() -> ek.Dataset:
        return replace(orders(), source=str(source), joins=())

    ek.EmbedKit(dataset(), database=tmp_path / "a.duckdb").close()
    shutil.copy(tmp_path / "a.duckdb", tmp_path / "b.duckdb")
    shared = MemoryCache()
    kits = {
        name: ek.EmbedKit(dataset(), database=tmp_path / f"{name}.duckdb", shared_cache=shared)
        for name in ("a", "b")
    }
    held = {"a": ORDERS, "b": ORDERS}

    def add(name: str, rows: list[dict[str, Any]]) -> None:
        kits[name].append("orders", rows)
        held[name] = pl.concat([held[name], pl.DataFrame(rows, schema=ORDERS.schema)])

    def check(name: str, tenant: int) -> ek.QueryResult:
        result = answer(kits[name], "total", tenant)
        assert rows_of(result) == expected("total", tenant, held[name], ZONES), (name, tenant)
        return result

    for name in kits:
        for tenant in (1, 2):
            check(name, tenant)
    # An append on one replica only: the other keeps answering from its own rows.
    add("a", [order(1, "EU", 20.0)])
    for name in kits:
        for tenant in (1, 2):
            check(name, tenant)
    add("b", [order(1, "EU", 20.0)])  # the same append reaches the other replica
    runs: list[object] = []
    execute = kits["b"]._store.execute

    def counted(compiled: Any) -> Any:
        runs.append(compiled)
        return execute(compiled)

    kits["b"]._store.execute = counted  # type: ignore[method-assign]
    check("b", 1)
    assert runs == []  # the answer replica a computed for the same rows was shared
    # Replica a restarts after appends: its counts start again from the stored version.
    add("a", [order(1, "US", 3.0)])
    add("b", [order(1, "US", 3.0)])
    kits["a"].close()
    kits["a"] = ek.EmbedKit(dataset(), database=tmp_path / "a.duckdb", shared_cache=shared)
    for name in kits:
        for tenant in (1, 2):
            check(name, tenant)
    # Tenant 2 appends twice on both: the restarted replica and the other one count
    # from different epochs, and neither may read the other's answer for other rows.
    for amount in (11.0, 13.0):
        for name in kits:
            add(name, [order(2, "EU", amount)])
            for tenant in (1, 2):
                check(name, tenant)
    for kit in kits.values():
        kit.close()
