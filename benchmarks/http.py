"""HTTP throughput: embedkit's widget-data route against a bare Starlette endpoint.

What is measured
----------------
An orders table (tenant_id, ordered_at over the 365 days before "now", amount,
status, order_id) is generated with DuckDB's ``range()`` and hashing, so it is
deterministic for a given ``--seed``: 1M rows / 1,000 tenants (``--quick``: 100k rows
/ 100 tenants; ~1,000 rows per tenant either way). It is registered in an
:class:`embedkit.EmbedKit` with a signing secret and a fixed clock (so "last 30
days" is the same window in every run), and a dashboard with two widgets:

* ``line`` -- revenue by day, under a ``DateRangeFilter`` defaulting to "last 30
  days" (one DuckDB query per request);
* ``kpi``  -- revenue over the same range, its previous period and a daily
  sparkline (three DuckDB queries per request).

One Starlette app holds both sides: ``Mount("/analytics", kit.asgi())`` and a bare
``Route("/bare/{kind}")``. It is served by uvicorn (one worker, ``log_level=
"warning"``, no access log) in a *subprocess* -- this script re-invoked with
``--serve`` -- so the load generator never shares a GIL or a core schedule with the
server's Python. The server opens one session for one tenant (an embed URL
exchanged at ``POST /analytics/session``, as the embed page does) and prints it.

``wrk`` then loads each target with the same settings (``-t1 -c16 --latency``,
10 s; ``--quick``: 3 s; each after a short warm-up run), in this order: the line
widget at ``GET /analytics/data/<widget>?params=<json>`` with ``Authorization:
Bearer <session>``, the bare line body, the kpi widget, the bare kpi body. We report
requests/s and the p50/p99 latency wrk measures (closed loop: 16 connections, each
sending its next request when the last one is answered, so latencies are those of a
saturated server, not of a fixed arrival rate).

"Warm" means the data is in DuckDB's buffer pool and every per-shape cache is filled
by the warm-up run. embedkit has **no result cache** yet: every widget request
verifies the session token, resolves the filters, scopes and compiles the query,
runs it on DuckDB (three queries for a KPI), shapes the rows and serializes JSON. The
numbers say what that costs against serving bytes; they are reported as they are.
``<kind>.handler_p50_ms`` is the same work called in-process, without HTTP (p50 of
200 sequential calls), to show how much of a request is embedkit's handler.

Why the baseline is fair
------------------------
The bare endpoint is the ceiling of this server setup, not a strawman: the same
process, event loop, uvicorn settings and socket, the same load generator and
settings, and the same request (same query string, same ``Authorization`` header;
the bare route ignores both). Its body is **byte for byte the JSON the widget route
returns** for that tenant: the server fetches it once through the real route once
it listens, and the parent checks that both routes answer 200 with equal bodies
before timing. It is sent as ``Response(body, media_type="application/json")``, the
way embedkit sends its JSON. What the bare route skips is exactly embedkit: its
routing under the mount, its security-headers middleware (about 200 more bytes of
response headers, see ``<target>.header_bytes``), the thread-pool hop, and the
handler's work.

Ratios
------
* ``widget_rps_vs_bare_starlette``: geometric mean over the two widgets of widget
  requests/s over bare requests/s (higher is better; the issue's target is >= 0.6
  once caching lands).
* ``widget_p50_vs_bare_starlette``: geometric mean of widget p50 over bare p50
  (lower is better).

Usage::

    python benchmarks/http.py [--quick] [--json PATH]
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the standard library's ``http`` package, and running it puts
# its directory first on sys.path: take that entry out before anything imports http.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse
import json
import math
import os
import re
import resource
import select
import shutil
import signal
import statistics
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import starlette
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

import embedkit as ek

#: "Now" for the kit's clock; the data covers the 365 days before it.
NOW = datetime(2024, 12, 31, 12, 0, tzinfo=UTC)
DAYS = 365
DAY_US = 86_400 * 1_000_000
#: Signs this benchmark's embed URLs only (a constant so runs are alike).
SECRET = "bench-only-q7Vx2Lm9Tz4Rc8Wn1Kp5Yb3Fd6Gs0HjXe"
PREFIX = "/analytics"
DASHBOARD = "sales"
#: kind -> widget name on the dashboard.
WIDGETS = {"line": "revenue_by_day", "kpi": "revenue"}
#: The filter values the embed page sends with every data request.
PARAMS = {"period": "last 30 days"}
STATUSES = ["completed"] * 6 + ["pending", "shipped", "returned", "cancelled"]
WRK = shutil.which("wrk") or "/usr/bin/wrk"
HANDLER_CALLS = 200


@dataclass(frozen=True)
class Config:
    quick: bool
    rows: int
    tenants: int
    tenant: int
    seed: int
    wrk_threads: int
    connections: int
    duration_s: int
    warmup_s: int
    timeout_s: int

    def wrk_args(self, duration_s: int, latency: bool) -> list[str]:
        args = [
            f"-t{self.wrk_threads}",
            f"-c{self.connections}",
            f"-d{duration_s}s",
            f"--timeout={self.timeout_s}s",
        ]
        return [*args, "--latency"] if latency else args


@dataclass(frozen=True)
class Wrk:
    """What one wrk run reports."""

    rps: float
    requests: int
    seconds: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int


@dataclass(frozen=True)
class Target:
    """One URL under load: a widget route or its bare twin."""

    name: str  # widget_line, bare_line, ...
    kind: str  # line, kpi
    path: str
    body_bytes: int = 0
    header_bytes: int = 0


def fetch(url: str, session: str) -> tuple[int, bytes, int]:
    """Status, body and response-header bytes of one GET (as wrk sends it)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {session}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        body = answer.read()
        header_bytes = sum(len(k) + len(v) + 4 for k, v in answer.headers.items())
        return int(answer.status), body, header_bytes


