//! Times the engine's request path where the filter runs it: built for wasm32-wasip1 and run under
//! node's V8 (Envoy's engine) or wasmtime (Kong's), or natively. Prints one JSON line of medians,
//! microseconds per call, for the `make bench` config (one route with a template and a scope):
//!
//! - `cache_key`: the token-cache key (keyed SipHash-2-4 of the token); `cache_key_sha256`: SHA-256;
//! - `decide_cached`: `Engine::decide` on a cached ES256 token, no risk;
//! - `record_json`: the decision record of that request, built and serialized (one reused buffer);
//! - `decide_cached_risk`: the same decision with risk scoring on (shadow, in-memory shared data);
//! - `record_json_risk`: its record (scores, factors, features);
//! - `decide_first_seen_hs256`: a first-seen HS256 token (its signature costs little, so the rest
//!   of a first-seen token's path shows: parse, claims, cache insert);
//! - `decide_first_seen_host_es256`, `decide_first_seen_host_rs256`: a first-seen token on Envoy's
//!   path (the signature handed to the host's `verify_signature`), with a host that answers at
//!   once ([`StandIn`]): what Warden itself adds to a first-seen token there, the arithmetic
//!   left out.
//!
//! `cargo build --release --target wasm32-wasip1 -p warden --example engine_timing`, then
//! `node bench/wasi_run.js target/wasm32-wasip1/release/examples/engine_timing.wasm`.

#[path = "../benches/shared/request.rs"]
mod request;
#[path = "../benches/shared/stand_in.rs"]
mod stand_in;
use stand_in::StandIn;

use jwt_simple::prelude::*;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;
use warden::audit::AuditRecord;
use warden::credential::native::Signatures;
use warden::gateway::{HostKind, HostRules};
use warden::shared::MemoryStore;
use warden::{Engine, Env, Request, TokenCache};

const ISSUER: &str = "https://idp.bench.local";
const AUDIENCE: &str = "orders-api";

fn fail(e: impl std::fmt::Display) -> ! {
    eprintln!("{e}");
    std::process::exit(1)
}

#[derive(Serialize, Deserialize)]
struct Custom {
    scope: String,
    tenant: String,
}

fn claims(sub: &str) -> JWTClaims<Custom> {
    Claims::with_custom_claims(
        Custom {
            scope: "orders:read orders:write".into(),
            tenant: "acme".into(),
        },
        Duration::from_mins(30),
    )
    .with_issuer(ISSUER)
    .with_audience(AUDIENCE)
    .with_subject(sub)
}

fn engine(jwks: &Value, risk: bool) -> Engine {
    let mut config = json!({
        "providers": [{"name": "bench", "issuer": ISSUER, "audiences": [AUDIENCE], "jwks": jwks}],
        "routes": [{"name": "read-order", "methods": ["GET", "POST"],
                    "path": "/tenants/{tenant}/orders/{id}", "scopes": ["orders:read"]}],
        "audit": {"enabled": true}
    });
    if let (true, Some(o)) = (risk, config.as_object_mut()) {
        o.insert("risk".into(), json!({"mode": "shadow"}));
    }
    Engine::from_json(config.to_string().as_bytes()).unwrap_or_else(|e| fail(e))
}

/// Signs a token's claims.
type Sign<'a> = &'a dyn Fn(JWTClaims<Custom>) -> String;

/// Median µs of `Engine::decide` on a first-seen token (a fresh one per call, signed beforehand).
fn first_seen_us(engine: &Engine, sign: Sign, req: &Request, store: &MemoryStore) -> f64 {
    let tokens: Vec<Vec<(String, String)>> = (0..42 * 50)
        .map(|i| headers(&sign(claims(&format!("user-{i}")))))
        .collect();
    let clock = || 0;
    let mut cache = TokenCache::default();
    let mut next = tokens.iter();
    median_us(50, |_| {
        let hs = next.next().map_or(&[][..], |h| &h[..]);
        let r = Request {
            headers: hs,
            ..*req
        };
        let mut env = Env {
            cache: &mut cache,
            shared: store,
            clock_us: &clock,
        };
        let d = engine.decide(&r, &mut env);
        if d.status != 200 || d.cache_hit {
            fail("first-seen: not a fresh allowed token");
        }
    })
}

fn headers(token: &str) -> Vec<(String, String)> {
    request::headers("127.0.0.1:10000", token, &[])
}

