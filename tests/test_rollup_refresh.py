"""Rollups are refreshed on append in the groups the batch touched, never drift from
the base rows, and rewrite nothing else."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

import embedkit as ek
from embedkit.compile import stored_table
from embedkit.engines import appends, refresh

START = datetime(2026, 1, 5)  # a Monday
SCHEMA: dict[str, Any] = {
    "seller": pl.Int64,
    "category": pl.String,
    "region": pl.String,
    "amount": pl.Float64,
    "qty": pl.Int64,
    "at": pl.Datetime("us"),
}
DAILY = ek.Rollup(
    "daily",
    measures=["revenue", "orders", "avg_qty", "big", "aov", "max_amount", "min_qty"],
    dimensions=["category", "region"],
)
# Buckets a computed dimension by week; its row-rule column is a key but no dimension.
WEEKLY = ek.Rollup("weekly", measures=["revenue", "max_amount"], dimensions=["kind"], grain="week")
ALL = ek.Principal(0, {"regions": ["EU", "US"]})
DATASETS = ("orders", "orders__daily", "orders__weekly")


def kit_over(
    rows: pl.DataFrame | str,
    rollups: list[ek.Rollup],
    *,
    shard_rows: int = 1_000_000,
    database: Path | str = ":memory:",
) -> ek.EmbedKit:
    dataset = ek.Dataset(
        "orders",
        rows,
        tenant_key="seller",
        time="at",
        dimensions=[
            ek.Dimension("category"),
            ek.Dimension("region"),
            ek.Dimension("kind", sql="upper(category)"),
        ],
        measures=[
            ek.Measure("revenue", "sum", sql="amount"),
            ek.Measure("orders", "count"),
            ek.Measure("avg_qty", "avg", sql="qty"),
            ek.Measure("big", "count", filter="amount > 50"),
            ek.Measure("aov", "derived", sql="revenue / orders"),
            ek.Measure("max_amount", "max", sql="amount"),
            ek.Measure("min_qty", "min", sql="qty"),
        ],
        row_rules=[ek.RowRule("region", claim="regions")],
        # Rows without a seller or with a negative amount are quarantined, never counted.
        contract=ek.Contract(ranges={"amount": (0, 10_000)}, reject_above=0.9),
        rollups=rollups,
    )
    return ek.EmbedKit(dataset, shard_rows=shard_rows, database=database)


def _sum(column: str) -> pl.Expr:
    """SQL's sum: null over no values, where Polars says 0."""
    return pl.when(pl.col(column).count() > 0).then(pl.col(column).sum())


#: Each rollup computed a second way, with Polars: its group keys and stored parts.
EXPECTED: dict[str, tuple[dict[str, pl.Expr], list[pl.Expr]]] = {
    "orders__daily": (
        {
            "seller": pl.col("seller"),
            "category": pl.col("category"),
            "region": pl.col("region"),
            "at": pl.col("at").dt.truncate("1d"),
        },
        [
            _sum("amount").alias("revenue"),
            pl.len().alias("orders__count"),
            _sum("qty").alias("avg_qty__sum"),
            pl.col("qty").count().alias("avg_qty__count"),
            (pl.col("amount") > 50).sum().alias("big__count"),
            pl.col("amount").max().alias("max_amount"),
            pl.col("qty").min().alias("min_qty"),
        ],
    ),
    "orders__weekly": (
        {
            "seller": pl.col("seller"),
            "region": pl.col("region"),
            "kind": pl.col("category").str.to_uppercase(),
            "at": pl.col("at").dt.truncate("1w"),
        },
        [_sum("amount").alias("revenue"), pl.col("amount").max().alias("max_amount")],
    ),
}


