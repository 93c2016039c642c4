"""Property tests: random rows of several tenants, random queries, random principals.

The expected answers are computed a second way: a small pure-Python reference
over the raw rows (SQL's null rules written out by hand), never by calling
embedkit's scoping or compiling code.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import embedkit as ek

TENANTS = [1, 2, 3]
REGIONS = ["eu", "us", "apac"]
CATEGORIES = ["a", "b", "c"]
LABELS = ["red", "blue"]
ZONES = ["UTC", "America/New_York", "Asia/Kolkata"]
GRAINS = ["hour", "day", "week", "month", "hour_of_day", "day_of_week"]  # with time parts

MEASURES = [
    "events.count",
    "events.revenue",
    "events.avg_amount",
    "events.max_qty",
    "events.returned",
    "events.return_rate",
    "events.regions",
]
DIMENSIONS = ["events.region", "events.category", "events.status", "skus.label"]

EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.int64()),
        ("tenant", pa.int64()),
        ("region", pa.string()),
        ("category", pa.string()),
        ("status", pa.string()),
        ("amount", pa.float64()),
        ("qty", pa.int64()),
        ("sku_id", pa.int64()),
        ("ts", pa.timestamp("us")),
    ]
)
SKU_SCHEMA = pa.schema([("tenant", pa.int64()), ("sku_id", pa.int64()), ("label", pa.string())])

PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- data ------------------------------------------------------------------------------

events_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "tenant": st.sampled_from(TENANTS),
            "region": st.sampled_from([*REGIONS, None]),
            "category": st.sampled_from([*CATEGORIES, None]),
            "status": st.sampled_from(["completed", "returned"]),
            # Quarters are exact in binary, so sums do not depend on addition order.
            "amount": st.one_of(st.none(), st.integers(-4000, 4000).map(lambda x: x / 4)),
            "qty": st.one_of(st.none(), st.integers(0, 20)),
            "sku_id": st.integers(1, 4),
            "ts": st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2024, 12, 31)),
        }
    ),
    max_size=40,
)
skus_strategy = st.fixed_dictionaries(
    {(t, k): st.sampled_from([*LABELS, None]) for t in TENANTS for k in (1, 2, 3)}
)
principal_strategy = st.builds(
    lambda tenant, regions: ek.Principal(tenant=tenant, claims={"regions": regions}),
    st.sampled_from([*TENANTS, 99]),
    st.lists(st.sampled_from(REGIONS), min_size=1, max_size=3, unique=True),
)


def leaf_strategy() -> st.SearchStrategy[ek.Filter]:
    text_members = st.sampled_from(["events.region", "events.category", "skus.label"])
    text_values = st.lists(
        st.sampled_from([*REGIONS, *CATEGORIES, *LABELS, "zz"]), min_size=1, max_size=3
    )
    number_members = st.sampled_from(["events.amount", "events.qty"])
    number_value = st.integers(-50, 50).map(lambda x: x * 20)
    return st.one_of(
        st.builds(
            ek.Filter,
            text_members,
            st.sampled_from(["equals", "notEquals", "in", "notIn"]),
            text_values,
        ),
        st.builds(
            ek.Filter,
            text_members,
            st.sampled_from(["contains", "startsWith", "endsWith", "notContains"]),
            st.lists(st.sampled_from(["e", "U", "a", "r", "x"]), min_size=1, max_size=2),
        ),
        st.builds(
            ek.Filter,
            number_members,
            st.sampled_from(["gt", "gte", "lt", "lte"]),
            number_value.map(lambda v: [v]),
        ),
        st.builds(
            ek.Filter,
            number_members,
            st.sampled_from(["between", "notBetween"]),
            st.lists(number_value, min_size=2, max_size=2).map(sorted),
        ),
        st.builds(
            ek.Filter,
            st.sampled_from([*DIMENSIONS, "events.amount"]),
            st.sampled_from(["set", "notSet"]),
            st.just([]),
        ),
    )


@st.composite
def query_strategy(draw: st.DrawFn) -> ek.Query:
    measures = draw(st.lists(st.sampled_from(MEASURES), max_size=3, unique=True))
    dimensions = draw(st.lists(st.sampled_from(DIMENSIONS), max_size=2, unique=True))
    grain = draw(st.sampled_from([None, *GRAINS]))
    if not measures and not dimensions and grain is None:
        measures = ["events.count"]
    leaves = draw(st.lists(leaf_strategy(), max_size=3))
    filters: list[ek.Filter | ek.Or] = list(leaves)
    if len(leaves) >= 2 and draw(st.booleans()):
        filters = [ek.Or(*leaves)]
    if draw(st.integers(0, 3)) == 0:  # a measure filter, applied after aggregation
        filters.append(ek.Filter("events.count", "gt", [draw(st.integers(0, 3))]))
    date_range = None
    if draw(st.booleans()):
        days = sorted(
            draw(st.lists(st.dates(date(2024, 1, 1), date(2024, 12, 31)), min_size=2, max_size=2))
        )
        date_range = (days[0].isoformat(), days[1].isoformat())
    time = (ek.Time("events.ts", grain, date_range),) if grain or date_range else ()
    return ek.Query(
        measures=measures,
        dimensions=dimensions,
        time=time,
        filters=filters,
        timezone=draw(st.sampled_from(ZONES)),
    )


# -- the kit ---------------------------------------------------------------------------


def make_kit(
    events: list[dict[str, Any]],
    skus: dict[tuple[int, int], str | None],
    *,
    shard_rows: int = 2_000_000,
) -> ek.EmbedKit:
    rows = [{"event_id": i, **e} for i, e in enumerate(events)]
    sku_rows = [{"tenant": t, "sku_id": k, "label": label} for (t, k), label in skus.items()]
    return ek.EmbedKit(
        [
            ek.Dataset(
                "events",
                pa.Table.from_pylist(rows, schema=EVENT_SCHEMA),
                tenant_key="tenant",
                time="ts",
                primary_key="event_id",
                dimensions=[
                    ek.Dimension(n) for n in ("region", "category", "status", "amount", "qty")
                ],
                measures=[
                    ek.Measure("count", "count"),
                    ek.Measure("revenue", "sum", sql="amount"),
                    ek.Measure("avg_amount", "avg", sql="amount"),
                    ek.Measure("max_qty", "max", sql="qty"),
                    ek.Measure("returned", "count", filter="status = 'returned'"),
                    ek.Measure("return_rate", "derived", sql="returned / count"),
                    ek.Measure("regions", "count_distinct", sql="region"),
                ],
                joins=[ek.Join("skus", on={"sku_id": "sku_id"})],
                row_rules=[ek.RowRule("region", claim="regions")],
            ),
            ek.Dataset(
                "skus",
                pa.Table.from_pylist(sku_rows, schema=SKU_SCHEMA),
                tenant_key="tenant",
                dimensions=[ek.Dimension("label")],
            ),
        ],
        shard_rows=shard_rows,
    )


# -- the reference -------------------------------------------------------------------


def visible_rows(
    events: list[dict[str, Any]], skus: dict[tuple[int, int], str | None], p: ek.Principal
) -> list[dict[str, Any]]:
    """The rows principal ``p`` may see, with the joined sku label (pure Python)."""
    out = []
    for e in events:
        if e["tenant"] != p.tenant or e["region"] not in p.claims["regions"]:
            continue
        out.append({**e, "label": skus.get((e["tenant"], e["sku_id"]))})
    return out


def only_skus(q: ek.Query) -> bool:
    members = [*q.measures, *q.dimensions, *(t.dimension for t in q.time)]
    members += [m for f in q.filters for m in filter_members(f)]
    return all(m.startswith("skus.") for m in members)


def filter_members(f: ek.Filter | ek.And | ek.Or) -> list[str]:
    if isinstance(f, ek.Filter):
        return [f.member]
    return [m for item in f.items for m in filter_members(item)]  # type: ignore[arg-type]


def visible_skus(skus: dict[tuple[int, int], str | None], p: ek.Principal) -> list[dict[str, Any]]:
    """The skus rows of ``p``'s tenant (skus have no row rule)."""
    return [{"label": label} for (t, _), label in skus.items() if t == p.tenant]


