//! Attacks on token validation (RFC 8725 and friends), each sent through `Engine::decide` with
//! real signed tokens, asserting the status the client gets and the reason the audit records.
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

mod common;

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use common::*;
use serde_json::{json, Value};
use warden::credential::jwt::MAX_TOKEN_BYTES;
use warden::{Engine, TokenCache};

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

// --- ECDSA edge signatures ---------------------------------------------------------------------------

/// The order n of P-256.
const P256_N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

#[test]
fn ecdsa_r_or_s_zero_or_n_is_refused() {
    let n = hex::decode(P256_N).unwrap();
    let zero = vec![0u8; 32];
    let mut one = vec![0u8; 32];
    one[31] = 1;
    let mut n_minus_1 = n.clone();
    n_minus_1[31] -= 1;
    let mut n_plus_1 = n.clone();
    n_plus_1[31] += 1;
    let values = [&zero, &one, &n, &n_minus_1, &n_plus_1, &vec![0xff; 32]];
    let input = signing_input(r#"{"alg":"ES256","kid":"es","typ":"JWT"}"#, &payload());
    let mut cases = 0;
    for r in values {
        for s in values {
            let token = format!("{input}.{}", b64([r.as_slice(), s.as_slice()].concat()));
            let d = decide_token(&token);
            assert_eq!(
                (d.status, d.reason),
                (401, "signature"),
                "r={} s={}",
                hex::encode(r),
                hex::encode(s)
            );
            cases += 1;
        }
    }
    assert_eq!(cases, 36);
    // The genuine signature DER-encoded, or with a byte more or less, is not a JWS ES256 signature.
    let genuine = es_token(&claims());
    let (input, sig) = genuine.rsplit_once('.').unwrap();
    let raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    let der = der_signature(&raw[..32], &raw[32..]);
    for bad in [der, [raw.as_slice(), &[0]].concat(), raw[..63].to_vec()] {
        assert_decision(
            &decide_token(&format!("{input}.{}", b64(bad))),
            401,
            "signature",
        );
    }
    assert_decision(&decide_token(&genuine), 200, "ok");
}

/// ASN.1 DER `SEQUENCE { INTEGER r, INTEGER s }`, the form JWS forbids (RFC 7518 §3.4).
fn der_signature(r: &[u8], s: &[u8]) -> Vec<u8> {
    let int = |v: &[u8]| {
        let v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        let v = if v.first().is_some_and(|b| b & 0x80 != 0) {
            [&[0u8][..], &v].concat()
        } else {
            v
        };
        [&[0x02, v.len() as u8][..], &v].concat()
    };
    let body = [int(r), int(s)].concat();
    [&[0x30, body.len() as u8][..], &body].concat()
}

// --- time ----------------------------------------------------------------------------------------------

/// Default skew is 60 s: each edge is accepted at 60 s and refused at 61 s, on a fresh verify and
/// from the verified-token cache alike.
#[test]
fn time_claims_at_the_skew_edges() {
    let cases = [
        (json!({"exp": NOW - 60, "iat": NOW - 600}), "ok"),
        (json!({"exp": NOW - 61, "iat": NOW - 600}), "expired"),
        (json!({"nbf": NOW + 60}), "ok"),
        (json!({"nbf": NOW + 61}), "not_yet_valid"),
        (json!({"iat": NOW + 60}), "ok"),
        (json!({"iat": NOW + 61}), "issued_in_future"),
        (json!({"exp": null}), "missing_exp"),
        (json!({"exp": "tomorrow"}), "claims"),
        (json!({"nbf": "now"}), "claims"),
    ];
    for (change, reason) in cases {
        let c = with(claims(), change.clone());
        let token = ed_token(json!({}), &c);
        let status = if reason == "ok" { 200 } else { 401 };
        // The cache holds a token until its `exp`; the skew beyond it is served by a fresh verify.
        let cacheable = status == 200 && c["exp"].as_u64().unwrap() >= NOW;
        let mut cache = TokenCache::default();
        for attempt in ["fresh", "cached"] {
            let h = [("authorization", bearer(&token))];
            let h: Vec<(&str, &str)> = h.iter().map(|(a, b)| (*a, b.as_str())).collect();
            let d = decide_path("GET", "/orders/7", &h, NOW, &mut cache);
            assert_eq!((d.status, d.reason), (status, reason), "{change} {attempt}");
            assert_eq!(
                d.cache_hit,
                attempt == "cached" && cacheable,
                "{change} {attempt}"
            );
        }
    }
}

#[test]
fn a_cached_token_still_expires() {
    let token = ed_token(json!({}), &with(claims(), json!({"exp": NOW + 100})));
    let h = bearer(&token);
    let mut cache = TokenCache::default();
    let at = |now: u64, cache: &mut TokenCache| {
        decide_path("GET", "/orders/7", &[("authorization", &h)], now, cache)
    };
    assert_decision(&at(NOW, &mut cache), 200, "ok");
    let d = at(NOW + 100, &mut cache);
    assert!(d.cache_hit);
    assert_decision(&d, 200, "ok");
    // Within skew the cache no longer answers (it holds tokens only to `exp`): verified afresh.
    let d = at(NOW + 160, &mut cache);
    assert!(!d.cache_hit);
    assert_decision(&d, 200, "ok");
    assert_decision(&at(NOW + 161, &mut cache), 401, "expired");
    // A one-bit forgery of a cached token is its own cache key, and fails its own signature.
    let mut cache = TokenCache::default();
    assert_decision(&at(NOW, &mut cache), 200, "ok");
    let forged = flip_signature_bit(&token);
    let d = decide_path(
        "GET",
        "/orders/7",
        &[("authorization", &bearer(&forged))],
        NOW,
        &mut cache,
    );
    assert_decision(&d, 401, "signature");
}

/// A key withdrawn from the provider's key set (a remote JWKS refresh without it, e.g. after a
/// compromise) stops working for tokens already in the cache, not only for new ones.
#[test]
fn a_withdrawn_key_stops_working_for_cached_tokens() {
    let engine = Engine::from_json(config().to_string().as_bytes()).unwrap();
    let req_headers = [(
        "authorization".to_string(),
        bearer(&ed_token(json!({}), &claims())),
    )];
    let req = warden::Request {
        method: "GET",
        path: "/orders/7",
        headers: &req_headers,
        request_id: "req-1",
        now_s: NOW,
        peer_cert_sha256: None,
        source: None,
    };
    let mut cache = TokenCache::default();
    assert_decision(&decide_request(&engine, &req, &mut cache), 200, "ok");
    assert!(decide_request(&engine, &req, &mut cache).cache_hit);
    // The refresh brings the same set minus the Ed25519 key that signed the token.
    let k = keys();
    let es: Value = serde_json::from_str(&k.es256.public_key().to_jwk()).unwrap();
    let document = json!({ "keys": [es] }).to_string();
    let (fetched, _) =
        warden::credential::jwks::parse_jwks(document.as_bytes(), &warden::config::Algorithm::ALL)
            .unwrap();
    let corp = engine
        .providers()
        .iter()
        .find(|p| p.name == "corp")
        .unwrap();
    corp.install_keys(fetched);
    let d = decide_request(&engine, &req, &mut cache);
    assert!(!d.cache_hit);
    // No key of the provider verifies EdDSA any more.
    assert_decision(&d, 401, "algorithm");
}

// --- issuer and audience ---------------------------------------------------------------------------

#[test]
fn issuer_and_audience() {
    let cases = [
        (
            json!({"iss": "https://evil.example"}),
            401,
            "unknown_issuer",
        ),
        (
            json!({"iss": "https://idp.example.com/"}),
            401,
            "unknown_issuer",
        ),
        (
            json!({"iss": "HTTPS://IDP.EXAMPLE.COM"}),
            401,
            "unknown_issuer",
        ),
        (json!({"iss": null}), 401, "unknown_issuer"),
        (json!({"iss": 7}), 401, "unknown_issuer"),
        (json!({"aud": "someone-else"}), 401, "audience"),
        (json!({"aud": null}), 401, "audience"),
        (json!({"aud": []}), 401, "audience"),
        (json!({"aud": ["a", "b"]}), 401, "audience"),
        (json!({"aud": "ORDERS-API"}), 401, "audience"),
        (json!({"aud": 1}), 401, "claims"),
        (json!({"aud": ["x", AUDIENCE]}), 200, "ok"),
        (json!({"aud": "other-api"}), 200, "ok"),
    ];
    for (change, status, reason) in cases {
        let d = decide_token(&ed_token(json!({}), &with(claims(), change.clone())));
        assert_eq!((d.status, d.reason), (status, reason), "{change}");
    }
}

// --- typ ---------------------------------------------------------------------------------------------

#[test]
fn typ_confusion() {
    let accepted = [
        "JWT",
        "jwt",
        "at+jwt",
        "AT+JWT",
        "application/at+jwt",
        "application/jwt",
        "Application/JWT",
    ];
    for typ in accepted {
        let d = decide_token(&ed_token(json!({"typ": typ}), &claims()));
        assert_eq!((d.status, d.reason), (200, "ok"), "typ {typ}");
    }
    // No typ at all is fine when the provider does not require one.
    assert_decision(
        &decide_token(&ed_token(json!({"typ": null}), &claims())),
        200,
        "ok",
    );
    let refused = [
        "dpop+jwt",
        "application/dpop+jwt",
        "JWS",
        "JOSE",
        "JOSE+JSON",
        "secevent+jwt",
        "logout+jwt",
        "id_token+jwt",
        "",
        "application/",
        "text/jwt",
        "application/at+jwt; charset=utf-8",
    ];
    for typ in refused {
        let d = decide_token(&ed_token(json!({"typ": typ}), &claims()));
        assert_eq!((d.status, d.reason), (401, "typ"), "typ {typ:?}");
    }
    assert_decision(
        &decide_token(&ed_token(json!({"typ": 1}), &claims())),
        401,
        "malformed",
    );
}

#[test]
fn require_typ_is_exact_up_to_media_type_rules() {
    let mut cfg = config();
    cfg["providers"][0]["require_typ"] = "at+jwt".into();
    let engine = Engine::from_json(cfg.to_string().as_bytes()).unwrap();
    let run = |typ: Value| {
        let token = ed_token(json!({"typ": typ}), &claims());
        let d = decide_token_on(&engine, &token);
        (d.status, d.reason)
    };
    for typ in ["at+jwt", "AT+JWT", "application/at+jwt"] {
        assert_eq!(run(typ.into()), (200, "ok"), "{typ}");
    }
    for typ in [
        json!("JWT"),
        json!("application/jwt"),
        json!(null),
        json!("at+jwt+jwt"),
    ] {
        assert_eq!(run(typ.clone()), (401, "typ"), "{typ}");
    }
}

// --- crit ----------------------------------------------------------------------------------------------

#[test]
fn crit_is_refused_in_every_form() {
    for crit in [
        json!(["exp"]),
        json!([]),
        json!(["b64"]),
        json!(["x-custom"]),
        json!("exp"),
    ] {
        let token = ed_token(
            json!({"crit": crit, "b64": false, "x-custom": 1}),
            &claims(),
        );
        assert_decision(&decide_token(&token), 401, "crit");
    }
}

// --- malformed encodings ---------------------------------------------------------------------------

#[test]
fn padding_and_the_standard_alphabet_are_refused() {
    let token = ed_token(json!({}), &claims());
    let parts: Vec<&str> = token.split('.').collect();
    // Padding at the end passes the token68 syntax, then fails base64url-without-padding.
    let mut padded_sig = token.clone();
    while padded_sig.len() % 4 != 0 {
        padded_sig.push('=');
    }
    padded_sig.push_str("==");
    assert_decision(&decide_token(&padded_sig), 401, "malformed");
    // Padding inside the token is not token68 at all: a malformed header, 400.
    let padded_header = format!("{}==.{}.{}", parts[0], parts[1], parts[2]);
    assert_decision(&decide_token(&padded_header), 400, "malformed_credentials");
    // The same bytes in the standard alphabet (`+` and `/` are token68, so this reaches the parser).
    let standard: Vec<String> = parts
        .iter()
        .map(|p| STANDARD_NO_PAD.encode(URL_SAFE_NO_PAD.decode(p).unwrap()))
        .collect();
    let standard = standard.join(".");
    assert!(
        standard.contains(['+', '/']),
        "the test token needs a '-' or '_' to convert"
    );
    assert_decision(&decide_token(&standard), 401, "malformed");
    // Non-canonical trailing bits in the signature (same bytes when decoded leniently).
    let sig = parts[2];
    let last = sig.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.find(last).unwrap();
    // 64 bytes -> 86 chars: the last char carries 2 bits and 4 unused ones.
    let tweaked = alphabet.chars().nth(idx | 1).unwrap();
    assert_ne!(tweaked, last);
    let noncanonical = format!(
        "{}.{}.{}{tweaked}",
        parts[0],
        parts[1],
        &sig[..sig.len() - 1]
    );
    assert_decision(&decide_token(&noncanonical), 401, "malformed");
}

#[test]
fn whitespace_in_or_around_the_token() {
    let token = ed_token(json!({}), &claims());
    let (h, rest) = token.split_once('.').unwrap();
    for value in [
        format!("Bearer {h}. {rest}"),
        format!("Bearer {h}.\t{rest}"),
        format!("Bearer {token} x"),
    ] {
        assert_decision(
            &decide(&[("authorization", &value)], NOW),
            400,
            "malformed_credentials",
        );
    }
    for value in [
        format!("Bearer  {token}"),
        format!("Bearer\t{token}"),
        format!(" Bearer {token}\t "),
    ] {
        assert_decision(&decide(&[("authorization", &value)], NOW), 200, "ok");
    }
}

#[test]
fn wrong_number_of_parts() {
    let token = ed_token(json!({}), &claims());
    let p: Vec<&str> = token.split('.').collect();
    let cases = [
        p[0].to_owned(),
        format!("{}.{}", p[0], p[1]),
        format!("{}.{}.", p[0], p[1]),
        format!(".{}.{}", p[1], p[2]),
        format!("{}..{}", p[0], p[2]),
        format!("{token}.{}", p[2]),
        format!("{token}."),
        format!("{}.{}.{}.{}.{}", p[0], p[1], p[2], p[1], p[2]),
        "..".to_owned(),
        "....".to_owned(),
    ];
    for t in &cases {
        let d = decide_token(t);
        assert_eq!((d.status, d.reason), (401, "malformed"), "{t}");
    }
}

#[test]
fn json_serialization_is_refused() {
    let token = ed_token(json!({}), &claims());
    let p: Vec<&str> = token.split('.').collect();
    let general = json!({"payload": p[1], "signatures": [{"protected": p[0], "signature": p[2]}]});
    let flattened = json!({"payload": p[1], "protected": p[0], "signature": p[2]});
    for j in [general, flattened] {
        // Not token68 in a header: 400. Base64url of it, as some clients do: not compact JWS, 401.
        assert_decision(&decide_token(&j.to_string()), 400, "malformed_credentials");
        assert_decision(&decide_token(&b64(j.to_string())), 401, "malformed");
    }
}

#[test]
fn non_object_or_duplicate_header_members() {
    for header in [
        "[]",
        "\"EdDSA\"",
        "null",
        "1",
        "{}",
        "{\"alg\":\"EdDSA\"",
        "",
        "\u{feff}{\"alg\":\"EdDSA\"}",
    ] {
        let d = decide_token(&ed_token_with(&keys().ed, header, &payload()));
        assert_eq!(
            (d.status, d.reason),
            (401, "malformed"),
            "header {header:?}"
        );
    }
    // Duplicate members: the header parser refuses them, so no "first wins / last wins" confusion.
    for header in [
        r#"{"alg":"EdDSA","alg":"none","kid":"ed"}"#,
        r#"{"alg":"none","alg":"EdDSA","kid":"ed"}"#,
        r#"{"alg":"EdDSA","kid":"x","kid":"ed"}"#,
        r#"{"alg":"EdDSA","kid":"ed","typ":"JWT","typ":"dpop+jwt"}"#,
    ] {
        let d = decide_token(&ed_token_with(&keys().ed, header, &payload()));
        assert_eq!((d.status, d.reason), (401, "malformed"), "header {header}");
    }
}

#[test]
fn payload_shapes() {
    let header = r#"{"alg":"EdDSA","kid":"ed"}"#;
    let sign = |payload: &str| decide_token(&ed_token_with(&keys().ed, header, payload));
    // Not a claims object: there is no issuer to pick a provider by.
    for payload in ["[]", "\"x\"", "null", "Example of Ed25519 signing"] {
        assert_decision(&sign(payload), 401, "unknown_issuer");
    }
    // Duplicate registered claims are refused after the signature.
    let dup_sub = format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{},"sub":"alice","sub":"admin"}}"#,
        NOW + 60
    );
    assert_decision(&sign(&dup_sub), 401, "claims");
    // A duplicate `iss` leaves no issuer to trust.
    let dup_iss = format!(
        r#"{{"iss":"https://evil.example","iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{}}}"#,
        NOW + 60
    );
    assert_decision(&sign(&dup_iss), 401, "unknown_issuer");
    // Claims that travel upstream must be printable and short.
    for change in [
        json!({"sub": "alice\r\nx-auth-tenant: evil"}),
        json!({"tenant": "a".repeat(2000)}),
        json!({"scope": ["a b"]}),
        json!({"scope": 7}),
    ] {
        let d = decide_token(&ed_token(json!({}), &with(claims(), change.clone())));
        assert_eq!((d.status, d.reason), (401, "claims"), "{change}");
    }
}

