"""The JSON form of a query (Cube's REST format where they overlap) and its JSON Schema."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

import embedkit as ek

F = ek.Filter
VALIDATOR = jsonschema.Draft202012Validator(ek.QUERY_JSON_SCHEMA)

# (name, Cube-style JSON, the Query it means)
EXAMPLES: list[tuple[str, dict[str, Any], ek.Query]] = [
    (
        "measures-and-dimensions",
        {"measures": ["orders.count", "orders.revenue"], "dimensions": ["orders.status"]},
        ek.Query(measures=["orders.count", "orders.revenue"], dimensions=["orders.status"]),
    ),
    (
        "time-dimension-with-granularity-and-date-range",
        {
            "measures": ["orders.count"],
            "timeDimensions": [
                {
                    "dimension": "orders.ordered_at",
                    "granularity": "month",
                    "dateRange": ["2024-01-01", "2024-03-31"],
                }
            ],
        },
        ek.Query(
            measures=["orders.count"],
            time=[ek.Time("orders.ordered_at", "month", ("2024-01-01", "2024-03-31"))],
        ),
    ),
    (
        "relative-date-range-without-granularity",
        {
            "measures": ["orders.count"],
            "timeDimensions": [{"dimension": "orders.ordered_at", "dateRange": "last 7 days"}],
        },
        ek.Query(
            measures=["orders.count"],
            time=[ek.Time("orders.ordered_at", date_range="last 7 days")],
        ),
    ),
    (
        "granularity-null",
        {
            "measures": ["orders.count"],
            "timeDimensions": [{"dimension": "orders.ordered_at", "granularity": None}],
        },
        ek.Query(measures=["orders.count"], time=[ek.Time("orders.ordered_at")]),
    ),
    (
        "compare-date-range",
        {
            "measures": ["orders.revenue"],
            "timeDimensions": [
                {
                    "dimension": "orders.ordered_at",
                    "granularity": "day",
                    "compareDateRange": ["this week", ["2024-01-01", "2024-01-07"]],
                }
            ],
        },
        ek.Query(
            measures=["orders.revenue"],
            time=[
                ek.Time(
                    "orders.ordered_at",
                    "day",
                    compare_date_range=("this week", ("2024-01-01", "2024-01-07")),
                )
            ],
        ),
    ),
    (
        "filters-with-member-and-with-dimension",
        {
            "measures": ["orders.count"],
            "filters": [
                {"member": "orders.status", "operator": "equals", "values": ["completed"]},
                {"dimension": "orders.amount", "operator": "gt", "values": ["20"]},
                {"member": "orders.customer", "operator": "set"},
            ],
        },
        ek.Query(
            measures=["orders.count"],
            filters=[
                F("orders.status", "equals", ["completed"]),
                F("orders.amount", "gt", ["20"]),
                F("orders.customer", "set"),
            ],
        ),
    ),
    (
        "nested-and-or",
        {
            "measures": ["orders.count"],
            "filters": [
                {
                    "or": [
                        {"member": "orders.status", "operator": "equals", "values": ["pending"]},
                        {
                            "and": [
                                {"member": "orders.amount", "operator": "gte", "values": [10]},
                                {
                                    "member": "orders.region",
                                    "operator": "in",
                                    "values": ["north", "south"],
                                },
                            ]
                        },
                    ]
                }
            ],
        },
        ek.Query(
            measures=["orders.count"],
            filters=[
                ek.Or(
                    F("orders.status", "equals", ["pending"]),
                    ek.And(
                        F("orders.amount", "gte", [10]),
                        F("orders.region", "in", ["north", "south"]),
                    ),
                )
            ],
        ),
    ),
    (
        "segments-order-object-paging-timezone-total",
        {
            "measures": ["orders.revenue"],
            "dimensions": ["orders.region"],
            "segments": ["orders.completed"],
            "order": {"orders.revenue": "desc", "orders.region": "asc"},
            "limit": 10,
            "offset": 20,
            "timezone": "Europe/Paris",
            "total": True,
        },
        ek.Query(
            measures=["orders.revenue"],
            dimensions=["orders.region"],
            segments=["orders.completed"],
            order=[("orders.revenue", "desc"), ("orders.region", "asc")],
            limit=10,
            offset=20,
            timezone="Europe/Paris",
            total=True,
        ),
    ),
    (
        "order-as-list-of-pairs",
        {
            "measures": ["orders.revenue"],
            "dimensions": ["orders.region"],
            "order": [["orders.region", "asc"], ["orders.revenue", "desc"]],
        },
        ek.Query(
            measures=["orders.revenue"],
            dimensions=["orders.region"],
            order=[("orders.region", "asc"), ("orders.revenue", "desc")],
        ),
    ),
    (
        "compare-previous-period",
        {
            "measures": ["orders.revenue"],
            "timeDimensions": [{"dimension": "orders.ordered_at", "dateRange": "this month"}],
            "compare": "previous_period",
        },
        ek.Query(
            measures=["orders.revenue"],
            time=[ek.Time("orders.ordered_at", date_range="this month")],
            compare="previous_period",
        ),
    ),
    (
        "cube-client-extras",
        {"measures": ["orders.count"], "renewQuery": True, "ungrouped": False},
        ek.Query(measures=["orders.count"]),
    ),
    (
        "date-operators",
        {
            "measures": ["orders.count"],
            "filters": [
                {
                    "member": "orders.ordered_at",
                    "operator": "inDateRange",
                    "values": ["2024-01-01", "2024-01-31"],
                },
                {"member": "orders.shipped_on", "operator": "beforeDate", "values": ["2024-02-01"]},
            ],
        },
        ek.Query(
            measures=["orders.count"],
            filters=[
                F("orders.ordered_at", "inDateRange", ["2024-01-01", "2024-01-31"]),
                F("orders.shipped_on", "beforeDate", ["2024-02-01"]),
            ],
        ),
    ),
]


def examples() -> list[Any]:
    return [pytest.param(data, query, id=name) for name, data, query in EXAMPLES]


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(ek.QUERY_JSON_SCHEMA)


@pytest.mark.parametrize(("data", "query"), examples())
def test_cube_style_json_parses_to_the_query_it_means(
    data: dict[str, Any], query: ek.Query
) -> None:
    assert ek.Query.from_json(data) == query


@pytest.mark.parametrize(("data", "query"), examples())
def test_every_example_validates_against_the_schema(data: dict[str, Any], query: ek.Query) -> None:
    VALIDATOR.validate(data)


@pytest.mark.parametrize(("data", "query"), examples())
def test_query_to_json_and_back_is_the_same_query(data: dict[str, Any], query: ek.Query) -> None:
    text = json.dumps(query.to_json())
    assert ek.Query.from_json(json.loads(text)) == query


@pytest.mark.parametrize(("data", "query"), examples())
def test_to_json_output_validates_against_the_schema(data: dict[str, Any], query: ek.Query) -> None:
    VALIDATOR.validate(query.to_json())


def test_empty_query_round_trips_to_an_empty_object() -> None:
    assert ek.Query().to_json() == {}
    assert ek.Query.from_json({}) == ek.Query()


def test_json_query_runs_like_the_python_query(
    shop_kit: ek.EmbedKit, seller1: ek.Principal
) -> None:
    name, data, query = EXAMPLES[6]
    assert name == "nested-and-or"
    assert (
        shop_kit.query(data, principal=seller1).to_pylist()
        == shop_kit.query(query, principal=seller1).to_pylist()
    )


def test_single_date_in_date_range_means_that_day_as_in_cube(
    shop_kit: ek.EmbedKit, seller1: ek.Principal
) -> None:
    data = {
        "measures": ["orders.count"],
        "timeDimensions": [{"dimension": "orders.ordered_at", "dateRange": "2024-01-02"}],
    }
    VALIDATOR.validate(data)
    assert shop_kit.query(data, principal=seller1).to_pylist() == [{"orders.count": 1}]


# -- malformed JSON ---------------------------------------------------------------------------

# (name, JSON, words the error must contain to say where)
MALFORMED: list[tuple[str, Any, list[str]]] = [
    ("not-an-object", ["orders.count"], ["object"]),
    ("unknown-key", {"measures": ["orders.count"], "dimension": ["x"]}, ["dimension"]),
    ("measures-not-a-list", {"measures": "orders.count"}, ["measures"]),
    ("measure-not-a-string", {"measures": [1]}, ["measures"]),
    (
        "time-dimensions-not-a-list",
        {"timeDimensions": {"dimension": "orders.at"}},
        ["timeDimensions"],
    ),
    (
        "time-dimension-without-dimension",
        {"timeDimensions": [{"granularity": "day"}]},
        ["timeDimensions[0]", "dimension"],
    ),
    (
        "bad-granularity",
        {
            "timeDimensions": [
                {"dimension": "orders.at"},
                {"dimension": "orders.at", "granularity": "fortnight"},
            ]
        },
        ["timeDimensions[1]", "fortnight", "month"],
    ),
    (
        "unknown-time-dimension-key",
        {"timeDimensions": [{"dimension": "orders.at", "range": "today"}]},
        ["timeDimensions[0]", "range"],
    ),
    (
        "date-range-of-three",
        {"timeDimensions": [{"dimension": "orders.at", "dateRange": ["a", "b", "c"]}]},
        ["timeDimensions[0].dateRange"],
    ),
    (
        "empty-compare-date-range",
        {"timeDimensions": [{"dimension": "orders.at", "compareDateRange": []}]},
        ["timeDimensions[0].compareDateRange"],
    ),
    (
        "bad-range-inside-compare-date-range",
        {"timeDimensions": [{"dimension": "orders.at", "compareDateRange": ["today", 7]}]},
        ["timeDimensions[0].compareDateRange[1]"],
    ),
    ("filters-not-a-list", {"filters": {"member": "x"}}, ["filters"]),
    (
        "filter-without-member",
        {"filters": [{"operator": "set"}]},
        ["filters[0]", "member"],
    ),
    (
        "unknown-operator",
        {"filters": [{"member": "orders.status", "operator": "like", "values": ["x"]}]},
        ["filters[0]", "like", "equals"],
    ),
    (
        "values-not-a-list",
        {"filters": [{"member": "orders.status", "operator": "equals", "values": "x"}]},
        ["filters[0]", "values"],
    ),
    (
        "value-is-an-object",
        {"filters": [{"member": "orders.status", "operator": "equals", "values": [{"a": 1}]}]},
        ["filters[0]", "values"],
    ),
    (
        "unknown-filter-key",
        {"filters": [{"member": "orders.status", "operator": "set", "value": []}]},
        ["filters[0]", "value"],
    ),
    (
        "deeply-nested-bad-filter",
        {
            "filters": [
                {
                    "and": [
                        {"member": "orders.status", "operator": "set"},
                        {"or": [{"member": "orders.status"}]},
                    ]
                }
            ]
        },
        ["filters[0].and[1].or[0]"],
    ),
    (
        "and-mixed-with-a-filter",
        {"filters": [{"and": [], "member": "orders.status", "operator": "set"}]},
        ["filters[0]", "and"],
    ),
    ("order-bad-direction", {"order": {"orders.count": "up"}}, ["order", "asc"]),
    ("order-bad-pair", {"order": [["orders.count"]]}, ["order"]),
    ("order-a-string", {"order": "orders.count"}, ["order"]),
    ("negative-limit", {"limit": -1}, ["limit"]),
    ("limit-a-string", {"limit": "10"}, ["limit"]),
    ("offset-a-float", {"offset": 1.5}, ["offset"]),
    ("timezone-not-a-string", {"timezone": 2}, ["timezone"]),
    ("total-not-a-boolean", {"total": "yes"}, ["total"]),
    ("compare-unknown", {"compare": "last_year"}, ["compare"]),
    ("ungrouped", {"ungrouped": True}, ["ungrouped"]),
    ("segments-not-a-list", {"segments": "orders.completed"}, ["segments"]),
]


def malformed() -> list[Any]:
    return [pytest.param(data, words, id=name) for name, data, words in MALFORMED]


@pytest.mark.parametrize(("data", "words"), malformed())
def test_malformed_json_is_a_query_error_that_says_where(data: Any, words: list[str]) -> None:
    with pytest.raises(ek.QueryError) as err:
        ek.Query.from_json(data)
    message = str(err.value)
    for word in words:
        assert word in message


@pytest.mark.parametrize(("data", "words"), malformed())
def test_the_schema_rejects_what_the_parser_rejects(data: Any, words: list[str]) -> None:
    assert not VALIDATOR.is_valid(data)


@pytest.mark.parametrize(("data", "words"), malformed())
def test_malformed_json_is_refused_by_query_before_anything_runs(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, data: Any, words: list[str]
) -> None:
    with pytest.raises(ek.QueryError):
        shop_kit.query(data, principal=seller1)
