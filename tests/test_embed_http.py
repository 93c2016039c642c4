"""The embed routes over a real kit and real DuckDB, through Starlette's test client.

Every expected number is computed again with Polars over the same rows.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import jwt
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

import embedkit as ek
from tests.embed_fixtures import NOW, SECRET, make_kit, sales_dataset, sales_rows

PREFIX = "/analytics"
# The kit's clock stands still at NOW (2024); PyJWT would compare with today.
NO_TIME = {"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False}


@pytest.fixture(scope="module")
def rows() -> pl.DataFrame:
    return sales_rows()


@pytest.fixture(scope="module")
def kit(rows: pl.DataFrame) -> Iterator[ek.EmbedKit]:
    kit = make_kit(rows, base_url=PREFIX, host_origins=("https://shop.example",))
    yield kit
    kit.close()


@pytest.fixture(scope="module")
def client(kit: ek.EmbedKit) -> Iterator[TestClient]:
    host = Starlette(routes=[Mount(PREFIX, app=kit.asgi())])
    with TestClient(host) as c:
        yield c


def token_of(url: str) -> str:
    return url.split("#token=", 1)[1]


def open_session(client: TestClient, url: str) -> dict[str, Any]:
    path, _, fragment = url.partition("#")
    resource = path.split("/embed/", 1)[1]
    answer = client.post(
        f"{PREFIX}/session", json={"token": fragment.removeprefix("token="), "resource": resource}
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def get_data(client: TestClient, session: str, widget: str, **query: Any) -> Any:
    params = {k: json.dumps(v) if k == "params" else v for k, v in query.items()}
    return client.get(
        f"{PREFIX}/data/{widget}", params=params, headers={"Authorization": f"Bearer {session}"}
    )


def period(rows: pl.DataFrame, seller: str, start: str, end: str) -> pl.DataFrame:
    lo, hi = datetime.fromisoformat(start), datetime.fromisoformat(end)
    return rows.filter(
        (pl.col("seller_id") == seller) & (pl.col("ordered_at") >= lo) & (pl.col("ordered_at") < hi)
    )


# "last 30 days" at NOW (2024-06-01 12:00 UTC) is May 2 to May 31, whole days.
LAST_30 = ("2024-05-02", "2024-06-01")
BEFORE_30 = ("2024-04-02", "2024-05-02")


def test_embed_url_keeps_the_token_in_the_fragment(kit: ek.EmbedKit) -> None:
    url = kit.embed_url("sales", tenant="s1")
    assert url.startswith(f"{PREFIX}/embed/sales#token=")
    claims = jwt.decode(token_of(url), SECRET, algorithms=["HS256"], options=NO_TIME)
    assert claims["exp"] - claims["iat"] == pytest.approx(600, abs=1)


def test_token_lifetimes_come_from_the_settings(rows: pl.DataFrame) -> None:
    kit = make_kit(rows, token_ttl=120, max_token_ttl=300)
    claims = jwt.decode(
        token_of(kit.embed_url("sales", tenant="s1")), SECRET, algorithms=["HS256"], options=NO_TIME
    )
    assert claims["exp"] - claims["iat"] == pytest.approx(120, abs=1)
    with pytest.raises(ValueError, match="ttl"):
        kit.embed_url("sales", tenant="s1", ttl=301)
    with pytest.raises(ValueError, match="currency"):
        kit.embed_url("sales", tenant="s1", currency="euro")
    kit.close()


def test_embed_page_is_a_shell_with_nonce_scripts_and_strict_headers(client: TestClient) -> None:
    answer = client.get(f"{PREFIX}/embed/sales")
    assert answer.status_code == 200
    csp = answer.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce is not None
    assert "frame-ancestors 'self' https://shop.example" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    scripts = re.findall(r"<script[^>]*>", answer.text)
    assert scripts and all(f'nonce="{nonce.group(1)}"' in s for s in scripts)
    assert not re.search(r"\son[a-z]+=", answer.text), "no inline event handlers"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"].startswith("private")
    # A name that is no dashboard gets the same shell: the page reveals no names.
    other = client.get(f"{PREFIX}/embed/no_such_dashboard")
    assert other.status_code == 200


def test_session_answers_the_definition_and_nothing_internal(
    client: TestClient, kit: ek.EmbedKit
) -> None:
    definition = open_session(client, kit.embed_url("sales", tenant="s1", ttl=300))
    assert 295 <= definition["expires_in"] <= 300
    names = [w["name"] for w in definition["dashboard"]["widgets"]]
    assert names[:4] == ["kpi_revenue", "kpi_orders", "kpi_aov", "revenue_by_day"]
    filters = {f["name"]: f for f in definition["dashboard"]["filters"]}
    assert filters["period"]["value"] == "last 30 days" and not filters["period"]["locked"]
    assert filters["grain"]["options"] == ["day", "week", "month"]
    text = json.dumps(definition).lower()
    for word in ("select ", "seller_id", "store", "shards", "secret-widgets"):
        assert word not in text


def test_kpi_equals_polars_with_previous_period(
    client: TestClient, kit: ek.EmbedKit, rows: pl.DataFrame
) -> None:
    session = open_session(client, kit.embed_url("sales", tenant="s1"))["session"]
    kpi = get_data(client, session, "kpi_revenue").json()["kpi"]
    now = period(rows, "s1", *LAST_30)["amount"].sum()
    before = period(rows, "s1", *BEFORE_30)["amount"].sum()
    assert kpi["value"] == pytest.approx(now)
    assert kpi["previous"] == pytest.approx(before)
    assert kpi["delta"] == pytest.approx((now - before) / before)
    assert kpi["format"] == "currency" and kpi["compared"] is True
    days = period(rows, "s1", *LAST_30).group_by(pl.col("ordered_at").dt.date()).len()
    assert len(kpi["sparkline"]) == days.height


def test_line_rows_equal_polars_per_day_and_per_week(
    client: TestClient, kit: ek.EmbedKit, rows: pl.DataFrame
) -> None:
    session = open_session(client, kit.embed_url("sales", tenant="s2"))["session"]
    data = get_data(client, session, "revenue_by_day").json()
    expected = (
        period(rows, "s2", *LAST_30)
        .group_by(pl.col("ordered_at").dt.truncate("1d").alias("t"))
        .agg(pl.col("amount").sum())
        .sort("t")
    )
    got = [(r["ordered_at"], r["revenue"]) for r in data["rows"]]
    want = [(t.isoformat() + "Z", v) for t, v in expected.iter_rows()]
    assert [g[0] for g in got] == [w[0] for w in want]
    assert [g[1] for g in got] == pytest.approx([w[1] for w in want])
    assert data["spec"]["data"] == {"name": "rows"}
    weekly = get_data(client, session, "revenue_by_day", params={"grain": "week"}).json()
    assert weekly["fields"][0]["grain"] == "week"
    assert sum(r["revenue"] for r in weekly["rows"]) == pytest.approx(
        period(rows, "s2", "2024-04-29", "2024-06-03")["amount"].sum()
    ) or len(weekly["rows"]) < len(data["rows"])


def test_time_buckets_follow_the_embeds_time_zone(
    client: TestClient, kit: ek.EmbedKit, rows: pl.DataFrame
) -> None:
    url = kit.embed_url("sales", tenant="s1", timezone="America/New_York")
    session = open_session(client, url)["session"]
    data = get_data(client, session, "revenue_by_day").json()
    # NOW is 08:00 on June 1 in New York: the last 30 days are May 2 to May 31 there.
    local = rows.filter(pl.col("seller_id") == "s1").with_columns(
        pl.col("ordered_at")
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone("America/New_York")
        .dt.replace_time_zone(None)
    )
    expected = (
        local.filter(
            (pl.col("ordered_at") >= datetime(2024, 5, 2))
            & (pl.col("ordered_at") < datetime(2024, 6, 1))
        )
        .group_by(pl.col("ordered_at").dt.truncate("1d"))
        .agg(pl.col("amount").sum())
        .sort("ordered_at")
    )
    assert [r["ordered_at"] for r in data["rows"]] == [
        t.isoformat() + "Z" for t in expected["ordered_at"]
    ]
    assert [r["revenue"] for r in data["rows"]] == pytest.approx(expected["amount"].to_list())


def test_select_filter_limits_rows(
    client: TestClient, kit: ek.EmbedKit, rows: pl.DataFrame
) -> None:
    session = open_session(client, kit.embed_url("sales", tenant="s1"))["session"]
    data = get_data(client, session, "by_category", params={"category": ["books", "toys"]}).json()
    got = {r["category"]: r["revenue"] for r in data["rows"]}
    rows30 = period(rows, "s1", *LAST_30).filter(pl.col("category").is_in(["books", "toys"]))
    want = dict(rows30.group_by("category").agg(pl.col("amount").sum()).iter_rows())
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value)


def test_locked_param_wins_and_a_change_is_refused(
    client: TestClient, kit: ek.EmbedKit, rows: pl.DataFrame
) -> None:
    url = kit.embed_url("sales", tenant="s1", params={"category": ["games"]})
    definition = open_session(client, url)
    category = next(f for f in definition["dashboard"]["filters"] if f["name"] == "category")
    assert category["locked"] and category["value"] == ["games"]
    session = definition["session"]
    data = get_data(client, session, "by_category").json()
    assert [r["category"] for r in data["rows"]] == ["games"]
    same = get_data(client, session, "by_category", params={"category": ["games"]})
    assert same.status_code == 200
    for attempt in (["books"], [], ["games", "books"]):
        refused = get_data(client, session, "by_category", params={"category": attempt})
        assert refused.status_code == 403, attempt
        assert refused.headers["content-type"] == "application/problem+json"
        assert "books" not in json.dumps(refused.json().get("rows", []))


def test_locked_param_may_not_be_empty(kit: ek.EmbedKit) -> None:
    for empty in (None, "", []):
        with pytest.raises(ValueError, match="empty"):
            kit.embed_url("sales", tenant="s1", params={"category": empty})


def test_editable_params_limit_choices(client: TestClient, kit: ek.EmbedKit) -> None:
    url = kit.embed_url(
        "sales",
        tenant="s1",
        editable={"period": ["last 7 days", "last 30 days"], "category": ["books", "toys"]},
    )
    definition = open_session(client, url)
    session = definition["session"]
    filters = {f["name"]: f for f in definition["dashboard"]["filters"]}
    assert filters["period"]["presets"] == ["last 7 days", "last 30 days"]
    assert get_data(client, session, "by_category", params={"period": "last 7 days"}).is_success
    assert (
        get_data(client, session, "by_category", params={"period": "last 90 days"}).status_code
        == 403
    )
    assert (
        get_data(client, session, "by_category", params={"category": ["games"]}).status_code == 403
    )
    # "all" under a limit means all allowed values, not every value
    shown = {r["category"] for r in get_data(client, session, "by_category").json()["rows"]}
    assert shown <= {"books", "toys"}
    values = client.get(
        f"{PREFIX}/values/category", headers={"Authorization": f"Bearer {session}"}
    ).json()
    assert set(values["values"]) <= {"books", "toys"}


def test_a_dashboard_token_cannot_read_another_dashboard_or_widget(
    client: TestClient, kit: ek.EmbedKit
) -> None:
    session = open_session(client, kit.embed_url("sales", tenant="s1"))["session"]
    answer = get_data(client, session, "rate")  # a widget of the "returns" dashboard
    assert answer.status_code == 403
    single = open_session(client, kit.embed_url("sales/kpi_revenue", tenant="s1"))
    assert [w["name"] for w in single["dashboard"]["widgets"]] == ["kpi_revenue"]
    assert get_data(client, single["session"], "kpi_revenue").status_code == 200
    assert get_data(client, single["session"], "by_category").status_code == 403
    # An embed token opened for another resource than its own is invalid.
    url = kit.embed_url("sales", tenant="s1")
    wrong = client.post(f"{PREFIX}/session", json={"token": token_of(url), "resource": "returns"})
    assert wrong.status_code == 401


def _forge(claims: dict[str, Any], key: str | bytes = SECRET, **headers: Any) -> str:
    return jwt.encode(claims, key, algorithm="HS256", headers={"kid": "default", **headers})


def _attacks(kit: ek.EmbedKit) -> dict[str, tuple[str, str]]:
    good = token_of(kit.embed_url("sales", tenant="s1"))
    claims = jwt.decode(good, SECRET, algorithms=["HS256"], options=NO_TIME)
    header, payload, signature = good.split(".")
    tampered_payload = jwt.utils.base64url_encode(
        json.dumps({**claims, "tenant": "s2"}).encode()
    ).decode()
    none_header = jwt.utils.base64url_encode(b'{"alg":"none","kid":"default"}').decode()
    expired = {
        **claims,
        "iat": claims["iat"] - 4000,
        "nbf": claims["iat"] - 4000,
        "exp": claims["iat"] - 3000,
    }
    return {
        "tampered payload": (f"{header}.{tampered_payload}.{signature}", "invalid"),
        "tampered signature": (f"{header}.{payload}.{signature[:-4]}AAAA", "invalid"),
        "alg none": (f"{none_header}.{payload}.", "invalid"),
        "expired": (_forge(expired), "expired"),
        "wrong audience": (_forge({**claims, "aud": "api"}), "invalid"),
        "wrong issuer": (_forge({**claims, "iss": "someone-else"}), "invalid"),
        "wrong key": (_forge(claims, key="another-secret-that-is-long-enough-123456"), "invalid"),
        "unknown kid": (_forge(claims, kid="other"), "invalid"),
        "api token": (kit.api_token(tenant="s1"), "invalid"),
        "garbage": ("not-a-token", "invalid"),
    }


@pytest.mark.parametrize(
    "attack",
    [
        "tampered payload",
        "tampered signature",
        "alg none",
        "expired",
        "wrong audience",
        "wrong issuer",
        "wrong key",
        "unknown kid",
        "api token",
        "garbage",
    ],
)
def test_bad_tokens_get_a_problem_and_leak_nothing(
    client: TestClient, kit: ek.EmbedKit, attack: str
) -> None:
    token, reason = _attacks(kit)[attack]
    answer = client.post(f"{PREFIX}/session", json={"token": token, "resource": "sales"})
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["type"].endswith("/" + reason)
    assert token not in answer.text and "Traceback" not in answer.text
    assert set(body) <= {"type", "title", "status", "detail"}


def test_a_session_token_is_not_an_embed_token_and_back(
    client: TestClient, kit: ek.EmbedKit
) -> None:
    url = kit.embed_url("sales", tenant="s1")
    session = open_session(client, url)["session"]
    as_embed = client.post(f"{PREFIX}/session", json={"token": session, "resource": "sales"})
    assert as_embed.status_code == 401
    assert get_data(client, token_of(url), "kpi_revenue").status_code == 401
    assert get_data(client, "", "kpi_revenue").status_code == 401
    answer = client.get(f"{PREFIX}/data/kpi_revenue")
    assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Bearer")


def test_revoking_a_tenant_ends_its_open_sessions(rows: pl.DataFrame) -> None:
    now = [NOW]
    kit = make_kit(rows, clock=lambda: now[0])
    with TestClient(Starlette(routes=[Mount(PREFIX, app=kit.asgi())])) as client:
        session = open_session(client, kit.embed_url("sales", tenant="s1"))["session"]
        other = open_session(client, kit.embed_url("sales", tenant="s2"))["session"]
        now[0] += timedelta(seconds=5)
        kit.revoke(tenant="s1")
        answer = get_data(client, session, "kpi_revenue")
        assert answer.status_code == 401 and answer.json()["type"].endswith("/revoked")
        assert get_data(client, other, "kpi_revenue").status_code == 200
        now[0] += timedelta(seconds=1)
        fresh = open_session(client, kit.embed_url("sales", tenant="s1"))["session"]
        assert get_data(client, fresh, "kpi_revenue").status_code == 200
        now[0] += timedelta(seconds=700)
        assert get_data(client, fresh, "kpi_revenue").json()["type"].endswith("/expired")
    kit.close()


def test_filter_values_are_scoped(client: TestClient, kit: ek.EmbedKit, rows: pl.DataFrame) -> None:
    for seller in ("s1", "s2"):
        session = open_session(client, kit.embed_url("sales", tenant=seller))["session"]
        answer = client.get(
            f"{PREFIX}/values/category", headers={"Authorization": f"Bearer {session}"}
        ).json()
        want = sorted(rows.filter(pl.col("seller_id") == seller)["category"].unique().to_list())
        assert answer == {"values": want, "truncated": False}
    s1 = open_session(client, kit.embed_url("sales", tenant="s1"))["session"]
    found = client.get(
        f"{PREFIX}/values/category",
        params={"q": "SECRET"},
        headers={"Authorization": f"Bearer {s1}"},
    ).json()
    assert found["values"] == []


def test_table_pages_and_sorts(client: TestClient, kit: ek.EmbedKit, rows: pl.DataFrame) -> None:
    session = open_session(client, kit.embed_url("sales", tenant="s1"))["session"]
    data = get_data(client, session, "table", page="1", order="revenue:desc").json()
    expected = (
        period(rows, "s1", *LAST_30)
        .group_by("category", "region")
        .agg(pl.len().alias("orders"), pl.col("amount").sum().alias("revenue"))
        .sort("revenue", descending=True)
    )
    assert data["page"] == {
        "offset": 5,
        "limit": 5,
        "total": expected.height,
        "order": ["revenue", "desc"],
    }
    assert [r["revenue"] for r in data["rows"]] == pytest.approx(
        expected["revenue"][5:10].to_list()
    )
    bad = get_data(client, session, "table", order="amount:desc")
    assert bad.status_code == 400


def test_arrow_ipc_on_request_without_sql(client: TestClient, kit: ek.EmbedKit) -> None:
    session = open_session(client, kit.embed_url("sales", tenant="s1"))["session"]
    answer = client.get(
        f"{PREFIX}/data/by_category",
        headers={
            "Authorization": f"Bearer {session}",
            "Accept": "application/vnd.apache.arrow.stream",
        },
    )
    assert answer.headers["content-type"] == "application/vnd.apache.arrow.stream"
    table = pa.ipc.open_stream(io.BytesIO(answer.content)).read_all()
    assert table.column_names == ["orders.category", "orders.revenue"]
    assert not table.schema.metadata


def test_bad_params_are_problems_not_traces(client: TestClient, kit: ek.EmbedKit) -> None:
    session = open_session(client, kit.embed_url("sales", tenant="s1"))["session"]
    auth = {"Authorization": f"Bearer {session}"}
    for query in (
        {"params": "{not json"},
        {"params": '{"nope": 1}'},
        {"page": "-1"},
        {"params": '{"grain": "decade"}'},
    ):
        answer = client.get(f"{PREFIX}/data/by_category", params=query, headers=auth)
        assert answer.status_code == 400, query
        assert answer.headers["content-type"] == "application/problem+json"
        assert "Traceback" not in answer.text
    missing = client.get(f"{PREFIX}/nothing/here")
    assert (
        missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    )


def test_images_render_under_the_same_scope(client: TestClient, kit: ek.EmbedKit) -> None:
    session = open_session(client, kit.embed_url("sales", tenant="s2"))["session"]
    auth = {"Authorization": f"Bearer {session}"}
    svg = client.get(f"{PREFIX}/image/by_category.svg", headers=auth)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert "SECRET-widgets" in svg.text  # s2's own category is drawn
    png = client.get(f"{PREFIX}/image/by_category.png", headers=auth)
    assert png.content.startswith(b"\x89PNG")
    s1 = open_session(client, kit.embed_url("sales", tenant="s1"))["session"]
    mine = client.get(f"{PREFIX}/image/by_category.svg", headers={"Authorization": f"Bearer {s1}"})
    assert "SECRET" not in mine.text
    host_side = kit.render_widget("sales/by_category", principal=ek.Principal("s1"), format="svg")
    assert host_side.startswith(b"<svg") and b"SECRET" not in host_side


def test_static_assets_are_served_by_embedkit(client: TestClient) -> None:
    for name in ("loader.js", "embed.js", "embed.css", "vega.js", "vega-interpreter.js"):
        answer = client.get(f"{PREFIX}/static/{name}")
        assert answer.status_code == 200, name
        etag = answer.headers["etag"]
        again = client.get(f"{PREFIX}/static/{name}", headers={"If-None-Match": etag})
        assert again.status_code == 304
    assert "vegaEmbed" in client.get(f"{PREFIX}/static/vega.js").text
    assert client.get(f"{PREFIX}/static/../pyproject.toml").status_code == 404
    assert client.get(f"{PREFIX}/health").json() == {"status": "ok"}


def test_mounts_inside_fastapi_at_any_prefix(kit: ek.EmbedKit) -> None:
    from fastapi import FastAPI

    app = FastAPI()
    app.mount("/deep/bi", kit.asgi())
    with TestClient(app) as client:
        url = kit.embed_url("sales", tenant="s1", base_url="/deep/bi")
        assert url.startswith("/deep/bi/embed/sales#")
        page = client.get("/deep/bi/embed/sales")
        assert 'data-prefix="/deep/bi"' in page.text
        answer = client.post("/deep/bi/session", json={"token": token_of(url), "resource": "sales"})
        assert answer.status_code == 200


def test_weak_secrets_and_missing_keys_are_refused_at_start(rows: pl.DataFrame) -> None:
    with pytest.raises(ek.ConfigError):
        ek.EmbedKit(secret="changeme")
    with pytest.raises(ek.ConfigError):
        ek.EmbedKit(secret="short-but-not-32-bytes")
    keyless = ek.EmbedKit()
    with pytest.raises(ek.ConfigError, match="secret"):
        keyless.asgi()
    keyless.close()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seller=st.sampled_from(["s1", "s2", "s3"]),
    widget=st.sampled_from(["by_category", "orders_by_region", "heat", "table", "kpi_orders"]),
    chosen=st.lists(
        st.sampled_from(["books", "games", "toys", "garden", "SECRET-widgets"]), max_size=3
    ),
    preset=st.sampled_from(["last 7 days", "last 30 days", "last 90 days", "this month"]),
)
def test_no_row_of_another_seller_ever_appears(
    client: TestClient,
    kit: ek.EmbedKit,
    rows: pl.DataFrame,
    seller: str,
    widget: str,
    chosen: list[str],
    preset: str,
) -> None:
    """Whatever the widget and filters, every value shown belongs to the viewer's rows."""
    session = open_session(client, kit.embed_url("sales", tenant=seller))["session"]
    answer = get_data(client, session, widget, params={"category": chosen, "period": preset})
    assert answer.status_code == 200
    own = rows.filter(pl.col("seller_id") == seller)
    mine = set(own["category"].unique()) | set(own["region"].unique())
    for row in answer.json()["rows"]:
        for key in ("category", "region"):
            if key in row:
                assert row[key] in mine
    if seller != "s2":
        assert "SECRET" not in answer.text
    text = answer.text.lower()
    assert "select " not in text and "seller_id" not in text and '"store"' not in text
    total = sum(r.get("orders") or 0 for r in answer.json()["rows"])
    assert total <= own.height


