"""Dashboard filter values: checked against the token, then applied to widget queries.

The embed token decides, the browser only asks: a **locked** param is the value,
whatever the browser sends (a different value is refused with AccessDenied,
never ignored into "no filter"); an **editable** param limits what the viewer
may pick (a list of allowed values, or ``{"min": date, "max": date}`` for date
ranges). Everything else may take any valid value of its filter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from embedkit.embed.resources import (
    Dashboard,
    DashboardFilter,
    DateRangeFilter,
    GrainFilter,
    SelectFilter,
    Widget,
)
from embedkit.errors import AccessDenied, QueryError
from embedkit.filters import MAX_VALUES
from embedkit.query.dates import resolve_range, zone
from embedkit.query.spec import Filter, Query, Time
from embedkit.semantic.members import GRAINS

__all__ = ["apply_params", "check_grant_params", "resolve_params"]

_SCALAR = (str, int, float, bool)


def _normal(flt: DashboardFilter, value: Any, *, trusted: bool = False) -> Any:
    """The canonical form of a filter value (raises QueryError when malformed).

    ``trusted`` values come from the host app (locked params): any valid date
    range is fine for them, not only the presets offered to viewers.
    """
    where = f"filter '{flt.name}'"
    if isinstance(flt, GrainFilter):
        if not isinstance(value, str) or value not in flt.options:
            raise QueryError(f"{where}: grain must be one of {', '.join(flt.options)}")
        return value
    if isinstance(flt, DateRangeFilter):
        if isinstance(value, str) and value:
            if value not in flt.presets and not trusted:
                raise QueryError(f"{where}: {value!r} is not one of the presets")
            return value
        if (
            isinstance(value, list | tuple)
            and len(value) == 2
            and all(isinstance(v, str) for v in value)
        ):
            if not flt.custom and not trusted:
                raise QueryError(f"{where}: pick one of the presets")
            for v in value:
                try:
                    date.fromisoformat(v[:10])
                except ValueError:
                    raise QueryError(f"{where}: {v!r} is not an ISO date") from None
            return (value[0], value[1])
        raise QueryError(f"{where}: a preset name or a pair of ISO dates")
    values = [value] if isinstance(value, _SCALAR) else value
    if not isinstance(values, list | tuple) or not all(
        isinstance(v, _SCALAR) and not isinstance(v, bool) and _encodable(v) for v in values
    ):
        raise QueryError(f"{where}: a list of text or number values")
    if len(values) > MAX_VALUES:
        raise QueryError(f"{where}: at most {MAX_VALUES} values")
    if not flt.multiple and len(values) > 1:
        raise QueryError(f"{where}: pick one value")
    return tuple(dict.fromkeys(values))


def _encodable(value: Any) -> bool:
    """False for text that is not valid Unicode (lone surrogates from JSON escapes)."""
    if not isinstance(value, str):
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _interval(value: Any, now: datetime, timezone: str) -> tuple[datetime, datetime]:
    interval = resolve_range(value, zone(timezone), now)
    return interval.start, interval.end


def _allowed(
    flt: DashboardFilter, value: Any, allowed: Any, *, now: datetime, timezone: str
) -> bool:
    if isinstance(flt, DateRangeFilter) and isinstance(allowed, Mapping):
        start, end = _interval(value, now, timezone)
        low = allowed.get("min")
        high = allowed.get("max")
        if low is not None and start < _interval(str(low), now, timezone)[0]:
            return False
        return not (high is not None and end > _interval(str(high), now, timezone)[1])
    options = [_normal(flt, a) for a in allowed] if isinstance(allowed, list | tuple) else []
    if isinstance(flt, SelectFilter):
        flat = {v for option in options for v in option}
        return all(v in flat for v in value)
    return value in options


def check_grant_params(
    dashboard: Dashboard, locked: Mapping[str, Any], editable: Mapping[str, Any]
) -> None:
    """Refuse locked / editable params that do not fit the dashboard (at mint time)."""
    names = [f.name for f in dashboard.filters]
    for kind, params in (("locked", locked), ("editable", editable)):
        for name, value in params.items():
            flt = dashboard.filter(name)
            if flt is None:
                raise ValueError(
                    f"dashboard '{dashboard.name}' has no filter '{name}' to {kind[:-2]}; "
                    f"filters are: {', '.join(names) or '(none)'}"
                )
            if kind == "locked":
                if value is None or value == "" or value == [] or value == ():
                    raise ValueError(
                        f"locked param '{name}' is empty; a locked param must hold a value "
                        "(an empty one would mean 'no filter')"
                    )
                try:
                    _normal(flt, value, trusted=True)
                except QueryError as err:
                    raise ValueError(f"locked param '{name}': {err}") from None
            elif isinstance(flt, DateRangeFilter) and isinstance(value, Mapping):
                _check_limit(name, value)
            elif not (isinstance(value, list | tuple) and value):
                raise ValueError(
                    f"editable param '{name}' must be a non-empty list of allowed values"
                    + (" or {'min': date, 'max': date}" if isinstance(flt, DateRangeFilter) else "")
                )


def _check_limit(name: str, limit: Mapping[str, Any]) -> None:
    """A date limit is {"min": ISO date, "max": ISO date} (one or both); anything else
    would silently mean "no limit", so it is refused."""
    keys = set(limit)
    if not keys or not keys <= {"min", "max"}:
        raise ValueError(
            f"editable param '{name}' limits dates as {{'min': '2024-01-01', 'max': "
            f"'2024-12-31'}} (one or both); got keys: {', '.join(map(str, keys)) or '(none)'}"
        )
    for key, text in limit.items():
        try:
            date.fromisoformat(str(text))
        except ValueError:
            raise ValueError(
                f"editable param '{name}': {key}={text!r} is not an ISO date"
            ) from None


def resolve_params(
    dashboard: Dashboard,
    sent: Mapping[str, Any],
    *,
    locked: Mapping[str, Any],
    editable: Mapping[str, Any],
    now: datetime,
    timezone: str,
) -> dict[str, Any]:
    """The value of every filter of ``dashboard`` for one request.

    Raises :class:`QueryError` for a malformed or unknown param and
    :class:`AccessDenied` for a change of a locked param or a value outside
    the allowed ones.
    """
    if not isinstance(sent, Mapping):
        raise QueryError("params must be a JSON object of filter name -> value")
    unknown = [n for n in sent if dashboard.filter(n) is None]
    if unknown:
        names = ", ".join(f.name for f in dashboard.filters) or "(none)"
        raise QueryError(f"unknown filter '{unknown[0]}'; filters are: {names}")
    values: dict[str, Any] = {}
    for flt in dashboard.filters:
        if flt.name in locked:
            value = _normal(flt, locked[flt.name], trusted=True)
            if flt.name in sent and _normal(flt, sent[flt.name], trusted=True) != value:
                raise AccessDenied(f"filter '{flt.name}' is locked by this embed")
            values[flt.name] = value
            continue
        value = _normal(flt, sent.get(flt.name, flt.default))
        allowed = editable.get(flt.name)
        if allowed is not None:
            if isinstance(flt, SelectFilter) and not value:
                # "All" under a limit means all of the allowed values, never all values.
                value = tuple(v for option in allowed for v in _normal(flt, option))
            elif not _allowed(flt, value, allowed, now=now, timezone=timezone):
                if flt.name in sent:
                    raise AccessDenied(f"filter '{flt.name}': this value is not allowed here")
                if isinstance(allowed, list | tuple):
                    value = _normal(flt, allowed[0])
                else:  # the default falls outside the date limit: show the limit itself
                    value = _clamp(value, allowed, now=now, timezone=timezone)
        values[flt.name] = value
    return values


def _clamp(
    value: Any, limit: Mapping[str, Any], *, now: datetime, timezone: str
) -> tuple[str, str]:
    """The part of date range ``value`` inside ``limit``, as a pair of ISO dates."""
    start, end = _interval(value, now, timezone)
    if "min" in limit:
        start = max(start, _interval(str(limit["min"]), now, timezone)[0])
    if "max" in limit:
        end = min(end, _interval(str(limit["max"]), now, timezone)[1])
    if end <= start:  # no overlap: the whole limit
        lo = limit.get("min", limit.get("max"))
        hi = limit.get("max", limit.get("min"))
        return (str(lo), str(hi))
    last = end - timedelta(microseconds=1)
    return (start.date().isoformat(), last.date().isoformat())


def allowed_presets(
    flt: DateRangeFilter, allowed: Any, *, now: datetime, timezone: str
) -> list[str]:
    """The presets of ``flt`` a viewer limited by ``allowed`` may pick."""
    if isinstance(allowed, list | tuple):
        return [p for p in flt.presets if p in allowed]
    if isinstance(allowed, Mapping):
        return [p for p in flt.presets if _allowed(flt, p, allowed, now=now, timezone=timezone)]
    return list(flt.presets)


def unlimited(
    dashboard: Dashboard,
    widgets: Sequence[Widget],
    locked: Mapping[str, Any],
    editable: Mapping[str, Any],
    model: Any,
) -> list[tuple[str, str]]:
    """(filter, widget) pairs where a locked or limited filter cannot limit the widget.

    Such a widget would show data outside the lock, so embeds refuse it (fail closed).
    """
    out = []
    for flt in dashboard.filters:
        if isinstance(flt, GrainFilter) or (flt.name not in locked and flt.name not in editable):
            continue  # a grain shows the same rows, only bucketed differently
        for widget in widgets:
            if not applies(flt, widget, model):
                out.append((flt.name, widget.name))
    return out


def _reachable(model: Any, root: str) -> set[str]:
    seen = {root}
    todo = [root]
    while todo:
        current = todo.pop()
        for edge in model.edges:
            if edge.source == current and edge.target not in seen:
                seen.add(edge.target)
                todo.append(edge.target)
    return seen


def _root(widget: Widget) -> str:
    q = widget.query
    first = (q.measures or q.dimensions or tuple(t.dimension for t in q.time) or ("",))[0]
    return first.split(".")[0]


def applies(flt: DashboardFilter, widget: Widget, model: Any) -> bool:
    """Whether ``flt`` limits ``widget`` (its dimension is reachable from the widget)."""
    if isinstance(flt, GrainFilter):  # time parts (hour_of_day...) are not switched
        return any(t.grain in GRAINS for t in widget.query.time)
    dataset = flt.dimension.split(".")[0]
    return dataset in _reachable(model, _root(widget))


def apply_params(
    widget: Widget, dashboard: Dashboard, values: Mapping[str, Any], model: Any
) -> Query:
    """``widget``'s query with the dashboard's filter values applied."""
    q = widget.query
    time = list(q.time)
    filters = list(q.filters)
    for flt in dashboard.filters:
        if not applies(flt, widget, model):
            continue
        value = values[flt.name]
        if isinstance(flt, GrainFilter):
            time = [replace(t, grain=value) if t.grain in GRAINS else t for t in time]
        elif isinstance(flt, DateRangeFilter):
            hits = [i for i, t in enumerate(time) if t.dimension == flt.dimension]
            for i in hits:
                # The filter's range replaces any ranges the widget compared.
                time[i] = replace(time[i], date_range=value, compare_date_range=None)
            if not hits:
                time.append(Time(flt.dimension, date_range=value))
        elif value:
            filters.append(Filter(flt.dimension, "equals", tuple(value)))
    return replace(q, time=tuple(time), filters=tuple(filters))


def granted_widgets(dashboard: Dashboard, resource: str) -> Sequence[Widget]:
    """The widgets an embed of ``resource`` may read."""
    _, _, only = resource.partition("/")
    return [w for w in dashboard.widgets if not only or w.name == only]
