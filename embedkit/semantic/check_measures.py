"""Checking measures: aggregations, filtered aggregations and derived measures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from sqlglot import exp

from embedkit.dataset import Dataset
from embedkit.semantic.checks import Collector, Scalar, Typed, columns_list
from embedkit.semantic.expressions import parse_expression, safe_arithmetic
from embedkit.semantic.members import AGGREGATIONS
from embedkit.semantic.model import Member, aggregate, measure_expression, value_kind

__all__ = ["resolve_measures"]


def resolve_measures(
    ds: Dataset,
    columns: Mapping[str, str],
    members: dict[str, Member],
    scalar: Scalar,
    typed: Typed,
    out: Collector,
) -> None:
    name = ds.name
    derived = {m.name: m for m in ds.measures if m.agg == "derived"}
    for m in ds.measures:
        label = f"measure '{m.name}'"
        if m.agg not in AGGREGATIONS:
            out.add(
                name, label, f"has aggregation '{m.agg}'", f"use one of: {', '.join(AGGREGATIONS)}"
            )
            continue
        if m.agg == "derived":
            continue
        if m.agg != "count" and not m.sql:
            out.add(
                name,
                label,
                f"is a {m.agg} but has no sql",
                f"e.g. Measure('{m.name}', "
                f"'{m.agg}', sql='<column>'); columns are: {columns_list(columns)}",
            )
            continue
        inner: exp.Expr | None = None
        cols: frozenset[str] = frozenset()
        if m.sql:
            got = scalar(m.name, "measure", m.sql)
            if not got:
                continue
            inner, cols = got
        flt: exp.Expr | None = None
        if m.filter:
            got = scalar(m.name, "measure", m.filter)
            if not got:
                continue
            flt, fcols = got
            cols = cols | fcols
            if (ftype := typed(m.name, "measure", flt)) and ftype != "BOOLEAN":
                out.add(
                    name,
                    label,
                    f"has filter of type {ftype}, not a condition",
                    "write a condition such as status = 'returned'",
                )
                continue
        probe_tree = aggregate(m.agg, inner, flt)
        if dtype := typed(m.name, "measure", probe_tree):
            if m.agg == "sum" and dtype == "HUGEINT":
                dtype = "BIGINT"  # the compiler casts integer sums to BIGINT
            members[m.name] = Member(
                name,
                m.name,
                "measure",
                inner,
                agg=m.agg,
                filter=flt,
                columns=cols,
                dtype=dtype,
                value_kind=value_kind(dtype),
                title=m.title,
                description=m.description,
                format=m.format,
            )
    # Derived measures: arithmetic of other measures, resolved in dependency order.
    pending = dict(derived)
    parsed: dict[str, tuple[exp.Expr, frozenset[str]]] = {}
    for mname, m in derived.items():
        label = f"measure '{mname}'"
        if m.filter:
            out.add(
                name,
                label,
                "is derived and has a filter",
                "put the filter on the measures it is computed from",
            )
            pending.pop(mname)
            continue
        if not m.sql:
            out.add(
                name,
                label,
                "is derived but has no sql",
                "e.g. sql='returned / orders' over other measures of this dataset",
            )
            pending.pop(mname)
            continue
        try:
            p = parse_expression(m.sql)
        except ValueError as err:
            out.add(name, label, str(err))
            pending.pop(mname)
            continue
        known = {x.name for x in ds.measures}
        unknown = sorted(p.names - known)
        if unknown:
            out.add(
                name,
                label,
                f"refers to {', '.join(repr(u) for u in unknown)}, which "
                f"{'are not measures' if len(unknown) > 1 else 'is not a measure'} of "
                f"'{name}'; measures are: {', '.join(sorted(known - {mname}))}",
                "a derived measure is arithmetic of other measures of the same dataset",
            )
            pending.pop(mname)
            continue
        parsed[mname] = (p.tree, p.names)
    progress = True
    while pending and progress:
        progress = False
        for mname in list(pending):
            if mname not in parsed:
                pending.pop(mname)
                continue
            tree, deps = parsed[mname]
            if all(d in members for d in deps):
                cols = frozenset().union(*(members[d].columns for d in deps))
                member = Member(
                    name,
                    mname,
                    "measure",
                    tree,
                    agg="derived",
                    depends_on=tuple(sorted(deps)),
                    columns=cols,
                    title=pending[mname].title,
                    description=pending[mname].description,
                    format=pending[mname].format,
                )
                pending.pop(mname)
                progress = True
                whole = safe_arithmetic(measure_expression(member, members.__getitem__))
                if dtype := typed(mname, "measure", whole):
                    members[mname] = replace(member, dtype=dtype, value_kind=value_kind(dtype))
            elif any(d not in members and d not in pending for d in deps):
                pending.pop(mname)  # depends on a broken measure, already reported
                progress = True
    for mname in pending:
        out.add(
            name,
            f"measure '{mname}'",
            f"is part of a cycle of derived measures ({' -> '.join(sorted(pending))})",
            "break the cycle",
        )
