//! Shared by the native test suites: real keys, real signed tokens, an engine compiled from a real
//! config, and one call to `Engine::decide` per request.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::*;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::sync::OnceLock;
use warden::credential::native::{Signatures, VerifySignatureArguments, VerifySignatureResult};
use warden::gateway::{ForeignError, ForeignFunctions, HostRules};
use warden::shared::MemoryStore;
use warden::{Decision, Engine, Env, Request, TokenCache};

/// The engine's clock in these tests: 2026-01-01T00:00:00Z.
pub const NOW: u64 = 1_767_225_600;
pub const ISSUER: &str = "https://idp.example.com";
pub const HMAC_ISSUER: &str = "https://hmac.example.com";
pub const AUDIENCE: &str = "orders-api";
/// The API key of the config (its SHA-256 is configured).
pub const API_KEY: &str = "wk_test_4f1c2a9e7b6d5c3a";

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Every key the test config trusts, plus strangers it does not.
pub struct Keys {
    pub es256: ES256KeyPair,
    pub rs256: RS256KeyPair,
    pub ed: ed25519_compact::KeyPair,
    pub hmac: Vec<u8>,
    /// A key pair nobody configured, used with the configured kids.
    pub stranger_ed: ed25519_compact::KeyPair,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        es256: ES256KeyPair::generate().with_key_id("es"),
        rs256: RS256KeyPair::generate(2048).unwrap().with_key_id("rs"),
        ed: ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([7; 32])),
        hmac: (0u8..32)
            .map(|i| i.wrapping_mul(37).wrapping_add(11))
            .collect(),
        stranger_ed: ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([9; 32])),
    })
}

pub fn ed_jwk(kp: &ed25519_compact::KeyPair, kid: &str) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": b64(*kp.pk)})
}

/// The config under test: one asymmetric provider (ES256, RS256, EdDSA keys), one HMAC provider,
/// API keys, and a few routes.
pub fn config() -> Value {
    let k = keys();
    let es: Value = serde_json::from_str(&k.es256.public_key().to_jwk()).unwrap();
    let rs: Value = serde_json::from_str(&k.rs256.public_key().to_jwk()).unwrap();
    let api_key_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(API_KEY));
    json!({
        "providers": [
            {"name": "corp", "issuer": ISSUER, "audiences": [AUDIENCE, "other-api"],
             "jwks": {"keys": [es, rs, ed_jwk(&k.ed, "ed")]}},
            {"name": "shared-secret", "issuer": HMAC_ISSUER, "audiences": [AUDIENCE],
             "jwks": {"keys": [{"kty": "oct", "alg": "HS256", "kid": "hs", "k": b64(&k.hmac)}]}}
        ],
        "api_keys": {"keys": [{"id": "ci", "sha256": api_key_sha, "subject": "ci-bot",
                               "scopes": ["orders:read"]}]},
        "routes": [
            {"path": "/health", "methods": ["GET"], "anonymous": true},
            {"path": "/orders/{id}", "methods": ["GET"], "scopes": ["orders:read"]}
        ]
    })
}

pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::from_json(config().to_string().as_bytes()).unwrap())
}

/// The same engine with the host checking signatures ([`EnvoyVerifySignature`]), as in Envoy.
pub fn engine_on_host() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::from_json(config().to_string().as_bytes())
            .unwrap()
            .with_signatures(host_signatures())
    })
}

/// Signature checks by [`EnvoyVerifySignature`], found the way the adapter finds Envoy's.
pub fn host_signatures() -> Signatures {
    let (s, why) = Signatures::detect(HostRules::default(), Arc::new(EnvoyVerifySignature));
    assert!(s.on_host(), "{why}");
    s
}

/// Envoy's `verify_signature` foreign function (`source/extensions/common/wasm/foreign.cc`) as
/// BoringSSL answers it, modelled with independent crates (RustCrypto's `p256`, `p384`, `rsa`):
/// the protobuf arguments decoded, the DER SubjectPublicKeyInfo imported (a key it cannot import is
/// BadArgument), then `EVP_DigestVerify` with the named hash and no padding option: ECDSA over a
/// DER signature, RSA PKCS#1 v1.5. An unknown function name is NotFound.
pub struct EnvoyVerifySignature;

