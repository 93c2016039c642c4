"""Principals and the rules that turn their claims into row and column limits.

The tenant key of a dataset is always a row rule; :class:`RowRule` adds more
(``region IN claims.regions``) and :class:`ColumnRule` hides columns, and every
member built on them, unless a claim matches. Everything denies by default: a
rule whose claim is missing, null or empty refuses the query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ColumnRule", "Principal", "RowRule", "TenantId"]

TenantId = str | int


@dataclass(frozen=True)
class Principal:
    """A verified caller: the tenant whose rows it may read, and its claims.

    Build one only from something you verified (your session, a signed token);
    embedkit trusts it completely.
    """

    tenant: TenantId
    claims: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.tenant, bool) or not isinstance(self.tenant, str | int):
            raise TypeError(f"Principal.tenant must be a str or int, got {self.tenant!r}")
        if isinstance(self.tenant, str) and not self.tenant:
            raise ValueError("Principal.tenant must not be empty")
        if not isinstance(self.claims, Mapping):
            raise TypeError(
                f"Principal.claims must be a mapping such as {{'role': 'admin'}}, "
                f"got {type(self.claims).__name__}"
            )


@dataclass(frozen=True)
class RowRule:
    """Limit rows of a dataset by a claim: ``column = claim`` or ``column IN claim``.

    ``operator="in"`` (the default) takes a list claim (a scalar is treated as a
    one-item list); ``"equals"`` takes a scalar claim.
    """

    column: str
    claim: str
    operator: Literal["in", "equals"] = "in"


@dataclass(frozen=True)
class ColumnRule:
    """Hide columns unless the principal's ``claim`` is one of ``allow``.

    Every member whose definition reads a hidden column (directly, through a
    filter, or through a derived measure) is hidden with it.
    """

    columns: Sequence[str]
    claim: str
    allow: Sequence[Any]

    def __post_init__(self) -> None:
        # A lone string is one value (``allow: admin`` in YAML), never a set of letters.
        for name in ("columns", "allow"):
            value = getattr(self, name)
            items = (value,) if isinstance(value, str | bytes) else tuple(value)
            object.__setattr__(self, name, items)

    def permits(self, principal: Principal) -> bool:
        """Whether ``principal`` may see the columns (a claim value is in ``allow``)."""
        value = principal.claims.get(self.claim)
        if value is None:
            return False
        values = value if isinstance(value, list | tuple | set | frozenset) else [value]
        return any(v == allowed for v in values for allowed in self.allow)
