"""RFC 9457 problem details: the one shape every API error takes.

Messages are the library's own safe texts (no SQL, no table names, never a
hint of another tenant); anything unexpected becomes a plain 500 whose cause
is logged on the server, not sent.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import JSONResponse

from embedkit.errors import AccessDenied, ConfigError, EmbedKitError, QueryError, TokenError

__all__ = ["Problem", "problem_for", "problem_response"]

log = logging.getLogger("embedkit.http")
BASE = "https://embedkit.dev/problems/"
MEDIA_TYPE = "application/problem+json"

_TOKEN_TITLES = {
    "expired": "This link has expired",
    "revoked": "This link is no longer valid",
    "invalid": "This link is not valid",
}


class Problem(Exception):
    """An HTTP error to answer as problem details."""

    def __init__(self, status: int, slug: str, title: str, detail: str | None = None) -> None:
        super().__init__(title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": BASE + self.slug,
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        return body


def problem_for(err: BaseException) -> Problem:
    """The problem that answers ``err``."""
    if isinstance(err, Problem):
        return err
    if isinstance(err, TokenError):
        return Problem(401, err.reason, _TOKEN_TITLES.get(err.reason, _TOKEN_TITLES["invalid"]))
    if isinstance(err, AccessDenied):
        return Problem(403, "forbidden", "Not allowed", str(err))
    if isinstance(err, QueryError):
        return Problem(400, "bad-request", "Bad request", str(err))
    if isinstance(err, ConfigError):
        log.error("embedkit is misconfigured: %s", err)
        return Problem(500, "server-error", "The analytics service is not configured")
    if isinstance(err, EmbedKitError):
        log.error("embedkit request failed: %s", err)
        return Problem(500, "server-error", "The data could not be read; try again")
    log.exception("embedkit request failed", exc_info=err)
    return Problem(500, "server-error", "Something went wrong; try again")


def problem_response(err: BaseException) -> JSONResponse:
    """A problem+json response for ``err``."""
    p = problem_for(err)
    headers = {"WWW-Authenticate": 'Bearer realm="embedkit"'} if p.status == 401 else None
    return JSONResponse(p.body(), status_code=p.status, media_type=MEDIA_TYPE, headers=headers)
