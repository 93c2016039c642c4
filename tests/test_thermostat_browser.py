"""The thermostat app end to end: a real server with its live feed running, Chromium
signing in through the login form, charts that move without a reload, and a guest who
sees the rooms of their claim only."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
import uvicorn
from playwright.sync_api import Browser, Frame, Page, sync_playwright
from starlette.applications import Starlette

from examples.thermostat_app.analytics import priced
from examples.thermostat_app.app import create_app
from examples.thermostat_app.fleet import make_fleet
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, free_socket


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Starlette]]:
    sock = free_socket()
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    data = Path(tmp_path_factory.mktemp("thermostat"))
    app = create_app(data, host_origins=(origin,), tick=1.0, history_days=3)
    # lifespan on: the app's live feed runs with the server, as under `make thermostat`.
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.05)
    yield origin, app
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def sign_in(browser: Browser, origin: str, email: str) -> tuple[Page, Frame]:
    page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    page.goto(f"{origin}/login")
    page.locator('form input[name="email"]').first.fill(email)
    page.locator('form input[name="password"]').first.fill("demo")
    page.locator('form button[type="submit"]').first.click()
    page.wait_for_url(f"{origin}/home")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        frames = [f for f in page.frames if "/analytics/embed/" in f.url]
        if frames and frames[0].evaluate(
            "document.getElementById('ek-root').getAttribute('data-live') === 'streaming'"
        ):
            return page, frames[0]
        page.wait_for_timeout(100)
    raise AssertionError("the household's embed never started streaming")


def updates(frame: Frame, widget: str) -> int:
    value = frame.evaluate(
        f"document.querySelector('article[data-widget=\"{widget}\"]')"
        "?.getAttribute('data-live-updates')"
    )
    return int(value or 0)


def test_an_owner_s_cost_follows_an_append_without_a_reload(
    browser: Browser, served: tuple[str, Starlette]
) -> None:
    origin, app = served
    page, frame = sign_in(browser, origin, "mia@h01")
    frame.evaluate("window.__stay = 1")
    before = updates(frame, "cost_month")
    # The feed appends every second, but a heat pump at rest adds no cost: append a
    # reading of h01 with the heat pump running, as the feed would.
    history: pl.DataFrame = app.state.history
    last = history.filter(pl.col("household_id") == "h01").tail(1).to_dicts()[0]
    now = datetime.now(UTC).replace(tzinfo=None)
    reading = {**last, "ts": now, "hvac_on": True, "energy_kwh": 0.05}
    report = app.state.kit.append("readings", priced(pl.DataFrame([reading]), make_fleet(7)))
    assert report.stored == 1
    deadline = time.monotonic() + 30
    while updates(frame, "cost_month") <= before:
        assert time.monotonic() < deadline, "the cost never moved"
        time.sleep(0.05)
    assert frame.evaluate("window.__stay") == 1
    page.context.close()


def test_a_guest_sees_the_rooms_of_their_claim_only(
    browser: Browser, served: tuple[str, Starlette]
) -> None:
    page, frame = sign_in(browser, served[0], "sam@h01")
    table = 'article[data-widget="energy_by_room"] details.ek-datatable tbody tr'
    frame.wait_for_selector(table, state="attached")
    cells = frame.evaluate(
        f"Array.from(document.querySelectorAll({table!r})).map(r => r.cells[0].textContent)"
    )
    rooms = {str(c).strip().lower() for c in cells}
    assert rooms and rooms <= {"kids", "living"}, rooms
    # The owner's widgets (money, totals) are not on the guest's dashboard at all.
    assert frame.locator('article[data-widget="cost_month"]').count() == 0
    page.context.close()
