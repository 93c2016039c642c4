"""Seeded, vectorised data generator for the seller_portal demo (a marketplace).

Writes sellers, products, orders, order_items, returns and inventory as Parquet plus
``meta.json``, following the data contract of the demo (file names, columns, types and
invariants). Every random draw is a pure function of ``(seed, stream, row index)``: a
32-bit integer hash evaluated on whole Polars columns, so the output depends only on the
arguments and large sizes are produced in chunks of orders streamed to Parquet writers.

    python examples/seller_portal/generate.py --sellers 12 --orders 300000
"""

from __future__ import annotations

import argparse
import calendar
import json
import random
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate
from pathlib import Path
from time import perf_counter
from typing import Any

import polars as pl
import pyarrow.parquet as pq
from tqdm import tqdm

CATEGORIES = ["Books", "Toys", "Garden", "Kitchen", "Electronics", "Fashion", "Sports", "Beauty"]
# category -> (typical price, return rate, month multipliers Jan..Dec for product choice)
CATEGORY_TRAITS: dict[str, tuple[float, float, list[float]]] = {
    "Books": (16.0, 0.02, [1, 1, 1, 1, 1, 1, 1.1, 1.1, 1, 1, 1.1, 1.4]),
    "Toys": (28.0, 0.05, [0.7, 0.7, 0.8, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 1.1, 1.8, 2.4]),
    "Garden": (42.0, 0.04, [0.4, 0.5, 1.2, 1.8, 2.0, 1.8, 1.5, 1.1, 0.8, 0.6, 0.4, 0.4]),
    "Kitchen": (36.0, 0.05, [1, 0.9, 0.9, 1, 1, 0.9, 0.9, 0.9, 1, 1.1, 1.4, 1.5]),
    "Electronics": (120.0, 0.07, [1, 0.8, 0.8, 0.8, 0.8, 0.9, 0.9, 1.1, 1, 1, 1.6, 1.7]),
    "Fashion": (48.0, 0.14, [1, 0.9, 1.2, 1.1, 1, 1, 0.9, 1, 1.2, 1.1, 1.2, 1.3]),
    "Sports": (52.0, 0.06, [1.5, 1.2, 1.1, 1.1, 1.2, 1.3, 1.2, 1, 0.9, 0.8, 0.8, 0.9]),
    "Beauty": (22.0, 0.04, [1, 1.3, 1, 1, 1.1, 1, 1, 1, 1, 1, 1.2, 1.5]),
}
NOUNS = {
    "Books": ["Novel", "Cookbook", "Atlas", "Field Guide", "Poetry Book", "Planner"],
    "Toys": ["Puzzle", "Robot Kit", "Plush Bear", "Board Game", "Kite", "Train Set"],
    "Garden": ["Hose", "Planter", "Pruner", "Seed Kit", "Bird Feeder", "Trowel"],
    "Kitchen": ["Skillet", "Knife Set", "Kettle", "Mixing Bowls", "Spice Rack", "Teapot"],
    "Electronics": ["Headphones", "Speaker", "Charger", "Smart Plug", "Webcam", "E-Reader"],
    "Fashion": ["Scarf", "Jacket", "Sneakers", "Tote Bag", "Sunglasses", "Wool Hat"],
    "Sports": ["Yoga Mat", "Dumbbells", "Bike Light", "Water Bottle", "Tennis Set", "Backpack"],
    "Beauty": ["Face Serum", "Lip Balm", "Hand Cream", "Shampoo", "Perfume", "Brush Set"],
}
ADJECTIVES = ["Classic", "Cozy", "Deluxe", "Eco", "Mini", "Pro", "Rustic", "Smart", "Urban"]
SHOP_WORDS = ["Northwind", "Blue Harbor", "Maple Lane", "Oak & Ivy", "Bright Spark", "Little Fox"]
SHOP_WORDS += ["Copper Kettle", "Green Thumb", "Summit", "Paper Crane", "Urban Nest", "Red Door"]
SHOP_KINDS = ["Goods", "Supply", "Market", "Store", "Trading", "Outlet", "Studio", "House"]
COUNTRIES = ["US", "US", "US", "GB", "DE", "CA", "FR", "NL", "ES", "SE"]
REGIONS = ["North", "South", "East", "West"]
REASONS = ["Damaged", "Wrong item", "Not as described", "Changed mind", "Too late"]
REASON_CDF = [0.22, 0.34, 0.60, 0.92, 1.0]
REFUND_SHARE = [1.0, 1.0, 1.0, 0.9, 0.5]  # a restocking fee on "Changed mind", half if late
WEEKDAY = [0.92, 0.88, 0.9, 0.95, 1.05, 1.32, 1.24]  # Mon..Sun: weekends are busier
MONTH = [0.88, 0.82, 0.92, 0.95, 1.0, 0.96, 0.92, 0.96, 1.0, 1.06, 1.5, 1.62]
HOURS = [2, 1, 1, 1, 1, 2, 3, 5, 6, 6, 7, 7, 8, 7, 7, 7, 7, 8, 9, 10, 10, 9, 6, 4]  # UTC
HOUR_CDF = [c / sum(HOURS) for c in accumulate(HOURS)]
REGION_CDF = [0.4, 0.65, 0.85, 1.0]  # before rotating by the seller's home region
LINES_CDF = [0.45, 0.70, 0.85, 0.93, 1.0]  # 1..5 lines per order, about 2.1 on average
PENDING_DAYS = 3  # orders younger than this may still be pending; older ones never are
SNAPSHOTS = 52  # weekly inventory snapshots, the latest on the end date
CHUNK = 250_000  # orders per chunk (about 520k order items)
DAY_US = 86_400_000_000
M32 = 0xFFFFFFFF

