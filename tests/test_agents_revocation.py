"""Revocation and kill switch through a real Envoy (--concurrency 2): static deny lists, and a
revocation feed served by a local HTTP server (an Envoy cluster), fetched by one worker per interval
under a shared lease, whose deny reaches both workers within the interval."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from conftest import TIMEOUT, bearer, warden_config

INTERVAL_S = 2


class Feed:
    """The administrator's deny list, served as JSON; counts the fetches."""

    CLUSTER = "revocation_feed"
    CONTENT_TYPE = "application/json"

    def body(self) -> bytes:
        return json.dumps(self.doc).encode()

    def __init__(self) -> None:
        self.doc: dict = {}
        self.fetches: list[float] = []
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                feed.fetches.append(time.monotonic())
                body = feed.body()
                self.send_response(200)
                self.send_header("content-type", feed.CONTENT_TYPE)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self) -> "Feed":
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def cluster_yaml(self) -> str:
        return f"""
  - name: {self.CLUSTER}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: {self.CLUSTER}
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{ address: 127.0.0.1, port_value: {self.port} }}
"""


@pytest.fixture(scope="module")
def feed():
    f = Feed()
    yield f
    f.server.shutdown()
    f.server.server_close()


@pytest.fixture(scope="module")
def revoking(envoys, keys, api_key, feed):
    cfg = warden_config(keys, api_key)
    cfg["delegation"] = {"actors": [{"sub": "agent:*", "subjects": ["*"], "scopes": ["orders:read"]}]}
    cfg["revocation"] = {
        "deny": {"jti": ["stolen-jti"], "sub": ["mallory"], "client_id": ["leaky-app"], "agent": ["agent:rogue"]},
        "feed": {
            "service": {"url": f"http://127.0.0.1:{feed.port}/deny", "envoy_cluster": "revocation_feed"},
            "interval_s": INTERVAL_S,
        },
    }
    return envoys.gateway(cfg, "revocation", transform=lambda text: text.rstrip() + "\n" + feed.cluster_yaml())


@pytest.mark.parametrize(
    "claims",
    [{"jti": "stolen-jti"}, {"sub": "mallory"}, {"client_id": "leaky-app"}, {"act": {"sub": "agent:rogue"}}],
)
def test_static_deny_lists(revoking, keys, claims):
    r = revoking.get("/orders/1", headers=bearer(keys.mint(**claims)))
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert revoking.get("/orders/1", headers=bearer(keys.mint(act={"sub": "agent:fine"}))).status_code == 200


def test_feed_deny_reaches_every_worker_within_the_interval(revoking, keys, feed):
    token = keys.mint(sub="eve")
    assert revoking.get("/orders/1", headers=bearer(token)).status_code == 200
    feed.doc = {"sub": ["eve"], "agent": ["agent:compromised"]}
    published = time.monotonic()
    refused_at = None
    deadline = published + INTERVAL_S + 5
    while time.monotonic() < deadline:
        # New connections, so that both workers answer.
        statuses = set()
        for _ in range(4):
            with requests.Session() as s:
                statuses.add(s.get(revoking.url("/orders/1"), headers=bearer(token), timeout=TIMEOUT).status_code)
        if statuses == {401}:
            refused_at = time.monotonic()
            break
        time.sleep(0.1)
    assert refused_at is not None, "the feed's deny never took effect"
    took = refused_at - published
    print(f"feed deny effective after {took:.2f} s (interval {INTERVAL_S} s)")
    assert took <= INTERVAL_S + 1.5
    # Once effective, it stays so on every worker.
    for _ in range(10):
        with requests.Session() as s:
            assert s.get(revoking.url("/orders/1"), headers=bearer(token), timeout=TIMEOUT).status_code == 401
    agent = keys.mint(act={"sub": "agent:compromised"})
    assert revoking.get("/orders/1", headers=bearer(agent)).status_code == 401
    revoking.wait_audit(lambda rec: rec.get("reason") == "revoked")

    # Lifting the deny works the same way.
    feed.doc = {}
    deadline = time.monotonic() + INTERVAL_S + 5
    while time.monotonic() < deadline:
        if revoking.get("/orders/1", headers=bearer(token)).status_code == 200:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the lifted deny never took effect")


def assert_one_fetch_per_interval(feed: Feed, interval_s: float) -> None:
    """Over three intervals, the two workers together fetch about once per interval (the shared lease)."""
    start = time.monotonic()
    before = len(feed.fetches)
    time.sleep(3 * interval_s + 0.5)
    fetched = len(feed.fetches) - before
    elapsed = time.monotonic() - start
    print(f"{fetched} fetches in {elapsed:.1f} s (interval {interval_s} s, 2 workers)")
    # Without the lease both workers would fetch: about twice as many.
    assert 2 <= fetched <= elapsed / interval_s + 1


def test_one_fetch_per_interval_for_all_workers(revoking, feed):
    assert_one_fetch_per_interval(feed, INTERVAL_S)
