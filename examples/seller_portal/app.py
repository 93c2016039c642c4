"""Seller Portal: a marketplace seller back office that embeds embedkit dashboards.

Run it from the repository root (``make demo`` generates the data first)::

    python -m examples.seller_portal.app --port 8000

What to read here, in order:

1. :func:`create_app` builds the one :class:`~embedkit.EmbedKit` (``analytics.py``) and
   mounts its routes at ``/analytics``, next to the portal's own pages.
2. :meth:`Portal.page` signs a fresh embed URL for the signed-in seller on every page
   view: the tenant and the role claim come from the portal's own session, never from
   the request.
3. :meth:`Portal.embed_url` is what the page's ``tokenProvider`` calls before the
   embed's session runs out; it checks the portal session again.
4. :meth:`Portal.create_promotion` is the host's own feature next to the analytics: a
   form that writes to the portal's SQLite database.
5. :meth:`Portal.operations` is for the marketplace's own staff (``ops@marketly``): links
   to embedkit's status and catalog pages, opened with a short-lived operator token.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

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

from .accounts import DEMO_PASSWORD, STAFF, Promotions, Staff, User, demo_users, load_sellers
from .analytics import BRAND, create_kit, dashboard_for, product_names, slow_movers

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / "data"
DEFAULT_DB = HERE / "portal.db"

DISCOUNTS = (10, 15, 20, 25, 30, 40, 50)  # percent, as offered by the promotion form

PAGES = {
    "sales": "Sales",
    "inventory": "Inventory",
    "returns": "Returns",
}


# -- the web app ---------------------------------------------------------------------


async def read_form(request: Request, limit: int = 16_384) -> dict[str, str]:
    """The fields of a posted HTML form (``application/x-www-form-urlencoded``).

    Starlette's ``request.form()`` needs the python-multipart package; the portal's
    forms are small and url-encoded, so the standard library is enough.
    """
    body = await request.body()
    if len(body) > limit:
        return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


class Portal:
    """The portal's request handlers, around one EmbedKit."""

    def __init__(
        self,
        kit: ek.EmbedKit,
        users: dict[str, User],
        promotions: Promotions,
        templates: Jinja2Templates,
        data_as_of: str | None,
    ) -> None:
        self.kit = kit
        self.users = users
        self.promotions = promotions
        self.templates = templates
        self.data_as_of = data_as_of

    # -- sessions ----------------------------------------------------------------------

    def current_user(self, request: Request) -> User | None:
        """The signed-in seller user, from the signed session cookie."""
        return self.users.get(request.session.get("email", ""))

    def current_staff(self, request: Request) -> Staff | None:
        """The signed-in marketplace staff member, if that is who signed in."""
        return STAFF.get(request.session.get("staff", ""))

    def csrf_ok(self, request: Request, form: dict[str, str]) -> bool:
        """The form carries the session's CSRF token."""
        expected = request.session.get("csrf", "")
        return bool(expected) and hmac.compare_digest(
            expected.encode(), form.get("csrf", "").encode()
        )

    def render(self, request: Request, template: str, **context: Any) -> Response:
        """A page; pages hold signed embed URLs, so they are never cached."""
        context.setdefault("user", self.current_user(request))
        context["flash"] = request.session.pop("flash", None)
        context["csrf"] = request.session.get("csrf", "")
        context["brand"] = BRAND
        context["pages"] = PAGES
        context["data_as_of"] = self.data_as_of
        response = self.templates.TemplateResponse(request, template, context)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    # -- sign-in -----------------------------------------------------------------------

    def home(self, request: Request) -> Response:
        """``/``: the Sales page (the operations page for staff), or the sign-in page."""
        if self.current_staff(request):
            return RedirectResponse("/operations", status_code=303)
        target = "/sales" if self.current_user(request) else "/login"
        return RedirectResponse(target, status_code=303)

    async def login(self, request: Request) -> Response:
        """``GET /login`` shows the form; ``POST /login`` signs in."""
        error = None
        if request.method == "POST":
            form = await read_form(request)
            email = form.get("email", "").strip().lower()
            password = form.get("password", "")
            user, staff = self.users.get(email), STAFF.get(email)
            if (user or staff) and hmac.compare_digest(password.encode(), DEMO_PASSWORD.encode()):
                request.session.clear()
                request.session["email" if user else "staff"] = email
                request.session["csrf"] = secrets.token_urlsafe(32)
                return RedirectResponse("/sales" if user else "/operations", status_code=303)
            error = "Unknown email or wrong password."
        accounts = list(self.users.values())
        return self.render(
            request,
            "login.html",
            user=None,
            error=error,
            accounts=accounts,
            staff=list(STAFF.values()),
            password=DEMO_PASSWORD,
        )

    async def logout(self, request: Request) -> Response:
        """``POST /logout``: forget the session."""
        form = await read_form(request)
        if self.csrf_ok(request, form):
            request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # -- marketplace operations --------------------------------------------------------

    def operations(self, request: Request) -> Response:
        """``/operations``: the staff page, with links to the data status and catalog."""
        staff = self.current_staff(request)
        if staff is None:
            return RedirectResponse("/login", status_code=303)
        return self.render(request, "operations.html", user=None, staff=staff)

    def open_operations_page(self, request: Request) -> Response:
        """``/operations/status`` and ``/operations/catalog``: off to embedkit's page with
        a fresh 15-minute operator token in the URL fragment. Only staff get one: the
        pages count every seller's rows, so a seller must never hold such a token."""
        staff = self.current_staff(request)
        if staff is None:
            return RedirectResponse("/login", status_code=303)
        page = "catalog" if request.path_params["page"] == "catalog" else "status"
        url = self.kit.operator_url(page, subject=staff.email, ttl=900)
        return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})

    # -- dashboards --------------------------------------------------------------------

    def sign_embed(self, user: User, page: str) -> str:
        """A fresh embed URL of ``page``'s dashboard for ``user`` (10 minutes by default).

        The tenant is the user's seller and the claims carry the role, both from the
        portal's session. embedkit scopes every query of the embed to that seller, and
        the column rule in model.yml hides costs unless the role is "admin".
        """
        return self.kit.embed_url(
            dashboard_for(page, user.role),
            tenant=user.seller.seller_id,
            claims=user.claims,
        )

    def page(self, request: Request) -> Response:
        """``/sales``, ``/inventory``, ``/returns``: a portal page around one dashboard."""
        user = self.current_user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        page = request.url.path.strip("/")
        context: dict[str, Any] = {
            "page": page,
            "title": PAGES[page],
            "embed_url": self.sign_embed(user, page),
            "token_url": f"/embed-url/{page}",
        }
        if page == "inventory":
            context.update(self.promotion_context(user))
        return self.render(request, "dashboard.html", **context)

    def embed_url(self, request: Request) -> Response:
        """``GET /embed-url/{page}``: a fresh embed URL, for the loader's tokenProvider.

        Called by the browser shortly before the embed's session expires. It checks the
        portal session again, so signing out (or losing access) stops the refreshes.
        """
        user = self.current_user(request)
        if user is None:
            return PlainTextResponse("signed out", status_code=401)
        page = request.path_params["page"]
        if page not in PAGES:
            return PlainTextResponse("no such page", status_code=404)
        return PlainTextResponse(self.sign_embed(user, page), headers={"Cache-Control": "no-store"})

    # -- promotions: the host's own feature, next to the analytics ------------------------

    def promotion_context(self, user: User) -> dict[str, Any]:
        """What the Inventory page's promotion panel shows."""
        seller_id = user.seller.seller_id
        active = self.promotions.active(seller_id)
        names = product_names(self.kit, seller_id, [p["product_id"] for p in active])
        for promotion in active:
            promotion["product"] = names.get(promotion["product_id"], "Unknown product")
            promotion["since"] = promotion["created_at"][:10]
        on_promotion = {p["product_id"] for p in active}
        candidates = [
            p for p in slow_movers(self.kit, seller_id) if p.product_id not in on_promotion
        ]
        return {"candidates": candidates, "promotions": active, "discounts": DISCOUNTS}

    async def create_promotion(self, request: Request) -> Response:
        """``POST /promotions``: launch a promotion on one of the seller's slow movers."""
        user = self.current_user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        form = await read_form(request)
        if not self.csrf_ok(request, form):
            return PlainTextResponse("The form expired; reload the page.", status_code=403)
        try:
            product_id = int(form.get("product_id", ""))
            discount = int(form.get("discount", ""))
        except ValueError:
            product_id, discount = -1, -1
        # Trust nothing from the form: the product must be one of *this* seller's slow
        # movers, read again through embedkit with the seller's principal.
        products = {p.product_id: p for p in slow_movers(self.kit, user.seller.seller_id)}
        if product_id not in products or discount not in DISCOUNTS:
            request.session["flash"] = {"kind": "error", "text": "Pick a product and a discount."}
        else:
            self.promotions.add(user.seller.seller_id, product_id, discount)
            name = products[product_id].name
            request.session["flash"] = {
                "kind": "success",
                "text": f"Promotion launched: {discount}% off {name}.",
            }
        return RedirectResponse("/inventory#promotions", status_code=303)

    async def end_promotion(self, request: Request) -> Response:
        """``POST /promotions/{id}/end``: end a promotion."""
        user = self.current_user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        form = await read_form(request)
        if not self.csrf_ok(request, form):
            return PlainTextResponse("The form expired; reload the page.", status_code=403)
        self.promotions.end(user.seller.seller_id, int(request.path_params["id"]))
        request.session["flash"] = {"kind": "success", "text": "Promotion ended."}
        return RedirectResponse("/inventory#promotions", status_code=303)