# -- fences: locks and limits hold on every path -----------------------------------------


def values_of(client: TestClient, session: str, name: str, **query: str) -> list[Any]:
    answer = client.get(
        f"{PREFIX}/values/{name}", params=query, headers={"Authorization": f"Bearer {session}"}
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["values"])


def test_filter_choices_obey_the_other_filters_locks(
    client: TestClient, kit: ek.EmbedKit, rows: pl.DataFrame
) -> None:
    # A day and region where seller s1 sold something, found with Polars.
    sold = (
        rows.filter(pl.col("seller_id") == "s1")
        .group_by(pl.col("ordered_at").dt.date().alias("day"), "region")
        .len()
        .filter(pl.col("len") >= 2)
        .sort("day", "region")
    )
    day, region = sold.row(0)[0].isoformat(), sold.row(0)[1]
    url = kit.embed_url("sales", tenant="s1", params={"period": [day, day], "region": [region]})
    session = open_session(client, url)["session"]
    end = (datetime.fromisoformat(day) + timedelta(days=1)).date().isoformat()
    those = period(rows, "s1", day, end).filter(pl.col("region") == region)
    assert those.height >= 2
    assert values_of(client, session, "category") == sorted(those["category"].unique().to_list())
    assert values_of(client, session, "region") == [region]


