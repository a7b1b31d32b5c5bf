#!/usr/bin/env python3
"""`make run`: Warden in a real Envoy in front of the echo upstream, with a real IdP, and ready-to-paste
curl commands.

1. the demo IdP (examples/idp/server.js, node oidc-provider) on 127.0.0.1:9000: Warden fetches its
   JWKS (remote JWKS, refreshed, one fetch for all workers) and introspects its opaque tokens;
2. a dev signing key and its JWKS (`warden token keygen`), kept in .run/ across runs, for a second,
   inline-key provider (tokens minted offline with `warden token mint`: expired, missing a scope);
3. the demo config (examples/demo/warden.template.json + both providers) at .run/warden.json, checked
   with `warden check`;
4. the echo upstream (examples/upstream/echo.py), the demo MCP server (examples/mcp/server.py, Python
   `mcp` SDK) and Envoy (envoy/render.py bootstrap: /mcp to the MCP server, the rest to the echo), detached;
5. each demo request is sent once to prove it behaves, and a real MCP client (examples/mcp/client.py) walks
   through the MCP authorization as demo-agent and as alice; then the walk-through is printed;
6. stays in the foreground, printing the audit lines, until Ctrl-C; then stops every child.

`--check` stops after step 5 (used by the tests, with free ports). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPConnection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "envoy"))
sys.path.insert(0, str(ROOT / "examples" / "idp"))

import idp as demo_idp  # noqa: E402
import render  # noqa: E402

CLI = ROOT / "target" / "release" / "warden"
WASM = render.DEFAULT_WASM
TEMPLATE = ROOT / "examples" / "demo" / "warden.template.json"
ECHO = ROOT / "examples" / "upstream" / "echo.py"
MCP_SERVER = ROOT / "examples" / "mcp" / "server.py"
MCP_CLIENT = ROOT / "examples" / "mcp" / "client.py"
ISS = "https://idp.demo.local"
AUD = "orders-api"
STEPPED_UP_ACR = "urn:warden:acr:mfa"  # the template's risk.acr_values
APPROVED_ACR = "urn:warden:acr:approved"  # the template's payout route: `approval.acr_values`
# The guardrail demos' tokens, printed with their own walk-through (section 8).
GUARDRAIL_VARS = ("$DELEGATED_W", "$AGED", "$APPROVED", "$ALICE_AMR")
RATE_LIMIT = 20  # the template's per-agent rate limit, per minute


def say(msg: str = "") -> None:
    print(msg, flush=True)


def cli(*args: str) -> str:
    res = subprocess.run([str(CLI), *args], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"warden {' '.join(args)} failed ({res.returncode}):\n{res.stdout}{res.stderr}")
    return res.stdout.strip()


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# The demo's own requests come from this loopback address, yours (curl) from 127.0.0.1: risk scoring
# counts 401/403s per source address (`source_failures`), and the refusals the demo sends to check
# itself should not raise the risk of the requests you paste.
CHECK_SOURCE = "127.0.0.2"


def http(method: str, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], str]:
    u = urllib.parse.urlsplit(url)
    conn = HTTPConnection(u.hostname, u.port, timeout=10, source_address=(CHECK_SOURCE, 0))
    try:
        conn.request(method, u.path, body=b"{}" if method == "POST" else None,
                     headers={"User-Agent": "warden-demo-check", **headers})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    finally:
        conn.close()


def check_rate_limit(base: str, agent: str) -> int:
    """demo-agent's requests until its rate limit answers 429 (`--check` only: it empties the bucket for a
    minute). Returns the number of failures (0 or 1)."""
    codes: list[int] = []
    rh: dict[str, str] = {}
    for _ in range(RATE_LIMIT + 5):
        status, rh, _ = http("GET", base + "/orders/42", {"Authorization": f"Bearer {agent}"})
        codes.append(status)
        if status == 429:
            break
    ok = (codes[-1] == 429 and len(codes) <= RATE_LIMIT + 1 and "retry-after" in rh
          and "per-agent" in rh.get("ratelimit-policy", ""))
    say(f"  [{'ok' if ok else 'FAIL'}] 429 GET /orders/42 after {len(codes) - 1} more admitted  "
        f"(demo-agent over its {RATE_LIMIT}/min rate limit: Retry-After {rh.get('retry-after')}, "
        f"RateLimit-Policy {rh.get('ratelimit-policy')})")
    return int(not ok)


def check_approval(idp: demo_idp.DemoIdP, base: str, delegated: str) -> int:
    """The payout after alice approves it on her phone (OpenID CIBA at the IdP): 200; denied, the agent
    has only its `delegated` token: still 401."""
    failures = 0
    for approve in (True, False):
        operation = f"payout for alice {'approved' if approve else 'denied'}"
        auth_req_id = idp.ciba_request("alice", operation, scope="openid orders:write")
        pending = [p for p in idp.ciba_pending("alice") if p["binding_message"] == operation]
        for p in pending:
            idp.ciba_answer(p["id"], approve)
        status, doc = idp.ciba_poll(auth_req_id)
        token = doc.get("access_token", delegated)
        got, _, body = http("POST", base + "/users/alice/payouts", {"Authorization": f"Bearer {token}"})
        want = 200 if approve else 401
        ok = len(pending) == 1 and got == want and (status == 200) == approve
        failures += not ok
        say(f"  [{'ok' if ok else 'FAIL'}] {got} POST /users/alice/payouts  (after alice "
            f"{'approved' if approve else 'denied'} \"{operation}\" on her phone: CIBA, {status} at the IdP)")
        if not ok:
            say(f"         got {got} {body[:300]} {doc}")
    return failures


def check_mcp(mode: str, url: str, issuer: str) -> int:
    """A real MCP client (Python `mcp` SDK) through Warden, as `mode` (agent | user): the whole flow from
    the 401 to the step-up. Returns the number of failures (0 or 1)."""
    res = subprocess.run([sys.executable, str(MCP_CLIENT), mode, "--json", "--url", url, "--issuer", issuer,
                          "--local-address", CHECK_SOURCE], capture_output=True, text=True, timeout=120, check=False)
    try:
        doc = json.loads(res.stdout)
    except json.JSONDecodeError:
        say(f"  [FAIL] MCP client ({mode}) exited {res.returncode}:\n{res.stdout[-1500:]}{res.stderr[-1500:]}")
        return 1
    steps = {s.get("tool"): s for s in doc["steps"] if "tool" in s}
    lists = [s["list_tools"] for s in doc["steps"] if "list_tools" in s]
    first = doc["http"][0] if doc["http"] else {}
    refund = steps.get("refund_order", {})
    ok = (first.get("status") == 401 and "resource_metadata=" in first.get("www_authenticate", "")
          and lists[0] == ["read_orders"] and steps.get("read_orders", {}).get("ok")
          and any(h["status"] == 403 and "insufficient_scope" in h.get("www_authenticate", "") for h in doc["http"])
          and steps.get("delete_customer", {}).get("ok") and "delete_customer" in lists[1]
          and refund.get("ok") == (mode == "user"))
    who = "demo-agent (client credentials)" if mode == "agent" else "alice (registered client, code + PKCE)"
    say(f"  [{'ok' if ok else 'FAIL'}] MCP {who}: 401 -> metadata -> token {doc['tokens'][0]['scope'] if doc['tokens'] else '-'}"
        f" -> tools {lists[0] if lists else '-'} -> read_orders -> 403 insufficient_scope -> delete_customer"
        f" -> refund_order {'after her MFA step-up' if mode == 'user' else 'refused (step-up)'}")
    if not ok:
        say(f"         {json.dumps(doc)[:1500]}")
    return int(not ok)


def check_mcp_headers(log: Path) -> int:
    """No request reached the MCP server with a token (no passthrough), and each carried Warden's identity."""
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    mcp = [x for x in lines if x["path"] == "/mcp"]
    leaked = [x for x in mcp if {"authorization", "dpop"} & set(x["headers"])]
    ok = bool(mcp) and not leaked and all("x-auth-subject" in x["headers"] for x in mcp)
    say(f"  [{'ok' if ok else 'FAIL'}] the MCP server saw {len(mcp)} requests, none with Authorization or DPoP,"
        f" each with x-auth-subject ({log})")
    return int(not ok)


