"""The hardening classes through a real Envoy (--concurrency 2) with real signed tokens: unmatched
requests and path variants, smuggled headers, identity values, keyed slots and the geo header.
Natively: plugin/tests/hardening.rs."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest
from conftest import ISSUER, AUDIENCE, bearer, raw_request, seen_by_upstream, warden_config

ROOT = Path(__file__).resolve().parent.parent


def hardened_config(keys, api_key, **overrides) -> dict:
    """The shared test config with the default routing (unmatched requests denied) and tenancy."""
    cfg = warden_config(keys, api_key)
    del cfg["routing"]
    cfg["routes"] += [
        {"name": "tenant-order", "methods": ["GET"], "path": "/tenants/{tenant}/orders/{id}", "scopes": ["orders:read"]},
    ]
    cfg["tenancy"] = {"header": "x-tenant-id"}
    cfg.update(overrides)
    return cfg


@pytest.fixture(scope="module")
def hardened(envoys, keys, api_key):
    return envoys.gateway(hardened_config(keys, api_key), "hardened")


def jti_of(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False})["jti"]


def status_of(gw, method, path, headers=()) -> int:
    return raw_request(gw.port, method, path, list(headers))[0]


# --- unmatched requests ------------------------------------------------------------------------------


def test_a_method_no_route_lists_is_denied_with_a_reason(hardened, keys):
    token = keys.mint(scope="orders:read")
    status, headers, body = raw_request(hardened.port, "DELETE", "/tenants/acme/orders/1", list(bearer(token).items()))
    assert status == 404 and json.loads(body)["error"] == "not_found"
    rec = hardened.wait_audit(lambda r: r.get("jti") == jti_of(token))
    assert rec["reason"] == "no_route" and rec["status"] == 404
    # Anonymous callers learn nothing about the route table: the credential comes first.
    assert status_of(hardened, "DELETE", "/tenants/acme/orders/1") == 401


@pytest.mark.parametrize(
    "method, path",
    [
        ("DELETE", "/tenants/globex/orders/1"),
        ("GET", "/tenants/globex/orders/1/items"),
        ("GET", "/tenants/%67lobex/orders/1"),
    ],
    ids=["unlisted-method", "unlisted-sub-path", "encoded-tenant"],
)
def test_another_tenants_path_is_refused_whichever_route_matched(hardened, keys, method, path):
    token = keys.mint(scope="orders:read")  # tenant acme
    headers = [*bearer(token).items(), ("x-tenant-id", "acme")]
    assert status_of(hardened, method, path, headers) == 403


@pytest.mark.parametrize("path", ["/admin/x", "//admin/x", "/a/../admin/x", "/%61dmin/x", "/admin/x?next=/health"])
def test_path_variants_fall_under_their_route(hardened, keys, path):
    token = keys.mint(scope="orders:read")
    assert status_of(hardened, "GET", path, bearer(token).items()) == 403


def test_case_variants_are_other_paths_unless_routing_says_otherwise(envoys, hardened, keys, api_key):
    token = keys.mint(scope="orders:read")
    # Case-sensitive (the default): /ADMIN is no route, and no route is denied.
    assert status_of(hardened, "GET", "/ADMIN/x", bearer(token).items()) == 404
    lax = envoys.gateway(hardened_config(keys, api_key, routing={"case_sensitive": False}), "case-insensitive")
    assert status_of(lax, "GET", "/ADMIN/x", bearer(token).items()) == 403
    assert status_of(lax, "GET", "/TENANTS/globex/orders/1", bearer(token).items()) == 403
    assert status_of(lax, "GET", "/TENANTS/acme/orders/1", bearer(token).items()) == 200


def test_the_multi_tenant_example_denies_cross_tenant_and_unlisted_requests(envoys, keys):
    cfg = json.loads((ROOT / "examples" / "agents" / "multi-tenant-saas.json").read_text())
    provider = cfg["providers"][0]
    provider.update(issuer=ISSUER, audiences=[AUDIENCE], jwks=keys.jwks())
    gw = envoys.gateway(cfg, "multi-tenant-example")
    token = keys.mint(org_id="acme", scope="records:read")
    headers = [*bearer(token).items(), ("x-tenant-id", "acme")]
    assert status_of(gw, "GET", "/t/acme/records/1", headers) == 200
    assert status_of(gw, "DELETE", "/t/globex/records/1", headers) == 403
    assert status_of(gw, "GET", "/t/globex/records/1/history", headers) == 403
    assert status_of(gw, "DELETE", "/t/acme/anything", headers) == 404


# --- smuggled headers --------------------------------------------------------------------------------


def test_the_shipped_bootstrap_rejects_underscore_headers(hardened, keys):
    token = keys.mint(scope="orders:read")
    for name in ["x_auth_subject", "x_on_behalf_of"]:
        status, _, _ = raw_request(hardened.port, "GET", "/orders/7", [*bearer(token).items(), (name, "admin")])
        assert status == 400, name


@pytest.fixture(scope="module")
def underscores_allowed(envoys, keys, api_key):
    """The same filter behind a bootstrap that lets underscore headers through: the filter alone."""
    allow = lambda text: text.replace("headers_with_underscores_action: REJECT_REQUEST", "headers_with_underscores_action: ALLOW")
    return envoys.gateway(hardened_config(keys, api_key), "underscores-allowed", transform=allow)


def test_the_filter_removes_underscore_spellings_without_the_bootstrap(underscores_allowed, keys):
    token = keys.mint(scope="orders:read")
    smuggled = [("x_auth_subject", "admin"), ("X_Auth_Tenant", "globex"), ("x_on_behalf_of", "root"), ("x-auth_scopes", "admin")]
    status, _, body = raw_request(underscores_allowed.port, "GET", "/orders/7", [*bearer(token).items(), *smuggled])
    assert status == 200, body
    seen = json.loads(body)["headers"]
    assert not [n for n in seen if "_" in n and n.replace("_", "-").startswith(("x-auth-", "x-on-behalf-of"))], seen
    assert seen["x-auth-subject"] == "alice" and seen["x-auth-tenant"] == "acme"


@pytest.mark.parametrize(
    "path, headers",
    [
        ("/orders/7", [("X-HTTP-Method-Override", "DELETE")]),
        ("/orders/7", [("X-HTTP-Method", "DELETE")]),
        ("/orders/7", [("X-Method-Override", "DELETE")]),
        ("/orders/7?_method=DELETE", []),
    ],
    ids=["x-http-method-override", "x-http-method", "x-method-override", "_method"],
)
def test_method_overrides_are_refused(hardened, keys, path, headers):
    token = keys.mint(scope="orders:read")
    status, _, body = raw_request(hardened.port, "GET", path, [*bearer(token).items(), *headers])
    assert status == 400 and json.loads(body)["error"] == "invalid_request"


def test_two_credentials_are_refused(hardened, keys, api_key):
    token = keys.mint(scope="orders:read")
    for headers in [
        [("Authorization", "Basic YWxpY2U6cHc="), ("x-api-key", api_key.secret)],
        [*bearer(token).items(), ("x-api-key", api_key.secret)],
        [*bearer(token).items(), *bearer(token).items()],
        # Envoy joins repeated Authorization headers into one value with ",": still two.
        [("Authorization", "Basic YWxpY2U6cHc="), *bearer(token).items()],
        [*bearer(token).items(), ("Authorization", "Basic YWxpY2U6cHc=")],
        [("Authorization", "Negotiate abc"), ("Authorization", f"DPoP {token}")],
    ]:
        for path in ["/orders/7", "/health"]:
            status, _, _ = raw_request(hardened.port, "GET", path, headers)
            assert status == 400, (path, headers)
    # Each alone is fine.
    assert status_of(hardened, "GET", "/orders/7", [("x-api-key", api_key.secret)]) == 200


def test_a_token_on_an_anonymous_route_is_not_forwarded(hardened, keys, api_key):
    forged = keys.mint(key=keys.rogue_es256)
    for headers in [bearer(forged), {"x-api-key": "guess"}]:
        doc = seen_by_upstream(hardened.get("/health", headers=headers))
        assert "authorization" not in doc["headers"] and "x-api-key" not in doc["headers"]
        assert not [n for n in doc["headers"] if n.startswith("x-auth-")]


# --- identity values ---------------------------------------------------------------------------------


def test_a_token_without_a_subject_is_refused(hardened, keys):
    for token in [keys.mint(sub=None), keys.mint(sub="")]:
        resp = hardened.get("/tenants/acme/orders/1", headers=bearer(token))
        assert resp.status_code == 401 and 'error="invalid_token"' in resp.headers["www-authenticate"]
        # Envoy replaces an edge client's x-request-id: the reply's request id finds the record.
        rid = resp.json()["request_id"]
        rec = hardened.wait_audit(lambda r: r.get("request_id") == rid)
        assert rec["reason"] == "no_subject" and rec["subject"] is None


def test_empty_tenant_and_client_never_become_empty_headers(hardened, keys):
    token = keys.mint(tenant="", client_id="")
    seen = seen_by_upstream(hardened.get("/orders/7", headers=bearer(token)))["headers"]
    assert seen["x-auth-subject"] == "alice"
    assert "x-auth-tenant" not in seen and "x-auth-client" not in seen
    # No tenant addresses no tenant: a tenant's path is refused.
    assert hardened.get("/tenants/acme/orders/1", headers=bearer(token)).status_code == 403


# --- keyed slots -------------------------------------------------------------------------------------


def test_identities_sharing_a_slot_reset_it_never_share_it(envoys, keys, api_key):
    """One slot for everyone: a colliding name gets a fresh bucket, never the victim's remainder, and
    the victim's bucket is not drained by it."""
    cfg = hardened_config(
        keys, api_key,
        rate_limits={"slots": 1, "policies": [{"name": "s", "key": "subject", "limit": 2, "window_s": 3600}]},
    )
    gw = envoys.gateway(cfg, "one-slot")
    victim, attacker = keys.mint(sub="victim"), keys.mint(sub="attacker")
    codes = lambda token, n: [gw.get("/orders/7", headers=bearer(token)).status_code for _ in range(n)]
    assert codes(victim, 3) == [200, 200, 429]
    assert codes(attacker, 3) == [200, 200, 429]
    assert codes(victim, 1) == [200]


