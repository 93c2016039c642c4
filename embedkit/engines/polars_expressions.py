"""Model expressions (sqlglot trees) as Polars expressions, with DuckDB's meaning.

The model's whitelist (:mod:`embedkit.semantic.expressions`) is small on purpose;
this module gives each construct in it the meaning DuckDB gives it: SQL's null
logic, safe division, DuckDB's cast, rounding and text rules.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import polars as pl
from sqlglot import exp

from embedkit.errors import ExecutionError

__all__ = ["DTypeOf", "Translator", "literal_of"]

_CASTS: dict[str, pl.DataType] = {
    "INT": pl.Int32(),
    "BIGINT": pl.Int64(),
    "DOUBLE": pl.Float64(),
    "FLOAT": pl.Float32(),
    "TEXT": pl.String(),
    "VARCHAR": pl.String(),
    "DATE": pl.Date(),
    "BOOLEAN": pl.Boolean(),
    "TIMESTAMP": pl.Datetime("us"),
    "TIMESTAMPNTZ": pl.Datetime("us"),
}
_COMPARE: dict[type[exp.Expr], Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    exp.EQ: operator.eq,
    exp.NEQ: operator.ne,
    exp.GT: operator.gt,
    exp.GTE: operator.ge,
    exp.LT: operator.lt,
    exp.LTE: operator.le,
}

# The spellings DuckDB accepts when casting text to BOOLEAN (case-insensitive, unstripped).
_TRUE = ["true", "t", "1", "yes", "y"]
_FALSE = ["false", "f", "0", "no", "n"]

DTypeOf = Callable[[pl.Expr], pl.DataType]


class Translator:
    """A whitelisted sqlglot tree (see semantic/expressions.py) as a Polars expression.

    SQL's null logic carries over: Polars' ``&``/``|`` are Kleene like SQL's
    AND/OR, comparisons with null give null, and a filter drops null like WHERE.
    Where the two differ (division, modulo, casts, rounding) DuckDB's rule is
    rebuilt, using the operands' Polars types from ``dtype_of``. Aggregates are
    allowed only when ``inputs`` is given: their arguments are evaluated per row
    into it first (so a literal argument counts every row, as in SQL).
    """

    def __init__(
        self,
        column: Callable[[str], pl.Expr],
        dtype_of: DTypeOf,
        inputs: list[pl.Expr] | None = None,
    ) -> None:
        self.column = column
        self.dtype_of = dtype_of
        self.inputs = inputs

    def __call__(self, node: exp.Expr) -> pl.Expr:
        t = self
        if isinstance(node, exp.Paren):
            return t(node.this)
        if isinstance(node, exp.Column):
            return t.column(node.name)
        if isinstance(node, exp.Literal):
            return pl.lit(_literal(node))
        if isinstance(node, exp.Boolean):
            return pl.lit(bool(node.this))
        if isinstance(node, exp.Null):
            return pl.lit(None)
        if isinstance(node, exp.Add | exp.Sub):
            left, right = t(node.this), t(node.expression)
            return left + right if isinstance(node, exp.Add) else left - right
        if isinstance(node, exp.Mul):
            return t.multiply(t(node.this), t(node.expression))
        if isinstance(node, exp.Div):  # compile._rewrite: x / NULLIF(y, 0), always DOUBLE
            denominator = _nullif(t(node.expression), pl.lit(0))
            return t(node.this).cast(pl.Float64) / denominator.cast(pl.Float64)
        if isinstance(node, exp.Mod):  # SQL's remainder takes the dividend's sign
            left, right = t(node.this), _nullif(t(node.expression), pl.lit(0))
            r = left % right
            return pl.when((r != 0) & ((r < 0) != (left < 0))).then(r - right).otherwise(r)
        if isinstance(node, exp.Neg):
            return -t(node.this)
        if type(node) in _COMPARE:
            return _COMPARE[type(node)](*t.pair(node.this, node.expression))
        if isinstance(node, exp.And):
            return t(node.this) & t(node.expression)
        if isinstance(node, exp.Or):
            return t(node.this) | t(node.expression)
        if isinstance(node, exp.Not):
            return ~t(node.this)
        if isinstance(node, exp.Is):
            return t.is_(node)
        if isinstance(node, exp.In) and not node.args.get("query"):
            return pl.any_horizontal(
                *[operator.eq(*t.pair(node.this, item)) for item in node.expressions]
            )
        if isinstance(node, exp.Between):
            value, low = t.pair(node.this, node.args["low"])
            _, high = t.pair(node.this, node.args["high"])
            return (value >= low) & (value <= high)
        if isinstance(node, exp.Case):
            return t.case(node)
        if isinstance(node, exp.If):
            otherwise = node.args.get("false")
            return (
                pl.when(t(node.this))
                .then(t(node.args["true"]))
                .otherwise(t(otherwise) if otherwise is not None else pl.lit(None))
            )
        if isinstance(node, exp.Cast):
            return t.cast(node)
        if isinstance(node, exp.DPipe):
            parts = [t(node.this), t(node.expression)]
            return pl.concat_str([_text(p, t.dtype_of(p)) for p in parts])
        if isinstance(node, exp.Coalesce):
            return pl.coalesce([t(node.this), *(t(e) for e in node.expressions)])
        if isinstance(node, exp.Nullif):
            return _nullif(*t.pair(node.this, node.expression))
        if isinstance(node, exp.Greatest | exp.Least):  # both skip nulls, as in DuckDB
            values = [t(node.this), *(t(e) for e in node.expressions)]
            pick = pl.max_horizontal if isinstance(node, exp.Greatest) else pl.min_horizontal
            return pick(values)
        if isinstance(node, exp.Lower | exp.Upper):
            value = t(node.this)
            lower = isinstance(node, exp.Lower)
            return value.str.to_lowercase() if lower else value.str.to_uppercase()
        if isinstance(node, exp.Length):
            return t(node.this).str.len_chars().cast(pl.Int64)
        if isinstance(node, exp.Abs):
            return t(node.this).abs()
        if isinstance(node, exp.Round):
            return t.round(node)
        if isinstance(node, exp.Floor | exp.Ceil):  # DuckDB: DOUBLE for an integer argument
            value, dtype = t(node.this), None
            source = t.dtype_of(value)
            if source.is_integer():
                value = value.cast(pl.Float64)
            elif source.is_decimal():
                dtype = pl.Decimal(38, 0)
            whole = value.floor() if isinstance(node, exp.Floor) else value.ceil()
            return whole.cast(dtype) if dtype is not None else whole
        if isinstance(node, exp.Trim):
            return t.trim(node)
        if isinstance(node, exp.Year | exp.Month | exp.Day):
            value = t(node.this)
            part = {exp.Year: value.dt.year, exp.Month: value.dt.month, exp.Day: value.dt.day}
            return part[type(node)]().cast(pl.Int64)
        if isinstance(node, exp.AggFunc) and t.inputs is not None:
            return t.aggregate(node)
        raise ExecutionError(
            f"the Polars engine cannot evaluate {node.sql('duckdb')!r} "
            f"({type(node).__name__}); run this query with engine='duckdb'"
        )

    def pair(self, a: exp.Expr, b: exp.Expr) -> tuple[pl.Expr, pl.Expr]:
        """Both operands, a text literal read as the other side's type (as DuckDB does)."""
        left, right = self(a), self(b)
        if _is_text(b) and not _is_text(a):
            right = _typed_text(str(b.this), self.dtype_of(left), right)
        elif _is_text(a) and not _is_text(b):
            left = _typed_text(str(a.this), self.dtype_of(right), left)
        return left, right

    def multiply(self, left: pl.Expr, right: pl.Expr) -> pl.Expr:
        # DuckDB gives a product of decimals the sum of their scales; Polars the larger one.
        a, b = self.dtype_of(left), self.dtype_of(right)
        if isinstance(a, pl.Decimal) and isinstance(b, pl.Decimal):
            left = left.cast(pl.Decimal(38, (a.scale or 0) + (b.scale or 0)))
        return left * right

    def is_(self, node: exp.Is) -> pl.Expr:
        value, target = self(node.this), node.expression
        if isinstance(target, exp.Null):
            return value.is_null()
        if isinstance(target, exp.Boolean):
            return (value == pl.lit(bool(target.this))).fill_null(False)
        raise ExecutionError(f"the Polars engine cannot evaluate {node.sql('duckdb')!r}")

    def case(self, node: exp.Case) -> pl.Expr:
        default = node.args.get("default")
        result = self(default) if default is not None else pl.lit(None)
        operand = node.this
        for branch in reversed(node.args["ifs"]):
            test = (
                operator.eq(*self.pair(operand, branch.this))
                if operand is not None
                else self(branch.this)
            )
            result = pl.when(test).then(self(branch.args["true"])).otherwise(result)
        return result

    def cast(self, node: exp.Cast) -> pl.Expr:
        name = node.to.this.name
        target = _CASTS.get(name)
        if target is None:
            raise ExecutionError(f"the Polars engine cannot cast to {node.to.sql('duckdb')}")
        value = self(node.this)
        source = self.dtype_of(value)
        if target == pl.String:
            return _text(value, source)
        if target.is_integer():  # DuckDB rounds: doubles half to even, decimals and text away
            if source.is_float():
                return value.round(0, mode="half_to_even").cast(target)
            if source.is_decimal():
                return value.round(0, mode="half_away_from_zero").cast(target)
            if source == pl.String:
                whole = value.cast(target, strict=False)
                rounded = value.cast(pl.Float64).round(0, mode="half_away_from_zero")
                return pl.coalesce(whole, rounded.cast(target))
        if target == pl.Boolean and source == pl.String:
            lowered = value.str.to_lowercase()
            return (
                pl.when(lowered.is_in(_TRUE))
                .then(pl.lit(True))
                .when(lowered.is_in(_FALSE))
                .then(pl.lit(False))
                .otherwise(pl.lit(None))
            )
        if target == pl.Boolean and source.is_numeric():
            return value != 0
        if target == pl.Date and source == pl.String:
            return value.str.slice(0, 10).str.to_date("%Y-%m-%d")
        if isinstance(target, pl.Datetime) and source == pl.String:
            return value.str.to_datetime(time_unit="us")
        if isinstance(target, pl.Datetime) and isinstance(source, pl.Datetime):
            if source.time_zone:  # the session zone is UTC
                value = value.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            return value.dt.cast_time_unit("us")
        return value.cast(target)

    def round(self, node: exp.Round) -> pl.Expr:
        value = self(node.this)
        digits = _constant_int(node.args.get("decimals"))
        dtype = self.dtype_of(value)
        if digits >= 0:  # DuckDB rounds half away from zero; integers stay as they are
            if dtype.is_integer():
                return value
            rounded = value.round(digits, "half_away_from_zero")
            if isinstance(dtype, pl.Decimal):  # to DECIMAL(p, digits) when that is smaller
                return rounded.cast(pl.Decimal(38, min(digits, dtype.scale or 0)))
            return rounded
        scale = float(10**-digits)
        rounded = (value.cast(pl.Float64) / scale).round(0, "half_away_from_zero")
        return (rounded * scale).cast(dtype if dtype.is_integer() else pl.Float64)

    def trim(self, node: exp.Trim) -> pl.Expr:
        value = self(node.this)
        chars_node = node.args.get("expression")
        chars = self(chars_node) if chars_node is not None else pl.lit(" ")  # spaces only
        position = str(node.args.get("position") or "BOTH").upper()
        if position == "LEADING":
            return value.str.strip_chars_start(chars)
        if position == "TRAILING":
            return value.str.strip_chars_end(chars)
        return value.str.strip_chars(chars)

    def aggregate(self, node: exp.Expr) -> pl.Expr:
        """An aggregate of :func:`~embedkit.semantic.model.aggregate`, with SQL's null rules."""
        assert self.inputs is not None
        arg = node.this
        if isinstance(node, exp.Count) and isinstance(arg, exp.Star):
            return pl.len().cast(pl.Int64)
        if isinstance(node, exp.Count) and isinstance(arg, exp.Distinct):
            return self.input(arg.expressions[0]).drop_nulls().n_unique().cast(pl.Int64)
        value = self.input(arg)
        if isinstance(node, exp.Count):
            return value.count().cast(pl.Int64)
        if isinstance(node, exp.Min):
            return value.min()
        if isinstance(node, exp.Max):
            return value.max()
        if isinstance(node, exp.Avg):
            return value.cast(pl.Float64).mean()
        if not isinstance(node, exp.Sum):
            raise ExecutionError(f"the Polars engine cannot aggregate {node.sql('duckdb')!r}")
        dtype = self.dtype_of(value)
        if dtype.is_integer() or dtype == pl.Boolean:  # DuckDB sums integers as HUGEINT
            value = value.cast(pl.Decimal(38, 0))
        elif dtype.is_float():
            value = value.cast(pl.Float64)
        return pl.when(value.count() > 0).then(value.sum())  # SUM of no values is NULL

    def input(self, node: exp.Expr) -> pl.Expr:
        assert self.inputs is not None
        name = f"__embedkit_input_{len(self.inputs)}"
        self.inputs.append(self(node).alias(name))
        return pl.col(name)