def wait_http(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer in {timeout:.0f}s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run the Warden demo.")
    ap.add_argument("--listen-port", type=int, default=10000)
    ap.add_argument("--admin-port", type=int, default=9901)
    ap.add_argument("--upstream-port", type=int, default=8080)
    ap.add_argument("--idp-port", type=int, default=9000)
    ap.add_argument("--mcp-port", type=int, default=8081)
    ap.add_argument("--workdir", default=str(ROOT / ".run"))
    ap.add_argument("--check", action="store_true", help="verify the demo requests, then stop")
    a = ap.parse_args(argv)

    for f, hint in ((CLI, "make build"), (WASM, "make build"), (render.DEFAULT_ENVOY, "make setup")):
        if not f.exists():
            raise SystemExit(f"{f} missing: run `{hint}`")
    busy = [p for p in (a.listen_port, a.admin_port, a.upstream_port, a.idp_port, a.mcp_port) if not port_free(p)]
    if busy:
        raise SystemExit(f"port(s) {busy} on 127.0.0.1 are in use: is another demo running?")

    run = Path(a.workdir)
    run.mkdir(parents=True, exist_ok=True)
    key, jwks = run / "dev-key.json", run / "jwks.json"
    if not (key.exists() and jwks.exists()):
        cli("token", "keygen", "--alg", "ES256", "--kid", "dev-1", "--private", str(key), "--jwks", str(jwks))
    config = json.loads(TEMPLATE.read_text())
    issuer = f"http://127.0.0.1:{a.idp_port}"
    oidc = config["providers"][0]
    oidc["issuer"] = issuer
    oidc["jwks_uri"]["url"] = f"{issuer}/jwks"
    oidc["introspection"]["endpoint"]["url"] = f"{issuer}/token/introspection"
    config["providers"][1]["jwks"] = json.loads(jwks.read_text())
    base = f"http://127.0.0.1:{a.listen_port}"
    mcp_url = base + "/mcp"  # the resource identifier: exactly the URL MCP clients use
    endpoint = config["mcp"]["endpoints"][0]
    endpoint["resource"] = mcp_url
    oidc["audiences"] = [AUD, mcp_url]  # the MCP endpoint also checks that `aud` names its resource
    endpoint["authorization_servers"] = [issuer]
    config_path = run / "warden.json"
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    say(f"config: {config_path}  ->  {cli('check', str(config_path)).splitlines()[0]}")

    bootstrap = run / "envoy.yaml"
    bootstrap.write_text(
        render.render(
            config_path.read_text(),
            wasm=WASM,
            listen_port=a.listen_port,
            admin_port=a.admin_port,
            upstream_port=a.upstream_port,
            idp_port=a.idp_port,
            # The demo's requests play the edge in front of Envoy that owns x-geo-country (a real edge
            # overwrites the client's value; alone at the edge, keep the default geo="strip").
            geo="edge",
            mcp_port=a.mcp_port,
        )
    )
    log_path = run / "envoy.log"
    log_path.write_text("")
    upstream_log = open(run / "upstream.log", "wb")  # noqa: SIM115 - handed to the child
    upstream = subprocess.Popen(
        [sys.executable, str(ECHO), "--port", str(a.upstream_port), "--quiet"],
        stdin=subprocess.DEVNULL,
        stdout=upstream_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    upstream_log.close()
    mcp_headers = run / "mcp-headers.log"
    mcp_headers.write_text("")
    mcp_log = open(run / "mcp-server.log", "wb")  # noqa: SIM115 - handed to the child
    mcp_server = subprocess.Popen(
        [sys.executable, str(MCP_SERVER), "--port", str(a.mcp_port), "--header-log", str(mcp_headers)],
        stdin=subprocess.DEVNULL,
        stdout=mcp_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    mcp_log.close()
    envoy = render.Envoy(bootstrap=bootstrap, log_path=log_path, concurrency=2)
    (run / "idp.log").write_text("")
    idp = demo_idp.DemoIdP(port=a.idp_port, log_path=run / "idp.log", mcp_resources=[mcp_url])

    def stop(*_: object) -> None:
        envoy.stop()
        idp.stop()
        for child in (upstream, mcp_server):
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
                try:
                    child.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()

    try:
        idp.start()
        wait_http(f"http://127.0.0.1:{a.upstream_port}/")
        wait_http(f"http://127.0.0.1:{a.mcp_port}/healthz")
        envoy.start().wait_ready()

        # Tokens from the real IdP: an agent's (client credentials), alice's logins (with a password, and
        # after MFA), the agent acting for alice (token exchange, RFC 8693), an opaque one
        # (introspection). The keys arrive within a second of start.
        agent = idp.token(scope="orders:read orders:write")
        # A token for the MCP server only (RFC 8707: aud is the MCP URL), refused at the orders API.
        mcp_only = idp.token(scope="orders:read", resource=mcp_url)
        alice = idp.user_token("alice")
        alice_mfa = idp.user_token("alice", acr=STEPPED_UP_ACR)
        delegated = idp.exchange(alice, scope="orders:read")
        # Guardrails: the agent acting for alice (read and write), the same on a login an hour old, and
        # alice's login whose `amr` says MFA (risk.amr_any).
        delegated_w = idp.exchange(alice, scope="orders:read orders:write")
        aged = idp.exchange(idp.user_token("alice", auth_age_s=3600), scope="orders:read")
        alice_amr = idp.user_token("alice", amr=["pwd", "mfa"])
        opaque = idp.token(scope="orders:read", resource=demo_idp.OPAQUE_RESOURCE)
        deadline = time.monotonic() + 15
        while http("GET", base + "/orders/1", {"Authorization": f"Bearer {agent}"})[0] != 200:
            if time.monotonic() > deadline:
                raise SystemExit(f"the IdP's keys did not arrive in Envoy; log: {log_path}")
            time.sleep(0.25)
        time.sleep(0.6)  # the other workers install the fetched keys on their next tick (250 ms)

        def mint(*extra: str, sub: str = "alice") -> str:
            return cli("token", "mint", "--key", str(key), "--iss", ISS, "--aud", AUD, "--sub", sub,
                       "--tenant", "acme", "--client-id", "demo-cli", *extra)

        valid = mint("--scope", "orders:read orders:write", "--expires-in", "3600")
        expired = mint("--scope", "orders:read orders:write", "--expires-in", "-300")
        read_only = mint("--scope", "orders:read", "--expires-in", "3600")
        bob = mint("--scope", "orders:read", "--expires-in", "3600", sub="bob")
        rogue = mint("--scope", "orders:read", "--expires-in", "3600", "--claim", 'act={"sub":"rogue-agent"}')
        mallory = mint("--scope", "orders:read", "--expires-in", "3600", sub="mallory")
        home = {"x-geo-country": "NO", "User-Agent": "shop-web/2.1"}
        away = {"x-geo-country": "AU", "User-Agent": "curl/8.5.0"}

        demos = [
            ("IdP token of demo-agent: 200, the upstream sees x-auth-subject: demo-agent",
             "GET", "/orders/42", {"Authorization": f"Bearer {agent}"}, 200, "$AGENT", "demo-agent"),
            ("delegated token (demo-agent acting for alice): 200, x-auth-subject: alice",
             "GET", "/orders/42", {"Authorization": f"Bearer {delegated}"}, 200, "$DELEGATED", "alice"),
            ("opaque token, checked by introspection at the IdP: 200",
             "GET", "/orders/42", {"Authorization": f"Bearer {opaque}"}, 200, "$OPAQUE", "demo-agent"),
            ("valid token: 200, the upstream echoes x-auth-subject/tenant/client/scopes",
             "GET", "/orders/42", {"Authorization": f"Bearer {valid}"}, 200, "$VALID", "alice"),
            ("spoofed x-auth-subject: stripped, the upstream sees alice",
             "GET", "/orders/42", {"Authorization": f"Bearer {valid}", "X-Auth-Subject": "admin"}, 200, "$VALID",
             "alice"),
            ("public route: no token needed", "GET", "/health", {}, 200, None, None),
            # Risk scoring (before any refusal: refusals raise the risk of their source address).
            ("bob at home (Norway, his usual app): 200, the upstream sees x-auth-risk-score",
             "GET", "/orders/42", {"Authorization": f"Bearer {bob}", **home}, 200, "$BOB", "bob"),
            ("bob again from home: 200 (Warden now knows his country and client)",
             "GET", "/orders/42", {"Authorization": f"Bearer {bob}", **home}, 200, "$BOB", "bob"),
            ("bob's token a second later from Australia with another client (impossible travel, new client): "
             "401 insufficient_user_authentication, the audit line names the factors",
             "GET", "/orders/42", {"Authorization": f"Bearer {bob}", **away}, 401, "$BOB", None),
            ("a refund (route `step_up: true`) with alice's password login: 401 insufficient_user_authentication",
             "POST", "/orders/42/refund", {"Authorization": f"Bearer {alice}"}, 401, "$ALICE", None),
            ("the same refund after alice's MFA (acr urn:warden:acr:mfa, fresh auth_time): 200",
             "POST", "/orders/42/refund", {"Authorization": f"Bearer {alice_mfa}"}, 200, "$ALICE_MFA", "alice"),
            # Agent guardrails: owner isolation, user presence, approval (CIBA), step-up by amr.
            ("the agent acting for alice reads alice's orders: 200",
             "GET", "/users/alice/orders", {"Authorization": f"Bearer {delegated_w}"}, 200, "$DELEGATED_W", "alice"),
            ("the agent acting for alice asks for bob's orders: 403 (reason owner_mismatch)",
             "GET", "/users/bob/orders", {"Authorization": f"Bearer {delegated_w}"}, 403, "$DELEGATED_W", None),
            ("alice's profile through the agent, her login an hour old: 401 max_age=300 (user_not_present)",
             "GET", "/users/alice/profile", {"Authorization": f"Bearer {aged}"}, 401, "$AGED", None),
            ("the same with her fresh login behind the agent: 200",
             "GET", "/users/alice/profile", {"Authorization": f"Bearer {delegated_w}"}, 200, "$DELEGATED_W",
             "alice"),
            (f"a payout by the agent for alice: 401 acr_values=\"{APPROVED_ACR}\" (approval_required)",
             "POST", "/users/alice/payouts", {"Authorization": f"Bearer {delegated_w}"}, 401, "$DELEGATED_W",
             None),
            ("a refund with alice's login whose amr says mfa (risk.amr_any): 200",
             "POST", "/orders/42/refund", {"Authorization": f"Bearer {alice_amr}"}, 200, "$ALICE_AMR", "alice"),
            # Refusals.
            ("expired token: 401 invalid_token",
             "GET", "/orders/42", {"Authorization": f"Bearer {expired}"}, 401, "$EXPIRED", None),
            ("token without orders:write: 403 insufficient_scope",
             "POST", "/orders", {"Authorization": f"Bearer {read_only}"}, 403, "$READ_ONLY", None),
            ("no token: 401 with WWW-Authenticate: Bearer realm=\"warden\"",
             "GET", "/orders/42", {}, 401, None, None),
            ("delegation by an actor no `delegation.actors` rule allows: 403",
             "GET", "/orders/42", {"Authorization": f"Bearer {rogue}"}, 403, "$ROGUE", None),
            ("delegation asserted by a header (x-on-behalf-of), never trusted: 403",
             "GET", "/orders/42", {"Authorization": f"Bearer {valid}", "X-On-Behalf-Of": "admin"}, 403, "$VALID",
             None),
            ("a token issued for the MCP server (aud is its URL), replayed at the orders API: 401",
             "GET", "/orders/42", {"Authorization": f"Bearer {mcp_only}"}, 401, None, None),
            ("a subject on the deny list (`revocation.deny`), the kill switch: 401",
             "GET", "/orders/42", {"Authorization": f"Bearer {mallory}"}, 401, "$MALLORY", None),
        ]
        failures = 0
        for title, method, path, headers, want, var, subject in demos:
            status, rh, body = http(method, base + path, headers)
            ok = status == want
            if ok and subject:
                seen = json.loads(body)["headers"]
                ok = seen.get("x-auth-subject") == subject and "x-auth-risk-score" in seen
            if ok and status == 401 and "insufficient_user_authentication" in title:
                ok = f'acr_values="{STEPPED_UP_ACR}"' in rh.get("www-authenticate", "")
            if ok and var in GUARDRAIL_VARS and status == 401:  # the challenge names what is missing
                challenge = rh.get("www-authenticate", "")
                ok = "insufficient_user_authentication" in challenge and (
                    f'acr_values="{APPROVED_ACR}"' in challenge if "payout" in title else "max_age=300" in challenge)
            failures += not ok
            say(f"  [{'ok' if ok else 'FAIL'}] {status} {method} {path}  ({title})")
            if not ok:
                say(f"         got {status} {rh.get('www-authenticate', '')} {body[:300]}")
        failures += check_approval(idp, base, delegated_w)
        for mode in ("agent", "user"):
            failures += check_mcp(mode, mcp_url, issuer)
        failures += check_mcp_headers(mcp_headers)
        if a.check:
            failures += check_rate_limit(base, agent)
        if failures:
            say(f"\n{failures} demo request(s) misbehaved; Envoy log: {log_path}")
            return 1
        if a.check:
            say("demo check passed")
            return 0

        say("\nWarden is running: Envoy on " + base + f" (admin http://127.0.0.1:{a.admin_port}), "
            f"echo upstream on 127.0.0.1:{a.upstream_port}, MCP server at {mcp_url} (127.0.0.1:{a.mcp_port} behind "
            f"Warden), demo IdP on {issuer} (log {run / 'idp.log'}).\n\n"
            "Paste these into another shell:\n")
        say("# 1. A token from the IdP as the AI agent `demo-agent` (client credentials, JWT access token):")
        say(f"AGENT=$(curl -s -u demo-agent:demo-agent-secret -d grant_type=client_credentials "
            f"-d 'scope=orders:read orders:write' {issuer}/token | python3 -c 'import json,sys; "
            f"print(json.load(sys.stdin)[\"access_token\"])')")
        say(f"curl -s -H \"Authorization: Bearer $AGENT\" {base}/orders/42   "
            "# the echo shows x-auth-subject: demo-agent, x-auth-tenant: acme")
        say("#    (and x-auth-risk-score, x-auth-kind: agent)\n")
        say("# 2. A delegated token: demo-agent acting for the user alice (RFC 8693 token exchange).")
        say("#    alice's own token stands for a browser login (the demo IdP's loopback admin API):")
        say(f"ALICE=$(curl -s -X POST -d '{{\"sub\":\"alice\"}}' {issuer}/admin/user-token | "
            "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')")
        say(f"DELEGATED=$(curl -s -u demo-agent:demo-agent-secret "
            f"-d grant_type=urn:ietf:params:oauth:grant-type:token-exchange -d subject_token=$ALICE "
            f"-d subject_token_type=urn:ietf:params:oauth:token-type:access_token -d scope=orders:read "
            f"{issuer}/token | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')")
        say(f"curl -s -H \"Authorization: Bearer $DELEGATED\" {base}/orders/42   "
            "# x-auth-subject: alice (the token's act claim names demo-agent)\n")
        say("# 3. An opaque token (resource urn:warden:orders-api:opaque): Warden asks the IdP (RFC 7662).")
        say(f"OPAQUE=$(curl -s -u demo-agent:demo-agent-secret -d grant_type=client_credentials "
            f"-d scope=orders:read -d resource={demo_idp.OPAQUE_RESOURCE} {issuer}/token | "
            "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')")
        say(f"curl -s -H \"Authorization: Bearer $OPAQUE\" {base}/orders/42")
        say(f"curl -s -u demo-agent:demo-agent-secret -d token=$OPAQUE {issuer}/token/revocation  "
            "# revoke a token: refused if Warden has not seen it yet; a token already accepted stays "
            "accepted until its exp (active answers are cached per worker)\n")
        say("# 4. Step-up (RFC 9470). A refund demands it (route `step_up: true`); alice's password login is not")
        say("#    enough (401 insufficient_user_authentication, acr_values=\"urn:warden:acr:mfa\"), her MFA login is:")
        say(f"ALICE_MFA=$(curl -s -X POST -d '{{\"sub\":\"alice\",\"acr\":\"{STEPPED_UP_ACR}\"}}' "
            f"{issuer}/admin/user-token | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')")
        say(f"curl -si -X POST -H \"Authorization: Bearer $ALICE\" {base}/orders/42/refund")
        say(f"curl -si -X POST -H \"Authorization: Bearer $ALICE_MFA\" {base}/orders/42/refund\n")
        say("# 5. Key rotation at the IdP (new kid; Warden picks it up without a restart):")
        say(f"curl -s -X POST {issuer}/admin/rotate\n")
        say("# 6. demo-agent's rate limit (`rate_limits`: 20 per minute per agent, one bucket for both workers),")
        say("#    its own calls and those it makes for users alike: 200 up to the limit, then 429 with Retry-After.")
        say(f"for i in $(seq 25); do curl -s -o /dev/null -w '%{{http_code}}\\n' -H \"Authorization: Bearer $AGENT\" "
            f"{base}/orders/42; done | sort | uniq -c\n")
        say("# 7. MCP (Model Context Protocol): Warden is the OAuth resource server of the MCP server at " + mcp_url)
        say("#    RFC 9728 metadata (which IdP, which scopes), answered by Warden itself:")
        say(f"curl -s {base}/.well-known/oauth-protected-resource/mcp")
        say("#    No token: 401 with resource_metadata=\"...\" and the scope to ask for:")
        say(f"curl -si -X POST -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' "
            f"-d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}}' {mcp_url}")
        say("#    A token for the resource (RFC 8707: aud is the MCP URL) and a filtered tools/list:")
        say(f"MCP_AGENT=$(curl -s -u demo-agent:demo-agent-secret -d grant_type=client_credentials -d scope=orders:read "
            f"-d resource={mcp_url} {issuer}/token | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')")
        meta = ('"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
                '"io.modelcontextprotocol/clientCapabilities":{}}')
        mcp_headers_curl = ("-H \"Authorization: Bearer $MCP_AGENT\" -H 'content-type: application/json' "
                            "-H 'accept: application/json, text/event-stream' -H 'mcp-protocol-version: 2026-07-28'")
        say(f"curl -s -X POST {mcp_headers_curl} -H 'mcp-method: tools/list' "
            f"-d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"params\":{{{meta}}}}}' {mcp_url}"
            "   # read_orders only")
        say("#    A tool this token may not call: 403 insufficient_scope naming the scope to ask for:")
        say(f"curl -si -X POST {mcp_headers_curl} -H 'mcp-method: tools/call' -H 'mcp-name: delete_customer' "
            f"-d '{{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{{\"name\":\"delete_customer\","
            f"\"arguments\":{{\"customer\":\"globex\"}},{meta}}}}}' {mcp_url}")
        say("#    Headers that disagree with the body (Mcp-Name says read_orders): 400, JSON-RPC error -32020:")
        say(f"curl -si -X POST {mcp_headers_curl} -H 'mcp-method: tools/call' -H 'mcp-name: read_orders' "
            f"-d '{{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{{\"name\":\"delete_customer\","
            f"\"arguments\":{{\"customer\":\"globex\"}},{meta}}}}}' {mcp_url}")
        say("#    A real MCP client (Python mcp SDK) doing it all: 401 -> metadata -> token -> tools/list -> read_orders")
        say("#    -> delete_customer: 403 insufficient_scope -> a token with admin -> success -> refund_order: step-up.")
        py = Path(sys.executable)
        py = py.relative_to(ROOT) if py.is_relative_to(ROOT) else py
        say(f"{py} {MCP_CLIENT.relative_to(ROOT)} agent --url {mcp_url} --issuer {issuer}")
        say("#    alice with a client that registers itself (RFC 7591), authorization code + PKCE; the login page")
        say(f"#    ({issuer}/auth...) is driven by examples/mcp/login.py; her refund asks for her one-time code:")
        say(f"{py} {MCP_CLIENT.relative_to(ROOT)} user --url {mcp_url} --issuer {issuer}")
        say("#    What the MCP server received (no Authorization header, Warden's x-auth-* identity):")
        say(f"tail -n 3 {mcp_headers}\n")
        take = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])'"
        exchange = (f"-d grant_type=urn:ietf:params:oauth:grant-type:token-exchange "
                    f"-d subject_token_type=urn:ietf:params:oauth:token-type:access_token")
        say("# 8. Agent guardrails (examples/agents/guardrails.json has them all, MCP tools included).")
        say("#    Owner isolation: the agent acting for alice reads alice's orders, not bob's (403):")
        say(f"DELEGATED_W=$(curl -s -u demo-agent:demo-agent-secret {exchange} -d subject_token=$ALICE "
            f"-d 'scope=orders:read orders:write' {issuer}/token | {take})")
        say(f"curl -s -H \"Authorization: Bearer $DELEGATED_W\" {base}/users/alice/orders")
        say(f"curl -si -H \"Authorization: Bearer $DELEGATED_W\" {base}/users/bob/orders")
        say("#    User presence: alice's profile needs her login behind the agent's token at most 300 s old;")
        say("#    on a login an hour old: 401 insufficient_user_authentication, max_age=300:")
        say(f"OLD_LOGIN=$(curl -s -X POST -d '{{\"sub\":\"alice\",\"auth_age_s\":3600}}' {issuer}/admin/user-token | {take})")
        say(f"AGED=$(curl -s -u demo-agent:demo-agent-secret {exchange} -d subject_token=$OLD_LOGIN "
            f"-d scope=orders:read {issuer}/token | {take})")
        say(f"curl -si -H \"Authorization: Bearer $AGED\" {base}/users/alice/profile")
        say(f"curl -s -H \"Authorization: Bearer $DELEGATED_W\" {base}/users/alice/profile   # fresh login: 200")
        say(f"#    Approval: a payout needs alice's own approval (401 acr_values=\"{APPROVED_ACR}\", max_age=120).")
        say("#    The agent asks the IdP (OpenID CIBA), binding_message names the operation on alice's phone:")
        say(f"curl -si -X POST -H \"Authorization: Bearer $DELEGATED_W\" {base}/users/alice/payouts")
        say(f"AUTH_REQ=$(curl -s -u demo-agent:demo-agent-secret -d login_hint=alice -d 'binding_message=payout for alice' "
            f"-d 'scope=openid orders:write' {issuer}/backchannel | "
            "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"auth_req_id\"])')")
        say(f"curl -s {issuer}/admin/ciba?user=alice   # alice's phone (the IdP's loopback admin API) shows it")
        say(f"REQ=$(curl -s {issuer}/admin/ciba?user=alice | "
            "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"pending\"][-1][\"id\"])')")
        say(f"curl -s -X POST {issuer}/admin/ciba/$REQ/approve   # or /deny: the agent then gets access_denied")
        say(f"APPROVED=$(curl -s -u demo-agent:demo-agent-secret -d grant_type=urn:openid:params:grant-type:ciba "
            f"-d auth_req_id=$AUTH_REQ {issuer}/token | {take})")
        say(f"curl -si -X POST -H \"Authorization: Bearer $APPROVED\" {base}/users/alice/payouts   # 200")
        say("#    Step-up by amr (risk.amr_any: mfa, otp, hwk): a login whose amr says mfa passes the refund:")
        say(f"ALICE_AMR=$(curl -s -X POST -d '{{\"sub\":\"alice\",\"amr\":[\"pwd\",\"mfa\"]}}' "
            f"{issuer}/admin/user-token | {take})")
        say(f"curl -si -X POST -H \"Authorization: Bearer $ALICE_AMR\" {base}/orders/42/refund\n")
        say("# Offline tokens of the second (inline-key) provider, minted with the warden CLI:")
        say(f"VALID={shlex.quote(valid)}")
        say(f"EXPIRED={shlex.quote(expired)}")
        say(f"READ_ONLY={shlex.quote(read_only)}")
        say(f"ROGUE={shlex.quote(rogue)}   # act: rogue-agent")
        say(f"MALLORY={shlex.quote(mallory)}")
        say(f"BOB={shlex.quote(bob)}\n")
        for title, method, path, headers, _, var, _ in demos[3:]:
            if var in ("$ALICE", "$ALICE_MFA", *GUARDRAIL_VARS):
                continue  # printed with the IdP walk-through above
            if title.startswith("bob at home"):
                say("# Risk scoring (the embedded model) learns each identity's countries, clients, hours and pace;")
                say("# x-geo-country stands for the geo header the edge in front of Envoy sets (risk.geo_header).")
                say("# Run bob's requests in order (his first two teach Warden his habits). Refusals (401, 403)")
                say("# count against their source address (feature source_failures) only beyond one per 10 of")
                say("# its recent successes: an address that mostly fails looks like credential stuffing.\n")
            if title.startswith("expired token"):
                say("# Refusals:\n")
            parts = ["curl -si"]
            if method != "GET":
                parts.append(f"-X {method} -H 'content-type: application/json' -d '{{}}'")
            for name, value in headers.items():
                shown = f"Bearer {var}" if name == "Authorization" and var else value
                parts.append(f'-H "{name}: {shown}"')
            parts.append(base + path)
            say(f"# {title}\n{' '.join(parts)}\n")
        say(f"More tokens: {CLI.relative_to(ROOT)} token mint --key {key.relative_to(ROOT) if key.is_relative_to(ROOT) else key} "
            f"--iss {ISS} --aud {AUD} --sub bob --scope admin")
        say(f"Metrics: http://127.0.0.1:{a.admin_port}/stats/prometheus (warden_decisions_total{{verdict,reason,route}}, "
            "warden_engine_us, warden_risk_score, ...); scrape it with observability/prometheus.yml and import "
            "observability/grafana-dashboard.json into Grafana.")
        say(f"Envoy log (audit lines): {log_path}\nAudit lines follow. Ctrl-C stops Envoy and the upstream.\n")

        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        with open(log_path, errors="replace") as logf:
            logf.seek(0, os.SEEK_END)
            while (envoy.proc and envoy.proc.poll() is None and upstream.poll() is None and mcp_server.poll() is None
                   and idp.proc and idp.proc.poll() is None):
                line = logf.readline()
                if not line:
                    time.sleep(0.2)
                    continue
                if "warden: {" in line:
                    say("audit " + line.split("warden: ", 1)[1].rstrip())
                elif "][error]" in line or "][critical]" in line:
                    say(line.rstrip())
        say("a child exited; stopping")
        return 1
    except KeyboardInterrupt:
        say("\nstopping")
        return 0
    except (render.EnvoyFailed, demo_idp.IdpError) as e:
        say(str(e))
        return 1
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