SCHEMAS: dict[str, dict[str, Any]] = {
    "sellers": {"seller_id": pl.String, "name": pl.String, "country": pl.String,
                "joined_at": pl.Datetime("us")},
    "products": {"product_id": pl.Int64, "seller_id": pl.String, "name": pl.String,
                 "category": pl.String, "price": pl.Float64, "cost": pl.Float64},
    "orders": {"order_id": pl.Int64, "seller_id": pl.String, "customer_id": pl.Int64,
               "status": pl.String, "region": pl.String, "ordered_at": pl.Datetime("us")},
    "order_items": {"item_id": pl.Int64, "order_id": pl.Int64, "seller_id": pl.String,
                    "product_id": pl.Int64, "quantity": pl.Int64, "unit_price": pl.Float64,
                    "unit_cost": pl.Float64, "status": pl.String,
                    "ordered_at": pl.Datetime("us")},
    "returns": {"return_id": pl.Int64, "item_id": pl.Int64, "order_id": pl.Int64,
                "seller_id": pl.String, "product_id": pl.Int64, "quantity": pl.Int64,
                "refund": pl.Float64, "reason": pl.String, "returned_at": pl.Datetime("us")},
    "inventory": {"snapshot_date": pl.Date, "seller_id": pl.String, "product_id": pl.Int64,
                  "stock_on_hand": pl.Int64, "reorder_point": pl.Int64,
                  "avg_daily_units": pl.Float64},
}  # fmt: skip


