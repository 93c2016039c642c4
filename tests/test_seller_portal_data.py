"""The seller_portal data generator keeps the demo's data contract.

A small data set (4 sellers, 5,000 orders) is generated once into a temporary folder and
checked with Polars: files and schemas, determinism, keys between the files, returns,
inventory, the 18-month window and the weekly and seasonal patterns the dashboards show.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest

GENERATE = Path(__file__).resolve().parents[1] / "examples" / "seller_portal" / "generate.py"
END = datetime(2026, 11, 1, tzinfo=UTC)
NAIVE_END = END.replace(tzinfo=None)
START = datetime(2025, 5, 1)  # 18 months before END
SELLERS, ORDERS, SEED = 4, 5_000, 7
TS = pl.Datetime("us")
CONTRACT: dict[str, dict[str, pl.DataType]] = {
    "sellers": {"seller_id": pl.String(), "name": pl.String(), "country": pl.String(),
                "joined_at": TS},
    "products": {"product_id": pl.Int64(), "seller_id": pl.String(), "name": pl.String(),
                 "category": pl.String(), "price": pl.Float64(), "cost": pl.Float64()},
    "orders": {"order_id": pl.Int64(), "seller_id": pl.String(), "customer_id": pl.Int64(),
               "status": pl.String(), "region": pl.String(), "ordered_at": TS},
    "order_items": {"item_id": pl.Int64(), "order_id": pl.Int64(), "seller_id": pl.String(),
                    "product_id": pl.Int64(), "quantity": pl.Int64(),
                    "unit_price": pl.Float64(), "unit_cost": pl.Float64(),
                    "status": pl.String(), "ordered_at": TS},
    "returns": {"return_id": pl.Int64(), "item_id": pl.Int64(), "order_id": pl.Int64(),
                "seller_id": pl.String(), "product_id": pl.Int64(), "quantity": pl.Int64(),
                "refund": pl.Float64(), "reason": pl.String(), "returned_at": TS},
    "inventory": {"snapshot_date": pl.Date(), "seller_id": pl.String(),
                  "product_id": pl.Int64(), "stock_on_hand": pl.Int64(),
                  "reorder_point": pl.Int64(), "avg_daily_units": pl.Float64()},
}  # fmt: skip
CATEGORIES = {"Books", "Toys", "Garden", "Kitchen", "Electronics", "Fashion", "Sports", "Beauty"}
REASONS = {"Damaged", "Wrong item", "Not as described", "Changed mind", "Too late"}

Tables = dict[str, pl.DataFrame]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("seller_portal_generate", GENERATE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def _read(folder: Path) -> Tables:
    return {name: pl.read_parquet(folder / f"{name}.parquet") for name in CONTRACT}


@pytest.fixture(scope="module")
def module() -> ModuleType:
    return _load()


@pytest.fixture(scope="module")
def make(module: ModuleType) -> Callable[[Path, int], Tables]:
    def run(folder: Path, seed: int) -> Tables:
        module.generate(folder, sellers=SELLERS, orders=ORDERS, seed=seed, end=END, progress=False)
        return _read(folder)

    return run


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, make: Callable[[Path, int], Tables]) -> Path:
    path = tmp_path_factory.mktemp("seller_portal")
    make(path, SEED)
    return path


@pytest.fixture(scope="module")
def t(folder: Path) -> Tables:
    return _read(folder)


def test_files_schemas_and_meta(folder: Path, t: Tables) -> None:
    assert {p.name for p in folder.iterdir()} == {f"{n}.parquet" for n in CONTRACT} | {"meta.json"}
    for name, schema in CONTRACT.items():
        assert dict(t[name].schema) == schema, name
    meta = json.loads((folder / "meta.json").read_text())
    assert meta == {
        "seed": SEED,
        "sellers": SELLERS,
        "orders": ORDERS,
        "end": "2026-11-01T00:00:00+00:00",
        "rows": {f"{n}.parquet": t[n].height for n in CONTRACT},
    }


def test_sizes_and_unique_ids(t: Tables) -> None:
    assert t["orders"].height == ORDERS
    assert t["sellers"]["seller_id"].to_list() == ["s001", "s002", "s003", "s004"]
    for name, key in [("sellers", "name"), ("products", "product_id"), ("orders", "order_id"),
                      ("order_items", "item_id"), ("returns", "return_id")]:  # fmt: skip
        assert t[name][key].is_unique().all(), (name, key)
    assert t["order_items"].height > ORDERS and t["returns"].height > 0
    for name, frame in t.items():
        assert frame.null_count().sum_horizontal().item() == 0, name


def test_same_seed_same_data_other_seed_other_data(
    t: Tables, make: Callable[[Path, int], Tables], tmp_path: Path
) -> None:
    again = make(tmp_path / "again", SEED)
    for name in CONTRACT:
        assert again[name].equals(t[name]), name
    other = make(tmp_path / "other", SEED + 1)
    assert other["orders"].height == ORDERS
    assert not other["orders"].equals(t["orders"])
    assert not other["order_items"].equals(t["order_items"])


def test_chunks_do_not_change_the_data(
    t: Tables, make: Callable[[Path, int], Tables], module: ModuleType, tmp_path: Path
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "CHUNK", 777)  # 7 chunks instead of 1, as for large sizes
        chunked = make(tmp_path, SEED)
    for name in CONTRACT:
        assert chunked[name].equals(t[name]), name


def test_items_belong_to_their_order_and_seller(t: Tables) -> None:
    items = t["order_items"].join(t["orders"], on="order_id", how="left", suffix="_o")
    assert items["seller_id_o"].null_count() == 0
    assert (items["seller_id"] == items["seller_id_o"]).all()
    assert (items["status"] == items["status_o"]).all()
    assert (items["ordered_at"] == items["ordered_at_o"]).all()
    assert t["orders"]["order_id"].is_in(t["order_items"]["order_id"].implode()).all()
    owned = t["order_items"].join(t["products"], on="product_id", how="left", suffix="_p")
    assert (owned["seller_id"] == owned["seller_id_p"]).all()
    assert t["order_items"].select("order_id", "product_id").is_unique().all()
    assert (t["order_items"]["quantity"] >= 1).all()
    assert (t["order_items"]["unit_price"] > 0).all()


def test_returns_match_completed_items(t: Tables) -> None:
    r = t["returns"].join(t["order_items"], on="item_id", how="left", suffix="_i")
    assert r["order_id_i"].null_count() == 0
    for key in ["order_id", "seller_id", "product_id"]:
        assert (r[key] == r[f"{key}_i"]).all(), key
    assert (r["status"] == "completed").all()
    assert ((r["quantity"] >= 1) & (r["quantity"] <= r["quantity_i"])).all()
    assert ((r["refund"] >= 0) & (r["refund"] <= r["quantity"] * r["unit_price"])).all()
    assert (r["returned_at"] > r["ordered_at"]).all()
    assert (r["returned_at"] <= r["ordered_at"] + timedelta(days=30)).all()
    assert (r["returned_at"] < NAIVE_END).all()
    assert set(r["reason"]) == REASONS


def test_products_and_sellers(t: Tables) -> None:
    p = t["products"]
    assert ((p["cost"] > 0) & (p["cost"] < p["price"])).all()
    assert set(p["category"]) <= CATEGORIES
    cats = p.group_by("seller_id").agg(pl.col("category").unique().sort())
    by_seller = dict(zip(cats["seller_id"], cats["category"].to_list(), strict=True))
    assert set(by_seller["s001"]) == CATEGORIES
    assert len({tuple(c) for c in by_seller.values()}) > 1  # categories differ per seller
    sizes = t["orders"]["seller_id"].value_counts()["count"]
    assert sizes.max() > 2 * sizes.min()  # a large seller and a small one


def test_orders_window_status_and_regions(t: Tables) -> None:
    o = t["orders"]
    assert o["ordered_at"].min() >= START and o["ordered_at"].max() < NAIVE_END
    assert o["ordered_at"].min() < START + timedelta(days=2)
    assert set(o["status"]) == {"completed", "cancelled", "pending"}
    pending = o.filter(pl.col("status") == "pending")["ordered_at"]
    assert pending.min() >= NAIVE_END - timedelta(days=3)
    recent = o.filter(pl.col("ordered_at") >= NAIVE_END - timedelta(days=1))
    assert (recent["status"] == "pending").mean() > 0.3
    assert set(o["region"]) == {"North", "South", "East", "West"}
    joined = o.join(t["sellers"], on="seller_id")
    assert (joined["ordered_at"] > joined["joined_at"]).all()


def test_weekly_seasonal_and_growth_patterns(t: Tables) -> None:
    days = pl.DataFrame({"day": pl.date_range(START.date(), NAIVE_END.date(), eager=True)[:-1]})
    counts = t["orders"].group_by(day=pl.col("ordered_at").dt.date()).len()
    daily = days.join(counts, on="day", how="left").fill_null(0)
    daily = daily.with_columns(
        weekend=pl.col("day").dt.weekday() >= 6,
        peak=pl.col("day").dt.month() >= 11,
        month=pl.col("day").dt.truncate("1mo"),
    )

    def mean(flag: str) -> tuple[float, float]:
        means = daily.group_by(flag).agg(pl.col("len").mean())
        values = dict(zip(means[flag], means["len"], strict=True))
        return values[True], values[False]

    weekend, weekday = mean("weekend")
    assert weekend > 1.15 * weekday
    peak, rest = mean("peak")
    assert peak > 1.3 * rest
    may_oct = pl.col("day").dt.month().is_between(5, 10)
    first = daily.filter(may_oct & (pl.col("day").dt.year() == 2025))["len"].mean()
    last = daily.filter(may_oct & (pl.col("day").dt.year() == 2026))["len"].mean()
    assert isinstance(first, float) and isinstance(last, float)
    assert 1.05 * first < last < 2 * first  # gentle growth year over year


def test_inventory(t: Tables) -> None:
    inv = t["inventory"]
    for column in ["stock_on_hand", "reorder_point", "avg_daily_units"]:
        assert (inv[column] >= 0).all(), column
    latest = inv.filter(pl.col("snapshot_date") == END.date())
    assert inv["snapshot_date"].max() == END.date()
    assert sorted(latest["product_id"]) == sorted(t["products"]["product_id"])
    assert inv.select("snapshot_date", "product_id").is_unique().all()
    gaps = inv["snapshot_date"].unique().sort().diff().drop_nulls().unique()
    assert gaps.to_list() == [timedelta(days=7)]
    owned = inv.join(t["products"], on="product_id", suffix="_p")
    assert (owned["seller_id"] == owned["seller_id_p"]).all()
    assert (latest["stock_on_hand"] < latest["reorder_point"]).sum() > 0
    slow = latest.filter((pl.col("avg_daily_units") < 0.2) & (pl.col("stock_on_hand") >= 200))
    assert slow.height > 0
    # avg_daily_units = units sold (cancelled orders aside) in the 28 days before the snapshot
    window = pl.col("ordered_at").is_between(NAIVE_END - timedelta(days=28), NAIVE_END, "left")
    sold = (
        t["order_items"]
        .filter(window & (pl.col("status") != "cancelled"))
        .group_by("product_id")
        .agg(expected=pl.col("quantity").sum() / 28)
    )
    check = latest.join(sold, on="product_id", how="left").fill_null(0)
    assert (check["avg_daily_units"] - check["expected"]).abs().max() < 1e-9
