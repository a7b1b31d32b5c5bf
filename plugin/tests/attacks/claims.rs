//! The claims: `exp`/`nbf`/`iat` at the skew edges (fresh and from the verified-token cache), keys
//! withdrawn under cached tokens, issuer and audience, and times the verifier cannot represent.

use super::common::*;
use serde_json::{json, Value};
use warden::{Engine, TokenCache};

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
        // A verified token is served from the cache, within the skew past its `exp` too.
        let cacheable = status == 200;
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
    // An engine of its own, so that only these requests move its signature counts.
    let engine = Engine::from_json(config().to_string().as_bytes())
        .unwrap()
        .with_signatures(host_signatures());
    let checked = || {
        let (host, wasm) = engine.credentials().signatures().counts();
        host + wasm
    };
    let mut cache = TokenCache::default();
    let at = |now: u64, cache: &mut TokenCache| {
        decide_on(
            &engine,
            "GET",
            "/orders/7",
            &[("authorization", &h)],
            now,
            cache,
        )
    };
    assert_decision(&at(NOW, &mut cache), 200, "ok");
    let d = at(NOW + 100, &mut cache);
    assert!(d.cache_hit);
    assert_decision(&d, 200, "ok");
    // Within the provider's skew (60 s) the cache still answers: its claim checks allow the skew.
    let d = at(NOW + 160, &mut cache);
    assert!(d.cache_hit);
    assert_decision(&d, 200, "ok");
    // Past it the token is refused as expired, however often it comes back, and its signature is
    // not checked again.
    for now in [NOW + 161, NOW + 161, NOW + 86_400] {
        assert_decision(&at(now, &mut cache), 401, "expired");
    }
    assert_eq!(checked(), 1);
    // A token first seen expired: its signature is checked once (a forgery is refused as one,
    // never as expired), then it is refused from the cache.
    let late = ed_token(json!({}), &with(claims(), json!({"exp": NOW - 100})));
    let forged = flip_signature_bit(&late);
    for _ in 0..3 {
        for (token, reason) in [(&late, "expired"), (&forged, "signature")] {
            let h = bearer(token);
            let d = decide_on(
                &engine,
                "GET",
                "/orders/7",
                &[("authorization", &h)],
                NOW,
                &mut cache,
            );
            assert_decision(&d, 401, reason);
        }
    }
    assert_eq!(checked(), 1 + 1 + 3);
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
        peer_cert_unread: false,
        source_unread: false,
        source: None,
        body: Default::default(),
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