impl ForeignFunctions for EnvoyVerifySignature {
    fn call(&self, name: &str, args: &[u8]) -> Result<Vec<u8>, ForeignError> {
        use p256::ecdsa::signature::Verifier as _;
        use p256::pkcs8::DecodePublicKey as _;
        use prost::Message as _;
        use rsa09::pkcs8::DecodePublicKey as _;
        use rsa09::signature::Verifier as _;
        if name != "verify_signature" {
            return Err(ForeignError::NotFound);
        }
        let a = VerifySignatureArguments::decode(args).map_err(|_| ForeignError::BadArgument)?;
        let (hash, sig, text) = (a.hash_function.as_str(), &a.signature, &a.text);
        let result = if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(&a.public_key) {
            hash == "sha256"
                && p256::ecdsa::Signature::from_der(sig).is_ok_and(|s| k.verify(text, &s).is_ok())
        } else if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_der(&a.public_key) {
            hash == "sha384"
                && p384::ecdsa::Signature::from_der(sig).is_ok_and(|s| k.verify(text, &s).is_ok())
        } else if let Ok(k) = rsa09::RsaPublicKey::from_public_key_der(&a.public_key) {
            use rsa09::pkcs1v15::{Signature, VerifyingKey};
            let Ok(s) = Signature::try_from(sig.as_slice()) else {
                return Ok(answer(false));
            };
            match hash {
                "sha256" => VerifyingKey::<sha2::Sha256>::new(k)
                    .verify(text, &s)
                    .is_ok(),
                "sha384" => VerifyingKey::<sha2::Sha384>::new(k)
                    .verify(text, &s)
                    .is_ok(),
                "sha512" => VerifyingKey::<sha2::Sha512>::new(k)
                    .verify(text, &s)
                    .is_ok(),
                _ => false,
            }
        } else {
            return Err(ForeignError::BadArgument);
        };
        Ok(answer(result))
    }
}

fn answer(result: bool) -> Vec<u8> {
    use prost::Message as _;
    VerifySignatureResult {
        result,
        error: String::new(),
    }
    .encode_to_vec()
}

/// Claims of a good token at [`NOW`]; tests change what they attack.
pub fn claims() -> Map<String, Value> {
    json!({"iss": ISSUER, "sub": "alice", "aud": AUDIENCE, "iat": NOW - 10, "exp": NOW + 600,
           "scope": "orders:read", "tenant": "acme", "client_id": "web"})
    .as_object()
    .unwrap()
    .clone()
}

