"""Turning values into exact, hashable cache-key parts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["frozen"]


def frozen(value: Any) -> Any:
    """``value`` as a hashable key part that keeps its type: 1, 1.0 and True are equal
    in Python but not in SQL, and "7" and 7 are different tenants' spellings."""
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(frozen(v) for v in value))
    if isinstance(value, Mapping):
        return ("map", tuple(sorted((str(k), frozen(v)) for k, v in value.items())))
    return (type(value).__name__, value)