# --- the geo header ----------------------------------------------------------------------------------

GEOIP_STANDIN = """          - name: edge-country
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation
              mutations:
                request_mutations:
                - append:
                    header: { key: x-geo-country, value: "NO" }
                    append_action: OVERWRITE_IF_EXISTS_OR_ADD
"""


def test_the_shipped_bootstrap_strips_the_clients_country(hardened, keys):
    seen = seen_by_upstream(hardened.get("/orders/7", headers={**bearer(keys.mint()), "x-geo-country": "BR"}))
    assert "x-geo-country" not in seen["headers"]


def test_an_edge_filter_sets_the_country_after_the_clients_copy_is_gone(envoys, keys, api_key):
    """A header_mutation filter before Warden stands in for envoy.filters.http.geoip (no MaxMind
    database here): whatever the client sent, Warden and the upstream see the edge's value."""
    cfg = hardened_config(keys, api_key, risk={"mode": "shadow", "geo_header_from_edge": True})
    add_edge = lambda text: text.replace("          http_filters:\n", "          http_filters:\n" + GEOIP_STANDIN, 1)
    gw = envoys.gateway(cfg, "geo-edge", transform=add_edge)
    seen = seen_by_upstream(gw.get("/orders/7", headers={**bearer(keys.mint()), "x-geo-country": "BR"}))
    assert seen["headers"]["x-geo-country"] == "NO"
