"""What the upstream sees: our x-auth-* headers, and never the ones a client sent."""

from __future__ import annotations

import json

from conftest import bearer, raw_request, seen_by_upstream

SPOOFED = {
    "x-auth-subject": "admin",
    "X-Auth-Tenant": "other-tenant",
    "X-AUTH-SCOPES": "admin",
    "x-auth-client": "trusted",
    "x-auth-anything": "1",
}


def own_headers(seen: dict) -> dict:
    return {k: v for k, v in seen["headers"].items() if k.startswith("x-auth-")}


def test_spoofed_identity_headers_are_replaced(gateway, keys):
    token = keys.mint(sub="alice", tenant="acme", client_id="web-app", scope="orders:read")
    seen = seen_by_upstream(gateway.get("/orders/1", headers={**bearer(token), **SPOOFED}))
    assert own_headers(seen) == {
        "x-auth-subject": "alice",
        "x-auth-tenant": "acme",
        "x-auth-client": "web-app",
        "x-auth-scopes": "orders:read",
        "x-auth-kind": "human",
    }


def test_spoofed_headers_removed_when_token_has_no_tenant_or_client(gateway, keys):
    token = keys.mint(tenant=None, client_id=None, scope="orders:read")
    seen = seen_by_upstream(gateway.get("/orders/1", headers={**bearer(token), **SPOOFED}))
    assert own_headers(seen) == {"x-auth-subject": "alice", "x-auth-scopes": "orders:read", "x-auth-kind": "human"}


def test_spoofed_headers_removed_on_anonymous_route(gateway):
    seen = seen_by_upstream(gateway.get("/health", headers=SPOOFED))
    assert own_headers(seen) == {}


def test_repeated_spoofed_headers_are_all_removed(gateway, keys):
    token = keys.mint()
    status, _, body = raw_request(
        gateway.port,
        "GET",
        "/orders/3",
        [
            ("authorization", f"Bearer {token}"),
            ("x-auth-subject", "one"),
            ("X-Auth-Subject", "two"),
            ("x-auth-tenant", "t1"),
            ("x-AUTH-tenant", "t2"),
        ],
    )
    assert status == 200, body
    assert '"one"' not in body and '"two"' not in body and '"t1"' not in body and '"t2"' not in body
    assert '"x-auth-subject": "alice"' in body


def test_api_key_request_cannot_spoof_either(gateway, api_key):
    seen = seen_by_upstream(gateway.get("/orders/9", headers={"x-api-key": api_key.secret, **SPOOFED}))
    assert own_headers(seen)["x-auth-subject"] == api_key.subject
    assert own_headers(seen)["x-auth-scopes"] == "orders:read"
    assert "x-auth-anything" not in own_headers(seen)


def test_credential_headers_still_reach_upstream(gateway, keys):
    # The filter authenticates; it does not strip the Authorization header (the upstream may want it).
    token = keys.mint()
    seen = seen_by_upstream(gateway.get("/orders/1", headers=bearer(token)))
    assert seen["headers"]["authorization"] == f"Bearer {token}"


def test_reserved_headers_sent_twice_in_odd_case_reach_the_upstream_once(gateway, keys):
    # Envoy removes every client copy: Warden's value arrives once (a string, not a list), and
    # delegation headers not at all, whatever their case and however often they were sent.
    token = keys.mint(sub="alice", scope="orders:read")
    status, _, body = raw_request(
        gateway.port,
        "GET",
        "/orders/3",
        [
            ("authorization", f"Bearer {token}"),
            ("X-AUTH-SUBJECT", "evil"),
            ("x-Auth-Subject", "evil2"),
            ("x-auth-kind", "agent"),
            ("X-Auth-Kind", "service"),
            ("X-Auth-Risk-Score", "0"),
            ("X-On-Behalf-Of", "root"),
            ("x-on-behalf-of", "admin"),
            ("x-forwarded-user", "admin"),
        ],
    )
    assert status == 200, body
    headers = json.loads(body)["headers"]
    assert headers["x-auth-subject"] == "alice"
    assert headers["x-auth-kind"] == "human"
    assert "x-auth-risk-score" not in headers
    assert "x-on-behalf-of" not in headers and "x-forwarded-user" not in headers
