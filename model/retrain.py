#!/usr/bin/env python3
"""Retrain Warden's risk model on the operator's own decision records, their labels and the synthetic
attack scenarios, and export it to ONNX for `risk.model` (no rebuild).

Data:
- the operator's records (the gateway's decision log): every scored record, with the features as
  the engine recorded them (`risk_features`, by name; no token needed). Labelled `attack` or `tp`:
  an attack; `fp` or `benign`: benign; unlabelled: benign if it was let through (`allow`, `tag`),
  left out if it was challenged or blocked (nobody said whether that was right) or if its party (the
  acting agent, else the subject) has a request labelled `attack` or `tp` (the requests of a confirmed
  attacker that slipped through are not evidence of what is benign). Each record's population is
  `operator_fp` (labelled fp), `operator_attack`, or `operator_<kind>`.
- the synthetic attacks: `warden features` output over model/generate.py's traffic, with their
  scenarios (operators rarely have attacks of their own), and beside them the synthetic benign
  populations of the same simulated world (unless `--attacks-only`): without them, the fit separates
  the operator's world from the simulation (its networks, countries) rather than attacks from benign
  requests, and loses signals such as `burst` to the sign constraints. Its header is the engine's
  feature list, in order: the records' features are read by those names.

Training reuses model/train.py: the same population weights (every population weighs the same), the
same sign constraints (CONTEXT, NON_POSITIVE, NON_NEGATIVE), the same calibration per kind of caller
(`calibrate_kinds`), the same operator weights and floors (`operator_weights`: `bad_source`,
`impossible_travel`, `recent_failures` at least 2.5) and the same export. Calibration runs on the
operator's benign records in the training slice, each kind on its own (the kind flags the records'
features carry): the intercept is lowered until at most `--budget` of each benign population of
people scores at or above `--step-up-at` (the false-challenge budget; a tag refuses no person), and
the `agent` and `service` weights (at most 0) until at most `--budget` of each benign population of
that kind scores at or above `--tag-at`, where the throttle answers callers that cannot step up.
Never raised to spend an unused budget. A machine kind with fewer than MIN_KIND_ROWS benign training
records keeps the `--old` model's weight (the report says which). A deterministic slice of the
operator's records (by request id hash, `--holdout`) and of the synthetic attacks is held out, and
the before (`--old`) / after challenge rates per population are reported on it. Deterministic: the
same inputs give the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import train  # noqa: E402  (sets the single-thread BLAS environment first)

LABELS = ("fp", "tp", "benign", "attack")
# Fewer benign training records of a machine kind than this, and its weight is the old model's: a
# budget's quantile over a handful of requests says little about the kind.
MIN_KIND_ROWS = 50


def split(key: str, holdout: float) -> bool:
    """True when `key` is in the held-out slice (a stable hash, not Python's salted one)."""
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return (h % 10_000) < holdout * 10_000


def labels(path: Path | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if path is None:
        return out
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        if not raw.strip():
            continue
        line = json.loads(raw)
        if line.get("label") not in LABELS or not isinstance(line.get("request_id"), str):
            raise SystemExit(f"{path} line {n}: expected {{\"request_id\": ..., \"label\": fp|tp|benign|attack}}")
        out[line["request_id"]] = line["label"]
    return out


def party(rec: dict) -> str | None:
    """Who acted: the current actor of a delegation, else the subject (as `warden report` names them)."""
    actors = rec.get("actors") or []
    return actors[0] if actors else rec.get("subject")


def operator_rows(path: Path, names: list[str], marks: dict[str, str]):
    """(x, y, population, request id) of the operator's scored records."""
    xs, ys, pops, ids = [], [], [], []
    skipped = 0
    attackers = set()
    with path.open() as f:
        for raw in f:
            if raw.strip():
                rec = json.loads(raw)
                if marks.get(rec.get("request_id")) in ("attack", "tp"):
                    attackers.add(party(rec))
    attackers.discard(None)
    with path.open() as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            rec = json.loads(raw)
            feats = rec.get("risk_features")
            if not feats or rec.get("risk_score") is None:
                continue
            missing = [k for k in names if k not in feats]
            if missing:
                raise SystemExit(f"{path} line {n}: record has no feature {missing[0]!r}: recorded by another "
                                 f"feature set than the engine's ({len(names)} features)")
            rid = rec.get("request_id", f"line-{n}")
            mark = marks.get(rid)
            if mark in ("attack", "tp"):
                y, pop = 1, "operator_attack"
            elif mark == "fp":
                y, pop = 0, "operator_fp"
            elif mark == "benign" or (rec.get("decision") in ("allow", "tag") and party(rec) not in attackers):
                y, pop = 0, f"operator_{rec.get('kind') or 'unknown'}"
            else:
                skipped += 1  # challenged or blocked and not reviewed, or a confirmed attacker's
                continue
            xs.append([float(feats[k]) for k in names])
            ys.append(y)
            pops.append(pop)
            ids.append(rid)
    return np.asarray(xs, dtype=np.float64).reshape(-1, len(names)), np.asarray(ys), pops, ids, skipped


def scores(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """The filter's 0-100 scores of `x` under an ONNX model (onnxruntime)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    if len(x) == 0:
        return np.zeros(0)
    p = sess.run(["probability"], {"features": x.astype(np.float32)})[0].reshape(-1)
    return np.round(np.clip(p, 0, 1) * 100)


def shipped_weights(model_bytes: bytes, names: list[str]) -> dict[str, float]:
    """The weights of an exported model (train.export's `w`, float32), by feature name, rounded as
    train.py rounds them."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(model_bytes)
    props = {p.key: p.value for p in model.metadata_props}
    if props.get("feature_names", "").split(",") != names:
        raise SystemExit("--old: the model was trained on other features than the engine's")
    w = next(numpy_helper.to_array(t) for t in model.graph.initializer if t.name == "w")
    return {n: round(float(v), 5) for n, v in zip(names, w)}


def calibrate(names: list[str], x: np.ndarray, y: np.ndarray, pops: list[str], coef: np.ndarray, fitted: float,
              shipped: dict[str, float], args: argparse.Namespace) -> tuple[float, dict]:
    """train.calibrate_kinds over the operator's rows (`x`, `y`, `pops`): the intercept's shift, and in
    `coef` each machine kind's weight, from its own benign rows, or the shipped one when it has fewer
    than MIN_KIND_ROWS. Returns the shift and, per kind, its benign rows and where its weight came from."""
    # A tag target of 1 holds nothing: a tag refuses no person. Machines' budget holds at --tag-at.
    shift, weights = train.calibrate_kinds(names, x, coef, fitted, y, pops, 1.0, args.budget,
                                           tag_at=args.tag_at, step_up_at=args.step_up_at)
    kinds = {}
    for k, rows in train.kind_rows(names, x).items():
        n = int((rows & (y == 0)).sum())
        if k == "human":
            how = "intercept, from these rows" if n else "no: the fitted intercept"
            kinds[k] = {"benign_rows": n, "calibrated": how}
        elif n >= MIN_KIND_ROWS:
            coef[names.index(k)] = weights[k]
            kinds[k] = {"benign_rows": n, "weight": weights[k], "calibrated": "from these rows"}
        else:
            coef[names.index(k)] = shipped[k]
            kinds[k] = {"benign_rows": n, "weight": shipped[k],
                        "calibrated": f"no: fewer than {MIN_KIND_ROWS} benign rows, the --old model's weight kept"}
    return shift, kinds


def rates(s: np.ndarray, y: np.ndarray, pops: list[str], at: int, tag_at: int) -> dict:
    out = {}
    pops_a = np.asarray(pops)
    for p in sorted(set(pops)):
        m = pops_a == p
        out[p] = {"requests": int(m.sum()), "label": int(y[m][0]) if m.any() else 0,
                  "challenged": round(float((s[m] >= at).mean()), 4) if m.any() else 0.0,
                  "tagged": round(float((s[m] >= tag_at).mean()), 4) if m.any() else 0.0}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=Path, required=True, help="the gateway's decision records (JSON lines)")
    ap.add_argument("--labels", type=Path, help="{request_id, label: fp|tp|benign|attack} JSON lines")
    ap.add_argument("--synthetic", type=Path, required=True,
                    help="`warden features` output over model/generate.py traffic (its attacks are used)")
    ap.add_argument("--old", type=Path, default=Path(__file__).with_name("risk.onnx"),
                    help="the model in use, for the before column (default: the embedded one)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--budget", type=float, default=0.01,
                    help="false-challenge budget: share of each benign operator population of people at or above "
                         "--step-up-at, of agents and services at or above --tag-at")
    ap.add_argument("--step-up-at", type=int, default=70)
    ap.add_argument("--tag-at", type=int, default=30)
    ap.add_argument("--holdout", type=float, default=0.25, help="share of records held out for before/after")
    ap.add_argument("--c", type=float, default=1.0, help="inverse L2 regularisation strength")
    ap.add_argument("--attacks-only", action="store_true",
                    help="use only the synthetic attacks, not the synthetic benign populations beside them")
    args = ap.parse_args()
    if not 0 < args.budget < 1 or not 0 < args.holdout < 1:
        ap.error("--budget and --holdout must be between 0 and 1")

    names, sx, sy, sscen, spos, seps = train.load(args.synthetic)
    if args.attacks_only:
        keep = sy == 1
        sx, sy = sx[keep], sy[keep]
        sscen = [s for s, k in zip(sscen, keep) if k]
        spos = [p for p, k in zip(spos, keep) if k]
        seps = [e for e, k in zip(seps, keep) if k]
    skeys = [f"synthetic-{i}" for i in range(len(sy))]
    ox, oy, opops, oids, skipped = operator_rows(args.records, names, labels(args.labels))
    if not (oy == 0).any():
        raise SystemExit(f"{args.records}: no benign operator traffic to calibrate on")

    x = np.vstack([ox, sx])
    y = np.concatenate([oy, sy])
    pops = opops + sscen
    held = np.asarray([split(k, args.holdout) for k in oids + skeys], dtype=bool)
    tr = ~held
    pops_tr = [p for p, h in zip(pops, held) if not h]
    pops_te = [p for p, h in zip(pops, held) if h]
    # Operator records carry no episode positions: each weighs as an early request.
    pos_tr = [p for p, h in zip([-1] * len(oy) + list(spos), held) if not h]
    eps_tr = [e for e, h in zip([""] * len(oy) + list(seps), held) if not h]

    coef, bias, constrained = train.fit(names, x[tr], y[tr], train.weights(y[tr], pops_tr, pos_tr, eps_tr),
                                        args.c)
    coef = np.round(coef, 5)
    fitted = float(np.round(bias, 5))
    op = np.asarray([p.startswith("operator_") for p in pops_tr])
    shift, kinds = calibrate(names, x[tr][op], y[tr][op], [p for p, o in zip(pops_tr, op) if o], coef, fitted,
                             shipped_weights(args.old.read_bytes(), names), args)
    shift = float(np.round(shift, 5))
    bias = float(np.round(fitted - shift, 5))
    benign = (y == 0) & tr
    operator = train.operator_weights(names, coef, x[benign] @ coef + bias)
    baseline = np.round(np.median(x[benign], axis=0), 4)
    model = train.export(names, coef, bias, baseline).SerializeToString()
    args.out.write_bytes(model)

    before = scores(args.old.read_bytes(), x[held])
    after = scores(model, x[held])
    report = {
        "out": str(args.out), "bytes": len(model), "sha256": hashlib.sha256(model).hexdigest(),
        "rows": {"operator": int(len(oy)), "operator_attacks": int(oy.sum()), "synthetic": int(len(sy)),
                 "synthetic_attacks": int(sy.sum()),
                 "held_out": int(held.sum()), "unlabelled_left_out": skipped},
        "budget": args.budget, "step_up_at": args.step_up_at, "bias": bias, "fitted_bias": fitted,
        "calibration_shift": shift, "kinds": kinds, "constrained_to_zero": constrained,
        "operator_weights": operator,
        "held_out": {"before": rates(before, y[held], pops_te, args.step_up_at, args.tag_at),
                     "after": rates(after, y[held], pops_te, args.step_up_at, args.tag_at)},
        "weights": {n: float(c) for n, c in zip(names, coef)},
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
