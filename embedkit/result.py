"""What a query returns: an Arrow table named by member, and how it was made."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pyarrow as pa

__all__ = ["QueryResult"]


@dataclass(frozen=True)
class QueryResult:
    """The rows of one query and how they were made.

    ``table`` has one column per requested member, named after it
    (``orders.revenue``, ``orders.ordered_at.day``). Its schema metadata carries
    the SQL, timings and data versions too, so they travel with the table.

    ``data_versions`` holds the version of each dataset read as the principal's
    tenant sees it: it grows with every change of rows that tenant can read and
    with no other (``EmbedKit.data_versions`` counts every change).

    ``cache`` says whether the rows came from the result cache (``"hit"``), were
    computed and cached (``"miss"``), or the cache was not used (``"off"``).
    With ``compare="previous_period"``, ``previous`` holds the period before;
    with ``compareDateRange``, ``comparisons`` holds one result per further range.
    ``date_range`` says which range a result covers when ranges were compared.
    """

    table: pa.Table
    sql: str
    engine: str
    timings: Mapping[str, float]
    data_versions: Mapping[str, int]
    total: int | None = None
    cache: str = "off"  # "hit", "miss", or "off" (no result cache, or the Polars engine)
    rollup: str | None = None  # the rollup dataset that answered, if one did
    previous: QueryResult | None = None
    comparisons: tuple[QueryResult, ...] = field(default=())
    date_range: str | tuple[str, ...] | None = None

    @property
    def num_rows(self) -> int:
        """How many rows the result holds."""
        return int(self.table.num_rows)

    def to_polars(self) -> pl.DataFrame:
        """The rows as a Polars DataFrame."""
        frame = pl.from_arrow(self.table)
        assert isinstance(frame, pl.DataFrame)
        return frame

    def to_pylist(self) -> list[dict[str, Any]]:
        """The rows as a list of dicts (small results only)."""
        return list(self.table.to_pylist())


def with_metadata(
    table: pa.Table,
    *,
    sql: str,
    engine: str,
    timings: Mapping[str, float],
    data_versions: Mapping[str, int],
) -> pa.Table:
    meta = {
        b"embedkit.sql": sql.encode(),
        b"embedkit.engine": engine.encode(),
        b"embedkit.timings": json.dumps(dict(timings)).encode(),
        b"embedkit.data_versions": json.dumps(dict(data_versions)).encode(),
    }
    return table.replace_schema_metadata(meta)
