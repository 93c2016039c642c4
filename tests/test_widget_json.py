"""Widget rows written as JSON straight from Arrow (Polars' writer) equal the rows
built cell by cell in Python, for every type a widget's result holds."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from embedkit.embed.data import columnar_json, rows_json, rows_of
from embedkit.embed.fields import Field

BERLIN = ZoneInfo("Europe/Berlin")

times = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)
COLUMNS: dict[str, tuple[pa.DataType, Any]] = {
    "int": (pa.int64(), st.integers(-(2**62), 2**62)),
    "float": (
        pa.float64(),
        st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.1, -0.0, 1e300]),
    ),
    "money": (
        pa.decimal128(18, 2),
        st.decimals(min_value=-(10**12), max_value=10**12, places=2, allow_nan=False),
    ),
    "big": (pa.decimal128(38, 0), st.integers(-(10**15), 10**15).map(Decimal)),
    "text": (pa.string(), st.text(max_size=12)),
    "flag": (pa.bool_(), st.booleans()),
    "day": (pa.date32(), st.dates(min_value=date(1971, 1, 1), max_value=date(2099, 12, 31))),
    "wall": (pa.timestamp("us"), times.map(lambda t: t.replace(tzinfo=None))),
    "utc": (pa.timestamp("us", tz="UTC"), times),
    "berlin": (pa.timestamp("us", tz="Europe/Berlin"), times.map(lambda t: t.astimezone(BERLIN))),
}


def _field(name: str) -> Field:
    return Field(key=name, member=f"orders.{name}", title=name.title(), role="dimension")


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    names = draw(st.lists(st.sampled_from(sorted(COLUMNS)), min_size=1, max_size=5, unique=True))
    size = draw(st.integers(0, 8))
    columns = {}
    for name in names:
        kind, values = COLUMNS[name]
        cells = draw(st.lists(st.none() | values, min_size=size, max_size=size))
        columns[f"orders.{name}"] = pa.array(cells, type=kind)
    return pa.table(columns)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-15, abs_tol=0.0)
    return bool(a == b) and type(a) is type(b)


@settings(max_examples=300, deadline=None)
@given(tables())
def test_rows_written_from_arrow_equal_rows_built_in_python(table: pa.Table) -> None:
    fields = [_field(c.removeprefix("orders.")) for c in table.column_names]
    expected = rows_of(table, fields)
    written = orjson.loads(columnar_json(table, fields))
    assert orjson.loads(rows_json(table, fields)) == orjson.loads(orjson.dumps(expected))
    assert len(written) == len(expected) == table.num_rows
    for got, want in zip(written, expected, strict=True):
        assert list(got) == list(want)  # keys in field order
        for key in want:
            assert _same(got[key], want[key]), (key, got[key], want[key])


def test_times_are_the_zone_wall_clock_marked_z_and_specials_are_null() -> None:
    # Expected values written by hand: 12:30 UTC is 13:30 in Berlin in winter.
    noon = datetime(2026, 1, 15, 12, 30, 45, 999_999, tzinfo=UTC)
    table = pa.table(
        {
            "orders.berlin": pa.array(
                [noon.astimezone(BERLIN)], pa.timestamp("us", tz="Europe/Berlin")
            ),
            "orders.day": pa.array([date(2026, 1, 15)]),
            "orders.float": pa.array([math.inf]),
            "orders.money": pa.array([Decimal("12.50")], pa.decimal128(10, 2)),
            "orders.wall": pa.array([noon.replace(tzinfo=None) + timedelta(hours=1)]),
        }
    )
    fields = [_field(c.removeprefix("orders.")) for c in table.column_names]
    assert orjson.loads(columnar_json(table, fields)) == [
        {
            "berlin": "2026-01-15T13:30:45Z",
            "day": "2026-01-15T00:00:00Z",
            "float": None,
            "money": 12.5,
            "wall": "2026-01-15T13:30:45Z",
        }
    ]


def test_a_column_shown_under_two_keys_and_an_empty_result() -> None:
    table = pa.table({"orders.amount": [1, 2]})
    fields = [_field("amount"), Field("again", "orders.amount", "Again", "measure")]
    assert orjson.loads(columnar_json(table, fields)) == [
        {"amount": 1, "again": 1},
        {"amount": 2, "again": 2},
    ]
    assert rows_json(table.slice(0, 0), fields) == b"[]"
    big = pa.table({"orders.amount": list(range(1000))})
    assert orjson.loads(rows_json(big, fields)) == [{"amount": i, "again": i} for i in range(1000)]


def test_types_polars_would_write_otherwise_go_cell_by_cell() -> None:
    # float32 as Python reads it; lists (with times inside) as orjson writes them.
    size = 60
    table = pa.table(
        {
            "orders.f32": pa.array([0.1] * size, pa.float32()),
            "orders.tags": pa.array(
                [[datetime(2024, 1, 1, 5)]] * size, pa.list_(pa.timestamp("us"))
            ),
        }
    )
    fields = [_field("f32"), _field("tags")]
    assert orjson.loads(rows_json(table, fields)) == orjson.loads(
        orjson.dumps(rows_of(table, fields))
    )
