"""Schedule advice: what a deeper setback would have saved, from the home's own history.

The model is the textbook one for heating (and, mirrored, for cooling): a home loses
heat in proportion to how much warmer it is kept than outdoors, so per hour

    energy (kWh)  ~  a(time of day)  +  b * degree-hours  +  c * share of the hour at home

with degree-hours = max(0, setpoint - outdoor) (max(0, outdoor - setpoint) when
cooling). ``b`` is what one degree held for one hour costs this home: it folds in
the floor area, the insulation and the heat pump. ``c`` is the heat people and
appliances add (negative when heating: they help), ``a`` a baseline for each time of
day. They are fitted by least squares on the household's own history only, read
through ``kit.query`` as the household, in 3-hour blocks (see :func:`fit`).

The advice then replays the same hours with a different program (by default 3 °C
lower from 23:00 to 06:00 and whenever nobody is home) and sums ``b`` times the
degree-hours avoided. Limits, said on the page too: the model is a straight line
through noisy hours, and it does not see the home's thermal mass (after a setback the
home needs extra energy to warm up again), so real savings are usually somewhat
smaller than this estimate; the range given is the statistical one (two standard
errors of ``b``), not a guarantee.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

import embedkit as ek

from .accounts import owner_principal
from .fleet import Household, Season

#: Currency symbols for the sentences (the embeds format money themselves).
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "CAD": "C$", "AUD": "A$", "SEK": "kr "}
MIN_HOURS = 48
BLOCK_HOURS = 3


@dataclass(frozen=True)
class Proposal:
    """A different program: ``setback_c`` degrees further from comfort at night
    (local hours ``night[0]`` to ``night[1]``) and, if ``when_away``, while nobody is home."""

    setback_c: float = 3.0
    night: tuple[int, int] = (23, 6)
    when_away: bool = True


@dataclass(frozen=True)
class Fit:
    """``energy ~ baseline(time of day) + kwh_per_degree_hour * degree-hours +
    home_kwh * home share``, per hour (``home_kwh`` is 0 for a home never empty)."""

    kwh_per_degree_hour: float
    home_kwh: float
    slope_se: float  # standard error of kwh_per_degree_hour
    r2: float
    hours: int
    days: int


@dataclass(frozen=True)
class Advice:
    """What the proposal would have saved over the history, and how sure that is."""

    season: Season
    proposal: Proposal
    fit: Fit
    used_kwh: float
    saved_kwh: float
    saved_low_kwh: float
    saved_high_kwh: float
    price_kwh: float
    currency: str

    @property
    def saved_money(self) -> float:
        return self.saved_kwh * self.price_kwh

    def money(self, amount: float) -> str:
        symbol = SYMBOLS.get(self.currency, self.currency + " ")
        return f"{symbol}{amount:,.2f}"

    def sentences(self) -> list[str]:
        """The advice in plain words, uncertainty included."""
        b, days = self.fit.kwh_per_degree_hour, self.fit.days
        warmer = "warmer" if self.season == "heating" else "cooler"
        back = "warm back up" if self.season == "heating" else "cool back down"
        lower = "Lowering" if self.season == "heating" else "Raising"
        hours = f"{self.proposal.night[0]:02d}:00 to {self.proposal.night[1]:02d}:00"
        away = " and whenever nobody is home" if self.proposal.when_away else ""
        share = self.saved_kwh / self.used_kwh if self.used_kwh > 0 else 0.0
        text = [
            f"Your home uses about {b * 24:.1f} kWh per degree-day: every degree you keep it "
            f"{warmer} than outside, for a whole day, costs about that much "
            f"({b:.3f} kWh per degree-hour).",
        ]
        if self.saved_kwh < 1:
            text.append(
                f"{lower} the setpoint by {self.proposal.setback_c:g} °C from {hours}{away} "
                f"would have saved less than 1 kWh over the last {days} days: there is "
                "little to gain at those hours with your current program."
            )
            return text
        text.append(
            f"{lower} the setpoint by {self.proposal.setback_c:g} °C from {hours}{away} "
            f"would have saved about {self.saved_kwh:.0f} kWh "
            f"({self.money(self.saved_money)}) over the last {days} days, "
            f"{share:.0%} of the {self.used_kwh:.0f} kWh your home used."
        )
        text.append(
            f"How sure is this? The estimate fits {days} days ({self.fit.hours} hours) of "
            f"your readings and explains {self.fit.r2:.0%} of the ups and downs of your "
            "energy use (in 3-hour blocks); the saving most likely lies between "
            f"{max(0.0, self.saved_low_kwh):.0f} and {self.saved_high_kwh:.0f} kWh. The "
            "model is a straight line: it does not know that your home needs extra "
            f"energy to {back} after a setback, so real savings are usually a "
            "little smaller."
        )
        return text


def history(kit: ek.EmbedKit, household: Household, *, days: int = 14) -> pl.DataFrame:
    """The household's hours of the last ``days`` whole local days: ``hour`` (local
    wall-clock time), ``energy_kwh``, ``setpoint_c``, ``outdoor_c``, ``home_share``."""
    result = kit.query(
        ek.Query(
            measures=(
                "readings.energy",
                "readings.setpoint",
                "readings.outdoor",
                "readings.home_share",
            ),
            time=(ek.Time("readings.ts", grain="hour", date_range=f"last {days} days"),),
            timezone=household.zone,
        ),
        principal=owner_principal(household),
    )
    return result.to_polars().rename(
        {
            "readings.ts.hour": "hour",
            "readings.energy": "energy_kwh",
            "readings.setpoint": "setpoint_c",
            "readings.outdoor": "outdoor_c",
            "readings.home_share": "home_share",
        }
    )


def degree_hours(setpoint: pl.Expr, outdoor: pl.Expr, season: Season) -> pl.Expr:
    """``max(0, setpoint - outdoor)`` for heating, ``max(0, outdoor - setpoint)`` for cooling."""
    gap = setpoint - outdoor if season == "heating" else outdoor - setpoint
    return pl.max_horizontal(gap, pl.lit(0.0))


def fit(hours: pl.DataFrame, season: Season, *, block: int = BLOCK_HOURS) -> Fit | None:
    """Least squares of energy on degree-hours, over blocks of ``block`` whole hours,
    with a baseline per time of day and the share of time someone is home; None when
    there is too little to fit.

    - Blocks: the heat pump runs in bursts of a few minutes, so one hour's energy is
      mostly "did a burst fall in it"; three hours average that out, and the straight
      line holds for a block's mean as for an hour.
    - A baseline per time of day (one per block of the day): the daily routine (the
      burst that warms the home after a night setback, the quiet hours after it) is
      the same every day, so it goes into the baseline, and ``b`` is learnt from what
      differs between days at the same time: the weather.
    - Time at home: people and appliances heat the home too; without it, a home empty
      on mild weekday afternoons would look less sensitive to the weather than it is.
    """
    data = hours.drop_nulls(["energy_kwh", "setpoint_c", "outdoor_c", "home_share"])
    blocks = (
        data.group_by(pl.col("hour").dt.truncate(f"{block}h").alias("block"))
        .agg(
            y=pl.col("energy_kwh").mean(),
            x=degree_hours(pl.col("setpoint_c"), pl.col("outdoor_c"), season).mean(),
            home=pl.col("home_share").mean(),
            hours=pl.len(),
        )
        .filter(pl.col("hours") == block)
        .with_columns(slot=pl.col("block").dt.hour())
    )
    if blocks["hours"].sum() < MIN_HOURS:
        return None
    y = blocks["y"].to_list()
    slots = blocks["slot"].to_list()
    columns = [blocks["x"].to_list()]
    columns += [[float(s == slot) for s in slots] for slot in sorted(set(slots))]
    spread = blocks.select(pl.col("home").std()).item()
    if (spread or 0.0) > 1e-6:  # a home that is never empty: nothing to separate
        columns.append(blocks["home"].to_list())
    solved = _least_squares(columns, y)
    mean = sum(y) / len(y)
    total = sum((v - mean) ** 2 for v in y)
    dof = len(y) - len(columns)
    if solved is None or total <= 0 or dof <= 0:
        return None
    beta, residual, inverse = solved
    return Fit(
        kwh_per_degree_hour=beta[0],
        home_kwh=beta[-1] if len(columns) > 1 + len(set(slots)) else 0.0,
        slope_se=math.sqrt(residual / dof * inverse[0][0]),
        r2=1 - residual / total,
        hours=int(blocks["hours"].sum()),
        days=data["hour"].dt.date().n_unique(),
    )


def _least_squares(
    columns: list[list[float]], y: list[float]
) -> tuple[list[float], float, list[list[float]]] | None:
    """The coefficients minimising the squared error of ``y`` on ``columns``, the
    residual sum of squares, and the inverse of the columns' Gram matrix (for standard
    errors); None when the columns are collinear. A handful of columns, so plain
    Gauss-Jordan on the normal equations is enough (numpy is not a dependency)."""
    k = len(columns)
    gram = [[sum(a * b for a, b in zip(ci, cj, strict=True)) for cj in columns] for ci in columns]
    # Invert XᵀX by Gauss-Jordan with partial pivoting.
    rows = [gram[i] + [float(i == j) for j in range(k)] for i in range(k)]
    for i in range(k):
        pivot = max(range(i, k), key=lambda r: abs(rows[r][i]))
        if abs(rows[pivot][i]) < 1e-12:
            return None
        rows[i], rows[pivot] = rows[pivot], rows[i]
        rows[i] = [v / rows[i][i] for v in rows[i]]
        for r in range(k):
            if r != i:
                rows[r] = [a - rows[r][i] * b for a, b in zip(rows[r], rows[i], strict=True)]
    inverse = [row[k:] for row in rows]
    xty = [sum(a * b for a, b in zip(c, y, strict=True)) for c in columns]
    beta = [sum(inverse[i][j] * xty[j] for j in range(k)) for i in range(k)]
    fitted = [sum(beta[j] * columns[j][n] for j in range(k)) for n in range(len(y))]
    residual = sum((a - b) ** 2 for a, b in zip(y, fitted, strict=True))
    return beta, residual, inverse


def proposed_setpoint(season: Season, proposal: Proposal) -> pl.Expr:
    """The setpoint of each hour under ``proposal``: the home's comfort temperature
    (its warmest setpoint when heating, its coolest when cooling) moved by the setback
    at night and while away, unless the program already went further."""
    start, end = proposal.night
    hour = pl.col("hour").dt.hour()
    night = (hour >= start) | (hour < end) if start > end else (hour >= start) & (hour < end)
    away = (pl.col("home_share") < 0.5) if proposal.when_away else pl.lit(False)
    actual = pl.col("setpoint_c")
    if season == "heating":
        moved = pl.min_horizontal(actual, actual.max() - proposal.setback_c)
    else:
        moved = pl.max_horizontal(actual, actual.min() + proposal.setback_c)
    return pl.when(night | away).then(moved).otherwise(actual)


def advise(
    hours: pl.DataFrame,
    *,
    season: Season,
    price_kwh: float,
    currency: str,
    proposal: Proposal | None = None,
) -> Advice | None:
    """The advice for a household's ``hours`` (see :func:`history`), or None when the
    history is too short or shows no link between the weather and the energy used."""
    proposal = proposal or Proposal()
    fitted = fit(hours, season)
    if fitted is None or fitted.kwh_per_degree_hour <= 0:
        return None
    data = hours.drop_nulls(["energy_kwh", "setpoint_c", "outdoor_c", "home_share"])
    avoided = data.select(
        (
            degree_hours(pl.col("setpoint_c"), pl.col("outdoor_c"), season)
            - degree_hours(proposed_setpoint(season, proposal), pl.col("outdoor_c"), season)
        ).sum()
    ).item()
    b, se = fitted.kwh_per_degree_hour, fitted.slope_se
    return Advice(
        season=season,
        proposal=proposal,
        fit=fitted,
        used_kwh=float(data["energy_kwh"].sum()),
        saved_kwh=b * avoided,
        saved_low_kwh=(b - 2 * se) * avoided,
        saved_high_kwh=(b + 2 * se) * avoided,
        price_kwh=price_kwh,
        currency=currency,
    )


def advice_for(kit: ek.EmbedKit, household: Household, *, days: int = 14) -> Advice | None:
    """The advice shown on the household's page."""
    return advise(
        history(kit, household, days=days),
        season=household.season,
        price_kwh=household.price_kwh,
        currency=household.currency,
    )
