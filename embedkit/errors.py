"""Every error embedkit raises on purpose, in one tree.

Catch :class:`EmbedKitError` for all of them, or a precise subclass::

    EmbedKitError                 base class; never raised itself
    ├── ModelError                the model (datasets, members, rules) is wrong;
    │                             raised at registration with *all* problems listed
    ├── DataLoadError             a dataset's source cannot be read or stored
    │   └── BatchRejected         an append was refused whole (too many bad rows, or
    │                             columns the dataset does not have); nothing stored
    ├── QueryError                a query is malformed or names things that do not exist
    │   └── UnknownMemberError    a member name is not in the model (lists valid names)
    ├── AccessDenied              the principal may not run this query (missing claim,
    │                             hidden member, a locked embed param); nothing was executed
    ├── ExecutionError            the engine failed while running a scoped query
    ├── TokenError                an embed, session or API token was refused
    │                             (``reason``: expired, invalid or revoked)
    └── ConfigError               keys or embed settings are unusable (weak secret...)

Messages say what happened, where, and how to fix it. None of them ever contains
data of a tenant other than the caller's, nor another tenant's identity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "AccessDenied",
    "BatchRejected",
    "ConfigError",
    "DataLoadError",
    "EmbedKitError",
    "ExecutionError",
    "ModelError",
    "Problem",
    "QueryError",
    "TokenError",
    "UnknownMemberError",
]


class EmbedKitError(Exception):
    """Base class of every error embedkit raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a model: where it is, what is wrong, and the fix."""

    dataset: str
    member: str | None
    message: str
    fix: str | None = None
    file: str | None = None  # "model.yml: datasets[0]" when the model came from YAML

    def __str__(self) -> str:
        parts = [self.file] if self.file else []
        if self.dataset:
            parts.append(f"dataset '{self.dataset}'")
        if self.member:
            parts.append(self.member)
        text = f"{', '.join(parts)}: {self.message}"
        if self.fix:
            text += f" (fix: {self.fix})"
        return text


class ModelError(EmbedKitError):
    """The model is invalid. ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        count = len(self.problems)
        head = f"the model has {count} problem{'s' if count != 1 else ''}:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


class DataLoadError(EmbedKitError):
    """A dataset's source could not be read or stored."""


class BatchRejected(DataLoadError):
    """An append (or a replay) was refused whole; nothing of it was stored.

    ``report`` holds the counts per rule and tenant when the contract refused it
    (too many bad rows), None when the batch itself did not fit the dataset.
    """

    def __init__(self, message: str, *, report: Any = None) -> None:
        super().__init__(message)
        self.report = report


class QueryError(EmbedKitError):
    """A query is malformed: bad operator, bad value, bad date range, bad shape."""


class UnknownMemberError(QueryError):
    """A query names a member that does not exist (or is not visible to the caller)."""

    def __init__(self, name: str, valid: Sequence[str], *, kind: str = "member") -> None:
        self.name = name
        self.valid = tuple(valid)
        listing = ", ".join(self.valid) if self.valid else "(none)"
        super().__init__(f"unknown {kind} '{name}'; valid {kind}s are: {listing}")


class AccessDenied(EmbedKitError):
    """The principal may not run this query; nothing was executed."""


class ExecutionError(EmbedKitError):
    """The engine failed while running an already scoped query."""


Reason = Literal["expired", "invalid", "revoked"]


class TokenError(EmbedKitError):
    """A token was refused; ``reason`` is ``"expired"``, ``"invalid"`` or ``"revoked"``.

    ``str(err)`` (``"token expired"``...) is safe to show anyone. ``detail`` is a fixed phrase
    (or a library exception's class name) for your logs, never token contents.
    """

    def __init__(self, reason: Reason, detail: str = "") -> None:
        self.reason: Reason = reason
        self.detail = detail or reason
        super().__init__(f"token {reason}")


class ConfigError(EmbedKitError):
    """Keys or token settings are unusable (weak secret, wrong key type, no signing key...)."""


def first_line(err: BaseException) -> str:
    """The first line of a library's error message (theirs can run to pages)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
