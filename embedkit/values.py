"""Turning caller values (often strings, as in Cube's JSON) into typed parameters."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, tzinfo
from typing import Any

__all__ = ["coerce"]


def coerce(value: Any, kind: str, *, tz: tzinfo | None = None, strict: bool = False) -> Any:
    """``value`` as the Python type bound for a member of ``kind``.

    ``strict`` (for tenant ids and claims) accepts only exact forms: an integer
    column takes an int or a string of digits, never "1e3" or "1.5".
    Raises ``ValueError`` with a message fit to show the caller.
    """
    if strict and kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
            return int(value)
        raise ValueError(f"{value!r} is not an integer")
    if kind == "string":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"{value!r} is not a text value")
        return str(value)
    if kind in ("integer", "number"):
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a number")
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            number = value
        elif isinstance(value, str):
            text = value.strip()
            try:
                if text.lstrip("-").isdigit():
                    return int(text)
                number = float(text)
            except ValueError:
                raise ValueError(f"{value!r} is not a number") from None
        else:
            raise ValueError(f"{value!r} is not a number")
        if not math.isfinite(number):
            raise ValueError(f"{value!r} is not a finite number")
        return int(number) if kind == "integer" and number.is_integer() else number
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise ValueError(f"{value!r} is not true or false")
    if kind == "date":
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value)[:10])
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO date such as 2024-01-31") from None
    if kind in ("timestamp", "timestamptz"):
        if isinstance(value, datetime):
            dt = value
        elif isinstance(value, date):
            dt = datetime(value.year, value.month, value.day)
        else:
            try:
                dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(
                    f"{value!r} is not an ISO datetime such as 2024-01-31T12:00:00"
                ) from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=tz or UTC)
        try:
            utc = dt.astimezone(UTC)
        except (OverflowError, ValueError):
            raise ValueError(f"{value!r} is outside the years 1 to 9999") from None
        return utc if kind == "timestamptz" else utc.replace(tzinfo=None)
    raise ValueError(f"members of this type cannot be filtered by value ({kind})")
