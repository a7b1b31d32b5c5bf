#!/usr/bin/env python3
"""Train Warden's risk model on `warden features` output and export it to ONNX.

The model is a logistic regression over the engine's features (scikit-learn), exported as a plain
ONNX graph that tract runs in a few microseconds inside the filter:

    probability   = Sigmoid(features @ W + B)                     [batch, 1]
    contributions = (features - BASELINE) * W                     [batch, N]

so that `sum(contributions) + B + W . BASELINE` is exactly the logit: every score is explained
additively, feature by feature, against BASELINE (the median benign request of the training set).
The feature names ride along in the model's metadata (`feature_names`) and in `golden.json`, and the
Rust parity test checks them against the engine's `FEATURE_NAMES`.

Deterministic: fixed data (seeded generator), a deterministic solver, one BLAS thread, and weights
rounded before export, so `make model` rewrites `risk.onnx` byte for byte.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

# Features that say who the caller is rather than what it does: the model gives them no weight, so
# that "is an AI agent" (delegation) or "has a long history" can never by itself read as risk. They
# stay in the input (the engine's feature list is the contract) with weight 0.
CONTEXT = ("delegation_depth", "history", "first_seen")

OPSET = 13  # MatMul, Add, Sub, Mul, Sigmoid: all in tract's ONNX support
IR_VERSION = 8


def load(path: Path) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """Feature names, X, y and scenarios of the lines that reached the risk stage."""
    names: list[str] = []
    xs, ys, scenarios = [], [], []
    with path.open() as f:
        for raw in f:
            line = json.loads(raw)
            if "feature_names" in line:
                names = list(line["feature_names"])
                continue
            if line.get("features") is None:
                continue  # refused before the risk stage: nothing to score
            xs.append(line["features"])
            ys.append(int(line["label"]))
            scenarios.append(line["scenario"])
    if not names:
        raise SystemExit(f"{path}: no feature_names header (not `warden features` output?)")
    return names, np.asarray(xs, dtype=np.float64), np.asarray(ys), scenarios


def weights(y: np.ndarray, scenarios: list[str]) -> np.ndarray:
    """Every scenario weighs the same in total, attacks and benign alike: a loud attack (100x
    volume) must not drown a quiet one (impossible travel), nor service accounts the humans."""
    w = np.zeros(len(y))
    kinds = sorted(set(scenarios))
    for s in kinds:
        idx = [i for i, x in enumerate(scenarios) if x == s]
        w[idx] = 1.0 / len(idx)
    attack = np.asarray(y) == 1
    # Benign and attack halves weigh the same; the mean weight is 1.
    w[attack] *= 0.5 / w[attack].sum()
    w[~attack] *= 0.5 / w[~attack].sum()
    return w * len(y)


def export(names: list[str], coef: np.ndarray, bias: float, baseline: np.ndarray) -> onnx.ModelProto:
    n = len(names)
    w = coef.astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["features", "W"], ["linear"], name="linear"),
        helper.make_node("Add", ["linear", "B"], ["logit"], name="logit"),
        helper.make_node("Sigmoid", ["logit"], ["probability"], name="probability"),
        helper.make_node("Sub", ["features", "baseline"], ["centered"], name="centered"),
        helper.make_node("Mul", ["centered", "w"], ["contributions"], name="contributions"),
    ]
    inits = [
        numpy_helper.from_array(w.reshape(n, 1), "W"),
        numpy_helper.from_array(np.asarray([bias], dtype=np.float32), "B"),
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(baseline.astype(np.float32), "baseline"),
    ]
    graph = helper.make_graph(
        nodes,
        "warden_risk",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", n])],
        [
            helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch", 1]),
            helper.make_tensor_value_info("contributions", TensorProto.FLOAT, ["batch", n]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="warden-model", producer_version="1")
    model.ir_version = IR_VERSION
    model.doc_string = "Warden risk model: logistic regression; contributions = (x - baseline) * w"
    helper.set_model_props(model, {"feature_names": ",".join(names)})
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=Path, required=True, help="`warden features` output")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--c", type=float, default=1.0, help="inverse L2 regularisation strength")
    args = ap.parse_args()

    names, x, y, scenarios = load(args.train)
    used = [i for i, n in enumerate(names) if n not in CONTEXT]
    clf = LogisticRegression(C=args.c, solver="lbfgs", max_iter=5000, tol=1e-8)
    clf.fit(x[:, used], y, sample_weight=weights(y, scenarios))
    coef = np.zeros(len(names))
    coef[used] = np.round(clf.coef_.reshape(-1), 5)
    bias = float(np.round(clf.intercept_[0], 5))
    baseline = np.round(np.median(x[y == 0], axis=0), 4)
    model = export(names, coef, bias, baseline)
    args.out.write_bytes(model.SerializeToString())
    report = {"out": str(args.out), "bytes": args.out.stat().st_size, "rows": int(len(y)),
              "attacks": int(y.sum()), "bias": bias,
              "weights": {n: float(c) for n, c in zip(names, coef)},
              "baseline": {n: float(b) for n, b in zip(names, baseline)}}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
