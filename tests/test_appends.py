"""Appends: atomic, checked, versioned; the quarantine is exact, recoverable and private."""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import embedkit as ek

T0 = datetime(2026, 11, 1, 12, 0)


def readings(n: int, *, tenant: int = 1, start: int = 0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "home": [tenant] * n,
            "reading_id": list(range(start, start + n)),
            "kwh": [round(0.5 + i * 0.25, 2) for i in range(n)],
            "at": [T0 + timedelta(minutes=start + i) for i in range(n)],
        }
    )


def make_kit(**kw: Any) -> ek.EmbedKit:
    frame = pl.concat([readings(4, tenant=1), readings(3, tenant=2, start=100)])
    return ek.EmbedKit(
        [
            ek.Dataset(
                "energy",
                frame,
                tenant_key="home",
                time="at",
                measures=[
                    ek.Measure("kwh", "sum", sql="kwh"),
                    ek.Measure("count", "count"),
                ],
                dimensions=["reading_id"],
                contract=ek.Contract(
                    unique=["reading_id"], ranges={"kwh": (0, 100)}, reject_above=0.5
                ),
            )
        ],
        **kw,
    )


def totals(kit: ek.EmbedKit, home: int) -> dict[str, Any]:
    result = kit.query({"measures": ["energy.count", "energy.kwh"]}, principal=ek.Principal(home))
    row: dict[str, Any] = result.to_polars().to_dicts()[0]
    return row


def test_append_stores_good_rows_quarantines_bad_and_bumps_the_version() -> None:
    kit = make_kit()
    assert kit.data_versions["energy"] == 1
    batch = [
        {"home": 1, "reading_id": 50, "kwh": 2.0, "at": T0 + timedelta(hours=1)},
        {"home": 1, "reading_id": 51, "kwh": -1.0, "at": T0 + timedelta(hours=2)},  # range
        {"home": 2, "reading_id": 0, "kwh": 1.0, "at": T0 + timedelta(hours=3)},  # unique vs stored
        {"home": 2, "reading_id": 52, "kwh": 3.5, "at": T0 + timedelta(hours=4)},
    ]
    report = kit.append("energy", batch, batch="import-1")
    assert (report.received, report.stored, report.quarantined) == (4, 2, 2)
    assert report.rules == {"range:kwh": 1, "unique:reading_id": 1}
    assert report.tenants == {"1": (2, 1), "2": (2, 1)}
    assert report.batch == "import-1" and report.versions == {"energy": 2}
    assert kit.data_versions["energy"] == 2
    # Expected totals from the rows themselves: base rows plus the two good ones.
    base1, base2 = readings(4, tenant=1), readings(3, tenant=2, start=100)
    assert totals(kit, 1) == {"energy.count": 5, "energy.kwh": base1["kwh"].sum() + 2.0}
    assert totals(kit, 2) == {"energy.count": 4, "energy.kwh": base2["kwh"].sum() + 3.5}
    held = kit.quarantine.rows("energy", batch="import-1")
    assert [(r.tenant, r.row["reading_id"], r.rules) for r in held] == [
        ("1", 51, ("range:kwh",)),
        ("2", 0, ("unique:reading_id",)),
    ]


@pytest.mark.parametrize(
    "make",
    [
        lambda rows: rows,
        lambda rows: pl.DataFrame(rows),
        lambda rows: pl.DataFrame(rows).lazy(),
        lambda rows: pa.Table.from_pylist(rows),
        lambda rows: pa.Table.from_pylist(rows).to_batches()[0],
        lambda rows: {k: [r[k] for r in rows] for k in rows[0]},
    ],
    ids=["dicts", "polars", "lazy", "arrow", "record_batch", "columns"],
)
def test_append_takes_every_shape_of_rows(make: Any) -> None:
    kit = make_kit()
    rows = [{"home": 1, "reading_id": 900 + i, "kwh": 1.0, "at": T0} for i in range(3)]
    assert kit.append("energy", make(rows)).stored == 3
    assert totals(kit, 1)["energy.count"] == 7


def test_text_values_are_read_as_the_stored_types_keeping_the_instant() -> None:
    kit = make_kit()
    kit.append(
        "energy",
        [
            {"home": "1", "reading_id": "77", "kwh": "1.25", "at": "2026-11-03T10:00:00+02:00"},
            {"home": "1", "reading_id": "78.5", "kwh": "1", "at": "2026-11-03T10:00:00Z"},
        ],
    )
    (held,) = kit.quarantine.rows("energy")
    assert held.rules == ("type:reading_id",) and held.row["reading_id"] == "78.5"
    q = {
        "dimensions": ["energy.reading_id"],
        "timeDimensions": [{"dimension": "energy.at", "granularity": "hour"}],
        "filters": [{"member": "energy.reading_id", "operator": "equals", "values": [77]}],
    }
    rows = kit.query(q, principal=ek.Principal(1)).to_polars().to_dicts()
    assert len(rows) == 1
    assert rows[0]["energy.at.hour"].replace(tzinfo=None) == datetime(2026, 11, 3, 8, 0)