def leaf_truth(f: ek.Filter, row: dict[str, Any]) -> bool | None:
    column = f.member.split(".")[1]
    x = row[column]
    op, values = f.operator, list(f.values)
    if op == "set":
        return x is not None
    if op == "notSet":
        return x is None
    if op == "notBetween":
        return True if x is None else not values[0] <= x <= values[1]
    if op in ("notEquals", "notIn"):
        return True if x is None else x not in values
    if op == "notContains":
        return True if x is None else not any(v.lower() in x.lower() for v in values)
    if x is None:
        return None
    if op == "between":
        return bool(values[0] <= x <= values[1])
    tests: dict[str, Callable[[Any], bool]] = {
        "equals": lambda v: x == v,
        "in": lambda v: x == v,
        "contains": lambda v: v.lower() in x.lower(),
        "startsWith": lambda v: x.lower().startswith(v.lower()),
        "endsWith": lambda v: x.lower().endswith(v.lower()),
        "gt": lambda v: x > v,
        "gte": lambda v: x >= v,
        "lt": lambda v: x < v,
        "lte": lambda v: x <= v,
    }
    return any(tests[op](v) for v in values)


def node_truth(node: ek.Filter | ek.Or, row: dict[str, Any]) -> bool | None:
    if isinstance(node, ek.Filter):
        return leaf_truth(node, row)
    results = [node_truth(n, row) for n in node.items]  # type: ignore[arg-type]
    if any(r is True for r in results):
        return True
    return None if any(r is None for r in results) else False


