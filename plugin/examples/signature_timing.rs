//! Times the pure-Rust signature path (`rsa_key.rs` for RS*/PS*, `ed25519_key.rs` for EdDSA,
//! jwt-simple for ES*; used on Kong, for PS* and EdDSA, on a host without `verify_signature`) where
//! it runs: built for wasm32-wasip1 and run under wasmtime (Kong's runtime) and node's V8 by
//! `bench/bench.py`, or natively. Prints one JSON line: the median microseconds of
//! `Provider::verify` on a first-seen token (parse, key choice, signature, claims) per algorithm.
//!
//! `cargo build --release --target wasm32-wasip1 -p warden --example signature_timing`

use jwt_simple::prelude::*;
use serde_json::{json, Value};
use std::time::Instant;
use warden::config::ProviderConfig;
use warden::credential::jwt::{self, Provider};

const ISSUER: &str = "https://idp.bench.local";

fn fail(e: impl std::fmt::Display) -> ! {
    eprintln!("{e}");
    std::process::exit(1)
}

fn main() {
    let es = ES256KeyPair::generate().with_key_id("es");
    let rsa = RS256KeyPair::generate(2048).unwrap_or_else(|e| fail(e));
    let ps = PS256KeyPair::from_der(&rsa.to_der().unwrap_or_else(|e| fail(e)))
        .unwrap_or_else(|e| fail(e));
    let ed = Ed25519KeyPair::generate().with_key_id("ed");
    let jwk = |text: String| -> Value { serde_json::from_str(&text).unwrap_or_else(|e| fail(e)) };
    let mut rs_jwk = jwk(rsa.public_key().to_jwk());
    if let Some(o) = rs_jwk.as_object_mut() {
        o.remove("alg");
        o.insert("kid".into(), json!("rs"));
    }
    let keys = vec![
        jwk(es.public_key().to_jwk()),
        rs_jwk,
        jwk(ed.public_key().to_jwk()),
    ];
    let cfg: ProviderConfig = serde_json::from_value(json!({
        "name": "bench", "issuer": ISSUER, "audiences": ["orders-api"], "jwks": {"keys": keys}
    }))
    .unwrap_or_else(|e| fail(e));
    let provider = Provider::compile(&cfg, "providers[0]").unwrap_or_else(|e| fail(e));
    let claims = || {
        Claims::create(Duration::from_mins(30))
            .with_issuer(ISSUER)
            .with_audience("orders-api")
            .with_subject("user-1")
    };
    let tokens: Vec<(&str, String)> = vec![
        ("ES256", es.sign(claims()).unwrap_or_else(|e| fail(e))),
        (
            "RS256",
            rsa.with_key_id("rs")
                .sign(claims())
                .unwrap_or_else(|e| fail(e)),
        ),
        (
            "PS256",
            ps.with_key_id("rs")
                .sign(claims())
                .unwrap_or_else(|e| fail(e)),
        ),
        ("EdDSA", ed.sign(claims()).unwrap_or_else(|e| fail(e))),
    ];
    let now = Clock::now_since_epoch().as_secs();
    let mut out = serde_json::Map::new();
    for (alg, token) in &tokens {
        let mut times: Vec<f64> = Vec::with_capacity(60);
        for i in 0..70 {
            let t = Instant::now();
            let parsed = jwt::parse(token).unwrap_or_else(|e| fail(e.as_str()));
            if let Err(e) = provider.verify(&parsed, now) {
                fail(format!("{alg}: {}", e.as_str()));
            }
            if i >= 10 {
                times.push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
        times.sort_by(f64::total_cmp);
        let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
        out.insert((*alg).to_owned(), json!((median * 10.0).round() / 10.0));
    }
    println!("{}", Value::Object(out));
}
