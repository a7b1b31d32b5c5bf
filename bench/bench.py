#!/usr/bin/env python3
"""`make bench`: Envoy passthrough vs Envoy's native jwt_authn vs Warden, under wrk, on loopback.

One run, bounded in time (about 4 minutes with the defaults), interleaved so the ratios compare:

- the same route (GET /tenants/acme/orders/42), answered by Envoy itself (direct_response), so no
  upstream hides what a filter costs;
- the same ES256 key (inline JWKS) and the same token for jwt_authn and Warden;
- Envoy with one worker (--concurrency 1) pinned to CPU 0, wrk pinned to CPU 1 (when there are two);
- hot path: one token for every request (jwt_authn with jwt_cache_config on, Warden's verified-token
  cache); cold path: every request a new, first-seen token (tens of thousands pre-minted with PyJWT,
  rotated by bench/tokens.lua, more than either cache holds).

Writes BENCHMARKS.md (table, machine, commands, ratios) and prints the table.
Environment knobs: BENCH_DURATION (s per row and round, default 6), BENCH_ROUNDS (3), BENCH_WARMUP
(s, first round, 3), BENCH_CONNECTIONS (4), BENCH_COLD_TOKENS (40000), BENCH_OUT (BENCHMARKS.md),
BENCH_WASM (the Warden module), BENCH_ONLY (comma-separated row keys: a partial run, no report),
BENCH_REPORT_FROM (a run's results.json: re-render the report without measuring), BENCH_BASELINE_WASM
(another build of Warden, e.g. main's: its rows of the goals run beside this build's in every round, and
the report compares them) with BENCH_BASELINE_LABEL (what that build is, e.g. "main 48d29f9"). BENCH_ONLY may
name `prices` (host calls priced by the probe) and `splits` (Envoy's CPU split by perf): bench/envoy_side.py.
The `audit.sink: http` rows (SHIP_ROWS) ship records to bench/collector.py, a process of its own pinned away
from Envoy's CPU, in the idle scheduling class (SCHED_IDLE); BENCH_SHIP_BATCH_BYTES (512 KiB), BENCH_SHIP_BUFFER_BYTES (4 MiB) and
BENCH_SHIP_BATCH_DELAY_MS (1000) are their `audit.http` batch settings.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import base64

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "envoy"))
import render  # noqa: E402  (Envoy process handling shared with `make run` and the tests)
import envoy_side  # noqa: E402  (host-call prices, Envoy's CPU split: bench/envoy_side.py)

BENCH = ROOT / "bench"
WASM = Path(os.environ.get("BENCH_WASM", ROOT / "target" / "wasm32-wasip1" / "release" / "warden.wasm"))
# The probe filter (bench/probe, built by run.sh): empty, it is what any Wasm filter costs in Envoy;
# configured, it calls Envoy's verify_signature foreign function once per request.
PROBE_WASM = ROOT / "target" / "bench-probe" / "wasm32-wasip1" / "release" / "warden_bench_probe.wasm"
# Warden built with the `stage-timing` feature (run.sh): it logs the mean µs per request of each stage.
STAGE_WASM = ROOT / "target" / "bench-stages" / "warden-stages.wasm"
# The pure-Rust signature path alone (plugin/examples/signature_timing.rs, built by run.sh), timed under
# wasmtime (Kong's runtime) and node's V8.
SIG_TIMING_WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "examples" / "signature_timing.wasm"
ENVOY = ROOT / ".venv" / "bin" / "envoy"
LUA = BENCH / "tokens.lua"

ISSUER = "https://idp.bench.local"
AUDIENCE = "orders-api"
KID = "bench-es256"
KID_RSA = "bench-rsa"  # an RSA key without `alg`: it serves RS256 and PS256 alike
PATH = "/tenants/acme/orders/42"
# The tool-call rows: an MCP endpoint at PATH (the route answers every method) and its resource.
MCP_RESOURCE = "http://127.0.0.1:10000/mcp"

DURATION = int(os.environ.get("BENCH_DURATION", "6"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "3"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "4"))
COLD_TOKENS = int(os.environ.get("BENCH_COLD_TOKENS", "40000"))
# RS256 and PS256 first-seen rows: fewer tokens (PyJWT signs RSA slowly), still more than any cache.
RSA_TOKENS = int(os.environ.get("BENCH_RSA_TOKENS", "8000"))
# The two-worker rows: wrk's threads and connections at saturation, and the fixed offered load of the
# p99 rows (connections x 1000 / delay requests per second).
SAT_CONNECTIONS = int(os.environ.get("BENCH_SAT_CONNECTIONS", "32"))
RATE_CONNECTIONS = int(os.environ.get("BENCH_RATE_CONNECTIONS", "8"))
RATE_DELAY_MS = int(os.environ.get("BENCH_RATE_DELAY_MS", "8"))
OUT = Path(os.environ.get("BENCH_OUT", ROOT / "BENCHMARKS.md"))
BASELINE = Path(os.environ["BENCH_BASELINE_WASM"]) if os.environ.get("BENCH_BASELINE_WASM") else None
BASELINE_LABEL = os.environ.get("BENCH_BASELINE_LABEL", "baseline")
# The rows a baseline build repeats (this build's row key -> the baseline's), each measured right after
# this build's in every round.
BASELINE_ROWS = {"warden_hot": "base_warden_hot", "warden_cold": "base_warden_cold",
                 "warden_cold_rs": "base_warden_cold_rs", "warden_cold_ps": "base_warden_cold_ps",
                 "warden_risk_hot": "base_risk_hot", "warden_log_hot": "base_log_hot",
                 "warden_full_hot": "base_full_hot"}
PIN = (os.cpu_count() or 1) >= 2
ENVOY_CPU, WRK_CPU = "0", "1"
# The `audit.sink: http` rows: records POSTed in batches to bench/collector.py (their row key -> the path
# its Envoy ships to), with the sink's default batch settings (512 KiB batches, 8 in flight per worker, a
# 4 MiB buffer: up to 16 MB/s per worker, several times one worker's records at saturation here).
SHIP_ROWS = {"warden_ship_hot": "warden_ship", "warden_full_ship_hot": "warden_full_ship",
             "warden_full_ship2_rate": "warden_full_ship2"}
SHIP_BATCH_BYTES = int(os.environ.get("BENCH_SHIP_BATCH_BYTES", str(512 * 1024)))
SHIP_BUFFER_BYTES = int(os.environ.get("BENCH_SHIP_BUFFER_BYTES", str(4 * 1024 * 1024)))
SHIP_BATCH_DELAY_MS = int(os.environ.get("BENCH_SHIP_BATCH_DELAY_MS", "1000"))
RECORDS_CLUSTER = "records"


# ---------------------------------------------------------------------------------------------
# Key, tokens, configs


def make_key() -> tuple[ec.EllipticCurvePrivateKey, dict]:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    jwk.update(kid=KID, alg="ES256", use="sig")
    return private, jwk


def make_rsa_key():
    from cryptography.hazmat.primitives.asymmetric import rsa
    private = rsa.generate_private_key(65537, 2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    jwk.update(kid=KID_RSA, use="sig")
    return private, jwk


def mint(private, n: int, now: int, lifetime_s: int = 3600,
         aud: str | list[str] = AUDIENCE, alg: str = "ES256", kid: str = KID) -> list[str]:
    """`n` distinct tokens (distinct `jti`), each valid for the whole run."""
    out = []
    for i in range(n):
        claims = {
            "iss": ISSUER,
            "aud": aud,
            "sub": f"user-{i % 1000}",
            "tenant": "acme",
            "scope": "orders:read orders:write",
            "client_id": "bench-client",
            "jti": f"bench-{now}-{i}",
            "iat": now,
            "exp": now + lifetime_s,
        }
        out.append(jwt.encode(claims, private, algorithm=alg, headers={"kid": kid, "typ": "JWT"}))
    return out


def _pb_field(number: int, value: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2): tag, varint length, bytes."""
    out, n = bytearray([number << 3 | 2]), len(value)
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + value


def verify_signature_args(private, token: str) -> str:
    """Base64 of the `VerifySignatureArguments` (source/extensions/common/wasm/ext/verify_signature.proto)
    that checks `token`'s signature as Warden hands it over: hash_function=1, public_key=2 (DER SPKI),
    signature=3 (ES256: DER ECDSA, the JWS r||s re-encoded; RS256: as the JWS carries it), text=4 (the
    JWS signing input)."""
    head, payload, sig = token.split(".")
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    if isinstance(private, ec.EllipticCurvePrivateKey):
        raw = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    spki = private.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    msg = _pb_field(1, b"sha256") + _pb_field(2, spki) + _pb_field(3, raw) + \
        _pb_field(4, f"{head}.{payload}".encode())
    return base64.b64encode(msg).decode()


def warden_config(jwks: dict, audit: bool) -> dict:
    return {
        "providers": [{"name": "bench", "issuer": ISSUER, "audiences": [AUDIENCE], "jwks": jwks}],
        "routes": [
            {"name": "read-order", "methods": ["GET", "POST"], "path": "/tenants/{tenant}/orders/{id}",
             "scopes": ["orders:read"]},
        ],
        "audit": {"enabled": audit},
    }


