//! The fuzz targets' bodies, one function per target: `fuzz_targets/<name>.rs` hands libFuzzer's
//! input to `<name>`, and `plugin/tests/fuzz_regressions.rs` replays the checked-in corpus and every
//! crash kept in `fuzz/regressions/<name>/` through the same function on the stable toolchain.
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

#[path = "common/mod.rs"]
mod common;

use warden::authz::routes::Template;
use warden::authz::target::{normalize, target};
use warden::config::dpop::DpopConfig;
use warden::config::mcp::Batches;
use warden::config::routing::MethodOverride;
use warden::config::Algorithm;
use warden::credential::dpop::{DpopPolicy, ProofTarget};
use warden::credential::introspection;
use warden::credential::jwks;
use warden::mcp::jsonrpc;
use warden::risk::cidr::Cidr;
use warden::risk::state::{IdentityState, SourceState};
use warden::shared::{CasRule, MemoryStore};
use warden::{Env, TokenCache};

/// A CIDR (`risk.deny_cidrs`), and membership of the addresses the input also reads as.
pub fn cidr(data: &[u8]) {
    // The same bytes as a `risk.deny_cidrs_feed` body: parsing never panics, and every network it
    // keeps survives the shared-data encoding.
    if let Ok(nets) = warden::risk::feed::parse(data, warden::risk::feed::MAX_ENTRIES) {
        for n in nets {
            let (v4, len, net) = n.parts();
            assert_eq!(Cidr::from_parts(v4, len, net), Some(n));
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = Cidr::parse(text) {
        for addr in ["203.0.113.7", "::1", "2001:db8::1", "0.0.0.0"] {
            if let Ok(a) = addr.parse() {
                let _ = c.contains(&a);
            }
        }
    }
    if let Ok(a) = text.parse::<std::net::IpAddr>() {
        if let Ok(c) = Cidr::parse("0.0.0.0/0") {
            let _ = c.contains(&a);
        }
    }
}

/// The config document: parsing and compiling never panic; an error names a field.
pub fn config(data: &[u8]) {
    let _ = warden::Engine::from_json(data);
}

/// A DPoP proof (RFC 9449) against a request: header, JWK thumbprint, claims, signature.
pub fn dpop(data: &[u8]) {
    let Ok(proof) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = DpopPolicy::compile(&DpopConfig::default()) else {
        return;
    };
    let target = ProofTarget {
        method: "GET",
        uri: "https://api.example.com/orders/7",
        access_token: "a.b.c",
        now_s: 1_767_225_600,
    };
    let _ = policy.verify(proof, &target);
}

/// An introspection answer (RFC 7662) as the IdP sends it.
pub fn introspection(data: &[u8]) {
    if let Some(provider) = common::engine().providers().get(2) {
        let _ = introspection::outcome(provider, Ok(200), data, common::NOW);
    }
}

/// A fetched JWKS document (every JWK in it) and an OIDC discovery document.
pub fn jwks(data: &[u8]) {
    let _ = jwks::parse_jwks(data, &Algorithm::ALL);
    let _ = jwks::parse_discovery(data, "https://idp.example.com");
}

/// A compact JWS (header, payload, signature) as a bearer token: verification never panics.
pub fn jws(data: &[u8]) {
    if let Ok(token) = std::str::from_utf8(data) {
        let mut cache = warden::TokenCache::new(4);
        let _ = common::engine().verify_token(token, common::NOW, &mut cache);
    }
}

/// The revocation feed's body, stored in shared data, then a revocation check against it.
pub fn revocation_feed(data: &[u8]) {
    let store = MemoryStore::new(CasRule::Kong);
    let _ = common::engine().revocation().store_feed(&store, data);
}

/// A route template (first line) and a request path (the rest): compiling, normalising, matching,
/// and a whole request through the engine's routing and tenancy.
pub fn route_path(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (template, path) = text.split_once('\n').unwrap_or((text, "/"));
    if let Ok(t) = Template::compile(template) {
        if let Ok(p) = normalize(path) {
            let _ = t.captures(&p, true, true);
            let _ = t.captures(&p, false, false);
        }
    }
    let headers = vec![("x-http-method".to_owned(), template.to_owned())];
    let _ = target("GET", path, &headers, MethodOverride::Apply);
    let headers = vec![
        ("x-api-key".to_owned(), "k".to_owned()),
        ("x-tenant-id".to_owned(), template.to_owned()),
    ];
    let req = warden::Request {
        method: "GET",
        path,
        headers: &headers,
        request_id: "r",
        now_s: common::NOW,
        ..Default::default()
    };
    let store = warden::shared::MemoryStore::default();
    let mut cache = warden::TokenCache::new(4);
    let mut env = warden::Env {
        cache: &mut cache,
        shared: &store,
        clock_us: &|| 0,
    };
    let _ = common::engine().decide(&req, &mut env);
}

/// Behavioural records as read back from shared data (another version's, or corrupt): decoding
/// never panics, and what decodes encodes back to itself.
pub fn state_record(data: &[u8]) {
    let hash = data
        .get(1..9)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_le_bytes);
    if let Some(s) = IdentityState::decode(Some(data), hash) {
        let again = s.encode();
        assert!(IdentityState::decode(Some(&again), hash).is_some());
    }
    if let Some(s) = SourceState::decode(Some(data), hash) {
        let again = s.encode();
        assert!(SourceState::decode(Some(&again), hash).is_some());
    }
}

/// A JSON-RPC request body posted to an MCP endpoint, read both batch ways, checked against the
/// `Mcp-Method` / `Mcp-Name` headers it implies, decided by the engine; and the same bytes as a
/// `tools/list` answer (JSON and event stream) cut for the caller.
pub fn mcp_body(data: &[u8]) {
    let _ = jsonrpc::parse(data, Batches::Refuse);
    let mut headers = vec![("mcp-protocol-version".to_owned(), "2026-07-28".to_owned())];
    if let Ok(calls) = jsonrpc::parse(data, Batches::Each) {
        if let Some(first) = calls.first() {
            if let Some(m) = &first.method {
                headers.push(("mcp-method".to_owned(), m.clone()));
            }
            if let Some(n) = first.name() {
                headers.push(("mcp-name".to_owned(), n.to_owned()));
            }
        }
        let _ = jsonrpc::check_headers(&headers, &calls);
    }
    let req = warden::Request {
        method: "POST",
        path: "/mcp",
        headers: &headers,
        request_id: "r",
        now_s: common::NOW,
        body: warden::Body::Read(data),
        ..Default::default()
    };
    let store = MemoryStore::default();
    let mut cache = TokenCache::new(4);
    let mut env = Env {
        cache: &mut cache,
        shared: &store,
        clock_us: &|| 0,
    };
    let engine = common::mcp_engine();
    let decision = engine.decide(&req, &mut env);
    for content_type in ["application/json", "text/event-stream; charset=utf-8"] {
        let _ = engine.filter_tools_list(&decision, content_type, Some(data));
    }
}
