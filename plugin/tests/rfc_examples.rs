//! The published JWS examples, verified by the engine's own path: RFC 7515 Appendix A.1 (HS256)
//! and A.3 (ES256), RFC 8037 Appendix A.4 (Ed25519).
//!
//! Their payloads are from 2011 (`exp` 1300819380), carry no `aud`, and A.4's is not JSON. So each
//! test sets the engine's clock and asserts *which* check refuses the token: a claim check
//! (`audience`, `expired`, `claims`) can only be reached after the signature verified, and the same
//! token with one bit of its signature flipped is refused as `signature`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::flip_signature_bit;
use serde_json::{json, Value};
use warden::credential::jwt::{self, Provider};
use warden::credential::TokenError;
use warden::{Engine, Request, TokenCache};

/// `exp` of the RFC 7515 examples' payload.
const RFC7515_EXP: u64 = 1_300_819_380;

/// RFC 7515 A.1.1: the HMAC key, as a JWK.
const A1_KEY: &str =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
/// RFC 7515 A.1.1: the complete JWS (header `{"typ":"JWT",\r\n "alg":"HS256"}`).
const A1_JWS: &str = concat!(
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9",
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
);

/// RFC 7515 A.3.1: the P-256 public key (`d` left out: the engine takes public keys only).
const A3_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const A3_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
/// RFC 7515 A.3.1: the complete JWS (header `{"alg":"ES256"}`).
const A3_JWS: &str = concat!(
    "eyJhbGciOiJFUzI1NiJ9",
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
);

/// RFC 8037 A.2: the Ed25519 public key.
const A4_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
/// RFC 8037 A.4: the JWS of "Example of Ed25519 signing" (header `{"alg":"EdDSA"}`).
const A4_JWS: &str = concat!(
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc",
    ".hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
);

/// An engine whose one provider is the RFC's issuer `joe` with this one key.
fn engine_with(jwk: Value) -> Engine {
    let cfg = json!({"providers": [{"name": "rfc", "issuer": "joe", "audiences": ["orders-api"],
                                    "jwks": {"keys": [jwk]}}]});
    Engine::from_json(cfg.to_string().as_bytes()).unwrap()
}

fn reason(engine: &Engine, token: &str, now_s: u64) -> (u16, &'static str) {
    let headers = vec![("authorization".to_owned(), format!("Bearer {token}"))];
    let req = Request {
        method: "GET",
        path: "/",
        headers: &headers,
        request_id: "r",
        now_s,
        peer_cert_sha256: None,
        peer_cert_unread: false,
        source_unread: false,
        source: None,
        body: Default::default(),
    };
    let d = common::decide_request(engine, &req, &mut TokenCache::default());
    (d.status, d.reason)
}

/// Before `exp`, the only failing check is the missing `aud`; after it, `exp` fails first.
fn assert_signature_layer(engine: &Engine, jws: &str) {
    let before_exp = RFC7515_EXP - 3600;
    assert_eq!(reason(engine, jws, before_exp), (401, "audience"));
    assert_eq!(reason(engine, jws, RFC7515_EXP + 3600), (401, "expired"));
    // Within the default 60 s of skew the token is not yet expired.
    assert_eq!(reason(engine, jws, RFC7515_EXP + 59), (401, "audience"));
    let forged = flip_signature_bit(jws);
    assert_eq!(reason(engine, &forged, before_exp), (401, "signature"));
    assert_eq!(
        reason(engine, &forged, RFC7515_EXP + 3600),
        (401, "signature")
    );
}

#[test]
fn rfc7515_a1_hs256() {
    let engine = engine_with(json!({"kty": "oct", "k": A1_KEY}));
    assert_signature_layer(&engine, A1_JWS);
}

#[test]
fn rfc7515_a3_es256() {
    let engine = engine_with(json!({"kty": "EC", "crv": "P-256", "x": A3_X, "y": A3_Y}));
    assert_signature_layer(&engine, A3_JWS);
}

#[test]
fn rfc7515_a3_with_the_key_bound_to_another_alg_is_refused() {
    // The same key declared for ES384 cannot verify an ES256 token (and does not load as P-256).
    let cfg = json!({"providers": [{"name": "rfc", "issuer": "joe", "audiences": ["a"],
        "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES384", "x": A3_X, "y": A3_Y}]}}]});
    let err = Engine::from_json(cfg.to_string().as_bytes()).err().unwrap();
    assert_eq!(err.field, "providers[0].jwks.keys[0]");
}

/// RFC 8037's payload is not a claims set, so it runs through the provider's verify path, which
/// the engine uses for every token: the signature verifies, then the claims are refused.
#[test]
fn rfc8037_a4_ed25519() {
    let cfg = json!({"name": "rfc", "issuer": "joe", "audiences": ["a"],
                     "jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": A4_X}]}});
    let provider = Provider::compile(&serde_json::from_value(cfg).unwrap(), "p").unwrap();
    let verify = |token: &str| provider.verify(&jwt::parse(token).unwrap(), RFC7515_EXP);
    let err = verify(A4_JWS).err().unwrap();
    assert_eq!(err, TokenError::Claims);
    assert!(err.signature_verified());
    assert_eq!(
        verify(&flip_signature_bit(A4_JWS)).err(),
        Some(TokenError::Signature)
    );
    // A changed payload ("Example of Ed25519 signinf") fails too.
    let (_, rest) = A4_JWS.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let tampered = format!(
        "eyJhbGciOiJFZERTQSJ9.{}.{sig}",
        common::b64("Example of Ed25519 signinf")
    );
    assert_ne!(tampered, A4_JWS);
    assert_eq!(verify(&tampered).err(), Some(TokenError::Signature));
}
