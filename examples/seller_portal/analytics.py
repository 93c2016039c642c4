"""Everything embedkit: the kit, the semantic model and the three dashboards.

The host app (``app.py``) only calls :func:`create_kit`, :func:`dashboard_for` and
:func:`slow_movers`; this module is where the analytics are defined, once, at start-up.

- The *model* (datasets, measures, joins, the column rule on costs) lives in
  ``model.yml`` next to this file.
- The *dashboards* are defined below in Python: each widget is a query of the model
  (member names like ``order_items.revenue``) plus how to draw it.
- Every number is scoped to one seller by the embed URL the host signs per request,
  so nothing here mentions a seller at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import embedkit as ek

HERE = Path(__file__).resolve().parent
MODEL = HERE / "model.yml"

#: The portal's brand colour: the host page's CSS uses it, and so do the embeds.
BRAND = "#0f766e"
THEME = ek.Theme(
    mode="light",
    primary=BRAND,
    palette=("#0f766e", "#f59e0b", "#6366f1", "#e11d48", "#0891b2", "#84cc16", "#a855f7"),
    font="Inter, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    radius=12,
)

# Which dashboard each portal page embeds, per role. Admins get a Sales dashboard with
# margin widgets; the column rule in model.yml is what actually protects costs: even
# if a "user" were handed the admin dashboard, its margin widgets would be refused.
PAGES: dict[str, dict[str, str]] = {
    "sales": {"user": "sales", "admin": "sales_admin"},
    "inventory": {"user": "inventory", "admin": "inventory"},
    "returns": {"user": "returns", "admin": "returns"},
}


def create_kit(
    data_dir: Path,
    *,
    secret: str,
    host_origins: Sequence[str],
    embed_ttl: float = 600,
    leeway: float = 30,
) -> ek.EmbedKit:
    """The one EmbedKit of the app: the model loaded, the dashboards checked.

    Args:
        data_dir: the folder holding the Parquet files (``generate.py`` writes them).
        secret: the key that signs embed URLs (at least 32 random bytes).
        host_origins: origins of the pages allowed to frame the embeds.
        embed_ttl: seconds an embed URL lives (the page refreshes its session before).
        leeway: clock difference between servers that token checks forgive.
    """
    kit = ek.EmbedKit(
        secret=secret,
        embed=ek.EmbedSettings(
            base_url="/analytics",  # where app.py mounts kit.asgi()
            host_origins=tuple(host_origins),
            theme=THEME,
            currency="USD",
            token_ttl=embed_ttl,
            token_leeway=leeway,
        ),
    )
    register_model(kit, data_dir)
    # Dashboards are checked against the model here: a typo in a member name stops
    # the app at start-up with every problem listed.
    kit.add_dashboard(
        sales_dashboard("sales", margin=False),
        sales_dashboard("sales_admin", margin=True),
        inventory_dashboard(),
        returns_dashboard(),
    )
    return kit


def register_model(kit: ek.EmbedKit, data_dir: Path) -> None:
    """Register ``model.yml``, reading its Parquet files from ``data_dir``.

    ``source:`` paths in the YAML are file names; ``data_dir`` says where they are, so
    the same model serves the demo data, a test's small data set, or a ``--data`` folder.
    """
    kit.register_yaml(MODEL, data_dir=data_dir)


def dashboard_for(page: str, role: str) -> str:
    """The dashboard that ``page`` embeds for a viewer with ``role``."""
    return PAGES[page]["admin" if role == "admin" else "user"]


# -- dashboards ----------------------------------------------------------------------
#
# Shared filters: a filter limits every widget whose query can reach its dimension (the
# same dataset or one joined to it), so "Category" (products.category) works on every
# dashboard below because each dataset joins to products.

CATEGORY = ek.SelectFilter("category", "products.category", label="Category")
GRAIN = ek.GrainFilter("grain", options=("day", "week", "month"), default="day", label="Group by")


def sales_dashboard(name: str, *, margin: bool) -> ek.Dashboard:
    """Sales: KPIs with their change against the previous period, trends, top products.

    ``margin=True`` adds the widgets built on costs, for admins.
    """
    ordered = ek.Time("order_items.ordered_at")  # no grain: the dashboard's date range
    by_grain = ek.Time("order_items.ordered_at", grain="day")  # the GrainFilter switches it

    def kpi(measure: str, title: str) -> ek.Widget:
        # A KPI shows its measure over the dashboard's date range, the change against
        # the previous period of the same length, and a daily sparkline.
        return ek.Widget(
            f"kpi_{measure}",
            "kpi",
            ek.Query(measures=(f"order_items.{measure}",), time=(ordered,)),
            title=title,
        )

    widgets = [
        kpi("revenue", "Revenue"),
        kpi("orders", "Orders"),
        kpi("aov", "Average order value"),
    ]
    if margin:
        # Built on unit_cost: model.yml's column rule hides these from non-admins.
        widgets += [
            kpi("gross_margin", "Gross margin"),
            kpi("margin_pct", "Margin"),
            kpi("units", "Units sold"),
        ]
    widgets += [
        ek.Widget(
            "revenue_trend",
            "area",
            ek.Query(measures=("order_items.revenue",), time=(by_grain,)),
            title="Revenue over time",
            span=2,
        ),
        ek.Widget(
            "revenue_by_category",
            "bar",
            ek.Query(measures=("order_items.revenue",), dimensions=("products.category",)),
            title="Revenue by category",
            horizontal=True,
        ),
        ek.Widget(
            "top_products",
            "table",
            ek.Query(
                dimensions=("products.name", "products.category"),
                measures=("order_items.revenue", "order_items.units", "order_items.orders"),
            ),
            title="Top products",
            description="Completed orders in the period, by revenue",
            page_size=8,
            span=2,
        ),
    ]
    if margin:
        widgets.append(
            ek.Widget(
                "margin_by_category",
                "bar",
                ek.Query(measures=("order_items.margin_pct",), dimensions=("products.category",)),
                title="Margin by category",
                horizontal=True,
            )
        )
    widgets.append(
        ek.Widget(
            "orders_by_region",
            "bar",
            ek.Query(
                measures=("order_items.orders",),
                dimensions=("orders.region", "products.category"),
            ),
            title="Orders by region",
            x="orders.region",
            color="products.category",
            span=3 if margin else 1,
        )
    )
    return ek.Dashboard(
        name,
        columns=3,
        filters=(
            ek.DateRangeFilter("period", "order_items.ordered_at", default="last 30 days"),
            CATEGORY,
            ek.SelectFilter("region", "orders.region", label="Region"),
            GRAIN,
        ),
        widgets=tuple(widgets),
    )


def inventory_dashboard() -> ek.Dashboard:
    """Inventory: today's stock (the ``stock`` dataset), what to reorder, what does not sell."""
    product = ("products.name", "products.category")
    return ek.Dashboard(
        "inventory",
        columns=2,  # the page shows the promotion panel beside it
        filters=(CATEGORY,),
        widgets=(
            ek.Widget(
                "kpi_stock",
                "kpi",
                ek.Query(measures=("stock.stock_units",)),
                title="Units in stock",
                sparkline=None,
            ),
            ek.Widget(
                "kpi_low_stock",
                "kpi",
                ek.Query(measures=("stock.low_stock_items",)),
                title="Low-stock items",
                sparkline=None,
            ),
            ek.Widget(
                "kpi_cover",
                "kpi",
                ek.Query(measures=("stock.days_of_cover",)),
                title="Days of cover",
                sparkline=None,
            ),
            ek.Widget(
                "kpi_sell_through",
                "kpi",
                ek.Query(measures=("stock.sell_through",)),
                title="Sell-through (28 days)",
                sparkline=None,
            ),
            ek.Widget(
                "stock_history",
                "line",
                ek.Query(
                    measures=("inventory.stock_units",),
                    time=(
                        ek.Time(
                            "inventory.snapshot_date", grain="week", date_range="last 26 weeks"
                        ),
                    ),
                ),
                title="Stock on hand, weekly",
            ),
            ek.Widget(
                "cover_by_category",
                "bar",
                ek.Query(measures=("stock.days_of_cover",), dimensions=("products.category",)),
                title="Days of cover by category",
                horizontal=True,
            ),
            ek.Widget(
                "low_stock",
                "table",
                ek.Query(
                    dimensions=product,
                    measures=("stock.stock_units", "stock.reorder_point", "stock.days_of_cover"),
                    segments=("stock.low_stock",),
                    order=(("stock.days_of_cover", "asc"),),
                ),
                title="Low stock: reorder soon",
                description="Below their reorder point, the shortest cover first",
                page_size=8,
                span=2,
            ),
            ek.Widget(
                "slow_movers",
                "table",
                ek.Query(
                    dimensions=product,
                    measures=("stock.stock_units", "stock.daily_units", "stock.days_of_cover"),
                    segments=("stock.slow_movers",),
                ),
                title="Slow movers with high stock",
                description="Over 90 days of cover: candidates for a promotion",
                page_size=8,
                span=2,
            ),
        ),
    )


