"""Checking joins: targets, key columns, and that the "one" side is really unique."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from embedkit.dataset import Dataset
from embedkit.semantic.checks import Collector, columns_list
from embedkit.semantic.model import Edge, Model, ResolvedDataset, SchemaProbe

__all__ = ["resolve_joins"]


def resolve_joins(
    definitions: Sequence[Dataset],
    resolved: Mapping[str, ResolvedDataset],
    probe: SchemaProbe,
    out: Collector,
    existing: Model | None,
) -> tuple[tuple[Edge, ...], tuple[Edge, ...]]:
    edges: list[Edge] = list(existing.edges) if existing else []
    fanout: list[Edge] = list(existing.fanout) if existing else []
    for ds in definitions:
        for j in ds.joins:
            label = f"join to '{j.to}'"
            target = resolved.get(j.to)
            source = resolved.get(ds.name)
            if target is None:
                out.add(
                    ds.name,
                    label,
                    f"names dataset '{j.to}', which is not registered; "
                    f"datasets are: {', '.join(sorted(resolved))}",
                    "register the target dataset in the same call or before",
                )
                continue
            if source is None:
                continue
            if not j.on:
                out.add(
                    ds.name, label, "has no 'on' columns", "e.g. on={'product_id': 'product_id'}"
                )
                continue
            bad = False
            for left, right in j.pairs():
                if left not in source.columns:
                    out.add(
                        ds.name,
                        label,
                        f"uses column '{left}', which does not exist in "
                        f"'{ds.name}'; columns are: {columns_list(source.columns)}",
                    )
                    bad = True
                if right not in target.columns:
                    out.add(
                        ds.name,
                        label,
                        f"uses column '{right}', which does not exist in "
                        f"'{j.to}'; columns are: {columns_list(target.columns)}",
                    )
                    bad = True
            if bad:
                continue
            if j.relationship not in ("many_to_one", "one_to_one", "one_to_many"):
                out.add(
                    ds.name,
                    label,
                    f"has relationship '{j.relationship}'",
                    "use many_to_one, one_to_one or one_to_many",
                )
                continue
            forward = Edge(ds.name, j.to, j.pairs())
            backward = Edge(j.to, ds.name, tuple((r, le) for le, r in j.pairs()))
            # The "one" side of a join must really be unique, or the join repeats rows.
            one_sides = {
                "many_to_one": [forward],
                "one_to_many": [backward],
                "one_to_one": [forward, backward],
            }[j.relationship]
            for edge in one_sides:
                keys = [r for _, r in edge.on]
                tenant = resolved[edge.target].tenant_key
                check = [tenant, *keys] if tenant and tenant not in keys else keys
                dupes = probe.duplicate_keys(edge.target, check)
                if dupes:
                    out.add(
                        ds.name,
                        label,
                        f"is declared {j.relationship}, but '{edge.target}' has "
                        f"{dupes} duplicate key{'s' if dupes > 1 else ''} on "
                        f"({', '.join(check)}), so the join would repeat rows",
                        "make the key unique in the source, or declare the relationship "
                        "the other way",
                    )
                    bad = True
            if bad:
                continue
            edges.extend(one_sides)
            fanout.extend(e for e in (forward, backward) if e not in one_sides)
    return tuple(edges), tuple(fanout)
