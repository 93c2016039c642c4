"""The operator pages (/ops/status and /ops/catalog) in Debian's chromium, served by uvicorn.

The kit holds orders whose contract quarantines some rows, shipments with an SLO (and
one failing query), and a public table. Expected numbers come from a second source:
held rows per rule are counted with Polars over the raw rows (and must equal
``kit.quarantine.by_rule``); attainment and SQL are read from ``kit.status()`` and
``kit.catalog()``, never from the page. Screenshots land in ``tests/artifacts/``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

import embedkit as ek
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, free_socket, serve

ARTIFACTS = Path(__file__).parent / "artifacts"
ACCEPTED = ["completed", "pending", "returned"]
MARKUP = 'Orders <img src=x onerror="window.__pwned = 1"> & refunds'
CSP_WATCH = (
    "window.__csp = [];"
    "document.addEventListener('securitypolicyviolation',"
    " e => window.__csp.push(e.violatedDirective));"
)


def order_rows(now: datetime) -> pl.DataFrame:
    """20 orders: amounts -1 and -2 break the range rule, status 'lost' the accepted rule."""
    naive = now.replace(tzinfo=None)
    return pl.DataFrame(
        {
            "order_id": list(range(1, 21)),
            "seller_id": [1 + i % 2 for i in range(20)],
            "status": ["lost" if i == 7 else ACCEPTED[i % 3] for i in range(20)],
            "amount": [-1.0 if i == 3 else -2.0 if i == 11 else 10.0 + i for i in range(20)],
            "ordered_at": [naive - timedelta(minutes=20 + i) for i in range(20)],
        }
    )


class Stack:
    def __init__(self, kit: ek.EmbedKit, base: str, orders: pl.DataFrame) -> None:
        self.kit, self.base, self.orders = kit, base, orders


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    sock = free_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    now = datetime.now(UTC)
    orders = order_rows(now)
    kit = ek.EmbedKit(
        [
            ek.Dataset(
                "orders",
                orders,
                tenant_key="seller_id",
                time="ordered_at",
                owner="sales-data@example.com",
                description=MARKUP,
                measures=[
                    ek.Measure("revenue", "sum", sql="amount", description="Money taken"),
                    ek.Measure("orders", "count", description="Orders placed"),
                ],
                segments=[ek.Segment("completed", "status = 'completed'")],
                column_rules=[ek.ColumnRule(["amount"], claim="role", allow=["finance"])],
                contract=ek.Contract(
                    ranges={"amount": (0, None)}, accepted={"status": ACCEPTED}, reject_above=0.5
                ),
            ),
            ek.Dataset(
                "shipments",
                pl.DataFrame(
                    {
                        "seller_id": [1, 1, 2],
                        "carrier": ["DHL", "UPS", "DHL"],
                        "shipped_at": [now.replace(tzinfo=None) - timedelta(hours=1)] * 3,
                    }
                ),
                tenant_key="seller_id",
                time="shipped_at",
                owner="logistics@example.com",
                description="Parcels handed to a carrier",
                measures=[ek.Measure("parcels_shipped", "count", description="Parcels")],
                dimensions=[ek.Dimension("carrier")],
                slo=ek.SLO(
                    availability=0.99, error_rate=0.2, latency_ms=2000, window=timedelta(hours=1)
                ),
            ),
            ek.Dataset(
                "carriers",
                pl.DataFrame({"carrier": ["DHL", "UPS"], "country": ["DE", "US"]}),
                public=True,
                description="Carriers every seller may use",
                dimensions=[ek.Dimension("carrier"), ek.Dimension("country")],
            ),
        ],
        secret=ek.generate_secret(),
        embed=ek.EmbedSettings(base_url=base),
    )
    kit.add_dashboard(
        ek.Dashboard(
            "sales", widgets=(ek.Widget("n", "kpi", ek.Query(measures=("orders.orders",))),)
        )
    )
    seller = ek.Principal(1)
    for _ in range(6):
        kit.query({"measures": ["shipments.parcels_shipped"]}, principal=seller)
    with pytest.raises(ek.EmbedKitError):
        kit.query({"measures": ["shipments.no_such_measure"]}, principal=seller)
    with serve(kit.asgi(), sock):
        yield Stack(kit, base, orders)
    kit.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_page(browser: Browser, width: int = 1280) -> Page:
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="en-US")
    context.add_init_script(CSP_WATCH)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.errors = errors  # type: ignore[attr-defined]
    return page


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    page = open_page(browser)
    yield page
    page.context.close()


def assert_clean(page: Page) -> None:
    assert page.errors == [], page.errors  # type: ignore[attr-defined]
    assert page.evaluate("window.__csp") == []


def percent(share: float) -> str:
    """How Intl.NumberFormat('en-US', {style: 'percent', maximumFractionDigits: 2}) writes it."""
    return f"{share * 100:.2f}".rstrip("0").rstrip(".") + "%"


def wait_until(page: Page, check: Any, timeout: float = 10) -> None:
    """Poll from Python: the CSP forbids the eval that page.wait_for_function uses."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(50)


