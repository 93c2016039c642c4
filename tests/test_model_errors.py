"""Registration: every kind of model problem, all reported together, and nothing half-done.

Also the sources a dataset can be built from (files, Arrow, Polars, SQL over another
dataset) and the YAML form of a model, which must give the same answers as Python.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

import embedkit as ek

COLUMNS = (
    "order_id, seller_id, status, amount, product_id, region, customer, ordered_at, shipped_on"
)


def problem_error(*datasets: ek.Dataset) -> ek.ModelError:
    with pytest.raises(ek.ModelError) as err:
        ek.EmbedKit(datasets)
    return err.value


def only_problem(err: ek.ModelError) -> ek.Problem:
    assert len(err.problems) == 1, err.problems
    return err.problems[0]


def orders(frame: pl.DataFrame, **kwargs: Any) -> ek.Dataset:
    kwargs.setdefault("tenant_key", "seller_id")
    return ek.Dataset("orders", frame, **kwargs)


# -- one problem of each kind ---------------------------------------------------------------


def test_dataset_without_tenant_key_must_say_public(shop_orders: pl.DataFrame) -> None:
    problem = only_problem(problem_error(ek.Dataset("orders", shop_orders)))
    assert problem.dataset == "orders"
    assert "no tenant key" in problem.message
    assert problem.fix is not None and "public=True" in problem.fix


def test_public_dataset_with_tenant_key_is_refused(shop_orders: pl.DataFrame) -> None:
    problem = only_problem(problem_error(orders(shop_orders, public=True)))
    assert "public and also has a tenant key" in problem.message


def test_tenant_key_that_is_not_a_column_lists_the_columns(shop_orders: pl.DataFrame) -> None:
    problem = only_problem(problem_error(orders(shop_orders, tenant_key="shop_id")))
    assert problem.member == "tenant_key"
    assert "'shop_id'" in problem.message and COLUMNS in problem.message


@pytest.mark.parametrize(
    ("members", "label"),
    [
        pytest.param(
            {"dimensions": [ek.Dimension("state", sql="stat")]}, "dimension 'state'", id="dimension"
        ),
        pytest.param(
            {"dimensions": [ek.Dimension("stat")]}, "dimension 'stat'", id="dimension-by-name"
        ),
        pytest.param(
            {"measures": [ek.Measure("revenue", "sum", sql="amt")]},
            "measure 'revenue'",
            id="measure",
        ),
        pytest.param(
            {"measures": [ek.Measure("n", "count", filter="stat = 'x'")]},
            "measure 'n'",
            id="measure-filter",
        ),
        pytest.param(
            {"segments": [ek.Segment("done", "stat = 'completed'")]}, "segment 'done'", id="segment"
        ),
        pytest.param(
            {"time_dimensions": [ek.TimeDimension("paid_at")]},
            "time dimension 'paid_at'",
            id="time-dimension",
        ),
    ],
)
def test_unknown_column_names_the_member_and_lists_the_columns(
    shop_orders: pl.DataFrame, members: dict[str, Any], label: str
) -> None:
    problem = only_problem(problem_error(orders(shop_orders, **members)))
    assert problem.dataset == "orders"
    assert problem.member == label
    assert "does not exist" in problem.message
    assert f"columns are: {COLUMNS}" in problem.message


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        pytest.param("(SELECT max(amount) FROM orders)", "uses Subquery", id="subquery"),
        pytest.param("status IN (SELECT 'x')", "uses Subquery", id="in-subquery"),
        pytest.param("frobnicate(status)", "uses frobnicate", id="unknown-function"),
        pytest.param("md5(status)", "uses MD5", id="function-not-allowed"),
        pytest.param("now()", "uses now", id="volatile-function"),
        pytest.param("sum(amount)", "uses SUM", id="aggregate-in-a-dimension"),
        pytest.param("orders.amount", "bare column name", id="qualified-column"),
        pytest.param("amount::INTERVAL", "casts to INTERVAL", id="cast-not-allowed"),
        pytest.param("status = ", "cannot parse", id="does-not-parse"),
    ],
)
def test_disallowed_sql_in_a_member_is_refused_naming_the_construct(
    shop_orders: pl.DataFrame, sql: str, named: str
) -> None:
    problem = only_problem(problem_error(orders(shop_orders, dimensions=[ek.Dimension("d", sql)])))
    assert problem.member == "dimension 'd'"
    assert named.lower() in problem.message.lower()


def test_derived_measure_on_an_unknown_measure_lists_the_measures(
    shop_orders: pl.DataFrame,
) -> None:
    measures = [
        ek.Measure("orders", "count"),
        ek.Measure("revenue", "sum", sql="amount"),
        ek.Measure("aov", "derived", sql="revenu / orders"),
    ]
    problem = only_problem(problem_error(orders(shop_orders, measures=measures)))
    assert problem.member == "measure 'aov'"
    assert "'revenu'" in problem.message
    assert "orders, revenue" in problem.message


def test_cycle_of_derived_measures_is_refused_naming_each(shop_orders: pl.DataFrame) -> None:
    measures = [
        ek.Measure("a", "derived", sql="b + 1"),
        ek.Measure("b", "derived", sql="a * 2"),
        ek.Measure("c", "derived", sql="c + 1"),
    ]
    err = problem_error(orders(shop_orders, measures=measures))
    assert {p.member for p in err.problems} == {"measure 'a'", "measure 'b'", "measure 'c'"}
    assert all("cycle" in p.message for p in err.problems)


def test_duplicate_member_names_are_refused(shop_orders: pl.DataFrame) -> None:
    ds = orders(
        shop_orders,
        dimensions=[ek.Dimension("status")],
        measures=[ek.Measure("status", "count")],
    )
    problem = only_problem(problem_error(ds))
    assert problem.member == "measure 'status'"
    assert "defined twice" in problem.message and "dimension" in problem.message


def test_join_to_an_unregistered_dataset_lists_the_datasets(shop_orders: pl.DataFrame) -> None:
    ds = orders(shop_orders, joins=[ek.Join("prods", on={"product_id": "product_id"})])
    problem = only_problem(problem_error(ds))
    assert problem.member == "join to 'prods'"
    assert "not registered" in problem.message and "orders" in problem.message


def test_join_on_missing_columns_names_both_sides(
    shop_orders: pl.DataFrame, shop_products: pl.DataFrame
) -> None:
    ds = orders(shop_orders, joins=[ek.Join("products", on={"prod": "pid"})])
    products = ek.Dataset("products", shop_products, tenant_key="seller_id")
    err = problem_error(ds, products)
    assert len(err.problems) == 2
    messages = " | ".join(p.message for p in err.problems)
    assert "'prod'" in messages and "'pid'" in messages
    assert "product_id, seller_id, category, cost" in messages
    assert all(p.member == "join to 'products'" for p in err.problems)


def test_many_to_one_join_to_a_non_unique_key_is_refused(
    shop_orders: pl.DataFrame, shop_products: pl.DataFrame
) -> None:
    dup = pl.concat([shop_products, shop_products.head(1)])
    ds = orders(shop_orders, joins=[ek.Join("products", on={"product_id": "product_id"})])
    problem = only_problem(problem_error(ds, ek.Dataset("products", dup, tenant_key="seller_id")))
    assert problem.member == "join to 'products'"
    assert "duplicate key" in problem.message and "repeat rows" in problem.message


def test_rules_on_unknown_columns_are_refused(shop_orders: pl.DataFrame) -> None:
    ds = orders(
        shop_orders,
        row_rules=[ek.RowRule("area", claim="areas")],
        column_rules=[ek.ColumnRule(["price"], claim="role", allow=["admin"])],
    )
    err = problem_error(ds)
    assert [p.member for p in err.problems] == ["row rule on 'area'", "column rule on 'price'"]
    assert all(COLUMNS in p.message for p in err.problems)


def test_column_rule_may_not_hide_the_tenant_key(shop_orders: pl.DataFrame) -> None:
    ds = orders(shop_orders, column_rules=[ek.ColumnRule(["seller_id"], "role", ["admin"])])
    problem = only_problem(problem_error(ds))
    assert "tenant key" in problem.message


def test_time_column_that_is_not_a_date_or_timestamp_is_refused(
    shop_orders: pl.DataFrame,
) -> None:
    err = problem_error(orders(shop_orders, time="status"))
    assert err.problems[0].member == "time"
    assert "'status' is VARCHAR, not a date or timestamp" in err.problems[0].message


def test_time_column_problem_is_reported_once(shop_orders: pl.DataFrame) -> None:
    only_problem(problem_error(orders(shop_orders, time="status")))


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.parquet"
    problem = only_problem(problem_error(ek.Dataset("orders", str(path), tenant_key="seller_id")))
    assert (problem.dataset, problem.member) == ("orders", "source")
    assert str(path) in problem.message and "does not exist" in problem.message


def test_unreadable_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not parquet")
    problem = only_problem(problem_error(ek.Dataset("orders", str(path), tenant_key="seller_id")))
    assert (problem.dataset, problem.member) == ("orders", "source")
    assert str(path) in problem.message


def test_file_of_unknown_format_asks_for_a_format(tmp_path: Path) -> None:
    path = tmp_path / "orders.xlsx"
    path.write_bytes(b"")
    problem = only_problem(problem_error(ek.Dataset("orders", str(path), tenant_key="seller_id")))
    assert "format=" in problem.message


def test_sql_dataset_reading_an_unregistered_table_lists_the_datasets(
    shop_orders: pl.DataFrame,
) -> None:
    sql = ek.Dataset(
        "daily",
        ek.SQL("SELECT seller_id, count(*) AS n FROM payments GROUP BY ALL"),
        tenant_key="seller_id",
    )
    err = problem_error(orders(shop_orders), sql)
    problem = only_problem(err)
    assert (problem.dataset, problem.member) == ("daily", "source")
    assert "'payments'" in problem.message and "datasets are: orders" in problem.message


def test_dataset_registered_twice_is_refused(shop_orders: pl.DataFrame) -> None:
    err = problem_error(orders(shop_orders), orders(shop_orders))
    assert any("registered twice" in p.message for p in err.problems)


# -- many problems at once -------------------------------------------------------------------


def test_every_problem_of_a_model_is_reported_together(
    shop_orders: pl.DataFrame, shop_products: pl.DataFrame
) -> None:
    bad_orders = ek.Dataset(
        "orders",
        shop_orders,
        tenant_key="seller_id",
        time_dimensions=[ek.TimeDimension("paid_at")],
        dimensions=[ek.Dimension("state", sql="stat"), ek.Dimension("region")],
        measures=[
            ek.Measure("revenue", "sum", sql="amt"),
            ek.Measure("returned", "count", filter="state = 'returned'"),
            ek.Measure("rate", "derived", sql="returnd / revenue"),
            ek.Measure("region", "count"),
        ],
        segments=[ek.Segment("done", "(SELECT 1)")],
        joins=[ek.Join("shops", on={"shop_id": "id"})],
        row_rules=[ek.RowRule("area", claim="areas")],
        column_rules=[ek.ColumnRule(["price"], claim="role", allow=["admin"])],
    )
    bad_products = ek.Dataset("products", shop_products)
    err = problem_error(bad_orders, bad_products)
    where = {(p.dataset, p.member) for p in err.problems}
    assert where == {
        ("orders", "time dimension 'paid_at'"),
        ("orders", "dimension 'state'"),
        ("orders", "measure 'revenue'"),
        ("orders", "measure 'returned'"),
        ("orders", "measure 'rate'"),
        ("orders", "measure 'region'"),
        ("orders", "segment 'done'"),
        ("orders", "join to 'shops'"),
        ("orders", "row rule on 'area'"),
        ("orders", "column rule on 'price'"),
        ("products", None),
    }
    assert len(err.problems) == len(where)
    text = str(err)
    assert text.startswith(f"the model has {len(where)} problems:")
    assert all(str(p) in text for p in err.problems)


# -- nothing half-registered ---------------------------------------------------------------


def test_failed_register_leaves_nothing_and_a_fixed_retry_succeeds(
    shop_orders: pl.DataFrame, shop_products: pl.DataFrame, shop_clock: Callable[[], datetime]
) -> None:
    kit = ek.EmbedKit(clock=shop_clock)
    good = ek.Dataset(
        "products", shop_products, tenant_key="seller_id", measures=[ek.Measure("count", "count")]
    )
    broken = orders(shop_orders, measures=[ek.Measure("revenue", "sum", sql="amt")])
    with pytest.raises(ek.ModelError):
        kit.register(good, broken)
    assert dict(kit.model.datasets) == {}
    assert dict(kit.data_versions) == {}
    with pytest.raises(ek.UnknownMemberError):
        kit.query(ek.Query(measures=["products.count"]), principal=ek.Principal(1))

    fixed = orders(shop_orders, measures=[ek.Measure("revenue", "sum", sql="amount")])
    kit.register(good, fixed)
    result = kit.query(ek.Query(measures=["orders.revenue"]), principal=ek.Principal(1))
    mine = shop_orders.filter(pl.col("seller_id") == 1)
    assert result.to_pylist() == [{"orders.revenue": mine["amount"].sum()}]


def test_failed_register_keeps_what_was_registered_before(
    shop_orders: pl.DataFrame, shop_products: pl.DataFrame
) -> None:
    kit = ek.EmbedKit(
        [
            ek.Dataset(
                "products",
                shop_products,
                tenant_key="seller_id",
                measures=[ek.Measure("count", "count")],
            )
        ]
    )
    with pytest.raises(ek.ModelError):
        kit.register(orders(shop_orders, dimensions=[ek.Dimension("nope")]))
    assert set(kit.model.datasets) == {"products"}
    result = kit.query(ek.Query(measures=["products.count"]), principal=ek.Principal(1))
    assert result.to_pylist() == [{"products.count": 2}]


def test_register_refuses_something_that_is_not_a_dataset() -> None:
    with pytest.raises(TypeError, match="Dataset"):
        ek.EmbedKit().register({"name": "orders"})  # type: ignore[arg-type]


# -- sources -------------------------------------------------------------------------------


def revenue_by_tenant(kit: ek.EmbedKit, tenants: list[int]) -> dict[int, float]:
    q = ek.Query(measures=["orders.revenue"])
    return {
        t: kit.query(q, principal=ek.Principal(t)).to_pylist()[0]["orders.revenue"] for t in tenants
    }


def expected_revenue(frame: pl.DataFrame) -> dict[int, float]:
    sums = frame.group_by("seller_id").agg(pl.col("amount").sum())
    return dict(zip(sums["seller_id"], sums["amount"], strict=True))


def source_kit(source: Any, **kwargs: Any) -> ek.EmbedKit:
    return ek.EmbedKit(
        [
            ek.Dataset(
                "orders",
                source,
                tenant_key="seller_id",
                measures=[ek.Measure("revenue", "sum", sql="amount")],
                **kwargs,
            )
        ]
    )


@pytest.mark.parametrize("kind", ["parquet", "csv", "ndjson", "arrow", "polars", "lazy"])
def test_dataset_source_kinds_give_the_same_answers(
    shop_orders: pl.DataFrame, tmp_path: Path, kind: str
) -> None:
    frame = shop_orders.drop("shipped_on", "ordered_at")
    source: Any
    if kind == "parquet":
        source = str(tmp_path / "orders.parquet")
        frame.write_parquet(source)
    elif kind == "csv":
        source = str(tmp_path / "orders.csv")
        frame.write_csv(source)
    elif kind == "ndjson":
        source = str(tmp_path / "orders.ndjson")
        frame.write_ndjson(source)
    elif kind == "arrow":
        source = frame.to_arrow()
        assert isinstance(source, pa.Table)
    elif kind == "polars":
        source = frame
    else:
        source = frame.lazy().select(pl.all())
    kit = source_kit(source)
    assert revenue_by_tenant(kit, [1, 2, 3]) == expected_revenue(frame)


@pytest.mark.parametrize("kind", ["parquet", "csv", "ndjson"])
def test_file_sources_keep_timestamps_usable_as_the_time_column(
    shop_orders: pl.DataFrame, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / f"orders.{kind}"
    getattr(shop_orders, f"write_{kind}")(path)
    kit = source_kit(str(path), time="ordered_at")
    january = ek.Time("orders.ordered_at", grain="month", date_range=["2024-01-01", "2024-01-31"])
    q = ek.Query(measures=["orders.revenue"], time=[january])
    got = kit.query(q, principal=ek.Principal(1)).to_pylist()
    jan = shop_orders.filter(
        (pl.col("seller_id") == 1)
        & (pl.col("ordered_at") >= datetime(2024, 1, 1))
        & (pl.col("ordered_at") < datetime(2024, 2, 1))
    )
    assert got == [
        {"orders.ordered_at.month": datetime(2024, 1, 1), "orders.revenue": jan["amount"].sum()}
    ]


def test_glob_of_parquet_files_is_one_dataset(shop_orders: pl.DataFrame, tmp_path: Path) -> None:
    for tenant in (1, 2, 3):
        shop_orders.filter(pl.col("seller_id") == tenant).write_parquet(
            tmp_path / f"part-{tenant}.parquet"
        )
    kit = source_kit(str(tmp_path / "part-*.parquet"))
    assert revenue_by_tenant(kit, [1, 2, 3]) == expected_revenue(shop_orders)


def test_sql_dataset_over_another_dataset(shop_orders: pl.DataFrame) -> None:
    daily = ek.Dataset(
        "seller_status",
        ek.SQL(
            "SELECT seller_id, status, sum(amount) AS revenue, count(*) AS n "
            "FROM orders WHERE amount > 0 GROUP BY seller_id, status"
        ),
        tenant_key="seller_id",
        dimensions=[ek.Dimension("status")],
        measures=[ek.Measure("revenue", "sum", sql="revenue"), ek.Measure("n", "sum", sql="n")],
    )
    kit = ek.EmbedKit([orders(shop_orders), daily])
    q = ek.Query(
        measures=["seller_status.revenue", "seller_status.n"], dimensions=["seller_status.status"]
    )
    got = {
        r["seller_status.status"]: (r["seller_status.revenue"], r["seller_status.n"])
        for r in kit.query(q, principal=ek.Principal(1)).to_pylist()
    }
    mine = shop_orders.filter((pl.col("seller_id") == 1) & (pl.col("amount") > 0))
    expected = mine.group_by("status").agg(pl.col("amount").sum(), pl.len())
    assert got == {s: (a, n) for s, a, n in expected.iter_rows()}


# -- YAML ----------------------------------------------------------------------------------

SHOP_YAML = """
datasets:
  - name: orders
    source: data/orders.parquet
    tenant_key: seller_id
    primary_key: order_id
    time: ordered_at
    dimensions:
      - {name: status}
      - {name: region}
      - {name: is_big, sql: amount >= 30}
    time_dimensions:
      - {name: shipped_on}
    measures:
      - {name: count, agg: count}
      - {name: revenue, agg: sum, sql: amount}
      - {name: returned, agg: count, filter: "status = 'returned'"}
      - {name: return_rate, agg: derived, sql: returned / count}
    segments:
      - {name: completed, sql: "status = 'completed'"}
    joins:
      - {to: products, "on": {product_id: product_id}, relationship: many_to_one}
  - name: products
    source: data/products.csv
    tenant_key: seller_id
    dimensions:
      - {name: category}
      - {name: cost}
    column_rules:
      - {columns: [cost], claim: role, allow: [admin]}
