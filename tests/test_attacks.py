"""Attacks on scoping, rules and input handling, from a hostile caller and a careless app.

Every test asserts the secure behaviour. Tests marked "finding" in their docstring
demonstrate a weakness found in review; the others pin attacks embedkit already
resists that tests/test_security.py does not cover. All run on real DuckDB (and
Polars where the engine matters) through :class:`embedkit.EmbedKit`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import polars as pl
import pytest

import embedkit as ek
from embedkit.compile import Compiler
from embedkit.engines.polars import PolarsEngine

ENGINES = ["duckdb", "polars"]


def refused_or(register: Callable[[], ek.EmbedKit]) -> ek.EmbedKit | None:
    """The kit ``register`` builds, or None when registration refused the model."""
    try:
        return register()
    except (ek.ModelError, TypeError, ValueError):
        return None


def query_or_error(kit: ek.EmbedKit, query: Any, principal: ek.Principal, engine: str) -> str:
    """Everything a caller sees of a query: its rows, or its error's text."""
    try:
        result = kit.query(query, principal=principal, engine=engine)  # type: ignore[arg-type]
    except ek.EmbedKitError as err:
        return str(err)
    return repr(result.to_pylist())


# -- column rules and joins ------------------------------------------------------------------


@pytest.fixture(scope="module")
def hidden_join_key_kit(
    shop_orders: pl.DataFrame, shop_products: pl.DataFrame
) -> Iterator[ek.EmbedKit]:
    """Orders hide ``product_id`` from non-admins; products expose their own ``product_id``."""
    kit = ek.EmbedKit(
        [
            ek.Dataset(
                "orders",
                shop_orders,
                tenant_key="seller_id",
                dimensions=[ek.Dimension("status")],
                measures=[ek.Measure("count", "count")],
                joins=[ek.Join("products", on={"product_id": "product_id"})],
                column_rules=[ek.ColumnRule(["product_id"], claim="role", allow=["admin"])],
            ),
            ek.Dataset(
                "products",
                shop_products,
                tenant_key="seller_id",
                dimensions=[ek.Dimension("product_id"), ek.Dimension("category")],
                measures=[ek.Measure("count", "count")],
            ),
        ]
    )
    yield kit
    kit.close()


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(
            {"measures": ["orders.count"], "dimensions": ["products.product_id"]}, id="group-by"
        ),
        pytest.param(
            {
                "measures": ["orders.count"],
                "filters": [{"member": "products.product_id", "operator": "equals", "values": [2]}],
            },
            id="filter",
        ),
    ],
)
def test_column_rule_on_a_join_key_is_not_bypassed_through_the_join(
    hidden_join_key_kit: ek.EmbedKit, query: dict[str, Any]
) -> None:
    """Finding: a hidden join key is read back through the joined dataset's same column.

    ``orders.product_id`` is hidden, yet grouping orders by ``products.product_id``
    (joined on it) returns every order's product id.
    """
    viewer = ek.Principal(1, claims={"role": "viewer"})
    with pytest.raises((ek.AccessDenied, ek.QueryError)):
        hidden_join_key_kit.query(query, principal=viewer)


def test_column_rule_on_a_join_key_still_allows_the_join_to_those_permitted(
    hidden_join_key_kit: ek.EmbedKit, shop_orders: pl.DataFrame
) -> None:
    admin = ek.Principal(1, claims={"role": "admin"})
    q = {"measures": ["orders.count"], "dimensions": ["products.category"]}
    got = hidden_join_key_kit.query(q, principal=admin).to_pylist()
    assert (
        sum(r["orders.count"] for r in got) == shop_orders.filter(pl.col("seller_id") == 1).height
    )


