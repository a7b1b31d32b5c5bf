//! Project Wycheproof's raw-signature vectors for the two verifiers Warden chooses itself rather
//! than through jwt-simple: `rsa_key.rs` (the `rsa` crate with `vendor/rsa`'s variable-time public
//! exponent) for RS256 and PS256, and `ed25519_key.rs` (ed25519-dalek) for EdDSA. Each group's key
//! goes through the module's own constructor, each case through its `verify`, as a token's signing
//! input does. Every `valid` case must verify and every `invalid` one must be refused; `acceptable`
//! cases (legacy encodings a verifier may take) must be refused too. The counts are asserted, so the
//! suite cannot silently skip cases. The JOSE vectors (`wycheproof.rs`) cover the token rules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::Value;
use std::path::PathBuf;
use warden::config::Algorithm;
use warden::credential::ed25519_key::Ed25519Key;
use warden::credential::rsa_key::RsaKey;

fn load(name: &str) -> Value {
    let dir = std::env::var("WARDEN_WYCHEPROOF_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/wycheproof"),
        PathBuf::from,
    );
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("Wycheproof vectors not found at {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn hex_of(v: &Value, member: &str) -> Vec<u8> {
    hex::decode(v[member].as_str().unwrap()).unwrap()
}

/// How many cases of each `result` verified, and how many there were.
#[derive(Debug, Default, PartialEq)]
struct Tally {
    cases: usize,
    valid: usize,
    valid_accepted: usize,
    invalid_accepted: Vec<u64>,
    acceptable_accepted: Vec<u64>,
}

/// Runs every case of `name`: `key` makes a group's verifier (`None`: the key is refused, and then
/// each of its cases counts as refused), `verify` checks one case's signature over its message.
fn run<K>(
    name: &str,
    key: impl Fn(&Value) -> Option<K>,
    verify: impl Fn(&K, &[u8], &[u8]) -> bool,
) -> Tally {
    let file = load(name);
    let mut t = Tally::default();
    for group in file["testGroups"].as_array().unwrap() {
        let k = key(group);
        for case in group["tests"].as_array().unwrap() {
            let id = case["tcId"].as_u64().unwrap();
            let ok = k
                .as_ref()
                .is_some_and(|k| verify(k, &hex_of(case, "msg"), &hex_of(case, "sig")));
            t.cases += 1;
            match case["result"].as_str().unwrap() {
                "valid" => {
                    t.valid += 1;
                    t.valid_accepted += usize::from(ok);
                }
                "invalid" if ok => t.invalid_accepted.push(id),
                "acceptable" if ok => t.acceptable_accepted.push(id),
                _ => {}
            }
        }
    }
    assert_eq!(
        t.cases,
        usize::try_from(file["numberOfTests"].as_u64().unwrap()).unwrap()
    );
    t
}

fn rsa(name: &str, alg: Algorithm) -> Tally {
    run(
        name,
        |g| RsaKey::new(alg, hex_of(g, "publicKeyDer")).ok(),
        |k, msg, sig| k.verify(msg, sig),
    )
}

/// `cases` cases, `valid` of them valid: every valid one verified, nothing else did.
fn expect(t: Tally, cases: usize, valid: usize) {
    let want = Tally {
        cases,
        valid,
        valid_accepted: valid,
        ..Tally::default()
    };
    assert_eq!(t, want);
}

#[test]
fn rsa_pkcs1v15_sha256_vectors() {
    // The one `acceptable` case (tcId 8, DigestInfo without its NULL parameters) is refused.
    expect(
        rsa("rsa_signature_2048_sha256_test.json", Algorithm::RS256),
        259,
        9,
    );
}

#[test]
fn rsa_pss_sha256_vectors() {
    expect(
        rsa("rsa_pss_2048_sha256_mgf1_32_test.json", Algorithm::PS256),
        108,
        63,
    );
}

#[test]
fn ed25519_vectors() {
    let t = run(
        "ed25519_test.json",
        |g| Ed25519Key::new(&hex_of(&g["publicKey"], "pk")).ok(),
        |k, msg, sig| k.verify(msg, sig),
    );
    expect(t, 151, 88);
}
