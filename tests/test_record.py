"""The decision record through real Envoy: written once per request when it ends (the upstream's status,
bytes and duration in it), valid against the checked-in JSON Schema, carried by Envoy's access log through
filter state, and decided again by `warden replay --audit` from the records alone, reproducing the filter's
decisions on the unchanged config and showing what another policy would have done.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import jsonschema
import pytest
from conftest import ROOT, bearer, seen_by_upstream, warden_config

CLI = ROOT / "target" / "release" / "warden"
SCHEMA = json.loads((ROOT / "docs" / "schema" / "decision-record.v1.json").read_text())
HOME = {"x-geo-country": "NO", "user-agent": "bank-app/4.2"}


def record_config(keys, api_key, sink: str = "log") -> dict:
    c = warden_config(keys, api_key, "enforce")
    c["routes"] += [{"name": "keys", "methods": ["POST"], "path": "/keys", "step_up": True}]
    c["risk"] = {"tag_at": 30, "step_up_at": 70, "acr_values": ["mfa"], "max_age_s": 300, "budget_us": 200000,
                 "geo_header_from_edge": True}
    c["audit"] = {"enabled": True, "sink": sink}
    return c


@pytest.fixture(scope="module")
def record_gateway(envoys, keys, api_key):
    # The test client plays the edge that owns x-geo-country (geo="edge": the gateway keeps its value).
    return envoys.gateway(record_config(keys, api_key), "record", geo="edge")


@pytest.fixture(scope="module")
def access_log_gateway(envoys, keys, api_key, tmp_path_factory):
    path = tmp_path_factory.mktemp("record") / "access.log"
    gw = envoys.gateway(record_config(keys, api_key, "filter_state"), "record-filter-state", record_log=path,
                        geo="edge")
    gw.access_log = path
    return gw


def validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(SCHEMA)
    cls.check_schema(SCHEMA)
    return cls(SCHEMA, format_checker=cls.FORMAT_CHECKER)


def three_requests(gw, keys) -> tuple[str, list[str]]:
    """An allowed, a stepped-up and a refused request (and some history): (subject, their request ids)."""
    sub = "user-" + uuid.uuid4().hex[:10]
    token = keys.mint(sub=sub, exp=int(time.time()) + 3600, acr="pwd", auth_time=int(time.time()) - 30)
    ids = []
    for i in range(5):
        seen = seen_by_upstream(gw.get(f"/orders/{i}", headers={**bearer(token), **HOME}))
        ids.append(seen["headers"]["x-request-id"])
    r = gw.request("POST", "/keys", headers={**bearer(token), **HOME})
    assert r.status_code == 401 and "insufficient_user_authentication" in r.headers["www-authenticate"]
    ids.append(r.json()["request_id"])
    r = gw.get("/admin/users", headers={**bearer(token), **HOME})
    assert r.status_code == 403
    ids.append(r.json()["request_id"])
    r = gw.get("/orders/9", headers={**bearer(keys.mint(key=keys.stranger, sub=sub)), **HOME})
    assert r.status_code == 401
    ids.append(r.json()["request_id"])
    return sub, ids


def records_of(gw, ids: list[str]) -> list[dict]:
    return [gw.wait_audit(lambda r, rid=rid: r.get("request_id") == rid) for rid in ids]


def replay(config: dict, records: list[dict], tmp: Path) -> list[dict]:
    cfg, audit = tmp / "config.json", tmp / "audit.jsonl"
    cfg.write_text(json.dumps(config))
    audit.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = subprocess.run(
        [str(CLI), "replay", "--config", str(cfg), "--audit", str(audit)],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_every_record_is_complete_and_valid(record_gateway, keys):
    sub, ids = three_requests(record_gateway, keys)
    records = records_of(record_gateway, ids)
    check = validator()
    for rec in records:
        check.validate(rec)
        assert rec["v"] == 1
    allowed, stepped, forbidden, invalid = records[0], records[5], records[6], records[7]
    assert allowed["decision"] in ("allow", "tag") and allowed["upstream_status"] == 200
    assert allowed["response_bytes"] > 0 and allowed["duration_ms"] >= 0
    assert allowed["user_agent"] == "bank-app/4.2" and allowed["country"] == "NO"
    assert allowed["scopes"] == ["orders:read", "orders:write"] and allowed["required_scopes"] == ["orders:read"]
    assert allowed["claims"]["acr"] == "pwd" and allowed["token_age_s"] <= 60 and allowed["auth_age_s"] >= 30
    assert len(allowed["risk_features"]) > 10 and allowed["model"].startswith("risk-")
    assert stepped["decision"] == "step_up" and stepped["status"] == 401 and "upstream_status" not in stepped
    assert stepped["response_bytes"] > 0
    assert forbidden["reason"] == "insufficient_scope" and forbidden["counted_failure"] is True
    assert invalid["subject"] is None and invalid["status"] == 401
    # Written once per request.
    for rid in ids:
        assert sum(1 for _, r in record_gateway.audit_records() if r.get("request_id") == rid) == 1


def test_replay_from_the_records_alone_reproduces_the_filter(record_gateway, keys, api_key, tmp_path):
    _, ids = three_requests(record_gateway, keys)
    records_of(record_gateway, ids)
    # The gateway's whole audit log, as an operator would replay it: the behavioural state of a
    # source or an identity is built by every request before.
    records = [r for _, r in record_gateway.audit_records() if r.get("v") == 1]
    out = replay(record_config(keys, api_key), records, tmp_path)
    assert len(out) == len(records)
    by_id = {o["request_id"]: o for o in out}
    for rec in records:
        o = by_id[rec["request_id"]]
        assert (o["decision"], o["status"], o["reason"], o.get("risk_score")) == (
            rec["decision"], rec["status"], rec["reason"], rec.get("risk_score")), (rec, o)
        assert o["changed"] is False
        assert o.get("factors", []) == rec.get("factors", [])
    # A request refused before a caller was proven (the stranger's token) has nothing to decide again.
    assert all(o["redecided"] == (o["subject"] is not None) for o in out)
    assert any(not o["redecided"] for o in out) and any(o["decision"] == "step_up" for o in out)
    # Another policy: reading orders now needs an admin scope. The allowed reads become refusals.
    stricter = record_config(keys, api_key)
    for route in stricter["routes"]:
        if route["name"] == "read-order":
            route["scopes"] = ["orders:admin"]
    out = replay(stricter, records, tmp_path)
    reads = [o for o in out if o["route"] == "read-order" and o["redecided"]]
    assert reads and all(o["changed"] and o["reason"] == "insufficient_scope" for o in reads)
    assert all(o["was"]["status"] == 200 for o in reads)


def test_the_access_log_carries_the_record_through_filter_state(access_log_gateway, keys):
    _, ids = three_requests(access_log_gateway, keys)
    check = validator()
    deadline = time.monotonic() + 10
    found = {}
    while time.monotonic() < deadline and len(found) < len(ids):
        for line in access_log_gateway.access_log.read_text().splitlines():
            if line.startswith("{"):
                rec = json.loads(line)
                found[rec["request_id"]] = rec
        time.sleep(0.05)
    assert set(ids) <= set(found), access_log_gateway.log()[-2000:]
    for rid in ids:
        check.validate(found[rid])
    assert found[ids[0]]["upstream_status"] == 200
    # The filter-state sink replaces the log line.
    assert not any(r.get("request_id") in ids for _, r in access_log_gateway.audit_records())


def test_ocsf_events_of_the_records(record_gateway, keys, tmp_path):
    _, ids = three_requests(record_gateway, keys)
    records = records_of(record_gateway, ids)
    audit = tmp_path / "audit.jsonl"
    audit.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = subprocess.run([str(CLI), "ocsf", str(audit)], capture_output=True, text=True, timeout=30, check=True)
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert [e["class_uid"] for e in events] == [6003] * len(records)
    assert events[0]["status_id"] == 1 and events[5]["status_id"] == 2
    assert events[0]["http_response"]["code"] == 200 and events[0]["actor"]["user"]["uid"] == records[0]["subject"]


@pytest.mark.run_last
def test_every_record_of_the_session_validates(gateway, shadow_gateway):
    """After every other test: each record the session's main gateways wrote (every kind of refusal,
    shadow mode, API keys, delegation ...) is valid against the checked-in schema."""
    check = validator()
    n = 0
    for gw in (gateway, shadow_gateway):
        before = len(gw.audit_records())  # at least one record, when run alone too
        gw.get("/orders/1")
        deadline = time.monotonic() + 10
        while len(gw.audit_records()) == before:
            assert time.monotonic() < deadline, gw.log()[-2000:]
            time.sleep(0.05)
        for _, rec in gw.audit_records():
            if "v" in rec:
                check.validate(rec)
                n += 1
    assert n >= 2, n
