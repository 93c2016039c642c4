"""Caller filters as plan conditions: members checked, operators checked, values bound.

Used by the scoping step (:mod:`embedkit.scope`): every filter value, and every
instant a date range resolves to, becomes a parameter slot here; nothing of the
caller's reaches SQL text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from embedkit.errors import QueryError
from embedkit.plan import BoolNode, Condition, Node, Slot
from embedkit.query.dates import Interval, resolve_range
from embedkit.query.spec import MAX_DEPTH, And, Filter, FilterNode, Or
from embedkit.semantic.model import Member, MemberKind, ValueKind
from embedkit.values import coerce

__all__ = [
    "MAX_DEPTH",
    "MAX_FILTERS",
    "MAX_PAGE",
    "MAX_VALUES",
    "Filters",
    "Params",
    "filter_members",
]

_ORDERED = ("integer", "number", "date", "timestamp", "timestamptz", "string")
_TEMPORAL = ("date", "timestamp", "timestamptz")
_DIMENSION_OPS: dict[str, tuple[str, ...]] = {
    "equals": (),
    "notEquals": (),
    "in": (),
    "notIn": (),
    "set": (),
    "notSet": (),
    "gt": _ORDERED,
    "gte": _ORDERED,
    "lt": _ORDERED,
    "lte": _ORDERED,
    "between": _ORDERED,
    "notBetween": _ORDERED,
    "contains": ("string",),
    "notContains": ("string",),
    "startsWith": ("string",),
    "notStartsWith": ("string",),
    "endsWith": ("string",),
    "notEndsWith": ("string",),
    "inDateRange": _TEMPORAL,
    "onTheDate": _TEMPORAL,
    "notInDateRange": _TEMPORAL,
    "beforeDate": _TEMPORAL,
    "beforeOrOnDate": _TEMPORAL,
    "afterDate": _TEMPORAL,
    "afterOrOnDate": _TEMPORAL,
}
_MEASURE_OPS = (
    "equals",
    "notEquals",
    "in",
    "notIn",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "notBetween",
    "set",
    "notSet",
)
#: Limits that keep one request from tying up a worker (measured: thousands of
#: filters make DuckDB's planner take seconds).
MAX_FILTERS = 100
MAX_VALUES = 1000
MAX_PAGE = 2**53

_ONE_VALUE = (
    "gt",
    "gte",
    "lt",
    "lte",
    "beforeDate",
    "beforeOrOnDate",
    "afterDate",
    "afterOrOnDate",
)


class Params:
    """The values of a plan, in slot order."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> Slot:
        self.values.append(value)
        return Slot(len(self.values) - 1)