def returns_dashboard() -> ek.Dashboard:
    """Returns: the return rate over time, why items come back, and which ones."""
    ordered = ek.Time("item_returns.ordered_at")
    return ek.Dashboard(
        "returns",
        columns=3,
        filters=(
            ek.DateRangeFilter(
                "period", "item_returns.ordered_at", default="last 90 days", label="Ordered"
            ),
            CATEGORY,
            ek.GrainFilter(
                "grain", options=("day", "week", "month"), default="week", label="Group by"
            ),
        ),
        widgets=(
            ek.Widget(
                "kpi_rate",
                "kpi",
                ek.Query(measures=("item_returns.return_rate",), time=(ordered,)),
                title="Return rate",
                sparkline="week",
            ),
            ek.Widget(
                "kpi_units",
                "kpi",
                ek.Query(measures=("item_returns.returned_units",), time=(ordered,)),
                title="Units returned",
                sparkline="week",
            ),
            ek.Widget(
                "kpi_refunds",
                "kpi",
                ek.Query(measures=("item_returns.refunds",), time=(ordered,)),
                title="Refunds",
                sparkline="week",
            ),
            ek.Widget(
                "rate_trend",
                "line",
                ek.Query(
                    measures=("item_returns.return_rate",),
                    time=(ek.Time("item_returns.ordered_at", grain="week"),),
                ),
                title="Return rate over time",
                description="By order week; recent weeks are still open (30-day return window)",
                span=2,
            ),
            ek.Widget(
                "by_reason",
                "bar",
                ek.Query(
                    measures=("item_returns.returned_units",),
                    dimensions=("item_returns.reason",),
                    segments=("item_returns.returned",),
                ),
                title="Why items come back",
                horizontal=True,
            ),
            ek.Widget(
                "by_product",
                "table",
                ek.Query(
                    dimensions=("products.name",),
                    measures=(
                        "item_returns.returned_units",
                        "item_returns.units_sold",
                        "item_returns.return_rate",
                        "item_returns.refunds",
                    ),
                ),
                title="Returns by product",
                page_size=8,
                span=2,
            ),
            ek.Widget(
                "rate_by_category",
                "bar",
                ek.Query(
                    measures=("item_returns.return_rate",),
                    dimensions=("products.category",),
                ),
                title="Return rate by category",
                horizontal=True,
            ),
        ),
    )


