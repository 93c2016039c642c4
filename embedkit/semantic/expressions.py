"""Parsing and checking the SQL snippets of a model (dimensions, filters, segments).

Snippets are written by the app developer, never by a caller. They are parsed
with sqlglot and limited to a small set of scalar constructs that every engine
(DuckDB, Polars, later Spark) evaluates the same way; anything else is refused
at registration with the list of what is allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

__all__ = [
    "ALLOWED_FUNCTIONS",
    "ParsedExpression",
    "parse_error_text",
    "parse_expression",
    "safe_arithmetic",
]

# Scalar building blocks every engine supports identically.
_STRUCTURAL: tuple[type[exp.Expr], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Mod,
    exp.Neg,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.And,
    exp.Or,
    exp.Not,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Case,
    exp.If,
    exp.Cast,
    exp.DataType,
    exp.DPipe,
)

_FUNCTIONS: dict[type[exp.Expr], str] = {
    exp.Coalesce: "coalesce",
    exp.Lower: "lower",
    exp.Upper: "upper",
    exp.Length: "length",
    exp.Abs: "abs",
    exp.Round: "round",
    exp.Floor: "floor",
    exp.Ceil: "ceil",
    exp.Nullif: "nullif",
    exp.Greatest: "greatest",
    exp.Least: "least",
    exp.Trim: "trim",
    exp.Year: "year",
    exp.Month: "month",
    exp.Day: "day",
}
ALLOWED_FUNCTIONS: tuple[str, ...] = tuple(sorted(_FUNCTIONS.values()))
ALLOWED_CASTS = (
    "BIGINT",
    "INT",
    "INTEGER",
    "DOUBLE",
    "FLOAT",
    "VARCHAR",
    "TEXT",
    "DATE",
    "BOOLEAN",
    "TIMESTAMP",
)


@dataclass(frozen=True)
class ParsedExpression:
    """A checked snippet: its tree and the names it reads."""

    tree: exp.Expr
    names: frozenset[str]


def parse_expression(text: str) -> ParsedExpression:
    """Parse one scalar snippet; raise ``ValueError`` with a readable reason if refused."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the expression is empty")
    try:
        tree = sqlglot.parse_one(text, read="duckdb")
    except ParseError as err:
        raise ValueError(f"cannot parse {text!r}: {parse_error_text(err)}") from None
    names: set[str] = set()
    for node in tree.walk():
        if isinstance(node, exp.Column):
            if node.table:
                raise ValueError(
                    f"{text!r} qualifies column '{node.sql()}'; use the bare column name "
                    "(other datasets are reached through joins in queries)"
                )
            names.add(node.name)
            continue
        if isinstance(node, exp.DataType):
            if (
                node.this.name.upper() not in (*ALLOWED_CASTS, "TIMESTAMPNTZ")
                and node.sql().upper() not in ALLOWED_CASTS
            ):
                raise ValueError(
                    f"{text!r} casts to {node.sql()}; allowed types: {', '.join(ALLOWED_CASTS)}"
                )
            continue
        if isinstance(node, _STRUCTURAL) or type(node) in _FUNCTIONS:
            continue
        if isinstance(node, exp.Func):  # named as written (sqlglot renames some internally)
            name = node.sql("duckdb").split("(")[0] + "()"
        else:
            name = type(node).__name__.upper()
        raise ValueError(
            f"{text!r} uses {name}, which embedkit does not allow in model expressions; "
            f"allowed: columns, literals, arithmetic, comparisons, AND/OR/NOT, IS NULL, IN, "
            f"BETWEEN, CASE, CAST, || and the functions {', '.join(ALLOWED_FUNCTIONS)}"
        )
    return ParsedExpression(tree=tree, names=frozenset(names))


def parse_error_text(err: ParseError) -> str:
    """sqlglot's parse error as one plain line: what is wrong, and where."""
    if not err.errors:
        return re.sub(r"\x1b\[[0-9;]*m", "", str(err)).splitlines()[0]
    first = err.errors[0]
    what = re.sub(r"<class 'sqlglot\.[\w.]*\.(\w+)'>", r"\1", str(first.get("description", "")))
    what = what.replace("Required keyword: 'expression' missing for", "incomplete expression:")
    return f"{what} at line {first.get('line')}, column {first.get('col')}"


def safe_arithmetic(tree: exp.Expr) -> exp.Expr:
    """``tree`` (changed in place) with every division and remainder made safe:
    ``x / 0`` and ``x % 0`` are null, not an error, in every engine."""
    for node in list(tree.find_all(exp.Div, exp.Mod)):
        denominator = node.expression
        node.set("expression", exp.Nullif(this=denominator, expression=exp.Literal.number(0)))
    return tree