def days_of(rows: pl.DataFrame, seller: str, start: str, end: str) -> pl.DataFrame:
    return period(rows, seller, start, end)


def test_a_date_limit_holds_when_the_param_is_left_out(
    client: TestClient, kit: ek.EmbedKit, rows: pl.DataFrame
) -> None:
    url = kit.embed_url("sales", tenant="s1", editable={"period": {"min": "2024-05-20"}})
    definition = open_session(client, url)
    period_filter = definition["dashboard"]["filters"][0]
    # "last 30 days" starts May 2, before the limit: the page starts at the limit instead.
    assert period_filter["value"] == ["2024-05-20", "2024-05-31"]
    assert "last 30 days" not in period_filter["presets"]
    assert "last 7 days" in period_filter["presets"]
    session = definition["session"]
    kpi = get_data(client, session, "kpi_revenue").json()["kpi"]
    assert kpi["value"] == pytest.approx(
        period(rows, "s1", "2024-05-20", "2024-06-01")["amount"].sum()
    )
    assert kpi["previous"] is None  # the period before is outside the limit
    refused = get_data(client, session, "kpi_revenue", params={"period": "last 30 days"})
    assert refused.status_code == 403
    for bad in ({}, {"from": "2024-01-01"}, {"min": "not a date"}):
        with pytest.raises(ValueError, match="editable param 'period'"):
            kit.embed_url("sales", tenant="s1", editable={"period": bad})


