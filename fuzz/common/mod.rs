//! Engines the targets share: compiled once per process from fixed configs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;
use warden::Engine;

/// 2026-01-01T00:00:00Z, the clock of every target.
pub const NOW: u64 = 1_767_225_600;

/// A config with one provider per kind of key (EC, RSA-free OKP, HMAC), an introspecting provider,
/// API keys, DPoP, tenancy, rate limits, a revocation feed and risk: every parser behind it reachable.
pub const CONFIG: &str = r#"{
  "providers": [
    {"name": "corp", "issuer": "https://idp.example.com", "audiences": ["orders-api"],
     "jwks": {"keys": [
       {"kty": "EC", "crv": "P-256", "kid": "es", "alg": "ES256",
        "x": "HIeBYdNuGkoeoWJBP4z_Ck0xBlVMuLUcuM2p8mPHlMc", "y": "--0xBSEJP4JPv_TqNktRm-glp-2o-T1a9ox7ZdGmg98"},
       {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "alg": "EdDSA", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}},
    {"name": "hmac", "issuer": "https://hmac.example.com", "audiences": ["orders-api"],
     "jwks": {"keys": [{"kty": "oct", "kid": "hs", "alg": "HS256", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYnl0ZXM"}]}},
    {"name": "opaque", "issuer": "https://opaque.example.com", "audiences": ["orders-api"],
     "introspection": {"endpoint": {"url": "https://opaque.example.com/introspect", "envoy_cluster": "idp"},
                       "client_id": "warden", "client_secret": "s3cret"}}],
  "api_keys": {"keys": [{"id": "ci", "sha256": "5f3c1e2b9a0d4c6e8f7a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a",
                         "subject": "ci-bot", "tenant": "acme", "scopes": ["orders:read"]}]},
  "routes": [
    {"name": "health", "path": "/health", "anonymous": true},
    {"name": "read", "methods": ["GET"], "path": "/tenants/{tenant}/orders/{id}", "scopes": ["orders:read"]},
    {"name": "admin", "prefix": "/admin", "scopes": ["admin"], "sensitivity": "critical"}],
  "tenancy": {"header": "x-tenant-id"},
  "delegation": {"actors": [{"sub": "agent-*", "subjects": ["*"], "scopes": ["orders:read"]}]},
  "rate_limits": {"slots": 64, "policies": [{"name": "s", "key": "subject", "limit": 100, "window_s": 60}]},
  "revocation": {"feed": {"service": {"url": "https://idp.example.com/revoked", "envoy_cluster": "idp"}}},
  "risk": {"geo_header_from_edge": true, "deny_cidrs": ["203.0.113.0/24", "2001:db8::/32"]}
}"#;

/// The engine of [`CONFIG`].
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::from_json(CONFIG.as_bytes()).expect("the fuzz config compiles"))
}

/// An MCP endpoint with rules for every kind of target (tool, resource URI, prompt), batches taken
/// one by one, and a small body limit: everything behind the JSON-RPC body reachable.
pub const MCP_CONFIG: &str = r#"{
  "providers": [
    {"name": "corp", "issuer": "https://idp.example.com", "audiences": ["https://api.example.com/mcp"],
     "jwks": {"keys": [
       {"kty": "EC", "crv": "P-256", "kid": "es", "alg": "ES256",
        "x": "HIeBYdNuGkoeoWJBP4z_Ck0xBlVMuLUcuM2p8mPHlMc", "y": "--0xBSEJP4JPv_TqNktRm-glp-2o-T1a9ox7ZdGmg98"}]}}],
  "mcp": {"endpoints": [
    {"name": "m", "path": "/mcp", "resource": "https://api.example.com/mcp",
     "authorization_servers": ["https://idp.example.com"], "max_body_bytes": 4096,
     "batches": "each", "default": "deny", "scopes": ["mcp"],
     "rules": [
       {"method": "tools/call", "tool": "read_*", "scopes": ["orders:read"]},
       {"method": "tools/call", "tool": "refund_order", "scopes": ["orders:refund"], "step_up": true},
       {"method": "resources/read", "uri": "file:///public/*"},
       {"method": "prompts/get", "prompt": "*", "deny": true}]}]}
}"#;

/// The engine of [`MCP_CONFIG`].
pub fn mcp_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::from_json(MCP_CONFIG.as_bytes()).expect("the MCP fuzz config compiles")
    })
}
