"""The README's quickstart runs as written and prints the right numbers."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def quickstart_code() -> str:
    match = re.search(r"## Quickstart\n\n```python\n(.*?)```", README.read_text(), re.S)
    assert match, "README.md has no ## Quickstart python block"
    return match.group(1)


def test_readme_quickstart_runs_and_returns_only_the_sellers_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__quickstart__"}
    exec(compile(quickstart_code(), "README.md", "exec"), namespace)
    got = namespace["df"]
    assert isinstance(got, pl.DataFrame)
    raw = pl.read_parquet(tmp_path / "orders.parquet").filter(pl.col("seller_id") == 1)
    want = (
        raw.group_by("status")
        .agg(
            pl.col("amount").sum().alias("orders.revenue"),
            (pl.col("status") == "returned").mean().alias("orders.return_rate"),
        )
        .rename({"status": "orders.status"})
    )
    assert got.sort("orders.status").equals(want.sort("orders.status").select(got.columns))
    assert 999.0 not in got["orders.revenue"].to_list()
