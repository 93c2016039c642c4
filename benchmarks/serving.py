"""HTTP throughput: embedkit's widget-data route against four baselines, in one run.

What is measured
----------------
An orders table (tenant_id, ordered_at over the 365 days before "now", amount,
status, order_id) is generated with DuckDB's ``range()`` and hashing, so it is
deterministic for a given ``--seed``: 1M rows / 1,000 tenants (``--quick``: 100k rows
/ 100 tenants; ~1,000 rows per tenant either way). It is registered in two
:class:`embedkit.EmbedKit` objects with the same signing secret, a fixed clock (so
"last 30 days" is the same window in every run) and a dashboard of two widgets:

* ``line`` -- revenue by day, under a ``DateRangeFilter`` defaulting to "last 30
  days" (one DuckDB query when it is computed);
* ``kpi``  -- revenue over the same range, its previous period and a daily
  sparkline (three DuckDB queries when it is computed).

The first kit keeps embedkit's default caches (``cache_bytes`` 256 MiB: query results
and whole HTTP answers); the second has ``cache_bytes=0``, so every request verifies
the session, scopes, compiles, runs DuckDB and serializes.

One Starlette app serves every target, so they share the process, event loop, socket
and uvicorn settings (uvloop, httptools, one worker, no access log):

* ``widget_<kind>``: ``GET /analytics/data/<widget>?params=<json>`` with
  ``Authorization: Bearer <session>`` on the cached kit (mounted at ``/analytics``);
* ``bare_<kind>``: ``GET /bare/<kind>``, a Starlette route returning the widget's
  body, byte for byte, precomputed -- the ceiling of this server setup;
* ``nocache_<kind>``: the same widget route on the uncached kit (``/nocache``);
* ``raw_<kind>``: ``GET /raw/<kind>``, a bare Starlette endpoint running **the SQL
  text and bound parameters embedkit runs** for that widget (compiled by embedkit's
  compiler from the same query; one query for the line, three for the KPI), on its own
  DuckDB connection holding the same rows in the same layout, a cursor per request,
  in a worker thread, rows to dicts to ``orjson``;
* ``handrolled_<kind>``: ``GET /handrolled/<kind>``, what a developer might write
  instead of embedkit: a plain Starlette endpoint running Polars over a Parquet file
  of the same rows per request (``scan_parquet`` -> filter by tenant and window ->
  group by day -> ``orjson``).

The server runs in a *subprocess* (this script re-invoked with ``--serve``), so wrk
never shares a GIL with it. Once it listens it opens embed sessions through the real
``POST <mount>/session`` routes and fetches each widget once to fill the bare bodies.
Before any timing the parent checks that every target answers 200, that the cached,
uncached and bare bodies are byte-identical, and that the raw and hand-rolled bodies
carry the widget's numbers (each day's revenue, KPI value and previous value equal
within 1e-9 relative); it stops otherwise.

``wrk`` then loads each target with the same settings (``-t1 -c32 --latency``, 10 s
after a 3 s warm-up; ``--quick``: 2 s after 1 s), line targets first, then KPI. The
loop is closed: each connection sends its next request when the last one is
answered, so p50/p99 are latencies of a saturated server. A concurrency sweep then
loads ``widget_line`` and ``nocache_line`` at 1, 4, 16 and 64 connections (``--quick``:
1 and 16). embedkit answers 429 past 32 requests in flight per session, so a run of
more than 32 connections uses one wrk thread, and one session, per 32 connections
(several viewers, as in production), set by a small wrk Lua script.

Ratios
------
Geometric means over the line and KPI widgets (per-kind values are in the metrics):

* ``widget_rps_vs_bare_starlette``: cached widget req/s / bare req/s (target >= 0.6).
* ``widget_p50_vs_bare_starlette``: cached widget p50 / bare p50 (lower is better).
* ``nocache_rps_vs_raw_duckdb_endpoint``: uncached widget req/s / raw DuckDB endpoint
  req/s (target >= 0.8).
* ``widget_rps_vs_handrolled``: cached widget req/s / hand-rolled Polars req/s
  (target >= 20).

Usage::

    python benchmarks/serving.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import anyio
import duckdb
import orjson
import polars as pl
import pyarrow as pa
import starlette
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

import embedkit as ek
from embedkit.compile import Compiler
from embedkit.engines.duckdb import ROW_GROUP_SIZE
from embedkit.http.routes import MAX_INFLIGHT
from embedkit.query.compare import comparisons

#: "Now" for the kit's clock; the data covers the 365 days before it.
NOW = datetime(2024, 12, 31, 12, 0, tzinfo=UTC)
DAYS = 365
DAY_US = 86_400 * 1_000_000
#: Signs this benchmark's embed URLs only (a constant so runs are alike).
SECRET = "bench-only-q7Vx2Lm9Tz4Rc8Wn1Kp5Yb3Fd6Gs0HjXe"
DASHBOARD = "sales"
#: The two kits: target prefix -> (mount, cache_bytes; None = embedkit's default).
KITS: dict[str, tuple[str, int | None]] = {
    "widget": ("/analytics", None),
    "nocache": ("/nocache", 0),
}
#: kind -> widget name on the dashboard.
WIDGETS = {"line": "revenue_by_day", "kpi": "revenue"}
#: Every target, per kind, in the order they are loaded.
SIDES = ("widget", "bare", "nocache", "raw", "handrolled")
#: The filter values the embed page sends with every data request.
PARAMS = {"period": "last 30 days"}
WINDOW_DAYS = 30  # "last 30 days" ends with yesterday (Cube's reading)
REVENUE = "orders.revenue"
DAY = "orders.ordered_at.day"
STATUSES = ["completed"] * 6 + ["pending", "shipped", "returned", "cancelled"]
WRK = shutil.which("wrk") or "/usr/bin/wrk"
#: The issue's targets, next to each ratio in the output and in benchmarks/report.py.
RATIO_TARGETS = {
    "widget_rps_vs_bare_starlette": ">= 0.6",
    "nocache_rps_vs_raw_duckdb_endpoint": ">= 0.8",
    "widget_rps_vs_handrolled": ">= 20",
}


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
    sweep: tuple[int, ...]
    sweep_duration_s: int
    handler_calls: int
    timeout_s: int = 10

    def threads_for(self, connections: int) -> int:
        """wrk threads for a run: one session each, never past embedkit's per-session cap."""
        return min(connections, max(self.wrk_threads, math.ceil(connections / MAX_INFLIGHT)))

    @property
    def sessions(self) -> int:
        return max(self.threads_for(c) for c in (self.connections, *self.sweep))


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

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


