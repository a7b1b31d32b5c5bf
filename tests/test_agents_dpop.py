"""DPoP (RFC 9449) through a real Envoy (--concurrency 2): proofs made here with PyJWT + cryptography,
tokens bound with `cnf.jkt`; accepted, replayed (refused across workers), downgraded to Bearer."""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import jwt
import pytest
import requests
from conftest import TIMEOUT, b64url, seen_by_upstream
from cryptography.hazmat.primitives.asymmetric import ec

DPOP_CHALLENGE = 'DPoP error="invalid_dpop_proof"'


def thumbprint(jwk: dict) -> str:
    """RFC 7638: SHA-256 of the required members, sorted, no whitespace."""
    members = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


class Holder:
    """A DPoP key holder (the client)."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key()))
        self.jkt = thumbprint(self.jwk)

    def proof(self, method: str, url: str, token: str, **over) -> str:
        claims = {
            "jti": uuid.uuid4().hex,
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
            "ath": b64url(hashlib.sha256(token.encode()).digest()),
        }
        claims.update(over)
        return jwt.encode(claims, self.private, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": self.jwk})


@pytest.fixture()
def holder() -> Holder:
    return Holder()


def dpop_get(gateway, path: str, token: str, proof: str | None) -> requests.Response:
    headers = {"authorization": f"DPoP {token}"}
    if proof is not None:
        headers["dpop"] = proof
    # A new connection per request, so that consecutive requests may land on either worker.
    with requests.Session() as s:
        return s.get(gateway.url(path), headers=headers, timeout=TIMEOUT)


def test_dpop_bound_token_with_valid_proof_is_accepted(gateway, keys, holder):
    token = keys.mint(cnf={"jkt": holder.jkt})
    url = gateway.url("/orders/7")
    r = dpop_get(gateway, "/orders/7?x=1", token, holder.proof("GET", url, token))
    assert seen_by_upstream(r)["headers"]["x-auth-subject"] == "alice"


def test_replayed_proof_is_refused_on_every_worker(gateway, keys, holder):
    token = keys.mint(cnf={"jkt": holder.jkt})
    url = gateway.url("/orders/7")
    proof = holder.proof("GET", url, token)
    assert dpop_get(gateway, "/orders/7", token, proof).status_code == 200
    for _ in range(4):  # new connections: both workers see the replay
        r = dpop_get(gateway, "/orders/7", token, proof)
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"].startswith(DPOP_CHALLENGE)
        assert 'algs="ES256 ES384 EdDSA"' in r.headers["www-authenticate"]
        assert r.json()["error"] == "invalid_dpop_proof"
    gateway.wait_audit(lambda rec: rec.get("reason") == "dpop_replay")


def test_dpop_bound_token_as_bearer_is_refused(gateway, keys, holder):
    token = keys.mint(cnf={"jkt": holder.jkt})
    r = gateway.get("/orders/7", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    gateway.wait_audit(lambda rec: rec.get("reason") == "binding")


def test_proof_checks_refuse(gateway, keys, holder):
    token = keys.mint(cnf={"jkt": holder.jkt})
    url = gateway.url("/orders/7")
    other = Holder()
    cases = {
        "missing": None,
        "other key": other.proof("GET", url, token),
        "wrong method": holder.proof("POST", url, token),
        "wrong uri": holder.proof("GET", gateway.url("/orders/8"), token),
        "stale": holder.proof("GET", url, token, iat=int(time.time()) - 600),
        "wrong ath": holder.proof("GET", url, token, ath=b64url(b"x" * 32)),
        "not a jwt": "abc",
    }
    for name, proof in cases.items():
        r = dpop_get(gateway, "/orders/7", token, proof)
        assert r.status_code == 401, name
        assert r.headers["www-authenticate"].startswith(DPOP_CHALLENGE), name


def test_unbound_token_with_dpop_scheme_is_refused(gateway, keys, holder):
    token = keys.mint()
    r = dpop_get(gateway, "/orders/7", token, holder.proof("GET", gateway.url("/orders/7"), token))
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith(DPOP_CHALLENGE)


def test_private_key_in_proof_header_is_refused(gateway, keys, holder):
    token = keys.mint(cnf={"jkt": holder.jkt})
    leaky = dict(holder.jwk)
    leaky["d"] = b64url(holder.private.private_numbers().private_value.to_bytes(32, "big"))
    claims = {"jti": uuid.uuid4().hex, "htm": "GET", "htu": gateway.url("/orders/7"), "iat": int(time.time()),
              "ath": b64url(hashlib.sha256(token.encode()).digest())}
    proof = jwt.encode(claims, holder.private, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": leaky})
    assert dpop_get(gateway, "/orders/7", token, proof).status_code == 401


def test_thumbprint_helper_matches_rfc9449_example():
    jwk = {"kty": "EC", "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
           "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA", "crv": "P-256"}
    assert thumbprint(jwk) == "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


def test_invalid_token_under_dpop_scheme_is_challenged_with_dpop(gateway, keys, holder):
    # RFC 9449 §7.1: the challenge names the scheme the client used.
    token = keys.mint(cnf={"jkt": holder.jkt}, exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)
    r = dpop_get(gateway, "/orders/7", token, holder.proof("GET", gateway.url("/orders/7"), token))
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'DPoP error="invalid_token", algs="ES256 ES384 EdDSA"'
    assert r.json()["error"] == "invalid_token"
