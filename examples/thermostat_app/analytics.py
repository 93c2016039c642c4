"""Everything embedkit: the kit, the model's data files and the two dashboards.

The host app (``app.py``) calls :func:`write_history`, :func:`create_kit` and
:func:`dashboard_for`; the live feed (``feed.py``) streams into the same kit.

- The *model* (datasets, measures, the rooms row rule, contracts, the SLO) lives in
  ``model.yml`` next to this file.
- The *dashboards* are defined below in Python: each widget is a query of the model
  plus how to draw it. Nothing here names a household: the embed URL the app signs
  per page view scopes every number to one.
- Live: embeds update by themselves when rows of their household arrive
  (``ek.EmbedSettings(live=True)``, the default), so the widgets below move as the
  simulator's readings stream in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import altair as alt
import polars as pl

import embedkit as ek

from .benchmark import DAILY_SCHEMA, PEER_SCHEMA
from .fleet import Household

HERE = Path(__file__).resolve().parent
MODEL = HERE / "model.yml"

#: The app's brand colour: the host page's CSS uses it, and so do the embeds.
BRAND = "#c2410c"
THEME = ek.Theme(
    mode="light",
    primary=BRAND,
    palette=("#c2410c", "#0e7490", "#7c3aed", "#65a30d", "#db2777", "#ca8a04", "#475569"),
    font="Inter, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    radius=12,
)

# Windows of the widgets. "last N minutes" is the N whole minutes before the current
# one, so these charts gain a point every minute while readings arrive every few seconds.
LAST_6_HOURS = "last 360 minutes"
LAST_24_HOURS = "last 1440 minutes"


def priced(readings: pl.DataFrame, households: Sequence[Household]) -> pl.DataFrame:
    """Readings as the devices send them, with the household's price per kWh stamped on.

    The price is the one in force when the energy was used: stamping it on each row
    keeps last month's cost right after a price change.
    """
    prices = pl.DataFrame(
        {
            "household_id": [h.household_id for h in households],
            "price_kwh": [h.price_kwh for h in households],
        }
    )
    return readings.join(prices, on="household_id", how="left")


def write_history(data_dir: Path, readings: pl.DataFrame) -> None:
    """The files model.yml reads: the simulated history of readings, and the two
    benchmark datasets, empty until the benchmark job fills them."""
    data_dir.mkdir(parents=True, exist_ok=True)
    readings.write_parquet(data_dir / "readings.parquet")
    pl.DataFrame(schema=PEER_SCHEMA).write_parquet(data_dir / "peer_days.parquet")
    pl.DataFrame(schema=DAILY_SCHEMA).write_parquet(data_dir / "daily_energy.parquet")


def create_kit(
    data_dir: Path,
    *,
    secret: str,
    host_origins: Sequence[str],
    clock: Callable[[], datetime] | None = None,
    embed_ttl: float = 600,
    leeway: float = 30,
) -> ek.EmbedKit:
    """The one EmbedKit of the app: the model loaded from ``data_dir``, the
    dashboards checked (a typo stops the app at start-up, every problem listed).

    Args:
        data_dir: where :func:`write_history` wrote the files.
        secret: the key that signs embed URLs (at least 32 random bytes).
        host_origins: origins of the pages allowed to frame the embeds.
        clock: "now" for the kit (tests pin it); default the real time.
        embed_ttl / leeway: seconds an embed URL lives, and the clock difference
            between servers its checks forgive.
    """
    kit = ek.EmbedKit(
        secret=secret,
        clock=clock,
        embed=ek.EmbedSettings(
            base_url="/analytics",  # where app.py mounts kit.asgi()
            host_origins=tuple(host_origins),
            theme=THEME,
            currency="EUR",  # each household's embed URL says its own currency
            token_ttl=embed_ttl,
            token_leeway=leeway,
            # The defaults, spelled out: embeds follow appends as they land (an SSE
            # stream per page), or poll every 5 s behind a proxy that buffers.
            live=True,
            live_poll=5.0,
        ),
    )
    kit.register_yaml(MODEL, data_dir=data_dir)
    kit.add_dashboard(home_dashboard(), guest_dashboard())
    return kit


def dashboard_for(role: str) -> str:
    """The dashboard a viewer with ``role`` gets. The column rules in model.yml are what
    protect money and household totals: a guest handed the owner's dashboard would get
    those widgets refused, never the numbers."""
    return "home" if role == "owner" else "guest"


# -- dashboards ----------------------------------------------------------------------


def temperature_chart() -> alt.LayerChart:
    """Indoor temperature per room as solid lines; outdoor and setpoint (the same for
    every room) as one dashed line each. Time buckets arrive as the household's local
    wall-clock time written as UTC, so the chart reads them in UTC."""
    x = alt.X(
        "ts:T",
        title=None,
        scale=alt.Scale(type="utc"),
        axis=alt.Axis(format="%H:%M", labelOverlap=True, grid=False),
    )
    y = alt.Scale(zero=False, nice=True)
    when = alt.Tooltip("utchoursminutes(ts):T", title="Time", format="%H:%M")
    legend = alt.Legend(title=None, orient="bottom", columns=4)
    indoor = (
        alt.Chart()
        .mark_line(strokeWidth=2, interpolate="monotone")
        .encode(
            x=x,
            y=alt.Y("indoor:Q", title="°C", scale=y),
            color=alt.Color("room:N", legend=legend),
            tooltip=[
                when,
                alt.Tooltip("room:N", title="Room"),
                alt.Tooltip("indoor:Q", title="Indoor °C", format=".1f"),
            ],
        )
    )
    around = (
        alt.Chart()
        .transform_aggregate(outdoor="mean(outdoor)", setpoint="mean(setpoint)", groupby=["ts"])
        .transform_fold(["outdoor", "setpoint"], as_=["series", "celsius"])
        .transform_calculate(series="datum.series === 'outdoor' ? 'Outdoor' : 'Setpoint'")
        .mark_line(strokeWidth=1.5, strokeDash=[5, 3], interpolate="step-after")
        .encode(
            x=x,
            y=alt.Y("celsius:Q", scale=y),
            color=alt.Color("series:N", legend=legend),
            tooltip=[when, alt.Tooltip("series:N"), alt.Tooltip("celsius:Q", format=".1f")],
        )
    )
    return alt.LayerChart(layer=[indoor, around])


def _temperatures(span: int) -> ek.Widget:
    return ek.Widget(
        "temperatures",
        "altair",
        ek.Query(
            measures=("readings.indoor", "readings.outdoor", "readings.setpoint"),
            dimensions=("readings.room",),
            time=(ek.Time("readings.ts", grain="minute", date_range=LAST_6_HOURS),),
        ),
        title="Indoor by room, outdoor and setpoint (last 6 hours)",
        chart=temperature_chart(),
        span=span,
    )


def _energy_24h() -> ek.Widget:
    # "Today vs yesterday" fairly: the last 24 hours against the 24 hours before (today
    # so far against all of yesterday would always look like a drop in the morning).
    return ek.Widget(
        "energy_24h",
        "kpi",
        ek.Query(
            measures=("readings.energy",),
            time=(ek.Time("readings.ts", date_range=LAST_24_HOURS),),
        ),
        title="Energy, last 24 hours",
        sparkline="hour",
    )


def _energy_by_room() -> ek.Widget:
    return ek.Widget(
        "energy_by_room",
        "bar",
        ek.Query(
            measures=("readings.energy",),
            dimensions=("readings.room",),
            time=(ek.Time("readings.ts", date_range="last 7 days"),),
        ),
        title="Energy by room, last 7 days",
        horizontal=True,
    )


def home_dashboard() -> ek.Dashboard:
    """What an owner sees: live temperatures, energy, cost, the benchmark, patterns."""
    return ek.Dashboard(
        "home",
        title="Live readings, energy and cost",
        columns=3,
        widgets=(
            _energy_24h(),
            ek.Widget(
                "cost_month",
                "kpi",
                ek.Query(
                    measures=("readings.cost",),
                    # A filter, not a range on the time entry: a month so far has no fair
                    # "previous period", so this KPI shows no comparison.
                    time=(ek.Time("readings.ts"),),
                    filters=(ek.Filter("readings.ts", "inDateRange", ("this month",)),),
                ),
                title="Cost this month",
            ),
            ek.Widget(
                "hvac_24h",
                "kpi",
                ek.Query(
                    measures=("readings.hvac_share",),
                    time=(ek.Time("readings.ts", date_range=LAST_24_HOURS),),
                ),
                title="Heating or cooling on, last 24 hours",
                sparkline="hour",
            ),
            _temperatures(span=3),
            ek.Widget(
                "vs_similar_homes",
                "bar",
                ek.Query(
                    measures=("daily_energy.energy", "daily_energy.peer_energy"),
                    time=(ek.Time("daily_energy.day", grain="day", date_range="last 14 days"),),
                ),
                title="Your energy per day vs similar homes (kWh)",
                stack=False,
                span=2,
            ),
            _energy_by_room(),
            ek.Widget(
                "energy_by_hour",
                "heatmap",
                ek.Query(
                    measures=("readings.energy",),
                    time=(
                        ek.Time("readings.ts", grain="hour_of_day", date_range="last 14 days"),
                        ek.Time("readings.ts", grain="day_of_week"),
                    ),
                ),
                title="When your home uses energy (last 14 days, kWh)",
                span=3,
            ),
        ),
    )


def guest_dashboard() -> ek.Dashboard:
    """What a guest sees: the rooms of their ``rooms`` claim, no money, no totals."""
    return ek.Dashboard(
        "guest",
        title="Live readings of the rooms shared with you",
        columns=2,
        widgets=(
            _temperatures(span=2),
            _energy_24h(),
            _energy_by_room(),
        ),
    )