@pytest.mark.parametrize("role", ["", "admin", "fin", "finance"])
def test_column_rule_allow_is_compared_by_equality_not_as_a_substring(
    shop_products: pl.DataFrame, role: str
) -> None:
    """Finding: ``allow="finance_admin"`` (a string, natural in YAML) matches substrings.

    ``v in self.allow`` on a string is a substring test, so roles "", "admin" and
    "fin" all see the hidden ``cost``. A string ``allow`` should be refused at
    registration or treated as one value.
    """

    def register() -> ek.EmbedKit:
        rule = ek.ColumnRule(["cost"], claim="role", allow="finance_admin")  # type: ignore[arg-type]
        return ek.EmbedKit(
            [
                ek.Dataset(
                    "products",
                    shop_products,
                    tenant_key="seller_id",
                    dimensions=[ek.Dimension("cost")],
                    measures=[ek.Measure("count", "count")],
                    column_rules=[rule],
                )
            ]
        )

    kit = refused_or(register)
    if kit is None:
        return
    principal = ek.Principal(1, claims={"role": role})
    with pytest.raises(ek.AccessDenied):
        kit.query(
            {"measures": ["products.count"], "dimensions": ["products.cost"]}, principal=principal
        )
    assert kit.query(
        {"measures": ["products.count"], "dimensions": ["products.cost"]},
        principal=ek.Principal(1, claims={"role": "finance_admin"}),
    ).num_rows


@pytest.mark.parametrize(
    "sql", ["AMOUNT", '"AMOUNT"', "Amount", "\uff41mount", "orders.amount", "[amount]"]
)
def test_model_expression_cannot_reach_a_hidden_column_under_another_spelling(
    shop_orders: pl.DataFrame, sql: str
) -> None:
    """A member must not read ``amount`` under a spelling the column rule does not name."""
    kit = refused_or(
        lambda: ek.EmbedKit(
            [
                ek.Dataset(
                    "orders",
                    shop_orders,
                    tenant_key="seller_id",
                    measures=[ek.Measure("count", "count"), ek.Measure("leak", "sum", sql=sql)],
                    column_rules=[ek.ColumnRule(["amount"], claim="role", allow=["admin"])],
                )
            ]
        )
    )
    if kit is None:
        return
    with pytest.raises(ek.AccessDenied):
        kit.query({"measures": ["orders.leak"]}, principal=ek.Principal(1))


@pytest.mark.parametrize(
    "name",
    [
        "ORDERS.revenue",
        "orders.Revenue",
        "orders.revenue ",
        " orders.revenue",
        "orders\uff0erevenue",
    ],
)
def test_case_and_unicode_variants_of_a_hidden_member_are_unknown(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, name: str
) -> None:
    # products.cost is hidden from non-admins in the shop; try its variants too.
    for member in (name, name.replace("orders", "products").replace("revenue", "cost")):
        with pytest.raises(ek.UnknownMemberError) as err:
            shop_kit.query({"measures": [member]}, principal=seller1)
        assert "products.cost" not in err.value.valid


# -- datasets defined by SQL ---------------------------------------------------------------------


def test_sql_dataset_keeps_the_row_and_column_rules_of_what_it_reads(
    shop_orders: pl.DataFrame,
) -> None:
    """Finding: a SQL dataset over a ruled dataset serves rows and columns its rules hide.

    ``orders`` limits rows to the ``regions`` claim and hides ``amount``; the view
    ``SELECT * FROM orders`` carries neither rule, so a north-only viewer reads the
    revenue of every region. Registration should refuse it or carry the rules over.
    """

    def register() -> ek.EmbedKit:
        return ek.EmbedKit(
            [
                ek.Dataset(
                    "orders",
                    shop_orders,
                    tenant_key="seller_id",
                    dimensions=[ek.Dimension("region"), ek.Dimension("amount")],
                    measures=[ek.Measure("revenue", "sum", sql="amount")],
                    row_rules=[ek.RowRule("region", claim="regions")],
                    column_rules=[ek.ColumnRule(["amount"], claim="role", allow=["admin"])],
                ),
                ek.Dataset(
                    "orders_view",
                    ek.SQL("SELECT * FROM orders"),
                    tenant_key="seller_id",
                    dimensions=[ek.Dimension("region")],
                    measures=[ek.Measure("revenue", "sum", sql="amount")],
                ),
            ]
        )

    kit = refused_or(register)
    if kit is None:
        return
    viewer = ek.Principal(1, claims={"regions": ["north"], "role": "viewer"})
    q = {"measures": ["orders_view.revenue"], "dimensions": ["orders_view.region"]}
    with pytest.raises(ek.AccessDenied):
        kit.query(q, principal=viewer)
    admin = ek.Principal(1, claims={"regions": ["north"], "role": "admin"})
    regions = {r["orders_view.region"] for r in kit.query(q, principal=admin).to_pylist()}
    assert regions <= {"north"}


