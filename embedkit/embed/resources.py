"""Widgets, dashboards and their shared filters: what an embed token can grant.

A :class:`Widget` is a query of the semantic model plus how to draw it. A
:class:`Dashboard` lays widgets out in a grid and offers shared filters
(:class:`DateRangeFilter`, :class:`SelectFilter`, :class:`GrainFilter`) whose
values the viewer may change, unless the embed token locks them.

These are definitions only; :func:`check_dashboard` checks one against the model
when it is added to the kit, so mistakes surface at start-up, not per request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from embedkit.embed.fields import field_key
from embedkit.errors import Problem, QueryError
from embedkit.query.spec import Query
from embedkit.semantic.members import GRAINS, PARTS

__all__ = [
    "CHART_KINDS",
    "FORMATS",
    "Dashboard",
    "DashboardFilter",
    "DateRangeFilter",
    "GrainFilter",
    "SelectFilter",
    "Widget",
]

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

ChartKind = Literal["line", "area", "bar", "kpi", "table", "heatmap", "altair"]
CHART_KINDS: tuple[str, ...] = ("line", "area", "bar", "kpi", "table", "heatmap", "altair")
#: How a number is shown; the browser formats it in the viewer's locale.
FORMATS: tuple[str, ...] = ("number", "integer", "currency", "percent")

DEFAULT_PRESETS: tuple[str, ...] = (
    "last 7 days",
    "last 30 days",
    "last 90 days",
    "this month",
    "last month",
    "this year",
    "last 12 months",
)


@dataclass(frozen=True)
class Widget:
    """One chart, KPI or table: a query of the model and how to draw it.

    Args:
        name: unique within its dashboard (letters, digits, underscores).
        kind: ``line``, ``area``, ``bar``, ``kpi``, ``table``, ``heatmap`` or ``altair``.
        query: a :class:`~embedkit.Query` or its JSON form. Dashboard filters add to it.
        title: shown above the widget (default: the first measure's title).
        x: the member on the x axis (default: the time dimension, else the first dimension);
            a time part is named by its column (``orders.ordered_at.hour_of_day``).
        y: measures to draw (default: all of the query's measures).
        color: a dimension that splits the data into series (line, area, bar) or the
            y axis of a heatmap.
        stack: bars and areas of several series are stacked (True) or grouped (False).
        horizontal: draw bars horizontally (good for long category names).
        formats: member -> ``number`` | ``integer`` | ``currency`` | ``percent``;
            defaults come from each measure's ``format``.
        page_size: rows per page of a table.
        sparkline: grain of a KPI's sparkline (``None``: no sparkline).
        chart: for ``kind="altair"``: an Altair chart whose data is replaced by the
            scoped query result. Its encodings name fields by member name without the
            dataset (``revenue`` for ``orders.revenue``).
        span: how many grid columns the widget takes (1 to 4).
    """

    name: str
    kind: ChartKind
    query: Query
    title: str | None = None
    description: str = ""
    x: str | None = None
    y: tuple[str, ...] = ()
    color: str | None = None
    stack: bool = True
    horizontal: bool = False
    formats: Mapping[str, str] = field(default_factory=dict)
    page_size: int = 20
    sparkline: str | None = "day"
    chart: Any = None
    span: int = 1

    def __post_init__(self) -> None:
        query: Any = self.query
        if isinstance(query, Mapping):
            object.__setattr__(self, "query", Query.from_json(query))
        elif not isinstance(query, Query):
            raise TypeError(
                f"widget '{self.name}': query must be an embedkit.Query or its JSON form, "
                f"got {type(query).__name__}"
            )
        y: Any = self.y
        object.__setattr__(self, "y", (y,) if isinstance(y, str) else tuple(y))
        object.__setattr__(self, "formats", dict(self.formats))

    @property
    def members(self) -> tuple[str, ...]:
        """Every member the widget's result carries, in column order."""
        q = self.query
        return (*q.dimensions, *(t.dimension for t in q.time if t.grain), *q.measures)

    @property
    def keys(self) -> tuple[str, ...]:
        """The browser's key of each result column, in column order (see fields.py)."""
        q = self.query
        return (
            *(field_key(d) for d in q.dimensions),
            *(field_key(t.dimension, t.grain) for t in q.time if t.grain),
            *(field_key(m) for m in q.measures),
        )


@dataclass(frozen=True)
class DateRangeFilter:
    """A date range the viewer picks from presets (or as two dates, if allowed).

    It limits every widget whose query reads ``dimension``'s dataset: time entries
    on ``dimension`` get the range, and widgets without one get it added.
    """

    name: str
    dimension: str
    default: str | tuple[str, str] = "last 30 days"
    presets: tuple[str, ...] = DEFAULT_PRESETS
    custom: bool = True
    label: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "presets", tuple(self.presets))
        if not isinstance(self.default, str):
            object.__setattr__(self, "default", tuple(self.default))


@dataclass(frozen=True)
class SelectFilter:
    """Pick values of a dimension; the choices offered are read under the viewer's scope.

    No selection means no filter (all of the viewer's rows), unless the embed
    token locks or limits the values.
    """

    name: str
    dimension: str
    multiple: bool = True
    default: tuple[Any, ...] = ()
    label: str | None = None

    def __post_init__(self) -> None:
        default: Any = self.default
        object.__setattr__(
            self,
            "default",
            (default,) if isinstance(default, str | int | float) else tuple(default),
        )


@dataclass(frozen=True)
class GrainFilter:
    """Switch the time grain of every widget that buckets by time."""

    name: str = "grain"
    options: tuple[str, ...] = ("day", "week", "month")
    default: str = "day"
    label: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(self.options))


