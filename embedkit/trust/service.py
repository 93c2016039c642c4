"""The trust side of an EmbedKit: contracts in force, appends, the monitor, reports.

:class:`Trust` is private; :class:`~embedkit.EmbedKit` delegates to it. It keeps
each dataset's contract, turns appends and registrations into monitor events
(rows received and quarantined, the newest time value per tenant), and records
every query for the SLOs, the metrics and the query log.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from typing import Any

import pyarrow as pa
from sqlglot import exp

from embedkit.compile import stored_table
from embedkit.dataset import Dataset
from embedkit.engines.appends import Rows, append, as_arrow
from embedkit.engines.duckdb import DuckDBStore
from embedkit.errors import AccessDenied, BatchRejected, ModelError, QueryError, TokenError
from embedkit.trust.contract import Contract, validate
from embedkit.trust.ingest import BatchReport, new_batch_id
from embedkit.trust.metrics import DatasetFacts, MetricsCollector, render
from embedkit.trust.monitor import Monitor
from embedkit.trust.quarantine import Quarantine

__all__ = ["Channel", "Trust", "request_context"]


@dataclass(frozen=True)
class Channel:
    """Who is asking, for the query log: the path in (python, embed, api, image...),
    the resource (``"sales/revenue"``) and the viewer's subject claim."""

    channel: str = "python"
    resource: str | None = None
    subject: str | None = None


_CHANNEL: contextvars.ContextVar[Channel | None] = contextvars.ContextVar(
    "embedkit_channel", default=None
)
_PYTHON = Channel()


@contextmanager
def request_context(channel: Channel) -> Iterator[None]:
    """Attribute the queries run inside to ``channel`` (used by the HTTP routes)."""
    token = _CHANNEL.set(channel)
    try:
        yield
    finally:
        _CHANNEL.reset(token)


def outcome_of(err: BaseException) -> tuple[str, str]:
    """A failed query's outcome (client or server fault) and error kind."""
    if isinstance(err, QueryError | AccessDenied | TokenError | TypeError | ValueError):
        return "client_error", type(err).__name__
    return "server_error", type(err).__name__