def test_public_sql_dataset_cannot_serve_rows_of_tenant_datasets(
    shop_orders: pl.DataFrame,
) -> None:
    """Finding: ``public=True`` on a SQL dataset over tenant rows shows every tenant to all.

    A leaderboard ``SELECT seller_id, customer, sum(amount) ... FROM orders`` declared
    public hands seller 1 the names, ids and totals of sellers 2 and 3. A public
    dataset should not be allowed to read a tenant-scoped one.
    """
    kit = refused_or(
        lambda: ek.EmbedKit(
            [
                ek.Dataset("orders", shop_orders, tenant_key="seller_id"),
                ek.Dataset(
                    "board",
                    ek.SQL(
                        "SELECT seller_id AS seller, customer, sum(amount) AS total "
                        "FROM orders GROUP BY ALL"
                    ),
                    public=True,
                    dimensions=[ek.Dimension("seller"), ek.Dimension("customer")],
                    measures=[ek.Measure("total", "sum", sql="total")],
                ),
            ]
        )
    )
    if kit is None:
        return
    q = {"measures": ["board.total"], "dimensions": ["board.seller", "board.customer"]}
    text = query_or_error(kit, q, ek.Principal(1), "duckdb")
    assert "SECRET" not in text and "3000.0" not in text


def test_sql_dataset_cannot_join_rows_of_different_tenants(
    shop_orders: pl.DataFrame, shop_products: pl.DataFrame
) -> None:
    """Finding: a SQL dataset's join is materialised across tenants, before any scope.

    Joining orders to products on ``product_id`` alone (the careless, obvious SQL)
    pairs seller 1's orders with seller 2's product 1, so seller 1 sees the category
    ``SECRET-books``. SQL datasets should be scoped per relation at query time, or a
    join that does not match the tenant keys refused.
    """
    kit = refused_or(
        lambda: ek.EmbedKit(
            [
                ek.Dataset("orders", shop_orders, tenant_key="seller_id"),
                ek.Dataset("products", shop_products, tenant_key="seller_id"),
                ek.Dataset(
                    "enriched",
                    ek.SQL(
                        "SELECT o.seller_id, o.order_id, p.category FROM orders o "
                        "JOIN products p ON o.product_id = p.product_id"
                    ),
                    tenant_key="seller_id",
                    dimensions=[ek.Dimension("category")],
                    measures=[ek.Measure("count", "count")],
                ),
            ]
        )
    )
    if kit is None:
        return
    q = {"measures": ["enriched.count"], "dimensions": ["enriched.category"]}
    for engine in ENGINES:
        assert "SECRET" not in query_or_error(kit, q, ek.Principal(1), engine)


@pytest.fixture(scope="module")
def or_model_kit(shop_orders: pl.DataFrame) -> Iterator[ek.EmbedKit]:
    """Model expressions whose top level is an OR, next to the tenant predicate in WHERE."""
    kit = ek.EmbedKit(
        [
            ek.Dataset(
                "orders",
                shop_orders,
                tenant_key="seller_id",
                dimensions=[
                    ek.Dimension("order_id"),
                    ek.Dimension("flagged", sql="status = 'returned' OR amount > 50"),
                ],
                measures=[ek.Measure("count", "count")],
                segments=[ek.Segment("anything", "status IS NULL OR amount >= 0 OR TRUE")],
            )
        ]
    )
    yield kit
    kit.close()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"segments": ["orders.anything"]}, id="or-segment"),
        pytest.param(
            {"filters": [{"member": "orders.flagged", "operator": "equals", "values": [True]}]},
            id="or-dimension-equals",
        ),
        pytest.param(
            {"filters": [{"member": "orders.flagged", "operator": "notEquals", "values": [True]}]},
            id="or-dimension-not-equals",
        ),
        pytest.param(
            {
                "filters": [
                    {
                        "or": [
                            {"member": "orders.flagged", "operator": "set"},
                            {"member": "orders.flagged", "operator": "notSet"},
                        ]
                    }
                ]
            },
            id="tautology",
        ),
    ],
)
def test_or_in_model_expressions_and_filters_cannot_widen_the_tenant_scope(
    or_model_kit: ek.EmbedKit, shop_orders: pl.DataFrame, extra: dict[str, Any], engine: str
) -> None:
    q = {"measures": ["orders.count"], "dimensions": ["orders.order_id"], **extra}
    got = {
        r["orders.order_id"]
        for r in or_model_kit.query(q, principal=ek.Principal(3), engine=engine).to_pylist()
    }
    assert got <= set(shop_orders.filter(pl.col("seller_id") == 3)["order_id"])


