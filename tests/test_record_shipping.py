"""Decision records shipped in batches over HTTP (`audit.sink: "http"`) through real Envoy into a real
collector: every request's record arrives exactly once, as NDJSON or as Splunk HEC events, with the
configured header; a collector answering errors gets the batches again after a backoff; a dead
or silent collector slows no request, each worker's buffer stays bounded, and every record it never got
is counted as dropped; the records still waiting when a new config replaces the old leave in last calls;
and the configs that cannot work are refused at load, naming the field."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema
import pytest
import render
from conftest import ROOT, Gateway, bearer, seen_by_upstream, warden_config
from test_alerts import counters, total
from test_config_reload import lds_bootstrap, replace_lds, start_lds_envoy

HEADER = {"name": "authorization", "value": "Splunk 0000-record-shipping"}
SCHEMA = json.loads((ROOT / "docs" / "schema" / "decision-record.v1.json").read_text())
TICK = 0.25  # the root context's tick, seconds
PROMPT = 0.5  # a request never waits for the collector: each is answered within this, seconds


@dataclass
class Call:
    """One POST the collector got, and what it answered."""

    at: float  # time.monotonic() when it arrived
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


class Collector:
    """A real HTTP collector: records each POST; answers the statuses of `script` to the first calls,
    then 200."""

    def __init__(self, script: list[int] | None = None):
        self.calls: list[Call] = []
        self.script = list(script or [])
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # Envoy's upstream connections are kept alive

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("transfer-encoding", "").lower():
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("content-length", 0)))

            def do_POST(self):  # noqa: N802
                body = self._body()
                with outer.lock:
                    status = outer.script.pop(0) if outer.script else 200
                    outer.calls.append(Call(time.monotonic(), self.path,
                                            {k.lower(): v for k, v in self.headers.items()}, body, status))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, name="record-collector", daemon=True).start()

    def snapshot(self) -> list[Call]:
        with self.lock:
            return list(self.calls)

    def delivered(self, fmt: str) -> list[dict]:
        """The records of every call answered 2xx (a record twice if it came twice)."""
        return [r for c in self.snapshot() if 200 <= c.status < 300 for r in records_in(c, fmt)]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def records_in(call: Call, fmt: str) -> list[dict]:
    """The records of one call's body (asserting its framing)."""
    text = call.body.decode()
    if fmt == "ndjson":
        # One record per line, each line ending in "\n".
        assert text.endswith("\n"), text[-200:]
        lines = text[:-1].split("\n")
        assert all(lines), f"an empty line in an NDJSON body: {text!r}"
        return [json.loads(line) for line in lines]
    # splunk_hec: one event object per record, "\n" between them.
    lines = text[:-1].split("\n") if text.endswith("\n") else text.split("\n")
    assert all(lines), f"an empty line in a HEC body: {text!r}"
    out = []
    for line in lines:
        event = json.loads(line, parse_float=Decimal)  # the time exactly as written
        assert set(event) == {"time", "source", "sourcetype", "event"}, line
        assert event["source"] == "warden" and event["sourcetype"] == "warden:decision", line
        t = event["time"]
        assert isinstance(t, (int, Decimal)) and not isinstance(t, bool), line
        if isinstance(t, Decimal):
            assert t.as_tuple().exponent >= -3, f"time is seconds with at most milliseconds: {line}"
        rec = json.loads(json.dumps(event["event"], default=float))
        assert abs(float(t) - rec["ts_ms"] / 1000) < 5, line
        assert abs(float(t) - time.time()) < 120, line
        out.append(rec)
    return out


def validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(SCHEMA)
    return cls(SCHEMA, format_checker=cls.FORMAT_CHECKER)


