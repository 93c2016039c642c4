"""Charts the app developer builds with Altair, made to read a widget's scoped rows.

The developer's chart keeps its marks and encodings; its data (and that of every
layer or concatenated part) is replaced by the named dataset ``rows``, and a chart
that would still read anything else (a URL, inline values, a lookup frame) is
refused, so a custom chart can only ever show the viewer's own rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import altair as alt

from embedkit.embed.resources import Widget

__all__ = ["custom_spec"]


def _strip_data(node: Any) -> None:
    """Remove the data of every sub-chart (layer, concat, facet and repeat members)."""
    children = [getattr(node, "spec", None)]
    for attr in ("layer", "hconcat", "vconcat", "concat"):
        value = getattr(node, attr, None)
        children += value if isinstance(value, list) else []
    for child in children:
        if child is not None and hasattr(child, "data"):
            child.data = alt.Undefined
            _strip_data(child)


def _foreign_data(node: Any) -> bool:
    """Does a spec (as a dict) read data other than the named ``rows`` (or a generator)?"""
    if isinstance(node, Mapping):
        data = node["data"] if isinstance(node.get("data"), Mapping) else {}
        if "url" in data or "values" in data or data.get("name", "rows") != "rows":
            return True  # (Altair names a lookup's DataFrame, put in datasets)
        return any(_foreign_data(v) for v in node.values())
    if isinstance(node, list):
        return any(_foreign_data(v) for v in node)
    return False


def custom_spec(widget: Widget, height: int, *, autosize: Mapping[str, Any]) -> dict[str, Any]:
    """The spec of a ``kind="altair"`` widget: its chart reading the named ``rows``."""
    chart = widget.chart
    if chart is None or not hasattr(chart, "to_dict") or not hasattr(chart, "copy"):
        raise ValueError(f"widget '{widget.name}': kind='altair' needs chart=alt.Chart(...)")
    chart = chart.copy(deep=True, ignore=["data"])  # the developer's sample data stays put
    chart.data = alt.NamedData("rows")
    _strip_data(chart)
    spec: dict[str, Any] = chart.to_dict()
    spec.pop("config", None)
    if spec.pop("datasets", None) or _foreign_data(spec):  # e.g. a lookup in other data
        raise ValueError(
            f"widget '{widget.name}': the chart may only read the widget's rows "
            "(no data URLs or inline values)"
        )
    if "layer" in spec or "mark" in spec:
        spec.setdefault("width", "container")
        spec.setdefault("height", height)
        spec.setdefault("autosize", dict(autosize))
    return spec