def test_a_locked_period_hides_the_kpis_previous_period(
    client: TestClient, kit: ek.EmbedKit, rows: pl.DataFrame
) -> None:
    url = kit.embed_url("sales", tenant="s1", params={"period": ["2024-05-20", "2024-05-31"]})
    session = open_session(client, url)["session"]
    kpi = get_data(client, session, "kpi_revenue").json()["kpi"]
    assert kpi["value"] == pytest.approx(
        period(rows, "s1", "2024-05-20", "2024-06-01")["amount"].sum()
    )
    assert kpi["previous"] is None and kpi["delta"] is None and kpi["compared"] is False


def test_a_lock_that_cannot_limit_a_widget_refuses_to_embed_it(rows: pl.DataFrame) -> None:
    targets = ek.Dataset(
        "targets",
        pl.DataFrame({"seller_id": ["s1", "s2"], "goal": [100.0, 200.0]}),
        tenant_key="seller_id",
        measures=[ek.Measure("goal", "sum", sql="goal")],
    )
    kit = ek.EmbedKit([sales_dataset(rows), targets], secret=SECRET, clock=lambda: NOW)
    kit.add_dashboard(
        ek.Dashboard(
            "mixed",
            filters=[ek.SelectFilter("category", "orders.category")],
            widgets=[
                ek.Widget("revenue", "kpi", ek.Query(measures=["orders.revenue"])),
                ek.Widget("goal", "kpi", ek.Query(measures=["targets.goal"])),
            ],
        )
    )
    with pytest.raises(ValueError, match="cannot limit widget 'goal'"):
        kit.embed_url("mixed", tenant="s1", params={"category": ["books"]})
    assert kit.embed_url("mixed/revenue", tenant="s1", params={"category": ["books"]})
    assert kit.embed_url("mixed", tenant="s1")  # no lock: the goal widget is fine
    kit.close()


