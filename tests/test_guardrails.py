"""Agent guardrails through a real Envoy (--concurrency 2) and the real demo IdP (node oidc-provider):
owner isolation, user presence for delegated calls, the user's approval through OpenID CIBA before a
high-privilege operation, and a step-up shown by `amr`, each on a route and on an MCP tool.

Every token comes from the IdP: a user's login (its admin API stands in for the browser), the agent's
RFC 8693 token exchange, and the agent's CIBA request, approved or denied on the user's "phone" (the
IdP's loopback admin endpoint).
"""

from __future__ import annotations

import atexit
import json
import re
import socket
import sys
import uuid

import jwt
import pytest

from conftest import ROOT, WASM, Gateway, bearer, seen_by_upstream

sys.path.insert(0, str(ROOT / "examples" / "idp"))

import idp as demo_idp  # noqa: E402
import render  # noqa: E402

AUDIENCE = "orders-api"
MCP = "http://127.0.0.1:10000/mcp"
APPROVED = "urn:warden:acr:approved"
AGENT = "demo-agent"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(issuer: str) -> dict:
    """examples/agents/guardrails.json, pointed at this IdP."""
    cfg = json.loads((ROOT / "examples" / "agents" / "guardrails.json").read_text())
    provider = cfg["providers"][0]
    provider["issuer"] = issuer
    provider["jwks_uri"] = {"url": f"{issuer}/jwks", "envoy_cluster": "idp", "timeout_ms": 1000}
    endpoint = cfg["mcp"]["endpoints"][0]
    endpoint["resource"] = MCP
    endpoint["authorization_servers"] = [issuer]
    provider["audiences"] = [AUDIENCE, MCP]
    return cfg


@pytest.fixture(scope="module")
def idp(tmp_path_factory) -> demo_idp.DemoIdP:
    tmp = tmp_path_factory.mktemp("guardrails")
    i = demo_idp.DemoIdP(port=free_port(), log_path=tmp / "idp.log", mcp_resources=[MCP])
    atexit.register(i.stop)
    yield i.start()
    i.stop()


@pytest.fixture(scope="module")
def gw(idp, tmp_path_factory, upstream) -> Gateway:
    if not WASM.exists():
        pytest.fail(f"{WASM} missing: run `make build` first")
    base = tmp_path_factory.mktemp("guardrails-envoy") / "envoy"
    bootstrap = base.with_suffix(".yaml")
    bootstrap.write_text(render.render(config(idp.issuer), wasm=WASM, listen_port=0, admin_port=0,
                                       upstream_port=upstream.port, idp_port=idp.port))
    envoy = render.Envoy(bootstrap=bootstrap, log_path=base.with_suffix(".log"), concurrency=2)
    atexit.register(envoy.stop)
    envoy.start().wait_ready()
    yield Gateway(envoy, envoy.listener_port())
    envoy.stop()


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def agent_token(idp, scope="orders:read orders:write", auth_age_s=0, amr=None, resource=None) -> str:
    """Alice logs in (`auth_age_s` ago, by `amr`), and the agent exchanges her token for its own."""
    user = idp.user_token("alice", scope="orders:read orders:write orders:refund", auth_age_s=auth_age_s, amr=amr)
    if resource:
        scope = "orders:read orders:refund"
    return idp.exchange(user, scope=scope, resource=resource)


def call_tool(gw: Gateway, token: str, tool: str, arguments: dict):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    headers = {**bearer(token), "content-type": "application/json", "accept": "application/json, text/event-stream",
               "mcp-method": "tools/call", "mcp-name": tool, "x-request-id": uuid.uuid4().hex}
    return gw.request("POST", "/mcp", data=json.dumps(body), headers=headers)


def get(gw: Gateway, path: str, token: str, method: str = "GET"):
    return gw.request(method, path, headers={**bearer(token), "x-request-id": uuid.uuid4().hex})


def reason_of(gw: Gateway, resp) -> str:
    rid = resp.json()["request_id"] if resp.status_code != 200 else None
    rec = gw.wait_audit(lambda r: r.get("request_id") == (rid or resp.request.headers["x-request-id"]))
    return rec["reason"]


def challenge(resp) -> dict:
    """The RFC 9470 challenge's parameters."""
    assert resp.status_code == 401, (resp.status_code, resp.text)
    h = resp.headers["www-authenticate"]
    assert h.startswith('Bearer error="insufficient_user_authentication"'), h
    return dict(re.findall(r'(\w+)="?([^",]*)"?', h))


# --- owner isolation ---------------------------------------------------------------------------


def test_agent_reads_alices_data_for_alice_and_not_bobs(gw, idp):
    token = agent_token(idp)
    assert claims(token)["act"] == {"sub": AGENT}
    doc = seen_by_upstream(get(gw, "/users/alice/orders", token))
    assert doc["headers"]["x-auth-subject"] == "alice" and doc["headers"]["x-auth-actor"] == AGENT
    r = get(gw, "/users/bob/orders", token)
    assert r.status_code == 403 and r.json()["error"] == "access_denied"
    assert "www-authenticate" not in r.headers
    assert reason_of(gw, r) == "owner_mismatch"
    # By query parameter, too: every occurrence must be alice.
    assert get(gw, "/users/alice/orders?user=alice", token).status_code == 200
    r = get(gw, "/search?user=alice&user=bob", token)
    assert r.status_code == 403 and reason_of(gw, r) == "owner_mismatch"
    assert get(gw, "/search?user=alice", token).status_code == 200


def test_mcp_tool_reads_alices_data_for_alice_and_not_bobs(gw, idp):
    token = agent_token(idp, resource=MCP)
    r = call_tool(gw, token, "read_orders", {"user": "alice"})
    assert r.status_code == 200, r.text
    r = call_tool(gw, token, "read_orders", {"user": "bob"})
    assert r.status_code == 403 and r.json()["error"] == "access_denied"
    assert reason_of(gw, r) == "owner_mismatch"