@dataclass(frozen=True)
class Target:
    """One URL under load."""

    name: str  # widget_line, bare_line, ...
    side: str  # widget, bare, nocache, raw, handrolled
    kind: str  # line, kpi
    path: str
    body_bytes: int = 0
    header_bytes: int = 0

    @property
    def kit(self) -> str:
        """Whose sessions its requests carry (the baselines ignore the header)."""
        return "nocache" if self.side == "nocache" else "widget"


def fetch(url: str, session: str) -> tuple[int, bytes, int]:
    """Status, body and response-header bytes of one GET (as wrk sends it)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {session}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        body = answer.read()
        header_bytes = sum(len(k) + len(v) + 4 for k, v in answer.headers.items())
        return int(answer.status), body, header_bytes


# -- the data and the kits -----------------------------------------------------------------


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


def build_kit(table: pa.Table, prefix: str, cache_bytes: int | None) -> ek.EmbedKit:
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
    caching = {} if cache_bytes is None else {"cache_bytes": cache_bytes}
    kit = ek.EmbedKit(
        dataset,
        secret=SECRET,
        clock=lambda: NOW,
        embed=ek.EmbedSettings(base_url=prefix),
        **caching,
    )
    period = ek.DateRangeFilter("period", "orders.ordered_at", default=PARAMS["period"])
    kit.add_dashboard(
        ek.Dashboard(
            DASHBOARD,
            title="Sales",
            filters=(period,),
            widgets=(
                ek.Widget(
                    WIDGETS["kpi"],
                    "kpi",
                    ek.Query(measures=(REVENUE,), time=(ek.Time("orders.ordered_at"),)),
                ),
                ek.Widget(
                    WIDGETS["line"],
                    "line",
                    ek.Query(
                        measures=(REVENUE,), time=(ek.Time("orders.ordered_at", grain="day"),)
                    ),
                    title="Revenue by day",
                ),
            ),
        )
    )
    return kit


def widget_queries(kind: str) -> list[ek.Query]:
    """The queries a widget runs once its filter is applied: the line's one; the KPI's
    range, previous period (as embedkit derives it) and daily sparkline."""
    day = ek.Time("orders.ordered_at", grain="day", date_range=PARAMS["period"])
    line = ek.Query(measures=(REVENUE,), time=(day,), timezone="UTC")
    if kind == "line":
        return [line]
    flat = replace(line, time=(replace(day, grain=None),), compare="previous_period")
    current, previous = comparisons(flat, NOW)
    return [current, previous, line]


def compiled_sql(kit: ek.EmbedKit, kind: str, tenant: int) -> list[tuple[str, list[Any]]]:
    """SQL and bound parameters of ``kind``'s queries, from embedkit's own compiler.

    Called after the widget was computed once: each query must then be a result-cache
    hit, which proves it is the very SQL and parameters the widget ran.
    """
    principal = ek.Principal(tenant=tenant)
    compiler = Compiler("duckdb")
    out = []
    for q in widget_queries(kind):
        if kit.query(q, principal=principal).cache != "hit":
            raise RuntimeError(f"{kind}: the baseline's query is not the one the widget ran: {q}")
        compiled = compiler.compile(kit.scope(q, principal=principal))
        out.append((compiled.sql, list(compiled.params)))
    return out


def raw_database(table: pa.Table) -> duckdb.DuckDBPyConnection:
    """The raw baseline's database: the same rows in embedkit's layout (sorted by tenant
    and time, 32,768-row groups) under embedkit's catalog name, so its SQL runs as is."""
    con = duckdb.connect(":memory:")
    con.execute(f"ATTACH ':memory:' AS store (ROW_GROUP_SIZE {ROW_GROUP_SIZE})")
    con.execute("SET TimeZone = 'UTC'")  # embedkit's setting; day buckets depend on it
    con.register("gen", table)
    con.execute(
        "CREATE TABLE store.main.orders AS SELECT * FROM gen ORDER BY tenant_id, ordered_at"
    )
    con.unregister("gen")
    return con


