#!/usr/bin/env python3
"""Renders envoy/envoy.yaml.tmpl into a concrete Envoy bootstrap, and starts/stops Envoy.

Shared by `make run` (examples/run_demo.py) and the integration tests (tests/).

    python3 envoy/render.py --config examples/demo/warden.json > envoy.yaml

Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "envoy.yaml.tmpl"
DEFAULT_WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "warden.wasm"
DEFAULT_ENVOY = ROOT / ".venv" / "bin" / "envoy"


def _yaml_str(s: str) -> str:
    # A JSON string literal is a valid YAML double-quoted scalar (ensure_ascii keeps it 7-bit).
    return json.dumps(s, ensure_ascii=True)


def render(
    config: dict | str,
    *,
    wasm: str | os.PathLike = DEFAULT_WASM,
    listen_port: int = 10000,
    admin_port: int = 9901,
    upstream_host: str = "127.0.0.1",
    upstream_port: int = 8080,
    idp_port: int | None = None,
    geo: str = "strip",
    geo_header: str = "x-geo-country",
    record_log: str | os.PathLike | None = None,
    mcp_port: int | None = None,
    mcp_path: str = "/mcp",
) -> str:
    """The bootstrap YAML. `config` is the Warden config (a dict or its JSON text, passed verbatim).

    `idp_port`: adds the cluster `idp` (127.0.0.1:idp_port) for remote JWKS, discovery and introspection.
    `geo`: "strip" (default: this Envoy is the edge; a client's `geo_header` is removed before any filter,
    and only a filter you add after the removal, e.g. envoy.filters.http.geoip, may set it) or "edge"
    (an edge in front of this Envoy owns the header and overwrites any client value: kept as it comes).
    `record_log`: adds a file access log at that path printing Warden's decision record from filter state
    (for `"audit": {"sink": "filter_state"}`).
    `mcp_port`: routes `mcp_path` to the cluster `mcp` (an MCP server on 127.0.0.1:mcp_port), the rest to
    the upstream.
    """
    text = config if isinstance(config, str) else json.dumps(config, separators=(",", ":"))
    tmpl = string.Template(TEMPLATE.read_text())
    return tmpl.substitute(
        wasm=_yaml_str(str(Path(wasm).resolve())),
        configuration=_yaml_str(text),
        listen_port=int(listen_port),
        admin_port=int(admin_port),
        upstream_host=upstream_host,
        upstream_port=int(upstream_port),
        geo_mutation=geo_mutation(geo, geo_header),
        access_log=record_access_log(record_log) if record_log else "",
        stats_tags=stats_tags(),
        extra_routes=mcp_route(mcp_path) if mcp_port else "",
        extra_clusters=(idp_cluster(idp_port) if idp_port else "") + (idp_cluster(mcp_port, "mcp") if mcp_port else ""),
    )


def geo_mutation(geo: str, header: str) -> str:
    """The HTTP connection manager lines that keep a client's country header from Warden."""
    if geo == "edge":
        return (f"          # {header}: set by the edge in front of this Envoy, which overwrites any client value\n"
                f"          # (risk.geo_header_from_edge: true says so to Warden).")
    if geo != "strip":
        raise ValueError(f"geo must be 'strip' or 'edge', not {geo!r}")
    return f"""          # The client's {header} is removed before any filter runs: Warden's risk stage must never read a
          # country the client chose. To provide one, add envoy.filters.http.geoip (MaxMind) before Warden with
          # geo_headers_to_add.country: {header}, or a header_mutation filter copying a trusted edge's header.
          early_header_mutation_extensions:
          - name: envoy.http.early_header_mutation.header_mutation
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation
              mutations:
              - remove: {_yaml_str(header)}"""


# Labels of Warden's metrics (plugin/src/metrics.rs): each `.name.value` pair in a stat name becomes
# the Prometheus label name="value", and the pair leaves the name.
STATS_LABELS = ["verdict", "reason", "route", "result", "event", "why", "kind", "provider", "model"]


def stats_tags() -> str:
    """Envoy `stats_tags` that turn the labels of Warden's metrics into Prometheus labels."""
    out = []
    for name in STATS_LABELS:
        regex = r"^wasmcustom\.warden_.*?(\." + name + r"\.([^.]+))"
        out.append(f"  - tag_name: {name}\n    regex: {_yaml_str(regex)}\n")
    return "".join(out)


# The access-log line of Warden's filter-state sink: the decision record, one JSON object per line.
RECORD_FORMAT = "%FILTER_STATE(wasm.warden_record:PLAIN)%\n"


def record_access_log(path: str | os.PathLike) -> str:
    """An HCM file access log that writes the decision record Warden left in filter state (the
    `filter_state` sink). Envoy's other access loggers (gRPC ALS, OpenTelemetry) take the same format."""
    return f"""          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: {_yaml_str(str(path))}
              log_format:
                text_format_source:
                  inline_string: {_yaml_str(RECORD_FORMAT)}
"""


def mcp_route(path: str) -> str:
    """The MCP endpoint to the cluster `mcp`, with no route timeout: a streamable HTTP answer may be a
    long server-sent event stream (Envoy's stream idle timeout still ends a silent one)."""
    return f"""              - match: {{ path: {_yaml_str(path)} }}
                route: {{ cluster: mcp, timeout: 0s }}
"""


