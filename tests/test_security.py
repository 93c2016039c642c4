"""Policy and scoping: every read is limited to the caller's rows and visible columns.

Expected rows are computed a second way with Polars over the raw rows. Where a test
says "nothing runs", it watches the real DuckDB store (a recording wrapper around its
``execute``), not a fake.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import duckdb
import polars as pl
import pytest

import embedkit as ek
from embedkit.compile import CompiledQuery, Compiler
from embedkit.plan import ScopedQuery

AMOUNT_MEMBERS = [
    ("dimension", "orders.amount"),
    ("dimension", "orders.is_big"),
    ("measure", "orders.revenue"),
    ("measure", "orders.avg_order"),
    ("measure", "orders.big_orders"),
    ("segment", "orders.big"),
]


@pytest.fixture(scope="module")
def secure_kit(
    shop_orders: pl.DataFrame,
    shop_products: pl.DataFrame,
    shop_regions: pl.DataFrame,
    shop_clock: Callable[[], datetime],
) -> Iterator[ek.EmbedKit]:
    """Orders limited by a ``regions`` claim and with ``amount`` visible to finance only."""
    orders = ek.Dataset(
        "orders",
        shop_orders,
        tenant_key="seller_id",
        time="ordered_at",
        dimensions=[
            ek.Dimension("order_id"),
            ek.Dimension("status"),
            ek.Dimension("region"),
            ek.Dimension("amount"),
            ek.Dimension("is_big", sql="amount >= 30"),
        ],
        measures=[
            ek.Measure("count", "count"),
            ek.Measure("returned", "count", filter="status = 'returned'"),
            ek.Measure("return_rate", "derived", sql="returned / count"),
            ek.Measure("revenue", "sum", sql="amount"),
            ek.Measure("avg_order", "derived", sql="revenue / count"),
            ek.Measure("big_orders", "count", filter="amount >= 30"),
        ],
        segments=[ek.Segment("big", "amount >= 30"), ek.Segment("done", "status = 'completed'")],
        joins=[
            ek.Join("products", on={"product_id": "product_id"}),
            ek.Join("regions", on={"region": "region"}),
        ],
        row_rules=[ek.RowRule("region", claim="regions")],
        column_rules=[ek.ColumnRule(["amount"], claim="role", allow=["finance", "admin"])],
    )
    products = ek.Dataset(
        "products",
        shop_products,
        tenant_key="seller_id",
        dimensions=[ek.Dimension("category")],
        measures=[ek.Measure("count", "count")],
    )
    regions = ek.Dataset(
        "regions",
        shop_regions,
        public=True,
        dimensions=[ek.Dimension("region"), ek.Dimension("region_name")],
        measures=[ek.Measure("count", "count")],
    )
    kit = ek.EmbedKit([orders, products, regions], clock=shop_clock)
    yield kit
    kit.close()


@pytest.fixture
def executions(secure_kit: ek.EmbedKit, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of every statement the real DuckDB store runs during the test."""
    ran: list[str] = []
    real = secure_kit._store.execute

    def recording(compiled: Any) -> Any:
        ran.append(compiled.sql)
        return real(compiled)

    monkeypatch.setattr(secure_kit._store, "execute", recording)
    return ran


def seller(tenant: int = 1, **claims: Any) -> ek.Principal:
    claims.setdefault("regions", ["north", "south", "east", "west"])
    return ek.Principal(tenant, claims=claims)


def ids(kit: ek.EmbedKit, principal: ek.Principal, **query: Any) -> set[int]:
    q = ek.Query(dimensions=["orders.order_id"], measures=["orders.count"], **query)
    return {r["orders.order_id"] for r in kit.query(q, principal=principal).to_pylist()}


# -- the tenant predicate ------------------------------------------------------------------


