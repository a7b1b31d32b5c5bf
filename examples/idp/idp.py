"""Starts and drives the demo IdP (examples/idp/server.js): used by `make run` and tests/test_idp*.py.

Standard library only.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVER = HERE / "server.js"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_RESOURCE = "urn:warden:orders-api"
OPAQUE_RESOURCE = "urn:warden:orders-api:opaque"
CIBA = "urn:openid:params:grant-type:ciba"


class IdpError(RuntimeError):
    pass


def _basic(client_id: str, secret: str) -> str:
    pair = f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


@dataclass
class DemoIdP:
    """One demo IdP process on 127.0.0.1:port (issuer http://127.0.0.1:port)."""

    port: int
    log_path: Path
    mcp_resources: list[str] = field(default_factory=list)  # MCP servers' URLs it issues tokens for
    proc: subprocess.Popen | None = None
    node: str = field(default_factory=lambda: shutil.which("node") or "node")

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> "DemoIdP":
        if not (HERE / "node_modules" / "oidc-provider").exists():
            raise IdpError("examples/idp/node_modules missing: run `make setup` (npm ci --prefix examples/idp)")
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                [self.node, str(SERVER), "--port", str(self.port),
                 *(arg for url in self.mcp_resources for arg in ("--mcp-resource", url))],
                cwd=HERE,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise IdpError(f"IdP exited with {self.proc.returncode}:\n{self.read_log()[-2000:]}")
            try:
                self.discovery()
                return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise IdpError(f"IdP not ready in {timeout}s:\n{self.read_log()[-2000:]}")

    def stop(self) -> None:
        p = self.proc
        if p is None or p.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                return
            try:
                p.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # ---- HTTP ----

    def _call(self, method: str, path: str, form: dict | None = None, auth: tuple[str, str] | None = None,
              body: dict | None = None) -> tuple[int, dict]:
        headers = {"accept": "application/json"}
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["content-type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        elif method == "POST":
            data = b""
        if auth:
            headers["authorization"] = _basic(*auth)
        req = urllib.request.Request(self.issuer + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def discovery(self) -> dict:
        with urllib.request.urlopen(self.issuer + "/.well-known/openid-configuration", timeout=2) as r:
            return json.load(r)

    def token(self, client: str = "demo-agent", secret: str = "demo-agent-secret", scope: str = "orders:read",
              resource: str = JWT_RESOURCE) -> str:
        status, doc = self._call("POST", "/token", form={
            "grant_type": "client_credentials", "scope": scope, "resource": resource}, auth=(client, secret))
        if status != 200:
            raise IdpError(f"token: {status} {doc}")
        return doc["access_token"]

    def user_token(self, sub: str = "alice", scope: str = "orders:read orders:write",
                   acr: str = "urn:warden:acr:pwd", auth_age_s: int = 0, amr: list[str] | None = None) -> str:
        """A user's token as a login would give it; `acr` `urn:warden:acr:mfa` stands for a step-up,
        `auth_age_s` makes the login that long ago, `amr` says how the user authenticated."""
        body: dict = {"sub": sub, "scope": scope, "acr": acr, "auth_age_s": auth_age_s}
        if amr is not None:
            body["amr"] = amr
        status, doc = self._call("POST", "/admin/user-token", body=body)
        if status != 200:
            raise IdpError(f"user-token: {status} {doc}")
        return doc["access_token"]

    def exchange(self, subject_token: str, scope: str = "orders:read", client: str = "demo-agent",
                 secret: str = "demo-agent-secret", resource: str | None = None) -> str:
        form = {"grant_type": TOKEN_EXCHANGE, "subject_token": subject_token,
                "subject_token_type": ACCESS_TOKEN_TYPE, "scope": scope}
        if resource:
            form["resource"] = resource
        status, doc = self._call("POST", "/token", form=form, auth=(client, secret))
        if status != 200:
            raise IdpError(f"token exchange: {status} {doc}")
        return doc["access_token"]

    # ---- OpenID CIBA: the agent asks, the user answers on their device (the loopback admin API) ----

    def ciba_request(self, user: str, binding_message: str, scope: str = "openid orders:write",
                     resource: str = JWT_RESOURCE, client: str = "demo-agent",
                     secret: str = "demo-agent-secret") -> str:
        """The agent's backchannel authentication request: the auth_req_id to poll with."""
        status, doc = self._call("POST", "/backchannel", form={
            "login_hint": user, "binding_message": binding_message, "scope": scope, "resource": resource},
            auth=(client, secret))
        if status != 200:
            raise IdpError(f"backchannel authentication: {status} {doc}")
        return doc["auth_req_id"]

    def ciba_poll(self, auth_req_id: str, client: str = "demo-agent",
                  secret: str = "demo-agent-secret") -> tuple[int, dict]:
        """One poll of the token endpoint: (200, tokens), or (400, {"error": "authorization_pending"
        | "access_denied" | ...})."""
        return self._call("POST", "/token", form={"grant_type": CIBA, "auth_req_id": auth_req_id},
                          auth=(client, secret))

    def ciba_pending(self, user: str) -> list[dict]:
        """What waits on `user`'s device: [{"id", "client", "binding_message", "scope", ...}]."""
        status, doc = self._call("GET", "/admin/ciba?" + urllib.parse.urlencode({"user": user}))
        if status != 200:
            raise IdpError(f"ciba pending: {status} {doc}")
        return doc["pending"]

    def ciba_answer(self, request_id: str, approve: bool) -> None:
        """The user's answer on their device."""
        status, doc = self._call("POST", f"/admin/ciba/{request_id}/{'approve' if approve else 'deny'}")
        if status != 200:
            raise IdpError(f"ciba answer: {status} {doc}")

    def revoke(self, token: str, client: str = "demo-agent", secret: str = "demo-agent-secret") -> None:
        status, doc = self._call("POST", "/token/revocation", form={"token": token}, auth=(client, secret))
        if status != 200:
            raise IdpError(f"revoke: {status} {doc}")

    def rotate(self, drop_old: bool = False) -> str:
        status, doc = self._call("POST", "/admin/rotate" + ("?drop_old=1" if drop_old else ""))
        if status != 200:
            raise IdpError(f"rotate: {status} {doc}")
        return doc["kid"]

    def stats(self) -> dict:
        status, doc = self._call("GET", "/admin/stats")
        if status != 200:
            raise IdpError(f"stats: {status} {doc}")
        return doc
