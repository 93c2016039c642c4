"""Live updates over a real server: the change hub, the /live stream's frames, reconnects.

A stream is read frame by frame from a real uvicorn server on 127.0.0.1 with httpx,
in a thread per stream, so a test can assert both what arrives and what never does.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx2 as httpx
import polars as pl
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

import embedkit as ek
from embedkit.live.hub import ChangeHub
from tests.browser_support import free_socket, serve
from tests.embed_fixtures import NOW, dashboards, make_kit, sales_rows

WIDGETS = [w.name for w in next(d for d in dashboards() if d.name == "sales").widgets]


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


# -- the hub ---------------------------------------------------------------------------


def test_the_hub_wakes_only_the_tenant_whose_rows_arrived() -> None:
    async def scenario() -> None:
        hub = ChangeHub()
        a = hub.subscribe("a", {"orders"})
        b = hub.subscribe("b", {"orders"})
        other = hub.subscribe("a", {"refunds"})
        hub.publish({"orders", "orders__daily"}, ["a"])
        await asyncio.sleep(0)  # wake-ups are scheduled on the loop
        assert a.event.is_set() and a.take() == {"orders"}
        assert not b.event.is_set() and not other.event.is_set()
        # Positions count only what a tenant may know: b's did not move.
        assert hub.position("a") == "1.0" and hub.position("b") == "0.0"
        hub.publish({"calendar", "orders"}, None)  # a public append is everyone's
        await asyncio.sleep(0)
        assert a.take() == {"orders"} and b.take() == {"orders"}
        assert hub.position("b") == "0.1"
        hub.unsubscribe(a)
        hub.publish({"orders"}, ["a"])
        await asyncio.sleep(0)
        assert not a.event.is_set() and hub.subscribers == 2

    asyncio.run(scenario())


# -- the stream over HTTP --------------------------------------------------------------


class Stream:
    """A /live stream read in a thread: ``events`` receives each parsed frame."""

    def __init__(self, url: str, session: str, headers: dict[str, str] | None = None) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.status = 0
        self.raw: list[str] = []
        self._client = httpx.Client(timeout=httpx.Timeout(30, read=None))
        self._headers = {"Authorization": f"Bearer {session}", **(headers or {})}
        self._url = url
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self._ready.wait(20), "the stream did not open"

    def _read(self) -> None:
        try:
            with self._client.stream("GET", self._url, headers=self._headers) as answer:
                self.status = answer.status_code
                self.content_type = answer.headers.get("content-type", "")
                self._ready.set()
                frame: dict[str, Any] = {}
                for line in answer.iter_lines():
                    self.raw.append(line)
                    if line == "":
                        if frame:
                            self.events.put(frame)
                        frame = {}
                    elif not line.startswith(":"):
                        name, _, value = line.partition(":")
                        frame[name] = value.removeprefix(" ")
        except (httpx.HTTPError, RuntimeError):
            pass
        finally:
            self._ready.set()
            self.events.put({"closed": "1"})

    def next(self, timeout: float = 10) -> dict[str, Any]:
        return self.events.get(timeout=timeout)

    def updates(self, within: float) -> list[dict[str, Any]]:
        """Every update frame that arrives within ``within`` seconds."""
        out, end = [], time.monotonic() + within
        while (left := end - time.monotonic()) > 0:
            try:
                frame = self.events.get(timeout=left)
            except queue.Empty:
                break
            if frame.get("event") == "update":
                out.append(frame)
        return out

    def close(self) -> None:
        self._client.close()


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def live(clock: Clock) -> Iterator[tuple[ek.EmbedKit, str]]:
    kit = make_kit(sales_rows(), clock=clock, base_url="/analytics")
    app = Starlette(routes=[Mount("/analytics", app=kit.asgi())])
    with serve(app, free_socket()) as origin:
        yield kit, origin + "/analytics"
    kit.close()


def open_session(kit: ek.EmbedKit, base: str, tenant: str, **kw: Any) -> str:
    url = kit.embed_url("sales", tenant=tenant, **kw)
    token = url.split("#token=")[1]
    answer = httpx.post(f"{base}/session", json={"token": token, "resource": "sales"})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["session"])


def current(base: str, session: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each widget's (ETag, body) from /data, as the page holds them after loading."""
    out = {}
    for name in WIDGETS:
        answer = httpx.get(f"{base}/data/{name}", headers={"Authorization": f"Bearer {session}"})
        out[name] = (answer.headers["etag"], answer.json())
    return out


