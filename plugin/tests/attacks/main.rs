//! Attacks on token validation (RFC 8725 and friends), each sent through `Engine::decide` with
//! real signed tokens, asserting the status the client gets and the reason the audit records. One
//! file per concern: `algorithms`, `keys`, `signatures`, `claims`, `jose_header`, `encoding` and
//! `request_headers`.
//!
//! The keys are generated per run (ES256, RS256 by jwt-simple; Ed25519 and HMAC-SHA256 raw, so a
//! test can sign any header it likes). Where a rule is what refuses a token, the token is signed by
//! the configured key, so the refusal cannot come from the signature. The engine's clock is
//! [`common::NOW`]. The same cases through a real Envoy live in `tests/test_responses.py`; this
//! suite covers the variants and edges natively.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../common/mod.rs"]
mod common;

mod algorithms;
mod claims;
mod encoding;
mod jose_header;
mod keys;
mod request_headers;
mod signatures;

use common::*;
use serde_json::{json, Value};

/// The test claims ([`common::claims`]) as a JWS payload.
fn payload() -> String {
    Value::Object(claims()).to_string()
}

// --- baseline: the genuine tokens pass, so every refusal below is the attack's doing -------------

#[test]
fn genuine_tokens_of_every_configured_key_are_allowed() {
    let c = claims();
    for token in [es_token(&c), rs_token(&c), ed_token(json!({}), &c)] {
        let d = decide_token(&token);
        assert_decision(&d, 200, "ok");
        assert_eq!(d.identity.as_ref().unwrap().subject, "alice");
        assert!(d
            .upstream_headers
            .contains(&("x-auth-tenant".into(), "acme".into())));
    }
    let hs = with(c, json!({"iss": HMAC_ISSUER}));
    let token = hs_token_with(
        &keys().hmac,
        r#"{"alg":"HS256","kid":"hs","typ":"JWT"}"#,
        &Value::Object(hs).to_string(),
    );
    assert_decision(&decide_token(&token), 200, "ok");
}

/// Every test here decides through `common::decide_token` / `common::decide`, which decide each
/// token twice (jwt-simple in Wasm, and the host's `verify_signature` double) and assert the same
/// status and reason. This checks that the host path really ran.
#[test]
fn the_host_signature_path_is_exercised() {
    let c = claims();
    let before = engine_on_host().credentials().signatures().counts().0;
    for token in [
        es_token(&c),
        rs_token(&c),
        flip_signature_bit(&es_token(&c)),
    ] {
        decide_token(&token);
    }
    let after = engine_on_host().credentials().signatures().counts().0;
    assert!(after >= before + 3, "host checked {before} -> {after}");
}
