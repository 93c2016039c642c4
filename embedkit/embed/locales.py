"""Locales: checked BCP 47 tags and the d3 time-format locale charts need.

Numbers are formatted in the browser with ``Intl``; month and weekday names on
chart axes come from d3's locale tables, which vl-convert ships.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, cast

__all__ = ["check_locale", "time_format_locale"]

_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def check_locale(locale: str) -> str:
    """``locale`` if it is a plain BCP 47 tag such as ``en-US``; ValueError otherwise."""
    if not isinstance(locale, str) or not _TAG.match(locale):
        raise ValueError(f"locale {locale!r} is not a BCP 47 tag such as 'en-US' or 'de-DE'")
    return locale


def check_currency(currency: str) -> str:
    """``currency`` if it is an ISO 4217 code such as ``EUR``; ValueError otherwise."""
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise ValueError(f"currency {currency!r} is not an ISO 4217 code such as 'USD' or 'EUR'")
    return currency


@lru_cache(maxsize=64)
def time_format_locale(locale: str) -> dict[str, Any] | None:
    """d3's time-format locale for ``locale`` (``de`` finds ``de-DE``), or None."""
    import vl_convert

    language = locale.split("-")[0].lower()
    candidates = [locale, f"{language}-{language.upper()}"]
    for name in candidates:
        try:
            found = vl_convert.get_time_format_locale(cast(Any, name))
        except (ValueError, RuntimeError):
            continue
        return dict(found)
    return None
