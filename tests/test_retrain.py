"""`model/retrain.py` on an operator's decision records calibrates as `make model` does.

The operator's gateway is a world of its own (model/generate.py, another seed and other names than the
synthetic traffic), its decision records written by the engine (`warden replay`). Its people, agents
and probes are there; it has no service accounts. It reviewed the requests its callers made after a
refusal (a partner app that retried with a stale scope) and labelled them `fp`, and it never noticed
its probes: their requests that were let through count as benign. A fit on that learns that refusals
are harmless, yet:
- `recent_failures` keeps its floor (train.WEIGHT_FLOORS), as in the shipped model;
- the `agent` weight is calibrated on the operator's agents: at most the budget of each benign
  population of agents reaches `tag_at`, where the throttle answers a caller that cannot step up;
- `service`, with no record to calibrate on, keeps the shipped model's weight, and the report says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "model"))

import retrain  # noqa: E402
import train  # noqa: E402

CLI = ROOT / "target" / "release" / "warden"
SHIPPED = ROOT / "model" / "risk.onnx"
WORLD = ["--days", "5", "--humans", "10", "--services", "3", "--agents", "4", "--episodes", "2"]
BUDGET = 0.01
ENV = {**os.environ, "PYTHONHASHSEED": "0"}


def run(*args: str | Path, out: Path | None = None) -> str:
    proc = subprocess.run([str(a) for a in args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if out is not None:
        out.write_text(proc.stdout)
    return proc.stdout


@pytest.fixture(scope="module")
def retrained(tmp_path_factory):
    if not CLI.exists():
        pytest.fail(f"{CLI} missing: run `make build` first")
    d = tmp_path_factory.mktemp("retrain")
    gen = [sys.executable, ROOT / "model" / "generate.py", *WORLD]
    run(*gen, "--seed", "1", "--out", d / "synthetic.jsonl", "--config", d / "synthetic.config.json")
    run(CLI, "features", "--config", d / "synthetic.config.json", d / "synthetic.jsonl",
        out=d / "synthetic.features.jsonl")
    run(*gen, "--seed", "3", "--prefix", "op-", "--out", d / "operator.jsonl", "--config", d / "operator.config.json")
    replayed = run(CLI, "replay", "--config", d / "operator.config.json", d / "operator.jsonl")
    records, labels = [], []
    for line in replayed.splitlines():
        rec = json.loads(line)
        if rec.get("kind") == "service":
            continue
        records.append(line + "\n")
        after_refusal = (rec.get("risk_features") or {}).get("recent_failures", 0) > 0
        if rec["label"] == 0 and after_refusal:
            labels.append(json.dumps({"request_id": rec["request_id"], "label": "fp"}) + "\n")
    (d / "records.jsonl").write_text("".join(records))
    (d / "labels.jsonl").write_text("".join(labels))
    report = json.loads(run(sys.executable, ROOT / "model" / "retrain.py", "--records", d / "records.jsonl",
                            "--labels", d / "labels.jsonl", "--synthetic", d / "synthetic.features.jsonl",
                            "--old", SHIPPED, "--budget", str(BUDGET), "--out", d / "retrained.onnx"))
    names = json.loads((d / "synthetic.features.jsonl").open().readline())["feature_names"]
    return d, report, names


def test_recent_failures_keeps_its_floor(retrained):
    d, report, names = retrained
    weights = retrain.shipped_weights((d / "retrained.onnx").read_bytes(), names)
    floor = train.WEIGHT_FLOORS["recent_failures"]
    assert weights["recent_failures"] >= floor, report["weights"]
    assert report["operator_weights"]["recent_failures"] == pytest.approx(weights["recent_failures"])


def test_agents_are_calibrated_on_their_own_records(retrained):
    d, report, names = retrained
    x, y, pops, ids, _ = retrain.operator_rows(d / "records.jsonl", names, retrain.labels(d / "labels.jsonl"))
    training = np.asarray([not retrain.split(i, 0.25) for i in ids])
    agent = train.kind_rows(names, x)["agent"] & training & (y == 0)
    assert report["kinds"]["agent"]["benign_rows"] == agent.sum() >= retrain.MIN_KIND_ROWS, report["kinds"]
    assert report["kinds"]["agent"]["calibrated"] == "from these rows"
    s = retrain.scores((d / "retrained.onnx").read_bytes(), x)
    pops_a = np.asarray(pops)
    tagged = {p: float((s[agent & (pops_a == p)] >= 30).mean()) for p in sorted(set(pops_a[agent]))}
    assert "operator_agent" in tagged
    assert all(share <= BUDGET for share in tagged.values()), tagged


def test_a_kind_without_records_keeps_the_shipped_weight(retrained):
    d, report, names = retrained
    shipped = retrain.shipped_weights(SHIPPED.read_bytes(), names)
    weights = retrain.shipped_weights((d / "retrained.onnx").read_bytes(), names)
    assert report["kinds"]["service"]["benign_rows"] == 0
    assert "the --old model's weight kept" in report["kinds"]["service"]["calibrated"]
    assert weights["service"] == pytest.approx(shipped["service"], abs=1e-5)
