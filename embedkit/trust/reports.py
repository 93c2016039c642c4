"""What operators and analysts read: the status report and the catalog, as JSON.

Both are built from the registered model, the store and the monitor; nothing in
them comes from a tenant's rows except counts. The status report holds, per
dataset, freshness, contract results (rows held in quarantine per rule, the
last batch, the last refused batch) and each SLO objective with its budget and a
small chart. The catalog holds every dataset as a data product: owner,
description, columns, contract, SLOs, and each measure's meaning in words and
in SQL, so "what does revenue mean" has one answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from embedkit.compile import stored_table
from embedkit.semantic.model import Member, Model, ResolvedDataset, measure_expression
from embedkit.trust.ingest import BatchReport
from embedkit.trust.slo import Objective, describe

if TYPE_CHECKING:
    from embedkit.trust.service import Trust

__all__ = ["catalog", "objective_chart", "status"]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _batch(report: BatchReport | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        "batch": report.batch,
        "origin": report.origin,
        "at": _iso(report.at),
        "received": report.received,
        "stored": report.stored,
        "quarantined": report.quarantined,
        "rejected": report.rejected,
        "rules": dict(report.rules),
    }


def objective_chart(objective: Objective, window_label: str) -> dict[str, Any]:
    """A small Vega-Lite chart of an objective's attainment per bucket, with its target."""
    import altair as alt

    values = [(start, value) for start, value in objective.series if value is not None]
    points = [{"t": start.isoformat(), "value": value} for start, value in values]
    base = alt.Chart(alt.Data(values=points))  # type: ignore[no-untyped-call]
    lowest = min([objective.target, *(v for _, v in values)])
    floor = max(0.0, min(objective.target - (1 - objective.target), lowest) - 0.001)
    scale = alt.Scale(domain=[floor, 1.0], zero=False)
    line = base.mark_line(point=True, interpolate="step-after").encode(
        x=alt.X("t:T", title=None, axis=alt.Axis(format="%b %d %H:%M", labelAngle=0, tickCount=4)),
        y=alt.Y("value:Q", title=None, scale=scale, axis=alt.Axis(format=".1%", tickCount=3)),
        tooltip=[
            alt.Tooltip("t:T", title="from", format="%Y-%m-%d %H:%M"),
            alt.Tooltip("value:Q", title=objective.name, format=".2%"),
        ],
    )
    target = (
        alt.Chart(alt.Data(values=[{"target": objective.target}]))  # type: ignore[no-untyped-call]
        .mark_rule(strokeDash=[4, 3], color="#b45309")
        .encode(y=alt.Y("target:Q", scale=scale))
    )
    chart = (line + target).properties(
        width="container",
        height=90,
        title=alt.Title(
            f"{_TITLES[objective.name]}, last {window_label}", fontSize=11, anchor="start"
        ),
    )
    spec: dict[str, Any] = chart.to_dict()
    spec.pop("$schema", None)
    return spec


#: What an objective's good and total count.
_UNITS = {
    "availability": "queries",
    "error_rate": "queries",
    "latency": "queries",
    "freshness": "seconds",
    "defect_free": "rows",
}
_TITLES = {
    "availability": "Availability",
    "error_rate": "Queries answered",
    "latency": "Answered in time",
    "freshness": "Fresh",
    "defect_free": "Rows passing",
}


def _window_label(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds:g} seconds"


def _rows(trust: Trust, name: str) -> int:
    cur = trust._store._con.cursor()
    try:
        query = exp.select(exp.Count(this=exp.Star())).from_(stored_table(name))
        return int(cur.execute(query.sql("duckdb")).fetchall()[0][0])
    finally:
        cur.close()


def _freshness(trust: Trust, ds: ResolvedDataset, now: datetime) -> dict[str, Any] | None:
    contract = trust.contract(ds.name)
    column = contract.freshness_column or ds.definition.time
    if column is None:
        return None
    lag = trust.monitor.freshness_lag(ds.name)
    limit = contract.freshness_limit
    if limit is None and ds.definition.slo is not None:
        limit = ds.definition.slo.max_age
    newest = trust.monitor.newest(ds.name)
    return {
        "column": column,
        "newest": _iso(newest),
        "lag_seconds": lag,
        "limit_seconds": None if limit is None else limit.total_seconds(),
        "fresh": None if limit is None or lag is None else lag <= limit.total_seconds(),
    }


