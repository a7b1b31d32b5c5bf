#!/usr/bin/env bash
# `make bench`: Envoy passthrough vs Envoy's jwt_authn vs Warden under wrk, on loopback, bounded
# (about 20 minutes). Needs `make setup build` and wrk (the Makefile target provides both).
# Writes BENCHMARKS.md. Knobs (environment): BENCH_DURATION, BENCH_ROUNDS, BENCH_WARMUP,
# BENCH_CONNECTIONS, BENCH_COLD_TOKENS, BENCH_OUT, BENCH_WASM, BENCH_ONLY, BENCH_REPORT_FROM (see bench/bench.py),
# BENCH_SHIP_BATCH_BYTES, BENCH_SHIP_BUFFER_BYTES, BENCH_SHIP_BATCH_DELAY_MS (the http-sink rows),
# BENCH_PRICE_ROUNDS, BENCH_PRICE_DURATION (bench/envoy_side.py).
set -euo pipefail
cd "$(dirname "$0")/.."
unset RUST_BACKTRACE
command -v wrk >/dev/null || { echo "bench: wrk not found (apt-get install wrk)" >&2; exit 1; }
# The probe filter: the floor under any Wasm filter, and Envoy's native verify_signature (seconds to build).
CARGO_TARGET_DIR=target/bench-probe cargo build --quiet --release --target wasm32-wasip1 \
  --manifest-path bench/probe/Cargo.toml
# Warden with per-stage timers (the `stage-timing` feature), kept beside the product's build; the plain
# build is re-linked after it (cargo keeps both, so neither rebuild compiles the crate twice).
cargo build --quiet --release --target wasm32-wasip1 -p warden --features stage-timing
mkdir -p target/bench-stages
cp target/wasm32-wasip1/release/warden.wasm target/bench-stages/warden-stages.wasm
cargo build --quiet --release --target wasm32-wasip1 -p warden
# The pure-Rust signature path alone, timed under wasmtime and node (bench.py).
cargo build --quiet --release --target wasm32-wasip1 -p warden --example signature_timing
exec timeout --foreground 2400 .venv/bin/python bench/bench.py "$@"
