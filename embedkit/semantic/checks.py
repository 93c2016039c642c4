"""What the model checks share: collecting problems, and the callbacks they use."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlglot import exp

from embedkit.errors import Problem

__all__ = ["Collector", "Scalar", "Typed", "columns_list"]


class Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, dataset: str, member: str | None, message: str, fix: str | None = None) -> None:
        self.problems.append(Problem(dataset, member, message, fix))


def columns_list(columns: Mapping[str, str]) -> str:
    return ", ".join(columns)


Scalar = Callable[[str, str, str], "tuple[exp.Expr, frozenset[str]] | None"]
Typed = Callable[[str, str, exp.Expr], "str | None"]