# -- the server (the subprocess) ---------------------------------------------------------


def generate(rows: int, tenants: int, seed: int) -> pa.Table:
    """The orders rows as Arrow, deterministic for ``seed``."""
    statuses = ", ".join(f"'{s}'" for s in STATUSES)
    first_day = (NOW - timedelta(days=DAYS)).date().isoformat()  # 2024-01-01

    def h(column: int) -> str:
        return f"hash(i + ({seed * 16 + column}::BIGINT << 40))"

    # Only integers this script chose are formatted in; nothing comes from outside.
    sql = f"""
        SELECT
            i::BIGINT AS order_id,
            ({h(1)} % {tenants})::INTEGER AS tenant_id,
            TIMESTAMP '{first_day}'
                + to_microseconds(({h(2)} % {DAYS * DAY_US})::BIGINT) AS ordered_at,
            round(1 + ({h(3)} % 50000) / 100.0, 2)::DOUBLE AS amount,
            ([{statuses}])[({h(4)} % {len(STATUSES)})::INTEGER + 1] AS status
        FROM range({rows}) AS r(i)
    """  # noqa: S608
    con = duckdb.connect(":memory:")
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def build_kit(table: pa.Table) -> ek.EmbedKit:
    dataset = ek.Dataset(
        "orders",
        table,
        tenant_key="tenant_id",
        time="ordered_at",
        primary_key="order_id",
        dimensions=[ek.Dimension("status")],
        measures=[
            ek.Measure("revenue", "sum", sql="amount", title="Revenue", format="currency"),
            ek.Measure("orders", "count", title="Orders"),
        ],
    )
    kit = ek.EmbedKit(
        dataset, secret=SECRET, clock=lambda: NOW, embed=ek.EmbedSettings(base_url=PREFIX)
    )
    period = ek.DateRangeFilter("period", "orders.ordered_at", default="last 30 days")
    kit.add_dashboard(
        ek.Dashboard(
            DASHBOARD,
            title="Sales",
            filters=(period,),
            widgets=(
                ek.Widget(
                    WIDGETS["kpi"],
                    "kpi",
                    ek.Query(measures=("orders.revenue",), time=(ek.Time("orders.ordered_at"),)),
                ),
                ek.Widget(
                    WIDGETS["line"],
                    "line",
                    ek.Query(
                        measures=("orders.revenue",),
                        time=(ek.Time("orders.ordered_at", grain="day"),),
                    ),
                    title="Revenue by day",
                ),
            ),
        )
    )
    return kit


