"""Core query latency: ``EmbedKit.query`` against raw DuckDB running the same SQL.

What is measured
----------------
An orders-like table (tenant_id, ordered_at over one year, amount, status,
product_id, order_id) is generated with DuckDB's own ``range()`` and hashing, so
it is deterministic for a given ``--seed`` and fast to make. The same Arrow
table is loaded twice:

* into an :class:`embedkit.EmbedKit` (which stores it sorted by tenant, then time);
* into a separate raw DuckDB database, with ``CREATE TABLE ... ORDER BY tenant_id,
  ordered_at`` -- the same clustering, the same config (memory limit, threads,
  ``TimeZone = 'UTC'``) and the same storage kind (file or memory).

Three query shapes are then timed for random tenants (seeded), after warm-up
iterations, alternating which side runs first:

1. ``kpi``     -- sum(amount) and count(*) for one tenant over a three-month range;
2. ``by_day``  -- revenue by day for one tenant over the last 90 days (time grain);
3. ``by_status`` -- revenue by status for one tenant.

For each shape we report p50/p95 wall-clock latency of ``kit.query`` (everything a
caller waits for: scope, compile, execute, wrapping the result) and of the raw
baseline, plus embedkit's own overhead from ``result.timings`` (scope + compile).
Every embedkit result is checked to equal the raw result.

Why the baseline is fair
------------------------
The baseline is the floor, not a strawman: it runs the *very SQL text embedkit
generated* (taken from embedkit's compiler for the same query and principal, so
the same ``$1..$n`` placeholders and the same parameter values), with bound
parameters, on one long-lived cursor, over a table holding the same rows in the
same tenant/time order, so DuckDB prunes the same row groups. The only thing the
baseline skips is embedkit itself. "Cold" means the result cache is off
(``cache_bytes=0``): every query runs. The compiled-SQL cache for a query *shape*
is warm after warm-up, as it is in a running server.

Ratios (embedkit over baseline, lower is better)
------------------------------------------------
* ``cold_vs_raw_duckdb``: geometric mean over the three shapes of
  embedkit p50 / raw p50, at 1M rows / 1,000 tenants.
* ``cold_vs_raw_duckdb_large``: the same at the large size (see ``params``).
* ``latency_100m_vs_1m``: geometric mean over shapes of embedkit p50 at the large
  size over embedkit p50 at 1M rows with **as many rows per tenant** (per tenant, the
  issue's wording): full run, 100M rows / 10,000 tenants vs 1M rows / 100 tenants
  (10,000 rows each); ``--quick``, 10M / 10,000 vs 1M / 1,000 (1,000 rows each).
  Without pruning it would approach the row-count ratio (100x, 10x); near 1.0 means a
  tenant's query reads its own row groups only. The full run also reports
  ``latency_large_vs_small_more_rows_per_tenant`` (100M / 10,000 vs 1M / 1,000:
  tenants with 10x more rows, so some growth is the work itself), with the raw
  baseline's own ratio next to it, and ``<size>.row_groups_scanned_per_tenant`` (from
  ``EXPLAIN ANALYZE``) shows the pruning directly.
* ``load_vs_raw_duckdb``: embedkit ``register`` time over the raw ``CREATE TABLE
  ... ORDER BY`` from the same Arrow table, at the large size.

Usage::

    python benchmarks/core.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import re
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

import embedkit as ek
from embedkit.engines.duckdb import ROW_GROUP_SIZE
from embedkit.engines.shards import SHARD_ROWS
from embedkit.scope import scope as scope_query

#: "Now" for the kit's clock: the data covers 2024, so "last 90 days" is Oct-Dec.
NOW = datetime(2024, 12, 31, 12, 0, tzinfo=UTC)
YEAR_US = 366 * 86_400 * 1_000_000  # 2024 is a leap year

#: Reads every column of every row group (to fill DuckDB's buffer pool).
PREWARM = (
    "SELECT count(*), sum(order_id), sum(tenant_id), max(ordered_at), sum(amount), "
    "max(status), sum(product_id) FROM store.main.orders"
)

STATUSES = ["completed"] * 6 + ["pending", "shipped", "returned", "cancelled"]


@dataclass(frozen=True)
class Size:
    label: str
    rows: int
    tenants: int


@dataclass(frozen=True)
class Config:
    quick: bool
    sizes: tuple[Size, ...]
    warmup: int
    iterations: int
    seed: int
    storage: str
    memory_limit: str
    threads: int | None
    tmpdir: str | None
    raw_row_group_size: int | None = None


@dataclass
class ShapeStats:
    shape: str
    ek_ms: list[float] = field(default_factory=list)
    raw_ms: list[float] = field(default_factory=list)
    overhead_ms: list[float] = field(default_factory=list)  # scope + compile
    execute_ms: list[float] = field(default_factory=list)  # embedkit's execute timing
    # After execute inside _run (total column, metadata, result) + outside _run.
    after_ms: list[float] = field(default_factory=list)
    rows_out: list[int] = field(default_factory=list)
    mismatches: int = 0


@dataclass(frozen=True)
class Sample:
    """One query, run through both sides."""

    ek_ms: float
    raw_ms: float
    result: ek.QueryResult
    same: bool


@dataclass
class SizeResult:
    size: Size
    gen_s: float
    raw_load_s: float
    ek_load_s: float
    prewarm_s: float
    shapes: list[ShapeStats]
    row_groups: tuple[int, int] | None = None  # (most scanned for one tenant, total)


# -- data ------------------------------------------------------------------------------


def generate(con: duckdb.DuckDBPyConnection, size: Size, seed: int) -> pa.Table:
    """The orders rows as Arrow, in generation (not tenant) order."""
    statuses = ", ".join(f"'{s}'" for s in STATUSES)

    def h(column: int) -> str:
        # hash(i, a, b) is correlated across b in its low bits; offset i instead.
        return f"hash(i + ({seed * 16 + column}::BIGINT << 40))"

    # Only integers this script chose are formatted in; nothing comes from outside.
    sql = f"""
        SELECT
            i::BIGINT AS order_id,
            ({h(1)} % {size.tenants})::INTEGER AS tenant_id,
            TIMESTAMP '2024-01-01'
                + to_microseconds(({h(2)} % {YEAR_US})::BIGINT) AS ordered_at,
            round(1 + ({h(3)} % 50000) / 100.0, 2)::DOUBLE AS amount,
            ([{statuses}])[({h(4)} % {len(STATUSES)})::INTEGER + 1] AS status,
            ({h(5)} % 5000)::INTEGER AS product_id
        FROM range({size.rows}) AS r(i)
    """  # noqa: S608
    return con.sql(sql).to_arrow_table()


def connect_raw(path: str, cfg: Config) -> duckdb.DuckDBPyConnection:
    """The baseline database, attached under embedkit's catalog name so that the
    same SQL text runs on both; DuckDB's own row-group size unless asked otherwise."""
    config: dict[str, Any] = {"memory_limit": cfg.memory_limit}
    if cfg.threads:
        config["threads"] = cfg.threads
    con = duckdb.connect(":memory:", config=config)
    size = f" (ROW_GROUP_SIZE {cfg.raw_row_group_size})" if cfg.raw_row_group_size else ""
    con.execute(f"ATTACH '{path}' AS store{size}")
    con.execute("SET TimeZone = 'UTC'")  # embedkit's setting; grains depend on it
    return con


