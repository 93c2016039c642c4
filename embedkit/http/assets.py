"""The browser files embedkit serves itself: the loader, the page script, styles, Vega.

Nothing is fetched from a CDN. The Vega / Vega-Lite / vega-embed bundle is
made by vl-convert-python on first use and kept in memory.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["Asset", "asset", "widgets_dir"]

_FILES = {
    "loader.js": ("loader.js", "text/javascript; charset=utf-8"),
    "embed.js": ("embed.js", "text/javascript; charset=utf-8"),
    "embed.css": ("embed.css", "text/css; charset=utf-8"),
    "ops.js": ("ops.js", "text/javascript; charset=utf-8"),
    "ops-status.js": ("ops-status.js", "text/javascript; charset=utf-8"),
    "ops-catalog.js": ("ops-catalog.js", "text/javascript; charset=utf-8"),
    "ops.css": ("ops.css", "text/css; charset=utf-8"),
    "vega-interpreter.js": ("vendor/vega-interpreter.js", "text/javascript; charset=utf-8"),
}
_lock = threading.Lock()


@dataclass(frozen=True)
class Asset:
    """A static file's bytes, media type and ETag."""

    body: bytes
    media_type: str
    etag: str


@cache
def widgets_dir() -> Path:
    """Where the browser files live: inside the wheel, or the repository's ``widgets/``."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_widgets", package.parent / "widgets"):
        if (candidate / "templates").is_dir():
            return candidate
    raise FileNotFoundError("embedkit's browser files (widgets/) are missing from this install")


def _make(body: bytes, media_type: str) -> Asset:
    return Asset(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


@cache
def _vega() -> Asset:
    import vl_convert

    make: Any = vl_convert.javascript_bundle  # the stub wants a snippet; the default is right
    bundle = make()
    return _make(bundle.encode(), "text/javascript; charset=utf-8")


@cache
def _file(name: str) -> Asset:
    path, media_type = _FILES[name]
    return _make((widgets_dir() / path).read_bytes(), media_type)


def asset(name: str) -> Asset | None:
    """The asset called ``name``, or None when there is no such file."""
    if name == "vega.js":
        with _lock:  # build the bundle once even when many pages ask at once
            return _vega()
    if name in _FILES:
        return _file(name)
    return None