def query_string() -> str:
    return urllib.parse.urlencode({"params": json.dumps(PARAMS, separators=(",", ":"))})


def build_app(kit: ek.EmbedKit, bodies: dict[str, bytes]) -> Starlette:
    """The host app: embedkit mounted at PREFIX, and the bare endpoint next to it."""

    async def bare(request: Request) -> Response:
        return Response(bodies[request.path_params["kind"]], media_type="application/json")

    return Starlette(routes=[Mount(PREFIX, app=kit.asgi()), Route("/bare/{kind}", bare)])


def handler_p50_ms(kit: ek.EmbedKit, session: str, widget: str) -> float:
    """p50 of the route's work called in-process: grant, widget data, JSON bytes."""
    times: list[float] = []
    for i in range(HANDLER_CALLS + 20):
        t0 = time.perf_counter()
        grant = kit._embedding.grant(session)  # the route's own steps, minus HTTP
        data = kit._embedding.widget_data(grant, widget, PARAMS)
        orjson.dumps(data.to_json())
        if i >= 20:
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def serve(args: argparse.Namespace) -> int:
    """Build the kit and the app, serve it, and once it listens open one session
    through the real routes, fill the bare bodies, and print what the parent needs."""
    t0 = time.perf_counter()
    table = generate(args.rows, args.tenants, args.seed)
    generate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    kit = build_kit(table)
    load_s = time.perf_counter() - t0
    del table
    bodies: dict[str, bytes] = {}
    app = build_app(kit, bodies)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)

    def prepare(port: int) -> dict[str, Any]:
        base, qs = f"http://127.0.0.1:{port}", query_string()
        url = kit.embed_url(DASHBOARD, tenant=args.tenant)
        exchange = urllib.request.Request(
            f"{base}{PREFIX}/session",
            data=json.dumps({"token": url.split("#token=", 1)[1], "resource": DASHBOARD}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(exchange, timeout=30) as answer:
            session = str(json.loads(answer.read())["session"])
        widgets: dict[str, dict[str, Any]] = {}
        for kind, widget in WIDGETS.items():
            path = f"{PREFIX}/data/{widget}?{qs}"
            status, body, _ = fetch(base + path, session)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
            bodies[kind] = body  # the bare route's body, byte for byte
            widgets[kind] = {
                "widget": path,
                "bare": f"/bare/{kind}?{qs}",
                "handler_p50_ms": round(handler_p50_ms(kit, session, widget), 4),
            }
        return {
            "port": port,
            "session": session,
            "widgets": widgets,
            "generate_s": round(generate_s, 3),
            "load_s": round(load_s, 3),
        }

    def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            time.sleep(0.02)
        try:
            ready = prepare(server.servers[0].sockets[0].getsockname()[1])
        except Exception as err:
            log(f"server: could not prepare the benchmark: {err!r}")
            server.should_exit = True
            return
        print(json.dumps(ready), flush=True)

    def stopped(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    # uvicorn shuts down on SIGTERM, then raises it again with this handler in place:
    # exit through the finally below rather than die on the default handler.
    signal.signal(signal.SIGTERM, stopped)
    threading.Thread(target=announce, daemon=True).start()
    try:
        server.run()
    finally:
        kit.close()
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"server_peak_rss_mb": round(peak_mb, 1)}), flush=True)
    return 0


# -- the load (the parent) ---------------------------------------------------------------