// --- size and garbage ----------------------------------------------------------------------------------

#[test]
fn oversize_tokens() {
    // A genuine token at the limit is accepted; one byte over, it is refused before decoding.
    let mut pad = MAX_TOKEN_BYTES * 3 / 4 - 400;
    let mut at_limit = None;
    let mut over = None;
    while at_limit.is_none() || over.is_none() {
        let token = ed_token(json!({}), &with(claims(), json!({"pad": "x".repeat(pad)})));
        if token.len() <= MAX_TOKEN_BYTES && token.len() + 3 > MAX_TOKEN_BYTES {
            at_limit = Some(token);
        } else if token.len() > MAX_TOKEN_BYTES {
            over = Some(token);
        }
        pad += 1;
    }
    assert_decision(&decide_token(&at_limit.unwrap()), 200, "ok");
    assert_decision(&decide_token(&over.unwrap()), 401, "too_large");
    let huge = "A".repeat(1 << 20);
    assert_decision(
        &decide_token(&format!("{huge}.{huge}.{huge}")),
        401,
        "too_large",
    );
}

#[test]
fn garbage_is_refused_without_panic() {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let token68 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/";
    let mut refused = 0;
    for round in 0..400 {
        let len = (next() % 300) as usize + 1;
        let value: String = if round % 2 == 0 {
            (0..len)
                .map(|_| token68[(next() % token68.len() as u64) as usize] as char)
                .collect()
        } else {
            (0..len)
                .map(|_| char::from_u32((next() % 0x11_0000) as u32).unwrap_or('\u{fffd}'))
                .collect()
        };
        let d = decide(&[("authorization", &format!("Bearer {value}"))], NOW);
        assert!(matches!(d.status, 400 | 401), "{value:?}: {d:?}");
        let d = decide(&[("x-api-key", &value)], NOW);
        assert!(matches!(d.status, 400 | 401), "{value:?}: {d:?}");
        refused += 2;
    }
    assert_eq!(refused, 800);
    for value in [
        "Bearer \u{0}",
        "Bearer ÿÿÿ",
        "Bearer \u{202e}abc",
        "Bearer a.b.c\u{0}",
    ] {
        assert_decision(
            &decide(&[("authorization", value)], NOW),
            400,
            "malformed_credentials",
        );
    }
}

