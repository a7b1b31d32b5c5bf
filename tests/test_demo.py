"""`make run` end to end: the demo script (CLI keygen/mint/check, echo upstream, MCP server, IdP, Envoy, the
MCP client walks) on free ports."""

from __future__ import annotations

import socket
import subprocess
import sys

from conftest import ROOT


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def test_demo_check(tmp_path):
    listen, admin, up, idp, mcp = free_ports(5)
    res = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "run_demo.py"), "--check",
         "--listen-port", str(listen), "--admin-port", str(admin), "--upstream-port", str(up), "--idp-port", str(idp),
         "--mcp-port", str(mcp),
         "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=180, check=False,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert out.count("[ok]") == 30 and "FAIL" not in out, out
    # The guardrails: owner isolation, user presence, approval through CIBA (approved and denied), amr.
    assert "[ok] 403 GET /users/bob/orders" in out and "[ok] 401 GET /users/alice/profile" in out, out
    assert "[ok] 200 POST /users/alice/payouts  (after alice approved" in out, out
    assert "[ok] 401 POST /users/alice/payouts  (after alice denied" in out, out
    assert "[ok] MCP demo-agent" in out and "[ok] MCP alice" in out, out
    assert "demo check passed" in out
    # The demo's children are gone.
    for port in (listen, up, idp, mcp):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still served after the demo"
