"""A real IdP end to end: the demo IdP (node oidc-provider, examples/idp/) and real Envoy (--concurrency 2)
with Warden fetching the IdP's JWKS (directly or through OIDC discovery) and introspecting opaque tokens.

Each test that stops or rotates an IdP gets its own IdP process, so the tests do not disturb each other.
"""

from __future__ import annotations

import atexit
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import requests

from conftest import ROOT, TIMEOUT, WASM, Gateway, bearer, seen_by_upstream

sys.path.insert(0, str(ROOT / "examples" / "idp"))

import idp as demo_idp  # noqa: E402
import render  # noqa: E402

AUDIENCE = "orders-api"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """IdPs and Envoys started by these tests; all stopped at the end."""

    def __init__(self, tmp: Path, upstream_port: int):
        self.tmp = tmp
        self.upstream_port = upstream_port
        self.idps: list[demo_idp.DemoIdP] = []
        self.envoys: list[render.Envoy] = []

    def idp(self, name: str) -> demo_idp.DemoIdP:
        i = demo_idp.DemoIdP(port=free_port(), log_path=self.tmp / f"idp-{name}.log")
        self.idps.append(i)
        return i.start()

    def gateway(self, config: dict, name: str, idp: demo_idp.DemoIdP) -> Gateway:
        if not WASM.exists():
            pytest.fail(f"{WASM} missing: run `make build` first")
        base = self.tmp / f"envoy-{name}-{len(self.envoys)}"
        bootstrap = base.with_suffix(".yaml")
        bootstrap.write_text(render.render(config, wasm=WASM, listen_port=0, admin_port=0,
                                           upstream_port=self.upstream_port, idp_port=idp.port))
        envoy = render.Envoy(bootstrap=bootstrap, log_path=base.with_suffix(".log"), concurrency=2)
        self.envoys.append(envoy)
        envoy.start().wait_ready()
        return Gateway(envoy, envoy.listener_port())

    def stop(self) -> None:
        for e in self.envoys:
            e.stop()
        for i in self.idps:
            i.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, upstream) -> Stack:
    s = Stack(tmp_path_factory.mktemp("idp"), upstream.port)
    atexit.register(s.stop)
    yield s
    s.stop()


def provider(idp: demo_idp.DemoIdP, **extra: Any) -> dict:
    p: dict[str, Any] = {
        "name": "demo-idp",
        "issuer": idp.issuer,
        "audiences": [AUDIENCE],
        "require_typ": "at+jwt",
        "algorithms": ["ES256"],
        "jwks_uri": {"url": f"{idp.issuer}/jwks", "envoy_cluster": "idp", "timeout_ms": 1000},
        # The IdP's introspection answers for client-credentials tokens carry `client_id`, no `sub`.
        "claims": {"subject": ["sub", "client_id"]},
    }
    p.update(extra)
    return p


def config(*providers: dict) -> dict:
    return {
        "providers": list(providers),
        "routes": [
            {"name": "read-order", "methods": ["GET"], "path": "/orders/{id}", "scopes": ["orders:read"]},
        ],
        # The IdP's token exchange names demo-agent in `act`; a delegated token needs an allowed actor.
        "delegation": {"actors": [{"sub": "demo-agent", "subjects": ["*"], "scopes": ["orders:read"]}]},
    }


def eventually(check: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout}s")


def status(gw: Gateway, token: str) -> int:
    return gw.get("/orders/1", headers=bearer(token)).status_code


def jwks_metric(gw: Gateway, which: str) -> int:
    return sum(v for k, v in gw.envoy.stats().items() if k.endswith(f"warden_jwks_fetch_{which}"))


@pytest.fixture(scope="module")
def shared_idp(stack: Stack) -> demo_idp.DemoIdP:
    return stack.idp("shared")


@pytest.fixture(scope="module")
def remote_gateway(stack: Stack, shared_idp: demo_idp.DemoIdP) -> Gateway:
    introspection = {
        "endpoint": {"url": f"{shared_idp.issuer}/token/introspection", "envoy_cluster": "idp"},
        "client_id": "warden",
        "client_secret": "warden-introspection-secret",
        "inactive_cache_s": 30,
    }
    gw = stack.gateway(config(provider(shared_idp, introspection=introspection)), "remote", shared_idp)
    eventually(lambda: jwks_metric(gw, "success") >= 1, what="first JWKS fetch")
    return gw


