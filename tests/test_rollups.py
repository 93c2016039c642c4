"""Pre-aggregations: a query answered from a rollup equals the base-table answer."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import embedkit as ek

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
R = random.Random(3)
N = 1500
ROWS = pl.DataFrame(
    {
        "seller": [R.randrange(4) for _ in range(N)],
        "category": [R.choice(["a", "b", "c", None]) for _ in range(N)],
        "region": [R.choice(["EU", "US"]) for _ in range(N)],
        "amount": [round(R.random() * 100, 2) for _ in range(N)],
        "qty": [R.choice([1, 2, 3, None]) for _ in range(N)],
        "at": [
            datetime(2026, 1, 1) + timedelta(minutes=R.randrange(60 * 24 * 60)) for _ in range(N)
        ],
    }
)
MEASURES = ["revenue", "orders", "avg_qty", "big", "aov", "max_amount", "min_qty"]
ROLLUP = ek.Rollup("daily", measures=MEASURES, dimensions=["category", "region"])


def make_kit(rollups: list[ek.Rollup]) -> ek.EmbedKit:
    dataset = ek.Dataset(
        "orders",
        ROWS,
        tenant_key="seller",
        time="at",
        dimensions=["category", "region"],
        measures=[
            ek.Measure("revenue", "sum", sql="amount"),
            ek.Measure("orders", "count"),
            ek.Measure("avg_qty", "avg", sql="qty"),
            ek.Measure("big", "count", filter="amount > 50"),
            ek.Measure("aov", "derived", sql="revenue / orders"),
            ek.Measure("max_amount", "max", sql="amount"),
            ek.Measure("min_qty", "min", sql="qty"),
            ek.Measure("kinds", "count_distinct", sql="qty"),
        ],
        row_rules=[ek.RowRule("region", claim="regions")],
        rollups=rollups,
    )
    return ek.EmbedKit(dataset, clock=lambda: NOW, shard_rows=500)


WITH, WITHOUT = make_kit([ROLLUP]), make_kit([])


def same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    def key(row: dict[str, Any]) -> str:
        return repr(sorted((k, v) for k, v in row.items() if not isinstance(v, float)))

    if len(a) != len(b):
        return False
    for x, y in zip(sorted(a, key=key), sorted(b, key=key), strict=True):
        if x.keys() != y.keys():
            return False
        for k in x:
            u, v = x[k], y[k]
            if isinstance(u, float) and isinstance(v, float):
                if not math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif u != v:
                return False
    return True


RANGES = st.sampled_from(
    [
        None,
        "last 30 days",
        "this month",
        "last month",
        ["2026-01-05", "2026-02-10"],
        "last 6 hours",
        ["2026-01-05T06:00:00", "2026-01-20"],
    ]
)


@st.composite
def queries(draw: st.DrawFn) -> dict[str, Any]:
    q: dict[str, Any] = {
        "measures": [
            f"orders.{m}"
            for m in draw(
                st.lists(st.sampled_from([*MEASURES, "kinds"]), min_size=1, max_size=3, unique=True)
            )
        ],
        "dimensions": [
            f"orders.{d}"
            for d in draw(
                st.lists(st.sampled_from(["category", "region"]), max_size=2, unique=True)
            )
        ],
        "timezone": draw(st.sampled_from(["UTC", "UTC", "Europe/Paris"])),
    }
    grain = draw(st.sampled_from([None, "hour", "day", "week", "month", "year"]))
    date_range = draw(RANGES)
    if grain or date_range:
        t: dict[str, Any] = {"dimension": "orders.at"}
        if grain:
            t["granularity"] = grain
        if date_range:
            t["dateRange"] = date_range
        q["timeDimensions"] = [t]
    if draw(st.booleans()):
        q["filters"] = [
            {
                "member": "orders.category",
                "operator": "equals",
                "values": draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=2)),
            }
        ]
    return q


@given(
    q=queries(),
    tenant=st.integers(0, 4),
    regions=st.lists(st.sampled_from(["EU", "US"]), min_size=1, max_size=2, unique=True),
)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_rollup_answers_equal_the_base_rows(
    q: dict[str, Any], tenant: int, regions: list[str]
) -> None:
    principal = ek.Principal(tenant, {"regions": regions})
    got = WITH.query(q, principal=principal)
    expected = WITHOUT.query(q, principal=principal)
    event(f"answered from a rollup: {got.rollup is not None}")
    assert same(got.to_pylist(), expected.to_pylist()), (got.rollup, q)


def test_which_queries_a_rollup_answers() -> None:
    p = ek.Principal(1, {"regions": ["EU", "US"]})
    t = {"dimension": "orders.at", "granularity": "month", "dateRange": "last month"}
    answered = [
        {"measures": ["orders.revenue", "orders.aov"], "dimensions": ["orders.category"]},
        {"measures": ["orders.avg_qty"], "timeDimensions": [t]},
        {"measures": ["orders.big"], "timeDimensions": [{**t, "granularity": "week"}]},
    ]
    for q in answered:
        assert WITH.query(q, principal=p).rollup == "orders__daily", q
    not_answered = [
        {"measures": ["orders.kinds"]},  # count_distinct cannot be added up
        {"measures": ["orders.revenue"], "timeDimensions": [{**t, "granularity": "hour"}]},
        {"measures": ["orders.revenue"], "timeDimensions": [{**t, "dateRange": "last 6 hours"}]},
        {"measures": ["orders.revenue"], "timeDimensions": [t], "timezone": "Europe/Paris"},
        {"measures": ["orders.kinds", "orders.revenue"]},
    ]
    for q in not_answered:
        assert WITH.query(q, principal=p).rollup is None, q


def test_appends_refresh_the_rollup() -> None:
    kit = make_kit([ROLLUP])
    p = ek.Principal(2, {"regions": ["EU"]})
    q = {"measures": ["orders.revenue", "orders.orders"]}
    before = kit.query(q, principal=p)
    assert before.rollup == "orders__daily"
    report = kit.append(
        "orders",
        [
            {
                "seller": 2,
                "category": "a",
                "region": "EU",
                "amount": 1000.0,
                "qty": 1,
                "at": datetime(2026, 2, 1),
            }
        ],
    )
    assert report.versions == {"orders": 2, "orders__daily": 2}
    after = kit.query(q, principal=p).to_pylist()[0]
    old = before.to_pylist()[0]
    assert after["orders.orders"] == old["orders.orders"] + 1
    assert after["orders.revenue"] == pytest.approx(old["orders.revenue"] + 1000.0)


def test_rollup_mistakes_are_named() -> None:
    with pytest.raises(ek.ModelError, match=r"rollups.*no measure .profit."):
        make_kit([ek.Rollup("r", measures=["profit"])])
    with pytest.raises(ek.ModelError, match="counts distinct values"):
        make_kit([ek.Rollup("r", measures=["kinds"])])
    with pytest.raises(ek.ModelError, match="no dimension 'colour'"):
        make_kit([ek.Rollup("r", measures=["revenue"], dimensions=["colour"])])
    with pytest.raises(ValueError, match="grain"):
        ek.Rollup("r", measures=["revenue"], grain="quarter")


def test_a_rollup_hides_what_the_base_hides() -> None:
    """A measure built on a column hidden by a column rule stays hidden when a rollup
    could answer it: through the base name and through the rollup's own name."""
    frame = ROWS.with_columns(cost=pl.col("amount") * 0.6)
    dataset = ek.Dataset(
        "orders",
        frame,
        tenant_key="seller",
        time="at",
        dimensions=["category", "region"],
        measures=[
            ek.Measure("revenue", "sum", sql="amount"),
            ek.Measure("cost", "sum", sql="cost"),
            ek.Measure("margin", "derived", sql="revenue - cost"),
        ],
        column_rules=[ek.ColumnRule(["cost"], claim="role", allow=["admin"])],
        rollups=[ek.Rollup("daily", measures=["revenue", "margin"], dimensions=["category"])],
    )
    kit = ek.EmbedKit(dataset, clock=lambda: NOW)
    staff, admin = ek.Principal(1, {"role": "user"}), ek.Principal(1, {"role": "admin"})
    for member in ("orders.margin", "orders.cost", "orders__daily.margin", "orders__daily.cost"):
        with pytest.raises(ek.AccessDenied):
            kit.query({"measures": [member]}, principal=staff)
    assert kit.query({"measures": ["orders.revenue"]}, principal=staff).rollup == "orders__daily"
    answer = kit.query({"measures": ["orders.margin"]}, principal=admin)
    mine = frame.filter(pl.col("seller") == 1)
    assert answer.rollup == "orders__daily"
    assert answer.to_pylist()[0]["orders.margin"] == pytest.approx(
        (mine["amount"] - mine["cost"]).sum()
    )


def test_a_computed_dimension_may_not_stand_in_for_a_row_rule_column() -> None:
    rows = pl.DataFrame(
        {"seller": [1, 1, 1], "region": ["EU", "eu", "US"], "amount": [1.0, 10.0, 100.0]}
    )
    with pytest.raises(ek.ModelError, match="dimension 'region' is computed"):
        ek.EmbedKit(
            ek.Dataset(
                "orders",
                rows,
                tenant_key="seller",
                dimensions=[ek.Dimension("region", sql="upper(region)")],
                measures=[ek.Measure("revenue", "sum", sql="amount")],
                row_rules=[ek.RowRule("region", claim="regions")],
                rollups=[ek.Rollup("r", measures=["revenue"], dimensions=["region"], time=None)],
            )
        )
