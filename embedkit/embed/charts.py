"""Vega-Lite specs for widgets, built with Altair and sent to the browser without data.

A spec names its data ``{"name": "rows"}``; the page fills ``datasets.rows`` with the
widget's rows and passes the theme's config, so a spec carries only field keys, titles
and formats. Time buckets arrive as ISO strings with a ``Z`` suffix that hold the
wall-clock time of the embed's zone, so every time scale, time unit and time format
here is UTC: a browser in any zone shows that wall-clock unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import altair as alt

from embedkit.embed.custom_charts import custom_spec
from embedkit.embed.fields import Field
from embedkit.embed.resources import Widget
from embedkit.embed.time_axes import GRAIN_AXES, grain_axis, label_expr

__all__ = ["MAX_POINTS", "chart_spec", "number_formats"]

# Names of the columns the spec derives; the prefix keeps them apart from field keys.
_KEY, _VALUE, _SERIES, _COUNT, _ARIA = "_ek_key", "_ek_value", "_ek_series", "_ek_n", "_ek_aria"
_DAY = "_ek_day_"  # + a day_of_week field's key: the weekday's name
MAX_POINTS = 40  # lines show their points while a series has at most this many
_AUTOSIZE = {"type": "fit-x", "contains": "padding"}
_LEGEND_LABEL = 110
# One legend column: a column count that follows the width (a signal) leaves Vega's
# height stale when a card narrows after the first draw, which clipped legends.
_LEGEND_SYMBOLS = 12
# Built specs as JSON text, by what they depend on (Altair takes tens of milliseconds).
_BUILT: dict[tuple[Any, ...], str] = {}


# Field.format -> (axis format, tooltip format), d3-format; ``$`` is the locale's currency.
_NUMBER_FORMATS: dict[str | None, tuple[str, str]] = {
    "currency": ("$,.2~f", "$,.2f"),
    "integer": (",.0f", ",.0f"),
    "percent": (".1~%", ".1%"),
    "number": (",.2~f", ",.2~f"),
    None: (",.2~f", ",.2~f"),
}


def number_formats(fmt: str | None) -> tuple[str, str]:
    """The d3-format strings ``(axis, tooltip)`` for a field format (``currency``...)."""
    return _NUMBER_FORMATS.get(fmt, _NUMBER_FORMATS[None])


def _weekday(value: str, fmt: str) -> str:
    """An expression: the name of ISO weekday ``value`` (1 Monday .. 7 Sunday) in the
    chart's time-format locale, ``%a`` (Mon) or ``%A`` (Monday)."""
    return f"utcFormat(utc(2024, 0, {value}), {_string(fmt)})"  # 2024-01-01: a Monday


def _text(field: Field, value: str) -> str:
    """An expression: ``value`` (an expression of ``field``'s value) as the tooltip shows it."""
    if field.role == "time":
        return f"utcFormat(toDate({value}), {_string(grain_axis(field).tip)})"
    if field.role == "measure":
        return f"format({value}, {_string(number_formats(field.format)[1])})"
    if field.part == "day_of_week":
        return _weekday(value, "%A")
    return f"'' + {value}"


def _shown(field: Field) -> str:
    """The column a tooltip reads: a weekday's name is derived (see :func:`_described`)."""
    return f"{_DAY}{field.key}" if field.part == "day_of_week" else field.key


def _tooltip(field: Field) -> alt.Tooltip:
    key, title = field.key, field.title
    if field.part is not None:
        return alt.Tooltip(_shown(field), type="nominal", title=title)
    if field.role == "time":
        unit, fmt = {"unit": grain_axis(field).unit}, grain_axis(field).tip
        return alt.Tooltip(key, type="temporal", timeUnit=unit, format=fmt, title=title)
    if field.role == "measure":
        fmt = number_formats(field.format)[1]
        return alt.Tooltip(key, type="quantitative", format=fmt, title=title)
    return alt.Tooltip(key, type="nominal", title=title)


def _aria(fields: Sequence[Field]) -> str:
    """An expression that reads a datum aloud like its tooltip: ``Title: value; ...``.

    (Vega-Lite's own mark descriptions print raw timestamps for a discrete time axis.)"""
    parts = []
    for f in fields:
        value = f"datum[{_string(f.key)}]"
        text = _text(f, value)
        parts.append(f"{_string(f.title + ': ')} + (isValid({value}) ? {text} : '-')")
    return " + '; ' + ".join(parts) or "''"