def raw_body(con: duckdb.DuckDBPyConnection, queries: list[tuple[str, list[Any]]]) -> bytes:
    """The raw DuckDB endpoint's work: each query on a fresh cursor, rows to JSON."""
    cur = con.cursor()
    try:
        results = []
        for sql, params in queries:
            cur.execute(sql, params)
            names = [d[0] for d in cur.description or ()]
            results.append([dict(zip(names, row, strict=True)) for row in cur.fetchall()])
    finally:
        cur.close()
    if len(results) == 1:
        return orjson.dumps(results[0])
    (current,), (previous,), spark = results
    return orjson.dumps(
        {"value": current[REVENUE], "previous": previous[REVENUE], "sparkline": spark}
    )


def handrolled_body(path: Path, tenant: int, kind: str) -> bytes:
    """What a developer might write without embedkit: Polars over the Parquet file."""
    today = NOW.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    start = today - timedelta(days=WINDOW_DAYS)
    since = start - timedelta(days=WINDOW_DAYS) if kind == "kpi" else start
    rows = (
        pl.scan_parquet(path)
        .filter(
            (pl.col("tenant_id") == tenant)
            & (pl.col("ordered_at") >= since)
            & (pl.col("ordered_at") < today)
        )
        .select("ordered_at", "amount")
        .collect()
    )
    current = rows.filter(pl.col("ordered_at") >= start)
    by_day = (
        current.group_by(pl.col("ordered_at").dt.truncate("1d").alias("day"))
        .agg(pl.col("amount").sum().alias("revenue"))
        .sort("day")
        .to_dicts()
    )
    if kind == "line":
        return orjson.dumps(by_day)
    previous = rows.filter(pl.col("ordered_at") < start)
    return orjson.dumps(
        {
            "value": current["amount"].sum(),
            "previous": previous["amount"].sum(),
            "sparkline": by_day,
        }
    )


# -- the server (the subprocess) ---------------------------------------------------------


def query_string() -> str:
    return urllib.parse.urlencode({"params": json.dumps(PARAMS, separators=(",", ":"))})