def dataset(source: pa.Table) -> ek.Dataset:
    return ek.Dataset(
        "orders",
        source,
        tenant_key="tenant_id",
        time="ordered_at",
        primary_key="order_id",
        dimensions=[ek.Dimension("status")],
        measures=[ek.Measure("revenue", "sum", sql="amount"), ek.Measure("orders", "count")],
    )


# -- query shapes ----------------------------------------------------------------------


def kpi(rng: random.Random) -> ek.Query:
    month = rng.randint(1, 10)
    start, end = f"2024-{month:02d}-01", f"2024-{month + 2:02d}-28"
    time_ = ek.Time("orders.ordered_at", date_range=(start, end))
    return ek.Query(measures=("orders.revenue", "orders.orders"), time=(time_,))


def by_day(rng: random.Random) -> ek.Query:
    time_ = ek.Time("orders.ordered_at", grain="day", date_range="last 90 days")
    return ek.Query(measures=("orders.revenue",), time=(time_,))


def by_status(rng: random.Random) -> ek.Query:
    return ek.Query(measures=("orders.revenue",), dimensions=("orders.status",))


SHAPES: dict[str, Callable[[random.Random], ek.Query]] = {
    "kpi": kpi,
    "by_day": by_day,
    "by_status": by_status,
}


# -- measuring -------------------------------------------------------------------------


