"""Signed tokens for embedding: embed tokens, session tokens and API tokens.

An *embed token* grants one dashboard (``"sales"``) or one widget of it
(``"sales/revenue_by_day"``) to one tenant for a few minutes. The embedded page trades
it for a *session token* carrying the same grant, which never outlives it. An *API
token* lets a tenant's backend query embedkit directly. All three are JWTs (RFC 7519)
handled as RFC 8725 asks: the algorithm is pinned per key, keys are found by ``kid``
only, every time claim is required, and anything wrong is a :class:`TokenError`.
The keys themselves, and their checks, are :mod:`embedkit.embed.keys`.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jwt
from jwt.types import Options

from embedkit.embed.keys import SigningKey
from embedkit.errors import ConfigError, TokenError
from embedkit.security.rules import Principal, TenantId

__all__ = ["MAX_TOKEN_LENGTH", "ConfigError", "Grant", "TokenError", "Tokens"]

MAX_TOKEN_LENGTH = 8192
"""Longer strings are refused before any decoding (and never minted)."""

_RESOURCE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)?")
_LOCALE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}")  # BCP 47, as embed.locales
_ZONE = re.compile(r"[A-Za-z0-9_+\-/]{1,64}")
_KEY_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "crit", "b64"})
_OPTIONS: Options = {
    "require": ["exp", "iat", "nbf", "aud", "iss", "jti"],
    "strict_aud": True,  # one audience string, equal to the expected one
    "verify_exp": False,  # time claims are checked against our clock, as floats
    "verify_nbf": False,
    "verify_iat": False,
    "enforce_minimum_key_length": True,
}

_T = TypeVar("_T")


# -- shapes shared by minting (TypeError/ValueError) and verifying (-> "invalid") --


def _tenant(value: object) -> TenantId:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"tenant must be a str or int, got {type(value).__name__}")
    if isinstance(value, str) and not value:
        raise ValueError("tenant must not be empty")
    return value


def _resource(value: object) -> str:
    if not isinstance(value, str) or not _RESOURCE.fullmatch(value):
        raise ValueError("resource must name a dashboard ('sales') or a widget ('sales/revenue')")
    return value


def _mapping(name: str, value: object, *, optional: bool) -> dict[str, Any]:
    if value is None and optional:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise TypeError(f"{name} must be a mapping with str keys, got {type(value).__name__}")
    try:
        normal: dict[str, Any] = json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be JSON-serialisable (no NaN, sets or objects)") from None
    return normal


def _empty(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, list | dict) and not value)


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number of seconds")
    return float(value)


def _grant_body(source: Mapping[str, Any], *, optional: bool) -> dict[str, Any]:
    """Check and normalise the grant fields of ``source`` (mint arguments or a payload)."""
    locked = _mapping("locked", source.get("locked"), optional=optional)
    for param, value in locked.items():
        if _empty(value) or (isinstance(value, list) and any(_empty(v) for v in value)):
            raise ValueError(
                f"locked param '{param}' is empty (None, '' or []); a locked param always "
                "filters: lock it to a real value, or leave it out of locked"
            )
    editable = _mapping("editable", source.get("editable"), optional=optional)
    for param, value in editable.items():
        if not isinstance(value, list | dict):
            raise TypeError(f"editable param '{param}' must be a list of values or a range dict")
        if param in locked:
            raise ValueError(f"param '{param}' cannot be both locked and editable")
    theme, locale, zone = source.get("theme"), source.get("locale"), source.get("timezone")
    if locale is not None and not (isinstance(locale, str) and _LOCALE.fullmatch(locale)):
        raise ValueError("locale must be a BCP 47 tag such as 'en' or 'de-CH'")
    try:
        if zone is not None and isinstance(zone, str) and _ZONE.fullmatch(zone):
            ZoneInfo(zone)
        elif zone is not None:
            raise ValueError(zone)
    except (ValueError, ZoneInfoNotFoundError):
        raise ValueError("timezone must be an IANA name such as 'Europe/Zurich'") from None
    return {
        "resource": _resource(source.get("resource")),
        "tenant": _tenant(source.get("tenant")),
        "claims": _mapping("claims", source.get("claims"), optional=optional),
        "locked": locked,
        "editable": editable,
        "theme": None if theme is None else _mapping("theme", theme, optional=False),
        "locale": locale,
        "timezone": zone,
    }


@dataclass(frozen=True)
class Grant:
    """What a verified embed or session token grants: one resource to one tenant."""

    resource: str
    tenant: TenantId
    claims: Mapping[str, Any]
    locked: Mapping[str, Any]
    editable: Mapping[str, Any]
    theme: Mapping[str, Any] | None
    locale: str | None
    timezone: str | None
    issued_at: float
    expires_at: float
    jti: str

    def principal(self) -> Principal:
        """The tenant and claims of this grant, as a :class:`Principal` for queries."""
        return Principal(tenant=self.tenant, claims=dict(self.claims))


def _guard(read: Callable[[], _T]) -> _T:
    """Run ``read`` on an untrusted token: any failure becomes ``TokenError("invalid")``."""
    try:
        return read()
    except TokenError:
        raise
    except Exception as err:  # a token is attacker input: nothing else may escape
        raise TokenError("invalid", type(err).__name__) from None


class Tokens:
    """Mint and verify embed, session and API tokens with a ring of :class:`SigningKey`.

    The first non-retired key that can sign signs; every non-retired key verifies, so
    rotation is: list the new key first, retire the old one once its tokens expired.
    """

    def __init__(
        self,
        keys: Sequence[SigningKey],
        *,
        issuer: str = "embedkit",
        default_ttl: float = 600,
        max_ttl: float = 3600,
        leeway: float = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        ring = tuple(keys)
        if not ring or not all(isinstance(k, SigningKey) for k in ring):
            raise ConfigError("Tokens needs a list of SigningKey, e.g. [SigningKey('k1', secret)]")
        kids = [k.kid for k in ring]
        if repeated := sorted({kid for kid in kids if kids.count(kid) > 1}):
            raise ConfigError(f"key ids repeat: {', '.join(repeated)}; give each key its own kid")
        self._keys = {k.kid: k for k in ring if not k.retired}
        signer = next((k for k in self._keys.values() if k._signer is not None), None)
        if signer is None:
            raise ConfigError(
                "no key can sign: every key is retired or verify-only; list a non-retired key "
                "with secret= or private_key= first"
            )
        numbers = (default_ttl, max_ttl, leeway)
        if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers) or not (
            0 < default_ttl <= max_ttl < math.inf and 0 <= leeway <= 300
        ):
            raise ConfigError("need 0 < default_ttl <= max_ttl and 0 <= leeway <= 300 seconds")
        if not isinstance(issuer, str) or not issuer:
            raise ConfigError("issuer must be a non-empty string")
        self._signer, self._issuer, self._clock = signer, issuer, clock
        self._default_ttl, self._max_ttl, self._leeway = map(float, numbers)
        self._lock = threading.Lock()
        # issued-before cutoffs keyed by (tenant, None), (None, resource) or (tenant, resource)
        self._cutoffs: dict[tuple[str | None, str | None], float] = {}

    # -- minting --

    def mint_embed(
        self,
        resource: str,
        *,
        tenant: TenantId,
        claims: Mapping[str, Any] | None = None,
        locked: Mapping[str, Any] | None = None,
        editable: Mapping[str, Any] | None = None,
        theme: Mapping[str, Any] | None = None,
        locale: str | None = None,
        timezone: str | None = None,
        ttl: float | None = None,
    ) -> str:
        """An embed token granting ``resource`` to ``tenant`` for ``ttl`` seconds."""
        fields = dict(resource=resource, tenant=tenant, claims=claims, locked=locked)
        fields.update(editable=editable, theme=theme, locale=locale, timezone=timezone)
        body, now = _grant_body(fields, optional=True), self._clock()
        return self._sign("embed", body, now, now + self._ttl(ttl))

    def mint_session(self, grant: Grant) -> str:
        """A session token for a verified ``grant``: same grant, same expiry, same ``iat``."""
        if not isinstance(grant, Grant):
            raise TypeError(f"mint_session takes a Grant, got {type(grant).__name__}")
        body = _grant_body(vars(grant), optional=False)
        issued, exp = _number("issued_at", grant.issued_at), _number("expires_at", grant.expires_at)
        now = self._clock()
        if exp <= now:
            raise TokenError("expired", "the embed grant has expired")
        if exp - now > self._max_ttl or not isinstance(grant.jti, str) or not grant.jti:
            raise ValueError("grant is not one verify_embed returned (expiry or jti)")
        self._check_revoked(body["tenant"], body["resource"], issued)
        return self._sign("embed-session", {**body, "gid": grant.jti}, issued, exp)

    def mint_api(
        self, *, tenant: TenantId, claims: Mapping[str, Any] | None = None, ttl: float | None = None
    ) -> str:
        """An API token: ``tenant`` and ``claims`` for a backend calling embedkit."""
        body = {"tenant": _tenant(tenant), "claims": _mapping("claims", claims, optional=True)}
        now = self._clock()
        return self._sign("api", body, now, now + self._ttl(ttl))

    def mint_operator(self, *, subject: str, ttl: float | None = None) -> str:
        """An operator token (audience ``ops``) for /metrics, /ops/status and the catalog.

        It carries no tenant: it reads counts and definitions, never a tenant's rows.
        """
        if not isinstance(subject, str) or not subject or len(subject) > 200:
            raise ValueError("subject must name the operator, e.g. 'prometheus' or an email")
        now = self._clock()
        return self._sign("ops", {"sub": subject}, now, now + self._ttl(ttl))

    def _ttl(self, ttl: float | None) -> float:
        value = self._default_ttl if ttl is None else _number("ttl", ttl)
        if not 0 < value <= self._max_ttl:
            raise ValueError(f"ttl must be > 0 and <= max_ttl ({self._max_ttl:g} seconds)")
        return value

    def _sign(self, audience: str, body: dict[str, Any], iat: float, exp: float) -> str:
        key, jti = self._signer, secrets.token_urlsafe(16)
        claims = {"iss": self._issuer, "aud": audience, **body, "iat": iat, "nbf": iat}
        claims.update(exp=exp, jti=jti)
        token = jwt.encode(claims, key._signer, algorithm=key.algorithm, headers={"kid": key.kid})
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError(f"the token would exceed {MAX_TOKEN_LENGTH} characters; grant less")
        return token

    # -- verifying --

    def verify_embed(self, token: str) -> Grant:
        """The grant of an embed token; :class:`TokenError` if it is not a valid one."""
        return _guard(lambda: self._grant(self._decode(token, "embed"), "jti"))

    def verify_session(self, token: str) -> Grant:
        """The grant of a session token; :class:`TokenError` if it is not a valid one."""
        return _guard(lambda: self._grant(self._decode(token, "embed-session"), "gid"))

    def verify_api(self, token: str) -> Principal:
        """The principal of an API token; :class:`TokenError` if it is not a valid one."""
        return _guard(lambda: self._principal(self._decode(token, "api")))

    def verify_operator(self, token: str) -> str:
        """The subject of an operator token; :class:`TokenError` if it is not a valid one."""

        def read() -> str:
            subject = self._decode(token, "ops").get("sub")
            if not isinstance(subject, str) or not subject:
                raise TokenError("invalid", "operator token without a subject")
            return subject

        return _guard(read)

    @property
    def leeway(self) -> float:
        """Seconds of clock difference forgiven: a token is refused once this long past
        its expiry."""
        return self._leeway

    def recheck(self, grant: Grant) -> None:
        """Refuse a grant verified earlier that has expired, or been revoked, since."""
        if grant.expires_at <= self._clock() - self._leeway:
            raise TokenError("expired")
        self._check_revoked(grant.tenant, grant.resource, grant.issued_at)

    def _decode(self, token: object, audience: str) -> dict[str, Any]:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise TokenError("invalid", "not a string, or too long")
        header = jwt.get_unverified_header(token)
        if _KEY_HEADERS & header.keys():
            raise TokenError("invalid", "header carries key material or extensions")
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenError("invalid", "missing, unknown or retired kid")
        if header.get("alg") != key.algorithm:
            raise TokenError("invalid", "algorithm not pinned to this key")
        payload: dict[str, Any] = jwt.decode(
            token,
            key._verifier,
            algorithms=[key.algorithm],
            audience=audience,
            issuer=self._issuer,
            options=_OPTIONS,
        )
        iat, nbf, exp = (_number(name, payload[name]) for name in ("iat", "nbf", "exp"))
        now = self._clock()
        if exp <= now - self._leeway:
            raise TokenError("expired")
        if max(iat, nbf) > now + self._leeway:
            raise TokenError("invalid", "not valid yet")
        if exp - iat > self._max_ttl + self._leeway:
            raise TokenError("invalid", "lifetime above max_ttl")
        if not isinstance(payload["jti"], str) or not 0 < len(payload["jti"]) <= 128:
            raise TokenError("invalid", "bad jti")
        payload.update(iat=iat, exp=exp)
        return payload

    def _grant(self, payload: dict[str, Any], id_claim: str) -> Grant:
        body = _grant_body(payload, optional=False)
        grant_id = payload[id_claim]  # sessions carry their embed token's jti as "gid"
        if not isinstance(grant_id, str) or not grant_id:
            raise TokenError("invalid", "bad grant id")
        self._check_revoked(body["tenant"], body["resource"], payload["iat"])
        for name in ("claims", "locked", "editable", "theme"):
            body[name] = None if body[name] is None else MappingProxyType(body[name])
        return Grant(**body, issued_at=payload["iat"], expires_at=payload["exp"], jti=grant_id)

    def _principal(self, payload: dict[str, Any]) -> Principal:
        tenant = _tenant(payload["tenant"])
        self._check_revoked(tenant, None, payload["iat"])
        return Principal(tenant, _mapping("claims", payload["claims"], optional=False))

    # -- revocation --

    def revoke(
        self,
        *,
        tenant: TenantId | None = None,
        resource: str | None = None,
        before: float | None = None,
    ) -> None:
        """Refuse tokens (and their sessions) issued before ``before`` (default: now).

        Give ``tenant``, ``resource`` or both (that pair only). A cutoff on a dashboard
        (``"sales"``) also covers its widgets (``"sales/revenue"``). Cutoffs live in this
        object, in memory; they only ever move later.
        """
        if tenant is None and resource is None:
            raise ValueError(
                "revoke needs tenant=, resource= or both; to revoke all, retire the key"
            )
        # Keyed by the tenant's text: 7 and "7" read the same rows, so one cutoff covers both.
        key = (
            None if tenant is None else str(_tenant(tenant)),
            None if resource is None else _resource(resource),
        )
        cutoff = self._clock() if before is None else _number("before", before)
        with self._lock:
            self._cutoffs[key] = max(self._cutoffs.get(key, cutoff), cutoff)

    def _check_revoked(self, tenant: TenantId, resource: str | None, issued_at: float) -> None:
        if not self._cutoffs:
            return
        who = str(tenant)
        keys: list[tuple[str | None, str | None]] = [(who, None)]
        if resource is not None:
            for r in {resource, resource.split("/")[0]}:
                keys += [(None, r), (who, r)]
        if any(issued_at < self._cutoffs.get(key, -math.inf) for key in keys):
            raise TokenError("revoked")
