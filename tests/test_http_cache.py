"""Cached widget answers over HTTP: ETags and 304, invalidation by data version and by
minute, shared between viewers of one scope only, compressed on request."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import brotli
import polars as pl
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.testclient import TestClient

import embedkit as ek
from tests.embed_fixtures import NOW, make_kit, sales_rows


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def kit(clock: Clock) -> Iterator[ek.EmbedKit]:
    kit = make_kit(sales_rows(), clock=clock)
    kit.register(
        ek.Dataset(
            "notes", pl.DataFrame({"seller_id": ["s1"], "note": ["hi"]}), tenant_key="seller_id"
        )
    )
    yield kit
    kit.close()


@pytest.fixture()
def client(kit: ek.EmbedKit) -> Iterator[TestClient]:
    with TestClient(kit.asgi()) as c:
        yield c


def session(kit: ek.EmbedKit, client: TestClient, tenant: str, **kw: object) -> dict[str, str]:
    url = kit.embed_url("sales", tenant=tenant, **kw)  # type: ignore[arg-type]
    answer = client.post("/session", json={"token": url.split("#token=")[1], "resource": "sales"})
    return {"Authorization": f"Bearer {answer.json()['session']}"}


def hits(kit: ek.EmbedKit) -> int:
    return kit._embedding.responses.stats()[0]


def kpi(client: TestClient, headers: dict[str, str]) -> tuple[int, str, float]:
    answer = client.get("/data/kpi_revenue", headers=headers)
    value = answer.json()["kpi"]["value"] if answer.status_code == 200 else float("nan")
    return answer.status_code, answer.headers.get("etag", ""), value


def test_etag_and_304_until_the_data_changes(kit: ek.EmbedKit, client: TestClient) -> None:
    s1 = session(kit, client, "s1")
    status, etag, before = kpi(client, s1)
    assert status == 200 and etag.startswith('"')
    again = client.get("/data/kpi_revenue", headers={**s1, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert again.headers["cache-control"] == "private, no-cache"
    # An append to another dataset changes nothing here.
    kit.append("notes", [{"seller_id": "s1", "note": "later"}])
    assert client.get("/data/kpi_revenue", headers={**s1, "If-None-Match": etag}).status_code == 304
    # An append to the orders it reads: a new body, a new ETag, the new sale counted.
    sale = {"order_id": 10**6, "seller_id": "s1", "category": "books", "region": "north"}
    sale |= {"status": "completed", "customer": "Z", "amount": 100.0}
    kit.append("orders", [{**sale, "ordered_at": NOW - timedelta(days=3)}])
    status, changed, after = kpi(client, s1)
    assert status == 200 and changed != etag
    assert after == pytest.approx(before + 100.0)


def test_viewers_of_one_scope_share_an_answer_and_no_one_else_does(
    kit: ek.EmbedKit, client: TestClient
) -> None:
    first, second = session(kit, client, "s1"), session(kit, client, "s1")
    other = session(kit, client, "s2")
    _, etag1, value1 = kpi(client, first)
    before = hits(kit)
    _, etag2, value2 = kpi(client, second)
    assert (etag2, value2) == (etag1, value1) and hits(kit) == before + 1
    _, etag3, value3 = kpi(client, other)
    assert etag3 != etag1 and value3 != value1
    rows = sales_rows()
    for seller, value in (("s1", value1), ("s2", value3)):
        window = rows.filter(
            (pl.col("seller_id") == seller)
            & (pl.col("ordered_at") >= datetime(2024, 5, 2))
            & (pl.col("ordered_at") < datetime(2024, 6, 1))
        )
        assert value == pytest.approx(window["amount"].sum())
    # Other claims, other scope: no hit.
    claimed = session(kit, client, "s1", claims={"role": "admin"})
    before = hits(kit)
    kpi(client, claimed)
    assert hits(kit) == before


def test_a_new_minute_recomputes_relative_dates(
    kit: ek.EmbedKit, client: TestClient, clock: Clock
) -> None:
    s1 = session(kit, client, "s1")
    _, etag, _ = kpi(client, s1)
    clock.now = NOW + timedelta(seconds=30)
    before = hits(kit)
    assert kpi(client, s1)[1] == etag and hits(kit) == before + 1  # same minute
    clock.now = NOW + timedelta(days=1)  # "last 30 days" has moved on a day
    _, moved, _ = kpi(client, s1)
    assert moved != etag and hits(kit) == before + 1


def test_compressed_on_request_and_equal_when_decoded(kit: ek.EmbedKit, client: TestClient) -> None:
    s1 = session(kit, client, "s1")
    plain = client.get("/data/revenue_by_day", headers={**s1, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and len(plain.content) > 1024
    for encoding, decode in (("gzip", gzip.decompress), ("br", brotli.decompress)):
        headers = {**s1, "Accept-Encoding": encoding}
        with client.stream("GET", "/data/revenue_by_day", headers=headers) as answer:
            raw = b"".join(answer.iter_raw())
            assert answer.headers["content-encoding"] == encoding
            assert answer.headers["etag"] == plain.headers["etag"]
        assert len(raw) < len(plain.content) / 2
        assert json.loads(decode(raw)) == json.loads(plain.content)


def test_a_revoked_session_is_refused_even_when_its_answer_is_cached(
    kit: ek.EmbedKit, client: TestClient, clock: Clock
) -> None:
    s1 = session(kit, client, "s1")
    assert kpi(client, s1)[0] == 200
    clock.now = NOW + timedelta(seconds=1)
    kit.revoke(tenant="s1")
    assert kpi(client, s1)[0] == 401
    s2 = session(kit, client, "s2")
    assert kpi(client, s2)[0] == 200
    clock.now = NOW + timedelta(hours=2)  # past the session's 10 minutes
    assert kpi(client, s2)[0] == 401


def test_a_cached_answer_skips_the_route_and_is_sent_exactly_as_the_route_sends_it(
    kit: ek.EmbedKit, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from embedkit.http.routes import Routes

    calls: list[str] = []
    route = Routes.data

    async def counted(self: Routes, request: Request) -> Response:
        calls.append(request.url.path)
        return await route(self, request)

    monkeypatch.setattr(Routes, "data", counted)
    app = Starlette(routes=[Mount("/analytics", app=kit.asgi())])  # mounted at a prefix
    with TestClient(app) as client:
        url = kit.embed_url("sales", tenant="s1")
        answer = client.post(
            "/analytics/session", json={"token": url.split("#token=")[1], "resource": "sales"}
        )
        s1 = {"Authorization": f"Bearer {answer.json()['session']}", "Accept-Encoding": "br"}
        first = client.get("/analytics/data/kpi_revenue", headers=s1)
        second = client.get("/analytics/data/kpi_revenue", headers=s1)
        assert calls == ["/analytics/data/kpi_revenue"]  # the second never reached the route
        assert first.status_code == second.status_code == 200
        assert first.content == second.content
        assert sorted(first.headers.items()) == sorted(second.headers.items())
        assert second.headers["content-security-policy"].startswith("default-src 'none'")
        assert second.headers["referrer-policy"] == "no-referrer"
        assert second.headers["x-content-type-options"] == "nosniff"
        # A conditional request is answered from the cache too, with the same 304.
        etag = second.headers["etag"]
        third = client.get("/analytics/data/kpi_revenue", headers={**s1, "If-None-Match": etag})
        assert third.status_code == 304 and len(calls) == 1
        # Whatever the cache holds, a bad or expired session goes to the route, which
        # refuses it as it would without a cache.
        bad = client.get("/analytics/data/kpi_revenue", headers={"Authorization": "Bearer x"})
        assert bad.status_code == 401 and bad.headers["content-type"].startswith(
            "application/problem+json"
        )
        clock.now = NOW + timedelta(hours=2)
        assert client.get("/analytics/data/kpi_revenue", headers=s1).status_code == 401
        assert len(calls) == 3


def test_an_encoding_refused_with_q_0_is_not_used(kit: ek.EmbedKit, client: TestClient) -> None:
    s1 = session(kit, client, "s1")
    answer = client.get("/data/revenue_by_day", headers={**s1, "Accept-Encoding": "br;q=0, gzip"})
    assert answer.status_code == 200 and answer.headers.get("content-encoding") == "gzip"
