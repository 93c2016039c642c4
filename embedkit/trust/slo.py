"""Service-level objectives: the :class:`SLO` a dataset promises, and the math that scores it.

An SLO yields up to five objectives, each a target share of "good" events:

============  ===============================================  ========================
objective     good                                             out of
============  ===============================================  ========================
availability  queries answered without a server fault          all queries
error_rate    queries that succeeded                           all queries
latency       successful queries within ``latency_ms``         successful queries
freshness     seconds the newest time value was recent enough  seconds observed
defect_free   received rows that passed the contract           received rows
============  ===============================================  ========================

Everything here is pure: :class:`~embedkit.trust.monitor.Monitor` counts events into
:class:`Tally` values and :func:`score` turns them into :class:`Objective` values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

__all__ = [
    "OBJECTIVES",
    "SLO",
    "Objective",
    "ObjectiveName",
    "Tally",
    "describe",
    "parse_duration",
    "score",
]

ObjectiveName = Literal["availability", "error_rate", "latency", "freshness", "defect_free"]
OBJECTIVES: tuple[ObjectiveName, ...] = (
    "availability",
    "error_rate",
    "latency",
    "freshness",
    "defect_free",
)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_EXAMPLES = {
    "availability": "0.99",
    "error_rate": "0.01",
    "latency_target": "0.95",
    "freshness_target": "0.99",
    "defect_free": "0.95",
}
_KEYS = (
    "availability",
    "error_rate",
    "latency_p95_ms",
    "latency_ms",
    "latency_target",
    "freshness",
    "freshness_target",
    "defect_free",
    "window",
)


def parse_duration(value: object, name: str) -> timedelta:
    """Read a positive duration: a timedelta, a number of seconds, or ``"15m"``/``"2h"``/``"7d"``.

    Units are s, m, h, d and w. Raises ``TypeError`` or ``ValueError`` naming ``name``.
    """
    hint = f"{name} must be a positive duration such as '15m', '2h', '7d' or a number of seconds"
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"{hint}, got {value!r} ({type(value).__name__})")
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"{hint}, got {value!r}")
        result = timedelta(seconds=float(match[1]) * _UNITS[match[2]])
    elif not math.isfinite(value):
        raise ValueError(f"{hint}, got {value!r}")
    else:
        result = timedelta(seconds=value)
    if result <= timedelta(0):
        raise ValueError(f"{hint}, got {value!r}")
    return result


def _share(name: str, value: object) -> float:
    example = _EXAMPLES[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"{name} must be a share between 0 and 1 such as {example}, "
            f"got {value!r} ({type(value).__name__})"
        )
    if not 0 < value < 1:
        raise ValueError(f"{name} must be a share between 0 and 1 such as {example}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class SLO:
    """The service levels a dataset promises; any objective left ``None`` is not measured.

    ``freshness`` and ``window`` also accept a number of seconds or a string such as
    ``"15m"``, ``"2h"``, ``"7d"``; they are normalised to :class:`~datetime.timedelta`.
    """

    availability: float | None = None  # share of queries answered without a server fault
    error_rate: float | None = None  # MAX share of queries failing for any reason
    latency_ms: float | None = None  # threshold in ms ...
    latency_target: float = 0.95  # ... that this share of successful queries meets
    freshness: timedelta | float | str | None = None  # max age of the newest time value
    freshness_target: float = 0.99  # share of the window during which the data was fresh
    defect_free: float | None = None  # MIN share of received rows that pass the contract
    window: timedelta | float | str = timedelta(days=7)

    def __post_init__(self) -> None:
        for name in ("availability", "error_rate", "defect_free"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _share(name, getattr(self, name)))
        for name in ("latency_target", "freshness_target"):
            object.__setattr__(self, name, _share(name, getattr(self, name)))
        ms: object = self.latency_ms
        if ms is not None:
            if isinstance(ms, bool) or not isinstance(ms, int | float):
                raise TypeError(
                    f"latency_ms must be a number of milliseconds such as 250, got {ms!r} "
                    f"({type(ms).__name__})"
                )
            if not (math.isfinite(ms) and ms > 0):
                raise ValueError(
                    f"latency_ms must be a positive number of milliseconds such as 250, got {ms!r}"
                )
            object.__setattr__(self, "latency_ms", float(ms))
        if self.freshness is not None:
            object.__setattr__(self, "freshness", parse_duration(self.freshness, "freshness"))
        object.__setattr__(self, "window", parse_duration(self.window, "window"))

    @property
    def max_age(self) -> timedelta | None:
        """``freshness`` as a timedelta (None when not measured)."""
        return self.freshness if isinstance(self.freshness, timedelta) else None

    @property
    def span(self) -> timedelta:
        """``window`` as a timedelta."""
        assert isinstance(self.window, timedelta)  # normalised in __post_init__
        return self.window

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> SLO:
        """Build an SLO from YAML-style keys; ``where`` prefixes every error message.

        ``latency_p95_ms: 300`` is short for ``latency_ms: 300`` with ``latency_target: 0.95``.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"{where}: slo must be a mapping of {', '.join(_KEYS)}, got {data!r}")
        unknown = sorted(str(key) for key in data if key not in _KEYS)
        if unknown:
            raise ValueError(
                f"{where}: unknown SLO key{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(k) for k in unknown)}; valid keys are: {', '.join(_KEYS)}"
            )
        args = dict(data)
        if "latency_p95_ms" in args:
            if "latency_ms" in args or "latency_target" in args:
                raise ValueError(
                    f"{where}: give either latency_p95_ms, or latency_ms with latency_target, "
                    "not both"
                )
            args["latency_ms"] = args.pop("latency_p95_ms")
            args["latency_target"] = 0.95
        try:
            return cls(**args)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{where}: {exc}") from None

    def objectives(self) -> tuple[tuple[ObjectiveName, float], ...]:
        """The measured objectives as (name, target share of good events), in a fixed order."""
        targets: dict[ObjectiveName, float | None] = {
            "availability": self.availability,
            "error_rate": None if self.error_rate is None else 1 - self.error_rate,
            "latency": None if self.latency_ms is None else self.latency_target,
            "freshness": None if self.freshness is None else self.freshness_target,
            "defect_free": self.defect_free,
        }
        return tuple((name, t) for name, t in targets.items() if t is not None)


