"""Datasets: named, owned, tenant-scoped sources of rows (data products).

A :class:`Dataset` is a definition only. Registering it with an
:class:`~embedkit.EmbedKit` loads its rows into DuckDB, sorted by tenant key and
then time, and checks every member against the stored schema.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedkit.live.policy import Retention
from embedkit.security.rules import ColumnRule, RowRule
from embedkit.semantic.members import Dimension, Join, Measure, Rollup, Segment, TimeDimension
from embedkit.trust.contract import Contract

if TYPE_CHECKING:
    from embedkit.trust.slo import SLO

__all__ = ["SQL", "Dataset", "FileFormat", "Source", "load_order"]

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class SQL:
    """A dataset defined as a SQL query over other registered datasets.

    The query is written by the app developer, parsed with sqlglot and may read
    only registered datasets (by name). It is materialised when registered.
    """

    query: str


FileFormat = str  # "parquet" | "csv" | "tsv" | "ndjson" | "json" (one array of objects)

#: What a dataset can be built from: a path or glob (Parquet, CSV, NDJSON), a
#: pyarrow Table, a Polars DataFrame or LazyFrame, or :class:`SQL` over other datasets.
Source = Any


@dataclass(frozen=True, eq=False)
class Dataset:
    """A named source of rows with its tenant key, semantic members and rules.

    Args:
        name: identifier used in member names (``orders.revenue``).
        source: a path or glob (``.parquet``, ``.csv``, ``.ndjson``/``.jsonl``), a
            ``pyarrow.Table``, a ``polars.DataFrame``/``LazyFrame``, or :class:`SQL`.
        tenant_key: the column holding the tenant id. Required unless ``public=True``.
        public: say so explicitly for data every tenant may read (a calendar,
            a product catalogue shared by all).
        primary_key: column or columns that identify a row.
        time: the main time column; it becomes a time dimension and rows are
            clustered by it after the tenant key.
        format: file format when the extension does not tell.
        contract: the :class:`~embedkit.Contract` its rows must satisfy; rows that
            break it are quarantined, never served (see docs/trust.md).
        slo: the :class:`~embedkit.SLO` it promises (availability, latency,
            freshness, defect rate), measured continuously.
        rollups: :class:`~embedkit.Rollup` pre-aggregations, stored and refreshed
            with the dataset and used automatically when they answer a query exactly.
        retention: a :class:`~embedkit.Retention`: raw rows older than its ``keep``
            are rolled up into coarser rows (``kit.apply_retention()``, and while
            streaming), so a dataset fed by a stream stays bounded.
    """

    name: str
    source: Source
    tenant_key: str | None = None
    public: bool = False
    primary_key: str | Sequence[str] | None = None
    time: str | None = None
    description: str = ""
    owner: str = ""
    dimensions: Sequence[Dimension] = ()
    time_dimensions: Sequence[TimeDimension] = ()
    measures: Sequence[Measure] = ()
    segments: Sequence[Segment] = ()
    joins: Sequence[Join] = ()
    row_rules: Sequence[RowRule] = ()
    column_rules: Sequence[ColumnRule] = ()
    format: FileFormat | None = None
    contract: Contract | None = None
    slo: SLO | None = None
    rollups: Sequence[Rollup] = ()
    retention: Retention | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"Dataset({self.name!r})"
        if not isinstance(self.name, str):
            raise TypeError(f"{where}: the name must be a string such as 'orders'")
        for field_name in ("tenant_key", "time"):
            value = getattr(self, field_name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{where}: {field_name} must be one column name, got {value!r}")
        key = self.primary_key
        if (
            key is not None
            and not isinstance(key, str)
            and not (isinstance(key, Sequence) and all(isinstance(c, str) for c in key))
        ):
            raise TypeError(f"{where}: primary_key must be a column name or a list of them")
        if self.contract is not None and not isinstance(self.contract, Contract):
            raise TypeError(f"{where}: contract must be a Contract(...), got {self.contract!r}")
        from embedkit.trust.slo import SLO

        if self.slo is not None and not isinstance(self.slo, SLO):
            raise TypeError(f"{where}: slo must be an SLO(...), got {self.slo!r}")
        if self.retention is not None and not isinstance(self.retention, Retention):
            raise TypeError(f"{where}: retention must be a Retention(...), got {self.retention!r}")
        # Shorthand: dimensions=["status"] means Dimension("status").
        dims = tuple(Dimension(d) if isinstance(d, str) else d for d in self.dimensions)
        object.__setattr__(self, "dimensions", dims)
        expected: dict[str, type] = {
            "dimensions": Dimension,
            "time_dimensions": TimeDimension,
            "measures": Measure,
            "segments": Segment,
            "joins": Join,
            "row_rules": RowRule,
            "column_rules": ColumnRule,
            "rollups": Rollup,
        }
        for field_name, kind in expected.items():
            items = getattr(self, field_name)
            if isinstance(items, str | kind) or not isinstance(items, Sequence):
                raise TypeError(f"{where}: {field_name} must be a list of {kind.__name__}")
            bad = [i for i in items if not isinstance(i, kind)]
            if bad:
                raise TypeError(
                    f"{where}: {field_name} holds {bad[0]!r}; use {kind.__name__}(...) entries"
                )
            object.__setattr__(self, field_name, tuple(items))

    @property
    def primary_key_columns(self) -> tuple[str, ...]:
        """The primary key as a tuple of column names (empty when there is none)."""
        if self.primary_key is None:
            return ()
        if isinstance(self.primary_key, str):
            return (self.primary_key,)
        return tuple(self.primary_key)

    def all_time_dimensions(self) -> tuple[TimeDimension, ...]:
        """Declared time dimensions, plus one for ``time`` if it is not declared."""
        declared = tuple(self.time_dimensions)
        if self.time and all(td.name != self.time for td in declared):
            return (TimeDimension(self.time), *declared)
        return declared


def file_format(dataset: Dataset) -> FileFormat | None:
    """The file format of a path source, from ``format`` or the file extension."""
    if dataset.format:
        return dataset.format
    if not isinstance(dataset.source, str | Path):
        return None
    suffix = str(dataset.source).lower()
    for ext, fmt in (
        (".parquet", "parquet"),
        (".pq", "parquet"),
        (".csv", "csv"),
        (".tsv", "tsv"),
        (".ndjson", "ndjson"),
        (".jsonl", "ndjson"),
        (".json", "json"),
    ):
        if suffix.endswith(ext):
            return fmt
    return None


def load_order(datasets: Sequence[Dataset]) -> list[Dataset]:
    """Datasets in the order they can load: files before SQL over them, and a dataset
    before those whose contract references it (cycles keep the given order)."""
    ordered = sorted(datasets, key=lambda d: isinstance(d.source, SQL))
    names = {d.name for d in ordered}
    placed: list[Dataset] = []
    pending = list(ordered)
    while pending:
        for ds in pending:
            targets = {
                t.partition(".")[0]
                for t in (ds.contract.references.values() if ds.contract else ())
            }
            waiting = (targets & names) - {p.name for p in placed} - {ds.name}
            if not waiting:
                break
        else:
            ds = pending[0]
        pending.remove(ds)
        placed.append(ds)
    return placed
