"""What a database file remembers about its datasets, so reopening it is quick.

For each dataset loaded from files, the database file keeps a fingerprint of
those files (names, sizes, modification times), a hash of the parts of the
definition that decide how rows are stored (tenant key, time, contract, shard
size...) and the data version. When a kit registers the same dataset over the
same files again, the stored rows (with every append since) are used as they
are: no 100M-row reload at start-up. When either changed, the source is read
again, and the data version still moves forward, never back.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import duckdb
from sqlglot import exp

from embedkit.compile import STORE
from embedkit.dataset import SQL, Dataset

__all__ = [
    "Remembered",
    "create",
    "definition_hash",
    "forget",
    "recall",
    "remember",
    "set_version",
    "store_key",
]

_TABLE = exp.table_("datasets", db="embedkit", catalog=STORE, quoted=True)


@dataclass(frozen=True)
class Remembered:
    """A dataset as the database file last stored it."""

    fingerprint: str | None
    definition: str
    version: int


def store_key(con: duckdb.DuckDBPyConnection) -> bytes:
    """This database's own random key (made once, kept in the file): it names and signs
    the entries it puts in a shared cache, so no other store's entries can match."""
    table = exp.table_("store", db="embedkit", catalog=STORE, quoted=True)
    con.execute(f"CREATE TABLE IF NOT EXISTS {table.sql('duckdb')} (key VARCHAR NOT NULL)")
    rows = con.execute(exp.select("key").from_(table.copy()).sql("duckdb")).fetchall()
    if not rows:
        key = secrets.token_hex(32)
        insert = exp.insert(exp.values([(exp.Placeholder(this="1"),)]), table.copy())
        con.execute(insert.sql("duckdb"), [key])
        return bytes.fromhex(key)
    return bytes.fromhex(rows[0][0])


def create(con: duckdb.DuckDBPyConnection) -> None:
    """Create the table if this database does not have it yet."""
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {_TABLE.sql('duckdb')} (name VARCHAR PRIMARY KEY, "
        "fingerprint VARCHAR, definition VARCHAR NOT NULL, version BIGINT NOT NULL, "
        "loaded_at TIMESTAMPTZ NOT NULL)"
    )


def definition_hash(dataset: Dataset, shard_rows: int, reads: str = "") -> str:
    """A hash of what decides how a dataset's rows are stored (not its members: those
    are checked again at every start and never change the rows)."""
    parts = (
        dataset.source.query if isinstance(dataset.source, SQL) else type(dataset.source).__name__,
        dataset.tenant_key,
        dataset.public,
        dataset.time,
        dataset.format,
        repr(dataset.contract.__dict__) if dataset.contract is not None else None,
        tuple((r.column, r.claim, r.operator) for r in dataset.row_rules),
        shard_rows,
        reads,
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def recall(con: duckdb.DuckDBPyConnection, name: str) -> Remembered | None:
    """What the file remembers of ``name``, if anything."""
    query = (
        exp.select("fingerprint", "definition", "version")
        .from_(_TABLE.copy())
        .where(exp.EQ(this=exp.column("name"), expression=exp.Placeholder(this="1")))
    )
    rows = con.execute(query.sql("duckdb"), [name]).fetchall()
    return Remembered(rows[0][0], rows[0][1], int(rows[0][2])) if rows else None


def remember(
    con: duckdb.DuckDBPyConnection,
    name: str,
    fingerprint: str | None,
    definition: str,
    version: int,
    now: datetime,
) -> None:
    """Record (or replace) what was just stored for ``name``."""
    forget(con, name)
    insert = exp.insert(
        exp.values([tuple(exp.Placeholder(this=str(i)) for i in range(1, 6))]),
        _TABLE.copy(),
        columns=["name", "fingerprint", "definition", "version", "loaded_at"],
    )
    con.execute(insert.sql("duckdb"), [name, fingerprint, definition, version, now])


def forget(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop what the file remembers of ``name``."""
    delete = exp.delete(_TABLE.copy()).where(
        exp.EQ(this=exp.column("name"), expression=exp.Placeholder(this="1"))
    )
    con.execute(delete.sql("duckdb"), [name])


def set_version(con: duckdb.DuckDBPyConnection, name: str, version: int) -> None:
    """Record a new data version (inside the append's transaction)."""
    update = exp.update(_TABLE.copy(), {"version": exp.Placeholder(this="1")}).where(
        exp.EQ(this=exp.column("name"), expression=exp.Placeholder(this="2"))
    )
    con.execute(update.sql("duckdb"), [version, name])