def test_tenant_predicate_is_on_every_relation_of_the_plan(secure_kit: ek.EmbedKit) -> None:
    q = ek.Query(measures=["orders.count"], dimensions=["products.category", "regions.region_name"])
    scoped = secure_kit.scope(q, principal=seller(2))
    relations = {rel.dataset: rel for rel in scoped.plan.relations}
    assert set(relations) == {"orders", "products", "regions"}
    for name in ("orders", "products"):
        rel = relations[name]
        assert rel.tenant_scoped
        tenant = [p for p in rel.predicates if p.column == "seller_id"]
        assert len(tenant) == 1 and tenant[0].operator == "eq"
        assert scoped.params[tenant[0].values[0].index] == 2
    assert relations["regions"].public and not relations["regions"].tenant_scoped


def test_compiled_sql_scopes_the_measured_table_and_each_joined_table(
    secure_kit: ek.EmbedKit,
) -> None:
    q = ek.Query(measures=["orders.count"], dimensions=["products.category"])
    result = secure_kit.query(q, principal=seller(1))
    # The joined table is a subquery limited before the join...
    assert re.search(
        r'LEFT JOIN \(SELECT \* FROM "store"\."main"\."products" WHERE "seller_id" = \$\d+',
        result.sql,
    )
    # ...and the measured table's predicate opens the WHERE clause.
    assert re.search(r' WHERE "t0"\."seller_id" = \$\d+', result.sql)
    assert 'seller_id" = 1' not in result.sql  # a value is a parameter, never SQL text


@pytest.mark.parametrize("tenant", [1, 2, 3, 404])
def test_every_tenant_sees_exactly_its_own_rows(
    secure_kit: ek.EmbedKit, shop_orders: pl.DataFrame, tenant: int
) -> None:
    """The claim lists every region, so only rows without a region are left out."""
    expected = shop_orders.filter((pl.col("seller_id") == tenant) & pl.col("region").is_not_null())
    assert ids(secure_kit, seller(tenant)) == set(expected["order_id"])


def test_principal_must_be_a_principal(secure_kit: ek.EmbedKit) -> None:
    q = ek.Query(measures=["orders.count"])
    with pytest.raises(ek.AccessDenied):
        secure_kit.query(q, principal={"tenant": 1})  # type: ignore[arg-type]


@pytest.mark.parametrize("tenant", [True, None, 1.0, ["1"]])
def test_principal_tenant_must_be_text_or_an_integer(tenant: Any) -> None:
    with pytest.raises(TypeError):
        ek.Principal(tenant)


def test_principal_tenant_must_not_be_empty() -> None:
    with pytest.raises(ValueError):
        ek.Principal("")


@pytest.mark.parametrize("tenant", ["abc", "1.5", "1e3", "2; DROP TABLE orders"])
def test_tenant_of_the_wrong_type_is_denied_without_running(
    secure_kit: ek.EmbedKit, executions: list[str], tenant: str
) -> None:
    with pytest.raises(ek.AccessDenied, match="does not fit tenant key") as err:
        secure_kit.query(ek.Query(measures=["orders.count"]), principal=seller(tenant))  # type: ignore[arg-type]
    assert executions == []
    assert tenant not in str(err.value)


# -- row rules -----------------------------------------------------------------------------


def test_row_rule_with_a_list_claim_keeps_only_those_values(
    secure_kit: ek.EmbedKit, shop_orders: pl.DataFrame
) -> None:
    got = ids(secure_kit, seller(1, regions=["north", "west"]))
    expected = shop_orders.filter(
        (pl.col("seller_id") == 1) & pl.col("region").is_in(["north", "west"])
    )
    assert got == set(expected["order_id"])


def test_row_rule_with_a_scalar_claim_is_a_one_item_list(
    secure_kit: ek.EmbedKit, shop_orders: pl.DataFrame
) -> None:
    got = ids(secure_kit, seller(1, regions="south"))
    expected = shop_orders.filter((pl.col("seller_id") == 1) & (pl.col("region") == "south"))
    assert got == set(expected["order_id"])


