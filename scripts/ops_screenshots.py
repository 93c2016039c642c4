"""Make the docs' screenshots of the operator pages: ``/ops/status`` and ``/ops/catalog``.

Builds a small marketplace kit whose last day is replayed on a moving clock (hourly
order batches, some rows that break the contract, one refused batch, a shipments feed
that stopped four hours ago, a few hundred queries of which some fail), serves it on
127.0.0.1, opens both pages with an operator link in Debian's chromium, and writes
``docs/images/ops-status.png`` and ``docs/images/ops-catalog.png`` (1280 px wide, full page).

    .venv/bin/python scripts/ops_screenshots.py
"""

from __future__ import annotations

import argparse
import contextlib
import random
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import uvicorn
from playwright.sync_api import sync_playwright

import embedkit as ek

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
SELLERS = [1, 2, 3, 4, 5]
STATUSES = ["completed", "pending", "returned"]


class Clock:
    """The kit's "now", moved by hand while the day is replayed."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def orders_batch(rng: random.Random, start: int, end: datetime, n: int, bad: int) -> pl.DataFrame:
    rows: list[dict[str, Any]] = [
        {
            "order_id": start + i,
            "seller_id": rng.choice(SELLERS),
            "status": rng.choice(STATUSES),
            "amount": round(rng.uniform(5, 250), 2),
            "ordered_at": (end - timedelta(minutes=rng.uniform(0, 59))).replace(tzinfo=None),
        }
        for i in range(n)
    ]
    for row in rows[:bad]:  # a feed that sometimes sends refunds as negative orders
        row["amount"] = -row["amount"]
    return pl.DataFrame(rows)


def shipments_batch(rng: random.Random, start: int, end: datetime, n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "shipment_id": list(range(start, start + n)),
            "seller_id": [rng.choice(SELLERS) for _ in range(n)],
            "carrier": [rng.choice(["DHL", "UPS", "PostNL"]) for _ in range(n)],
            "days_late": [max(0, int(rng.gauss(0, 1.5))) for _ in range(n)],
            "shipped_at": [(end - timedelta(minutes=rng.uniform(0, 59))).replace(tzinfo=None)] * n,
        }
    )


def demo_kit(*, base_url: str, now: datetime) -> ek.EmbedKit:
    """A kit whose last day has happened: batches every hour, queries every few minutes."""
    rng = random.Random(7)
    clock = Clock(now - timedelta(days=1))
    sellers = pl.DataFrame(
        {"seller_id": SELLERS, "name": ["Anna", "Bo", "Chen", "Dara", "Eli"], "region": ["EU"] * 5}
    )
    orders = ek.Dataset(
        "orders",
        orders_batch(rng, 0, clock.now, 400, 0),
        tenant_key="seller_id",
        primary_key="order_id",
        time="ordered_at",
        owner="sales-data@marketly.example",
        description="One row per order placed on the marketplace, in the seller's currency.",
        dimensions=[ek.Dimension("status", description="Where the order is in its life")],
        measures=[
            ek.Measure("revenue", "sum", sql="amount", description="Money taken, before refunds"),
            ek.Measure("orders", "count", description="Orders placed"),
            ek.Measure("returned", "count", filter="status = 'returned'", description="Returns"),
            ek.Measure(
                "return_rate", "derived", sql="returned / orders", description="Share returned"
            ),
        ],
        segments=[ek.Segment("completed", "status = 'completed'", description="Paid, not open")],
        joins=[ek.Join("sellers", on={"seller_id": "seller_id"})],
        column_rules=[ek.ColumnRule(["amount"], claim="role", allow=["finance", "admin"])],
        contract=ek.Contract(
            ranges={"amount": (0, None)},
            accepted={"status": STATUSES},
            unique=["order_id"],
            freshness=timedelta(hours=2),
            reject_above=0.3,
        ),
        slo=ek.SLO(
            availability=0.995,
            latency_ms=250,
            freshness=timedelta(hours=2),
            defect_free=0.98,
            window=timedelta(days=1),
        ),
    )
    shipments = ek.Dataset(
        "shipments",
        shipments_batch(rng, 0, clock.now, 50),
        tenant_key="seller_id",
        time="shipped_at",
        owner="logistics@marketly.example",
        description="Parcels handed to a carrier; fed by the warehouse system every hour.",
        measures=[
            ek.Measure("shipments", "count", description="Parcels shipped"),
            ek.Measure(
                "late", "count", filter="days_late > 0", description="Parcels delivered late"
            ),
        ],
        dimensions=[ek.Dimension("carrier")],
        slo=ek.SLO(
            error_rate=0.02, latency_ms=300, freshness=timedelta(hours=2), window=timedelta(days=1)
        ),
    )
    directory = ek.Dataset(
        "sellers",
        sellers,
        public=True,
        primary_key="seller_id",
        owner="partner-team@marketly.example",
        description="Every seller on the marketplace, shared by all tenants.",
        dimensions=[ek.Dimension("name"), ek.Dimension("region")],
    )
    kit = ek.EmbedKit(
        [orders, shipments, directory],
        clock=clock,
        secret=ek.generate_secret(),
        embed=ek.EmbedSettings(base_url=base_url),
    )
    order_id, shipment_id = 10_000, 10_000
    for minute in range(5, 24 * 60, 5):  # up to five minutes ago
        clock.now = now - timedelta(days=1) + timedelta(minutes=minute)
        if minute % 60 == 0:
            bad = 14 if minute == 15 * 60 else rng.choice([0, 0, 0, 1, 2])
            with contextlib.suppress(ek.BatchRejected):  # the refused batch the page reports
                kit.append("orders", orders_batch(rng, order_id, clock.now, 30, bad))
            order_id += 30
            if minute <= 20 * 60:  # the warehouse feed stops four hours before "now"
                kit.append("shipments", shipments_batch(rng, shipment_id, clock.now, 8))
                shipment_id += 8
        seller = ek.Principal(rng.choice(SELLERS), claims={"role": "finance"})
        kit.query({"measures": ["orders.revenue", "orders.orders"]}, principal=seller)
        kit.query(
            {"measures": ["shipments.late"], "dimensions": ["shipments.carrier"]}, principal=seller
        )
        if minute % 90 == 0:  # an old dashboard asking for a measure that was renamed
            with contextlib.suppress(ek.EmbedKitError):
                kit.query({"measures": ["shipments.delayed"]}, principal=seller)
    clock.now = now
    return kit


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    ap.add_argument("--width", type=int, default=1280)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    kit = demo_kit(base_url=origin, now=datetime.now(UTC))
    server = uvicorn.Server(uvicorn.Config(kit.asgi(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": args.width, "height": 900}, locale="en-US")
            for name in ("status", "catalog"):
                page.goto(kit.operator_url(name, subject="docs@marketly.example"))
                page.wait_for_selector(".ops-card")
                if name == "status":
                    page.wait_for_selector("#ops-root[data-charts=ready]")
                target = args.out / f"ops-{name}.png"
                page.screenshot(path=str(target), full_page=True)
                print(
                    f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}"
                )
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        kit.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
