//! Malformed encodings: padding and the standard base64 alphabet, whitespace, part counts, the
//! JSON serialization, header and payload shapes, oversize tokens, garbage, nested JWTs.

use super::common::*;
use super::payload;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::json;
use warden::credential::jwt::MAX_TOKEN_BYTES;

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
    use rand::seq::IndexedRandom as _;
    use rand::{RngExt as _, SeedableRng as _};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x9e37_79b9_7f4a_7c15);
    let token68 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/";
    let mut refused = 0;
    for round in 0..400 {
        let len = rng.random_range(1..=300);
        let value: String = if round % 2 == 0 {
            (0..len)
                .map(|_| char::from(*token68.choose(&mut rng).unwrap()))
                .collect()
        } else {
            // Any Unicode scalar value.
            (0..len).map(|_| rng.random::<char>()).collect()
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
