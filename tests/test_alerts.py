"""Alerts through real Envoy into a real HTTP receiver: step-ups, revocations and rate limits arrive in
batches with the receiver's token; with the receiver down or slow, requests are answered as fast as ever,
the queue stays bounded and the drops are counted (and logged)."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import render
from conftest import bearer, seen_by_upstream, warden_config
from prometheus_client.parser import text_string_to_metric_families
import urllib.request

TOKEN = "Bearer receiver-secret"


class Receiver:
    """A real HTTP receiver: records each POST (headers, JSON body); `delay` makes it slow."""

    def __init__(self, delay: float = 0.0):
        self.calls: list[tuple[dict, dict]] = []
        self.delay = delay
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                time.sleep(outer.delay)
                outer.calls.append(({k.lower(): v for k, v in self.headers.items()}, json.loads(body)))
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [e for _, body in self.calls for e in body["events"]]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    """A loopback port nothing listens on (a dead receiver)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alerts_config(keys, api_key, port: int, **alerts) -> dict:
    c = warden_config(keys, api_key, "enforce")
    c["routes"] += [{"name": "keys", "methods": ["POST"], "path": "/keys", "step_up": True}]
    c["risk"] = {"tag_at": 30, "step_up_at": 70, "acr_values": ["mfa"], "max_age_s": 300, "budget_us": 200000}
    c["revocation"] = {"deny": {"sub": ["revoked-user"]}}
    c["alerts"] = {
        "service": {"url": f"http://127.0.0.1:{port}/alerts", "envoy_cluster": "alerts", "timeout_ms": 300},
        "header": {"name": "authorization", "value": TOKEN},
        "events": ["step_up", "block", "revoked", "rate_limited"],
        "batch_records": 3,
        "batch_delay_ms": 300,
        "queue_max": 10,
        "retries": 1,
        **alerts,
    }
    return c


def gateway_to(envoys, keys, api_key, port: int, name: str, **alerts):
    config = alerts_config(keys, api_key, port, **alerts)
    return envoys.gateway(config, name, transform=lambda text: text + render.idp_cluster(port, "alerts"))


def counters(gw, prefix: str = "warden_alerts") -> dict[tuple, float]:
    """Every sample of the `prefix` counters Envoy exports, by name and labels (both workers apart)."""
    with urllib.request.urlopen(f"http://{gw.envoy.admin}/stats/prometheus", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for f in text_string_to_metric_families(text):
        for s in f.samples:
            if s.name.startswith(prefix):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(c: dict, name: str, **labels) -> float:
    """A counter's value summed over every sample (both workers) that has `labels`."""
    return sum(v for (n, ls), v in c.items() if n == name and all((k, v2) in ls for k, v2 in labels.items()))


def step_ups(gw, keys, n: int) -> list[float]:
    """`n` step-up refusals; the time each took."""
    token = keys.mint(sub="alert-user")
    took = []
    for _ in range(n):
        t = time.monotonic()
        r = gw.request("POST", "/keys", headers=bearer(token))
        took.append(time.monotonic() - t)
        assert r.status_code == 401, r.text
    return took


def wait(pred, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_alerts_reach_the_receiver_in_batches_with_its_token(envoys, keys, api_key):
    rcv = Receiver()
    try:
        gw = gateway_to(envoys, keys, api_key, rcv.port, "alerts-up")
        step_ups(gw, keys, 4)
        assert gw.get("/orders/1", headers=bearer(keys.mint(sub="revoked-user"))).status_code == 401
        seen_by_upstream(gw.get("/orders/2", headers=bearer(keys.mint())))  # raises nothing
        assert wait(lambda: len(rcv.events()) >= 5), (rcv.calls, gw.log()[-2000:])
        events = rcv.events()
        assert sorted(e["event"] for e in events) == ["revoked"] + ["step_up"] * 4
        assert all(h["authorization"] == TOKEN for h, _ in rcv.calls)
        assert all(b["source"] == "warden" and len(b["events"]) <= 3 for _, b in rcv.calls)
        step = next(e for e in events if e["event"] == "step_up")
        assert step["subject"] == "alert-user" and step["status"] == 401 and step["route"] == "keys"
        assert step["reason"] == "step_up_required" and step["request_id"]
        revoked = next(e for e in events if e["event"] == "revoked")
        assert revoked["subject"] == "revoked-user" and revoked["jti"]
        assert wait(lambda: total(counters(gw), "warden_alerts_sent_total") >= 5)
        assert total(counters(gw), "warden_alerts_dropped_total") == 0
    finally:
        rcv.stop()


def test_a_dead_receiver_slows_nothing_and_the_drops_are_counted(envoys, keys, api_key):
    gw = gateway_to(envoys, keys, api_key, free_port(), "alerts-down")
    took = step_ups(gw, keys, 30)
    # The requests never wait for the receiver (a failed call is retried once, 1 s later, on a tick).
    assert max(took) < 0.5, took
    # At most queue_max events wait; the rest were dropped at once (counted at once, published on the
    # worker's next tick, every 250 ms).
    dropped = lambda: total(counters(gw), "warden_alerts_dropped_total", why="queue_full")  # noqa: E731
    assert wait(lambda: dropped() >= 30 - 10 - 6, 3), counters(gw)
    # The batches taken off the queue fail, are retried once, then dropped too.
    assert wait(lambda: total(counters(gw), "warden_alerts_dropped_total", why="send_failed") >= 3, 15)
    assert "alerts:" in gw.log() and "dropped (queue_full)" in gw.log()


def test_a_slow_receiver_slows_nothing(envoys, keys, api_key):
    rcv = Receiver(delay=2.0)
    try:
        gw = gateway_to(envoys, keys, api_key, rcv.port, "alerts-slow")
        took = step_ups(gw, keys, 12)
        assert max(took) < 0.5, took
        # The call times out (300 ms): retried, then dropped; requests keep flowing meanwhile.
        assert wait(lambda: total(counters(gw), "warden_alerts_dropped_total", why="send_failed") >= 3, 15)
        took = step_ups(gw, keys, 5)
        assert max(took) < 0.5, took
    finally:
        rcv.stop()
