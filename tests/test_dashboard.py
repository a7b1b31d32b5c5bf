"""The Grafana dashboard (observability/grafana-dashboard.json) as a dashboard model: its
structure, and every metric its queries read is one a real Envoy running Warden exports on
/stats/prometheus (read with the Prometheus client library's parser), as does the scrape example's filter."""

from __future__ import annotations

import json
import re
import socket
import sys
import time
import urllib.parse
import urllib.request

import pytest
import yaml
import render
from conftest import ROOT, bearer, seen_by_upstream
from prometheus_client.parser import text_string_to_metric_families
from test_alerts import Receiver, alerts_config
from test_record_shipping import Collector
from test_metrics import flushed
from test_record import HOME

DASHBOARD = ROOT / "observability" / "grafana-dashboard.json"
SCRAPE = ROOT / "observability" / "prometheus.yml"
METRIC = re.compile(r"\b(warden_[a-z_]+)")

sys.path.insert(0, str(ROOT / "examples" / "idp"))
import idp as demo_idp  # noqa: E402


@pytest.fixture(scope="module")
def risk_gateway(envoys, keys, api_key, tmp_path_factory):
    """Risk scoring, alerts into a live receiver, records shipped to a live collector and a provider
    with remote keys (the demo IdP): every metric family the filter has."""
    receiver = Receiver()
    collector = Collector()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    idp = demo_idp.DemoIdP(port=port, log_path=tmp_path_factory.mktemp("dash") / "idp.log").start()
    config = alerts_config(keys, api_key, receiver.port)
    config["providers"].append({
        "name": "demo-idp", "issuer": idp.issuer, "audiences": ["orders-api"],
        "jwks_uri": {"url": f"{idp.issuer}/jwks", "envoy_cluster": "idp", "timeout_ms": 1000},
    })
    config["audit"] = {"sink": "http", "http": {"service": {
        "url": f"http://127.0.0.1:{collector.port}/records", "envoy_cluster": "records"}}}
    clusters = (render.idp_cluster(receiver.port, "alerts") + render.idp_cluster(collector.port, "records")
                + render.idp_cluster(idp.port))
    yield envoys.gateway(config, "dashboard", transform=lambda text: text + clusters)
    receiver.stop()
    collector.stop()
    idp.stop()


def scrape_names(gw) -> set[str]:
    with urllib.request.urlopen(f"http://{gw.envoy.admin}/stats/prometheus", timeout=5) as r:
        return exported_names(r.read().decode())


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
    deadline = time.monotonic() + 15  # the key set's age once the IdP's keys are installed
    while "warden_key_age_seconds" not in scrape_names(risk_gateway):
        assert time.monotonic() < deadline, risk_gateway.log()[-2000:]
        time.sleep(0.5)
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
