//! The full pipeline on a cached token, for instruction counts: `make bench`'s full-pipeline row
//! (an ES256 token, the route with a template and a scope, risk in shadow, the decision record) as
//! the engine runs it, request after request: `Engine::decide`, the response phase
//! (`Engine::observe_response`), and the record built and serialized into one reused buffer.
//! Instruction counts are repeatable on a busy machine, where times are not:
//!
//! ```text
//! CARGO_PROFILE_RELEASE_STRIP=false cargo build --release -p warden --example pipeline_profile
//! valgrind --tool=callgrind --toggle-collect='*hot_loop*' \
//!     target/release/examples/pipeline_profile 2000
//! ```
//!
//! counts the 2,000 requests after 100 warm-up ones. `NO_RECORD=1` leaves the record out (the
//! difference is the record's cost), `NO_RISK=1` the risk stage. Prints the last record.

// A driver that cannot set itself up should stop loudly: setup may unwrap.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
#[path = "../benches/shared/request.rs"]
mod request;
use jwt_simple::prelude::*;
use serde_json::{json, Value};
use warden::audit::AuditRecord;
use warden::shared::MemoryStore;
use warden::{Engine, Env, Request, TokenCache};

#[derive(Serialize, Deserialize)]
struct Custom {
    scope: String,
    tenant: String,
}

#[inline(never)]
fn hot_loop(
    engine: &Engine,
    hs: &[(String, String)],
    now: u64,
    n: u64,
    cache: &mut TokenCache,
    store: &MemoryStore,
    line: &mut Vec<u8>,
) -> usize {
    let clock = || 0;
    let mut sink = 0;
    for i in 0..n {
        let now_s = now + i / 16;
        let req = Request {
            method: "GET",
            path: "/tenants/acme/orders/42",
            headers: hs,
            request_id: "5f0c6a1e-7d3b-4c1a-9a7e-0b9d1c2e3f40",
            now_s,
            source: "203.0.113.7".parse().ok(),
            ..Request::default()
        };
        let mut env = Env {
            cache,
            shared: store,
            clock_us: &clock,
        };
        let d = engine.decide(&req, &mut env);
        engine.observe_response(&d, 200, 900, now_s, store);
        if std::env::var_os("NO_RECORD").is_none() {
            let r = AuditRecord::new(&req, &d, now_s * 1000, 3, engine.recorded_claims());
            r.write_json(line);
            sink += line.len();
        }
        sink += usize::from(d.status);
    }
    sink
}

fn main() {
    let es = ES256KeyPair::generate().with_key_id("es");
    let jwk: Value = serde_json::from_str(&es.public_key().to_jwk()).unwrap();
    let risk = std::env::var_os("NO_RISK").is_none();
    let mut config = json!({
        "providers": [{"name": "bench", "issuer": "https://idp.bench.local", "audiences": ["orders-api"], "jwks": {"keys": [jwk]}}],
        "routes": [{"name": "read-order", "methods": ["GET", "POST"], "path": "/tenants/{tenant}/orders/{id}", "scopes": ["orders:read"]}],
        "audit": {"enabled": true}
    });
    if risk {
        config["risk"] = json!({"mode": "shadow"});
    }
    let engine = Engine::from_json(config.to_string().as_bytes()).unwrap();
    let claims = Claims::with_custom_claims(
        Custom {
            scope: "orders:read orders:write".into(),
            tenant: "acme".into(),
        },
        Duration::from_mins(30),
    )
    .with_issuer("https://idp.bench.local")
    .with_audience("orders-api")
    .with_subject("user-1");
    let token = es.sign(claims).unwrap();
    let hs = request::headers("127.0.0.1:10000", &token, &[]);
    let now = Clock::now_since_epoch().as_secs();
    let store = MemoryStore::default();
    let mut cache = TokenCache::default();
    let mut line = Vec::new();
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let warm = hot_loop(&engine, &hs, now, 100, &mut cache, &store, &mut line);
    let s = hot_loop(&engine, &hs, now + 100, n, &mut cache, &store, &mut line);
    println!("{warm} {s} {}", String::from_utf8_lossy(&line));
}
