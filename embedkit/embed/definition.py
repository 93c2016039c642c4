"""The definition an embed page draws from: granted widgets, filters, theme, locale.

It is the answer of ``POST /session``. Filter values here are already resolved
against the token (locked values shown locked, limits applied), and only the
widgets the token grants are listed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from embedkit.embed.data import as_mapping
from embedkit.embed.locales import time_format_locale
from embedkit.embed.params import allowed_presets, granted_widgets, resolve_params
from embedkit.embed.resources import Dashboard, DateRangeFilter, SelectFilter
from embedkit.embed.theme import Theme
from embedkit.embed.tokens import Grant

__all__ = ["build_definition"]


def build_definition(
    grant: Grant,
    dashboard: Dashboard,
    session: str,
    *,
    theme: Theme,
    locale: str,
    currency: str,
    timezone: str,
    now: datetime,
    live: tuple[bool, float] = (False, 5.0),
) -> dict[str, Any]:
    """The answer of ``POST /session``: what ``grant`` shows, and how."""
    values = resolve_params(
        dashboard,
        {},
        locked=grant.locked,
        editable=grant.editable,
        now=now,
        timezone=timezone,
    )
    _, _, only = grant.resource.partition("/")
    filters = []
    for flt in dashboard.filters:
        entry: dict[str, Any] = {
            "name": flt.name,
            "label": flt.label or flt.name.replace("_", " ").capitalize(),
            "value": as_mapping(values)[flt.name],
            "locked": flt.name in grant.locked,
        }
        allowed = grant.editable.get(flt.name)
        if isinstance(flt, SelectFilter):
            entry.update(kind="select", multiple=flt.multiple)
        elif isinstance(flt, DateRangeFilter):
            presets = allowed_presets(flt, allowed, now=now, timezone=timezone)
            entry.update(
                kind="date_range",
                presets=presets,
                custom=bool(flt.custom) and not isinstance(allowed, list | tuple),
            )
        else:
            options = list(flt.options)
            if isinstance(allowed, list | tuple):
                options = [o for o in options if o in allowed]
            entry.update(kind="grain", options=options)
        filters.append(entry)
    widgets = [
        {
            "name": w.name,
            "kind": w.kind,
            "title": w.title or "",
            "description": w.description,
            "span": w.span,
        }
        for w in granted_widgets(dashboard, grant.resource)
    ]
    return {
        "session": session,
        "expires_in": max(0.0, grant.expires_at - now.timestamp()),
        "resource": {"dashboard": dashboard.name, "widget": only or None},
        "dashboard": {
            "name": dashboard.name,
            "title": dashboard.title or "",
            "description": dashboard.description,
            "columns": 1 if only else dashboard.columns,
            "widgets": widgets,
            "filters": filters,
        },
        "theme": theme.to_json(),
        "vega": {"light": theme.vega_config(dark=False), "dark": theme.vega_config(dark=True)},
        "surfaces": {"light": theme.surfaces(False), "dark": theme.surfaces(True)},
        "locale": locale,
        "currency": currency,
        "timezone": timezone,
        "time_format_locale": time_format_locale(locale),
        # Whether the page opens GET /live, and how often it polls when it cannot.
        "live": {"enabled": live[0], "poll_ms": round(live[1] * 1000)},
    }