def create_app(
    data_dir: str | Path = DEFAULT_DATA,
    db_path: str | Path = DEFAULT_DB,
    secret: str | None = None,
    *,
    host_origins: Sequence[str] = ("http://127.0.0.1:8000",),
    embed_ttl: float = 600,
    leeway: float = 30,
) -> Starlette:
    """The portal: its pages, its session, and embedkit's routes at ``/analytics``.

    Args:
        data_dir: the folder of Parquet files written by ``generate.py``.
        db_path: the portal's own SQLite database (promotions); created if missing.
        secret: the embed signing key; default ``$EMBEDKIT_SECRET``, else a fresh one
            (embed URLs and sign-ins then last until the process restarts).
        host_origins: the origins the portal is served from, allowed to frame the embeds.
        embed_ttl / leeway: how long embed URLs live, and the clock difference their
            checks forgive (seconds).
    """
    data_dir = Path(data_dir)
    secret = secret or os.environ.get("EMBEDKIT_SECRET") or ek.generate_secret()

    # One kit per process: it loads the Parquet files into DuckDB once, at start-up.
    kit = create_kit(
        data_dir, secret=secret, host_origins=host_origins, embed_ttl=embed_ttl, leeway=leeway
    )

    meta_file = data_dir / "meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    portal = Portal(
        kit,
        demo_users(load_sellers(data_dir)),
        Promotions(Path(db_path)),
        Jinja2Templates(directory=HERE / "templates"),
        data_as_of=str(meta["end"])[:10] if meta.get("end") else None,
    )
    # The session cookie gets its own key, derived from the embed secret: one secret to
    # configure, two keys that can never be swapped for each other.
    session_key = hmac.new(secret.encode(), b"seller-portal session", hashlib.sha256).hexdigest()
    return Starlette(
        routes=[
            Route("/", portal.home),
            Route("/login", portal.login, methods=["GET", "POST"]),
            Route("/logout", portal.logout, methods=["POST"]),
            Route("/sales", portal.page),
            Route("/inventory", portal.page),
            Route("/returns", portal.page),
            Route("/embed-url/{page}", portal.embed_url),
            Route("/operations", portal.operations),
            Route("/operations/{page}", portal.open_operations_page),
            Route("/promotions", portal.create_promotion, methods=["POST"]),
            Route("/promotions/{id:int}/end", portal.end_promotion, methods=["POST"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
            # embedkit's routes: the embed page, its session and data, loader.js, and the
            # operator pages (status, catalog, /metrics) that need an operator token.
            Mount("/analytics", app=kit.asgi()),
        ],
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=session_key,
                session_cookie="portal_session",
                max_age=8 * 3600,
                same_site="lax",
                https_only=False,  # the demo runs on plain http; True in production
            )
        ],
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the portal on 127.0.0.1 and print where to sign in."""
    parser = argparse.ArgumentParser(description="Seller Portal: embedkit's demo app")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="generated data folder")
    parser.add_argument("--db", type=Path, default=DEFAULT_DB, help="the portal's SQLite file")
    args = parser.parse_args(argv)
    if not (args.data / "meta.json").exists():
        raise SystemExit(
            f"no data in {args.data}: run `python examples/seller_portal/generate.py` first"
        )

    # The portal's own origin: the embeds accept messages from (and may be framed by)
    # pages of this origin only. Open the portal at this exact URL.
    origin = f"http://127.0.0.1:{args.port}"
    app = create_app(args.data, args.db, host_origins=[origin])
    users = demo_users(load_sellers(args.data))
    print(f"\n  Seller Portal: {origin}\n")
    print(f"  Sign in with any of these (password: {DEMO_PASSWORD}):")
    for user in users.values():
        print(f"    {user.email:<20} {user.role:<6} {user.seller.name}")
    for staff in STAFF.values():
        print(f"    {staff.email:<20} {'staff':<6} marketplace operations: data status, catalog")
    print()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