"""


@pytest.fixture
def shop_yaml(tmp_path: Path, shop_orders: pl.DataFrame, shop_products: pl.DataFrame) -> Path:
    (tmp_path / "data").mkdir()
    shop_orders.write_parquet(tmp_path / "data" / "orders.parquet")
    shop_products.write_csv(tmp_path / "data" / "products.csv")
    path = tmp_path / "shop.yml"
    path.write_text(SHOP_YAML)
    return path


YAML_QUERIES = [
    ek.Query(measures=["orders.revenue", "orders.return_rate"], dimensions=["products.category"]),
    ek.Query(
        measures=["orders.count"],
        time=[ek.Time("orders.ordered_at", grain="month")],
        segments=["orders.completed"],
        timezone="America/New_York",
    ),
    ek.Query(
        measures=["orders.count"],
        dimensions=["orders.is_big"],
        time=[ek.Time("orders.shipped_on", date_range="last month")],
    ),
]


@pytest.mark.parametrize("query", YAML_QUERIES)
def test_yaml_model_answers_like_the_python_model(
    shop_yaml: Path, shop_kit: ek.EmbedKit, shop_clock: Callable[[], datetime], query: ek.Query
) -> None:
    kit = ek.EmbedKit(clock=shop_clock)
    kit.register_yaml(shop_yaml)
    principal = ek.Principal(1, claims={"role": "admin"})
    assert (
        kit.query(query, principal=principal).to_pylist()
        == shop_kit.query(query, principal=principal).to_pylist()
    )


def test_yaml_join_written_with_a_bare_on_key_as_documented(
    shop_yaml: Path, shop_kit: ek.EmbedKit
) -> None:
    """PyYAML reads a bare ``on`` key as the boolean true; the documented form must still work."""
    shop_yaml.write_text(shop_yaml.read_text().replace('"on":', "on:"))
    kit = ek.EmbedKit()
    kit.register_yaml(shop_yaml)
    query = YAML_QUERIES[0]
    principal = ek.Principal(1)
    assert (
        kit.query(query, principal=principal).to_pylist()
        == shop_kit.query(query, principal=principal).to_pylist()
    )


def test_yaml_folder_registers_every_file(shop_yaml: Path) -> None:
    folder = shop_yaml.parent
    head, products = SHOP_YAML.split("  - name: products")
    (folder / "shop.yml").write_text(head)
    (folder / "catalog.yaml").write_text("datasets:\n  - name: products" + products)
    kit = ek.EmbedKit()
    kit.register_yaml(folder)
    assert set(kit.model.datasets) == {"orders", "products"}


def yaml_error(tmp_path: Path, text: str, name: str = "model.yml") -> ek.ModelError:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ek.ModelError) as err:
        ek.EmbedKit().register_yaml(path)
    return err.value


@pytest.mark.parametrize(
    ("text", "place"),
    [
        pytest.param("datasets: [\n  - name: x\n", "line", id="not-yaml"),
        pytest.param("tables: []\n", "datasets", id="no-datasets-list"),
        pytest.param(
            "datasets:\n  - name: orders\n    tenant_key: seller_id\n",
            "datasets[0]",
            id="missing-source",
        ),
        pytest.param(
            "datasets:\n  - name: orders\n    source: o.parquet\n    colour: red\n",
            "datasets[0]",
            id="unknown-dataset-key",
        ),
        pytest.param(
            "datasets:\n  - name: orders\n    source: o.parquet\n    measures:\n"
            "      - {name: n, agg: count}\n      - {name: m, aggregation: sum}\n",
            "measures[1]",
            id="unknown-measure-key",
        ),
        pytest.param(
            "datasets:\n  - name: orders\n    source: o.parquet\n    dimensions: status\n",
            "dimensions",
            id="members-not-a-list",
        ),
        pytest.param(
            "datasets:\n  - name: orders\n    source: o.parquet\n    joins:\n      - products\n",
            "joins[0]",
            id="join-not-a-mapping",
        ),
    ],
)
def test_yaml_error_names_the_file_and_the_place(tmp_path: Path, text: str, place: str) -> None:
    err = yaml_error(tmp_path, text)
    assert "model.yml" in str(err)
    assert place in str(err)


def test_yaml_model_problem_names_the_file(tmp_path: Path, shop_orders: pl.DataFrame) -> None:
    shop_orders.write_parquet(tmp_path / "orders.parquet")
    err = yaml_error(
        tmp_path,
        "datasets:\n  - name: orders\n    source: orders.parquet\n    tenant_key: seller_id\n"
        "    dimensions:\n      - {name: state, sql: stat}\n",
    )
    problem = only_problem(err)
    assert problem.member is not None and "state" in problem.member
    assert "model.yml" in str(err)


def test_yaml_reports_every_problem_of_every_file(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("datasets:\n  - name: a\n    colour: red\n")
    (tmp_path / "b.yml").write_text("datasets:\n  - {source: b.parquet}\n")
    with pytest.raises(ek.ModelError) as err:
        ek.EmbedKit().register_yaml(tmp_path)
    assert len(err.value.problems) == 2
    assert re.search(r"a\.yml.*colour", str(err.value))
    assert re.search(r"b\.yml: datasets\[0\]", str(err.value))


def test_yaml_path_that_does_not_exist_is_named(tmp_path: Path) -> None:
    with pytest.raises(ek.ModelError, match="does not exist") as err:
        ek.EmbedKit().register_yaml(tmp_path / "missing.yml")
    assert "missing.yml" in str(err.value)


def test_a_database_file_is_reused_across_starts_and_serves_the_sources_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "kit.duckdb"
    for amounts in ([1.0, 2.0], [10.0, 20.0, 30.0]):
        frame = pl.DataFrame({"seller_id": [1] * len(amounts), "amount": amounts})
        kit = ek.EmbedKit(
            [
                ek.Dataset(
                    "o",
                    frame,
                    tenant_key="seller_id",
                    measures=[ek.Measure("total", "sum", sql="amount")],
                )
            ],
            database=path,
        )
        got = kit.query(ek.Query(measures=["o.total"]), principal=ek.Principal(tenant=1))
        assert got.to_pylist() == [{"o.total": sum(amounts)}]
        kit.close()
    assert path.exists()


def test_a_sharded_dataset_in_a_database_file_is_rebuilt_on_the_next_start(
    tmp_path: Path,
) -> None:
    path = tmp_path / "kit.duckdb"
    for scale in (1.0, 10.0):
        frame = pl.DataFrame(
            {"seller_id": [t for t in range(1, 7) for _ in range(5)], "amount": [scale] * 30}
        )
        kit = ek.EmbedKit(
            [
                ek.Dataset(
                    "o",
                    frame,
                    tenant_key="seller_id",
                    measures=[ek.Measure("total", "sum", sql="amount")],
                )
            ],
            database=path,
            shard_rows=8,  # 30 rows: several shards
        )
        for tenant in range(1, 7):
            got = kit.query(ek.Query(measures=["o.total"]), principal=ek.Principal(tenant))
            assert got.to_pylist() == [{"o.total": 5 * scale}]
        kit.close()