def _described(chart: alt.Chart, fields: Sequence[Field]) -> Any:
    """``chart`` with each datum's text alternative, and weekday names for tooltips."""
    derived = {_ARIA: _aria(fields)}
    for f in fields:
        if f.part == "day_of_week":
            value = f"datum[{_string(f.key)}]"
            derived[_shown(f)] = f"isValid({value}) ? {_text(f, value)} : null"
    return chart.transform_calculate(**derived)


_DESCRIPTION = alt.Description(_ARIA, type="nominal")


_PART_DOMAINS: dict[str, list[int]] = {
    "hour_of_day": list(range(24)),
    "day_of_week": list(range(1, 8)),
}


def _position(channel: str, field: Field, *, discrete: bool, **extra: Any) -> Any:
    """An x or y channel for a time or dimension field."""
    cls = alt.X if channel == "x" else alt.Y
    axis: dict[str, Any] = {"labelLimit": 120 if channel == "y" else 90}
    if field.part is not None:
        # Hours 0-23 or weekdays 1-7 (shown by name), in that order, whatever the rows'.
        extra["sort"] = "ascending"
        axis.update(labelAngle=0, labelOverlap=True, labelSeparation=4)
        if field.part == "day_of_week":
            axis["labelExpr"] = _weekday("datum.value", "%a")
        # Every hour and every weekday has its place, with or without rows in it.
        extra["scale"] = alt.Scale(domain=_PART_DOMAINS[field.part])
        return cls(field.key, type="ordinal", title=field.title, axis=alt.Axis(**axis), **extra)
    if field.role != "time":
        return cls(field.key, type="nominal", title=field.title, axis=alt.Axis(**axis), **extra)
    extra.pop("sort", None)  # buckets in time order
    g = grain_axis(field)
    if field.grain in GRAIN_AXES:
        axis.update(format=g.axis, labelExpr=label_expr(g), labelOverlap=True)
        extra["timeUnit"] = {"unit": g.unit}
    if discrete:
        # One band per bucket, whatever the grain (a week's bar starts on its own day).
        return cls(field.key, type="ordinal", title=field.title, axis=alt.Axis(**axis), **extra)
    extra["scale"] = alt.Scale(type="utc")
    return cls(field.key, type="temporal", title=field.title, axis=alt.Axis(**axis), **extra)


def _measure(channel: str, field: str, fmt: str | None, title: str | None, **extra: Any) -> Any:
    """An x or y channel for a measure (or the folded values of several)."""
    cls = alt.X if channel == "x" else alt.Y
    axis: dict[str, Any] = {"format": number_formats(fmt)[0]}
    if fmt == "integer":
        axis["tickMinStep"] = 1
    return cls(field, type="quantitative", title=title, axis=alt.Axis(**axis), **extra)


def _find(fields: Sequence[Field], ref: str | None) -> Field | None:
    """The field a widget option names, by member (``orders.revenue``), column
    (``orders.ordered_at.hour_of_day``) or key."""
    return next((f for f in fields if ref is not None and ref in (f.member, f.column, f.key)), None)


_string = json.dumps  # a string literal of a Vega expression (escaped as in JSON)


class _Plan(NamedTuple):
    x: Field
    measures: list[Field]
    split: Field | None  # a dimension that splits the data into series


def _plan(widget: Widget, fields: Sequence[Field]) -> _Plan:
    chosen = [_find(fields, y) for y in widget.y]
    measures = [f for f in chosen if f is not None] or [f for f in fields if f.role == "measure"]
    others = [f for f in fields if f.role != "measure"]
    x = _find(others, widget.x)
    if x is None:
        times = [f for f in others if f.role == "time"]
        dims = [f for f in others if f.role == "dimension"]
        first = (dims + times) if widget.kind == "bar" else (times + dims)
        x = first[0] if first else None
    if x is None or not measures:
        raise ValueError(f"widget '{widget.name}' needs a measure and a time or dimension field")
    split = _find(others, widget.color)
    if split is None or split is x:
        # A field left over would draw a zig-zag through several values per x: split on it.
        split = next((f for f in others if f is not x), None)
    return _Plan(x, measures, split)


