"""A cached widget answer served without the framework in between.

A dashboard that many viewers of one tenant keep open asks for the same widget
answers again and again, and once cached, each costs only a lookup. Going through
Starlette's middleware, routing, request and response objects cost more than the
lookup itself (about 45 microseconds of a cached answer's 70, measured in-process).
This ASGI middleware sits first in the embed app: for ``GET /data/{widget}`` it
makes the same lookup as the route (:meth:`Routes.lookup`: the session is checked
first, then the cache for that session's scope) and, on a fresh hit, sends the
stored bytes with the same headers the route and :class:`SecurityHeaders` would.
Anything else (a miss, a bad token, another route, any error) goes to the app
unchanged, which answers it in full; so this path can only skip work, never
decide differently.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from embedkit.http.headers import secured
from embedkit.http.routes import Routes, prepared

__all__ = ["CachedData"]

_PREFIX = "/data/"


class CachedData:
    """ASGI middleware answering fresh cached widget data directly (see module doc)."""

    def __init__(self, app: ASGIApp, routes: Routes) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            if path.startswith(_PREFIX) and await self._answer(scope, path[len(_PREFIX) :], send):
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, widget: str, send: Send) -> bool:
        """Send the cached answer for ``widget`` and return True, or return False."""
        if not widget or "/" in widget or "%" in widget:
            return False  # not a plain widget name: the router decides
        try:
            found = self.routes.lookup(scope, widget)
        except Exception:
            return False  # the route gives the same error its proper answer
        if found.body is None:
            return False
        content, headers, status = prepared(found.wanted, found.body)
        await send({"type": "http.response.start", "status": status, "headers": secured(headers)})
        await send({"type": "http.response.body", "body": content})
        return True