@dataclass(frozen=True)
class Tally:
    """Event counts over a span of time (the whole window, or one bucket of it)."""

    queries: int = 0
    no_fault: int = 0  # queries without a server fault
    ok: int = 0  # queries that succeeded
    fast: int = 0  # successful queries within the SLO's latency_ms
    received: int = 0  # rows received in accepted batches
    passed: int = 0  # of those, rows that passed the contract
    fresh_seconds: float = 0.0
    observed_seconds: float = 0.0

    def good_total(self, name: ObjectiveName) -> tuple[float, float]:
        """The (good, total) events of one objective."""
        pairs: dict[str, tuple[float, float]] = {
            "availability": (self.no_fault, self.queries),
            "error_rate": (self.ok, self.queries),
            "latency": (self.fast, self.ok),
            "freshness": (min(self.fresh_seconds, self.observed_seconds), self.observed_seconds),
            "defect_free": (self.passed, self.received),
        }
        good, total = pairs[name]
        return float(good), float(total)


@dataclass(frozen=True)
class Objective:
    """One objective scored over the window.

    ``budget`` is the number of bad events the target allows (``(1 - target) * total``),
    ``spent`` the bad events seen. ``budget_left`` is ``1 - spent / budget``: 1.0 when
    nothing was spent, 0.0 when exactly all of it was, negative when overspent (-1.0 means
    twice the budget). With no events (``total == 0``) the budget is 0 and ``budget_left``
    is 1.0 and ``met`` is True; since targets lie strictly between 0 and 1, this is the
    only way the budget can be 0.
    """

    name: ObjectiveName
    target: float
    good: float
    total: float
    description: str
    series: tuple[tuple[datetime, float | None], ...] = ()  # (bucket start, attainment)
    attainment: float | None = field(init=False)
    met: bool = field(init=False)
    budget: float = field(init=False)
    spent: float = field(init=False)
    budget_left: float = field(init=False)

    def __post_init__(self) -> None:
        if not 0 < self.target < 1:
            raise ValueError(f"target must be a share between 0 and 1, got {self.target!r}")
        if not 0 <= self.good <= self.total:
            raise ValueError(f"good must lie between 0 and total, got {self.good!r}")
        attainment = self.good / self.total if self.total > 0 else None
        budget = (1 - self.target) * self.total
        spent = self.total - self.good
        object.__setattr__(self, "attainment", attainment)
        object.__setattr__(self, "met", attainment is None or attainment >= self.target)
        object.__setattr__(self, "budget", budget)
        object.__setattr__(self, "spent", spent)
        # (good - target * total) / budget equals 1 - spent / budget, with less rounding noise
        left = (self.good - self.target * self.total) / budget if budget > 0 and spent else 1.0
        object.__setattr__(self, "budget_left", left)


def score(
    slo: SLO, total: Tally, series: Sequence[tuple[datetime, Tally]] = ()
) -> tuple[Objective, ...]:
    """Score each objective of ``slo`` from the window's ``total`` and its per-bucket tallies."""
    span = _words(slo.span)
    result = []
    for name, target in slo.objectives():
        good, count = total.good_total(name)
        points = []
        for start, tally in series:
            g, t = tally.good_total(name)
            points.append((start, g / t if t > 0 else None))
        result.append(
            Objective(
                name=name,
                target=target,
                good=good,
                total=count,
                description=f"{describe(slo, name, target)} over {span}",
                series=tuple(points),
            )
        )
    return tuple(result)


def describe(slo: SLO, name: ObjectiveName, target: float) -> str:
    """An objective in words, e.g. "99% of queries answered without a server fault"."""
    if name == "availability":
        return f"{_pct(target)} of queries answered without a server fault"
    if name == "error_rate":
        return f"{_pct(target)} of queries answered, at most {_pct(1 - target)} failing"
    if name == "latency":
        return f"{_pct(target)} of successful queries answered within {slo.latency_ms:g} ms"
    if name == "freshness":
        assert slo.max_age is not None
        return f"data at most {_words(slo.max_age)} old during {_pct(target)} of the time"
    return f"{_pct(target)} of received rows pass the contract"


def _pct(share: float) -> str:
    return f"{round(share * 100, 6):g}%"


def _words(span: timedelta) -> str:
    seconds = span.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} second{'s' if seconds != 1 else ''}"
