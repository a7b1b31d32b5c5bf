//! Which key verifies: never one the token names or carries (`jwk`, `jku`, `x5u`, `x5c`), never
//! one a crafted `kid` reaches, and no key set that invites confusion gets past config load.

use super::common::*;
use super::payload;
use serde_json::{json, Value};
use warden::Engine;

// --- keys named by the token itself ---------------------------------------------------------------

#[test]
fn embedded_jwk_is_never_used() {
    let stranger = &keys().stranger_ed;
    let jwk = ed_jwk(stranger, "ed");
    for header in [
        json!({"alg": "EdDSA", "kid": "ed", "jwk": jwk}),
        json!({"alg": "EdDSA", "jwk": jwk}),
    ] {
        // jwt-simple reads `jwk` as a string, so a JWK object is refused before any key is tried.
        let token = ed_token_with(stranger, &header.to_string(), &payload());
        assert_decision(&decide_token(&token), 401, "malformed");
    }
    // Even the configured key's own token is refused with a JWK object in its header.
    let genuine = ed_token(json!({"jwk": ed_jwk(&keys().ed, "ed")}), &claims());
    assert_decision(&decide_token(&genuine), 401, "malformed");
    // As a string it is read and ignored: the stranger's signature does not verify.
    let as_text = json!({"alg": "EdDSA", "kid": "ed", "jwk": jwk.to_string()});
    let token = ed_token_with(stranger, &as_text.to_string(), &payload());
    assert_decision(&decide_token(&token), 401, "signature");
}

#[test]
fn jku_x5u_x5c_headers_are_ignored() {
    let stranger = &keys().stranger_ed;
    let pointers = [
        json!({"jku": "https://evil.example/jwks.json"}),
        json!({"x5u": "https://evil.example/cert.pem"}),
        json!({"x5c": ["MIIBszCCAVmgAwIBAgIUEvil"]}),
        json!({"x5t": "ZXZpbA", "x5t#S256": "ZXZpbA"}),
        json!({"jku": "file:///etc/passwd", "x5u": "http://127.0.0.1:1/"}),
    ];
    for extra in &pointers {
        let mut header = json!({"alg": "EdDSA", "kid": "ed"});
        for (k, v) in extra.as_object().unwrap() {
            header[k] = v.clone();
        }
        // Signed by a stranger: the configured key is used, and it does not verify.
        let forged = ed_token_with(stranger, &header.to_string(), &payload());
        assert_decision(&decide_token(&forged), 401, "signature");
        // Signed by the configured key: the pointer changes nothing.
        assert_decision(
            &decide_token(&ed_token(extra.clone(), &claims())),
            200,
            "ok",
        );
    }
    // A pointer of the wrong JSON type is a malformed header.
    assert_decision(
        &decide_token(&ed_token(json!({"x5c": "MIIB"}), &claims())),
        401,
        "malformed",
    );
    assert_decision(
        &decide_token(&ed_token(json!({"jku": 1}), &claims())),
        401,
        "malformed",
    );
}

// --- kid injection ---------------------------------------------------------------------------------

#[test]
fn kid_injection_finds_no_key() {
    let stranger = &keys().stranger_ed;
    let long = "k".repeat(8_000);
    let kids = [
        "../../../../dev/null",
        "/dev/null",
        "' OR '1'='1",
        "ed' --",
        "ed\u{0}",
        "ed ",
        "ED",
        "",
        "$(id)",
        "http://evil.example/key",
        long.as_str(),
    ];
    for kid in kids {
        for kp in [&keys().ed, stranger] {
            let header = json!({"alg": "EdDSA", "kid": kid}).to_string();
            let d = decide_token(&ed_token_with(kp, &header, &payload()));
            assert_eq!(
                (d.status, d.reason),
                (401, "unknown_key"),
                "kid {:?}",
                &kid[..kid.len().min(20)]
            );
        }
    }
}

#[test]
fn non_string_kid_is_malformed() {
    for kid in [json!(1), json!(["ed"]), json!({"$ne": ""}), json!(true)] {
        let header = json!({"alg": "EdDSA", "kid": kid}).to_string();
        let d = decide_token(&ed_token_with(&keys().ed, &header, &payload()));
        assert_decision(&d, 401, "malformed");
    }
    // `kid: null` is no kid: every EdDSA key is tried, the stranger's signature matches none.
    let header = json!({"alg": "EdDSA", "kid": null}).to_string();
    let forged = ed_token_with(&keys().stranger_ed, &header, &payload());
    assert_decision(&decide_token(&forged), 401, "signature");
    assert_decision(
        &decide_token(&ed_token_with(&keys().ed, &header, &payload())),
        200,
        "ok",
    );
}

// --- config-time refusals the vectors do not reach --------------------------------------------------

#[test]
fn keysets_that_invite_confusion_are_refused_at_load() {
    let k = keys();
    let es: Value = serde_json::from_str(&k.es256.public_key().to_jwk()).unwrap();
    let oct = json!({"kty": "oct", "alg": "HS256", "kid": "hs", "k": b64(&k.hmac)});
    let provider = |keys: Value| json!({"providers": [{"name": "p", "issuer": "i", "audiences": ["a"], "jwks": {"keys": keys}}]});
    let err = |keys: Value| {
        Engine::from_json(provider(keys).to_string().as_bytes())
            .err()
            .unwrap()
    };
    // A shared secret beside a public key.
    assert_eq!(err(json!([es, oct])).field, "providers[0].jwks.keys");
    // Two keys under one kid: a token's kid must name one key.
    let mut ed2 = ed_jwk(&k.stranger_ed, "ed");
    let e = err(json!([ed_jwk(&k.ed, "ed"), ed2.clone()]));
    assert_eq!(
        (e.field.as_str(), e.message.as_str()),
        ("providers[0].jwks.keys[1].kid", "duplicate kid")
    );
    ed2["kid"] = "ed2".into();
    assert!(Engine::from_json(
        provider(json!([ed_jwk(&k.ed, "ed"), ed2]))
            .to_string()
            .as_bytes()
    )
    .is_ok());
    // An HMAC key shorter than its hash; an oct key that may not verify.
    let short = json!({"kty": "oct", "alg": "HS512", "k": b64([1u8; 63])});
    assert!(err(json!([short])).message.contains("at least 64"));
    let enc_only =
        json!({"kty": "oct", "alg": "HS256", "key_ops": ["encrypt"], "k": b64([1u8; 32])});
    assert!(err(json!([enc_only])).message.contains("key_ops"));
    // An oct key without alg serves the HMACs its length allows: 48 bytes -> HS256 and HS384.
    let cfg = json!({"providers": [{"name": "p", "issuer": HMAC_ISSUER, "audiences": [AUDIENCE],
        "jwks": {"keys": [{"kty": "oct", "kid": "k", "k": b64([5u8; 48])}]}}]});
    let engine = Engine::from_json(cfg.to_string().as_bytes()).unwrap();
    let mut algs: Vec<&str> = engine.providers()[0]
        .algorithms()
        .iter()
        .map(|a| a.name())
        .collect();
    algs.sort();
    assert_eq!(algs, ["HS256", "HS384"]);
}