def test_sql_dataset_cannot_reach_system_views_through_a_cte_name(
    shop_orders: pl.DataFrame,
) -> None:
    """Finding (low): a table whose name matches *any* CTE skips the "registered datasets
    only" check, even outside that CTE's scope, so a SQL dataset reads DuckDB's catalog."""
    sql = (
        "SELECT o.seller_id, (SELECT count(*) FROM duckdb_tables) AS n "
        "FROM orders o, (WITH duckdb_tables AS (SELECT 1) SELECT 1) z"
    )
    with pytest.raises(ek.ModelError):
        ek.EmbedKit(
            [
                ek.Dataset("orders", shop_orders, tenant_key="seller_id"),
                ek.Dataset("leak", ek.SQL(sql), tenant_key="seller_id"),
            ]
        )


# -- deny by default ---------------------------------------------------------------------------


@pytest.mark.parametrize("public", ["false", "no", 0.5, [False]])
def test_only_public_true_makes_a_dataset_public(shop_orders: pl.DataFrame, public: Any) -> None:
    """Finding: ``public`` is read by truthiness, so ``public="false"`` (a YAML slip) opens
    a dataset without a tenant key to every tenant."""
    kit = refused_or(
        lambda: ek.EmbedKit(
            [
                ek.Dataset(
                    "orders",
                    shop_orders,
                    public=public,
                    measures=[ek.Measure("revenue", "sum", sql="amount")],
                )
            ]
        )
    )
    if kit is None:
        return
    with pytest.raises(ek.EmbedKitError):
        kit.query({"measures": ["orders.revenue"]}, principal=ek.Principal(1))


# -- scoped and compiled queries are sealed -----------------------------------------------------


def _tenant_two_revenue(shop_orders: pl.DataFrame) -> float:
    return float(shop_orders.filter(pl.col("seller_id") == 2)["amount"].sum())


