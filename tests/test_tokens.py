"""Embed, session and API tokens: round trips, key configuration, and the attacks refused.

Everything runs on real PyJWT with real keys (Ed25519 and P-256 made with
``cryptography``); hand-made tokens are built byte by byte where PyJWT would refuse
to build them. A controllable clock drives every time check.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from typing import Any

import hypothesis.strategies as st
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import HealthCheck, given, settings

from embedkit.embed.keys import SigningKey, generate_secret
from embedkit.embed.tokens import MAX_TOKEN_LENGTH, ConfigError, Grant, TokenError, Tokens
from embedkit.security.rules import Principal

T0 = 1_700_000_000.0
SECRET = generate_secret()
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pem_private(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def pem_public(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tokens(clock: Clock) -> Tokens:
    return Tokens([SigningKey("hs", SECRET)], clock=clock)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: Any) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def unb64json(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def claims(aud: Any = "embed", **overrides: Any) -> dict[str, Any]:
    """A complete, valid embed payload at T0, with ``overrides`` applied (None deletes)."""
    payload: dict[str, Any] = {
        "iss": "embedkit", "aud": aud, "iat": T0, "nbf": T0, "exp": T0 + 600, "jti": "j1",
        "resource": "sales", "tenant": 1, "claims": {}, "locked": {}, "editable": {},
        "theme": None, "locale": None, "timezone": None,
    }  # fmt: skip
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not None or k in {"theme", "locale"}}


def hand_signed(
    payload: dict[str, Any], key: Any = SECRET, alg: str = "HS256", **header: Any
) -> str:
    """A token signed exactly as told: any claims (PyJWS skips claim checks), any header."""
    body = json.dumps(payload).encode()
    return jwt.PyJWS().encode(body, key, algorithm=alg, headers={"kid": "hs", **header})


def refused(verify: Callable[[str], object], token: str, reason: str = "invalid") -> TokenError:
    with pytest.raises(TokenError) as info:
        verify(token)
    assert info.value.reason == reason
    return info.value


# -- round trips ------------------------------------------------------------------------------


def test_round_trip_hs256(tokens: Tokens) -> None:
    token = tokens.mint_embed(
        "sales/revenue_by_day",
        tenant="acme",
        claims={"role": "viewer"},
        locked={"region": ["EU", "US"]},
        editable={"year": [2023, 2024], "amount": {"min": 0, "max": 100}},
        theme={"accent": "#336699"},
        locale="de-CH",
        timezone="Europe/Zurich",
    )
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    grant = tokens.verify_embed(token)
    assert isinstance(grant, Grant)
    assert grant.resource == "sales/revenue_by_day"
    assert grant.tenant == "acme"
    assert grant.locked == {"region": ["EU", "US"]}
    assert grant.editable == {"year": [2023, 2024], "amount": {"min": 0, "max": 100}}
    assert grant.theme == {"accent": "#336699"}
    assert (grant.locale, grant.timezone) == ("de-CH", "Europe/Zurich")
    assert (grant.issued_at, grant.expires_at) == (T0, T0 + 600)
    assert grant.principal() == Principal("acme", {"role": "viewer"})


@pytest.mark.parametrize("kind", ["EdDSA", "ES256"])
def test_round_trip_asymmetric(
    kind: str, ed_key: ed25519.Ed25519PrivateKey, ec_key: ec.EllipticCurvePrivateKey, clock: Clock
) -> None:
    private = ed_key if kind == "EdDSA" else ec_key
    signer = Tokens(
        [SigningKey("k", algorithm=kind, private_key=pem_private(private))], clock=clock
    )
    token = signer.mint_embed("sales", tenant=7, locked={"region": "EU"})
    assert jwt.get_unverified_header(token) == {"alg": kind, "kid": "k", "typ": "JWT"}
    assert signer.verify_embed(token).locked == {"region": "EU"}
    # A service holding only the public key verifies it too.
    verifier = Tokens(
        [
            SigningKey("own", SECRET),
            SigningKey("k", algorithm=kind, public_key=pem_public(private)),
        ],
        clock=clock,
    )
    assert verifier.verify_embed(token).tenant == 7


def test_round_trip_session_and_api(tokens: Tokens) -> None:
    grant = tokens.verify_embed(tokens.mint_embed("sales", tenant=1, locked={"region": "EU"}))
    assert tokens.verify_session(tokens.mint_session(grant)) == grant
    principal = tokens.verify_api(tokens.mint_api(tenant=3, claims={"plan": "pro"}))
    assert principal == Principal(3, {"plan": "pro"})


def test_grant_is_read_only(tokens: Tokens) -> None:
    grant = tokens.verify_embed(tokens.mint_embed("sales", tenant=1, locked={"region": "EU"}))
    with pytest.raises(TypeError):
        grant.locked["region"] = "US"  # type: ignore[index]


# -- forged and tampered tokens ---------------------------------------------------------------


def test_tampered_payload_is_refused(tokens: Tokens) -> None:
    header, payload, signature = tokens.mint_embed("sales", tenant=1).split(".")
    body = unb64json(payload)
    body["tenant"] = 2
    refused(tokens.verify_embed, ".".join([header, b64json(body), signature]))


def test_tampered_signature_is_refused(tokens: Tokens) -> None:
    header, payload, signature = tokens.mint_embed("sales", tenant=1).split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    refused(tokens.verify_embed, ".".join([header, payload, flipped]))


def test_alg_none_is_refused(tokens: Tokens) -> None:
    for alg in ("none", "None", "NONE"):
        token = f"{b64json({'alg': alg, 'kid': 'hs', 'typ': 'JWT'})}.{b64json(claims())}."
        refused(tokens.verify_embed, token)


@pytest.mark.parametrize("kind", ["EdDSA", "ES256"])
def test_hs_rs_confusion_is_refused(
    kind: str, ed_key: ed25519.Ed25519PrivateKey, ec_key: ec.EllipticCurvePrivateKey, clock: Clock
) -> None:
    """An HS256 token whose HMAC key is the (public) PEM of an asymmetric key."""
    private = ed_key if kind == "EdDSA" else ec_key
    ring = Tokens([SigningKey("k", algorithm=kind, private_key=pem_private(private))], clock=clock)
    signing_input = f"{b64json({'alg': 'HS256', 'kid': 'k', 'typ': 'JWT'})}.{b64json(claims())}"
    mac = hmac.new(pem_public(private), signing_input.encode(), hashlib.sha256).digest()
    refused(ring.verify_embed, f"{signing_input}.{b64(mac)}")
    # ...and such a key can never be configured as an HMAC secret in the first place.
    with pytest.raises(ConfigError, match=r"'confused'.*PEM"):
        SigningKey("confused", pem_public(private).decode())


def test_header_alg_other_than_the_keys_pinned_alg_is_refused(clock: Clock) -> None:
    secret = secrets.token_urlsafe(64)
    ring = Tokens([SigningKey("hs", secret)], clock=clock)  # pinned to HS256
    refused(ring.verify_embed, hand_signed(claims(), secret, alg="HS512"))
    assert ring.verify_embed(hand_signed(claims(), secret)).tenant == 1


def test_unknown_kid_is_refused(tokens: Tokens) -> None:
    refused(tokens.verify_embed, hand_signed(claims(), kid="other"))


def test_missing_kid_is_refused(tokens: Tokens) -> None:
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    assert "kid" not in jwt.get_unverified_header(token)
    refused(tokens.verify_embed, token)


def test_retired_kid_stops_verifying_while_the_new_key_verifies(clock: Clock) -> None:
    old, new = SigningKey("old", SECRET), SigningKey("new", generate_secret())
    old_token = Tokens([old], clock=clock).mint_embed("sales", tenant=1)
    retired = SigningKey("old", SECRET, retired=True)
    ring = Tokens([new, retired], clock=clock)
    refused(ring.verify_embed, old_token)
    assert jwt.get_unverified_header(ring.mint_embed("sales", tenant=1))["kid"] == "new"
    assert ring.verify_embed(ring.mint_embed("sales", tenant=1)).tenant == 1


def test_rotation_old_key_still_listed_verifies(clock: Clock) -> None:
    old, new = SigningKey("old", SECRET), SigningKey("new", generate_secret())
    old_token = Tokens([old], clock=clock).mint_embed("sales", tenant=1)
    ring = Tokens([new, old], clock=clock)
    assert ring.verify_embed(old_token).tenant == 1
    assert jwt.get_unverified_header(ring.mint_embed("sales", tenant=1))["kid"] == "new"


def test_jku_and_jwk_headers_are_never_used(tokens: Tokens) -> None:
    attacker = ed25519.Ed25519PrivateKey.generate()
    jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(attacker.public_key()))
    forged = hand_signed(claims(), attacker, alg="EdDSA", jwk=jwk)
    refused(tokens.verify_embed, forged)
    # Even with the right key, a header pointing at other keys is refused outright.
    for extra in ({"jku": "https://evil.example/jwks.json"}, {"x5u": "https://evil.example/c"}):
        refused(tokens.verify_embed, hand_signed(claims(), **extra))


def test_oversized_token_is_refused(tokens: Tokens) -> None:
    big = hand_signed(claims(claims={"pad": "x" * MAX_TOKEN_LENGTH}))
    assert len(big) > MAX_TOKEN_LENGTH
    refused(tokens.verify_embed, big)
    with pytest.raises(ValueError, match="exceed"):
        tokens.mint_embed("sales", tenant=1, claims={"pad": "x" * MAX_TOKEN_LENGTH})


# -- time -------------------------------------------------------------------------------------


def test_expired_token_is_refused(tokens: Tokens, clock: Clock) -> None:
    token = tokens.mint_embed("sales", tenant=1, ttl=60)
    clock.now += 60 + 31
    refused(tokens.verify_embed, token, "expired")


def test_leeway_is_honoured(tokens: Tokens, clock: Clock) -> None:
    token = tokens.mint_embed("sales", tenant=1, ttl=60)
    clock.now = T0 + 60 + 29  # expired 29 s ago, leeway is 30 s
    assert tokens.verify_embed(token).tenant == 1
    clock.now = T0 + 60 + 31
    refused(tokens.verify_embed, token, "expired")


def test_nbf_in_the_future_is_refused(tokens: Tokens) -> None:
    refused(tokens.verify_embed, hand_signed(claims(nbf=T0 + 120)))
    assert tokens.verify_embed(hand_signed(claims(nbf=T0 + 10))).tenant == 1  # within leeway


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf", "jti", "iss", "aud"])
def test_missing_registered_claim_is_refused(tokens: Tokens, claim: str) -> None:
    refused(tokens.verify_embed, hand_signed(claims(**{claim: None})))


def test_lifetime_above_max_ttl_is_refused(tokens: Tokens) -> None:
    refused(tokens.verify_embed, hand_signed(claims(exp=T0 + 86_400)))


# -- audience and issuer ----------------------------------------------------------------------


def test_wrong_audience_is_refused(tokens: Tokens) -> None:
    refused(tokens.verify_embed, hand_signed(claims(aud="someone-else")))
    refused(tokens.verify_embed, hand_signed(claims(aud=["embed", "api"])))


def test_wrong_issuer_is_refused(tokens: Tokens, clock: Clock) -> None:
    other = Tokens([SigningKey("hs", SECRET)], issuer="other-app", clock=clock)
    refused(tokens.verify_embed, other.mint_embed("sales", tenant=1))


def test_api_and_embed_tokens_are_not_interchangeable(tokens: Tokens) -> None:
    refused(tokens.verify_embed, tokens.mint_api(tenant=1))
    refused(tokens.verify_api, tokens.mint_embed("sales", tenant=1))


def test_session_and_embed_tokens_are_not_interchangeable(tokens: Tokens) -> None:
    embed = tokens.mint_embed("sales", tenant=1)
    session = tokens.mint_session(tokens.verify_embed(embed))
    refused(tokens.verify_embed, session)
    refused(tokens.verify_session, embed)
    refused(tokens.verify_api, session)


def test_session_never_outlives_the_embed_token(tokens: Tokens, clock: Clock) -> None:
    embed = tokens.mint_embed("sales", tenant=1, ttl=120)
    clock.now += 100  # the session is minted late in the embed token's life
    session = tokens.mint_session(tokens.verify_embed(embed))
    assert unb64json(session.split(".")[1])["exp"] == T0 + 120
    assert tokens.verify_session(session).expires_at == T0 + 120
    # A refresh from the session's own grant cannot push the expiry out either.
    refreshed = tokens.mint_session(tokens.verify_session(session))
    assert unb64json(refreshed.split(".")[1])["exp"] == T0 + 120
    clock.now = T0 + 120 + 31
    refused(tokens.verify_session, session, "expired")
    refused(tokens.verify_session, refreshed, "expired")


def test_hand_built_grant_cannot_stretch_a_session(tokens: Tokens) -> None:
    grant = tokens.verify_embed(tokens.mint_embed("sales", tenant=1))
    stretched = dataclasses.replace(grant, expires_at=T0 + 86_400)
    with pytest.raises(ValueError, match="expiry"):
        tokens.mint_session(stretched)


def test_session_of_an_expired_grant_is_not_minted(tokens: Tokens, clock: Clock) -> None:
    grant = tokens.verify_embed(tokens.mint_embed("sales", tenant=1, ttl=60))
    clock.now += 61
    with pytest.raises(TokenError) as info:
        tokens.mint_session(grant)
    assert info.value.reason == "expired"


# -- revocation -------------------------------------------------------------------------------


def test_revoke_per_tenant(tokens: Tokens, clock: Clock) -> None:
    one, two = tokens.mint_embed("sales", tenant=1), tokens.mint_embed("sales", tenant=2)
    api = tokens.mint_api(tenant=1)
    clock.now += 1
    tokens.revoke(tenant=1)
    refused(tokens.verify_embed, one, "revoked")
    refused(tokens.verify_api, api, "revoked")
    assert tokens.verify_embed(two).tenant == 2


def test_revoke_per_resource_and_pair(tokens: Tokens, clock: Clock) -> None:
    sales1, sales2 = (tokens.mint_embed("sales", tenant=t) for t in (1, 2))
    stock1 = tokens.mint_embed("stock", tenant=1)
    clock.now += 1
    tokens.revoke(tenant=2, resource="sales")
    refused(tokens.verify_embed, sales2, "revoked")
    assert tokens.verify_embed(sales1).tenant == 1
    tokens.revoke(resource="sales")
    refused(tokens.verify_embed, sales1, "revoked")
    assert tokens.verify_embed(stock1).resource == "stock"


def test_revoking_a_dashboard_covers_its_widgets(tokens: Tokens, clock: Clock) -> None:
    widget = tokens.mint_embed("sales/revenue_by_day", tenant=1)
    other = tokens.mint_embed("sales_eu/revenue_by_day", tenant=1)
    clock.now += 1
    tokens.revoke(resource="sales")
    refused(tokens.verify_embed, widget, "revoked")
    assert tokens.verify_embed(other).resource == "sales_eu/revenue_by_day"


def test_tokens_minted_after_the_cutoff_pass(tokens: Tokens, clock: Clock) -> None:
    clock.now = 100.3
    before = tokens.mint_embed("sales", tenant=1)
    clock.now = 100.5
    tokens.revoke(tenant=1)
    clock.now = 100.7  # sub-second later: iat is a float, so this token is not revoked
    after = tokens.mint_embed("sales", tenant=1)
    refused(tokens.verify_embed, before, "revoked")
    assert tokens.verify_embed(after).issued_at == 100.7


def test_sessions_of_revoked_tokens_are_refused(tokens: Tokens, clock: Clock) -> None:
    grant = tokens.verify_embed(tokens.mint_embed("sales/x", tenant=1))
    session = tokens.mint_session(grant)
    clock.now += 5
    refreshed = tokens.mint_session(grant)  # sessions keep the embed token's iat
    tokens.revoke(tenant=1, resource="sales")
    refused(tokens.verify_session, session, "revoked")
    refused(tokens.verify_session, refreshed, "revoked")
    with pytest.raises(TokenError):
        tokens.mint_session(grant)


# -- shapes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("empty", [None, "", [], ["EU", None], [""]])
def test_empty_locked_param_is_refused_at_mint(tokens: Tokens, empty: Any) -> None:
    with pytest.raises(ValueError, match="locked param 'region'"):
        tokens.mint_embed("sales", tenant=1, locked={"region": empty})


@pytest.mark.parametrize("empty", [None, "", []])
def test_hand_signed_token_with_empty_locked_param_is_refused(tokens: Tokens, empty: Any) -> None:
    refused(tokens.verify_embed, hand_signed(claims(locked={"region": empty})))


@pytest.mark.parametrize(
    "bad",
    [
        {"tenant": True},
        {"tenant": ""},
        {"tenant": 1.5},
        {"resource": "sales/a/b"},
        {"resource": "../etc"},
        {"claims": ["role"]},
        {"locked": "region=EU"},
        {"editable": {"year": 2024}},
        {"timezone": "Mars/Olympus"},
        {"iat": "yesterday"},
        {"exp": True},
        {"jti": 7},
    ],
)
def test_hand_signed_token_with_wrong_shapes_is_refused(tokens: Tokens, bad: Any) -> None:
    refused(tokens.verify_embed, hand_signed(claims(**bad)))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tenant": True},
        {"tenant": ""},
        {"tenant": 1, "resource": "sales;drop"},
        {"tenant": 1, "claims": {1: "x"}},
        {"tenant": 1, "claims": {"x": float("nan")}},
        {"tenant": 1, "locked": {"a": 1}, "editable": {"a": [1]}},
        {"tenant": 1, "timezone": "../../etc/passwd"},
    ],
)
def test_bad_mint_arguments_are_refused(tokens: Tokens, kwargs: dict[str, Any]) -> None:
    resource = kwargs.pop("resource", "sales")
    with pytest.raises((TypeError, ValueError)):
        tokens.mint_embed(resource, **kwargs)


@pytest.mark.parametrize("ttl", [0, -1, 3601, float("inf")])
def test_ttl_outside_range_is_refused(tokens: Tokens, ttl: float) -> None:
    with pytest.raises((TypeError, ValueError), match="ttl"):
        tokens.mint_embed("sales", tenant=1, ttl=ttl)
    with pytest.raises((TypeError, ValueError), match="ttl"):
        tokens.mint_api(tenant=1, ttl=ttl)


def test_token_error_never_echoes_the_token(tokens: Tokens) -> None:
    token = hand_signed(claims(tenant="victim-corp"), kid="<script>")
    err = refused(tokens.verify_embed, token)
    assert str(err) == "token invalid"
    assert "victim" not in err.detail and "script" not in err.detail


# -- fuzzing ----------------------------------------------------------------------------------


def assert_only_token_error(tokens: Tokens, token: str) -> None:
    for verify in (tokens.verify_embed, tokens.verify_session, tokens.verify_api):
        with contextlib.suppress(TokenError):
            verify(token)


@FUZZ
@given(st.text())
def test_garbage_strings_only_raise_token_error(tokens: Tokens, text: str) -> None:
    assert_only_token_error(tokens, text)
    assert_only_token_error(tokens, text + "." + text + "." + text)


@FUZZ
@given(st.data())
def test_mutated_real_tokens_only_raise_token_error(tokens: Tokens, data: st.DataObject) -> None:
    token = tokens.mint_embed("sales", tenant=1, locked={"region": "EU"})
    at = data.draw(st.integers(0, len(token) - 1))
    insert = data.draw(st.text(max_size=3))
    cut = data.draw(st.integers(0, 3))
    assert_only_token_error(tokens, token[:at] + insert + token[at + cut :])


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)


@FUZZ
@given(st.sampled_from(sorted(claims())), JSON)
def test_validly_signed_odd_payloads_only_raise_token_error(
    tokens: Tokens, field: str, value: Any
) -> None:
    assert_only_token_error(tokens, hand_signed({**claims(), field: value}))


def test_non_string_input_raises_token_error(tokens: Tokens) -> None:
    for value in (None, b"a.b.c", 42, ["a"]):
        refused(tokens.verify_embed, value)  # type: ignore[arg-type]


# -- key configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [
        "secret",
        "changeme",
        "your-256-bit-secret",
        "your-256-bit-secret0000000000000",
        "your-512-bit-secret-your-512-bit-secret",
        "changeme-changeme-changeme-change",
        "a" * 40,
        "abcd" * 10,
        "abcdefghijklmnop" * 3,
        "0123456789ABCDEFabcdef" + "0123456789" * 2,
        secrets.token_hex(20),
        secrets.token_urlsafe(16),
        b"\x00" * 32,
    ],
)
def test_weak_secrets_are_refused_naming_the_kid(secret: str | bytes) -> None:
    with pytest.raises(ConfigError) as info:
        SigningKey("billing-2024", secret)
    message = str(info.value)
    assert "'billing-2024'" in message
    assert "secrets.token_urlsafe(32)" in message
    if isinstance(secret, str) and len(secret) > 8:
        assert secret not in message


def test_strong_secrets_are_accepted() -> None:
    SigningKey("a", generate_secret())
    SigningKey("b", secrets.token_hex(32))
    SigningKey("c", secrets.token_bytes(32) + b"abcdefghijkl")
    SigningKey("d", "acme-jwt-secret-" + generate_secret())
    with pytest.raises(ConfigError, match="48"):
        SigningKey("e", generate_secret(), algorithm="HS384")  # HS384 needs 48 bytes
    SigningKey("e", secrets.token_urlsafe(48), algorithm="HS384")


@pytest.mark.parametrize("algorithm", ["none", "None", "RS256", "HS1", ""])
def test_unknown_algorithms_are_refused(algorithm: str) -> None:
    with pytest.raises(ConfigError, match=r"'k'.*not allowed"):
        SigningKey("k", SECRET, algorithm=algorithm)


def test_mismatched_asymmetric_key_types_are_refused(
    ed_key: ed25519.Ed25519PrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    cases: list[dict[str, Any]] = [
        {"algorithm": "ES256", "private_key": pem_private(ed_key)},
        {"algorithm": "EdDSA", "public_key": pem_public(ec_key)},
        {"algorithm": "ES256", "private_key": pem_private(p384)},
        {"algorithm": "EdDSA", "private_key": b"not a pem"},
        {"algorithm": "EdDSA"},
        {"algorithm": "EdDSA", "private_key": pem_private(ed_key), "secret": SECRET},
        {"algorithm": "HS256", "secret": SECRET, "private_key": pem_private(ed_key)},
        {
            "algorithm": "EdDSA",
            "private_key": pem_private(ed_key),
            "public_key": pem_public(ed25519.Ed25519PrivateKey.generate()),
        },
    ]
    for case in cases:
        with pytest.raises(ConfigError, match="'k'"):
            SigningKey("k", **case)


def test_repr_hides_secrets(ed_key: ed25519.Ed25519PrivateKey) -> None:
    hs = SigningKey("hs", SECRET)
    ed = SigningKey("ed", algorithm="EdDSA", private_key=pem_private(ed_key))
    assert SECRET not in repr(hs) and SECRET not in str(hs)
    assert "PRIVATE" not in repr(ed) and "bytes" not in repr(ed)
    assert repr(hs) == "SigningKey(kid='hs', algorithm='HS256', retired=False)"


def test_key_ring_configuration_errors(ed_key: ed25519.Ed25519PrivateKey) -> None:
    verify_only = SigningKey("ed", algorithm="EdDSA", public_key=pem_public(ed_key))
    with pytest.raises(ConfigError):
        Tokens([])
    with pytest.raises(ConfigError, match="repeat: hs"):
        Tokens([SigningKey("hs", SECRET), SigningKey("hs", generate_secret())])
    with pytest.raises(ConfigError, match="no key can sign"):
        Tokens([verify_only, SigningKey("old", SECRET, retired=True)])
    with pytest.raises(ConfigError):
        Tokens([SigningKey("hs", SECRET)], default_ttl=7200, max_ttl=3600)
    with pytest.raises(ValueError, match="tenant=, resource="):
        Tokens([SigningKey("hs", SECRET)]).revoke()
