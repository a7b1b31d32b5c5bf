"""What the upstream sees: our x-auth-* headers, and never the ones a client sent."""

from __future__ import annotations

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