def ship_audit(port: int, vkey: str) -> dict:
    """`audit` shipping every record in batches to the collector (bench/collector.py) on `port`, at a
    path of this variant's own (the collector counts per path)."""
    return {"enabled": True, "sink": "http", "http": {
        "service": {"url": f"http://127.0.0.1:{port}/records/{vkey}", "envoy_cluster": RECORDS_CLUSTER,
                    "kong_address": f"127.0.0.1:{port}", "timeout_ms": 2000},
        "format": "ndjson", "batch_bytes": SHIP_BATCH_BYTES, "batch_delay_ms": SHIP_BATCH_DELAY_MS,
        "buffer_bytes": SHIP_BUFFER_BYTES}}


def tool_call_body() -> bytes:
    """A 1 KB JSON-RPC `tools/call` request (the argument pads it to exactly 1024 bytes)."""
    msg = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
           "params": {"name": "read_orders", "arguments": {"note": ""}}}
    pad = 1024 - len(json.dumps(msg, separators=(",", ":")))
    msg["params"]["arguments"]["note"] = "x" * pad
    return json.dumps(msg, separators=(",", ":")).encode()


def mcp_config(jwks: dict) -> dict:
    """Warden with an MCP endpoint at the bench path: the body read, the tool's rule, the audience (no
    record, as the plain-route POST row it is compared with)."""
    cfg = warden_config(jwks, audit=False)
    cfg["providers"][0]["audiences"] = [AUDIENCE, MCP_RESOURCE]
    cfg["mcp"] = {"endpoints": [{
        "name": "bench-mcp", "path": PATH, "resource": MCP_RESOURCE,
        "authorization_servers": [ISSUER], "scopes_supported": ["orders:read"],
        "rules": [{"method": "tools/call", "tool": "read_orders", "scopes": ["orders:read"]}],
    }]}
    return cfg


# Envoy writing Warden's info lines: the decision record goes to Envoy's log.
WASM_INFO = ("--log-level", "warn", "--component-log-level", "wasm:info")

ROUTER = {
    "name": "envoy.filters.http.router",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
}


def jwt_authn_filter(jwks: dict, cache: bool) -> dict:
    provider = {
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "local_jwks": {"inline_string": json.dumps(jwks)},
        # Same upstream facts as Warden's x-auth-subject / x-auth-tenant.
        "claim_to_headers": [
            {"header_name": "x-auth-subject", "claim_name": "sub"},
            {"header_name": "x-auth-tenant", "claim_name": "tenant"},
        ],
    }
    if cache:
        provider["jwt_cache_config"] = {"jwt_cache_size": 100}
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"bench": provider},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}],
        },
    }


def wasm_filter(wasm: Path, config: dict | str) -> dict:
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "warden",
                "root_id": "warden",
                "allow_on_headers_stop_iteration": True,
                "vm_config": {
                    "vm_id": "warden",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": str(wasm)}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": config if isinstance(config, str) else json.dumps(config, separators=(",", ":")),
                },
            },
        },
    }


def records_cluster(port: int) -> dict:
    """The cluster of the http sink's collector (bench/collector.py on 127.0.0.1:`port`)."""
    return {
        "name": RECORDS_CLUSTER, "type": "STATIC", "connect_timeout": "1s",
        "load_assignment": {"cluster_name": RECORDS_CLUSTER, "endpoints": [{"lb_endpoints": [{"endpoint": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]},
    }


def bootstrap(filters: list[dict], access_log: Path | None = None, records_port: int | None = None) -> str:
    tmpl = string.Template((BENCH / "envoy.yaml.tmpl").read_text())
    logs = []
    if access_log:
        # The decision record Warden leaves in filter state (`audit.sink: filter_state`), one line each.
        logs.append({
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": str(access_log),
                "log_format": {"text_format_source": {"inline_string": render.RECORD_FORMAT}},
            },
        })
    extra = f"  - {json.dumps(records_cluster(records_port))}" if records_port else ""
    return tmpl.substitute(http_filters=json.dumps([*filters, ROUTER]), access_log=json.dumps(logs),
                           extra_clusters=extra)


# ---------------------------------------------------------------------------------------------
# Envoy and wrk


@dataclass
class Variant:
    key: str
    label: str
    filters: list[dict]
    auth: bool  # a request without a token must be refused
    log_args: tuple[str, ...] = ("--log-level", "warn")
    access_log: bool = False  # an access log printing the record from filter state
    workers: int = 1  # --concurrency; one worker is pinned to a CPU, two are not
    records_port: int | None = None  # the http sink's collector: a `records` cluster to it


def envoy_cmd(yaml: Path, admin_path: Path, v: Variant) -> list[str]:
    cmd = [str(ENVOY), "-c", str(yaml), "--concurrency", str(v.workers), "--disable-hot-restart",
           "--admin-address-path", str(admin_path), *v.log_args]
    return (["taskset", "-c", ENVOY_CPU] if PIN and v.workers == 1 else []) + cmd


def start_envoy(work: Path, v: Variant) -> tuple[render.Envoy, list[str]]:
    yaml = work / f"envoy-{v.key}.yaml"
    yaml.write_text(bootstrap(v.filters, work / f"access-{v.key}.log" if v.access_log else None, v.records_port))
    log = work / f"envoy-{v.key}.log"
    admin = work / f"envoy-{v.key}.admin"
    cmd = envoy_cmd(yaml, admin, v)
    e = render.Envoy(bootstrap=yaml, log_path=log, envoy=ENVOY, concurrency=v.workers, admin_address_path=admin)
    with open(log, "ab") as out:
        # Own session (setsid), like render.Envoy.start, so stop() kills exactly this process group.
        e.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True, cwd=ROOT)
    e.wait_ready(timeout=90)
    return e, cmd


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_of(port: int, token: str | None, body: bytes | None = None) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{PATH}", data=body)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def wrk(port: int, tokens: Path, seconds: int, offset: int = 0, body: Path | None = None,
        mode: str = "one") -> tuple[dict, list[str]]:
    """`mode`: "one" (the one-worker rows: one pinned thread, CONNECTIONS), "sat" (two workers at
    saturation: two threads, SAT_CONNECTIONS, unpinned), "rate" (two workers at a fixed offered load)."""
    threads, conns, delay = {"one": (1, CONNECTIONS, 0), "sat": (2, SAT_CONNECTIONS, 0),
                             "rate": (1, RATE_CONNECTIONS, RATE_DELAY_MS)}[mode]
    cmd = (["taskset", "-c", WRK_CPU] if PIN and mode == "one" else []) + [
        "wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--timeout", "5s", "-s", str(LUA),
        f"http://127.0.0.1:{port}{PATH}"]
    env = dict(os.environ, BENCH_TOKENS=str(tokens), BENCH_OFFSET=str(offset), BENCH_DELAY_MS=str(delay))
    if body is not None:
        env["BENCH_BODY"] = str(body)
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if p.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    r = json.loads(line.removeprefix("BENCH_RESULT "))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["errors"] = sum(r[k] for k in ("connect", "read", "write", "status", "timeout"))
    return r, cmd


class Collector:
    """The http sink's collector (bench/collector.py) in a process of its own, pinned away from Envoy's
    CPU when the bench pins (beside wrk), in the idle scheduling class: its CPU never counts in Envoy's,
    and it never delays wrk. It exits when its stdin closes, so it never outlives this process."""

    def __init__(self) -> None:
        others = [str(c) for c in sorted(os.sched_getaffinity(0)) if str(c) != ENVOY_CPU]
        self.cpus = ",".join(others) if PIN and others else ""
        # SCHED_IDLE: it runs only when its CPU has nothing else to run. Beside wrk at normal priority
        # it took wrk's CPU for milliseconds per batch, and wrk then measured that wait as the
        # requests' latency (p99 of the record-shipped row 1435-2431 µs with it, 961-970 in the idle
        # class, against 813-1152 for the log row: its tail was the collector's, not Envoy's).
        idle = ["chrt", "--idle", "0"] if shutil.which("chrt") else []
        self.cmd = idle + (["taskset", "-c", self.cpus] if self.cpus else []) + [sys.executable,
                                                                                 str(BENCH / "collector.py")]
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"bench/collector.py did not start: {line!r}")
        self.port = int(line.split()[1])

    def records(self, vkey: str) -> dict:
        """What arrived at `vkey`'s path: records, posts, bytes, max_post, bad, last_bad."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/counts", timeout=5) as r:
            doc = json.load(r)
        return doc.get(f"/records/{vkey}", {"records": 0, "posts": 0, "bytes": 0, "max_post": 0, "bad": 0,
                                            "last_bad": None})

    def wait_for(self, vkey: str, n: int, timeout: float) -> int:
        """Waits until `vkey`'s path has `n` records (at most `timeout` s); how many it has."""
        deadline = time.monotonic() + timeout
        while (got := self.records(vkey)["records"]) < n and time.monotonic() < deadline:
            time.sleep(0.1)
        return got

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        if self.proc.stdin:
            self.proc.stdin.close()  # it exits on its own
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def check_delivery(collector: Collector, envoy: render.Envoy, vkey: str, expected: int, rps: float) -> dict:
    """After an http-sink row's measured run: the records its collector path holds against the requests
    this Envoy has answered (`expected`, all its runs and checks so far). Right after the run the worker
    may still hold what came in during the last `batch_delay_ms` and a tick (waiting or in flight), so
    at least `expected` less that must be there; after that much time (and a margin), all of it. Any
    record dropped (Envoy's `warden_records_dropped_total`) or a body that is not records makes the
    row not valid."""
    at_end = collector.records(vkey)["records"]
    buffered = math.ceil(rps * (SHIP_BATCH_DELAY_MS / 1000 + 0.5))
    wait = SHIP_BATCH_DELAY_MS / 1000 + 2
    t0 = time.monotonic()
    drained = collector.wait_for(vkey, expected, wait)
    waited = time.monotonic() - t0
    time.sleep(0.3)  # the counters are published on the 250 ms tick
    stats = envoy.stats("wasmcustom.warden_records_")
    c = collector.records(vkey)
    d = {"expected": expected, "at_end": at_end, "may_be_buffered": buffered, "after_wait": drained,
         "waited_s": round(waited, 2), "posts": c["posts"], "bytes": c["bytes"], "max_post": c["max_post"],
         "bad_posts": c["bad"], "last_bad": c["last_bad"],
         "envoy_sent": sum(v for k, v in stats.items() if "sent" in k),
         "envoy_dropped": sum(v for k, v in stats.items() if "dropped" in k), "stats": stats}
    d["ok"] = (at_end >= expected - buffered and drained >= expected and not c["bad"] and not d["envoy_dropped"])
    print(f"bench:   {vkey}: collector has {at_end:,} records right after the run ({expected:,} requests "
          f"answered, up to {buffered:,} may still be buffered), {drained:,} after {waited:.1f} s; "
          f"{c['posts']:,} POSTs, {c['bytes'] / 1e6:,.1f} MB, largest {c['max_post'] / 1024:,.0f} KiB; Envoy: "
          f"sent {d['envoy_sent']:,}, dropped {d['envoy_dropped']:,}", flush=True)
    if not d["ok"]:
        why = [] if at_end >= expected - buffered else [f"{expected - buffered - at_end:,} fewer than expected "
                                                        "right after the run"]
        why += [] if drained >= expected else [f"{expected - drained:,} records never arrived"]
        why += [f"{c['bad']} bodies not records ({c['last_bad']})"] if c["bad"] else []
        why += [f"Envoy dropped {d['envoy_dropped']:,} ({json.dumps(stats)})"] if d["envoy_dropped"] else []
        print(f"bench: WARNING: {vkey}: the http sink did not deliver: {'; '.join(why)}: the row is not valid",
              file=sys.stderr, flush=True)
    return d


