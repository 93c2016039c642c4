"""Checking definitions against the stored schemas: (datasets, store) -> Model.

:func:`resolve` takes dataset definitions and a schema probe (the store that
holds the rows) and returns a :class:`~embedkit.semantic.model.Model`, or raises
one :class:`~embedkit.errors.ModelError` that lists *every* problem found, each
naming the dataset, the member and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from embedkit.dataset import NAME_PATTERN, Dataset
from embedkit.errors import ModelError
from embedkit.semantic.check_joins import resolve_joins
from embedkit.semantic.check_measures import resolve_measures
from embedkit.semantic.checks import Collector, columns_list
from embedkit.semantic.expressions import parse_expression
from embedkit.semantic.model import (
    Member,
    Model,
    ResolvedDataset,
    SchemaProbe,
    value_kind,
)

__all__ = ["resolve"]


def resolve(
    definitions: Sequence[Dataset], probe: SchemaProbe, *, existing: Model | None = None
) -> Model:
    """Check ``definitions`` (plus an ``existing`` model) and return the combined model."""
    out = Collector()
    resolved: dict[str, ResolvedDataset] = dict(existing.datasets) if existing else {}
    for ds in definitions:
        resolved_ds = _resolve_dataset(ds, probe, out)
        if resolved_ds is not None:
            resolved[ds.name] = resolved_ds
    edges, fanout = resolve_joins(definitions, resolved, probe, out, existing)
    if out.problems:
        raise ModelError(out.problems)
    return Model(datasets=resolved, edges=edges, fanout=fanout)


def _resolve_dataset(ds: Dataset, probe: SchemaProbe, out: Collector) -> ResolvedDataset | None:
    columns = probe.columns(ds.name)
    name = ds.name
    if not isinstance(ds.public, bool):
        out.add(
            name,
            "public",
            f"is {ds.public!r}, not true or false",
            "write public=True only for data every tenant may read",
        )
    elif ds.public and ds.tenant_key:
        out.add(
            name,
            None,
            "is declared public and also has a tenant key",
            "drop public=True to scope it by tenant, or drop tenant_key",
        )
    elif not ds.public and not ds.tenant_key:
        out.add(
            name,
            None,
            "has no tenant key, so no tenant could be limited to its own rows",
            "pass tenant_key='<column>', or public=True if every tenant may read every row",
        )
    if ds.tenant_key and ds.tenant_key not in columns:
        out.add(
            name,
            "tenant_key",
            f"column '{ds.tenant_key}' does not exist; columns are: {columns_list(columns)}",
            "name an existing column",
        )
    # A bad `time` column is reported once, by the time dimension made from it.
    for col in ds.primary_key_columns:
        if col not in columns:
            out.add(
                name,
                "primary_key",
                f"column '{col}' does not exist; columns are: {columns_list(columns)}",
            )

    members: dict[str, Member] = {}
    declared: list[tuple[str, str]] = [("dimension", d.name) for d in ds.dimensions]
    declared += [("time dimension", t.name) for t in ds.all_time_dimensions()]
    declared += [("measure", m.name) for m in ds.measures]
    declared += [("segment", s.name) for s in ds.segments]
    seen: dict[str, str] = {}
    for kind, member in declared:
        if not NAME_PATTERN.match(member):
            out.add(
                name,
                f"{kind} '{member}'",
                "is not a valid name",
                "use letters, digits and underscores, starting with a letter",
            )
        if member in seen:
            out.add(
                name,
                f"{kind} '{member}'",
                f"is defined twice (also as a {seen[member]})",
                "give each member of a dataset a unique name",
            )
        seen[member] = kind

    def scalar(member: str, kind: str, text: str) -> tuple[exp.Expr, frozenset[str]] | None:
        try:
            parsed = parse_expression(text)
        except ValueError as err:
            out.add(name, f"{kind} '{member}'", str(err))
            return None
        missing = sorted(parsed.names - set(columns))
        if missing:
            out.add(
                name,
                f"{kind} '{member}'",
                f"refers to column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(repr(m) for m in missing)}, which "
                f"{'do' if len(missing) > 1 else 'does'} not exist; columns are: "
                f"{columns_list(columns)}",
                "use one of the listed columns",
            )
            return None
        return parsed.tree, parsed.names

    def typed(member: str, kind: str, tree: exp.Expr) -> str | None:
        try:
            return probe.expression_type(name, tree)
        except ValueError as err:
            out.add(name, f"{kind} '{member}'", f"cannot be evaluated: {err}")
            return None

    for d in ds.dimensions:
        got = scalar(d.name, "dimension", d.sql or _quote(d.name))
        if got and (dtype := typed(d.name, "dimension", got[0])):
            members[d.name] = Member(
                name,
                d.name,
                "dimension",
                got[0],
                columns=got[1],
                dtype=dtype,
                value_kind=value_kind(dtype),
                title=d.title,
                description=d.description,
            )
    declared_times = {t.name for t in ds.time_dimensions}
    for t in ds.all_time_dimensions():
        implicit = t.name == ds.time and t.name not in declared_times
        got = scalar(t.name, "time dimension", t.sql or _quote(t.name))
        if got and (dtype := typed(t.name, "time dimension", got[0])):
            kind = value_kind(dtype)
            if kind not in ("date", "timestamp", "timestamptz"):
                if implicit:
                    out.add(
                        name,
                        "time",
                        f"column '{t.name}' is {dtype}, not a date or timestamp",
                        "name a DATE or TIMESTAMP column, or cast it in the source",
                    )
                else:
                    out.add(
                        name,
                        f"time dimension '{t.name}'",
                        f"is {dtype}, not a date or timestamp",
                        "use a DATE/TIMESTAMP column, or declare it as a plain dimension",
                    )
                continue
            members[t.name] = Member(
                name,
                t.name,
                "time",
                got[0],
                columns=got[1],
                dtype=dtype,
                value_kind=kind,
                title=t.title,
                description=t.description,
            )
    for s in ds.segments:
        got = scalar(s.name, "segment", s.sql)
        if got and (dtype := typed(s.name, "segment", got[0])):
            if dtype != "BOOLEAN":
                out.add(
                    name,
                    f"segment '{s.name}'",
                    f"is {dtype}, not a condition",
                    "write a condition such as status = 'completed'",
                )
                continue
            members[s.name] = Member(
                name,
                s.name,
                "segment",
                got[0],
                columns=got[1],
                dtype=dtype,
                value_kind="boolean",
                description=s.description,
            )
    resolve_measures(ds, columns, members, scalar, typed, out)
    for rule in ds.row_rules:
        if rule.column not in columns:
            out.add(
                name,
                f"row rule on '{rule.column}'",
                f"names a column that does not exist; columns are: {columns_list(columns)}",
            )
        if rule.operator not in ("in", "equals"):
            out.add(
                name,
                f"row rule on '{rule.column}'",
                f"has operator '{rule.operator}'",
                "use 'in' or 'equals'",
            )
    for crule in ds.column_rules:
        for col in crule.columns:
            if col not in columns:
                out.add(
                    name,
                    f"column rule on '{col}'",
                    f"names a column that does not exist; columns are: {columns_list(columns)}",
                )
        if ds.tenant_key in crule.columns:
            out.add(
                name,
                f"column rule on '{ds.tenant_key}'",
                "hides the tenant key",
                "the tenant key is needed for scoping; hide the members instead",
            )
    return ResolvedDataset(definition=ds, columns=dict(columns), members=members)


def _quote(column: str) -> str:
    return exp.column(column, quoted=True).sql("duckdb")
