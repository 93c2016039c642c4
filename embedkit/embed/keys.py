"""Signing keys for embedkit's tokens: :class:`SigningKey` and the checks it runs.

A key is an HMAC secret (HS256/HS384/HS512) or an Ed25519/P-256 key pair given as PEM
(EdDSA/ES256). Each key is checked when it is built: a weak or well-known secret, a
PEM/SSH/DER key passed as a secret, or a PEM key of the wrong type for its algorithm is
a :class:`ConfigError` that names the key and the fix. :func:`generate_secret` makes a
good HS256 secret. Minting and verifying tokens with a ring of keys is
:mod:`embedkit.embed.tokens`.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any, cast

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import HMACAlgorithm

from embedkit.errors import ConfigError

__all__ = ["SigningKey", "generate_secret"]

_HS_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}  # RFC 7518 3.2: at least the hash size
_ASYMMETRIC = ("EdDSA", "ES256")
_HEX = re.compile(rb"[0-9a-fA-F]+")
_WELL_KNOWN = sorted(
    b"your-256-bit-secret your-384-bit-secret your-512-bit-secret changeme change-me change_me "
    b"changethis supersecret secretkey secret-key secret_key jwtsecret jwt-secret jwt_secret "
    b"password secret".split(),
    key=len,
    reverse=True,
)

_PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
_PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def _fix(nbytes: int) -> str:
    return f'python -c "import secrets; print(secrets.token_urlsafe({nbytes}))"'


def generate_secret() -> str:
    """A fresh random secret for an HS256 :class:`SigningKey` (32 random bytes)."""
    return secrets.token_urlsafe(32)


def _weakness(raw: bytes, minimum: int) -> str | None:
    """Why ``raw`` is not a good HMAC secret, or None."""
    if len(raw) < minimum:
        return f"is {len(raw)} bytes long; it needs at least {minimum}"
    rest = raw.lower()
    for word in _WELL_KNOWN:
        rest = rest.replace(word, b"")
    if len(rest) < minimum:
        return "is (a padded variant of) a well-known example secret"
    if len(set(raw)) < 12:
        return f"uses only {len(set(raw))} distinct characters; it needs at least 12"
    if any(raw[p:] == raw[:-p] for p in range(1, len(raw) // 2 + 1)):
        return "repeats a short pattern"
    if _HEX.fullmatch(raw) and len(raw) < 2 * minimum:
        return f"is a hex string holding only {len(raw) // 2} random bytes, not {minimum}"
    return None


def _load_pem(where: str, algorithm: str, name: str, pem: str | bytes) -> object:
    """The key in ``pem``, checked to suit ``algorithm``; ConfigError otherwise."""
    want = "an Ed25519" if algorithm == "EdDSA" else "a P-256 (secp256r1) EC"
    what = f"{want} {name.replace('_', ' ')}"
    try:
        data = pem.encode("utf-8") if isinstance(pem, str) else bytes(pem)
        if name == "private_key":
            key: object = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_pem_public_key(data)
    except (TypeError, ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"{where}: {name} is not an unencrypted PEM key; need {what}") from None
    fits = (
        isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey)
        if algorithm == "EdDSA"
        else isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey)
        and isinstance(key.curve, ec.SECP256R1)
    )
    if not fits:
        raise ConfigError(
            f"{where}: {algorithm} needs {what}, got {type(key).__name__}; "
            "choose the algorithm that matches the key"
        )
    return key


def _spki(key: _PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass(frozen=True)
class SigningKey:
    """One key of a :class:`~embedkit.embed.tokens.Tokens` key ring, named by ``kid``.

    HS256/HS384/HS512 keys take a random ``secret``; EdDSA (Ed25519) and ES256 (P-256)
    keys take a PEM ``private_key`` (to sign and verify) or only a PEM ``public_key``
    (to verify). A ``retired`` key neither signs nor verifies. ``repr()`` never shows
    the secret or the private key.
    """

    kid: str
    secret: str | bytes | None = field(default=None, repr=False)
    algorithm: str = "HS256"
    private_key: str | bytes | None = field(default=None, repr=False)
    public_key: str | bytes | None = field(default=None, repr=False)
    retired: bool = False
    _signer: Any = field(default=None, init=False, repr=False, compare=False)
    _verifier: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.kid, str) or not self.kid.strip() or len(self.kid) > 128:
            raise ConfigError("SigningKey.kid must be a non-empty string (at most 128 characters)")
        where, alg = f"signing key '{self.kid}'", self.algorithm
        if not isinstance(alg, str) or alg not in (*_HS_MIN_BYTES, *_ASYMMETRIC):
            raise ConfigError(
                f"{where}: algorithm {alg!r} is not allowed; use HS256, HS384, HS512, EdDSA "
                "or ES256"
            )
        if alg in _HS_MIN_BYTES:
            secret = self._hmac_secret(where)
            object.__setattr__(self, "_signer", secret)
            object.__setattr__(self, "_verifier", secret)
            return
        if self.secret is not None:
            raise ConfigError(f"{where}: {alg} uses a key pair; pass private_key=, not secret=")
        if self.private_key is None and self.public_key is None:
            raise ConfigError(f"{where}: {alg} needs private_key= (PEM) or public_key= (PEM)")
        private: _PrivateKey | None = None
        public: _PublicKey | None = None
        if self.private_key is not None:
            private = cast(_PrivateKey, _load_pem(where, alg, "private_key", self.private_key))
        if self.public_key is not None:
            public = cast(_PublicKey, _load_pem(where, alg, "public_key", self.public_key))
        if private is not None:
            derived = private.public_key()
            if public is not None and _spki(public) != _spki(derived):
                raise ConfigError(f"{where}: public_key does not belong to private_key")
            public = derived
        object.__setattr__(self, "_signer", private)
        object.__setattr__(self, "_verifier", public)

    def _hmac_secret(self, where: str) -> bytes:
        alg, minimum = self.algorithm, _HS_MIN_BYTES[self.algorithm]
        if self.private_key is not None or self.public_key is not None:
            raise ConfigError(
                f"{where}: {alg} signs with a shared secret, not a key pair; pass secret=..., "
                "or use algorithm='EdDSA' or 'ES256' with private_key=/public_key="
            )
        if not isinstance(self.secret, str | bytes):
            raise ConfigError(f"{where}: {alg} needs secret=...; generate one with {_fix(minimum)}")
        raw = self.secret.encode("utf-8") if isinstance(self.secret, str) else self.secret
        try:
            if raw:  # PyJWT knows PEM, SSH and DER keys; refuse them as HMAC secrets
                HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(raw)
            if b"-----BEGIN" in raw:
                raise jwt.InvalidKeyError("PEM")
        except jwt.InvalidKeyError:
            raise ConfigError(
                f"{where}: the secret is a PEM/SSH/DER key; a public key is public, so it can "
                f"never be an HMAC secret. For a key pair use algorithm='EdDSA' or 'ES256'; "
                f"for {alg} generate a secret with {_fix(minimum)}"
            ) from None
        problem = _weakness(raw, minimum)
        if problem:
            raise ConfigError(f"{where}: the secret {problem}; generate one with {_fix(minimum)}")
        return raw