def test_an_embed_token_opens_one_session_only(client: TestClient, kit: ek.EmbedKit) -> None:
    url = kit.embed_url("sales", tenant="s1")
    open_session(client, url)
    again = client.post(f"{PREFIX}/session", json={"token": token_of(url), "resource": "sales"})
    assert again.status_code == 401 and again.json()["type"].endswith("/invalid")


def test_oversized_and_deep_bodies_are_refused_cheaply(
    client: TestClient, kit: ek.EmbedKit
) -> None:
    big = client.post(f"{PREFIX}/session", content=b"x" * 100_000)
    assert big.status_code == 401
    deep = client.post(f"{PREFIX}/session", content=b"[" * 5000)
    assert deep.status_code == 401
    session = open_session(client, kit.embed_url("sales", tenant="s1"))["session"]
    auth = {"Authorization": f"Bearer {session}"}
    for query in (
        {"params": "[" * 5000},
        {"params": '{"category": "\\ud800"}'},
        {"page": "\u00b2"},
    ):
        answer = client.get(f"{PREFIX}/data/by_category", params=query, headers=auth)
        assert answer.status_code == 400, (query, answer.text)


def test_host_origins_must_be_plain_origins() -> None:
    for bad in (
        "https://a.example; script-src *",
        "https://a.example/path",
        "a.example",
        "https://a.example\n",
    ):
        with pytest.raises(ValueError, match="not an origin"):
            ek.EmbedSettings(host_origins=[bad])
    assert ek.EmbedSettings(host_origins=["http://127.0.0.1:8000/"]).host_origins == (
        "http://127.0.0.1:8000",
    )


