"""Real servers and a real browser for end-to-end tests.

Two uvicorn servers on 127.0.0.1, on two ports (so two origins): the host app, whose
pages embed dashboards with the loader, and the analytics app (``kit.asgi()``
mounted at ``/analytics``). Chromium is Debian's, driven by Playwright.
"""

from __future__ import annotations

import html
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Mount, Route

import embedkit as ek

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@dataclass
class AccessLog(logging.Handler):
    """Every line uvicorn's access log would write, kept in memory."""

    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        logging.Handler.__init__(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def __hash__(self) -> int:
        return id(self)


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serve(app: Any, sock: socket.socket) -> Iterator[str]:
    """Run ``app`` with uvicorn on ``sock`` in a thread; yields its origin."""
    config = uvicorn.Config(app, log_config=None, access_log=True, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    host, port = sock.getsockname()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Seller back office</title>
<link rel="icon" href="data:,">
<style>
  body {{ font-family: sans-serif; margin: 0; padding: 8px; }} header {{ padding: 8px 0; }}
</style>
<script src="{loader}" defer></script>
</head><body>
<header><h1>Back office</h1><span id="host-filter">{initial}</span></header>
<embedkit-dashboard id="dash" src="{src}" title="Sales analytics"></embedkit-dashboard>
<script>
  window.__events = [];
  const el = document.getElementById("dash");
  el.tokenProvider = async () => {{
    window.__events.push({{type: "token-provider"}});
    const answer = await fetch({token_url});
    return await answer.text();
  }};
  for (const name of ["ready", "loaded", "filterchange", "click", "error", "resize"]) {{
    el.addEventListener("embedkit:" + name, (e) => {{
      window.__events.push({{type: name, detail: JSON.parse(JSON.stringify(e.detail || null))}});
      if (name === "filterchange") {{
        document.getElementById("host-filter").textContent = JSON.stringify(e.detail.filters);
      }}
    }});
  }}
</script>
</body></html>
"""


def host_app(kit: ek.EmbedKit, embed_origin: str, *, ttl: float = 600) -> Starlette:
    """A host app: pages that embed a dashboard for a tenant, and a token endpoint."""

    def mint(request: Request) -> str:
        resource = request.path_params["resource"]
        tenant = request.query_params.get("tenant", "s1")
        locked = json.loads(request.query_params.get("locked", "{}"))
        theme = json.loads(request.query_params.get("theme", "null"))
        seconds = float(request.query_params.get("ttl", ttl))
        return kit.embed_url(
            resource,
            tenant=tenant,
            params=locked,
            ttl=seconds,
            theme=theme,
            locale=request.query_params.get("locale"),
            currency=request.query_params.get("currency"),
            timezone=request.query_params.get("timezone"),
        )

    async def page(request: Request) -> HTMLResponse:
        url = mint(request)
        query = request.url.query
        token_url = json.dumps(f"/token/{request.path_params['resource']}?{query}")
        return HTMLResponse(
            HOST_PAGE.format(
                loader=html.escape(f"{embed_origin}/analytics/static/loader.js"),
                src=html.escape(url),
                token_url=token_url,
                initial="",
            )
        )

    async def token(request: Request) -> PlainTextResponse:
        return PlainTextResponse(mint(request))

    return Starlette(
        routes=[
            Route("/host/{resource:path}", page),
            Route("/token/{resource:path}", token),
        ]
    )


def analytics_app(kit: ek.EmbedKit) -> Starlette:
    return Starlette(routes=[Mount("/analytics", app=kit.asgi())])
