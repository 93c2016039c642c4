"""Loading datasets and their members from YAML: the same model as the Python API.

A file holds ``datasets:``, a list of datasets; a folder holds any number of
``*.yml`` / ``*.yaml`` files. Relative source paths are read from the file's
folder. Every mistake names the file and the place in it::

    datasets:
      - name: orders
        source: orders.parquet
        tenant_key: seller_id
        time: ordered_at
        dimensions:
          - name: status
        measures:
          - {name: revenue, agg: sum, sql: amount}
          - {name: returned, agg: count, filter: "status = 'returned'"}
          - {name: return_rate, agg: derived, sql: returned / orders}
        joins:
          - {to: products, on: {product_id: product_id}, relationship: many_to_one}
        row_rules:
          - {column: region, claim: regions}
        column_rules:
          - {columns: [cost], claim: role, allow: [admin]}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import yaml

from embedkit.dataset import SQL, Dataset
from embedkit.errors import ModelError, Problem
from embedkit.security.rules import ColumnRule, RowRule
from embedkit.semantic.members import Dimension, Join, Measure, Rollup, Segment, TimeDimension

__all__ = ["load_datasets"]

T = TypeVar("T")

_LISTS: dict[str, Callable[..., Any]] = {
    "dimensions": Dimension,
    "time_dimensions": TimeDimension,
    "measures": Measure,
    "segments": Segment,
    "joins": Join,
    "row_rules": RowRule,
    "column_rules": ColumnRule,
    "rollups": Rollup,
}


def load_datasets(path: str | Path, *, data_dir: str | Path | None = None) -> list[Dataset]:
    """Read datasets from a YAML file or every ``*.yml``/``*.yaml`` file of a folder.

    Relative ``source:`` paths are read from ``data_dir`` when given, else from the
    folder of the YAML file. Raises :class:`~embedkit.errors.ModelError` listing
    every problem found.
    """
    root = Path(path)
    if root.is_dir():
        files = sorted([*root.glob("*.yml"), *root.glob("*.yaml")])
        if not files:
            raise ModelError([Problem("", None, "holds no *.yml or *.yaml files", file=str(root))])
    elif root.exists():
        files = [root]
    else:
        raise ModelError([Problem("", None, "does not exist", file=str(root))])
    problems: list[Problem] = []
    datasets: list[Dataset] = []
    for file in files:
        try:
            doc = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            problems.append(
                Problem("", None, f"is not valid YAML: {_yaml_error(err)}", file=file.name)
            )
            continue
        if not isinstance(doc, Mapping) or not isinstance(doc.get("datasets"), list):
            problems.append(
                Problem("", None, "must hold a top-level 'datasets:' list", file=file.name)
            )
            continue
        for index, entry in enumerate(doc["datasets"]):
            where = f"{file.name}: datasets[{index}]"
            base = Path(data_dir) if data_dir is not None else file.parent
            ds = _dataset(entry, where, base, problems)
            if ds is not None:
                datasets.append(ds)
    if problems:
        raise ModelError(problems)
    return datasets


def _dataset(entry: Any, where: str, base: Path, problems: list[Problem]) -> Dataset | None:
    if not isinstance(entry, Mapping):
        problems.append(_problem((where, None), None, "must be a mapping with name, source, ..."))
        return None
    name = entry.get("name")
    label = (where, name if isinstance(name, str) else None)
    allowed = {f.name for f in fields(Dataset)} | {"sql"}
    unknown = sorted(str(key) for key in set(entry) - allowed)
    if unknown:
        problems.append(
            _problem(
                label,
                None,
                f"has unknown key(s) {', '.join(unknown)}",
                f"keys are: {', '.join(sorted(allowed))}",
            )
        )
        return None
    if not isinstance(name, str):
        problems.append(_problem(label, "name", "is missing or not a string"))
        return None
    kwargs: dict[str, Any] = {k: v for k, v in entry.items() if k not in _LISTS}
    if "sql" in kwargs:
        if "source" in kwargs:
            problems.append(_problem(label, None, "has both 'source' and 'sql'", "keep one"))
            return None
        kwargs["source"] = SQL(str(kwargs.pop("sql")))
    elif isinstance(kwargs.get("source"), str):
        source = Path(kwargs["source"])
        kwargs["source"] = str(source if source.is_absolute() else base / source)
    else:
        problems.append(
            _problem(
                label,
                "source",
                "is missing",
                "give a file path or glob (source:) or a query (sql:)",
            )
        )
        return None
    ok = True
    for key, factory in _LISTS.items():
        items = entry.get(key, [])
        if not isinstance(items, list):
            problems.append(_problem(label, key, "must be a list"))
            ok = False
            continue
        built = []
        for i, item in enumerate(items):
            member = _build(factory, item, f"{key}[{i}]", label, problems)
            if member is None:
                ok = False
            else:
                built.append(member)
        kwargs[key] = tuple(built)
    for key, build in (("contract", _contract), ("slo", _slo), ("retention", _retention)):
        if key in kwargs:
            value = kwargs[key]
            if not isinstance(value, Mapping):
                problems.append(_problem(label, key, "must be a mapping of its settings"))
                ok = False
                continue
            try:
                kwargs[key] = build(value, f"{where}.{key}")
            except (TypeError, ValueError) as err:
                problems.append(_problem(label, key, str(err)))
                ok = False
    if not ok:
        return None
    kwargs["meta"] = {**(kwargs.get("meta") or {}), "yaml": where}
    try:
        return Dataset(**kwargs)
    except TypeError as err:
        problems.append(_problem(label, None, str(err)))
        return None


def _contract(value: Mapping[str, Any], where: str) -> Any:
    from embedkit.trust.contract import Contract

    return Contract.from_mapping(value)


def _retention(value: Mapping[str, Any], where: str) -> Any:
    from embedkit.live.policy import Retention

    unknown = sorted(set(value) - {"keep", "grain", "aggregate"})
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}; keys are: aggregate, grain, keep")
    return Retention(**value)


def _slo(value: Mapping[str, Any], where: str) -> Any:
    from embedkit.trust.slo import SLO

    return SLO.from_mapping(value, where)


def _build(
    factory: Callable[..., T],
    item: Any,
    where: str,
    label: tuple[str, str | None],
    problems: list[Problem],
) -> T | None:
    if not isinstance(item, Mapping):
        problems.append(_problem(label, where, "must be a mapping"))
        return None
    # YAML 1.1 reads a bare `on:` key as the boolean true; it can only mean "on".
    item = {("on" if key is True else key): value for key, value in item.items()}
    allowed = {f.name for f in fields(factory)}  # type: ignore[arg-type]
    unknown = sorted(str(key) for key in set(item) - allowed)
    if unknown:
        problems.append(
            _problem(
                label,
                where,
                f"has unknown key(s) {', '.join(unknown)}",
                f"keys are: {', '.join(sorted(allowed))}",
            )
        )
        return None
    try:
        return factory(**item)
    except TypeError as err:
        problems.append(_problem(label, where, str(err).split(".__init__() ")[-1]))
        return None


def _problem(
    at: tuple[str, str | None], member: str | None, message: str, fix: str | None = None
) -> Problem:
    """A problem at ``at`` = (place in the file, dataset name if known)."""
    return Problem(at[1] or "", member, message, fix, file=at[0])


def _yaml_error(err: yaml.YAMLError) -> str:
    """PyYAML's error as one line with its position."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    if mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return str(problem)
