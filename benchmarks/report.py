"""Benchmark results as one Markdown page with charts: ``benchmarks/results/README.md``.

Reads every ``benchmarks/results/*.json`` a benchmark wrote with ``--json`` (see
"Benchmark contract" in DESIGN.md) and writes, next to them:

* ``README.md``: per file, its ratios with the target each one has (from the file's
  ``params.ratio_targets``) and whether it was met, then its params and metrics;
* ``<file>-latency.png`` for an ``http`` result: p50 and p99 latency and requests/s
  against wrk connections, cached widget vs uncached widget;
* ``<file>-latency.png`` for a ``core`` result: embedkit's and raw DuckDB's p50
  against table rows, per query shape.

Charts are drawn with Altair and saved through vl-convert (no browser, no network).

Usage::

    python benchmarks/report.py [--results DIR]
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import altair as alt

RESULTS = Path(__file__).resolve().parent / "results"
SWEEP_KEY = re.compile(r"^sweep\.(?P<target>[^.]+)\.c(?P<conns>\d+)\.(?P<stat>[^.]+)$")
CORE_P50_KEY = re.compile(r"^(?P<size>[^.]+)\.(?P<shape>[^.]+)\.(?P<side>embedkit|raw)_p50_ms$")


def load(results: Path) -> list[tuple[str, dict[str, Any]]]:
    """(file stem, document) of every result, by name."""
    docs = []
    for path in sorted(results.glob("*.json")):
        doc = json.loads(path.read_text())
        if isinstance(doc, dict) and {"benchmark", "metrics", "ratios"} <= doc.keys():
            docs.append((path.stem, doc))
    return docs


def verdict(value: float, target: str | None) -> str:
    """``met`` or ``missed`` for a target such as ``">= 0.6"``; blank without one."""
    if not target:
        return ""
    op, bound = target.split()
    ok = {">=": value >= float(bound), "<=": value <= float(bound)}[op]
    return "met" if ok else "**missed**"


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested params as dotted keys; lists stay whole."""
    if isinstance(value, dict):
        out = []
        for key, inner in value.items():
            out += flatten(inner, f"{prefix}{key}.")
        return out
    return [(prefix.rstrip("."), value)]


def cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace("|", "\\|").replace("\n", " ")


def table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


def section(stem: str, doc: dict[str, Any], chart: str | None) -> list[str]:
    params, targets = doc.get("params", {}), doc.get("params", {}).get("ratio_targets", {})
    size = "quick" if params.get("quick") else "full size"
    out = [f"## {doc['benchmark']} (`{stem}.json`, {size})", ""]
    out += table(
        ["ratio", "value", "target", ""],
        [
            (key, value, targets.get(key, ""), verdict(value, targets.get(key)))
            for key, value in doc["ratios"].items()
        ],
    )
    if chart:
        out += ["", f"![{stem}]({chart})"]
    out += ["", "<details><summary>params</summary>", ""]
    out += table(["param", "value"], flatten(params))
    out += ["", "</details>", "", "<details><summary>metrics</summary>", ""]
    out += table(["metric", "value"], list(doc["metrics"].items()))
    return [*out, "", "</details>", ""]


def http_chart(doc: dict[str, Any]) -> alt.HConcatChart | None:
    """Latency (p50, p99) and requests/s against connections, cached vs uncached."""
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for key, value in doc["metrics"].items():
        found = SWEEP_KEY.match(key)
        if found:
            point = (found["target"], int(found["conns"]))
            cache = "off" if point[0].startswith("nocache") else "on"
            label = f"{point[0]} (cache {cache})"
            rows.setdefault(point, {"target": label, "connections": point[1]})
            rows[point][found["stat"]] = value
    if not rows:
        return None
    points = list(rows.values())
    latency = [
        {**p, "percentile": stat.removesuffix("_ms"), "ms": p[stat]}
        for p in points
        for stat in ("p50_ms", "p99_ms")
    ]
    x = alt.X(
        "connections:Q",
        scale=alt.Scale(type="log", base=2),
        axis=alt.Axis(values=sorted({p["connections"] for p in points})),
        title="wrk connections",
    )
    color = alt.Color("target:N", title=None)
    left = (
        alt.Chart(alt.Data(values=latency), title="latency (closed loop)")
        .mark_line(strokeWidth=2.5)
        .encode(
            x=x,
            y=alt.Y("ms:Q", scale=alt.Scale(type="log"), title="ms"),
            color=color,
            strokeDash=alt.StrokeDash("percentile:N", title=None),
        )
    )
    right = (
        alt.Chart(alt.Data(values=points), title="throughput")
        .mark_line(strokeWidth=2.5, point=True)
        .encode(x=x, y=alt.Y("rps:Q", scale=alt.Scale(type="log"), title="req/s"), color=color)
    )
    return alt.hconcat(left, right)


def core_chart(doc: dict[str, Any]) -> alt.Chart | None:
    """p50 latency against table rows per query shape, embedkit vs raw DuckDB."""
    sizes = {s["label"]: s["rows"] for s in doc.get("params", {}).get("sizes", [])}
    values = []
    for key, value in doc["metrics"].items():
        found = CORE_P50_KEY.match(key)
        if found and found["size"] in sizes:
            values.append(
                {
                    "rows": sizes[found["size"]],
                    "shape": found["shape"],
                    "side": "embedkit" if found["side"] == "embedkit" else "raw DuckDB",
                    "p50_ms": value,
                }
            )
    if not values:
        return None
    return (
        alt.Chart(alt.Data(values=values), title="query p50 vs table size")
        .mark_line(strokeWidth=2.5)
        .encode(
            x=alt.X(
                "rows:Q",
                scale=alt.Scale(type="log"),
                axis=alt.Axis(values=sorted(set(sizes.values())), format="~s"),
                title="rows in the table",
            ),
            y=alt.Y("p50_ms:Q", title="p50 ms"),
            color=alt.Color("shape:N", title=None),
            strokeDash=alt.StrokeDash("side:N", title=None),
        )
    )


CHARTS = {"serving": http_chart, "core": core_chart}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--results", type=Path, default=RESULTS, help="where the JSON files are")
    args = ap.parse_args(argv)
    docs = load(args.results)
    if not docs:
        print(f"no results in {args.results}: run make bench or make bench-quick first")
        return 1
    lines = [
        "# Benchmark results",
        "",
        "Written by `benchmarks/report.py` from the JSON files in this directory; "
        "see `benchmarks/README.md` for what each benchmark measures.",
        "",
    ]
    for stem, doc in docs:
        make_chart = CHARTS.get(doc["benchmark"])
        chart = make_chart(doc) if make_chart else None
        name = None
        if chart is not None:
            name = f"{stem}-latency.png"
            chart.save(str(args.results / name), scale_factor=2)
        lines += section(stem, doc, name)
        print(f"{stem}: {len(doc['ratios'])} ratios" + (f", {name}" if name else ""))
    (args.results / "README.md").write_text("\n".join(lines))
    print(f"wrote {args.results / 'README.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
