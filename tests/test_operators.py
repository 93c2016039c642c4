"""Filter operators, nested and/or, measure filters, segments, ordering and paging.

Every expected answer is computed a second way, with plain Polars over the raw rows
of ``shop_orders`` (tenant 1 only), never by asking embedkit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl
import pytest

import embedkit as ek

F = ek.Filter


def tenant_rows(frame: pl.DataFrame, tenant: int = 1) -> pl.DataFrame:
    return frame.filter(pl.col("seller_id") == tenant)


def order_ids(kit: ek.EmbedKit, principal: ek.Principal, *filters: Any, **query: Any) -> set[int]:
    q = ek.Query(
        dimensions=["orders.order_id"], measures=["orders.count"], filters=filters, **query
    )
    return {row["orders.order_id"] for row in kit.query(q, principal=principal).to_pylist()}


def expected_ids(frame: pl.DataFrame, predicate: pl.Expr) -> set[int]:
    return set(tenant_rows(frame).filter(predicate)["order_id"].to_list())


status, amount, customer = pl.col("status"), pl.col("amount"), pl.col("customer")
ordered_at, shipped_on = pl.col("ordered_at"), pl.col("shipped_on")
lower_customer = customer.str.to_lowercase()

OPERATOR_CASES: list[tuple[str, ek.Filter, pl.Expr]] = [
    ("equals", F("orders.status", "equals", ["completed"]), status == "completed"),
    (
        "equals-several-values-means-in",
        F("orders.status", "equals", ["completed", "pending"]),
        status.is_in(["completed", "pending"]),
    ),
    ("equals-number-given-as-text", F("orders.amount", "equals", ["20"]), amount == 20),
    (
        "notEquals-keeps-nulls",
        F("orders.status", "notEquals", ["completed"]),
        (status != "completed") | status.is_null(),
    ),
    (
        "notEquals-several-values",
        F("orders.status", "notEquals", ["completed", "returned"]),
        ~status.is_in(["completed", "returned"]) | status.is_null(),
    ),
    (
        "in",
        F("orders.status", "in", ["returned", "pending"]),
        status.is_in(["returned", "pending"]),
    ),
    (
        "notIn-keeps-nulls",
        F("orders.status", "notIn", ["returned", "pending"]),
        ~status.is_in(["returned", "pending"]) | status.is_null(),
    ),
    ("gt", F("orders.amount", "gt", ["20"]), amount > 20),
    ("gte", F("orders.amount", "gte", [20]), amount >= 20),
    ("lt-drops-nulls", F("orders.amount", "lt", [20]), amount < 20),
    ("lte", F("orders.amount", "lte", [20.0]), amount <= 20),
    ("between-is-inclusive", F("orders.amount", "between", [10, 42]), amount.is_between(10, 42)),
    (
        "notBetween-keeps-nulls",
        F("orders.amount", "notBetween", [10, 42]),
        ~amount.is_between(10, 42) | amount.is_null(),
    ),
    (
        "contains-ignores-case",
        F("orders.customer", "contains", ["ALICE"]),
        lower_customer.str.contains("alice", literal=True),
    ),
    (
        "contains-any-of-several",
        F("orders.customer", "contains", ["smith", "CAROL"]),
        lower_customer.str.contains("smith", literal=True)
        | lower_customer.str.contains("carol", literal=True),
    ),
    (
        "contains-treats-percent-literally",
        F("orders.customer", "contains", ["%"]),
        lower_customer.str.contains("%", literal=True),
    ),
    (
        "notContains-keeps-nulls",
        F("orders.customer", "notContains", ["alice"]),
        ~lower_customer.str.contains("alice", literal=True) | customer.is_null(),
    ),
    (
        "startsWith",
        F("orders.customer", "startsWith", ["alice"]),
        lower_customer.str.starts_with("alice"),
    ),
    (
        "notStartsWith-keeps-nulls",
        F("orders.customer", "notStartsWith", ["alice"]),
        ~lower_customer.str.starts_with("alice") | customer.is_null(),
    ),
    (
        "endsWith",
        F("orders.customer", "endsWith", ["SMITH"]),
        lower_customer.str.ends_with("smith"),
    ),
    (
        "notEndsWith-keeps-nulls",
        F("orders.customer", "notEndsWith", ["smith"]),
        ~lower_customer.str.ends_with("smith") | customer.is_null(),
    ),
    ("set", F("orders.status", "set"), status.is_not_null()),
    ("notSet", F("orders.status", "notSet"), status.is_null()),
    ("set-on-a-number", F("orders.amount", "set"), amount.is_not_null()),
    ("notSet-on-a-date", F("orders.shipped_on", "notSet"), shipped_on.is_null()),
    ("equals-on-a-boolean-expression", F("orders.is_big", "equals", [True]), amount >= 30),
    (
        "equals-false-on-an-or-expression",
        F("orders.is_flagged", "equals", [False]),
        ~((status == "returned") | (amount > 50)),
    ),
    (
        "notSet-on-an-or-expression",
        F("orders.is_flagged", "notSet"),
        ((status == "returned") | (amount > 50)).is_null(),
    ),
    (
        "inDateRange-pair-includes-the-whole-last-day",
        F("orders.ordered_at", "inDateRange", ["2024-01-01", "2024-01-31"]),
        (ordered_at >= datetime(2024, 1, 1)) & (ordered_at < datetime(2024, 2, 1)),
    ),
    (
        "inDateRange-relative-last-month",
        F("orders.ordered_at", "inDateRange", ["last month"]),
        (ordered_at >= datetime(2024, 3, 1)) & (ordered_at < datetime(2024, 4, 1)),
    ),
    (
        "onTheDate-is-that-whole-day",
        F("orders.ordered_at", "onTheDate", ["2024-01-31"]),
        (ordered_at >= datetime(2024, 1, 31)) & (ordered_at < datetime(2024, 2, 1)),
    ),
    (
        "inDateRange-on-a-date-column",
        F("orders.shipped_on", "inDateRange", ["2024-01-04", "2024-03-20"]),
        shipped_on.is_between(datetime(2024, 1, 4).date(), datetime(2024, 3, 20).date()),
    ),
    (
        "notInDateRange-drops-nulls-as-cube-does",
        F("orders.shipped_on", "notInDateRange", ["2024-01-01", "2024-01-31"]),
        (shipped_on < datetime(2024, 1, 1).date()) | (shipped_on > datetime(2024, 1, 31).date()),
    ),
    (
        "notInDateRange-on-a-timestamp",
        F("orders.ordered_at", "notInDateRange", ["2024-01-01", "2024-02-01"]),
        (ordered_at < datetime(2024, 1, 1)) | (ordered_at >= datetime(2024, 2, 2)),
    ),
    (
        "beforeDate-is-strict",
        F("orders.ordered_at", "beforeDate", ["2024-02-01"]),
        ordered_at < datetime(2024, 2, 1),
    ),
    (
        "beforeOrOnDate-includes-the-whole-day",
        F("orders.ordered_at", "beforeOrOnDate", ["2024-02-01"]),
        ordered_at < datetime(2024, 2, 2),
    ),
    (
        "afterDate-excludes-the-whole-day",
        F("orders.ordered_at", "afterDate", ["2024-02-01"]),
        ordered_at >= datetime(2024, 2, 2),
    ),
    (
        "afterDate-with-a-time-is-strict",
        F("orders.ordered_at", "afterDate", ["2024-02-01T00:00:00"]),
        ordered_at > datetime(2024, 2, 1),
    ),
    (
        "afterOrOnDate",
        F("orders.ordered_at", "afterOrOnDate", ["2024-02-01"]),
        ordered_at >= datetime(2024, 2, 1),
    ),
    (
        "beforeDate-on-a-date-column",
        F("orders.shipped_on", "beforeDate", ["2024-01-04"]),
        shipped_on < datetime(2024, 1, 4).date(),
    ),
    (
        "afterDate-on-a-date-column",
        F("orders.shipped_on", "afterDate", ["2024-03-20"]),
        shipped_on > datetime(2024, 3, 20).date(),
    ),
    (
        "afterOrOnDate-on-a-date-column",
        F("orders.shipped_on", "afterOrOnDate", ["2024-03-20"]),
        shipped_on >= datetime(2024, 3, 20).date(),
    ),
    (
        "gt-on-a-timestamp",
        F("orders.ordered_at", "gt", ["2024-02-01T00:00:00"]),
        ordered_at > datetime(2024, 2, 1),
    ),
]


@pytest.mark.parametrize(
    ("flt", "predicate"),
    [pytest.param(f, p, id=name) for name, f, p in OPERATOR_CASES],
)
def test_filter_operator_selects_the_rows_polars_selects(
    shop_kit: ek.EmbedKit,
    seller1: ek.Principal,
    shop_orders: pl.DataFrame,
    flt: ek.Filter,
    predicate: pl.Expr,
) -> None:
    assert order_ids(shop_kit, seller1, flt) == expected_ids(shop_orders, predicate)


def test_every_operator_of_the_spec_is_covered() -> None:
    from embedkit.query.spec import OPERATORS

    assert {f.operator for _, f, _ in OPERATOR_CASES} == set(OPERATORS)


def test_date_operators_read_dates_in_the_query_time_zone(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    # 2024-02-01 in New York starts at 05:00 UTC, so order 3 (00:00 UTC) is before it.
    flt = F("orders.ordered_at", "beforeDate", ["2024-02-01"])
    got = order_ids(shop_kit, seller1, flt, timezone="America/New_York")
    assert got == expected_ids(shop_orders, ordered_at < datetime(2024, 2, 1, 5))
    assert 3 in got


def test_filter_value_that_looks_like_sql_is_only_a_value(
    shop_kit: ek.EmbedKit, seller1: ek.Principal
) -> None:
    flt = F("orders.status", "equals", ["completed' OR '1'='1"])
    assert order_ids(shop_kit, seller1, flt) == set()


# -- nested and / or ----------------------------------------------------------------------


def test_or_with_a_nested_and_selects_the_rows_polars_selects(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    flt = ek.Or(
        F("orders.status", "equals", ["pending"]),
        ek.And(F("orders.amount", "gt", [10]), F("orders.region", "equals", ["north"])),
    )
    predicate = (status == "pending") | ((amount > 10) & (pl.col("region") == "north"))
    assert order_ids(shop_kit, seller1, flt) == expected_ids(shop_orders, predicate)


def test_and_with_a_nested_or_selects_the_rows_polars_selects(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    flt = ek.And(
        ek.Or(F("orders.region", "equals", ["north"]), F("orders.region", "equals", ["south"])),
        ek.Or(F("orders.customer", "contains", ["alice"]), F("orders.amount", "lt", [5])),
    )
    predicate = pl.col("region").is_in(["north", "south"]) & (
        lower_customer.str.contains("alice", literal=True) | (amount < 5)
    )
    assert order_ids(shop_kit, seller1, flt) == expected_ids(shop_orders, predicate)


def test_several_top_level_filters_are_and_ed(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    got = order_ids(
        shop_kit,
        seller1,
        F("orders.status", "equals", ["completed"]),
        F("orders.amount", "lt", [50]),
    )
    assert got == expected_ids(shop_orders, (status == "completed") & (amount < 50))


def test_or_never_widens_the_tenant_scope(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    flt = ek.Or(F("orders.status", "set"), F("orders.status", "notSet"))
    assert order_ids(shop_kit, seller1, flt) == set(tenant_rows(shop_orders)["order_id"])


def test_empty_or_group_is_a_query_error(shop_kit: ek.EmbedKit, seller1: ek.Principal) -> None:
    with pytest.raises(ek.QueryError, match="at least one item"):
        order_ids(shop_kit, seller1, ek.Or())


@pytest.mark.parametrize(
    ("flt", "message"),
    [
        pytest.param(F("orders.amount", "contains", ["1"]), "needs a string", id="contains-number"),
        pytest.param(F("orders.status", "gt", []), "at least one value", id="no-values"),
        pytest.param(F("orders.status", "set", ["x"]), "takes no values", id="set-with-values"),
        pytest.param(F("orders.amount", "between", [1]), "exactly two", id="between-one-value"),
        pytest.param(F("orders.amount", "gt", [1, 2]), "exactly one", id="gt-two-values"),
        pytest.param(F("orders.amount", "equals", [None]), "set", id="null-value"),
        pytest.param(F("orders.amount", "gt", ["ten"]), "not a number", id="text-for-number"),
        pytest.param(F("orders.status", "like", ["x"]), "use one of", id="unknown-operator"),
        pytest.param(
            F("orders.status", "inDateRange", ["last month"]), "date", id="date-op-on-text"
        ),
        pytest.param(
            F("orders.ordered_at", "inDateRange", ["2024-02-01", "2024-01-01"]),
            "ends before it starts",
            id="reversed-range",
        ),
        pytest.param(F("orders.ordered_at", "beforeDate", ["yesterday-ish"]), "ISO", id="bad-date"),
    ],
)
def test_malformed_filter_is_a_query_error_naming_the_member(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, flt: ek.Filter, message: str
) -> None:
    with pytest.raises(ek.QueryError, match=message) as err:
        order_ids(shop_kit, seller1, flt)
    assert flt.member in str(err.value)


# -- filters on measures -------------------------------------------------------------------


def revenue_by_status(frame: pl.DataFrame) -> pl.DataFrame:
    return (
        tenant_rows(frame)
        .group_by("status")
        .agg(
            revenue=pl.when(amount.count() > 0).then(amount.sum()),
            count=pl.len(),
            returned=(status == "returned").sum(),
        )
    )


def test_measure_filter_applies_after_aggregation(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    q = ek.Query(
        measures=["orders.revenue"],
        dimensions=["orders.status"],
        filters=[F("orders.revenue", "gt", [25])],
    )
    got = {
        r["orders.status"]: r["orders.revenue"]
        for r in shop_kit.query(q, principal=seller1).to_pylist()
    }
    expected = revenue_by_status(shop_orders).filter(pl.col("revenue") > 25)
    assert got == dict(zip(expected["status"], expected["revenue"], strict=True))


def test_filter_on_a_measure_not_selected_still_limits_groups(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    q = ek.Query(
        measures=["orders.revenue"],
        dimensions=["orders.status"],
        filters=[F("orders.count", "gte", [2])],
    )
    got = {r["orders.status"] for r in shop_kit.query(q, principal=seller1).to_pylist()}
    expected = revenue_by_status(shop_orders).filter(pl.col("count") >= 2)
    assert got == set(expected["status"])


def test_filter_on_a_derived_measure(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    q = ek.Query(
        measures=["orders.return_rate"],
        dimensions=["orders.region"],
        filters=[F("orders.return_rate", "gt", [0])],
    )
    got = {r["orders.region"] for r in shop_kit.query(q, principal=seller1).to_pylist()}
    by_region = (
        tenant_rows(shop_orders)
        .group_by("region")
        .agg(rate=(status == "returned").sum() / pl.len())
    )
    assert got == set(by_region.filter(pl.col("rate") > 0)["region"])


def test_measure_and_dimension_filters_combine(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    q = ek.Query(
        measures=["orders.count"],
        dimensions=["orders.region"],
        filters=[F("orders.amount", "gte", [10]), F("orders.count", "equals", [2])],
    )
    got = {
        r["orders.region"]: r["orders.count"]
        for r in shop_kit.query(q, principal=seller1).to_pylist()
    }
    counts = tenant_rows(shop_orders).filter(amount >= 10).group_by("region").agg(n=pl.len())
    expected = counts.filter(pl.col("n") == 2)
    assert got == dict(zip(expected["region"], expected["n"], strict=True))


def test_mixing_measure_and_dimension_filters_in_one_or_is_refused(
    shop_kit: ek.EmbedKit, seller1: ek.Principal
) -> None:
    flt = ek.Or(F("orders.revenue", "gt", [1]), F("orders.status", "equals", ["completed"]))
    with pytest.raises(ek.QueryError, match="mixes measure and dimension"):
        order_ids(shop_kit, seller1, flt)


def test_text_operator_on_a_measure_is_refused(
    shop_kit: ek.EmbedKit, seller1: ek.Principal
) -> None:
    with pytest.raises(ek.QueryError, match=r"cannot filter 'orders\.revenue'"):
        order_ids(shop_kit, seller1, F("orders.revenue", "contains", ["1"]))


# -- measures ----------------------------------------------------------------------------


def test_every_aggregation_matches_polars_per_group(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    members = [
        "count",
        "revenue",
        "avg_amount",
        "min_amount",
        "max_amount",
        "customers",
        "returned",
        "return_rate",
        "completed_revenue",
    ]
    q = ek.Query(measures=[f"orders.{m}" for m in members], dimensions=["orders.region"])
    got = {r["orders.region"]: r for r in shop_kit.query(q, principal=seller1).to_pylist()}
    mine = tenant_rows(shop_orders)
    assert set(got) == set(mine["region"])
    for region, rows in mine.group_by("region"):
        amounts = [a for a in rows["amount"] if a is not None]
        completed = [
            a
            for a, s in zip(rows["amount"], rows["status"], strict=True)
            if s == "completed" and a is not None
        ]
        returned = sum(1 for s in rows["status"] if s == "returned")
        row = got[region[0]]
        assert row["orders.count"] == rows.height
        assert row["orders.revenue"] == (sum(amounts) if amounts else None)
        assert row["orders.avg_amount"] == (
            pytest.approx(sum(amounts) / len(amounts)) if amounts else None
        )
        assert row["orders.min_amount"] == (min(amounts) if amounts else None)
        assert row["orders.max_amount"] == (max(amounts) if amounts else None)
        assert row["orders.customers"] == rows["customer"].drop_nulls().n_unique()
        assert row["orders.returned"] == returned
        assert row["orders.return_rate"] == pytest.approx(returned / rows.height)
        assert row["orders.completed_revenue"] == (sum(completed) if completed else None)


# -- segments ----------------------------------------------------------------------------


def test_segment_limits_rows_like_its_condition(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    got = order_ids(shop_kit, seller1, segments=["orders.completed"])
    assert got == expected_ids(shop_orders, status == "completed")


def test_several_segments_and_a_filter_are_and_ed(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    got = order_ids(
        shop_kit,
        seller1,
        F("orders.region", "notEquals", ["east"]),
        segments=["orders.completed", "orders.big"],
    )
    predicate = (status == "completed") & (amount >= 20) & (pl.col("region") != "east")
    assert got == expected_ids(shop_orders, predicate)


def test_unknown_segment_lists_the_segments(shop_kit: ek.EmbedKit, seller1: ek.Principal) -> None:
    with pytest.raises(ek.UnknownMemberError, match=r"orders\.big, orders\.completed"):
        order_ids(shop_kit, seller1, segments=["orders.nope"])


# -- order, limit, offset, total -----------------------------------------------------------


def region_revenue(frame: pl.DataFrame) -> pl.DataFrame:
    return (
        tenant_rows(frame)
        .group_by("region")
        .agg(revenue=pl.when(amount.count() > 0).then(amount.sum()))
    )


def rows_of(result: ek.QueryResult, *columns: str) -> list[tuple[Any, ...]]:
    return [tuple(r[c] for c in columns) for r in result.to_pylist()]


def test_order_by_measure_descending_then_dimension(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    q = ek.Query(
        measures=["orders.revenue"],
        dimensions=["orders.region"],
        order=[("orders.revenue", "desc")],
    )
    got = rows_of(shop_kit.query(q, principal=seller1), "orders.region", "orders.revenue")
    expected = region_revenue(shop_orders).sort(
        ["revenue", "region"], descending=[True, False], nulls_last=True
    )
    assert got == list(expected.select("region", "revenue").iter_rows())


def test_order_given_as_a_mapping_sorts_ascending_with_nulls_last(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    q = ek.Query(
        measures=["orders.revenue"],
        dimensions=["orders.region"],
        order={"orders.region": "asc"},
    )
    got = rows_of(shop_kit.query(q, principal=seller1), "orders.region", "orders.revenue")
    expected = region_revenue(shop_orders).sort("region", nulls_last=True)
    assert got == list(expected.select("region", "revenue").iter_rows())


def test_limit_and_offset_return_the_page_polars_slices(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    q = ek.Query(
        dimensions=["orders.order_id"],
        measures=["orders.count"],
        order=[("orders.order_id", "asc")],
        limit=3,
        offset=2,
        total=True,
    )
    result = shop_kit.query(q, principal=seller1)
    all_ids = sorted(tenant_rows(shop_orders)["order_id"].to_list())
    assert [r["orders.order_id"] for r in result.to_pylist()] == all_ids[2:5]
    assert result.total == len(all_ids)
    assert "__embedkit_total__" not in result.table.column_names


def test_total_is_reported_when_the_offset_is_past_the_end(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    q = ek.Query(dimensions=["orders.region"], measures=["orders.count"], offset=100, total=True)
    result = shop_kit.query(q, principal=seller1)
    assert result.num_rows == 0
    assert result.total == tenant_rows(shop_orders)["region"].n_unique()


def test_total_counts_groups_after_measure_filters(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    q = ek.Query(
        dimensions=["orders.region"],
        measures=["orders.revenue"],
        filters=[F("orders.revenue", "gt", [20])],
        limit=1,
        total=True,
    )
    result = shop_kit.query(q, principal=seller1)
    expected = region_revenue(shop_orders).filter(pl.col("revenue") > 20)
    assert result.num_rows == 1
    assert result.total == expected.height


def test_total_is_none_unless_asked(shop_kit: ek.EmbedKit, seller1: ek.Principal) -> None:
    result = shop_kit.query(ek.Query(measures=["orders.count"]), principal=seller1)
    assert result.total is None


def test_default_order_is_first_measure_descending(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    q = ek.Query(measures=["orders.revenue"], dimensions=["orders.region"])
    got = rows_of(shop_kit.query(q, principal=seller1), "orders.region", "orders.revenue")
    expected = region_revenue(shop_orders).sort(
        ["revenue", "region"], descending=[True, False], nulls_last=True
    )
    assert got == list(expected.select("region", "revenue").iter_rows())


def test_default_order_is_first_time_bucket_ascending(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    q = ek.Query(measures=["orders.revenue"], time=[ek.Time("orders.ordered_at", grain="month")])
    got = [r["orders.ordered_at.month"] for r in shop_kit.query(q, principal=seller1).to_pylist()]
    months = tenant_rows(shop_orders)["ordered_at"].dt.truncate("1mo").unique().sort()
    assert got == months.to_list()


def test_default_order_without_measures_is_first_dimension_ascending(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    q = ek.Query(dimensions=["orders.customer"])
    got = [r["orders.customer"] for r in shop_kit.query(q, principal=seller1).to_pylist()]
    expected = tenant_rows(shop_orders)["customer"].unique().sort(nulls_last=True)
    assert got == expected.to_list()


def test_order_by_a_time_dimension_name_orders_its_bucket(
    shop_kit: ek.EmbedKit, seller1: ek.Principal
) -> None:
    q = ek.Query(
        measures=["orders.count"],
        time=[ek.Time("orders.ordered_at", grain="month")],
        order=[("orders.ordered_at", "desc")],
    )
    got = [r["orders.ordered_at.month"] for r in shop_kit.query(q, principal=seller1).to_pylist()]
    assert got == sorted(got, reverse=True)
    assert len(got) > 1


def test_order_by_a_member_not_returned_is_refused_with_the_outputs(
    shop_kit: ek.EmbedKit, seller1: ek.Principal
) -> None:
    q = ek.Query(measures=["orders.count"], order=[("orders.revenue", "desc")])
    with pytest.raises(ek.QueryError, match=r"it returns: orders\.count"):
        shop_kit.query(q, principal=seller1)


@pytest.mark.parametrize("paging", [{"limit": -1}, {"offset": -5}, {"limit": True}, {"limit": 1.5}])
def test_bad_paging_is_a_query_error(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, paging: dict[str, Any]
) -> None:
    with pytest.raises(ek.QueryError, match=r"must be (a non-negative integer|an integer from 0)"):
        shop_kit.query(ek.Query(measures=["orders.count"], **paging), principal=seller1)


def test_joined_dimension_groups_by_the_tenants_own_products(
    shop_kit: ek.EmbedKit,
    seller1: ek.Principal,
    shop_orders: pl.DataFrame,
    shop_products: pl.DataFrame,
) -> None:
    q = ek.Query(measures=["orders.count", "orders.revenue"], dimensions=["products.category"])
    got = {
        r["products.category"]: (r["orders.count"], r["orders.revenue"])
        for r in shop_kit.query(q, principal=seller1).to_pylist()
    }
    joined = tenant_rows(shop_orders).join(
        tenant_rows(shop_products).drop("seller_id"), on="product_id", how="left"
    )
    expected = joined.group_by("category").agg(
        n=pl.len(), revenue=pl.when(amount.count() > 0).then(amount.sum())
    )
    assert got == {c: (n, r) for c, n, r in expected.select("category", "n", "revenue").iter_rows()}


def test_on_the_date_keeps_the_whole_local_day(
    shop_kit: ek.EmbedKit, shop_orders: pl.DataFrame
) -> None:
    day = shop_orders.filter(pl.col("seller_id") == 1)["ordered_at"].min()
    assert day is not None
    q = ek.Query(
        measures=["orders.count"],
        filters=[ek.Filter("orders.ordered_at", "onTheDate", [day.date().isoformat()])],
    )
    got = shop_kit.query(q, principal=ek.Principal(tenant=1)).to_pylist()[0]["orders.count"]
    want = shop_orders.filter(
        (pl.col("seller_id") == 1) & (pl.col("ordered_at").dt.date() == day.date())
    ).height
    assert want > 0
    assert got == want


def test_total_is_counted_even_when_the_page_is_empty(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    statuses = shop_orders.filter(pl.col("seller_id") == 1)["status"].n_unique()
    assert statuses > 1
    q = ek.Query(measures=["orders.count"], dimensions=["orders.status"], total=True, limit=0)
    result = shop_kit.query(q, principal=seller1)
    assert result.num_rows == 0
    assert result.total == statuses
