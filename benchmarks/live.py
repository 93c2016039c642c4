"""Live embeds: how long from ``kit.append`` until the browser has redrawn the widget,
with 1, 10 and 100 embeds open, and how many queries each append costs.

What is measured
----------------
A readings dataset (households x minutes, today and yesterday) and a dashboard with a
line (indoor temperature by minute, today) and a KPI (energy today) are served by
uvicorn on 127.0.0.1; Debian's Chromium opens host pages, each holding up to ten
``<embedkit-dashboard>`` elements. With E embeds open, the embeds are spread over
T = min(E, 25) households, so the 100-embed run has 4 viewers per household.

Each round appends one reading (with a value no earlier round used, so the line moves)
to one household (round robin) and records the wall clock just before the call. Every
embed of that household reports the moment its line chart took the new point (the
loader's ``embedkit:update`` event for that widget, ``Date.now()`` in the page); the
latency of the round for that viewer is the difference. Rounds are 250 ms apart.
``missed_updates`` counts viewers whose line had not moved 10 s after an append.

Queries per append: every query the kit executes (cache misses; the query log's
subscriber counts them) during a round, over the rounds. A household's viewers
share one computation per change (response cache and single-flight), so the count
should not grow with viewers of one household: compare ``queries_per_append`` at 10
embeds (1 viewer each) with 100 embeds (4 viewers each).

Metrics: ``append_to_browser_p50_ms`` / ``_p95_ms`` per size and overall (the p95 of
the largest size is ``append_to_browser_p95_ms``, target <= 1000), and
``queries_per_append`` per size. Ratio ``queries_per_append_100_vs_10`` (target <= 1).

Usage::

    python benchmarks/live.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import html
import json
import resource
import socket
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route

import embedkit as ek

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SECRET = "bench-only-live-9fQ2wLm7Tz4Rc8Wn1Kp5Yb3Fd6Gs0HjXe"
# Browsers open at most six HTTP/1.1 connections per origin and profile, and each live
# embed holds one: a page (its own browser context, like a viewer's own browser) holds
# five embeds at most.
PER_PAGE = 5
MAX_HOUSEHOLDS = 25


def readings(households: int, now: datetime) -> pl.DataFrame:
    """One reading per household and minute, from yesterday 00:00 until ``now``."""
    start = (now - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    minutes = int((now - start).total_seconds() // 60)
    ts = pl.datetime_range(start, start + timedelta(minutes=minutes - 1), "1m", eager=True)
    frames = []
    for h in range(households):
        frames.append(
            pl.DataFrame(
                {
                    "household": f"h{h:03d}",
                    "ts": ts,
                    "indoor_c": [20 + ((i + h) % 40) / 10 for i in range(len(ts))],
                    "energy_kwh": [0.01 * ((i * 7 + h) % 5) for i in range(len(ts))],
                }
            )
        )
    return pl.concat(frames).with_columns(pl.col("ts").dt.replace_time_zone(None))


def build_kit(households: int, now: datetime) -> ek.EmbedKit:
    kit = ek.EmbedKit(
        ek.Dataset(
            "readings",
            readings(households, now),
            tenant_key="household",
            time="ts",
            measures=[
                ek.Measure("indoor", "avg", sql="indoor_c", title="Indoor", format="number"),
                ek.Measure("energy", "sum", sql="energy_kwh", title="Energy (kWh)"),
            ],
        ),
        secret=SECRET,
        embed=ek.EmbedSettings(base_url="/analytics"),
    )
    minute = ek.Time("readings.ts", grain="minute")
    kit.add_dashboard(
        ek.Dashboard(
            "home",
            title="Home",
            filters=(
                ek.DateRangeFilter(
                    "period", "readings.ts", default="today", presets=("today", "yesterday")
                ),
            ),
            widgets=(
                ek.Widget(
                    "indoor", "line", ek.Query(measures=("readings.indoor",), time=(minute,))
                ),
                ek.Widget(
                    "energy",
                    "kpi",
                    ek.Query(measures=("readings.energy",), time=(ek.Time("readings.ts"),)),
                ),
            ),
        )
    )
    return kit


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>live</title>
<script src="/analytics/static/loader.js" defer></script></head><body>
{embeds}
<script>
  window.__updates = [];
  window.__loaded = 0;
  document.addEventListener("embedkit:update", (e) => {{
    window.__updates.push({{
      household: e.target.dataset.household, widget: e.detail.widget, at: Date.now()
    }});
  }});
  document.addEventListener("embedkit:loaded", () => {{ window.__loaded += 1; }});
</script></body></html>"""


