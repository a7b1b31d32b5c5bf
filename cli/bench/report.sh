#!/usr/bin/env bash
# `make bench-report`: `warden report` over RECORDS (default 1,000,000) decision records.
#
# The records are the shadow-mode replay of model/generate.py's held-out traffic (39,388 requests of
# 41 parties over 7 days, through this repo's engine), repeated with fresh request ids and parties
# and spread over 14 days, so the report has a previous period to compute drift against. Prints the
# wall time, peak memory and the report's size.
set -euo pipefail
cd "$(dirname "$0")/../.."
VPY=${VPY:-.venv/bin/python}
CLI=target/release/warden
RECORDS=${RECORDS:-1000000}
B=target/bench-report
mkdir -p "$B"
export PYTHONHASHSEED=0
"$VPY" model/generate.py --seed 2 --prefix t- --days 7 --humans 30 --services 5 --agents 6 \
  --episodes 6 --out "$B/trace.jsonl" --config "$B/config.json" > /dev/null
"$VPY" - "$B/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c.setdefault("risk", {})["mode"] = "shadow"
json.dump(c, open(sys.argv[1], "w"))
PY
"$CLI" replay --config "$B/config.json" "$B/trace.jsonl" > "$B/once.jsonl"
"$VPY" - "$B/once.jsonl" "$B/records.jsonl" "$RECORDS" <<'PY'
import json, sys
src, out, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = [json.loads(l) for l in open(src)]
t0 = min(r["ts_ms"] for r in base)
span = max(r["ts_ms"] for r in base) - t0 + 1
n = 0
with open(out, "w") as f:
    copy = 0
    while n < want:
        for r in base:
            if n >= want:
                break
            r = dict(r)
            # Copies interleave over 14 days; each copy's parties are its own.
            r["ts_ms"] = t0 + (r["ts_ms"] - t0) * 2 + (copy % 2) * 1 + (copy // 2) % 7
            r["request_id"] = f"c{copy}-{r['request_id']}"
            if r.get("subject"):
                r["subject"] = f"c{copy % 50}-{r['subject']}"
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
            n += 1
        copy += 1
PY
UNTIL=$("$VPY" -c "import json,sys; print(max(json.loads(l)['ts_ms'] for l in open(sys.argv[1])) + 1)" "$B/records.jsonl")
echo "records: $(wc -l < "$B/records.jsonl"), $(du -h "$B/records.jsonl" | cut -f1)"
/usr/bin/time -f "warden report: %e s wall, %M KB peak RSS" \
  "$CLI" report "$B/records.jsonl" --since 7d --until-ms "$UNTIL" -o "$B/report.html"
echo "report: $(du -h "$B/report.html" | cut -f1)"
