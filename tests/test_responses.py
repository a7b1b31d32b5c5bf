"""Every reply status of the public contract (docs/ARCHITECTURE.md, README), through a real Envoy."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import jwt
import pytest
from conftest import PARTNER_ISSUER, b64url, bearer, raw_request, seen_by_upstream
from cryptography.hazmat.primitives import serialization

INVALID_TOKEN = 'Bearer error="invalid_token"'
INVALID_REQUEST = 'Bearer error="invalid_request"'


def assert_error_body(resp, error: str, *secrets: str) -> dict:
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["error"] == error
    assert isinstance(body.get("request_id"), str) and body["request_id"]
    assert set(body) <= {"error", "error_description", "request_id"}
    for s in secrets:
        assert s not in resp.text, "the reply echoes the credential"
        for part in s.split("."):
            if len(part) > 8:
                assert part not in resp.text, "the reply echoes part of the token"
    return body


# --- no credential ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/orders/7", "/somewhere/unrouted", "/admin/users"])
def test_no_credential_is_401_with_realm_and_no_error(gateway, path):
    r = gateway.get(path)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="warden"'
    assert_error_body(r, "unauthorized")


def test_other_authorization_scheme_counts_as_no_credential(gateway):
    r = gateway.get("/orders/7", headers={"authorization": "Basic YWxpY2U6c2VjcmV0"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="warden"'


# --- malformed or ambiguous -----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["Bearer", "Bearer a b", "Bearer !!!", "Bearer    "])
def test_malformed_authorization_is_400_invalid_request(gateway, value):
    r = gateway.get("/orders/7", headers={"authorization": value})
    assert r.status_code == 400, r.text
    assert r.headers["www-authenticate"] == INVALID_REQUEST
    assert_error_body(r, "invalid_request")


def test_bearer_and_api_key_together_is_400(gateway, keys, api_key):
    token = keys.mint()
    r = gateway.get("/orders/7", headers={**bearer(token), "x-api-key": api_key.secret})
    assert r.status_code == 400
    assert r.headers["www-authenticate"] == INVALID_REQUEST
    assert_error_body(r, "invalid_request", token, api_key.secret)


def test_two_authorization_headers_is_400(gateway, keys):
    token = keys.mint()
    auth = ("authorization", f"Bearer {token}")
    status, headers, body = raw_request(gateway.port, "GET", "/orders/7", [auth, auth])
    assert status == 400, body
    assert headers["www-authenticate"] == INVALID_REQUEST
    assert token not in body


# --- invalid tokens --------------------------------------------------------------------------------


def _bad_tokens(keys):
    now = int(time.time())
    claims = keys.claims()
    rsa_pem = keys.rs256.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_header = {"alg": "HS256", "typ": "JWT", "kid": keys.rs256.kid}
    signing_input = (
        b64url(json.dumps(hs_header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    confused = signing_input + "." + b64url(hmac.new(rsa_pem, signing_input.encode(), hashlib.sha256).digest())
    keys.minted.append(confused)
    good = keys.mint()
    h, p, s = good.split(".")
    return {
        "bad_signature": keys.mint(key=keys.rogue_es256),
        "tampered_payload": h + "." + b64url(json.dumps(keys.claims(sub="mallory")).encode()) + "." + s,
        "wrong_iss": keys.mint(iss="https://evil.example"),
        "wrong_aud": keys.mint(aud="someone-else"),
        "no_aud": keys.mint(aud=None),
        "expired": keys.mint(iat=now - 7200, exp=now - 3600),
        "no_exp": keys.mint(exp=None),
        "not_yet_valid": keys.mint(nbf=now + 3600),
        "alg_none": keys.raw({"alg": "none", "typ": "JWT", "kid": keys.es256.kid}, claims),
        "alg_none_with_sig": keys.raw({"alg": "none", "kid": keys.es256.kid}, claims, b"x" * 64),
        "alg_NoNe": keys.raw({"alg": "NoNe", "kid": keys.es256.kid}, claims),
        "unknown_kid": keys.mint(key=keys.stranger),
        "rs_hs_confusion": confused,
        "alg_swapped_on_bound_key": keys.raw({"alg": "ES384", "kid": keys.es256.kid}, claims, b"\x01" * 96),
        "crit": keys.mint(headers={"crit": ["exp"]}),
        "embedded_jwk": keys.mint(key=keys.stranger, headers={"jwk": keys.stranger.jwk}),
        "jku": keys.mint(key=keys.stranger, headers={"jku": "https://evil.example/jwks.json"}),
        "typ_dpop": keys.mint(headers={"typ": "dpop+jwt"}),
        "kid_injection": keys.mint(key=keys.stranger, headers={"kid": "../../../../dev/null"}),
        "garbage_segments": "aGVsbG8.d29ybGQ.Zm9vYmFy",
        "two_segments": h + "." + p,
    }


BAD_CASES = [
    "bad_signature",
    "tampered_payload",
    "wrong_iss",
    "wrong_aud",
    "no_aud",
    "expired",
    "no_exp",
    "not_yet_valid",
    "alg_none",
    "alg_none_with_sig",
    "alg_NoNe",
    "unknown_kid",
    "rs_hs_confusion",
    "alg_swapped_on_bound_key",
    "crit",
    "embedded_jwk",
    "jku",
    "typ_dpop",
    "kid_injection",
    "garbage_segments",
    "two_segments",
]


@pytest.fixture(scope="module")
def bad_tokens(keys):
    return _bad_tokens(keys)


@pytest.mark.parametrize("case", BAD_CASES)
def test_invalid_token_is_401_invalid_token(gateway, bad_tokens, case):
    token = bad_tokens[case]
    r = gateway.get("/orders/7", headers=bearer(token))
    assert r.status_code == 401, (case, r.text)
    assert r.headers["www-authenticate"] == INVALID_TOKEN
    assert_error_body(r, "invalid_token", token)


def test_invalid_token_on_anonymous_route_is_ignored(gateway, bad_tokens):
    r = gateway.get("/health", headers=bearer(bad_tokens["expired"]))
    assert r.status_code == 200


# --- scopes ----------------------------------------------------------------------------------------


def test_missing_scope_is_403_insufficient_scope(gateway, keys):
    token = keys.mint(scope="orders:read")
    r = gateway.request("POST", "/orders", headers=bearer(token), json={"item": 1})
    assert r.status_code == 403
    assert r.headers["www-authenticate"] == 'Bearer error="insufficient_scope", scope="orders:write"'
    assert_error_body(r, "insufficient_scope", token)


def test_missing_scope_on_prefix_route(gateway, keys):
    r = gateway.get("/admin/users/3", headers=bearer(keys.mint()))
    assert r.status_code == 403
    assert r.headers["www-authenticate"] == 'Bearer error="insufficient_scope", scope="admin"'


def test_scope_as_array_claim(gateway, keys):
    token = keys.mint(scope=None, scp=["admin"])
    assert gateway.get("/admin/users", headers=bearer(token)).status_code == 200


def test_token_without_scopes_gets_403_on_scoped_route(gateway, keys):
    r = gateway.get("/orders/7", headers=bearer(keys.mint(scope=None)))
    assert r.status_code == 403
    assert r.headers["www-authenticate"] == 'Bearer error="insufficient_scope", scope="orders:read"'


# --- valid -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["es256", "rs256", "eddsa"])
def test_valid_token_reaches_upstream_with_identity(gateway, keys, alg):
    key = getattr(keys, alg)
    token = keys.mint(key=key, sub=f"user-{alg}", tenant="acme", client_id="web-app", scope="orders:read extra")
    seen = seen_by_upstream(gateway.get("/orders/42?x=1", headers=bearer(token)))
    h = seen["headers"]
    assert seen["path"] == "/orders/42?x=1"
    assert h["x-auth-subject"] == f"user-{alg}"
    assert h["x-auth-tenant"] == "acme"
    assert h["x-auth-client"] == "web-app"
    assert h["x-auth-scopes"].split() == ["orders:read", "extra"]


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_scheme_is_case_insensitive(gateway, keys, scheme):
    r = gateway.get("/orders/1", headers={"authorization": f"{scheme} {keys.mint()}"})
    assert r.status_code == 200


def test_second_audience_is_accepted(gateway, keys):
    assert gateway.get("/orders/1", headers=bearer(keys.mint(aud=["x", "other-api"]))).status_code == 200


def test_unrouted_path_needs_a_valid_credential_only(gateway, keys):
    seen = seen_by_upstream(gateway.get("/reports", headers=bearer(keys.mint(scope=None))))
    assert seen["headers"]["x-auth-subject"] == "alice"
    assert seen["headers"]["x-auth-scopes"] == ""


def test_template_route(gateway, keys):
    assert gateway.get("/t/acme/x/9", headers=bearer(keys.mint())).status_code == 200
    assert gateway.get("/t/acme/x/9", headers=bearer(keys.mint(scope="other"))).status_code == 403


def test_path_is_normalised_before_policy(gateway, keys):
    # Without normalize_path / merge_slashes these would dodge the /admin prefix rule.
    token = keys.mint()  # no admin scope
    for path in ["//admin/users", "/public/../admin/users", "/./admin/users", "/admin//users"]:
        status, _, _ = raw_request(gateway.port, "GET", path, [("authorization", f"Bearer {token}")])
        assert status == 403, path


# --- API keys --------------------------------------------------------------------------------------


def test_valid_api_key(gateway, api_key):
    seen = seen_by_upstream(gateway.get("/orders/5", headers={"x-api-key": api_key.secret}))
    h = seen["headers"]
    assert h["x-auth-subject"] == api_key.subject
    assert h["x-auth-tenant"] == api_key.tenant
    assert h["x-auth-client"] == api_key.id
    assert h["x-auth-scopes"] == "orders:read"


def test_unknown_api_key_is_401(gateway, api_key):
    wrong = api_key.secret[:-1] + ("A" if api_key.secret[-1] != "A" else "B")
    r = gateway.get("/orders/5", headers={"x-api-key": wrong})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == INVALID_TOKEN
    assert_error_body(r, "invalid_token", wrong)


def test_api_key_scope_is_enforced(gateway, api_key):
    r = gateway.request("POST", "/orders", headers={"x-api-key": api_key.secret})
    assert r.status_code == 403


# --- anonymous -------------------------------------------------------------------------------------


def test_anonymous_route_needs_no_token(gateway):
    seen = seen_by_upstream(gateway.get("/health"))
    assert not [h for h in seen["headers"] if h.startswith("x-auth-")]


def test_anonymous_route_is_method_specific(gateway):
    assert gateway.request("POST", "/health").status_code == 401



# --- a second provider with every option set -------------------------------------------------------


def partner_token(keys, typ: str | None = "at+jwt", lifetime=600, **claims):
    now = int(time.time())
    base = dict(iss=PARTNER_ISSUER, iat=now, exp=now + lifetime, scope=None, tenant=None, client_id=None,
                org="globex", permissions=["orders:read", "orders:write"], azp="partner-app")
    base.update(claims)
    token = keys.mint(key=keys.partner, headers={"typ": typ}, **base)
    assert jwt.get_unverified_header(token).get("typ") == typ
    return token


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT"])
def test_partner_provider_with_mapped_claims(gateway, keys, typ):
    seen = seen_by_upstream(gateway.get("/orders/8", headers=bearer(partner_token(keys, typ=typ))))
    h = seen["headers"]
    assert (h["x-auth-subject"], h["x-auth-tenant"], h["x-auth-client"]) == ("alice", "globex", "partner-app")
    assert h["x-auth-scopes"].split() == ["orders:read", "orders:write"]


@pytest.mark.parametrize(
    "case",
    ["typ_jwt", "no_typ", "too_long_lived", "corp_key_partner_iss", "partner_key_corp_iss", "expired_past_small_skew"],
)
def test_partner_provider_rules(gateway, keys, case):
    now = int(time.time())
    token = {
        "typ_jwt": lambda: partner_token(keys, typ="JWT"),
        "no_typ": lambda: partner_token(keys, typ=None),  # require_typ: a missing typ fails too
        "too_long_lived": lambda: partner_token(keys, lifetime=7200),
        "corp_key_partner_iss": lambda: keys.mint(key=keys.eddsa, headers={"typ": "at+jwt"}, iss=PARTNER_ISSUER),
        "partner_key_corp_iss": lambda: keys.mint(key=keys.partner),
        "expired_past_small_skew": lambda: partner_token(keys, iat=now - 100, exp=now - 20),
    }[case]()
    r = gateway.get("/orders/8", headers=bearer(token))
    assert r.status_code == 401, (case, r.text)
    assert r.headers["www-authenticate"] == INVALID_TOKEN