class Trust:
    """Contracts, appends, quarantine and monitoring for one store."""

    def __init__(
        self, store: DuckDBStore, clock: Callable[[], datetime], *, tenant_labels: int = 0
    ) -> None:
        self._store = store
        self._clock = clock
        self._contracts: dict[str, Contract] = {}
        self._last: dict[str, BatchReport] = {}
        self._rejected: dict[str, BatchReport] = {}
        # newest time value known per (dataset, tenant text or None for the whole dataset)
        self._newest: dict[tuple[str, str | None], datetime] = {}
        self._lock = threading.Lock()
        self.monitor = Monitor(clock=clock)
        self.quarantine = Quarantine(store, self._replay)
        self.collector = MetricsCollector(self.monitor, self._facts, tenant_labels=tenant_labels)
        #: Called with the report of every batch stored (appends and replays).
        self.listeners: list[Callable[[BatchReport], None]] = []

    def _facts(self) -> dict[str, DatasetFacts]:
        held = {name: sum(t.values()) for name, t in self.quarantine.counts().items()}
        cur = self._store._con.cursor()
        try:
            facts = {}
            for name, version in list(self._store.versions.items()):
                query = exp.select(exp.Count(this=exp.Star())).from_(stored_table(name))
                rows = int(cur.execute(query.sql("duckdb")).fetchall()[0][0])
                facts[name] = DatasetFacts(version=version, held=held.get(name, 0), rows=rows)
            return facts
        finally:
            cur.close()

    def metrics(self) -> bytes:
        """Every metric in Prometheus' text format."""
        return render(self.collector)

    # -- contracts -------------------------------------------------------------------

    def contract(self, dataset: str) -> Contract:
        """The contract in force for ``dataset`` (an empty one when none was declared)."""
        return self._contracts.get(dataset, Contract())

    def set_contract(self, dataset: str, contract: Contract) -> None:
        """Replace ``dataset``'s contract; it applies to the next append or replay."""
        definition = self._store.definitions.get(dataset)
        if definition is None:
            known = ", ".join(sorted(self._store.definitions)) or "(none)"
            raise BatchRejected(f"no dataset '{dataset}'; datasets are: {known}")
        if not isinstance(contract, Contract):
            raise TypeError(f"set_contract takes a Contract(...), not {type(contract).__name__}")
        problems = validate(
            dataset,
            contract,
            self._store.columns(dataset),
            time=definition.time,
            columns_of=lambda other: self._store.columns(other) or None,
        )
        if problems:
            raise ModelError(problems)
        with self._lock:
            self._contracts[dataset] = contract

    def registered(self, datasets: Sequence[Dataset], reports: Sequence[BatchReport]) -> None:
        """Take note of datasets just registered and what their sources held."""
        for ds, report in zip(datasets, reports, strict=True):
            with self._lock:
                self._contracts[ds.name] = ds.contract or Contract()
                self._last[ds.name] = report
            self.monitor.set_slo(ds.name, ds.slo)
            self._record(report)
            self._note_newest(ds.name, None)

    # -- appends ---------------------------------------------------------------------

    def append(self, dataset: str, rows: Rows, *, batch: str | None = None) -> BatchReport:
        """Check and store ``rows``; see :meth:`embedkit.EmbedKit.append`."""
        table = as_arrow(rows, dataset)
        return self._write(dataset, table, batch or new_batch_id(), "append", ())

    def _replay(self, dataset: str, table: pa.Table, ids: Sequence[int]) -> BatchReport:
        if not ids:
            return BatchReport(dataset, "", "replay", 0, 0, at=self._clock())
        return self._write(dataset, table, new_batch_id(), "replay", ids)

    def _write(
        self, dataset: str, table: pa.Table, batch: str, origin: str, replaying: Sequence[int]
    ) -> BatchReport:
        now = self._clock()
        try:
            report, versions = append(
                self._store,
                dataset,
                table,
                self.contract(dataset),
                batch=batch,
                origin=origin,
                now=now,
                replaying=replaying,
                time_column=self._time_column(dataset),
            )
        except BatchRejected as err:
            if isinstance(err.report, BatchReport):
                rejected = replace(err.report, rejected=True)
                with self._lock:
                    self._rejected[dataset] = rejected
                if origin != "replay":
                    self._record(rejected)
            raise
        report = replace(report, versions=versions)
        with self._lock:
            self._last[dataset] = report
        if origin != "replay":  # replayed rows were counted when they first arrived
            self._record(report)
        for tenant, value in report.newest.items():
            self._advance(dataset, tenant, _instant(value))
            self._advance(dataset, None, _instant(value))
        for listener in self.listeners:
            listener(report)
        return report

    def _time_column(self, dataset: str) -> str | None:
        definition = self._store.definitions.get(dataset)
        if definition is None:
            return None
        return self.contract(dataset).freshness_column or definition.time

    def _advance(self, dataset: str, tenant: str | None, value: datetime | None) -> None:
        """Record a newest time value if it is newer than the one known."""
        if value is None:
            return
        key = (dataset, tenant)
        with self._lock:
            known = self._newest.get(key)
            if known is not None and known >= value:
                return
            self._newest[key] = value
        self.monitor.record_newest(dataset, value, tenant=tenant)

    def _record(self, report: BatchReport) -> None:
        self.monitor.record_rows(
            report.dataset,
            received={t: r for t, (r, _) in report.tenants.items()},
            quarantined={t: q for t, (_, q) in report.tenants.items()},
            rules=dict(report.rules),
            rejected=report.rejected,
        )

    def _note_newest(self, dataset: str, tenants: list[str] | None) -> None:
        """Tell the monitor the newest time value of ``dataset`` and of its tenants
        (all of them, or those listed), read from the stored rows."""
        definition = self._store.definitions.get(dataset)
        if definition is None:
            return
        contract = self.contract(dataset)
        column = contract.freshness_column or definition.time
        if column is None or column not in self._store.columns(dataset):
            return
        key = None if definition.public is True else definition.tenant_key
        newest = exp.Max(this=exp.column(column, quoted=True))
        cur = self._store._con.cursor()
        try:
            whole = cur.execute(exp.select(newest).from_(stored_table(dataset)).sql("duckdb"))
            value = _instant(whole.fetchall()[0][0])
            if value is None:
                self.monitor.record_newest(dataset, None)
            self._advance(dataset, None, value)
            if key is None or tenants == []:
                return
            text = exp.Cast(this=exp.column(key, quoted=True), to=exp.DataType.build("VARCHAR"))
            query = exp.select(text, newest.copy()).from_(stored_table(dataset)).group_by(text)
            params: list[Any] = []
            if tenants is not None:
                marks = [exp.Placeholder(this=str(i + 1)) for i in range(len(tenants))]
                query = query.where(exp.In(this=text.copy(), expressions=marks))
                params = list(tenants)
            for tenant, value in cur.execute(query.sql("duckdb"), params).fetchall():
                if tenant is not None:
                    self._advance(dataset, tenant, _instant(value))
        finally:
            cur.close()

    # -- queries ---------------------------------------------------------------------

    def record_query(
        self,
        *,
        datasets: Sequence[str],
        tenant: str | None,
        seconds: float,
        rows: int,
        error: BaseException | None,
        query: Mapping[str, Any] | None,
        data_versions: Mapping[str, int] | None,
        cache: str = "off",
    ) -> None:
        """Count one query in the monitor and the query log."""
        channel = _CHANNEL.get() or _PYTHON
        outcome, kind = ("ok", None) if error is None else outcome_of(error)
        self.monitor.record_query(
            datasets=datasets,
            tenant=tenant,
            seconds=seconds,
            rows=rows,
            outcome=outcome,  # type: ignore[arg-type]
            error=kind,
            channel=channel.channel,
            subject=channel.subject,
            resource=channel.resource,
            query=query,
            data_versions=data_versions,
            cache=cache,
        )

    # -- reports ---------------------------------------------------------------------

    def last_batch(self, dataset: str) -> BatchReport | None:
        """The last batch stored for ``dataset`` (its source, at registration, or an append)."""
        return self._last.get(dataset)

    def last_rejected(self, dataset: str) -> BatchReport | None:
        """The last batch refused whole for ``dataset``, if any."""
        return self._rejected.get(dataset)


def _instant(value: object) -> datetime | None:
    """A stored time value as an aware UTC datetime (naive values are UTC)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    return None
