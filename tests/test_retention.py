"""Retention: raw rows older than ``keep`` become one row per group and bucket; the
rolled-up rows equal Polars' aggregation of the raw rows, newer rows stay as they
were, and a second run changes nothing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import embedkit as ek
import embedkit.live.methods as live_methods

NOW = datetime(2026, 3, 10, 12, 34, 56, tzinfo=UTC)


def raw_rows(seed: int, hours: int = 60, step_minutes: int = 7) -> pl.DataFrame:
    rng = random.Random(seed)
    start = NOW.replace(tzinfo=None) - timedelta(hours=hours)
    rows: list[dict[str, Any]] = []
    for i in range(hours * 60 // step_minutes):
        for household in ("h1", "h2", "h3"):
            for room in ("living", "bed", None):
                if rng.random() < 0.3:
                    continue
                rows.append(
                    {
                        "household": household,
                        "room": room,
                        "ts": start
                        + timedelta(minutes=i * step_minutes, seconds=rng.randint(0, 59)),
                        "kwh": round(rng.uniform(0, 2), 3),
                        "indoor_c": round(rng.uniform(15, 25), 2),
                        "peak_w": rng.randint(0, 5000),
                    }
                )
    return pl.DataFrame(rows)


AGGREGATE = {"kwh": "sum", "indoor_c": "avg", "peak_w": "max"}


def make(frame: pl.DataFrame, keep: str, grain: str, **kit: Any) -> ek.EmbedKit:
    return ek.EmbedKit(
        ek.Dataset(
            "readings",
            frame,
            tenant_key="household",
            time="ts",
            measures=[ek.Measure("energy", "sum", sql="kwh")],
            retention=ek.Retention(keep, grain, AGGREGATE),
        ),
        clock=lambda: NOW,
        **kit,
    )


def stored(kit: ek.EmbedKit) -> pl.DataFrame:
    frame = pl.from_arrow(kit._store.arrow("readings"))
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(pl.col("ts").dt.replace_time_zone(None))


def expected(frame: pl.DataFrame, edge: datetime, grain: str) -> pl.DataFrame:
    """What retention should leave, computed with Polars from the raw rows."""
    every = {"minute": "1m", "hour": "1h", "day": "1d"}[grain]
    old = frame.filter(pl.col("ts") < edge)
    rolled = old.group_by("household", "room", pl.col("ts").dt.truncate(every)).agg(
        pl.col("kwh").sum(), pl.col("indoor_c").mean(), pl.col("peak_w").max()
    )
    kept = frame.filter(pl.col("ts") >= edge)
    return pl.concat([rolled.select(frame.columns), kept], how="vertical_relaxed")


def same(a: pl.DataFrame, b: pl.DataFrame) -> None:
    order = ["household", "room", "ts"]
    a = a.select(sorted(a.columns)).sort(order, nulls_last=True)
    b = b.select(sorted(b.columns)).sort(order, nulls_last=True)
    assert a.height == b.height
    for column in a.columns:
        left, right = a[column].to_list(), b[column].to_list()
        if a[column].dtype.is_float():
            assert left == pytest.approx(right, abs=1e-9), column
        else:
            assert left == right, column


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    keep=st.sampled_from(["90m", "6h", "1d"]),
    grain=st.sampled_from(["minute", "hour", "day"]),
    shard_rows=st.sampled_from([2_000_000, 300]),
)
def test_old_rows_roll_up_exactly_and_newer_rows_stay(
    seed: int, keep: str, grain: str, shard_rows: int
) -> None:
    frame = raw_rows(seed)
    kit = make(frame, keep, grain, shard_rows=shard_rows)
    who = ek.Principal(tenant="h2")
    total = kit.query({"measures": ["readings.energy"]}, principal=who).to_pylist()
    version = kit.data_versions["readings"]
    removed = kit.apply_retention()["readings"]
    span = {"90m": timedelta(minutes=90), "6h": timedelta(hours=6), "1d": timedelta(days=1)}
    edge = (NOW.replace(tzinfo=None) - span[keep]).replace(second=0, microsecond=0)
    if grain != "minute":
        edge = edge.replace(minute=0)
    if grain == "day":
        edge = edge.replace(hour=0)
    want = expected(frame, edge, grain)
    same(stored(kit), want)
    assert removed == frame.height - want.height
    rewritten = frame.filter(pl.col("ts") < edge).height
    assert kit.data_versions["readings"] == version + (1 if rewritten else 0)
    # Sums survive a roll-up: the tenant's energy is what it was.
    after = kit.query({"measures": ["readings.energy"]}, principal=who).to_pylist()
    assert after[0]["readings.energy"] == pytest.approx(total[0]["readings.energy"])
    # Again: nothing left to roll up, nothing changes.
    assert kit.apply_retention()["readings"] == 0
    same(stored(kit), want)
    kit.close()


def test_a_stream_rolls_up_as_it_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_methods, "RETENTION_EVERY", 0.0)
    first = raw_rows(1, hours=4)
    kit = make(first.head(10), "1h", "hour")
    report = kit.stream("readings", first.slice(10).iter_rows(named=True), batch_rows=200)
    assert report.stored == first.height - 10
    edge = (NOW.replace(tzinfo=None) - timedelta(hours=1)).replace(minute=0, second=0)
    same(stored(kit), expected(first, edge, "hour"))
    kit.close()


def test_bad_retention_is_named_at_registration() -> None:
    frame = raw_rows(2, hours=2)
    with pytest.raises(ek.ModelError) as caught:
        ek.EmbedKit(
            ek.Dataset(
                "readings",
                frame,
                tenant_key="household",
                retention=ek.Retention("1d", "hour", {"kwh": "sum"}),
            )
        )
    assert "readings" in str(caught.value) and "time column" in str(caught.value)
    with pytest.raises(ek.ModelError) as caught:
        ek.EmbedKit(
            ek.Dataset(
                "readings",
                frame,
                tenant_key="household",
                time="ts",
                retention=ek.Retention("1d", "hour", {"kwhh": "sum", "room": "avg"}),
            )
        )
    text = str(caught.value)
    assert "retention.kwhh" in text and "is not a column" in text
    assert "retention.room: is VARCHAR, so it cannot be averaged" in text
    with pytest.raises(ValueError, match="grain must be one of minute, hour, day"):
        ek.Retention("1d", "week", {"kwh": "sum"})
    with pytest.raises(ValueError, match="use one of sum, avg, min, max"):
        ek.Retention("1d", "hour", {"kwh": "median"})  # type: ignore[dict-item]


def test_retention_in_yaml(tmp_path: Any) -> None:
    raw_rows(3, hours=3).write_parquet(tmp_path / "readings.parquet")
    (tmp_path / "model.yml").write_text(
        "datasets:\n"
        "  - name: readings\n"
        "    source: readings.parquet\n"
        "    tenant_key: household\n"
        "    time: ts\n"
        "    retention:\n"
        "      keep: 1h\n"
        "      grain: hour\n"
        "      aggregate: {kwh: sum, indoor_c: avg, peak_w: max}\n"
    )
    kit = ek.EmbedKit(clock=lambda: NOW)
    kit.register_yaml(tmp_path / "model.yml")
    assert kit.apply_retention("readings")["readings"] > 0
    (tmp_path / "bad.yml").write_text(
        "datasets:\n"
        "  - name: other\n"
        "    source: readings.parquet\n"
        "    tenant_key: household\n"
        "    time: ts\n"
        "    retention: {keep: 1h, every: hour}\n"
    )
    with pytest.raises(ek.ModelError, match="unknown key\\(s\\) every"):
        kit.register_yaml(tmp_path / "bad.yml")


def test_the_tenant_key_and_row_rule_columns_stay_group_keys() -> None:
    frame = raw_rows(4, hours=2)
    for column in ("household", "room"):
        with pytest.raises(ek.ModelError) as caught:
            ek.EmbedKit(
                ek.Dataset(
                    "readings",
                    frame,
                    tenant_key="household",
                    time="ts",
                    row_rules=[ek.RowRule("room", claim="rooms")],
                    retention=ek.Retention("1h", "hour", {"kwh": "sum", column: "max"}),
                )
            )
        assert f"retention.{column}: is the tenant key or a row-rule column" in str(caught.value)


def test_rows_rewritten_in_place_still_move_the_version() -> None:
    # One reading per household and hour, off the hour: rolling up removes no row but
    # moves every time to its bucket, so cached answers must not survive it.
    start = NOW.replace(tzinfo=None, minute=17, second=0) - timedelta(hours=6)
    frame = pl.DataFrame(
        {
            "household": ["h1"] * 6,
            "room": ["living"] * 6,
            "ts": [start + timedelta(hours=i) for i in range(6)],
            "kwh": [1.0] * 6,
            "indoor_c": [20.0] * 6,
            "peak_w": [100] * 6,
        }
    )
    kit = make(frame, "2h", "hour")
    version = kit.data_versions["readings"]
    assert kit.apply_retention()["readings"] == 0
    assert kit.data_versions["readings"] == version + 1
    assert sorted(stored(kit)["ts"].dt.minute().to_list()) == [0, 0, 0, 0, 17, 17]
