"""Risk scoring through real Envoy (2 workers): behavioural history built by real requests, the RFC 9470
step-up challenge, a stepped-up token, per-route shadow mode, state shared by both workers, and
client-sent risk headers stripped.

No test depends on a particular model's scores: the risky request is one any sensible model scores high
(a stolen token replayed seconds later from another continent, with a new client, on a critical write
route) after a history any sensible model finds ordinary.
"""

from __future__ import annotations

import time
import urllib.request
import uuid

import pytest
from conftest import TIMEOUT, bearer, raw_request, seen_by_upstream, warden_config

HOME = {"x-geo-country": "NO", "user-agent": "bank-app/4.2"}
AWAY = {"x-geo-country": "BR", "user-agent": "curl/8.5"}
HISTORY = 30


def risk_config(keys, api_key) -> dict:
    c = warden_config(keys, api_key, "enforce")
    c["routes"] += [
        {"name": "transfer", "methods": ["POST"], "path": "/transfer", "sensitivity": "critical"},
        {"name": "keys", "methods": ["POST"], "path": "/keys", "step_up": True},
        {
            "name": "shadow-transfer",
            "methods": ["POST"],
            "path": "/shadow/transfer",
            "sensitivity": "critical",
            "mode": "shadow",
        },
    ]
    # The test client plays the edge that owns x-geo-country (the gateway keeps its value: geo="edge").
    # A generous time budget: on a busy machine (other builds on 2 cores) the default 2 ms trips the
    # breaker (503) now and then, and these tests are about the score, not the budget.
    c["risk"] = {"tag_at": 30, "step_up_at": 70, "acr_values": ["mfa"], "max_age_s": 300, "budget_us": 200000,
                 "geo_header_from_edge": True}
    return c


@pytest.fixture(scope="module")
def risk_gateway(envoys, keys, api_key):
    return envoys.gateway(risk_config(keys, api_key), "risk", geo="edge")


def history(gw, token: str, n: int = HISTORY) -> None:
    """Ordinary reads from home, each on its own connection (so both workers serve some)."""
    for i in range(n):
        r = gw.get(f"/orders/{i % 3}", headers={**bearer(token), **HOME})
        assert r.status_code == 200, (r.status_code, r.text)


def fresh_subject() -> str:
    return "user-" + uuid.uuid4().hex[:12]


def challenge_of(r) -> str:
    return r.headers.get("www-authenticate", "")


def test_risky_request_gets_the_step_up_challenge(risk_gateway, keys):
    sub = fresh_subject()
    token = keys.mint(sub=sub, exp=int(time.time()) + 3600)
    history(risk_gateway, token)
    r = risk_gateway.request("POST", "/transfer", headers={**bearer(token), **AWAY})
    assert r.status_code == 401, (r.status_code, r.text)
    ch = challenge_of(r)
    assert ch.startswith('Bearer error="insufficient_user_authentication"'), ch
    assert 'acr_values="mfa"' in ch and "max_age=300" in ch, ch
    body = r.json()
    assert body["error"] == "insufficient_user_authentication"
    rec = risk_gateway.wait_audit(lambda rec: rec["request_id"] == body["request_id"])
    assert rec["decision"] == "step_up" and rec["status"] == 401 and rec["mode"] == "enforce"
    assert rec["subject"] == sub
    assert 70 <= rec["risk_score"] <= 100
    factors = rec["factors"]
    assert 1 <= len(factors) <= 3
    contributions = [f["contribution"] for f in factors]
    assert all(c > 0 for c in contributions) and contributions == sorted(contributions, reverse=True)
    assert token not in risk_gateway.log()


def test_stepped_up_token_passes_with_its_score(risk_gateway, keys):
    sub = fresh_subject()
    history(risk_gateway, keys.mint(sub=sub))
    now = int(time.time())
    stepped = keys.mint(sub=sub, acr="mfa", auth_time=now - 5)
    seen = seen_by_upstream(risk_gateway.request("POST", "/transfer", headers={**bearer(stepped), **AWAY}))
    h = seen["headers"]
    assert h["x-auth-subject"] == sub
    assert 0 <= int(h["x-auth-risk-score"]) <= 100
    rec = risk_gateway.wait_audit(lambda rec: rec["request_id"] == h["x-request-id"])
    assert rec["stepped_up"] is True and rec["decision"] in ("allow", "tag")
    # An old step-up is not one.
    stale = keys.mint(sub=sub, acr="mfa", auth_time=now - 3600)
    r = risk_gateway.request("POST", "/keys", headers={**bearer(stale), **HOME})
    assert r.status_code == 401 and "insufficient_user_authentication" in challenge_of(r)


