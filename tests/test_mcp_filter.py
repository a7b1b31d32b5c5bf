"""MCP endpoints through a real Envoy: RFC 9728 metadata, challenges, audience binding, per-tool rules,
JSON-RPC body checks, no token passthrough and filtered `tools/list` answers (JSON and event stream).

Hand-written JSON-RPC against a small recording MCP double (what it saw is what the tests check);
tokens are real ES256 JWTs minted here. Real MCP clients and servers are in the demo's tests.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import ISSUER, TIMEOUT, EnvoyFactory, Gateway, Keys, Upstream, bearer

RESOURCE = "http://127.0.0.1:10000/mcp"
META = "http://127.0.0.1:10000/.well-known/oauth-protected-resource/mcp"
TOOLS = ["read_orders", "refund_order", "delete_customer", "internal_debug", "search_orders", "other"]


class McpDouble(BaseHTTPRequestHandler):
    """Answers JSON-RPC like a Streamable HTTP server and records every request it gets.

    `tools/list` answers with every tool in TOOLS: as JSON, or (path `/mcp?form=sse`) as an event
    stream sent in several chunks, or (`?form=big`) as JSON larger than the filter's limit."""

    protocol_version = "HTTP/1.1"
    seen: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        raw = self._body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        msg = json.loads(raw) if raw else {}
        McpDouble.seen.append({"path": self.path, "headers": headers, "body": msg})
        form = self.path.partition("form=")[2]
        if msg.get("method") == "tools/list":
            tools = [{"name": n, "inputSchema": {"type": "object"}} for n in TOOLS]
            if form == "big":
                tools += [{"name": f"pad_{i}", "description": "x" * 200} for i in range(50)]
            answer = {"jsonrpc": "2.0", "id": msg.get("id"), "result": {"tools": tools}}
        else:
            answer = {"jsonrpc": "2.0", "id": msg.get("id"), "result": {"ok": True}}
        data = json.dumps(answer)
        if form == "sse":
            text = f"event: message\nid: 1\ndata: {data}\n\n"
            chunks = [text[:40].encode(), text[40:].encode()]
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for c in chunks:
                self.wfile.write(f"{len(c):x}\r\n".encode() + c + b"\r\n")
                self.wfile.flush()
                time.sleep(0.05)
            self.wfile.write(b"0\r\n\r\n")
            return
        out = data.encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("transfer-encoding") or ""):
            out = b""
            while (size := int(self.rfile.readline().strip(), 16)) > 0:
                out += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return out
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def config(keys: Keys, **endpoint: object) -> dict:
    ep = {
        "name": "orders-mcp",
        "path": "/mcp",
        "resource": RESOURCE,
        "authorization_servers": ["http://127.0.0.1:9000"],
        "scopes_supported": ["orders:read", "orders:refund", "admin"],
        "max_body_bytes": 2048,
        "max_response_bytes": 4096,
        "rules": [
            {"method": "tools/call", "tool": "read_orders", "scopes": ["orders:read"]},
            {"method": "tools/call", "tool": "refund_order", "scopes": ["orders:refund"], "step_up": True,
             "sensitivity": "critical"},
            {"method": "tools/call", "tool": "delete_customer", "scopes": ["admin"], "sensitivity": "high"},
            {"method": "tools/call", "tool": "internal_*", "deny": True},
            {"method": "resources/read", "uri": "orders://*", "scopes": ["orders:read"]},
            {"method": "prompts/get", "prompt": "*"},
            {"method": "tools/call", "tool": "search_*", "rate_limit": "searches"},
        ],
    }
    ep.update(endpoint)
    return {
        "providers": [{"name": "idp", "issuer": ISSUER, "audiences": [RESOURCE], "jwks": keys.jwks()}],
        "rate_limits": {"policies": [{"name": "searches", "key": "subject", "limit": 2, "window_s": 3600}]},
        "mcp": {"endpoints": [ep]},
        "audit": {"enabled": True},
    }


