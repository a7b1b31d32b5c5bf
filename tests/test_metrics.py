"""Metrics through real Envoy: `/stats/prometheus` read by the Prometheus client library's own parser,
with the labels the shipped bootstrap's stats tag extraction gives Warden's metrics."""

from __future__ import annotations

import time
import urllib.request

from conftest import bearer, seen_by_upstream
from prometheus_client.parser import text_string_to_metric_families


def scrape(gw) -> dict:
    """Metric families by name, from Envoy's Prometheus endpoint."""
    with urllib.request.urlopen(f"http://{gw.envoy.admin}/stats/prometheus", timeout=5) as r:
        text = r.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def counter(families: dict, name: str) -> list:
    """The samples of counter `name` (the parser names a counter's family without `_total`)."""
    family = families[name.removesuffix("_total")]
    assert family.type == "counter"
    return [s for s in family.samples if s.name == name]


def flushed(gw, name: str, timeout: float = 15.0) -> dict:
    """Families once histogram `name` has counts (Envoy publishes histograms at its stats flush)."""
    deadline = time.monotonic() + timeout
    while True:
        fams = scrape(gw)
        counts = [s.value for s in fams[name].samples if s.name.endswith("_count")]
        if sum(counts) > 0 or time.monotonic() > deadline:
            return fams
        time.sleep(0.5)


def test_decisions_by_verdict_reason_and_route_with_labels(gateway, keys):
    token = keys.mint()
    for i in range(3):
        seen_by_upstream(gateway.get(f"/orders/{i}", headers=bearer(token)))
    assert gateway.get("/admin/x", headers=bearer(token)).status_code == 403
    assert gateway.get("/orders/1").status_code == 401
    # Counters are summed per worker and published on its tick (every 250 ms): read until these show.
    deadline = time.monotonic() + 3
    while True:
        fams = flushed(gateway, "warden_engine_us")
        decisions = counter(fams, "warden_decisions_total")
        by = {(s.labels["verdict"], s.labels["reason"], s.labels["route"]): s.value for s in decisions}
        want = {("allow", "ok", "read-order"): 3, ("deny", "insufficient_scope", "admin"): 1,
                ("deny", "no_credential", "read-order"): 1}
        cache = {s.labels["result"]: s.value for s in counter(fams, "warden_token_cache_total")}
        counted = all(by.get(k, 0) >= n for k, n in want.items()) and cache.get("hit", 0) >= 2
        if counted or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert by[("allow", "ok", "read-order")] >= 3, by
    assert by[("deny", "insufficient_scope", "admin")] >= 1, by
    assert by[("deny", "no_credential", "read-order")] >= 1, by
    # Engine time: a histogram with buckets, a count and a sum.
    engine = fams["warden_engine_us"]
    assert engine.type == "histogram"
    count = [s for s in engine.samples if s.name.endswith("_count")]
    assert count and sum(s.value for s in count) >= 5
    assert cache.get("hit", 0) >= 2 and cache.get("miss", 0) >= 1, cache



def test_gauges_key_age_and_state_slots(tmp_path, envoys, keys):
    """A provider with remote keys (the demo IdP) and risk scoring: the key set's age by provider and the
    behavioural record slots in use, as labelled gauges."""
    import socket
    import sys

    import render
    from conftest import ROOT

    sys.path.insert(0, str(ROOT / "examples" / "idp"))
    import idp as demo_idp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    idp = demo_idp.DemoIdP(port=port, log_path=tmp_path / "idp.log").start()
    try:
        config = {
            "providers": [{
                "name": "demo-idp", "issuer": idp.issuer, "audiences": ["orders-api"],
                "jwks_uri": {"url": f"{idp.issuer}/jwks", "envoy_cluster": "idp", "timeout_ms": 1000},
            }],
            "risk": {"mode": "shadow"},
        }
        gw = envoys.gateway(config, "gauges", transform=lambda t: t + render.idp_cluster(idp.port))
        token = idp.token(scope="orders:read")
        deadline = time.monotonic() + 15
        while gw.get("/orders/1", headers=bearer(token)).status_code != 200:
            assert time.monotonic() < deadline, gw.log()[-2000:]
            time.sleep(0.2)

        def gauges() -> dict:
            fams = scrape(gw)
            out = {}
            for name in ("warden_key_age_seconds", "warden_state_slots_in_use", "warden_state_slots_capacity"):
                for s in fams.get(name, type("F", (), {"samples": []})).samples:
                    out[(name, tuple(sorted(s.labels.items())))] = s.value
            return out

        deadline = time.monotonic() + 15
        while True:
            g = gauges()
            if g.get(("warden_state_slots_in_use", (("kind", "identity"),)), 0) >= 1:
                break
            assert time.monotonic() < deadline, g
            time.sleep(0.5)
        assert ("warden_key_age_seconds", (("provider", "demo-idp"),)) in g, g
        assert 0 <= g[("warden_key_age_seconds", (("provider", "demo-idp"),))] < 60
        assert g[("warden_state_slots_in_use", (("kind", "source"),))] >= 1
        assert g[("warden_state_slots_capacity", ())] == 65536
    finally:
        idp.stop()
