"""Integration fixtures: a real Envoy (--concurrency 2) running the built warden.wasm in front of the
echo upstream, and real signed tokens minted here with PyJWT + cryptography (an implementation
independent of ours).

Envoy starts a few times per session only (each start compiles the Wasm module): once in enforce mode,
once in shadow mode, and briefly for each config it must refuse.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import http.client
import json
import re
import secrets
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "envoy"))
sys.path.insert(0, str(ROOT / "examples" / "upstream"))

import echo  # noqa: E402
import render  # noqa: E402

WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "warden.wasm"
ISSUER = "https://idp.test.local"
PARTNER_ISSUER = "https://partner.test.local"
AUDIENCE = "orders-api"
TIMEOUT = 10  # seconds, every HTTP call


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(public_key: Any, kid: str, alg: str | None) -> dict:
    """The JWK of a public key, as PyJWT writes it, plus kid (and alg when given)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        text = jwt.algorithms.ECAlgorithm.to_jwk(public_key)
    elif isinstance(public_key, rsa.RSAPublicKey):
        text = jwt.algorithms.RSAAlgorithm.to_jwk(public_key)
    else:
        text = jwt.algorithms.OKPAlgorithm.to_jwk(public_key)
    jwk = json.loads(text) if isinstance(text, str) else dict(text)
    jwk["kid"] = kid
    jwk["use"] = "sig"
    if alg:
        jwk["alg"] = alg
    return jwk


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any
    jwk: dict


@dataclass
class Keys:
    """The test session's signing keys (the first three are configured; `rogue` is not)."""

    es256: SigningKey
    rs256: SigningKey
    eddsa: SigningKey
    rogue_es256: SigningKey  # same kid as es256, different key: a bad signature
    stranger: SigningKey  # a kid the gateway does not know
    partner: SigningKey  # the second provider's only key
    minted: list[str] = field(default_factory=list)  # every token handed out, to prove logs never hold one

    def jwks(self) -> dict:
        return {"keys": [self.es256.jwk, self.rs256.jwk, self.eddsa.jwk]}

    def claims(self, **overrides: Any) -> dict:
        now = int(time.time())
        c: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "alice",
            "iat": now,
            "exp": now + 600,
            "scope": "orders:read orders:write",
            "tenant": "acme",
            "client_id": "web-app",
            "jti": uuid.uuid4().hex,
        }
        for k, v in overrides.items():
            if v is None:
                c.pop(k, None)
            else:
                c[k] = v
        return c

    def mint(self, key: SigningKey | None = None, headers: dict | None = None, **claims: Any) -> str:
        key = key or self.es256
        hdr = {"kid": key.kid}
        hdr.update(headers or {})
        token = jwt.encode(self.claims(**claims), key.private, algorithm=key.alg, headers=hdr)
        self.minted.append(token)
        return token

    def raw(self, header: dict, payload: dict, signature: bytes = b"") -> str:
        """A hand-built compact JWS (for what PyJWT refuses to produce)."""
        token = ".".join(
            [
                b64url(json.dumps(header, separators=(",", ":")).encode()),
                b64url(json.dumps(payload, separators=(",", ":")).encode()),
                b64url(signature),
            ]
        )
        self.minted.append(token)
        return token


def _signing_key(kid: str, alg: str, private: Any, bind_alg: bool) -> SigningKey:
    return SigningKey(kid, alg, private, public_jwk(private.public_key(), kid, alg if bind_alg else None))


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(
        es256=_signing_key("es-1", "ES256", ec.generate_private_key(ec.SECP256R1()), bind_alg=True),
        rs256=_signing_key("rs-1", "RS256", rsa.generate_private_key(65537, 2048), bind_alg=False),
        eddsa=_signing_key("ed-1", "EdDSA", ed25519.Ed25519PrivateKey.generate(), bind_alg=True),
        rogue_es256=_signing_key("es-1", "ES256", ec.generate_private_key(ec.SECP256R1()), bind_alg=True),
        stranger=_signing_key("nobody", "ES256", ec.generate_private_key(ec.SECP256R1()), bind_alg=True),
        partner=_signing_key("partner-1", "EdDSA", ed25519.Ed25519PrivateKey.generate(), bind_alg=False),
    )


@dataclass
class ApiKey:
    id: str
    secret: str
    subject: str
    tenant: str
    scopes: list[str]


@pytest.fixture(scope="session")
def api_key() -> ApiKey:
    return ApiKey("ci-bot", "wk_" + secrets.token_urlsafe(24), "svc:ci", "acme", ["orders:read"])


def warden_config(keys: Keys, api_key: ApiKey, mode: str = "enforce") -> dict:
    return {
        "mode": mode,
        "providers": [
            {
                "name": "corp",
                "issuer": ISSUER,
                "audiences": [AUDIENCE, "other-api"],
                "jwks": keys.jwks(),
            },
            {
                # Everything optional set: strict typ, EdDSA only, short lifetimes, other claim names.
                "name": "partner",
                "issuer": PARTNER_ISSUER,
                "audiences": [AUDIENCE],
                "jwks": {"keys": [keys.partner.jwk]},
                "algorithms": ["EdDSA"],
                "clock_skew_s": 5,
                "max_lifetime_s": 900,
                "require_typ": "at+jwt",
                "claims": {"tenant": "org", "scopes": ["permissions"], "client": ["azp"]},
            },
        ],
        "api_keys": {
            "keys": [
                {
                    "id": api_key.id,
                    "sha256": hashlib.sha256(api_key.secret.encode()).hexdigest(),
                    "subject": api_key.subject,
                    "tenant": api_key.tenant,
                    "scopes": api_key.scopes,
                }
            ]
        },
        "routes": [
            {"name": "health", "methods": ["GET"], "path": "/health", "anonymous": True},
            {"name": "read-order", "methods": ["GET"], "path": "/orders/{id}", "scopes": ["orders:read"]},
            {"name": "create-order", "methods": ["POST"], "path": "/orders", "scopes": ["orders:write"]},
            {"name": "admin", "prefix": "/admin", "scopes": ["admin"]},
            {
                "name": "tenant-item",
                "methods": ["GET"],
                "path": "/t/{tenant}/x/{id}",
                "scopes": ["orders:read"],
            },
        ],
        # These suites also send paths no route lists and expect "any valid credential": the legacy
        # behaviour, now an explicit choice (the default denies unmatched requests: test_hardening.py).
        "routing": {"unmatched": "authenticate"},
        "audit": {"enabled": True},
    }