def test_row_rule_rows_with_null_in_the_column_are_never_shown(
    secure_kit: ek.EmbedKit, shop_orders: pl.DataFrame
) -> None:
    everywhere = ids(secure_kit, seller(1))
    null_region = shop_orders.filter((pl.col("seller_id") == 1) & pl.col("region").is_null())
    assert null_region.height > 0
    assert everywhere.isdisjoint(null_region["order_id"])


def test_filters_cannot_widen_a_row_rule(
    secure_kit: ek.EmbedKit, shop_orders: pl.DataFrame
) -> None:
    flt = ek.Or(
        ek.Filter("orders.region", "equals", ["north"]),
        ek.Filter("orders.region", "notEquals", ["north"]),
    )
    got = ids(secure_kit, seller(1, regions=["south"]), filters=[flt])
    expected = shop_orders.filter((pl.col("seller_id") == 1) & (pl.col("region") == "south"))
    assert got == set(expected["order_id"])


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({}, id="missing"),
        pytest.param({"regions": None}, id="null"),
        pytest.param({"regions": []}, id="empty-list"),
        pytest.param({"regions": ""}, id="empty-string"),
        pytest.param({"regions": ["north", None]}, id="list-with-null"),
        pytest.param({"regions": ()}, id="empty-tuple"),
    ],
)
def test_missing_or_empty_claim_refuses_query_and_runs_nothing(
    secure_kit: ek.EmbedKit, executions: list[str], claims: dict[str, Any]
) -> None:
    principal = ek.Principal(1, claims=claims)
    with pytest.raises(ek.AccessDenied, match="regions"):
        secure_kit.query(ek.Query(measures=["orders.count"]), principal=principal)
    with pytest.raises(ek.AccessDenied):
        secure_kit.scope(ek.Query(measures=["orders.count"]), principal=principal)
    assert executions == []


def test_only_datasets_the_query_touches_ask_for_their_claims(
    secure_kit: ek.EmbedKit, executions: list[str]
) -> None:
    """Products has no row rule, so it runs without claims; joining from orders needs one."""
    q = ek.Query(measures=["products.count"], dimensions=["products.category"])
    assert secure_kit.query(q, principal=ek.Principal(1)).num_rows > 0
    with pytest.raises(ek.AccessDenied, match="regions"):
        secure_kit.query(
            ek.Query(measures=["orders.count"], dimensions=["products.category"]),
            principal=ek.Principal(1),
        )
    assert len(executions) == 1


@pytest.fixture(scope="module")
def equals_rule_kit(shop_products: pl.DataFrame) -> Iterator[ek.EmbedKit]:
    kit = ek.EmbedKit(
        [
            ek.Dataset(
                "products",
                shop_products,
                tenant_key="seller_id",
                dimensions=[ek.Dimension("category")],
                measures=[ek.Measure("count", "count")],
                row_rules=[ek.RowRule("category", claim="category", operator="equals")],
            )
        ]
    )
    yield kit
    kit.close()


def test_equals_row_rule_takes_a_scalar_claim(
    equals_rule_kit: ek.EmbedKit, shop_products: pl.DataFrame
) -> None:
    q = ek.Query(measures=["products.count"], dimensions=["products.category"])
    got = equals_rule_kit.query(q, principal=ek.Principal(2, {"category": "games"})).to_pylist()
    mine = shop_products.filter((pl.col("seller_id") == 2) & (pl.col("category") == "games"))
    assert got == [{"products.category": "games", "products.count": mine.height}]


def test_equals_row_rule_refuses_a_list_claim(equals_rule_kit: ek.EmbedKit) -> None:
    principal = ek.Principal(2, {"category": ["games", "toys"]})
    with pytest.raises(ek.AccessDenied, match="single value"):
        equals_rule_kit.query(ek.Query(measures=["products.count"]), principal=principal)


