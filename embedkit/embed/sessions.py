"""Verified session tokens, remembered so a dashboard's requests skip re-verifying them.

A dashboard's page sends a dozen requests with the same session token within a
second, and keeps sending them for minutes. Checking the signature once is
enough: on every later use the remembered grant is checked again for expiry and
revocation, against the clock, which costs a dictionary lookup.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from embedkit.cache.keys import frozen
from embedkit.embed.tokens import Grant, Tokens

__all__ = ["Sessions"]

#: Verified session tokens remembered at most (the oldest are forgotten first).
MAX_SESSIONS = 10_000


class Sessions:
    """Session token -> (verified grant, scope key)."""

    def __init__(self, tokens: Callable[[], Tokens]) -> None:
        self._tokens = tokens
        self._known: OrderedDict[str, tuple[Grant, Hashable]] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, token: str) -> tuple[Grant, Hashable]:
        """The grant of ``token`` and its scope key: everything that decides what its
        viewer sees (resource, tenant, claims, params, display), not who the viewer is,
        so viewers of one scope share cached answers and no one else reaches them.
        Raises TokenError when the token is not valid, or no longer."""
        tokens = self._tokens()
        found = self._known.get(token)
        if found is not None:
            tokens.recheck(found[0])
            return found
        grant = tokens.verify_session(token)
        scope = frozen(
            {
                "resource": grant.resource,
                "tenant": grant.tenant,
                "claims": grant.claims or {},
                "locked": grant.locked or {},
                "editable": grant.editable or {},
                "theme": grant.theme or {},
                "locale": grant.locale,
                "timezone": grant.timezone,
            }
        )
        with self._lock:
            self._known[token] = (grant, scope)
            while len(self._known) > MAX_SESSIONS:
                self._known.popitem(last=False)
        return grant, scope