@dataclass
class Upstream:
    port: int


@pytest.fixture(scope="session")
def upstream() -> Upstream:
    server = echo.make_server("127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, name="echo-upstream", daemon=True)
    thread.start()
    yield Upstream(server.server_address[1])
    server.shutdown()
    server.server_close()


LOG_LINE = re.compile(r"^\[[^\]]+\]\[(?P<thread>\d+)\]\[(?P<level>\w+)\]\[wasm\].*?warden: (?P<json>\{.*\})\s*$")


@dataclass
class Gateway:
    """A running Envoy with Warden, and what it logged."""

    envoy: render.Envoy
    port: int

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", TIMEOUT)
        return requests.get(self.url(path), **kw)

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", TIMEOUT)
        return requests.request(method, self.url(path), **kw)

    def log(self) -> str:
        return self.envoy.read_log()

    def audit_records(self) -> list[tuple[str, dict]]:
        """(worker thread id, record) for every audit line so far."""
        out = []
        for line in self.log().splitlines():
            m = LOG_LINE.match(line)
            if m and m.group("level") == "info":
                try:
                    out.append((m.group("thread"), json.loads(m.group("json"))))
                except json.JSONDecodeError:
                    continue
        return out

    def wait_audit(self, pred: Callable[[dict], bool], timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, rec in self.audit_records():
                if pred(rec):
                    return rec
            time.sleep(0.05)
        raise AssertionError("no matching audit record; log tail:\n" + self.log()[-3000:])


class EnvoyFactory:
    def __init__(self, tmp: Path, upstream: Upstream):
        self.tmp = tmp
        self.upstream = upstream
        self.started: list[render.Envoy] = []
        self.count = 0

    def _spawn(
        self, config: dict | str, name: str, transform: Callable[[str], str] | None = None, **render_kw: Any
    ) -> render.Envoy:
        if not WASM.exists():
            pytest.fail(f"{WASM} missing: run `make build` first")
        self.count += 1
        base = self.tmp / f"{self.count:02d}-{name}"
        bootstrap = base.with_suffix(".yaml")
        text = render.render(
            config, wasm=WASM, listen_port=0, admin_port=0, upstream_port=self.upstream.port, **render_kw
        )
        bootstrap.write_text(transform(text) if transform else text)
        envoy = render.Envoy(bootstrap=bootstrap, log_path=base.with_suffix(".log"), concurrency=2)
        self.started.append(envoy)
        return envoy.start()

    def gateway(
        self, config: dict | str, name: str, transform: Callable[[str], str] | None = None, **render_kw: Any
    ) -> Gateway:
        """A ready Envoy; `transform` may edit the rendered bootstrap (extra clusters, a TLS listener);
        `render_kw` goes to `render.render` (e.g. `record_log`; `geo="edge"` keeps the client's
        x-geo-country: the test client plays the edge that owns it)."""
        envoy = self._spawn(config, name, transform, **render_kw).wait_ready()
        return Gateway(envoy, envoy.listener_port())

    def refused(self, config: dict | str, name: str) -> tuple[int, str]:
        """Starts Envoy with a config it must refuse: (exit code, log)."""
        envoy = self._spawn(config, name)
        code = envoy.wait_exit(timeout=60)
        return code, envoy.read_log()

    def stop_all(self) -> None:
        for e in self.started:
            e.stop()


@pytest.fixture(scope="session")
def envoys(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> EnvoyFactory:
    factory = EnvoyFactory(tmp_path_factory.mktemp("envoy"), upstream)
    atexit.register(factory.stop_all)  # even if the session is torn down abnormally
    yield factory
    factory.stop_all()


@pytest.fixture(scope="session")
def gateway(envoys: EnvoyFactory, keys: Keys, api_key: ApiKey) -> Gateway:
    return envoys.gateway(warden_config(keys, api_key, "enforce"), "enforce")


@pytest.fixture(scope="session")
def shadow_gateway(envoys: EnvoyFactory, keys: Keys, api_key: ApiKey) -> Gateway:
    return envoys.gateway(warden_config(keys, api_key, "shadow"), "shadow")


def bearer(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


def seen_by_upstream(resp: requests.Response) -> dict:
    """The echo upstream's view of the request (its JSON body)."""
    assert resp.status_code == 200, (resp.status_code, resp.headers, resp.text)
    doc = resp.json()
    assert "headers" in doc, f"not an upstream echo: {resp.text}"
    return doc


def raw_request(
    port: int, method: str, path: str, headers: list[tuple[str, str | bytes]], source: str | None = None
) -> tuple[int, dict[str, str], str]:
    """A request sent exactly as given (no client-side path clean-up, repeated headers kept), from the
    loopback address `source` when given (127.0.0.0/8 is all loopback)."""
    bind = (source, 0) if source else None
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT, source_address=bind)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace")
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "run_last: run after every other test (checks the whole session's logs)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("run_last") is not None)  # stable: keeps file order
