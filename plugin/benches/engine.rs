//! Criterion benchmarks of the engine, natively (`cargo bench -p warden --bench engine`).
//!
//! - `verify/first_seen/<alg>`: `Engine::verify_token` on a token the worker's cache has never seen
//!   (parse, key choice, signature, claim checks, cache insert), one per algorithm.
//! - `verify/cache_hit`: the same call on a cached token (keyed hash of the token, LRU lookup, claim
//!   checks).
//! - `verify/expired_replay`: the same token a day after its `exp`: refused from the cache.
//! - `decide/cached_scoped_route`: a full `Engine::decide` (route match, credential, scopes, headers)
//!   on a cached ES256 token and a route with a template path and a required scope.
//! - `decide/cached_scoped_route+audit_json`: the same plus the audit record the adapter logs.
//! - `decide/cold_es256`: the same decision on a first-seen token.
//!
//! Keys and tokens are made here with jwt-simple; nothing is read from disk.
// A bench that cannot set itself up should stop loudly: setup may unwrap and index.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "shared/request.rs"]
mod request;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use jwt_simple::prelude::*;
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};
use warden::audit::AuditRecord;
use warden::shared::MemoryStore;
use warden::{Body, Engine, Env, Request, TokenCache};

const ISSUER: &str = "https://idp.bench.local";
/// HMAC keys live in their own provider (the loader refuses mixing them with public keys).
const HMAC_ISSUER: &str = "https://hmac.bench.local";
const AUDIENCE: &str = "orders-api";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[derive(Serialize, Deserialize)]
struct Custom {
    scope: String,
    tenant: String,
    client_id: String,
}

fn claims(issuer: &str, subject: &str) -> JWTClaims<Custom> {
    Claims::with_custom_claims(
        Custom {
            scope: "orders:read orders:write".into(),
            tenant: "acme".into(),
            client_id: "bench-client".into(),
        },
        Duration::from_mins(30),
    )
    .with_issuer(issuer)
    .with_audience(AUDIENCE)
    .with_subject(subject)
}

/// One signing key per algorithm, with its public JWK.
struct Signer {
    alg: &'static str,
    jwk: Value,
    sign: Box<dyn Fn(&str) -> String>,
}

fn signers() -> Vec<Signer> {
    let rsa_jwk = |kid: &str, alg: &str, c: RSAPublicKeyComponents| json!({"kty": "RSA", "kid": kid, "alg": alg, "use": "sig", "n": b64(&c.n), "e": b64(&c.e)});
    let ec_jwk = |kid: &str, alg: &str, crv: &str, point: Vec<u8>| {
        // Uncompressed SEC1 point: 0x04 || x || y.
        let n = (point.len() - 1) / 2;
        json!({"kty": "EC", "kid": kid, "alg": alg, "use": "sig", "crv": crv,
               "x": b64(&point[1..=n]), "y": b64(&point[n + 1..])})
    };

    let rs256 = RS256KeyPair::generate(2048).unwrap().with_key_id("rs256");
    let ps256 = PS256KeyPair::generate(2048).unwrap().with_key_id("ps256");
    let es256 = ES256KeyPair::generate().with_key_id("es256");
    let es384 = ES384KeyPair::generate().with_key_id("es384");
    let eddsa = Ed25519KeyPair::generate().with_key_id("eddsa");
    let hs256 = HS256Key::generate().with_key_id("hs256");

    vec![
        Signer {
            alg: "RS256",
            jwk: rsa_jwk("rs256", "RS256", rs256.public_key().to_components()),
            sign: Box::new(move |sub| rs256.sign(claims(ISSUER, sub)).unwrap()),
        },
        Signer {
            alg: "PS256",
            jwk: rsa_jwk("ps256", "PS256", ps256.public_key().to_components()),
            sign: Box::new(move |sub| ps256.sign(claims(ISSUER, sub)).unwrap()),
        },
        Signer {
            alg: "ES256",
            jwk: ec_jwk(
                "es256",
                "ES256",
                "P-256",
                es256.public_key().public_key().to_bytes_uncompressed(),
            ),
            sign: Box::new(move |sub| es256.sign(claims(ISSUER, sub)).unwrap()),
        },
        Signer {
            alg: "ES384",
            jwk: ec_jwk(
                "es384",
                "ES384",
                "P-384",
                es384.public_key().public_key().to_bytes_uncompressed(),
            ),
            sign: Box::new(move |sub| es384.sign(claims(ISSUER, sub)).unwrap()),
        },
        Signer {
            alg: "EdDSA",
            jwk: json!({"kty": "OKP", "kid": "eddsa", "alg": "EdDSA", "use": "sig", "crv": "Ed25519",
                        "x": b64(&eddsa.public_key().to_bytes())}),
            sign: Box::new(move |sub| eddsa.sign(claims(ISSUER, sub)).unwrap()),
        },
        Signer {
            alg: "HS256",
            jwk: json!({"kty": "oct", "kid": "hs256", "alg": "HS256", "use": "sig",
                        "k": b64(&hs256.to_bytes())}),
            sign: Box::new(move |sub| hs256.authenticate(claims(HMAC_ISSUER, sub)).unwrap()),
        },
    ]
}