@dataclass
class Loaded:
    """One size, loaded into both databases."""

    result: SizeResult
    kit: ek.EmbedKit
    raw: duckdb.DuckDBPyConnection
    cur: duckdb.DuckDBPyConnection  # the long-lived baseline cursor
    paths: tuple[str, ...]


def load_size(size: Size, cfg: Config, workdir: Path) -> Loaded:
    def db(kind: str) -> str:
        if cfg.storage == "memory":
            return ":memory:"
        return str(workdir / f"{kind}-{size.label}.duckdb")

    ek_db, raw_db = db("embedkit"), db("raw")
    log(f"[{size.label}] generating {size.rows:,} rows for {size.tenants:,} tenants ...")
    raw = connect_raw(raw_db, cfg)
    t0 = time.perf_counter()
    data = generate(raw, size, cfg.seed)
    gen_s = time.perf_counter() - t0

    log(f"[{size.label}] loading raw DuckDB (sorted by tenant, time) ...")
    t0 = time.perf_counter()
    raw.register("gen", data)
    raw.execute(
        "CREATE TABLE store.main.orders AS SELECT * FROM gen ORDER BY tenant_id, ordered_at"
    )
    raw.unregister("gen")
    if cfg.storage == "file":
        raw.execute("CHECKPOINT")
    raw_load_s = time.perf_counter() - t0

    log(f"[{size.label}] registering with embedkit ...")
    t0 = time.perf_counter()
    kit = ek.EmbedKit(
        [dataset(data)],
        database=ek_db,
        memory_limit=cfg.memory_limit,
        threads=cfg.threads,
        clock=lambda: NOW,
        cache_bytes=0,  # cold: no result cache, every query runs
    )
    ek_load_s = time.perf_counter() - t0
    del data
    gc.collect()
    shapes = [ShapeStats(name) for name in SHAPES]
    result = SizeResult(size, gen_s, raw_load_s, ek_load_s, 0.0, shapes)
    paths = tuple(p for p in (ek_db, raw_db) if p != ":memory:")
    return Loaded(result, kit, raw, raw.cursor(), paths)


def prewarm(loaded: Loaded) -> None:
    """Bring every row group of both databases into DuckDB's buffer pool, so neither
    side pays a first read from disk during timing: we measure a warm server."""
    t0 = time.perf_counter()
    for con in (loaded.raw, loaded.kit._store._con):
        cur = con.cursor()
        cur.sql(PREWARM).fetchall()
        cur.close()
    loaded.result.prewarm_s = time.perf_counter() - t0


def row_groups(loaded: Loaded, tenants: int = 5) -> tuple[int, int] | None:
    """Most row groups scanned (and the total) by ``by_status`` for a few tenants.

    Read from ``EXPLAIN ANALYZE`` of embedkit's SQL on embedkit's own database;
    ``by_status`` has no time filter, so any pruning is the tenant key's doing.
    """
    kit = loaded.kit
    rng = random.Random(f"{loaded.result.size.label}:row-groups")
    worst: tuple[int, int] | None = None
    for _ in range(tenants):
        principal = ek.Principal(tenant=rng.randrange(loaded.result.size.tenants))
        compiled = kit._runner._compiler.compile(kit.scope(by_status(rng), principal=principal))
        cur = kit._store._con.cursor()
        try:
            rows = cur.sql("EXPLAIN ANALYZE " + compiled.sql, params=list(compiled.params))
            text = "\n".join(str(v) for row in rows.fetchall() for v in row)
        finally:
            cur.close()
        found = re.search(r"Row Groups Scanned: ([\d,]+) / ([\d,]+)", text)
        if found is None:
            return None  # DuckDB changed its plan output; the diagnostic is best-effort
        scanned, total = (int(g.replace(",", "")) for g in found.groups())
        if worst is None or scanned > worst[0]:
            worst = (scanned, total)
    return worst