def stored(kit: ek.EmbedKit, name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = kit._store.arrow(name).to_pylist()
    return rows


def expected_rollup(base: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    keys, parts = EXPECTED[name]
    frame = pl.DataFrame(base, schema=SCHEMA)
    grouped = frame.group_by(*[e.alias(k) for k, e in keys.items()]).agg(*parts)
    return grouped.to_dicts()


def same_rows(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> bool:
    """Equal as multisets of rows; floats to 1e-9, a HUGEINT's Decimal equal to an int."""

    def key(row: dict[str, Any]) -> str:
        return repr(sorted((k, v) for k, v in row.items() if not isinstance(v, float)))

    if len(got) != len(want):
        return False
    for x, y in zip(sorted(got, key=key), sorted(want, key=key), strict=True):
        if x.keys() != y.keys():
            return False
        for k, u in x.items():
            v = y[k]
            if isinstance(u, float) and isinstance(v, float):
                if not math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif u != v:
                return False
    return True


def assert_rollups_match_base(kit: ek.EmbedKit) -> None:
    base = stored(kit, "orders")
    for name in EXPECTED:
        if name in kit._store.definitions:
            assert same_rows(stored(kit, name), expected_rollup(base, name)), name


def rows(tenants: list[int], *, days: int, size: int) -> st.SearchStrategy[Any]:
    """Rows that keep the contract, over ``tenants`` and the first ``days`` days (one
    in ten with no time: its group's bucket is null)."""
    minutes = st.tuples(st.integers(0, 9), st.integers(0, days * 24 * 60 - 1))
    row = st.fixed_dictionaries(
        {
            "seller": st.sampled_from(tenants),
            "category": st.sampled_from(["a", "b", None]),
            "region": st.sampled_from(["EU", "US"]),
            "amount": st.integers(0, 10_000).map(lambda c: c / 100),
            "qty": st.sampled_from([1, 2, 7, None]),
            "at": minutes.map(lambda m: START + timedelta(minutes=m[1]) if m[0] else None),
        }
    )
    return st.lists(row, max_size=size)


@st.composite
def batches(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A batch over old and new tenants (4, 5), in old buckets and new ones (days 14
    on), now and then with a row that breaks the contract (no seller, or a negative
    amount), never enough to refuse the batch."""
    good = draw(rows([0, 1, 2, 3, 4, 5], days=28, size=12).filter(bool))
    broken = draw(rows([1, 4], days=28, size=2))
    for row in broken:
        row.update(draw(st.sampled_from([{"seller": None}, {"amount": -1.0}])))
    every: list[dict[str, Any]] = good + broken
    return every


# Old tenants and new ones (4, 5), all regions or one (the row rule).
PRINCIPALS = [
    *[ek.Principal(t, {"regions": ["EU", "US"]}) for t in (0, 4)],
    ek.Principal(1, {"regions": ["US"]}),
]
QUERIES: list[dict[str, Any]] = [
    {
        "measures": [f"orders.{m}" for m in DAILY.measures],
        "dimensions": ["orders.category", "orders.region"],
    },
    {
        "measures": ["orders.revenue", "orders.min_qty", "orders.avg_qty"],
        "timeDimensions": [{"dimension": "orders.at", "granularity": "day"}],
    },
    {
        "measures": ["orders.revenue", "orders.max_amount"],
        "dimensions": ["orders.kind"],
        "timeDimensions": [{"dimension": "orders.at", "granularity": "week"}],
    },
]


@given(
    base=rows([0, 1, 2, 3], days=14, size=60),
    appends=st.lists(batches(), min_size=1, max_size=4),
    shard_rows=st.sampled_from([25, 1_000_000]),
    share=st.sampled_from([refresh.FULL_REBUILD_SHARE, 100.0]),
)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_refreshed_rollups_equal_the_base_rows_after_every_append(
    base: list[dict[str, Any]], appends: list[list[dict[str, Any]]], shard_rows: int, share: float
) -> None:
    """After every append, each rollup holds exactly the aggregation of all stored base
    rows (computed again with Polars), and every query it answers equals the base-row
    answer."""
    frame = pl.DataFrame(base, schema=SCHEMA)
    kit = kit_over(frame, [DAILY, WEEKLY], shard_rows=shard_rows)
    plain = kit_over(frame, [], shard_rows=shard_rows)
    with mock.patch.object(refresh, "FULL_REBUILD_SHARE", share):
        for number, batch in enumerate(appends, start=2):
            report = kit.append("orders", batch)
            plain.append("orders", batch)
            assert report.versions == dict.fromkeys(DATASETS, number)
            assert_rollups_match_base(kit)
            for principal in PRINCIPALS:
                for q in QUERIES:
                    got = kit.query(q, principal=principal)
                    assert got.rollup is not None, q
                    want = plain.query(q, principal=principal).to_pylist()
                    assert same_rows(got.to_pylist(), want), (q, principal)
    kit.close()
    plain.close()


R = random.Random(11)
BASE = pl.DataFrame(
    [
        {
            "seller": R.randrange(1, 6),
            "category": R.choice(["a", "b", "c", None]),
            "region": R.choice(["EU", "US"]),
            "amount": round(R.random() * 100, 2),
            "qty": R.choice([1, 2, 3, None]),
            "at": START + timedelta(minutes=R.randrange(60 * 24 * 30)),
        }
        for _ in range(600)
    ],
    schema=SCHEMA,
)
GROUP = ("seller", "category", "region", "at")


def placed(kit: ek.EmbedKit) -> dict[tuple[Any, ...], tuple[int, dict[str, Any]]]:
    """Each daily rollup row by its group: where it sits in the table (rowid), and it."""
    cur = kit._store._con.cursor()
    try:
        rowid = exp.alias_(exp.column("rowid"), "__rowid", quoted=True)
        query = exp.select(rowid, exp.Star()).from_(stored_table("orders__daily"))
        result: pa.Table = cur.execute(query.sql("duckdb")).to_arrow_table()
    finally:
        cur.close()
    out: dict[tuple[Any, ...], tuple[int, dict[str, Any]]] = {}
    for row in result.to_pylist():
        rowid = row.pop("__rowid")
        out[tuple(row[k] for k in GROUP)] = (rowid, row)
    return out


def test_an_append_rewrites_only_the_groups_it_touches() -> None:
    """A group the batch does not touch keeps its physical row (same rowid, same values):
    a full rebuild would write every row again, and a group new to the rollup that
    sorts first would move every other row one place on."""
    kit = kit_over(BASE, [DAILY])
    before = placed(kit)
    existing = sorted(before, key=repr)[len(before) // 2]
    seller, category, region, day = existing
    batch = [
        # a new group that sorts before every other: lowest seller, earliest day
        {"seller": 0, "category": "a", "region": "EU", "amount": 5.0, "qty": 1, "at": START},
        {
            "seller": seller,
            "category": category,
            "region": region,
            "amount": 1000.0,
            "qty": None,
            "at": day + timedelta(hours=3),
        },
        {"seller": 0, "category": "a", "region": "EU", "amount": -3.0, "qty": 1, "at": START},
    ]
    assert kit.append("orders", batch).quarantined == 1
    after = placed(kit)
    new = (0, "a", "EU", START)
    assert set(after) == set(before) | {new}
    for group, (rowid, row) in before.items():
        if group != existing:
            assert after[group] == (rowid, row), group
    assert after[existing][0] >= len(before) and after[new][0] >= len(before)
    assert after[existing][1]["orders__count"] == before[existing][1]["orders__count"] + 1
    assert after[existing][1]["max_amount"] == 1000.0
    assert after[new][1]["revenue"] == 5.0 and after[new][1]["orders__count"] == 1
    assert_rollups_match_base(kit)


def test_a_batch_touching_much_of_the_rollup_rebuilds_it_sorted() -> None:
    """The first rows into an empty dataset, or a batch touching more than a quarter of
    the rollup's groups, rebuild the rollup whole: sorted by tenant and time again."""
    kit = kit_over(pl.DataFrame(schema=SCHEMA), [DAILY])
    kit.append("orders", BASE.to_dicts())
    assert_rollups_match_base(kit)

    def in_order() -> bool:
        rows = sorted(placed(kit).values(), key=lambda p: p[0])
        order = [(r["seller"], r["at"]) for _, r in rows]
        return order == sorted(order) and [i for i, _ in rows] == list(range(len(rows)))

    assert in_order()
    everywhere = BASE.sample(300, seed=1).with_columns(pl.col("amount") + 1).to_dicts()
    kit.append("orders", everywhere)
    assert in_order()
    assert_rollups_match_base(kit)
    kit.append("orders", BASE.head(1).to_dicts())  # one group: refreshed in place
    assert not in_order()
    assert_rollups_match_base(kit)
    fresh = kit_over(pl.DataFrame(stored(kit, "orders"), schema=SCHEMA), [DAILY])
    assert same_rows(stored(kit, "orders__daily"), stored(fresh, "orders__daily"))
    fresh.close()
    kit.close()


def test_a_sharded_rollup_is_refreshed_in_each_tenants_shard() -> None:
    """With base and rollup split into shards, each tenant's refreshed groups land in
    the shard its queries read; a tenant new to the dataset lands where reads route it."""
    kit = kit_over(BASE, [DAILY], shard_rows=100)
    plain = kit_over(BASE, [], shard_rows=100)
    routes = kit._store.shards["orders__daily"]
    top = max(routes)  # the last tenant: in the last shard
    assert len(set(routes.values())) > 2 and routes[top] > 0
    batch = [
        {**row, "amount": row["amount"] + 7, "at": row["at"] + timedelta(hours=1)}
        for row in BASE.filter(pl.col("seller") == top).head(3).to_dicts()
    ]
    batch += [{**batch[0], "seller": 0}, {**batch[1], "seller": 9, "category": None}]
    refreshed: list[bool] = []

    def recording(*args: Any) -> bool:
        refreshed.append(refresh.refresh_rollup(*args))
        return refreshed[-1]

    with mock.patch.object(appends, "refresh_rollup", recording):
        kit.append("orders", batch)
    assert refreshed == [True]  # in place, not rebuilt
    plain.append("orders", batch)
    assert routes[0] == routes[9] == 0  # where reads route a tenant they do not know
    assert_rollups_match_base(kit)
    for tenant in sorted(routes):
        principal = ek.Principal(tenant, ALL.claims)
        for q in QUERIES[:2]:
            got = kit.query(q, principal=principal)
            assert got.rollup == "orders__daily"
            assert same_rows(got.to_pylist(), plain.query(q, principal=principal).to_pylist())
    kit.close()
    plain.close()


@pytest.mark.parametrize(
    ("public", "time", "kind", "grain"),
    [
        (False, "", pl.Date, "week"),
        (False, "", pl.Datetime("us", "UTC"), "month"),
        (False, "", pl.Datetime("us"), "hour"),
        (False, None, pl.Datetime("us"), "day"),
        (True, "", pl.Datetime("us"), "day"),
        (True, None, pl.Datetime("us"), "day"),
    ],
)
def test_rollups_of_every_shape_are_refreshed_in_place(
    public: bool, time: str | None, kind: pl.DataType, grain: str
) -> None:
    """Date and zoned time columns, every grain, no time bucket, no tenant: each append
    is refreshed in place and leaves what a fresh registration of the rows would store."""
    rng = random.Random(5)

    def rows(n: int) -> pl.DataFrame:
        moments = [START + timedelta(minutes=rng.randrange(60 * 24 * 120)) for _ in range(n)]
        return pl.DataFrame(
            {
                "seller": [rng.randrange(1, 4) for _ in range(n)],
                "category": [rng.choice(["a", "b", None]) for _ in range(n)],
                "amount": [rng.random() for _ in range(n)],
                "at": moments,
            }
        ).with_columns(pl.col("at").cast(kind))

    def kit_of(frame: pl.DataFrame) -> ek.EmbedKit:
        owner: dict[str, Any] = {"public": True} if public else {"tenant_key": "seller"}
        measures = [
            ek.Measure("revenue", "sum", sql="amount"),
            ek.Measure("low", "min", sql="amount"),
        ]
        parts = ["revenue", "low"]
        rollup = ek.Rollup("r", measures=parts, dimensions=["category"], time=time, grain=grain)
        return ek.EmbedKit(
            ek.Dataset(
                "orders",
                frame,
                time="at",
                dimensions=[ek.Dimension("category")],
                measures=measures,
                rollups=[rollup],
                **owner,
            )
        )

    kit = kit_of(rows(300))
    refreshed: list[bool] = []

    def recording(*args: Any) -> bool:
        refreshed.append(refresh.refresh_rollup(*args))
        return refreshed[-1]

    # Three category groups in all without a tenant or time: any batch is a large share.
    with (
        mock.patch.object(appends, "refresh_rollup", recording),
        mock.patch.object(refresh, "FULL_REBUILD_SHARE", 100.0),
    ):
        for _ in range(3):
            kit.append("orders", rows(4))
    assert refreshed == [True, True, True]
    fresh = kit_of(pl.from_arrow(kit._store.arrow("orders")))  # type: ignore[arg-type]
    assert same_rows(stored(kit, "orders__r"), stored(fresh, "orders__r"))
    kit.close()
    fresh.close()


@pytest.mark.parametrize("shard_rows", [40, 1_000_000])
def test_a_reopened_store_keeps_its_rollups_equal_to_the_base(
    tmp_path: Path, shard_rows: int
) -> None:
    """Appends refreshed incrementally survive closing and reopening the database file,
    and refreshing again after the reopen (shard routes read back) stays exact."""
    source = tmp_path / "orders.parquet"
    BASE.write_parquet(source)
    database = tmp_path / "analytics.duckdb"
    rollups = [DAILY, WEEKLY]

    def batch(seed: int) -> list[dict[str, Any]]:
        rows = BASE.sample(5, seed=seed).with_columns(pl.col("amount") * 2).to_dicts()
        new_tenant = {**rows[0], "seller": 40 + seed, "category": None}
        broken = {**rows[1], "amount": -1.0}
        late = {**rows[2], "at": START + timedelta(days=60)}
        return [*rows, new_tenant, broken, late]

    kit = kit_over(str(source), rollups, shard_rows=shard_rows, database=database)
    kit.append("orders", batch(1))
    assert_rollups_match_base(kit)
    answer = kit.query({"measures": ["orders.revenue"]}, principal=ek.Principal(41, ALL.claims))
    assert answer.rollup == "orders__daily"
    kit.close()

    again = kit_over(str(source), rollups, shard_rows=shard_rows, database=database)
    assert again.data_versions["orders"] == 2
    assert_rollups_match_base(again)
    again.append("orders", batch(2))
    assert_rollups_match_base(again)
    stored_versions = again.data_versions
    again.close()

    def reopen_and_check() -> dict[str, int]:
        reopened = kit_over(str(source), rollups, shard_rows=shard_rows, database=database)
        versions = dict(reopened.data_versions)
        assert_rollups_match_base(reopened)
        plain = kit_over(pl.DataFrame(stored(reopened, "orders"), schema=SCHEMA), [])
        for tenant in (1, 3, 42):
            principal = ek.Principal(tenant, ALL.claims)
            for q in QUERIES:
                got = reopened.query(q, principal=principal)
                assert got.rollup is not None
                assert same_rows(got.to_pylist(), plain.query(q, principal=principal).to_pylist())
        plain.close()
        reopened.close()
        return versions

    first = reopen_and_check()
    assert first["orders"] == 3
    assert all(first[d] >= stored_versions[d] for d in DATASETS)  # never back
    assert reopen_and_check() == first  # nothing changed: every row reused as stored
