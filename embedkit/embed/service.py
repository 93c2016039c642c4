"""Embedding as a Python API: dashboards, embed URLs, sessions and widget data.

The HTTP routes (:mod:`embedkit.http`) are thin adapters over this class, so
a host app can do from Python whatever the browser does: read a widget's data
for a principal, list a filter's choices, render a widget as an image.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from embedkit.cache.responses import ResponseCache
from embedkit.embed.data import WidgetData, build_widget_data
from embedkit.embed.definition import build_definition
from embedkit.embed.locales import check_currency
from embedkit.embed.params import (
    applies,
    apply_params,
    check_grant_params,
    granted_widgets,
    resolve_params,
    unlimited,
)
from embedkit.embed.resources import (
    Dashboard,
    DateRangeFilter,
    GrainFilter,
    SelectFilter,
    Widget,
    check_dashboard,
)
from embedkit.embed.sessions import Sessions
from embedkit.embed.settings import EmbedSettings
from embedkit.embed.theme import Theme
from embedkit.embed.tokens import Grant, Tokens
from embedkit.errors import AccessDenied, ConfigError, ModelError, QueryError, TokenError
from embedkit.query.dates import zone
from embedkit.query.spec import Filter, Query
from embedkit.result import QueryResult
from embedkit.security.rules import Principal

__all__ = ["Embedder", "grant_for"]

#: How many choices a select filter offers at most.
MAX_CHOICES = 1000


class Embedder:
    """Dashboards and tokens of one kit; answers what embeds ask for."""

    def __init__(
        self,
        tokens: Tokens | None,
        settings: EmbedSettings,
        *,
        model: Callable[[], Any],
        run: Callable[[Query, Principal], QueryResult],
        now: Callable[[], datetime],
        versions: Callable[[Any], Mapping[str, int]] = lambda tenant: {},
        response_bytes: int = 64 * 2**20,
    ) -> None:
        self._tokens = tokens
        self.versions = versions  # tenant -> versions as it sees them (engines/versions.py)
        self.responses = ResponseCache(response_bytes)  # widget answers: cache/responses.py
        self._sessions = Sessions(lambda: self.tokens)
        self.settings = settings
        self._model = model
        self._run = run
        self._now = now
        self._dashboards: dict[str, Dashboard] = {}
        self._spent: dict[str, float] = {}  # embed token id -> its expiry
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The kit's clock."""
        return self._now()

    @property
    def tokens(self) -> Tokens:
        if self._tokens is None:
            raise ConfigError(
                "no signing key: pass secret=... (at least 32 random bytes, e.g. "
                "secrets.token_urlsafe(32)) or keys=[ek.SigningKey(...)] to EmbedKit"
            )
        return self._tokens

    # -- definitions -----------------------------------------------------------------

    @property
    def dashboards(self) -> Mapping[str, Dashboard]:
        return dict(self._dashboards)

    def add(self, *dashboards: Dashboard) -> None:
        with self._lock:
            problems = []
            known = list(self._dashboards)
            for d in dashboards:
                problems += check_dashboard(d, self._model(), known)
                known.append(getattr(d, "name", ""))
            if problems:
                raise ModelError(problems)
            for d in dashboards:
                self._dashboards[d.name] = d

    def dashboard(self, resource: str) -> Dashboard:
        name, _, widget = resource.partition("/")
        dashboard = self._dashboards.get(name)
        if dashboard is None or (widget and dashboard.widget(widget) is None):
            raise KeyError(resource)
        return dashboard

    # -- embed URLs ------------------------------------------------------------------

    def embed_url(
        self,
        resource: str,
        *,
        tenant: str | int,
        claims: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        editable: Mapping[str, Any] | None = None,
        ttl: float | None = None,
        theme: Theme | Mapping[str, Any] | None = None,
        locale: str | None = None,
        currency: str | None = None,
        timezone: str | None = None,
        base_url: str | None = None,
    ) -> str:
        try:
            dashboard = self.dashboard(resource)
        except KeyError:
            known = ", ".join(sorted(self._dashboards)) or "(none yet: add_dashboard first)"
            raise ValueError(
                f"no dashboard or widget '{resource}' to embed; dashboards are: {known}"
            ) from None
        check_grant_params(dashboard, params or {}, editable or {})
        loose = unlimited(
            dashboard,
            granted_widgets(dashboard, resource),
            params or {},
            editable or {},
            self._model(),
        )
        if loose:
            name, widget = loose[0]
            raise ValueError(
                f"param '{name}' cannot limit widget '{widget}' of '{dashboard.name}' (its "
                "query does not reach the filter's dimension), so that widget would show "
                "data outside it; embed only widgets the filter limits, or drop the param"
            )
        overrides = theme.to_json() if isinstance(theme, Theme) else dict(theme or {})
        self.settings.theme.merged(overrides)  # validated now, not per request
        if timezone is not None:
            zone(timezone)
        display = {"currency": check_currency(currency)} if currency else {}
        token = self.tokens.mint_embed(
            resource,
            tenant=tenant,
            claims=claims,
            locked=params,
            editable=editable,
            theme={**overrides, **({"display": display} if display else {})} or None,
            locale=locale,
            timezone=timezone,
            ttl=ttl,
        )
        base = self.settings.base_url if base_url is None else base_url.rstrip("/")
        return f"{base}/embed/{resource}#token={token}"

    # -- sessions --------------------------------------------------------------------

    def open_session(self, token: str, resource: str) -> dict[str, Any]:
        """Exchange an embed token for a session and the definition of what it grants."""
        grant = self.tokens.verify_embed(token)
        if grant.resource != resource:
            raise TokenError("invalid")
        try:
            dashboard = self.dashboard(grant.resource)
        except KeyError:
            raise TokenError("invalid") from None
        self._spend(grant)
        session = self.tokens.mint_session(grant)
        return self.definition(grant, dashboard, session)

    def _spend(self, grant: Grant) -> None:
        """Each embed token opens one session: a copied link (from a page's DOM, a
        screenshot, a log) cannot open another. Remembered in this process until it
        expires."""
        now = self._now().timestamp()
        with self._lock:
            if len(self._spent) > 10_000:
                self._spent = {j: t for j, t in self._spent.items() if t > now - 60}
            if grant.jti in self._spent:
                raise TokenError("invalid", "embed token already used")
            self._spent[grant.jti] = grant.expires_at

    def in_process_grant(
        self, resource: str, principal: Principal, locked: Mapping[str, Any] | None
    ) -> Grant:
        """A grant for a host-side call on one widget (``"dashboard/widget"``), no token."""
        if "/" not in resource:
            raise ValueError(f"name a widget as 'dashboard/widget', not {resource!r}")
        try:
            self.dashboard(resource)
        except KeyError:
            raise ValueError(f"no widget '{resource}'") from None
        return grant_for(resource, principal, locked=locked, now=self._now().timestamp())

    def grant(self, session: str) -> Grant:
        """The grant of a session token (verified once, then re-checked for expiry and
        revocation on every use)."""
        return self.session(session)[0]

    def session(self, token: str) -> tuple[Grant, Hashable]:
        """The grant of a session token and its scope key (see embed/sessions.py)."""
        return self._sessions.open(token)

    def theme_of(self, grant: Grant) -> Theme:
        overrides = {k: v for k, v in (grant.theme or {}).items() if k != "display"}
        return self.settings.theme.merged(overrides)

    def display(self, grant: Grant) -> tuple[str, str, str]:
        extra = (grant.theme or {}).get("display") or {}
        return (
            grant.locale or self.settings.locale,
            extra.get("currency") or self.settings.currency,
            grant.timezone or self.settings.timezone,
        )

    def definition(self, grant: Grant, dashboard: Dashboard, session: str) -> dict[str, Any]:
        """What the embed page draws: widgets, filters with their current values, theme."""
        locale, currency, timezone = self.display(grant)
        return build_definition(
            grant,
            dashboard,
            session,
            theme=self.theme_of(grant),
            locale=locale,
            currency=currency,
            timezone=timezone,
            now=self._now(),
            live=(self.settings.live, self.settings.live_poll),
        )

    # -- data ------------------------------------------------------------------------

    def widget_data(
        self,
        grant: Grant,
        widget: str,
        params: Mapping[str, Any],
        *,
        page: int = 0,
        order: tuple[str, str] | None = None,
    ) -> WidgetData:
        """Widget ``widget`` of the granted resource, for the grant's principal."""
        dashboard = self.dashboard(grant.resource)
        target = next(
            (w for w in granted_widgets(dashboard, grant.resource) if w.name == widget), None
        )
        if target is None:
            raise AccessDenied("this widget is not part of this embed")
        _, _, timezone = self.display(grant)
        values = resolve_params(
            dashboard,
            params,
            locked=grant.locked,
            editable=grant.editable,
            now=self._now(),
            timezone=timezone,
        )
        model = self._model()
        if unlimited(dashboard, [target], grant.locked, grant.editable, model):
            raise AccessDenied("this widget is not part of this embed")
        query = replace(apply_params(target, dashboard, values, model), timezone=timezone)
        # A KPI's previous period would read dates outside a locked or limited range.
        fenced = any(
            isinstance(f, DateRangeFilter)
            and (f.name in grant.locked or f.name in grant.editable)
            and applies(f, target, model)
            for f in dashboard.filters
        )
        principal = grant.principal()
        read: dict[str, int] = {}

        def run(q: Query) -> QueryResult:
            result = self._run(q, principal)
            for part in (result, result.previous, *result.comparisons):
                if part is not None:
                    read.update(part.data_versions)
            return result

        data = build_widget_data(
            target, query, run, model, page=page, order=order, compare=not fenced
        )
        return replace(data, versions=read)

    def filter_values(self, grant: Grant, name: str, search: str = "") -> dict[str, Any]:
        """The choices of select filter ``name``, read under the grant's scope."""
        dashboard = self.dashboard(grant.resource)
        flt = dashboard.filter(name)
        if not isinstance(flt, SelectFilter):
            raise QueryError(f"'{name}' is not a select filter of this dashboard")
        if not isinstance(search, str) or len(search) > 200:
            raise QueryError("q is a search text of at most 200 characters")
        _, _, timezone = self.display(grant)
        values = resolve_params(
            dashboard,
            {},
            locked=grant.locked,
            editable=grant.editable,
            now=self._now(),
            timezone=timezone,
        )
        filters: list[Filter] = []
        if search:
            filters.append(Filter(flt.dimension, "contains", (search,)))
        # The choices obey every lock and limit of the embed, this filter's and the others'.
        fences = [
            f
            for f in dashboard.filters
            if (f.name in grant.locked or f.name in grant.editable)
            and not isinstance(f, GrainFilter)
        ]
        probe = Widget(
            "choices",
            "table",
            Query(dimensions=(flt.dimension,), filters=tuple(filters)),
        )
        model = self._model()
        fenced = replace(dashboard, filters=tuple(fences))
        base = apply_params(probe, fenced, values, model)
        query = replace(
            base, order=((flt.dimension, "asc"),), limit=MAX_CHOICES + 1, timezone=timezone
        )
        result = self._run(query, grant.principal())
        found = [v for v in result.table.column(flt.dimension).to_pylist() if v is not None]
        return {"values": found[:MAX_CHOICES], "truncated": len(found) > MAX_CHOICES}

    def image(
        self, grant: Grant, widget: str, params: Mapping[str, Any], fmt: str, *, dark: bool = False
    ) -> bytes:
        """Widget ``widget`` drawn as SVG or PNG, under the grant's scope."""
        from embedkit.embed import images

        data = self.widget_data(grant, widget, params)
        _, currency, _ = self.display(grant)
        config = self.theme_of(grant).vega_config(dark=dark)
        if data.spec is not None:
            return images.render_image(data.spec, data.rows, config=config, fmt=fmt)  # type: ignore[arg-type]
        if data.kpi is None:
            raise QueryError(f"widget '{widget}' is a table: it has no image; export it instead")
        value, delta = data.kpi["value"], data.kpi["delta"]
        shown = "-" if value is None else _plain_number(value, data.kpi["format"], currency)
        change = "" if delta is None else f"{delta:+.1%} vs previous period"
        svg = images.kpi_svg(data.title, shown, change)
        if fmt == "svg":
            return svg
        import vl_convert

        return bytes(vl_convert.svg_to_png(svg.decode()))


def _plain_number(value: float, fmt: str | None, currency: str) -> str:
    """A number for a server-drawn KPI (the browser formats by locale instead)."""
    if fmt == "percent":
        return f"{value:.1%}"
    if fmt == "currency":
        return f"{value:,.2f} {currency}"
    if fmt == "integer" or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def grant_for(
    resource: str,
    principal: Principal,
    *,
    locked: Mapping[str, Any] | None = None,
    editable: Mapping[str, Any] | None = None,
    now: float,
) -> Grant:
    """A grant made in-process (no token) for host-side calls such as emailed images."""
    return Grant(
        resource=resource,
        tenant=principal.tenant,
        claims=dict(principal.claims),
        locked=dict(locked or {}),
        editable=dict(editable or {}),
        theme=None,
        locale=None,
        timezone=None,
        issued_at=now,
        expires_at=now + 60,
        jti="in-process",
    )
