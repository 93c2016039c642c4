"""Data contracts: every rule with passing and failing rows, and what registration refuses.

Expected quarantined rows are computed here with Polars or plain Python over the
same rows, never read back from embedkit's own counts.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

import embedkit as ek

T0 = datetime(2026, 11, 1, 12, 0)


def orders_frame(**overrides: list[Any]) -> pl.DataFrame:
    base: dict[str, list[Any]] = {
        "seller": [1, 1, 2, 2, 3],
        "order_id": [1, 2, 3, 4, 5],
        "status": ["paid", "paid", "refunded", "paid", "paid"],
        "amount": [10.0, 20.0, 5.0, 7.5, 1.0],
        "email": ["a@x.io", "b@x.io", "c@y.io", "d@y.io", "e@z.io"],
        "product_id": [10, 11, 20, 21, 30],
        "quantity": [1, 2, 1, 3, 1],
        "refund": [0.0, 0.0, 5.0, 0.0, 0.0],
        "placed_at": [T0 + timedelta(hours=i) for i in range(5)],
    }
    base.update(overrides)
    return pl.DataFrame(base)


PRODUCTS = pl.DataFrame({"seller": [1, 1, 2, 2, 3], "product_id": [10, 11, 20, 21, 30]})


def make_kit(frame: pl.DataFrame, contract: ek.Contract, **kw: Any) -> ek.EmbedKit:
    products = ek.Dataset("products", PRODUCTS, tenant_key="seller")
    orders = ek.Dataset(
        "orders",
        frame,
        tenant_key="seller",
        time="placed_at",
        measures=[ek.Measure("count", "count"), ek.Measure("revenue", "sum", sql="amount")],
        dimensions=["status", "order_id"],
        contract=contract,
    )
    return ek.EmbedKit([orders, products], **kw)


def held_ids(kit: ek.EmbedKit, rule: str | None = None) -> list[int]:
    return sorted(r.row["order_id"] for r in kit.quarantine.rows("orders", rule=rule))


def served_ids(kit: ek.EmbedKit) -> list[int]:
    ids: list[int] = []
    for seller in (1, 2, 3):
        result = kit.query({"dimensions": ["orders.order_id"]}, principal=ek.Principal(seller))
        ids += [r["orders.order_id"] for r in result.to_polars().to_dicts()]
    return sorted(ids)


# Each case: the contract, rows that break it (overrides), the rule, and the ids that
# break it, found by a plain predicate over the same rows.
CASES: list[tuple[str, ek.Contract, dict[str, list[Any]], str]] = [
    (
        "not_null",
        ek.Contract(not_null=["email"]),
        {"email": ["a", None, "c", None, "e"]},
        "not_null:email",
    ),
    ("unique", ek.Contract(unique=["order_id"]), {"order_id": [1, 2, 2, 4, 5]}, "unique:order_id"),
    (
        "unique_composite",
        ek.Contract(unique=[["seller", "product_id"]]),
        {"product_id": [10, 10, 20, 21, 30]},
        "unique:seller,product_id",
    ),
    (
        "accepted",
        ek.Contract(accepted={"status": ["paid", "refunded"]}),
        {"status": ["paid", "lost", "refunded", "PAID", None]},
        "accepted:status",
    ),
    (
        "range_min",
        ek.Contract(ranges={"amount": (0, None)}),
        {"amount": [1.0, -0.01, 0.0, -5.0, 3.0]},
        "range:amount",
    ),
    (
        "range_both",
        ek.Contract(ranges={"quantity": {"min": 1, "max": 10}}),
        {"quantity": [0, 1, 10, 11, None]},
        "range:quantity",
    ),
    (
        "regex",
        ek.Contract(regex={"email": r"[^@\s]+@[^@\s]+\.[a-z]+"}),
        {"email": ["a@x.io", "not-an-email", "c@y.io", "d@y", "x@y.io trailing"]},
        "regex:email",
    ),
    (
        "references",
        ek.Contract(references={"product_id": "products.product_id"}),
        # 20 exists, but for seller 2 only: seller 1 pointing at it breaks the rule.
        {"product_id": [10, 20, 20, 99, 30]},
        "references:product_id",
    ),
    (
        "check",
        ek.Contract(checks={"refund_le_paid": "refund <= amount * quantity"}),
        {"refund": [0.0, 41.0, 5.0, None, 1.0]},
        "check:refund_le_paid",
    ),
    (
        "type",
        ek.Contract(types={"order_id": "INTEGER"}, reject_above=0.5),
        {"order_id": ["1", "two", "3", "4.5", "5"]},
        "type:order_id",
    ),
]


def expected_failures(name: str, frame: pl.DataFrame) -> list[int]:
    """The order ids that break each case, by a direct reading of the rule."""
    rows = frame.with_row_index("i").to_dicts()
    ids = [r["i"] + 1 for r in rows]  # order ids are positions, except where a case edits them
    if name == "not_null":
        return [i for i, r in zip(ids, rows, strict=True) if r["email"] is None]
    if name == "unique":
        counts = frame.group_by("order_id").len().filter(pl.col("len") > 1)["order_id"].to_list()
        return sorted(r["order_id"] for r in rows if r["order_id"] in counts)
    if name == "unique_composite":
        dupes = frame.group_by("seller", "product_id").len().filter(pl.col("len") > 1)
        keys = set(zip(dupes["seller"].to_list(), dupes["product_id"].to_list(), strict=True))
        return [r["order_id"] for r in rows if (r["seller"], r["product_id"]) in keys]
    if name == "accepted":
        return [
            r["order_id"]
            for r in rows
            if r["status"] is not None and r["status"] not in ("paid", "refunded")
        ]
    if name == "range_min":
        return [r["order_id"] for r in rows if r["amount"] < 0]
    if name == "range_both":
        return [
            r["order_id"]
            for r in rows
            if r["quantity"] is not None and not 1 <= r["quantity"] <= 10
        ]
    if name == "regex":
        import re

        pattern = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]+")
        return [r["order_id"] for r in rows if not pattern.fullmatch(r["email"])]
    if name == "references":
        owned = set(
            zip(PRODUCTS["seller"].to_list(), PRODUCTS["product_id"].to_list(), strict=True)
        )
        return [r["order_id"] for r in rows if (r["seller"], r["product_id"]) not in owned]
    if name == "check":
        return [
            r["order_id"]
            for r in rows
            if r["refund"] is not None and r["refund"] > r["amount"] * r["quantity"]
        ]
    if name == "type":
        return [i for i, r in zip(ids, rows, strict=True) if not str(r["order_id"]).isdigit()]
    raise AssertionError(name)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_rule_passes_good_rows_and_quarantines_exactly_the_bad(case: tuple[Any, ...]) -> None:
    name, contract, overrides, rule = case
    # Passing data: the base rows satisfy every case's contract.
    clean = make_kit(orders_frame(), contract)
    assert clean.quarantine.count() == 0
    assert served_ids(clean) == [1, 2, 3, 4, 5]
    # Failing data.
    frame = orders_frame(**overrides)
    kit = make_kit(frame, replace(contract, reject_above=0.9))
    bad = expected_failures(name, frame)
    assert bad, "each case must break its rule at least once"
    if name == "type":
        # The raw text is kept as it arrived; ids of the rows that passed are read as numbers.
        held = sorted(r.row["order_id"] for r in kit.quarantine.rows("orders"))
        assert held == sorted(str(v) for v in overrides["order_id"] if not str(v).isdigit())
        assert len(served_ids(kit)) == 5 - len(bad)
        return
    assert held_ids(kit, rule) == sorted(bad)
    assert held_ids(kit) == sorted(bad)
    good = sorted(set(frame["order_id"].to_list()) - set(bad))
    assert served_ids(kit) == good


def test_a_quarantined_row_keeps_its_values_and_tenant_and_rules() -> None:
    frame = orders_frame(
        amount=[10.0, -3.0, 5.0, 7.5, 1.0], status=["paid", "gone", "paid", "paid", "paid"]
    )
    contract = ek.Contract(ranges={"amount": (0, None)}, accepted={"status": ["paid"]})
    kit = make_kit(frame, replace(contract, reject_above=0.5))
    (row,) = kit.quarantine.rows("orders")
    assert row.rules == ("accepted:status", "range:amount")
    assert row.tenant == "1" and row.dataset == "orders" and row.origin == "register"
    original = frame.row(1, named=True)
    assert row.row["amount"] == original["amount"] and row.row["status"] == "gone"
    assert datetime.fromisoformat(row.row["placed_at"]) == original["placed_at"]
    assert kit.quarantine.count("orders", tenant=1) == 1
    assert kit.quarantine.count("orders", tenant=2) == 0
    assert kit.quarantine.by_rule("orders") == {"accepted:status": 1, "range:amount": 1}


def test_null_passes_every_rule_but_not_null() -> None:
    frame = orders_frame(status=[None] * 5, amount=[None] * 5, email=[None] * 5, refund=[None] * 5)
    contract = ek.Contract(
        accepted={"status": ["paid"]},
        ranges={"amount": (0, 1)},
        regex={"email": "x"},
        checks={"ok": "refund < 0"},
    )
    assert make_kit(frame, contract).quarantine.count() == 0


def test_rows_without_a_tenant_are_quarantined_never_served() -> None:
    frame = orders_frame(seller=[1, None, 2, 2, 3])
    kit = make_kit(frame, ek.Contract(reject_above=0.5))
    assert held_ids(kit, "not_null:seller") == [2]
    assert served_ids(kit) == [1, 3, 4, 5]


def test_a_source_above_the_reject_share_registers_nothing() -> None:
    frame = orders_frame(amount=[-1.0, -2.0, 5.0, 7.5, 1.0])
    with pytest.raises(ek.ModelError) as caught:
        make_kit(frame, ek.Contract(ranges={"amount": (0, None)}, reject_above=0.2))
    text = str(caught.value)
    assert "2 of 5 rows (40.0%)" in text and "range:amount 2" in text and "20%" in text
    assert "reject_above" in text


@pytest.mark.parametrize(
    ("contract", "words"),
    [
        (ek.Contract(not_null=["colour"]), ["not_null names unknown column 'colour'", "amount"]),
        (ek.Contract(types={"amount": "MONEY!"}), ["is not a type", "DECIMAL"]),
        (ek.Contract(references={"product_id": "catalog.id"}), ["'catalog.id'", "dataset.column"]),
        (ek.Contract(references={"product_id": "products.sku"}), ["no column 'sku'", "product_id"]),
        (ek.Contract(checks={"bad": "refund <= nope"}), ["unknown column 'nope'"]),
        (ek.Contract(checks={"bad": "refund <= (SELECT 1)"}), ["does not allow"]),
        (ek.Contract(checks={"my check": "refund > 0"}), ["not a valid check name"]),
        (ek.Contract(regex={"email": "("}), ["cannot be checked"]),
        (ek.Contract(ranges={"status": (0, 10)}), ["cannot be checked"]),
        (ek.Contract(freshness="1h", freshness_column="nope"), ["freshness names unknown column"]),
    ],
)
def test_contract_mistakes_are_named_at_registration(
    contract: ek.Contract, words: list[str]
) -> None:
    with pytest.raises(ek.ModelError) as caught:
        make_kit(orders_frame(), contract)
    text = str(caught.value)
    assert "dataset 'orders', contract" in text
    for word in words:
        assert word in text


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"not_null": 3}, "column name or a list"),
        ({"accepted": {"status": "paid"}}, "non-empty list"),
        ({"ranges": {"amount": (5, 1)}}, "min 5 above max 1"),
        ({"ranges": {"amount": (None, None)}}, "a min, a max or both"),
        ({"reject_above": 10}, "share between 0 and 1"),
        ({"reject_above": True}, "share between 0 and 1"),
        ({"freshness": "soon"}, "duration such as"),
        ({"freshness": "5y"}, "unknown unit"),
        ({"freshness": -5}, "longer than zero"),
    ],
)
def test_contract_arguments_are_checked_when_written(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises((TypeError, ValueError), match=words):
        ek.Contract(**kwargs)


def test_freshness_is_reported_not_enforced_on_rows() -> None:
    now = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
    kit = make_kit(orders_frame(), ek.Contract(freshness="2h"), clock=lambda: now)
    newest = (T0 + timedelta(hours=4)).replace(tzinfo=UTC)
    assert kit.quarantine.count() == 0
    assert kit.monitor.freshness_lag("orders") == pytest.approx((now - newest).total_seconds())


def test_contract_from_yaml(tmp_path: Any) -> None:
    orders_frame().write_parquet(tmp_path / "orders.parquet")
    (tmp_path / "model.yml").write_text(
        """
datasets:
  - name: orders
    source: orders.parquet
    tenant_key: seller
    time: placed_at
    contract:
      not_null: [email]
      unique: [order_id]
      accepted: {status: [paid]}
      ranges: {amount: {min: 0}}
      freshness: 2h
      reject_above: 0.5
    slo:
      availability: 0.99
      latency_p95_ms: 250
"""
    )
    kit = ek.EmbedKit()
    kit.register_yaml(tmp_path / "model.yml")
    assert held_ids(kit, "accepted:status") == [3]
    (tmp_path / "bad.yml").write_text(
        "datasets:\n  - name: o2\n    source: orders.parquet\n    tenant_key: seller\n"
        "    contract: {not_nul: [email]}\n"
    )
    with pytest.raises(ek.ModelError, match=r"bad.yml.*unknown contract key\(s\) not_nul"):
        kit.register_yaml(tmp_path / "bad.yml")
