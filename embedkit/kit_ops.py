"""The operator side of :class:`~embedkit.EmbedKit`: status, catalog, metrics, links."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from embedkit.embed.service import Embedder
from embedkit.semantic.model import Model
from embedkit.trust.service import Trust

__all__ = ["OperatorMethods"]


class OperatorMethods:
    """What operators read, and the tokens that open it (mixed into EmbedKit)."""

    _trust: Trust
    _model: Model
    _clock: Callable[[], datetime]
    _embedding: Embedder

    def status(self, *, tenant: str | int | None = None) -> dict[str, Any]:
        """The status report operators read (as ``/ops/status`` shows it): per dataset,
        freshness, contract results and SLO attainment, of one tenant if given."""
        from embedkit.trust.reports import status

        who = None if tenant is None else str(tenant)
        return status(self._trust, self._model, self._clock(), tenant=who)

    def catalog(self) -> dict[str, Any]:
        """Every dataset as a data product: owner, description, contract, SLOs, and each
        measure's meaning in words and SQL (as ``/ops/catalog`` shows it)."""
        from embedkit.trust.reports import catalog

        return catalog(self._trust, self._model, self._clock())

    def metrics(self) -> bytes:
        """Every metric in Prometheus' text format (as ``/metrics`` serves it)."""
        return self._trust.metrics()

    def operator_token(self, *, subject: str, ttl: float | None = None) -> str:
        """A token for the operator routes (``/metrics``, ``/ops/...``), audience ``ops``.

        ``subject`` names who holds it (``"prometheus"``, an operator's email). Embed,
        session and API tokens never open these routes, nor this token an embed.
        """
        return self._embedding.tokens.mint_operator(subject=subject, ttl=ttl)

    def operator_url(
        self,
        page: Literal["status", "catalog"] = "status",
        *,
        subject: str,
        ttl: float | None = None,
    ) -> str:
        """A link to the status or catalog page with a fresh operator token in its
        fragment (browsers never send fragments to servers)."""
        if page not in ("status", "catalog"):
            raise ValueError("page must be 'status' or 'catalog'")
        base = self._embedding.settings.base_url.rstrip("/")
        return f"{base}/ops/{page}#token={self.operator_token(subject=subject, ttl=ttl)}"
