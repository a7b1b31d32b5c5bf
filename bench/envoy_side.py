"""`make bench`, Envoy's side of a request: what each kind of host call costs in Envoy, and where
Envoy's CPU goes while it runs a row (Warden's Wasm code, Envoy's own code, the kernel).

- Host-call prices: the probe filter (bench/probe, `ops:` configuration) makes N calls of one kind on
  every request; a call's price is that row's Envoy CPU per request minus the empty probe's, over N.
  Rows interleave over BENCH_PRICE_ROUNDS rounds of BENCH_PRICE_DURATION seconds.
- CPU split: `perf record -e cpu-clock` on the Envoy worker during one wrk run of a row; samples in
  anonymous executable memory are V8's compiled Wasm (no symbols: Envoy's release binary is stripped,
  and Envoy passes V8 no flag for perf maps). The shares are applied to the row's CPU per request
  measured without perf (sampling inflates the absolute time). Skipped when `perf` cannot sample.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Callable

# (op, calls per request, what it is). Keep in step with bench/probe/src/lib.rs's `Op`.
PRICED = [
    ("headers", 8, "the request header map read whole (`proxy_get_header_map_pairs`, the SDK's copy)"),
    ("header", 8, "one request header read by name"),
    ("prop", 8, "a property read (`source.address`)"),
    ("sget", 8, "a shared-data read (64 bytes)"),
    ("add", 8, "a request header added"),
    ("set", 8, "a request header replaced"),
    ("remove", 8, "an absent request header removed"),
    ("pairs", 1, "the request map read, 4 headers appended, the map written back in one call"),
    ("resp_add", 8, "a response header added"),
    ("sset", 8, "a shared-data write (64 bytes)"),
    ("time", 8, "the wall clock (`proxy_get_current_time_nanoseconds`)"),
    ("mono", 8, "WASI's monotonic clock"),
    ("metric", 8, "a histogram observed"),
    ("log", 8, "a log line at info, dropped by Envoy's warn level"),
]
# Each goal row's host calls (`cargo test -p warden --lib host_calls_per_request`), made by the probe
# with no engine behind them: (Warden's row, the probe's row, what it mirrors, its configuration).
# The record lines are the size of Warden's records in these rows (~560 bytes without risk, ~1,300
# with its features).
FLOOR_ROWS = [
    ("warden_hot", "floor_cached_hot", "cached token, no record", "ops:headers=1,time=2,metric=1,add=4"),
    ("warden_risk_hot", "floor_risk_hot", "risk (shadow), no record", "ops:headers=1,prop=1,time=3,mono=2,metric=2,add=5,status=1,state=1"),
    ("warden_log_hot", "floor_log_hot", "record written to Envoy's log", "ops:headers=1,prop=1,time=3,metric=1,add=4,status=1,record560=1"),
    ("warden_full_hot", "floor_full_hot", "full pipeline (risk + record written)",
     "ops:headers=1,prop=1,time=3,mono=2,metric=2,add=5,status=1,state=1,record1300=1"),
]
PRICE_ROUNDS = int(os.environ.get("BENCH_PRICE_ROUNDS", "3"))
PRICE_DURATION = int(os.environ.get("BENCH_PRICE_DURATION", "4"))


def price_configs() -> dict[str, str]:
    """Probe configurations by row key: the empty probe, then one per priced kind of call."""
    return {"price_noop": ""} | {f"price_{op}": f"ops:{op}={n}" for op, n, _ in PRICED}


def prices(measure: Callable[[str, int], float]) -> dict[str, float]:
    """`measure(row key, seconds)` → Envoy CPU µs per request. Returns the empty probe's cost per
    request (`noop`) and each kind's µs per call (the median over the rounds)."""
    keys = list(price_configs())
    runs: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(PRICE_ROUNDS):
        for k in keys:
            runs[k].append(measure(k, PRICE_DURATION))
    noop = statistics.median(runs["price_noop"])
    out = {"noop": noop}
    for op, n, _ in PRICED:
        out[op] = (statistics.median(runs[f"price_{op}"]) - noop) / n
    return out


def perf_works() -> bool:
    if shutil.which("perf") is None:
        return False
    p = subprocess.run(["perf", "record", "-e", "cpu-clock", "-o", "/dev/null", "--", "true"],
                       capture_output=True, text=True, check=False)
    return p.returncode == 0