def close(loaded: Loaded) -> None:
    loaded.cur.close()
    loaded.kit.close()
    loaded.raw.close()
    for path in loaded.paths:
        Path(path).unlink(missing_ok=True)
        Path(path + ".wal").unlink(missing_ok=True)


def measure_once(loaded: Loaded, query: ek.Query, tenant: int, ek_first: bool) -> Sample:
    """Run ``query`` for ``tenant`` through embedkit and through the raw baseline."""
    kit, cur = loaded.kit, loaded.cur
    principal = ek.Principal(tenant=tenant)
    # The baseline's SQL and parameters, compiled outside both timed regions: the same
    # scoped query over the one sorted table (embedkit itself reads the tenant's shard).
    unsharded = scope_query(
        kit.model, query, principal, now=NOW, data_versions=kit.data_versions, shards=None
    )
    compiled = kit._runner._compiler.compile(unsharded)
    sql, params = compiled.sql, list(compiled.params)

    def run_ek() -> tuple[float, ek.QueryResult]:
        t0 = time.perf_counter()
        result = kit.query(query, principal=principal)
        return (time.perf_counter() - t0) * 1e3, result

    def run_raw() -> tuple[float, pa.Table]:
        t0 = time.perf_counter()
        table = cur.execute(sql, params).to_arrow_table()
        return (time.perf_counter() - t0) * 1e3, table

    if ek_first:
        ek_ms, result = run_ek()
        raw_ms, raw_table = run_raw()
    else:
        raw_ms, raw_table = run_raw()
        ek_ms, result = run_ek()
    same = same_rows(result.table, raw_table)
    return Sample(ek_ms, raw_ms, result, same)


