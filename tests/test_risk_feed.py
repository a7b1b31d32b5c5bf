"""`risk.deny_cidrs_feed` through real Envoy (2 workers): a plain blocklist (one network a line, `#` and
`;` comments) served by a local HTTP server, fetched by one worker per interval for all; an update changes
the `bad_source` feature on both workers within the interval, and a broken list keeps the last good one."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
from conftest import TIMEOUT, bearer, warden_config
from test_agents_revocation import Feed, assert_one_fetch_per_interval

INTERVAL_S = 2


class Blocklist(Feed):
    """The threat feed, served as plain text; counts the fetches."""

    CLUSTER = "threat_feed"
    CONTENT_TYPE = "text/plain"

    def __init__(self) -> None:
        self.text = "# nothing listed yet\n"
        super().__init__()

    def body(self) -> bytes:
        return self.text.encode()


@pytest.fixture(scope="module")
def blocklist():
    with Blocklist() as f:
        yield f


@pytest.fixture(scope="module")
def fed(envoys, keys, api_key, blocklist):
    cfg = warden_config(keys, api_key)
    cfg["risk"] = {
        "budget_us": 200000,
        "deny_cidrs_feed": {
            "service": {"url": f"http://127.0.0.1:{blocklist.port}/drop.txt", "envoy_cluster": "threat_feed"},
            "interval_s": INTERVAL_S,
        },
    }
    return envoys.gateway(cfg, "risk-feed", transform=lambda text: text.rstrip() + "\n" + blocklist.cluster_yaml())


def bad_source_on_both_workers(gw, token: str, sub: str, want: float, deadline: float) -> float | None:
    """Sends requests on fresh connections until both workers' records show `bad_source == want`."""
    while time.monotonic() < deadline:
        ids = set()
        for _ in range(6):
            with requests.Session() as s:
                r = s.get(gw.url("/orders/1"), headers=bearer(token), timeout=TIMEOUT)
                assert r.status_code == 200, r.text
                ids.add(r.json()["headers"]["x-request-id"])
        time.sleep(0.05)
        recs = [(t, rec) for t, rec in gw.audit_records() if rec.get("request_id") in ids]
        threads = {t for t, rec in recs if rec["risk_features"]["bad_source"] == want}
        if len(recs) == len(ids) and all(rec["risk_features"]["bad_source"] == want for _, rec in recs) \
                and len({t for t, _ in recs}) == 2 and len(threads) == 2:
            return time.monotonic()
        time.sleep(0.1)
    return None


def test_a_feed_update_changes_bad_source_within_its_interval(fed, keys, blocklist):
    sub = "fed-" + uuid.uuid4().hex[:8]
    token = keys.mint(sub=sub)
    assert bad_source_on_both_workers(fed, token, sub, 0.0, time.monotonic() + TIMEOUT)
    blocklist.text = "; Spamhaus DROP-style list\n192.0.2.0/24 ; SBL1\n# the test client's network\n127.0.0.0/8\n"
    published = time.monotonic()
    at = bad_source_on_both_workers(fed, token, sub, 1.0, published + INTERVAL_S + 5)
    assert at is not None, "the feed's networks never reached the features"
    took = at - published
    print(f"feed update effective on both workers after {took:.2f} s (interval {INTERVAL_S} s)")
    assert took <= INTERVAL_S + 1.5
    # A broken list is refused: the last good one stays.
    blocklist.text = "127.0.0.0/8\nthis is not a network\n"
    time.sleep(2 * INTERVAL_S + 0.5)
    assert bad_source_on_both_workers(fed, token, sub, 1.0, time.monotonic() + 3)
    assert "keeping the previous list" in fed.log()
    # Lifting it works the same way.
    blocklist.text = "192.0.2.0/24\n"
    assert bad_source_on_both_workers(fed, token, sub, 0.0, time.monotonic() + INTERVAL_S + 5)


def test_one_fetch_per_interval_for_all_workers(fed, blocklist):
    assert_one_fetch_per_interval(blocklist, INTERVAL_S)