class ServerProcess:
    """The server subprocess; :meth:`stop` ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, cfg: Config) -> None:
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve",
            f"--rows={cfg.rows}",
            f"--tenants={cfg.tenants}",
            f"--tenant={cfg.tenant}",
            f"--seed={cfg.seed}",
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)

    def ready(self, timeout_s: float) -> dict[str, Any]:
        """The JSON line the server prints once it listens."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the server was not ready within {timeout_s:.0f} s")
            readable, _, _ = select.select([self.proc.stdout], [], [], left)
            if not readable:
                continue
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the server exited early (code {self.proc.wait()})")
            if line.startswith("{"):
                return dict(json.loads(line))

    def stop(self) -> dict[str, Any]:
        """End the server; the JSON line it prints on its way out (its peak RSS)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            rest, _ = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rest, _ = self.proc.communicate()
        lines = [line for line in (rest or "").splitlines() if line.startswith("{")]
        return dict(json.loads(lines[-1])) if lines else {}


UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def to_ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if found is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(found.group(1)) * UNITS_MS[found.group(2)]


def parse_wrk(out: str) -> Wrk:
    """The figures of wrk's ``--latency`` report."""

    def grab(pattern: str) -> re.Match[str]:
        found = re.search(pattern, out, re.MULTILINE)
        if found is None:
            raise ValueError(f"wrk output has no {pattern!r}:\n{out}")
        return found

    percentiles = {
        q: to_ms(grab(rf"^\s+{q}%\s+(\S+)\s*$").group(1)) for q in ("50", "75", "90", "99")
    }
    done = grab(r"^\s+(\d+) requests in ([\d.]+)(us|ms|s|m|h),")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Wrk(
        rps=float(grab(r"^Requests/sec:\s+([\d.]+)").group(1)),
        requests=int(done.group(1)),
        seconds=to_ms(done.group(2) + done.group(3)) / 1e3,
        p50_ms=percentiles["50"],
        p75_ms=percentiles["75"],
        p90_ms=percentiles["90"],
        p99_ms=percentiles["99"],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
    )


def run_wrk(cfg: Config, url: str, session: str, duration_s: int, latency: bool) -> str:
    cmd = [
        WRK,
        *cfg.wrk_args(duration_s, latency),
        "-H",
        f"Authorization: Bearer {session}",
        url,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return done.stdout


def wrk_version() -> str:
    done = subprocess.run([WRK, "-v"], capture_output=True, text=True, check=False)
    return (done.stdout + done.stderr).splitlines()[0].strip() if done.stdout or done.stderr else ""


# -- reporting -------------------------------------------------------------------------


def geomean(values: Sequence[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def print_table(cfg: Config, targets: list[Target], results: dict[str, Wrk]) -> None:
    print()
    print(
        f"== {cfg.rows:,} rows / {cfg.tenants:,} tenants, tenant {cfg.tenant}; "
        f"wrk {' '.join(cfg.wrk_args(cfg.duration_s, True))} "
        f"(after a {cfg.warmup_s} s warm-up); {cores()} cores =="
    )
    head = (
        f"{'target':<12} {'req/s':>9} {'p50 ms':>8} {'p75 ms':>8} {'p90 ms':>8} "
        f"{'p99 ms':>8} {'body B':>7} {'hdr B':>6} {'requests':>9} {'errors':>7}"
    )
    print(head)
    print("-" * len(head))
    for t in targets:
        r = results[t.name]
        print(
            f"{t.name:<12} {r.rps:9.1f} {r.p50_ms:8.3f} {r.p75_ms:8.3f} {r.p90_ms:8.3f} "
            f"{r.p99_ms:8.3f} {t.body_bytes:7d} {t.header_bytes:6d} {r.requests:9d} "
            f"{r.non_2xx + r.socket_errors:7d}"
        )
    print(
        "(wrk closed-loop figures; body B / hdr B = response body / header bytes; "
        "errors = non-2xx responses + socket errors)"
    )


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Config]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="100k rows, 3 s per target")
    ap.add_argument("--json", metavar="PATH", help="write results as JSON")
    ap.add_argument("--rows", type=int, help="rows (default 1M; --quick: 100k)")
    ap.add_argument("--tenants", type=int, help="tenants (default 1,000; --quick: 100)")
    ap.add_argument("--tenant", type=int, default=42, help="the tenant whose widgets are loaded")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=1, help="wrk threads")
    ap.add_argument("--connections", type=int, default=16, help="wrk connections")
    ap.add_argument("--duration", type=int, help="seconds per timed run (default 10; quick 3)")
    ap.add_argument("--warmup", type=int, help="seconds of warm-up per target (10 / 1)")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    cfg = Config(
        quick=args.quick,
        rows=args.rows or (100_000 if args.quick else 1_000_000),
        tenants=args.tenants or (100 if args.quick else 1_000),
        tenant=args.tenant,
        seed=args.seed,
        wrk_threads=args.threads,
        connections=args.connections,
        duration_s=args.duration or (3 if args.quick else 10),
        warmup_s=args.warmup or (1 if args.quick else 3),
        timeout_s=10,
    )
    if not 0 <= cfg.tenant < cfg.tenants:
        ap.error(f"--tenant must be from 0 to {cfg.tenants - 1}")
    return args, cfg