def host_app(kit: ek.EmbedKit) -> Starlette:
    async def page(request: Request) -> HTMLResponse:
        tags = [
            f'<embedkit-dashboard data-household="{html.escape(h)}" '
            f'src="{html.escape(kit.embed_url("home", tenant=h, ttl=3600))}"></embedkit-dashboard>'
            for h in request.query_params.get("households", "").split(",")
            if h
        ]
        return HTMLResponse(PAGE.format(embeds="\n".join(tags)))

    return Starlette(routes=[Route("/host", page), Mount("/analytics", app=kit.asgi())])


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def open_pages(browser: Browser, base: str, viewers: list[str]) -> list[Page]:
    pages = []
    for i in range(0, len(viewers), PER_PAGE):
        chunk = viewers[i : i + PER_PAGE]
        page = browser.new_context(viewport={"width": 1000, "height": 800}).new_page()
        page.goto(f"{base}/host?households={','.join(chunk)}")
        page.wait_for_function(f"window.__loaded >= {len(chunk)}", timeout=120_000)
        pages.append(page)
    for page in pages:  # every embed streaming before the first append
        page.wait_for_function(
            "Array.from(document.querySelectorAll('embedkit-dashboard iframe')).length > 0",
            timeout=60_000,
        )
    time.sleep(1.0)
    return pages


def run_size(
    kit: ek.EmbedKit, browser: Browser, base: str, embeds: int, rounds: int
) -> dict[str, Any]:
    households = [f"h{h:03d}" for h in range(min(embeds, MAX_HOUSEHOLDS))]
    viewers = [households[i % len(households)] for i in range(embeds)]
    pages = open_pages(browser, base, viewers)
    executed: list[int] = [0]
    unsubscribe = kit.monitor.subscribe(
        lambda e: executed.__setitem__(0, executed[0] + (e.cache != "hit"))
    )
    latencies: list[float] = []
    queries: list[int] = []
    missing = 0
    try:
        for r in range(rounds):
            household = households[r % len(households)]
            expected = viewers.count(household)
            seen_before = _seen(pages, household)
            executed[0] = 0
            at = time.time() * 1000
            row = {
                "household": household,
                "ts": datetime.now(UTC).replace(tzinfo=None),
                "indoor_c": 30.0 + r / 100,  # a new value each round: the line moves
                "energy_kwh": 0.5,
            }
            kit.append("readings", [row])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                got = [t for t in _seen(pages, household) if t not in seen_before]
                if len(got) >= expected:  # the line of every viewer
                    break
                time.sleep(0.01)
            got = [t for t in _seen(pages, household) if t not in seen_before]
            missing += max(0, expected - len(got))
            latencies += [t - at for t in got[:expected]]
            time.sleep(0.25)
            queries.append(executed[0])
    finally:
        unsubscribe()
        for page in pages:
            page.context.close()
    return {
        "embeds": embeds,
        "households": len(households),
        "viewers_per_household": embeds / len(households),
        "rounds": rounds,
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(_pct(latencies, 0.95), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "missed_updates": missing,
        "queries_per_append": round(statistics.mean(queries), 2),
    }


def _seen(pages: list[Page], household: str) -> list[float]:
    out: list[float] = []
    for page in pages:
        out += page.evaluate(
            f"window.__updates.filter(u => u.household === {json.dumps(household)}"
            " && u.widget === 'indoor').map(u => u.at)"
        )
    return out


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 and 10 embeds, 10 rounds")
    parser.add_argument("--json", metavar="PATH", help="write results as JSON")
    args = parser.parse_args(argv)
    sizes = (1, 10) if args.quick else (1, 10, 100)
    rounds = 10 if args.quick else 40
    now = datetime.now(UTC).replace(tzinfo=None)
    kit = build_kit(MAX_HOUSEHOLDS, now)
    results = []
    with serve(host_app(kit)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for embeds in sizes:
                result = run_size(kit, browser, base, embeds, rounds)
                print(
                    f"{embeds:>4} embeds over {result['households']:>2} households: "
                    f"append -> browser p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, "
                    f"queries per append {result['queries_per_append']}, "
                    f"missed {result['missed_updates']}",
                    file=sys.stderr,
                )
                results.append(result)
        finally:
            browser.close()
            kit.close()
    metrics: dict[str, Any] = {}
    for r in results:
        for key in ("p50_ms", "p95_ms", "max_ms", "queries_per_append", "missed_updates"):
            metrics[f"{r['embeds']}.{key}"] = r[key]
    largest = results[-1]
    metrics["append_to_browser_p95_ms"] = largest["p95_ms"]
    metrics["append_to_browser_p50_ms"] = largest["p50_ms"]
    metrics["server_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    by = {r["embeds"]: r for r in results}
    ratios = {}
    if 100 in by and 10 in by and by[10]["queries_per_append"]:
        ratios["queries_per_append_100_vs_10"] = round(
            by[100]["queries_per_append"] / by[10]["queries_per_append"], 3
        )
    out = {
        "benchmark": "live",
        "params": {
            "quick": args.quick,
            "sizes": list(sizes),
            "rounds": rounds,
            "households": MAX_HOUSEHOLDS,
            "embeds_per_page": PER_PAGE,
            "rows": MAX_HOUSEHOLDS * 24 * 60 * 2,
            "coalesce_s": ek.EmbedSettings().live_coalesce,
            "ratio_targets": {"queries_per_append_100_vs_10": "<= 1"},
            "metric_targets": {"append_to_browser_p95_ms": "<= 1000"},
            "browser": "Debian chromium via Playwright",
        },
        "metrics": metrics,
        "ratios": ratios,
    }
    print(json.dumps(out, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
