"""Shadow mode: everything is forwarded; what would have been refused is logged as a deny."""

from __future__ import annotations

from conftest import bearer, seen_by_upstream


def test_invalid_token_is_forwarded_and_logged_as_deny(shadow_gateway, keys):
    token = keys.mint(key=keys.rogue_es256)  # bad signature
    seen = seen_by_upstream(shadow_gateway.get("/orders/1", headers={**bearer(token), "x-auth-subject": "root"}))
    # No identity was proven, so none is asserted upstream, and the spoofed one is gone.
    assert not [h for h in seen["headers"] if h.startswith("x-auth-")]
    rid = seen["headers"]["x-request-id"]
    rec = shadow_gateway.wait_audit(lambda r: r["request_id"] == rid)
    assert rec["decision"] == "deny"
    assert rec["mode"] == "shadow"
    assert rec["status"] == 401
    assert rec["reason"] and rec["reason"] != "ok"
    assert token not in shadow_gateway.log()


def test_missing_credential_is_forwarded_and_logged(shadow_gateway):
    seen = seen_by_upstream(shadow_gateway.get("/orders/2"))
    rid = seen["headers"]["x-request-id"]
    rec = shadow_gateway.wait_audit(lambda r: r["request_id"] == rid)
    assert (rec["decision"], rec["status"], rec["reason"]) == ("deny", 401, "no_credential")


def test_missing_scope_is_forwarded_and_logged_as_403(shadow_gateway, keys):
    seen = seen_by_upstream(shadow_gateway.request("POST", "/orders", headers=bearer(keys.mint(scope="orders:read"))))
    rid = seen["headers"]["x-request-id"]
    rec = shadow_gateway.wait_audit(lambda r: r["request_id"] == rid)
    assert (rec["decision"], rec["status"]) == ("deny", 403)


def test_valid_token_in_shadow_mode_gets_identity(shadow_gateway, keys):
    seen = seen_by_upstream(shadow_gateway.get("/orders/3", headers=bearer(keys.mint(sub="bob"))))
    assert seen["headers"]["x-auth-subject"] == "bob"
    rid = seen["headers"]["x-request-id"]
    rec = shadow_gateway.wait_audit(lambda r: r["request_id"] == rid)
    assert (rec["decision"], rec["mode"], rec["subject"]) == ("allow", "shadow", "bob")
