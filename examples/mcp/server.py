#!/usr/bin/env python3
"""The demo MCP server behind Warden (`make run`, tests/test_mcp_clients.py): the Python `mcp` SDK 2.x
(`MCPServer`) over streamable HTTP at /mcp, with three tools of rising sensitivity:

    read_orders      (Warden rule: scope orders:read)
    refund_order     (Warden rule: scope orders:refund and a step-up: a fresh MFA login)
    delete_customer  (Warden rule: scope admin)

The server itself does no OAuth: Warden in front of it is the resource server. It trusts the identity
Warden hands it (`x-auth-subject`, `x-auth-scopes`, ...) and shows it in every tool result. So that a test
can prove what reached it, each HTTP request's headers are appended as one JSON line to the file named
by `--header-log` (or the WARDEN_MCP_HEADER_LOG environment variable): with Warden in front, no line may
hold `authorization` or `dpop` (no token passthrough).

    python3 examples/mcp/server.py --port 8081 [--header-log FILE] [--json-response]
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from pathlib import Path
from typing import Any

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

ORDERS = {
    "acme": [
        {"id": "42", "customer": "acme", "total_cents": 12900, "status": "paid"},
        {"id": "43", "customer": "acme", "total_cents": 4500, "status": "shipped"},
    ],
    "globex": [{"id": "77", "customer": "globex", "total_cents": 99000, "status": "paid"}],
}

mcp = MCPServer(
    name="orders-mcp",
    instructions="Orders of the Warden demo shop. Warden (the gateway in front) decides who may call which tool.",
)


def caller(ctx: Context) -> dict[str, Any]:
    """The identity Warden vouched for, as this server received it."""
    h = ctx.headers or {}
    return {
        "subject": h.get("x-auth-subject"),
        "scopes": h.get("x-auth-scopes"),
        "tenant": h.get("x-auth-tenant"),
        "risk_score": h.get("x-auth-risk-score"),
    }


@mcp.tool(description="List a customer's orders.")
def read_orders(ctx: Context, customer: str = "acme") -> dict[str, Any]:
    return {"orders": ORDERS.get(customer, []), "caller": caller(ctx)}


@mcp.tool(description="Refund an order (critical: Warden asks for a fresh MFA login).")
def refund_order(ctx: Context, order_id: str, amount_cents: int) -> dict[str, Any]:
    return {"refunded": {"order_id": order_id, "amount_cents": amount_cents}, "caller": caller(ctx)}


@mcp.tool(description="Delete a customer and all its data (admin only).")
def delete_customer(ctx: Context, customer: str) -> dict[str, Any]:
    return {"deleted": customer, "caller": caller(ctx)}


@mcp.custom_route("/healthz", methods=["GET"])
async def healthz(_: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


class HeaderLog:
    """ASGI middleware: one JSON line per HTTP request, `{"method", "path", "headers"}`, to `path`."""

    def __init__(self, app: ASGIApp, path: Path):
        self.app = app
        self.path = path
        self.lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers: dict[str, str] = {}
            for name, value in scope["headers"]:
                key = name.decode("latin-1").lower()
                val = value.decode("latin-1")
                headers[key] = f"{headers[key]}, {val}" if key in headers else val
            line = json.dumps({"method": scope["method"], "path": scope["path"], "headers": headers})
            with self.lock, self.path.open("a") as f:
                f.write(line + "\n")
        await self.app(scope, receive, send)


def app(header_log: str | None = None, json_response: bool = False) -> ASGIApp:
    inner = mcp.streamable_http_app(streamable_http_path="/mcp", json_response=json_response)
    return HeaderLog(inner, Path(header_log)) if header_log else inner


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="The demo MCP server (streamable HTTP at /mcp).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--header-log", default=os.environ.get("WARDEN_MCP_HEADER_LOG"),
                    help="append each request's headers as a JSON line here")
    ap.add_argument("--json-response", action="store_true",
                    help="answer POSTs with application/json instead of text/event-stream")
    a = ap.parse_args(argv)
    uvicorn.run(app(a.header_log, a.json_response), host=a.host, port=a.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
