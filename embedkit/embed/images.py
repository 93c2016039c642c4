"""Widget images (SVG or PNG) drawn on the server with vl-convert, offline.

A chart's image is its Vega-Lite spec (from :func:`embedkit.embed.charts.chart_spec`)
with the rows inlined and a fixed width. vl-convert can load data and images from
URLs; here nothing may be fetched: a spec that names a URL is refused, and vl-convert
is told that no base URL is allowed. A KPI has no spec, so :func:`kpi_svg` draws its
card by hand; a table has no image at all.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from xml.sax.saxutils import escape, quoteattr

import vl_convert

from embedkit.embed.theme import Theme

__all__ = ["NO_TABLE_IMAGE", "kpi_svg", "render_image"]

NO_TABLE_IMAGE = "a table widget has no image; export it instead"

# Characters XML 1.0 does not allow, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_UP = "#16a34a"
_DOWN = "#dc2626"


def _names_url(node: Any) -> bool:
    """Does any object of a spec have a ``url`` key (data, image marks, url channels)?"""
    if isinstance(node, Mapping):
        return "url" in node or any(_names_url(v) for v in node.values())
    if isinstance(node, list):
        return any(_names_url(v) for v in node)
    return False


def _fixed_width(node: Any, width: int) -> None:
    """Replace every ``"width": "container"`` (top level and sub-views) with ``width``."""
    if isinstance(node, dict):
        if node.get("width") == "container":
            node["width"] = width
        for value in node.values():
            _fixed_width(value, width)
    elif isinstance(node, list):
        for value in node:
            _fixed_width(value, width)


def render_image(
    spec: Mapping[str, Any] | None,
    rows: Sequence[Mapping[str, Any]],
    *,
    config: Mapping[str, Any] | None,
    fmt: Literal["svg", "png"],
    width: int = 640,
    background: str | None = None,
    scale: float = 1.0,
    format_locale: str | dict[str, Any] | None = None,
    time_format_locale: str | dict[str, Any] | None = None,
) -> bytes:
    """Draw a chart spec with ``rows`` as an SVG (UTF-8) or PNG image.

    Args:
        spec: the widget's Vega-Lite spec, reading the named dataset ``rows``.
            None (a table) raises ValueError; draw a KPI with :func:`kpi_svg`.
        rows: the widget's rows (JSON values, as the page receives them).
        config: the Vega-Lite config of the theme (``Theme.vega_config``).
        fmt: ``"svg"`` or ``"png"``.
        width: image width in pixels, in place of the page's ``"container"`` width.
        background: a CSS colour behind the chart (default: the config's, transparent
            for embedkit themes).
        scale: PNG pixel density (2.0 for sharp images on high-DPI screens).
        format_locale: d3-format locale (name or dict) for numbers and ``$``.
        time_format_locale: d3-time-format locale (name or dict) for dates.

    Raises ValueError when the spec or config names a URL: images are drawn from
    ``rows`` only and nothing is fetched.
    """
    if spec is None:
        raise ValueError(NO_TABLE_IMAGE)
    if fmt not in ("svg", "png"):
        raise ValueError(f"image format must be 'svg' or 'png', not {fmt!r}")
    if _names_url(spec) or _names_url(config or {}):
        raise ValueError("a widget image is drawn from its rows only; the spec names a URL")
    out: dict[str, Any] = copy.deepcopy(dict(spec))
    out.pop("config", None)
    out["datasets"] = {"rows": [dict(row) for row in rows]}
    _fixed_width(out, width)
    if background is not None:
        out["background"] = background
    options: dict[str, Any] = {
        "config": copy.deepcopy(dict(config)) if config else None,
        "allowed_base_urls": [],  # vl-convert: no URL may be loaded
        "format_locale": format_locale,
        "time_format_locale": time_format_locale,
    }
    if fmt == "svg":
        return vl_convert.vegalite_to_svg(out, **options).encode("utf-8")
    return vl_convert.vegalite_to_png(out, scale=scale, **options)


def kpi_svg(
    title: str,
    value_text: str,
    delta_text: str | None = None,
    *,
    tone: Literal["up", "down"] | None = None,
    theme: Theme | None = None,
    dark: bool = False,
    width: int = 320,
) -> bytes:
    """A KPI card as a small SVG: the title, the formatted value and its change.

    Texts come formatted (the server formats them in the viewer's locale) and are
    escaped here. ``tone`` colours the change green (``up``) or red (``down``).
    """
    title, value_text = _NOT_XML.sub("", title), _NOT_XML.sub("", value_text)
    delta_text = _NOT_XML.sub("", delta_text) if delta_text else None
    theme = theme or Theme()
    s = theme.surfaces(dark)
    height = 112 if delta_text else 84
    delta_colour = _UP if tone == "up" else _DOWN if tone == "down" else s["muted"]
    label = f"{title}: {value_text}" + (f" ({delta_text})" if delta_text else "")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label={quoteattr(label)}>',
        f"<title>{escape(label)}</title>",
        f'<rect width="{width}" height="{height}" rx="{theme.radius}" fill="{s["background"]}"/>',
        f"<g font-family={quoteattr(theme.font)}>",
        f'<text x="16" y="30" font-size="14" fill="{s["muted"]}">{escape(title)}</text>',
        f'<text x="16" y="68" font-size="32" font-weight="600" fill="{s["text"]}">'
        f"{escape(value_text)}</text>",
    ]
    if delta_text:
        parts.append(
            f'<text x="16" y="96" font-size="14" fill="{delta_colour}">{escape(delta_text)}</text>'
        )
    parts.append("</g></svg>")
    return "".join(parts).encode("utf-8")