def main(argv: Sequence[str] | None = None) -> int:
    args, cfg = parse_args(argv)
    if args.serve:
        return serve(args)
    if not Path(WRK).is_file():
        log("wrk is missing: apt-get install -y wrk (or: make bench-quick)")
        return 2
    started = time.perf_counter()
    log(f"starting the server: {cfg.rows:,} rows / {cfg.tenants:,} tenants ...")
    server = ServerProcess(cfg)
    results: dict[str, Wrk] = {}
    targets: list[Target] = []
    mismatched: list[str] = []
    try:
        ready = server.ready(timeout_s=600)
        session = str(ready["session"])
        base = f"http://127.0.0.1:{ready['port']}"
        for kind, paths in ready["widgets"].items():
            status, widget_body, widget_hdr = fetch(base + paths["widget"], session)
            bare_status, bare_body, bare_hdr = fetch(base + paths["bare"], session)
            if status != 200 or bare_status != 200:
                raise RuntimeError(f"{kind}: status {status} (widget), {bare_status} (bare)")
            if widget_body != bare_body:
                mismatched.append(kind)
            targets.append(
                Target(f"widget_{kind}", kind, paths["widget"], len(widget_body), widget_hdr)
            )
            targets.append(Target(f"bare_{kind}", kind, paths["bare"], len(bare_body), bare_hdr))
        for t in targets:
            url = base + t.path
            log(f"loading {t.name}: {cfg.warmup_s} s warm-up, {cfg.duration_s} s timed ...")
            run_wrk(cfg, url, session, cfg.warmup_s, latency=False)
            results[t.name] = parse_wrk(run_wrk(cfg, url, session, cfg.duration_s, latency=True))
    finally:
        final = server.stop()

    print_table(cfg, targets, results)
    kinds = list(WIDGETS)
    rps_ratio = {k: results[f"widget_{k}"].rps / results[f"bare_{k}"].rps for k in kinds}
    p50_ratio = {k: results[f"widget_{k}"].p50_ms / results[f"bare_{k}"].p50_ms for k in kinds}
    p99_ratio = {k: results[f"widget_{k}"].p99_ms / results[f"bare_{k}"].p99_ms for k in kinds}
    ratios = {
        "widget_rps_vs_bare_starlette": round(geomean(list(rps_ratio.values())), 4),
        "widget_p50_vs_bare_starlette": round(geomean(list(p50_ratio.values())), 4),
    }
    metrics: dict[str, float | int] = {}
    for t in targets:
        r = results[t.name]
        metrics |= {
            f"{t.name}.rps": round(r.rps, 2),
            f"{t.name}.p50_ms": round(r.p50_ms, 4),
            f"{t.name}.p75_ms": round(r.p75_ms, 4),
            f"{t.name}.p90_ms": round(r.p90_ms, 4),
            f"{t.name}.p99_ms": round(r.p99_ms, 4),
            f"{t.name}.requests": r.requests,
            f"{t.name}.non_2xx": r.non_2xx,
            f"{t.name}.socket_errors": r.socket_errors,
            f"{t.name}.body_bytes": t.body_bytes,
            f"{t.name}.header_bytes": t.header_bytes,
        }
    for k in kinds:
        metrics[f"{k}.body_bytes"] = next(t.body_bytes for t in targets if t.kind == k)
        metrics[f"{k}.rps_vs_bare"] = round(rps_ratio[k], 4)
        metrics[f"{k}.p50_vs_bare"] = round(p50_ratio[k], 4)
        metrics[f"{k}.p99_vs_bare"] = round(p99_ratio[k], 4)
        metrics[f"{k}.handler_p50_ms"] = ready["widgets"][k]["handler_p50_ms"]
    metrics["widget_p99_vs_bare_starlette"] = round(geomean(list(p99_ratio.values())), 4)
    metrics["generate_s"] = ready["generate_s"]
    metrics["embedkit_load_s"] = ready["load_s"]
    metrics["bodies_identical"] = int(not mismatched)
    metrics["wall_s"] = round(time.perf_counter() - started, 2)
    if "server_peak_rss_mb" in final:
        metrics["server_peak_rss_mb"] = final["server_peak_rss_mb"]

    params: dict[str, Any] = {
        "quick": cfg.quick,
        "rows": cfg.rows,
        "tenants": cfg.tenants,
        "days": DAYS,
        "tenant": cfg.tenant,
        "seed": cfg.seed,
        "widgets": {k: {"name": WIDGETS[k], "kind": k} for k in kinds},
        "filter_params": PARAMS,
        "wrk": {
            "threads": cfg.wrk_threads,
            "connections": cfg.connections,
            "duration_s": cfg.duration_s,
            "warmup_s": cfg.warmup_s,
            "timeout_s": cfg.timeout_s,
            "version": wrk_version(),
        },
        "cores": cores(),
        "server": "uvicorn, 1 worker, one process serving both routes, "
        "log_level=warning, access_log=False",
        "result_cache": "none: every widget request runs its DuckDB queries",
        "baseline": "Starlette Route in the same app returning a precomputed "
        "Response(body, media_type='application/json'), body byte-for-byte the widget's",
        "ratio_aggregate": "geometric mean over the line and kpi widgets",
        "order": [t.name for t in targets],
        "duckdb": duckdb.__version__,
        "uvicorn": uvicorn.__version__,
        "starlette": starlette.__version__,
        "embedkit": ek.__version__,
        "embedkit_path": str(Path(ek.__file__).parent),
    }

    print()
    print("ratios (geometric mean over the line and kpi widgets):")
    print(
        f"  widget_rps_vs_bare_starlette {ratios['widget_rps_vs_bare_starlette']:7.3f}  "
        f"(higher is better; line {rps_ratio['line']:.3f}, kpi {rps_ratio['kpi']:.3f}; "
        "target >= 0.6 once caching lands)"
    )
    print(
        f"  widget_p50_vs_bare_starlette {ratios['widget_p50_vs_bare_starlette']:7.3f}  "
        f"(lower is better; line {p50_ratio['line']:.3f}, kpi {p50_ratio['kpi']:.3f})"
    )
    print(
        "handler work in-process, p50 (no HTTP): "
        + ", ".join(f"{k} {metrics[f'{k}.handler_p50_ms']:.3f} ms" for k in kinds)
        + "; no result cache, so every request runs DuckDB"
    )
    rss = f"server peak RSS {final['server_peak_rss_mb']:.0f} MB, " if final else ""
    print(f"{rss}wall {metrics['wall_s']:.1f} s")

    errors = sum(r.non_2xx + r.socket_errors for r in results.values())
    if errors:
        print(f"WARNING: {errors} requests failed under load (non-2xx or socket errors)")
    if mismatched:
        print(f"WARNING: widget and bare bodies differ for {', '.join(mismatched)}")

    if args.json:
        doc = {"benchmark": "http", "params": params, "metrics": metrics, "ratios": ratios}
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 1 if errors or mismatched else 0


if __name__ == "__main__":
    raise SystemExit(main())