// --- the request's credential headers ------------------------------------------------------------------

#[test]
fn two_authorization_headers_are_ambiguous() {
    let a = bearer(&ed_token(json!({}), &claims()));
    let b = bearer(&es_token(&claims()));
    for headers in [
        vec![("authorization", a.as_str()), ("authorization", a.as_str())],
        vec![("authorization", a.as_str()), ("Authorization", b.as_str())],
        vec![
            ("AUTHORIZATION", a.as_str()),
            ("authorization", "Basic YWxpY2U6cHc="),
        ],
        vec![
            ("authorization", "Basic YWxpY2U6cHc="),
            ("authorization", a.as_str()),
        ],
    ] {
        assert_decision(&decide(&headers, NOW), 400, "ambiguous_credentials");
    }
}

#[test]
fn bearer_and_api_key_together_are_ambiguous() {
    let a = bearer(&ed_token(json!({}), &claims()));
    for headers in [
        vec![("authorization", a.as_str()), ("x-api-key", API_KEY)],
        vec![("X-API-KEY", API_KEY), ("authorization", a.as_str())],
        vec![("x-api-key", API_KEY), ("x-api-key", API_KEY)],
    ] {
        assert_decision(&decide(&headers, NOW), 400, "ambiguous_credentials");
    }
    // Each alone is fine; a key that is not configured is refused; an empty one is malformed.
    assert_decision(&decide(&[("authorization", &a)], NOW), 200, "ok");
    assert_decision(&decide(&[("x-api-key", API_KEY)], NOW), 200, "ok");
    assert_decision(
        &decide(&[("x-api-key", &API_KEY[..API_KEY.len() - 1])], NOW),
        401,
        "unknown_api_key",
    );
    assert_decision(
        &decide(&[("x-api-key", " ")], NOW),
        400,
        "malformed_credentials",
    );
    // An API key beside another scheme's Authorization is one credential of ours.
    assert_decision(
        &decide(
            &[
                ("authorization", "Basic YWxpY2U6cHc="),
                ("x-api-key", API_KEY),
            ],
            NOW,
        ),
        200,
        "ok",
    );
}

