"""The portal's own data: sellers, the people who sign in, and promotions.

None of this is embedkit's: a real portal has its own user store and database. The
analytics only ever learn a seller id and a role, from :meth:`User.claims`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

#: The demo's one password. A real portal checks a password hash (or uses SSO).
DEMO_PASSWORD = "demo"
DEMO_PEOPLE = ("anna", "ben", "chloe")  # one person per demo seller, in seller order


@dataclass(frozen=True)
class Seller:
    """A marketplace seller (a tenant of the analytics)."""

    seller_id: str
    name: str
    country: str


@dataclass(frozen=True)
class User:
    """Someone who signs in to the portal for one seller."""

    email: str
    name: str
    seller: Seller
    role: str  # "admin" or "user": becomes the embed's `role` claim

    @property
    def claims(self) -> dict[str, Any]:
        """Facts about the user that embedkit's rules read (model.yml's column rules)."""
        return {"role": self.role}


def load_sellers(data_dir: Path) -> list[Seller]:
    """Every seller of the generated data, in id order."""
    frame = pl.read_parquet(data_dir / "sellers.parquet").sort("seller_id")
    return [
        Seller(seller_id=row["seller_id"], name=row["name"], country=row["country"])
        for row in frame.iter_rows(named=True)
    ]


def demo_users(sellers: Sequence[Seller]) -> dict[str, User]:
    """Two logins for each of the first sellers: ``anna@s001`` and ``anna-admin@s001``."""
    users: dict[str, User] = {}
    for person, seller in zip(DEMO_PEOPLE, sellers, strict=False):
        for role, suffix in (("user", ""), ("admin", "-admin")):
            email = f"{person}{suffix}@{seller.seller_id}"
            users[email] = User(email, person.capitalize(), seller, role)
    return users


class Promotions:
    """The portal's promotions, in its own SQLite database (not in embedkit).

    Later, a live embedkit dataset over this table could chart promotion results next to
    sales; for now the portal lists them itself.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        with closing(self._connect()) as db, db:
            db.execute(
                """CREATE TABLE IF NOT EXISTS promotions (
                       id INTEGER PRIMARY KEY AUTOINCREMENT,
                       seller_id TEXT NOT NULL,
                       product_id INTEGER NOT NULL,
                       discount INTEGER NOT NULL,
                       created_at TEXT NOT NULL
                   )"""
            )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path)
        db.row_factory = sqlite3.Row
        return db

    def add(self, seller_id: str, product_id: int, discount: int) -> None:
        """Start a promotion."""
        created = datetime.now(UTC).isoformat(timespec="seconds")
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO promotions (seller_id, product_id, discount, created_at) "
                "VALUES (?, ?, ?, ?)",
                (seller_id, product_id, discount, created),
            )

    def end(self, seller_id: str, promotion_id: int) -> None:
        """End one of the seller's promotions (another seller's id matches nothing)."""
        with closing(self._connect()) as db, db:
            db.execute(
                "DELETE FROM promotions WHERE id = ? AND seller_id = ?",
                (promotion_id, seller_id),
            )

    def active(self, seller_id: str) -> list[dict[str, Any]]:
        """The seller's promotions, newest first."""
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT id, product_id, discount, created_at FROM promotions "
                "WHERE seller_id = ? ORDER BY id DESC",
                (seller_id,),
            ).fetchall()
        return [dict(row) for row in rows]


@dataclass(frozen=True)
class Staff:
    """Someone of the marketplace itself: sees how the data is doing, not a shop's data."""

    email: str
    name: str


#: Marketplace operations staff: they open embedkit's status and catalog pages.
STAFF = {s.email: s for s in (Staff("ops@marketly", "Olivia"),)}
