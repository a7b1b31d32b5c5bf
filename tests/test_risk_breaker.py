"""The risk stage's circuit breaker through real Envoy (2 workers).

A score that was computed is used, however long the worker was descheduled while computing it: 10,000
requests with a CPU-hog neighbour on every core get no 503 from the breaker at the default budget. And the
breaker still opens when scoring keeps failing its budget (`budget_us: 1`, which no scoring meets): after
`open_after` overruns in a row each worker stops scoring and `on_error: closed` answers 503.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter

import requests
from conftest import TIMEOUT, bearer, warden_config

REQUESTS = 10_000
THREADS = 8


def breaker_config(keys, api_key, risk: dict) -> dict:
    c = warden_config(keys, api_key, "enforce")
    c["risk"] = risk
    return c


def test_ten_thousand_requests_under_a_cpu_hog_get_no_breaker_503(envoys, keys, api_key):
    gw = envoys.gateway(breaker_config(keys, api_key, {}), "breaker-load")
    tokens = [keys.mint(sub="load-" + uuid.uuid4().hex[:8]) for _ in range(THREADS)]
    # A neighbour busy on every core: the workers are descheduled mid-request, as on a loaded host.
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)
    ]
    statuses: Counter = Counter()
    others: list[str] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        local: Counter = Counter()
        with requests.Session() as s:
            for n in range(REQUESTS // THREADS):
                # A fresh connection now and then, so that both workers serve each caller.
                if n % 100 == 0:
                    s.close()
                r = s.get(gw.url(f"/orders/{n % 5}"), headers=bearer(tokens[i]), timeout=TIMEOUT)
                local[r.status_code] += 1
                if r.status_code != 200:
                    with lock:
                        others.append(f"{r.status_code} {r.headers} {r.text[:200]}")
        with lock:
            statuses.update(local)

    try:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(THREADS)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    assert sum(statuses.values()) == REQUESTS
    # Warden's own 503 (`temporarily_unavailable`) is the breaker's; none may come. The echo upstream
    # (a Python server on the same starved cores) may rarely fail a connection: Envoy's own 503, which
    # is not Warden's and is allowed only as a rare event.
    assert not [o for o in others if "temporarily_unavailable" in o], others
    assert statuses[200] >= REQUESTS - 5, (statuses, others)
    records = [rec for _, rec in gw.audit_records() if rec.get("subject", "").startswith("load-")]
    assert not [r for r in records if r.get("risk_breaker")], "the breaker decided a request"
    overruns = sum(1 for r in records if r.get("risk_over_budget"))
    # Overruns are counted and audited, but a computed score was used every time.
    print(f"{REQUESTS} requests in {elapsed:.1f}s under a CPU hog; {overruns} scored over budget")
    assert all(r.get("risk_score") is not None for r in records)


def test_the_breaker_opens_on_every_worker_when_scoring_keeps_failing(envoys, keys, api_key):
    risk = {"budget_us": 1, "on_error": "closed", "breaker": {"open_after": 3, "cool_down_s": 600}}
    gw = envoys.gateway(breaker_config(keys, api_key, risk), "breaker-open")
    sub = "fail-" + uuid.uuid4().hex[:8]
    token = keys.mint(sub=sub)
    statuses = []
    for i in range(40):
        # Each on its own connection, so both workers serve some.
        r = gw.get(f"/orders/{i}", headers={**bearer(token), "connection": "close"})
        statuses.append(r.status_code)
    assert set(statuses) == {200, 503}, statuses
    # Late scores are used until the breaker opens; then it stays open for its cool-down.
    assert statuses[:3] == [200, 200, 200], statuses
    assert statuses[-5:] == [503] * 5, statuses
    deadline = time.monotonic() + TIMEOUT
    while True:
        records = [(t, rec) for t, rec in gw.audit_records() if rec.get("subject") == sub]
        if len(records) >= 40 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    opened = {t for t, rec in records if rec.get("risk_breaker_event") == "opened"}
    assert len(opened) == 2, "the breaker did not open on both workers"
    refused = [rec for _, rec in records if rec["status"] == 503]
    assert refused and all(
        rec["risk_breaker"] == "open" and rec["risk_on_error"] == "closed" and "risk_score" not in rec
        for rec in refused
    )
    passed = [rec for _, rec in records if rec["status"] == 200]
    assert all(rec["risk_over_budget"] and rec["risk_score"] is not None for rec in passed)
    assert len(passed) == 2 * 3, "each worker scores open_after requests before it opens"
