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
same sign constraints (CONTEXT, NON_POSITIVE, NON_NEGATIVE) and the same export. Calibration: the
intercept is lowered until at most `--budget` of each benign operator population in the training
slice scores at or above `--step-up-at` (the false-challenge budget, measured on the operator's own
traffic; never raised to spend an unused budget). A deterministic slice of the operator's records (by request id hash, `--holdout`) and of the
synthetic attacks is held out, and the before (`--old`) / after challenge rates per population are
reported on it. Deterministic: the same inputs give the same bytes.
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


def edge(at: int) -> float:
    """The logit from which round(100 p) reaches `at`."""
    return float(np.log((at - 0.5) / (100 - at + 0.5)))


def calibrate(logit: np.ndarray, y: np.ndarray, pops: list[str], budget: float, at: int) -> float:
    """How much to lower the intercept so that each benign operator population's (1 - budget) quantile
    falls just below the step-up edge (0 when it already does). Never negative: raising every score
    to spend a budget that a few hundred operator requests leave unused would challenge far more of
    the benign traffic those requests do not show (a first try did: 20 % of the synthetic benign)."""
    pops_a = np.asarray(pops)
    shift = None
    for p in sorted(set(pops_a[(y == 0)])):
        if not p.startswith("operator_"):
            continue
        z = logit[(pops_a == p) & (y == 0)]
        q = float(np.quantile(z, 1 - budget, method="higher"))
        s = q - edge(at) + 1e-3
        shift = s if shift is None else max(shift, s)
    return 0.0 if shift is None else max(0.0, shift)


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
                    help="false-challenge budget: share of each benign operator population at or above --step-up-at")
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
    shift = float(np.round(calibrate(x[tr] @ coef + fitted, y[tr], pops_tr, args.budget, args.step_up_at), 5))
    bias = float(np.round(fitted - shift, 5))
    benign = (y == 0) & tr
    typical = float(np.median(x[benign] @ coef + bias))
    operator = {}
    for n, at in train.OPERATOR_SIGNALS.items():
        if n in names:
            i = names.index(n)
            coef[i] = operator[n] = max(float(coef[i]), float(np.round(train.edge(at) - typical + 1e-3, 5)))
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
        "calibration_shift": shift, "constrained_to_zero": constrained, "operator_weights": operator,
        "held_out": {"before": rates(before, y[held], pops_te, args.step_up_at, args.tag_at),
                     "after": rates(after, y[held], pops_te, args.step_up_at, args.tag_at)},
        "weights": {n: float(c) for n, c in zip(names, coef)},
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