def test_a_route_demands_step_up_whatever_the_score(risk_gateway, keys):
    token = keys.mint(sub=fresh_subject())
    r = risk_gateway.request("POST", "/keys", headers={**bearer(token), **HOME})
    assert r.status_code == 401 and "insufficient_user_authentication" in challenge_of(r)
    up = keys.mint(sub=fresh_subject(), acr="mfa", auth_time=int(time.time()))
    seen_by_upstream(risk_gateway.request("POST", "/keys", headers={**bearer(up), **HOME}))


def test_shadow_route_forwards_with_the_score_and_logs_the_would_be_decision(risk_gateway, keys):
    sub = fresh_subject()
    token = keys.mint(sub=sub)
    history(risk_gateway, token)
    seen = seen_by_upstream(risk_gateway.request("POST", "/shadow/transfer", headers={**bearer(token), **AWAY}))
    h = seen["headers"]
    score = int(h["x-auth-risk-score"])
    assert score >= 70
    factors = h["x-auth-risk-factors"].split(",")
    assert 1 <= len(factors) <= 3 and all(f and f.islower() for f in factors)
    rec = risk_gateway.wait_audit(lambda rec: rec["request_id"] == h["x-request-id"])
    assert (rec["decision"], rec["status"], rec["mode"]) == ("step_up", 401, "shadow")
    assert rec["risk_score"] == score
    assert [f["name"] for f in rec["factors"]] == factors


def test_state_is_shared_by_both_workers(risk_gateway, keys):
    """History built on both workers; every risky request is challenged whichever worker serves it.

    Were the state per worker, a worker that had not seen the history would score the thief as a
    first-seen identity with nothing unusual to compare with, and forward him.
    """
    sub = fresh_subject()
    token = keys.mint(sub=sub)
    history(risk_gateway, token, 40)
    ids = []
    for _ in range(20):
        r = risk_gateway.request("POST", "/transfer", headers={**bearer(token), **AWAY})
        assert r.status_code == 401, (r.status_code, r.text)
        ids.append(r.json()["request_id"])
    records = [(t, rec) for t, rec in risk_gateway.audit_records() if rec.get("subject") == sub]
    history_threads = {t for t, rec in records if rec["route"] == "read-order"}
    risky_threads = {t for t, rec in records if rec["request_id"] in ids}
    assert len(history_threads) == 2, "history not spread over both workers"
    assert len(risky_threads) == 2, "risky requests not spread over both workers"
    assert all(rec["decision"] == "step_up" for t, rec in records if rec["request_id"] in ids)


def test_client_sent_risk_headers_are_stripped(risk_gateway, keys):
    token = keys.mint(sub=fresh_subject())
    seen = seen_by_upstream(
        risk_gateway.get(
            "/orders/1",
            headers={**bearer(token), **HOME, "X-Auth-Risk-Score": "spoofed", "x-auth-risk-factors": "none"},
        )
    )
    h = seen["headers"]
    assert h["x-auth-risk-score"].isdigit(), h["x-auth-risk-score"]
    assert h.get("x-auth-risk-factors") != "none"


def test_risk_counters_are_exported(risk_gateway, keys):
    token = keys.mint(sub=fresh_subject())
    assert risk_gateway.request("POST", "/keys", headers={**bearer(token), **HOME}).status_code == 401
    # The counters only (`warden_risk_score` is a histogram). Counters are published on the worker's
    # tick (every 250 ms): read until the step-up shows, for a few ticks at most.
    deadline = time.monotonic() + 3
    while True:
        with urllib.request.urlopen(f"http://{risk_gateway.envoy.admin}/stats?filter=warden_risk_.*_total$",
                                    timeout=TIMEOUT) as r:
            stats = r.read().decode()
        counts = {}
        for line in stats.splitlines():
            name, _, value = line.partition(": ")
            counts[name.rsplit(".", 1)[-1]] = int(value)
        if counts.get("warden_risk_step_up_total", 0) >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert counts.get("warden_risk_step_up_total", 0) >= 1, stats
    assert "warden_risk_breaker_error_total" in counts and "warden_risk_breaker_over_budget_total" in counts


