#!/usr/bin/env bash
# `make model`: traffic -> features (this repo's `warden features`) -> model/risk.onnx -> evaluation.
#
# The engine does not learn an identity's habits from requests its model sends to step-up, so the
# features of a trace depend (a little) on the embedded model. Training therefore starts from a neutral
# model (all weights 0: nothing is stepped up, every habit is learnt) and iterates: rebuild the CLI with
# the current model, recompute features, retrain, until risk.onnx no longer changes (at most 5 rounds).
# Starting from the neutral model, not from the committed risk.onnx, makes the result a function of
# the code and the seeds alone: two runs give the same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
VPY=${VPY:-.venv/bin/python}
CLI=target/release/warden
B=model/build
mkdir -p "$B"
export PYTHONHASHSEED=0 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

"$VPY" model/generate.py --seed 1 --out "$B/train.jsonl" --config model/config.json > "$B/train.summary.json"
"$VPY" model/generate.py --seed 2 --prefix t- --days 7 --humans 30 --services 5 --agents 6 \
  --episodes 6 --out "$B/test.jsonl" > "$B/test.summary.json"

# The engine's feature names: the header `warden features` prints first, even when the embedded
# model does not fit the engine (it then refuses the config, hence `|| true`).
cargo build --release -p warden-cli
"$CLI" features --config model/config.json /dev/null 2>/dev/null | head -n 1 > "$B/header.json" || true
"$VPY" model/train.py --neutral "$B/header.json" --out model/risk.onnx

converged=no
for round in 1 2 3 4 5; do
  cargo build --release -p warden-cli
  cp model/risk.onnx "$B/previous.onnx"
  "$CLI" features --config model/config.json "$B/train.jsonl" > "$B/train.features.jsonl"
  "$VPY" model/train.py --train "$B/train.features.jsonl" --out model/risk.onnx > "$B/train.report.json"
  if cmp -s model/risk.onnx "$B/previous.onnx"; then converged=yes; echo "model: fixed point after round $round"; break; fi
  echo "model: round $round changed risk.onnx; retraining with it embedded"
done
[ "$converged" = yes ] || echo "model: WARNING: no fixed point after 5 rounds" >&2
echo "$converged $round" > "$B/fixed_point"
# Held-out features from the engine with the final model embedded (what the filter would compute).
cargo build --release -p warden-cli
"$CLI" features --config model/config.json "$B/test.jsonl" > "$B/test.features.jsonl"
"$VPY" model/evaluate.py --model model/risk.onnx --test "$B/test.features.jsonl" \
  --train-report "$B/train.report.json" --data "$B/train.summary.json" "$B/test.summary.json" \
  --fixed-point "$B/fixed_point" --card model/MODEL_CARD.md --golden model/golden.json \
  --benchmarks model/BENCHMARKS.md
sha256sum model/risk.onnx
