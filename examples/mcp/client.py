#!/usr/bin/env python3
"""A real MCP client (the Python `mcp` SDK 2.x) walking through Warden's MCP authorization, as `make run`
prints it and tests/test_mcp_clients.py runs it:

    python3 examples/mcp/client.py agent    # demo-agent, client credentials
    python3 examples/mcp/client.py user     # alice: dynamic registration, authorization code + PKCE

Both start without a token: the first call gets 401 with the protected resource metadata URL (RFC 9728);
the SDK reads it, finds the IdP, gets a token for the resource (RFC 8707) with the scope the challenge
named, lists the tools (Warden shows only those the token may call), calls read_orders, then
delete_customer: 403 insufficient_scope, the SDK gets a token with the missing scope and the call
succeeds. Last, refund_order: Warden wants a step-up (RFC 9470, a fresh MFA login). The agent cannot
log in and stays refused; for alice the client asks the IdP for `acr_values=urn:warden:acr:mfa`, she
enters her one-time code (headlessly: examples/mcp/login.py), and the refund goes through.

Prints each step; with `--json`, one JSON document a test can check (the HTTP exchanges, each token's
scope and each call's outcome).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

sys.path.insert(0, str(Path(__file__).resolve().parent))

import login  # noqa: E402

MFA_ACR = "urn:warden:acr:mfa"
CHALLENGE_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,"]+))')  # auth-param of WWW-Authenticate (RFC 9110)
REDIRECT_URI = "http://127.0.0.1:33418/callback"  # never listened on: login.py stops at the redirect


@dataclass
class Trace:
    """What happened, in order: HTTP exchanges, tokens the SDK stored, tool-call outcomes."""

    http: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    quiet: bool = False

    def say(self, msg: str) -> None:
        if not self.quiet:
            print(msg, flush=True)

    async def on_response(self, response: httpx2.Response) -> None:
        req = response.request
        entry = {"method": req.method, "url": str(req.url).split("?", 1)[0], "status": response.status_code}
        if req.headers.get("mcp-method"):
            entry["mcp_method"] = req.headers["mcp-method"]
        if response.headers.get("www-authenticate"):
            entry["www_authenticate"] = response.headers["www-authenticate"]
        self.http.append(entry)
        challenge = f"  {entry['www_authenticate']}" if "www_authenticate" in entry else ""
        self.say(f"    http {req.method} {entry['url']}{' (' + entry['mcp_method'] + ')' if 'mcp_method' in entry else ''}"
                 f" -> {response.status_code}{challenge}")


class MemoryStorage:
    """The SDK's token storage, in memory; records every token it is given."""

    def __init__(self, trace: Trace):
        self.trace = trace
        self.token: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.token

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.token = tokens
        self.trace.tokens.append({"scope": tokens.scope})
        self.trace.say(f"    token for scope {tokens.scope!r}")

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info
        self.trace.say(f"    registered as client {client_info.client_id} (RFC 7591)")


class HeadlessUser:
    """alice at the IdP: follows the authorization URL the SDK opens, logs in, hands the code back.

    After a step-up challenge (401 `insufficient_user_authentication`, RFC 9470) the next authorization
    asks for the challenge's `acr_values` and `max_age` (the SDK does not: it only knows scopes), and
    alice then enters her one-time code too.
    """

    def __init__(self, user: str, password: str, otp: str, trace: Trace):
        self.user, self.password, self.otp, self.trace = user, password, otp, trace
        self.step_up: dict[str, str] | None = None
        self.result: AuthorizationCodeResult | None = None

    async def on_response(self, response: httpx2.Response) -> None:
        challenge = response.headers.get("www-authenticate", "")
        if response.status_code == 401 and "insufficient_user_authentication" in challenge:
            params = {k: quoted or bare for k, quoted, bare in CHALLENGE_PARAM.findall(challenge)}
            self.step_up = {k: v for k, v in params.items() if k in ("acr_values", "max_age")}

    async def redirect(self, authorization_url: str) -> None:
        url, mfa = authorization_url, False
        if self.step_up:
            parts = urllib.parse.urlsplit(authorization_url)
            query = dict(urllib.parse.parse_qsl(parts.query))
            query.update(self.step_up)
            query["scope"] = " ".join(dict.fromkeys(["openid", *query.get("scope", "").split()]))  # OIDC acr_values
            url, mfa = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query))), True
            self.step_up = None
        self.trace.say(f"    {self.user} logs in at the IdP{' with her one-time code (step-up)' if mfa else ''}")
        back = await anyio.to_thread.run_sync(
            lambda: login.login(url, REDIRECT_URI, self.user, self.password, self.otp if mfa else None))
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(back).query))
        self.result = AuthorizationCodeResult(code=q["code"], state=q.get("state"), iss=q.get("iss"))

    async def callback(self) -> AuthorizationCodeResult:
        assert self.result is not None
        result, self.result = self.result, None
        return result