def idp_cluster(port: int, name: str = "idp") -> str:
    """A plain-HTTP cluster to a server on 127.0.0.1: the demo IdP (a real one needs TLS, see README), the
    demo MCP server."""
    return f"""  - name: {name}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{ address: 127.0.0.1, port_value: {int(port)} }}
"""


class EnvoyFailed(RuntimeError):
    """Envoy exited, or did not become ready in time."""

    def __init__(self, message: str, log: str):
        super().__init__(f"{message}\n--- envoy log (tail) ---\n{log[-4000:]}")
        self.log = log


@dataclass
class Envoy:
    """One Envoy process, detached in its own session so it outlives no one and dies with no one."""

    bootstrap: Path
    log_path: Path
    envoy: Path = DEFAULT_ENVOY
    concurrency: int = 2
    admin_address_path: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    admin: str | None = None  # "127.0.0.1:port"

    def start(self) -> "Envoy":
        if not Path(self.envoy).exists():
            raise FileNotFoundError(f"{self.envoy} not found: run `make setup`")
        self.admin_address_path = self.admin_address_path or self.log_path.with_suffix(".admin")
        if self.admin_address_path.exists():
            self.admin_address_path.unlink()
        args = [
            str(self.envoy),
            "-c", str(self.bootstrap),
            "--concurrency", str(self.concurrency),
            "--disable-hot-restart",  # several Envoys side by side (no shared-memory base id)
            "--admin-address-path", str(self.admin_address_path),
            "--log-level", "warn",
            "--component-log-level", "wasm:info",
            *self.extra_args,
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # setsid: not killed with the shell that started us
                cwd=ROOT,
            )
        finally:
            log.close()
        return self

    def read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_exit(self, timeout: float = 60.0) -> int:
        """For configs Envoy must refuse: the exit code (raises if it keeps running)."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise EnvoyFailed("envoy did not exit", self.read_log()) from None

    def wait_ready(self, timeout: float = 90.0) -> "Envoy":
        """Waits for the admin endpoint to say LIVE (the Wasm module is compiled by then)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EnvoyFailed(f"envoy exited with {self.proc.returncode}", self.read_log())
            if self.admin is None and self.admin_address_path and self.admin_address_path.exists():
                addr = self.admin_address_path.read_text().strip()
                self.admin = addr or None
            if self.admin:
                try:
                    with urllib.request.urlopen(f"http://{self.admin}/ready", timeout=2) as r:
                        if r.status == 200 and r.read().strip() == b"LIVE":
                            return self
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.02)
        self.stop()
        raise EnvoyFailed("envoy not ready in time", self.read_log())

    def listener_port(self, name: str = "ingress") -> int:
        """The port the listener really bound (the template may ask for port 0)."""
        with urllib.request.urlopen(f"http://{self.admin}/listeners?format=json", timeout=5) as r:
            doc = json.load(r)
        for listener in doc.get("listener_statuses", []):
            if listener.get("name") == name:
                return int(listener["local_address"]["socket_address"]["port_value"])
        raise EnvoyFailed(f"no listener {name!r}", json.dumps(doc))

    def stats(self, prefix: str = "") -> dict[str, int]:
        with urllib.request.urlopen(f"http://{self.admin}/stats?format=json", timeout=5) as r:
            doc = json.load(r)
        out = {}
        for s in doc.get("stats", []):
            if "value" in s and s["name"].startswith(prefix):
                out[s["name"]] = s["value"]
        return out

    def stop(self, grace: float = 5.0) -> None:
        """Stops this Envoy (its own process group only) and reaps it."""
        p = self.proc
        if p is None or p.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                return
            try:
                p.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Render the Envoy bootstrap for Warden.")
    ap.add_argument("--config", required=True, help="Warden config JSON file")
    ap.add_argument("--wasm", default=str(DEFAULT_WASM))
    ap.add_argument("--listen-port", type=int, default=10000)
    ap.add_argument("--admin-port", type=int, default=9901)
    ap.add_argument("--upstream-host", default="127.0.0.1")
    ap.add_argument("--upstream-port", type=int, default=8080)
    ap.add_argument("--idp-port", type=int, default=None, help="add the `idp` cluster to 127.0.0.1:PORT")
    ap.add_argument("--geo", choices=["strip", "edge"], default="strip",
                    help="strip: remove a client's country header (this Envoy is the edge); "
                         "edge: an edge in front owns it")
    ap.add_argument("--geo-header", default="x-geo-country")
    ap.add_argument("--record-log", default=None, help="an access log of decision records (audit.sink filter_state)")
    ap.add_argument("--mcp-port", type=int, default=None, help="route /mcp to an MCP server on 127.0.0.1:PORT")
    ap.add_argument("-o", "--output", help="write here instead of stdout")
    a = ap.parse_args(argv)
    out = render(
        Path(a.config).read_text(),
        wasm=a.wasm,
        listen_port=a.listen_port,
        admin_port=a.admin_port,
        upstream_host=a.upstream_host,
        upstream_port=a.upstream_port,
        idp_port=a.idp_port,
        geo=a.geo,
        geo_header=a.geo_header,
        record_log=a.record_log,
        mcp_port=a.mcp_port,
    )
    if a.output:
        Path(a.output).write_text(out)
    else:
        sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
