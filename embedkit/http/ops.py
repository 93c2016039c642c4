"""Operator routes: metrics, status, catalog, quarantine and the query log.

::

    GET /metrics                 Prometheus text format
    GET /ops/status              the status page (HTML shell; data below)
    GET /ops/status.json         freshness, contract results, SLOs per dataset
    GET /ops/catalog             the catalog page (HTML shell; data below)
    GET /ops/catalog.json        every dataset as a data product
    GET /ops/quarantine          quarantined rows and counts (JSON)
    GET /ops/query-log           the query log (JSON, or NDJSON with ?format=ndjson)

Every data route needs ``Authorization: Bearer <operator token>`` (audience
``ops``, from :meth:`embedkit.EmbedKit.operator_token`); embed, session and API
tokens are refused. The HTML pages carry no data: their script reads the token
from the URL fragment (see :meth:`embedkit.EmbedKit.operator_url`), drops it from
the address bar and fetches the JSON with it.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from embedkit.errors import QueryError, TokenError
from embedkit.http.headers import page_policy
from embedkit.http.problems import problem_response
from embedkit.trust.metrics import CONTENT_TYPE
from embedkit.trust.monitor import Monitor
from embedkit.trust.quarantine import Quarantine

__all__ = ["Operations", "ops_routes"]

_MAX_LIMIT = 10_000


@dataclass(frozen=True)
class Operations:
    """What the operator routes read, bound to one EmbedKit."""

    verify: Callable[[str], str]
    status: Callable[[str | None], dict[str, Any]]
    catalog: Callable[[], dict[str, Any]]
    metrics: Callable[[], bytes]
    quarantine: Quarantine
    monitor: Monitor


def _json(body: Any) -> Response:
    data = orjson.dumps(body, default=str, option=orjson.OPT_NON_STR_KEYS)
    return Response(data, media_type="application/json", headers={"Cache-Control": "no-store"})


def _limit(text: str | None, default: int) -> int:
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= _MAX_LIMIT:
        raise QueryError(f"limit must be a whole number from 1 to {_MAX_LIMIT:,}")
    return int(text)


def ops_routes(ops: Operations, templates: Any, run: Callable[..., Any]) -> list[Route]:
    """The operator routes; ``run`` runs blocking calls off the event loop."""

    def operator(request: Request) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenError("invalid", "operator routes need an operator token")
        return ops.verify(token.strip())

    def guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                await run(operator, request)
                result: Response = await handler(request)
                return result
            except Exception as err:
                return problem_response(err)

        return endpoint

    async def metrics(request: Request) -> Response:
        body = await run(ops.metrics)
        return Response(body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})

    async def status(request: Request) -> Response:
        tenant = request.query_params.get("tenant") or None
        return _json(await run(ops.status, tenant))

    async def catalog(request: Request) -> Response:
        return _json(await run(ops.catalog))

    async def quarantine(request: Request) -> Response:
        q = request.query_params
        status = q.get("status", "held")
        if status not in ("held", "replayed", "discarded", "any"):
            raise QueryError("status must be held, replayed, discarded or any")
        filters = {
            "tenant": q.get("tenant") or None,
            "rule": q.get("rule") or None,
            "batch": q.get("batch") or None,
            "status": status,
            "limit": _limit(q.get("limit"), 100),
        }
        dataset = q.get("dataset") or None
        rows = await run(ops.quarantine.rows, dataset, **filters)
        counts = await run(ops.quarantine.counts, status=status)
        return _json({"counts": counts, "rows": [r.to_json() for r in rows]})

    async def query_log(request: Request) -> Response:
        q = request.query_params
        since_text = q.get("since")
        try:
            since = datetime.fromisoformat(since_text) if since_text else None
        except ValueError:
            raise QueryError("since must be an ISO 8601 time, e.g. 2026-11-25T10:00:00Z") from None
        entries = ops.monitor.log(
            since=since, tenant=q.get("tenant") or None, limit=_limit(q.get("limit"), 1000)
        )
        if q.get("format") == "ndjson":
            out = io.BytesIO()
            for entry in entries:
                out.write(orjson.dumps(entry.to_json()) + b"\n")
            return Response(
                out.getvalue(),
                media_type="application/x-ndjson",
                headers={"Cache-Control": "no-store"},
            )
        return _json({"entries": [e.to_json() for e in entries]})

    def page(name: str) -> Callable[[Request], Any]:
        async def render(request: Request) -> Response:
            nonce = secrets.token_urlsafe(16)
            html = templates.get_template("ops.html").render(
                prefix=request.scope.get("root_path", ""),
                page=name,
                nonce=nonce,
                version="1",
            )
            return HTMLResponse(
                html,
                headers={
                    "Content-Security-Policy": page_policy(nonce, ()),
                    "Cache-Control": "no-store",
                },
            )

        return render

    return [
        Route("/metrics", guarded(metrics), methods=["GET"]),
        Route("/ops/status.json", guarded(status), methods=["GET"]),
        Route("/ops/catalog.json", guarded(catalog), methods=["GET"]),
        Route("/ops/quarantine", guarded(quarantine), methods=["GET"]),
        Route("/ops/query-log", guarded(query_log), methods=["GET"]),
        Route("/ops/status", page("status"), methods=["GET"]),
        Route("/ops/catalog", page("catalog"), methods=["GET"]),
    ]
