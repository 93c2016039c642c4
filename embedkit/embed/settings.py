"""Embed settings: who may frame embeds, where they are mounted, how they look."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from embedkit.embed.locales import check_currency, check_locale
from embedkit.embed.theme import Theme
from embedkit.query.dates import zone

__all__ = ["EmbedSettings"]

_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?\Z")


@dataclass(frozen=True)
class EmbedSettings:
    """How embeds behave; every field has a safe default.

    Args:
        host_origins: origins allowed to frame embeds and exchange messages with
            them (``https://app.example.com``); empty means same origin only.
        base_url: where :meth:`EmbedKit.asgi` is mounted (``/analytics`` or a full
            URL); embed URLs start with it.
        theme: the default theme; an embed URL may override parts of it.
        locale / currency / timezone: defaults for number and date formats and for
            the zone in which dates are bucketed and read.
        token_ttl: seconds an embed URL lives when ``embed_url`` is not given ``ttl``.
        max_token_ttl: the longest ``ttl`` any embed URL may ask for.
        token_leeway: seconds of clock difference between servers that token checks
            forgive (at most 300).
        issuer: the ``iss`` of tokens (set it per app when several apps share keys).
        live: open embeds update themselves when their data changes (a Server-Sent
            Events stream per page, ``GET /live``); False keeps them still until
            reloaded or refiltered.
        live_poll: seconds between checks when a page cannot stream (a proxy that
            buffers responses, say) and asks ``/data`` with ``If-None-Match`` instead.
        live_coalesce: seconds a stream waits after a change for more before it
            recomputes, so a burst of appends is one update.
    """

    host_origins: tuple[str, ...] = ()
    base_url: str = ""
    theme: Theme = field(default_factory=Theme)
    locale: str = "en-US"
    currency: str = "USD"
    timezone: str = "UTC"
    token_ttl: float = 600
    max_token_ttl: float = 3600
    token_leeway: float = 30
    issuer: str = "embedkit"
    live: bool = True
    live_poll: float = 5.0
    live_coalesce: float = 0.05

    def __post_init__(self) -> None:
        origins: Any = self.host_origins
        origins = (origins,) if isinstance(origins, str) else tuple(origins)
        for origin in origins:
            # Strict: an origin lands in the page's CSP header, where a ';' or a space
            # would start another directive.
            if not isinstance(origin, str) or not _ORIGIN.match(origin.rstrip("/")):
                raise ValueError(
                    f"host origin {origin!r} is not an origin; write it as "
                    "'https://app.example.com' (scheme, host and port only)"
                )
        object.__setattr__(self, "host_origins", tuple(o.rstrip("/") for o in origins))
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        zone(self.timezone)
        check_locale(self.locale)
        check_currency(self.currency)
        if not 1.0 <= self.live_poll <= 3600:
            raise ValueError("live_poll is seconds between polls: from 1 to 3600")
        if not 0.0 <= self.live_coalesce <= 10:
            raise ValueError("live_coalesce is seconds to gather a burst of changes: 0 to 10")
