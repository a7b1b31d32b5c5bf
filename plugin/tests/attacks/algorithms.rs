//! Which algorithm verifies: `alg: none` in every spelling, unknown or miscased names, and a key
//! used with an algorithm it is not bound to (RS/HS confusion, a kid naming another algorithm's key).

use super::common::*;
use super::payload;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

// --- alg none and friends --------------------------------------------------------------------------

#[test]
fn alg_none_in_every_spelling_is_refused() {
    let genuine = ed_token(json!({}), &claims());
    let genuine_sig = genuine.rsplit_once('.').unwrap().1;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "kid": "ed", "typ": "JWT"}).to_string();
        let input = signing_input(&header, &payload());
        // Empty signature (the classic): not even a compact JWS of ours.
        assert_decision(&decide_token(&format!("{input}.")), 401, "malformed");
        // With a signature part, even the genuine key's signature: `none` is no algorithm.
        assert_decision(
            &decide_token(&format!("{input}.{genuine_sig}")),
            401,
            "algorithm",
        );
        assert_decision(&decide_token(&format!("{input}.AA")), 401, "algorithm");
    }
}

#[test]
fn unknown_missing_or_miscased_alg_is_refused() {
    let sign = |header: Value| ed_token_with(&keys().ed, &header.to_string(), &payload());
    for alg in ["", "eddsa", "EDDSA", "Ed25519", "ES256K", "HS1", "RSA-OAEP"] {
        let d = decide_token(&sign(json!({"alg": alg, "kid": "ed"})));
        assert_decision(&d, 401, "algorithm");
    }
    assert_decision(&decide_token(&sign(json!({"kid": "ed"}))), 401, "malformed");
    assert_decision(
        &decide_token(&sign(json!({"alg": null, "kid": "ed"}))),
        401,
        "malformed",
    );
    assert_decision(
        &decide_token(&sign(json!({"alg": ["EdDSA"], "kid": "ed"}))),
        401,
        "malformed",
    );
}

// --- algorithm confusion ---------------------------------------------------------------------------

/// HS256 tokens keyed with every public form of the RSA key: the corp provider has no HMAC key, and
/// a key is only ever used with the one algorithm it is bound to.
#[test]
fn rs_hs_confusion_with_the_public_key_as_hmac_secret() {
    let rsa = keys().rs256.public_key();
    let ec = keys().es256.public_key();
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("rsa pem", rsa.to_pem().unwrap().into_bytes()),
        ("rsa der", rsa.to_der().unwrap()),
        ("rsa jwk", rsa.to_jwk().into_bytes()),
        ("rsa n", rsa.to_components().n),
        ("ec pem", ec.to_pem().unwrap().into_bytes()),
        ("ec jwk", ec.to_jwk().into_bytes()),
        ("ed raw", keys().ed.pk.to_vec()),
    ];
    for (what, secret) in &secrets {
        for kid in ["rs", "es", "ed"] {
            for alg in ["HS256", "HS384", "HS512"] {
                let header = json!({"alg": alg, "kid": kid, "typ": "JWT"}).to_string();
                let token = hs_token_with(secret, &header, &payload());
                let d = decide_token(&token);
                assert_eq!(
                    (d.status, d.reason),
                    (401, "algorithm"),
                    "{what} {kid} {alg}"
                );
            }
        }
    }
}

#[test]
fn the_hmac_providers_secret_cannot_sign_for_the_corp_issuer() {
    // Right secret, right kid, but the corp issuer has no HMAC key.
    let token = hs_token_with(&keys().hmac, r#"{"alg":"HS256","kid":"hs"}"#, &payload());
    assert_decision(&decide_token(&token), 401, "algorithm");
    // And the corp keys cannot sign for the HMAC issuer.
    let c = with(claims(), json!({"iss": HMAC_ISSUER}));
    assert_decision(&decide_token(&ed_token(json!({}), &c)), 401, "algorithm");
    assert_decision(&decide_token(&es_token(&c)), 401, "algorithm");
}

#[test]
fn a_kid_names_a_key_for_its_algorithm_only() {
    // The RSA key signs, the header claims ES256 with the RSA key's kid: no ES256 key "rs".
    let c = claims();
    let token = rs_token(&c);
    let (h, rest) = token.split_once('.').unwrap();
    let mut header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
    header["alg"] = "ES256".into();
    let swapped = format!("{}.{rest}", b64(header.to_string()));
    assert_decision(&decide_token(&swapped), 401, "unknown_key");
    // The Ed25519 key under the ES256 key's kid.
    assert_decision(
        &decide_token(&ed_token(json!({"kid": "es"}), &c)),
        401,
        "unknown_key",
    );
    // ES384 with the ES256 key's kid: the provider has no ES384 key at all.
    let es384 = ed_token_with(&keys().ed, r#"{"alg":"ES384","kid":"es"}"#, &payload());
    assert_decision(&decide_token(&es384), 401, "algorithm");
}
