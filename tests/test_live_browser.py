"""Live embeds in a real browser: an append shows up without a reload, another
tenant's page hears nothing of it, and a dropped stream resumes without gaps or
duplicates.

An init script tees every ``/live`` response the embed page reads into
``window.__liveFrames``, so the test sees the exact bytes each page received.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import polars as pl
import pytest
from playwright.sync_api import Browser, Frame, Page, sync_playwright

import embedkit as ek
from tests.browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    analytics_app,
    free_socket,
    host_app,
    serve,
)
from tests.embed_fixtures import NOW, make_kit, sales_rows

TEE_LIVE = """
(() => {
  const original = window.fetch;
  window.__liveFrames = [];
  window.fetch = async function (input, init) {
    const answer = await original.apply(this, arguments);
    const url = typeof input === "string" ? input : input.url;
    if (!url.includes("/live?") || !answer.body) return answer;
    const [page, copy] = answer.body.tee();
    (async () => {
      const reader = copy.getReader();
      const text = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        window.__liveFrames.push(text.decode(value));
      }
    })();
    return new Response(page, { status: answer.status, headers: answer.headers });
  };
})();
"""


class Stack:
    def __init__(self, kit: ek.EmbedKit, host: str) -> None:
        self.kit, self.host = kit, host
        self.appended: list[dict[str, Any]] = []

    def append(self, seller: str, amount: float) -> None:
        # The dashboard shows "last 30 days", which ends with yesterday (Cube's meaning).
        row = {
            "order_id": 10**7 + len(self.appended),
            "seller_id": seller,
            "category": "books",
            "region": "north",
            "status": "completed",
            "customer": "Z",
            "amount": amount,
            "ordered_at": YESTERDAY + timedelta(hours=15, seconds=len(self.appended)),
        }
        self.kit.append("orders", [row])
        self.appended.append(row)

    started = 0.0


YESTERDAY = NOW.replace(tzinfo=None, hour=0, minute=0) - timedelta(days=1)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    host_sock, embed_sock = free_socket(), free_socket()
    host_origin = f"http://127.0.0.1:{host_sock.getsockname()[1]}"
    embed_origin = f"http://127.0.0.1:{embed_sock.getsockname()[1]}"
    started = time.time()
    kit = make_kit(
        sales_rows(),
        clock=lambda: NOW + timedelta(seconds=time.time() - started),
        host_origins=(host_origin,),
        base_url=f"{embed_origin}/analytics",
        live_poll=1.0,
    )
    with serve(host_app(kit, embed_origin), host_sock), serve(analytics_app(kit), embed_sock):
        s = Stack(kit, host_origin)
        s.started = started
        yield s
    kit.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_embed(
    browser: Browser, stack: Stack, tenant: str, mode: str = "streaming"
) -> tuple[Page, Frame]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.add_init_script(TEE_LIVE)
    page = context.new_page()
    if mode == "polling":  # a proxy that refuses streams: every /live attempt fails
        page.route("**/analytics/live?*", lambda route: route.abort())
    page.goto(f"{stack.host}/host/sales?tenant={tenant}")
    page.wait_for_function("document.querySelector('embedkit-dashboard iframe')")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        frames = [f for f in page.frames if "/analytics/embed/" in f.url]
        if frames and frames[0].evaluate(
            f"document.getElementById('ek-root').getAttribute('data-live') === '{mode}'"
        ):
            return page, frames[0]
        page.wait_for_timeout(50)
    raise AssertionError(f"the embed never started {mode}")


def frames_of(frame: Frame) -> list[dict[str, str]]:
    """The SSE events the page received, parsed from the raw bytes."""
    text = "".join(frame.evaluate("window.__liveFrames"))
    events = []
    for block in text.split("\n\n"):
        event = {}
        for line in block.split("\n"):
            if line and not line.startswith(":"):
                name, _, value = line.partition(":")
                event[name] = value.removeprefix(" ")
        if event:
            events.append(event)
    return events


def updates_of(frame: Frame) -> list[dict[str, Any]]:
    import json

    return [
        {"id": e["id"], "widgets": json.loads(e["data"])["widgets"]}
        for e in frames_of(frame)
        if e.get("event") == "update"
    ]


def live_count(frame: Frame, widget: str) -> int:
    value = frame.evaluate(
        f"document.querySelector('article[data-widget=\"{widget}\"]')"
        ".getAttribute('data-live-updates')"
    )
    return int(value or 0)


def wait_live(frame: Frame, widget: str, above: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while live_count(frame, widget) <= above:
        if time.monotonic() > deadline:
            raise AssertionError(f"{widget} got no live update: {frames_of(frame)}")
        time.sleep(0.02)


def last_day_revenue(frame: Frame) -> float:
    """The last row of the line chart's data table (yesterday), as the page shows it."""
    rows = frame.locator('article[data-widget="revenue_by_day"] details.ek-datatable tbody tr')
    cells = rows.nth(rows.count() - 1).locator("td").all_text_contents()
    return float(re.sub(r"[^0-9.\-]", "", cells[-1]))


