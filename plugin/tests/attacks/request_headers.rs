//! The request's credential headers: two `Authorization` headers or a bearer token beside an API
//! key are ambiguous, the scheme is case-insensitive, and no refusal echoes the token.

use super::common::*;
use serde_json::{json, Value};

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
    // An API key beside another scheme's Authorization is two credentials: the upstream may act on
    // the other one.
    assert_decision(
        &decide(
            &[
                ("authorization", "Basic YWxpY2U6cHc="),
                ("x-api-key", API_KEY),
            ],
            NOW,
        ),
        400,
        "ambiguous_credentials",
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