def test_claim_of_the_wrong_type_is_denied(equals_rule_kit: ek.EmbedKit) -> None:
    principal = ek.Principal(2, {"category": {"nested": "games"}})
    with pytest.raises(ek.AccessDenied):
        equals_rule_kit.query(ek.Query(measures=["products.count"]), principal=principal)


# -- column rules --------------------------------------------------------------------------


def query_using(kind: str, member: str) -> ek.Query:
    if kind == "dimension":
        return ek.Query(measures=["orders.count"], dimensions=[member])
    if kind == "measure":
        return ek.Query(measures=[member])
    return ek.Query(measures=["orders.count"], segments=[member])


@pytest.mark.parametrize(("kind", "member"), AMOUNT_MEMBERS)
def test_column_rule_hides_every_member_built_on_the_column(
    secure_kit: ek.EmbedKit, executions: list[str], kind: str, member: str
) -> None:
    with pytest.raises(ek.AccessDenied, match=member.replace(".", r"\.")):
        secure_kit.query(query_using(kind, member), principal=seller(1))
    assert executions == []


@pytest.mark.parametrize(
    "flt",
    [
        ek.Filter("orders.amount", "gt", [1]),
        ek.Filter("orders.is_big", "equals", [True]),
        ek.Filter("orders.revenue", "gt", [1]),
        ek.Or(ek.Filter("orders.status", "set"), ek.Filter("orders.amount", "set")),
    ],
    ids=["dimension", "expression", "measure", "nested"],
)
def test_column_rule_hides_members_used_only_in_filters(
    secure_kit: ek.EmbedKit, executions: list[str], flt: Any
) -> None:
    with pytest.raises(ek.AccessDenied):
        secure_kit.query(ek.Query(measures=["orders.count"], filters=[flt]), principal=seller(1))
    assert executions == []


def test_column_rule_cannot_be_sidestepped_by_ordering(
    secure_kit: ek.EmbedKit, executions: list[str]
) -> None:
    q = ek.Query(measures=["orders.count"], order=[("orders.revenue", "desc")])
    with pytest.raises(ek.EmbedKitError):
        secure_kit.query(q, principal=seller(1))
    assert executions == []


@pytest.mark.parametrize("role", ["finance", ["viewer", "admin"]])
def test_column_rule_shows_the_members_when_the_claim_matches(
    secure_kit: ek.EmbedKit, shop_orders: pl.DataFrame, role: Any
) -> None:
    q = ek.Query(
        measures=["orders.revenue", "orders.avg_order", "orders.big_orders"],
        segments=["orders.big"],
    )
    got = secure_kit.query(q, principal=seller(1, role=role)).to_pylist()
    big = shop_orders.filter(
        (pl.col("seller_id") == 1) & (pl.col("amount") >= 30) & pl.col("region").is_not_null()
    )
    assert got == [
        {
            "orders.revenue": big["amount"].sum(),
            "orders.avg_order": pytest.approx(big["amount"].mean()),
            "orders.big_orders": big.height,
        }
    ]


def test_members_not_built_on_a_hidden_column_stay_available(
    secure_kit: ek.EmbedKit, shop_orders: pl.DataFrame
) -> None:
    q = ek.Query(
        measures=["orders.count", "orders.return_rate"],
        dimensions=["orders.status"],
        segments=["orders.done"],
    )
    got = secure_kit.query(q, principal=seller(1, role="viewer")).to_pylist()
    done = shop_orders.filter(
        (pl.col("seller_id") == 1)
        & (pl.col("status") == "completed")
        & pl.col("region").is_not_null()
    )
    assert got == [
        {"orders.status": "completed", "orders.count": done.height, "orders.return_rate": 0.0}
    ]


