#!/usr/bin/env python3
"""`make soak`: a million identities through a real Envoy (--concurrency 2) running Warden, for
SOAK_SECONDS at the highest rate wrk sustains (closed loop), with rate limits and risk state on.

Every request carries a distinct subject's HS256 token (SOAK_IDENTITIES of them, pre-minted, rotated by
bench/tokens.lua), so every request is first-seen by the token cache and lands on a rate-limit bucket and
a risk record chosen by the keyed slot hash: slots collide constantly and must reset, never mix. Envoy
answers the route itself (direct_response), so the numbers are Envoy + Warden.

Measured per window (SOAK_WINDOW seconds): requests per second, p99 latency, errors and non-2xx, Envoy's
resident memory (VmRSS) and heap (admin /memory); at the end Wasm VMs created (a VM restart after a crash
adds one) and the shared-data bound. Pass criteria (printed, exit 1 on failure): memory flat over the
second half (max within 5 % of min), no VM created after start, no errors, p99 of the last window within
2x the median window's.

    make soak                                    # 1,000,000 identities, 600 s
    SOAK_IDENTITIES=50000 SOAK_SECONDS=90 make soak   # a smoke run
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import jwt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "envoy"))
import render  # noqa: E402

WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "warden.wasm"
LUA = ROOT / "bench" / "tokens.lua"
ISSUER, AUDIENCE = "https://soak.example", "orders-api"
SECRET = b"soak-secret-soak-secret-soak-secret!"
STATE_SLOTS, RL_SLOTS = 65536, 4096


def mint(n: int, path: Path) -> None:
    now = int(time.time())
    with path.open("w") as f:
        for i in range(n):
            claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": f"user-{i}", "tenant": "acme", "iat": now,
                      "exp": now + 86400, "scope": "orders:read"}
            f.write(jwt.encode(claims, SECRET, algorithm="HS256", headers={"kid": "soak"}) + "\n")


def config() -> dict:
    k = jwt.utils.base64url_encode(SECRET).decode()
    return {
        "providers": [{"name": "soak", "issuer": ISSUER, "audiences": [AUDIENCE],
                       "jwks": {"keys": [{"kty": "oct", "kid": "soak", "alg": "HS256", "k": k}]}}],
        "routes": [{"name": "read", "methods": ["GET"], "path": "/tenants/{tenant}/orders/{id}", "scopes": ["orders:read"]}],
        "tenancy": {},
        "rate_limits": {"slots": RL_SLOTS, "policies": [{"name": "per-subject", "key": "subject", "limit": 1000, "window_s": 60}]},
        "risk": {"mode": "shadow", "state_slots": STATE_SLOTS},
        "audit": {"enabled": False},
    }


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def admin_json(envoy: render.Envoy, path: str) -> dict:
    with urllib.request.urlopen(f"http://{envoy.admin}{path}", timeout=5) as r:
        return json.load(r)


def vms_created(envoy: render.Envoy) -> int:
    return sum(v for k, v in envoy.stats("wasm.").items() if k.endswith(".created"))


def window(port: int, tokens: Path, seconds: int, offset: int) -> dict:
    env = dict(os.environ, BENCH_TOKENS=str(tokens), BENCH_OFFSET=str(offset))
    p = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "--timeout", "5s", "-s", str(LUA),
                        f"http://127.0.0.1:{port}/"], env=env, capture_output=True, text=True, timeout=seconds + 120)
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {p.stdout}\n{p.stderr}")
    r = json.loads(line.removeprefix("BENCH_RESULT "))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def main() -> int:
    n = int(os.environ.get("SOAK_IDENTITIES", "1000000"))
    total = int(os.environ.get("SOAK_SECONDS", "600"))
    step = int(os.environ.get("SOAK_WINDOW", "30"))
    work = Path(tempfile.mkdtemp(prefix="warden-soak-"))
    tokens = work / "tokens.txt"
    print(f"soak: minting {n:,} HS256 tokens (one subject each) ...", flush=True)
    mint(n, tokens)
    text = render.render(config(), wasm=WASM, listen_port=0, admin_port=0, upstream_port=9)
    text = text.replace("route: { cluster: upstream, timeout: 15s }", 'direct_response: { status: 200, body: { inline_string: "ok" } }')
    (work / "envoy.yaml").write_text(text)
    envoy = render.Envoy(bootstrap=work / "envoy.yaml", log_path=work / "envoy.log", concurrency=2).start().wait_ready()
    try:
        port = envoy.listener_port()
        created0 = vms_created(envoy)
        rows, sent = [], 0
        print("soak: window  rps  p99_ms  errors  non2xx  rss_mb  heap_mb", flush=True)
        start = time.monotonic()
        while time.monotonic() - start < total:
            r = window(port, tokens, step, sent % n)
            sent += r["requests"]
            mem = admin_json(envoy, "/memory")
            row = {"t_s": round(time.monotonic() - start), "rps": round(r["rps"]), "p99_ms": r["p99"] / 1000,
                   "errors": r["connect"] + r["read"] + r["write"] + r["timeout"], "non2xx": r["status"],
                   "rss_mb": rss_kb(envoy.proc.pid) / 1024, "heap_mb": int(mem.get("allocated", 0)) / 2**20}
            rows.append(row)
            print(f"soak: {row['t_s']:>5}s {row['rps']:>6} {row['p99_ms']:>7.1f} {row['errors']:>6} {row['non2xx']:>6}"
                  f" {row['rss_mb']:>7.1f} {row['heap_mb']:>7.1f}", flush=True)
        restarts = vms_created(envoy) - created0
    finally:
        envoy.stop()
    half = rows[len(rows) // 2:] or rows
    rss = [r["rss_mb"] for r in half]
    p99s = sorted(r["p99_ms"] for r in rows)
    flat = (max(rss) - min(rss)) / min(rss)
    summary = {
        "identities": n, "seconds": total, "requests": sent, "distinct_identities_seen": min(sent, n),
        "rps_mean": round(statistics.mean(r["rps"] for r in rows)),
        "p99_ms_median_window": statistics.median(p99s), "p99_ms_last_window": rows[-1]["p99_ms"],
        "rss_mb_second_half": [round(min(rss), 1), round(max(rss), 1)], "rss_growth_second_half": round(flat, 4),
        "errors": sum(r["errors"] for r in rows), "non2xx": sum(r["non2xx"] for r in rows),
        "vm_restarts": restarts,
        "shared_data_keys_bound": f"{RL_SLOTS} rate-limit + 2 x {STATE_SLOTS} risk + 1 slot key (fixed slots)",
    }
    ok = (flat <= 0.05 and restarts == 0 and summary["errors"] == 0 and summary["non2xx"] == 0
          and rows[-1]["p99_ms"] <= 2 * summary["p99_ms_median_window"])
    print("soak: " + json.dumps(summary), flush=True)
    print(f"soak: {'PASS' if ok else 'FAIL'} (work dir {work})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