@pytest.fixture(scope="module")
def mcp_upstream() -> Upstream:
    server = ThreadingHTTPServer(("127.0.0.1", 0), McpDouble)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="mcp-double", daemon=True).start()
    yield Upstream(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def mcp_envoys(tmp_path_factory: pytest.TempPathFactory, mcp_upstream: Upstream) -> EnvoyFactory:
    factory = EnvoyFactory(tmp_path_factory.mktemp("mcp-envoy"), mcp_upstream)
    yield factory
    factory.stop_all()


@pytest.fixture(scope="module")
def gw(mcp_envoys: EnvoyFactory, keys: Keys) -> Gateway:
    return mcp_envoys.gateway(config(keys), "mcp")


def token(keys: Keys, scope: str, aud: str = RESOURCE, sub: str = "agent-7") -> str:
    return keys.mint(aud=aud, scope=scope, sub=sub, tenant=None)


def rpc(method: str, rpc_id: object = 1, **params: object) -> dict:
    return {"jsonrpc": "2.0", "id": rpc_id, "method": method, "params": params}


def post(gw: Gateway, body: object, tok: str | None = None, path: str = "/mcp", **headers: str) -> requests.Response:
    h = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    if tok:
        h.update(bearer(tok))
    h.update(headers)
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return gw.request("POST", path, data=data, headers=h)


def server_saw(marker: str) -> list[dict]:
    """The requests the MCP double got whose JSON-RPC id is `marker`."""
    return [s for s in McpDouble.seen if s["body"].get("id") == marker]


def test_metadata_needs_no_token(gw: Gateway) -> None:
    for path in ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"]:
        r = gw.get(path)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {
            "resource": RESOURCE,
            "authorization_servers": ["http://127.0.0.1:9000"],
            "scopes_supported": ["orders:read", "orders:refund", "admin"],
            "bearer_methods_supported": ["header"],
        }
    assert gw.get("/.well-known/oauth-protected-resource/elsewhere").status_code == 401


def test_no_token_points_at_the_metadata_with_the_calls_scope(gw: Gateway) -> None:
    r = post(gw, rpc("tools/call", "nt-1", name="read_orders"))
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == f'Bearer realm="warden", resource_metadata="{META}", scope="orders:read"'
    r = post(gw, rpc("initialize", "nt-2"))
    assert r.headers["www-authenticate"] == f'Bearer realm="warden", resource_metadata="{META}"'
    assert server_saw("nt-1") == [] and server_saw("nt-2") == []


def test_a_token_for_another_resource_is_invalid(gw: Gateway, keys: Keys) -> None:
    # Signed by the right issuer, but for another audience: the provider refuses it, and a token the
    # provider accepts for another resource would be refused by the endpoint's own check.
    r = post(gw, rpc("tools/call", "aud-1", name="read_orders"), token(keys, "orders:read", aud="orders-api"))
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == f'Bearer error="invalid_token", resource_metadata="{META}"'
    assert server_saw("aud-1") == []


def test_allowed_call_reaches_the_server_without_the_token(gw: Gateway, keys: Keys) -> None:
    tok = token(keys, "orders:read")
    r = post(gw, rpc("tools/call", "ok-1", name="read_orders"), tok, dpop="not-a-proof")
    assert r.status_code == 200, r.text
    assert r.json() == {"jsonrpc": "2.0", "id": "ok-1", "result": {"ok": True}}
    (seen,) = server_saw("ok-1")
    assert "authorization" not in seen["headers"] and "dpop" not in seen["headers"]
    assert seen["headers"]["x-auth-subject"] == "agent-7"
    assert seen["headers"]["x-auth-scopes"] == "orders:read"
    rec = gw.wait_audit(lambda r: r.get("reason") == "ok" and r.get("mcp_name") == "read_orders")
    assert rec["mcp_method"] == "tools/call" and rec["mcp_endpoint"] == "orders-mcp"


def test_missing_scope_is_a_403_naming_the_tools_scope(gw: Gateway, keys: Keys) -> None:
    tok = token(keys, "orders:read")
    r = post(gw, rpc("tools/call", "sc-1", name="refund_order"), tok)
    assert r.status_code == 403
    assert r.headers["www-authenticate"] == (
        f'Bearer error="insufficient_scope", scope="orders:refund", resource_metadata="{META}"'
    )
    r = post(gw, rpc("tools/call", "sc-2", name="delete_customer"), tok)
    assert 'scope="admin"' in r.headers["www-authenticate"]
    assert server_saw("sc-1") == [] and server_saw("sc-2") == []
    # A token with the scope goes through.
    r = post(gw, rpc("tools/call", "sc-3", name="delete_customer"), token(keys, "admin"))
    assert r.status_code == 200 and len(server_saw("sc-3")) == 1


def test_denied_and_unnamed_tools_never_reach_the_server(gw: Gateway, keys: Keys) -> None:
    tok = token(keys, "orders:read orders:refund admin")
    for i, name in enumerate(["internal_debug", "not_in_any_rule"]):
        r = post(gw, rpc("tools/call", f"dn-{i}", name=name), tok)
        assert r.status_code == 403, r.text
        assert r.json()["error"] == "access_denied"
        assert server_saw(f"dn-{i}") == []
    r = post(gw, rpc("resources/read", "dn-r", uri="customers://1"), tok)
    assert r.status_code == 403
    r = post(gw, rpc("resources/read", "ok-r", uri="orders://1"), tok)
    assert r.status_code == 200


def test_bodies_the_endpoint_does_not_take(gw: Gateway, keys: Keys) -> None:
    tok = token(keys, "orders:read")
    r = post(gw, b'{"jsonrpc": "2.0", "id": 1, "method": ', tok)
    assert r.status_code == 400
    assert r.json() == {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}
    batch = [rpc("tools/list", "b-1"), rpc("tools/call", "b-2", name="read_orders")]
    r = post(gw, batch, tok)
    assert r.status_code == 400 and r.json()["error"]["code"] == -32600
    big = rpc("tools/call", "big-1", name="read_orders", arguments={"pad": "x" * 4096})
    r = post(gw, big, tok)
    assert r.status_code == 413
    assert server_saw("big-1") == [] and server_saw("b-1") == []


def test_a_large_chunked_body_is_refused_after_the_limit(gw: Gateway, keys: Keys) -> None:
    """No content-length: the body is buffered by the gateway and refused once past the limit."""
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=TIMEOUT)
    try:
        conn.putrequest("POST", "/mcp")
        conn.putheader("authorization", f"Bearer {token(keys, 'orders:read')}")
        conn.putheader("content-type", "application/json")
        conn.putheader("transfer-encoding", "chunked")
        conn.endheaders()
        body = json.dumps(rpc("tools/call", "ch-1", name="read_orders", arguments={"p": "y" * 3000})).encode()
        for i in range(0, len(body), 1000):
            part = body[i : i + 1000]
            conn.send(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        conn.send(b"0\r\n\r\n")
        assert conn.getresponse().status == 413
    finally:
        conn.close()
    # A small chunked body is read whole and decided on.
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=TIMEOUT)
    try:
        body = json.dumps(rpc("tools/call", "ch-2", name="read_orders")).encode()
        conn.request(
            "POST",
            "/mcp",
            body=iter([body[:30], body[30:]]),
            headers={"authorization": f"Bearer {token(keys, 'orders:read')}", "content-type": "application/json"},
            encode_chunked=True,
        )
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    assert len(server_saw("ch-2")) == 1 and server_saw("ch-1") == []


