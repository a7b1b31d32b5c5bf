#!/usr/bin/env python3
"""Writes fuzz/corpus/<target>/ seeds from the repo's own inputs: the Wycheproof JOSE vectors
(plugin/tests/vectors/wycheproof), the shipped configs, and small hand-made documents. Idempotent
(file names are content hashes); libFuzzer adds what it finds to the same directories.

    python3 fuzz/seed_corpus.py
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
VECTORS = ROOT / "plugin" / "tests" / "vectors" / "wycheproof"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def put(target: str, data: str | bytes) -> None:
    raw = data.encode() if isinstance(data, str) else data
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(raw).hexdigest()).write_bytes(raw)


def jws_vectors() -> list[str]:
    doc = json.loads((VECTORS / "json_web_signature_test.json").read_text())
    return [t["jws"] for g in doc["testGroups"] for t in g["tests"] if isinstance(t.get("jws"), str)]


def jwk_vectors() -> list[dict]:
    out = []
    for name in ["json_web_key_test.json", "json_web_signature_test.json"]:
        doc = json.loads((VECTORS / name).read_text())
        for g in doc["testGroups"]:
            for k in ("public", "private", "key"):
                if isinstance(g.get(k), dict):
                    out.append(g[k])
            for t in g.get("tests", []):
                for k in ("public", "private", "key", "jwk"):
                    if isinstance(t.get(k), dict):
                        out.append(t[k])
    return out


def main() -> None:
    configs = [*ROOT.glob("examples/**/*.json"), *ROOT.glob("tests/fixtures/kong/*/*.json"), ROOT / "model/config.json"]
    for p in configs:
        if "node_modules" not in p.parts:
            put("config", p.read_bytes())
    for token in jws_vectors():
        put("jws", token)
    jwks = jwk_vectors()
    put("jwks", json.dumps({"keys": jwks}))
    for k in jwks[:40]:
        put("jwks", json.dumps({"keys": [k]}))
    put("jwks", json.dumps({"issuer": "https://idp.example.com", "jwks_uri": "https://idp.example.com/jwks"}))
    # DPoP proofs: the shape of RFC 9449's example, with its parts varied.
    jwk = {"kty": "EC", "crv": "P-256", "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
           "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}
    for hdr in [{"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}, {"typ": "dpop+jwt", "alg": "EdDSA",
                "jwk": {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}]:
        claims = {"jti": "-BwC3ESc6acc2lTc", "htm": "GET", "htu": "https://api.example.com/orders/7",
                  "iat": 1767225600, "ath": b64(hashlib.sha256(b"a.b.c").digest())}
        put("dpop", f"{b64(json.dumps(hdr).encode())}.{b64(json.dumps(claims).encode())}.{b64(b'x' * 64)}")
    for answer in [
        {"active": True, "sub": "agent-7", "aud": "orders-api", "iss": "https://opaque.example.com", "exp": 1767229200,
         "scope": "orders:read", "client_id": "c", "tenant": "acme"},
        {"active": False},
        {"active": True, "aud": ["orders-api", "x"], "iss": "https://opaque.example.com", "exp": 1767229200, "client_id": "c"},
    ]:
        put("introspection", json.dumps(answer))
    for feed in [{"sub": ["mallory"], "client_id": ["bad-app"], "jti": ["t1", "t2"]}, {}]:
        put("revocation_feed", json.dumps(feed))
    for line in [
        {"ts_ms": 1767225600000, "method": "GET", "path": "/tenants/acme/orders/7", "source_ip": "203.0.113.7",
         "headers": {"x-api-key": "k", "user-agent": "app/1", "x-geo-country": "NO"}, "status": 200, "response_bytes": 512},
        {"ts_ms": 1767225600000, "method": "DELETE", "path": "/admin/../tenants/globex/orders/1?_method=PUT",
         "source_ip": "2001:db8::1", "headers": {"authorization": "Bearer a.b.c", "x_auth_subject": "root"}},
        {"ts_ms": 1767225600000, "method": "GET", "path": "/health", "headers": {}},
    ]:
        put("trace_line", json.dumps(line))
    for text in ["/tenants/{tenant}/orders/{id}\n/tenants/acme/orders/7", "/t/{tenant}\n//t/./acme/../globex/x?y",
                 "/a/{x}/{x}\n/%61dmin%2Fx", "/admin\n/ADMIN/%7e%zz/..", "/{id}\n/%c3%a9/"]:
        put("route_path", text)
    for text in ["203.0.113.0/24", "2001:db8::/32", "10.0.0.1", "::ffff:10.0.0.1/128", "0.0.0.0/0", "1.2.3.4/33"]:
        put("cidr", text)
    tools = {"jsonrpc": "2.0", "id": 2, "result": {"tools": [
        {"name": "read_orders", "inputSchema": {"type": "object"}}, {"name": "refund_order"}, {"name": 7}]}}
    for body in [
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "read_orders", "arguments": {"id": 7}}},
        {"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": {"name": "refund_order"}},
        {"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": "file:///public/a.txt"}},
        {"jsonrpc": "2.0", "id": 4, "method": "resources/subscribe", "params": {}},
        {"jsonrpc": "2.0", "id": 5, "method": "prompts/get", "params": {"name": "x"}},
        {"jsonrpc": "2.0", "id": 6, "method": "tasks/get", "params": {"taskId": "t-1"}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 9, "result": {}},
        [{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                                               "params": {"name": "delete_customer"}}],
        [],
        tools,
    ]:
        put("mcp_body", json.dumps(body))
    put("mcp_body", "event: message\ndata: " + json.dumps(tools) + "\n\n")
    put("mcp_body", '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "\\ud800"}}')
    put("state_record", bytes(range(256)))
    put("state_record", b"\x01" + b"\x00" * 254)
    put("state_record", b"\x01" + b"\x00" * 40)
    # Records of the current layout (version 6) for hash 42, as `fresh(42, 0)` encodes them
    # (plugin/tests/fuzz_regressions.rs checks they are): identity (443 bytes: version, hash, first
    # and last seen, count, bucket start, then the bucket length 300 s) and source (41 bytes).
    hash42 = bytes([6]) + (42).to_bytes(8, "little")
    put("state_record", hash42 + bytes(8 + 8 + 4 + 8) + (300).to_bytes(4, "little") + bytes(443 - 41))
    put("state_record", hash42 + bytes(41 - 9))
    print(f"corpus: {sum(1 for _ in CORPUS.rglob('*') if _.is_file())} files in {CORPUS}")


if __name__ == "__main__":
    main()
