"""The seller portal example, end to end: a real server, Debian's chromium, generated data.

Expected figures are computed with Polars straight from the generated Parquet files.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from playwright.sync_api import Browser, FrameLocator, Page, sync_playwright

from examples.seller_portal.app import create_app
from examples.seller_portal.generate import generate
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, free_socket, serve

ARTIFACTS = Path(__file__).parent / "artifacts"
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class Portal:
    def __init__(self, origin: str, data: Path) -> None:
        self.origin = origin
        self.data = data


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    data = tmp_path_factory.mktemp("portal-data")
    generate(data, sellers=4, orders=20_000, seed=11, end=TODAY, progress=False)
    sock = free_socket()
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(data, data / "portal.db", host_origins=(origin,))
    with serve(app, sock):
        yield Portal(origin, data)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def sign_in(page: Page, portal: Portal, email: str) -> None:
    page.goto(f"{portal.origin}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "demo")
    page.locator("form.stack button[type=submit], form.stack input[type=submit]").first.click()
    page.wait_for_url(re.compile(r".*/sales$"))


def dashboard(page: Page) -> FrameLocator:
    frame = page.frame_locator("embedkit-dashboard iframe")
    frame.locator("article[data-widget]").first.wait_for()
    frame.locator("article[data-state=loading]").first.wait_for(state="detached", timeout=30_000)
    return frame


def kpi_value(frame: FrameLocator, widget: str) -> float:
    cell = frame.locator(f'article[data-widget="{widget}"] details.ek-datatable tbody td').first
    return float(re.sub(r"[^0-9.\-]", "", cell.text_content() or ""))


def revenue_last_30_days(data: Path, seller: str) -> float:
    items = pl.read_parquet(data / "order_items.parquet")
    start, end = TODAY - timedelta(days=30), TODAY
    window = items.filter(
        (pl.col("seller_id") == seller)
        & (pl.col("status") == "completed")
        & (pl.col("ordered_at") >= start.replace(tzinfo=None))
        & (pl.col("ordered_at") < end.replace(tzinfo=None))
    )
    return float((window["quantity"] * window["unit_price"]).sum())


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_each_seller_sees_its_own_revenue(page: Page, portal: Portal) -> None:
    seen: dict[str, float] = {}
    for email, seller in (("anna@s001", "s001"), ("ben@s002", "s002")):
        sign_in(page, portal, email)
        frame = dashboard(page)
        seen[seller] = kpi_value(frame, "kpi_revenue")
        assert seen[seller] == pytest.approx(revenue_last_30_days(portal.data, seller), abs=0.01)
        page.locator("form[action='/logout'] button").first.click()
        page.wait_for_url(re.compile(r".*/login$"))
    assert seen["s001"] != seen["s002"]


def test_only_the_admin_sees_gross_margin(page: Page, portal: Portal) -> None:
    sign_in(page, portal, "anna@s001")
    frame = dashboard(page)
    assert frame.locator('article[data-widget="kpi_gross_margin"]').count() == 0
    assert "margin" not in (frame.locator("main").text_content() or "").lower()
    page.locator("form[action='/logout'] button").first.click()
    sign_in(page, portal, "anna-admin@s001")
    frame = dashboard(page)
    margin = kpi_value(frame, "kpi_gross_margin")
    items = pl.read_parquet(portal.data / "order_items.parquet").filter(
        (pl.col("seller_id") == "s001")
        & (pl.col("status") == "completed")
        & (pl.col("ordered_at") >= (TODAY - timedelta(days=30)).replace(tzinfo=None))
        & (pl.col("ordered_at") < TODAY.replace(tzinfo=None))
    )
    want = float((items["quantity"] * (items["unit_price"] - items["unit_cost"])).sum())
    assert margin == pytest.approx(want, abs=0.01)


def test_three_pages_at_desktop_and_phone_width(browser: Browser, portal: Portal) -> None:
    for width, label in ((1280, "desktop"), (375, "375px")):
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        sign_in(page, portal, "anna@s001")
        for name in ("sales", "inventory", "returns"):
            page.goto(f"{portal.origin}/{name}")
            dashboard(page)
            page.wait_for_timeout(300)
            assert page.evaluate("document.documentElement.scrollWidth") <= width, name
            shot(page, f"portal-{name}-{label}")
        context.close()


def test_stock_kpis_have_no_period_to_compare(page: Page, portal: Portal) -> None:
    sign_in(page, portal, "anna@s001")
    page.goto(f"{portal.origin}/inventory")
    frame = dashboard(page)
    kpis = frame.locator("article.ek-kind-kpi")
    assert kpis.count() >= 2
    assert frame.locator("article.ek-kind-kpi .ek-kpi-delta").count() == 0
    assert "previous" not in (kpis.first.text_content() or "").lower()


def test_a_promotion_goes_from_the_form_to_the_page(page: Page, portal: Portal) -> None:
    sign_in(page, portal, "anna@s001")
    page.goto(f"{portal.origin}/inventory")
    dashboard(page)
    form = page.locator("form[action='/promotions']")
    product = form.locator("select[name=product_id] option").first
    name = (product.text_content() or "").strip().split(" (")[0]
    form.locator("select[name=product_id]").select_option(product.get_attribute("value") or "")
    form.locator("select[name=discount]").select_option("15")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    active = page.locator(".promo-list li").filter(has_text=name)
    assert active.count() == 1
    assert "15%" in (active.text_content() or "")
    # The product is no longer offered for a second promotion.
    offered = page.locator("form[action='/promotions'] select[name=product_id] option")
    assert name not in " ".join(offered.all_text_contents())


def test_a_copied_embed_url_stops_working(page: Page, portal: Portal) -> None:
    sign_in(page, portal, "anna@s001")
    url = page.evaluate("fetch('/embed-url/sales').then(r => r.text())")
    assert "#token=" in url
    token = url.split("#token=")[1]
    # Used once by the page that asked for it...
    first = page.request.post(
        f"{portal.origin}/analytics/session", data={"token": token, "resource": "sales"}
    )
    assert first.status == 200
    # ...a copy of the link opens nothing, and shows the invalid state.
    copy = page.context.new_page()
    copy.goto(f"{portal.origin}{url}" if url.startswith("/") else url)
    title = copy.locator(".ek-state-title")
    title.wait_for()
    assert "not valid" in (title.text_content() or "").lower()
    assert "s001" not in (copy.locator("body").text_content() or "")


def test_a_copied_embed_url_stops_working_after_expiry(
    browser: Browser, portal: Portal, tmp_path: Path
) -> None:
    sock = free_socket()
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    short = create_app(
        portal.data, tmp_path / "portal.db", host_origins=(origin,), embed_ttl=3, leeway=0
    )
    with serve(short, sock):
        context = browser.new_context()
        page = context.new_page()
        sign_in(page, Portal(origin, portal.data), "anna@s001")
        url = page.evaluate("fetch('/embed-url/sales').then(r => r.text())")
        time.sleep(4)  # the link lives 3 s
        copy = context.new_page()
        copy.goto(f"{origin}{url}")
        title = copy.locator(".ek-state-title")
        title.wait_for()
        assert "expired" in (title.text_content() or "").lower()
        context.close()


def test_operations_staff_open_the_status_and_catalog_pages(page: Page, portal: Portal) -> None:
    page.goto(f"{portal.origin}/login")
    page.fill("input[name=email]", "ops@marketly")
    page.fill("input[name=password]", "demo")
    page.locator("form.stack button[type=submit]").first.click()
    page.wait_for_url(re.compile(r".*/operations$"))
    page.get_by_role("link", name="Data status").click()
    page.wait_for_url(re.compile(r".*/analytics/ops/status$"))  # the token left the address bar
    card = page.locator('article[data-dataset="orders"]')
    card.wait_for(timeout=30_000)
    orders = pl.read_parquet(portal.data / "orders.parquet").height
    assert f"{orders:,}" in (card.text_content() or "")
    # Every dataset of model.yml is there, and the generated data breaks no contract.
    names = page.locator("article[data-dataset]").evaluate_all(
        "nodes => nodes.map(n => n.dataset.dataset)"
    )
    assert sorted(names) == sorted(
        ["inventory", "item_returns", "order_items", "orders", "products", "returns", "stock"]
    )
    held = re.findall(
        r"([\d,]+) rows? held in quarantine", page.locator("main").text_content() or ""
    )
    assert held and set(held) == {"0"}
    shot(page, "portal-ops-status")
    page.goto(f"{portal.origin}/operations")
    page.get_by_role("link", name="Data catalog").click()
    page.wait_for_url(re.compile(r".*/analytics/ops/catalog$"))
    page.locator('[data-member="order_items.revenue"]').first.wait_for(timeout=30_000)


def test_a_seller_gets_no_operator_link(page: Page, portal: Portal) -> None:
    sign_in(page, portal, "anna-admin@s001")
    page.goto(f"{portal.origin}/operations/status")
    page.wait_for_url(re.compile(r".*/login$"))
    assert "#token=" not in page.url
