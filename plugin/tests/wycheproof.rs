//! Project Wycheproof's JOSE vectors (`tests/vectors/wycheproof/`, vendored with their licence) run
//! through the engine's own code: each group's key is loaded by the engine's JWK loader
//! (`Provider::compile`), each token goes through `jwt::parse` and `Provider::verify`, as every
//! bearer token does in `Engine::decide`. The same vectors run a second time with the keys arriving
//! as a fetched JWKS (`jwks::parse_jwks` then `Provider::install_keys`, the remote-JWKS path).
//!
//! The vectors' payloads are not claims sets (`foo`, empty, binary), so "accepted" means the
//! signature verified: the token got past every header and signature rule and was refused only by a
//! claim rule ([`TokenError::signature_verified`]). Every `invalid` case must be refused. Every
//! `valid` case must be accepted, except those listed in [`VALID_BUT_REFUSED`], each with why.
//! The counts are asserted, so the suite cannot silently skip cases.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use warden::config::{Algorithm, ProviderConfig};
use warden::credential::jwks;
use warden::credential::jwt::{self, Provider};

/// Any time: the payloads carry no time claims.
const NOW: u64 = 1_767_225_600;

/// `valid` cases the engine refuses, and the category each one must be refused with.
const VALID_BUT_REFUSED: &[(u64, &str, &str)] = &[
    // An empty payload is a valid JWS but never a JWT (no claims set): refused by the parser,
    // before any signature work.
    (259, "token:malformed", "empty payload (RS256)"),
    (264, "token:malformed", "empty payload (RS384)"),
    (268, "token:malformed", "empty payload (RS512)"),
    (272, "token:malformed", "empty payload (PS256)"),
    (320, "token:malformed", "empty payload (PS384)"),
    (325, "token:malformed", "empty payload (PS512)"),
    // The key is bound to PS256 by its JWK `alg`; the token says PS384 (RFC 7520 figure 20).
    // A JWK's `alg` binds the key to that one algorithm (RFC 8725 §3.1), so this is refused.
    (346, "token:algorithm", "key bound to PS256, token is PS384"),
    // ES512 / P-521 is not a supported algorithm; the key is refused when the config loads.
    (
        347,
        "key_load:unsupported_alg",
        "P-521 / ES512 is not supported",
    ),
    (350, "token:algorithm", "key bound to PS256, token is PS384"),
    (
        351,
        "key_load:unsupported_alg",
        "P-521 / ES512 is not supported",
    ),
    // The NOTICE's known quirk: labelled valid, but the MAC does not match the literal signing
    // input (a character outside base64url was inserted); a strict decoder refuses the part.
    (
        372,
        "token:malformed",
        "NOTICE quirk: invalid character in header",
    ),
    (
        373,
        "token:malformed",
        "NOTICE quirk: invalid character in payload",
    ),
];

/// `invalid` cases whose token is byte-for-byte the token of a `valid` case in this copy of the
/// file (its padding variants appear to have lost their `=`): no verifier can refuse one and
/// accept the other. (invalid tcId, identical valid tcId).
const INVALID_IDENTICAL_TO_VALID: &[(u64, u64)] = &[(367, 357), (370, 357)];

fn vectors_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("WARDEN_WYCHEPROOF_DIR") {
        return PathBuf::from(dir);
    }
    // Vendored in this crate, so a fresh clone runs the suite with nothing beside it.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/wycheproof")
}

fn load(name: &str) -> Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("Wycheproof vectors not found at {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The public part of a group's key: `public` when given, else `private` (an `oct` key is its
/// own verification key). A JWKS (`{"keys": [...]}`) is taken whole.
fn group_keys(group: &Value) -> Vec<Value> {
    let key = group
        .get("public")
        .or_else(|| group.get("private"))
        .unwrap();
    match key.get("keys") {
        Some(Value::Array(keys)) => keys.clone(),
        _ => vec![key.clone()],
    }
}

/// How a group's keys reach the provider.
#[derive(Clone, Copy)]
enum Loader {
    /// Inline in the config: `Provider::compile`, which refuses a bad key set outright.
    Config,
    /// A fetched JWKS document: `jwks::parse_jwks`, which skips what it cannot use, then
    /// `Provider::install_keys`, as the remote-JWKS refresh does.
    Remote,
}

/// Who checks the signatures: jwt-simple in Wasm, or the host (Envoy's `verify_signature`, its
/// test double [`common::EnvoyVerifySignature`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Wasm,
    Host,
}