def test_mirrored_headers_must_match_the_body(gw: Gateway, keys: Keys) -> None:
    tok = token(keys, "orders:read")
    new = {"mcp-protocol-version": "2026-07-28"}
    body = rpc("tools/call", "hm-1", name="delete_customer")
    # The headers name an allowed tool, the body a refused one: refused, never forwarded.
    r = post(gw, body, tok, **new, **{"mcp-method": "tools/call", "mcp-name": "read_orders"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == -32020 and r.json()["id"] == "hm-1"
    r = post(gw, rpc("tools/call", "hm-2", name="read_orders"), tok, **new, **{"mcp-method": "tools/call"})
    assert r.status_code == 400 and r.json()["error"]["code"] == -32020
    # Base64-encoded names are decoded; matching headers go through.
    ok = {"mcp-method": "tools/call", "mcp-name": "=?base64?cmVhZF9vcmRlcnM=?="}
    r = post(gw, rpc("tools/call", "hm-3", name="read_orders"), tok, **new, **ok)
    assert r.status_code == 200, r.text
    assert server_saw("hm-1") == [] and server_saw("hm-2") == [] and len(server_saw("hm-3")) == 1


def test_tools_list_is_cut_to_the_callers_tools(gw: Gateway, keys: Keys) -> None:
    tok = token(keys, "orders:read")
    r = post(gw, rpc("tools/list", "tl-1"), tok)
    assert r.status_code == 200, r.text
    assert [t["name"] for t in r.json()["result"]["tools"]] == ["read_orders", "search_orders"]
    # Asked uncompressed, so that Warden can read it.
    assert server_saw("tl-1")[0]["headers"]["accept-encoding"] == "identity"
    # The event-stream form, sent by the server in two chunks.
    r = post(gw, rpc("tools/list", "tl-2"), token(keys, "orders:read admin"), path="/mcp?form=sse")
    assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
    events = [e for e in r.text.split("\n\n") if e.strip()]
    assert len(events) == 1 and events[0].startswith("event: message\nid: 1\ndata: ")
    data = json.loads(events[0].split("data: ", 1)[1])
    assert [t["name"] for t in data["result"]["tools"]] == ["read_orders", "delete_customer", "search_orders"]
    # Larger than max_response_bytes: a JSON-RPC error, never the unfiltered list.
    r = post(gw, rpc("tools/list", "tl-3"), tok, path="/mcp?form=big")
    assert r.status_code == 200
    assert r.json() == {
        "jsonrpc": "2.0",
        "id": "tl-3",
        "error": {"code": -32603, "message": "tools/list answer too large to filter"},
    }


def test_per_tool_rate_limit(gw: Gateway, keys: Keys) -> None:
    tok = token(keys, "orders:read", sub="searcher")
    codes = [post(gw, rpc("tools/call", f"rl-{i}", name="search_orders"), tok).status_code for i in range(3)]
    assert codes == [200, 200, 429]
    # Other tools do not draw from the search policy.
    assert post(gw, rpc("tools/call", "rl-x", name="read_orders"), tok).status_code == 200


def test_bad_mcp_config_is_refused_naming_the_field(mcp_envoys: EnvoyFactory, keys: Keys) -> None:
    bad = config(keys, rules=[{"method": "tools/list", "tool": "read_orders"}])
    code, log = mcp_envoys.refused(bad, "mcp-bad-rule")
    assert code != 0
    assert "mcp.endpoints[0].rules[0].tool" in log


def test_step_up_tools_and_shadow_mode(mcp_envoys: EnvoyFactory, keys: Keys) -> None:
    """With risk on, a `step_up` tool is challenged (RFC 9470, with the metadata) until the token shows
    a recent MFA; in shadow mode refusals are only recorded, and the token still stays behind."""
    cfg = config(keys)
    cfg["risk"] = {"acr_values": ["mfa"], "max_age_s": 300}
    risky = mcp_envoys.gateway(cfg, "mcp-risk")
    tok = token(keys, "orders:read orders:refund", sub="refunder")
    r = post(risky, rpc("tools/call", "su-1", name="refund_order"), tok)
    assert r.status_code == 401, r.text
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="insufficient_user_authentication"'), challenge
    assert 'acr_values="mfa"' in challenge and challenge.endswith(f'resource_metadata="{META}"')
    assert server_saw("su-1") == []
    mfa = keys.mint(aud=RESOURCE, scope="orders:read orders:refund", sub="refunder", tenant=None, acr="mfa",
                    auth_time=int(time.time()))
    r = post(risky, rpc("tools/call", "su-2", name="refund_order"), mfa)
    assert r.status_code == 200, r.text
    assert len(server_saw("su-2")) == 1
    rec = risky.wait_audit(lambda r: r.get("mcp_name") == "refund_order" and r.get("status") == 200)
    assert rec["stepped_up"] is True

    shadow = mcp_envoys.gateway({**config(keys), "mode": "shadow"}, "mcp-shadow")
    tok = token(keys, "orders:read")
    r = post(shadow, rpc("tools/call", "sh-1", name="internal_debug"), tok)
    assert r.status_code == 200
    (seen,) = server_saw("sh-1")
    assert "authorization" not in seen["headers"]
    rec = shadow.wait_audit(lambda r: r.get("mcp_name") == "internal_debug")
    assert (rec["decision"], rec["status"], rec["reason"], rec["mode"]) == ("deny", 403, "mcp_denied", "shadow")
    r = post(shadow, rpc("tools/list", "sh-2"), tok)
    assert len(r.json()["result"]["tools"]) == len(TOOLS)  # shadow mode changes no answer
