"""From shadow to enforcement on the operator's own traffic, end to end through real Envoy (2 workers):

1. shadow traffic (the risk tests' pattern: histories built request by request, then the request that
   matters) from benign populations and attack scenarios, through a running Envoy whose listener
   comes from an LDS file;
2. the decision records collected from the gateway's log; `warden report` rendered in headless
   Chromium (Debian's `chromium`) with a screenshot kept as a test artefact and no console message;
3. labels: the challenges of a benign population (a treasury desk whose transfers come from a desk
   app its members never used before, on the trading floor's network, where they never were) marked
   `fp`, the attacks' challenges `tp`;
4. retraining (`model/retrain.sh`: the records' features, the labels and the synthetic attacks);
5. the new model loaded through the config (`risk.model`) into the running Envoy (an LDS update);
6. the same traffic again with fresh identities: the treasury desk's false challenges fall, every
   attack episode is still challenged, and habitual users still are not.

Before/after per population is written to target/test-artefacts/review/loop.json.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from conftest import ROOT, Gateway, raw_request
from test_config_reload import lds_bootstrap, replace_lds, start_lds_envoy
from test_risk import HOME, risk_config

CLI = ROOT / "target" / "release" / "warden"
ARTEFACTS = ROOT / "target" / "test-artefacts" / "review"
HISTORY = 12
TREASURY_APP = "treasury-desk/2.0"
ATTACKS = ("stolen_token", "impossible_travel", "privilege_probing", "credential_stuffing")


def shadow_config(keys, api_key, model: bytes | None = None) -> dict:
    c = risk_config(keys, api_key)
    c["risk"]["mode"] = "shadow"
    if model is not None:
        c["risk"]["model"] = base64.b64encode(model).decode()
    return c


class Traffic:
    """One round of traffic. Subjects name their population and round (`treasury-r1<hex>`): the
    gateway sets its own request ids (it is the edge), so records are told apart by subject."""

    def __init__(self, port: int, keys, round_: int):
        self.port, self.keys, self.round = port, keys, round_
        self.last = ""

    def send(self, method: str, path: str, token: str | None, *, source: str, country: str = "NO",
             agent: str = "bank-app/4.2") -> int:
        headers = [("x-geo-country", country), ("user-agent", agent)]
        if token:
            headers.append(("authorization", f"Bearer {token}"))
        status, _, _ = raw_request(self.port, method, path, headers, source=source)
        return status

    def user(self, pop: str, home: str) -> str:
        """A fresh user of `pop` with an ordinary history of reads from home: its token."""
        self.last = f"{pop}-r{self.round}{uuid.uuid4().hex[:10]}"
        token = self.keys.mint(sub=self.last, exp=int(time.time()) + 3600)
        for i in range(HISTORY):
            assert self.send("GET", f"/orders/{i % 3}", token, source=home) == 200
        return token

    def run(self) -> None:
        r = self.round
        for i in range(6):
            home = f"127.{10 + r}.{i}.1"
            tok = self.user("habitual", home)
            for j in range(2):
                self.send("GET", f"/orders/{j}", tok, source=home)
        for i in range(6):
            home = f"127.{20 + r}.{i}.1"
            tok = self.user("treasury", home)
            # A new client alone (a new app at home) is no reason to challenge; a new client from a
            # network the user never came from is, the first time: the trading floor's desk app.
            floor = f"127.{25 + r}.{i}.1"
            for _ in range(3):
                self.send("POST", "/transfer", tok, source=floor, agent=TREASURY_APP)
        for e in range(3):
            tok = self.user(f"stolen_token~{e}", f"127.{30 + r}.{e}.1")
            for _ in range(3):
                self.send("POST", "/transfer", tok, source=f"127.{40 + r}.{e}.9", country="BR", agent="curl/8.5")
        for e in range(3):
            tok = self.user(f"impossible_travel~{e}", f"127.{50 + r}.{e}.1")
            for _ in range(2):
                self.send("POST", "/transfer", tok, source=f"127.{60 + r}.{e}.9", country="AU")
        for e in range(3):
            home = f"127.{70 + r}.{e}.1"
            tok = self.user(f"privilege_probing~{e}", home)
            for _ in range(8):
                assert self.send("GET", "/admin/users", tok, source=home) == 403
            for _ in range(2):
                self.send("POST", "/transfer", tok, source=home)
        for e in range(2):
            source = f"127.{80 + r}.{e}.9"
            for k in range(25):
                assert self.send("GET", "/orders/1", f"stuffed.{k}.x", source=source) == 401
            for v in range(3):
                tok = self.user(f"credential_stuffing~{e}", f"127.{90 + r}.{e * 3 + v}.1")
                self.send("POST", "/transfer", tok, source=source, agent="python-requests/2.31")

    def wait(self, gw: Gateway) -> None:
        """Until the round's last request is in the log."""
        gw.wait_audit(lambda rec: rec.get("subject") == self.last and rec.get("route") == "transfer")