def free_port() -> int:
    """A loopback port nothing listens on (a dead collector)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shipping_config(keys, api_key, port: int, timeout_ms: int = 1000, **http) -> dict:
    c = warden_config(keys, api_key, "enforce")
    c["audit"] = {
        "enabled": True,
        "sink": "http",
        "http": {
            "service": {"url": f"http://127.0.0.1:{port}/records", "envoy_cluster": "records",
                        "timeout_ms": timeout_ms},
            "header": HEADER,
            "format": "ndjson",
            "batch_delay_ms": 300,
            **http,
        },
    }
    return c


def gateway_to(envoys, keys, api_key, port: int, name: str, **http):
    config = shipping_config(keys, api_key, port, **http)
    return envoys.gateway(config, name, transform=lambda text: text + render.idp_cluster(port, "records"))


def sent(gw) -> float:
    return total(counters(gw, "warden_records"), "warden_records_sent_total")


def dropped(gw, **labels) -> float:
    return total(counters(gw, "warden_records"), "warden_records_dropped_total", **labels)


def wait(pred, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


@dataclass
class Sent:
    """What the test sent: request id -> (subject or None, status); how long each request took."""

    expect: dict[str, tuple[str | None, int]]
    took: list[float]
    tokens: list[str]


def traffic(gw, keys, n: int, refused: int = 2) -> Sent:
    """`n` requests with real signed tokens: `n - refused` allowed (each its own subject), `refused`
    with a key the gateway does not know (401)."""
    expect, took, tokens = {}, [], []
    for i in range(n - refused):
        sub = "ship-" + uuid.uuid4().hex[:10]
        token = keys.mint(sub=sub)
        tokens.append(token)
        t = time.monotonic()
        seen = seen_by_upstream(gw.get(f"/orders/{i}", headers=bearer(token)))
        took.append(time.monotonic() - t)
        expect[seen["headers"]["x-request-id"]] = (sub, 200)
    for _ in range(refused):
        token = keys.mint(key=keys.stranger)
        tokens.append(token)
        t = time.monotonic()
        r = gw.get("/orders/7", headers=bearer(token))
        took.append(time.monotonic() - t)
        assert r.status_code == 401, r.text
        expect[r.json()["request_id"]] = (None, 401)
    return Sent(expect, took, tokens)


def merge(*sents: Sent) -> Sent:
    return Sent({k: v for s in sents for k, v in s.expect.items()},
                [t for s in sents for t in s.took], [t for s in sents for t in s.tokens])


def check_exactly_once(coll: Collector, fmt: str, sent_: Sent) -> None:
    """Every request's record delivered once, a valid record matching the request."""
    records = coll.delivered(fmt)
    ids = [r.get("request_id") for r in records]
    for rid in sent_.expect:
        assert ids.count(rid) == 1, (rid, ids.count(rid), [(c.status, len(c.body)) for c in coll.snapshot()])
    # Only these requests went through this gateway: nothing else was shipped.
    assert sorted(ids) == sorted(sent_.expect), (sorted(set(ids) - set(sent_.expect)))
    check = validator()
    for rec in records:
        check.validate(rec)
        sub, status = sent_.expect[rec["request_id"]]
        assert (rec["subject"], rec["status"]) == (sub, status), rec
        assert rec["decision"] == ("allow" if status == 200 else "deny"), rec
    bodies = b"".join(c.body for c in coll.snapshot())
    for token in sent_.tokens:
        assert token.encode() not in bodies and token.rsplit(".", 1)[-1].encode() not in bodies


def check_calls(coll: Collector, content_type: str) -> None:
    for c in coll.snapshot():
        assert c.path == "/records", c.path
        assert c.headers.get("content-type", "").split(";")[0].strip() == content_type, c.headers
        assert c.headers.get(HEADER["name"]) == HEADER["value"], c.headers


def all_arrived(coll: Collector, fmt: str, sent_: Sent) -> bool:
    return set(sent_.expect) <= {r.get("request_id") for r in coll.delivered(fmt)}


