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
//! difference is the record's cost), `NO_RISK=1` the risk stage. Prints the last record, and on
//! stderr the mean time of a counted request (the engine, the response phase, the record).
//!
//! Built for wasm32-wasip1 and run under node's V8, the times are V8's:
//!
//! ```text
//! cargo build --release --target wasm32-wasip1 -p warden --example pipeline_profile
//! COLD=1 node --no-liftoff bench/wasi_run.js \
//!     target/wasm32-wasip1/release/examples/pipeline_profile.wasm 20000 > /dev/null
//! ```
//!
//! (at most ~25,000 requests: the token expires after 30 minutes of the loop's clock). `COLD=1`
//! evicts the caches between two requests ([`evict_caches`]), as a gateway's worker does: there
//! the engine's times come close to what the stage-timing build measures inside Envoy
//! (BENCHMARKS.md, issue 18's hand sections).

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

/// What the loop does besides the engine's work (read once, not per request).
#[derive(Clone, Copy)]
struct Mode {
    record: bool,
    cold: bool,
}

/// `n` requests; the sum of their outputs (so nothing is optimized away) and the time they took.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn hot_loop(
    engine: &Engine,
    hs: &[(String, String)],
    now: u64,
    n: u64,
    cache: &mut TokenCache,
    store: &MemoryStore,
    line: &mut Vec<u8>,
    mode: Mode,
) -> (usize, std::time::Duration) {
    let clock = || 0;
    let mut sink = 0;
    let mut busy = std::time::Duration::ZERO;
    for i in 0..n {
        let t0 = std::time::Instant::now();
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
        if mode.record {
            let r = AuditRecord::new(&req, &d, now_s * 1000, 3, engine.recorded_claims());
            r.write_json(line);
            sink += line.len();
        }
        sink += usize::from(d.status);
        busy += t0.elapsed();
        if mode.cold {
            sink += evict_caches();
        }
    }
    (sink, busy)
}

/// What a gateway does between two requests, roughly, for `COLD=1`: 4 MB of memory touched and a
/// small JSON document parsed, so that the next request finds the engine's code and data out of
/// the caches, as Envoy's worker does (its codec, the kernel's sockets run in between). Not timed.
#[inline(never)]
fn evict_caches() -> usize {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![1u8; 4 << 20]);
    }
    let touched = BUF.with(|b| {
        let mut b = b.borrow_mut();
        let mut acc = 0usize;
        for i in (0..b.len()).step_by(64) {
            b[i] = b[i].wrapping_add(1);
            acc += usize::from(b[i]);
        }
        acc
    });
    let doc: Value = serde_json::from_str(
        r#"{"a":[1,2,3,{"b":"cccccccccccccccccccc","d":[true,false,null]}],"e":{"f":1.5e3}}"#,
    )
    .unwrap();
    touched + doc.to_string().len()
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
    let mode = Mode {
        record: std::env::var_os("NO_RECORD").is_none(),
        cold: std::env::var_os("COLD").is_some(),
    };
    let (warm, _) = hot_loop(&engine, &hs, now, 100, &mut cache, &store, &mut line, mode);
    let (s, busy) = hot_loop(
        &engine,
        &hs,
        now + 100,
        n,
        &mut cache,
        &store,
        &mut line,
        mode,
    );
    eprintln!(
        "engine µs/request {:.2}",
        busy.as_secs_f64() * 1e6 / n as f64
    );
    println!("{warm} {s} {}", String::from_utf8_lossy(&line));
}
