#!/usr/bin/env python3
"""The decision-record collector of bench.py's `audit.sink: http` rows, in a process of its own (so its
CPU never counts in the measured Envoy's; bench.py pins it away from Envoy's CPU).

Every POST's body is read whole and answered 204. Records are counted per URL path (each Envoy ships
to a path of its own, `/records/<variant>`): one per line of an `application/x-ndjson` body, the first
and last lines parsed as JSON to prove the body is records. `GET /counts` answers the counts as JSON:
{path: {"records", "posts", "bytes", "max_post", "bad", "last_bad"}}.

Prints `PORT <n>` once it listens on 127.0.0.1 (`--port 0`, the default: any free port) and exits when
its stdin closes, so it never outlives bench.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
COUNTS: dict[str, dict] = {}


def read_body(h: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in h.headers.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size = int(h.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while h.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(parts)
            parts.append(h.rfile.read(size))
            h.rfile.readline()
    return h.rfile.read(int(h.headers.get("content-length") or 0))


def check(content_type: str, body: bytes) -> str | None:
    """Why `body` is not an ndjson batch of records, or None."""
    if not content_type.startswith("application/x-ndjson"):
        return f"content-type {content_type!r}"
    if not body.endswith(b"\n"):
        return "the body does not end with a newline"
    first, _, rest = body.partition(b"\n")
    last = rest.rstrip(b"\n").rpartition(b"\n")[2] or first
    for line in (first, last):
        try:
            rec = json.loads(line)
        except ValueError as e:
            return f"a line is not JSON ({e}): {line[:120]!r}"
        if not isinstance(rec, dict) or "request_id" not in rec:
            return f"a line is not a decision record: {line[:120]!r}"
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: Envoy's connection pool reuses its connections

    def log_message(self, *_args) -> None:  # one line per POST would cost more than the counting
        pass

    def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
        body = read_body(self)
        bad = check(self.headers.get("content-type", ""), body)
        records = body.count(b"\n")
        with LOCK:
            c = COUNTS.setdefault(self.path, {"records": 0, "posts": 0, "bytes": 0, "max_post": 0, "bad": 0,
                                              "last_bad": None})
            c["posts"] += 1
            c["bytes"] += len(body)
            c["max_post"] = max(c["max_post"], len(body))
            if bad:
                c["bad"] += 1
                c["last_bad"] = bad
            else:
                c["records"] += records
        # 204: no body, no content-length.
        self.send_response(204)
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802
        with LOCK:
            out = json.dumps(COUNTS).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)

    def watch_stdin() -> None:
        sys.stdin.buffer.read()  # returns when bench.py closes the pipe or dies
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
