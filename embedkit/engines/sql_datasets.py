"""Datasets defined as SQL over other datasets, materialised one tenant at a time.

A developer's SQL could join two tenant datasets on a product id alone and so
pair one tenant's orders with another tenant's products. To make that
impossible by construction, every tenant dataset the SQL reads is replaced by a
subquery limited to one tenant, and the whole query runs LATERAL once per tenant
(DuckDB decorrelates it into joins, so this is one pass, not one query per
tenant). The result's tenant key is then set to that tenant, whatever the SQL
selected. Rules do not flow through SQL, so reading a dataset with row rules
needs the same rules declared on the SQL dataset, and SQL may not read a column
that a column rule hides.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError
from sqlglot.optimizer.scope import Scope, traverse_scope

from embedkit.compile import stored_table
from embedkit.dataset import SQL, Dataset
from embedkit.errors import DataLoadError
from embedkit.semantic.expressions import parse_error_text
from embedkit.semantic.members import Rollup

__all__ = ["materialisation", "read_datasets"]

_TENANTS = "__embedkit_tenants"
_TENANT = "__embedkit_tenant"
_ROWS = "__embedkit_rows"


def materialisation(dataset: Dataset, registered: Mapping[str, Dataset]) -> exp.Query:
    """The query that materialises ``dataset`` (an :class:`~embedkit.SQL` source)."""
    tree, tables, fail = _parsed(dataset, registered)
    sources = {table.name: registered[table.name] for table in tables}
    _check_rules(dataset, tree, sources, fail)
    tenant_sources = {n: d for n, d in sources.items() if d.public is not True}
    if dataset.public is True and tenant_sources:
        raise fail(
            f"is public but its SQL reads tenant dataset(s) {', '.join(sorted(tenant_sources))}; "
            "a public dataset may read only public datasets"
        )
    for table in tables:
        source = sources[table.name]
        if source.public is True:
            table.replace(_aliased(stored_table(table.name), table))
            continue
        key = exp.column(source.tenant_key or "", quoted=True)
        limited = (
            exp.select(exp.Star())
            .from_(stored_table(table.name))
            .where(exp.EQ(this=key, expression=exp.column(_TENANT, table=_TENANTS, quoted=True)))
        )
        table.replace(_aliased(limited.subquery(), table))
    if not tenant_sources or dataset.tenant_key is None:
        return tree
    return _per_tenant(tree, dataset.tenant_key, tenant_sources)


Fail = Callable[[str], DataLoadError]


def _base_tables(tree: exp.Query, fail: Fail, registered: Mapping[str, Dataset]) -> list[exp.Table]:
    """Every table the SQL reads that is not a CTE of its own; each must be a dataset."""
    found: list[exp.Table] = []
    for scope in traverse_scope(tree):
        for table in scope.tables:
            if isinstance(scope.sources.get(table.alias_or_name), Scope):
                continue  # a CTE or derived table of the query itself
            if not isinstance(table.this, exp.Identifier) or table.db or table.catalog:
                raise fail(
                    f"its SQL may read only registered datasets by name, not {table.sql('duckdb')}"
                )
            if table.name not in registered:
                listing = ", ".join(sorted(registered)) or "(none yet)"
                raise fail(
                    f"its SQL reads '{table.name}', which is not a registered dataset (register "
                    f"it before, or earlier in the same call); datasets are: {listing}"
                )
            found.append(table)
    return found


def _check_rules(
    dataset: Dataset, tree: exp.Query, sources: Mapping[str, Dataset], fail: Fail
) -> None:
    own = {(r.column, r.claim, r.operator) for r in dataset.row_rules}
    for source in sources.values():
        for rule in source.row_rules:
            if (rule.column, rule.claim, rule.operator) not in own:
                raise fail(
                    f"reads '{source.name}', whose rows are limited by claim '{rule.claim}' on "
                    f"'{rule.column}'; rules do not flow through SQL, so declare "
                    f"RowRule('{rule.column}', claim='{rule.claim}') on '{dataset.name}' too "
                    f"(and keep the '{rule.column}' column)"
                )
        hidden = {c for rule in source.column_rules for c in rule.columns}
        carried = (
            isinstance(dataset.meta.get("rollup"), Rollup)
            and dataset.meta.get("rollup_of") == source.name
        )
        if not hidden or carried:
            # A rollup embedkit generated carries its base's column rules over to every
            # column made from a hidden one (see embedkit/rollups.py).
            continue
        if any(isinstance(star, exp.Star) for star in tree.find_all(exp.Star)):
            raise fail(
                f"reads '{source.name}', which hides column(s) {', '.join(sorted(hidden))} by a "
                "column rule; SELECT * would carry them out, so list the columns you need"
            )
        used = sorted({c.name for c in tree.find_all(exp.Column)} & hidden)
        if used:
            raise fail(
                f"reads column(s) {', '.join(used)} of '{source.name}', which a column rule "
                "hides; SQL cannot carry that rule, so leave them out (or define the figure as "
                f"a measure of '{source.name}')"
            )


def _aliased(replacement: exp.Expr, table: exp.Table) -> exp.Expr:
    alias = table.alias or table.name
    return exp.alias_(replacement, alias, table=True, quoted=True)


def _per_tenant(tree: exp.Query, tenant_key: str, sources: Mapping[str, Dataset]) -> exp.Query:
    """``tree`` run once per tenant, its tenant key set to that tenant."""
    tenants: exp.Query | None = None
    for name, source in sorted(sources.items()):
        one = (
            exp.select(
                exp.alias_(exp.column(source.tenant_key or "", quoted=True), _TENANT, quoted=True)
            )
            .from_(stored_table(name))
            .distinct()
        )
        tenants = one if tenants is None else exp.union(tenants, one, distinct=True)
    assert tenants is not None
    star = exp.Star(
        replace=[
            exp.alias_(exp.column(_TENANT, table=_TENANTS, quoted=True), tenant_key, quoted=True)
        ]
    )
    lateral = exp.Lateral(
        this=tree.subquery(), alias=exp.TableAlias(this=exp.to_identifier(_ROWS, quoted=True))
    )
    return (
        exp.select(exp.Column(this=star, table=exp.to_identifier(_ROWS, quoted=True)))
        .from_(exp.alias_(tenants.subquery(), _TENANTS, table=True, quoted=True))
        .join(lateral)
    )


def read_datasets(dataset: Dataset, registered: Mapping[str, Dataset]) -> frozenset[str]:
    """The registered datasets ``dataset``'s SQL reads (it is rebuilt when they change).
    Raises DataLoadError when the SQL is not a query over registered datasets."""
    _, tables, _ = _parsed(dataset, registered)
    return frozenset(t.name for t in tables)


def _parsed(
    dataset: Dataset, registered: Mapping[str, Dataset]
) -> tuple[exp.Query, list[exp.Table], Fail]:
    """The SQL of ``dataset`` parsed, the dataset tables it reads, and its error maker."""
    assert isinstance(dataset.source, SQL)

    def fail(message: str) -> DataLoadError:
        return DataLoadError(f"dataset '{dataset.name}': {message}")

    try:
        tree = sqlglot.parse_one(dataset.source.query, read="duckdb")
    except ParseError as err:
        raise fail(f"cannot parse its SQL: {parse_error_text(err)}") from None
    if not isinstance(tree, exp.Query):
        raise fail("its SQL must be a SELECT query")
    return tree, _base_tables(tree, fail, registered), fail