DashboardFilter: TypeAlias = DateRangeFilter | SelectFilter | GrainFilter


@dataclass(frozen=True)
class Dashboard:
    """Widgets in a responsive grid, with shared filters.

    An embed URL names a dashboard (``"sales"``: every widget) or one of its
    widgets (``"sales/revenue_by_day"``: only that widget, with the same filters).
    """

    name: str
    widgets: tuple[Widget, ...]
    filters: tuple[DashboardFilter, ...] = ()
    title: str | None = None
    description: str = ""
    columns: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "widgets", tuple(self.widgets))
        object.__setattr__(self, "filters", tuple(self.filters))

    def widget(self, name: str) -> Widget | None:
        """The widget called ``name``, or None."""
        return next((w for w in self.widgets if w.name == name), None)

    def filter(self, name: str) -> DashboardFilter | None:
        """The filter called ``name``, or None."""
        return next((f for f in self.filters if f.name == name), None)


def check_dashboard(dashboard: Dashboard, model: Any, known: Sequence[str] = ()) -> list[Problem]:
    """Every problem of ``dashboard`` against ``model`` (empty when it is sound)."""
    where = f"dashboard '{getattr(dashboard, 'name', dashboard)}'"
    if not isinstance(dashboard, Dashboard):
        return [
            Problem("", None, f"add_dashboard() takes a Dashboard, not {type(dashboard).__name__}")
        ]
    problems: list[Problem] = []

    def problem(member: str | None, message: str, fix: str | None = None) -> None:
        problems.append(Problem("", member, f"{where}: {message}" if not member else message, fix))

    if not isinstance(dashboard.name, str) or not NAME.match(dashboard.name):
        problem(None, "is not a valid name", "use letters, digits and underscores")
    if dashboard.name in known:
        problem(None, "is added twice", "give every dashboard a unique name")
    if not dashboard.widgets:
        problem(None, "has no widgets", "pass widgets=[ek.Widget(...), ...]")
    if not 1 <= dashboard.columns <= 4:
        problem(None, "columns must be between 1 and 4")
    seen: set[str] = set()
    for widget in dashboard.widgets:
        if not isinstance(widget, Widget):
            problem(None, f"widgets holds a {type(widget).__name__}, not a Widget")
            continue
        if widget.name in seen:
            problem(None, f"has two widgets called '{widget.name}'", "give each a unique name")
        seen.add(widget.name)
        for text in _check_widget(widget, model):
            problem(f"{where}, widget '{widget.name}'", text)
    names: set[str] = set()
    for flt in dashboard.filters:
        if not isinstance(flt, DateRangeFilter | SelectFilter | GrainFilter):
            problem(None, f"filters holds a {type(flt).__name__}, not a dashboard filter")
            continue
        if not isinstance(flt.name, str) or not NAME.match(flt.name) or flt.name in names:
            problem(None, f"filter name {flt.name!r} is not a unique valid name")
        names.add(flt.name)
        for text in _check_filter(flt, model):
            problem(f"{where}, filter '{flt.name}'", text)
    return problems


