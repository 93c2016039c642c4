"""Data contracts: what every row of a dataset must satisfy before it is served.

A :class:`Contract` is declared with the dataset (in Python or YAML) and checked
when the dataset is registered and on every append. Rows that break it are not
served and not lost: they go to the quarantine (see :mod:`embedkit.trust.quarantine`)
with the rules they broke. Each rule has a stable name, used in the quarantine,
in metrics and on the status page:

============================  ==================================================
rule name                     broken when
============================  ==================================================
``type:amount``               the value cannot be read as the declared type
``not_null:amount``           the value is missing
``unique:order_id``           another row has the same key (also ``unique:a,b``)
``accepted:status``           the value is not in the accepted list
``range:amount``              the value is below ``min`` or above ``max``
``regex:email``               the text does not match the pattern in full
``references:product_id``     no row of the referenced dataset has the key
``check:refund_le_paid``      the row-level expression is false
============================  ==================================================

A missing value breaks only ``not_null``; every other rule lets it pass, as SQL's
CHECK constraints do. Freshness is a dataset-level rule (the newest time value
is at most ``freshness`` old); it never quarantines rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlglot import exp

from embedkit.errors import Problem

__all__ = ["Contract", "parse_duration", "validate"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object, what: str) -> timedelta:
    """``value`` as a positive timedelta: a timedelta, seconds, or text like ``"15m"``."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value.strip()[:-1].replace(".", "", 1).isdigit():
        text = value.strip()
        unit = _UNITS.get(text[-1].lower())
        if unit is None:
            raise ValueError(f"{what}: unknown unit in {value!r}; use s, m, h, d or w")
        seconds = float(text[:-1]) * unit
    else:
        raise ValueError(f"{what} must be a duration such as '15m', '2h', '7d' or seconds")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{what} must be longer than zero, got {value!r}")
    return timedelta(seconds=seconds)


