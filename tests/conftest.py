"""Shared fixtures: a small shop with three tenants, real DuckDB, a fixed clock.

The raw rows are plain Polars frames so tests can compute every expected answer a
second way, without embedkit. Tenant 1 is the caller in most tests; tenants 2 and 3
hold rows (and words such as ``SECRET``) that must never reach tenant 1.

- ``shop_orders``: orders of sellers 1, 2 and 3, with nulls in status, amount,
  region, customer and shipped_on. Order 4 of seller 1 points at product 3, which
  belongs to seller 2; order 7 points at a product that does not exist.
- ``shop_products``: products per seller, joined many-to-one from orders on
  ``product_id`` alone. Product 1 exists for seller 1 *and* seller 2, so a join that
  forgot the tenant scope would repeat seller 1's rows and leak seller 2's category.
- ``shop_regions``: a public dataset (no tenant key) every tenant may read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

import polars as pl
import pytest

import embedkit as ek

SHOP_NOW = datetime(2024, 4, 1, 2, 30, tzinfo=UTC)  # 2024-03-31 22:30 in New York


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _shop_orders() -> pl.DataFrame:
    rows = [
        # id, seller, status, amount, product, region, customer, ordered_at (UTC), shipped_on
        (1, 1, "completed", 10.0, 1, "north", "Alice Smith", "2024-01-01T10:00", "2024-01-03"),
        (2, 1, "returned", 20.0, 2, "south", "bob jones", "2024-01-02T23:30", "2024-01-04"),
        (3, 1, "completed", 30.0, 1, "north", "ALICE Cooper", "2024-02-01T00:00", None),
        (4, 1, None, None, 3, None, None, "2024-02-15T12:00", None),
        (5, 1, "pending", 5.5, 2, "west", "Carol", "2024-03-14T08:00", "2024-03-20"),
        (6, 1, "completed", 42.0, 1, "east", "dave smith", "2024-03-31T23:00", "2024-04-02"),
        (7, 1, "returned", 0.0, 5, "south", "Eve", "2023-12-31T23:59", "2024-01-05"),
        (8, 1, "completed", 100.0, 2, "north", "alice", "2024-03-29T15:00", "2024-03-30"),
        (9, 2, "completed", 1000.0, 1, "north", "SECRET Zed", "2024-01-01T00:00", "2024-01-02"),
        (10, 2, "returned", 2000.0, 3, "south", "Yan", "2024-02-01T12:00", None),
        (11, 2, "SECRET-status", 3000.0, 4, "north", "Xi", "2024-03-01T00:00", "2024-03-02"),
        (12, 3, "completed", 7.0, 6, "east", "Wu", "2024-03-02T00:00", "2024-03-03"),
    ]
    names = ["order_id", "seller_id", "status", "amount", "product_id", "region", "customer"]
    columns: dict[str, list[object]] = {n: [r[i] for r in rows] for i, n in enumerate(names)}
    columns["ordered_at"] = [_dt(r[7]) for r in rows]
    columns["shipped_on"] = [date.fromisoformat(r[8]) if r[8] else None for r in rows]
    return pl.DataFrame(
        columns,
        schema={
            "order_id": pl.Int64,
            "seller_id": pl.Int64,
            "status": pl.String,
            "amount": pl.Float64,
            "product_id": pl.Int64,
            "region": pl.String,
            "customer": pl.String,
            "ordered_at": pl.Datetime("us"),
            "shipped_on": pl.Date,
        },
    )


def _shop_products() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "product_id": [1, 2, 1, 3, 4, 6],
            "seller_id": [1, 1, 2, 2, 2, 3],
            "category": ["books", "games", "SECRET-books", "toys", "games", "books"],
            "cost": [1.0, 2.0, 9.0, 3.0, 4.0, 6.0],
        }
    )


def _shop_regions() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "region": ["north", "south", "east", "west"],
            "region_name": ["North", "South", "East", "West"],
        }
    )


def shop_datasets(
    orders: pl.DataFrame, products: pl.DataFrame, regions: pl.DataFrame
) -> list[ek.Dataset]:
    return [
        ek.Dataset(
            "orders",
            orders,
            tenant_key="seller_id",
            primary_key="order_id",
            time="ordered_at",
            dimensions=[
                ek.Dimension("order_id"),
                ek.Dimension("status"),
                ek.Dimension("region"),
                ek.Dimension("customer"),
                ek.Dimension("amount"),
                ek.Dimension("is_big", sql="amount >= 30"),
                ek.Dimension("is_flagged", sql="status = 'returned' OR amount > 50"),
            ],
            time_dimensions=[ek.TimeDimension("shipped_on")],
            measures=[
                ek.Measure("count", "count"),
                ek.Measure("revenue", "sum", sql="amount"),
                ek.Measure("avg_amount", "avg", sql="amount"),
                ek.Measure("min_amount", "min", sql="amount"),
                ek.Measure("max_amount", "max", sql="amount"),
                ek.Measure("customers", "count_distinct", sql="customer"),
                ek.Measure("returned", "count", filter="status = 'returned'"),
                ek.Measure("return_rate", "derived", sql="returned / count"),
                ek.Measure("completed_revenue", "sum", sql="amount", filter="status = 'completed'"),
            ],
            segments=[
                ek.Segment("completed", "status = 'completed'"),
                ek.Segment("big", "amount >= 20"),
            ],
            joins=[
                ek.Join("products", on={"product_id": "product_id"}),
                ek.Join("regions", on={"region": "region"}),
            ],
        ),
        ek.Dataset(
            "products",
            products,
            tenant_key="seller_id",
            dimensions=[ek.Dimension("category"), ek.Dimension("cost")],
            measures=[ek.Measure("count", "count"), ek.Measure("total_cost", "sum", sql="cost")],
            column_rules=[ek.ColumnRule(["cost"], claim="role", allow=["admin"])],
        ),
        ek.Dataset(
            "regions",
            regions,
            public=True,
            primary_key="region",
            dimensions=[ek.Dimension("region"), ek.Dimension("region_name")],
            measures=[ek.Measure("count", "count")],
        ),
    ]


@pytest.fixture(scope="session")
def shop_now() -> datetime:
    """The fixed "now" of every shop kit: 2024-04-01 02:30 UTC (still March 31 in New York)."""
    return SHOP_NOW


@pytest.fixture(scope="session")
def shop_clock() -> Callable[[], datetime]:
    return lambda: SHOP_NOW


@pytest.fixture(scope="session")
def shop_orders() -> pl.DataFrame:
    return _shop_orders()


@pytest.fixture(scope="session")
def shop_products() -> pl.DataFrame:
    return _shop_products()


@pytest.fixture(scope="session")
def shop_regions() -> pl.DataFrame:
    return _shop_regions()


@pytest.fixture
def shop_definitions(
    shop_orders: pl.DataFrame, shop_products: pl.DataFrame, shop_regions: pl.DataFrame
) -> list[ek.Dataset]:
    """Fresh definitions of the three shop datasets, for tests that build their own kit."""
    return shop_datasets(shop_orders, shop_products, shop_regions)


@pytest.fixture(scope="session")
def shop_kit(
    shop_orders: pl.DataFrame, shop_products: pl.DataFrame, shop_regions: pl.DataFrame
) -> Iterator[ek.EmbedKit]:
    """A registered shop, shared read-only by the whole session (never register into it)."""
    kit = ek.EmbedKit(
        shop_datasets(shop_orders, shop_products, shop_regions), clock=lambda: SHOP_NOW
    )
    yield kit
    kit.close()


@pytest.fixture(scope="session")
def seller1() -> ek.Principal:
    return ek.Principal(tenant=1)


@pytest.fixture(scope="session")
def seller1_admin() -> ek.Principal:
    return ek.Principal(tenant=1, claims={"role": "admin"})