def test_scoped_query_cannot_be_retargeted_at_another_tenant(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    """Finding: a ScopedQuery's ``params`` can be reassigned after scoping, and the
    compilers then run it for another tenant ("a type, not a convention")."""
    scoped = shop_kit.scope({"measures": ["orders.revenue"]}, principal=seller1)
    try:
        scoped.params = tuple(2 if v == 1 else v for v in scoped.params)
    except (AttributeError, TypeError):
        return
    rows: list[Any] = []
    with contextlib.suppress(ek.EmbedKitError, RuntimeError, TypeError):
        rows += shop_kit._store.execute(Compiler().compile(scoped))[0].to_pylist()
    with contextlib.suppress(ek.EmbedKitError, RuntimeError, TypeError):
        rows += PolarsEngine(shop_kit._store.arrow).run(scoped).to_pylist()
    assert {"orders.revenue": _tenant_two_revenue(shop_orders)} not in rows


def test_scoped_query_cannot_be_made_public_after_scoping(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    """Finding: swapping the plan for one whose relation claims ``public=True`` passes
    ``check()`` (which trusts the plan, not the model) and reads every tenant's rows."""
    scoped = shop_kit.scope({"measures": ["orders.revenue"]}, principal=seller1)
    root = scoped.plan.relations[0]
    unscoped = dataclasses.replace(root, public=True, tenant_scoped=False, predicates=())
    try:
        scoped.plan = dataclasses.replace(scoped.plan, relations=(unscoped,))
    except (AttributeError, TypeError):
        return
    with pytest.raises((ek.EmbedKitError, RuntimeError, TypeError)):
        shop_kit._store.execute(Compiler().compile(scoped))


def test_compiled_query_cannot_be_retargeted_before_running(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, shop_orders: pl.DataFrame
) -> None:
    """Finding: ``CompiledQuery.params`` (and ``.sql``) are assignable after compiling, and
    the DuckDB engine runs whatever they hold."""
    scoped = shop_kit.scope({"measures": ["orders.revenue"]}, principal=seller1)
    compiled = Compiler().compile(scoped)
    try:
        compiled.params = tuple(2 if v == 1 else v for v in compiled.params)
    except (AttributeError, TypeError):
        return
    rows: list[Any] = []
    with contextlib.suppress(ek.EmbedKitError, RuntimeError, TypeError):
        rows = shop_kit._store.execute(compiled)[0].to_pylist()
    assert {"orders.revenue": _tenant_two_revenue(shop_orders)} not in rows


# -- hostile JSON: only embedkit errors, never a raw traceback ------------------------------------


def _range(date_range: Any, timezone: str = "UTC", **extra: Any) -> dict[str, Any]:
    td = {"dimension": "orders.ordered_at", "dateRange": date_range, **extra}
    return {"measures": ["orders.count"], "timeDimensions": [td], "timezone": timezone}


def _where(member: str, operator: str, values: list[Any], timezone: str = "UTC") -> dict[str, Any]:
    flt = {"member": member, "operator": operator, "values": values}
    return {"measures": ["orders.count"], "filters": [flt], "timezone": timezone}


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"member": "orders.status", "operator": "set"}
    for _ in range(depth):
        node = {"and": [node]}
    return {"measures": ["orders.count"], "filters": [node]}


HOSTILE_QUERIES: list[Any] = [
    pytest.param(_range(["2024-01-01", "9999-12-31"]), id="range-to-year-9999"),
    pytest.param(_range("9999-12-31"), id="single-day-9999-12-31"),
    pytest.param(
        _range(["9999-12-31T23:59:59.999999", "9999-12-31T23:59:59.999999"]), id="last-instant"
    ),
    pytest.param(_range(["0001-01-01", "0001-01-02"], "Asia/Tokyo"), id="year-1-east-of-utc"),
    pytest.param(_range("last 100000 years"), id="last-100000-years"),
    pytest.param(_range("next 100000 years"), id="next-100000-years"),
    pytest.param(_range("last 100000 months"), id="last-100000-months"),
    pytest.param(
        {**_range(["0001-01-01", "0001-01-31"]), "compare": "previous_period"},
        id="previous-period-before-year-1",
    ),
    pytest.param(
        {
            "measures": ["orders.count"],
            "timeDimensions": [
                {
                    "dimension": "orders.ordered_at",
                    "compareDateRange": [["2024-01-01", "9999-12-31"]],
                }
            ],
        },
        id="compare-range-to-9999",
    ),
    pytest.param(
        _where("orders.ordered_at", "beforeOrOnDate", ["9999-12-31"]), id="before-or-on-9999"
    ),
    pytest.param(_where("orders.ordered_at", "afterDate", ["9999-12-31"]), id="after-9999"),
    pytest.param(_where("orders.shipped_on", "onTheDate", ["9999-12-31"]), id="date-on-9999"),
    pytest.param(
        _where("orders.ordered_at", "gt", ["0001-01-01T00:00:00+05:00"]), id="value-before-year-1"
    ),
    pytest.param(
        _where("orders.ordered_at", "gt", ["9999-12-31T23:00:00-05:00"]), id="value-after-9999"
    ),
    pytest.param(
        _where("orders.ordered_at", "gt", ["0001-01-01"], "Pacific/Kiritimati"),
        id="naive-value-year-1-in-zone",
    ),
    pytest.param({"measures": ["orders.count"], "timezone": "A" * 300}, id="zone-name-too-long"),
    pytest.param(
        {"measures": ["orders.count"], "timezone": "Europe/" + "x" * 300}, id="zone-path-too-long"
    ),
    pytest.param(_nested(1000), id="and-nested-1000-deep"),
    pytest.param(_nested(5000), id="and-nested-5000-deep"),
    pytest.param({1: 2}, id="non-string-key"),
    pytest.param({"measures": ["orders.count"], None: 1}, id="null-key"),
    pytest.param(
        {
            "measures": ["orders.count"],
            "filters": [{"member": "orders.status", "operator": "set", 1: 2}],
        },
        id="non-string-filter-key",
    ),
    pytest.param(
        {
            "measures": ["orders.count"],
            "timeDimensions": [{"dimension": "orders.ordered_at", 1: 2}],
        },
        id="non-string-time-key",
    ),
    pytest.param(_where("orders.status", "equals", ["\ud800"]), id="lone-surrogate"),
    pytest.param(_where("orders.status", "equals", ["a\x00b"]), id="nul-in-value"),
    pytest.param(_where("orders.order_id", "gt", [10**5000]), id="integer-of-5000-digits"),
    pytest.param(_where("orders.amount", "gt", [10**400]), id="integer-beyond-double"),
    pytest.param(_where("orders.order_id", "gt", [1e300]), id="float-1e300-on-integer"),
    pytest.param(_where("orders.amount", "gt", [float("nan")]), id="nan"),
    pytest.param(_where("orders.amount", "lt", [float("-inf")]), id="minus-infinity"),
    pytest.param({"measures": ["orders.count"], "limit": 10**30}, id="limit-10e30"),
    pytest.param({"measures": ["orders.count"], "offset": 2**63}, id="offset-2e63"),
    pytest.param(
        {
            "measures": ["orders.count"],
            "dimensions": ["orders.status"],
            "offset": 10**30,
            "total": True,
        },
        id="offset-10e30-with-total",
    ),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("query", HOSTILE_QUERIES)
def test_hostile_json_gives_rows_or_an_embedkit_error_never_a_traceback(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, query: Any, engine: str
) -> None:
    """Finding (most cases): dates at the ends of the calendar raise OverflowError or
    ValueError, deep nesting RecursionError, long zone names OSError (with a server
    path in the text), non-string keys TypeError and huge limits on Polars
    OverflowError, straight out of ``kit.query``."""
    try:
        shop_kit.query(query, principal=seller1, engine=engine)  # type: ignore[arg-type]
    except ek.EmbedKitError as err:
        assert "site-packages" not in str(err)


@pytest.mark.parametrize("engine", ENGINES)
def test_empty_query_is_a_query_error(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, engine: str
) -> None:
    """``{}`` picks no dataset: a QueryError, not the ``KeyError: ''`` it once was."""
    with pytest.raises(ek.QueryError):
        shop_kit.query({}, principal=seller1, engine=engine)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "zone", ["/etc/passwd", "../../../../etc/passwd", "Europe/../../etc/passwd", "zone.tab"]
)
def test_time_zone_names_cannot_point_at_files(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, zone: str
) -> None:
    q = {
        "measures": ["orders.count"],
        "timeDimensions": [{"dimension": "orders.ordered_at", "granularity": "day"}],
        "timezone": zone,
    }
    with pytest.raises(ek.QueryError, match="unknown time zone"):
        shop_kit.query(q, principal=seller1)


# -- what engines and results tell a caller ----------------------------------------------------


@pytest.fixture(scope="module")
def failing_cast_kit() -> Iterator[ek.EmbedKit]:
    """Casts that fail only on rows outside acme's north scope; the tenant key comes last,
    so a scan reading columns in order meets the status column before the tenant."""
    frame = pl.DataFrame(
        {
            "status": ["2024-01-01", "RIVAL-1", "HIDDEN-1"] * 50,
            "region": ["north", "north", "south"] * 50,
            "tenant": ["acme", "rival-corp", "acme"] * 50,
        }
    )
    kit = ek.EmbedKit(
        [
            ek.Dataset(
                "sales",
                frame,
                tenant_key="tenant",
                dimensions=[
                    ek.Dimension("day", sql="CAST(status AS DATE)"),
                    ek.Dimension("code", sql="CAST(status AS INTEGER)"),
                ],
                measures=[
                    ek.Measure("count", "count"),
                    ek.Measure("latest", "max", sql="CAST(status AS DATE)"),
                ],
                segments=[ek.Segment("recent", "CAST(status AS DATE) > DATE '2000-01-01'")],
                row_rules=[ek.RowRule("region", claim="regions")],
            )
        ]
    )
    yield kit
    kit.close()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "query",
    [
        {"measures": ["sales.count"], "dimensions": ["sales.day"]},
        {"measures": ["sales.count"], "dimensions": ["sales.code"]},
        {"measures": ["sales.latest"]},
        {"measures": ["sales.count"], "segments": ["sales.recent"]},
        {
            "measures": ["sales.count"],
            "filters": [{"member": "sales.day", "operator": "gt", "values": ["2000-01-01"]}],
        },
        {
            "measures": ["sales.count"],
            "filters": [
                {
                    "or": [
                        {"member": "sales.code", "operator": "gt", "values": [0]},
                        {"member": "sales.day", "operator": "set"},
                    ]
                }
            ],
        },
    ],
)
def test_engine_errors_never_quote_rows_outside_the_scope(
    failing_cast_kit: ek.EmbedKit, query: dict[str, Any], engine: str
) -> None:
    principal = ek.Principal("acme", claims={"regions": ["north"]})
    text = query_or_error(failing_cast_kit, query, principal, engine)
    assert "RIVAL" not in text and "HIDDEN" not in text and "rival" not in text


