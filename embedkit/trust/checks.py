"""A contract as one DuckDB query: each row of a batch with the rules it breaks.

:func:`checked_rows` builds, with sqlglot, a SELECT over staged rows (a batch, or
a source being registered) that returns every stored column read as its stored
type, plus three private columns: the names of the rules the row breaks, the row
as it arrived (JSON text, for the quarantine), and its tenant as text. Values
from the contract are bound parameters; identifiers come from the model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from embedkit.semantic.expressions import parse_expression, safe_arithmetic
from embedkit.trust.contract import Contract

__all__ = ["POSITION", "RAW", "TENANT", "VIOLATIONS", "Reference", "checked_rows"]

VIOLATIONS = "__embedkit_violations"
RAW = "__embedkit_raw"
TENANT = "__embedkit_tenant"
POSITION = "__embedkit_position"
_TYPE_FLAG = "__embedkit_type_{}"
_DUPES = "__embedkit_dupes_{}"


@dataclass(frozen=True)
class Reference:
    """Where ``references`` points: the stored table, its column, its tenant key."""

    table: exp.Table
    column: str
    tenant_key: str | None


class _Params:
    def __init__(self, params: list[Any]) -> None:
        self.values = params

    def add(self, value: Any) -> exp.Placeholder:
        self.values.append(value)
        return exp.Placeholder(this=str(len(self.values)))


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _read_as(column: exp.Expr, source_type: str | None, target: str) -> exp.Expr:
    """``column`` read as ``target``; text with a UTC offset keeps its instant."""
    if source_type is not None and source_type.upper() == target.upper():
        return column
    kind = exp.DataType.build(target, dialect="duckdb")
    naive = target.upper().startswith("TIMESTAMP") and "Z" not in target.upper().replace(" ", "")
    if source_type and source_type.upper() == "VARCHAR" and naive:
        # TRY_CAST('10:00+02:00' AS TIMESTAMP) drops the offset; read it as an instant first.
        zoned = exp.TryCast(this=column, to=exp.DataType.build("TIMESTAMPTZ"))
        return exp.TryCast(this=zoned, to=kind)
    return exp.TryCast(this=column, to=kind)


_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT"}
_INTEGERS |= {"UINTEGER", "UBIGINT", "UHUGEINT"}


def _lossy(raw: exp.Expr, source_type: str, value: exp.Expr, target: str) -> exp.Expr | None:
    """When reading ``raw`` as an integer would round it (DuckDB casts '4.5' and 4.5 to 5),
    the condition that catches it; None when nothing can be lost."""
    if target.upper() not in _INTEGERS:
        return None
    if source_type.upper() == "VARCHAR":
        whole = exp.RegexpFullMatch(
            this=raw.copy(), expression=exp.Literal.string(r"\s*[+-]?\d+\s*")
        )
        return exp.Not(this=whole)
    if source_type.upper() in ("DOUBLE", "FLOAT") or source_type.upper().startswith("DECIMAL"):
        return exp.NEQ(this=value.copy(), expression=raw.copy())
    return None


def checked_rows(
    source: exp.Expr,
    source_types: Mapping[str, str],
    target_types: Mapping[str, str],
    contract: Contract,
    *,
    tenant_key: str | None,
    existing: exp.Table | None,
    reference: Callable[[str], Reference],
    params: list[Any],
) -> exp.Select:
    """Rows of ``source`` read as ``target_types``, with the rules each breaks.

    ``source`` is a table or subquery whose columns are ``source_types``;
    ``existing`` (appends) is the stored table that ``unique`` also checks;
    ``reference`` resolves a ``references`` target. Parameters are appended to
    ``params``.
    """
    bind = _Params(params)
    if tenant_key not in target_types:
        tenant_key = None  # the model reports the missing column, with the fix
    # Level 1: read every stored column as its stored type; flag values that do not fit.
    level1: list[exp.Expr] = []
    type_rules: list[str] = []
    for index, (column, target) in enumerate(target_types.items()):
        if column in source_types:
            value = _read_as(_col(column, "s"), source_types[column], target)
        else:
            value = exp.Cast(this=exp.Null(), to=exp.DataType.build(target, dialect="duckdb"))
        level1.append(exp.alias_(value, column, quoted=True))
        if column in source_types and not isinstance(value, exp.Column):
            # A value that does not fit the stored (or declared) type breaks type:<column>.
            misfit: exp.Expr = exp.Is(this=value.copy(), expression=exp.Null())
            lossy = _lossy(_col(column, "s"), source_types[column], value, target)
            if lossy is not None:
                misfit = exp.or_(misfit, lossy)
            flag = exp.and_(
                exp.Not(this=exp.Is(this=_col(column, "s"), expression=exp.Null())),
                exp.paren(misfit),
            )
            level1.append(exp.alias_(flag, _TYPE_FLAG.format(index), quoted=True))
            type_rules.append(column)
    raw = exp.JSONObject(
        expressions=[
            exp.JSONKeyValue(this=exp.Literal.string(c), expression=_col(c, "s"))
            for c in source_types
        ]
    )
    level1.append(exp.alias_(raw, RAW, quoted=True))
    # Where the row came in the batch: quarantine ids follow arrival order.
    level1.append(exp.alias_(exp.Window(this=exp.RowNumber()), POSITION, quoted=True))
    first = exp.select(*level1).from_(exp.alias_(source, "s", table=True))

    # Level 2: duplicate counts for unique keys, and which keys exist elsewhere. A
    # correlated EXISTS inside the rule list would hash the whole stored table for every
    # batch (100 ms at 2M rows); a semi join from the batch's own keys reads only the
    # stored rows that match (about 2 ms).
    extra: list[exp.Expr] = [exp.Column(this=exp.Star(), table=exp.to_identifier("l1"))]
    for index, key in enumerate(contract.unique):
        window = exp.Window(
            this=exp.Count(this=exp.Star()), partition_by=[_col(c, "l1") for c in key]
        )
        extra.append(exp.alias_(window, _DUPES.format(index), quoted=True))
    second = exp.select(*extra).from_(exp.alias_(exp.table_("l1"), "l1", table=True))
    probes: list[tuple[str, list[tuple[str, str]]]] = []  # (alias, [(batch column, other column)])
    if existing is not None:
        for index, key in enumerate(contract.unique):
            probes.append((f"__embedkit_stored_{index}", [(c, c) for c in key]))
    for index, (column, target) in enumerate(contract.references.items()):
        ref = reference(target)
        pairs = [(column, ref.column)]
        if ref.tenant_key and tenant_key:
            pairs.append((tenant_key, ref.tenant_key))
        probes.append((f"__embedkit_ref_{index}", pairs))
    tables = {a: existing for a, _ in probes if a.startswith("__embedkit_stored")}
    for alias, pairs in probes:
        other = tables.get(alias)
        if other is None:
            other = reference(
                list(contract.references.values())[int(alias.rsplit("_", 1)[1])]
            ).table
        found = _found_keys(other, pairs)
        on = exp.and_(
            *[
                exp.EQ(this=_col(mine, "l1"), expression=_col(f"k{i}", alias))
                for i, (mine, _) in enumerate(pairs)
            ]
        )
        second = second.join(found.subquery(alias), on=on, join_type="left")
        marker = exp.Not(this=exp.Is(this=_col("k0", alias), expression=exp.Null()))
        second = second.select(exp.alias_(marker, alias, quoted=True))
    second = second.with_("l1", as_=first)

    # Level 3: the list of broken rules.
    rules: list[tuple[str, exp.Expr]] = []
    names = list(target_types)
    for column in type_rules:
        rules.append((f"type:{column}", _col(_TYPE_FLAG.format(names.index(column)), "c")))
    required = list(contract.not_null)
    if tenant_key and tenant_key not in required:
        required.insert(0, tenant_key)
    for column in required:
        rules.append((f"not_null:{column}", exp.Is(this=_col(column, "c"), expression=exp.Null())))
    for index, key in enumerate(contract.unique):
        present = exp.and_(
            *[exp.Not(this=exp.Is(this=_col(c, "c"), expression=exp.Null())) for c in key]
        )
        clash: exp.Expr = exp.GT(
            this=_col(_DUPES.format(index), "c"), expression=exp.Literal.number(1)
        )
        if existing is not None:
            clash = exp.or_(clash, _col(f"__embedkit_stored_{index}", "c"))
        rules.append((f"unique:{','.join(key)}", exp.and_(present, exp.paren(clash))))
    for column, values in contract.accepted.items():
        allowed = exp.In(this=_col(column, "c"), expressions=[bind.add(v) for v in values])
        rules.append((f"accepted:{column}", _present_and(column, exp.Not(this=allowed))))
    for column, (low, high) in contract.ranges.items():
        outside: list[exp.Expr] = []
        if low is not None:
            outside.append(exp.LT(this=_col(column, "c"), expression=bind.add(low)))
        if high is not None:
            outside.append(exp.GT(this=_col(column, "c"), expression=bind.add(high)))
        rules.append((f"range:{column}", _present_and(column, exp.paren(exp.or_(*outside)))))
    for column, pattern in contract.regex.items():
        as_text = exp.Cast(this=_col(column, "c"), to=exp.DataType.build("VARCHAR"))
        match = exp.RegexpFullMatch(this=as_text, expression=bind.add(pattern))
        rules.append((f"regex:{column}", _present_and(column, exp.Not(this=match))))
    for index, column in enumerate(contract.references):
        missing = exp.Not(this=_col(f"__embedkit_ref_{index}", "c"))
        rules.append((f"references:{column}", _present_and(column, missing)))
    for name, text in contract.checks.items():
        tree = safe_arithmetic(parse_expression(text).tree.copy())
        for node in tree.find_all(exp.Column):
            node.set("table", exp.to_identifier("c"))
        holds = exp.Coalesce(this=exp.paren(tree), expressions=[exp.true()])
        rules.append((f"check:{name}", exp.Not(this=holds)))

    flagged = exp.Array(
        expressions=[
            exp.Case(ifs=[exp.If(this=cond, true=exp.Literal.string(rule))]) for rule, cond in rules
        ]
    )
    if rules:
        broken: exp.Expr = exp.ArrayFilter(
            this=flagged,
            expression=exp.Lambda(
                this=exp.Not(this=exp.Is(this=exp.to_identifier("v"), expression=exp.Null())),
                expressions=[exp.to_identifier("v")],
            ),
        )
    else:
        broken = exp.Cast(this=exp.Array(expressions=[]), to=exp.DataType.build("VARCHAR[]"))
    tenant: exp.Expr = (
        exp.Cast(this=_col(tenant_key, "c"), to=exp.DataType.build("VARCHAR"))
        if tenant_key
        else exp.Null()
    )
    outputs: list[exp.Expr] = [_col(c, "c") for c in target_types]
    outputs += [
        exp.alias_(broken, VIOLATIONS, quoted=True),
        _col(RAW, "c"),
        exp.alias_(tenant, TENANT, quoted=True),
        _col(POSITION, "c"),
    ]
    return exp.select(*outputs).from_(second.subquery("c"))


def _found_keys(other: exp.Table, pairs: list[tuple[str, str]]) -> exp.Select:
    """The distinct keys of ``other`` that some batch row (``l1``) has: the columns
    ``k0, k1, ...`` pair with ``pairs``' batch columns."""
    on = exp.and_(
        *[exp.EQ(this=_col(theirs, "o"), expression=_col(mine, "b")) for mine, theirs in pairs]
    )
    return (
        exp.select(
            *[
                exp.alias_(_col(theirs, "o"), f"k{i}", quoted=True)
                for i, (_, theirs) in enumerate(pairs)
            ]
        )
        .distinct()
        .from_(exp.alias_(other.copy(), "o", table=True))
        .join(exp.alias_(exp.table_("l1"), "b", table=True), on=on, join_type="semi")
    )


def _present_and(column: str, condition: exp.Expr) -> exp.Expr:
    return exp.and_(exp.Not(this=exp.Is(this=_col(column, "c"), expression=exp.Null())), condition)