# ---------------------------------------------------------------------------------------------
# Report


def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    envoy_v = subprocess.run([str(ENVOY), "--version"], capture_output=True, text=True).stdout.strip()
    wrk_v = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "envoy": envoy_v.split("version:", 1)[-1].strip(),
        "wrk": wrk_v[0] if wrk_v else "wrk",
        "wasm_bytes": WASM.stat().st_size,
        **({"baseline_label": BASELINE_LABEL, "baseline_bytes": BASELINE.stat().st_size,
            "baseline_wasm": str(BASELINE.resolve()).replace(f"{ROOT}/", "")} if BASELINE else {}),
    }


def criterion_results() -> list[tuple[str, float, float]]:
    """(id, mean µs, median µs) from the last `cargo bench -p warden --bench engine`, if any."""
    out = []
    for est in sorted((ROOT / "target" / "criterion").glob("**/new/estimates.json")):
        try:
            full_id = json.loads((est.parent / "benchmark.json").read_text())["full_id"]
            e = json.loads(est.read_text())
            out.append((full_id, e["mean"]["point_estimate"] / 1e3, e["median"]["point_estimate"] / 1e3))
        except (OSError, KeyError, ValueError):
            continue
    return out


def fmt_us(us: float) -> str:
    return f"{us / 1000:.2f} ms" if us >= 10_000 else f"{us:.0f} µs"


STAGE_DOC = {
    "read": "request headers read (one host call, the SDK's copy), request id",
    "engine": "the engine until it decides: the client address when the config uses it (a property read), route, "
              "token (cache key, claims; a first-seen token's signature), authorization, risk (shared-data reads and "
              "writes, features, model)",
    "metrics": "the decision counted: histograms observed (a host call each), counters summed in the worker "
               "(published on its tick)",
    "forward": "reserved headers removed, `x-auth-*` headers added (one host call each)",
    "response": "response-header callback: headers added, `:status` read",
    "observe": "response phase of the behavioural state (risk on: a shared-data read and write)",
    "record": "the decision record built and serialized (JSON)",
    "write": "the record handed to the host (a log call; Envoy writes it)",
    "cache_key_probe": "(not in the pipeline) the token-cache key of the `Authorization` value alone (keyed SipHash-2-4)",
    "verify": "(inside `engine`, not in the sum) Envoy's `verify_signature` calls: a first-seen token's signature "
              "checked by BoringSSL; `engine` less this is the engine's own work",
}
# Stages inside others or beside the pipeline, left out of the sum.
STAGE_NOT_SUMMED = ("cache_key_probe", "verify")


# Host calls per request on the goal rows (cached token, steady state), before (main b4f7f42) and now:
# counted by `gateway::mock::serve` over the real engine, header edits and metric updates, and pinned by
# `cargo test -p warden --lib host_calls_per_request`; the b4f7f42 column is that adapter's calls by the
# same rules (client address and three clock reads on every request, every counter a host call).
HOST_CALLS = [
    ("cached token, no record", "1 / 1 / 3 / 3 / 4 / 0 / 0 / 0 = **12**", "1 / 0 / 2 / 1 / 4 / 0 / 0 / 0 = **8**"),
    ("risk (shadow), no record", "1 / 1 / 6 / 4 / 5 / 1 / 6 / 0 = **24**", "1 / 1 / 5 / 2 / 5 / 1 / 4 / 0 = **19**"),
    ("record written (log)", "1 / 1 / 4 / 3 / 4 / 1 / 0 / 1 = **15**", "1 / 1 / 3 / 1 / 4 / 1 / 0 / 1 = **12**"),
    ("full pipeline (risk, record written)", "1 / 1 / 6 / 4 / 5 / 1 / 6 / 1 = **25**",
     "1 / 1 / 5 / 2 / 5 / 1 / 4 / 1 = **20**"),
]


def host_calls_section() -> list[str]:
    out = ["## Host calls per request\n",
           "Each row's host calls, by kind: header map read / properties (client address) / clock reads (wall "
           "clock, WASI monotonic) / metric calls / request headers set or removed / response headers (added, "
           "`:status` read) / shared data (reads, compare-and-set writes) / record handed to the log. Counted by "
           "`gateway::mock::serve` (the adapter's request path over the real engine, header edits and metric "
           "updates, against a counting Envoy) and pinned by `cargo test -p warden --lib host_calls_per_request`; "
           "the b4f7f42 column counts that build's adapter by the same rules. Now: the client address is read "
           "only when the config uses it (risk, the record, alerts: `Step::NeedClientAddress`), the wall clock "
           "once per phase and once when the engine has decided, the monotonic clock only for the risk stage's "
           "budget, counters are summed per worker and published on the 250 ms tick, and the response phase's "
           "facts wait in the worker for the identity's next compare-and-set (`risk/pending.rs`: the shared "
           "record read and written once per request).\n",
           "| row | main b4f7f42 | now |", "|---|---:|---:|"]
    out += [f"| {r} | {b} | {n} |" for r, b, n in HOST_CALLS]
    return out + [""]