fn provider(keys: Vec<Value>, loader: Loader, path: Path) -> Result<Provider, String> {
    let mut provider = provider_of(keys, loader)?;
    if path == Path::Host {
        provider.set_signatures(Arc::new(common::host_signatures()));
    }
    Ok(provider)
}

fn provider_of(keys: Vec<Value>, loader: Loader) -> Result<Provider, String> {
    let compile = |keys: Vec<Value>| {
        let cfg: ProviderConfig = serde_json::from_value(json!({
            "name": "wycheproof", "issuer": "https://wycheproof.test", "audiences": ["any"],
            "jwks": {"keys": keys}
        }))
        .unwrap();
        Provider::compile(&cfg, "providers[0]").map_err(|e| e.to_string())
    };
    match loader {
        Loader::Config => compile(keys),
        Loader::Remote => {
            let document = json!({ "keys": keys }).to_string();
            let (fetched, _skipped) = jwks::parse_jwks(document.as_bytes(), &Algorithm::ALL)?;
            // Any provider will do: its keys are replaced by the fetched ones.
            let placeholder = json!({"kty": "OKP", "crv": "Ed25519", "kid": "placeholder",
                                     "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
            let provider = compile(vec![placeholder])?;
            provider.install_keys(fetched);
            Ok(provider)
        }
    }
}

/// The category of a key the engine refused at config load, from the operator's error message.
fn key_load_category(message: &str) -> &'static str {
    const CATEGORIES: &[(&str, &str)] = &[
        (
            "no usable signing key in the JWKS",
            "jwks_without_usable_key",
        ),
        ("mixes shared secrets", "mixed_keyset"),
        ("ROCA", "roca_key"),
        ("RSA modulus of", "rsa_too_small"),
        ("(the hash size) required", "hmac_key_too_short"),
        ("is not base64url", "bad_key_encoding"),
        ("no usable signing key", "not_a_signing_key"),
        ("unsupported or forbidden `alg`", "unsupported_alg"),
        ("does not fit", "alg_does_not_fit_key"),
        ("Invalid public key", "invalid_public_key"),
    ];
    CATEGORIES
        .iter()
        .find(|(needle, _)| message.contains(needle))
        .map(|(_, category)| *category)
        .unwrap_or_else(|| panic!("uncategorised key refusal: {message}"))
}

/// `accepted`, or the category of the refusal (`key_load:<why>`, `token:<reason>`).
fn run(provider: &Result<Provider, String>, jws: &str) -> String {
    let provider = match provider {
        Ok(p) => p,
        Err(e) => return format!("key_load:{}", key_load_category(e)),
    };
    let result = jwt::parse(jws).and_then(|parsed| provider.verify(&parsed, NOW));
    match result {
        Ok(_) => "accepted".into(),
        Err(e) if e.signature_verified() => "accepted".into(),
        Err(e) => format!("token:{}", e.as_str()),
    }
}

struct Tally {
    total: usize,
    valid_accepted: usize,
    /// Category → count, for every refusal of an `invalid` case.
    refused: BTreeMap<String, usize>,
    /// (tcId, category) of `valid` cases not accepted.
    valid_refused: Vec<(u64, String)>,
    /// (tcId, comment) of `invalid` cases accepted: must stay empty.
    invalid_accepted: Vec<(u64, String)>,
    /// Every case's token, by tcId.
    jws: BTreeMap<u64, String>,
    /// Every case's outcome, by tcId.
    outcomes: BTreeMap<u64, String>,
    /// Signatures the host checked.
    by_host: u64,
}

fn run_file(name: &str, loader: Loader) -> Tally {
    run_file_on(name, loader, Path::Wasm)
}

fn run_file_on(name: &str, loader: Loader, path: Path) -> Tally {
    let doc = load(name);
    let mut t = Tally {
        total: 0,
        valid_accepted: 0,
        refused: BTreeMap::new(),
        valid_refused: Vec::new(),
        invalid_accepted: Vec::new(),
        jws: BTreeMap::new(),
        outcomes: BTreeMap::new(),
        by_host: 0,
    };
    for group in doc["testGroups"].as_array().unwrap() {
        let provider = provider(group_keys(group), loader, path);
        for case in group["tests"].as_array().unwrap() {
            t.total += 1;
            let id = case["tcId"].as_u64().unwrap();
            // A JSON-serialized JWS is a JSON object (or its text): the engine sees its text.
            let jws = match &case["jws"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let outcome = run(&provider, &jws);
            t.outcomes.insert(id, outcome.clone());
            t.jws.insert(id, jws);
            match (case["result"].as_str().unwrap(), outcome.as_str()) {
                ("valid", "accepted") => t.valid_accepted += 1,
                ("valid", _) => t.valid_refused.push((id, outcome)),
                ("invalid", "accepted") => t
                    .invalid_accepted
                    .push((id, case["comment"].as_str().unwrap().to_owned())),
                ("invalid", _) => *t.refused.entry(outcome).or_default() += 1,
                (r, _) => panic!("tcId {id}: unexpected result {r:?}"),
            }
        }
        t.by_host += host_count(&provider);
    }
    assert_eq!(
        t.total as u64,
        doc["numberOfTests"].as_u64().unwrap(),
        "{name}: cases run"
    );
    t
}

/// The counts of signatures the host checked for a provider.
fn host_count(p: &Result<Provider, String>) -> u64 {
    p.as_ref().map_or(0, |p| p.signatures().counts().0)
}

/// What a run over one file must come to, case by case for the exceptions, in totals otherwise.
struct Expect<'a> {
    total: usize,
    /// tcIds of `invalid` cases accepted (only copies of a valid case may be).
    invalid_accepted: &'a [u64],
    /// (tcId, category) of `valid` cases refused, in tcId order.
    valid_refused: Vec<(u64, String)>,
    valid_accepted: usize,
    /// Refusals of `invalid` cases, by category.
    refused: &'a [(&'a str, usize)],
}