def text(page: Page, selector: str) -> str:
    return " ".join(page.locator(selector).inner_text().split())


def open_status(page: Page, stack: Stack) -> str:
    url = stack.kit.operator_url("status", subject="ops@example.com")
    page.goto(url)
    page.wait_for_selector("#ops-root[data-charts=ready]")
    return url.split("#token=", 1)[1]


def test_rows_held_per_rule_match_a_polars_count(stack: Stack) -> None:
    """The quarantine's counts (what the page must show) equal a count over the raw rows."""
    o = stack.orders
    expected = {
        "range:amount": o.filter(pl.col("amount") < 0).height,
        "accepted:status": o.filter(~pl.col("status").is_in(ACCEPTED)).height,
    }
    assert (
        stack.kit.quarantine.by_rule("orders")
        == expected
        == {"range:amount": 2, "accepted:status": 1}
    )


def test_status_page_shows_health_quarantine_and_slos_from_an_operator_link(
    page: Page, stack: Stack
) -> None:
    token = open_status(page, stack)
    assert "#" not in page.url and "token" not in page.url
    assert token not in page.content()
    report = stack.kit.status()
    for d in report["datasets"]:
        card = f'article[data-dataset="{d["name"]}"]'
        badge = page.locator(f"{card} .ops-badge")
        assert badge.get_attribute("data-health") == d["health"]
        assert (
            badge.inner_text()
            .strip()
            .endswith({"ok": "Healthy", "warning": "Warning", "failing": "Failing"}[d["health"]])
        )
        held = stack.kit.quarantine.by_rule(d["name"])
        for rule in d["contract"]["rules"]:
            cell = f'{card} tr[data-rule="{rule["rule"]}"] td.ops-num'
            assert text(page, cell) == str(held.get(rule["rule"], 0))
        objectives = d["slo"]["objectives"] if d["slo"] else []
        for o in objectives:
            row = f'{card} tr[data-objective="{o["name"]}"]'
            shown = "no data yet" if o["attainment"] is None else percent(o["attainment"])
            assert shown in text(page, row)
            assert (
                page.locator(f'{card} .ops-chart-box[data-objective="{o["name"]}"] svg').count()
                == 1
            )
        assert page.locator(f"{card} .ops-chart-box").count() == len(objectives)
    by_name = {d["name"]: d for d in report["datasets"]}
    shipments = {o["name"]: o for o in by_name["shipments"]["slo"]["objectives"]}
    assert shipments["error_rate"]["total"] == 7  # the failing query counts
    assert text(page, 'tr[data-objective="error_rate"] .ops-attained') == percent(6 / 7)
    assert text(page, 'article[data-dataset="orders"] .ops-desc') == MARKUP
    assert page.locator("article img").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert "Last batch" in text(page, 'article[data-dataset="orders"]')
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ops-status.png"), full_page=True)
    assert_clean(page)


def test_status_page_refreshes_every_30_seconds_but_not_while_hidden(
    page: Page, stack: Stack
) -> None:
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if r.url.endswith("/status.json") else None)
    page.clock.install()
    page.goto(stack.kit.operator_url("status", subject="ops@example.com"))
    page.wait_for_selector(".ops-card")
    first = page.get_attribute("#ops-root", "data-generated")
    assert len(fetched) == 1
    page.clock.fast_forward(31_000)
    wait_until(page, lambda: page.get_attribute("#ops-root", "data-generated") != first)
    assert len(fetched) == 2
    hide = (
        "hidden => { Object.defineProperty(document, 'hidden', {value: hidden, configurable: 1});"
        " document.dispatchEvent(new Event('visibilitychange')); }"
    )
    page.evaluate(hide, True)
    page.clock.fast_forward(120_000)
    page.wait_for_timeout(300)
    assert len(fetched) == 2  # paused
    page.evaluate(hide, False)  # back in view, long overdue: loads at once
    page.wait_for_timeout(300)
    assert len(fetched) == 3
    assert_clean(page)