def analysis(by: dict, cost, stage_lines: dict, pure_rust: dict) -> str:
    """Goals met / not met (CPU column), the stage breakdown, the signature paths, two workers."""
    nan = float("nan")
    floor = cost("wasm_noop_hot")

    def have(*keys: str) -> bool:
        return all(k in by for k in keys)

    def ratio(w: str, j: str) -> float:
        return cost(w) / cost(j) if have(w, j) and cost(j) > 0 else nan

    def row(goal: str, measured: str, target: str, ok: bool | None) -> str:
        res = "n/a" if ok is None else ("**met**" if ok else "**not met**")
        return f"| {goal} | {measured} | {target} | {res} |"

    goals = ["| goal (issue 18) | measured (added Envoy CPU µs/req) | target | result |", "|---|---|---|---|"]
    for alg, suffix in (("ES256", ""), ("RS256", "_rs"), ("PS256", "_ps")):
        w, j = f"warden_cold{suffix}", f"jwt_cache_cold{suffix}"
        if have(w, j):
            r = ratio(w, j)
            goals.append(row(f"first-seen {alg}: Warden / jwt_authn", f"{cost(w):.0f} / {cost(j):.0f} = {r:.2f}x",
                             "≤ 1.3x", r <= 1.3))
    w_hot = cost("warden_hot")
    goals.append(row("cached token, no risk (no record)", f"{w_hot:.0f} (floor {floor:.0f})", f"≤ floor + 10 = {floor + 10:.0f}",
                     w_hot <= floor + 10))
    if have("warden_risk_hot"):
        d = cost("warden_risk_hot") - w_hot
        goals.append(row("risk stage (risk row − cached row)", f"{d:.0f}", "≤ 12", d <= 12))

    def delivered(key: str) -> tuple[str, bool]:
        """An http-sink row is valid only if its collector got every record (bench.py checks each run)."""
        if by[key].get("delivery_ok", True):
            return "", True
        return "; records NOT delivered: not valid", False

    if have("warden_log_hot"):
        d = cost("warden_log_hot") - w_hot
        goals.append(row("decision record written (written − none)", f"{d:.0f}", "≤ 10", d <= 10))
    if have("warden_ship_hot"):
        d = cost("warden_ship_hot") - w_hot
        note, valid = delivered("warden_ship_hot")
        goals.append(row("decision record shipped (http sink) (shipped − none)", f"{d:.0f}{note}", "≤ 10",
                         d <= 10 if valid else None))
    if have("warden_full_hot"):
        f = cost("warden_full_hot")
        goals.append(row("whole pipeline, cached token (risk, record written)", f"{f:.0f} (floor {floor:.0f})",
                         f"≤ floor + 30 = {floor + 30:.0f}", f <= floor + 30))
    if have("warden_full_ship_hot"):
        f = cost("warden_full_ship_hot")
        note, valid = delivered("warden_full_ship_hot")
        goals.append(row("whole pipeline, cached token (risk, record shipped: http sink)",
                         f"{f:.0f} (floor {floor:.0f}){note}", f"≤ floor + 30 = {floor + 30:.0f}",
                         f <= floor + 30 if valid else None))
    if have("passthrough2_sat", "jwt_cache2_sat", "warden_full2_sat", "passthrough2_rate", "jwt_cache2_rate",
            "warden_full2_rate"):
        sat = ", ".join(f"{n} {by[k]['rps']:,.0f}" for n, k in (("passthrough", "passthrough2_sat"),
                        ("jwt_authn", "jwt_cache2_sat"), ("Warden", "warden_full2_sat")))
        p99 = ", ".join(f"{n} {fmt_us(by[k]['p99'])}" for n, k in (("passthrough", "passthrough2_rate"),
                        ("jwt_authn", "jwt_cache2_rate"), ("Warden", "warden_full2_rate")))
        if have("warden_full_ship2_rate"):
            p99 += f", Warden with the record shipped (http sink) {fmt_us(by['warden_full_ship2_rate']['p99'])}"
        goals.append(row("2 workers: req/s at saturation; p99 at a fixed offered load",
                         f"req/s: {sat}; p99: {p99}", "rows shown", True))
    out = ["## Goals\n", "The CPU column of the table above (added = minus passthrough), this run:\n", *goals, ""]

    if stage_lines:
        out += ["## Where the time goes (stage-timing build)\n",
                "Warden built with `--features stage-timing` (host/stages.rs) reads the WASI monotonic clock around "
                "each stage of the host path and logs the mean per request every 10,000 requests; the table is the "
                "mean over this run's windows (the first, with the warm-up, dropped). Each clock read is itself a host "
                "call (~0.1–0.3 µs), so the stages add up to more than the plain build spends; the rest of a "
                "request's cost is outside the filter's callbacks (the floor: context create, the SDK's dispatch, "
                "done, delete).\n"]
        cols = [k for k in ("stages_full", "stages_plain") if k in stage_lines and stage_lines[k]]
        if not cols:
            out.append("_(no 10,000-request window completed in this run)_\n")
        head = {"stages_full": "cached token, full pipeline (risk, record written)",
                "stages_plain": "first-seen ES256, no risk (record not written)"}
        if cols:
            out.append("| stage | " + " | ".join(head[c] for c in cols) + " | what |")
            out.append("|---|" + "---:|" * len(cols) + "---|")
            for stage, doc in STAGE_DOC.items():
                vals = " | ".join(f"{stage_lines[c].get(stage, nan):.2f}" for c in cols)
                out.append(f"| {stage} | {vals} | {doc} |")
            tot = " | ".join(f"{sum(v for k, v in stage_lines[c].items() if k in STAGE_DOC and k not in STAGE_NOT_SUMMED):.2f}"
                             for c in cols)
            out.append(f"| **sum** | {tot} | |")
            out.append("| windows | " + " | ".join(f"{stage_lines[c].get('windows', 0):.0f}" for c in cols) + " | |\n")

    out += host_calls_section()
    out += envoy_side.floor_section(cost, have, floor)

    if have("wasm_verify_hot", "wasm_noop_hot"):
        v_cost = by["wasm_verify_hot"]["cpu_us"] - by["wasm_noop_hot"]["cpu_us"]
        rs_cost = (f" for ES256 and **{by['wasm_verify_rs_hot']['cpu_us'] - by['wasm_noop_hot']['cpu_us']:.0f} µs** "
                   "for RS256" if have("wasm_verify_rs_hot") else "")
        out += ["## Signatures: Envoy's `verify_signature`, and the pure-Rust path\n",
                f"""Where the host has it, Warden hands RS256/384/512 and ES256/384 signatures to Envoy's
`verify_signature` foreign function (BoringSSL; `credential/native.rs`): the key as DER
SubjectPublicKeyInfo, converted once at load; an ECDSA `r||s` re-encoded as DER; the function found at
`on_configure` by a self-test (a good and a wrong signature). Every RFC 8725 check (key by `kid` and
`alg`, `crit`, `typ`, claims) stays Warden's; `tests/wycheproof.rs` and the attack suite run through
both paths and must agree. One call costs **{v_cost:.0f} µs**{rs_cost} here (bench/probe: the empty
filter plus one call per request: protobuf, key import, verify). That is the floor of the host path: Envoy
imports the key from DER on every call. PS* (Envoy sets no PSS padding), EdDSA, HMAC and every algorithm
on Kong (ngx_wasm_module traps on any foreign-function call) are verified in Wasm: RSA by the `rsa`
crate from a key parsed once (`credential/rsa_key.rs`), patched (`vendor/rsa`) to raise to the public
exponent by square-and-multiply (17 Montgomery products for e = 65537, not the constant-time window's
35), EdDSA by ed25519-dalek (`credential/ed25519_key.rs`), the others by jwt-simple. ES256 there is p256 0.14's interleaved wNAF (`lincomb_vartime`, 97% of
its time under wasmtime); the crate's precomputed base-point table is not used by ECDSA verification
and would not help (measured: more wasm operators), and no faster maintained pure-Rust P-256 exists.
Each algorithm takes the cheaper path the host offers: the pure-Rust times below are several times the
host's call for RS* and ES*, so those stay on the host. `warden_signatures_total{{kind="host"|"wasm"}}`
counts each path.
"""]
    if pure_rust:
        algs = list(next(iter(pure_rust.values())).keys())
        out += ["The pure-Rust path alone (`plugin/examples/signature_timing.rs`: `jwt::parse` + `Provider::verify` "
                "of a first-seen token, median of 60 after 10 warm-up calls, µs), in the runtimes the filter meets: "
                "wasmtime (the PyPI package's release, Cranelift; Kong 3.9/3.10 embed wasmtime 26) and node's V8 "
                "(Envoy's engine); natively, `cargo bench -p warden --bench signatures` (`wasm_verify/*`).\n",
                "| runtime | " + " | ".join(algs) + " |", "|---|" + "---:|" * len(algs)]
        for runtime, t in pure_rust.items():
            out.append(f"| {runtime} | " + " | ".join(f"{t.get(a, nan):,.0f}" for a in algs) + " |")
        out.append("")
    return "\n".join(out) + "\n"


def ship_note(by: dict, cost, w_hot: float) -> str:
    """The notes' sentences on the http sink's rows (empty without them)."""
    if "warden_ship_hot" not in by and "warden_full_ship_hot" not in by:
        return ""
    nan = float("nan")

    def got(key: str) -> str:
        d = by[key].get("delivery")
        if not d:
            return ""
        verdict = "all delivered" if by[key].get("delivery_ok") else "**NOT all delivered: the row is not valid**"
        return (f" (the collector got {d['after_wait']:,} records for {d['expected']:,} requests in "
                f"{d['posts']:,} POSTs, {d['bytes'] / d['posts'] / 1024 if d['posts'] else 0:,.0f} KiB each on "
                f"average; Envoy dropped {d['envoy_dropped']:,}: {verdict})")

    out = ""
    if "warden_ship_hot" in by:
        out += (f" Shipped in batches over HTTP (`audit.sink: http`: each worker buffers the records and POSTs "
                f"them from its 250 ms tick, no host call per request): "
                f"{cost('warden_ship_hot') - w_hot:.1f} µs{got('warden_ship_hot')}.")
    if "warden_full_ship_hot" in by:
        full_log = cost("warden_full_hot") if "warden_full_hot" in by else nan
        out += (f" The full pipeline with the http sink: {cost('warden_full_ship_hot'):.0f} µs, against "
                f"{full_log:.0f} µs with the record written to Envoy's log{got('warden_full_ship_hot')}.")
    return "\n  " + out.strip() if out else ""