# --- user presence -----------------------------------------------------------------------------


def test_delegated_call_after_the_users_login_aged_is_challenged(gw, idp):
    aged = agent_token(idp, auth_age_s=3600)
    r = get(gw, "/users/alice/profile", aged)
    assert challenge(r)["max_age"] == "300"
    assert reason_of(gw, r) == "user_not_present"
    # Alice logs in again; the agent exchanges her fresh token and passes.
    fresh = agent_token(idp)
    assert get(gw, "/users/alice/profile", fresh).status_code == 200
    # Alice in person is present by definition.
    assert get(gw, "/users/alice/profile", idp.user_token("alice", auth_age_s=3600)).status_code == 200


def test_mcp_tool_needs_the_user_present(gw, idp):
    r = call_tool(gw, agent_token(idp, auth_age_s=3600, resource=MCP), "user_summary", {})
    c = challenge(r)
    assert c["max_age"] == "300" and c["resource_metadata"].endswith("/.well-known/oauth-protected-resource/mcp")
    assert call_tool(gw, agent_token(idp, resource=MCP), "user_summary", {}).status_code == 200


# --- approval through CIBA ---------------------------------------------------------------------


def approve_on_phone(idp, operation: str, approve: bool) -> None:
    """Alice's device shows the agent's request, naming the operation; she answers it."""
    pending = [p for p in idp.ciba_pending("alice") if p["binding_message"] == operation]
    assert len(pending) == 1, idp.ciba_pending("alice")
    assert pending[0]["client"] == AGENT
    idp.ciba_answer(pending[0]["id"], approve)


def ciba(idp, operation: str, approve: bool, scope: str, resource: str | None = None) -> tuple[int, dict]:
    """The agent asks alice to approve `operation`, waits for her answer, and polls for its token."""
    kw = {"resource": resource} if resource else {}
    auth_req_id = idp.ciba_request("alice", operation, scope=scope, **kw)
    status, doc = idp.ciba_poll(auth_req_id)
    assert (status, doc.get("error")) == (400, "authorization_pending")
    approve_on_phone(idp, operation, approve)
    return idp.ciba_poll(auth_req_id)


def test_high_privilege_operation_needs_alices_approval_through_ciba(gw, idp):
    token = agent_token(idp)
    r = get(gw, "/users/alice/orders/7/refund", token, method="POST")
    c = challenge(r)
    assert (c["acr_values"], c["max_age"]) == (APPROVED, "120")
    assert reason_of(gw, r) == "approval_required"
    status, doc = ciba(idp, "refund order 7", approve=True, scope="openid orders:write")
    assert status == 200, doc
    approved = doc["access_token"]
    got = claims(approved)
    assert (got["sub"], got["act"], got["acr"]) == ("alice", {"sub": AGENT}, APPROVED)
    seen = seen_by_upstream(get(gw, "/users/alice/orders/7/refund", approved, method="POST"))
    assert seen["headers"]["x-auth-actor"] == AGENT
    # Alice's approval does not open bob's account.
    r = get(gw, "/users/bob/orders/7/refund", approved, method="POST")
    assert r.status_code == 403 and reason_of(gw, r) == "owner_mismatch"


def test_denied_approval_stays_refused(gw, idp):
    token = agent_token(idp)
    assert challenge(get(gw, "/users/alice/orders/8/refund", token, method="POST"))["acr_values"] == APPROVED
    status, doc = ciba(idp, "refund order 8", approve=False, scope="openid orders:write")
    assert (status, doc["error"]) == (400, "access_denied")
    # The agent has nothing better than the token it had: still challenged.
    r = get(gw, "/users/alice/orders/8/refund", token, method="POST")
    assert challenge(r)["acr_values"] == APPROVED and reason_of(gw, r) == "approval_required"


def test_mcp_tool_needs_alices_approval_through_ciba(gw, idp):
    token = agent_token(idp, resource=MCP)
    args = {"user": "alice", "order": "9"}
    c = challenge(call_tool(gw, token, "refund_order", args))
    assert (c["acr_values"], c["max_age"]) == (APPROVED, "120")
    status, doc = ciba(idp, "refund_order 9", approve=True, scope="openid orders:refund", resource=MCP)
    assert status == 200, doc
    r = call_tool(gw, doc["access_token"], "refund_order", args)
    assert r.status_code == 200, r.text
    status, doc = ciba(idp, "refund_order 10", approve=False, scope="openid orders:refund", resource=MCP)
    assert doc["error"] == "access_denied"
    assert challenge(call_tool(gw, token, "refund_order", {"user": "alice", "order": "10"}))


# --- step-up by amr ----------------------------------------------------------------------------


def test_amr_mfa_satisfies_a_step_up_configured_for_it(gw, idp):
    mfa = idp.user_token("alice", amr=["pwd", "mfa"])
    assert get(gw, "/account/security", mfa).status_code == 200
    r = get(gw, "/account/security", idp.user_token("alice", amr=["pwd"]))
    assert challenge(r)["acr_values"] == "urn:warden:acr:mfa"
    assert reason_of(gw, r) == "step_up_required"
    # An MCP tool's step-up: the agent's token carries alice's amr through the exchange.
    assert call_tool(gw, agent_token(idp, amr=["pwd", "mfa"], resource=MCP), "wipe_cache", {}).status_code == 200
    r = call_tool(gw, agent_token(idp, amr=["pwd"], resource=MCP), "wipe_cache", {})
    assert challenge(r)["acr_values"] == "urn:warden:acr:mfa"