def test_sql_text_depends_on_the_query_shape_only(shop_kit: ek.EmbedKit) -> None:
    """Two tenants, different filter values, zones and paging: one SQL text."""

    def sql(tenant: int, value: str, zone: str, limit: int) -> str:
        q = {
            "measures": ["orders.count"],
            "timeDimensions": [{"dimension": "orders.ordered_at", "granularity": "day"}],
            "filters": [{"member": "orders.status", "operator": "contains", "values": [value]}],
            "timezone": zone,
            "limit": limit,
        }
        return shop_kit.query(q, principal=ek.Principal(tenant)).sql

    first = sql(1, "x' OR 1=1 --", "UTC", 1)
    assert first == sql(2, "SECRET", "Asia/Kolkata", 99)
    for marker in ("OR 1=1", "SECRET", "Kolkata", "99"):
        assert marker not in first


@pytest.mark.parametrize("engine", ENGINES)
def test_join_never_pairs_rows_of_two_tenants_on_either_engine(
    shop_kit: ek.EmbedKit, seller1: ek.Principal, engine: str
) -> None:
    q = {"measures": ["orders.count"], "dimensions": ["products.category"], "total": True}
    result = shop_kit.query(q, principal=seller1, engine=engine)
    categories = {r["products.category"] for r in result.to_pylist()}
    assert categories <= {"books", "games", None}
    assert result.total == len(categories)