def test_unknown_member_error_lists_only_visible_members(secure_kit: ek.EmbedKit) -> None:
    with pytest.raises(ek.UnknownMemberError) as err:
        secure_kit.query(ek.Query(measures=["orders.revenu"]), principal=seller(1))
    assert err.value.name == "orders.revenu"
    assert set(err.value.valid) == {
        "orders.count",
        "orders.returned",
        "orders.return_rate",
        "products.count",
        "regions.count",
    }
    assert "orders.revenue" not in str(err.value)


def test_unknown_member_error_lists_hidden_members_to_those_allowed(
    secure_kit: ek.EmbedKit,
) -> None:
    with pytest.raises(ek.UnknownMemberError) as err:
        secure_kit.query(ek.Query(measures=["orders.revenu"]), principal=seller(1, role="admin"))
    assert {"orders.revenue", "orders.avg_order", "orders.big_orders"} <= set(err.value.valid)


def test_unknown_dimension_lists_visible_dimensions(secure_kit: ek.EmbedKit) -> None:
    with pytest.raises(ek.UnknownMemberError) as err:
        secure_kit.query(
            ek.Query(measures=["orders.count"], dimensions=["orders.stat"]), principal=seller(1)
        )
    assert "orders.status" in err.value.valid
    assert "orders.amount" not in err.value.valid and "orders.is_big" not in err.value.valid


# -- joins and public data -------------------------------------------------------------------


@pytest.mark.parametrize("tenant", [1, 2, 3])
def test_joined_rows_of_another_tenant_never_join_in(
    secure_kit: ek.EmbedKit,
    shop_orders: pl.DataFrame,
    shop_products: pl.DataFrame,
    tenant: int,
) -> None:
    q = ek.Query(measures=["orders.count"], dimensions=["products.category"])
    got = {
        r["products.category"]: r["orders.count"]
        for r in secure_kit.query(q, principal=seller(tenant)).to_pylist()
    }
    orders = shop_orders.filter((pl.col("seller_id") == tenant) & pl.col("region").is_not_null())
    products = shop_products.filter(pl.col("seller_id") == tenant).drop("seller_id")
    expected = orders.join(products, on="product_id", how="left").group_by("category").len()
    assert got == dict(expected.iter_rows())
    assert set(got) - {None} <= set(products["category"])


def test_product_of_another_tenant_with_the_same_key_is_not_joined(
    shop_kit: ek.EmbedKit, seller1: ek.Principal
) -> None:
    """Order 4 of seller 1 names product 3, which exists only for seller 2."""
    q = ek.Query(
        measures=["orders.count"],
        dimensions=["products.category"],
        filters=[ek.Filter("orders.order_id", "equals", [4])],
    )
    assert shop_kit.query(q, principal=seller1).to_pylist() == [
        {"products.category": None, "orders.count": 1}
    ]
    unmatched = ids(shop_kit, seller1, filters=[ek.Filter("products.category", "notSet")])
    assert unmatched == {4, 7}  # product 5 of order 7 exists for nobody


@pytest.mark.parametrize("tenant", [1, 2, 999, "someone-else"])
def test_public_dataset_is_readable_by_every_tenant(
    secure_kit: ek.EmbedKit, shop_regions: pl.DataFrame, tenant: Any
) -> None:
    q = ek.Query(measures=["regions.count"], dimensions=["regions.region_name"])
    got = secure_kit.query(q, principal=ek.Principal(tenant)).to_pylist()
    assert {r["regions.region_name"] for r in got} == set(shop_regions["region_name"])


def test_public_dataset_joined_to_tenant_rows_keeps_the_tenant_scope(
    secure_kit: ek.EmbedKit, shop_orders: pl.DataFrame
) -> None:
    q = ek.Query(measures=["orders.count"], dimensions=["regions.region_name"])
    got = dict(
        (r["regions.region_name"], r["orders.count"])
        for r in secure_kit.query(q, principal=seller(2)).to_pylist()
    )
    mine = shop_orders.filter(pl.col("seller_id") == 2)
    counts = mine.group_by("region").len()
    assert got == {region.title(): n for region, n in counts.iter_rows()}


