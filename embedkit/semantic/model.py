"""The resolved model: datasets checked against their stored schemas.

:func:`resolve` takes dataset definitions and a schema probe (the store that
holds the rows) and returns a :class:`Model`, or raises one
:class:`~embedkit.errors.ModelError` that lists *every* problem found, each
naming the dataset, the member and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from sqlglot import exp

from embedkit.dataset import NAME_PATTERN, Dataset
from embedkit.errors import ModelError, Problem
from embedkit.semantic.expressions import parse_expression, safe_arithmetic
from embedkit.semantic.members import AGGREGATIONS

__all__ = [
    "Member",
    "MemberKind",
    "Model",
    "ResolvedDataset",
    "SchemaProbe",
    "ValueKind",
    "resolve",
]

MemberKind = Literal["dimension", "time", "measure", "segment"]
ValueKind = Literal[
    "string", "integer", "number", "boolean", "date", "timestamp", "timestamptz", "other"
]


class SchemaProbe(Protocol):
    """What the model needs from the store to check definitions."""

    def columns(self, dataset: str) -> Mapping[str, str]: ...

    def expression_type(self, dataset: str, expression: exp.Expr) -> str: ...

    def duplicate_keys(self, dataset: str, columns: Sequence[str]) -> int: ...


def value_kind(dtype: str) -> ValueKind:
    """Classify a DuckDB type name for filtering and binding."""
    t = dtype.upper()
    if t in ("VARCHAR", "TEXT", "STRING", "UUID") or t.startswith("ENUM"):
        return "string"
    if t in (
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
    ):
        return "integer"
    if t in ("FLOAT", "DOUBLE", "REAL") or t.startswith("DECIMAL"):
        return "number"
    if t == "BOOLEAN":
        return "boolean"
    if t == "DATE":
        return "date"
    if t in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return "timestamptz"
    if t.startswith("TIMESTAMP"):
        return "timestamp"
    return "other"


@dataclass(frozen=True)
class Member:
    """A checked member of a dataset, ready for scoping and compiling."""

    dataset: str
    name: str
    kind: MemberKind
    tree: exp.Expr | None
    agg: str | None = None
    filter: exp.Expr | None = None
    depends_on: tuple[str, ...] = ()
    columns: frozenset[str] = frozenset()
    dtype: str = ""
    value_kind: ValueKind = "other"
    title: str | None = None
    description: str = ""
    format: str | None = None

    @property
    def qualified(self) -> str:
        return f"{self.dataset}.{self.name}"


@dataclass(frozen=True)
class ResolvedDataset:
    """A registered dataset with its schema and checked members."""

    definition: Dataset
    columns: Mapping[str, str]
    members: Mapping[str, Member]

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def tenant_key(self) -> str | None:
        return self.definition.tenant_key

    def column_kind(self, column: str) -> ValueKind:
        return value_kind(self.columns[column])


@dataclass(frozen=True)
class Edge:
    """A join that can be walked without repeating rows of the side it starts from."""

    source: str
    target: str
    on: tuple[tuple[str, str], ...]  # (source column, target column)


@dataclass(frozen=True)
class Model:
    """All registered datasets, their members and the walkable joins between them."""

    datasets: Mapping[str, ResolvedDataset]
    edges: tuple[Edge, ...] = ()
    fanout: tuple[Edge, ...] = field(default=())

    def member(self, qualified: str) -> Member | None:
        dataset, _, name = qualified.partition(".")
        ds = self.datasets.get(dataset)
        return ds.members.get(name) if ds else None

    def members(self, kinds: Iterable[MemberKind]) -> list[Member]:
        wanted = set(kinds)
        return [m for ds in self.datasets.values() for m in ds.members.values() if m.kind in wanted]


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, dataset: str, member: str | None, message: str, fix: str | None = None) -> None:
        self.problems.append(Problem(dataset, member, message, fix))


def _columns_list(columns: Mapping[str, str]) -> str:
    return ", ".join(columns)


def resolve(
    definitions: Sequence[Dataset], probe: SchemaProbe, *, existing: Model | None = None
) -> Model:
    """Check ``definitions`` (plus an ``existing`` model) and return the combined model."""
    out = _Collector()
    resolved: dict[str, ResolvedDataset] = dict(existing.datasets) if existing else {}
    for ds in definitions:
        resolved_ds = _resolve_dataset(ds, probe, out)
        if resolved_ds is not None:
            resolved[ds.name] = resolved_ds
    edges, fanout = _resolve_joins(definitions, resolved, probe, out, existing)
    if out.problems:
        raise ModelError(out.problems)
    return Model(datasets=resolved, edges=edges, fanout=fanout)


def _resolve_dataset(ds: Dataset, probe: SchemaProbe, out: _Collector) -> ResolvedDataset | None:
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
            f"column '{ds.tenant_key}' does not exist; columns are: {_columns_list(columns)}",
            "name an existing column",
        )
    # A bad `time` column is reported once, by the time dimension made from it.
    for col in ds.primary_key_columns:
        if col not in columns:
            out.add(
                name,
                "primary_key",
                f"column '{col}' does not exist; columns are: {_columns_list(columns)}",
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
                f"{_columns_list(columns)}",
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
    _resolve_measures(ds, columns, members, scalar, typed, out)
    for rule in ds.row_rules:
        if rule.column not in columns:
            out.add(
                name,
                f"row rule on '{rule.column}'",
                f"names a column that does not exist; columns are: {_columns_list(columns)}",
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
                    f"names a column that does not exist; columns are: {_columns_list(columns)}",
                )
        if ds.tenant_key in crule.columns:
            out.add(
                name,
                f"column rule on '{ds.tenant_key}'",
                "hides the tenant key",
                "the tenant key is needed for scoping; hide the members instead",
            )
    return ResolvedDataset(definition=ds, columns=dict(columns), members=members)


Scalar = Callable[[str, str, str], "tuple[exp.Expr, frozenset[str]] | None"]
Typed = Callable[[str, str, exp.Expr], "str | None"]


def _resolve_measures(
    ds: Dataset,
    columns: Mapping[str, str],
    members: dict[str, Member],
    scalar: Scalar,
    typed: Typed,
    out: _Collector,
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
                f"'{m.agg}', sql='<column>'); columns are: {_columns_list(columns)}",
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
        probe_tree = _aggregate(m.agg, inner, flt)
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


def _aggregate(agg: str, inner: exp.Expr | None, flt: exp.Expr | None) -> exp.Expr:
    """The aggregate a measure compiles to (columns unqualified)."""
    value: exp.Expr = inner.copy() if inner is not None else exp.Literal.number(1)
    if flt is not None:
        value = exp.Case(ifs=[exp.If(this=flt.copy(), true=value)])
    if agg == "count":
        if inner is None and flt is None:
            return exp.Count(this=exp.Star())
        return exp.Count(this=value)
    if agg == "count_distinct":
        return exp.Count(this=exp.Distinct(expressions=[value]))
    func = {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max}[agg]
    return func(this=value)


aggregate = _aggregate


def measure_expression(member: Member, lookup: Callable[[str], Member]) -> exp.Expr:
    """The whole aggregate of a measure over its dataset's (unqualified) columns.

    A derived measure has its dependencies (found by ``lookup`` of their names)
    substituted; integer sums are cast to BIGINT. Divisions are left as written:
    the caller makes them safe with :func:`~embedkit.semantic.expressions.safe_arithmetic`.
    """
    if member.agg == "derived":
        assert member.tree is not None
        out = member.tree.copy()
        for column in list(out.find_all(exp.Column)):
            dependency = exp.Paren(this=measure_expression(lookup(column.name), lookup))
            if column is out:
                out = dependency
            else:
                column.replace(dependency)
        return out
    agg = _aggregate(member.agg or "count", member.tree, member.filter)
    if member.agg == "sum" and member.value_kind == "integer":
        # DuckDB sums integers as HUGEINT (a decimal in Arrow); BIGINT is what users expect.
        agg = exp.Cast(this=agg, to=exp.DataType.build("BIGINT"))
    return agg


def _resolve_joins(
    definitions: Sequence[Dataset],
    resolved: Mapping[str, ResolvedDataset],
    probe: SchemaProbe,
    out: _Collector,
    existing: Model | None,
) -> tuple[tuple[Edge, ...], tuple[Edge, ...]]:
    edges: list[Edge] = list(existing.edges) if existing else []
    fanout: list[Edge] = list(existing.fanout) if existing else []
    for ds in definitions:
        for j in ds.joins:
            label = f"join to '{j.to}'"
            target = resolved.get(j.to)
            source = resolved.get(ds.name)
            if target is None:
                out.add(
                    ds.name,
                    label,
                    f"names dataset '{j.to}', which is not registered; "
                    f"datasets are: {', '.join(sorted(resolved))}",
                    "register the target dataset in the same call or before",
                )
                continue
            if source is None:
                continue
            if not j.on:
                out.add(
                    ds.name, label, "has no 'on' columns", "e.g. on={'product_id': 'product_id'}"
                )
                continue
            bad = False
            for left, right in j.pairs():
                if left not in source.columns:
                    out.add(
                        ds.name,
                        label,
                        f"uses column '{left}', which does not exist in "
                        f"'{ds.name}'; columns are: {_columns_list(source.columns)}",
                    )
                    bad = True
                if right not in target.columns:
                    out.add(
                        ds.name,
                        label,
                        f"uses column '{right}', which does not exist in "
                        f"'{j.to}'; columns are: {_columns_list(target.columns)}",
                    )
                    bad = True
            if bad:
                continue
            if j.relationship not in ("many_to_one", "one_to_one", "one_to_many"):
                out.add(
                    ds.name,
                    label,
                    f"has relationship '{j.relationship}'",
                    "use many_to_one, one_to_one or one_to_many",
                )
                continue
            forward = Edge(ds.name, j.to, j.pairs())
            backward = Edge(j.to, ds.name, tuple((r, le) for le, r in j.pairs()))
            # The "one" side of a join must really be unique, or the join repeats rows.
            one_sides = {
                "many_to_one": [forward],
                "one_to_many": [backward],
                "one_to_one": [forward, backward],
            }[j.relationship]
            for edge in one_sides:
                keys = [r for _, r in edge.on]
                tenant = resolved[edge.target].tenant_key
                check = [tenant, *keys] if tenant and tenant not in keys else keys
                dupes = probe.duplicate_keys(edge.target, check)
                if dupes:
                    out.add(
                        ds.name,
                        label,
                        f"is declared {j.relationship}, but '{edge.target}' has "
                        f"{dupes} duplicate key{'s' if dupes > 1 else ''} on "
                        f"({', '.join(check)}), so the join would repeat rows",
                        "make the key unique in the source, or declare the relationship "
                        "the other way",
                    )
                    bad = True
            if bad:
                continue
            edges.extend(one_sides)
            fanout.extend(e for e in (forward, backward) if e not in one_sides)
    return tuple(edges), tuple(fanout)


def _quote(column: str) -> str:
    return exp.column(column, quoted=True).sql("duckdb")