/// Median µs per call of `f` over batches of `per` calls (the WASI clock is coarse on some hosts).
fn median_us(per: usize, mut f: impl FnMut(usize)) -> f64 {
    for i in 0..per {
        f(i);
    }
    let mut times: Vec<f64> = (0..41)
        .map(|b| {
            let t = Instant::now();
            for i in 0..per {
                f(b * per + i);
            }
            t.elapsed().as_secs_f64() * 1e6 / per as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let m = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
    (m * 100.0).round() / 100.0
}

fn main() {
    let es = ES256KeyPair::generate().with_key_id("es");
    let hs = HS256Key::generate().with_key_id("hs");
    let jwk = |text: String| -> Value { serde_json::from_str(&text).unwrap_or_else(|e| fail(e)) };
    let es_jwk = jwk(es.public_key().to_jwk());
    let b64 = |b: &[u8]| Base64UrlSafeNoPadding::encode_to_string(b).unwrap_or_else(|e| fail(e));
    let hs_jwks =
        json!({"keys": [{"kty": "oct", "kid": "hs", "alg": "HS256", "k": b64(&hs.to_bytes())}]});
    let now = Clock::now_since_epoch().as_secs();
    let store = MemoryStore::default();
    let clock = || 0;
    let mut out = serde_json::Map::new();

    let token = es.sign(claims("user-1")).unwrap_or_else(|e| fail(e));
    let hs_req = headers(&token);
    let req = Request {
        method: "GET",
        path: "/tenants/acme/orders/42",
        headers: &hs_req,
        request_id: "5f0c6a1e-7d3b-4c1a-9a7e-0b9d1c2e3f40",
        now_s: now,
        source: "203.0.113.7".parse().ok(),
        ..Request::default()
    };
    let mut sink = 0usize;
    for (name, cache) in [
        ("cache_key", TokenCache::default()),
        ("cache_key_sha256", TokenCache::with_hash_key(1, None)),
    ] {
        let key = |_| sink += usize::from(cache.key_of(&token)[0]);
        out.insert(name.into(), json!(median_us(200, key)));
    }
    for (name, risk) in [("decide_cached", false), ("decide_cached_risk", true)] {
        let engine = engine(&json!({"keys": [es_jwk.clone()]}), risk);
        let mut cache = TokenCache::default();
        let mut decide = |_| {
            let mut env = Env {
                cache: &mut cache,
                shared: &store,
                clock_us: &clock,
            };
            engine.decide(&req, &mut env)
        };
        if decide(0).status != 200 {
            fail(format!("{name}: not allowed"));
        }
        out.insert(
            name.into(),
            json!(median_us(200, |i| sink += usize::from(decide(i).status))),
        );
        // The record of that decision, serialized into one reused buffer as the filter does.
        let d = decide(0);
        let mut line = Vec::new();
        let record = |_| {
            let r = AuditRecord::new(&req, &d, now * 1000, 3, engine.recorded_claims());
            r.write_json(&mut line);
            sink += line.len();
        };
        let key = if risk {
            "record_json_risk"
        } else {
            "record_json"
        };
        out.insert(key.into(), json!(median_us(200, record)));
    }

    // First-seen HS256: a fresh token per call, signed beforehand.
    let hs_engine = engine(&hs_jwks, false);
    let sign_hs = |c| hs.authenticate(c).unwrap_or_else(|e| fail(e));
    let first_seen = first_seen_us(&hs_engine, &sign_hs, &req, &store);
    out.insert("decide_first_seen_hs256".into(), json!(first_seen));

    // First-seen ES256 and RS256 on Envoy's path, the host answering at once.
    let rs = RS256KeyPair::generate(2048)
        .unwrap_or_else(|e| fail(e))
        .with_key_id("rs");
    let rs_jwk = jwk(rs.public_key().to_jwk());
    let sign_es = |c| es.sign(c).unwrap_or_else(|e| fail(e));
    let sign_rs = |c| rs.sign(c).unwrap_or_else(|e| fail(e));
    for (name, key, sign) in [
        ("decide_first_seen_host_es256", &es_jwk, &sign_es as Sign),
        ("decide_first_seen_host_rs256", &rs_jwk, &sign_rs as Sign),
    ] {
        let (signatures, why) =
            Signatures::detect(HostRules::of(HostKind::Envoy), Arc::new(StandIn));
        if !signatures.on_host() {
            fail(why);
        }
        let engine = engine(&json!({"keys": [key]}), false).with_signatures(signatures);
        out.insert(
            name.into(),
            json!(first_seen_us(&engine, sign, &req, &store)),
        );
    }
    out.insert("checksum".into(), json!(sink));
    println!("{}", Value::Object(out));
}