def test_a_rejected_batch_leaves_nothing_behind() -> None:
    kit = make_kit()
    before = (totals(kit, 1), totals(kit, 2), kit.data_versions, kit.quarantine.count())
    bad = [{"home": 1, "reading_id": 300 + i, "kwh": -5.0, "at": T0} for i in range(3)]
    good = [{"home": 2, "reading_id": 400, "kwh": 1.0, "at": T0}]
    with pytest.raises(ek.BatchRejected) as caught:
        kit.append("energy", bad + good)
    text = str(caught.value)
    assert "3 of 4 rows (75.0%)" in text and "range:kwh 3" in text and "nothing was stored" in text
    assert caught.value.report.rejected and caught.value.report.quarantined == 3
    after = (totals(kit, 1), totals(kit, 2), kit.data_versions, kit.quarantine.count())
    assert after == before


@pytest.mark.parametrize(
    ("rows", "words"),
    [
        ([{"home": 1, "reading_id": 1, "colour": "red"}], "column(s) colour"),
        ("not rows", "append takes"),
        ([{"home": 1}, "x"], "cannot read the rows"),
        ([{"home": 1, "reading_id": 1}, {"home": "x", "reading_id": [1]}], "cannot read"),
    ],
)
def test_batches_that_do_not_fit_are_refused_with_the_fix(rows: Any, words: str) -> None:
    kit = make_kit()
    with pytest.raises(ek.BatchRejected, match=words.replace("(", r"\(").replace(")", r"\)")):
        kit.append("energy", rows)
    assert kit.data_versions["energy"] == 1


def test_unknown_dataset_and_sql_dataset_are_refused() -> None:
    kit = make_kit()
    kit.register(
        ek.Dataset(
            "daily",
            ek.SQL("SELECT home, sum(kwh) AS kwh FROM energy GROUP BY home"),
            tenant_key="home",
        )
    )
    with pytest.raises(ek.BatchRejected, match=r"no dataset 'nope'.*energy"):
        kit.append("nope", [{"a": 1}])
    with pytest.raises(ek.BatchRejected, match="built from its SQL"):
        kit.append("daily", [{"home": 1, "kwh": 1.0}])


def test_sql_datasets_are_rebuilt_in_the_same_append() -> None:
    kit = make_kit()
    kit.register(
        ek.Dataset(
            "daily",
            ek.SQL("SELECT home, count(*) AS n, sum(kwh) AS kwh FROM energy GROUP BY home"),
            tenant_key="home",
            measures=[ek.Measure("kwh", "sum", sql="kwh"), ek.Measure("n", "sum", sql="n")],
        )
    )
    report = kit.append("energy", [{"home": 2, "reading_id": 500, "kwh": 10.0, "at": T0}])
    assert report.versions == {"energy": 2, "daily": 2}
    row = kit.query({"measures": ["daily.n", "daily.kwh"]}, principal=ek.Principal(2))
    expected = readings(3, tenant=2, start=100)["kwh"].sum() + 10.0
    assert row.to_polars().to_dicts() == [{"daily.n": 4, "daily.kwh": pytest.approx(expected)}]


def test_appends_to_a_sharded_dataset_reach_old_and_new_tenants() -> None:
    frames = [readings(30, tenant=t, start=t * 1000) for t in range(1, 9)]
    kit = ek.EmbedKit(
        [
            ek.Dataset(
                "energy",
                pl.concat(frames),
                tenant_key="home",
                time="at",
                measures=[ek.Measure("count", "count"), ek.Measure("kwh", "sum", sql="kwh")],
            )
        ],
        shard_rows=50,
    )
    kit.append(
        "energy", pl.concat([readings(5, tenant=3, start=9000), readings(7, tenant=42, start=9100)])
    )
    for home, count in [(3, 35), (42, 7), (8, 30)]:
        assert totals(kit, home)["energy.count"] == count
    # Every tenant answers as if the dataset were one table.
    everyone = pl.concat(
        [*frames, readings(5, tenant=3, start=9000), readings(7, tenant=42, start=9100)]
    )
    for home in [*range(1, 9), 42]:
        mine = everyone.filter(pl.col("home") == home)
        assert totals(kit, home) == {
            "energy.count": mine.height,
            "energy.kwh": pytest.approx(mine["kwh"].sum()),
        }


