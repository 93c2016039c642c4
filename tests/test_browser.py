"""End to end: a host page embeds dashboards with the loader; Debian's chromium draws them.

Two real uvicorn servers on 127.0.0.1 (host app and analytics app on two ports, so
the embed is a real cross-origin iframe) and a real browser. Expected numbers are
computed with Polars over the same rows. Screenshots land in ``tests/artifacts/``.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import polars as pl
import pytest
from playwright.sync_api import Browser, FrameLocator, Page, Playwright, sync_playwright

import embedkit as ek
from tests.browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    AccessLog,
    analytics_app,
    free_socket,
    host_app,
    serve,
)
from tests.embed_fixtures import NOW, SECRET, make_kit, sales_rows

ARTIFACTS = Path(__file__).parent / "artifacts"
# The kit's clock runs in 2024; PyJWT would compare with today.
NO_TIME = {"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False}


class Stack:
    """The running servers, the kit behind them, and what they logged."""

    def __init__(self, kit: ek.EmbedKit, host: str, embed: str, log: AccessLog) -> None:
        self.kit = kit
        self.host = host
        self.embed = embed
        self.log = log
        self.requests: list[str] = []

    def url(self, resource: str = "sales", **query: Any) -> str:
        params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in query.items()}
        return f"{self.host}/host/{resource}?{urllib.parse.urlencode(params)}"


@pytest.fixture(scope="module")
def rows() -> pl.DataFrame:
    return sales_rows()


@pytest.fixture(scope="module")
def stack(rows: pl.DataFrame) -> Iterator[Stack]:
    host_sock, embed_sock = free_socket(), free_socket()
    host_origin = f"http://127.0.0.1:{host_sock.getsockname()[1]}"
    embed_origin = f"http://127.0.0.1:{embed_sock.getsockname()[1]}"
    started = time.time()
    # The data lives around NOW; the clock moves on in real time so tokens expire.
    kit = make_kit(
        rows,
        clock=lambda: NOW + timedelta(seconds=time.time() - started),
        host_origins=(host_origin,),
        base_url=f"{embed_origin}/analytics",
    )
    log = AccessLog()
    logger = logging_access()
    logger.addHandler(log)
    with serve(host_app(kit, embed_origin), host_sock), serve(analytics_app(kit), embed_sock):
        yield Stack(kit, host_origin, embed_origin, log)
    logger.removeHandler(log)
    kit.close()


def logging_access() -> Any:
    import logging

    logger = logging.getLogger("uvicorn.access")
    logger.setLevel(logging.INFO)
    return logger


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


def launch(p: Playwright) -> Browser:
    return p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="en-US")
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("request", lambda r: stack.requests.append(r.url))
    page.on("pageerror", lambda e: page.errors.append(str(e)))  # type: ignore[attr-defined]
    page.on(
        "console",
        lambda m: page.errors.append(m.text) if m.type == "error" else None,  # type: ignore[attr-defined]
    )
    yield page
    context.close()


def frame(page: Page) -> FrameLocator:
    return page.frame_locator("embedkit-dashboard iframe")


def events(page: Page, kind: str) -> list[dict[str, Any]]:
    return [e for e in page.evaluate("window.__events") if e["type"] == kind]


def wait_event(page: Page, kind: str, count: int = 1, timeout: float = 20) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = events(page, kind)
        if len(found) >= count:
            return found
        page.wait_for_timeout(100)
    raise AssertionError(f"no {kind} event (have {page.evaluate('window.__events')})")


def card(page: Page, widget: str) -> Any:
    return frame(page).locator(f'article[data-widget="{widget}"]')


def table_numbers(page: Page, widget: str) -> list[list[str]]:
    cells = card(page, widget).locator("details.ek-datatable tbody tr")
    return [
        [c.strip() for c in cells.nth(i).locator("td").all_text_contents()]
        for i in range(cells.count())
    ]


def money(text: str) -> float:
    return float(re.sub(r"[^0-9.\-]", "", text))


def days(rows: pl.DataFrame, seller: str, start: str, end: str) -> pl.DataFrame:
    lo, hi = datetime.fromisoformat(start), datetime.fromisoformat(end)
    return rows.filter(
        (pl.col("seller_id") == seller) & (pl.col("ordered_at") >= lo) & (pl.col("ordered_at") < hi)
    )


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def open_dashboard(page: Page, stack: Stack, **query: Any) -> None:
    page.goto(stack.url(**query))
    wait_event(page, "loaded")


def test_dashboard_draws_every_widget_with_polars_numbers(
    page: Page, stack: Stack, rows: pl.DataFrame
) -> None:
    open_dashboard(page, stack, tenant="s1")
    f = frame(page)
    for widget, marks in (
        ("revenue_by_day", "g.mark-line path"),
        ("by_category", "g.mark-rect path"),
        ("orders_by_region", "g.mark-rect path"),
        ("heat", "g.mark-rect path"),
        ("when", "g.mark-rect path"),
        ("status_mix", "g.mark-arc path"),
    ):
        assert card(page, widget).locator(marks).count() > 0, widget
    # KPI: revenue of the last 30 days (May 2 to May 31) and the delta against April.
    now = days(rows, "s1", "2024-05-02", "2024-06-01")["amount"].sum()
    before = days(rows, "s1", "2024-04-02", "2024-05-02")["amount"].sum()
    [[shown]] = table_numbers(page, "kpi_revenue")
    assert money(shown) == pytest.approx(now, abs=0.01)
    delta = card(page, "kpi_revenue").locator(".ek-delta-text").inner_text()
    assert f"{abs((now - before) / before) * 100:.1f}%" in delta
    # The bar chart's data table holds each category's revenue.
    want = dict(
        days(rows, "s1", "2024-05-02", "2024-06-01")
        .group_by("category")
        .agg(pl.col("amount").sum())
        .iter_rows()
    )
    got = {row[0]: money(row[1]) for row in table_numbers(page, "by_category")}
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=0.01)
    assert "SECRET" not in f.locator("body").inner_text()
    # The token left the DOM: neither the element's src nor the iframe's carries it.
    assert "token=" not in page.evaluate("document.getElementById('dash').getAttribute('src')")
    assert "token=" not in page.evaluate("document.querySelector('embedkit-dashboard iframe').src")
    assert "#" not in page.frames[1].url
    assert not page.errors, page.errors  # type: ignore[attr-defined]
    shot(page, "dashboard-light")


def test_filter_change_refetches_and_redraws(page: Page, stack: Stack, rows: pl.DataFrame) -> None:
    open_dashboard(page, stack, tenant="s1")
    before = len(events(page, "loaded"))
    frame(page).locator("select").first.select_option("last 7 days")
    wait_event(page, "loaded", before + 1)
    week = days(rows, "s1", "2024-05-25", "2024-06-01")["amount"].sum()
    [[shown]] = table_numbers(page, "kpi_revenue")
    assert money(shown) == pytest.approx(week, abs=0.01)
    change = wait_event(page, "filterchange")[-1]["detail"]["filters"]
    assert change["period"] == "last 7 days"


def test_host_sets_a_filter_and_receives_the_change(
    page: Page, stack: Stack, rows: pl.DataFrame
) -> None:
    open_dashboard(page, stack, tenant="s1")
    before = len(events(page, "loaded"))
    page.evaluate("document.getElementById('dash').setFilters({category: ['books']})")
    change = wait_event(page, "filterchange")[-1]["detail"]["filters"]
    assert change["category"] == ["books"]
    wait_event(page, "loaded", before + 1)
    assert [row[0] for row in table_numbers(page, "by_category")] == ["books"]
    assert "books" in page.locator("#host-filter").inner_text()


def test_a_locked_param_cannot_be_changed(page: Page, stack: Stack) -> None:
    open_dashboard(page, stack, tenant="s1", locked={"category": ["games"]})
    assert [row[0] for row in table_numbers(page, "by_category")] == ["games"]
    # The host (or a script in it) tries to change it: ignored.
    page.evaluate("document.getElementById('dash').setFilters({category: ['books']})")
    page.wait_for_timeout(500)
    assert [row[0] for row in table_numbers(page, "by_category")] == ["games"]

    # A tampered request from the page itself gets a 403 and no data.
    def tamper(route: Any) -> None:
        url = urllib.parse.urlsplit(route.request.url)
        query = dict(urllib.parse.parse_qsl(url.query))
        query["params"] = json.dumps({"category": ["books"]})
        route.continue_(url=url._replace(query=urllib.parse.urlencode(query)).geturl())

    statuses: list[int] = []
    page.on(
        "response", lambda r: statuses.append(r.status) if "/data/by_category" in r.url else None
    )
    page.route("**/data/by_category*", tamper)
    frame(page).locator("select").first.select_option("last 7 days")
    card(page, "by_category").locator(".ek-error").wait_for(state="visible")
    assert 403 in statuses
    assert "books" not in card(page, "by_category").inner_text()


def _bad_tokens(stack: Stack) -> dict[str, str]:
    url = stack.kit.embed_url("sales", tenant="s1")
    good = url.split("#token=")[1]
    claims = jwt.decode(good, SECRET, algorithms=["HS256"], options=NO_TIME)
    header, payload, signature = good.split(".")
    forged = jwt.utils.base64url_encode(json.dumps({**claims, "tenant": "s2"}).encode()).decode()
    none = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT","kid":"default"}').decode()
    old = {
        **claims,
        "iat": claims["iat"] - 900,
        "nbf": claims["iat"] - 900,
        "exp": claims["iat"] - 300,
    }
    return {
        "tampered": f"{header}.{forged}.{signature}",
        "expired": jwt.encode(old, SECRET, algorithm="HS256", headers={"kid": "default"}),
        "wrong-audience": jwt.encode(
            {**claims, "aud": "api"}, SECRET, algorithm="HS256", headers={"kid": "default"}
        ),
        "wrong-key": jwt.encode(
            claims,
            "k" * 8 + "another-key-of-enough-length-1234567",
            algorithm="HS256",
            headers={"kid": "default"},
        ),
        "alg-none": f"{none}.{payload}.",
    }


@pytest.mark.parametrize(
    "attack", ["tampered", "expired", "wrong-audience", "wrong-key", "alg-none"]
)
def test_bad_links_show_the_invalid_state_and_leak_nothing(
    page: Page, stack: Stack, attack: str
) -> None:
    token = _bad_tokens(stack)[attack]
    data_requests: list[str] = []
    page.on("request", lambda r: data_requests.append(r.url) if "/data/" in r.url else None)
    page.goto(f"{stack.embed}/analytics/embed/sales#token={token}")
    title = page.locator(".ek-state-title")
    title.wait_for()
    text = title.inner_text().lower()
    assert ("expired" in text) if attack == "expired" else ("not valid" in text)
    body = page.content()
    assert token not in body and "s2" not in page.locator("body").inner_text()
    assert "#token" not in page.url
    assert not data_requests
    if attack == "expired":
        shot(page, "link-expired")


def test_a_dashboard_token_cannot_fetch_another_dashboards_widget(page: Page, stack: Stack) -> None:
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if "/data/rate" in r.url else None)
    page.route(
        "**/data/by_category*",
        lambda route: route.continue_(
            url=route.request.url.replace("/data/by_category", "/data/rate")
        ),
    )
    open_dashboard(page, stack, tenant="s1")
    card(page, "by_category").locator(".ek-error").wait_for(state="visible")
    assert statuses and all(s == 403 for s in statuses)


def test_the_iframe_grows_and_shrinks_with_its_content(page: Page, stack: Stack) -> None:
    open_dashboard(page, stack, tenant="s1")
    iframe = page.locator("embedkit-dashboard iframe")

    def height() -> float:
        page.wait_for_timeout(600)
        return float(iframe.bounding_box()["height"])  # type: ignore[index]

    wide = height()
    page.set_viewport_size({"width": 600, "height": 900})
    narrow = height()
    assert narrow > wide * 1.3, (wide, narrow)
    page.set_viewport_size({"width": 1200, "height": 900})
    again = height()
    assert again < narrow * 0.8 and again == pytest.approx(wide, rel=0.1)
    assert wait_event(page, "resize")


def test_375px_phone_has_no_horizontal_scroll(browser: Browser, stack: Stack) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 800}, is_mobile=True)
    page = context.new_page()
    page.goto(stack.url(tenant="s1"))
    wait_event(page, "loaded")
    page.wait_for_timeout(500)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    inner = page.frames[1]
    assert inner.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "dashboard-375px")
    context.close()


def test_dark_theme_and_brand_colour(page: Page, stack: Stack) -> None:
    open_dashboard(page, stack, tenant="s2", theme={"mode": "dark", "primary": "#db2777"})
    inner = page.frames[1]
    assert inner.evaluate("document.documentElement.classList.contains('ek-dark')")
    primary = inner.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--ek-primary').trim()"
    )
    assert primary.lower() == "#db2777"
    shot(page, "dashboard-dark")


def test_locale_and_currency_format_numbers(page: Page, stack: Stack, rows: pl.DataFrame) -> None:
    open_dashboard(page, stack, tenant="s1", locale="de-DE", currency="EUR")
    [[shown]] = table_numbers(page, "kpi_revenue")
    now = days(rows, "s1", "2024-05-02", "2024-06-01")["amount"].sum()
    # German: "." groups thousands, "," marks decimals, the euro sign follows.
    assert shown.endswith("€"), shown
    assert float(shown.replace("€", "").replace(".", "").replace(",", ".").strip()) == (
        pytest.approx(now, abs=0.01)
    )
    assert page.frames[1].evaluate("document.documentElement.lang") == "de-DE"


def test_a_network_drop_recovers_without_a_reload(
    page: Page, stack: Stack, rows: pl.DataFrame
) -> None:
    open_dashboard(page, stack, tenant="s1")
    before = len(events(page, "loaded"))
    page.context.set_offline(True)
    frame(page).locator("select").first.select_option("last 7 days")
    page.wait_for_timeout(1500)
    page.context.set_offline(False)
    wait_event(page, "loaded", before + 1, timeout=40)
    [[shown]] = table_numbers(page, "kpi_revenue")
    week = days(rows, "s1", "2024-05-25", "2024-06-01")["amount"].sum()
    assert money(shown) == pytest.approx(week, abs=0.01)


def test_removing_the_element_stops_its_timers(browser: Browser, stack: Stack) -> None:
    """A 20 s token would be refreshed after 10 s; once the element is gone, nothing
    asks for tokens or data any more."""
    context = browser.new_context()
    page = context.new_page()
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    page.goto(stack.url(tenant="s1", ttl="20"))
    wait_event(page, "loaded")
    page.evaluate("document.getElementById('dash').remove()")
    removed = len(seen)
    page.wait_for_timeout(14_000)
    late = [u for u in seen[removed:] if "/token/" in u or "/session" in u or "/data/" in u]
    assert not late, late
    context.close()


def test_token_refresh_keeps_the_page_alive_past_expiry(browser: Browser, stack: Stack) -> None:
    """The first token lives 20 s; the browser's clock is 4 minutes fast. The page keeps
    working after 30 s because the loader fetched fresh tokens from the host."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.add_init_script("""
      (() => { const skew = 240000; const real = Date.now;
        Date.now = () => real() + skew; })();
    """)
    page = context.new_page()
    page.goto(stack.url(tenant="s1", ttl="20"))
    page.wait_for_function("window.__events.some(e => e.type === 'loaded')", timeout=20000)
    f = page.frame_locator("embedkit-dashboard iframe")
    f.locator("select").first.select_option("last 7 days")
    page.wait_for_timeout(30_000)
    assert any(e["type"] == "token-provider" for e in page.evaluate("window.__events"))
    before = sum(e["type"] == "loaded" for e in page.evaluate("window.__events"))
    f.locator("select").first.select_option("last 90 days")
    page.wait_for_function(
        f"window.__events.filter(e => e.type === 'loaded').length > {before}", timeout=20000
    )
    assert f.locator(".ek-state-title").count() == 0  # no expired state
    assert f.locator("article .ek-error:visible").count() == 0
    assert f.locator("select").first.input_value() == "last 90 days"
    context.close()


def test_tokens_never_reach_a_log_and_no_request_leaves_loopback(stack: Stack) -> None:
    # Runs last in this module: it reads what every test above logged and requested.
    assert stack.log.lines, "the access log was captured"
    for line in stack.log.lines:
        assert "token=" not in line and "eyJ" not in line, line
    assert stack.requests
    for url in stack.requests:
        parts = urllib.parse.urlsplit(url)
        assert parts.scheme in ("http", "data", "blob", "about"), url
        if parts.scheme == "http":
            assert parts.hostname == "127.0.0.1", url