def bucket(ts: datetime, grain: str, zone: str) -> datetime | int:
    local = ts.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    if grain == "hour_of_day":
        return local.hour
    if grain == "day_of_week":
        return local.isoweekday()
    if grain == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def aggregate(name: str, rows: list[dict[str, Any]]) -> Any:
    amounts = [r["amount"] for r in rows if r["amount"] is not None]
    qtys = [r["qty"] for r in rows if r["qty"] is not None]
    returned = sum(1 for r in rows if r["status"] == "returned")
    return {
        "events.count": len(rows),
        "events.revenue": sum(amounts) if amounts else None,
        "events.avg_amount": sum(amounts) / len(amounts) if amounts else None,
        "events.max_qty": max(qtys) if qtys else None,
        "events.returned": returned,
        "events.return_rate": returned / len(rows) if rows else None,
        "events.regions": len({r["region"] for r in rows if r["region"] is not None}),
    }[name]


def in_date_range(ts: datetime, date_range: Any, zone: str) -> bool:
    """Both ends of a date pair are inclusive, read as local dates in ``zone``."""
    local = ts.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).date()
    return date.fromisoformat(date_range[0]) <= local <= date.fromisoformat(date_range[1])


def expected(rows: list[dict[str, Any]], q: ek.Query) -> list[tuple[Any, ...]]:
    row_filters = [f for f in q.filters if not is_measure_filter(f)]
    kept = [r for r in rows if all(node_truth(f, r) is True for f in row_filters)]  # type: ignore[arg-type]
    for t in q.time:
        if t.date_range is not None:
            kept = [r for r in kept if in_date_range(r["ts"], t.date_range, q.timezone)]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in kept:
        key = tuple(r[d.split(".")[1]] for d in q.dimensions)
        key += tuple(bucket(r["ts"], t.grain, q.timezone) for t in q.time if t.grain)
        groups[key].append(r)
    if not q.dimensions and not any(t.grain for t in q.time) and not groups:
        groups[()] = []  # an aggregate over no rows is still one row
    for f in q.filters:
        if is_measure_filter(f):
            assert isinstance(f, ek.Filter) and f.operator == "gt"
            groups = {k: g for k, g in groups.items() if aggregate(f.member, g) > f.values[0]}
    return [key + tuple(aggregate(m, g) for m in q.measures) for key, g in groups.items()]


def is_measure_filter(f: ek.Filter | ek.And | ek.Or) -> bool:
    return isinstance(f, ek.Filter) and f.member in MEASURES


def as_rows(result: ek.QueryResult) -> list[tuple[Any, ...]]:
    return [tuple(row.values()) for row in result.to_pylist()]