class _Values(NamedTuple):
    chart: alt.Chart
    field: str  # the quantitative field drawn
    format: str | None
    title: str | None  # value axis title
    series: str | None  # the field that colours series
    legend: str | None


def _values(chart: alt.Chart, plan: _Plan) -> _Values:
    """Fold several measures into one column of values, labelled by their titles."""
    split = plan.split
    if len(plan.measures) == 1:
        m = plan.measures[0]
        series, legend = (split.key, split.title) if split else (None, None)
        return _Values(chart, m.key, m.format, m.title, series, legend)
    label = _string(plan.measures[-1].title)
    for m in reversed(plan.measures[:-1]):
        label = f"datum.{_KEY} === {_string(m.key)} ? {_string(m.title)} : {label}"
    if split is not None:
        label = f"({label}) + ' · ' + {_text(split, f'datum[{_string(split.key)}]')}"
    chart = chart.transform_fold([m.key for m in plan.measures], as_=[_KEY, _VALUE])
    chart = chart.transform_calculate(**{_SERIES: label})
    formats = {m.format for m in plan.measures}
    fmt = formats.pop() if len(formats) == 1 else None
    return _Values(chart, _VALUE, fmt, None, _SERIES, split.title if split else None)


def _pick(*fields: Field | None) -> Any:
    """A click selection: the page may read the ``pick`` signal (it also gets view clicks)."""
    return alt.selection_point(name="pick", on="click", fields=[f.key for f in fields if f])


def _colour(values: _Values, split: Field | None) -> Any:
    """The colour channel of series, with a one-column legend below the chart."""
    legend = alt.Legend(
        columns=1, direction="vertical", labelLimit=_LEGEND_LABEL, symbolLimit=_LEGEND_SYMBOLS
    )
    if split is not None and split.part is not None and values.series == split.key:
        if split.part == "day_of_week":
            legend.labelExpr = _weekday("datum.value", "%a")
        return alt.Color(
            split.key, type="nominal", title=split.title, sort="ascending", legend=legend
        )
    if split is not None and split.role == "time" and values.series == split.key:
        g = grain_axis(split)
        legend.format = g.tip
        unit = {"unit": g.unit}
        return alt.Color(split.key, type="ordinal", timeUnit=unit, title=split.title, legend=legend)
    series = values.series or alt.Undefined
    return alt.Color(series, type="nominal", title=values.legend, sort=None, legend=legend)


def _line(widget: Widget, fields: Sequence[Field], base: alt.Chart) -> alt.LayerChart:
    plan = _plan(widget, fields)
    v = _values(_described(base, fields), plan)
    area = widget.kind == "area"
    stacked = area and widget.stack and v.series is not None
    y = _measure("y", v.field, v.format, v.title, stack="zero" if stacked else None)
    enc: dict[str, Any] = {"x": _position("x", plan.x, discrete=False), "y": y}
    if v.series is not None:
        enc["color"] = _colour(v, plan.split)
    if area:
        opacity = 0.85 if stacked or v.series is None else 0.3
        lines = v.chart.mark_area(line=True, opacity=opacity).encode(**enc)
    else:
        lines = v.chart.mark_line().encode(**enc)
    # Points on every value, visible while a series has few (a single one draws no line),
    # and always there to carry tooltips and clicks.
    few = alt.datum[_COUNT] <= MAX_POINTS
    points = (
        v.chart.mark_point(filled=True, size=40)
        .transform_joinaggregate(**{_COUNT: "count()"}, groupby=[v.series] if v.series else [])
        .encode(
            **enc,
            opacity=alt.when(few).then(alt.value(1)).otherwise(alt.value(0)),
            tooltip=[_tooltip(f) for f in fields],
            description=_DESCRIPTION,
        )
        .add_params(_pick(plan.x, plan.split))
        .properties(name="points")
    )
    return alt.LayerChart(layer=[lines, points])