def literal_of(value: Any, dtype: pl.DataType) -> pl.Expr:
    """A parameter as a literal comparable with a value of ``dtype`` (time zones aligned)."""
    if isinstance(value, datetime) and isinstance(dtype, pl.Datetime):
        unit = dtype.time_unit or "us"
        if dtype.time_zone is None:
            naive = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
            return pl.lit(naive, dtype=pl.Datetime(unit))
        aware = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return pl.lit(aware).dt.convert_time_zone(dtype.time_zone).dt.cast_time_unit(unit)
    return pl.lit(value)


def _typed_text(text: str, dtype: pl.DataType, fallback: pl.Expr) -> pl.Expr:
    try:
        if dtype == pl.Date:
            return pl.lit(date.fromisoformat(text.strip()[:10]))
        if isinstance(dtype, pl.Datetime):
            return literal_of(datetime.fromisoformat(text.strip()), dtype)
        if dtype.is_integer():
            return pl.lit(int(text))
        if dtype.is_numeric():
            return pl.lit(Decimal(text)) if dtype.is_decimal() else pl.lit(float(text))
    except ValueError:
        raise ExecutionError(f"the Polars engine cannot read {text!r} as {dtype}") from None
    return fallback


def _text(value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """``CAST(value AS VARCHAR)`` as DuckDB writes it."""
    if dtype == pl.String:
        return value
    if not isinstance(dtype, pl.Datetime):
        return value.cast(pl.String)
    if dtype.time_zone:
        value = value.dt.convert_time_zone("UTC")
    micros = value.dt.microsecond()
    whole = value.dt.to_string("%Y-%m-%d %H:%M:%S")
    fraction = micros.cast(pl.String).str.zfill(6).str.strip_chars_end("0")
    text = pl.when(micros == 0).then(whole).otherwise(pl.concat_str([whole, pl.lit("."), fraction]))
    return pl.concat_str([text, pl.lit("+00")]) if dtype.time_zone else text


def _nullif(value: pl.Expr, other: pl.Expr) -> pl.Expr:
    return pl.when(value == other).then(pl.lit(None)).otherwise(value)


def _literal(node: exp.Literal) -> str | int | float | Decimal:
    text = str(node.this)
    if node.is_string:
        return text
    if text.isdigit():
        return int(text)
    return float(text) if "e" in text.lower() else Decimal(text)  # 1.5 is a DECIMAL in DuckDB


def _is_text(node: exp.Expr) -> bool:
    return isinstance(node, exp.Literal) and node.is_string


def _constant_int(node: exp.Expr | None) -> int:
    if node is None:
        return 0
    if isinstance(node, exp.Paren):
        return _constant_int(node.this)
    if isinstance(node, exp.Neg):
        return -_constant_int(node.this)
    if isinstance(node, exp.Literal) and not node.is_string and str(node.this).isdigit():
        return int(str(node.this))
    raise ExecutionError(
        f"the Polars engine rounds only to a constant number of digits, not {node.sql('duckdb')!r}"
    )
