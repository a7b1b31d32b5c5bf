"""First-seen tokens through a real Envoy, whose `verify_signature` foreign function (BoringSSL) checks
RS* and ES* signatures for Warden; PS* and EdDSA stay in Wasm (jwt-simple). The counter
`warden_signatures_total{kind}` says which path checked each signature."""

from __future__ import annotations

import base64
import time

from conftest import SigningKey, bearer, seen_by_upstream
from test_metrics import counter, scrape


def signatures(gw) -> dict[str, float]:
    """The counts as published: Warden sums counters per worker and publishes them on its 250 ms tick,
    so what earlier requests counted is read after a tick has passed."""
    time.sleep(0.6)
    fams = scrape(gw)
    if "warden_signatures" not in fams:
        return {}
    return {s.labels["kind"]: s.value for s in counter(fams, "warden_signatures_total")}


def flip_signature(token: str) -> str:
    head, payload, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{payload}." + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def ps256(keys) -> SigningKey:
    # The RS256 fixture key carries no `alg`, so it serves PS256 as well.
    return SigningKey(keys.rs256.kid, "PS256", keys.rs256.private, keys.rs256.jwk)


def test_the_filter_found_verify_signature_at_configure(gateway):
    assert "signatures: host (verify_signature)" in gateway.log()


def test_first_seen_es256_and_rs256_are_verified_by_the_host(gateway, keys):
    before = signatures(gateway)
    for key in (keys.es256, keys.rs256):
        for _ in range(3):
            r = gateway.get("/orders/7", headers=bearer(keys.mint(key)))  # a new jti: first-seen
            assert r.status_code == 200, (key.alg, r.status_code, r.text)
            assert seen_by_upstream(r)["headers"]["x-auth-subject"] == "alice"
    after = signatures(gateway)
    assert after.get("host", 0) - before.get("host", 0) == 6, (before, after)
    assert after.get("wasm", 0) == before.get("wasm", 0), (before, after)


def test_first_seen_ps256_is_verified_in_wasm(gateway, keys):
    before = signatures(gateway)
    r = gateway.get("/orders/7", headers=bearer(keys.mint(ps256(keys))))
    assert r.status_code == 200, r.text
    after = signatures(gateway)
    assert after.get("wasm", 0) - before.get("wasm", 0) == 1, (before, after)
    assert after.get("host", 0) == before.get("host", 0), (before, after)


def test_bad_signatures_are_refused_by_the_host(gateway, keys):
    before = signatures(gateway)
    bad = [
        keys.mint(keys.rogue_es256),  # same kid, another key
        flip_signature(keys.mint(keys.es256)),
        flip_signature(keys.mint(keys.rs256)),
    ]
    for token in bad:
        r = gateway.get("/orders/7", headers=bearer(token))
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    after = signatures(gateway)
    assert after.get("host", 0) - before.get("host", 0) == 3, (before, after)
    # A refused PS256 signature is refused in Wasm.
    r = gateway.get("/orders/7", headers=bearer(flip_signature(keys.mint(ps256(keys)))))
    assert r.status_code == 401, r.text


def test_an_expired_token_sent_again_is_not_verified_again(gateway, keys):
    """A client that keeps sending a token past its `exp` (or a replay of one) is refused as expired
    from each worker's token cache: its signature is checked at most once per worker (2 here), however
    often it comes back. A forged copy is checked, and refused as a forgery, every time."""
    now = int(time.time())
    before = signatures(gateway)
    for key in (keys.es256, keys.rs256):
        token = keys.mint(key, iat=now - 900, exp=now - 300)
        for _ in range(8):
            r = gateway.get("/orders/7", headers=bearer(token))
            assert r.status_code == 401, (key.alg, r.status_code, r.text)
            assert 'error="invalid_token"' in r.headers["www-authenticate"], r.headers
    after = signatures(gateway)
    checked = after.get("host", 0) - before.get("host", 0)
    assert 2 <= checked <= 4, (before, after)
    forged = flip_signature(keys.mint(keys.es256, iat=now - 900, exp=now - 300))
    for _ in range(3):
        assert gateway.get("/orders/7", headers=bearer(forged)).status_code == 401
    assert signatures(gateway).get("host", 0) - after.get("host", 0) == 3
