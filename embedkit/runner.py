"""Running a query: scope, compile, execute on an engine, wrap, and count it.

Private; :meth:`embedkit.EmbedKit.query` delegates here. Every query, answered
or refused, is recorded in the trust monitor (SLOs, metrics, the query log).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import pickle
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

import pyarrow as pa

from embedkit.cache.keys import frozen
from embedkit.cache.local import LocalCache
from embedkit.cache.shared import SharedCache
from embedkit.compile import TOTAL_COLUMN, Compiler
from embedkit.engines.duckdb import DuckDBStore
from embedkit.errors import QueryError
from embedkit.plan import ScopedQuery
from embedkit.query.compare import comparisons, range_of
from embedkit.query.spec import Query
from embedkit.result import QueryResult, with_metadata
from embedkit.rollups import rewrite
from embedkit.security.rules import Principal
from embedkit.semantic.model import Model
from embedkit.trust.service import Trust

__all__ = ["Engine", "QueryRunner"]

Engine = Literal["duckdb", "polars"]


class QueryRunner:
    """Answers queries over one store; reset when the model changes."""

    def __init__(
        self,
        store: DuckDBStore,
        trust: Trust,
        clock: Callable[[], datetime],
        model: Callable[[], Model],
        scope: Callable[[Query, Principal], ScopedQuery],
        cache: LocalCache[tuple[pa.Table, int | None]],
        shared: SharedCache | None = None,
    ) -> None:
        self._store, self._trust, self._clock = store, trust, clock
        self._cache, self._shared = cache, shared
        self._model, self._scope = model, scope
        self.reset()

    def reset(self) -> None:
        """Forget compiled shapes and Polars frames (they belong to the previous model)."""
        self._compiler = Compiler("duckdb")
        self._polars: Any = None
        #: whether any rollup is registered (queries may then be answered from one)
        self.rollups = any("rollup" in ds.definition.meta for ds in self._model().datasets.values())

    def query(
        self, query: Query | Mapping[str, Any], *, principal: Principal, engine: Engine
    ) -> QueryResult:
        """Answer ``query`` for ``principal`` and record it in the monitor."""
        started = time.perf_counter()
        q: Query | None = None
        try:
            q = query if isinstance(query, Query) else Query.from_json(query)
            result = self._answer(q, principal, engine)
        except Exception as err:
            self._trust.record_query(
                datasets=_datasets_named(q, self._model()),
                tenant=str(principal.tenant) if isinstance(principal, Principal) else None,
                seconds=time.perf_counter() - started,
                rows=0,
                error=err,
                query=q.to_json() if q is not None else None,
                data_versions=None,
            )
            raise
        self._trust.record_query(
            cache=_cache_of(result),
            datasets=list(result.data_versions),
            tenant=str(principal.tenant),
            seconds=time.perf_counter() - started,
            rows=result.num_rows,
            error=None,
            query=q.to_json(),
            data_versions=result.data_versions,
        )
        return result

    def _answer(self, q: Query, principal: Principal, engine: Engine) -> QueryResult:
        compares = comparisons(q, self._clock())
        if compares:
            first, *others = [
                replace(self._run(c, principal, engine), date_range=range_of(c)) for c in compares
            ]
            previous = others[0] if q.compare == "previous_period" else None
            return replace(first, previous=previous, comparisons=tuple(others))
        return self._run(q, principal, engine)

    def _run(self, q: Query, principal: Principal, engine: Engine) -> QueryResult:
        rewritten = self._from_rollup(q) if self.rollups else None
        if rewritten is None:
            return self._run_query(q, principal, engine)
        query, target, prefix = rewritten
        result = self._run_query(query, principal, engine)
        names = [
            prefix + n[len(target) :] if n.startswith(target) else n
            for n in result.table.column_names
        ]
        return replace(result, table=result.table.rename_columns(names), rollup=target[:-1])

    def _from_rollup(self, q: Query) -> tuple[Query, str, str] | None:
        model = self._model()
        rollups = [
            ds.definition for ds in model.datasets.values() if "rollup" in ds.definition.meta
        ]

        def measures_of(name: str) -> set[str]:
            ds = model.datasets[name]
            return {m.name for m in ds.members.values() if m.kind == "measure"}

        return rewrite(q, rollups, self._clock, measures_of)

    def _run_query(self, q: Query, principal: Principal, engine: Engine) -> QueryResult:
        t0 = time.perf_counter()
        scoped = self._scope(q, principal)
        t1 = time.perf_counter()
        cache = "off"
        if engine == "duckdb":
            compiled = self._compiler.compile(scoped)
            t2 = time.perf_counter()
            sql = compiled.sql

            def compute() -> tuple[pa.Table, int | None]:
                table, _ = self._store.execute(compiled)
                return self._total(table, q, principal, engine)

            if self._cache.max_bytes:
                # The key holds everything the rows depend on: the SQL (its shape and the
                # shards it reads), every bound value (the tenant and row-rule values,
                # resolved dates) and the principal's view of each dataset read, which
                # moves with that tenant's appends and not with other tenants' (see
                # engines/versions.py). Another scope is another key.
                views = tuple(sorted((name, *view) for name, view in scoped.views.items()))
                key = (sql, frozen(compiled.params), views)
                if self._shared is not None:
                    compute = _through(self._shared, self._store.key, key, compute)
                (table, total), hit = self._cache.get_or_compute(key, compute, _size)
                cache = "hit" if hit else "miss"
            else:
                table, total = compute()
        elif engine == "polars":
            from embedkit.engines.polars import PolarsEngine, execute

            if self._polars is None:
                self._polars = PolarsEngine(
                    self._store.arrow, versions=lambda name: self._store.versions.get(name, 0)
                )
            planned = self._polars.compile(scoped)
            t2 = time.perf_counter()
            table, total = self._total(execute(planned), q, principal, engine)
            sql = ""
        else:
            raise QueryError(f"unknown engine {engine!r}; engines are: duckdb, polars")
        t3 = time.perf_counter()
        timings = {
            "scope_ms": (t1 - t0) * 1e3,
            "compile_ms": (t2 - t1) * 1e3,
            "execute_ms": (t3 - t2) * 1e3,
            "total_ms": (time.perf_counter() - t0) * 1e3,
        }
        table = with_metadata(
            table, sql=sql, engine=engine, timings=timings, data_versions=scoped.data_versions
        )
        return QueryResult(
            table=table,
            sql=sql,
            engine=engine,
            timings=timings,
            data_versions=scoped.data_versions,
            total=total,
            cache=cache,
        )

    def _total(
        self, table: pa.Table, q: Query, principal: Principal, engine: Engine
    ) -> tuple[pa.Table, int | None]:
        """The rows without the total column, and the total it carried."""
        if TOTAL_COLUMN not in table.column_names:
            return table, None
        column = table.column(TOTAL_COLUMN)
        total = int(column[0].as_py()) if table.num_rows else self._count_all(q, principal, engine)
        return table.drop_columns([TOTAL_COLUMN]), total

    def _count_all(self, q: Query, principal: Principal, engine: Engine) -> int:
        """The row count when the page is empty (limit 0, or offset past the end), so no
        row carried it."""
        if q.offset in (None, 0) and q.limit != 0:
            return 0
        result = self._run(replace(q, limit=None, offset=None, total=False), principal, engine)
        return result.num_rows


def _datasets_named(q: Query | None, model: Model) -> list[str]:
    """The registered datasets a query names (for a query that failed before scoping)."""
    if q is None:
        return []
    names = {m.split(".")[0] for m in (*q.measures, *q.dimensions)}
    names |= {t.dimension.split(".")[0] for t in q.time}
    return sorted(n for n in names if n in model.datasets)


def _size(value: tuple[pa.Table, int | None]) -> int:
    return int(value[0].nbytes) + 512


def _cache_of(result: QueryResult) -> str:
    """One word for the query log: "hit" only when every part of the answer was cached."""
    parts = [result, *(() if result.previous is None else (result.previous,)), *result.comparisons]
    states = {p.cache for p in parts}
    return states.pop() if len(states) == 1 else "partial"


def _through(
    shared: SharedCache,
    secret: bytes,
    key: Any,
    compute: Callable[[], tuple[pa.Table, int | None]],
) -> Callable[[], tuple[pa.Table, int | None]]:
    """``compute`` behind the shared cache: read it first, fill it after.

    Keys and values are bound to this store's own random key (kept in its database
    file): a key is an HMAC of the query's key, so it names no tenant or query and no
    other store computes it, and a value carries an HMAC of its bytes, so one that was
    altered, or written by anything else, is a miss. Any failure of the shared store
    is a miss too; the answer is then computed here.
    """
    digest = hmac.new(secret, pickle.dumps(key, protocol=5), hashlib.sha256).hexdigest()

    def read_or_compute() -> tuple[pa.Table, int | None]:
        try:
            found = shared.get(digest)
        except Exception:  # a shared store that fails is a miss, never an error
            found = None
        if found is not None and len(found) > 32:
            mac, body = found[:32], found[32:]
            expected = hmac.new(secret, digest.encode() + body, hashlib.sha256).digest()
            if hmac.compare_digest(mac, expected):
                with pa.ipc.open_stream(body) as reader:
                    table = reader.read_all()
                meta = table.schema.metadata or {}
                total = meta.get(b"embedkit.total")
                total_value = None if total is None else int(total)
                return table.replace_schema_metadata(None), total_value
        table, total = compute()
        sink = pa.BufferOutputStream()
        stored = table.replace_schema_metadata(
            None if total is None else {b"embedkit.total": str(total).encode()}
        )
        with pa.ipc.new_stream(sink, stored.schema) as writer:
            writer.write_table(stored)
        body = sink.getvalue().to_pybytes()
        mac = hmac.new(secret, digest.encode() + body, hashlib.sha256).digest()
        # The answer stands even when the shared store is down.
        with contextlib.suppress(Exception):
            shared.set(digest, mac + body)
        return table, total

    return read_or_compute
