//! What the full pipeline hands out, pinned byte for byte: `make bench`'s full-pipeline request (a
//! templated route with a scope, risk in shadow, the decision record) and a few neighbours (another
//! object, a spoofed `x-auth-*` header, a missing scope, a delegated call, an API key), each sent
//! request after request by one identity over a simulated hour, so that the features carry a history.
//! For each request: the headers removed and set upstream, then the decision record's line.
//!
//! The expected lines (`tests/golden/pipeline.txt`) were written by the engine before the allocation
//! and serializer work of issue 18 (perf7), so this test shows that work changed no record line, no
//! feature, no score and no forwarded header. Performance work must leave them as they are; a change
//! that means to change the output rewrites the file (`WARDEN_GOLDEN_WRITE=1 cargo test -p warden
//! --test pipeline_golden`) and says why in its commit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use jwt_simple::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use warden::audit::{AuditRecord, Outcome};
use warden::shared::MemoryStore;
use warden::{Engine, Env, Request, TokenCache};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const ISS: &str = "https://idp.bench.local";
/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600;
const API_KEY: &str = "k-ci-bot";

fn b64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn engine() -> Engine {
    let config = json!({
        "providers": [{"name": "bench", "issuer": ISS, "audiences": ["orders-api"],
                       "jwks": {"keys": [{"kty": "oct", "kid": "h1", "alg": "HS256", "k": b64(SECRET)}]}}],
        "api_keys": {"keys": [{"id": "ci-bot", "sha256": hex::encode(Sha256::digest(API_KEY)),
                               "subject": "svc:ci", "tenant": "acme", "scopes": ["orders:read"]}]},
        "routes": [
            {"name": "read-order", "methods": ["GET", "POST"], "path": "/tenants/{tenant}/orders/{id}",
             "scopes": ["orders:read"]},
            {"name": "admin", "prefix": "/admin", "scopes": ["admin"], "sensitivity": "high"}
        ],
        "delegation": {"actors": [{"sub": "agent:planner", "subjects": ["user-*"],
                                   "scopes": ["orders:read"]}]},
        "tenancy": {"path_variable": "tenant"},
        "risk": {"mode": "shadow", "geo_header": "x-geo-country", "geo_header_from_edge": true},
        "audit": {"enabled": true}
    });
    Engine::from_json(config.to_string().as_bytes()).unwrap()
}

/// A token for `sub` issued at `T0`, valid for a day, with `extra` claims.
fn token(sub: &str, extra: Value) -> String {
    let custom: serde_json::Map<String, Value> = extra.as_object().cloned().unwrap_or_default();
    let mut claims = Claims::with_custom_claims(custom, Duration::from_secs(86_400))
        .with_issuer(ISS)
        .with_audience("orders-api")
        .with_subject(sub);
    claims.issued_at = Some(UnixTimeStamp::from_secs(T0));
    claims.expires_at = Some(UnixTimeStamp::from_secs(T0 + 86_400));
    claims.invalid_before = None;
    HS256Key::from_bytes(SECRET)
        .with_key_id("h1")
        .authenticate(claims)
        .unwrap()
}

/// Every request's upstream edits and record line, in order.
fn run() -> String {
    let engine = engine();
    let store = MemoryStore::default();
    let mut cache = TokenCache::default();
    let user = token(
        "user-1",
        json!({"scope": "orders:read orders:write", "tenant": "acme", "client_id": "web"}),
    );
    let delegated = token(
        "user-2",
        json!({"scope": "orders:read orders:write", "tenant": "acme",
               "act": {"sub": "agent:planner", "client_id": "planner"}}),
    );
    let bearer = |t: &str| ("authorization", format!("Bearer {t}"));
    let mut out = String::new();
    for i in 0..40u64 {
        let now_s = T0 + 60 + i * 90;
        let (path, credential, extra): (String, (&str, String), Vec<(&str, &str)>) = match i % 5 {
            0 => (format!("/tenants/acme/orders/{i}"), bearer(&user), vec![]),
            1 => (
                "/tenants/acme/orders/42".into(),
                bearer(&user),
                vec![("x-auth-subject", "admin"), ("X_Auth_Tenant", "globex")],
            ),
            2 => ("/admin/users".into(), bearer(&user), vec![]),
            3 => ("/tenants/acme/orders/7".into(), bearer(&delegated), vec![]),
            _ => (
                "/tenants/acme/orders/9?page=2".into(),
                ("x-api-key", API_KEY.to_owned()),
                vec![],
            ),
        };
        let country = if i == 30 { "BR" } else { "NO" };
        let mut headers: Vec<(String, String)> = [
            (":authority", "127.0.0.1:10000"),
            (":path", path.as_str()),
            (":method", "GET"),
            ("user-agent", "wrk \"bench\"/4.2"),
            ("x-request-id", "5f0c6a1e-7d3b-4c1a-9a7e-0b9d1c2e3f40"),
            ("x-geo-country", country),
        ]
        .iter()
        .chain(&extra)
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
        headers.push((credential.0.to_owned(), credential.1));
        let req = Request {
            method: "GET",
            path: &path,
            headers: &headers,
            request_id: "5f0c6a1e-7d3b-4c1a-9a7e-0b9d1c2e3f40",
            now_s,
            source: format!("203.0.113.{}", 7 + i % 3).parse().ok(),
            ..Request::default()
        };
        let mut env = Env {
            cache: &mut cache,
            shared: &store,
            clock_us: &|| 0,
        };
        let d = engine.decide(&req, &mut env);
        engine.observe_response(&d, 200, 900 + i * 10, now_s, &store);
        out.push_str(&format!(
            "remove {:?} set {:?}\n",
            d.remove_headers, d.upstream_headers
        ));
        let record = AuditRecord::new(&req, &d, now_s * 1000, 3, engine.recorded_claims())
            .with_outcome(Outcome {
                upstream_status: d.reply.is_none().then_some(200),
                response_bytes: Some(900 + i * 10),
                duration_ms: Some(2),
            });
        let mut line = Vec::new();
        record.write_json(&mut line);
        out.push_str(std::str::from_utf8(&line).unwrap());
        out.push('\n');
    }
    out
}

#[test]
fn the_pipeline_output_is_unchanged() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/pipeline.txt");
    let got = run();
    if std::env::var_os("WARDEN_GOLDEN_WRITE").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap();
    for (n, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "line {} of {}", n + 1, path.display());
    }
    assert_eq!(got.lines().count(), want.lines().count());
    // The run is what it should exercise: scored requests with factors, refusals, a delegation.
    assert!(want.contains("\"risk_score\":") && want.contains("\"factors\":[{"));
    assert!(want.contains("\"reason\":\"insufficient_scope\""));
    assert!(want.contains("x-auth-actor") && want.contains("\"credential\":\"api_key\""));
    assert!(want.contains("remove [\"x-auth-subject\", \"x_auth_tenant\"]"));
}