def _check_widget(widget: Widget, model: Any) -> list[str]:
    out: list[str] = []
    q = widget.query
    if not isinstance(widget.name, str) or not NAME.match(widget.name):
        out.append("the name is not valid (use letters, digits and underscores)")
    if widget.kind not in CHART_KINDS:
        out.append(f"kind {widget.kind!r} is unknown; kinds are: {', '.join(CHART_KINDS)}")
        return out
    for name, kinds in (
        *((m, ("measure",)) for m in q.measures),
        *((d, ("dimension", "time")) for d in q.dimensions),
        *((t.dimension, ("time",)) for t in q.time),
    ):
        member = model.member(name)
        if member is None or member.kind not in kinds:
            out.append(f"'{name}' is not a {' or '.join(kinds)} of the model")
    if not q.measures and widget.kind != "table":
        out.append(
            "the query has no measure",
        )
    members = widget.members
    parts = tuple(f"{t.dimension}.{t.grain}" for t in q.time if t.grain in PARTS)
    for label, value in (("x", widget.x), ("color", widget.color)):
        if value is not None and value not in (*members, *parts):
            names = ", ".join(dict.fromkeys((*members, *parts)))
            out.append(f"{label}={value!r} is not one of the query's members: {names}")
    for y in widget.y:
        if y not in q.measures:
            out.append(f"y={y!r} is not one of the query's measures")
    for member, fmt in widget.formats.items():
        if fmt not in FORMATS:
            out.append(
                f"format {fmt!r} of '{member}' is unknown; formats are: {', '.join(FORMATS)}"
            )
    keys = widget.keys
    clash = sorted({k for k in keys if keys.count(k) > 1})
    if clash:
        out.append(
            f"two members are both called '{clash[0]}' once the dataset is left out; "
            "charts name fields that way, so pick members with different names"
        )
    if widget.kind == "kpi" and len(q.measures) != 1:
        out.append("a KPI shows exactly one measure")
    if widget.kind == "kpi" and widget.sparkline is not None and widget.sparkline not in GRAINS:
        out.append(f"sparkline grain {widget.sparkline!r} is not one of: {', '.join(GRAINS)}")
    if widget.kind in ("line", "area") and not (q.time or q.dimensions):
        out.append("a line or area chart needs a time dimension with a grain, or a dimension")
    if widget.kind == "heatmap" and (len(members) - len(q.measures) != 2 or len(q.measures) != 1):
        out.append("a heatmap needs two dimensions (x and y) and one measure")
    if widget.kind == "altair":
        if widget.chart is None or not hasattr(widget.chart, "to_dict"):
            out.append("kind='altair' needs chart=alt.Chart(...)")
    elif widget.chart is not None:
        out.append("chart= is only for kind='altair'")
    if not isinstance(widget.page_size, int) or not 1 <= widget.page_size <= 500:
        out.append("page_size must be between 1 and 500")
    if not 1 <= widget.span <= 4:
        out.append("span must be between 1 and 4")
    return out


def _check_filter(flt: DashboardFilter, model: Any) -> list[str]:
    if isinstance(flt, GrainFilter):
        bad = [g for g in (*flt.options, flt.default) if g not in GRAINS]
        if bad or flt.default not in flt.options:
            return [f"grains must be among {', '.join(GRAINS)} and include the default"]
        return []
    member = model.member(flt.dimension)
    want = ("time",) if isinstance(flt, DateRangeFilter) else ("dimension", "time")
    if member is None or member.kind not in want:
        return [f"'{flt.dimension}' is not a {' or '.join(want)} dimension of the model"]
    if isinstance(flt, DateRangeFilter):
        from embedkit.query.spec import Time

        try:
            Time(flt.dimension, date_range=flt.default)
            for preset in flt.presets:
                Time(flt.dimension, date_range=preset)
        except QueryError as err:
            return [str(err)]
    return []