def population(rec: dict, round_: int | None = None) -> str | None:
    """The population of a record's subject (`treasury-r1...` -> `treasury`), of round `round_`."""
    pop, _, rest = (rec.get("subject") or "").partition("-")
    if not rest.startswith("r") or (round_ is not None and not rest.startswith(f"r{round_}")):
        return None
    return pop


def summary(records: list[dict], round_: int, model: str | None = None) -> dict:
    """Per population: its scored requests (transfers; every read for habitual users) and the share
    challenged; per attack episode: challenged at least once or not."""
    out: dict = {"populations": {}, "episodes": {}}
    for rec in records:
        pop = population(rec, round_)
        if pop is None or rec.get("risk_score") is None:
            continue
        if pop != "habitual" and rec.get("route") != "transfer":
            continue
        if model is not None:
            assert rec["model"] == model, rec
        name = pop.split("~")[0]
        p = out["populations"].setdefault(name, {"scored": 0, "challenged": 0})
        p["scored"] += 1
        challenged = rec["decision"] in ("step_up", "block")
        p["challenged"] += challenged
        if "~" in pop:
            out["episodes"][pop] = out["episodes"].get(pop, False) or challenged
    for p in out["populations"].values():
        p["share"] = round(p["challenged"] / p["scored"], 3)
    return out