def summary(result: Any) -> Any:
    return getattr(result, "structured_content", None) or [getattr(c, "text", str(c)) for c in result.content]


async def call(client: Client, trace: Trace, name: str, args: dict[str, Any]) -> dict[str, Any]:
    trace.say(f"  call {name}({json.dumps(args)})")
    try:
        try:
            result = await client.call_tool(name, args)
        except Exception:
            # The SDK answers one challenge per request: a call refused first for its scope (403, new
            # token, retried) and then for a step-up (401) comes back refused. Calling again starts
            # the flow for the 401: the authorization asks for the step-up.
            last = trace.http[-1] if trace.http else {}
            if "insufficient_user_authentication" not in last.get("www_authenticate", ""):
                raise
            trace.say("    (again, for the step-up)")
            result = await client.call_tool(name, args)
    except Exception as e:  # noqa: BLE001 - the refusal is the outcome shown
        last = trace.http[-1] if trace.http else {}
        step = {"tool": name, "ok": False, "status": last.get("status"), "error": f"{type(e).__name__}: {e}"[:300],
                "www_authenticate": last.get("www_authenticate")}
        trace.say(f"  -> refused: HTTP {step['status']} {step['www_authenticate'] or step['error']}")
    else:
        step = {"tool": name, "ok": not result.is_error, "result": summary(result)}
        trace.say(f"  -> {json.dumps(step['result'])[:200]}")
    trace.steps.append(step)
    return step


async def run(mode: str, url: str, issuer: str, user: str = "alice", password: str | None = None,
              otp: str = login.DEMO_OTP, quiet: bool = False, local_address: str | None = None) -> Trace:
    trace = Trace(quiet=quiet)
    storage = MemoryStorage(trace)
    hooks = [trace.on_response]
    if mode == "agent":
        auth: OAuthClientProvider = ClientCredentialsOAuthProvider(
            server_url=url, storage=storage, client_id="demo-agent", client_secret="demo-agent-secret", issuer=issuer)
    else:
        person = HeadlessUser(user, password or login.DEMO_USERS.get(user, ""), otp, trace)
        hooks.append(person.on_response)
        auth = OAuthClientProvider(
            server_url=url,
            client_metadata=OAuthClientMetadata(
                client_name="warden-demo-mcp-client", redirect_uris=[REDIRECT_URI],
                grant_types=["authorization_code", "refresh_token"], response_types=["code"],
                token_endpoint_auth_method="none"),
            storage=storage, redirect_handler=person.redirect, callback_handler=person.callback)
    transport = httpx2.AsyncHTTPTransport(local_address=local_address) if local_address else None
    http = httpx2.AsyncClient(auth=auth, event_hooks={"response": hooks}, timeout=30, transport=transport)
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        trace.say("  list tools")
        tools = await client.list_tools()
        names = [t.name for t in tools.tools]
        trace.steps.append({"list_tools": names})
        trace.say(f"  -> {names} (Warden shows the tools this token may call)")
        await call(client, trace, "read_orders", {"customer": "acme"})
        await call(client, trace, "delete_customer", {"customer": "globex"})
        tools = await client.list_tools()
        names = [t.name for t in tools.tools]
        trace.steps.append({"list_tools": names})
        trace.say(f"  list tools again -> {names}")
        await call(client, trace, "refund_order", {"order_id": "42", "amount_cents": 1000})
    return trace


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="An MCP client through Warden (Python mcp SDK).")
    ap.add_argument("mode", choices=["agent", "user"])
    ap.add_argument("--url", default="http://127.0.0.1:10000/mcp")
    ap.add_argument("--issuer", default="http://127.0.0.1:9000")
    ap.add_argument("--user", default="alice")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of the steps")
    ap.add_argument("--local-address", help="the loopback address to connect from (the demo's own checks)")
    a = ap.parse_args(argv)
    trace = anyio.run(lambda: run(a.mode, a.url, a.issuer, a.user, quiet=a.json, local_address=a.local_address))
    if a.json:
        print(json.dumps({"http": trace.http, "tokens": trace.tokens, "steps": trace.steps}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