def _mix(x: pl.Series) -> pl.Series:
    """The lowbias32 integer hash on a UInt64 column (values kept below 2**32)."""
    x = x & M32
    x = x ^ (x // 65_536)
    x = (x * 0x7FEB352D) & M32
    x = x ^ (x // 32_768)
    x = (x * 0x846CA68B) & M32
    return x ^ (x // 65_536)


def _uniform(seed: int, stream: int, idx: pl.Series) -> pl.Series:
    """Uniform floats in [0, 1), one per row index in ``idx``, for a seed and stream."""
    base = (seed * 0x9E3779B1 + stream * 0x85EBCA77 + 1) % 2**32
    salt = _mix(pl.Series([base], dtype=pl.UInt64))
    salt2 = _mix(salt + stream)
    return (_mix(_mix(idx.cast(pl.UInt64) ^ salt[0]) ^ salt2[0]) / 2**32).rename("u")


def _pick(cdf: list[float], u: pl.Series) -> pl.Series:
    """Index of the bucket of each uniform ``u`` in a cumulative distribution ending at 1."""
    return pl.Series(cdf).search_sorted(u, side="right").clip(0, len(cdf) - 1).cast(pl.Int64)


def _window(end: datetime) -> tuple[datetime, int]:
    """The start of the 18-month window ending at ``end`` and the window's length in days."""
    months = end.year * 12 + end.month - 1 - 18
    year, month0 = divmod(months, 12)
    day = min(end.day, calendar.monthrange(year, month0 + 1)[1])
    start = end.replace(year=year, month=month0 + 1, day=day)
    return start, (end - start).days


@dataclass
class _Seller:
    """A seller and the traits that shape its orders (only the first four are written)."""

    seller_id: str
    name: str
    country: str
    joined_at: datetime
    join_day: int  # day index in the window (negative: joined before the window)
    weight: float  # share of all orders before normalisation
    categories: list[str]
    growth: float  # yearly growth rate
    cancel_rate: float
    return_factor: float
    home: int  # index of the region with most customers


def _sellers(seed: int, n: int, start: datetime) -> list[_Seller]:
    """Sellers of Pareto-like sizes; s001 is mid-size, sells every category, joined early."""
    rng = random.Random(f"{seed}:sellers")
    sizes = [(r + 1) ** -1.1 * (0.8 + 0.4 * rng.random()) for r in range(n - 1)]
    rng.shuffle(sizes)
    mid = sorted(sizes, reverse=True)[len(sizes) // 3] if sizes else 1.0
    names = [f"{a} {b}" for a in SHOP_WORDS for b in SHOP_KINDS]
    rng.shuffle(names)
    third = sorted([mid, *sizes], reverse=True)[min(2, n - 1)]  # the 3 largest sell more
    out = []
    for i in range(n):
        first = i == 0
        weight = mid if first else sizes[i - 1]
        cats = CATEGORIES[:]
        rng.shuffle(cats)
        cats = CATEGORIES if first else cats[: 1 + int(rng.random() * 3) + 2 * (weight >= third)]
        late = not first and rng.random() < 0.25  # joined during the window's first year
        offset = 30 + rng.random() * 330 if late else -(30 + rng.random() * 1400)
        joined = start + timedelta(days=-500 if first else offset)
        out.append(_Seller(
            seller_id=f"s{i + 1:03d}",
            name=names[i % len(names)] + (f" {i // len(names) + 1}" if i >= len(names) else ""),
            country="US" if first else COUNTRIES[int(rng.random() * len(COUNTRIES))],
            joined_at=datetime.combine(joined.date(), time(int(rng.random() * 24))),
            join_day=(joined.date() - start.date()).days,
            weight=weight,
            categories=cats,
            growth=0.25 if first else 0.05 + 0.4 * rng.random(),
            cancel_rate=0.02 + 0.05 * rng.random(),
            return_factor=1.0 if first else 0.6 + rng.random(),
            home=int(rng.random() * 4),
        ))  # fmt: skip
    return out


def _products(seed: int, sellers: list[_Seller]) -> pl.DataFrame:
    """Products per seller with prices, costs, popularity and inventory traits."""
    rng = random.Random(f"{seed}:products")
    top = max(s.weight for s in sellers)
    rows: list[dict[str, Any]] = []
    for sidx, s in enumerate(sellers):
        count = max(8, round(12 + 110 * (s.weight / top) ** 0.5), 5 * len(s.categories))
        used: set[str] = set()
        for j in range(count):
            cat = s.categories[j % len(s.categories)]
            if j >= len(s.categories) and rng.random() < 0.5:
                cat = s.categories[int(rng.random() * len(s.categories))]
            name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS[cat])}"
            name = name if name not in used else f"{name} {j}"
            used.add(name)
            price = round(CATEGORY_TRAITS[cat][0] * (0.3 + 1.7 * rng.random() ** 1.5)) - 0.01
            slow = rng.random() < 0.1
            rows.append({
                "prow": len(rows), "product_id": 1001 + len(rows), "seller_id": s.seller_id,
                "sidx": sidx, "name": name, "category": cat, "price": max(price, 2.99),
                "margin": 0.25 + 0.4 * rng.random(), "slow": slow,
                "short": not slow and rng.random() < 0.12,
                "weight": (0.03 if slow else 1.0) / (1 + int(rng.random() * count)) ** 0.9,
                "return_p": CATEGORY_TRAITS[cat][1] * s.return_factor,
                "lead": 5 + int(rng.random() * 17), "cycle": 3 + int(rng.random() * 6),
                "phase": int(rng.random() * 8), "base": 200 + int(rng.random() * 1000),
                "join_day": s.join_day,
            })  # fmt: skip
    return pl.DataFrame(rows).with_columns(
        cost=(pl.col("price") * (1 - pl.col("margin"))).round(2).clip(0.01)
    )


def _product_choice(products: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
    """A sorted lookup: ``seller*12 + month0 + u`` -> product row, by seasonal popularity."""
    season = pl.DataFrame(
        {"category": c, "month0": list(range(12)), "season": [float(m) for m in t[2]]}
        for c, t in CATEGORY_TRAITS.items()
    ).explode("month0", "season")
    table = (
        products.select("prow", "sidx", "category", "weight")
        .join(season, on="category")
        .with_columns(seg=pl.col("sidx") * 12 + pl.col("month0"))
        .with_columns(w=pl.col("weight") * pl.col("season"))
        .sort("seg", "prow")
        .with_columns(frac=pl.col("w").cum_sum().over("seg") / pl.col("w").sum().over("seg"))
        .with_columns(frac=pl.when(pl.col("prow") == pl.col("prow").last().over("seg"))
                      .then(1.0).otherwise(pl.col("frac")))
    )  # fmt: skip
    return table["seg"] + table["frac"], table["prow"]


def _blocks(seed: int, sellers: list[_Seller], start: date, days: int, orders: int) -> pl.DataFrame:
    """Orders per (day, seller): weekly, seasonal and growth patterns, exact total count."""
    years = range(start.year, start.year + 3)
    promo = [_black_friday(y) + timedelta(days=k) for y in years for k in range(5)]
    cal = pl.DataFrame({"date": pl.date_range(start, start + timedelta(days=days - 1), eager=True)})
    cal = cal.with_row_index("day").with_columns(
        dow=pl.col("date").dt.weekday() - 1, month=pl.col("date").dt.month(),
        promo=pl.col("date").is_in(promo),
    )  # fmt: skip
    sel = pl.DataFrame(
        {"sidx": i, "weight": s.weight, "growth": s.growth, "join_day": s.join_day}
        for i, s in enumerate(sellers)
    )
    grid = cal.join(sel, how="cross").sort("day", "sidx")
    noise = _uniform(seed, 1, grid["sidx"] * days + grid["day"])
    since = pl.col("day").cast(pl.Int64) - pl.col("join_day")
    f = (
        (1 + pl.col("growth")) ** (pl.col("day") / 365.0)
        * pl.col("dow").replace_strict(list(range(7)), WEEKDAY, return_dtype=pl.Float64)
        * pl.col("month").replace_strict(list(range(1, 13)), MONTH, return_dtype=pl.Float64)
        * pl.when(pl.col("promo")).then(1.7).otherwise(1.0)
        * (since / 60).clip(0, 1)
        * (0.8 + 0.4 * pl.lit(noise))
    )
    grid = grid.with_columns(f=f).with_columns(
        w=pl.col("weight") * pl.col("f") / pl.col("f").sum().over("sidx")
    )
    cum = (grid["w"].cum_sum() / grid["w"].sum() * orders).round().cast(pl.Int64)
    grid = grid.with_columns(n=cum.diff().fill_null(cum[0]), end=cum)
    return grid.filter(pl.col("n") > 0).select("day", "sidx", "month", "promo", "end")


def _black_friday(year: int) -> date:
    """The fourth Thursday of November: a five-day promotion runs to Cyber Monday."""
    first = date(year, 11, 1)
    return first + timedelta(days=(3 - first.weekday()) % 7 + 21)


@dataclass
class _Ctx:
    """What the chunk functions share: sizes, window, sellers, products, lookup tables."""

    seed: int
    start: date
    start_us: int
    end_us: int
    sellers: list[_Seller]
    products: pl.DataFrame
    blocks: pl.DataFrame
    choice: tuple[pl.Series, pl.Series]
    customers: int


def _orders_chunk(ctx: _Ctx, a: int, b: int) -> pl.DataFrame:
    """Orders ``a`` to ``b - 1`` (0-based), with internal columns for their items."""
    k = pl.int_range(a, b, dtype=pl.UInt64, eager=True)
    at = ctx.blocks["end"].search_sorted(k.cast(pl.Int64), side="right")
    blk = ctx.blocks.select(pl.col("day", "sidx", "month", "promo").gather(at))
    u = [_uniform(ctx.seed, 10 + s, k) for s in range(6)]
    ids = pl.Series([s.seller_id for s in ctx.sellers])
    homes = pl.Series([s.home for s in ctx.sellers])
    hour = _pick(HOUR_CDF, u[0])
    sec = hour * 3600 + (u[1] * 3600).floor().cast(pl.Int64)
    df = blk.with_columns(
        order_id=k.cast(pl.Int64) + 1,
        seller_id=ids.gather(blk["sidx"]),
        customer_id=1 + (ctx.customers * u[2] ** 1.4).floor().cast(pl.Int64),
        region=pl.Series(REGIONS).gather((_pick(REGION_CDF, u[3]) + homes.gather(blk["sidx"])) % 4),
        ts=ctx.start_us + blk["day"].cast(pl.Int64) * DAY_US + sec * 1_000_000,
        n_lines=_pick(LINES_CDF, u[4]) + 1,
        u_status=u[5],
        cancel=pl.Series([s.cancel_rate for s in ctx.sellers]).gather(blk["sidx"]),
    )  # fmt: skip
    pend = (PENDING_DAYS - (ctx.end_us - pl.col("ts")) / DAY_US).clip(0) * (0.9 / PENDING_DAYS)
    return df.with_columns(
        status=pl.when(pl.col("u_status") < pend).then(pl.lit("pending"))
        .when(pl.col("u_status") < pend + pl.col("cancel")).then(pl.lit("cancelled"))
        .otherwise(pl.lit("completed")),
        ordered_at=pl.col("ts").cast(pl.Datetime("us")),
    )  # fmt: skip


def _items_chunk(ctx: _Ctx, orders: pl.DataFrame, offset: int) -> pl.DataFrame:
    """The order lines of a chunk of orders, one per distinct product; ids follow ``offset``.

    Draws are keyed by ``i`` = order index * 8 + line, so they do not depend on chunking.
    """
    items = orders.select(
        "order_id", "seller_id", "sidx", "day", "month", "promo", "status", "ordered_at",
        i=(pl.col("order_id") - 1) * 8 + pl.int_ranges(0, "n_lines"),
    ).explode("i")  # fmt: skip
    seg, prow = ctx.choice
    key = items["sidx"] * 12 + items["month"].cast(pl.Int64) - 1
    key = key + _uniform(ctx.seed, 20, items["i"])
    at = prow.gather(seg.search_sorted(key, side="right").clip(0, len(seg) - 1))
    p = ctx.products.select(pl.col("prow", "product_id", "price", "cost", "return_p").gather(at))
    items = pl.concat([items, p], how="horizontal")
    repeat = (  # the product is on one of the (at most 4) earlier lines of the same order
        (pl.col("order_id").shift(k) == pl.col("order_id"))
        & (pl.col("prow").shift(k) == pl.col("prow"))
        for k in range(1, len(LINES_CDF))
    )
    items = items.filter(~pl.any_horizontal(repeat).fill_null(False))
    i = items["i"]
    items = items.with_columns(
        u_q=_uniform(ctx.seed, 21, i),
        u_d=_uniform(ctx.seed, 22, i),
        u_ret=_uniform(ctx.seed, 23, i),
    )
    disc = (
        pl.when(pl.col("promo") & (pl.col("u_d") < 0.6)).then(0.2)
        .when(pl.col("u_d") < 0.08).then(0.1 + 2.5 * pl.col("u_d"))
        .otherwise(0.0)
    )  # fmt: skip
    most = pl.when(pl.col("price") < 30).then(4).otherwise(2)  # cheap things go in multiples
    return items.with_columns(
        item_id=pl.int_range(offset + 1, offset + 1 + items.height),
        quantity=1 + (pl.col("u_q") ** 3 * most).floor().cast(pl.Int64),
        unit_price=(pl.col("price") * (1 - disc)).round(2),
        unit_cost=pl.col("cost"),
    )


def _returns_chunk(ctx: _Ctx, items: pl.DataFrame, offset: int) -> pl.DataFrame:
    """Returns of completed order lines, within 30 days of the order and before the end."""
    r = items.filter((pl.col("status") == "completed") & (pl.col("u_ret") < pl.col("return_p")))
    r = r.with_columns(
        why=_pick(REASON_CDF, _uniform(ctx.seed, 30, r["i"])),
        u_t=_uniform(ctx.seed, 31, r["i"]),
        u_part=_uniform(ctx.seed, 32, r["i"]),
        u_n=_uniform(ctx.seed, 33, r["i"]),
    )
    late = pl.col("why") == len(REASONS) - 1
    delay = pl.when(late).then(25 + 5 * pl.col("u_t")).otherwise(1 + 21 * pl.col("u_t"))
    full = pl.col("quantity").cast(pl.Float64) * pl.col("unit_price")
    r = r.with_columns(
        reason=pl.col("why").replace_strict(list(range(5)), REASONS, return_dtype=pl.String),
        quantity=pl.when((pl.col("quantity") > 1) & (pl.col("u_part") >= 0.7))
        .then(1 + (pl.col("u_n") * pl.col("quantity")).floor().cast(pl.Int64))
        .otherwise(pl.col("quantity")),
        share=pl.col("why").replace_strict(list(range(5)), REFUND_SHARE, return_dtype=pl.Float64),
        returned_at=(
            pl.col("ordered_at").cast(pl.Int64) + (delay * DAY_US).floor().cast(pl.Int64)
        ).cast(pl.Datetime("us")),
    ).with_columns(refund=pl.min_horizontal((full * pl.col("share")).round(2), full))
    r = r.filter(pl.col("returned_at").cast(pl.Int64) < ctx.end_us)
    return r.with_columns(return_id=pl.int_range(offset + 1, offset + 1 + r.height))


def _inventory(ctx: _Ctx, units: pl.DataFrame, days: int) -> pl.DataFrame:
    """Weekly stock snapshots ending on the end date; sales of the 28 days before each."""
    e = days  # the end date's day index
    snaps = pl.DataFrame({"k": range(SNAPSHOTS)}).with_columns(snap=e - 7 * pl.col("k"))
    sold = (
        units.with_columns(s0=e - 7 * ((e - pl.col("day") - 1) // 7), j=pl.lit([0, 7, 14, 21]))
        .explode("j")
        .with_columns(snap=pl.col("s0") + pl.col("j"))
        .filter(pl.col("snap") <= e)
        .group_by("prow", "snap")
        .agg(sold=pl.col("q").sum())
    )
    rate = units.filter(pl.col("day") >= e - 91).group_by("prow").agg(rate=pl.col("q").sum() / 91)
    grid = (
        ctx.products.join(snaps, how="cross")
        .filter(pl.col("snap") > pl.col("join_day"))
        .join(sold, on=["prow", "snap"], how="left")
        .join(rate, on="prow", how="left")
        .fill_null(0)
        .sort("prow", "k")
    )
    u = _uniform(ctx.seed, 40, grid["prow"] * SNAPSHOTS + grid["k"])
    rp = (
        pl.when(pl.col("slow")).then(2 + (3 * pl.lit(u)).floor())
        .otherwise((pl.col("rate") * (pl.col("lead") + 3)).ceil().clip(2))
    )  # fmt: skip
    order_qty = (pl.col("rate") * 7 * pl.col("cycle")).clip(6)
    t = (SNAPSHOTS - 1 - pl.col("k") + pl.col("phase")) % pl.col("cycle")
    normal = pl.col("rp") * (0.5 + pl.lit(u)) + order_qty * (1 - t / pl.col("cycle"))
    stock = (
        pl.when(pl.col("slow")).then(pl.col("base") + 4 * pl.col("k") + (10 * pl.lit(u)).floor())
        .when(pl.col("short") & (pl.col("k") == 0)).then((0.8 * pl.col("rp") * pl.lit(u)).floor())
        .otherwise(normal.round())
    )  # fmt: skip
    return (
        grid.with_columns(rp=rp)
        .with_columns(
            snapshot_date=pl.lit(ctx.start) + pl.duration(days=pl.col("snap")),
            stock_on_hand=stock.clip(0),
            reorder_point=pl.col("rp"),
            avg_daily_units=pl.col("sold") / 28,
        )
        .sort("snapshot_date", "seller_id", "product_id")
    )


def _frame(df: pl.DataFrame, name: str) -> pl.DataFrame:
    """``df`` cut down to the contract's columns and types for the file ``name``."""
    return df.select(pl.col(c).cast(t) for c, t in SCHEMAS[name].items())


def generate(
    out: Path, *, sellers: int, orders: int, seed: int, end: datetime, progress: bool = True
) -> dict[str, Any]:
    """Write the seller_portal data set into ``out`` and return its meta (also meta.json).

    ``end`` is floored to 00:00 UTC of its day (a naive ``end`` is taken as UTC); the data
    covers the 18 months before it. ``progress`` shows a tqdm bar on stderr.
    """
    if sellers < 1 or orders < 1:
        raise ValueError("sellers and orders must be at least 1")
    end = end.astimezone(UTC) if end.tzinfo else end.replace(tzinfo=UTC)
    end = end.replace(hour=0, minute=0, second=0, microsecond=0)
    start, days = _window(end)
    seller_list = _sellers(seed, sellers, start.replace(tzinfo=None))
    products = _products(seed, seller_list)
    ctx = _Ctx(
        seed=seed,
        start=start.date(),
        start_us=int(start.timestamp()) * 1_000_000,
        end_us=int(end.timestamp()) * 1_000_000,
        sellers=seller_list,
        products=products,
        blocks=_blocks(seed, seller_list, start.date(), days, orders),
        choice=_product_choice(products),
        customers=max(500, orders // 3),
    )
    out.mkdir(parents=True, exist_ok=True)
    streamed = ("orders", "order_items", "returns")
    rows = dict.fromkeys(streamed, 0)
    units: list[pl.DataFrame] = []
    writers = {
        n: pq.ParquetWriter(out / f"{n}.parquet", pl.DataFrame(schema=SCHEMAS[n]).to_arrow().schema)
        for n in streamed
    }
    try:
        bar = tqdm(total=orders, unit="order", file=sys.stderr, disable=None if progress else True)
        with bar:
            for a in range(0, orders, CHUNK):
                chunk_orders = _orders_chunk(ctx, a, min(orders, a + CHUNK))
                items = _items_chunk(ctx, chunk_orders, rows["order_items"])
                returns = _returns_chunk(ctx, items, rows["returns"])
                for name, df in zip(streamed, (chunk_orders, items, returns), strict=True):
                    writers[name].write_table(_frame(df, name).to_arrow())
                    rows[name] += df.height
                units.append(
                    items.filter(pl.col("status") != "cancelled")
                    .group_by("prow", "day")
                    .agg(q=pl.col("quantity").sum())
                )
                bar.update(chunk_orders.height)
    finally:
        for writer in writers.values():
            writer.close()
    sold = pl.concat(units).group_by("prow", "day").agg(pl.col("q").sum())
    tables = {
        "sellers": pl.DataFrame([vars(s) for s in seller_list]),
        "products": products,
        "inventory": _inventory(ctx, sold.with_columns(pl.col("day").cast(pl.Int64)), days),
    }
    for name, df in tables.items():
        _frame(df, name).write_parquet(out / f"{name}.parquet")
        rows[name] = df.height
    order = ["sellers", "products", "orders", "order_items", "returns", "inventory"]
    files = {f"{n}.parquet": rows[n] for n in order}
    meta = {
        "seed": seed,
        "sellers": sellers,
        "orders": orders,
        "end": end.isoformat(),
        "rows": files,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def main(argv: list[str] | None = None) -> int:
    """The command line: parse flags, generate, print the meta as JSON."""
    parser = argparse.ArgumentParser(description="Generate the seller_portal demo data.")
    parser.add_argument("--sellers", type=int, default=12, help="number of sellers (12)")
    parser.add_argument("--orders", type=int, default=300_000, help="number of orders (300000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (7)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data")
    parser.add_argument("--end", type=datetime.fromisoformat, help="ISO date (today, UTC)")
    args = parser.parse_args(argv)
    started = perf_counter()
    end = args.end or datetime.now(UTC)  # generate() floors it to 00:00 UTC
    meta = generate(args.out, sellers=args.sellers, orders=args.orders, seed=args.seed, end=end)
    print(json.dumps(meta, indent=2))
    print(f"wrote {args.out} in {perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