# -- only embedkit builds what the engine runs ----------------------------------------------


def test_scoped_query_cannot_be_built_from_outside(secure_kit: ek.EmbedKit) -> None:
    scoped = secure_kit.scope(ek.Query(measures=["orders.count"]), principal=seller(1))
    with pytest.raises(TypeError, match="scoping"):
        ScopedQuery(
            plan=scoped.plan,
            params=(2,),
            principal=ek.Principal(2),
            model=secure_kit.model,
            data_versions={},
            key=object(),
        )


def test_compiled_query_cannot_be_built_from_outside(secure_kit: ek.EmbedKit) -> None:
    scoped = secure_kit.scope(ek.Query(measures=["orders.count"]), principal=seller(1))
    with pytest.raises(TypeError, match="compiler"):
        CompiledQuery(
            sql="SELECT * FROM orders", params=(), outputs=(), scoped=scoped, key=object()
        )


def test_compiler_accepts_only_a_scoped_query() -> None:
    with pytest.raises(TypeError):
        Compiler().compile("SELECT * FROM orders")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM orders",
        pytest.param(
            type("Lookalike", (), {"sql": "SELECT * FROM orders", "params": ()})(),
            id="duck-typed-object",
        ),
    ],
)
def test_duckdb_engine_refuses_anything_not_compiled_by_embedkit(
    secure_kit: ek.EmbedKit, statement: Any
) -> None:
    with pytest.raises(TypeError, match="compiled by embedkit"):
        secure_kit._store.execute(statement)


def test_compiled_query_reaching_the_engine_was_scoped(
    secure_kit: ek.EmbedKit, executions: list[str]
) -> None:
    secure_kit.query(ek.Query(measures=["orders.count"]), principal=seller(3))
    assert len(executions) == 1
    assert '"seller_id" = $' in executions[0]


# -- DuckDB is sandboxed ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        "WITH x AS (SELECT * FROM read_text('/etc/passwd')) SELECT 1 AS seller_id FROM x",
        "SELECT seller_id FROM orders UNION ALL SELECT 1 FROM glob('/etc/*')",
        "SELECT seller_id, (SELECT count(*) FROM duckdb_settings()) AS n FROM orders",
        "COPY orders TO '/tmp/embedkit-leak.csv'",
        "ATTACH '/tmp/embedkit-other.db'",
        "SELECT * FROM orders; DROP TABLE orders",
        "SELECT * FROM main.orders",
    ],
)
def test_sql_dataset_cannot_read_files_or_catalogs(shop_orders: pl.DataFrame, sql: str) -> None:
    with pytest.raises(ek.ModelError) as err:
        ek.EmbedKit(
            [
                ek.Dataset("orders", shop_orders, tenant_key="seller_id"),
                ek.Dataset("leak", ek.SQL(sql), tenant_key="seller_id"),
            ]
        )
    assert [(p.dataset, p.member) for p in err.value.problems] == [("leak", "source")]


def test_member_expression_cannot_read_files(shop_orders: pl.DataFrame) -> None:
    ds = ek.Dataset(
        "orders",
        shop_orders,
        tenant_key="seller_id",
        dimensions=[ek.Dimension("leak", sql="read_text('/etc/passwd')")],
    )
    with pytest.raises(ek.ModelError, match="does not allow"):
        ek.EmbedKit([ds])


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "COPY (SELECT 1) TO '/tmp/embedkit-leak.csv'",
        "SET enable_external_access = true",
        "INSTALL httpfs",
    ],
)
def test_the_database_itself_refuses_file_access_after_start(
    secure_kit: ek.EmbedKit, statement: str
) -> None:
    with pytest.raises(duckdb.Error):
        secure_kit._store._con.execute(statement)


# -- nothing of another tenant in any message --------------------------------------------------


