"""Registering datasets: load each, check the contract and the model, all or nothing.

Private; :meth:`embedkit.EmbedKit.register` delegates here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from embedkit.dataset import NAME_PATTERN, Dataset, load_order
from embedkit.engines.duckdb import DuckDBStore
from embedkit.errors import DataLoadError, ModelError, Problem
from embedkit.live.retention import retention_problems
from embedkit.rollups import rollup_datasets
from embedkit.semantic.model import Model
from embedkit.semantic.validate import resolve
from embedkit.trust.ingest import BatchReport

__all__ = ["register"]


def register(
    store: DuckDBStore, current: Model, datasets: Sequence[Dataset], now: datetime
) -> tuple[Model, list[Dataset], list[BatchReport]]:
    """Load ``datasets`` into ``store`` and check them with ``current``'s datasets.

    Returns the new model, the datasets loaded and what each source held. Every
    problem is collected into one ModelError; then nothing of this call stays.
    """
    for ds in datasets:
        if not isinstance(ds, Dataset):
            raise TypeError(f"register() takes Dataset objects, not {type(ds).__name__}")
    problems: list[Problem] = []
    loaded: list[Dataset] = []
    reports: list[BatchReport] = []
    generated: list[Dataset] = []
    for ds in datasets:
        try:
            generated += rollup_datasets(ds)
        except (ValueError, TypeError) as err:
            problems.append(Problem(ds.name, "rollups", str(err).removeprefix("rollup: ")))
    datasets = [*datasets, *generated]
    names = [d.name for d in datasets]
    for ds in load_order(datasets):
        if names.count(ds.name) > 1 or ds.name in current.datasets:
            fix = "give every dataset a unique name"
            problems.append(Problem(ds.name, None, "is registered twice", fix))
            continue
        if not NAME_PATTERN.match(ds.name):
            fix = "use letters, digits and underscores"
            problems.append(Problem(ds.name, None, "is not a valid dataset name", fix))
            continue
        try:
            known = {n: d.definition for n, d in current.datasets.items()}
            known.update({d.name: d for d in loaded})
            reports.append(store.load(ds, known, now=now))
            loaded.append(ds)
            if ds.retention is not None:
                columns = store.columns(ds.name)
                guarded = [c for c in (ds.tenant_key, *(r.column for r in ds.row_rules)) if c]
                problems += retention_problems(ds.name, ds.retention, ds.time, columns, guarded)
        except DataLoadError as err:
            message = str(err).removeprefix(f"dataset '{ds.name}': ")
            problems.append(Problem(ds.name, "source", message))
        except ModelError as err:
            problems.extend(err.problems)
    try:
        model = resolve(loaded, store, existing=current)
    except ModelError as err:
        problems.extend(err.problems)
    if problems:
        for ds in loaded:
            store.drop(ds.name)
        raise ModelError(problems)
    return model, loaded, reports