@pytest.mark.parametrize("engine", ENGINES)
def test_total_and_past_the_end_paging_count_only_the_callers_groups(
    shop_kit: ek.EmbedKit, shop_orders: pl.DataFrame, engine: str
) -> None:
    q = {"measures": ["orders.count"], "dimensions": ["orders.order_id"], "total": True}
    mine = shop_orders.filter(pl.col("seller_id") == 3).height
    for page in ({"limit": 1}, {"offset": 50}):
        result = shop_kit.query(q | page, principal=ek.Principal(3), engine=engine)
        assert result.total == mine


@pytest.mark.parametrize("engine", ENGINES)
def test_compare_ranges_are_each_scoped(
    shop_kit: ek.EmbedKit, shop_orders: pl.DataFrame, shop_now: datetime, engine: str
) -> None:
    q = {
        "measures": ["orders.revenue"],
        "timeDimensions": [
            {
                "dimension": "orders.ordered_at",
                "compareDateRange": [["2024-01-01", "2024-01-31"], ["2024-02-01", "2024-03-31"]],
            }
        ],
    }
    result = shop_kit.query(q, principal=ek.Principal(3), engine=engine)
    mine = shop_orders.filter(pl.col("seller_id") == 3)
    answers = [result, *result.comparisons]
    got = [r.to_pylist()[0]["orders.revenue"] for r in answers]
    assert got[0] is None and got[1] == mine["amount"].sum()