def test_one_session_cannot_fill_every_worker(kit: ek.EmbedKit) -> None:
    from embedkit.http.problems import Problem
    from embedkit.http.routes import MAX_INFLIGHT, Routes

    routes = Routes(kit._embedding, templates=None)
    url = kit.embed_url("sales", tenant="s1")
    grant = kit._embedding.grant(open_session_direct(kit, url))
    import contextlib

    with contextlib.ExitStack() as stack:
        for _ in range(MAX_INFLIGHT):
            stack.enter_context(routes._turn(grant))
        with pytest.raises(Problem) as caught, routes._turn(grant):
            pass
        assert caught.value.status == 429
    with routes._turn(grant):  # all turns given back
        pass


def open_session_direct(kit: ek.EmbedKit, url: str) -> str:
    return str(kit._embedding.open_session(token_of(url), "sales")["session"])


def test_revoking_a_tenant_covers_its_number_and_its_text(rows: pl.DataFrame) -> None:
    now = [NOW]
    kit = make_kit(rows, clock=lambda: now[0])
    url = kit.embed_url("sales", tenant="7")
    now[0] += timedelta(seconds=2)
    kit.revoke(tenant=7)
    with pytest.raises(ek.TokenError) as caught:
        kit._embedding.open_session(token_of(url), "sales")
    assert caught.value.reason == "revoked"
    kit.close()


