"""A database file keeps its datasets: reopening it reuses the stored rows (appends
included) while the source files are unchanged, and reads them again when not."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

import embedkit as ek

T0 = datetime(2026, 11, 1)


def write_source(path: Path, homes: list[int]) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "home": homes,
            "reading_id": list(range(len(homes))),
            "kwh": [1.0 + i for i in range(len(homes))],
            "at": [T0] * len(homes),
        }
    )
    frame.write_parquet(path)
    return frame


def dataset(path: Path, **kw: object) -> ek.Dataset:
    options: dict[str, object] = {
        "tenant_key": "home",
        "time": "at",
        "dimensions": ["reading_id"],
        "measures": [ek.Measure("kwh", "sum", sql="kwh"), ek.Measure("count", "count")],
        "contract": ek.Contract(ranges={"kwh": (0, 100)}, reject_above=0.5),
    }
    options.update(kw)
    return ek.Dataset("energy", str(path), **options)  # type: ignore[arg-type]


def totals(kit: ek.EmbedKit, home: int) -> dict[str, object]:
    result = kit.query({"measures": ["energy.count", "energy.kwh"]}, principal=ek.Principal(home))
    row: dict[str, object] = result.to_pylist()[0]
    return row


@pytest.mark.parametrize("shard_rows", [3, 1_000_000])
def test_reopening_reuses_rows_and_appends_while_the_source_is_unchanged(
    tmp_path: Path, shard_rows: int
) -> None:
    source = tmp_path / "energy.parquet"
    frame = write_source(source, [1, 1, 2, 2, 3, 3, 3, 4])
    database = tmp_path / "analytics.duckdb"
    kit = ek.EmbedKit(dataset(source), database=database, shard_rows=shard_rows)
    kit.append(
        "energy",
        [
            {"home": 5, "reading_id": 100, "kwh": 9.0, "at": T0},
            {"home": 2, "reading_id": 101, "kwh": 5.0, "at": T0},
            {"home": 2, "reading_id": 102, "kwh": -1.0, "at": T0},  # held
        ],
    )
    assert kit.data_versions == {"energy": 2}
    before = {home: totals(kit, home) for home in range(1, 6)}
    kit.close()

    # A new process: same file, same source. The rows come back as they were stored.
    again = ek.EmbedKit(dataset(source), database=database, shard_rows=shard_rows)
    assert again.data_versions == {"energy": 2}
    assert {home: totals(again, home) for home in range(1, 6)} == before
    home2 = frame.filter(pl.col("home") == 2)
    assert before[2] == {"energy.count": home2.height + 1, "energy.kwh": home2["kwh"].sum() + 5}
    assert before[5] == {"energy.count": 1, "energy.kwh": 9.0}
    assert again.quarantine.count("energy") == 1
    again.append("energy", [{"home": 5, "reading_id": 103, "kwh": 1.0, "at": T0}])
    assert again.data_versions == {"energy": 3} and totals(again, 5)["energy.count"] == 2
    again.close()

    # The source file changes: it is read again ("the source is the truth"), appends are
    # gone, and the version still moves forward.
    write_source(source, [1, 2])
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    fresh = ek.EmbedKit(dataset(source), database=database, shard_rows=shard_rows)
    assert fresh.data_versions == {"energy": 4}
    assert totals(fresh, 2) == {"energy.count": 1, "energy.kwh": 2.0}
    assert totals(fresh, 5) == {"energy.count": 0, "energy.kwh": None}
    fresh.close()


def test_a_changed_contract_reads_the_source_again(tmp_path: Path) -> None:
    source = tmp_path / "energy.parquet"
    write_source(source, [1, 1, 2, 2])
    database = tmp_path / "analytics.duckdb"
    ek.EmbedKit(dataset(source), database=database).close()
    tight = dataset(source, contract=ek.Contract(ranges={"kwh": (0, 3)}, reject_above=0.6))
    kit = ek.EmbedKit(tight, database=database)
    assert kit.data_versions == {"energy": 2}
    assert kit.quarantine.count("energy") == 1  # kwh 4.0 breaks the new range
    assert totals(kit, 2) == {"energy.count": 1, "energy.kwh": 3.0}
    kit.close()


def test_in_memory_sources_are_always_read_again(tmp_path: Path) -> None:
    database = tmp_path / "analytics.duckdb"
    frame = pl.DataFrame({"home": [1, 2], "kwh": [1.0, 2.0]})

    def kit_over(rows: pl.DataFrame) -> ek.EmbedKit:
        return ek.EmbedKit(
            ek.Dataset(
                "energy", rows, tenant_key="home", measures=[ek.Measure("kwh", "sum", sql="kwh")]
            ),
            database=database,
        )

    kit_over(frame).close()
    kit = kit_over(frame.with_columns(pl.col("kwh") * 10))
    got = kit.query({"measures": ["energy.kwh"]}, principal=ek.Principal(2)).to_pylist()
    assert got == [{"energy.kwh": 20.0}] and kit.data_versions == {"energy": 2}
    kit.close()