def settle() -> None:
    """Long enough for a record still buffered (or a duplicate batch) to be sent: the batch delay
    (300 ms) and two ticks."""
    time.sleep(0.3 + 2 * TICK)


def test_ndjson_batches_carry_each_record_once_and_the_log_none(envoys, keys, api_key):
    coll = Collector()
    try:
        gw = gateway_to(envoys, keys, api_key, coll.port, "records-ndjson", format="ndjson")
        # Both counters are defined (at 0) before any record.
        defined = lambda: {(n, dict(ls).get("why")) for (n, ls) in counters(gw, "warden_records")}  # noqa: E731
        assert wait(lambda: {("warden_records_sent_total", None),
                             ("warden_records_dropped_total", "buffer_full"),
                             ("warden_records_dropped_total", "send_failed")} <= defined(), 5), counters(gw, "warden_records")
        assert sent(gw) == 0 and dropped(gw) == 0
        s = traffic(gw, keys, 12)
        assert wait(lambda: all_arrived(coll, "ndjson", s)), ([c.body for c in coll.snapshot()], gw.log()[-3000:])
        assert wait(lambda: sent(gw) >= 12, 5), counters(gw, "warden_records")
        settle()
        check_exactly_once(coll, "ndjson", s)
        check_calls(coll, "application/x-ndjson")
        assert sent(gw) == 12 and dropped(gw) == 0, counters(gw, "warden_records")
        # The log sink is not used: no record line, nor any record, in Envoy's log.
        log = gw.log()
        assert not [r for _, r in gw.audit_records() if r.get("request_id") in s.expect], log[-3000:]
        for rid in s.expect:
            assert rid not in log, rid
        assert "panicked" not in log and "failed: Uncaught" not in log
    finally:
        coll.stop()


def test_splunk_hec_events_wrap_each_record(envoys, keys, api_key):
    coll = Collector()
    try:
        gw = gateway_to(envoys, keys, api_key, coll.port, "records-hec", format="splunk_hec")
        s = traffic(gw, keys, 8)
        assert wait(lambda: all_arrived(coll, "splunk_hec", s)), ([c.body for c in coll.snapshot()],
                                                                 gw.log()[-3000:])
        assert wait(lambda: sent(gw) >= 8, 5), counters(gw, "warden_records")
        settle()
        check_exactly_once(coll, "splunk_hec", s)
        check_calls(coll, "application/json")
        assert sent(gw) == 8 and dropped(gw) == 0, counters(gw, "warden_records")
        assert not [r for _, r in gw.audit_records() if r.get("request_id") in s.expect]
    finally:
        coll.stop()


def test_a_failing_collector_gets_each_batch_again_and_requests_flow(envoys, keys, api_key):
    failures = 3
    coll = Collector(script=[503] * failures)
    try:
        # Small batches (several calls per worker), and enough retries for a batch failed 3 times.
        gw = gateway_to(envoys, keys, api_key, coll.port, "records-failing", batch_bytes=1024, retries=3)
        first = traffic(gw, keys, 6, refused=1)
        assert wait(lambda: any(c.status == 503 for c in coll.snapshot()), 5), gw.log()[-3000:]
        # While the collector fails, requests are answered as ever.
        second = traffic(gw, keys, 6, refused=1)
        s = merge(first, second)
        assert all(t < PROMPT for t in s.took), s.took
        # A failed call is retried after 1 s, 2 s, 4 s: all delivered well within 15 s.
        assert wait(lambda: all_arrived(coll, "ndjson", s), 15), (
            [(c.status, c.body) for c in coll.snapshot()], gw.log()[-3000:])
        assert wait(lambda: sent(gw) >= 12, 5), counters(gw, "warden_records")
        settle()
        calls = coll.snapshot()
        assert sum(c.status == 503 for c in calls) == failures, [c.status for c in calls]
        # A call answered 503 delivered nothing: exactly once among the 2xx answers.
        check_exactly_once(coll, "ndjson", s)
        check_calls(coll, "application/x-ndjson")
        assert sent(gw) == 12 and dropped(gw) == 0, counters(gw, "warden_records")
        # A batch holds at most batch_bytes of records (or a single larger record).
        for c in calls:
            lines = c.body.count(b"\n")
            assert lines == 1 or len(c.body) - lines <= 1024, (lines, len(c.body))
        # The failed batches came again after the backoff (1 s), not at once.
        for failed in (c for c in calls if c.status == 503):
            rids = {r["request_id"] for r in records_in(failed, "ndjson")}
            again = min(c.at for c in calls if c.status == 200 and c.at > failed.at
                        and rids & {r["request_id"] for r in records_in(c, "ndjson")})
            assert again - failed.at >= 1.0 - TICK, again - failed.at
        log = gw.log()
        assert "panicked" not in log and "failed: Uncaught" not in log
    finally:
        coll.stop()


