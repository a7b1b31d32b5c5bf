"""Real MCP clients through real Envoy + Warden to real MCP servers, with tokens from the real demo IdP.

Clients: the Python `mcp` SDK 2.x (examples/mcp/client.py), the TypeScript SDK 1.x
(`@modelcontextprotocol/sdk`) and 2.x (`@modelcontextprotocol/client`) (tests/mcp/client.mjs), each as
demo-agent (client credentials) and as alice (a client that registers itself, authorization code + PKCE,
the IdP's login page driven headlessly by examples/mcp/login.py). Each walks: 401 -> protected resource
metadata -> a token for the resource -> `tools/list` filtered to what the token may call -> an allowed
call -> 403 `insufficient_scope` -> a token with the missing scope -> success -> a step-up for the refund.
The MCP servers log every request they receive: none may carry the client's token.

Servers: the demo's Python MCP server (examples/mcp/server.py) and, for the header/body mismatch, an MCP
server on the TypeScript SDK 1.x (tests/mcp/server-sdk1.mjs), which acts on the JSON-RPC body and
ignores `Mcp-Method`/`Mcp-Name`: a mismatched request must never reach it.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
import requests

from conftest import ROOT, TIMEOUT, WASM, Gateway

sys.path.insert(0, str(ROOT / "examples" / "idp"))
sys.path.insert(0, str(ROOT / "examples" / "mcp"))

import client as py_client  # noqa: E402
import idp as demo_idp  # noqa: E402
import render  # noqa: E402
from test_demo import free_ports  # noqa: E402

NODE_DIR = ROOT / "tests" / "mcp"
MFA = "urn:warden:acr:mfa"
NODE = shutil.which("node") or "node"


def warden_config(idp: demo_idp.DemoIdP, resource: str, default: str = "deny", risk: dict | None = None) -> dict:
    """Warden for the MCP server at `resource`; `risk` overrides keys of the risk section."""
    return {
        "providers": [{
            "name": "demo-idp",
            "issuer": idp.issuer,
            "audiences": ["orders-api", resource],
            "require_typ": "at+jwt",
            "algorithms": ["ES256"],
            "jwks_uri": {"url": f"{idp.issuer}/jwks", "envoy_cluster": "idp", "timeout_ms": 2000},
        }],
        "mcp": {"endpoints": [{
            "name": "orders-mcp",
            "path": "/mcp",
            "resource": resource,
            "authorization_servers": [idp.issuer],
            "scopes_supported": ["orders:read", "orders:refund", "admin"],
            "challenge_scopes": "operation",
            "scopes": ["orders:read"],
            "default": default,
            "rules": [
                {"method": "tools/call", "tool": "read_orders", "scopes": ["orders:read"]},
                {"method": "tools/call", "tool": "refund_order", "scopes": ["orders:refund"], "step_up": True,
                 "sensitivity": "critical"},
                {"method": "tools/call", "tool": "delete_customer", "scopes": ["admin"], "sensitivity": "high"},
            ],
        }]},
        # Only the `step_up` rule asks for a step-up here: the model's score never reaches step_up_at.
        "risk": {"enabled": True, "mode": "enforce", "tag_at": 30, "step_up_at": 100,
                 "acr_values": [MFA], "max_age_s": 300, **(risk or {})},
        "audit": {"enabled": True},
    }


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in {timeout:.0f}s")


@dataclass
class Site:
    """One MCP server behind its own Envoy + Warden."""

    gateway: Gateway
    url: str  # the resource identifier: the URL clients use
    log: Path  # what the MCP server received, one JSON line per request
    server_port: int  # the MCP server itself, without Warden

    def received(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


@dataclass
class Stack:
    tmp: Path
    upstream_port: int
    procs: list[subprocess.Popen] = field(default_factory=list)
    envoys: list[render.Envoy] = field(default_factory=list)
    idp: demo_idp.DemoIdP | None = None

    def spawn(self, args: list[str], name: str, cwd: Path = ROOT) -> None:
        with open(self.tmp / f"{name}.out", "wb") as out:
            self.procs.append(subprocess.Popen(args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                               stderr=subprocess.STDOUT, start_new_session=True))

    def site(self, name: str, server: list[str], cwd: Path, listen: int, log_flag: str, default: str = "deny",
             risk: dict | None = None) -> Site:
        """An MCP server (`server` + `--port P LOG_FLAG LOG`) behind an Envoy listening on `listen`, with
        the endpoint's `default` for calls no rule names and `risk` overriding keys of the risk section."""
        assert self.idp is not None
        port = free_ports(1)[0]
        url = f"http://127.0.0.1:{listen}/mcp"
        log = self.tmp / f"{name}-received.jsonl"
        log.write_text("")
        self.spawn([*server, "--port", str(port), log_flag, str(log)], name, cwd)
        wait_http(f"http://127.0.0.1:{port}/healthz")
        if not WASM.exists():
            pytest.fail(f"{WASM} missing: run `make build` first")
        bootstrap = self.tmp / f"envoy-{name}.yaml"
        bootstrap.write_text(render.render(warden_config(self.idp, url, default, risk), wasm=WASM, listen_port=listen, admin_port=0,
                                           upstream_port=self.upstream_port, idp_port=self.idp.port, mcp_port=port))
        envoy = render.Envoy(bootstrap=bootstrap, log_path=self.tmp / f"envoy-{name}.log", concurrency=2)
        self.envoys.append(envoy)
        envoy.start().wait_ready()
        site = Site(Gateway(envoy, listen), url, log, port)
        # The IdP's keys reach both workers within a tick of the first fetch (until then: 503, 401).
        token = self.idp.token(scope="orders:read", resource=url)
        deadline = time.monotonic() + 15
        while rpc(site, "tools/list", token=token).status_code in (401, 503):
            assert time.monotonic() < deadline, envoy.read_log()[-3000:]
            time.sleep(0.25)
        time.sleep(0.6)
        return site

    def stop(self) -> None:
        for e in self.envoys:
            e.stop()
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, 15)
                p.wait(timeout=10)
        if self.idp:
            self.idp.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, upstream) -> Stack:
    s = Stack(tmp_path_factory.mktemp("mcp"), upstream.port)
    atexit.register(s.stop)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def sites(stack: Stack) -> dict[str, Site]:
    """The Python MCP server and the TypeScript SDK 1.x one, each behind Envoy; one IdP for both."""
    py_listen, ts_listen = free_ports(2)
    # The IdP must know the resources before the sites exist: their URLs name the listen ports, so the
    # sites are built on ports picked here.
    urls = {"py": f"http://127.0.0.1:{py_listen}/mcp", "ts1": f"http://127.0.0.1:{ts_listen}/mcp"}
    stack.idp = demo_idp.DemoIdP(port=free_ports(1)[0], log_path=stack.tmp / "idp.log",
                                 mcp_resources=list(urls.values())).start()
    return {
        "py": stack.site("py", [sys.executable, str(ROOT / "examples" / "mcp" / "server.py")], ROOT, py_listen,
                         "--header-log"),
        "ts1": stack.site("ts1", [NODE, str(NODE_DIR / "server-sdk1.mjs")], NODE_DIR, ts_listen, "--log"),
    }