def build_app(
    kits: dict[str, ek.EmbedKit],
    bodies: dict[str, bytes],
    raw: Callable[[str], bytes],
    handrolled: Callable[[str], bytes],
) -> Starlette:
    """The host app: both kits mounted, and the baselines next to them."""

    async def bare(request: Request) -> Response:
        return Response(bodies[request.path_params["kind"]], media_type="application/json")

    async def raw_duckdb(request: Request) -> Response:
        body = await anyio.to_thread.run_sync(raw, request.path_params["kind"])
        return Response(body, media_type="application/json")

    def polars_parquet(request: Request) -> Response:  # sync: Starlette runs it in a thread
        return Response(handrolled(request.path_params["kind"]), media_type="application/json")

    mounts = [Mount(KITS[name][0], app=kit.asgi()) for name, kit in kits.items()]
    return Starlette(
        routes=[
            *mounts,
            Route("/bare/{kind}", bare),
            Route("/raw/{kind}", raw_duckdb),
            Route("/handrolled/{kind}", polars_parquet),
        ]
    )


def handler_p50_ms(kit: ek.EmbedKit, session: str, widget: str, calls: int) -> float:
    """p50 of the route's work called in-process: grant, widget data, JSON bytes."""
    times: list[float] = []
    for i in range(calls + 20):
        t0 = time.perf_counter()
        grant = kit._embedding.grant(session)  # the route's own steps, minus HTTP
        data = kit._embedding.widget_data(grant, widget, PARAMS)
        data.to_json_bytes()
        if i >= 20:
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def open_session(base: str, kit: ek.EmbedKit, mount: str, tenant: int) -> str:
    """A session from an embed URL, exchanged at the kit's real route as the page does."""
    url = kit.embed_url(DASHBOARD, tenant=tenant)
    exchange = urllib.request.Request(
        f"{base}{mount}/session",
        data=json.dumps({"token": url.split("#token=", 1)[1], "resource": DASHBOARD}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(exchange, timeout=30) as answer:
        return str(json.loads(answer.read())["session"])


def serve(args: argparse.Namespace) -> int:
    """Build the kits, the baselines and the app, serve it, and once it listens open the
    sessions through the real routes, fill the bare bodies, and print what the parent
    needs."""
    t0 = time.perf_counter()
    table = generate(args.rows, args.tenants, args.seed)
    generate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    kits = {name: build_kit(table, mount, size) for name, (mount, size) in KITS.items()}
    load_s = (time.perf_counter() - t0) / len(kits)
    con = raw_database(table)
    workdir = Path(tempfile.mkdtemp(prefix="embedkit-bench-http-"))
    parquet = workdir / "orders.parquet"
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    frame.sort("tenant_id", "ordered_at").write_parquet(parquet)
    del table, frame
    bodies: dict[str, bytes] = {}
    queries: dict[str, list[tuple[str, list[Any]]]] = {}
    app = build_app(
        kits,
        bodies,
        raw=lambda kind: raw_body(con, queries[kind]),
        handrolled=lambda kind: handrolled_body(parquet, args.tenant, kind),
    )
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)

    def prepare(port: int) -> dict[str, Any]:
        base, qs = f"http://127.0.0.1:{port}", query_string()
        sessions = {
            name: [
                open_session(base, kit, KITS[name][0], args.tenant) for _ in range(args.sessions)
            ]
            for name, kit in kits.items()
        }
        paths: dict[str, dict[str, str]] = {}
        handler: dict[str, float] = {}
        for kind, widget in WIDGETS.items():
            for name, kit in kits.items():
                path = f"{KITS[name][0]}/data/{widget}?{qs}"
                status, body, _ = fetch(base + path, sessions[name][0])
                if status != 200:
                    raise RuntimeError(f"{path} answered {status}")
                bodies.setdefault(kind, body)  # the bare route's body, byte for byte
                paths.setdefault(kind, {})[name] = path
                p50 = handler_p50_ms(kit, sessions[name][0], widget, args.handler_calls)
                handler[f"{kind}.{name}_handler_p50_ms"] = round(p50, 4)
            queries[kind] = compiled_sql(kits["widget"], kind, args.tenant)
            for side in ("bare", "raw", "handrolled"):
                paths[kind][side] = f"/{side}/{kind}?{qs}"
        return {
            "port": port,
            "sessions": sessions,
            "paths": paths,
            "handler": handler,
            "sql": {kind: [sql for sql, _ in q] for kind, q in queries.items()},
            "parquet_bytes": parquet.stat().st_size,
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
        for kit in kits.values():
            kit.close()
        con.close()
        shutil.rmtree(workdir, ignore_errors=True)
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
            f"--sessions={cfg.sessions}",
            f"--handler-calls={cfg.handler_calls}",
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

    def peak_rss_mb(self) -> float | None:
        """The server's peak resident set (VmHWM), read while it still runs."""
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return None
        found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        return round(int(found.group(1)) / 1024, 1) if found else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()


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


def session_script(path: Path, sessions: Sequence[str]) -> Path:
    """A wrk Lua script giving each wrk thread its own session (round robin). It only
    sets a header in ``init``, so wrk still builds each request once (no per-request Lua)."""
    path.write_text(
        f"local sessions = {{{', '.join(json.dumps(s) for s in sessions)}}}\n"
        "local made = 0\n"
        "function setup(thread)\n"
        "  made = made + 1\n"
        '  thread:set("session", sessions[(made - 1) % #sessions + 1])\n'
        "end\n"
        "function init(args)\n"
        '  wrk.headers["Authorization"] = "Bearer " .. session\n'
        "end\n"
    )
    return path


class Load:
    """Runs wrk against the server with one settings set and a session script per kit."""

    def __init__(self, cfg: Config, base: str, scripts: dict[str, Path]) -> None:
        self.cfg, self.base, self.scripts = cfg, base, scripts

    def run(self, t: Target, connections: int, duration_s: int, latency: bool) -> str:
        cmd = [
            WRK,
            f"-t{self.cfg.threads_for(connections)}",
            f"-c{connections}",
            f"-d{duration_s}s",
            f"--timeout={self.cfg.timeout_s}s",
            "-s",
            str(self.scripts[t.kit]),
            *(["--latency"] if latency else []),
            self.base + t.path,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    def measure(
        self, t: Target, session: str, connections: int, warmup_s: int, duration_s: int
    ) -> Wrk:
        if warmup_s:
            self.run(t, connections, warmup_s, latency=False)
            self.settle(t, session)
        return parse_wrk(self.run(t, connections, duration_s, latency=True))

    def settle(self, t: Target, session: str, timeout_s: float = 30.0) -> None:
        """Wait until requests of the last run that wrk gave up on have finished.

        wrk closes its connections at the end of a run, but the server still answers
        what it had taken, and embedkit counts those against the session's cap of
        MAX_INFLIGHT requests in flight: a run started at once would meet 429s. One
        request answered 200 has waited its turn behind all of them.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if fetch(self.base + t.path, session)[0] == 200:
                    return
            except urllib.error.HTTPError as err:
                if err.code != 429 or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)


def wrk_version() -> str:
    done = subprocess.run([WRK, "-v"], capture_output=True, text=True, check=False)
    return (done.stdout + done.stderr).splitlines()[0].strip() if done.stdout or done.stderr else ""


# -- checking the bodies -----------------------------------------------------------------


def figures(side: str, kind: str, body: bytes) -> dict[str, float]:
    """The numbers a body carries, keyed alike for every side: revenue per day (the
    line), or value, previous and sparkline per day (the KPI)."""
    doc = orjson.loads(body)

    def per_day(rows: list[dict[str, Any]], day: str, value: str) -> dict[str, float]:
        return {f"{str(r[day])[:10]}": float(r[value]) for r in rows}

    if side in ("widget", "bare", "nocache"):
        if kind == "line":
            return per_day(doc["rows"], "ordered_at", "revenue")
        kpi = doc["kpi"]
        spark = per_day(kpi["sparkline"], "t", "v")
        return {"value": kpi["value"], "previous": kpi["previous"]} | spark
    day, value = (DAY, REVENUE) if side == "raw" else ("day", "revenue")
    if kind == "line":
        return per_day(doc, day, value)
    spark = per_day(doc["sparkline"], day, value)
    return {"value": doc["value"], "previous": doc["previous"]} | spark


def differences(expected: dict[str, float], got: dict[str, float]) -> list[str]:
    """Where ``got`` differs from ``expected`` (floats to 1e-9 relative)."""
    out = [f"{k}: missing" for k in expected.keys() - got.keys()]
    out += [f"{k}: unexpected" for k in got.keys() - expected.keys()]
    for k in expected.keys() & got.keys():
        a, b = expected[k], got[k]
        if not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
            out.append(f"{k}: {b!r} != {a!r}")
    return sorted(out)


def check_targets(base: str, ready: dict[str, Any]) -> list[Target]:
    """Every target, checked: 200 for every session, the widget's bytes on the cached,
    uncached and bare routes, the widget's numbers on the raw and hand-rolled ones."""
    targets: list[Target] = []
    problems: list[str] = []
    for kind, paths in ready["paths"].items():
        widget_body = b""
        for side in SIDES:
            t = Target(f"{side}_{kind}", side, kind, paths[side])
            answers = [fetch(base + t.path, s) for s in ready["sessions"][t.kit]]
            bad = [status for status, _, _ in answers if status != 200]
            if bad:
                raise RuntimeError(f"{t.name} ({t.path}) answered {bad}")
            _, body, header_bytes = answers[0]
            if side == "widget":
                widget_body = body
            elif side in ("bare", "nocache") and body != widget_body:
                problems.append(f"{t.name}: its body differs from widget_{kind}'s")
            elif side in ("raw", "handrolled"):
                wrong = differences(figures("widget", kind, widget_body), figures(side, kind, body))
                problems += [f"{t.name}: {w}" for w in wrong[:5]]
            targets.append(replace(t, body_bytes=len(body), header_bytes=header_bytes))
    if problems:
        raise RuntimeError("the targets do not answer alike:\n  " + "\n  ".join(problems))
    return targets


# -- reporting -------------------------------------------------------------------------


def geomean(values: Sequence[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def met(value: float, target: str) -> bool:
    op, bound = target.split()
    return value >= float(bound) if op == ">=" else value <= float(bound)


def print_tables(
    cfg: Config,
    targets: list[Target],
    results: dict[str, Wrk],
    sweep: dict[tuple[str, int], Wrk],
) -> None:
    print()
    print(
        f"== {cfg.rows:,} rows / {cfg.tenants:,} tenants, tenant {cfg.tenant}; wrk "
        f"-t{cfg.threads_for(cfg.connections)} -c{cfg.connections} -d{cfg.duration_s}s "
        f"--latency (after a {cfg.warmup_s} s warm-up); {cores()} cores =="
    )
    head = (
        f"{'target':<16} {'req/s':>9} {'p50 ms':>8} {'p75 ms':>8} {'p90 ms':>8} "
        f"{'p99 ms':>8} {'body B':>7} {'hdr B':>6} {'requests':>9} {'errors':>7}"
    )
    print(head)
    print("-" * len(head))
    for t in targets:
        r = results[t.name]
        print(
            f"{t.name:<16} {r.rps:9.1f} {r.p50_ms:8.3f} {r.p75_ms:8.3f} {r.p90_ms:8.3f} "
            f"{r.p99_ms:8.3f} {t.body_bytes:7d} {t.header_bytes:6d} {r.requests:9d} "
            f"{r.errors:7d}"
        )
    print(
        "(wrk closed-loop figures; body B / hdr B = response body / header bytes; "
        "errors = non-2xx responses + socket errors)"
    )
    print()
    print(f"latency vs concurrency ({cfg.sweep_duration_s} s per level):")
    head = (
        f"{'target':<16} {'conns':>5} {'thr':>3} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'err':>5}"
    )
    print(head)
    print("-" * len(head))
    for (name, c), r in sweep.items():
        print(
            f"{name:<16} {c:5d} {cfg.threads_for(c):3d} {r.rps:9.1f} {r.p50_ms:8.3f} "
            f"{r.p99_ms:8.3f} {r.errors:5d}"
        )


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Config]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="100k rows, 2 s per target")
    ap.add_argument("--json", metavar="PATH", help="write results as JSON")
    ap.add_argument("--rows", type=int, help="rows (default 1M; --quick: 100k)")
    ap.add_argument("--tenants", type=int, help="tenants (default 1,000; --quick: 100)")
    ap.add_argument("--tenant", type=int, default=42, help="the tenant whose widgets are loaded")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    ap.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    ap.add_argument("--duration", type=int, help="seconds per timed run (default 10; quick 2)")
    ap.add_argument("--warmup", type=int, help="seconds of warm-up per target (3; quick 1)")
    ap.add_argument(
        "--sweep",
        help="connection counts of the latency sweep, comma-separated (1,4,16,64; quick 1,16)",
    )
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--sessions", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--handler-calls", type=int, default=200, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sweep = args.sweep or ("1,16" if args.quick else "1,4,16,64")
    cfg = Config(
        quick=args.quick,
        rows=args.rows or (100_000 if args.quick else 1_000_000),
        tenants=args.tenants or (100 if args.quick else 1_000),
        tenant=args.tenant,
        seed=args.seed,
        wrk_threads=args.threads,
        connections=args.connections,
        duration_s=args.duration or (2 if args.quick else 10),
        warmup_s=args.warmup or (1 if args.quick else 3),
        sweep=tuple(int(c) for c in sweep.split(",")),
        sweep_duration_s=args.duration or (1 if args.quick else 5),
        handler_calls=50 if args.quick else 200,
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
    sweep: dict[tuple[str, int], Wrk] = {}
    peak_rss: float | None = None
    with tempfile.TemporaryDirectory(prefix="embedkit-bench-wrk-") as scratch:
        try:
            ready = server.ready(timeout_s=600)
            base = f"http://127.0.0.1:{ready['port']}"
            targets = check_targets(base, ready)
            scripts = {
                kit: session_script(Path(scratch) / f"{kit}.lua", sessions)
                for kit, sessions in ready["sessions"].items()
            }
            load = Load(cfg, base, scripts)
            for t in targets:
                log(f"loading {t.name}: {cfg.warmup_s} s warm-up, {cfg.duration_s} s timed ...")
                session = ready["sessions"][t.kit][0]
                results[t.name] = load.measure(
                    t, session, cfg.connections, cfg.warmup_s, cfg.duration_s
                )
            for name in ("widget_line", "nocache_line"):
                t = next(t for t in targets if t.name == name)
                for c in cfg.sweep:
                    log(f"sweep {name}: {c} connections, {cfg.sweep_duration_s} s ...")
                    for session in ready["sessions"][t.kit]:
                        load.settle(t, session)
                    sweep[(name, c)] = load.measure(t, "", c, 0, cfg.sweep_duration_s)
            peak_rss = server.peak_rss_mb()
        finally:
            server.stop()

    print_tables(cfg, targets, results, sweep)
    metrics, ratios, per_kind = summarize(targets, results, sweep, ready)
    metrics["wall_s"] = round(time.perf_counter() - started, 2)
    if peak_rss is not None:
        metrics["server_peak_rss_mb"] = peak_rss

    print()
    print("ratios (geometric mean over the line and kpi widgets):")
    for key, value in ratios.items():
        target = RATIO_TARGETS.get(key)
        verdict = f"target {target}: {'met' if met(value, target) else 'MISSED'}" if target else ""
        kinds = ", ".join(f"{k} {per_kind[key][k]:.3f}" for k in WIDGETS)
        print(f"  {key:<36} {value:8.3f}  ({kinds}) {verdict}")
    handler = ", ".join(f"{k} {v:.3f} ms" for k, v in ready["handler"].items())
    print(f"handler work in-process, p50 (no HTTP): {handler}")
    rss = f"server peak RSS {peak_rss:.0f} MB, " if peak_rss is not None else ""
    print(f"{rss}wall {metrics['wall_s']:.1f} s")

    errors = sum(r.errors for r in results.values()) + sum(r.errors for r in sweep.values())
    if errors:
        print(f"WARNING: {errors} requests failed under load (non-2xx or socket errors)")
    if args.json:
        doc = {"benchmark": "serving", "params": params_of(cfg, targets, ready), "metrics": metrics}
        doc["ratios"] = ratios
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 1 if errors else 0


def summarize(
    targets: list[Target],
    results: dict[str, Wrk],
    sweep: dict[tuple[str, int], Wrk],
    ready: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, float], dict[str, dict[str, float]]]:
    """Flat metrics, the ratios, and each ratio per widget kind."""

    def per_kind(top: str, bottom: str, figure: str = "rps") -> dict[str, float]:
        return {
            k: getattr(results[f"{top}_{k}"], figure) / getattr(results[f"{bottom}_{k}"], figure)
            for k in WIDGETS
        }

    kinds = {
        "widget_rps_vs_bare_starlette": per_kind("widget", "bare"),
        "widget_p50_vs_bare_starlette": per_kind("widget", "bare", "p50_ms"),
        "nocache_rps_vs_raw_duckdb_endpoint": per_kind("nocache", "raw"),
        "widget_rps_vs_handrolled": per_kind("widget", "handrolled"),
    }
    ratios = {key: round(geomean(list(v.values())), 4) for key, v in kinds.items()}
    metrics: dict[str, Any] = {}
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
    for (name, c), r in sweep.items():
        metrics |= {
            f"sweep.{name}.c{c}.rps": round(r.rps, 2),
            f"sweep.{name}.c{c}.p50_ms": round(r.p50_ms, 4),
            f"sweep.{name}.c{c}.p99_ms": round(r.p99_ms, 4),
            f"sweep.{name}.c{c}.errors": r.errors,
        }
    p99 = per_kind("widget", "bare", "p99_ms")
    for k in WIDGETS:
        metrics[f"{k}.body_bytes"] = next(t.body_bytes for t in targets if t.name == f"widget_{k}")
        metrics[f"{k}.rps_vs_bare"] = round(kinds["widget_rps_vs_bare_starlette"][k], 4)
        metrics[f"{k}.p50_vs_bare"] = round(kinds["widget_p50_vs_bare_starlette"][k], 4)
        metrics[f"{k}.p99_vs_bare"] = round(p99[k], 4)
        metrics[f"{k}.nocache_rps_vs_raw"] = round(
            kinds["nocache_rps_vs_raw_duckdb_endpoint"][k], 4
        )
        metrics[f"{k}.rps_vs_handrolled"] = round(kinds["widget_rps_vs_handrolled"][k], 4)
    metrics["widget_p99_vs_bare_starlette"] = round(geomean(list(p99.values())), 4)
    metrics |= ready["handler"]
    metrics["generate_s"] = ready["generate_s"]
    metrics["embedkit_load_s"] = ready["load_s"]
    metrics["parquet_bytes"] = ready["parquet_bytes"]
    metrics["bodies_identical"] = 1  # check_targets stops the run otherwise
    return metrics, ratios, kinds


def params_of(cfg: Config, targets: list[Target], ready: dict[str, Any]) -> dict[str, Any]:
    return {
        "quick": cfg.quick,
        "rows": cfg.rows,
        "tenants": cfg.tenants,
        "days": DAYS,
        "tenant": cfg.tenant,
        "seed": cfg.seed,
        "widgets": {k: {"name": WIDGETS[k], "kind": k} for k in WIDGETS},
        "filter_params": PARAMS,
        "wrk": {
            "threads": cfg.threads_for(cfg.connections),
            "connections": cfg.connections,
            "duration_s": cfg.duration_s,
            "warmup_s": cfg.warmup_s,
            "timeout_s": cfg.timeout_s,
            "version": wrk_version(),
        },
        "sweep": {
            "targets": ["widget_line", "nocache_line"],
            "connections": list(cfg.sweep),
            "threads": [cfg.threads_for(c) for c in cfg.sweep],
            "duration_s": cfg.sweep_duration_s,
            "sessions_per_thread": 1,
        },
        "cores": cores(),
        "server": "uvicorn, 1 worker, loop=uvloop, http=httptools, access_log=False, "
        "log_level=warning; one process serving every target",
        "result_cache": {"widget": "cache_bytes default (256 MiB)", "nocache": "cache_bytes=0"},
        "baselines": {
            "bare": "Starlette route returning the widget's body, precomputed",
            "raw": "Starlette route running embedkit's SQL and params on its own DuckDB "
            "connection (same rows, sorted by tenant and time, 32,768-row groups), a cursor "
            "per request, in anyio.to_thread.run_sync, rows -> dicts -> orjson",
            "handrolled": "sync Starlette route: Polars scan_parquet of the rows (sorted by "
            "tenant and time) per request, filter, group by day, orjson; no auth",
        },
        "raw_sql": ready["sql"],
        "ratio_aggregate": "geometric mean over the line and kpi widgets",
        "ratio_targets": RATIO_TARGETS,
        "order": [t.name for t in targets],
        "duckdb": duckdb.__version__,
        "polars": pl.__version__,
        "uvicorn": uvicorn.__version__,
        "starlette": starlette.__version__,
        "embedkit": ek.__version__,
        "embedkit_path": str(Path(ek.__file__).parent),
    }


if __name__ == "__main__":
    raise SystemExit(main())