def test_every_vm_loads_the_model_and_times_it(risk_gateway):
    """The model is loaded at config load in each VM (main thread and both workers) and its inference
    time there is logged: the number model/BENCHMARKS.md quotes for inference inside Envoy."""
    import re

    deadline = time.monotonic() + TIMEOUT
    while True:
        lines = re.findall(r"risk model loaded \((\d+) features\); inference (\d+) ns per call in this VM "
                           r"\(mean of 1000, (\d+) scored\)", risk_gateway.log())
        if len(lines) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(lines) >= 3, risk_gateway.log()[-2000:]
    for features, _ns, scored in lines:
        assert int(features) > 0
        assert int(scored) == 1000


def test_module_stays_within_its_size_budget():
    """Issue 3's budget for the filter module (Envoy compiles all of it eagerly at each config load);
    the compile time itself is measured by `make footprint`, not here."""
    from conftest import WASM

    assert WASM.stat().st_size < 4_000_000, WASM.stat().st_size


def test_a_clients_x_forwarded_for_does_not_choose_its_source_address(risk_gateway, keys):
    """The per-source signals (failures from an address, risk.deny_cidrs) use the TCP peer: a client
    sending bad tokens with `X-Forwarded-For: <victim>` cannot make the victim's address look like a
    credential-stuffing source (nor hide its own). Envoy's default (use_remote_address: false) would
    take the last XFF entry as `source.address`; envoy/envoy.yaml.tmpl runs Envoy at the edge."""
    attacker, victim = "127.0.0.3", "127.0.0.4"
    port = risk_gateway.port
    # Failures only, nothing let through: a stuffing source (a source that mostly succeeds, a NAT, is
    # excused one failure per 10 successes).
    for i in range(30):
        status, _, _ = raw_request(port, "GET", "/orders/1", [
            ("authorization", f"Bearer stuffed.{i}.x"), ("x-forwarded-for", victim)], source=attacker)
        assert status == 401

    def from_(source: str) -> tuple[int, float]:
        sub = fresh_subject()
        status, _, body = raw_request(port, "GET", "/orders/1", [
            ("authorization", f"Bearer {keys.mint(sub=sub)}")], source=source)
        rec = risk_gateway.wait_audit(lambda r: r.get("subject") == sub)
        assert status == rec["status"], body
        # The feature, not the factors: what the model makes of it is the model card's business.
        return rec["risk_score"], rec["risk_features"]["source_failures"]

    # The attacker's own address carries its failures (so the check below is not vacuous) ...
    attacked, failures = from_(attacker)
    assert failures > 2.0, (attacked, failures)
    # ... and the address it named in X-Forwarded-For carries none: a new user there scores no higher.
    score, failures = from_(victim)
    assert score <= attacked and failures == 0.0, (score, failures)


def test_refusals_from_an_address_that_mostly_succeeds_do_not_step_up_the_next_user(risk_gateway, keys):
    """The demo's case: behind one address (an office NAT; here 127.0.0.6), users get through, then one
    sends an expired token, one no token and one calls a route outside its scopes. A colleague's next
    valid request is not challenged, and its `source_failures` feature is 0: the address mostly
    succeeds. The same three refusals from an address that never succeeded do count (the check is not
    vacuous)."""
    port = risk_gateway.port
    office, elsewhere = "127.0.0.6", "127.0.0.7"

    def send(source: str, token: str | None, path: str = "/orders/1") -> int:
        headers = list(HOME.items())
        if token:
            headers.append(("authorization", f"Bearer {token}"))
        status, _, _ = raw_request(port, "GET", path, headers, source=source)
        return status

    staff = [keys.mint(sub=fresh_subject()) for _ in range(4)]
    for i in range(40):
        assert send(office, staff[i % 4]) == 200
    for source in (office, elsewhere):
        past = int(time.time()) - 7200
        assert send(source, keys.mint(sub=fresh_subject(), iat=past, exp=past + 3600)) == 401
        assert send(source, None) == 401
        assert send(source, staff[0], "/admin/users") == 403

    def first_request(source: str) -> tuple[int, dict]:
        sub = fresh_subject()
        status = send(source, keys.mint(sub=sub))
        return status, risk_gateway.wait_audit(lambda r: r.get("subject") == sub)

    status, rec = first_request(office)
    assert status == 200 and rec["decision"] in ("allow", "tag"), rec
    assert rec["risk_features"]["source_failures"] == 0.0, rec
    status, rec = first_request(elsewhere)
    assert rec["risk_features"]["source_failures"] > 0.5, rec