#[test]
fn scheme_is_case_insensitive_and_others_are_not_ours() {
    let token = ed_token(json!({}), &claims());
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        assert_decision(
            &decide(&[("authorization", &format!("{scheme} {token}"))], NOW),
            200,
            "ok",
        );
    }
    for value in [
        format!("Bearer: {token}"),
        format!("Bearer{token}"),
        format!("Token {token}"),
        format!("Basic {token}"),
    ] {
        assert_decision(
            &decide(&[("authorization", &value)], NOW),
            401,
            "no_credential",
        );
    }
    // DPoP (RFC 9449) is ours: without its proof header the token is refused.
    assert_decision(
        &decide(&[("authorization", &format!("DPoP {token}"))], NOW),
        401,
        "dpop_missing",
    );
    assert_decision(&decide(&[], NOW), 401, "no_credential");
    for value in ["Bearer", "Bearer ", "bearer \t "] {
        assert_decision(
            &decide(&[("authorization", value)], NOW),
            400,
            "malformed_credentials",
        );
    }
}

#[test]
fn refusals_never_echo_the_token() {
    let token = ed_token(json!({}), &with(claims(), json!({"aud": "x"})));
    let d = decide_token(&token);
    assert_decision(&d, 401, "audience");
    let reply = d.reply.unwrap();
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["error"], "invalid_token");
    for part in token.split('.') {
        assert!(!reply.body.contains(part));
        assert!(!reply.headers.iter().any(|(_, v)| v.contains(part)));
    }
    assert!(
        !reply.body.contains("audience"),
        "the body names the failed check"
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

// --- EdDSA edge signatures and keys ---------------------------------------------------------------

/// The order L of the Ed25519 base point, little-endian.
const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

#[test]
fn eddsa_malleated_and_degenerate_signatures_are_refused() {
    let genuine = ed_token(json!({}), &claims());
    assert_decision(&decide_token(&genuine), 200, "ok");
    let (input, sig) = genuine.rsplit_once('.').unwrap();
    let raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    // S + L: the same signature modulo L, non-canonical (RFC 8032 §5.1.7 requires S < L).
    let mut s_plus_l = raw[32..].to_vec();
    let mut carry = 0u16;
    for (b, l) in s_plus_l.iter_mut().zip(ED25519_L) {
        let sum = u16::from(*b) + u16::from(l) + carry;
        *b = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    let malleated = [&raw[..32], s_plus_l.as_slice()].concat();
    // R = the identity point, S = 0: "verifies" under a small-order key with a lax verifier.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let degenerate = [identity.as_slice(), &[0u8; 32]].concat();
    for bad in [malleated, degenerate, vec![0u8; 64], vec![0xff; 64]] {
        assert_decision(
            &decide_token(&format!("{input}.{}", b64(bad))),
            401,
            "signature",
        );
    }
}

#[test]
fn small_order_ed25519_key_is_refused_at_load() {
    // The identity point as a configured public key: every (R = identity, S = 0) would verify
    // under it with a lax verifier. The loader refuses it.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let cfg = json!({"providers": [{"name": "p", "issuer": ISSUER, "audiences": [AUDIENCE],
        "jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "weak", "x": b64(identity)}]}}]});
    let err = Engine::from_json(cfg.to_string().as_bytes()).err().unwrap();
    assert_eq!(err.field, "providers[0].jwks.keys[0]");
}

// --- time claims at the edges of what the verifier can represent ----------------------------------

/// Times past 2^32 s (jwt-simple keeps 32.32 fixed point) must not wrap around to small ones: a
/// 200-year token must fail `max_lifetime_s`, not pass it as a 10-minute one.
#[test]
fn huge_and_negative_time_claims_do_not_wrap() {
    let mut cfg = config();
    cfg["providers"][0]["max_lifetime_s"] = 3600.into();
    let engine = Engine::from_json(cfg.to_string().as_bytes()).unwrap();
    let run = |change: Value| {
        let token = ed_token(json!({}), &with(claims(), change));
        let d = decide_token_on(&engine, &token);
        (d.status, d.reason)
    };
    let wrap = 1u64 << 32;
    let cases = [
        (json!({"exp": NOW + 600}), (200, "ok")),
        // A fractional NumericDate (RFC 7519 §2) is fine.
        (json!({"exp": (NOW + 600) as f64 + 0.5}), (200, "ok")),
        (json!({"exp": NOW + 7200}), (401, "lifetime")),
        (json!({"exp": wrap + NOW + 600}), (401, "lifetime")),
        (json!({"exp": u64::MAX}), (401, "lifetime")),
        (json!({"exp": 1e30}), (401, "lifetime")),
        (json!({"iat": wrap + NOW - 10}), (401, "issued_in_future")),
        (json!({"nbf": wrap + NOW - 10}), (401, "not_yet_valid")),
        (json!({"exp": -1}), (401, "claims")),
        (json!({"exp": -1.0}), (401, "expired")),
    ];
    for (change, expected) in cases {
        assert_eq!(run(change.clone()), expected, "{change}");
    }
}

#[test]
fn nested_jwt_and_deeply_nested_json_are_refused() {
    // A nested JWT (`cty: JWT`, RFC 7519 §5.2) is not unwrapped: its payload is no claims set.
    let inner = ed_token(json!({}), &claims());
    let outer = ed_token_with(
        &keys().ed,
        r#"{"alg":"EdDSA","kid":"ed","cty":"JWT"}"#,
        &inner,
    );
    assert_decision(&decide_token(&outer), 401, "unknown_issuer");
    // JSON nested beyond the parser's recursion limit: an error, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let token = ed_token_with(&keys().ed, &deep, &payload());
    assert_decision(&decide_token(&token), 401, "malformed");
    let deep_claims = format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{},"x":{deep}}}"#,
        NOW + 60
    );
    // The issuer is found, the signature verifies, the claims cannot be read.
    let token = ed_token_with(&keys().ed, r#"{"alg":"EdDSA","kid":"ed"}"#, &deep_claims);
    assert_decision(&decide_token(&token), 401, "claims");
}
