#!/usr/bin/env bash
# `make retrain RECORDS=... LABELS=... OUT=...`: a risk model retrained on the operator's decision records
# and labels plus the synthetic attack scenarios (model/retrain.py), for `risk.model`.
#
# The synthetic attacks are model/generate.py's training traffic (seed 1, as `make model`), their
# features computed by this repo's engine (`warden features`, the embedded model), cached in
# model/build. Deterministic: the same records and labels give the same model bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
VPY=${VPY:-.venv/bin/python}
CLI=${CLI:-target/release/warden}
: "${RECORDS:?RECORDS=the decision records of the gateway (JSON lines)}"
: "${OUT:?OUT=where to write the model}"
B=model/build
mkdir -p "$B"
export PYTHONHASHSEED=0 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
if [[ ! -s "$B/synthetic.features.jsonl" || "$CLI" -nt "$B/synthetic.features.jsonl" ]]; then
  "$VPY" model/generate.py --seed 1 --out "$B/synthetic.jsonl" --config "$B/synthetic.config.json" > /dev/null
  "$CLI" features --config "$B/synthetic.config.json" "$B/synthetic.jsonl" > "$B/synthetic.features.jsonl.tmp"
  mv "$B/synthetic.features.jsonl.tmp" "$B/synthetic.features.jsonl"
fi
args=(--records "$RECORDS" --synthetic "$B/synthetic.features.jsonl" --out "$OUT")
[[ -n "${LABELS:-}" ]] && args+=(--labels "$LABELS")
[[ -n "${BUDGET:-}" ]] && args+=(--budget "$BUDGET")
[[ -n "${STEP_UP_AT:-}" ]] && args+=(--step-up-at "$STEP_UP_AT")
"$VPY" model/retrain.py "${args[@]}"
