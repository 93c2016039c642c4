"""A small marketplace for embedding tests: sales rows, a kit with dashboards, a host app.

The raw rows are a Polars frame, so tests compute every expected number a second
way. Seller ``s2`` owns a category called ``SECRET-widgets`` and customers named
``SECRET ...``: those words must never reach another seller's embed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import altair as alt
import polars as pl

import embedkit as ek

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
SECRET = "tS9-embedkit-tests-only-8Kq2zLr7Wm4Vn1Xb6Yc3Pd5Fg0Hj"
SELLERS = ("s1", "s2", "s3")
CATEGORIES = ("books", "games", "toys", "garden")


def sales_rows(days: int = 120, seed: int = 7) -> pl.DataFrame:
    """Orders of three sellers over ``days`` days before :data:`NOW` (deterministic)."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    order_id = 0
    start = NOW - timedelta(days=days)
    for day in range(days):
        for seller in SELLERS:
            for _ in range(rng.randint(0, 5 if seller != "s3" else 2)):
                order_id += 1
                categories = (*CATEGORIES, "SECRET-widgets") if seller == "s2" else CATEGORIES
                rows.append(
                    {
                        "order_id": order_id,
                        "seller_id": seller,
                        "category": rng.choice(categories),
                        "region": rng.choice(("north", "south", "east", "west")),
                        "status": rng.choice(("completed", "completed", "completed", "returned")),
                        "customer": ("SECRET " if seller == "s2" else "") + rng.choice("ABCDEFG"),
                        "amount": round(rng.uniform(5, 250), 2),
                        "ordered_at": start + timedelta(days=day, minutes=rng.randint(0, 1439)),
                    }
                )
    frame = pl.DataFrame(rows)
    return frame.with_columns(pl.col("ordered_at").dt.replace_time_zone(None))


def sales_dataset(rows: pl.DataFrame) -> ek.Dataset:
    return ek.Dataset(
        "orders",
        rows,
        tenant_key="seller_id",
        primary_key="order_id",
        time="ordered_at",
        dimensions=[
            ek.Dimension("category"),
            ek.Dimension("region"),
            ek.Dimension("status"),
            ek.Dimension("customer"),
        ],
        measures=[
            ek.Measure("revenue", "sum", sql="amount", title="Revenue", format="currency"),
            ek.Measure("orders", "count", title="Orders"),
            ek.Measure(
                "aov", "derived", sql="revenue / orders", title="Avg order", format="currency"
            ),
            ek.Measure("returns", "count", filter="status = 'returned'", title="Returns"),
            ek.Measure(
                "return_rate",
                "derived",
                sql="returns / orders",
                title="Return rate",
                format="percent",
            ),
        ],
    )


def dashboards() -> list[ek.Dashboard]:
    period = ek.DateRangeFilter("period", "orders.ordered_at", default="last 30 days")
    category = ek.SelectFilter("category", "orders.category", label="Category")
    region = ek.SelectFilter("region", "orders.region", label="Region")
    grain = ek.GrainFilter("grain", options=("day", "week", "month"), default="day")
    t = ek.Time("orders.ordered_at")
    day = ek.Time("orders.ordered_at", grain="day")
    sales = ek.Dashboard(
        "sales",
        title="Sales",
        filters=(period, category, region, grain),
        widgets=(
            ek.Widget("kpi_revenue", "kpi", ek.Query(measures=("orders.revenue",), time=(t,))),
            ek.Widget("kpi_orders", "kpi", ek.Query(measures=("orders.orders",), time=(t,))),
            ek.Widget("kpi_aov", "kpi", ek.Query(measures=("orders.aov",), time=(t,))),
            ek.Widget(
                "revenue_by_day",
                "line",
                ek.Query(measures=("orders.revenue",), time=(day,)),
                title="Revenue over time",
                span=2,
            ),
            ek.Widget(
                "by_category",
                "bar",
                ek.Query(measures=("orders.revenue",), dimensions=("orders.category",)),
                title="Revenue by category",
                horizontal=True,
            ),
            ek.Widget(
                "orders_by_region",
                "bar",
                ek.Query(
                    measures=("orders.orders",), dimensions=("orders.region", "orders.category")
                ),
                title="Orders by region",
                x="orders.region",
                color="orders.category",
            ),
            ek.Widget(
                "heat",
                "heatmap",
                ek.Query(
                    measures=("orders.orders",), dimensions=("orders.region", "orders.category")
                ),
                title="Orders: region by category",
            ),
            ek.Widget(
                "when",
                "heatmap",
                ek.Query(
                    measures=("orders.orders",),
                    time=(
                        ek.Time("orders.ordered_at", grain="hour_of_day"),
                        ek.Time("orders.ordered_at", grain="day_of_week"),
                    ),
                ),
                title="When orders come in",
                span=2,
            ),
            ek.Widget(
                "status_mix",
                "altair",
                ek.Query(measures=("orders.orders",), dimensions=("orders.status",)),
                title="Order status",
                chart=alt.Chart()
                .mark_arc(innerRadius=40)
                .encode(theta="orders:Q", color="status:N"),
            ),
            ek.Widget(
                "table",
                "table",
                ek.Query(
                    measures=("orders.orders", "orders.revenue"),
                    dimensions=("orders.category", "orders.region"),
                ),
                title="By category and region",
                page_size=5,
                span=3,
            ),
        ),
    )
    returns = ek.Dashboard(
        "returns",
        title="Returns",
        filters=(period,),
        widgets=(
            ek.Widget(
                "rate",
                "line",
                ek.Query(
                    measures=("orders.return_rate",),
                    time=(ek.Time("orders.ordered_at", grain="week"),),
                ),
                title="Return rate by week",
            ),
        ),
    )
    return [sales, returns]


def make_kit(
    rows: pl.DataFrame,
    *,
    clock: Callable[[], datetime] | None = None,
    host_origins: tuple[str, ...] = (),
    base_url: str = "",
    **settings: Any,
) -> ek.EmbedKit:
    kit = ek.EmbedKit(
        sales_dataset(rows),
        secret=SECRET,
        clock=clock or (lambda: NOW),
        embed=ek.EmbedSettings(host_origins=host_origins, base_url=base_url, **settings),
    )
    kit.add_dashboard(*dashboards())
    return kit