def _bar(widget: Widget, fields: Sequence[Field], base: alt.Chart) -> alt.Chart:
    plan = _plan(widget, fields)
    v = _values(_described(base, fields), plan)
    pos, val = ("y", "x") if widget.horizontal else ("x", "y")
    grouped = v.series is not None and not widget.stack
    sort = f"-{val}" if widget.horizontal and plan.x.role != "time" else None
    enc: dict[str, Any] = {
        pos: _position(pos, plan.x, discrete=True, sort=sort),
        val: _measure(val, v.field, v.format, v.title, stack=None if grouped else "zero"),
        "tooltip": [_tooltip(f) for f in fields],
        "description": _DESCRIPTION,
    }
    if v.series is not None:
        enc["color"] = _colour(v, plan.split)
        if grouped:
            offset = alt.XOffset if pos == "x" else alt.YOffset
            enc[f"{pos}Offset"] = offset(v.series, type="nominal", sort=None)
    bars: alt.Chart = v.chart.mark_bar().encode(**enc).add_params(_pick(plan.x, plan.split))
    return bars


def _heatmap(widget: Widget, fields: Sequence[Field], base: alt.Chart) -> alt.Chart:
    others = [f for f in fields if f.role != "measure"]
    measures = [f for f in fields if f.role == "measure"]
    measure = _find(measures, widget.y[0] if widget.y else None) or next(iter(measures), None)
    x = _find(others, widget.x) or (others[0] if others else None)
    y = _find(others, widget.color)
    if y is None or y is x:
        y = next((f for f in others if f is not x), None)
    if x is None or y is None or measure is None:
        raise ValueError(f"widget '{widget.name}': a heatmap needs two dimensions and a measure")
    ramp = alt.Scale(range="ramp")
    legend = alt.Legend(format=number_formats(measure.format)[0])
    if measure.format == "integer":
        # Counts: fractional ticks would read "1 2 2 3 3"; label whole numbers only.
        legend.labelExpr = "datum.value % 1 === 0 ? format(datum.value, ',.0f') : ''"
    colour = alt.Color(measure.key, type="quantitative", title=measure.title, scale=ramp)
    rects: alt.Chart = (
        _described(base, fields)
        .mark_rect()
        .encode(
            x=_position("x", x, discrete=True, sort=None),
            y=_position("y", y, discrete=True, sort=None),
            color=colour.legend(legend),
            tooltip=[_tooltip(f) for f in fields],
            description=_DESCRIPTION,
        )
        .add_params(_pick(x, y))
    )
    return rects


def chart_spec(
    widget: Widget, fields: Sequence[Field], *, title: str, height: int = 260
) -> dict[str, Any] | None:
    """The Vega-Lite spec of ``widget``'s chart, or None for a KPI or a table.

    Args:
        widget: the widget definition (its kind, x, y, color, stack and horizontal).
        fields: the fields of its rows, in column order.
        title: read by screen readers (the spec's ``description``); the page shows
            it as a heading, so the spec itself has no title.
        height: chart height in pixels; the width follows the card (``"container"``).

    The spec reads the named dataset ``rows`` and has no ``config`` or ``datasets``:
    the page adds both. Raises ValueError when the fields do not fit the kind.
    """
    if widget.kind in ("kpi", "table"):
        return None
    if widget.kind == "altair":
        spec = custom_spec(widget, height, autosize=_AUTOSIZE)
    else:
        shape = (widget.kind, widget.x, widget.y, widget.color, widget.stack, widget.horizontal)
        key = (shape, tuple(fields), height)
        text = _BUILT.get(key)
        if text is None:
            text = json.dumps(_build(widget, fields, height))
            if len(_BUILT) >= 1024:
                _BUILT.clear()
            _BUILT[key] = text
        spec = json.loads(text)  # a fresh copy the caller may change
    spec["description"] = title
    return spec


def _build(widget: Widget, fields: Sequence[Field], height: int) -> dict[str, Any]:
    builders = {"line": _line, "area": _line, "bar": _bar, "heatmap": _heatmap}
    build: Callable[..., Any] | None = builders.get(widget.kind)
    if build is None:
        raise ValueError(f"widget '{widget.name}': unknown kind {widget.kind!r}")
    chart = build(widget, fields, alt.Chart(alt.NamedData("rows")))
    chart = chart.properties(width="container", height=height, autosize=_AUTOSIZE)
    spec: dict[str, Any] = chart.to_dict(validate=False)
    spec.pop("datasets", None)
    spec.pop("config", None)
    return spec
