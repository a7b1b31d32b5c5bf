#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS (default 60) each, seeded from the corpus in
# fuzz/corpus/<target> (checked in); what libFuzzer finds goes to fuzz/work/<target> (not checked in;
# FUZZ_MERGE=1 merges it, minimised, into fuzz/corpus). Prints one summary line per target:
# executions, coverage (libFuzzer's `cov`, `ft`), corpus size. A crash stops the run; its input is in
# fuzz/artifacts/<target>/ and becomes a regression test (fuzz/README.md).
#   FUZZ_SECONDS=3600 bash fuzz/run.sh            # the long run (`make fuzz`)
#   FUZZ_SECONDS=3 bash fuzz/run.sh               # the smoke run in `make test`
#   FUZZ_TARGETS="jws dpop" bash fuzz/run.sh      # some targets only
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
TARGETS="${FUZZ_TARGETS:-config jws jwks dpop introspection revocation_feed trace_line route_path cidr state_record mcp_body}"
export RUSTC_BOOTSTRAP=1   # cargo-fuzz passes -Z flags; stable rustc accepts them with this
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
# -s none: the code is safe Rust (unsafe_code = "forbid"), so AddressSanitizer finds nothing a panic
# would not; without it the build is faster and each execution several times cheaper.
cargo fuzz build -s none -O
mkdir -p logs
for t in $TARGETS; do
  mkdir -p "corpus/$t" "work/$t"
  cargo fuzz run -s none -O "$t" "work/$t" "corpus/$t" -- \
    -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
    -print_final_stats=1 >"logs/$t.log" 2>&1 || { echo "fuzz: $t failed, see fuzz/logs/$t.log"; tail -30 "logs/$t.log"; exit 1; }
  execs=$(grep -m1 'stat::number_of_executed_units' "logs/$t.log" | awk '{print $2}')
  cov=$(grep -E '^#[0-9]+' "logs/$t.log" | tail -1 | grep -oE '(cov|ft): [0-9]+' | tr '\n' ' ' || true)
  echo "fuzz: $t ${SECONDS_EACH}s executions=${execs:-?} ${cov:-cov: ?}found=$(ls "work/$t" | wc -l)"
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    cargo fuzz run -s none -O "$t" "corpus/$t" "work/$t" -- -merge=1 >"logs/$t.merge.log" 2>&1
  fi
done
