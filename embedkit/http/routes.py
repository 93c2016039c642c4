"""The routes of the embed app. Each one parses, calls the Python API, and formats.

::

    GET  /embed/{resource}          the embed page (the token stays in the URL fragment)
    POST /session                   embed token -> session + definition
    GET  /data/{widget}             a widget's data (JSON, or Arrow IPC on request)
    GET  /values/{filter}           a select filter's choices, scoped
    GET  /image/{widget}.{svg|png}  a widget drawn on the server
    GET  /static/{name}             loader, page script, styles, Vega
    GET  /health                    liveness
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, TypeVar

import anyio
import orjson
import pyarrow as pa
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Scope

from embedkit.cache.responses import Body, make_body
from embedkit.embed.service import Embedder
from embedkit.embed.tokens import Grant
from embedkit.errors import QueryError, TokenError
from embedkit.http.assets import asset
from embedkit.http.headers import page_policy
from embedkit.http.problems import Problem, problem_response
from embedkit.trust.service import Channel, request_context

__all__ = ["Routes"]

ARROW_STREAM = "application/vnd.apache.arrow.stream"
MAX_BODY = 16_384
#: Requests one session may have in flight at once: a dashboard loads about a dozen
#: widgets at once, and requests a client gave up on still count until they finish.
MAX_INFLIGHT = 32


_T = TypeVar("_T")


class _Workers:
    """Runs blocking calls (DuckDB, token checks) off the event loop, a few at a time.

    A widget request is a short DuckDB query (which releases the GIL) around Python
    work (which holds it), so a few requests per core in flight keep every core busy.
    Measured on 2 cores with an uncached line widget over 1M rows under wrk -c32
    (benchmarks/serving.py): 2 in flight served 252 req/s, 8 in flight 698. Dozens would
    only make queries fight for the same cores, so the cap is 4 per core and the rest
    wait their turn.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit or 4 * max(2, os.cpu_count() or 2)
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, func: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        if self._limiter is None:  # made inside the event loop that will use it
            self._limiter = anyio.CapacityLimiter(self.limit)
        call = functools.partial(func, *args, **kwargs)
        return await anyio.to_thread.run_sync(call, limiter=self._limiter)


class DataLookup(NamedTuple):
    """A data request read up to the response cache (see :meth:`Routes.lookup`)."""

    wanted: dict[bytes, bytes]  # the request headers the answer depends on
    grant: Grant
    key: Any
    versions: Any
    arrow: bool
    body: Body | None  # the cached answer, if fresh


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


