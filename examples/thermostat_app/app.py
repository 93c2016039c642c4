"""Calora: a smart-thermostat company's web app with live embedkit dashboards per household.

Run it from the repository root (``make thermostat``)::

    python -m examples.thermostat_app.app --port 8001

What to read here, in order:

1. :func:`create_app` simulates two weeks of history, builds the one
   :class:`~embedkit.EmbedKit` (``analytics.py``), publishes the similar-homes
   benchmark (``benchmark.py``) and mounts embedkit's routes at ``/analytics``.
2. :func:`lifespan` starts the live feed (``feed.py``: simulated readings streamed
   into the kit every few seconds) and the benchmark job, and stops them.
3. :meth:`HomeApp.home` signs a fresh embed URL for the signed-in person on every page
   view: the household (tenant), role and rooms come from the app's own session,
   never from the request. For owners it also renders the schedule advice
   (``advice.py``), computed from the household's own history with ``kit.query``.
4. :meth:`HomeApp.embed_url` is what the page's ``tokenProvider`` calls before the
   embed's session runs out; it checks the app session again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

import embedkit as ek

from .accounts import DEMO_PASSWORD, STAFF, Staff, User, demo_users
from .advice import advice_for
from .analytics import BRAND, create_kit, dashboard_for, priced, write_history
from .benchmark import MIN_HOMES, Benchmark
from .feed import run_feed
from .fleet import Household, make_fleet
from .simulator import Simulator, backfill

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / "data"
log = logging.getLogger("thermostat_app")


async def read_form(request: Request, limit: int = 16_384) -> dict[str, str]:
    """The fields of a small url-encoded form (no python-multipart needed)."""
    body = await request.body()
    if len(body) > limit:
        return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


@dataclass
class Live:
    """What runs next to the pages: the device feed and the benchmark job."""

    kit: ek.EmbedKit
    simulator: Simulator
    households: list[Household]
    benchmark: Benchmark
    tick: float | None  # seconds between readings; None: no live feed
    benchmark_every: float  # seconds between benchmark runs
    clock: Callable[[], datetime]

    async def publish_benchmark(self) -> None:
        """Publish ended days every ``benchmark_every`` seconds, on the clock alone."""
        while True:
            await asyncio.sleep(self.benchmark_every)
            try:
                await asyncio.to_thread(self.benchmark.refresh, self.clock())
            except Exception:  # a scheduled job logs and keeps its schedule
                log.exception("benchmark: publishing failed; retrying next time")


def _log_stop(task: asyncio.Task[None]) -> None:
    """Say so when a background task stops on an error (else it would go unnoticed)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped", task.get_name(), exc_info=task.exception())


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Start the live feed and the benchmark job with the server; stop them with it."""
    live: Live = app.state.live
    tasks = [asyncio.create_task(live.publish_benchmark(), name="benchmark job")]
    if live.tick is not None:
        feed = run_feed(live.kit, live.simulator, live.households, tick=live.tick, clock=live.clock)
        tasks.append(asyncio.create_task(feed, name="live feed"))
    for task in tasks:
        task.add_done_callback(_log_stop)
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class HomeApp:
    """The app's request handlers, around one EmbedKit."""

    def __init__(
        self,
        kit: ek.EmbedKit,
        users: dict[str, User],
        benchmark: Benchmark,
        templates: Jinja2Templates,
        clock: Callable[[], datetime],
    ) -> None:
        self.kit = kit
        self.users = users
        self.benchmark = benchmark
        self.templates = templates
        self.clock = clock

    # -- sessions ----------------------------------------------------------------------

    def current_user(self, request: Request) -> User | None:
        """The signed-in household member, from the signed session cookie."""
        return self.users.get(request.session.get("email", ""))

    def current_staff(self, request: Request) -> Staff | None:
        return STAFF.get(request.session.get("staff", ""))

    def csrf_ok(self, request: Request, form: dict[str, str]) -> bool:
        expected = request.session.get("csrf", "")
        return bool(expected) and hmac.compare_digest(
            expected.encode(), form.get("csrf", "").encode()
        )

    def render(self, request: Request, template: str, **context: Any) -> Response:
        """A page; pages hold signed embed URLs, so they are never cached."""
        context.setdefault("user", self.current_user(request))
        context["csrf"] = request.session.get("csrf", "")
        context["brand"] = BRAND
        response = self.templates.TemplateResponse(request, template, context)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    # -- sign-in -----------------------------------------------------------------------

    def root(self, request: Request) -> Response:
        if self.current_staff(request):
            return RedirectResponse("/operations", status_code=303)
        return RedirectResponse("/home" if self.current_user(request) else "/login", 303)

    async def login(self, request: Request) -> Response:
        """``GET /login`` shows the form; ``POST /login`` signs in."""
        error = None
        if request.method == "POST":
            form = await read_form(request)
            email = form.get("email", "").strip().lower()
            user, staff = self.users.get(email), STAFF.get(email)
            password = form.get("password", "").encode()
            if (user or staff) and hmac.compare_digest(password, DEMO_PASSWORD.encode()):
                request.session.clear()
                request.session["email" if user else "staff"] = email
                request.session["csrf"] = secrets.token_urlsafe(32)
                return RedirectResponse("/home" if user else "/operations", status_code=303)
            error = "Unknown email or wrong password."
        return self.render(
            request,
            "login.html",
            user=None,
            error=error,
            accounts=list(self.users.values()),
            staff=list(STAFF.values()),
            password=DEMO_PASSWORD,
        )

    async def logout(self, request: Request) -> Response:
        form = await read_form(request)
        if self.csrf_ok(request, form):
            request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # -- the household page ------------------------------------------------------------

    def sign_embed(self, user: User) -> str:
        """A fresh embed URL of the user's dashboard (10 minutes by default).

        The tenant is the user's household, the claims its role and rooms, the time
        zone and currency the household's: all from the app's own records. embedkit
        scopes every query of the embed to that household and those rooms.
        """
        household = user.household
        return self.kit.embed_url(
            dashboard_for(user.role),
            tenant=household.household_id,
            claims=user.claims,
            timezone=household.zone,
            currency=household.currency,
        )

    def home(self, request: Request) -> Response:
        """``/home``: the household's live dashboard, and the schedule advice for owners."""
        user = self.current_user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        household = user.household
        local = self.clock().astimezone(ZoneInfo(household.zone))
        context: dict[str, Any] = {
            "household": household,
            "local_time": local.strftime("%a %H:%M"),
            "embed_url": self.sign_embed(user),
            "token_url": "/embed-url",
            "min_homes": MIN_HOMES,
        }
        if user.role == "owner":
            context["advice"] = advice_for(self.kit, household)
            context["has_peers"] = self.benchmark.has_peers(household)
        return self.render(request, "home.html", **context)

    def embed_url(self, request: Request) -> Response:
        """``GET /embed-url``: a fresh embed URL for the loader's tokenProvider.

        It checks the app session again, so signing out stops the refreshes; the
        household comes from the session, whatever the request says.
        """
        user = self.current_user(request)
        if user is None:
            return PlainTextResponse("signed out", status_code=401)
        return PlainTextResponse(self.sign_embed(user), headers={"Cache-Control": "no-store"})

    # -- operations --------------------------------------------------------------------

    def operations(self, request: Request) -> Response:
        """``/operations``: links to embedkit's status and catalog pages, for staff."""
        staff = self.current_staff(request)
        if staff is None:
            return RedirectResponse("/login", status_code=303)
        return self.render(request, "operations.html", user=None, staff=staff)

    def open_operations_page(self, request: Request) -> Response:
        """Off to embedkit's status or catalog page with a 15-minute operator token.
        Only staff get one: those pages count every household's rows."""
        staff = self.current_staff(request)
        if staff is None:
            return RedirectResponse("/login", status_code=303)
        page: Literal["status", "catalog"] = (
            "catalog" if request.path_params["page"] == "catalog" else "status"
        )
        url = self.kit.operator_url(page, subject=staff.email, ttl=900)
        return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def create_app(
    data_dir: str | Path = DEFAULT_DATA,
    secret: str | None = None,
    *,
    host_origins: Sequence[str] = ("http://127.0.0.1:8001",),
    households: Sequence[Household] | None = None,
    seed: int = 7,
    history_days: float = 16,
    tick: float | None = 5.0,
    benchmark_every: float = 300,
    clock: Callable[[], datetime] | None = None,
    embed_ttl: float = 600,
    leeway: float = 30,
) -> Starlette:
    """The app: its pages, its session, embedkit's routes at ``/analytics``, and the
    live feed and benchmark job that run with the server (see :func:`lifespan`).

    Args:
        data_dir: where the simulated history is written (Parquet) for model.yml.
        secret: the embed signing key; default ``$EMBEDKIT_SECRET``, else a fresh one.
        host_origins: the origins the app is served from, allowed to frame the embeds.
        households: the fleet (default: :func:`~.fleet.make_fleet` of ``seed``).
        seed: the simulator's seed: the same seed, the same homes and weather.
        history_days: days of history simulated at start-up (every 5 minutes).
        tick: seconds between live readings (None: no live feed, the data stays put).
        benchmark_every: seconds between runs of the benchmark job.
        clock: "now" (tests pin it); default the real time.
        embed_ttl / leeway: how long embed URLs live, and the clock skew forgiven.
    """
    data_dir = Path(data_dir)
    now = clock or (lambda: datetime.now(UTC))
    secret = secret or os.environ.get("EMBEDKIT_SECRET") or ek.generate_secret()
    fleet = list(households) if households is not None else make_fleet(seed)

    # The history the charts and the advice start from: simulated, then written as
    # the Parquet files model.yml names. From here on, readings arrive live.
    started = now()
    simulator, history = backfill(fleet, seed=seed, end=started, days=history_days)
    write_history(data_dir, priced(history, fleet))
    kit = create_kit(
        data_dir,
        secret=secret,
        host_origins=host_origins,
        clock=clock,
        embed_ttl=embed_ttl,
        leeway=leeway,
    )
    since = (started - timedelta(days=history_days + 1)).date()
    benchmark = Benchmark(kit, fleet, since=since)
    benchmark.refresh(started)

    handlers = HomeApp(
        kit,
        demo_users(fleet),
        benchmark,
        Jinja2Templates(directory=HERE / "templates"),
        now,
    )
    # The session cookie gets its own key, derived from the embed secret.
    session_key = hmac.new(secret.encode(), b"thermostat-app session", hashlib.sha256).hexdigest()
    app = Starlette(
        routes=[
            Route("/", handlers.root),
            Route("/login", handlers.login, methods=["GET", "POST"]),
            Route("/logout", handlers.logout, methods=["POST"]),
            Route("/home", handlers.home),
            Route("/embed-url", handlers.embed_url),
            Route("/operations", handlers.operations),
            Route("/operations/{page}", handlers.open_operations_page),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
            # embedkit's routes: the embed page, its session, data and live stream,
            # loader.js, and the operator pages.
            Mount("/analytics", app=kit.asgi()),
        ],
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=session_key,
                session_cookie="calora_session",
                max_age=8 * 3600,
                same_site="lax",
                https_only=False,  # the demo runs on plain http; True in production
            )
        ],
        lifespan=lifespan,
    )
    app.state.kit = kit
    app.state.benchmark = benchmark
    app.state.history = history
    app.state.live = Live(kit, simulator, fleet, benchmark, tick, benchmark_every, now)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the app on 127.0.0.1, with the simulator streaming, and print the logins."""
    parser = argparse.ArgumentParser(description="Calora: embedkit's live thermostat demo")
    parser.add_argument("--port", type=int, default=8001, help="port (default 8001)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data folder")
    parser.add_argument("--tick", type=float, default=5.0, help="seconds between readings")
    parser.add_argument("--days", type=float, default=16, help="days of simulated history")
    parser.add_argument("--seed", type=int, default=7, help="the simulator's seed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    origin = f"http://127.0.0.1:{args.port}"
    print(f"\n  Simulating {args.days:g} days of history for the fleet...", flush=True)
    app = create_app(
        args.data, host_origins=[origin], seed=args.seed, history_days=args.days, tick=args.tick
    )
    print(f"\n  Calora: {origin}\n")
    print(f"  Sign in with any of these (password: {DEMO_PASSWORD}):")
    for user in demo_users(app.state.live.households).values():
        where = f"{user.household.name} home, {user.household.zone}"
        rooms = "" if user.role == "owner" else f" (rooms: {', '.join(user.rooms)})"
        print(f"    {user.email:<12} {user.role:<6} {where}{rooms}")
    for staff in STAFF.values():
        print(f"    {staff.email:<12} {'staff':<6} operations: data status, catalog")
    print(f"\n  New readings every {args.tick:g} s; the charts follow them.\n")
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
