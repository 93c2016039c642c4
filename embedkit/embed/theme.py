"""Themes: light / dark / auto, brand colours and font, and the Vega config made from them.

A theme is set for the whole kit, per tenant, or per embed URL. The browser reads
it as CSS custom properties; charts get one Vega config derived from it, so a
brand colour set once shows in the page chrome and in every chart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["Theme"]

_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
# A CSS font-family list: names, quotes, commas, spaces and hyphens; nothing that
# could close the declaration or open a URL.
_FONT = re.compile(r"^[A-Za-z0-9 ,'\"\-]{1,200}$")

Mode = Literal["light", "dark", "auto"]

_PALETTE = (
    "#2563eb",
    "#f97316",
    "#16a34a",
    "#dc2626",
    "#9333ea",
    "#0891b2",
    "#ca8a04",
    "#db2777",
    "#4b5563",
    "#65a30d",
)
_SURFACES = {
    "light": {"background": "#ffffff", "text": "#111827", "muted": "#6b7280", "grid": "#e5e7eb"},
    "dark": {"background": "#111827", "text": "#f3f4f6", "muted": "#9ca3af", "grid": "#374151"},
}


@dataclass(frozen=True)
class Theme:
    """How embeds look.

    Args:
        mode: ``"light"``, ``"dark"`` or ``"auto"`` (follows the viewer's system setting).
        primary: brand colour (``#rrggbb``), used for single-series charts and controls.
        palette: colours for series, in order.
        font: a CSS font-family list. Fonts are not downloaded: name fonts the viewer
            has, and end with a generic family.
        radius: corner radius of cards, in pixels.
    """

    mode: Mode = "auto"
    primary: str = "#2563eb"
    palette: tuple[str, ...] = field(default=_PALETTE)
    font: str = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
    radius: int = 8

    def __post_init__(self) -> None:
        if self.mode not in ("light", "dark", "auto"):
            raise ValueError(f"Theme.mode must be 'light', 'dark' or 'auto', got {self.mode!r}")
        palette: Any = self.palette
        if isinstance(palette, str) or not isinstance(palette, list | tuple) or not palette:
            raise ValueError("Theme.palette is a non-empty list of '#rrggbb' colours")
        object.__setattr__(self, "palette", tuple(palette))
        for colour in (self.primary, *self.palette):
            if not isinstance(colour, str) or not _COLOUR.match(colour):
                raise ValueError(f"Theme colour {colour!r} is not a '#rgb' or '#rrggbb' colour")
        if not isinstance(self.font, str) or not _FONT.match(self.font):
            raise ValueError(
                f"Theme.font {self.font!r} is not a plain CSS font-family list "
                "(letters, digits, spaces, commas, quotes and hyphens)"
            )
        if isinstance(self.radius, bool) or not isinstance(self.radius, int):
            raise ValueError("Theme.radius is a whole number of pixels")
        if not 0 <= self.radius <= 32:
            raise ValueError("Theme.radius must be between 0 and 32 pixels")

    def to_json(self) -> dict[str, Any]:
        """The theme as plain JSON (what the browser and the embed token carry)."""
        data = asdict(self)
        data["palette"] = list(self.palette)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Theme:
        """Rebuild a theme from :meth:`to_json` output; unknown keys are an error."""
        if not isinstance(data, Mapping):
            raise ValueError("a theme is a JSON object")
        unknown = set(data) - {"mode", "primary", "palette", "font", "radius"}
        if unknown:
            raise ValueError(f"unknown theme keys: {', '.join(sorted(unknown))}")
        return cls(**dict(data))

    def merged(self, overrides: Mapping[str, Any] | None) -> Theme:
        """This theme with some keys replaced (validated like a new theme)."""
        if not overrides:
            return self
        return Theme.from_json({**self.to_json(), **dict(overrides)})

    def surfaces(self, dark: bool) -> dict[str, str]:
        """Background, text, muted text and grid colours for a light or dark page."""
        return dict(_SURFACES["dark" if dark else "light"])

    def vega_config(self, *, dark: bool) -> dict[str, Any]:
        """The Vega-Lite ``config`` for charts drawn in this theme."""
        s = self.surfaces(dark)
        return {
            "background": None,
            "font": self.font,
            "range": {"category": list(self.palette), "ramp": {"scheme": "blues"}},
            "mark": {"color": self.primary},
            "line": {"strokeWidth": 2},
            "point": {"filled": True},
            "axis": {
                "labelColor": s["muted"],
                "titleColor": s["muted"],
                "gridColor": s["grid"],
                "domainColor": s["grid"],
                "tickColor": s["grid"],
                "labelFont": self.font,
                "titleFont": self.font,
                "labelFontSize": 11,
                "titleFontSize": 11,
                "titleFontWeight": "normal",
            },
            "legend": {
                "labelColor": s["text"],
                "titleColor": s["muted"],
                "labelFont": self.font,
                "titleFont": self.font,
                "orient": "bottom",
            },
            "title": {"color": s["text"], "font": self.font},
            "view": {"stroke": None},
        }