fn check(t: &Tally, e: Expect<'_>) {
    let accepted: Vec<u64> = t.invalid_accepted.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        accepted, e.invalid_accepted,
        "invalid JWS accepted: {:?}",
        t.invalid_accepted
    );
    assert_eq!(t.valid_refused, e.valid_refused, "valid cases refused");
    assert_eq!(t.valid_accepted, e.valid_accepted, "valid cases accepted");
    let refused: BTreeMap<String, usize> =
        e.refused.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert_eq!(t.refused, refused, "refusals of invalid cases, by category");
    assert_eq!(t.total, e.total);
}

fn valid_but_refused(skip: &[u64]) -> Vec<(u64, String)> {
    VALID_BUT_REFUSED
        .iter()
        .filter(|(id, _, _)| !skip.contains(id))
        .map(|(id, cat, _)| (*id, cat.to_string()))
        .collect()
}

#[test]
fn json_web_signature_vectors() {
    let t = run_file("json_web_signature_test.json", Loader::Config);
    for (invalid, valid) in INVALID_IDENTICAL_TO_VALID {
        assert_eq!(
            t.jws[invalid], t.jws[valid],
            "tcId {invalid} is no longer a copy of {valid}"
        );
    }
    let quirks: Vec<u64> = INVALID_IDENTICAL_TO_VALID
        .iter()
        .map(|(id, _)| *id)
        .collect();
    check(
        &t,
        Expect {
            total: 401,
            invalid_accepted: &quirks,
            valid_refused: valid_but_refused(&[]),
            valid_accepted: 46 - VALID_BUT_REFUSED.len(),
            // 355 invalid cases: 353 refused, by category, plus the 2 copies of a valid case.
            refused: &[
                ("key_load:invalid_public_key", 2), // key_ops ["encrypt"] (jwt-simple's JWK import)
                ("key_load:not_a_signing_key", 2),  // use: enc
                ("token:algorithm", 6), // HS256 on an EC key; RS*/PS* on a key bound to PS512
                ("token:malformed", 48), // encodings, missing/extra parts, alg none (empty
                //                          signature), JSON serialization, an embedded `jwk` object
                ("token:signature", 292), // modified signatures/payloads, PKCS#1, PSS, ECDSA r/s
                ("token:unknown_key", 3), // modified `kid`
            ],
        },
    );
}

