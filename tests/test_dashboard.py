"""The Grafana dashboard (observability/grafana-dashboard.json) as a dashboard model: its
structure, and every metric its queries read is one a real Envoy running Warden exports on
/stats/prometheus (read with the Prometheus client library's parser), as does the scrape example's filter."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request

import pytest
import yaml
from conftest import ROOT, bearer, seen_by_upstream
from prometheus_client.parser import text_string_to_metric_families
from test_alerts import Receiver, gateway_to
from test_metrics import flushed
from test_record import HOME

DASHBOARD = ROOT / "observability" / "grafana-dashboard.json"
SCRAPE = ROOT / "observability" / "prometheus.yml"
METRIC = re.compile(r"\b(warden_[a-z_]+)")


@pytest.fixture(scope="module")
def risk_gateway(envoys, keys, api_key):
    """Risk scoring and alerts into a live receiver: every metric family the filter has."""
    receiver = Receiver()
    yield gateway_to(envoys, keys, api_key, receiver.port, "dashboard")
    receiver.stop()


def exported_names(text: str) -> set[str]:
    """Every name a query may use: the samples' (`_bucket`, `_total` ...) and the families' (the parser
    writes a counter's samples as `<family>_total`; Prometheus keeps the name Envoy wrote)."""
    families = list(text_string_to_metric_families(text))
    return {s.name for f in families for s in f.samples} | {f.name for f in families}


def test_the_dashboard_is_a_well_formed_model():
    d = json.loads(DASHBOARD.read_text())
    assert d["title"] and d["uid"] and isinstance(d["schemaVersion"], int) and d["schemaVersion"] >= 36
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)) >= 6
    for p in d["panels"]:
        g = p["gridPos"]
        assert all(isinstance(g[k], int) for k in "xywh") and g["x"] + g["w"] <= 24, p["title"]
        assert p["type"] in ("timeseries", "stat", "gauge", "table") and p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(refs) == len(set(refs))
        assert all(t["expr"] and t["datasource"]["uid"] == "${datasource}" for t in p["targets"])
    assert [v["name"] for v in d["templating"]["list"]] == ["datasource"]


def test_every_query_reads_a_metric_envoy_exports(risk_gateway, keys):
    token = keys.mint(sub="dash-user")
    for i in range(3):
        seen_by_upstream(risk_gateway.get(f"/orders/{i}", headers={**bearer(token), **HOME}))
    assert risk_gateway.request("POST", "/keys", headers={**bearer(token), **HOME}).status_code == 401
    flushed(risk_gateway, "warden_risk_score")
    with urllib.request.urlopen(f"http://{risk_gateway.envoy.admin}/stats/prometheus", timeout=5) as r:
        exported = exported_names(r.read().decode())
    d = json.loads(DASHBOARD.read_text())
    used = {m for p in d["panels"] for t in p["targets"] for m in METRIC.findall(t["expr"])}
    assert len(used) >= 8
    missing = sorted(m for m in used if m not in exported)
    assert not missing, f"queried but not exported: {missing}"
    # The scrape example's filter keeps them all.
    job = yaml.safe_load(SCRAPE.read_text())["scrape_configs"][0]
    query = urllib.parse.urlencode({"filter": job["params"]["filter"][0]})
    url = f"http://{risk_gateway.envoy.admin}{job['metrics_path']}?{query}"
    with urllib.request.urlopen(url, timeout=5) as r:
        filtered = exported_names(r.read().decode())
    assert used <= filtered, sorted(used - filtered)