def measure(loaded: list[Loaded], cfg: Config) -> None:
    """Time every shape at every size.

    Sizes are interleaved query by query (and which side runs first alternates), so
    a background load that comes and goes hits all sides alike instead of skewing
    one size's or one side's numbers.
    """
    for index, (name, make) in enumerate(SHAPES.items()):
        log(f"timing {name}: {cfg.warmup} warm-up + {cfg.iterations} iterations per size")
        query_rng = random.Random(f"{cfg.seed}:{name}")
        tenant_rngs = [random.Random(f"{cfg.seed}:{name}:{ld.result.size.label}") for ld in loaded]
        for i in range(cfg.warmup + cfg.iterations):
            query = make(query_rng)
            order = list(zip(loaded, tenant_rngs, strict=True))
            if i % 2:
                order.reverse()
            for ld, rng in order:
                sample = measure_once(
                    ld, query, rng.randrange(ld.result.size.tenants), ek_first=(i // 2) % 2 == 0
                )
                stats = ld.result.shapes[index]
                if not sample.same:
                    stats.mismatches += 1
                if i < cfg.warmup:
                    continue
                timings = sample.result.timings
                stats.ek_ms.append(sample.ek_ms)
                stats.raw_ms.append(sample.raw_ms)
                stats.overhead_ms.append(timings["scope_ms"] + timings["compile_ms"])
                stats.execute_ms.append(timings["execute_ms"])
                inside = timings["scope_ms"] + timings["compile_ms"] + timings["execute_ms"]
                stats.after_ms.append(sample.ek_ms - inside)
                stats.rows_out.append(sample.result.num_rows)


def same_rows(a: pa.Table, b: pa.Table) -> bool:
    """Equal tables, up to float rounding (DuckDB's parallel sums vary in the last bits)."""
    if a.schema.remove_metadata() != b.schema.remove_metadata() or a.num_rows != b.num_rows:
        return False
    for x, y in zip(a.to_pylist(), b.to_pylist(), strict=True):
        for key, u in x.items():
            v = y[key]
            if isinstance(u, float) and isinstance(v, float):
                if not math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif u != v:
                return False
    return True


# -- reporting -------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def geomean(values: Sequence[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def ek_p50s(result: SizeResult) -> list[float]:
    return [pct(s.ek_ms, 0.5) for s in result.shapes]


def cold_ratio(result: SizeResult) -> float:
    return geomean([pct(s.ek_ms, 0.5) / pct(s.raw_ms, 0.5) for s in result.shapes])


def metrics_for(result: SizeResult) -> dict[str, float | int]:
    key = result.size.label
    out: dict[str, float | int] = {
        f"{key}.rows": result.size.rows,
        f"{key}.tenants": result.size.tenants,
        f"{key}.generate_s": round(result.gen_s, 3),
        f"{key}.raw_load_s": round(result.raw_load_s, 3),
        f"{key}.embedkit_load_s": round(result.ek_load_s, 3),
        f"{key}.prewarm_s": round(result.prewarm_s, 3),
    }
    if result.row_groups is not None:
        out[f"{key}.row_groups_scanned_per_tenant"] = result.row_groups[0]
        out[f"{key}.row_groups_total"] = result.row_groups[1]
    for s in result.shapes:
        p = f"{key}.{s.shape}"
        out |= {
            f"{p}.embedkit_p50_ms": round(pct(s.ek_ms, 0.5), 4),
            f"{p}.embedkit_p95_ms": round(pct(s.ek_ms, 0.95), 4),
            f"{p}.raw_p50_ms": round(pct(s.raw_ms, 0.5), 4),
            f"{p}.raw_p95_ms": round(pct(s.raw_ms, 0.95), 4),
            f"{p}.overhead_p50_ms": round(pct(s.overhead_ms, 0.5), 4),
            f"{p}.execute_p50_ms": round(pct(s.execute_ms, 0.5), 4),
            f"{p}.after_execute_p50_ms": round(pct(s.after_ms, 0.5), 4),
            f"{p}.extra_p50_ms": round(pct(s.ek_ms, 0.5) - pct(s.raw_ms, 0.5), 4),
            f"{p}.rows_out_p50": round(pct(s.rows_out, 0.5), 1),
            f"{p}.result_mismatches": s.mismatches,
        }
    overheads = [v for s in result.shapes for v in s.overhead_ms]
    out[f"{key}.overhead_p50_ms"] = round(pct(overheads, 0.5), 4)
    return out


def print_table(result: SizeResult) -> None:
    size = result.size
    print()
    print(
        f"== {size.rows:,} rows / {size.tenants:,} tenants "
        f"(~{size.rows // size.tenants:,} rows per tenant) =="
    )
    print(
        f"load: generate {result.gen_s:.2f} s | raw DuckDB {result.raw_load_s:.2f} s | "
        f"embedkit {result.ek_load_s:.2f} s | prewarm (both) {result.prewarm_s:.2f} s"
    )
    if result.row_groups is not None:
        scanned, total = result.row_groups
        print(f"tenant pruning: at most {scanned} of {total} row groups scanned per tenant query")
    head = (
        f"{'shape':<10} {'ek p50':>8} {'ek p95':>8} {'raw p50':>8} {'raw p95':>8} "
        f"{'ratio':>6} {'extra':>7} {'scp+cmp':>8} {'exec':>7} {'after':>6} {'rows':>5} "
        f"{'bad':>4}"
    )
    print(head)
    print("-" * len(head))
    for s in result.shapes:
        ek50, raw50 = pct(s.ek_ms, 0.5), pct(s.raw_ms, 0.5)
        print(
            f"{s.shape:<10} {ek50:8.3f} {pct(s.ek_ms, 0.95):8.3f} {raw50:8.3f} "
            f"{pct(s.raw_ms, 0.95):8.3f} {ek50 / raw50:6.2f} {ek50 - raw50:7.3f} "
            f"{pct(s.overhead_ms, 0.5):8.3f} {pct(s.execute_ms, 0.5):7.3f} "
            f"{pct(s.after_ms, 0.5):6.3f} "
            f"{pct(s.rows_out, 0.5):5.0f} {s.mismatches:4d}"
        )
    print(
        "(ms; ratio = ek p50 / raw p50; extra = ek p50 - raw p50; scp+cmp = embedkit "
        "scope+compile p50; exec = embedkit's execute_ms p50 (its DuckDB call); after = "
        "kit.query wall minus scope, compile and execute, p50; bad = results != raw)"
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> tuple[Config, str | None]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="1M and 10M rows, fewer iterations")
    ap.add_argument("--json", metavar="PATH", help="write results as JSON")
    ap.add_argument("--iterations", type=int, help="timed iterations per shape")
    ap.add_argument("--warmup", type=int, help="warm-up iterations per shape")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--storage",
        choices=("file", "memory"),
        default="file",
        help="DuckDB databases in temp files (default) or in memory",
    )
    ap.add_argument("--memory-limit", default="6GB", help="DuckDB memory limit, each database")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: cores)")
    ap.add_argument("--tmpdir", default=None, help="where database files go")
    ap.add_argument(
        "--raw-row-group-size",
        type=int,
        default=None,
        help="row-group size of the baseline database (default: DuckDB's, 122,880); "
        "pass embedkit's 32768 to compare engines on the same layout",
    )
    args = ap.parse_args(argv)
    if args.quick:
        sizes = (Size("1m", 1_000_000, 1_000), Size("10m", 10_000_000, 10_000))
        warmup, iterations = 20, 200
    else:
        # 1m-wide has the rows per tenant of 100m (10,000): the per-tenant comparison.
        sizes = (
            Size("1m", 1_000_000, 1_000),
            Size("1m-wide", 1_000_000, 100),
            Size("100m", 100_000_000, 10_000),
        )
        warmup, iterations = 100, 1000
    cfg = Config(
        quick=args.quick,
        sizes=sizes,
        warmup=args.warmup if args.warmup is not None else warmup,
        iterations=args.iterations if args.iterations is not None else iterations,
        seed=args.seed,
        storage=args.storage,
        memory_limit=args.memory_limit,
        threads=args.threads,
        tmpdir=args.tmpdir,
        raw_row_group_size=args.raw_row_group_size,
    )
    return cfg, args.json