def test_a_dead_collector_slows_nothing_and_every_record_is_counted_dropped(envoys, keys, api_key):
    gw = gateway_to(envoys, keys, api_key, free_port(), "records-down",
                    batch_bytes=1024, buffer_bytes=4096, retries=0, timeout_ms=300)
    s = traffic(gw, keys, 40, refused=4)
    assert all(t < PROMPT for t in s.took), s.took
    assert wait(lambda: dropped(gw) > 0, 5), counters(gw, "warden_records")
    # Each record is dropped for a full buffer at once, or with its batch when the one call fails.
    assert wait(lambda: dropped(gw) >= 40, 10), counters(gw, "warden_records")
    c = counters(gw, "warden_records")
    assert dropped(gw) == 40, c
    assert total(c, "warden_records_dropped_total", why="buffer_full") + total(
        c, "warden_records_dropped_total", why="send_failed") == 40, c
    assert sent(gw) == 0, c
    # Still answering promptly after the drops.
    more = traffic(gw, keys, 5, refused=0)
    assert all(t < PROMPT for t in more.took), more.took
    log = gw.log()
    assert "panicked" not in log and "failed: Uncaught" not in log
    assert not [r for _, r in gw.audit_records() if r.get("request_id") in s.expect]


LAST_CALLS = re.compile(r"records: stopping: (\d+) record\(s\) in (\d+) last call\(s\)")


def test_records_waiting_when_a_new_config_replaces_the_old_leave_in_last_calls(envoys, upstream, keys, api_key,
                                                                               tmp_path):
    """A control plane pushes a new config (LDS here): Envoy ends the old config's root contexts once its
    listener has drained, and the records they still hold (a minute's delay here) leave at once, in one
    last call per worker, each delivered once and counted sent (before last calls they were dropped)."""
    coll = Collector()
    try:
        clusters = lambda text: text + render.idp_cluster(coll.port, "records")  # noqa: E731
        envoy, port, lds = start_lds_envoy(envoys, shipping_config(keys, api_key, coll.port, batch_delay_ms=60000),
                                           upstream.port, tmp_path, extra_args=("--drain-time-s", "1"),
                                           transform=clusters)
        gw = Gateway(envoy, port)
        s = traffic(gw, keys, 6, refused=1)
        time.sleep(2 * TICK)  # a tick or two: nothing is due for a minute
        assert not coll.calls
        _, listener = lds_bootstrap(shipping_config(keys, api_key, coll.port, batch_delay_ms=59000), port,
                                    upstream.port, lds, transform=clusters)
        replace_lds(lds, listener)
        assert wait(lambda: all_arrived(coll, "ndjson", s), 15), gw.log()[-3000:]
        assert wait(lambda: sent(gw) >= 6, 5), counters(gw, "warden_records")
        settle()
        check_exactly_once(coll, "ndjson", s)
        check_calls(coll, "application/x-ndjson")
        assert sent(gw) == 6 and dropped(gw) == 0, counters(gw, "warden_records")
        last = [(int(r), int(c)) for r, c in LAST_CALLS.findall(gw.log())]
        assert sum(r for r, _ in last) == 6 and sum(c for _, c in last) == len(coll.calls), (last, gw.log()[-3000:])
        # The new config ships too.
        again = traffic(gw, keys, 3, refused=0)
        assert not set(again.expect) & {r.get("request_id") for r in coll.delivered("ndjson")}
    finally:
        coll.stop()


