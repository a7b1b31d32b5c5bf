"""Agents as first-class identities through a real Envoy (--concurrency 2): delegation (RFC 8693
`act`), identity kinds, untrusted delegation headers, tenant isolation."""

from __future__ import annotations

import jwt
import pytest
from conftest import bearer, seen_by_upstream, warden_config


def agents_config(keys, api_key, **overrides) -> dict:
    cfg = warden_config(keys, api_key)
    cfg["routes"] += [
        {"name": "tenant-orders", "methods": ["GET"], "path": "/tenants/{tenant}/orders", "scopes": ["orders:read"]},
        {"name": "agent-write", "methods": ["POST"], "path": "/agent/orders", "scopes": ["orders:write"]},
    ]
    cfg["delegation"] = {
        "max_depth": 2,
        "actors": [
            {
                "name": "planner",
                "sub": "agent:planner",
                "subjects": ["alice", "bob"],
                "routes": ["read-order", "tenant-orders", "agent-write"],
                "scopes": ["orders:read"],
            },
            {"name": "writer", "client_id": "agent-writer-*", "subjects": ["*"], "scopes": ["orders:read", "orders:write"]},
        ],
    }
    cfg["tenancy"] = {"header": "x-tenant-id", "federated": [{"from": "acme", "to": "partner-co"}]}
    cfg["kinds"] = {"rules": [{"kind": "agent", "client_id": "agent-*"}, {"kind": "service", "sub": "svc:*"}]}
    cfg.update(overrides)
    return cfg


@pytest.fixture(scope="module")
def agents(envoys, keys, api_key):
    return envoys.gateway(agents_config(keys, api_key), "agents")


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def act(sub: str, **more) -> dict:
    return {"sub": sub, **more}


def test_allowed_actor_reaches_upstream_with_actor_and_kind(agents, keys):
    token = keys.mint(act=act("agent:planner"))
    doc = seen_by_upstream(agents.get("/orders/7", headers=bearer(token)))
    h = doc["headers"]
    assert h["x-auth-subject"] == "alice"
    assert h["x-auth-actor"] == "agent:planner"
    assert h["x-auth-kind"] == "agent"
    # The token carries orders:write; the actor's allowance is orders:read only.
    assert h["x-auth-scopes"] == "orders:read"
    rec = agents.wait_audit(lambda r: r.get("jti") == claims_of(token)["jti"])
    assert rec["actors"] == ["agent:planner"] and rec["kind"] == "agent"


def test_actor_cannot_use_a_scope_outside_its_allowance(agents, keys):
    token = keys.mint(act=act("agent:planner"))
    r = agents.request("POST", "/agent/orders", headers=bearer(token))
    assert r.status_code == 403
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]


def test_refused_actor_is_403_json(agents, keys):
    for claims in (
        {"act": act("agent:rogue")},  # no rule for this actor
        {"sub": "carol", "act": act("agent:planner")},  # not a subject it may act for
    ):
        token = keys.mint(**claims)
        r = agents.get("/orders/7", headers=bearer(token))
        assert r.status_code == 403, r.text
        assert "www-authenticate" not in r.headers
        body = r.json()
        assert body["error"] == "access_denied" and body["request_id"]
        assert token not in r.text


def test_actor_refused_on_a_route_outside_its_list(agents, keys):
    token = keys.mint(act=act("agent:planner"))
    r = agents.request("POST", "/orders", headers=bearer(token))
    assert r.status_code == 403
    assert r.json()["error"] == "access_denied"


def test_only_the_current_actor_is_authorized(agents, keys):
    # The prior actor matches no rule; the current one does: allowed, and the prior actor is logged.
    token = keys.mint(act=act("agent:planner", act=act("agent:nobody")))
    doc = seen_by_upstream(agents.get("/orders/7", headers=bearer(token)))
    assert doc["headers"]["x-auth-actor"] == "agent:planner"
    rec = agents.wait_audit(lambda r: r.get("jti") == claims_of(token)["jti"])
    assert rec["actors"] == ["agent:planner", "agent:nobody"]
    # The reverse (an allowed prior actor, an unknown current one) is refused.
    token = keys.mint(act=act("agent:nobody", act=act("agent:planner")))
    assert agents.get("/orders/7", headers=bearer(token)).status_code == 403


def test_too_deep_chain_is_refused(agents, keys):
    token = keys.mint(act=act("agent:planner", act=act("agent:a", act=act("agent:b"))))
    r = agents.get("/orders/7", headers=bearer(token))
    assert r.status_code == 403
    agents.wait_audit(lambda r: r.get("reason") == "delegation_too_deep")


