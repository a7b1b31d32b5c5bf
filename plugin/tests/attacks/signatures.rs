//! Degenerate and malleated signatures: ECDSA `r`/`s` of zero or the group order, DER instead of
//! JWS's fixed-size form, EdDSA `S` past the group order, small-order Ed25519 keys.

use super::common::*;
use super::payload;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::json;
use warden::Engine;

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