def test_replay_after_a_contract_fix_and_with_a_row_fix() -> None:
    kit = make_kit()
    kit.append(
        "energy",
        [
            {"home": 1, "reading_id": 60, "kwh": 150.0, "at": T0},  # above the range
            {"home": 1, "reading_id": 61, "kwh": 120.0, "at": T0},
            {"home": 2, "reading_id": 62, "kwh": -2.0, "at": T0},
            {"home": 2, "reading_id": 63, "kwh": 1.0, "at": T0},
            {"home": 2, "reading_id": 64, "kwh": 1.0, "at": T0},
            {"home": 2, "reading_id": 65, "kwh": 1.0, "at": T0},
        ],
    )
    assert kit.quarantine.counts() == {"energy": {"1": 2, "2": 1}}
    # The range was too tight: widen it, replay home 1's rows.
    kit.set_contract("energy", ek.Contract(unique=["reading_id"], ranges={"kwh": (0, 1000)}))
    ids = [r.id for r in kit.quarantine.rows("energy", tenant=1)]
    report = kit.quarantine.replay("energy", ids=ids)
    assert (report.received, report.stored, report.origin) == (2, 2, "replay")
    assert totals(kit, 1)["energy.kwh"] == pytest.approx(readings(4)["kwh"].sum() + 270.0)
    assert kit.quarantine.count("energy", status="replayed") == 2
    # The negative reading was a sign error upstream: fix the row itself.
    report = kit.quarantine.replay("energy", fix=lambda row: {**row, "kwh": abs(row["kwh"])})
    assert report.stored == 1 and kit.quarantine.count() == 0
    assert totals(kit, 2)["energy.kwh"] == pytest.approx(readings(3, start=100)["kwh"].sum() + 5.0)


def test_a_replay_that_still_fails_requarantines_and_discard_keeps_the_record() -> None:
    kit = make_kit()
    kit.append(
        "energy",
        [{"home": 1, "reading_id": 70, "kwh": -1.0, "at": T0}]
        + [{"home": 1, "reading_id": 71 + i, "kwh": 1.0, "at": T0} for i in range(3)],
    )
    (first,) = kit.quarantine.rows()
    report = kit.quarantine.replay("energy", fix=lambda row: {**row, "kwh": -2.0}, ids=[first.id])
    assert report.quarantined == 1 and report.stored == 0
    (again,) = kit.quarantine.rows()
    assert again.id != first.id and again.origin == "replay" and again.row["kwh"] == -2.0
    assert again.row["reading_id"] == 70  # replayed rows keep their JSON types
    assert kit.quarantine.discard([again.id]) == 1
    assert kit.quarantine.count() == 0
    assert kit.quarantine.count(status="any") == 2
    assert kit.quarantine.discard([again.id]) == 0


def test_quarantined_rows_are_never_visible_to_tenants() -> None:
    kit = make_kit()
    kit.append(
        "energy",
        [{"home": 1, "reading_id": 80, "kwh": -7.0, "at": T0}]
        + [{"home": 1, "reading_id": 81 + i, "kwh": 1.0, "at": T0} for i in range(3)],
    )
    result = kit.query({"dimensions": ["energy.reading_id"]}, principal=ek.Principal(1))
    assert 80 not in result.to_polars()["energy.reading_id"].to_list()
    with pytest.raises(ek.UnknownMemberError):
        kit.query({"dimensions": ["quarantine.row_json"]}, principal=ek.Principal(1))