def rpc(site: Site, method: str, params: dict | None = None, token: str | None = None,
        headers: dict[str, str] | None = None, version: str = "2026-07-28") -> requests.Response:
    """One JSON-RPC request, its Mcp-* headers matching the body unless `headers` say otherwise."""
    h = {"content-type": "application/json", "accept": "application/json, text/event-stream",
         "mcp-protocol-version": version}
    if version >= "2026-07-28":
        h["mcp-method"] = method
        if params and "name" in params:
            h["mcp-name"] = params["name"]
    if token:
        h["authorization"] = f"Bearer {token}"
    h.update(headers or {})
    body = {"jsonrpc": "2.0", "id": 1, "method": method, **({"params": params} if params else {})}
    return requests.post(site.url, data=json.dumps(body), headers=h, timeout=TIMEOUT)


# ---- the walk every client makes -------------------------------------------------------------------

def check_walk(doc: dict[str, Any], site: Site, mode: str, who: str) -> None:
    http, steps = doc["http"], doc["steps"]
    assert "error" not in doc, doc
    mcp = [h for h in http if h["url"] == site.url]
    first = mcp[0]
    assert first["status"] == 401, doc
    assert 'resource_metadata="' in first["www_authenticate"], first
    assert any("/.well-known/oauth-protected-resource" in h["url"] and h["status"] == 200 for h in http), http
    assert any(h["url"].endswith("/token") and h["status"] == 200 for h in http), http
    if mode == "user":
        assert any(h["url"].endswith("/reg") and h["status"] == 201 for h in http), http  # RFC 7591
    lists = [s["list_tools"] for s in steps if "list_tools" in s]
    by_tool = {s["tool"]: s for s in steps if "tool" in s}
    # The first token holds orders:read only: Warden lists only the tool it may call.
    assert lists[0] == ["read_orders"], doc
    assert by_tool["read_orders"]["ok"], doc
    # delete_customer: 403 insufficient_scope naming admin, a new token, then success.
    refused = [h for h in mcp if h["status"] == 403]
    assert refused and 'error="insufficient_scope"' in refused[0]["www_authenticate"], doc
    assert "admin" in refused[0]["www_authenticate"] and "resource_metadata=" in refused[0]["www_authenticate"]
    assert by_tool["delete_customer"]["ok"], doc
    assert "delete_customer" in lists[1] and "read_orders" in lists[1], doc
    assert len(doc["tokens"]) >= 2, doc
    # refund_order: a step-up (RFC 9470). The agent cannot log in; alice adds her one-time code.
    stepped = [h for h in mcp if h["status"] == 401 and "insufficient_user_authentication" in h.get("www_authenticate", "")]
    assert stepped and f'acr_values="{MFA}"' in stepped[0]["www_authenticate"], doc
    assert by_tool["refund_order"]["ok"] == (mode == "user"), doc
    if isinstance(by_tool["read_orders"].get("result"), dict) and "caller" in by_tool["read_orders"]["result"]:
        assert by_tool["read_orders"]["result"]["caller"]["subject"] == who, doc


