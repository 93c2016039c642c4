"""The :class:`Retention` policy a dataset declares (applied by embedkit.live.retention)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

__all__ = ["Retention"]

Aggregate = Literal["sum", "avg", "min", "max"]
_GRAINS = ("minute", "hour", "day")
_AGGREGATES = ("sum", "avg", "min", "max")


@dataclass(frozen=True)
class Retention:
    """Keep raw rows for ``keep`` (``"2d"``, ``"6h"``, a timedelta), then roll them up
    into one row per ``grain`` (``minute``, ``hour`` or ``day``), aggregating each
    column of ``aggregate`` (``{"energy_kwh": "sum", "indoor_c": "avg"}``)."""

    keep: timedelta | str | float
    grain: str = "hour"
    aggregate: Mapping[str, Aggregate] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from embedkit.trust.slo import parse_duration

        object.__setattr__(self, "keep", parse_duration(self.keep, "Retention keep"))
        if self.grain not in _GRAINS:
            raise ValueError(f"Retention grain must be one of {', '.join(_GRAINS)}")
        if not isinstance(self.aggregate, Mapping) or not self.aggregate:
            raise ValueError(
                "Retention aggregate names how each value column is rolled up, e.g. "
                "{'energy_kwh': 'sum', 'indoor_c': 'avg'}"
            )
        for column, how in self.aggregate.items():
            if how not in _AGGREGATES:
                raise ValueError(
                    f"Retention aggregate of '{column}' is {how!r}; use one of "
                    f"{', '.join(_AGGREGATES)}"
                )
        object.__setattr__(self, "aggregate", dict(self.aggregate))

    @property
    def span(self) -> timedelta:
        """How long raw rows are kept."""
        assert isinstance(self.keep, timedelta)
        return self.keep
