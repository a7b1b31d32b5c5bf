"""Risk answers by caller kind through real Envoy (2 workers): an agent, which cannot step up, is held to
its throttle's pace (429 with Retry-After) and then suspended on both workers (403 with Retry-After, even
for an ordinary request); a person sending the same requests still gets the RFC 9470 step-up.

Two paces: a fresh agent has none of its own yet (that needs three busy buckets), so its throttle runs
at `responses.throttle.min_per_minute` (the floor); with `responses.throttle.pace_bucket_s: 10` an agent
learns its own pace in 40 seconds and its flood is held to `multiple` times it, far from the floor.
"""

from __future__ import annotations

import time
import uuid

import pytest
from conftest import TIMEOUT, bearer
from test_risk import AWAY, HOME, history, risk_config

PER_MINUTE = 12
BURST_S = 10


def responses_gateway_with(envoys, keys, api_key, name: str, throttle: dict, suspend: dict):
    """A gateway scoring requests (`agent-*` subjects are agents) with these `risk.responses`."""
    c = risk_config(keys, api_key)
    c["kinds"] = {"rules": [{"kind": "agent", "sub": "agent-*"}]}
    c["risk"]["responses"] = {"throttle": throttle, "suspend": suspend}
    return envoys.gateway(c, name, geo="edge")


@pytest.fixture(scope="module")
def responses_gateway(envoys, keys, api_key):
    throttle = {"min_per_minute": PER_MINUTE, "burst_s": BURST_S}
    suspend = {"after": 5, "window_s": 60, "ttl_s": 600}
    return responses_gateway_with(envoys, keys, api_key, "risk-responses", throttle, suspend)


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


# An agent's own pace, learnt in 10-second buckets: 10 reads in each of three, 1 a second; the throttle
# holds it to twice that. The floor (50 a second) would let the whole flood (10 a second) through.
PACE_BUCKET_S = 10
PACE_PER_BUCKET = 10
MULTIPLE = 2
OWN_BURST_S = 3
FLOOR_PER_MINUTE = 3000
FLOOD_PER_S = 10
SUSPEND_AFTER = 40


@pytest.fixture(scope="module")
def pace_gateway(envoys, keys, api_key):
    throttle = {
        "multiple": MULTIPLE,
        "min_per_minute": FLOOR_PER_MINUTE,
        "burst_s": OWN_BURST_S,
        "pace_bucket_s": PACE_BUCKET_S,
    }
    suspend = {"after": SUSPEND_AFTER, "window_s": 600, "ttl_s": 600}
    return responses_gateway_with(envoys, keys, api_key, "risk-own-pace", throttle, suspend)