def live_url(base: str, have: dict[str, str]) -> str:
    return f"{base}/live?" + httpx.QueryParams({"params": "{}", "have": json.dumps(have)}).__str__()


def sale(seller: str, amount: float, days_ago: int = 1) -> dict[str, Any]:
    return {
        "order_id": 10**6 + int(amount * 100),
        "seller_id": seller,
        "category": "books",
        "region": "north",
        "status": "completed",
        "customer": "Z",
        "amount": amount,
        "ordered_at": (NOW - timedelta(days=days_ago)).replace(tzinfo=None),
    }


def expected_revenue(rows: pl.DataFrame, seller: str) -> float:
    """Revenue of ``seller``'s completed orders in the last 30 days, with Polars."""
    start = (NOW - timedelta(days=30)).replace(tzinfo=None, hour=0, minute=0)
    window = rows.filter(
        (pl.col("seller_id") == seller)
        & (pl.col("ordered_at") >= start)
        & (pl.col("ordered_at") < NOW.replace(tzinfo=None))
    )
    return float(window["amount"].sum())


def test_an_append_reaches_its_tenants_stream_and_no_other(
    live: tuple[ek.EmbedKit, str],
) -> None:
    kit, base = live
    s1, s2 = open_session(kit, base, "s1"), open_session(kit, base, "s2")
    have1 = {k: v[0] for k, v in current(base, s1).items()}
    have2 = {k: v[0] for k, v in current(base, s2).items()}
    one, two = Stream(live_url(base, have1), s1), Stream(live_url(base, have2), s2)
    try:
        assert one.status == two.status == 200
        assert one.content_type.startswith("text/event-stream")
        assert one.next() == {"retry": "1000"} and two.next() == {"retry": "1000"}
        assert one.updates(0.3) == [] and two.updates(0.3) == []  # both up to date
        before = current(base, s1)["kpi_revenue"][1]["kpi"]["value"]
        kit.append("orders", [sale("s1", 123.45)])
        (update,) = one.updates(2.0)
        changed = json.loads(update["data"])["widgets"]
        # Only widgets whose answer changed are sent, each exactly as /data now answers.
        now1 = current(base, s1)
        assert set(changed) <= set(now1) and "kpi_revenue" in changed
        for name, item in changed.items():
            assert item["etag"] == now1[name][0] and item["data"] == now1[name][1]
        assert changed["kpi_revenue"]["data"]["kpi"]["value"] == pytest.approx(before + 123.45)
        # s2's stream carried nothing: not the data, not even that something happened.
        kit.append("orders", [sale("s1", 5.0)])
        assert two.updates(1.0) == []
        assert all(line.startswith("retry") or not line for line in two.raw)
        assert update["id"] == "1.0"  # s1's own count of changes; nothing of s2
    finally:
        one.close()
        two.close()


def test_a_burst_of_appends_is_coalesced_into_few_updates(
    live: tuple[ek.EmbedKit, str],
) -> None:
    kit, base = live
    s1 = open_session(kit, base, "s1")
    stream = Stream(live_url(base, {k: v[0] for k, v in current(base, s1).items()}), s1)
    try:
        stream.next()
        for i in range(20):
            kit.append("orders", [sale("s1", 10.0 + i)])
        updates = stream.updates(2.0)
        assert 1 <= len(updates) < 20
        last = json.loads(updates[-1]["data"])["widgets"]["kpi_orders"]["data"]["kpi"]["value"]
        rows = pl.concat([sales_rows(), pl.DataFrame([sale("s1", 10.0 + i) for i in range(20)])])
        start = (NOW - timedelta(days=30)).replace(tzinfo=None, hour=0, minute=0)
        count = rows.filter(
            (pl.col("seller_id") == "s1")
            & (pl.col("ordered_at") >= start)
            & (pl.col("ordered_at") < NOW.replace(tzinfo=None))
        ).height
        assert last == count  # the last update holds every order of the burst
    finally:
        stream.close()


