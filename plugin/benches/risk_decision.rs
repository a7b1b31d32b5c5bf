//! What risk scoring costs per request, natively: the full decision with risk off and on (same token,
//! verified-token cache warm, a habitual identity's history in an in-memory store), the decision
//! record of a scored request (built and serialized into one reused buffer, as the filter does), and
//! the risk pieces on their own (feature extraction, record decode + encode, the model).
//!
//! `cargo bench -p warden --bench risk_decision` (unset RUST_BACKTRACE first: it slows tract down).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use jwt_simple::prelude::*;
use serde_json::{json, Value};
use warden::audit::AuditRecord;
use warden::gateway::parse_address;
use warden::risk::features::{self, Facts};
use warden::risk::state::{client_item, hash64, prefix_item, IdentityState, Sighting};
use warden::risk::with_model;
use warden::shared::MemoryStore;
use warden::{Engine, Env, Request, TokenCache};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600;

fn config(risk: bool) -> Value {
    let mut c = json!({
        "providers": [{"name": "corp", "issuer": "https://idp", "audiences": ["api"],
                       "jwks": {"keys": [{"kty": "oct", "kid": "h1", "alg": "HS256",
                                          "k": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}]}}],
        "routes": [{"name": "orders", "prefix": "/orders", "sensitivity": "medium"}],
    });
    if risk {
        c["risk"] = json!({});
    }
    c
}

/// How long the token lives: longer than any run's clock goes (each iteration is a second later,
/// and criterion runs millions), so every measured request carries a valid token.
const LIFETIME_S: u64 = 20 * 365 * 86_400;

fn token() -> String {
    let mut claims = Claims::create(Duration::from_secs(LIFETIME_S))
        .with_issuer("https://idp")
        .with_audience("api")
        .with_subject("alice");
    claims.issued_at = Some(UnixTimeStamp::from_secs(T0));
    claims.expires_at = Some(UnixTimeStamp::from_secs(T0 + LIFETIME_S));
    claims.invalid_before = None;
    HS256Key::from_bytes(SECRET)
        .with_key_id("h1")
        .authenticate(claims)
        .unwrap()
}

fn decide(c: &mut Criterion, name: &str, risk: bool) {
    let engine = Engine::from_json(config(risk).to_string().as_bytes()).unwrap();
    let store = MemoryStore::default();
    let mut cache = TokenCache::default();
    let headers = vec![
        ("authorization".to_owned(), format!("Bearer {}", token())),
        ("user-agent".to_owned(), "bank-app/4.2".to_owned()),
        ("x-geo-country".to_owned(), "NO".to_owned()),
    ];
    let mut now_s = T0 + 9 * 3600;
    let request = |now_s: u64| Request {
        method: "GET",
        path: "/orders/7",
        headers: &headers,
        request_id: "r",
        now_s,
        source: parse_address("198.51.100.7").map(|a| a.ip),
        ..Request::default()
    };
    let run = |now_s: u64, cache: &mut TokenCache| {
        let req = request(now_s);
        let d = engine.decide(
            &req,
            &mut Env {
                cache,
                shared: &store,
                clock_us: &|| 0,
            },
        );
        engine.observe_response(&d, 200, 900, now_s, &store);
        d
    };
    // A history to compare with.
    for _ in 0..500 {
        now_s += 60;
        run(now_s, &mut cache);
    }
    c.bench_function(name, |b| {
        b.iter(|| {
            now_s += 1;
            black_box(run(now_s, &mut cache))
        })
    });
    // The decision record of the last request: with risk on, its score, factors and features.
    let d = run(now_s + 1, &mut cache);
    assert_eq!(
        d.status, 200,
        "{name}: the measured requests carried a token still valid"
    );
    let req = request(now_s);
    let mut line = Vec::new();
    c.bench_function(&format!("record_json/{name}"), |b| {
        b.iter(|| {
            AuditRecord::new(
                black_box(&req),
                &d,
                now_s * 1000,
                3,
                engine.recorded_claims(),
            )
            .write_json(&mut line);
            line.len()
        })
    });
}

fn pieces(c: &mut Criterion) {
    let mut s = IdentityState::fresh(1, T0);
    let facts = Facts {
        now_s: T0 + 86_400,
        write: false,
        delete: false,
        sensitivity: 0.33,
        country: Some(*b"NO"),
        prefix: Some(prefix_item(&"198.51.100.7".parse().unwrap())),
        agent: client_item(b"bank-app/4.2"),
        endpoint: hash64(b'e', b"GET /orders/7"),
        route: 1,
        object: Some(7),
        identity: Some(1),
        issued_at: Some(T0),
        delegation_depth: 0,
        bad_source: false,
        travel_kmh: 1000.0,
        kind: warden::credential::IdentityKind::Human,
    };
    for i in 0..500 {
        s.observe(&Sighting {
            now_s: T0 + i * 60,
            country: facts.country,
            prefix: facts.prefix,
            agent: facts.agent,
            endpoint: facts.endpoint,
            route: facts.route,
            object: facts.object,
            passed: true,
            learn: true,
            tagged: false,
        });
    }
    c.bench_function("risk/features", |b| {
        b.iter(|| black_box(features::extract(Some(black_box(&s)), None, &facts)))
    });
    let bytes = s.encode();
    c.bench_function("risk/state_decode_encode", |b| {
        b.iter(|| {
            black_box(
                IdentityState::decode(Some(black_box(&bytes)), 1)
                    .unwrap()
                    .encode(),
            )
        })
    });
    let x = features::extract(Some(&s), None, &facts);
    c.bench_function("risk/model", |b| {
        b.iter(|| black_box(with_model(|m| m.score(black_box(&x))).unwrap().unwrap()))
    });
}

fn benches(c: &mut Criterion) {
    decide(c, "decide/risk_off", false);
    decide(c, "decide/risk_on", true);
    pieces(c);
}

criterion_group!(risk, benches);
criterion_main!(risk);
