"""Security headers on every response of the embed app.

The embed page gets its own Content-Security-Policy (scripts only by nonce,
``frame-ancestors`` = the configured host origins); every other response gets
a policy that allows nothing to run or frame it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeaders", "page_policy", "secured"]

_API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def page_policy(nonce: str, host_origins: Sequence[str]) -> str:
    """The CSP of an embed page: embedkit's own scripts and styles, framed by the hosts."""
    ancestors = " ".join(("'self'", *host_origins))
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src 'nonce-{nonce}'",
            f"style-src 'self' 'nonce-{nonce}'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            "connect-src 'self'",
            f"frame-ancestors {ancestors}",
            "base-uri 'none'",
            "form-action 'none'",
            "object-src 'none'",
        )
    )


class SecurityHeaders:
    """ASGI middleware adding the headers every embed response carries."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = secured(message.get("headers", ()))
            await send(message)

        await self.app(scope, receive, send_with_headers)


_ALWAYS = ((b"referrer-policy", b"no-referrer"), (b"x-content-type-options", b"nosniff"))
_DEFAULTS = (
    (b"cache-control", b"private, no-store"),
    (b"content-security-policy", _API_POLICY.encode()),
)


def secured(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` (raw, lower-case names) with the ones every response carries added
    where missing. Raw list work: it runs on every response, cached ones included."""
    raw = list(headers)
    present = {name.lower() for name, _ in raw}
    raw += [pair for pair in _ALWAYS if pair[0] not in present]
    raw += [pair for pair in _DEFAULTS if pair[0] not in present]
    return raw
