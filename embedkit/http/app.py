"""Build the Starlette app that :meth:`embedkit.EmbedKit.asgi` returns."""

from __future__ import annotations

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route

from embedkit.embed.service import Embedder
from embedkit.http.assets import widgets_dir
from embedkit.http.fastpath import CachedData
from embedkit.http.headers import SecurityHeaders
from embedkit.http.live import LiveStreams
from embedkit.http.ops import Operations, ops_routes
from embedkit.http.routes import Routes
from embedkit.live.hub import ChangeHub

__all__ = ["create_app"]


def create_app(
    embedder: Embedder, ops: Operations | None = None, changes: ChangeHub | None = None
) -> Starlette:
    """A Starlette app serving embeds of ``embedder`` (and, given ``ops``, the operator
    routes: metrics, status, catalog; given ``changes``, live updates when the embed
    settings allow them); mount it at any prefix."""
    templates = jinja2.Environment(
        loader=jinja2.FileSystemLoader(widgets_dir() / "templates"),
        autoescape=True,
    )
    r = Routes(embedder, templates)
    live = []
    if changes is not None and embedder.settings.live:
        streams = LiveStreams(r, changes, coalesce=embedder.settings.live_coalesce)
        live.append(Route("/live", streams.live, methods=["GET"]))
    return Starlette(
        routes=[
            # The data route first: it is the one a dashboard calls most.
            Route("/data/{widget}", r.data, methods=["GET"]),
            Route("/embed/{resource:path}", r.page, methods=["GET"]),
            Route("/session", r.session, methods=["POST"]),
            Route("/values/{filter}", r.values, methods=["GET"]),
            Route("/image/{widget}.{fmt}", r.image, methods=["GET"]),
            Route("/static/{name}", r.static, methods=["GET"]),
            Route("/health", r.health, methods=["GET"]),
            *live,
            *(ops_routes(ops, templates, r.workers.run) if ops is not None else ()),
        ],
        # CachedData first: a fresh cached widget answer skips the rest of the stack.
        middleware=[Middleware(CachedData, routes=r), Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: r.not_found, Exception: r.error},
    )