class Routes:
    """Handlers bound to one :class:`Embedder` and its page templates."""

    def __init__(self, embedder: Embedder, templates: Any) -> None:
        self.embedder = embedder
        self.templates = templates
        self.workers = _Workers()
        # Drawing images is slow: it gets its own single lane, so it never holds up data.
        self.images = _Workers(limit=1)
        self._inflight: dict[str, int] = {}

    @contextlib.contextmanager
    def _turn(self, grant: Grant) -> Iterator[None]:
        """Count a session's requests in flight; past the cap the caller gets a 429, so
        one viewer cannot fill the workers every other viewer waits for."""
        key = grant.jti
        if self._inflight.get(key, 0) >= MAX_INFLIGHT:
            raise Problem(
                429, "too-many-requests", "Too many requests at once", "retry in a moment"
            )
        self._inflight[key] = self._inflight.get(key, 0) + 1
        try:
            yield
        finally:
            left = self._inflight[key] - 1
            if left:
                self._inflight[key] = left
            else:
                del self._inflight[key]

    @staticmethod
    def _channel(
        kind: str, grant: Grant, request: Request
    ) -> contextlib.AbstractContextManager[None]:
        """Attribute the queries of this request to the embed and its viewer (query log)."""
        name = request.path_params.get("widget") or request.path_params.get("filter")
        subject = (grant.claims or {}).get("sub")
        return request_context(
            Channel(
                kind,
                resource=f"{grant.resource.split('/')[0]}/{name}" if name else grant.resource,
                subject=subject if isinstance(subject, str) else None,
            )
        )

    def _grant(self, request: Request) -> Grant:
        return self.embedder.grant(bearer(request))

    async def page(self, request: Request) -> Response:
        nonce = secrets.token_urlsafe(16)
        settings = self.embedder.settings
        html = self.templates.get_template("embed.html").render(
            prefix=request.scope.get("root_path", ""),
            resource=request.path_params["resource"],
            nonce=nonce,
            host_origins=json.dumps(list(settings.host_origins)),
            version="1",
        )
        return HTMLResponse(
            html,
            headers={
                "Content-Security-Policy": page_policy(nonce, settings.host_origins),
                "Cache-Control": "private, no-cache",
            },
        )

    async def session(self, request: Request) -> Response:
        try:
            data = json.loads(await _small_body(request) or b"{}")
            if not isinstance(data, dict):
                raise TokenError("invalid")
            token, resource = data.get("token"), data.get("resource")
            if not isinstance(token, str) or not isinstance(resource, str):
                raise TokenError("invalid")
            definition = await self.workers.run(self.embedder.open_session, token, resource)
            return _json(definition)
        except (ValueError, RecursionError):
            return problem_response(TokenError("invalid"))
        except Exception as err:
            return problem_response(err)

    def lookup(self, scope: Scope, widget: str) -> DataLookup:
        """Where a data request's answer is cached, and the answer if it is there.

        Raises TokenError for a missing, invalid or expired session."""
        wanted = {k.lower(): v for k, v in scope["headers"] if k.lower() in _DATA_HEADERS}
        grant, seen = self.embedder.session(_token(wanted.get(b"authorization", b"")))
        arrow = ARROW_STREAM in wanted.get(b"accept", b"").decode("latin-1")
        # Relative dates ("last 7 days") move at most once a minute: the minute is in
        # the key, so a cached answer never outlives the dates it was computed for.
        # The query string is keyed as sent; it is parsed only when computing.
        minute = int(self.embedder.now().timestamp() // 60)
        key = (seen, widget, scope.get("query_string", b""), arrow, minute)
        versions = self.embedder.versions(grant.tenant)  # moved by this tenant's data only
        body = self.embedder.responses.get(key, versions)
        return DataLookup(wanted, grant, key, versions, arrow, body)

    async def data(self, request: Request) -> Response:
        try:
            widget = request.path_params["widget"]
            wanted, grant, key, versions, arrow, body = self.lookup(request.scope, widget)
            if body is None:
                q = request.query_params
                params = parse_params(q.get("params"))
                page, order = _page(q.get("page")), _order(q.get("order"))
                with self._turn(grant), self._channel("embed", grant, request):
                    body = await self.workers.run(
                        self._widget_body, grant, widget, params, page, order, arrow, key, versions
                    )
            return _send(wanted, body)
        except Exception as err:
            return problem_response(err)

    def _widget_body(
        self,
        grant: Grant,
        widget: str,
        params: dict[str, Any],
        page: int,
        order: tuple[str, str] | None,
        arrow: bool,
        key: Any,
        versions: Any,
    ) -> Body:
        def make() -> Body:
            data = self.embedder.widget_data(grant, widget, params, page=page, order=order)
            if arrow:
                return make_body(_ipc(data.result.table), ARROW_STREAM, data.versions)
            return make_body(data.to_json_bytes(), "application/json", data.versions)

        return self.embedder.responses.compute(key, versions, make)

    async def values(self, request: Request) -> Response:
        try:
            grant = self._grant(request)
            with self._turn(grant), self._channel("embed", grant, request):
                answer = await self.workers.run(
                    self.embedder.filter_values,
                    grant,
                    request.path_params["filter"],
                    request.query_params.get("q", ""),
                )
            return _json(answer)
        except Exception as err:
            return problem_response(err)

    async def image(self, request: Request) -> Response:
        try:
            grant = self._grant(request)
            fmt = request.path_params["fmt"]
            if fmt not in ("svg", "png"):
                raise Problem(404, "not-found", "Not found")
            params = parse_params(request.query_params.get("params"))
            with self._turn(grant), self._channel("image", grant, request):
                body = await self.images.run(
                    self.embedder.image,
                    grant,
                    request.path_params["widget"],
                    params,
                    fmt,
                    dark=request.query_params.get("mode") == "dark",
                )
            media = "image/svg+xml" if fmt == "svg" else "image/png"
            return Response(body, media_type=media)
        except Exception as err:
            return problem_response(err)

    async def static(self, request: Request) -> Response:
        found = await self.workers.run(asset, request.path_params["name"])
        if found is None:
            return problem_response(Problem(404, "not-found", "Not found"))
        headers = {"ETag": found.etag, "Cache-Control": "private, max-age=3600"}
        if request.headers.get("if-none-match") == found.etag:
            return Response(status_code=304, headers=headers)
        return Response(found.body, media_type=found.media_type, headers=headers)

    async def health(self, request: Request) -> Response:
        return _json({"status": "ok"})

    async def not_found(self, request: Request, exc: Exception) -> Response:
        return problem_response(Problem(404, "not-found", "Not found"))

    async def error(self, request: Request, exc: Exception) -> Response:
        return problem_response(exc)


_DATA_HEADERS = frozenset((b"authorization", b"accept", b"if-none-match", b"accept-encoding"))


def _token(header: bytes) -> str:
    scheme, _, token = header.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("invalid")
    return token.strip()


def bearer(request: Request) -> str:
    """The bearer token of ``request`` (TokenError when there is none)."""
    return _token(request.headers.get("authorization", "").encode("latin-1"))


class _Prepared(Response):
    """A response whose headers are ready: no header parsing or encoding per request."""

    def __init__(self, content: bytes, headers: list[tuple[bytes, bytes]], status: int) -> None:
        self.status_code = status
        self.body = content
        self.background = None
        self.raw_headers = headers


def _send(wanted: dict[bytes, bytes], body: Body) -> Response:
    """``body`` as a response: 304 when the client holds it already (If-None-Match),
    compressed when the client accepts it and it is large enough to gain."""
    return _Prepared(*prepared(wanted, body))


def prepared(
    wanted: dict[bytes, bytes], body: Body
) -> tuple[bytes, list[tuple[bytes, bytes]], int]:
    """The content, raw headers and status :func:`_send` answers with."""
    headers = [
        (b"etag", body.etag.encode()),
        # The browser may keep it, but asks again each time (with If-None-Match).
        (b"cache-control", b"private, no-cache"),
        (b"vary", b"Authorization, Accept, Accept-Encoding"),
    ]
    match = wanted.get(b"if-none-match", b"").decode("latin-1")
    if match and body.etag in (tag.strip() for tag in match.split(",")):
        return b"", headers, 304
    content, encoding = body.encoded(wanted.get(b"accept-encoding", b"").decode("latin-1"))
    headers.append((b"content-type", body.media_type.encode()))
    headers.append((b"content-length", str(len(content)).encode()))
    if encoding:
        headers.append((b"content-encoding", encoding.encode()))
    return content, headers, 200


async def _small_body(request: Request) -> bytes:
    """The request body, refused (as an invalid token) past MAX_BODY without reading on."""
    length = request.headers.get("content-length", "0")
    if not (length.isascii() and length.isdigit()) or int(length) > MAX_BODY:
        raise TokenError("invalid")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise TokenError("invalid")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_params(text: str | None) -> dict[str, Any]:
    """The ``params`` query-string value (JSON object) of a data request."""
    if not text:
        return {}
    if len(text) > 16_384:
        raise QueryError("params is too long")
    try:
        # orjson refuses NaN, Infinity and integers past 64 bits, as JSON does.
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise QueryError("params must be a JSON object of filter name -> value") from None
    if not isinstance(value, dict):
        raise QueryError("params must be a JSON object of filter name -> value")
    return value


def _page(text: str | None) -> int:
    if text is None:
        return 0
    if not (text.isascii() and text.isdigit()) or len(text) > 7:
        raise QueryError("page must be a whole number from 0")
    return int(text)


def _order(text: str | None) -> tuple[str, str] | None:
    if not text:
        return None
    key, _, direction = text.partition(":")
    return (key, direction or "asc")


def _ipc(table: pa.Table) -> bytes:
    # The schema metadata carries the SQL and timings: never send those to an embed.
    table = table.replace_schema_metadata(None)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())
