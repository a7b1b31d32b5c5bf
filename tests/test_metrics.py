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
    fams = flushed(gateway, "warden_engine_us")
    decisions = counter(fams, "warden_decisions_total")
    by = {(s.labels["verdict"], s.labels["reason"], s.labels["route"]): s.value for s in decisions}
    assert by[("allow", "ok", "read-order")] >= 3, by
    assert by[("deny", "insufficient_scope", "admin")] >= 1, by
    assert by[("deny", "no_credential", "read-order")] >= 1, by
    # Engine time: a histogram with buckets, a count and a sum.
    engine = fams["warden_engine_us"]
    assert engine.type == "histogram"
    count = [s for s in engine.samples if s.name.endswith("_count")]
    assert count and sum(s.value for s in count) >= 5
    cache = {s.labels["result"]: s.value for s in counter(fams, "warden_token_cache_total")}
    assert cache.get("hit", 0) >= 2 and cache.get("miss", 0) >= 1, cache