fn engine(signers: &[Signer]) -> Engine {
    let (hmac, public): (Vec<&Signer>, Vec<&Signer>) =
        signers.iter().partition(|s| s.alg == "HS256");
    let jwks =
        |s: Vec<&Signer>| json!({"keys": s.iter().map(|s| s.jwk.clone()).collect::<Vec<_>>()});
    let config = json!({
        "providers": [
            {"name": "bench", "issuer": ISSUER, "audiences": [AUDIENCE], "jwks": jwks(public)},
            {"name": "bench-hmac", "issuer": HMAC_ISSUER, "audiences": [AUDIENCE], "jwks": jwks(hmac)}
        ],
        "routes": [
            {"name": "health", "methods": ["GET"], "path": "/health", "anonymous": true},
            {"name": "read-order", "methods": ["GET"], "path": "/tenants/{tenant}/orders/{id}",
             "scopes": ["orders:read"]}
        ],
        "audit": {"enabled": true}
    });
    Engine::from_json(config.to_string().as_bytes()).unwrap()
}

/// The headers Envoy hands the filter for a typical API call.
fn headers(token: &str) -> Vec<(String, String)> {
    request::headers("api.example.com", token, &[("accept", "application/json")])
}

fn benches(c: &mut Criterion) {
    let signers = signers();
    let engine = engine(&signers);
    let now = now_s();

    let mut g = c.benchmark_group("verify/first_seen");
    for s in &signers {
        let token = (s.sign)("user-1");
        g.bench_function(s.alg, |b| {
            b.iter_batched_ref(
                || TokenCache::new(16),
                |cache| {
                    let verified = engine.verify_token(black_box(&token), now, cache);
                    assert!(verified.as_ref().is_ok_and(|v| !v.cache_hit));
                    verified
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();

    let es256 = signers.iter().find(|s| s.alg == "ES256").unwrap();
    let token = (es256.sign)("user-1");
    let mut cache = TokenCache::default();
    engine.verify_token(&token, now, &mut cache).unwrap();
    c.bench_function("verify/cache_hit", |b| {
        b.iter(|| {
            let verified = engine.verify_token(black_box(&token), now, &mut cache);
            assert!(verified.as_ref().is_ok_and(|v| v.cache_hit));
            verified
        })
    });

    // The same token sent again after it expired (a client that does not refresh, or a replay):
    // refused from the cache, its signature not checked again.
    let late = now + 86_400;
    c.bench_function("verify/expired_replay", |b| {
        b.iter(|| {
            let refused = engine.verify_token(black_box(&token), late, &mut cache);
            assert!(refused
                .as_ref()
                .is_err_and(|why| *why == warden::credential::TokenError::Expired));
            refused
        })
    });
    engine.verify_token(&token, now, &mut cache).unwrap();

    let hs = headers(&token);
    let req = Request {
        method: "GET",
        path: "/tenants/acme/orders/42",
        headers: &hs,
        request_id: "5f0c6a1e-7d3b-4c1a-9a7e-0b9d1c2e3f40",
        now_s: now,
        peer_cert_sha256: None,
        peer_cert_unread: false,
        source_unread: false,
        source: None,
        body: Default::default(),
    };
    let store = MemoryStore::default();
    let clock = || 0;
    decide_bench(
        c,
        "decide/cached_scoped_route",
        &engine,
        &req,
        &mut cache,
        &store,
    );

    // What the adapter adds per request on top of the decision: the audit record as a JSON line,
    // serialized into the one buffer the worker reuses.
    let mut line = Vec::new();
    c.bench_function("decide/cached_scoped_route+audit_json", |b| {
        b.iter(|| {
            let mut env = Env {
                cache: &mut cache,
                shared: &store,
                clock_us: &clock,
            };
            let d = engine.decide(black_box(&req), &mut env);
            AuditRecord::new(&req, &d, now * 1000, 3, engine.recorded_claims())
                .write_json(&mut line);
            line.len()
        })
    });

    c.bench_function("decide/cold_es256", |b| {
        b.iter_batched_ref(
            || TokenCache::new(16),
            |cold| {
                let mut env = Env {
                    cache: cold,
                    shared: &store,
                    clock_us: &clock,
                };
                let d = engine.decide(black_box(&req), &mut env);
                assert!(d.status == 200 && !d.cache_hit);
                d
            },
            BatchSize::SmallInput,
        )
    });
}

/// An MCP tool call with a 1 KB JSON-RPC body (cached token): the body parsed, the tool's rule and the
/// audience checked; against the same POST to a plain route, whose body is not read.
fn mcp_benches(c: &mut Criterion) {
    const RESOURCE: &str = "https://api.example.com/mcp";
    let key = ES256KeyPair::generate().with_key_id("mcp");
    let mut jwk: Value = serde_json::from_str(&key.public_key().to_jwk()).unwrap();
    jwk["kid"] = json!("mcp");
    let config = json!({
        "providers": [{"name": "bench", "issuer": ISSUER, "audiences": [AUDIENCE, RESOURCE],
                       "jwks": {"keys": [jwk]}}],
        "mcp": {"endpoints": [{"name": "bench-mcp", "path": "/mcp", "resource": RESOURCE,
            "authorization_servers": [ISSUER],
            "rules": [{"method": "tools/call", "tool": "read_orders", "scopes": ["orders:read"]}]}]}
    });
    let engine = Engine::from_json(config.to_string().as_bytes()).unwrap();
    let audiences = [AUDIENCE, RESOURCE]
        .iter()
        .map(|a| (*a).to_owned())
        .collect();
    let token = key
        .sign(claims(ISSUER, "agent-7").with_audiences(audiences))
        .unwrap();
    let mut msg = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                         "params": {"name": "read_orders", "arguments": {"note": ""}}});
    let pad = 1024 - msg.to_string().len();
    msg["params"]["arguments"]["note"] = json!("x".repeat(pad));
    let body = msg.to_string();
    assert_eq!(body.len(), 1024);
    let hs = headers(&token);
    let now = now_s();
    let store = MemoryStore::default();
    let mut cache = TokenCache::default();
    engine.verify_token(&token, now, &mut cache).unwrap();
    for (name, path) in [
        ("decide/post_1kb_plain_route", "/orders"),
        ("decide/mcp_tool_call_1kb", "/mcp"),
    ] {
        let req = Request {
            method: "POST",
            path,
            headers: &hs,
            request_id: "5f0c6a1e-7d3b-4c1a-9a7e-0b9d1c2e3f40",
            now_s: now,
            peer_cert_sha256: None,
            peer_cert_unread: false,
            source_unread: false,
            source: None,
            body: Body::Read(body.as_bytes()),
        };
        decide_bench(c, name, &engine, &req, &mut cache, &store);
    }
}

/// `name`: one cached-token decision of `req`, which must be allowed.
fn decide_bench(
    c: &mut Criterion,
    name: &str,
    engine: &Engine,
    req: &Request<'_>,
    cache: &mut TokenCache,
    store: &MemoryStore,
) {
    let clock = || 0;
    c.bench_function(name, |b| {
        b.iter(|| {
            let mut env = Env {
                cache: &mut *cache,
                shared: store,
                clock_us: &clock,
            };
            let d = engine.decide(black_box(req), &mut env);
            assert!(d.status == 200 && d.cache_hit);
            d
        })
    });
}

criterion_group! {
    name = mcp;
    config = Criterion::default();
    targets = mcp_benches
}

criterion_group! {
    name = engine_benches;
    // Signature verification is slow (RSA, ECDSA): fewer samples keep the run to a few minutes.
    config = Criterion::default().sample_size(30);
    targets = benches
}
criterion_main!(engine_benches, mcp);