def test_concurrent_appends_and_queries_never_show_a_torn_batch_or_lose_a_row() -> None:
    """6 writer threads x 30 batches against 4 reader threads querying all the while.

    Every row carries its batch id and its batch's row count for that tenant; a reader
    that ever sees a batch with fewer rows than that has seen a torn batch.
    """
    kit = ek.EmbedKit(
        [
            ek.Dataset(
                "events",
                pl.DataFrame(
                    {"home": [1], "batch": ["seed"], "size": [1], "value": [0], "at": [T0]}
                ),
                tenant_key="home",
                time="at",
                dimensions=["batch"],
                measures=[
                    ek.Measure("rows", "count"),
                    ek.Measure("size", "max", sql="size"),
                    ek.Measure("value", "sum", sql="value"),
                ],
                contract=ek.Contract(ranges={"value": (0, None)}, reject_above=0.5),
            )
        ]
    )
    writers, rounds, homes = 6, 30, (1, 2, 3)
    expected = {h: {"rows": 1 if h == 1 else 0, "value": 0} for h in homes}
    quarantined = 0
    lock = threading.Lock()
    problems: list[str] = []
    done = threading.Event()

    def write(w: int) -> None:
        nonlocal quarantined
        rng = random.Random(w)
        for r in range(rounds):
            name = f"w{w}r{r}"
            rows: list[dict[str, Any]] = []
            sizes = {h: rng.randint(1, 40) for h in homes}
            for h in homes:
                for i in range(sizes[h]):
                    rows.append(
                        {
                            "home": h,
                            "batch": name,
                            "size": sizes[h],
                            "value": rng.randint(1, 999),
                            "at": T0 + timedelta(seconds=i),
                        }
                    )
            bad = {"home": rng.choice(homes), "batch": name, "size": 0, "value": -1, "at": T0}
            kit.append("events", [*rows, bad])
            with lock:
                quarantined += 1
                for row in rows:
                    expected[row["home"]]["rows"] += 1
                    expected[row["home"]]["value"] += row["value"]

    reads = 0

    def read(home: int) -> None:
        nonlocal reads
        seen = 0
        q = {"dimensions": ["events.batch"], "measures": ["events.rows", "events.size"]}
        while not done.is_set():
            frame = kit.query(q, principal=ek.Principal(home)).to_polars()
            torn = frame.filter(
                (pl.col("events.batch") != "seed")
                & (pl.col("events.rows") != pl.col("events.size"))
            )
            if torn.height:
                problems.append(f"home {home} saw a torn batch: {torn.to_dicts()[:2]}")
            total = int(frame["events.rows"].sum())
            if total < seen:
                problems.append(f"home {home} went back from {seen} to {total} rows")
            seen = total
            with lock:
                reads += 1

    readers = [threading.Thread(target=read, args=(h,)) for h in (1, 2, 3, 1)]
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in readers + threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    for t in readers:
        t.join()
    assert problems == []
    for h in homes:
        got = kit.query({"measures": ["events.rows", "events.value"]}, principal=ek.Principal(h))
        row = got.to_polars().to_dicts()[0]
        assert row == {"events.rows": expected[h]["rows"], "events.value": expected[h]["value"]}
    assert kit.quarantine.count("events") == quarantined == writers * rounds
    assert kit.data_versions["events"] == 1 + writers * rounds
    rows = sum(expected[h]["rows"] for h in homes) - 1
    print(
        f"\nconcurrency: {writers} writers x {rounds} batches, 4 readers, {reads} reads, "
        f"{rows} rows stored + {quarantined} held, none torn, none lost"
    )


@given(
    batches=st.lists(
        st.lists(st.tuples(st.integers(1, 6), st.integers(-3, 50)), min_size=1, max_size=12),
        min_size=1,
        max_size=4,
    ),
    shard_rows=st.sampled_from([3, 8, 10_000]),
)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_appended_rows_reach_their_tenant_and_no_other(
    batches: list[list[tuple[int, int]]], shard_rows: int
) -> None:
    """Random batches over old and new tenants, on sharded and whole tables: each tenant
    reads exactly the rows a plain Python model of the appends says it owns."""
    base = [(t, i, v) for i, (t, v) in enumerate([(1, 5), (1, 7), (2, 1), (3, 9), (3, 2), (2, 4)])]
    kit = ek.EmbedKit(
        ek.Dataset(
            "events",
            pl.DataFrame(base, schema=["home", "event_id", "value"], orient="row"),
            tenant_key="home",
            dimensions=["event_id"],
            measures=[ek.Measure("value", "sum", sql="value")],
            contract=ek.Contract(ranges={"value": (0, None)}, reject_above=1.0),
        ),
        shard_rows=shard_rows,
    )
    owned: dict[int, dict[int, int]] = {}
    for home, event, value in base:
        owned.setdefault(home, {})[event] = value
    next_id = 100
    for batch in batches:
        rows = []
        for home, value in batch:
            rows.append({"home": home, "event_id": next_id, "value": value})
            if value >= 0:  # negative values are held in quarantine, never served
                owned.setdefault(home, {})[next_id] = value
            next_id += 1
        kit.append("events", rows)
    for home in range(1, 8):
        result = kit.query(
            {"dimensions": ["events.event_id"], "measures": ["events.value"]},
            principal=ek.Principal(home),
        ).to_polars()
        got = dict(zip(result["events.event_id"], result["events.value"], strict=True))
        assert got == owned.get(home, {})