def expected_last_day(stack: Stack, seller: str) -> float:
    """Yesterday's revenue of ``seller`` computed with Polars over the same rows."""
    rows = pl.concat([sales_rows(), pl.DataFrame(stack.appended)], how="diagonal_relaxed")
    return float(
        rows.filter(
            (pl.col("seller_id") == seller)
            & (pl.col("ordered_at") >= YESTERDAY)
            & (pl.col("ordered_at") < YESTERDAY + timedelta(days=1))
        )["amount"].sum()
    )


def test_an_append_shows_without_reload_and_reaches_no_other_tenant(
    browser: Browser, stack: Stack
) -> None:
    page1, one = open_embed(browser, stack, "s1")
    page2, two = open_embed(browser, stack, "s2")
    chart = 'article[data-widget="revenue_by_day"] .ek-vega svg'
    one.evaluate(f"window.__stay = 1; document.querySelector('{chart}').dataset.mark = '1'")
    line_before = one.locator(f"{chart} g.mark-line path").first.get_attribute("d")
    before = live_count(one, "revenue_by_day")
    t0 = time.monotonic()
    stack.append("s1", 321.0)
    wait_live(one, "revenue_by_day", before)
    seen_after = time.monotonic() - t0
    # The same page (no reload) and the same chart element, extended in place.
    assert one.evaluate("window.__stay") == 1
    assert one.evaluate(f"document.querySelector('{chart}').dataset.mark") == "1"
    one.wait_for_function(
        f"document.querySelector('{chart} g.mark-line path').getAttribute('d') !== {line_before!r}"
    )
    assert last_day_revenue(one) == pytest.approx(expected_last_day(stack, "s1"), abs=0.01)
    # s2's page received the opening frame and nothing else: no data, no event.
    page2.wait_for_timeout(500)
    assert [e for e in frames_of(two) if "retry" not in e] == []
    print(f"append -> widget updated in the browser: {seen_after * 1000:.0f} ms")
    page1.context.close()
    page2.context.close()


def test_a_dropped_stream_resumes_without_gaps_or_duplicates(
    browser: Browser, stack: Stack
) -> None:
    page, one = open_embed(browser, stack, "s1")
    before = live_count(one, "revenue_by_day")
    stack.append("s1", 11.0)
    wait_live(one, "revenue_by_day", before)
    opened = stack.kit.end_live_streams()  # the server drops every stream
    assert opened >= 1
    stack.append("s1", 22.0)  # while the page reconnects
    stack.append("s1", 33.0)
    want = expected_last_day(stack, "s1")
    deadline = time.monotonic() + 15
    while last_day_revenue(one) != pytest.approx(want, abs=0.01):
        assert time.monotonic() < deadline, (last_day_revenue(one), want)
        time.sleep(0.05)
    page.wait_for_timeout(500)
    sent = [(name, item["etag"]) for u in updates_of(one) for name, item in u["widgets"].items()]
    assert len(sent) == len(set(sent))  # no answer arrived twice
    ids = [u["id"] for u in updates_of(one)]
    assert ids == sorted(ids, key=lambda i: tuple(int(p) for p in i.split(".")))
    retries = [e for e in frames_of(one) if "retry" in e]
    assert len(retries) >= 2  # the page did reconnect
    # The line holds one row per day, and yesterday's counts every append once.
    rows = one.locator('article[data-widget="revenue_by_day"] details.ek-datatable tbody tr')
    days = [rows.nth(i).locator("td").first.text_content() for i in range(rows.count())]
    assert len(days) == len(set(days))
    page.context.close()


def test_when_streams_are_refused_the_page_polls_and_still_updates(
    browser: Browser, stack: Stack
) -> None:
    page, one = open_embed(browser, stack, "s3", mode="polling")
    before = live_count(one, "revenue_by_day")
    stack.append("s3", 77.0)
    wait_live(one, "revenue_by_day", before)
    assert last_day_revenue(one) == pytest.approx(expected_last_day(stack, "s3"), abs=0.01)
    assert frames_of(one) == []  # no stream ever opened
    page.context.close()