def test_records_waiting_when_envoy_exits_are_told_of(envoys, keys, api_key):
    """Envoy calls each root context's `on_done` when it exits, but only after its workers have stopped:
    the last calls are dispatched and never sent, and each worker's log line says how many records they
    held. (ngx_wasm_module calls no `on_done` when a worker exits: see README.)"""
    collector = Collector()
    try:
        gw = gateway_to(envoys, keys, api_key, collector.port, "records-shutdown", batch_delay_ms=60000)
        s = traffic(gw, keys, 6, refused=1)
        time.sleep(2 * TICK)  # a tick or two: nothing is due for a minute
        assert not collector.calls
        gw.envoy.stop()
        last = [int(r) for r, _ in LAST_CALLS.findall(gw.log())]
        assert sum(last) == len(s.expect), gw.log()[-3000:]
        # Whatever did get out arrived once.
        ids = [r.get("request_id") for r in collector.delivered("ndjson")]
        assert len(ids) == len(set(ids)) and set(ids) <= set(s.expect), ids
    finally:
        collector.stop()


def test_a_silent_collector_bounds_each_workers_buffer(envoys, keys, api_key):
    """A collector that accepts the connection and never answers: the calls in flight hold their records
    (they count against buffer_bytes) until the timeout; records beyond the buffer are dropped at once."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # the kernel completes each handshake; nobody reads or answers
    try:
        port = silent.getsockname()[1]
        gw = gateway_to(envoys, keys, api_key, port, "records-silent",
                        batch_bytes=1024, buffer_bytes=4096, retries=0, timeout_ms=2000)
        n = 30
        s = traffic(gw, keys, n, refused=2)
        assert all(t < PROMPT for t in s.took), s.took
        # Each worker holds at most 4096 bytes of records (a record is > 400 bytes: at most 10 each).
        assert wait(lambda: dropped(gw, why="buffer_full") >= n - 2 * (4096 // 400), 3), counters(gw, "warden_records")
        # The held records are dropped when their calls time out (2 s), none retried.
        assert wait(lambda: dropped(gw) >= n, 8), counters(gw, "warden_records")
        c = counters(gw, "warden_records")
        assert dropped(gw) == n and total(c, "warden_records_dropped_total", why="send_failed") > 0, c
        assert sent(gw) == 0, c
    finally:
        silent.close()


def _without_http(c):
    del c["audit"]["http"]


def _http_with_log_sink(c):
    c["audit"]["sink"] = "log"


def _no_envoy_cluster(c):
    del c["audit"]["http"]["service"]["envoy_cluster"]


@pytest.mark.parametrize(
    "mutate, field",
    [
        (_without_http, "audit.http"),
        (_http_with_log_sink, "audit.sink"),
        (_no_envoy_cluster, "audit.http.service.envoy_cluster"),
    ],
    ids=["http_sink_without_http", "http_with_log_sink", "no_envoy_cluster"],
)
def test_configs_that_cannot_ship_are_refused_naming_the_field(envoys, keys, api_key, mutate, field):
    cfg = shipping_config(keys, api_key, free_port())
    mutate(cfg)
    code, log = envoys.refused(cfg, "records-refused-" + field.replace(".", "-"))
    assert code != 0, "Envoy accepted a config it must refuse"
    # The refusal itself names the field (not some other line of the log).
    refusals = [line for line in log.splitlines() if "warden: invalid config" in line]
    assert refusals, log[-3000:]
    assert any(field in line for line in refusals), refusals
