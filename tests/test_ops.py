"""Operator routes: only operator tokens open them; what they report is exact.

Expected values are computed here by hand or with DuckDB / Polars over the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import jwt
import polars as pl
import pytest
import sqlglot
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

import embedkit as ek

SECRET = "Zq8rT2vLw9XbN4mKc7HjP3sYd6FgA1uE-ops-tests"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def orders() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "seller": [1, 1, 1, 2, 2, 2, 2, 3, 3, 3],
            "order_id": list(range(1, 11)),
            "status": ["paid"] * 9 + ["lost"],
            "amount": [10.0, 20.0, 5.5, 7.0, 1.0, 2.0, 3.0, 4.0, 8.0, 9.0],
            "cost": [4.0] * 10,
            "placed_at": [datetime(2026, 11, 20, 8, i) for i in range(10)],
        }
    )


def make_kit(clock: Clock) -> ek.EmbedKit:
    dataset = ek.Dataset(
        "orders",
        orders(),
        tenant_key="seller",
        time="placed_at",
        owner="sales-data@marketly.example",
        description="One row per order.",
        dimensions=["status"],
        measures=[
            ek.Measure("revenue", "sum", sql="amount", description="Money taken, before refunds"),
            ek.Measure("count", "count"),
            ek.Measure("margin", "sum", sql="amount - cost"),
            ek.Measure("broken", "sum", sql="CAST(status AS INTEGER)"),
        ],
        column_rules=[ek.ColumnRule(["cost"], claim="role", allow=["admin"])],
        contract=ek.Contract(
            accepted={"status": ["paid", "refunded"]}, freshness="2h", reject_above=0.5
        ),
        slo=ek.SLO(
            availability=0.9,
            error_rate=0.2,
            latency_ms=60_000,
            defect_free=0.9,
            freshness="2h",
            window="100m",
        ),
    )
    kit = ek.EmbedKit(dataset, secret=SECRET, clock=clock)
    kit.add_dashboard(
        ek.Dashboard(
            "sales", widgets=(ek.Widget("revenue", "kpi", ek.Query(measures=("orders.revenue",))),)
        )
    )
    return kit


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def kit(clock: Clock) -> Iterator[ek.EmbedKit]:
    kit = make_kit(clock)
    yield kit
    kit.close()


@pytest.fixture()
def client(kit: ek.EmbedKit) -> Iterator[TestClient]:
    with TestClient(kit.asgi()) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


OPS_PATHS = [
    "/metrics",
    "/ops/status.json",
    "/ops/catalog.json",
    "/ops/quarantine",
    "/ops/query-log",
]


def other_tokens(kit: ek.EmbedKit, client: TestClient) -> dict[str, str]:
    embed = kit.embed_url("sales", tenant=1).split("#token=")[1]
    session_embed = kit.embed_url("sales", tenant=1).split("#token=")[1]
    answer = client.post("/session", json={"token": session_embed, "resource": "sales"})
    good = kit.operator_token(subject="ops")
    header, body, signature = good.split(".")
    tampered = ".".join(
        [header, body, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")]
    )
    forged = jwt.encode(
        {**jwt.decode(good, options={"verify_signature": False}), "sub": "x"},
        "another-secret-that-is-long-enough-32b!",
        algorithm="HS256",
        headers={"kid": "default"},
    )
    return {
        "embed": embed,
        "session": answer.json()["session"],
        "api": kit.api_token(tenant=1),
        "tampered": tampered,
        "forged": forged,
    }


@pytest.mark.parametrize("path", OPS_PATHS)
def test_operator_routes_refuse_every_other_token(
    kit: ek.EmbedKit, client: TestClient, path: str
) -> None:
    assert client.get(path).status_code == 401
    for name, token in other_tokens(kit, client).items():
        answer = client.get(path, headers=bearer(token))
        assert answer.status_code == 401, name
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "orders" not in answer.text
    assert client.get(path, headers=bearer(kit.operator_token(subject="ops"))).status_code == 200


def test_an_expired_operator_token_is_refused(
    kit: ek.EmbedKit, client: TestClient, clock: Clock
) -> None:
    token = kit.operator_token(subject="ops", ttl=60)
    clock.now = T0 + timedelta(minutes=5)
    answer = client.get("/ops/status.json", headers=bearer(token))
    assert answer.status_code == 401 and answer.json()["type"].endswith("expired")


def test_an_operator_token_opens_no_embed(kit: ek.EmbedKit, client: TestClient) -> None:
    token = kit.operator_token(subject="ops")
    assert client.post("/session", json={"token": token, "resource": "sales"}).status_code == 401
    assert client.get("/data/revenue", headers=bearer(token)).status_code == 401
    with pytest.raises(ValueError, match="subject"):
        kit.operator_token(subject="")


def run_queries(kit: ek.EmbedKit) -> None:
    """6 answered, 2 refused (client errors), 1 failed in DuckDB (a server fault)."""
    for seller in (1, 2, 3, 1, 2, 3):
        kit.query({"measures": ["orders.revenue"]}, principal=ek.Principal(seller))
    for bad in ({"measures": ["orders.nope"]}, {"measures": ["orders.margin"]}):
        with pytest.raises((ek.UnknownMemberError, ek.AccessDenied)):
            kit.query(bad, principal=ek.Principal(1))
    with pytest.raises(ek.ExecutionError):
        kit.query({"measures": ["orders.broken"]}, principal=ek.Principal(2))


def objectives(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (dataset,) = report["datasets"]
    return {o["name"]: o for o in dataset["slo"]["objectives"]}


def test_status_slo_math_matches_a_hand_computed_window(kit: ek.EmbedKit, clock: Clock) -> None:
    clock.now = T0 + timedelta(minutes=10)
    run_queries(kit)
    # One append 20 minutes later: 10 rows, 2 break accepted:status.
    clock.now = T0 + timedelta(minutes=30)
    rows = orders().with_columns(
        pl.col("order_id") + 100, pl.lit(datetime(2026, 11, 20, 9, 29)).alias("placed_at")
    )
    rows = rows.with_columns(
        pl.when(pl.col("order_id") <= 102)
        .then(pl.lit("gone"))
        .otherwise(pl.col("status"))
        .alias("status")
    )
    report = kit.append("orders", rows)
    assert report.quarantined == 3  # two "gone" and the one "lost" copied from the source
    got = objectives(kit.status())
    # 9 queries: 1 server fault -> availability 8/9; 3 failed -> error_rate good 6/9.
    assert got["availability"]["good"] == 8 and got["availability"]["total"] == 9
    assert got["availability"]["attainment"] == pytest.approx(8 / 9)
    assert got["availability"]["met"] is False  # 0.889 < 0.9
    # budget = (1 - 0.9) * 9 = 0.9 bad queries allowed; 1 spent -> 1 - 1 / 0.9
    assert got["availability"]["budget_left"] == pytest.approx(1 - 1 / 0.9)
    assert got["error_rate"]["target"] == pytest.approx(0.8)
    assert got["error_rate"]["attainment"] == pytest.approx(6 / 9)
    # latency: every answered query is far under 60 s: 6 of 6.
    assert (got["latency"]["good"], got["latency"]["total"]) == (6, 6)
    # rows: source 10 (1 "lost" held) + append 10 (3 held) -> 16 of 20 passed.
    assert (got["defect_free"]["good"], got["defect_free"]["total"]) == (16, 20)
    assert got["defect_free"]["met"] is False  # 0.8 < 0.9
    # freshness: observed from registration at T0; the newest row was 08:09 until the
    # append at T0+30 (09:29 newest). Limit 2 h: 08:09 + 2 h = 10:09, so fresh all along.
    assert got["freshness"]["attainment"] == pytest.approx(1.0)
    (dataset,) = kit.status()["datasets"]
    assert dataset["health"] == "failing"
    assert dataset["freshness"]["newest"] == "2026-11-20T09:29:00+00:00"
    assert dataset["freshness"]["lag_seconds"] == pytest.approx(60.0)
    assert dataset["contract"]["held"] == 4
    rules = {r["rule"]: r["held"] for r in dataset["contract"]["rules"]}
    assert rules["accepted:status"] == 4 and rules["not_null:seller"] == 0
    assert dataset["rows"] == 16 and dataset["version"] == 2
    # 101 minutes after the queries they have left the 100-minute window.
    clock.now = T0 + timedelta(minutes=10 + 101)
    later = objectives(kit.status())
    assert later["availability"]["total"] == 0 and later["availability"]["attainment"] is None
    assert later["availability"]["met"] is True and later["availability"]["budget_left"] == 1.0


def test_status_of_one_tenant(kit: ek.EmbedKit) -> None:
    run_queries(kit)
    mine = objectives(kit.status(tenant=2))
    # seller 2: two answered queries and the server fault.
    assert (mine["availability"]["good"], mine["availability"]["total"]) == (2, 3)
    assert (mine["defect_free"]["good"], mine["defect_free"]["total"]) == (4, 4)
    three = objectives(kit.status(tenant=3))
    assert (three["defect_free"]["good"], three["defect_free"]["total"]) == (2, 3)


def test_metrics_parse_and_count_what_happened(kit: ek.EmbedKit, client: TestClient) -> None:
    run_queries(kit)
    kit.append(
        "orders",
        [{"seller": 1, "order_id": 50, "status": "x", "amount": 1.0, "cost": 1.0, "placed_at": T0}]
        * 1
        + [
            {
                "seller": 1,
                "order_id": 51 + i,
                "status": "paid",
                "amount": 1.0,
                "cost": 1.0,
                "placed_at": T0,
            }
            for i in range(9)
        ],
    )
    with pytest.raises(ek.BatchRejected):
        kit.append(
            "orders",
            [
                {
                    "seller": 1,
                    "order_id": 90,
                    "status": "x",
                    "amount": 1.0,
                    "cost": 1.0,
                    "placed_at": T0,
                }
            ],
        )
    text = client.get("/metrics", headers=bearer(kit.operator_token(subject="prometheus"))).text
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted({"dataset": "orders", **labels}.items())))]

    assert value("embedkit_queries_total", outcome="ok") == 6
    assert value("embedkit_queries_total", outcome="client_error") == 2
    assert value("embedkit_queries_total", outcome="server_error") == 1
    assert value("embedkit_query_errors_total", kind="ExecutionError") == 1
    assert value("embedkit_query_duration_seconds_count") == 9
    assert value("embedkit_query_duration_seconds_bucket", le="+Inf") == 9
    assert value("embedkit_rows_served_total") == 6  # one KPI row per answered query
    assert value("embedkit_rows_quarantined_total", rule="accepted:status") == 2
    assert value("embedkit_batches_total", outcome="accepted") == 2  # source + append
    assert value("embedkit_batches_total", outcome="rejected") == 1
    assert value("embedkit_quarantine_held_rows") == kit.quarantine.count("orders") == 2
    assert value("embedkit_data_version") == 2
    assert value("embedkit_slo_target_ratio", objective="availability") == 0.9
    assert value("embedkit_slo_attainment_ratio", objective="availability") == pytest.approx(8 / 9)
    assert not any("tenant" in dict(labels) for _, labels in samples)


def test_query_log_names_the_embed_widget_and_viewer(kit: ek.EmbedKit, client: TestClient) -> None:
    url = kit.embed_url("sales", tenant=2, claims={"sub": "ben@s002"})
    session = client.post("/session", json={"token": url.split("#token=")[1], "resource": "sales"})
    token = session.json()["session"]
    assert client.get("/data/revenue", headers=bearer(token)).status_code == 200
    kit.query({"measures": ["orders.count"]}, principal=ek.Principal(3))
    answer = client.get("/ops/query-log", headers=bearer(kit.operator_token(subject="ops")))
    embed, python = answer.json()["entries"][-2:]
    assert (embed["channel"], embed["resource"], embed["tenant"], embed["subject"]) == (
        "embed",
        "sales/revenue",
        "2",
        "ben@s002",
    )
    assert embed["outcome"] == "ok" and embed["datasets"] == ["orders"]
    assert (python["channel"], python["tenant"], python["query"]) == (
        "python",
        "3",
        {"measures": ["orders.count"]},
    )
    ndjson = client.get(
        "/ops/query-log?format=ndjson&tenant=2", headers=bearer(kit.operator_token(subject="ops"))
    )
    assert ndjson.headers["content-type"].startswith("application/x-ndjson")
    assert [line for line in ndjson.text.splitlines() if line] and all(
        '"tenant":"2"' in line for line in ndjson.text.splitlines() if line
    )
    frame = kit.monitor.log_frame(tenant="2")
    assert frame.height >= 1 and frame["channel"].to_list()[-1] == "embed"


def test_quarantine_endpoint_lists_what_the_python_api_lists(
    kit: ek.EmbedKit, client: TestClient
) -> None:
    token = kit.operator_token(subject="ops")
    answer = client.get("/ops/quarantine?dataset=orders&tenant=3", headers=bearer(token)).json()
    assert answer["counts"] == {"orders": {"3": 1}} == kit.quarantine.counts()
    (row,) = answer["rows"]
    source = orders().filter(pl.col("status") == "lost").to_dicts()[0]
    assert row["row"]["order_id"] == source["order_id"] and row["rules"] == ["accepted:status"]
    assert client.get("/ops/quarantine?limit=0", headers=bearer(token)).status_code == 400
    assert client.get("/ops/quarantine?status=odd", headers=bearer(token)).status_code == 400


def test_catalog_answers_what_revenue_means_and_its_sql_is_the_truth(
    kit: ek.EmbedKit, client: TestClient
) -> None:
    catalog = client.get("/ops/catalog.json", headers=bearer(kit.operator_token(subject="ops")))
    (product,) = catalog.json()["datasets"]
    assert product["owner"] == "sales-data@marketly.example"
    assert product["tenant_key"] == "seller" and product["time"] == "placed_at"
    measures = {m["name"]: m for m in product["measures"]}
    revenue = measures["orders.revenue"]
    assert revenue["description"] == "Money taken, before refunds"
    # The catalog's SQL, run by DuckDB over the raw rows of one tenant, gives the number
    # the kit serves that tenant.
    frame = orders().filter(pl.col("status") != "lost")  # the held row is not served
    con = duckdb.connect()
    con.register("orders", frame.to_arrow())
    for seller in (1, 2, 3):
        query = sqlglot.select(sqlglot.parse_one(revenue["sql"], read="duckdb")).from_("orders")
        expected = con.execute(query.where("seller = $1").sql("duckdb"), [seller]).fetchone()
        served = kit.query({"measures": ["orders.revenue"]}, principal=ek.Principal(seller))
        assert served.to_polars()["orders.revenue"][0] == pytest.approx(expected[0])
    columns = {c["name"]: c["visible_when"] for c in product["columns"]}
    assert columns["cost"] == "role is 'admin'" and columns["amount"] is None
    assert {r["rule"] for r in product["contract"]} == {
        "not_null:seller",
        "accepted:status",
        "freshness",
    }
    slos = {s["name"]: s for s in product["slo"]}
    assert slos["availability"]["description"].startswith("90% of queries")
    assert kit.catalog()["datasets"][0]["measures"] == product["measures"]