@pytest.fixture(scope="module")
def rival_kit() -> Iterator[ek.EmbedKit]:
    """Two tenants with distinctive names; every value of the rival says RIVAL."""
    frame = pl.DataFrame(
        {
            "tenant": ["acme", "acme", "rival-corp", "rival-corp"],
            "status": ["7", "8", "RIVAL-STATUS", "RIVAL-STATUS-2"],
            "amount": [1.0, 2.0, 99999.0, 88888.0],
            "at": [datetime(2024, 1, 1), datetime(2024, 1, 2)] * 2,
        }
    )
    kit = ek.EmbedKit(
        [
            ek.Dataset(
                "sales",
                frame,
                tenant_key="tenant",
                time="at",
                dimensions=[
                    ek.Dimension("status"),
                    ek.Dimension("code", sql="CAST(status AS INTEGER)"),
                    ek.Dimension("amount"),
                ],
                measures=[
                    ek.Measure("count", "count"),
                    ek.Measure("total", "sum", sql="amount"),
                    ek.Measure("code_sum", "sum", sql="CAST(status AS INTEGER)"),
                ],
                row_rules=[ek.RowRule("status", claim="statuses")],
                column_rules=[ek.ColumnRule(["amount"], claim="role", allow=["boss"])],
            )
        ]
    )
    yield kit
    kit.close()


RIVAL_PROBES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("unknown-member", {"measures": ["sales.nope"]}, {"statuses": ["7"]}),
    ("hidden-member", {"measures": ["sales.total"]}, {"statuses": ["7"]}),
    ("missing-claim", {"measures": ["sales.count"]}, {}),
    (
        "bad-filter-value",
        {
            "measures": ["sales.count"],
            "filters": [{"member": "sales.code", "operator": "gt", "values": ["many"]}],
        },
        {"statuses": ["7"]},
    ),
    (
        "bad-order",
        {"measures": ["sales.count"], "order": {"sales.status": "asc"}},
        {"statuses": ["7"]},
    ),
    (
        "bad-date",
        {
            "measures": ["sales.count"],
            "timeDimensions": [{"dimension": "sales.at", "dateRange": "whenever"}],
        },
        {"statuses": ["7"]},
    ),
    (
        "cast-over-rival-rows",
        {"measures": ["sales.code_sum"], "dimensions": ["sales.code"]},
        {"statuses": ["7", "8", "RIVAL-STATUS"]},
    ),
    (
        "filter-cast-over-rival-rows",
        {
            "measures": ["sales.count"],
            "filters": [{"member": "sales.code", "operator": "gt", "values": [0]}],
        },
        {"statuses": ["7", "8", "RIVAL-STATUS"]},
    ),
]


@pytest.mark.parametrize(
    ("query", "claims"), [pytest.param(q, c, id=n) for n, q, c in RIVAL_PROBES]
)
def test_no_answer_or_error_ever_mentions_another_tenant(
    rival_kit: ek.EmbedKit, query: dict[str, Any], claims: dict[str, Any]
) -> None:
    principal = ek.Principal("acme", claims=claims)
    try:
        result = rival_kit.query(query, principal=principal)
    except ek.EmbedKitError as err:
        text = str(err)
    else:
        metadata = dict(result.table.schema.metadata)
        metadata.pop(b"embedkit.timings")  # numbers that may contain any digits
        text = repr(result.to_pylist()) + result.sql + repr(metadata)
    assert "rival" not in text.lower()
    assert "99999" not in text and "88888" not in text


def test_result_sql_and_metadata_carry_no_values(rival_kit: ek.EmbedKit) -> None:
    principal = ek.Principal("acme", claims={"statuses": ["7"]})
    q = ek.Query(measures=["sales.count"], filters=[ek.Filter("sales.status", "equals", ["7"])])
    result = rival_kit.query(q, principal=principal)
    metadata = b"".join(result.table.schema.metadata.values()).decode()
    for text in (result.sql, metadata):
        assert "acme" not in text and "'7'" not in text