def write_report(rows: list[dict], m: dict, commands: dict, started: str, elapsed: float,
                 jwt_stats: dict[str, int], stage_lines: dict | None = None,
                 pure_rust: dict | None = None, price: dict | None = None,
                 splits: dict | None = None) -> str:
    stage_lines = stage_lines or {}
    by = {r["key"]: r for r in rows}
    base = by["passthrough"]["rps"]

    def cost(key: str) -> float:
        """Envoy CPU µs a request costs beyond passthrough."""
        return by[key]["cpu_us"] - by["passthrough"]["cpu_us"]

    lines = [
        "| scenario | token | req/s (median) | min–max | vs passthrough | Envoy CPU µs/req | added CPU µs/req "
        "| p50 | p90 | p99 | p99.9 | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['token']} | {r['rps']:,.0f} | {r['rps_min']:,.0f}–{r['rps_max']:,.0f} | "
            f"{r['rps'] / base:.2f}x | {r['cpu_us']:.0f} | {cost(r['key']):.0f} | {fmt_us(r['p50'])} | {fmt_us(r['p90'])} | "
            f"{fmt_us(r['p99'])} | {fmt_us(r['p999'])} | {r['errors']} |")
    table = "\n".join(lines)
    hot = by["warden_hot"]["rps"] / by["jwt_cache_hot"]["rps"]
    cold = by["warden_cold"]["rps"] / by["jwt_cache_cold"]["rps"]
    # The same ratios from Envoy's CPU time per request (what throughput is once the worker saturates).
    hot_cpu = by["jwt_cache_hot"]["cpu_us"] / by["warden_hot"]["cpu_us"]
    cold_cpu = by["jwt_cache_cold"]["cpu_us"] / by["warden_cold"]["cpu_us"]
    verdict = "met" if min(hot, hot_cpu) >= 0.9 else ("met by one measure" if max(hot, hot_cpu) >= 0.9 else "NOT met")
    w_cold, j_cold = cost("warden_cold"), cost("jwt_cache_cold")
    w_hot, j_hot, floor = cost("warden_hot"), cost("jwt_cache_hot"), cost("wasm_noop_hot")
    j_nocache = cost("jwt_nocache_hot")
    nan = float("nan")
    record_log = cost("warden_log_hot") - w_hot
    record_dropped = cost("warden_default_hot") - w_hot if "warden_default_hot" in by else nan
    record_logfile = cost("warden_logfile_hot") - w_hot if "warden_logfile_hot" in by else nan
    record_fs = cost("warden_fs_hot") - w_hot if "warden_fs_hot" in by else nan
    alerts_added = cost("warden_alerts_hot") - w_hot if "warden_alerts_hot" in by else nan
    ship_md = ship_note(by, cost, w_hot)
    risk_added = cost("warden_risk_hot") - w_hot if "warden_risk_hot" in by else float("nan")
    have_mcp = all(k in by for k in ("passthrough_post", "warden_post", "warden_mcp_call"))
    post_cost = by["warden_post"]["cpu_us"] - by["passthrough_post"]["cpu_us"] if have_mcp else float("nan")
    mcp_cost = by["warden_mcp_call"]["cpu_us"] - by["passthrough_post"]["cpu_us"] if have_mcp else float("nan")
    mcp_added = mcp_cost - post_cost

    crit = criterion_results()
    crit_md = "\n".join(f"| `{i}` | {mean:,.1f} | {med:,.1f} |" for i, mean, med in crit)
    crit_section = (
        "| benchmark | mean µs | median µs |\n|---|---:|---:|\n" + crit_md
        if crit else "_(no results yet: run `cargo bench -p warden --bench engine`)_")
    stats_md = ", ".join(f"`{k.rsplit('.', 1)[-1]}` {v:,}" for k, v in sorted(jwt_stats.items()) if v)

    # Paths under the checkout are written relative to it, so the report holds no machine's paths.
    cmd_md = "\n".join(f"# {k}\n{' '.join(v)}" for k, v in commands.items()).replace(f"{ROOT}/", "")
    n_rounds = rows[0]["rounds"]
    ship_cpus = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)) if str(c) != ENVOY_CPU)
    ship_setup = "" if not set(SHIP_ROWS) & set(by) else f"""
The http-sink rows (`audit.sink: http`) run at the same log level as the log rows (their Envoy log holds no
record: checked) and ship every record in ndjson POSTs (`batch_bytes` {SHIP_BATCH_BYTES:,}, `batch_delay_ms`
{SHIP_BATCH_DELAY_MS:,}, `buffer_bytes` {SHIP_BUFFER_BYTES:,}; at most 8 calls in flight per worker, sent
from its 250 ms tick) to bench/collector.py, a Python ThreadingHTTPServer in a process
of its own{" pinned to CPU " + ship_cpus + " (beside wrk)" if PIN and ship_cpus else ""} in the idle scheduling
class (`chrt --idle 0`: it runs only when that CPU has nothing else to run, so it never delays wrk's
measurement), so its CPU is not Envoy's; it reads each body, counts its records and answers 204. After every run bench.py checks that the
collector got a record for every request answered, less what a worker may still hold."""
    text = f"""# Benchmarks

Written by `make bench` (bench/run.sh → bench/bench.py) on {started}, in {elapsed:.0f} s. Re-run it to
refresh this file.

## Envoy: passthrough vs native jwt_authn vs Warden

{table}

- **Warden / jwt_authn, cached token: {hot:.2f}x by req/s, {hot_cpu:.2f}x by Envoy CPU per request**
  (target ≥ 0.9x: {verdict}).
- Warden / jwt_authn, a first-seen token on every request: {cold:.2f}x by req/s, {cold_cpu:.2f}x by CPU.
- *Envoy CPU µs/req*: the Envoy process's user+system CPU time during the measurement (from
  /proc/PID/stat) over the requests it answered; less sensitive to a busy machine than req/s, which
  is what it limits once the one worker saturates. *added* = that minus passthrough's: what the filter
  costs per request. Cached token, no decision record: Warden {w_hot:.0f} µs, of which {floor:.0f} µs
  is the floor any Wasm filter pays in Envoy (the empty filter's row: VM calls for context create,
  headers, done, log, delete); jwt_authn {j_hot:.0f} µs.
- The decision record (goal: at most 10 µs of Envoy CPU per request), against the row without one
  ({w_hot:.0f} µs): written to Envoy's log {record_log:.1f} µs (stderr, to a file: one write per
  line), {record_logfile:.1f} µs with `--log-path` (Envoy's log file, written in batches); built and handed to Envoy's log at
  `--log-level warn`, which drops it (the default config, `audit.sink: log`) {record_dropped:.1f} µs; to
  Envoy's access log through filter state (`audit.sink: filter_state`, a file access log printing
  `%FILTER_STATE(wasm.warden_record:PLAIN)%`) {record_fs:.1f} µs. A deployment that keeps Envoy's log
  at warn and wants no record says so (`audit.enabled: false`) or sends it to the access log.{ship_md}
  Alerts configured, nothing sent (goal: at most 2 µs): {alerts_added:.1f} µs.
- Risk scoring on (shadow: scored, tagged, never refused) adds {risk_added:.0f} µs of Envoy CPU per
  request to the cached-token row: two shared-data reads and two compare-and-set writes, the features
  and the model (`cargo bench -p warden --bench risk_decision` has the native pieces).
- First-seen ES256 token: Warden {w_cold:.0f} µs, jwt_authn {j_cold:.0f} µs (jwt_authn without its
  cache, same token every time: {j_nocache:.0f} µs).
- MCP tool call (`POST` of a 1 KB JSON-RPC `tools/call`, cached token for the bench path and the MCP
  resource): Warden on a plain route costs {post_cost:.0f} µs of Envoy CPU beyond the same POST through
  passthrough; on an MCP endpoint {mcp_cost:.0f} µs. **Body inspection adds {mcp_added:.0f} µs per
  request** (the request waits for its body, which is read once, parsed, checked against the tool's
  rule and the token's audience; `Authorization` is removed).
- jwt_authn counters during its cold rows (proof that they missed its cache): {stats_md or "n/a"}.
- *errors* counts non-2xx answers and socket errors over all rounds; a row with errors is not valid.

Setup: one Envoy worker (`--concurrency 1`){" pinned to CPU " + ENVOY_CPU if PIN else ""}, wrk with one
thread and {CONNECTIONS} connections{" pinned to CPU " + WRK_CPU if PIN else ""}. All Envoys run at once
(idle ones cost nothing) and each of {n_rounds} rounds measures every row once for {DURATION} s after a
warm-up ({WARMUP} s in the first round, 1 s later); a row shows the round with its median req/s, and the
min–max over the rounds. Every request is `GET {PATH}` with `Authorization: Bearer <ES256 token>`
(the same request bytes for every scenario, passthrough included); the route is answered by Envoy
(`direct_response`), so no upstream hides the filter's cost. jwt_authn and Warden have the same ES256
key (inline JWKS) and the same token; jwt_authn copies `sub` and `tenant` to request headers
(`claim_to_headers`), Warden sets its `x-auth-*` headers, matches the route template and checks its
scope. Like jwt_authn, the authorization rows (cached, first-seen, risk, alerts, POST) write no decision
record (`audit.enabled: false`); the record rows and the full pipeline run Warden's default (audit on,
to the log): `--component-log-level wasm:info` writes every record to Envoy's log, except in the
"Envoy at warn" row, which shows what the default costs when Envoy's log level drops it.{ship_setup} Cold
rows rotate through {COLD_TOKENS:,} distinct pre-minted tokens (PyJWT), each Envoy starting after the
last token it saw: more than jwt_authn's cache (100) or Warden's (4096 per worker) holds, so every
request pays a signature verification.

**Noise.** Load average at start: {m['load']} on {m['nproc']} CPUs. On a shared machine (other builds
running) absolute numbers move between runs (see min–max) and latency percentiles include time the
worker spent descheduled; the rounds interleave the rows, so compare the ratios and the CPU column.

### Machine

- nproc: {m['nproc']}; CPU: {m['cpu']}; kernel {m['kernel']}; load average at start: {m['load']}
- Envoy {m['envoy']}; {m['wrk']}; warden.wasm {m['wasm_bytes']:,} bytes

### Commands

```
{cmd_md}
```

"""
    text += analysis(by, cost, stage_lines, pure_rust or {})
    text += "\n".join(envoy_side.section(price or {}, splits or {}, {k: by[k]["cpu_us"] for k in (splits or {})
                                                                      if k in by},
                                          {k: f"{by[k]['label']}, {by[k]['token']}" for k in (splits or {}) if k in by}))
    text += baseline_section(by, m)
    text += f"""
## Engine, natively (criterion)

From the last `cargo bench -p warden --bench engine` on this machine (`target/criterion`, wall-clock,
as noisy as the machine was then); `make bench` does not re-run it.

{crit_section}
"""
    OUT.write_text(text)
    return table


