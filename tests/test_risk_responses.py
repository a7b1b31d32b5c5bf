"""Risk answers by caller kind through real Envoy (2 workers): an agent, which cannot step up, is held to
its throttle's pace (429 with Retry-After) and then suspended on both workers (403 with Retry-After, even
for an ordinary request); a person sending the same requests still gets the RFC 9470 step-up.

A fresh agent has no pace of its own yet (that needs three busy 5-minute buckets): its throttle runs at
`responses.throttle.min_per_minute`; the throttle at a multiple of a learnt pace is shown natively
(`risk::respond` tests and `plugin/tests/risk.rs`).
"""

from __future__ import annotations

import time
import uuid

import pytest
from conftest import TIMEOUT, bearer
from test_risk import AWAY, HOME, history, risk_config

PER_MINUTE = 12
BURST_S = 10


@pytest.fixture(scope="module")
def responses_gateway(envoys, keys, api_key):
    c = risk_config(keys, api_key)
    c["kinds"] = {"rules": [{"kind": "agent", "sub": "agent-*"}]}
    c["risk"]["responses"] = {
        "throttle": {"min_per_minute": PER_MINUTE, "burst_s": BURST_S},
        "suspend": {"after": 5, "window_s": 60, "ttl_s": 600},
    }
    return envoys.gateway(c, "risk-responses", geo="edge")


def records_of(gw, sub: str, n: int) -> list[tuple[str, dict]]:
    deadline = time.monotonic() + TIMEOUT
    while True:
        recs = [(t, r) for t, r in gw.audit_records() if r.get("subject") == sub]
        if len(recs) >= n or time.monotonic() > deadline:
            return recs
        time.sleep(0.1)


def test_an_agents_flood_is_throttled_then_suspended_on_both_workers(responses_gateway, keys):
    gw = responses_gateway
    sub = "agent-" + uuid.uuid4().hex[:10]
    token = keys.mint(sub=sub)
    history(gw, token)
    started = time.monotonic()
    answers = []
    for _ in range(40):
        # Each on its own connection: both workers serve the flood.
        r = gw.request("POST", "/transfer", headers={**bearer(token), **AWAY, "connection": "close"})
        answers.append(r)
    elapsed = time.monotonic() - started
    statuses = [r.status_code for r in answers]
    assert 401 not in statuses, "an agent got a step-up challenge it cannot answer"
    passed = statuses.count(200)
    # Held to the throttle's pace: its bucket (burst_s of the pace) and the pace over the flood.
    allowed = max(1, PER_MINUTE / 60 * BURST_S) + PER_MINUTE / 60 * elapsed
    assert 1 <= passed <= allowed + 1, (statuses, elapsed)
    throttled = [r for r in answers if r.status_code == 429]
    assert throttled, statuses
    assert all(int(r.headers["retry-after"]) >= 1 for r in throttled)
    assert throttled[0].json()["error"] == "rate_limited"
    # Sustained step-up-level scores suspend it: the rest of the flood is refused with the TTL.
    first_suspended = statuses.index(403)
    assert set(statuses[first_suspended:]) == {403}, statuses
    suspended = answers[first_suspended:]
    assert all(0 < int(r.headers["retry-after"]) <= 600 for r in suspended)
    # Even an ordinary read from home is refused while suspended, on either worker.
    for i in range(6):
        r = gw.get(f"/orders/{i}", headers={**bearer(token), **HOME, "connection": "close"})
        assert r.status_code == 403 and int(r.headers["retry-after"]) > 0, (r.status_code, r.text)
    recs = records_of(gw, sub, 30 + 40 + 6)
    by_reason = {}
    for t, rec in recs:
        by_reason.setdefault(rec["reason"], set()).add(t)
    assert by_reason.get("risk_suspended") and len(by_reason["risk_suspended"]) == 2, by_reason
    throttle_recs = [rec for _, rec in recs if rec["reason"] == "risk_throttled"]
    assert throttle_recs and all(rec["decision"] == "throttle" and rec["status"] == 429 for rec in throttle_recs)
    suspend_recs = [rec for _, rec in recs if rec["reason"] == "risk_suspended"]
    assert all(rec["decision"] == "suspend" and rec["status"] == 403 for rec in suspend_recs)


def test_a_person_sending_the_same_requests_is_stepped_up(responses_gateway, keys):
    gw = responses_gateway
    sub = "user-" + uuid.uuid4().hex[:10]
    token = keys.mint(sub=sub)
    history(gw, token)
    statuses = []
    for _ in range(10):
        r = gw.request("POST", "/transfer", headers={**bearer(token), **AWAY, "connection": "close"})
        statuses.append(r.status_code)
        if r.status_code == 401:
            assert r.headers["www-authenticate"].startswith('Bearer error="insufficient_user_authentication"')
    assert statuses == [401] * 10, statuses
