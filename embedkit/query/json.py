"""The JSON form of a query, compatible with Cube's REST query format where they overlap.

:data:`QUERY_JSON_SCHEMA` describes it (JSON Schema draft 2020-12). Parsing is
strict: an unknown key, a wrong type or an unknown operator is a
:class:`~embedkit.errors.QueryError` that says where and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from embedkit.errors import QueryError
from embedkit.query.spec import MAX_DEPTH, OPERATORS, And, Filter, FilterNode, Or, Query, Time
from embedkit.semantic.members import GRAINS, PARTS

__all__ = ["QUERY_JSON_SCHEMA", "query_from_json", "query_to_json"]

_GRAINS = [*GRAINS, *PARTS]  # truncations, then time parts (hour_of_day, day_of_week)
_DATE_RANGE: dict[str, Any] = {
    "oneOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
    ]
}
_VALUE = {"type": ["string", "number", "boolean", "null"]}

QUERY_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "embedkit:query",
    "title": "embedkit query",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "measures": {"type": "array", "items": {"type": "string"}},
        "dimensions": {"type": "array", "items": {"type": "string"}},
        "timeDimensions": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["dimension"],
                "properties": {
                    "dimension": {"type": "string"},
                    "granularity": {"enum": [*_GRAINS, None]},
                    "dateRange": _DATE_RANGE,
                    "compareDateRange": {"type": "array", "items": _DATE_RANGE, "minItems": 1},
                },
            },
        },
        "filters": {"type": "array", "items": {"$ref": "#/$defs/filter"}},
        "segments": {"type": "array", "items": {"type": "string"}},
        "order": {
            "oneOf": [
                {"type": "object", "additionalProperties": {"enum": ["asc", "desc"]}},
                {
                    "type": "array",
                    "items": {
                        "type": "array",
                        "prefixItems": [{"type": "string"}, {"enum": ["asc", "desc"]}],
                        "minItems": 2,
                        "maxItems": 2,
                    },
                },
            ]
        },
        "limit": {"type": "integer", "minimum": 0},
        "offset": {"type": "integer", "minimum": 0},
        "timezone": {"type": "string"},
        "total": {"type": "boolean"},
        "compare": {"enum": ["previous_period", None]},
        "renewQuery": {"type": "boolean"},
        "ungrouped": {"const": False},
    },
    "$defs": {
        "filter": {
            "oneOf": [
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["operator"],
                    "anyOf": [{"required": ["member"]}, {"required": ["dimension"]}],
                    "properties": {
                        "member": {"type": "string"},
                        "dimension": {"type": "string"},
                        "operator": {"enum": list(OPERATORS)},
                        "values": {"type": "array", "items": _VALUE},
                    },
                },
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["and"],
                    "properties": {"and": {"type": "array", "items": {"$ref": "#/$defs/filter"}}},
                },
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["or"],
                    "properties": {"or": {"type": "array", "items": {"$ref": "#/$defs/filter"}}},
                },
            ]
        }
    },
}

_KEYS = set(QUERY_JSON_SCHEMA["properties"])


def _strings(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise QueryError(f"query: '{key}' must be a list of member names (strings)")
    return tuple(value)


def _date_range(value: Any, where: str) -> str | tuple[str, str]:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) and v for v in value):
        return (value[0], value[1])
    raise QueryError(
        f"query: {where} must be a relative range such as 'last 7 days' or a pair of ISO "
        "dates ['2024-01-01', '2024-01-31']"
    )


def _filter(data: Any, where: str, depth: int = 0) -> FilterNode:
    if depth > MAX_DEPTH:
        raise QueryError(f"query: filters nest deeper than {MAX_DEPTH} levels")
    if not isinstance(data, Mapping):
        raise QueryError(f"query: {where} must be an object")
    for logical, cls in (("and", And), ("or", Or)):
        if logical in data:
            if set(data) != {logical} or not isinstance(data[logical], list):
                raise QueryError(
                    f"query: {where} with '{logical}' must hold only a list of filters"
                )
            items = [
                _filter(f, f"{where}.{logical}[{i}]", depth + 1)
                for i, f in enumerate(data[logical])
            ]
            return cast(FilterNode, cls(*items))
    unknown = set(data) - {"member", "dimension", "operator", "values"}
    if unknown:
        raise QueryError(
            f"query: {where} has unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
            "a filter has member, operator and values, or and / or"
        )
    member = data.get("member", data.get("dimension"))
    if not isinstance(member, str):
        raise QueryError(f"query: {where} needs 'member' (a member name)")
    operator = data.get("operator")
    if operator not in OPERATORS:
        raise QueryError(
            f"query: {where} has operator {operator!r}; operators are: {', '.join(OPERATORS)}"
        )
    values = data.get("values", [])
    if not isinstance(values, list):
        raise QueryError(f"query: {where} 'values' must be a list")
    for v in values:
        if not (v is None or isinstance(v, str | int | float | bool)):
            raise QueryError(f"query: {where} values must be strings, numbers or booleans")
    return Filter(member, operator, tuple(values))


def query_from_json(data: Mapping[str, Any]) -> Query:
    """Build a :class:`Query` from its JSON form, with errors that say where."""
    if not isinstance(data, Mapping):
        raise QueryError("query: must be a JSON object")
    unknown = set(data) - _KEYS
    if unknown:
        raise QueryError(
            f"query: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
            f"keys are: {', '.join(sorted(_KEYS))}"
        )
    if data.get("ungrouped"):
        raise QueryError("query: 'ungrouped' queries are not supported; list dimensions instead")
    times: list[Time] = []
    raw_times = data.get("timeDimensions", [])
    if not isinstance(raw_times, list):
        raise QueryError("query: 'timeDimensions' must be a list")
    for i, td in enumerate(raw_times):
        where = f"timeDimensions[{i}]"
        if not isinstance(td, Mapping) or not isinstance(td.get("dimension"), str):
            raise QueryError(f"query: {where} needs 'dimension' (a time dimension name)")
        extra = set(td) - {"dimension", "granularity", "dateRange", "compareDateRange"}
        if extra:
            raise QueryError(
                f"query: {where} has unknown key(s) {', '.join(sorted(map(str, extra)))}"
            )
        grain = td.get("granularity")
        if grain is not None and grain not in _GRAINS:
            raise QueryError(
                f"query: {where} has granularity {grain!r}; grains are: {', '.join(GRAINS)}; "
                f"time parts are: {', '.join(PARTS)}"
            )
        date_range = td.get("dateRange")
        compare = td.get("compareDateRange")
        if compare is not None and (not isinstance(compare, list) or not compare):
            raise QueryError(f"query: {where}.compareDateRange must be a non-empty list of ranges")
        times.append(
            Time(
                td["dimension"],
                grain,
                None if date_range is None else _date_range(date_range, f"{where}.dateRange"),
                None
                if compare is None
                else tuple(
                    _date_range(r, f"{where}.compareDateRange[{k}]") for k, r in enumerate(compare)
                ),
            )
        )
    raw_filters = data.get("filters", [])
    if not isinstance(raw_filters, list):
        raise QueryError("query: 'filters' must be a list")
    filters = tuple(_filter(f, f"filters[{i}]") for i, f in enumerate(raw_filters))
    order: tuple[tuple[str, Any], ...] | None = None
    raw_order = data.get("order")
    if isinstance(raw_order, Mapping):
        order = tuple(raw_order.items())
    elif isinstance(raw_order, list):
        if not all(isinstance(o, list | tuple) and len(o) == 2 for o in raw_order):
            raise QueryError("query: 'order' as a list holds [member, 'asc' | 'desc'] pairs")
        order = tuple((o[0], o[1]) for o in raw_order)
    elif raw_order is not None:
        raise QueryError("query: 'order' must be an object or a list of pairs")
    if order:
        for member, direction in order:
            if not isinstance(member, str) or direction not in ("asc", "desc"):
                raise QueryError(f"query: order of {member!r} must be 'asc' or 'desc'")
    paging = {}
    for key in ("limit", "offset"):
        value = data.get(key)
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON has one number type: 5.0 is 5
        paging[key] = value
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise QueryError(f"query: '{key}' must be a non-negative integer")
    timezone = data.get("timezone", "UTC")
    if not isinstance(timezone, str):
        raise QueryError("query: 'timezone' must be an IANA zone name such as 'Europe/Paris'")
    total = data.get("total", False)
    if not isinstance(total, bool):
        raise QueryError("query: 'total' must be true or false")
    compare_mode = data.get("compare")
    if compare_mode not in (None, "previous_period"):
        raise QueryError("query: 'compare' must be 'previous_period' or absent")
    return Query(
        measures=_strings(data, "measures"),
        dimensions=_strings(data, "dimensions"),
        time=tuple(times),
        filters=filters,
        segments=_strings(data, "segments"),
        order=order,
        limit=paging["limit"],
        offset=paging["offset"],
        timezone=timezone,
        total=total,
        compare=compare_mode,
    )


def _filter_to_json(node: FilterNode) -> dict[str, Any]:
    if isinstance(node, And):
        return {"and": [_filter_to_json(n) for n in node.items]}
    if isinstance(node, Or):
        return {"or": [_filter_to_json(n) for n in node.items]}
    return {"member": node.member, "operator": node.operator, "values": list(node.values)}


def _range_to_json(r: str | Sequence[str]) -> str | list[str]:
    return r if isinstance(r, str) else list(r)


def query_to_json(query: Query) -> dict[str, Any]:
    """The JSON form of ``query``; ``query_from_json`` reads it back unchanged."""
    out: dict[str, Any] = {}
    if query.measures:
        out["measures"] = list(query.measures)
    if query.dimensions:
        out["dimensions"] = list(query.dimensions)
    if query.time:
        tds = []
        for t in query.time:
            td: dict[str, Any] = {"dimension": t.dimension}
            if t.grain:
                td["granularity"] = t.grain
            if t.date_range is not None:
                td["dateRange"] = _range_to_json(t.date_range)
            if t.compare_date_range is not None:
                td["compareDateRange"] = [_range_to_json(r) for r in t.compare_date_range]
            tds.append(td)
        out["timeDimensions"] = tds
    if query.filters:
        out["filters"] = [_filter_to_json(f) for f in query.filters]
    if query.segments:
        out["segments"] = list(query.segments)
    if query.order is not None:
        out["order"] = [[m, d] for m, d in query.order]
    if query.limit is not None:
        out["limit"] = query.limit
    if query.offset is not None:
        out["offset"] = query.offset
    if query.timezone != "UTC":
        out["timezone"] = query.timezone
    if query.total:
        out["total"] = True
    if query.compare:
        out["compare"] = query.compare
    return out
