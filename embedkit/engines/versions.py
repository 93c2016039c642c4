"""Data versions: of a whole dataset, and as one tenant sees it.

Every change of a dataset's rows moves its data version (``DuckDBStore.versions``,
:attr:`embedkit.EmbedKit.data_versions`), every tenant's appends included. Caches
are not keyed by that number: one tenant's append would then make every other
tenant's cached answers stale, and a tenant timing its own requests (a cached answer
takes microseconds, a computed one milliseconds) could watch other tenants' activity.

What an answer for tenant T depends on is kept per dataset as a :class:`View`:

- the **epoch**: the data version at the dataset's last change that was not an
  append of some tenants' rows (its registration or the reopening of its database
  file, a retention run, an append to a public dataset it is or is built from). It
  moves for every tenant: none of those is one tenant's doing.
- T's **own** count: appends (quarantine replays too) that stored rows of T since the
  epoch. SQL datasets and rollups built on a tenant dataset are materialised one
  tenant at a time (engines/sql_datasets.py), so an append moves their counts for the
  same tenants.

A public dataset's view is ``(version, 0)``. Caches key on views; ``View.number``
(epoch + own) grows with every change T can see and with no other, and is what
``QueryResult.data_versions`` reports.

Counts live in memory. On (re)opening a database file each dataset's epoch is the
version the file stored with its rows (appends move it in their transaction), and
counts start at zero. A view ``(e, n)`` thus names one state of T's rows in every
process: the file's rows at version ``e``, then T's next ``n`` appends. A process
restarted after appends starts at a version an append made, which was never an
epoch, so nothing cached before (in a shared cache) is read for the changed rows;
restarted with no append since its epoch, it keeps the epoch, and the rows are the
same. Replicas over copies of one file that apply the same changes in the same order
name the same rows alike and share answers. The sum ``e + n`` would not do as a key:
a restarted replica's sum can equal another's for other rows.

A tenant's rows are matched by the text DuckDB casts its key to, the text appends
count under (``BatchReport.tenants``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import duckdb
from sqlglot import exp
from sqlglot.errors import SqlglotError

from embedkit.semantic.model import value_kind
from embedkit.values import coerce

if TYPE_CHECKING:
    from embedkit.engines.duckdb import DuckDBStore
    from embedkit.trust.ingest import BatchReport

__all__ = ["TenantVersions", "View", "Views", "advance", "stored_tenants"]

#: Key types whose values Python writes as DuckDB does (str() of the bound value).
_PLAIN = {"VARCHAR", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}
_PLAIN |= {"UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
_MEMO = 65_536  # tenant texts remembered for other key types


class View(NamedTuple):
    """What a tenant's answers over one dataset depend on (see the module doc)."""

    epoch: int
    own: int

    @property
    def number(self) -> int:
        """One number that grows with every change this view can see."""
        return self.epoch + self.own


class Views:
    """Each dataset's epoch and its tenants' counts (kept by the store)."""

    def __init__(self) -> None:
        # dataset -> (epoch, tenant text -> count); replaced whole when the epoch moves,
        # so a reader takes the epoch and the counts that go with it in one step.
        self._epochs: dict[str, tuple[int, dict[str, int]]] = {}
        self._texts: dict[tuple[str, Any], str | None] = {}

    def reset(self, dataset: str, version: int) -> None:
        """The whole of ``dataset`` changed, now at ``version``: a new epoch."""
        self._epochs[dataset] = (version, {})

    def stored(self, dataset: str, tenants: Collection[str]) -> None:
        """An append stored rows of ``tenants`` in ``dataset``."""
        entry = self._epochs.get(dataset)
        if entry is None:
            return  # not versioned here: its views fall back to the whole version
        counts = entry[1]
        for tenant in tenants:
            counts[tenant] = counts.get(tenant, 0) + 1

    def forget(self, dataset: str) -> None:
        self._epochs.pop(dataset, None)

    def entry(self, dataset: str) -> tuple[int, Mapping[str, int]] | None:
        return self._epochs.get(dataset)

    def text(self, con: duckdb.DuckDBPyConnection, column_type: str, value: Any) -> str | None:
        """``value`` as DuckDB writes it once cast to ``column_type`` (the text appends
        count tenants under), or None when that cannot be told."""
        kind = column_type.upper()
        if kind in _PLAIN:
            return str(value)
        key = (kind, value)
        try:
            return self._texts[key]
        except KeyError:  # (not "in": another thread may clear the memo in between)
            pass
        found: str | None = None
        if "COLLATE" not in kind:  # a collation matches other texts than the cast's
            try:
                typed = exp.Cast(
                    this=exp.Placeholder(this="1"),
                    to=exp.DataType.build(column_type, dialect="duckdb"),
                )
                text = exp.Cast(this=typed, to=exp.DataType.build("VARCHAR"))
                cur = con.cursor()
                try:
                    row = cur.execute(exp.select(text).sql("duckdb"), [value]).fetchone()
                finally:
                    cur.close()
                found = None if row is None or row[0] is None else str(row[0])
            except (duckdb.Error, SqlglotError, ValueError, TypeError):
                found = None
        if len(self._texts) >= _MEMO:
            self._texts.clear()
        self._texts[key] = found
        return found