def test_status_page_without_a_token_asks_for_an_operator_link(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.base}/ops/status")
    page.wait_for_selector("[data-state=link]")
    words = text(page, "[data-state=link]")
    assert "This page needs an operator link" in words
    assert "kit.operator_url('status', subject=...)" in words
    assert_clean(page)


def other_tokens(kit: ek.EmbedKit) -> dict[str, str]:
    operator = kit.operator_token(subject="ops@example.com")
    head, payload, signature = operator.split(".")
    return {
        "embed": kit.embed_url("sales", tenant=1).split("#token=", 1)[1],
        "api": kit.api_token(tenant=1),
        "tampered": f"{head}.{payload}.{signature[::-1]}",
    }


@pytest.mark.parametrize("kind", ["embed", "api", "tampered"])
def test_a_token_that_is_not_a_valid_operator_token_shows_the_not_valid_state(
    browser: Browser, stack: Stack, kind: str
) -> None:
    page = open_page(browser)
    answers: list[int] = []
    page.on("response", lambda r: answers.append(r.status) if "/status.json" in r.url else None)
    token = other_tokens(stack.kit)[kind]
    page.goto(f"{stack.base}/ops/status#token={token}")
    page.wait_for_selector("[data-state=invalid]")
    assert "The link has expired or is not valid" in text(page, "[data-state=invalid]")
    assert answers == [401]
    assert "#" not in page.url and token not in page.content()
    page.errors = [e for e in page.errors if "401" not in e]  # type: ignore[attr-defined]
    assert_clean(page)
    page.context.close()


def test_catalog_lists_every_measure_with_its_sql_and_the_search_box_filters(
    page: Page, stack: Stack
) -> None:
    page.goto(stack.kit.operator_url("catalog", subject="ops@example.com"))
    page.wait_for_selector(".ops-product")
    catalog = stack.kit.catalog()
    for d in catalog["datasets"]:
        card = page.locator(f'article[data-dataset="{d["name"]}"]')
        assert card.locator("tr[data-member] .ops-sql").count() >= len(d["measures"])
        for m in d["measures"]:
            row = card.locator(f'tr[data-member="{m["name"]}"]')
            assert row.locator(".ops-sql").inner_text() == m["sql"]
            assert m["description"] in row.inner_text()
    amount = page.locator('article[data-dataset="orders"] tr[data-column="amount"]')
    assert "visible when role is 'finance'" in amount.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ops-catalog.png"), full_page=True)

    page.fill("#ops-search", "parcels_shipped")
    assert page.locator('article[data-dataset="shipments"]').is_visible()
    assert page.locator('tr[data-member="shipments.parcels_shipped"]').is_visible()
    assert page.locator('tr[data-member="shipments.carrier"]').is_hidden()
    for other in ("orders", "carriers"):
        assert page.locator(f'article[data-dataset="{other}"]').is_hidden()
    assert text(page, "#ops-search-count") == "1 of 3 datasets match"
    page.fill("#ops-search", "no such thing")
    assert page.locator("article.ops-product:visible").count() == 0
    assert "Nothing matches" in text(page, "#ops-search-count")
    page.fill("#ops-search", "")
    assert page.locator("article.ops-product:visible").count() == len(catalog["datasets"])
    assert_clean(page)


@pytest.mark.parametrize("name", ["status", "catalog"])
def test_pages_fit_a_375_px_screen_without_sideways_scrolling(
    browser: Browser, stack: Stack, name: str
) -> None:
    page = open_page(browser, width=375)
    page.goto(stack.kit.operator_url(name, subject="ops@example.com"))  # type: ignore[arg-type]
    page.wait_for_selector("#ops-root[data-charts=ready]" if name == "status" else ".ops-product")
    sizes: Any = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert sizes[0] <= sizes[1], sizes
    assert_clean(page)
    page.context.close()


def test_nav_link_carries_the_token_to_the_other_page(page: Page, stack: Stack) -> None:
    open_status(page, stack)
    page.click("a.ops-nav-link[href$='/ops/catalog']")
    page.wait_for_selector(".ops-product")
    assert re.search(r"/ops/catalog$", page.url)
    assert_clean(page)