# -- in-process queries for the host's own UI ---------------------------------------


@dataclass(frozen=True)
class Product:
    """A product as the promotion form shows it."""

    product_id: int
    name: str
    stock: int
    days_of_cover: float | None


def slow_movers(kit: ek.EmbedKit, seller_id: str, *, limit: int = 50) -> list[Product]:
    """The seller's slow movers, read with ``kit.query`` (no browser involved).

    The same model and the same scoping as the dashboards: the principal comes from
    the host's verified session, so this can only ever list this seller's products.
    """
    result = kit.query(
        ek.Query(
            dimensions=("products.product_id", "products.name"),
            measures=("stock.stock_units", "stock.days_of_cover"),
            segments=("stock.slow_movers",),
            order=(("stock.stock_units", "desc"),),
            limit=limit,
        ),
        principal=ek.Principal(tenant=seller_id),
    )
    return [
        Product(
            product_id=row["products.product_id"],
            name=row["products.name"],
            stock=row["stock.stock_units"],
            days_of_cover=row["stock.days_of_cover"],
        )
        for row in result.to_pylist()
    ]


def product_names(kit: ek.EmbedKit, seller_id: str, product_ids: Sequence[int]) -> dict[int, str]:
    """Names of some of the seller's products, by id."""
    if not product_ids:
        return {}
    result = kit.query(
        ek.Query(
            dimensions=("products.product_id", "products.name"),
            filters=(ek.Filter("products.product_id", "in", tuple(product_ids)),),
        ),
        principal=ek.Principal(tenant=seller_id),
    )
    return {row["products.product_id"]: row["products.name"] for row in result.to_pylist()}