class Filters:
    """Turns filter trees into plan nodes for one query."""

    def __init__(
        self,
        member: Callable[[str, Sequence[MemberKind], str], Member],
        params: Params,
        tz: ZoneInfo,
        now: datetime,
    ) -> None:
        self.member = member
        self.params = params
        self.tz = tz
        self.now = now
        self.leaves = 0

    def value(self, member: Member, raw: Any, what: str) -> Slot:
        try:
            return self.params.add(coerce(raw, member.value_kind, tz=self.tz))
        except ValueError as err:
            raise QueryError(f"query: {what} on '{member.qualified}': {err}") from None

    def interval(self, member: Member, rng: str | Sequence[str]) -> Interval:
        try:
            return resolve_range(rng, self.tz, self.now)
        except QueryError as err:
            reason = str(err).removeprefix("query: ")
            raise QueryError(f"query: date range of '{member.qualified}': {reason}") from None

    def instant(self, member: Member, point: datetime) -> Slot:
        try:
            return self.params.add(_instant(point, member.value_kind))
        except (OverflowError, ValueError):
            raise QueryError(
                f"query: a date on '{member.qualified}' reaches outside the years 1 to 9999"
            ) from None

    def range_condition(self, member: Member, interval: Interval, negate: bool = False) -> Node:
        start = self.instant(member, interval.start)
        end = self.instant(member, interval.end)
        if negate:
            return BoolNode(
                "or",
                (
                    Condition(member.qualified, "lt", (start,)),
                    Condition(member.qualified, "gte", (end,)),
                ),
            )
        return BoolNode(
            "and",
            (
                Condition(member.qualified, "gte", (start,)),
                Condition(member.qualified, "lt", (end,)),
            ),
        )

    def condition(self, f: Filter) -> tuple[Node, bool]:
        """A filter leaf as a plan node, and whether it is on a measure."""
        member = self.member(f.member, ("dimension", "time", "measure"), "member")
        op = f.operator
        is_measure = member.kind == "measure"
        allowed_kinds = _DIMENSION_OPS.get(op)
        if allowed_kinds is None or (is_measure and op not in _MEASURE_OPS):
            ops = _MEASURE_OPS if is_measure else tuple(_DIMENSION_OPS)
            raise QueryError(
                f"query: operator '{op}' cannot filter '{member.qualified}'; use one of: "
                f"{', '.join(ops)}"
            )
        if allowed_kinds and member.value_kind not in allowed_kinds:
            raise QueryError(
                f"query: operator '{op}' needs a {' or '.join(allowed_kinds)} member, but "
                f"'{member.qualified}' is {member.dtype}"
            )
        values = f.values
        name = member.qualified
        if op in ("set", "notSet"):
            if values:
                raise QueryError(f"query: operator '{op}' on '{name}' takes no values")
            return Condition(name, op, ()), is_measure
        if not values:
            raise QueryError(f"query: operator '{op}' on '{name}' needs at least one value")
        if any(v is None for v in values):
            raise QueryError(
                f"query: values of '{op}' on '{name}' must not be null; use 'set' / 'notSet'"
            )
        if op in _ONE_VALUE and len(values) != 1:
            raise QueryError(f"query: operator '{op}' on '{name}' takes exactly one value")
        if op in ("between", "notBetween") and len(values) != 2:
            raise QueryError(f"query: operator '{op}' on '{name}' takes exactly two values")
        if op == "onTheDate":
            if len(values) != 1 or not isinstance(values[0], str):
                raise QueryError(f"query: 'onTheDate' on '{name}' takes one ISO date")
            return self.range_condition(member, self.interval(member, values[0])), False
        if op in ("inDateRange", "notInDateRange"):
            if len(values) not in (1, 2) or not all(isinstance(v, str) for v in values):
                raise QueryError(
                    f"query: '{op}' on '{name}' takes a relative range ('last 7 days') "
                    "or two ISO dates"
                )
            rng: str | tuple[str, ...] = values[0] if len(values) == 1 else tuple(values)
            interval = self.interval(member, rng)
            return self.range_condition(member, interval, negate=op == "notInDateRange"), False
        if op in ("beforeDate", "beforeOrOnDate", "afterDate", "afterOrOnDate"):
            text = values[0]
            if not isinstance(text, str):
                raise QueryError(f"query: '{op}' on '{name}' takes an ISO date string")
            try:
                point = _point(text, self.tz, end=op in ("beforeOrOnDate", "afterDate"))
            except (OverflowError, ValueError):
                raise QueryError(
                    f"query: '{op}' on '{name}': {text!r} reaches outside the years 1 to 9999"
                ) from None
            except QueryError as err:
                reason = str(err).removeprefix("query: ")
                raise QueryError(f"query: '{op}' on '{name}': {reason}") from None
            internal = "lt" if op.startswith("before") else "gte"
            return Condition(name, internal, (self.instant(member, point),)), False
        slots = tuple(self.value(member, v, f"'{op}'") for v in values)
        if op == "equals":
            return Condition(name, "eq" if len(slots) == 1 else "in", slots), is_measure
        if op == "notEquals":
            return Condition(name, "ne" if len(slots) == 1 else "notIn", slots), is_measure
        return Condition(name, op, slots), is_measure

    def node(self, f: FilterNode, depth: int = 0) -> tuple[Node, bool]:
        if depth > MAX_DEPTH:
            raise QueryError(f"query: filters nest deeper than {MAX_DEPTH} levels")
        if isinstance(f, Filter):
            self.leaves += 1
            if self.leaves > MAX_FILTERS:
                raise QueryError(f"query: more than {MAX_FILTERS} filters")
            if len(f.values) > MAX_VALUES:
                raise QueryError(
                    f"query: a filter on '{f.member}' has more than {MAX_VALUES} values"
                )
            return self.condition(f)
        if not isinstance(f, And | Or):
            raise QueryError(f"query: a filter must be Filter, And or Or, not {type(f).__name__}")
        if not f.items:
            raise QueryError("query: an 'and' / 'or' filter needs at least one item")
        parts = [self.node(item, depth + 1) for item in f.items]
        kinds = {is_measure for _, is_measure in parts}
        if len(kinds) > 1:
            raise QueryError(
                "query: one 'and' / 'or' group mixes measure and dimension filters; measure "
                "filters apply after aggregation, so put them in their own group"
            )
        return BoolNode(
            "and" if isinstance(f, And) else "or", tuple(n for n, _ in parts)
        ), kinds.pop()


def _point(text: str, tz: ZoneInfo, *, end: bool) -> datetime:
    from embedkit.query.dates import _parse_point

    return _parse_point(text, tz, end=end)


def _instant(point: datetime, kind: ValueKind) -> Any:
    if kind == "date":
        local = point.replace(tzinfo=None)
        d = local.date()
        return d if local.time() == datetime.min.time() else d + timedelta(days=1)
    utc = point.astimezone(UTC)
    return utc if kind == "timestamptz" else utc.replace(tzinfo=None)


def filter_members(f: FilterNode) -> list[str]:
    if isinstance(f, Filter):
        return [f.member]
    return [m for item in f.items for m in filter_members(item)]