def test_idp_issued_tokens_are_accepted(remote_gateway: Gateway, shared_idp: demo_idp.DemoIdP):
    token = shared_idp.token(scope="orders:read")
    doc = seen_by_upstream(remote_gateway.get("/orders/1", headers=bearer(token)))
    h = doc["headers"]
    assert h["x-auth-subject"] == "demo-agent"
    assert h["x-auth-tenant"] == "acme"
    assert h["x-auth-scopes"] == "orders:read"
    # A token for another audience (no resource: still orders-api here), a tampered one, none at all.
    assert status(remote_gateway, token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")) == 401
    assert remote_gateway.get("/orders/1").status_code == 401


def test_delegated_token_names_the_user(remote_gateway: Gateway, shared_idp: demo_idp.DemoIdP):
    delegated = shared_idp.exchange(shared_idp.user_token("alice"), scope="orders:read")
    h = seen_by_upstream(remote_gateway.get("/orders/1", headers=bearer(delegated)))["headers"]
    assert h["x-auth-subject"] == "alice"
    assert h["x-auth-client"] == "demo-agent"


def test_opaque_token_accepted_by_introspection_and_revoked_one_refused(
    remote_gateway: Gateway, shared_idp: demo_idp.DemoIdP
):
    before = shared_idp.stats()["introspection"]
    opaque = shared_idp.token(scope="orders:read", resource=demo_idp.OPAQUE_RESOURCE)
    assert opaque.count(".") == 0, "the IdP should issue an opaque token here"
    h = seen_by_upstream(remote_gateway.get("/orders/1", headers=bearer(opaque)))["headers"]
    assert h["x-auth-subject"] == "demo-agent"
    assert h["x-auth-tenant"] == "acme"
    assert h["x-auth-scopes"] == "orders:read"
    assert shared_idp.stats()["introspection"] > before

    revoked = shared_idp.token(scope="orders:read", resource=demo_idp.OPAQUE_RESOURCE)
    shared_idp.revoke(revoked)
    r = remote_gateway.get("/orders/1", headers=bearer(revoked))
    assert r.status_code == 401, r.text
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    rec = remote_gateway.wait_audit(lambda a: a.get("status") == 401 and a.get("reason") == "inactive")
    assert rec["decision"] == "deny"
    # Made-up opaque tokens are refused too.
    assert status(remote_gateway, "not-a-real-token-0123456789") == 401


def test_discovery_finds_the_jwks(stack: Stack, shared_idp: demo_idp.DemoIdP):
    p = provider(shared_idp, discovery=True, envoy_cluster="idp")
    del p["jwks_uri"]
    gw = stack.gateway(config(p), "discovery", shared_idp)
    token = shared_idp.token()
    eventually(lambda: status(gw, token) == 200, what="token accepted via discovery")
    assert jwks_metric(gw, "success") >= 1


def test_discovery_refuses_an_issuer_mismatch(stack: Stack, shared_idp: demo_idp.DemoIdP):
    # The configured issuer has a trailing slash; the IdP's discovery document says it without one.
    p = provider(shared_idp, discovery=True, envoy_cluster="idp", issuer=shared_idp.issuer + "/")
    del p["jwks_uri"]
    gw = stack.gateway(config(p), "discovery-mismatch", shared_idp)
    eventually(lambda: jwks_metric(gw, "failure") >= 1, what="a failed discovery")
    assert jwks_metric(gw, "success") == 0
    assert f'discovery document names issuer "{shared_idp.issuer}"' in gw.log()


def test_key_rotation_is_picked_up_without_restart(stack: Stack):
    idp = stack.idp("rotation")
    gw = stack.gateway(config(provider(idp, jwks_refresh_s=300, jwks_min_refetch_s=1)), "rotation", idp)
    old, old_unseen = idp.token(), idp.token()
    eventually(lambda: status(gw, old) == 200, what="first key accepted")
    pid = gw.envoy.proc.pid
    time.sleep(1.1)  # refetches are rate-limited: at most one per jwks_min_refetch_s (1 s here)
    idp.rotate(drop_old=True)
    new = idp.token()
    # The new kid is unknown: the request waits for the rate-limited refetch (not the 300 s refresh).
    r = gw.get("/orders/1", headers=bearer(new))
    assert r.status_code == 200, r.text
    assert seen_by_upstream(r)["headers"]["x-auth-subject"] == "demo-agent"
    assert gw.envoy.proc.pid == pid and gw.envoy.proc.poll() is None
    # The old key is gone from the IdP's set: once every worker installed the new set (their next
    # tick, within 1 s), a token signed with the old key and never seen is refused.
    time.sleep(1.5)
    r = gw.get("/orders/1", headers=bearer(old_unseen))
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    assert jwks_metric(gw, "success") >= 2


def test_scheduled_refresh_installs_a_rotated_set_after_keys_are_installed(stack: Stack):
    # The tick timer keeps running once keys are installed (one period per root context, set once:
    # Kong traps a second one): the scheduled refresh alone, with no request naming the new kid,
    # installs a rotated set in every worker, and a token signed with the dropped key is refused.
    idp = stack.idp("tick-refresh")
    refresh = 2
    gw = stack.gateway(config(provider(idp, jwks_refresh_s=refresh, jwks_min_refetch_s=60)), "tick-refresh", idp)
    old, old_unseen = idp.token(), idp.token()
    eventually(lambda: status(gw, old) == 200, what="first key accepted")
    fetched = jwks_metric(gw, "success")
    idp.rotate(drop_old=True)
    eventually(lambda: jwks_metric(gw, "success") > fetched, what="a scheduled refresh after the rotation")
    # Every worker picks the new set up on its next tick (the fetcher runs once a second).
    time.sleep(1.5)
    for _ in range(4):
        r = gw.get("/orders/1", headers=bearer(old_unseen))
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"], r.text
        assert status(gw, idp.token()) == 200
    assert "tick_period" not in gw.log()


def test_idp_down_keeps_last_good_keys_and_fresh_gateway_answers_fail_mode(stack: Stack):
    idp = stack.idp("down")
    introspection = {
        "endpoint": {"url": f"{idp.issuer}/token/introspection", "envoy_cluster": "idp", "timeout_ms": 500},
        "client_id": "warden",
        "client_secret": "warden-introspection-secret",
    }
    p = provider(idp, jwks_refresh_s=2, jwks_min_refetch_s=1, unavailable={"status": 503, "retry_after_s": 7},
                 introspection=introspection)
    gw = stack.gateway(config(p), "down", idp)
    first, unseen = idp.token(), idp.token()
    opaque_unseen = idp.token(resource=demo_idp.OPAQUE_RESOURCE)
    eventually(lambda: status(gw, first) == 200, what="keys fetched")
    idp.stop()
    # Refreshes fail now (counted), and the last good keys still verify a token never seen before.
    eventually(lambda: jwks_metric(gw, "failure") >= 1, what="a failed refresh")
    time.sleep(2.5)
    h = seen_by_upstream(gw.get("/orders/1", headers=bearer(unseen)))["headers"]
    assert h["x-auth-subject"] == "demo-agent"
    assert "keeping the last good keys" in gw.log()
    # Introspection cannot be reached: the configured answer, not a 401.
    r = gw.get("/orders/1", headers=bearer(opaque_unseen))
    assert r.status_code == 503 and r.headers["retry-after"] == "7", r.text

    # A fresh gateway has no keys: the configured answer (503, Retry-After: 7) ...
    fresh = stack.gateway(config(p), "down-fresh", idp)
    r = fresh.get("/orders/1", headers=bearer(unseen))
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "7"
    assert r.json()["error"] == "temporarily_unavailable"
    assert "www-authenticate" not in r.headers

    # ... or, if the operator chose it, fail open: forwarded without identity.
    p_open = dict(p, fail_open=True)
    del p_open["unavailable"]
    open_gw = stack.gateway(config(p_open), "down-fail-open", idp)
    doc = seen_by_upstream(open_gw.get("/orders/1", headers=bearer(unseen)))
    assert "x-auth-subject" not in doc["headers"]
    open_gw.wait_audit(lambda a: a.get("reason") == "idp_unavailable_fail_open")


def test_one_jwks_fetch_per_refresh_for_all_workers(stack: Stack):
    idp = stack.idp("count")
    refresh = 2
    gw = stack.gateway(config(provider(idp, jwks_refresh_s=refresh)), "count", idp)
    token = idp.token()
    eventually(lambda: status(gw, token) == 200, what="keys fetched")
    start_count = idp.stats()["jwks"]
    window = 10.0
    t0 = time.monotonic()
    # Traffic on both workers meanwhile.
    while time.monotonic() - t0 < window:
        assert status(gw, token) == 200
        time.sleep(0.05)
    fetched = idp.stats()["jwks"] - start_count
    refreshes = window / refresh
    # One fetch per refresh for the whole gateway (2 workers + main thread each have a timer);
    # without the lease it would be about 3 per refresh.
    print(f"JWKS fetches in {window:.0f} s with refresh {refresh} s and 2 workers: {fetched}")
    assert 2 <= fetched <= refreshes + 1, (fetched, refreshes)
    assert jwks_metric(gw, "success") >= fetched


def test_config_errors_name_the_remote_fields(stack: Stack, shared_idp: demo_idp.DemoIdP, envoys):
    both = provider(shared_idp, jwks={"keys": []})
    code, log = envoys.refused(config(both), "jwks-and-uri")
    assert code != 0 and "providers[0].jwks_uri" in log
    no_cluster = provider(shared_idp)
    del no_cluster["jwks_uri"]["envoy_cluster"]
    code, log = envoys.refused(config(no_cluster), "no-cluster")
    assert code != 0 and "providers[0].jwks_uri.envoy_cluster" in log