def test_actor_from_another_tenant_is_refused(agents, keys):
    token = keys.mint(act=act("agent:planner", tenant="globex"))
    assert agents.get("/orders/7", headers=bearer(token)).status_code == 403
    same = keys.mint(act=act("agent:planner", tenant="acme"))
    assert agents.get("/orders/7", headers=bearer(same)).status_code == 200


def test_may_act_grants_nothing(agents, keys):
    token = keys.mint(may_act={"sub": "agent:rogue"}, act=act("agent:rogue"))
    assert agents.get("/orders/7", headers=bearer(token)).status_code == 403


def test_actor_by_client_id_gets_write(agents, keys):
    token = keys.mint(act=act("x", client_id="agent-writer-1"))
    doc = seen_by_upstream(agents.request("POST", "/agent/orders", headers=bearer(token)))
    assert doc["headers"]["x-auth-scopes"] == "orders:read orders:write"


def test_kinds_for_humans_services_and_agents(agents, keys, api_key):
    h = seen_by_upstream(agents.get("/orders/7", headers=bearer(keys.mint())))["headers"]
    assert h["x-auth-kind"] == "human" and "x-auth-actor" not in h
    h = seen_by_upstream(agents.get("/orders/7", headers=bearer(keys.mint(client_id="agent-scout"))))["headers"]
    assert h["x-auth-kind"] == "agent"
    h = seen_by_upstream(agents.get("/orders/7", headers={"x-api-key": api_key.secret}))["headers"]
    assert h["x-auth-kind"] == "service"


def test_spoofed_delegation_headers_are_removed(agents, keys):
    token = keys.mint()
    spoof = {"x-on-behalf-of": "admin", "X-Forwarded-User": "root", "x-auth-actor": "agent:planner"}
    doc = seen_by_upstream(agents.get("/orders/7", headers={**bearer(token), **spoof}))
    h = doc["headers"]
    assert "x-on-behalf-of" not in h and "x-forwarded-user" not in h
    assert "x-auth-actor" not in h
    assert h["x-auth-subject"] == "alice"


@pytest.fixture(scope="module")
def refusing(envoys, keys, api_key):
    cfg = agents_config(keys, api_key)
    cfg["delegation"]["untrusted_header_action"] = "refuse"
    cfg["delegation"]["untrusted_headers"] = ["x-on-behalf-of", "x-acting-for"]
    return envoys.gateway(cfg, "agents-refuse")


def test_spoofed_delegation_header_refused_when_configured(refusing, keys):
    token = keys.mint()
    r = refusing.get("/orders/7", headers={**bearer(token), "X-Acting-For": "bob"})
    assert r.status_code == 403
    assert r.json()["error"] == "access_denied"
    assert refusing.get("/orders/7", headers=bearer(token)).status_code == 200


# --- tenant isolation ----------------------------------------------------------------------------


def test_same_tenant_by_path_is_allowed(agents, keys):
    doc = seen_by_upstream(agents.get("/tenants/acme/orders", headers=bearer(keys.mint())))
    assert doc["headers"]["x-auth-tenant"] == "acme"


def test_cross_tenant_call_is_403(agents, keys):
    token = keys.mint()  # tenant acme
    r = agents.get("/tenants/globex/orders", headers=bearer(token))
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "access_denied"
    assert "www-authenticate" not in r.headers
    agents.wait_audit(lambda rec: rec.get("reason") == "tenant_mismatch")


def test_cross_tenant_by_header_is_403(agents, keys):
    token = keys.mint()
    assert agents.get("/orders/7", headers={**bearer(token), "x-tenant-id": "globex"}).status_code == 403
    assert agents.get("/orders/7", headers={**bearer(token), "x-tenant-id": "acme"}).status_code == 200
    # Two sources that disagree: refused.
    r = agents.get("/tenants/acme/orders", headers={**bearer(token), "x-tenant-id": "globex"})
    assert r.status_code == 403


def test_federated_pair_is_allowed_one_way_only(agents, keys):
    assert agents.get("/tenants/partner-co/orders", headers=bearer(keys.mint())).status_code == 200
    partner = keys.mint(tenant="partner-co")
    assert agents.get("/tenants/acme/orders", headers=bearer(partner)).status_code == 403


def test_token_without_tenant_cannot_address_one(agents, keys):
    assert agents.get("/tenants/acme/orders", headers=bearer(keys.mint(tenant=None))).status_code == 403


def test_api_key_tenant_is_checked_too(agents, api_key):
    ok = agents.get("/tenants/acme/orders", headers={"x-api-key": api_key.secret})
    assert ok.status_code == 200
    bad = agents.get("/tenants/globex/orders", headers={"x-api-key": api_key.secret})
    assert bad.status_code == 403