def next_bucket(after_s: float = 0.3) -> float:
    """Sleeps until `after_s` into the next pace bucket (buckets start at multiples of their length on
    the gateway's clock, this machine's); returns that bucket's start."""
    now = time.time()
    start = (now // PACE_BUCKET_S + 1) * PACE_BUCKET_S
    time.sleep(start + after_s - now)
    return start


def test_an_agents_flood_is_throttled_to_its_own_pace_then_suspended_on_both_workers(pace_gateway, keys):
    gw = pace_gateway
    sub = "agent-" + uuid.uuid4().hex[:10]
    token = keys.mint(sub=sub)
    # Its pace: 10 ordinary reads at the start of each of three buckets, then one in the fourth, which
    # closes the third (a pace needs three busy buckets).
    for b in range(4):
        start = next_bucket()
        for i in range(PACE_PER_BUCKET if b < 3 else 1):
            r = gw.get(f"/orders/{i % 3}", headers={**bearer(token), **HOME, "connection": "close"})
            assert r.status_code == 200, (r.status_code, r.text)
        assert time.time() < start + PACE_BUCKET_S - 1, "a bucket's reads spilled into the next bucket"
    own_pace_per_s = PACE_PER_BUCKET / PACE_BUCKET_S
    held_to_per_s = MULTIPLE * own_pace_per_s
    cap = held_to_per_s * OWN_BURST_S
    # The flood, still in the fourth bucket: 10 a second from another continent (each on its own
    # connection, so both workers serve it), until it is suspended.
    answers, sent_at = [], []
    first = time.monotonic()
    for k in range(80):
        time.sleep(max(0.0, first + k / FLOOD_PER_S - time.monotonic()))
        sent_at.append(time.monotonic())
        r = gw.request("POST", "/transfer", headers={**bearer(token), **AWAY, "connection": "close"})
        answers.append(r)
        if [a.status_code for a in answers[-5:]] == [403] * 5:
            break
    statuses = [r.status_code for r in answers]
    assert 401 not in statuses, "an agent got a step-up challenge it cannot answer"
    assert 403 in statuses, statuses
    suspended_from = statuses.index(403)
    assert set(statuses[suspended_from:]) == {403}, statuses
    assert time.time() < start + PACE_BUCKET_S, "the flood outlasted the bucket its pace was read in"
    # Before the suspension: held to twice its own pace, 2 a second plus the bucket (3 s of it). Envoy's
    # clock counts whole seconds, so the refill may count up to one second more or less than the wall.
    throttle_phase = statuses[:suspended_from]
    passed = throttle_phase.count(200)
    elapsed = sent_at[suspended_from - 1] - sent_at[0]
    low = cap + held_to_per_s * (elapsed - 1) - 1
    high = cap + held_to_per_s * (elapsed + 1) + 1
    floor_would_pass = len(throttle_phase)  # 50 a second, more than the flood's 10
    assert low <= passed <= high, (passed, low, high, elapsed, statuses)
    assert passed < floor_would_pass / 2, (passed, floor_would_pass)
    throttled = [r for r in answers[:suspended_from] if r.status_code == 429]
    assert len(throttled) == len(throttle_phase) - passed, throttle_phase
    # The wait of its own pace: one token comes every half second.
    assert all(1 <= int(r.headers["retry-after"]) <= 1 + int(1 / held_to_per_s) for r in throttled)
    assert throttled[0].json()["error"] == "rate_limited"
    # Suspended by sustained step-up-level scores: the rest of the flood and ordinary reads from home,
    # on either worker, get 403 with the TTL.
    assert all(0 < int(r.headers["retry-after"]) <= 600 for r in answers[suspended_from:])
    for i in range(6):
        r = gw.get(f"/orders/{i}", headers={**bearer(token), **HOME, "connection": "close"})
        assert r.status_code == 403 and int(r.headers["retry-after"]) > 0, (r.status_code, r.text)
    recs = records_of(gw, sub, 31 + len(answers) + 6)
    flood = [(t, rec) for t, rec in recs if rec.get("path") == "/transfer"]
    assert len(flood) == len(answers), (len(flood), len(answers))
    # The scores are the embedded model's: every refusal of the throttle is at tag_at or above, and the
    # suspension came after SUSPEND_AFTER step-up-level scores (the suspending one included).
    for _, rec in flood:
        if rec["reason"] == "risk_throttled":
            assert rec["decision"] == "throttle" and rec["status"] == 429 and rec["risk_score"] >= 30, rec
    hot = [rec for _, rec in flood if rec.get("risk_score", 0) >= 70 and rec["reason"] != "risk_suspended"]
    assert len(hot) >= SUSPEND_AFTER - 1, [rec.get("risk_score") for _, rec in flood]
    by_worker = {t for t, rec in recs if rec["reason"] == "risk_suspended"}
    assert len(by_worker) == 2, by_worker
    assert all(rec["decision"] == "suspend" and rec["status"] == 403 for _, rec in recs if rec["reason"] == "risk_suspended")
    print(f"own pace {own_pace_per_s}/s, held to {held_to_per_s}/s: {passed} of {len(throttle_phase)} passed "
          f"in {elapsed:.2f} s (allowed {low:.1f}..{high:.1f}; the floor would pass all), "
          f"{len(throttled)} throttled, then {len(answers) - suspended_from} suspended")


def test_tokens_forged_in_an_agents_name_do_not_suspend_it(pace_gateway, keys):
    """Suspension follows proven identities only: a flood of tokens with the agent's subject but a bad
    signature (the gateway's key id, another key) is refused as unauthenticated and leaves the agent's
    record alone."""
    gw = pace_gateway
    sub = "agent-" + uuid.uuid4().hex[:10]
    token = keys.mint(sub=sub)
    history(gw, token, 5)
    forged = keys.mint(key=keys.rogue_es256, sub=sub)
    for _ in range(2 * SUSPEND_AFTER):
        r = gw.request("POST", "/transfer", headers={**bearer(forged), **AWAY, "connection": "close"})
        assert r.status_code == 401, (r.status_code, r.text)
    for i in range(4):
        r = gw.get(f"/orders/{i}", headers={**bearer(token), **HOME, "connection": "close"})
        assert r.status_code == 200, (r.status_code, r.text)
    recs = records_of(gw, sub, 5 + 4)
    assert not [rec for _, rec in recs if rec["reason"] in ("risk_suspended", "risk_throttled")], recs
