"""EmbedKit: the object a host app creates. It wires the parts; it holds no query logic.

A request flows: query (Python or JSON) -> :func:`embedkit.scope.scope` ->
:class:`embedkit.compile.Compiler` -> engine -> :class:`embedkit.result.QueryResult`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from embedkit.compile import TOTAL_COLUMN, Compiler
from embedkit.dataset import NAME_PATTERN, SQL, Dataset
from embedkit.embed.keys import SigningKey
from embedkit.embed.resources import Dashboard
from embedkit.embed.service import Embedder
from embedkit.embed.settings import EmbedSettings
from embedkit.embed.theme import Theme
from embedkit.embed.tokens import Tokens
from embedkit.engines.duckdb import DuckDBStore
from embedkit.engines.shards import SHARD_ROWS
from embedkit.errors import DataLoadError, ModelError, Problem, QueryError
from embedkit.plan import ScopedQuery
from embedkit.query.compare import comparisons, range_of
from embedkit.query.spec import Query
from embedkit.result import QueryResult, with_metadata
from embedkit.scope import scope
from embedkit.security.rules import Principal
from embedkit.semantic.model import Model
from embedkit.semantic.validate import resolve

__all__ = ["EmbedKit"]

Engine = Literal["duckdb", "polars"]


class EmbedKit:
    """Datasets, their semantic model and the engines that answer queries about them.

    Args:
        datasets: datasets to register now (checked together; see :meth:`register`).
        database: where DuckDB keeps rows: ``":memory:"`` (default) or a file path.
        memory_limit: DuckDB memory limit such as ``"2GB"``; it spills to disk past it.
        threads: DuckDB worker threads (default: one per core).
        shard_rows: a tenant dataset with more rows than this is stored as shards of
            about this many rows, each a range of tenants, so a tenant's query costs
            the same on a table of 1M rows or of 100M (default 2,000,000).
        clock: returns "now" (aware); relative date ranges and token lifetimes are
            read against it.
        secret: the key that signs embed URLs: at least 32 random bytes, e.g.
            ``secrets.token_urlsafe(32)`` (short or well-known secrets are refused).
        keys: several :class:`~embedkit.SigningKey` instead of ``secret``, for key
            rotation or asymmetric (EdDSA, ES256) signatures; the first one signs.
        embed: :class:`~embedkit.EmbedSettings`: host origins allowed to frame
            embeds, the URL where :meth:`asgi` is mounted, theme, locale, currency.
    """

    def __init__(
        self,
        datasets: Iterable[Dataset] | Dataset = (),
        *,
        database: str | Path = ":memory:",
        memory_limit: str | None = None,
        threads: int | None = None,
        shard_rows: int = SHARD_ROWS,
        clock: Callable[[], datetime] | None = None,
        secret: str | bytes | None = None,
        keys: Sequence[SigningKey] = (),
        embed: EmbedSettings | None = None,
    ) -> None:
        self._store = DuckDBStore(
            database, memory_limit=memory_limit, threads=threads, shard_rows=shard_rows
        )
        self._model = Model(datasets={})
        self._compiler = Compiler("duckdb")
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._polars: Any = None
        if secret is not None and keys:
            raise TypeError("pass either secret= or keys=, not both")
        signing = [SigningKey("default", secret=secret)] if secret is not None else list(keys)
        settings = embed or EmbedSettings()
        tokens = (
            Tokens(
                signing,
                issuer=settings.issuer,
                default_ttl=settings.token_ttl,
                max_ttl=settings.max_token_ttl,
                leeway=settings.token_leeway,
                clock=lambda: self._clock().timestamp(),
            )
            if signing
            else None
        )
        self._embedding = Embedder(
            tokens,
            settings,
            model=lambda: self._model,
            run=lambda q, p: self.query(q, principal=p),
            now=self._clock,
        )
        datasets = [datasets] if isinstance(datasets, Dataset) else list(datasets)
        if datasets:
            self.register(*datasets)

    # -- the model -------------------------------------------------------------------

    @property
    def model(self) -> Model:
        """The registered, checked model."""
        return self._model

    def register(self, *datasets: Dataset) -> None:
        """Load and check datasets, all together.

        Every problem (unreadable source, unknown column, bad expression, broken
        join...) is collected and raised as one :class:`~embedkit.errors.ModelError`;
        when that happens nothing of this call stays registered.
        """
        for ds in datasets:
            if not isinstance(ds, Dataset):
                raise TypeError(f"register() takes Dataset objects, not {type(ds).__name__}")
        problems: list[Problem] = []
        loaded: list[Dataset] = []
        # Datasets defined by SQL read other datasets, so they load after the files.
        ordered = sorted(datasets, key=lambda d: isinstance(d.source, SQL))
        with self._lock:
            names = [d.name for d in datasets]
            for ds in ordered:
                if names.count(ds.name) > 1 or ds.name in self._model.datasets:
                    problems.append(
                        Problem(
                            ds.name, None, "is registered twice", "give every dataset a unique name"
                        )
                    )
                    continue
                if not NAME_PATTERN.match(ds.name):
                    problems.append(
                        Problem(
                            ds.name,
                            None,
                            "is not a valid dataset name",
                            "use letters, digits and underscores",
                        )
                    )
                    continue
                try:
                    known = {n: d.definition for n, d in self._model.datasets.items()}
                    known.update({d.name: d for d in loaded})
                    self._store.load(ds, known)
                    loaded.append(ds)
                except DataLoadError as err:
                    problems.append(
                        Problem(ds.name, "source", str(err).removeprefix(f"dataset '{ds.name}': "))
                    )
            try:
                model = resolve(loaded, self._store, existing=self._model)
            except ModelError as err:
                problems.extend(err.problems)
            if problems:
                for ds in loaded:
                    self._store.drop(ds.name)
                raise ModelError(problems)
            self._model = model
            # Compiled shapes and Polars frames belong to the previous model.
            self._compiler = Compiler("duckdb")
            self._polars = None

    def register_yaml(self, path: str | Path, *, data_dir: str | Path | None = None) -> None:
        """Register the datasets described by a YAML file or a folder of them.

        Relative ``source:`` paths are read from ``data_dir`` when given (the same
        model over another folder of files), else from the YAML file's folder.
        Problems name the file and the place in it, as well as the dataset.
        """
        from embedkit.semantic.yaml import load_datasets

        datasets = load_datasets(path, data_dir=data_dir)
        try:
            self.register(*datasets)
        except ModelError as err:
            where = {d.name: d.meta.get("yaml") for d in datasets}
            raise ModelError(
                [replace(p, file=p.file or where.get(p.dataset)) for p in err.problems]
            ) from None

    @property
    def data_versions(self) -> Mapping[str, int]:
        """Each dataset's data version; it grows with every change of its rows."""
        return dict(self._store.versions)

    # -- queries ---------------------------------------------------------------------

    def scope(self, query: Query | Mapping[str, Any], *, principal: Principal) -> ScopedQuery:
        """Check ``query`` for ``principal`` and return its scoped plan (nothing runs)."""
        q = query if isinstance(query, Query) else Query.from_json(query)
        return scope(
            self._model,
            q,
            principal,
            now=self._clock(),
            data_versions=self._store.versions,
            shards=self._store.shards,
        )

    def query(
        self,
        query: Query | Mapping[str, Any],
        *,
        principal: Principal,
        engine: Engine = "duckdb",
    ) -> QueryResult:
        """Run ``query`` as ``principal`` and return its rows.

        ``query`` is a :class:`~embedkit.Query` or its JSON form (Cube's format
        where they overlap). Only rows the principal may see are ever read.
        """
        q = query if isinstance(query, Query) else Query.from_json(query)
        compares = comparisons(q, self._clock())
        if compares:
            first, *others = [
                replace(self._run(c, principal, engine), date_range=range_of(c)) for c in compares
            ]
            previous = others[0] if q.compare == "previous_period" else None
            return replace(first, previous=previous, comparisons=tuple(others))
        return self._run(q, principal, engine)

    def _run(self, q: Query, principal: Principal, engine: Engine) -> QueryResult:
        t0 = time.perf_counter()
        scoped = self.scope(q, principal=principal)
        t1 = time.perf_counter()
        if engine == "duckdb":
            compiled = self._compiler.compile(scoped)
            t2 = time.perf_counter()
            table, _ = self._store.execute(compiled)
            sql = compiled.sql
        elif engine == "polars":
            from embedkit.engines.polars import PolarsEngine, execute

            if self._polars is None:
                self._polars = PolarsEngine(self._store.arrow)
            planned = self._polars.compile(scoped)
            t2 = time.perf_counter()
            table = execute(planned)
            sql = ""
        else:
            raise QueryError(f"unknown engine {engine!r}; engines are: duckdb, polars")
        t3 = time.perf_counter()
        total: int | None = None
        if TOTAL_COLUMN in table.column_names:
            column = table.column(TOTAL_COLUMN)
            total = (
                int(column[0].as_py()) if table.num_rows else _count_all(self, q, principal, engine)
            )
            table = table.drop_columns([TOTAL_COLUMN])
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
        )

    # -- embedding -------------------------------------------------------------------

    def add_dashboard(self, *dashboards: Dashboard) -> None:
        """Add dashboards, checked against the model (all problems in one ModelError)."""
        self._embedding.add(*dashboards)

    def embed_url(
        self,
        resource: str,
        *,
        tenant: str | int,
        claims: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        editable: Mapping[str, Any] | None = None,
        ttl: float | None = None,
        theme: Theme | Mapping[str, Any] | None = None,
        locale: str | None = None,
        currency: str | None = None,
        timezone: str | None = None,
        base_url: str | None = None,
    ) -> str:
        """A signed, short-lived URL that shows ``resource`` to one tenant.

        Call it on your server, per request, for the signed-in user. ``resource``
        is a dashboard (``"sales"``) or one of its widgets (``"sales/revenue"``).
        ``params`` are locked filter values the viewer can never change;
        ``editable`` limits what the viewer may pick (allowed values per filter).
        The token rides in the URL fragment, which browsers never send to servers.
        """
        return self._embedding.embed_url(
            resource,
            tenant=tenant,
            claims=claims,
            params=params,
            editable=editable,
            ttl=ttl,
            theme=theme,
            locale=locale,
            currency=currency,
            timezone=timezone,
            base_url=base_url,
        )

    def api_token(
        self,
        *,
        tenant: str | int,
        claims: Mapping[str, Any] | None = None,
        ttl: float | None = None,
    ) -> str:
        """A signed API token (audience ``api``) for a program reading as ``tenant``.

        API tokens and embed URLs are different audiences: neither works in the
        other's place.
        """
        return self._embedding.tokens.mint_api(tenant=tenant, claims=claims, ttl=ttl)

    def revoke(
        self,
        *,
        tenant: str | int | None = None,
        resource: str | None = None,
        before: datetime | None = None,
    ) -> None:
        """Refuse embed URLs (and their sessions) issued before ``before`` (default: now)
        for ``tenant``, ``resource``, or the pair."""
        cutoff = (before or self._clock()).timestamp()
        self._embedding.tokens.revoke(tenant=tenant, resource=resource, before=cutoff)

    def widget_data(
        self,
        resource: str,
        *,
        principal: Principal,
        params: Mapping[str, Any] | None = None,
        locked: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """What widget ``resource`` (``"dashboard/widget"``) shows ``principal``: the
        same JSON the embed page reads, computed in-process."""
        grant = self._embedding.in_process_grant(resource, principal, locked)
        _, _, widget = resource.partition("/")
        return self._embedding.widget_data(grant, widget, params or {}).to_json()

    def render_widget(
        self,
        resource: str,
        *,
        principal: Principal,
        format: Literal["svg", "png"] = "svg",
        params: Mapping[str, Any] | None = None,
        locked: Mapping[str, Any] | None = None,
    ) -> bytes:
        """Widget ``resource`` drawn as SVG or PNG for ``principal`` (for emails, PDFs)."""
        grant = self._embedding.in_process_grant(resource, principal, locked)
        _, _, widget = resource.partition("/")
        return self._embedding.image(grant, widget, params or {}, format)

    def asgi(self) -> Any:
        """A Starlette app serving embeds; mount it at any prefix of a Starlette or
        FastAPI app (``app.mount("/analytics", kit.asgi())``)."""
        from embedkit.http.app import create_app

        self._embedding.tokens  # noqa: B018 - fail at start-up, not on the first request
        return create_app(self._embedding)

    def close(self) -> None:
        """Close the database."""
        self._store.close()


def _count_all(kit: EmbedKit, q: Query, principal: Principal, engine: Engine) -> int:
    """The row count when the page is empty (limit 0, or offset past the end), so no
    row carried it."""
    if q.offset in (None, 0) and q.limit != 0:
        return 0
    result = kit._run(replace(q, limit=None, offset=None, total=False), principal, engine)
    return result.num_rows