def console_messages(html: Path, shot: Path) -> list[str]:
    """Headless Chromium opens `html` from disk and writes a screenshot: the page's console lines."""
    proc = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr",
         "--v=0", "--window-size=1100,6000", f"--screenshot={shot}", html.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def wait_for_model(gw: Gateway, traffic: Traffic, model_id: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        sub = f"probe-{uuid.uuid4().hex[:8]}"
        traffic.send("GET", "/orders/1", traffic.keys.mint(sub=sub), source="127.99.0.1")
        rec = gw.wait_audit(lambda r: r.get("subject") == sub)
        if rec.get("model") == model_id:
            return
        time.sleep(0.5)
    raise AssertionError(f"the gateway never scored with {model_id}")


def test_shadow_report_labels_retrain_deploy(envoys, upstream, keys, api_key, tmp_path):
    if not shutil.which("chromium"):
        pytest.fail("chromium missing: `make integration` installs it")
    if not CLI.exists():
        pytest.fail(f"{CLI} missing: run `make build` first")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)

    # 1. Shadow traffic through a running Envoy (its listener from an LDS file).
    # The client plays the edge that owns x-geo-country.
    envoy, port, lds = start_lds_envoy(envoys, shadow_config(keys, api_key), upstream.port, tmp_path, geo="edge")
    gw = Gateway(envoy, port)
    first = Traffic(port, keys, 1)
    first.run()
    first.wait(gw)

    # 2. The records from the gateway's log; the report, rendered in Chromium.
    records = [rec for _, rec in gw.audit_records()]
    recs = tmp_path / "records.jsonl"
    recs.write_text("".join(json.dumps(r) + "\n" for r in records))
    before = summary(records, 1)
    assert before["populations"]["treasury"]["share"] >= 0.5, before
    assert before["populations"]["habitual"]["challenged"] == 0, before

    labels = tmp_path / "labels.jsonl"
    with labels.open("w") as f:
        for rec in records:
            pop = population(rec, 1) or ""
            if rec["decision"] == "step_up" and pop == "treasury":
                f.write(json.dumps({"request_id": rec["request_id"], "label": "fp"}) + "\n")
            elif rec["decision"] == "step_up" and pop.split("~")[0] in ATTACKS:
                f.write(json.dumps({"request_id": rec["request_id"], "label": "tp"}) + "\n")
    html = ARTEFACTS / "report.html"
    subprocess.run([str(CLI), "report", str(recs), "--since", "1h", "--labels", str(labels), "-o", str(html)],
                   check=True, capture_output=True, text=True, timeout=120)
    text = html.read_text()
    assert "labelled fp" in text and text.count("<svg") >= 7
    shot = ARTEFACTS / "report.png"
    shot.unlink(missing_ok=True)
    assert console_messages(html, shot) == []
    assert shot.stat().st_size > 50_000
    # The console check can fail: a page that logs an error is caught.
    noisy = tmp_path / "noisy.html"
    noisy.write_text("<!DOCTYPE html><html><body><script>console.error('caught')</script></body></html>")
    assert any("caught" in line for line in console_messages(noisy, tmp_path / "noisy.png"))

    # 3-4. Retraining on the records, the labels and the synthetic attacks.
    model = tmp_path / "retrained.onnx"
    env = {**os.environ, "RECORDS": str(recs), "LABELS": str(labels), "OUT": str(model)}
    proc = subprocess.run(["bash", "model/retrain.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trained = json.loads(proc.stdout)
    new = model.read_bytes()
    # Deterministic: the same records and labels give the same bytes.
    again = tmp_path / "again.onnx"
    proc = subprocess.run(["bash", "model/retrain.sh"], cwd=ROOT, env={**env, "OUT": str(again)}, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0 and again.read_bytes() == new, proc.stderr[-3000:]
    # On the held-out slice, the labelled false challenges are gone and every synthetic attack
    # scenario the shipped model mostly challenges is still mostly challenged, none less than before
    # (the ones it misses, e.g. agent_new_tool, are the model card's open goals, not this loop's).
    held = trained["held_out"]
    if "operator_fp" in held["after"]:  # (a quarter of 18 requests, by request id hash: almost always)
        assert held["before"]["operator_fp"]["challenged"] == 1.0
        assert held["after"]["operator_fp"]["challenged"] == 0.0
    for pop, r in held["after"].items():
        if r["label"] == 1:
            assert r["challenged"] >= min(0.5, held["before"][pop]["challenged"]), (pop, held)
    model_id = "risk-" + hashlib.sha256(new).hexdigest()[:12]

    # 5. The new model through the config, into the running Envoy (an LDS update).
    _, listener = lds_bootstrap(shadow_config(keys, api_key, new), port, upstream.port, lds, geo="edge")
    replace_lds(lds, listener)
    second = Traffic(port, keys, 2)
    wait_for_model(gw, second, model_id)

    # 6. The same traffic, fresh identities, the new model.
    second.run()
    second.wait(gw)
    after = summary([rec for _, rec in gw.audit_records()], 2, model_id)
    kept = ("rows", "budget", "calibration_shift", "kinds", "operator_weights", "constrained_to_zero", "held_out")
    result = {"model": model_id, "before": before, "after": after, "retrain": {k: trained[k] for k in kept}}
    (ARTEFACTS / "loop.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({"before": before, "after": after}))

    b, a = before["populations"], after["populations"]
    assert a["treasury"]["share"] < b["treasury"]["share"] / 2, result
    assert a["habitual"]["challenged"] == 0, result
    missed = [e for e, seen in after["episodes"].items() if not seen]
    assert not missed, result
    assert len(after["episodes"]) == 11, after["episodes"]