def split(pid: int, run: Callable[[], None], data: Path) -> dict[str, float]:
    """Shares of Envoy's samples while `run()` loads it: wasm (V8's compiled code), envoy (its binary,
    V8's runtime included), kernel, libc and the rest."""
    perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "4999", "-p", str(pid), "-o", str(data)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run()
    finally:
        perf.send_signal(2)
        perf.wait(timeout=60)
    text = subprocess.run(["perf", "report", "-i", str(data), "--sort", "dso", "--stdio", "-q"],
                          capture_output=True, text=True, check=False, timeout=300).stdout
    shares = {"wasm": 0.0, "envoy": 0.0, "kernel": 0.0, "libc": 0.0, "other": 0.0}
    for line in text.splitlines():
        parts = line.split(None, 1)
        if len(parts) != 2 or not parts[0].endswith("%"):
            continue
        pct, dso = float(parts[0].rstrip("%")), parts[1].strip()
        kind = ("wasm" if dso.startswith("[JIT]") or "perf-" in dso or dso in ("[unknown]", "//anon")
                else "envoy" if dso == "envoy" else "kernel" if "kernel" in dso
                else "libc" if dso.startswith("libc") else "other")
        shares[kind] += pct / 100
    data.unlink(missing_ok=True)
    return shares


def floor_section(cost: Callable[[str], float], have: Callable[[str], bool], floor: float) -> list[str]:
    """BENCHMARKS.md's section setting each goal row beside the same host calls made by the probe."""
    rows = [(w, f, name) for w, f, name, _ in FLOOR_ROWS if have(w) and have(f)]
    if not rows:
        return []
    out = ["## Each goal row against its host calls alone\n",
           "The probe filter (bench/probe, `ops:` configuration) makes exactly the host calls of a Warden row "
           "(the counts of `cargo test -p warden --lib host_calls_per_request`: the header map read, the "
           "clocks, the histograms, the `x-auth-*` headers added, the client address, the response's "
           "`:status`, the risk state's two records read and written back by compare-and-set at their real "
           "sizes, 443 and 41 bytes, and a log line the size of the row's decision record) with no engine "
           "behind them. Its added CPU is what the calls alone cost in Envoy, the empty filter's floor "
           f"({floor:.0f} µs) included; the difference is Warden's own work (the engine, the adapter, the "
           "record's JSON, the SDK's copies) and the kernel's share of a slower worker.\n",
           "| row | Warden, added µs/req | its host calls alone (probe), added | Warden's own |",
           "|---|---:|---:|---:|"]
    for w, f, name in rows:
        out.append(f"| {name} | {cost(w):.0f} | {cost(f):.0f} | {cost(w) - cost(f):.0f} |")
    return out + [""]


def section(price: dict[str, float], splits: dict[str, dict], cpu_us: dict[str, float],
            labels: dict[str, str]) -> list[str]:
    """BENCHMARKS.md's "Envoy's side" section."""
    out: list[str] = []
    if price:
        out += ["## Host calls priced in Envoy\n",
                "The probe filter (bench/probe, `ops:` configuration) makes N calls of one kind on every request "
                "(8, or 1 for the whole-map write); the price is its row's Envoy CPU per request minus the empty "
                f"probe's ({price['noop']:.1f} µs/req), over N: the median of {PRICE_ROUNDS} interleaved rounds of "
                f"{PRICE_DURATION} s. A call that returns bytes makes Envoy call back into the module for memory "
                "(`proxy_on_memory_allocate`), which costs more than the call itself; a request header edit also "
                "clears Envoy's route cache. Differences under ~0.2 µs are noise.\n",
                "| host call | µs per call |", "|---|---:|"]
        for op, _, doc in PRICED:
            out.append(f"| {doc} | {price.get(op, float('nan')):.2f} |")
        out.append("")
    if splits:
        out += ["## Where Envoy's CPU goes (perf)\n",
                "`perf record -e cpu-clock` on the Envoy worker for one wrk run of each row; the shares of its "
                "samples applied to the row's CPU per request above. *Wasm code* is V8's compiled code (Warden's "
                "engine and adapter, the SDK, the allocator); *Envoy* is Envoy's binary, V8's runtime included "
                "(the calls between Envoy and the module, the host calls' own work, HTTP); the kernel is the "
                "sockets.\n",
                "| row | Envoy CPU µs/req | Wasm code | Envoy | kernel | libc and other |",
                "|---|---:|---:|---:|---:|---:|"]
        for key, s in splits.items():
            us = cpu_us.get(key, float("nan"))
            out.append(f"| {labels.get(key, key)} | {us:.0f} | {s['wasm'] * us:.1f} | {s['envoy'] * us:.1f} | "
                       f"{s['kernel'] * us:.1f} | {(s['libc'] + s['other']) * us:.1f} |")
        out.append("")
    return out
