"""Mistakes made through the Python API get a clear embedkit error (or a TypeError that
says what to write), never an AttributeError or an unpacking error from deep inside."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl
import pytest

import embedkit as ek

ROWS = pl.DataFrame({"t": [1, 1, 2], "status": ["a", "b", "a"], "amount": [1.0, 2.0, 3.0]})


def kit() -> ek.EmbedKit:
    return ek.EmbedKit(
        ek.Dataset(  # a single dataset, not in a list, is accepted too
            "o",
            ROWS,
            tenant_key="t",
            dimensions=["status"],  # shorthand for Dimension("status")
            measures=[ek.Measure("revenue", "sum", sql="amount")],
        )
    )


QUERY_MISTAKES: dict[str, Callable[[], Any]] = {
    "time-as-string": lambda: ek.Query(measures=["o.revenue"], time="o.t"),  # type: ignore[arg-type]
    "time-list-of-strings": lambda: ek.Query(time=["o.t"]),  # type: ignore[list-item]
    "order-not-pairs": lambda: ek.Query(order=[("o.revenue",)]),  # type: ignore[list-item]
    "order-string": lambda: ek.Query(order="o.revenue"),  # type: ignore[arg-type]
    "measures-none": lambda: ek.Query(measures=None),  # type: ignore[arg-type]
    "dimension-list-in-list": lambda: ek.Query(dimensions=[["o.status"]]),  # type: ignore[list-item]
    "filters-dict": lambda: ek.Query(filters={"member": "o.status"}),  # type: ignore[arg-type]
    "compare-unknown": lambda: ek.Query(compare="bogus"),  # type: ignore[arg-type]
    "date-range-number": lambda: ek.Time("o.t", date_range=123),  # type: ignore[arg-type]
    "total-string": lambda: ek.Query(total="yes"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("mistake", QUERY_MISTAKES.values(), ids=QUERY_MISTAKES.keys())
def test_query_mistakes_raise_query_error(mistake: Callable[[], Any]) -> None:
    with pytest.raises(ek.QueryError, match="query: "):
        mistake()


DEFINITION_MISTAKES: dict[str, Callable[[], Any]] = {
    "tenant-key-list": lambda: ek.Dataset("o", ROWS, tenant_key=["t"]),  # type: ignore[arg-type]
    "primary-key-number": lambda: ek.Dataset("o", ROWS, tenant_key="t", primary_key=5),  # type: ignore[arg-type]
    "name-number": lambda: ek.Dataset(5, ROWS, tenant_key="t"),  # type: ignore[arg-type]
    "measure-as-string": lambda: ek.Dataset("o", ROWS, tenant_key="t", measures=["revenue"]),  # type: ignore[list-item]
    "dimension-name-number": lambda: ek.Dimension(5),  # type: ignore[arg-type]
    "join-on-number": lambda: ek.Join("p", on=5),  # type: ignore[arg-type]
    "claims-list": lambda: ek.Principal(1, claims=["admin"]),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("mistake", DEFINITION_MISTAKES.values(), ids=DEFINITION_MISTAKES.keys())
def test_definition_mistakes_raise_a_type_error_that_says_what_to_write(
    mistake: Callable[[], Any],
) -> None:
    with pytest.raises(TypeError) as info:
        mistake()
    message = str(info.value)
    assert any(word in message for word in ("must", "use", "takes")), message


def test_shorthands_work_as_their_long_forms() -> None:
    k = kit()
    got = k.query(
        ek.Query(measures=["o.revenue"], dimensions=["o.status"]), principal=ek.Principal(1)
    )
    want = ROWS.filter(pl.col("t") == 1).group_by("status").agg(pl.col("amount").sum())
    assert sorted(tuple(r.values()) for r in got.to_pylist()) == sorted(want.iter_rows())
    assert ek.Join("p", on="id").on == {"id": "id"}
    assert ek.Join("p", on=["a", "b"]).on == {"a": "a", "b": "b"}


def test_a_measure_asked_for_as_a_dimension_says_where_it_belongs() -> None:
    with pytest.raises(ek.UnknownMemberError, match="is a measure: put it in measures"):
        kit().query(ek.Query(dimensions=["o.revenue"]), principal=ek.Principal(1))


def test_querying_a_closed_kit_is_an_execution_error() -> None:
    k = kit()
    k.close()
    with pytest.raises(ek.ExecutionError, match="closed"):
        k.query(ek.Query(measures=["o.revenue"]), principal=ek.Principal(1))


def test_json_limit_written_as_a_whole_float_is_accepted() -> None:
    result = kit().query({"measures": ["o.revenue"], "limit": 5.0}, principal=ek.Principal(1))
    assert result.to_pylist() == [{"o.revenue": 3.0}]