#[test]
fn json_web_key_vectors() {
    let t = run_file("json_web_key_test.json", Loader::Config);
    check(
        &t,
        Expect {
            total: 26,
            invalid_accepted: &[],
            valid_refused: vec![],
            valid_accepted: 5,
            // 21 invalid cases, all refused: the key (set) at config load, or the token.
            refused: &[
                ("key_load:alg_does_not_fit_key", 2), // wrong curve, wrong kty
                ("key_load:bad_key_encoding", 1), // duplicate kid set whose 2nd key is not base64url
                ("key_load:hmac_key_too_short", 6), // shorter than the hash, or empty
                ("key_load:invalid_public_key", 2), // e = 1, point not on the curve
                ("key_load:mixed_keyset", 1),     // HMAC secret beside a public key
                ("key_load:not_a_signing_key", 2), // use: enc
                ("key_load:roca_key", 1),         // CVE-2017-15361 fingerprint
                ("key_load:rsa_too_small", 1),    // 1024-bit modulus
                ("key_load:unsupported_alg", 4),  // ES521, ES224, A256GCM, A256KW
                ("token:signature", 1),           // modified signature
            ],
        },
    );
}

/// The same vectors with the keys arriving as a fetched JWKS: what the remote loader skips
/// (shared secrets, which are never taken from a published set; encryption keys; bad keys) cannot
/// verify anything, and no invalid case is accepted, the two copies of a valid case included
/// (they are HMAC cases).
#[test]
fn json_web_signature_vectors_through_the_remote_jwks_loader() {
    let t = run_file("json_web_signature_test.json", Loader::Remote);
    // The HMAC groups' valid cases and ES512 have no usable key; the rest are refused as through
    // the config.
    let no_key = [1, 347, 348, 351, 352, 357, 358, 359, 372, 373, 376, 377];
    let mut valid_refused = valid_but_refused(&no_key);
    valid_refused.extend(
        no_key
            .iter()
            .map(|id| (*id, "key_load:jwks_without_usable_key".into())),
    );
    valid_refused.sort();
    check(
        &t,
        Expect {
            total: 401,
            invalid_accepted: &[],
            valid_accepted: 46 - valid_refused.len(),
            valid_refused,
            refused: &[
                ("key_load:jwks_without_usable_key", 34), // every HMAC group, `use: enc`, key_ops
                ("token:algorithm", 6),
                ("token:malformed", 23), // the HMAC groups' malformed cases are counted above
                ("token:signature", 290),
                ("token:unknown_key", 2),
            ],
        },
    );
}

#[test]
fn json_web_key_vectors_through_the_remote_jwks_loader() {
    let t = run_file("json_web_key_test.json", Loader::Remote);
    check(
        &t,
        Expect {
            total: 26,
            invalid_accepted: &[],
            // The HMAC-only sets have no usable key.
            valid_refused: [2, 13, 14, 15]
                .iter()
                .map(|id| (*id, "key_load:jwks_without_usable_key".to_owned()))
                .collect(),
            valid_accepted: 1,
            refused: &[
                ("key_load:jwks_without_usable_key", 20),
                // The mixed set: the secret is skipped, the HS256 token meets only the EC key.
                ("token:algorithm", 1),
            ],
        },
    );
}

/// Every vector, both files, both key loaders: the host's `verify_signature` path (RS* and ES*
/// signatures checked by the test double of Envoy's function) and jwt-simple's pure-Rust path
/// accept and refuse exactly the same cases, for the same reasons.
#[test]
fn host_and_wasm_signature_paths_agree_on_every_vector() {
    for name in ["json_web_signature_test.json", "json_web_key_test.json"] {
        for loader in [Loader::Config, Loader::Remote] {
            let wasm = run_file_on(name, loader, Path::Wasm);
            let host = run_file_on(name, loader, Path::Host);
            for (id, outcome) in &wasm.outcomes {
                assert_eq!(
                    &host.outcomes[id], outcome,
                    "{name} tcId {id}: the host path disagrees with jwt-simple"
                );
            }
            assert_eq!(host.outcomes.len(), wasm.outcomes.len());
        }
    }
    // The host really checked signatures (RS*, ES* groups), and jwt-simple did not for those.
    let host = run_file_on("json_web_signature_test.json", Loader::Config, Path::Host);
    assert!(host.by_host > 200, "host checked {}", host.by_host);
}