def status(
    trust: Trust, model: Model, now: datetime, *, tenant: str | None = None
) -> dict[str, Any]:
    """The status report: per dataset, freshness, contract results and SLO attainment
    (of one tenant when ``tenant`` is given)."""
    held = trust.quarantine.counts()
    datasets: list[dict[str, Any]] = []
    for name, ds in sorted(model.datasets.items()):
        contract = trust.contract(name)
        by_rule = trust.quarantine.by_rule(name) if name in held else {}
        tenant_key = None if ds.definition.public is True else ds.tenant_key
        rules = [
            {**rule, "held": by_rule.get(rule["rule"], 0)} for rule in contract.describe(tenant_key)
        ]
        slo = ds.definition.slo
        objectives = trust.monitor.objectives(name, tenant=tenant)
        window = slo.span.total_seconds() if slo is not None else None
        label = _window_label(window) if window else ""
        freshness = _freshness(trust, ds, now)
        held_rows = sum(held.get(name, {}).values())
        reasons: list[str] = [f"{o.name} objective missed" for o in objectives if not o.met]
        if freshness and freshness["fresh"] is False:
            reasons.append("data is stale")
        failing = bool(reasons)
        reasons += [
            f"{o.name} error budget {'used up' if o.budget_left <= 0 else 'below 25%'}"
            for o in objectives
            if o.met and o.budget_left < 0.25
        ]
        if held_rows:
            reasons.append(f"{held_rows:,} row{'s' if held_rows != 1 else ''} held in quarantine")
        warning = bool(reasons) and not failing
        datasets.append(
            {
                "name": name,
                "description": ds.definition.description,
                "owner": ds.definition.owner,
                "version": trust._store.versions.get(name, 0),
                "rows": _rows(trust, name),
                "health": "failing" if failing else "warning" if warning else "ok",
                "health_reasons": reasons,
                "freshness": freshness,
                "contract": {
                    "rules": rules,
                    "held": held_rows,
                    "reject_above": contract.reject_above,
                    "last_batch": _batch(trust.last_batch(name)),
                    "last_rejected": _batch(trust.last_rejected(name)),
                },
                "slo": None
                if slo is None
                else {
                    "window_seconds": window,
                    "window": label,
                    "objectives": [
                        {
                            "name": o.name,
                            "description": o.description,
                            "target": o.target,
                            "attainment": o.attainment,
                            "met": o.met,
                            "good": o.good,
                            "total": o.total,
                            "budget_left": o.budget_left,
                            "unit": _UNITS[o.name],
                            "chart": objective_chart(o, label),
                        }
                        for o in objectives
                    ],
                },
            }
        )
    return {"generated_at": now.isoformat(), "tenant": tenant, "datasets": datasets}


def _sql(tree: exp.Expr | None) -> str | None:
    return None if tree is None else tree.sql("duckdb", pretty=False)


def _member(m: Member, sql: str | None, hidden: Mapping[str, str]) -> dict[str, Any]:
    rules = sorted({hidden[c] for c in m.columns if c in hidden})
    return {
        "name": m.qualified,
        "title": m.title or m.name.replace("_", " ").capitalize(),
        "description": m.description,
        "type": m.agg if m.kind == "measure" else m.value_kind,
        "format": m.format,
        "sql": sql,
        "visible_when": " and ".join(rules) or None,
    }


def catalog(trust: Trust, model: Model, now: datetime) -> dict[str, Any]:
    """Every dataset as a data product: what it is, who owns it, what it promises, and
    what each of its measures means, in words and in SQL."""
    products: list[dict[str, Any]] = []
    for name, ds in sorted(model.datasets.items()):
        d = ds.definition
        hidden: dict[str, str] = {}
        for rule in d.column_rules:
            allowed = " or ".join(repr(a) for a in rule.allow)
            for column in rule.columns:
                hidden[column] = f"{rule.claim} is {allowed}"
        members = sorted(ds.members.values(), key=lambda m: m.name)

        def lookup(qualified: str, ds: ResolvedDataset = ds) -> Member:
            found = model.member(qualified) or ds.members.get(qualified)
            assert found is not None
            return found

        measures = [
            _member(m, _sql(measure_expression(m, lookup)), hidden)
            for m in members
            if m.kind == "measure"
        ]
        dimensions = [
            _member(m, _sql(m.tree), hidden) for m in members if m.kind in ("dimension", "time")
        ]
        segments = [
            {"name": m.qualified, "description": m.description, "sql": _sql(m.tree)}
            for m in members
            if m.kind == "segment"
        ]
        slo = d.slo
        tenant_key = None if d.public is True else d.tenant_key
        products.append(
            {
                "name": name,
                "description": d.description,
                "owner": d.owner,
                "tenant_key": tenant_key,
                "public": d.public is True,
                "primary_key": list(d.primary_key_columns),
                "time": d.time,
                "columns": [
                    {"name": c, "type": t, "visible_when": hidden.get(c)}
                    for c, t in ds.columns.items()
                ],
                "contract": trust.contract(name).describe(tenant_key),
                "slo": []
                if slo is None
                else [
                    {
                        "name": n,
                        "target": t,
                        "window": _window_label(slo.span.total_seconds()),
                        "description": f"{describe(slo, n, t)} over "
                        f"{_window_label(slo.span.total_seconds())}",
                    }
                    for n, t in slo.objectives()
                ],
                "measures": measures,
                "dimensions": dimensions,
                "segments": segments,
                "joins": [
                    {"to": j.to, "relationship": j.relationship, "on": _join_on(j)} for j in d.joins
                ],
            }
        )
    return {"generated_at": now.isoformat(), "datasets": products}


def _join_on(join: Any) -> Any:
    on = getattr(join, "on", None)
    if isinstance(on, Mapping):
        return dict(on)
    return on