def check_no_passthrough(site: Site, since: int) -> None:
    """Every request the MCP server got after line `since`: no token, and Warden's identity."""
    got = [r for r in site.received()[since:] if r.get("path") == "/mcp"]
    assert got
    for r in got:
        headers = {k.lower() for k in r["headers"]}
        assert not headers & {"authorization", "dpop"}, r
        assert "x-auth-subject" in headers, r


@pytest.mark.parametrize("mode,who", [("agent", "demo-agent"), ("user", "alice")])
def test_python_sdk_client(sites: dict[str, Site], stack: Stack, mode: str, who: str):
    site = sites["py"]
    since = len(site.received())
    trace = anyio.run(lambda: py_client.run(mode, site.url, stack.idp.issuer, quiet=True))
    doc = {"http": trace.http, "tokens": trace.tokens, "steps": trace.steps}
    check_walk(doc, site, mode, who)
    check_no_passthrough(site, since)
    if mode == "user":
        # Her last token came from a login with the one-time code (step-up) and says so.
        assert any(s.get("tool") == "refund_order" and s["ok"] for s in trace.steps)


def node_client(sdk: str, mode: str, site: Site, issuer: str) -> dict[str, Any]:
    res = subprocess.run(
        [NODE, "client.mjs", "--sdk", sdk, "--mode", mode, "--url", site.url, "--issuer", issuer,
         "--login", f"{sys.executable} {ROOT / 'examples' / 'mcp' / 'login.py'}"],
        cwd=NODE_DIR, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("sdk", ["1", "2"])
@pytest.mark.parametrize("mode,who", [("agent", "demo-agent"), ("user", "alice")])
def test_typescript_sdk_client(sites: dict[str, Site], stack: Stack, sdk: str, mode: str, who: str):
    site = sites["py"]
    since = len(site.received())
    doc = node_client(sdk, mode, site, stack.idp.issuer)
    check_walk(doc, site, mode, who)
    check_no_passthrough(site, since)


def test_protected_resource_metadata(sites: dict[str, Site], stack: Stack):
    site = sites["py"]
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        r = site.gateway.get(path)
        assert r.status_code == 200, (path, r.text)
        doc = r.json()
        assert doc["resource"] == site.url
        assert doc["authorization_servers"] == [stack.idp.issuer]
        assert set(doc["scopes_supported"]) == {"orders:read", "orders:refund", "admin"}
        assert doc["bearer_methods_supported"] == ["header"]


def test_token_for_another_resource_is_refused(sites: dict[str, Site], stack: Stack):
    """RFC 8707 audience binding: demo-agent's token for the other MCP server (or the orders API) is no
    token here."""
    other = stack.idp.token(scope="orders:read", resource=sites["ts1"].url)
    api = stack.idp.token(scope="orders:read")
    for token in (other, api):
        r = rpc(sites["py"], "tools/list", token=token)
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"], r.text


def test_header_body_mismatch_never_reaches_sdk1_server(sites: dict[str, Site], stack: Stack):
    site = sites["ts1"]
    token = stack.idp.token(scope="orders:read", resource=site.url)
    # The premise: this server runs what the body says, whatever Mcp-Name claims (straight to it, no Warden).
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "delete_customer", "arguments": {"customer": "globex"}}}
    direct = requests.post(f"http://127.0.0.1:{site.server_port}/mcp", json=body, timeout=TIMEOUT, headers={
        "accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25",
        "mcp-method": "tools/call", "mcp-name": "read_orders"})
    assert direct.status_code == 200 and "globex" in direct.text, direct.text
    assert {"ran": "delete_customer", "input": {"customer": "globex"}} in site.received()

    since = len(site.received())
    params = {"name": "delete_customer", "arguments": {"customer": "initech"}}
    encoded = "=?base64?" + base64.b64encode(b"read_orders").decode() + "?="
    for headers in ({"mcp-name": "read_orders"}, {"mcp-name": encoded}, {"mcp-method": "tools/list"}):
        r = rpc(site, "tools/call", params, token=token, headers=headers)
        assert r.status_code == 400, (headers, r.status_code, r.text)
        assert r.json()["error"]["code"] == -32020, r.text
    # Before 2026-07-28 the headers are optional: a wrong one is still refused (400), and without them
    # the body decides: this token (orders:read) may not delete a customer (403).
    r = rpc(site, "tools/call", params, token=token, version="2025-11-25",
            headers={"mcp-method": "tools/call", "mcp-name": "read_orders"})
    assert r.status_code == 400, r.text
    r = rpc(site, "tools/call", params, token=token, version="2025-11-25")
    assert r.status_code == 403 and 'error="insufficient_scope"' in r.headers["www-authenticate"], r.text
    assert not [x for x in site.received()[since:] if "initech" in json.dumps(x)], site.received()[since:]
    # What matches goes through (a protocol version this server speaks).
    r = rpc(site, "tools/call", {"name": "read_orders", "arguments": {"customer": "acme"}}, token=token,
            version="2025-11-25")
    assert r.status_code == 200, r.text
    assert {"ran": "read_orders", "input": {"customer": "acme"}} in site.received()[since:]
    check_no_passthrough(site, since)


