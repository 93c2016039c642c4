"""The Polars engine answers every scoped query exactly as the DuckDB engine does.

DuckDB (through the SQL compiler) is the reference. Each test runs one query on both
engines over real data (three tenants, nulls everywhere, timestamps on the 2024 DST
days of America/New_York) and compares column names, row order, values (floats up to
rounding) and Arrow types (decimal precision aside: Polars always says 38). A few
tests compute the answer a second way, with plain Polars over the raw rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import hypothesis.strategies as st
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings

import embedkit as ek
from embedkit.engines.polars import CompiledPolars, PolarsEngine, compile_plan, execute

NOW = datetime(2024, 12, 1, tzinfo=UTC)
TENANT = ek.Principal(tenant=1, claims={"regions": ["north", "east"]})
NY = "America/New_York"

# (id, seller, status, customer, amount, qty, price, product, ordered_at UTC, paid_at,
#  ship_date, is_gift, region)
_ORDERS: list[tuple[Any, ...]] = [
    (
        1,
        1,
        "completed",
        "Alice Smith",
        10.0,
        1,
        "1.25",
        1,
        "2024-01-01T03:00",
        "2024-01-01T03:05",
        "2024-01-03",
        True,
        "north",
    ),
    (
        2,
        1,
        "returned",
        "bob jones",
        20.0,
        2,
        "2.50",
        2,
        "2024-03-10T04:59",
        "2024-03-10T05:00",
        "2024-03-12",
        False,
        "south",
    ),
    (
        3,
        1,
        "completed",
        "ALICE Cooper",
        2.5,
        3,
        "-2.55",
        1,
        "2024-03-10T05:00",
        None,
        None,
        None,
        "north",
    ),
    (
        4,
        1,
        None,
        None,
        None,
        None,
        None,
        3,
        "2024-03-10T06:30",
        "2024-03-10T06:59",
        None,
        None,
        None,
    ),
    (
        5,
        1,
        "pending",
        "\t padded  x",
        -2.5,
        0,
        "0.00",
        None,
        "2024-03-10T07:30",
        "2024-03-10T07:00",
        "2024-03-11",
        False,
        "east",
    ),
    (
        6,
        1,
        "completed",
        "x%_y",
        42.0,
        -4,
        "3.10",
        2,
        "2024-11-03T04:59",
        "2024-11-03T05:30",
        "2024-11-04",
        True,
        "west",
    ),
    (
        7,
        1,
        "returned",
        "Eve",
        0.0,
        5,
        "10.00",
        9,
        "2024-11-03T05:30",
        "2024-11-03T06:30",
        "2024-11-05",
        None,
        "south",
    ),
    (
        8,
        1,
        "completed",
        "alice",
        100.0,
        7,
        "99.99",
        2,
        "2024-11-03T06:30",
        "2024-11-03T07:30",
        "2024-11-03",
        True,
        "north",
    ),
    (
        9,
        1,
        "Completed",
        "dave SMITH",
        3.5,
        None,
        "7.77",
        1,
        "2024-12-31T23:30",
        None,
        "2025-01-02",
        False,
        "east",
    ),
    (
        10,
        1,
        "returned",
        "carol",
        None,
        2,
        None,
        3,
        "2025-01-01T04:59",
        "2025-01-01T05:00",
        None,
        True,
        None,
    ),
    (
        11,
        2,
        "completed",
        "SECRET Zed",
        1000.0,
        10,
        "500.00",
        1,
        "2024-03-10T06:00",
        "2024-03-10T06:00",
        "2024-03-11",
        True,
        "north",
    ),
    (
        12,
        2,
        "SECRET-status",
        "Yan",
        2000.0,
        20,
        "1.00",
        1,
        "2024-11-03T06:00",
        None,
        None,
        False,
        "north",
    ),
    (
        13,
        3,
        "completed",
        "Wu",
        7.0,
        1,
        "1.00",
        1,
        "2024-03-02T00:00",
        None,
        "2024-03-03",
        None,
        "east",
    ),
]


def _orders() -> pl.DataFrame:
    names = [
        "order_id",
        "seller_id",
        "status",
        "customer",
        "amount",
        "qty",
        "price",
        "product_id",
        "ordered_at",
        "paid_at",
        "ship_date",
        "is_gift",
        "region",
    ]
    cols: dict[str, list[Any]] = {n: [r[i] for r in _ORDERS] for i, n in enumerate(names)}
    cols["price"] = [Decimal(p) if p is not None else None for p in cols["price"]]
    cols["ordered_at"] = [datetime.fromisoformat(t) for t in cols["ordered_at"]]
    cols["paid_at"] = [
        datetime.fromisoformat(t).replace(tzinfo=UTC) if t else None for t in cols["paid_at"]
    ]
    cols["ship_date"] = [date.fromisoformat(d) if d else None for d in cols["ship_date"]]
    return pl.DataFrame(
        cols,
        schema={
            "order_id": pl.Int64,
            "seller_id": pl.Int64,
            "status": pl.String,
            "customer": pl.String,
            "amount": pl.Float64,
            "qty": pl.Int32,
            "price": pl.Decimal(10, 2),
            "product_id": pl.Int64,
            "ordered_at": pl.Datetime("us"),
            "paid_at": pl.Datetime("us", "UTC"),
            "ship_date": pl.Date,
            "is_gift": pl.Boolean,
            "region": pl.String,
        },
    )


def _products() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "product_id": [1, 2, 3, 1, 1],
            "seller_id": [1, 1, 1, 2, 3],
            "category_id": [10, 20, None, 10, 30],
            "name": ["Pen", "Ink", "Pad", "SECRET pen", "Cup"],
        },
        schema_overrides={"product_id": pl.Int32},
    )


def _categories() -> pl.DataFrame:
    return pl.DataFrame({"category_id": [10, 20, 30], "label": ["office", "art", "kitchen"]})


# Every construct a model expression may use (semantic/expressions.py), as dimensions.
EXPRESSIONS: dict[str, str] = {
    "size": "CASE WHEN amount >= 50 THEN 'big' WHEN amount >= 5 THEN 'mid' ELSE 'small' END",
    "status_code": "CASE status WHEN 'completed' THEN 1 WHEN 'returned' THEN 2 END",
    "label": "status || '-' || CAST(qty AS VARCHAR)",
    "label_number": "customer || qty",
    "unit_price": "amount / qty",
    "int_ratio": "qty / 4",
    "decimal_ratio": "price / qty",
    "qty_mod": "qty % 3",
    "amount_mod": "amount % 4",
    "arith": "-qty + 2 * qty - 1",
    "abs_qty": "abs(qty)",
    "abs_price": "abs(price)",
    "round_amount": "round(amount)",
    "round_amount_1": "round(amount, 1)",
    "round_qty": "round(qty)",
    "round_qty_tens": "round(qty * 7, -1)",
    "round_price": "round(price, 1)",
    "floor_amount": "floor(amount)",
    "ceil_amount": "ceil(amount)",
    "floor_qty": "floor(qty)",
    "floor_price": "floor(price)",
    "ceil_price": "ceil(price)",
    "round_price_whole": "round(price)",
    "round_price_wide": "round(price, 4)",
    "mod_price": "price % 2",
    "coalesced": "coalesce(status, customer, 'none')",
    "upper_customer": "upper(customer)",
    "lower_customer": "lower(customer)",
    "length_customer": "length(customer)",
    "trimmed": "trim(customer)",
    "left_trimmed": "ltrim(customer)",
    "right_trimmed": "rtrim(customer, 'x ')",
    "trimmed_chars": "trim(customer, 'a')",
    "nullif_qty": "nullif(qty, 0)",
    "greatest_qty": "greatest(qty, 2)",
    "least_amount": "least(amount, 50, qty)",
    "ordered_year": "year(ordered_at)",
    "ship_month": "month(ship_date)",
    "paid_day": "day(paid_at)",
    "gift_label": "if(is_gift, 'gift', 'regular')",
    "flagged": "amount > 10 AND NOT is_gift OR qty IS NULL",
    "either": "is_gift OR amount > 10",
    "both": "is_gift AND amount > 10",
    "in_list": "status IN ('completed', 'pending')",
    "not_in_list": "status NOT IN ('completed', 'pending')",
    "in_with_null": "qty IN (1, NULL)",
    "between_qty": "qty BETWEEN 1 AND 3",
    "is_not_null": "status IS NOT NULL",
    "is_true": "is_gift IS TRUE",
    "neq": "status <> 'completed'",
    "cast_int": "CAST(amount AS INT)",
    "cast_bigint": "CAST(amount AS BIGINT)",
    "cast_price_int": "CAST(price AS INTEGER)",
    "cast_double": "CAST(qty AS DOUBLE)",
    "cast_float": "CAST(amount AS FLOAT)",
    "cast_date": "CAST(ordered_at AS DATE)",
    "cast_paid_date": "CAST(paid_at AS DATE)",
    "cast_text": "CAST(ordered_at AS TEXT)",
    "cast_paid_text": "CAST(paid_at AS VARCHAR)",
    "cast_bool_text": "CAST(is_gift AS VARCHAR)",
    "cast_price_text": "CAST(price AS VARCHAR)",
    "cast_amount_text": "CAST(amount AS VARCHAR)",
    "cast_qty_bool": "CAST(qty AS BOOLEAN)",
    "cast_text_int": "CAST('12' AS INT) + qty",
    "cast_text_bool": "CAST('yes' AS BOOLEAN)",
    "cast_text_date": "CAST('2024-02-03' AS DATE)",
    "decimal_literal": "qty * 1.5",
    "decimal_product": "price * 1.5",
    "exponent_literal": "qty * 1e1",
    "date_vs_text": "ship_date >= '2024-03-11'",
    "timestamp_vs_text": "ordered_at < '2024-03-10 06:00:00'",
    "tz_vs_text": "paid_at < '2024-03-10 07:00:00'",
    "number_vs_text": "qty > '2'",
    "null_arith": "qty + NULL",
    "bool_literal": "TRUE AND is_gift",
}


def _datasets() -> list[ek.Dataset]:
    return [
        ek.Dataset(
            "orders",
            _orders(),
            tenant_key="seller_id",
            primary_key="order_id",
            time="ordered_at",
            dimensions=[
                *(
                    ek.Dimension(c)
                    for c in (
                        "order_id",
                        "status",
                        "customer",
                        "amount",
                        "qty",
                        "price",
                        "is_gift",
                        "region",
                    )
                ),
                *(ek.Dimension(name, sql=sql) for name, sql in EXPRESSIONS.items()),
            ],
            time_dimensions=[ek.TimeDimension("paid_at"), ek.TimeDimension("ship_date")],
            measures=[
                ek.Measure("count", "count"),
                ek.Measure("with_status", "count", sql="status"),
                ek.Measure("returned", "count", filter="status = 'returned'"),
                ek.Measure("customers", "count_distinct", sql="customer"),
                ek.Measure("revenue", "sum", sql="amount"),
                ek.Measure("units", "sum", sql="qty"),
                ek.Measure("price_total", "sum", sql="price"),
                ek.Measure("returned_revenue", "sum", sql="amount", filter="status = 'returned'"),
                ek.Measure("avg_amount", "avg", sql="amount"),
                ek.Measure("avg_qty", "avg", sql="qty"),
                ek.Measure("avg_price", "avg", sql="price"),
                ek.Measure("min_amount", "min", sql="amount"),
                ek.Measure("max_status", "max", sql="status"),
                ek.Measure("first_order", "min", sql="ordered_at"),
                ek.Measure("last_paid", "max", sql="paid_at"),
                ek.Measure("gifts", "count", filter="is_gift"),
                ek.Measure("row_weight", "sum", sql="1"),
                ek.Measure("gift_units", "sum", sql="qty", filter="is_gift"),
                ek.Measure("return_rate", "derived", sql="returned / count"),
                ek.Measure("per_unit", "derived", sql="revenue / units"),
                ek.Measure("return_pct", "derived", sql="return_rate * 100"),
                ek.Measure("net", "derived", sql="revenue - coalesce(returned_revenue, 0)"),
                ek.Measure("unit_spread", "derived", sql="units - gift_units"),
            ],
            segments=[
                ek.Segment("completed", "status = 'completed'"),
                ek.Segment("big", "amount >= 20"),
                ek.Segment("gifted", "is_gift"),
            ],
            joins=[ek.Join("products", on={"product_id": "product_id"})],
        ),
        ek.Dataset(
            "products",
            _products(),
            tenant_key="seller_id",
            dimensions=[
                ek.Dimension("name"),
                ek.Dimension("product_id"),
                ek.Dimension("category_id"),
            ],
            measures=[ek.Measure("count", "count")],
            joins=[ek.Join("categories", on={"category_id": "category_id"})],
        ),
        ek.Dataset("categories", _categories(), public=True, dimensions=[ek.Dimension("label")]),
        ek.Dataset(
            "visits",
            _orders().select("order_id", "seller_id", "region", "amount", "ordered_at"),
            tenant_key="seller_id",
            time="ordered_at",
            dimensions=[ek.Dimension("region")],
            measures=[ek.Measure("count", "count"), ek.Measure("amount", "sum", sql="amount")],
            row_rules=[ek.RowRule("region", "regions")],
        ),
    ]


@pytest.fixture(scope="module")
def kit() -> Iterator[ek.EmbedKit]:
    k = ek.EmbedKit(_datasets(), clock=lambda: NOW)
    yield k
    k.close()


def _same_value(a: Any, b: Any) -> bool:
    numbers = (int, float, Decimal)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool | str):
        fa, fb = float(a), float(b)
        return (math.isnan(fa) and math.isnan(fb)) or math.isclose(
            fa, fb, rel_tol=1e-9, abs_tol=1e-12
        )
    return bool(a == b) and type(a) is type(b)


def _type(t: pa.DataType) -> Any:
    # Polars decimals always carry precision 38; DuckDB's vary. The scale must agree.
    return ("decimal", t.scale) if pa.types.is_decimal(t) else t


def _assert_tables_equal(polars: pa.Table, duck: pa.Table) -> None:
    assert polars.column_names == duck.column_names
    assert [_type(t) for t in polars.schema.types] == [_type(t) for t in duck.schema.types]
    got, want = polars.to_pylist(), duck.to_pylist()
    assert len(got) == len(want), (got, want)
    for row_got, row_want in zip(got, want, strict=True):
        bad = [k for k in row_want if not _same_value(row_got[k], row_want[k])]
        assert not bad, (bad, got, want)


def assert_same(
    kit: ek.EmbedKit, query: ek.Query, principal: ek.Principal = TENANT
) -> ek.QueryResult:
    """Run ``query`` on both engines, check they agree, and return the Polars result."""
    duck = kit.query(query, principal=principal)
    polars = kit.query(query, principal=principal, engine="polars")
    _assert_tables_equal(polars.table, duck.table)
    assert polars.total == duck.total
    assert (polars.previous is None) == (duck.previous is None)
    if polars.previous is not None and duck.previous is not None:
        _assert_tables_equal(polars.previous.table, duck.previous.table)
    return polars


def test_every_model_expression_matches_duckdb_row_by_row(kit: ek.EmbedKit) -> None:
    for name in EXPRESSIONS:
        query = ek.Query(dimensions=("orders.order_id", f"orders.{name}"))
        assert_same(kit, query)


@pytest.mark.parametrize("name", sorted(EXPRESSIONS))
def test_expression_dimension_groups_like_duckdb(kit: ek.EmbedKit, name: str) -> None:
    query = ek.Query(measures=("orders.count", "orders.revenue"), dimensions=(f"orders.{name}",))
    assert_same(kit, query)


FILTERS: dict[str, ek.Filter | ek.And | ek.Or] = {
    "equals": ek.Filter("orders.status", "equals", ("completed",)),
    "equals_many": ek.Filter("orders.status", "equals", ("completed", "pending")),
    "not_equals": ek.Filter("orders.status", "notEquals", ("completed",)),
    "not_equals_many": ek.Filter("orders.status", "notEquals", ("completed", "returned")),
    "in": ek.Filter("orders.qty", "in", (1, 2, 7)),
    "not_in": ek.Filter("orders.qty", "notIn", (1, 2)),
    "gt": ek.Filter("orders.amount", "gt", (10,)),
    "gte_text_value": ek.Filter("orders.amount", "gte", ("10",)),
    "lt": ek.Filter("orders.qty", "lt", (2,)),
    "lte": ek.Filter("orders.price", "lte", (2.5,)),
    "between": ek.Filter("orders.amount", "between", (0, 20)),
    "not_between": ek.Filter("orders.amount", "notBetween", (0, 20)),
    "contains": ek.Filter("orders.customer", "contains", ("ALICE",)),
    "contains_many": ek.Filter("orders.customer", "contains", ("smith", "EVE")),
    "contains_wildcards": ek.Filter("orders.customer", "contains", ("%_",)),
    "contains_regex_chars": ek.Filter("orders.customer", "contains", ("x.*",)),
    "not_contains": ek.Filter("orders.customer", "notContains", ("alice",)),
    "starts_with": ek.Filter("orders.customer", "startsWith", ("al", "B")),
    "not_starts_with": ek.Filter("orders.customer", "notStartsWith", ("al",)),
    "ends_with": ek.Filter("orders.customer", "endsWith", ("SMITH",)),
    "not_ends_with": ek.Filter("orders.customer", "notEndsWith", ("smith",)),
    "set": ek.Filter("orders.status", "set"),
    "not_set": ek.Filter("orders.amount", "notSet"),
    "bool_equals": ek.Filter("orders.is_gift", "equals", (True,)),
    "bool_not_equals": ek.Filter("orders.is_gift", "notEquals", (True,)),
    "decimal_gt": ek.Filter("orders.price", "gt", ("2.5",)),
    "expression_equals": ek.Filter("orders.size", "equals", ("mid",)),
    "expression_bool": ek.Filter("orders.flagged", "equals", (False,)),
    "timestamp_gte": ek.Filter("orders.ordered_at", "gte", ("2024-03-10T05:00:00",)),
    "timestamptz_lt": ek.Filter("orders.paid_at", "lt", ("2024-03-10T07:00:00Z",)),
    "timestamptz_between": ek.Filter(
        "orders.paid_at", "between", ("2024-03-10T00:00:00-05:00", "2024-11-03T06:30:00Z")
    ),
    "date_gt": ek.Filter("orders.ship_date", "gt", ("2024-03-11",)),
    "date_not_equals": ek.Filter("orders.ship_date", "notEquals", ("2024-03-12",)),
    "in_date_range": ek.Filter("orders.ordered_at", "inDateRange", ("2024-03-10", "2024-03-10")),
    "not_in_date_range": ek.Filter(
        "orders.paid_at", "notInDateRange", ("2024-03-10", "2024-11-03")
    ),
    "date_in_date_range": ek.Filter(
        "orders.ship_date", "inDateRange", ("2024-03-01", "2024-11-04")
    ),
    "on_the_date": ek.Filter("orders.paid_at", "onTheDate", ("2024-11-03",)),
    "before_date": ek.Filter("orders.ordered_at", "beforeDate", ("2024-11-03",)),
    "before_or_on_date": ek.Filter("orders.ship_date", "beforeOrOnDate", ("2024-11-03",)),
    "after_date": ek.Filter("orders.paid_at", "afterDate", ("2024-03-10",)),
    "after_or_on_date": ek.Filter("orders.ordered_at", "afterOrOnDate", ("2024-11-03",)),
    "relative_range": ek.Filter("orders.ordered_at", "inDateRange", ("last 12 months",)),
    "and": ek.And(ek.Filter("orders.status", "set"), ek.Filter("orders.amount", "gt", (5,))),
    "or": ek.Or(
        ek.Filter("orders.status", "equals", ("returned",)),
        ek.Filter("orders.is_gift", "equals", (True,)),
    ),
    "nested": ek.Or(
        ek.And(
            ek.Filter("orders.qty", "gte", (2,)),
            ek.Filter("orders.customer", "notContains", ("e",)),
        ),
        ek.Filter("orders.amount", "notSet"),
    ),
    "joined_dimension": ek.Filter("products.name", "equals", ("Pen",)),
    "joined_not_set": ek.Filter("categories.label", "notSet"),
}


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filter_keeps_the_rows_duckdb_keeps(kit: ek.EmbedKit, name: str) -> None:
    rows = ek.Query(dimensions=("orders.order_id",), filters=(FILTERS[name],), timezone=NY)
    assert_same(kit, rows)
    grouped = ek.Query(
        measures=("orders.count", "orders.revenue", "orders.return_rate"),
        dimensions=("orders.status",),
        filters=(FILTERS[name],),
        timezone=NY,
    )
    assert_same(kit, grouped)


GRAINED = ["orders.ordered_at", "orders.paid_at", "orders.ship_date"]
GRAINS = ["minute", "hour", "day", "week", "month", "quarter", "year"]


@pytest.mark.parametrize("zone", [NY, "UTC", "Asia/Kolkata"])
@pytest.mark.parametrize(
    ("member", "grain"),
    # A DATE has no minutes or hours: that query is refused (tested elsewhere).
    [
        (m, g)
        for m in GRAINED
        for g in GRAINS
        if not (m.endswith("ship_date") and g in ("minute", "hour"))
    ],
)
def test_time_bucket_matches_duckdb_in_zone(
    kit: ek.EmbedKit, member: str, grain: str, zone: str
) -> None:
    query = ek.Query(
        measures=("orders.count", "orders.units"),
        time=(ek.Time(member, grain=grain),),
        timezone=zone,
    )
    assert_same(kit, query)


def test_time_buckets_of_several_members_with_a_date_range(kit: ek.EmbedKit) -> None:
    query = ek.Query(
        measures=("orders.revenue",),
        dimensions=("orders.status",),
        time=(
            ek.Time("orders.ordered_at", grain="hour", date_range=["2024-03-09", "2024-11-03"]),
            ek.Time("orders.paid_at", grain="day"),
        ),
        timezone=NY,
    )
    assert_same(kit, query)


MEASURES = (
    "orders.count",
    "orders.with_status",
    "orders.returned",
    "orders.customers",
    "orders.revenue",
    "orders.units",
    "orders.price_total",
    "orders.returned_revenue",
    "orders.avg_amount",
    "orders.avg_qty",
    "orders.avg_price",
    "orders.min_amount",
    "orders.max_status",
    "orders.first_order",
    "orders.last_paid",
    "orders.gifts",
    "orders.row_weight",
    "orders.gift_units",
    "orders.return_rate",
    "orders.per_unit",
    "orders.return_pct",
    "orders.net",
    "orders.unit_spread",
)


@pytest.mark.parametrize(
    "dimension",
    ["orders.status", "orders.is_gift", "orders.size", "products.name", "categories.label", None],
)
def test_every_measure_aggregates_like_duckdb(kit: ek.EmbedKit, dimension: str | None) -> None:
    dims = (dimension,) if dimension else ()
    assert_same(kit, ek.Query(measures=MEASURES, dimensions=dims))


def test_measures_over_no_rows_give_one_row_of_zero_counts_and_null_sums(kit: ek.EmbedKit) -> None:
    query = ek.Query(measures=MEASURES, filters=(ek.Filter("orders.status", "equals", ("none",)),))
    result = assert_same(kit, query)
    row = result.to_pylist()[0]
    assert row["orders.count"] == 0 and row["orders.customers"] == 0
    assert row["orders.revenue"] is None and row["orders.units"] is None
    assert row["orders.return_rate"] is None


def test_grouped_measures_over_no_rows_give_no_rows(kit: ek.EmbedKit) -> None:
    query = ek.Query(
        measures=("orders.count",),
        dimensions=("orders.status",),
        filters=(ek.Filter("orders.status", "equals", ("none",)),),
        total=True,
    )
    assert assert_same(kit, query).num_rows == 0


def test_dimensions_without_measures_give_distinct_groups(kit: ek.EmbedKit) -> None:
    assert_same(kit, ek.Query(dimensions=("orders.status", "orders.is_gift")))
    assert_same(kit, ek.Query(dimensions=("products.name", "categories.label")))
    assert_same(kit, ek.Query(time=(ek.Time("orders.ship_date", grain="month"),)))


HAVING: dict[str, ek.Filter | ek.And | ek.Or] = {
    "gt": ek.Filter("orders.count", "gt", (1,)),
    "between_sum": ek.Filter("orders.revenue", "between", (1, 50)),
    "not_between": ek.Filter("orders.revenue", "notBetween", (1, 50)),
    "set_sum": ek.Filter("orders.returned_revenue", "set"),
    "not_set_sum": ek.Filter("orders.returned_revenue", "notSet"),
    "not_equals_derived": ek.Filter("orders.return_rate", "notEquals", (0,)),
    "in_units": ek.Filter("orders.units", "in", (1, 6, 11)),
    "lte_decimal": ek.Filter("orders.price_total", "lte", (10,)),
    "or": ek.Or(
        ek.Filter("orders.count", "equals", (1,)), ek.Filter("orders.avg_amount", "gte", (20,))
    ),
    "unselected_measure": ek.Filter("orders.customers", "gte", (2,)),
}


@pytest.mark.parametrize("name", sorted(HAVING))
def test_measure_filter_applies_after_aggregation(kit: ek.EmbedKit, name: str) -> None:
    query = ek.Query(
        measures=("orders.count", "orders.revenue"),
        dimensions=("orders.status",),
        filters=(HAVING[name],),
    )
    assert_same(kit, query)


def test_measure_filter_without_dimensions(kit: ek.EmbedKit) -> None:
    for value in (1, 100):
        query = ek.Query(
            measures=("orders.revenue",), filters=(ek.Filter("orders.count", "gt", (value,)),)
        )
        assert_same(kit, query)


@pytest.mark.parametrize(
    "segments", [["orders.completed"], ["orders.big", "orders.gifted"], ["orders.gifted"]]
)
def test_segments_filter_before_aggregation(kit: ek.EmbedKit, segments: list[str]) -> None:
    query = ek.Query(
        measures=("orders.count", "orders.revenue"),
        dimensions=("orders.region",),
        segments=tuple(segments),
        filters=(ek.Filter("orders.qty", "gt", (0,)),),
    )
    assert_same(kit, query)


def test_two_level_join_filters_each_relation_by_tenant_first(kit: ek.EmbedKit) -> None:
    query = ek.Query(
        measures=("orders.count", "orders.revenue"),
        dimensions=("products.name", "categories.label", "products.product_id"),
    )
    result = assert_same(kit, query)
    names = {row["products.name"] for row in result.to_pylist()}
    assert names == {"Pen", "Ink", "Pad", None}  # order 7's product does not exist: null


def test_joined_measures_root_is_the_other_dataset(kit: ek.EmbedKit) -> None:
    assert_same(kit, ek.Query(measures=("products.count",), dimensions=("categories.label",)))


def test_row_rule_in_predicate_limits_rows_before_aggregation(kit: ek.EmbedKit) -> None:
    query = ek.Query(measures=("visits.count", "visits.amount"), dimensions=("visits.region",))
    result = assert_same(kit, query)
    assert {row["visits.region"] for row in result.to_pylist()} == {"north", "east"}
    one = ek.Principal(tenant=1, claims={"regions": "south"})
    assert_same(kit, query, one)


ORDERS: dict[str, ek.Query] = {
    "default_by_measure": ek.Query(measures=("orders.revenue",), dimensions=("orders.status",)),
    "measure_ascending_nulls_last": ek.Query(
        measures=("orders.returned_revenue",),
        dimensions=("orders.status",),
        order=(("orders.returned_revenue", "asc"),),
    ),
    "dimension_descending": ek.Query(
        measures=("orders.count",),
        dimensions=("orders.region", "orders.is_gift"),
        order=(("orders.region", "desc"),),
    ),
    "bucket_by_member_name": ek.Query(
        measures=("orders.count",),
        time=(ek.Time("orders.paid_at", grain="month"),),
        order=(("orders.paid_at", "desc"),),
        timezone=NY,
    ),
    "limit": ek.Query(
        dimensions=("orders.order_id", "orders.amount"),
        order=(("orders.amount", "desc"),),
        limit=3,
        total=True,
    ),
    "offset": ek.Query(dimensions=("orders.customer",), limit=4, offset=2, total=True),
    "offset_only": ek.Query(dimensions=("orders.customer",), offset=7),
    "offset_past_end": ek.Query(dimensions=("orders.customer",), limit=5, offset=50, total=True),
    "limit_zero": ek.Query(measures=("orders.count",), dimensions=("orders.status",), limit=0),
    "total_measures_only": ek.Query(measures=("orders.count",), total=True),
    "previous_period": ek.Query(
        measures=("orders.revenue",),
        time=(ek.Time("orders.ordered_at", grain="day", date_range=["2024-11-01", "2024-11-30"]),),
        compare="previous_period",
        timezone=NY,
    ),
}


@pytest.mark.parametrize("name", sorted(ORDERS))
def test_order_and_paging_match_duckdb(kit: ek.EmbedKit, name: str) -> None:
    assert_same(kit, ORDERS[name])


def test_no_row_of_another_tenant_is_read(kit: ek.EmbedKit) -> None:
    """No row of another tenant ever appears, whichever engine answers."""
    query = ek.Query(dimensions=("orders.customer", "orders.status", "products.name"))
    for tenant, secret in ((1, "SECRET"), (3, "SECRET")):
        result = assert_same(kit, query, ek.Principal(tenant=tenant, claims={"regions": []}))
        assert secret not in str(result.to_pylist())
    nobody = assert_same(kit, ek.Query(measures=("orders.count",)), ek.Principal(tenant=99))
    assert nobody.to_pylist() == [{"orders.count": 0}]


def test_filter_on_a_boolean_expression_equals_plain_polars(kit: ek.EmbedKit) -> None:
    """`flagged = false` keeps exactly the rows whose whole expression is false (not null)."""
    query = ek.Query(dimensions=("orders.order_id",), filters=(FILTERS["expression_bool"],))
    got = kit.query(query, principal=TENANT, engine="polars").to_polars()
    flagged = ((pl.col("amount") > 10) & ~pl.col("is_gift")) | pl.col("qty").is_null()
    want = _orders().filter((pl.col("seller_id") == 1) & (flagged == False))  # noqa: E712
    assert got["orders.order_id"].to_list() == sorted(want["order_id"].to_list())


def test_revenue_per_new_york_day_equals_plain_polars(kit: ek.EmbedKit) -> None:
    """Revenue per local day on the DST days, computed again with Polars over the raw rows."""
    query = ek.Query(
        measures=("orders.revenue", "orders.count"),
        time=(ek.Time("orders.ordered_at", grain="day"),),
        timezone=NY,
    )
    got = kit.query(query, principal=TENANT, engine="polars").to_polars()
    local = pl.col("ordered_at").dt.replace_time_zone("UTC").dt.convert_time_zone(NY)
    want = (
        _orders()
        .filter(pl.col("seller_id") == 1)
        .group_by(local.dt.replace_time_zone(None).dt.truncate("1d").alias("day"))
        .agg(
            pl.when(pl.col("amount").count() > 0).then(pl.col("amount").sum()).alias("rev"),
            pl.len().cast(pl.Int64).alias("n"),
        )
        .sort("day")
    )
    assert got["orders.ordered_at.day"].to_list() == want["day"].to_list()
    assert got["orders.revenue"].to_list() == want["rev"].to_list()
    assert got["orders.count"].to_list() == want["n"].to_list()
    # 2024-03-10 (spring forward) holds orders 2..5 in New York; 04:59 UTC is still Mar 9.
    days = dict(zip(want["day"].to_list(), want["n"].to_list(), strict=True))
    assert days[datetime(2024, 3, 9)] == 1 and days[datetime(2024, 3, 10)] == 3


def test_return_rate_per_status_equals_plain_polars(kit: ek.EmbedKit) -> None:
    """A derived measure (returned / count), computed again with Polars over the raw rows."""
    query = ek.Query(
        measures=("orders.return_rate", "orders.units"),
        dimensions=("orders.status",),
        order=(("orders.status", "asc"),),
    )
    got = kit.query(query, principal=TENANT, engine="polars").to_pylist()
    raw = _orders().filter(pl.col("seller_id") == 1)
    want = (
        raw.group_by("status")
        .agg(
            (pl.col("status") == "returned").sum().alias("returned"),
            pl.len().alias("n"),
            pl.col("qty").sum().alias("units"),
            pl.col("qty").count().alias("with_qty"),
        )
        .sort("status", nulls_last=True)
    )
    assert [r["orders.status"] for r in got] == want["status"].to_list()
    for row, (returned, n, units, with_qty) in zip(
        got, want.select("returned", "n", "units", "with_qty").iter_rows(), strict=True
    ):
        assert row["orders.return_rate"] == pytest.approx(returned / n)
        assert row["orders.units"] == (units if with_qty else None)


def test_compiled_plans_are_made_only_by_the_compiler(kit: ek.EmbedKit) -> None:
    scoped = kit.scope(ek.Query(measures=("orders.count",)), principal=TENANT)
    with pytest.raises(TypeError):
        CompiledPolars(frame=pl.LazyFrame(), outputs=(), scoped=scoped, key=object())
    engine = PolarsEngine(kit._store.arrow)
    with pytest.raises(TypeError):
        engine.run("SELECT * FROM orders")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        execute(pl.LazyFrame())  # type: ignore[arg-type]
    compiled = compile_plan(scoped, lambda name: engine.frame(name))
    assert execute(compiled).to_pylist() == [{"orders.count": 10}]


def test_engine_loads_each_dataset_once_and_reloads_a_new_version() -> None:
    calls: list[str] = []
    table = pa.table({"x": [1, 2]})

    def load(name: str) -> pa.Table:
        calls.append(name)
        return table

    engine = PolarsEngine(load)
    assert engine.frame("a", 1) is engine.frame("a", 1)
    engine.frame("a", 2)
    assert calls == ["a", "a"]


def test_uncommon_column_types_match_duckdb() -> None:
    """Text tenant keys, nanosecond and zoned timestamps, small and unsigned integers."""
    at = [datetime(2024, 11, 3, 5, 59, 59, 999999), datetime(2024, 11, 3, 6, 0), None]
    frame = pl.DataFrame(
        {
            "tenant": ["acme", "acme", "other"],
            "at_ns": pl.Series(at, dtype=pl.Datetime("ns")),
            "at_ny": pl.Series(at, dtype=pl.Datetime("us")).dt.replace_time_zone(NY),
            "tiny": pl.Series([-128, 127, 1], dtype=pl.Int8),
            "unsigned": pl.Series([65535, 1, None], dtype=pl.UInt16),
            "ratio": pl.Series([0.1, None, 2.5], dtype=pl.Float32),
        }
    )
    dataset = ek.Dataset(
        "odd",
        frame,
        tenant_key="tenant",
        time="at_ns",
        time_dimensions=(ek.TimeDimension("at_ny"),),
        dimensions=(
            ek.Dimension("tiny"),
            ek.Dimension("ratio"),
            ek.Dimension("at_ns_raw", sql="at_ns"),
        ),
        measures=(
            ek.Measure("tiny_sum", "sum", sql="tiny"),
            ek.Measure("unsigned_sum", "sum", sql="unsigned"),
            ek.Measure("ratio_sum", "sum", sql="ratio"),
            ek.Measure("mean_ratio", "avg", sql="ratio"),
            ek.Measure("last", "max", sql="at_ns"),
        ),
    )
    k = ek.EmbedKit([dataset], clock=lambda: NOW)
    try:
        acme = ek.Principal(tenant="acme")
        measures = (
            "odd.tiny_sum",
            "odd.unsigned_sum",
            "odd.ratio_sum",
            "odd.mean_ratio",
            "odd.last",
        )
        for grain in ("hour", "day"):
            for member in ("odd.at_ns", "odd.at_ny"):
                time = (ek.Time(member, grain=grain),)
                assert_same(k, ek.Query(measures=measures, time=time, timezone=NY), acme)
        rows = ek.Query(
            dimensions=("odd.tiny", "odd.ratio", "odd.at_ns_raw"),
            filters=(ek.Filter("odd.at_ns", "afterOrOnDate", ("2024-11-03T01:00:00",)),),
            timezone=NY,
        )
        assert_same(k, rows, acme)
    finally:
        k.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from([1, 2]),
            st.sampled_from(["a", "b", "B", None]),
            st.one_of(st.none(), st.integers(-3, 3)),
            st.one_of(st.none(), st.floats(-5, 5, allow_nan=False).map(lambda f: round(f, 2))),
            st.datetimes(datetime(2024, 3, 9), datetime(2024, 3, 11)),
        ),
        max_size=25,
    ),
    value=st.integers(-3, 3),
    grain=st.sampled_from(GRAINS),
)
def test_random_rows_give_the_same_answer_on_both_engines(
    rows: list[tuple[Any, ...]], value: int, grain: str
) -> None:
    """For any rows, both engines return the same table for the same grouped, filtered query."""
    frame = pl.DataFrame(
        rows,
        schema={
            "tenant": pl.Int64,
            "kind": pl.String,
            "n": pl.Int64,
            "x": pl.Float64,
            "at": pl.Datetime("us"),
        },
        orient="row",
    )
    dataset = ek.Dataset(
        "t",
        frame,
        tenant_key="tenant",
        time="at",
        dimensions=[
            ek.Dimension("kind"),
            ek.Dimension("n"),
            ek.Dimension("x"),
            ek.Dimension("ratio", sql="x / n"),
            ek.Dimension("rem", sql="n % 2"),
        ],
        measures=[
            ek.Measure("count", "count"),
            ek.Measure("sum_n", "sum", sql="n"),
            ek.Measure("sum_x", "sum", sql="x", filter="n > 0"),
            ek.Measure("rate", "derived", sql="sum_x / count"),
        ],
    )
    k = ek.EmbedKit([dataset], clock=lambda: NOW)
    try:
        principal = ek.Principal(tenant=1)
        queries = [
            ek.Query(
                measures=("t.count", "t.sum_n", "t.sum_x", "t.rate"),
                dimensions=("t.kind",),
                time=(ek.Time("t.at", grain=grain),),
                timezone=NY,
                filters=(ek.Filter("t.n", "notEquals", (value,)),),
            ),
            ek.Query(
                measures=("t.sum_x",),
                dimensions=("t.ratio", "t.rem"),
                filters=(
                    ek.Or(
                        ek.Filter("t.kind", "contains", ("b",)), ek.Filter("t.x", "lt", (value,))
                    ),
                ),
            ),
            ek.Query(
                measures=("t.count",),
                filters=(ek.Filter("t.sum_n", "gt", (value,)),),
                dimensions=("t.kind",),
                limit=2,
                offset=1,
                total=True,
            ),
        ]
        for query in queries:
            assert_same(k, query, principal)
    finally:
        k.close()
