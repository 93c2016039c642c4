"""Scale: a 100M-row dataset stored once, reopened quickly, served in bounded memory.

What is measured
----------------
An orders table of ``--rows`` rows over ``--tenants`` tenants (100M / 10,000;
``--quick``: 5M / 10,000) is written to Parquet with DuckDB (deterministic hashes of
the row number) and kept in ``benchmarks/.data`` for the next run. Then, each in a
fresh Python process so that peak memory (``VmHWM``) belongs to that step alone:

1. **build**: ``EmbedKit(Dataset(parquet), database=file, memory_limit=...)``, which
   reads the Parquet (streamed past 512 MB), sorts by tenant then time, splits it into
   tenant shards and stores it in a DuckDB file;
2. **serve**: a new process registers the same dataset over the same file, which reuses
   the stored rows (``reopen_s``), then answers ``--queries`` per-tenant queries (daily
   revenue over two months, random tenants) and reports p50 / p99 and peak RSS.

``ratios.reopen_vs_build`` is reopen time over build time (lower is better); the issue's
target on memory is ``metrics.peak_rss_mb`` (serving) <= 2000.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"


def generate(path: Path, rows: int, tenants: int) -> float:
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT (hash(i) % {tenants})::BIGINT AS tenant_id, i AS order_id,
            TIMESTAMP '2025-11-25' + INTERVAL (hash(i * 7) % (365 * 86400)) SECOND AS ordered_at,
            round((hash(i * 13) % 50000) / 100.0, 2) AS amount,
            ['paid', 'refunded', 'pending'][1 + (hash(i * 17) % 3)::INT] AS status
            FROM range({rows}) r(i)) TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 122880)"""  # noqa: S608
    )
    con.close()
    return time.perf_counter() - started


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def step(args: argparse.Namespace) -> dict[str, Any]:
    """One step in this process: build or serve."""
    import random

    import embedkit as ek

    dataset = ek.Dataset(
        "orders",
        str(args.parquet),
        tenant_key="tenant_id",
        time="ordered_at",
        dimensions=["status"],
        measures=[ek.Measure("revenue", "sum", sql="amount"), ek.Measure("orders", "count")],
    )
    started = time.perf_counter()
    kit = ek.EmbedKit(dataset, database=args.database, memory_limit=args.memory_limit)
    register_s = time.perf_counter() - started
    out: dict[str, Any] = {"register_s": register_s, "versions": dict(kit.data_versions)}
    if args.step == "serve":
        query = {
            "measures": ["orders.revenue", "orders.orders"],
            "timeDimensions": [
                {
                    "dimension": "orders.ordered_at",
                    "granularity": "day",
                    "dateRange": ["2026-01-01", "2026-02-28"],
                }
            ],
        }
        rng = random.Random(7)
        times = []
        for _ in range(args.queries):
            principal = ek.Principal(rng.randrange(args.tenants))
            t0 = time.perf_counter()
            kit.query(query, principal=principal)
            times.append((time.perf_counter() - t0) * 1e3)
        times.sort()
        out["p50_ms"] = times[len(times) // 2]
        out["p99_ms"] = times[min(len(times) - 1, int(len(times) * 0.99))]
    kit.close()
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def run_step(name: str, args: argparse.Namespace, parquet: Path, database: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--step",
        name,
        "--parquet",
        str(parquet),
        "--database",
        str(database),
        "--memory-limit",
        args.memory_limit,
        "--tenants",
        str(args.tenants),
        "--queries",
        str(args.queries),
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5M rows instead of 100M")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--memory-limit", default="1GB")
    parser.add_argument("--step", choices=["build", "serve"], help=argparse.SUPPRESS)
    parser.add_argument("--parquet", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--database", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step:
        print(json.dumps(step(args)))
        return 0
    rows = args.rows or (5_000_000 if args.quick else 100_000_000)
    DATA.mkdir(exist_ok=True)
    parquet = DATA / f"orders-{rows}-{args.tenants}.parquet"
    generate_s = 0.0
    if not parquet.exists():
        print(f"generating {rows:,} rows ...", file=sys.stderr)
        generate_s = generate(parquet, rows, args.tenants)
    database = DATA / f"orders-{rows}-{args.tenants}.duckdb"
    for stale in (database, Path(f"{database}.wal")):
        stale.unlink(missing_ok=True)
    print("build ...", file=sys.stderr)
    build = run_step("build", args, parquet, database)
    print("serve ...", file=sys.stderr)
    serve = run_step("serve", args, parquet, database)
    assert serve["versions"] == build["versions"], "the reopened store must be the built one"
    metrics = {
        "generate_s": generate_s,
        "parquet_mb": parquet.stat().st_size / 2**20,
        "build_s": build["register_s"],
        "build_peak_rss_mb": build["peak_rss_mb"],
        "reopen_s": serve["register_s"],
        "serve_p50_ms": serve["p50_ms"],
        "serve_p99_ms": serve["p99_ms"],
        "peak_rss_mb": serve["peak_rss_mb"],
    }
    ratios = {"reopen_vs_build": serve["register_s"] / build["register_s"]}
    params = {
        "rows": rows,
        "tenants": args.tenants,
        "queries": args.queries,
        "memory_limit": args.memory_limit,
        "quick": bool(args.quick),
        "cores": os.cpu_count(),
    }
    print(
        f"\n== scale: {rows:,} rows / {args.tenants:,} tenants, memory_limit {args.memory_limit} =="
    )
    for key, value in metrics.items():
        print(f"  {key:<20} {value:10.2f}")
    print(f"  {'reopen_vs_build':<20} {ratios['reopen_vs_build']:10.4f}  (lower is better)")
    print(f"  peak RSS serving {metrics['peak_rss_mb']:.0f} MB (target <= 2000)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        body = {"benchmark": "scale", "params": params, "metrics": metrics, "ratios": ratios}
        args.json.write_text(json.dumps(body, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
