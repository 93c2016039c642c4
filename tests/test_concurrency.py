"""Many threads querying at once each get exactly their own tenant's answer."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import polars as pl

import embedkit as ek


def test_concurrent_queries_from_many_threads_each_get_their_own_tenant() -> None:
    tenants = list(range(1, 41))
    rows = pl.DataFrame(
        {
            "tenant": [t for t in tenants for _ in range(50)],
            "amount": [float(t * 1000 + i) for t in tenants for i in range(50)],
        }
    )
    kit = ek.EmbedKit(
        [
            ek.Dataset(
                "sales",
                rows,
                tenant_key="tenant",
                measures=[ek.Measure("revenue", "sum", sql="amount"), ek.Measure("n", "count")],
            )
        ]
    )
    want = {
        t: (s, n)
        for t, s, n in rows.group_by("tenant").agg(pl.col("amount").sum(), pl.len()).iter_rows()
    }
    query = ek.Query(measures=["sales.revenue", "sales.n"])

    def ask(tenant: int) -> tuple[int, float, int]:
        row = kit.query(query, principal=ek.Principal(tenant=tenant)).to_pylist()[0]
        return tenant, row["sales.revenue"], row["sales.n"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, tenants * 10))
    assert len(answers) == len(tenants) * 10
    for tenant, revenue, count in answers:
        assert (revenue, count) == want[tenant]