class TenantVersions(Mapping[str, int]):
    """Every dataset's :attr:`View.number` for one tenant, read when asked; :meth:`view`
    gives the view itself. What caches of that tenant's answers key and check on."""

    __slots__ = ("_store", "_tenant")

    def __init__(self, store: DuckDBStore, tenant: Any) -> None:
        self._store = store
        self._tenant = tenant

    def view(self, dataset: str) -> View:
        """This tenant's view of ``dataset`` (the whole version for a public one)."""
        store = self._store
        version = store.versions.get(dataset, 0)
        definition = store.definitions.get(dataset)
        if definition is None or definition.public is True or not definition.tenant_key:
            return View(version, 0)
        entry = store.views.entry(dataset)
        column_type = store.columns(dataset).get(definition.tenant_key)
        if entry is None or column_type is None:
            return View(version, 0)
        try:
            value = coerce(self._tenant, value_kind(column_type), strict=True)
        except ValueError:
            return View(version, 0)  # such a tenant's queries are refused anyway
        text = store.views.text(store._con, column_type, value)
        if text is None:
            # (version, 0) names the same rows as an epoch at that version would.
            return View(version, 0)
        epoch, counts = entry
        return View(epoch, counts.get(text, 0))

    def __getitem__(self, dataset: str) -> int:
        if dataset not in self._store.versions:
            raise KeyError(dataset)
        return self.view(dataset).number

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._store.versions))

    def __len__(self) -> int:
        return len(self._store.versions)


def stored_tenants(report: BatchReport) -> list[str] | None:
    """The tenants (as text) whose rows ``report``'s batch stored; None when some stored
    rows have no tenant to count them under."""
    stored = [t for t, (received, held) in report.tenants.items() if received > held]
    return None if None in stored else [t for t in stored if t is not None]


def advance(
    store: DuckDBStore, name: str, changed: Sequence[str], tenants: Collection[str] | None
) -> dict[str, int]:
    """Move the data versions of ``name`` and of ``changed`` (the datasets rebuilt on
    it) after the commit of a change; return the new versions.

    ``tenants`` are the tenants whose rows an append stored (None: the change is not
    one of some tenants' rows, and every view moves). A dataset built on ``name``
    counts the same tenants only when its tenant key has the type of the one it was
    built from, so the same tenant is the same text in both; otherwise its epoch moves.
    """
    touched = set(changed) | {name}
    follows: dict[str, bool] = {name: True}

    def follow(dataset: str) -> bool:
        if dataset not in follows:
            follows[dataset] = False  # SQL datasets form no cycle; this guards anyway
            key = _key_type(store, dataset)
            follows[dataset] = key is not None and all(
                _key_type(store, source) == key and follow(source)
                for source in store.reads.get(dataset, ())
                if source in touched
            )
        return follows[dataset]

    versions: dict[str, int] = {}
    for dataset in (name, *changed):
        version = store.versions[dataset] = store.versions.get(dataset, 0) + 1
        versions[dataset] = version
        if tenants is not None and follow(dataset):
            store.views.stored(dataset, tenants)
        else:
            store.views.reset(dataset, version)
    return versions


def _key_type(store: DuckDBStore, dataset: str) -> str | None:
    """The stored type of ``dataset``'s tenant key (None for a public dataset)."""
    definition = store.definitions.get(dataset)
    if definition is None or definition.public is True or not definition.tenant_key:
        return None
    return store.columns(dataset).get(definition.tenant_key)