# ---------------------------------------------------------------------------------------------


def pure_rust_timings(wasm: Path, work: Path) -> dict[str, dict]:
    """Median µs of `Provider::verify` per algorithm, the pure-Rust path (rsa, ed25519-dalek, jwt-simple's curves), under wasmtime and node."""
    out: dict[str, dict] = {}
    if not wasm.exists():
        return out
    try:
        import wasmtime  # PyPI `wasmtime` (Makefile PY_DEPS)
        engine = wasmtime.Engine()
        store = wasmtime.Store(engine)
        wasi = wasmtime.WasiConfig()
        wasi.argv = ["signature_timing"]
        stdout = work / "signature_timing.out"
        wasi.stdout_file = str(stdout)
        wasi.inherit_stderr()
        store.set_wasi(wasi)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        module = wasmtime.Module.from_file(engine, str(wasm))
        for imp in module.imports:
            if imp.module == "env" and isinstance(imp.type, wasmtime.FuncType):
                n = len(imp.type.results)
                linker.define(store, "env", imp.name,
                              wasmtime.Func(store, imp.type, (lambda *a, _n=n: 0 if _n else None)))
        instance = linker.instantiate(store, module)
        try:
            instance.exports(store)["_start"](store)
        except wasmtime.ExitTrap as e:
            if e.code != 0:
                raise
        out["wasmtime"] = json.loads(stdout.read_text().strip().splitlines()[-1])
    except Exception as e:  # noqa: BLE001  (the report says what failed)
        print(f"bench: wasmtime timing failed: {e}", file=sys.stderr)
    try:
        text = subprocess.run(["node", str(BENCH / "wasi_run.js"), str(wasm)], check=True, capture_output=True,
                              text=True, timeout=300).stdout
        out["node (V8)"] = json.loads(text.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        print(f"bench: node timing failed: {e}", file=sys.stderr)
    return out


def stages_of(log: str) -> dict[str, float]:
    """The mean µs per request of each stage over the instrumented build's lines (each covers 10,000
    requests; the first, which holds the warm-up, is dropped when there are more)."""
    windows = []
    for line in log.splitlines():
        if "warden: stages over" not in line:
            continue
        parts = line.split("(us/request):", 1)[-1].split()
        windows.append({k: float(v) for k, v in (p.split("=", 1) for p in parts if "=" in p)})
    if len(windows) > 1:
        windows = windows[1:]
    if not windows:
        return {}
    return {k: sum(w[k] for w in windows) / len(windows) for k in windows[0]} | {"windows": len(windows)}


def in_round(plan: list[tuple], rnd: int) -> list[tuple]:
    """The plan's order in round `rnd`: every other round, a baseline row goes before its pair, so that
    neither build always runs second."""
    if rnd % 2 == 0:
        return plan
    out = list(plan)
    for i in range(1, len(out)):
        if out[i][0] in BASELINE_ROWS.values():
            out[i - 1], out[i] = out[i], out[i - 1]
    return out


def baseline_section(by: dict, m: dict) -> str:
    """This build against the baseline build, row by row, measured in the same rounds."""
    pairs = [(k, b) for k, b in BASELINE_ROWS.items() if k in by and b in by]
    if not pairs:
        return ""
    base = by["passthrough"]["cpu_us"]
    out = [f"## This build against {m.get('baseline_label', 'the baseline')} (same run)\n",
           f"The baseline build (`{m.get('baseline_wasm', '?')}`, {m.get('baseline_bytes', 0):,} bytes) ran the "
           "same configs beside this one: each of its rows right after this build's in every round, so both "
           "met the same machine. Envoy CPU µs per request (added over passthrough in brackets).\n",
           "| row | baseline | this build | difference |", "|---|---:|---:|---:|"]
    for k, b in pairs:
        new, old = by[k]["cpu_us"], by[b]["cpu_us"]
        out.append(f"| {by[k]['label']}, {by[k]['token']} | {old:.0f} ({old - base:.0f}) | {new:.0f} ({new - base:.0f}) "
                   f"| {new - old:+.0f} |")
    return "\n".join(out) + "\n"


def median_row(runs: list[dict]) -> dict:
    """The run with the median req/s (its latencies with it), plus the spread over the rounds."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    row = dict(ordered[len(ordered) // 2])
    row["rps_min"], row["rps_max"] = ordered[0]["rps"], ordered[-1]["rps"]
    cpus = sorted(r["cpu_us"] for r in runs)
    row["cpu_us"] = cpus[len(cpus) // 2]
    row["errors"] = sum(r["errors"] for r in runs)
    row["rounds"] = len(runs)
    return row


SPLIT_ROWS = ("wasm_noop_hot", "warden_hot", "warden_risk_hot", "warden_cold", "warden_full_hot")


def envoy_side_rows(work: Path, envoys: dict, ports: dict, variants: dict, rows: list[dict], cursor: dict,
                    tokens: dict[str, Path], only: str | None) -> tuple[dict, dict]:
    """The host-call prices (probe Envoys started here, stopped with the others) and Envoy's CPU split
    for SPLIT_ROWS (bench/envoy_side.py). A partial run (BENCH_ONLY) does them if it names `prices` or
    `splits`."""
    price: dict = {}
    splits: dict = {}
    if not only or "prices" in only.split(","):
        print("bench: pricing host calls in Envoy (the probe filter) ...", flush=True)
        for key, cfg in envoy_side.price_configs().items():
            envoys[key], _ = start_envoy(work, Variant(key, key, [wasm_filter(PROBE_WASM, cfg)], False))
            ports[key] = envoys[key].listener_port()

        def measure(key: str, seconds: int) -> float:
            wrk(ports[key], tokens["hot"], 1)
            pid = envoys[key].proc.pid
            cpu0 = cpu_s(pid)
            r, _ = wrk(ports[key], tokens["hot"], seconds)
            return (cpu_s(pid) - cpu0) * 1e6 / max(r["requests"], 1)

        price = envoy_side.prices(measure)
        print(f"bench: host-call prices (µs per call): {json.dumps({k: round(v, 2) for k, v in price.items()})}")
    if (not only or "splits" in only.split(",")) and envoy_side.perf_works():
        by = {r["key"]: r for r in rows}
        for key in SPLIT_ROWS:
            vkey = key.rsplit("_", 1)[0]
            if key not in by or vkey not in envoys:
                continue
            kind = "cold" if key.endswith("_cold") else "hot"
            offset = cursor.get(vkey, 0)

            def run(port: int = ports[vkey], toks: Path = tokens[kind], start: int = offset) -> None:
                wrk(port, toks, DURATION, start)

            splits[key] = envoy_side.split(envoys[vkey].proc.pid, run, work / f"perf-{key}.data")
        print(f"bench: Envoy CPU split: {json.dumps(splits)}")
    return price, splits


def main() -> int:
    if os.environ.get("BENCH_REPORT_FROM"):
        # Re-render BENCHMARKS.md from a run's results.json (e.g. after editing the prose).
        doc = json.loads(Path(os.environ["BENCH_REPORT_FROM"]).read_text())
        print(write_report(doc["rows"], doc["machine"], doc["commands"], doc["started"], doc["elapsed"],
                           doc["jwt_stats"], doc.get("stages", {}), doc.get("pure_rust", {}),
                           doc.get("prices", {}), doc.get("splits", {})))
        return 0
    # `timeout` in run.sh sends SIGTERM: exit through `finally`, which stops the Envoys we started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t0 = time.monotonic()
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    for need in (ENVOY, WASM, PROBE_WASM, STAGE_WASM, *([BASELINE] if BASELINE else [])):
        if not need.exists():
            print(f"bench: {need} missing: run `make bench` (it builds them)", file=sys.stderr)
            return 1
    if shutil.which("wrk") is None:
        print("bench: wrk not found (apt-get install wrk)", file=sys.stderr)
        return 1
    m = machine()  # before the load: the load average at start says how busy the machine was
    work = Path(tempfile.mkdtemp(prefix="warden-bench-"))
    private, jwk = make_key()
    rsa_private, rsa_jwk = make_rsa_key()
    jwks = {"keys": [jwk, rsa_jwk]}
    now = int(time.time())
    hot_file, cold_file = work / "hot.txt", work / "cold.txt"
    hot_token = mint(private, 1, now)[0]
    hot_file.write_text(hot_token + "\n")
    print(f"bench: minting {COLD_TOKENS} ES256 tokens ...", flush=True)
    cold_file.write_text("\n".join(mint(private, COLD_TOKENS, now + 1)) + "\n")
    print(f"bench: minting {RSA_TOKENS} RS256 and {RSA_TOKENS} PS256 tokens ...", flush=True)
    rs_file, ps_file = work / "cold-rs256.txt", work / "cold-ps256.txt"
    rs_file.write_text("\n".join(mint(rsa_private, RSA_TOKENS, now + 2, alg="RS256", kid=KID_RSA)) + "\n")
    ps_file.write_text("\n".join(mint(rsa_private, RSA_TOKENS, now + 3, alg="PS256", kid=KID_RSA)) + "\n")
    # The tool-call rows: one token for the bench path and the MCP resource, a 1 KB JSON-RPC body.
    mcp_file, body_file = work / "mcp.txt", work / "tool-call.json"
    mcp_token = mint(private, 1, now, aud=[AUDIENCE, MCP_RESOURCE])[0]
    mcp_file.write_text(mcp_token + "\n")
    body_file.write_bytes(tool_call_body())

    # The authorization rows (cached, first-seen, risk, alerts, POST) run without a decision record:
    # jwt_authn writes none either, and the record has rows and a goal of its own (written to Envoy's
    # log, to its access log, or built by the default config and dropped by Envoy's log level).
    warden_cfg = warden_config(jwks, audit=False)
    default_cfg = warden_config(jwks, audit=True)
    full_cfg = {**default_cfg, "risk": {"mode": "shadow"}}
    # The http sink's rows ship to the collector, started only when they run.
    only = os.environ.get("BENCH_ONLY")  # comma-separated row keys: a partial run, no report
    collector = Collector() if not only or set(only.split(",")) & set(SHIP_ROWS) else None
    ship_port = collector.port if collector else 9
    variants = {
        "passthrough": Variant("passthrough", "Envoy passthrough (no auth filter)", [], auth=False),
        "wasm_noop": Variant("wasm_noop", "empty Wasm filter (V8): the floor", [wasm_filter(PROBE_WASM, "")], False),
        "wasm_verify": Variant("wasm_verify", "empty Wasm filter + Envoy verify_signature (ES256)",
                               [wasm_filter(PROBE_WASM, verify_signature_args(private, hot_token))], False),
        # The same call for RS256: Envoy imports the 2048-bit key from DER on every call.
        "wasm_verify_rs": Variant("wasm_verify_rs", "empty Wasm filter + Envoy verify_signature (RS256)",
                                  [wasm_filter(PROBE_WASM, verify_signature_args(
                                      rsa_private, mint(rsa_private, 1, now, alg="RS256", kid=KID_RSA)[0]))],
                                  False),
        "jwt_cache": Variant("jwt_cache", "jwt_authn, jwt_cache_config on", [jwt_authn_filter(jwks, True)], True),
        "warden": Variant("warden", "Warden (V8), no decision record", [wasm_filter(WASM, warden_cfg)], True),
        # Risk scoring on (state in shared data, features, the embedded model), in shadow so that the
        # one identity's burst is scored and tagged but never refused.
        "warden_risk": Variant("warden_risk", "Warden (V8), risk scoring on (shadow)",
                               [wasm_filter(WASM, {**warden_cfg, "risk": {"mode": "shadow"}})], True),
        "jwt_nocache": Variant("jwt_nocache", "jwt_authn, no cache", [jwt_authn_filter(jwks, False)], True),
        # The decision record (the default config: audit on, to the log): written to Envoy's log; built
        # and handed to a log level that drops it; to Envoy's access log through filter state.
        "warden_log": Variant("warden_log", "Warden (V8), record written to Envoy's log",
                              [wasm_filter(WASM, default_cfg)], True, WASM_INFO),
        # The same, Envoy's log to a file of its own (`--log-path`: written in batches by Envoy's flush
        # thread) instead of stderr (one write per line).
        "warden_logfile": Variant("warden_logfile", "Warden (V8), record written to Envoy's log (--log-path)",
                                  [wasm_filter(WASM, default_cfg)], True,
                                  (*WASM_INFO, "--log-path", str(work / "envoy-warden_logfile.records.log"))),
        "warden_default": Variant("warden_default", "Warden (V8), default config, Envoy at warn (record dropped)",
                                  [wasm_filter(WASM, default_cfg)], True),
        "warden_fs": Variant("warden_fs", "Warden (V8), record to the access log (filter state)",
                             [wasm_filter(WASM, {**warden_cfg, "audit": {"enabled": True, "sink": "filter_state"}})],
                             True, access_log=True),
        # The record shipped in batches over HTTP (`audit.sink: http`) to the collector, a process of its
        # own; Envoy's log level as the log rows' (the sink writes no record there: checked at the end).
        "warden_ship": Variant("warden_ship", "Warden (V8), record shipped in batches (audit.sink: http)",
                               [wasm_filter(WASM, {**default_cfg, "audit": ship_audit(ship_port, "warden_ship")})],
                               True, WASM_INFO, records_port=ship_port),
        # Alerts configured; an allowed request raises no event, so nothing is queued or sent.
        "warden_alerts": Variant("warden_alerts", "Warden (V8), alerts on (nothing sent)",
                                 [wasm_filter(WASM, {**warden_cfg, "alerts": {"service": {
                                     "url": "http://127.0.0.1:9/alerts", "envoy_cluster": "alerts"}}})], True),
        # The same POST to an MCP endpoint: the body buffered, parsed and the tool's rule applied.
        "warden_mcp": Variant("warden_mcp", "Warden (V8), MCP endpoint", [wasm_filter(WASM, mcp_config(jwks))], True),
        # The whole pipeline: authorization, risk (shadow), the record written to Envoy's log.
        "warden_full": Variant("warden_full", "Warden (V8), full pipeline (risk + record written)",
                               [wasm_filter(WASM, full_cfg)], True, WASM_INFO),
        # The same pipeline, the record shipped in batches over HTTP.
        "warden_full_ship": Variant("warden_full_ship",
                                    "Warden (V8), full pipeline (risk + record shipped, audit.sink: http)",
                                    [wasm_filter(WASM, {**full_cfg, "audit": ship_audit(ship_port, "warden_full_ship")})],
                                    True, WASM_INFO, records_port=ship_port),
        # The instrumented build (stage-timing): the same pipeline, and a plain config for first-seen tokens.
        "stages_full": Variant("stages_full", "Warden, stage-timing build, full pipeline",
                               [wasm_filter(STAGE_WASM, full_cfg)], True, WASM_INFO),
        "stages_plain": Variant("stages_plain", "Warden, stage-timing build",
                                [wasm_filter(STAGE_WASM, default_cfg)], True),
        # Each goal row's host calls alone, made by the probe (bench/envoy_side.py, FLOOR_ROWS).
        **{f.rsplit("_", 1)[0]: Variant(f.rsplit("_", 1)[0], f"probe: the host calls alone of Warden, {name}",
                                        [wasm_filter(PROBE_WASM, cfg)], False, WASM_INFO)
           for _, f, name, cfg in envoy_side.FLOOR_ROWS},
        # Two workers, unpinned: throughput at saturation and p99 at a fixed offered load.
        "passthrough2": Variant("passthrough2", "Envoy passthrough, 2 workers", [], False, workers=2),
        "jwt_cache2": Variant("jwt_cache2", "jwt_authn (cache), 2 workers", [jwt_authn_filter(jwks, True)], True,
                              workers=2),
        "warden_full2": Variant("warden_full2", "Warden full pipeline, 2 workers", [wasm_filter(WASM, full_cfg)],
                                True, WASM_INFO, workers=2),
        "warden_full_ship2": Variant("warden_full_ship2", "Warden full pipeline, record shipped (http sink), 2 workers",
                                     [wasm_filter(WASM, {**full_cfg, "audit": ship_audit(ship_port, "warden_full_ship2")})],
                                     True, WASM_INFO, workers=2, records_port=ship_port),
    }
    if BASELINE:
        # The baseline build in the goal rows' configs.
        for key, label, cfg, args in (("base_warden", "Warden (V8), no decision record", warden_cfg, None),
                                      ("base_risk", "Warden (V8), risk scoring on (shadow)",
                                       {**warden_cfg, "risk": {"mode": "shadow"}}, None),
                                      ("base_log", "Warden (V8), record written to Envoy's log", default_cfg, WASM_INFO),
                                      ("base_full", "Warden (V8), full pipeline (risk + record written)", full_cfg,
                                       WASM_INFO)):
            variants[key] = Variant(key, f"{BASELINE_LABEL}: {label}", [wasm_filter(BASELINE, cfg)], True,
                                    *([args] if args else []))
    # (row key, variant, token kind), in table order.
    plan = [
        ("passthrough", "passthrough", "hot"),
        ("wasm_noop_hot", "wasm_noop", "hot"),
        ("jwt_cache_hot", "jwt_cache", "hot"),
        ("warden_hot", "warden", "hot"),
        ("warden_risk_hot", "warden_risk", "hot"),
        ("jwt_cache_cold", "jwt_cache", "cold"),
        ("warden_cold", "warden", "cold"),
        ("jwt_cache_cold_rs", "jwt_cache", "cold_rs"),
        ("warden_cold_rs", "warden", "cold_rs"),
        ("jwt_cache_cold_ps", "jwt_cache", "cold_ps"),
        ("warden_cold_ps", "warden", "cold_ps"),
        ("wasm_verify_hot", "wasm_verify", "hot"),
        ("wasm_verify_rs_hot", "wasm_verify_rs", "hot"),
        ("jwt_nocache_hot", "jwt_nocache", "hot"),
        ("warden_log_hot", "warden_log", "hot"),
        ("warden_logfile_hot", "warden_logfile", "hot"),
        ("warden_default_hot", "warden_default", "hot"),
        ("warden_fs_hot", "warden_fs", "hot"),
        ("warden_ship_hot", "warden_ship", "hot"),
        ("warden_alerts_hot", "warden_alerts", "hot"),
        # POST with a 1 KB JSON-RPC body: a plain route, then an MCP tool call (the body inspected).
        ("passthrough_post", "passthrough", "post"),
        ("warden_post", "warden", "post"),
        ("warden_mcp_call", "warden_mcp", "post"),
        ("warden_full_hot", "warden_full", "hot"),
        ("warden_full_ship_hot", "warden_full_ship", "hot"),
        ("stages_full_hot", "stages_full", "hot"),
        ("stages_plain_cold", "stages_plain", "cold"),
        *((f, f.rsplit("_", 1)[0], "hot") for _, f, _, _ in envoy_side.FLOOR_ROWS),
        # Two workers: saturation (throughput), then a fixed offered load (p99).
        ("passthrough2_sat", "passthrough2", "hot", "sat"),
        ("jwt_cache2_sat", "jwt_cache2", "hot", "sat"),
        ("warden_full2_sat", "warden_full2", "hot", "sat"),
        ("passthrough2_rate", "passthrough2", "hot", "rate"),
        ("jwt_cache2_rate", "jwt_cache2", "hot", "rate"),
        ("warden_full2_rate", "warden_full2", "hot", "rate"),
        ("warden_full_ship2_rate", "warden_full_ship2", "hot", "rate"),
    ]
    if BASELINE:
        with_base = []
        for p in plan:
            with_base.append(p)
            if p[0] in BASELINE_ROWS:
                base_key = BASELINE_ROWS[p[0]]
                # The baseline's variant: its row key less the token kind (`base_warden_cold_rs`).
                with_base.append((base_key, base_key.removesuffix(f"_{p[2]}"), p[2]))
        plan = with_base
    plan = [(p[0], p[1], p[2], p[3] if len(p) > 3 else "one") for p in plan]
    if only:
        plan = [p for p in plan if p[0] in only.split(",")]
    commands: dict[str, list[str]] = {}
    envoys: dict[str, render.Envoy] = {}
    ports: dict[str, int] = {}
    runs: dict[str, list[dict]] = {key: [] for key, _, _, _ in plan}
    cursor: dict[str, int] = {}  # per Envoy: cold tokens used so far
    jwt_stats: dict[str, int] = {}
    shipped: dict[str, int] = {}  # per http-sink Envoy: the requests it has answered, so records due
    if collector:
        commands["record collector of the http-sink rows (POST: read, 204)"] = collector.cmd
    try:
        # Every Envoy up at once (idle ones cost nothing), so the rounds can interleave the rows.
        for vkey in dict.fromkeys(v for _, v, _, _ in plan):
            v = variants[vkey]
            envoys[vkey], cmd = start_envoy(work, v)
            commands[f"Envoy, {v.label} (config: {work / f'envoy-{vkey}.yaml'})"] = cmd
            port = ports[vkey] = envoys[vkey].listener_port()
            mcp = vkey == "warden_mcp"
            got = status_of(port, mcp_token, tool_call_body()) if mcp else status_of(port, hot_token)
            if got != 200:
                raise RuntimeError(f"{v.label}: a valid token got {got}\n{envoys[vkey].read_log()[-3000:]}")
            if v.auth and (got := status_of(port, None, tool_call_body() if mcp else None)) != 401:
                raise RuntimeError(f"{v.label}: no token got {got}, expected 401 (is the filter on?)")
            if v.records_port and collector:
                # Both requests' records reach the collector within a batch delay and a tick.
                shipped[vkey] = 2
                if (n := collector.wait_for(vkey, 2, SHIP_BATCH_DELAY_MS / 1000 + 3)) < 2:
                    print(f"bench: WARNING: {v.label}: the collector got {n} of 2 records after "
                          f"{SHIP_BATCH_DELAY_MS / 1000 + 3:.0f} s (is the http sink in this build?)\n"
                          f"{envoys[vkey].read_log()[-2000:]}", file=sys.stderr, flush=True)
        # Rounds: every row once per round, so machine noise spreads over all rows alike.
        for rnd in range(ROUNDS):
            for key, vkey, kind, mode in in_round(plan, rnd):
                v, port = variants[vkey], ports[vkey]
                tokens = {"hot": hot_file, "cold": cold_file, "post": mcp_file, "cold_rs": rs_file,
                          "cold_ps": ps_file}[kind]
                cold = kind.startswith("cold")
                body = body_file if kind == "post" else None
                start = cursor.get(vkey, 0)
                warm, _ = wrk(port, tokens, WARMUP if rnd == 0 else 1, start, body, mode)
                # Cold: measure on tokens this Envoy has not seen (after those the warm-up used).
                offset = start + warm["requests"] + 10 * CONNECTIONS
                before = envoys[vkey].stats("http.ingress.jwt_authn") if vkey == "jwt_cache" and cold else {}
                pid = envoys[vkey].proc.pid
                cpu0 = cpu_s(pid)
                r, wcmd = wrk(port, tokens, DURATION, offset if cold else 0, body, mode)
                # Envoy's own CPU time per request: much less sensitive to a busy machine than req/s.
                r["cpu_us"] = (cpu_s(pid) - cpu0) * 1e6 / max(r["requests"], 1)
                if cold:
                    cursor[vkey] = offset + r["requests"] + 10 * CONNECTIONS
                if v.records_port and collector:
                    # Every request this Envoy answered has a record due at the collector.
                    shipped[vkey] += warm["requests"] + r["requests"]
                    r["delivery"] = check_delivery(collector, envoys[vkey], vkey, shipped[vkey], r["rps"])
                if before:
                    after = envoys[vkey].stats("http.ingress.jwt_authn")
                    for name, val in after.items():
                        jwt_stats[name] = jwt_stats.get(name, 0) + val - before.get(name, 0)
                delay = [f"BENCH_DELAY_MS={RATE_DELAY_MS}"] if mode == "rate" else []
                commands.setdefault(f"wrk, {kind} token, {mode}", [f"BENCH_TOKENS={tokens.name}", *delay,
                                    *([f"BENCH_BODY={body.name}"] if body else []), *wcmd])
                token = {"hot": "cached (one token)", "cold": "first-seen (ES256)",
                         "post": "cached, POST 1 KB JSON-RPC", "cold_rs": "first-seen (RS256)",
                         "cold_ps": "first-seen (PS256)"}[kind]
                token += {"one": "", "sat": ", saturation",
                          "rate": f", ~{RATE_CONNECTIONS * 1000 // RATE_DELAY_MS:,} req/s offered"}[mode]
                r.update(key=key, label=v.label, token=token)
                runs[key].append(r)
                print(f"bench: round {rnd + 1}/{ROUNDS} {v.label:38s} {kind:4s} {r['rps']:9,.0f} req/s  "
                      f"cpu {r['cpu_us']:5.0f} µs/req  p50 {fmt_us(r['p50'])}  p99 {fmt_us(r['p99'])}  errors {r['errors']}",
                      flush=True)
        stage_lines = {vkey: stages_of(envoys[vkey].read_log()) for vkey in ("stages_full", "stages_plain")
                       if vkey in envoys}
        rows = [median_row(runs[key]) for key, _, _, _ in plan]
        for row in rows:
            if "delivery" in row:
                # Valid only if every round delivered; the last round's counts are the run's totals.
                row["delivery_ok"] = all(r["delivery"]["ok"] for r in runs[row["key"]])
                row["delivery"] = runs[row["key"]][-1]["delivery"]
                vkey = next(v for k, v, _, _ in plan if k == row["key"])
                # The http sink writes no record to Envoy's log (at the log rows' level): record lines there.
                row["log_records"] = sum(
                    '"request_id":' in ln for ln in envoys[vkey].read_log().splitlines())
        price, splits = envoy_side_rows(work, envoys, ports, variants, rows, cursor,
                                        {"hot": hot_file, "cold": cold_file}, only)
    finally:
        for e in envoys.values():
            e.stop()
        if collector:
            collector.stop()
    if jwt_stats:
        print(f"bench: jwt_authn counters during its cold rows: {json.dumps(jwt_stats, sort_keys=True)}")
    for row in rows:
        if "delivery" in row:
            d = row["delivery"]
            print(f"bench: {row['key']}: the collector got {d['after_wait']:,} records for {d['expected']:,} "
                  f"requests in {d['posts']:,} POSTs (Envoy: sent {d['envoy_sent']:,}, dropped {d['envoy_dropped']:,}); "
                  f"record lines in Envoy's log: {row['log_records']:,}; "
                  f"{'delivered' if row['delivery_ok'] else 'NOT delivered: the row is not valid'}")
            if row["log_records"]:
                print(f"bench: WARNING: {row['key']}: {row['log_records']:,} records also in Envoy's log "
                      "(the http sink should write none there)", file=sys.stderr)
    print("bench: timing the pure-Rust signature path under wasmtime and node ...", flush=True)
    pure_rust = pure_rust_timings(SIG_TIMING_WASM, work)
    print(f"bench: pure-Rust signature path (µs): {json.dumps(pure_rust)}")
    for vkey, st in stage_lines.items():
        print(f"bench: stages of {vkey} (µs/request): {json.dumps(st)}")
    if only:
        return 1 if any(r.get("delivery_ok") is False for r in rows) else 0
    (work / "results.json").write_text(json.dumps({"rows": rows, "commands": commands, "jwt_stats": jwt_stats,
                                                   "machine": m, "started": started, "elapsed": time.monotonic() - t0,
                                                   "stages": stage_lines, "pure_rust": pure_rust,
                                                   "prices": price, "splits": splits}))
    table = write_report(rows, m, commands, started, time.monotonic() - t0, jwt_stats, stage_lines, pure_rust,
                         price, splits)
    print(table)
    print(f"bench: wrote {OUT} (work files in {work})")
    bad = [r["label"] for r in rows if r["errors"]]
    if bad:
        print(f"bench: errors in {bad}: results not valid", file=sys.stderr)
        return 1
    undelivered = [r["label"] for r in rows if r.get("delivery_ok") is False]
    if undelivered:
        print(f"bench: records not delivered in {undelivered}: those rows are not valid", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