def test_idp_registration_and_login_policy(sites: dict[str, Site], stack: Stack):
    """The demo IdP's side of the walk: what a client that registers itself may not do, what a user may
    not grant, and that demo-agent's MCP scopes hold at the MCP resource only."""
    idp, url = stack.idp, sites["py"].url
    callback = "http://127.0.0.1:33420/callback"
    for extra in ({"grant_types": ["client_credentials"], "response_types": []}, {"tenant": "globex"}):
        r = requests.post(idp.issuer + "/reg", json={"redirect_uris": [callback], **extra}, timeout=TIMEOUT)
        assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata", r.text
    r = requests.post(idp.issuer + "/reg", timeout=TIMEOUT, json={
        "redirect_uris": [callback], "token_endpoint_auth_method": "none", "scope": "orders:read",
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]})
    assert r.status_code == 201 and "scope" not in r.json(), r.text  # a registered scope would cap step-ups

    def authorize(scope: str, **extra: str) -> str:
        verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        return idp.issuer + "/auth?" + urllib.parse.urlencode({
            "response_type": "code", "client_id": r.json()["client_id"], "redirect_uri": callback, "state": "s",
            "code_challenge": challenge, "code_challenge_method": "S256", "scope": scope, "resource": url, **extra})

    assert "code=" in py_client.login.login(authorize("orders:read"), callback, "bob", "bob-password")
    with pytest.raises(py_client.login.LoginError, match="access_denied"):
        py_client.login.login(authorize("orders:read admin"), callback, "bob", "bob-password")
    with pytest.raises(py_client.login.LoginError, match="wrong user or password"):
        py_client.login.login(authorize("orders:read"), callback, "alice", "bob-password")
    mfa = authorize("openid orders:refund", acr_values=MFA)
    with pytest.raises(py_client.login.LoginError, match="one-time code"):
        py_client.login.login(mfa, callback, "alice", "alice-password")
    assert "code=" in py_client.login.login(mfa, callback, "alice", "alice-password", otp="123456")
    # demo-agent: admin through the MCP server, never at the orders API.
    assert idp.token(scope="orders:read admin", resource=url)
    with pytest.raises(demo_idp.IdpError, match="invalid_scope"):
        idp.token(scope="orders:read admin")
