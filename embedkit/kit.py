"""EmbedKit: the object a host app creates. It wires the parts; it holds no query logic.

A request flows: query (Python or JSON) -> :func:`embedkit.scope.scope` ->
:class:`embedkit.compile.Compiler` -> engine -> :class:`embedkit.result.QueryResult`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from embedkit.cache.local import LocalCache
from embedkit.cache.shared import SharedCache
from embedkit.dataset import Dataset
from embedkit.embed.keys import SigningKey
from embedkit.embed.resources import Dashboard
from embedkit.embed.service import Embedder
from embedkit.embed.settings import EmbedSettings
from embedkit.embed.theme import Theme
from embedkit.embed.tokens import Tokens
from embedkit.engines.duckdb import DuckDBStore
from embedkit.engines.shards import SHARD_ROWS
from embedkit.engines.versions import TenantVersions
from embedkit.errors import ModelError
from embedkit.kit_ops import OperatorMethods
from embedkit.live.hub import ChangeHub
from embedkit.live.methods import LiveMethods
from embedkit.plan import ScopedQuery
from embedkit.query.spec import Query
from embedkit.registration import register
from embedkit.result import QueryResult
from embedkit.runner import Engine, QueryRunner
from embedkit.scope import scope
from embedkit.security.rules import Principal
from embedkit.semantic.model import Model
from embedkit.trust.contract import Contract
from embedkit.trust.ingest import BatchReport
from embedkit.trust.monitor import Monitor
from embedkit.trust.quarantine import Quarantine
from embedkit.trust.service import Trust

__all__ = ["EmbedKit"]


class EmbedKit(OperatorMethods, LiveMethods):
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
        cache_bytes: memory for cached query results (default 256 MiB; 0 turns the
            cache off). Entries are keyed by the compiled query, every bound value
            (the tenant among them) and the data versions read as that tenant sees
            them, so an append of a tenant's rows makes new keys for that tenant only
            (another tenant cannot time it), and a tenant can only ever hit its own
            entries.
        shared_cache: a :class:`~embedkit.cache.shared.SharedCache` (Redis or the like)
            several app processes share, behind the in-process one.
        metrics_tenants: label /metrics series with the tenant for up to this many
            tenants (the rest share ``tenant="_other"``); 0, the default, keeps the
            tenant out of metrics so their cardinality stays bounded.
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
        metrics_tenants: int = 0,
        cache_bytes: int = 256 * 2**20,
        shared_cache: SharedCache | None = None,
    ) -> None:
        self._store = DuckDBStore(
            database, memory_limit=memory_limit, threads=threads, shard_rows=shard_rows
        )
        self._model = Model(datasets={})
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._trust = Trust(self._store, self._clock, tenant_labels=metrics_tenants)
        self._changes = ChangeHub()
        self._retained: dict[str, datetime] = {}
        self._trust.listeners.append(self._publish)
        self._runner = QueryRunner(
            self._store,
            self._trust,
            self._clock,
            lambda: self._model,
            lambda q, p: self.scope(q, principal=p),
            LocalCache(cache_bytes),
            shared_cache,
        )
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
            versions=lambda tenant: TenantVersions(self._store, tenant),
            response_bytes=cache_bytes // 4,
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
        with self._lock:
            model, loaded, reports = register(self._store, self._model, datasets, self._clock())
            self._model = model
            self._trust.registered(loaded, reports)
            self._runner.reset()

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
        """Each dataset's data version; it grows with every change of its rows, whoever's
        they are (a query result reports the versions as its principal sees them)."""
        return dict(self._store.versions)

    # -- trust: appends, contracts, quarantine, monitoring --------------------------------

    def append(self, dataset: str, rows: Any, *, batch: str | None = None) -> BatchReport:
        """Add ``rows`` to ``dataset``, checked against its contract, atomically.

        ``rows`` is a pyarrow Table, a Polars DataFrame, a list of dicts or a dict
        of columns. Rows that pass are stored and rows that break the contract
        are quarantined, in one transaction: a query running meanwhile sees the
        data before or after, never part of it. The data version of the dataset
        (and of SQL datasets built on it) moves on; cached answers of tenants
        whose rows were not in the batch stay valid. Raises
        :class:`~embedkit.errors.BatchRejected`, with nothing stored, when more
        than the contract's ``reject_above`` share of rows fail or the batch has
        columns the dataset does not.
        """
        return self._trust.append(dataset, rows, batch=batch)

    def set_contract(self, dataset: str, contract: Contract) -> None:
        """Put a new contract in force for ``dataset`` (for the next append or replay;
        stored rows are not checked again)."""
        self._trust.set_contract(dataset, contract)

    @property
    def quarantine(self) -> Quarantine:
        """Rows that broke a contract: count, read, replay after a fix, discard."""
        return self._trust.quarantine

    @property
    def monitor(self) -> Monitor:
        """Query counts, latencies, rows received and SLO objectives per dataset, and
        the query log (``kit.monitor.log()``, ``.log_frame()``, ``.export_log()``)."""
        return self._trust.monitor

    # -- queries ---------------------------------------------------------------------

    def scope(self, query: Query | Mapping[str, Any], *, principal: Principal) -> ScopedQuery:
        """Check ``query`` for ``principal`` and return its scoped plan (nothing runs)."""
        q = query if isinstance(query, Query) else Query.from_json(query)
        tenant = principal.tenant if isinstance(principal, Principal) else None
        return scope(
            self._model,
            q,
            principal,
            now=self._clock(),
            data_versions=TenantVersions(self._store, tenant),
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
        Every query is counted in :attr:`monitor` (SLOs, metrics, the query log).
        """
        return self._runner.query(query, principal=principal, engine=engine)

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
        from embedkit.http.ops import Operations

        tokens = self._embedding.tokens  # fail at start-up, not on the first request
        ops = Operations(
            verify=tokens.verify_operator,
            status=lambda tenant: self.status(tenant=tenant),
            catalog=self.catalog,
            metrics=self.metrics,
            quarantine=self.quarantine,
            monitor=self.monitor,
        )
        return create_app(self._embedding, ops, self._changes)

    def close(self) -> None:
        """Close the database."""
        self._store.close()