def test_hour_by_weekday_heatmap_in_the_viewers_zone(rows: pl.DataFrame) -> None:
    """Time parts are ordinal fields with their own keys; a grain filter leaves them be."""
    hour = ek.Time("orders.ordered_at", grain="hour_of_day")
    weekday = ek.Time("orders.ordered_at", grain="day_of_week")
    kit = ek.EmbedKit(sales_dataset(rows), secret=SECRET, clock=lambda: NOW)
    kit.add_dashboard(
        ek.Dashboard(
            "rhythm",
            filters=[
                ek.DateRangeFilter("period", "orders.ordered_at", default="last 30 days"),
                ek.GrainFilter("grain", options=("day", "week"), default="day"),
            ],
            widgets=[
                ek.Widget(
                    "heat",
                    "heatmap",
                    ek.Query(measures=["orders.orders"], time=[hour, weekday]),
                    x="orders.ordered_at.hour_of_day",
                    color="orders.ordered_at.day_of_week",
                ),
                ek.Widget(
                    "table", "table", ek.Query(measures=["orders.orders"], time=[hour, weekday])
                ),
            ],
        )
    )
    zone = "America/New_York"
    with TestClient(Starlette(routes=[Mount(PREFIX, app=kit.asgi())])) as client:
        url = kit.embed_url("rhythm", tenant="s1", timezone=zone)
        session = open_session(client, url)["session"]
        data = get_data(client, session, "heat").json()
        weekly = get_data(client, session, "heat", params={"grain": "week"}).json()
        table = get_data(client, session, "table", order="ordered_at_day_of_week:desc").json()
    kit.close()
    assert [(f["key"], f["title"], f["role"], f["grain"]) for f in data["fields"]] == [
        ("ordered_at_hour_of_day", "Ordered at (hour of day)", "dimension", "hour_of_day"),
        ("ordered_at_day_of_week", "Ordered at (day of week)", "dimension", "day_of_week"),
        ("orders", "Orders", "measure", None),
    ]
    local = pl.col("ordered_at").dt.replace_time_zone("UTC").dt.convert_time_zone(zone)
    # NOW is 08:00 on June 1 in New York: the last 30 days are May 2 to May 31 there.
    start, end = datetime(2024, 5, 2), datetime(2024, 6, 1)
    expected = (
        rows.filter(pl.col("seller_id") == "s1")
        .with_columns(local.dt.replace_time_zone(None).alias("local"))
        .filter((pl.col("local") >= start) & (pl.col("local") < end))
        .group_by(h=pl.col("local").dt.hour(), d=pl.col("local").dt.weekday())
        .agg(pl.len().alias("n"))
        .sort("h", "d")
    )
    want = [(h, d, n) for h, d, n in expected.iter_rows()]
    got = [tuple(r.values()) for r in data["rows"]]
    assert got == want  # ascending by hour, then weekday
    assert weekly["rows"] == data["rows"]
    assert data["spec"]["encoding"]["x"]["field"] == "ordered_at_hour_of_day"
    assert "%a" in data["spec"]["encoding"]["y"]["axis"]["labelExpr"]
    assert [r["ordered_at_day_of_week"] for r in table["rows"]] == sorted(
        (d for _, d, _ in want), reverse=True
    )[: len(table["rows"])]