pub fn with(mut c: Map<String, Value>, changes: Value) -> Map<String, Value> {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.remove(k);
        } else {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

/// `header.payload` of a compact JWS from raw JSON texts.
pub fn signing_input(header: &str, payload: &str) -> String {
    format!("{}.{}", b64(header), b64(payload))
}

/// An EdDSA token with exactly this header and payload, signed with `kp`.
pub fn ed_token_with(kp: &ed25519_compact::KeyPair, header: &str, payload: &str) -> String {
    let input = signing_input(header, payload);
    let sig = kp.sk.sign(input.as_bytes(), None);
    format!("{input}.{}", b64(*sig))
}

/// An EdDSA token from the configured `ed` key, with extra header members.
pub fn ed_token(header_extra: Value, claims: &Map<String, Value>) -> String {
    let mut header = json!({"alg": "EdDSA", "kid": "ed", "typ": "JWT"});
    for (k, v) in header_extra.as_object().unwrap() {
        if v.is_null() {
            header.as_object_mut().unwrap().remove(k);
        } else {
            header[k] = v.clone();
        }
    }
    ed_token_with(
        &keys().ed,
        &header.to_string(),
        &Value::Object(claims.clone()).to_string(),
    )
}

/// An HMAC-SHA256 token with exactly this header and payload, keyed with `secret`.
pub fn hs_token_with(secret: &[u8], header: &str, payload: &str) -> String {
    let input = signing_input(header, payload);
    let tag = hmac_sha256::HMAC::mac(input.as_bytes(), secret);
    format!("{input}.{}", b64(tag))
}

fn jwt_claims(c: &Map<String, Value>) -> JWTClaims<Map<String, Value>> {
    serde_json::from_value(Value::Object(c.clone())).unwrap()
}

/// An ES256 token signed by jwt-simple with the configured key (`kid: es`).
pub fn es_token(c: &Map<String, Value>) -> String {
    keys().es256.sign(jwt_claims(c)).unwrap()
}

/// An RS256 token signed by jwt-simple with the configured key (`kid: rs`).
pub fn rs_token(c: &Map<String, Value>) -> String {
    keys().rs256.sign(jwt_claims(c)).unwrap()
}

/// Runs one request through `Engine::decide` with a fresh cache.
/// Like [`decide_token`], decided on both signature paths, which must agree.
pub fn decide(headers: &[(&str, &str)], now_s: u64) -> Decision {
    let d = decide_path(
        "GET",
        "/orders/7",
        headers,
        now_s,
        &mut TokenCache::default(),
    );
    let on_host = decide_on(
        engine_on_host(),
        "GET",
        "/orders/7",
        headers,
        now_s,
        &mut TokenCache::default(),
    );
    assert_eq!(
        (on_host.status, on_host.reason),
        (d.status, d.reason),
        "the host's and Wasm's signature paths disagree on {headers:?}"
    );
    d
}

pub fn decide_path(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    now_s: u64,
    cache: &mut TokenCache,
) -> Decision {
    decide_on(engine(), method, path, headers, now_s, cache)
}

/// [`decide_path`] on another engine.
pub fn decide_on(
    engine: &Engine,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    now_s: u64,
    cache: &mut TokenCache,
) -> Decision {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let req = Request {
        method,
        path,
        headers: &headers,
        request_id: "req-1",
        now_s,
        peer_cert_sha256: None,
        peer_cert_unread: false,
        source_unread: false,
        source: None,
        body: Default::default(),
    };
    decide_request(engine, &req, cache)
}

/// `engine.decide(req)` with `cache`, no state kept between calls (no risk history) and no time budget.
pub fn decide_request(engine: &Engine, req: &Request<'_>, cache: &mut TokenCache) -> Decision {
    let store = MemoryStore::default();
    let mut env = Env {
        cache,
        shared: &store,
        clock_us: &|| 0,
    };
    engine.decide(req, &mut env)
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// [`decide_on`] at [`NOW`] with a fresh token cache: one request, nothing remembered.
pub fn decide_once(e: &Engine, method: &str, path: &str, headers: &[(&str, &str)]) -> Decision {
    decide_on(e, method, path, headers, NOW, &mut TokenCache::default())
}

/// `Bearer <token>` of [`claims`] with `changes`, signed by the configured EdDSA key.
pub fn bearer_with(changes: Value) -> String {
    bearer(&ed_token(json!({}), &with(claims(), changes)))
}

/// The decision for `GET /orders/7` with `Authorization: Bearer <token>` at [`NOW`].
/// Decided twice, signatures checked in Wasm and by the host ([`engine_on_host`]): both paths must
/// come to the same status and reason, so every attack test runs through both.
pub fn decide_token(token: &str) -> Decision {
    let d = decide_token_on(engine(), token);
    let on_host = decide_token_on(engine_on_host(), token);
    assert_eq!(
        (on_host.status, on_host.reason),
        (d.status, d.reason),
        "the host's and Wasm's signature paths disagree on {token}"
    );
    d
}

/// [`decide_token`] on another engine (a changed config), with a fresh cache.
pub fn decide_token_on(engine: &Engine, token: &str) -> Decision {
    let headers = [("authorization".to_owned(), bearer(token))];
    let req = Request {
        method: "GET",
        path: "/orders/7",
        headers: &headers,
        request_id: "req-1",
        now_s: NOW,
        peer_cert_sha256: None,
        peer_cert_unread: false,
        source_unread: false,
        source: None,
        body: Default::default(),
    };
    decide_request(engine, &req, &mut TokenCache::default())
}

/// Asserts status, audit reason and, for a refusal, the `WWW-Authenticate` challenge.
#[track_caller]
pub fn assert_decision(d: &Decision, status: u16, reason: &str) {
    assert_eq!((d.status, d.reason), (status, reason), "decision: {d:?}");
    let challenge = d
        .reply
        .as_ref()
        .and_then(|r| r.headers.iter().find(|(n, _)| n == "www-authenticate"))
        .map(|(_, v)| v.as_str());
    match status {
        200 => assert!(d.reply.is_none() && d.identity.is_some(), "{d:?}"),
        400 => assert_eq!(challenge, Some(r#"Bearer error="invalid_request""#)),
        401 if reason == "no_credential" => assert_eq!(challenge, Some(r#"Bearer realm="warden""#)),
        401 if reason.starts_with("dpop_") => {
            assert!(challenge.is_some_and(|c| c.starts_with(r#"DPoP error="invalid_dpop_proof""#)))
        }
        401 => assert_eq!(challenge, Some(r#"Bearer error="invalid_token""#)),
        _ => {}
    }
}

/// Flips one bit of the signature's first byte (the token stays well-formed base64url).
pub fn flip_signature_bit(token: &str) -> String {
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    raw[0] ^= 0x01;
    format!("{input}.{}", b64(raw))
}