def test_a_reconnect_gets_what_it_missed_once_and_nothing_twice(
    live: tuple[ek.EmbedKit, str],
) -> None:
    kit, base = live
    s1 = open_session(kit, base, "s1")
    have = {k: v[0] for k, v in current(base, s1).items()}
    first = Stream(live_url(base, have), s1)
    first.next()
    kit.append("orders", [sale("s1", 50.0)])
    (update,) = first.updates(2.0)
    for name, item in json.loads(update["data"])["widgets"].items():
        have[name] = item["etag"]
    first.close()  # the connection drops
    # Nothing new: reconnecting with the last id and ETags sends nothing.
    again = Stream(live_url(base, have), s1, {"Last-Event-ID": update["id"]})
    assert again.next() == {"retry": "1000"} and again.updates(0.5) == []
    again.close()
    # Appends while away: the reconnect sends exactly the changed widgets, once.
    kit.append("orders", [sale("s1", 70.0)])
    kit.append("orders", [sale("s1", 80.0)])
    back = Stream(live_url(base, have), s1, {"Last-Event-ID": update["id"]})
    try:
        back.next()
        (missed,) = back.updates(1.0)
        widgets = json.loads(missed["data"])["widgets"]
        now = current(base, s1)
        assert widgets["kpi_revenue"]["data"] == now["kpi_revenue"][1]
        assert expected_revenue(
            pl.concat([sales_rows(), pl.DataFrame([sale("s1", a) for a in (50.0, 70.0, 80.0)])]),
            "s1",
        ) == pytest.approx(widgets["kpi_revenue"]["data"]["kpi"]["value"])
        assert missed["id"] == "3.0"
    finally:
        back.close()


def test_the_stream_ends_with_its_session_and_refuses_bad_requests(
    live: tuple[ek.EmbedKit, str], clock: Clock
) -> None:
    kit, base = live
    s1 = open_session(kit, base, "s1")
    assert httpx.get(f"{base}/live").status_code == 401
    answer = httpx.get(
        f"{base}/live", params={"have": "[1]"}, headers={"Authorization": f"Bearer {s1}"}
    )
    assert answer.status_code == 400 and answer.json()["type"].endswith("bad-request")
    stream = Stream(live_url(base, {}), s1)
    try:
        assert stream.next() == {"retry": "1000"}
        assert stream.updates(0.3) == []  # the page follows no widget yet: nothing to send
        clock.now = NOW + timedelta(hours=2)  # past the session's life
        kit.append("orders", [sale("s1", 9.0)])
        assert stream.next(5) == {"event": "expired", "data": "{}"}
        assert stream.next(5) == {"closed": "1"}
    finally:
        stream.close()


def test_an_answer_differing_only_in_a_float_s_last_digits_is_not_news() -> None:
    from embedkit.cache.responses import make_body
    from embedkit.http.live import _meaning

    def body(value: float) -> Any:
        return make_body(json.dumps({"rows": [{"kwh": value}]}).encode(), "application/json", {})

    a, b = body(0.11442910863482092), body(0.11442910863482096)
    assert a.etag != b.etag  # different bytes
    assert _meaning(a) == _meaning(b)  # the same answer
    assert _meaning(a) != _meaning(body(0.1144291086)) != _meaning(body(0.11442910863482092 * 2))


def test_a_session_holds_four_streams_at_most_even_when_opened_at_once(
    live: tuple[ek.EmbedKit, str],
) -> None:
    kit, base = live
    s1 = open_session(kit, base, "s1")
    statuses: list[int] = []

    def attempt() -> None:
        with httpx.stream(
            "GET", live_url(base, {}), headers={"Authorization": f"Bearer {s1}"}, timeout=30
        ) as answer:
            statuses.append(answer.status_code)
            if answer.status_code == 200:
                time.sleep(2)  # hold the stream while the others try

    threads = [threading.Thread(target=attempt) for _ in range(7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 4 + [429] * 3


def test_opening_a_stream_again_reads_the_cache(live: tuple[ek.EmbedKit, str]) -> None:
    kit, base = live
    s1 = open_session(kit, base, "s1")
    executed: list[str] = []
    stop = kit.monitor.subscribe(lambda e: executed.append(e.cache))
    try:
        first = Stream(live_url(base, {}), s1)
        first.next()
        queries = len([c for c in executed if c != "hit"])
        assert queries > 0
        first.close()
        again = Stream(live_url(base, {}), s1)
        again.next()
        assert len([c for c in executed if c != "hit"]) == queries  # nothing ran again
        again.close()
    finally:
        stop()
