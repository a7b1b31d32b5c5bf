#!/usr/bin/env python3
"""Time Envoy's start-up with a filter module: process start to `/ready` = LIVE (Envoy compiles the
Wasm module eagerly and runs `on_configure`, which loads the risk model, before it is ready).

    .venv/bin/python model/envoy_startup.py target/wasm32-wasip1/release/warden.wasm [other.wasm] --runs 3

Prints one JSON line per module: its size and the start-up times in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "envoy"))
import render  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("wasm", nargs="+", type=Path)
    ap.add_argument("--config", type=Path, default=ROOT / "model" / "config.json")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    config = json.loads(args.config.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        for wasm in args.wasm:
            times = []
            for i in range(args.runs):
                base = Path(tmp) / f"{wasm.stem}-{i}"
                bootstrap = base.with_suffix(".yaml")
                bootstrap.write_text(render.render(config, wasm=wasm, listen_port=0, admin_port=0,
                                                   upstream_port=9))
                envoy = render.Envoy(bootstrap=bootstrap, log_path=base.with_suffix(".log"), concurrency=1)
                started = time.monotonic()
                envoy.start()
                try:
                    envoy.wait_ready(timeout=120)
                    times.append(round((time.monotonic() - started) * 1000))
                finally:
                    envoy.stop()
            print(json.dumps({"wasm": str(wasm), "bytes": wasm.stat().st_size, "startup_ms": times}))


if __name__ == "__main__":
    main()
