//! Criterion benchmarks of the signature paths (`cargo bench -p warden --bench signatures`).
//!
//! - `host_arguments/<alg>`: what Warden does for one `verify_signature` call, without the call:
//!   the JWS signature in the host's form (ES256: `r||s` checked and re-encoded as DER) and the
//!   protobuf arguments encoded.
//! - `host_verify/<alg>`: Warden's own work on a first-seen token whose signature the host checks
//!   (parse, key choice, the arguments, the claims), `Provider::verify` with a stand-in
//!   `verify_signature` that answers without arithmetic: what a first-seen token costs in Envoy
//!   besides BoringSSL.
//! - `wasm_verify/<alg>`: the pure-Rust verification of a first-seen token (the fallback: Kong, PS*,
//!   EdDSA; `rsa_key.rs`, `ed25519_key.rs`, jwt-simple for ES*), `Provider::verify` on a parsed token.
//! - `parse`: `jwt::parse` of an ES256 token (header rules, the unverified `iss`).
//! - `cache_key`: the verified-token cache's key of a token (keyed SipHash-2-4, 128-bit), and
//!   `cache_key/sha256`: the SHA-256 it replaced (still the key where the host has no randomness).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use jwt_simple::prelude::*;
use serde_json::{json, Value};
use warden::config::{Algorithm, ProviderConfig};
use warden::credential::cache::TokenCache;
use warden::credential::jwt::{self, Provider};
use warden::credential::native::{NativeKey, Signatures};
use warden::gateway::{HostKind, HostRules};

#[path = "shared/stand_in.rs"]
mod stand_in;
use stand_in::StandIn;

const ISSUER: &str = "https://idp.bench.local";

fn claims() -> JWTClaims<NoCustomClaims> {
    Claims::create(Duration::from_mins(30))
        .with_issuer(ISSUER)
        .with_audience("orders-api")
        .with_subject("user-1")
}

fn provider(keys: Vec<Value>) -> Provider {
    let cfg: ProviderConfig = serde_json::from_value(json!({
        "name": "bench", "issuer": ISSUER, "audiences": ["orders-api"], "jwks": {"keys": keys}
    }))
    .unwrap();
    Provider::compile(&cfg, "providers[0]").unwrap()
}

fn signature(token: &str) -> Vec<u8> {
    use base64::Engine as _;
    let sig = token.rsplit_once('.').unwrap().1;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let es = ES256KeyPair::generate().with_key_id("es");
    let rsa = RS256KeyPair::generate(2048).unwrap().with_key_id("rs");
    let ps = PS256KeyPair::from_der(&rsa.to_der().unwrap())
        .unwrap()
        .with_key_id("rs");
    let ed = Ed25519KeyPair::generate().with_key_id("ed");
    let es_jwk: Value = serde_json::from_str(&es.public_key().to_jwk()).unwrap();
    let ed_jwk: Value = serde_json::from_str(&ed.public_key().to_jwk()).unwrap();
    let mut rs_jwk: Value = serde_json::from_str(&rsa.public_key().to_jwk()).unwrap();
    rs_jwk.as_object_mut().unwrap().remove("alg");
    let p_keys = vec![es_jwk, rs_jwk, ed_jwk];
    let p = provider(p_keys.clone());
    let now = Clock::now_since_epoch().as_secs();
    let es_token = es.sign(claims()).unwrap();
    let rs_token = rsa.sign(claims()).unwrap();
    let ps_token = ps.sign(claims()).unwrap();
    let ed_token = ed.sign(claims()).unwrap();

    let mut g = c.benchmark_group("host_arguments");
    let es_key = NativeKey::new(Algorithm::ES256, es.public_key().to_der().unwrap()).unwrap();
    let rs_key = NativeKey::new(Algorithm::RS256, rsa.public_key().to_der().unwrap()).unwrap();
    for (name, key, token) in [("es256", &es_key, &es_token), ("rs256", &rs_key, &rs_token)] {
        let sig = signature(token);
        let text = token.rsplit_once('.').unwrap().0.as_bytes();
        g.bench_function(name, |b| {
            b.iter(|| black_box(key.arguments(text, &sig).unwrap()))
        });
    }
    g.finish();

    let mut hosted = provider(p_keys.clone());
    let (signatures, why) =
        Signatures::detect(HostRules::of(HostKind::Envoy), std::sync::Arc::new(StandIn));
    assert!(signatures.on_host(), "{why}");
    hosted.set_signatures(std::sync::Arc::new(signatures));
    let mut g = c.benchmark_group("host_verify");
    for (name, token) in [("es256", &es_token), ("rs256", &rs_token)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let parsed = jwt::parse(token).unwrap();
                black_box(hosted.verify(&parsed, now).unwrap())
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("wasm_verify");
    g.sample_size(20);
    for (name, token) in [
        ("es256", &es_token),
        ("rs256", &rs_token),
        ("ps256", &ps_token),
        ("eddsa", &ed_token),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let parsed = jwt::parse(token).unwrap();
                black_box(p.verify(&parsed, now).unwrap())
            })
        });
    }
    g.finish();

    c.bench_function("parse", |b| {
        b.iter(|| black_box(jwt::parse(&es_token).unwrap().issuer))
    });
    let keyed = TokenCache::default();
    c.bench_function("cache_key", |b| {
        b.iter(|| black_box(keyed.key_of(black_box(&es_token))))
    });
    let sha = TokenCache::with_hash_key(1, None);
    c.bench_function("cache_key/sha256", |b| {
        b.iter(|| black_box(sha.key_of(black_box(&es_token))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
