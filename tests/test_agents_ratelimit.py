"""Identity-bound rate limits through a real Envoy (--concurrency 2): one bucket per identity shared by
both workers through shared data (compare-and-set), 429 with Retry-After and RateLimit headers."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import pytest
import requests
from conftest import TIMEOUT, bearer, warden_config

LIMIT = 200
REQUESTS = 600
CLIENTS = 24


@pytest.fixture(scope="module")
def limited(envoys, keys, api_key):
    cfg = warden_config(keys, api_key)
    cfg["routes"].append({"name": "limited", "methods": ["GET"], "path": "/limited/{id}"})
    cfg["rate_limits"] = {
        "slots": 1024,
        "policies": [
            {"name": "per-subject", "key": "subject", "limit": LIMIT, "window_s": 3600, "routes": ["limited"]},
            {"name": "per-agent", "key": "agent", "limit": 3, "window_s": 60, "routes": ["read-order"]},
        ],
    }
    cfg["delegation"] = {"actors": [{"sub": "agent:*", "subjects": ["*"], "scopes": ["orders:read"]}]}
    return envoys.gateway(cfg, "ratelimit")


def test_admitted_count_within_5_percent_across_workers(limited, keys):
    token = keys.mint(sub=f"load-{uuid.uuid4().hex[:8]}")
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    per_client = REQUESTS // CLIENTS

    def client(n: int) -> None:
        with requests.Session() as s:  # one connection per client: Envoy spreads them over its workers
            for i in range(per_client):
                r = s.get(limited.url(f"/limited/{n}-{i}"), headers=bearer(token), timeout=TIMEOUT)
                with lock:
                    statuses[r.status_code] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sum(statuses.values()) == REQUESTS, statuses
    assert set(statuses) <= {200, 429}, statuses
    admitted = statuses[200]
    print(f"admitted {admitted} of {REQUESTS} (limit {LIMIT}) from {CLIENTS} connections")
    assert abs(admitted - LIMIT) <= LIMIT * 0.05, statuses
    # Both workers took part in the decisions.
    workers = {thread for thread, rec in limited.audit_records() if rec.get("route") == "limited"}
    assert len(workers) == 2, workers


def test_429_carries_retry_after_and_ratelimit_headers(limited, keys):
    token = keys.mint(act={"sub": "agent:greedy"})
    for i in range(3):
        r = limited.get("/orders/1", headers=bearer(token))
        assert r.status_code == 200, r.text
        assert r.headers["ratelimit-policy"] == '"per-agent";q=3;w=60'
        assert r.headers["ratelimit"].startswith(f'"per-agent";r={2 - i};t=')
    r = limited.get("/orders/1", headers=bearer(token))
    assert r.status_code == 429
    # One token per 20 s: 20 s to wait, or 19 if the engine's clock (whole seconds) ticked since the
    # first request and refilled a twentieth of a token.
    assert int(r.headers["retry-after"]) in (19, 20), r.headers
    assert r.headers["ratelimit-policy"] == '"per-agent";q=3;w=60'
    assert r.headers["ratelimit"] in ('"per-agent";r=0;t=60', '"per-agent";r=0;t=59'), r.headers
    assert r.json()["error"] == "rate_limited"
    assert "www-authenticate" not in r.headers
    # The same agent acting for another user shares the bucket; another agent has its own.
    assert limited.get("/orders/1", headers=bearer(keys.mint(sub="bob", act={"sub": "agent:greedy"}))).status_code == 429
    assert limited.get("/orders/1", headers=bearer(keys.mint(act={"sub": "agent:calm"}))).status_code == 200
    # A human without an actor is not under the per-agent policy.
    assert "ratelimit" not in limited.get("/orders/1", headers=bearer(keys.mint())).headers