def main(argv: Sequence[str] | None = None) -> int:
    cfg, json_path = parse_args(argv)
    started = time.perf_counter()
    results: list[SizeResult] = []
    with tempfile.TemporaryDirectory(prefix="embedkit-bench-", dir=cfg.tmpdir) as tmp:
        loaded = [load_size(size, cfg, Path(tmp)) for size in cfg.sizes]
        for ld in loaded:
            prewarm(ld)
            ld.result.row_groups = row_groups(ld)
        measure(loaded, cfg)
        for ld in loaded:
            close(ld)
            results.append(ld.result)
            print_table(ld.result)
    small, large = results[0], results[-1]
    # Per tenant: the smaller table whose tenants have as many rows as the large one's.
    per_tenant = large.size.rows // large.size.tenants
    peer = next(r for r in results if r.size.rows // r.size.tenants == per_tenant)

    def growth(a: SizeResult, b: SizeResult) -> float:
        return round(geomean(ek_p50s(a)) / geomean(ek_p50s(b)), 4)

    ratios = {
        "cold_vs_raw_duckdb": round(cold_ratio(small), 4),
        "cold_vs_raw_duckdb_large": round(cold_ratio(large), 4),
        "latency_100m_vs_1m": growth(large, peer),
        "load_vs_raw_duckdb": round(large.ek_load_s / large.raw_load_s, 4),
    }
    raw_scaling = geomean([pct(s.raw_ms, 0.5) for s in large.shapes]) / geomean(
        [pct(s.raw_ms, 0.5) for s in peer.shapes]
    )
    metrics: dict[str, float | int] = {}
    for r in results:
        metrics |= metrics_for(r)
    metrics["raw_latency_large_vs_small"] = round(raw_scaling, 4)
    if peer is not small:  # the same table sizes, with 10x the rows per tenant
        metrics["latency_large_vs_small_more_rows_per_tenant"] = growth(large, small)
    metrics["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    metrics["wall_s"] = round(time.perf_counter() - started, 2)

    compares = (
        f"{large.size.rows:,} rows / {large.size.tenants:,} tenants vs "
        f"{peer.size.rows:,} rows / {peer.size.tenants:,} tenants"
    )
    params: dict[str, Any] = {
        "quick": cfg.quick,
        "sizes": [{"label": s.label, "rows": s.rows, "tenants": s.tenants} for s in cfg.sizes],
        "shapes": list(SHAPES),
        "warmup": cfg.warmup,
        "iterations": cfg.iterations,
        "seed": cfg.seed,
        "storage": cfg.storage,
        "memory_limit": cfg.memory_limit,
        "threads": cfg.threads,
        "result_cache": "none (cold); compiled-SQL shape cache warm",
        "buffer_pool": "prewarmed: a full scan of each database before timing",
        "baseline": "raw DuckDB, same SQL text and bound params, one long-lived cursor, "
        "table sorted by tenant_id, ordered_at",
        "ratio_aggregate": "geometric mean over shapes of p50 ratios",
        "raw_row_group_size": cfg.raw_row_group_size or "DuckDB default (122,880)",
        "embedkit_row_group_size": ROW_GROUP_SIZE,
        "embedkit_shard_rows": SHARD_ROWS,
        "cold_vs_raw_duckdb_at": small.size.label,
        "cold_vs_raw_duckdb_large_at": large.size.label,
        "latency_100m_vs_1m_compares": compares
        + (" (quick-mode stand-in for 100M vs 1M, same rows per tenant)" if cfg.quick else ""),
        "load_vs_raw_duckdb_at": large.size.label,
        "duckdb": duckdb.__version__,
        "embedkit": ek.__version__,
        "embedkit_path": str(Path(ek.__file__).parent),
    }

    print()
    print("ratios (embedkit / raw DuckDB, lower is better; geometric mean over shapes):")
    lines = [
        (f"cold_vs_raw_duckdb ({small.size.label})", ratios["cold_vs_raw_duckdb"], ""),
        (f"cold_vs_raw_duckdb_large ({large.size.label})", ratios["cold_vs_raw_duckdb_large"], ""),
        ("latency_100m_vs_1m", ratios["latency_100m_vs_1m"], compares),
        ("  raw DuckDB, same pair", raw_scaling, ""),
        (f"load_vs_raw_duckdb ({large.size.label})", ratios["load_vs_raw_duckdb"], ""),
    ]
    for label, value, note in lines:
        print(f"  {label:<32} {value:7.3f}  {note}".rstrip())
    if small.row_groups and large.row_groups:
        print(
            f"tenant pruning: a tenant query scans {small.row_groups[0]}/{small.row_groups[1]} "
            f"row groups at {small.size.label}, {large.row_groups[0]}/{large.row_groups[1]} "
            f"at {large.size.label} (~{small.size.rows // small.size.tenants:,} vs "
            f"~{large.size.rows // large.size.tenants:,} rows per tenant)"
        )
    print(f"peak RSS {metrics['peak_rss_mb']:.0f} MB, wall {metrics['wall_s']:.1f} s")

    mismatches = sum(s.mismatches for r in results for s in r.shapes)
    if mismatches:
        print(f"WARNING: {mismatches} embedkit results differed from raw DuckDB's")

    if json_path:
        doc = {"benchmark": "core", "params": params, "metrics": metrics, "ratios": ratios}
        Path(json_path).write_text(json.dumps(doc, indent=2) + "\n")
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