def _columns(value: object, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise TypeError(f"{what} must be a column name or a list of them, got {value!r}")


def _mapping(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise TypeError(f"{what} must map column names to values, got {value!r}")
    return dict(value)


@dataclass(frozen=True, eq=False)
class Contract:
    """What every row of a dataset must satisfy. Every argument is optional.

    Args:
        types: column -> DuckDB type (``"BIGINT"``, ``"DECIMAL(12,2)"``,
            ``"TIMESTAMP"``). The column is stored as that type; a value that
            cannot be read as it breaks ``type:<column>``.
        not_null: columns that must hold a value. A tenant dataset's tenant key
            is always required (a row without a tenant could be read by no one).
        unique: columns, or lists of columns for a composite key, whose values
            no two rows share (appended rows are checked against stored rows too).
            When a batch holds the same key twice, every copy is quarantined.
        accepted: column -> the only values allowed.
        ranges: column -> ``(min, max)`` or ``{"min": .., "max": ..}``, inclusive;
            ``None`` leaves a side open.
        regex: column -> a pattern the whole text must match (RE2 syntax).
        references: column -> ``"dataset.column"``: the key must exist there. When
            both datasets have tenant keys it must exist for the same tenant.
        checks: name -> a boolean expression over the row, e.g.
            ``{"refund_le_paid": "refund <= quantity * price"}``. It uses the same
            allow-list as model expressions.
        freshness: the newest value of ``freshness_column`` (default: the
            dataset's ``time``) may be at most this old: a timedelta, seconds,
            or text such as ``"2h"``.
        reject_above: the share of a batch that may break the contract; above it
            the whole batch is refused and nothing is stored (default 0.1).
    """

    types: Mapping[str, str] = field(default_factory=dict)
    not_null: Sequence[str] = ()
    unique: Sequence[str | Sequence[str]] = ()
    accepted: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    ranges: Mapping[str, Any] = field(default_factory=dict)
    regex: Mapping[str, str] = field(default_factory=dict)
    references: Mapping[str, str] = field(default_factory=dict)
    checks: Mapping[str, str] = field(default_factory=dict)
    freshness: timedelta | float | str | None = None
    freshness_column: str | None = None
    reject_above: float = 0.1

    def __post_init__(self) -> None:
        put = object.__setattr__
        types = _mapping(self.types, "Contract(types=...)")
        for column, kind in types.items():
            if not isinstance(kind, str) or not kind.strip():
                raise TypeError(f"Contract(types=...): the type of {column!r} must be text")
        put(self, "types", types)
        put(
            self,
            "not_null",
            _columns(self.not_null, "Contract(not_null=...)") if self.not_null else (),
        )
        keys: list[tuple[str, ...]] = []
        unique = [self.unique] if isinstance(self.unique, str) else list(self.unique)
        for entry in unique:
            keys.append(_columns(entry, "Contract(unique=...)"))
        put(self, "unique", tuple(keys))
        accepted = _mapping(self.accepted, "Contract(accepted=...)")
        for column, values in accepted.items():
            if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
                raise TypeError(
                    f"Contract(accepted=...): {column!r} needs a non-empty list of values"
                )
            accepted[column] = tuple(values)
        put(self, "accepted", accepted)
        ranges = {}
        for column, bounds in _mapping(self.ranges, "Contract(ranges=...)").items():
            ranges[column] = _bounds(column, bounds)
        put(self, "ranges", ranges)
        for name in ("regex", "references", "checks"):
            values = _mapping(getattr(self, name), f"Contract({name}=...)")
            for key, text in values.items():
                if not isinstance(text, str) or not text.strip():
                    raise TypeError(f"Contract({name}=...): {key!r} needs text, got {text!r}")
            put(self, name, values)
        if self.freshness is not None:
            put(self, "freshness", parse_duration(self.freshness, "Contract(freshness=...)"))
        if self.freshness_column is not None and not isinstance(self.freshness_column, str):
            raise TypeError("Contract(freshness_column=...) must be one column name")
        share = self.reject_above
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise ValueError(
                f"Contract(reject_above=...) must be a share between 0 and 1 such as 0.1, "
                f"got {share!r}"
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Contract:
        """A contract from its YAML form (the same keys as the arguments)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown contract key(s) {', '.join(unknown)}; valid keys: "
                f"{', '.join(sorted(known))}"
            )
        return cls(**dict(data))

    @property
    def freshness_limit(self) -> timedelta | None:
        """``freshness`` as a timedelta (None when not declared)."""
        value = self.freshness
        return value if isinstance(value, timedelta) else None

    def rule_names(self, tenant_key: str | None = None) -> list[str]:
        """Every row rule's name, in the order they are checked."""
        names = [f"type:{c}" for c in self.types]
        required = list(self.not_null)
        if tenant_key and tenant_key not in required:
            required.insert(0, tenant_key)
        names += [f"not_null:{c}" for c in required]
        names += [f"unique:{','.join(k)}" for k in self.unique]
        names += [f"accepted:{c}" for c in self.accepted]
        names += [f"range:{c}" for c in self.ranges]
        names += [f"regex:{c}" for c in self.regex]
        names += [f"references:{c}" for c in self.references]
        names += [f"check:{n}" for n in self.checks]
        return names

    def describe(self, tenant_key: str | None = None) -> list[dict[str, Any]]:
        """Each rule in words, for the catalog and status page."""
        out: list[dict[str, Any]] = []

        def add(rule: str, text: str) -> None:
            out.append({"rule": rule, "description": text})

        for column, kind in self.types.items():
            add(f"type:{column}", f"{column} is read as {kind.upper()}")
        required = list(self.not_null)
        if tenant_key and tenant_key not in required:
            required.insert(0, tenant_key)
        for column in required:
            add(f"not_null:{column}", f"{column} always has a value")
        for key in self.unique:
            cols = ", ".join(key)
            add(f"unique:{','.join(key)}", f"no two rows share ({cols})")
        for column, values in self.accepted.items():
            listed = ", ".join(repr(v) for v in values[:12])
            more = f" and {len(values) - 12} more" if len(values) > 12 else ""
            add(f"accepted:{column}", f"{column} is one of {listed}{more}")
        for column, (low, high) in self.ranges.items():
            if low is not None and high is not None:
                text = f"{column} is between {low} and {high}"
            elif low is not None:
                text = f"{column} is at least {low}"
            else:
                text = f"{column} is at most {high}"
            add(f"range:{column}", text)
        for column, pattern in self.regex.items():
            add(f"regex:{column}", f"{column} matches /{pattern}/")
        for column, target in self.references.items():
            add(f"references:{column}", f"{column} exists in {target}")
        for name, expression in self.checks.items():
            add(f"check:{name}", f"{expression} holds")
        if self.freshness_limit is not None:
            add("freshness", f"the newest row is at most {_human(self.freshness_limit)} old")
        return out


def _bounds(column: str, bounds: object) -> tuple[Any, Any]:
    where = f"Contract(ranges=...): {column!r}"
    if isinstance(bounds, Mapping):
        extra = set(bounds) - {"min", "max"}
        if extra:
            raise ValueError(f"{where} takes only 'min' and 'max', not {sorted(extra)}")
        low, high = bounds.get("min"), bounds.get("max")
    elif isinstance(bounds, Sequence) and not isinstance(bounds, str) and len(bounds) == 2:
        low, high = bounds[0], bounds[1]
    else:
        raise TypeError(f"{where} needs (min, max) or {{'min': .., 'max': ..}}, got {bounds!r}")
    if low is None and high is None:
        raise ValueError(f"{where} needs a min, a max or both")
    if low is not None and high is not None:
        try:
            if low > high:
                raise ValueError(f"{where} has min {low!r} above max {high!r}")
        except TypeError:
            raise TypeError(f"{where}: min and max must be comparable values") from None
    return (low, high)


def _human(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} seconds"


def problem(dataset: str, message: str, fix: str = "") -> Problem:
    """A contract problem found at registration."""
    return Problem(dataset, "contract", message, fix)


def validate(
    dataset: str,
    contract: Contract,
    columns: Mapping[str, str],
    *,
    time: str | None,
    columns_of: Callable[[str], Mapping[str, str] | None],
) -> list[Problem]:
    """Every problem of ``contract`` against the dataset's ``columns``, named and fixable."""
    from embedkit.dataset import NAME_PATTERN
    from embedkit.semantic.expressions import parse_expression

    problems: list[Problem] = []
    valid = ", ".join(sorted(columns))

    def need(column: str, where: str) -> bool:
        if column in columns:
            return True
        problems.append(
            problem(dataset, f"{where} names unknown column '{column}'", f"use one of: {valid}")
        )
        return False

    for column, kind in contract.types.items():
        if need(column, "types"):
            try:
                exp.DataType.build(kind, dialect="duckdb")
            except Exception:  # sqlglot raises several kinds for a bad type name
                problems.append(
                    problem(
                        dataset,
                        f"types: {kind!r} for '{column}' is not a type",
                        "use a DuckDB type such as BIGINT, DOUBLE, DECIMAL(12,2), VARCHAR, "
                        "DATE or TIMESTAMP",
                    )
                )
    for column in contract.not_null:
        need(column, "not_null")
    for key in contract.unique:
        for column in key:
            need(column, "unique")
    for where, names in (
        ("accepted", contract.accepted),
        ("ranges", contract.ranges),
        ("regex", contract.regex),
    ):
        for column in names:
            need(column, where)
    for column, target in contract.references.items():
        if not need(column, "references"):
            continue
        other, _, target_column = target.partition(".")
        found = columns_of(other) if other and target_column else None
        if found is None:
            problems.append(
                problem(
                    dataset,
                    f"references: '{column}' points at {target!r}, which is not a registered "
                    "dataset column",
                    "write 'dataset.column' of a dataset registered before or with this one",
                )
            )
        elif target_column not in found:
            problems.append(
                problem(
                    dataset,
                    f"references: dataset '{other}' has no column '{target_column}'",
                    f"use one of: {', '.join(sorted(found))}",
                )
            )
    for name, text in contract.checks.items():
        if not NAME_PATTERN.match(name):
            problems.append(
                problem(
                    dataset, f"checks: {name!r} is not a valid check name", "use a_name_like_this"
                )
            )
            continue
        try:
            parsed = parse_expression(text)
        except ValueError as err:
            problems.append(problem(dataset, f"checks: '{name}': {err}"))
            continue
        for column in sorted(parsed.names - set(columns)):
            problems.append(
                problem(
                    dataset,
                    f"checks: '{name}' reads unknown column '{column}'",
                    f"use one of: {valid}",
                )
            )
    if contract.freshness_limit is not None:
        fresh_column = contract.freshness_column or time
        if fresh_column is None:
            problems.append(
                problem(
                    dataset,
                    "freshness needs a time column",
                    "declare the dataset's time= or Contract(freshness_column=...)",
                )
            )
        else:
            need(fresh_column, "freshness")
    return problems