def same_rows(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> bool:
    def norm(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(round(v, 9) if isinstance(v, float) else v for v in row)

    def key(row: tuple[Any, ...]) -> str:
        return repr(norm(row))

    if len(got) != len(want):
        return False
    for a, b in zip(sorted(got, key=key), sorted(want, key=key), strict=True):
        for x, y in zip(a, b, strict=True):
            if isinstance(x, float) or isinstance(y, float):
                if x is None or y is None or not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif x != y:
                return False
    return True


# -- the properties --------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(events=events_strategy, skus=skus_strategy, q=query_strategy(), p=principal_strategy)
def test_result_equals_independent_computation_over_visible_rows(
    events: list[dict[str, Any]],
    skus: dict[tuple[int, int], str | None],
    q: ek.Query,
    p: ek.Principal,
) -> None:
    """Every result equals a pure-Python computation over only the rows ``p`` may see."""
    kit = make_kit(events, skus)
    got = as_rows(kit.query(q, principal=p))
    if only_skus(q):  # nothing of events is asked: the rows are the tenant's skus
        want = expected(visible_skus(skus, p), q)
    else:
        want = expected(visible_rows(events, skus, p), q)
    assert same_rows(got, want), f"\nquery {q.to_json()}\ngot  {got}\nwant {want}"


@PROPERTY_SETTINGS
@given(
    events=events_strategy,
    others=events_strategy,
    skus=skus_strategy,
    other_skus=skus_strategy,
    q=query_strategy(),
    p=principal_strategy,
)
def test_no_value_of_another_tenant_ever_appears(
    events: list[dict[str, Any]],
    others: list[dict[str, Any]],
    skus: dict[tuple[int, int], str | None],
    other_skus: dict[tuple[int, int], str | None],
    q: ek.Query,
    p: ek.Principal,
) -> None:
    """A tenant's result depends only on its own visible rows: replacing every other
    tenant's rows (events and joined skus) by different ones changes nothing."""
    mine = [e for e in events if e["tenant"] == p.tenant and e["region"] in p.claims["regions"]]
    foreign = [e for e in others if e["tenant"] != p.tenant]
    my_skus = {k: v for k, v in skus.items() if k[0] == p.tenant}
    foreign_skus = {k: v for k, v in other_skus.items() if k[0] != p.tenant}
    alone = make_kit(mine, my_skus)
    crowded = make_kit(mine + foreign, {**my_skus, **foreign_skus})
    assert as_rows(crowded.query(q, principal=p)) == as_rows(alone.query(q, principal=p))


@PROPERTY_SETTINGS
@given(events=events_strategy, skus=skus_strategy, q=query_strategy(), p=principal_strategy)
def test_duckdb_and_polars_engines_agree(
    events: list[dict[str, Any]],
    skus: dict[tuple[int, int], str | None],
    q: ek.Query,
    p: ek.Principal,
) -> None:
    """The DuckDB and Polars engines return the same rows for every scoped query."""
    kit = make_kit(events, skus)
    duck = as_rows(kit.query(q, principal=p, engine="duckdb"))
    polars = as_rows(kit.query(q, principal=p, engine="polars"))
    assert same_rows(polars, duck), f"\nquery {q.to_json()}\npolars {polars}\nduckdb {duck}"


@PROPERTY_SETTINGS
@given(
    events=events_strategy,
    skus=skus_strategy,
    q=query_strategy(),
    p=principal_strategy,
    shard_rows=st.integers(1, 12),
)
def test_sharded_storage_answers_as_one_table_does(
    events: list[dict[str, Any]],
    skus: dict[tuple[int, int], str | None],
    q: ek.Query,
    p: ek.Principal,
    shard_rows: int,
) -> None:
    """Splitting datasets into tenant shards (any size) changes no answer: routing a
    tenant to its shard never loses or adds a row."""
    whole = as_rows(make_kit(events, skus).query(q, principal=p))
    sharded = make_kit(events, skus, shard_rows=shard_rows)
    assert same_rows(as_rows(sharded.query(q, principal=p)), whole)
    assert same_rows(as_rows(sharded.query(q, principal=p, engine="polars")), whole)


@pytest.fixture(scope="module")
def fixed_kit() -> ek.EmbedKit:
    events = [
        {
            "tenant": t,
            "region": r,
            "category": "a",
            "status": "completed",
            "amount": 1.0,
            "qty": 1,
            "sku_id": 1,
            "ts": datetime(2024, 5, 1),
        }
        for t in TENANTS
        for r in REGIONS
    ]
    return make_kit(events, {(t, 1): "red" for t in TENANTS})


@settings(max_examples=80, deadline=None)
@given(
    value=st.text(max_size=50) | st.text(min_size=3000, max_size=6000),
    op=st.sampled_from(["equals", "notEquals", "in", "contains", "startsWith", "endsWith", "gt"]),
)
def test_any_string_filter_value_is_only_a_value(
    fixed_kit: ek.EmbedKit, value: str, op: str
) -> None:
    """Any string (quotes, SQL, unicode, NUL, very long) is compared as a value: it
    never changes the statement, never fails, and the table is intact afterwards."""
    p = ek.Principal(tenant=1, claims={"regions": REGIONS})
    q = ek.Query(measures=["events.count"], filters=[ek.Filter("events.region", op, [value])])
    got = fixed_kit.query(q, principal=p).to_pylist()[0]["events.count"]
    regions = REGIONS
    truth = {
        "equals": lambda r: r == value,
        "in": lambda r: r == value,
        "notEquals": lambda r: r != value,
        "contains": lambda r: value.lower() in r,
        "startsWith": lambda r: r.startswith(value.lower()),
        "endsWith": lambda r: r.endswith(value.lower()),
        "gt": lambda r: r > value,
    }[op]
    if op in ("contains", "startsWith", "endsWith") and value.lower() != value.casefold():
        return  # engines' and Python's Unicode case folding may differ; covered elsewhere
    assert got == sum(1 for r in regions if truth(r))
    everything = fixed_kit.query(ek.Query(measures=["events.count"]), principal=p)
    assert everything.to_pylist()[0]["events.count"] == len(REGIONS)


@settings(max_examples=100, deadline=None)
@given(name=st.text(max_size=40))
def test_unknown_member_is_refused_with_the_valid_names(fixed_kit: ek.EmbedKit, name: str) -> None:
    """A member name that is not in the model is refused, listing the valid ones."""
    if name in MEASURES:
        return
    p = ek.Principal(tenant=1, claims={"regions": REGIONS})
    with pytest.raises(ek.UnknownMemberError) as info:
        fixed_kit.query(ek.Query(measures=[name]), principal=p)
    assert info.value.valid == tuple(sorted(MEASURES))
    assert "events.revenue" in str(info.value)
