"""The resolved model: registered datasets, their checked members, and the joins.

:mod:`embedkit.semantic.validate` builds it from definitions and the stored
schemas; the scoping step and the compilers read it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from sqlglot import exp

from embedkit.dataset import Dataset

__all__ = [
    "Member",
    "MemberKind",
    "Model",
    "ResolvedDataset",
    "SchemaProbe",
    "ValueKind",
    "aggregate",
    "measure_expression",
    "value_kind",
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


def aggregate(agg: str, inner: exp.Expr | None, flt: exp.Expr | None) -> exp.Expr:
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
    agg = aggregate(member.agg or "count", member.tree, member.filter)
    if member.agg == "sum" and member.value_kind == "integer":
        # DuckDB sums integers as HUGEINT (a decimal in Arrow); BIGINT is what users expect.
        agg = exp.Cast(this=agg, to=exp.DataType.build("BIGINT"))
    return agg
