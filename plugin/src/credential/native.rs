//! Signature arithmetic done by the host where it can (Envoy's `verify_signature` foreign function,
//! BoringSSL), with jwt-simple's pure-Rust verification everywhere else. Only the arithmetic moves:
//! every RFC 8725 rule (key choice by `kid` and `alg`, `crit`, `typ`, the claims) stays in `jwt.rs`.
//!
//! Envoy (`source/extensions/common/wasm/foreign.cc`) takes a serialized
//! `VerifySignatureArguments` { `hash_function`, `public_key` (DER SubjectPublicKeyInfo),
//! `signature`, `text` } and answers a `VerifySignatureResult` { `result`, `error` }. It parses the
//! key on every call and runs `EVP_DigestVerify` with no padding option, so it serves RS256/384/512
//! (PKCS#1 v1.5) and ES256/ES384 (with the JWS `r||s` signature re-encoded as DER), never PS* (PSS
//! needs a padding option) or EdDSA (no digest with Ed25519). Keys are converted once, when they load
//! ([`NativeKey`]); whether the host has the function is found once per config by a self-test
//! ([`Signatures::detect`]).

use crate::config::Algorithm;
use crate::gateway::{ForeignError, ForeignFunctions, HostRules};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The foreign function's name in Envoy.
pub const VERIFY_SIGNATURE: &str = "verify_signature";

/// `envoy.source.extensions.common.wasm.VerifySignatureArguments`
/// (`source/extensions/common/wasm/ext/verify_signature.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct VerifySignatureArguments {
    /// `sha256`, `sha384` or `sha512`.
    #[prost(string, tag = "1")]
    pub hash_function: String,
    /// DER SubjectPublicKeyInfo.
    #[prost(bytes = "vec", tag = "2")]
    pub public_key: Vec<u8>,
    /// The signature (DER for ECDSA).
    #[prost(bytes = "vec", tag = "3")]
    pub signature: Vec<u8>,
    /// What was signed (the JWS signing input).
    #[prost(bytes = "vec", tag = "4")]
    pub text: Vec<u8>,
}

/// `envoy.source.extensions.common.wasm.VerifySignatureResult`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VerifySignatureResult {
    /// Whether the signature verified.
    #[prost(bool, tag = "1")]
    pub result: bool,
    /// Why not.
    #[prost(string, tag = "2")]
    pub error: String,
}

/// How a JWS signature is handed to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// As it is (RSA PKCS#1 v1.5).
    Raw,
    /// `r||s` of P-256, re-encoded as a DER `ECDSA-Sig-Value`.
    P256,
    /// `r||s` of P-384, re-encoded as DER.
    P384,
}

/// A key in the form the host's function takes, made once when the key loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeKey {
    /// The arguments' first two fields (`hash_function`, `public_key`) encoded: each call appends
    /// the signature and the text to a copy (the key is not copied and encoded again per token).
    encoded_key: Vec<u8>,
    form: Form,
}

impl NativeKey {
    /// The host form of a key for `alg`, given its DER SubjectPublicKeyInfo; `None` for what the
    /// host cannot verify (PS*, EdDSA, HMAC).
    pub fn new(alg: Algorithm, spki_der: Vec<u8>) -> Option<NativeKey> {
        let (hash, form) = match alg {
            Algorithm::RS256 => ("sha256", Form::Raw),
            Algorithm::RS384 => ("sha384", Form::Raw),
            Algorithm::RS512 => ("sha512", Form::Raw),
            Algorithm::ES256 => ("sha256", Form::P256),
            Algorithm::ES384 => ("sha384", Form::P384),
            _ => return None,
        };
        use prost::Message as _;
        // Empty `bytes` fields are not encoded (proto3): this is fields 1 and 2 alone.
        let encoded_key = VerifySignatureArguments {
            hash_function: hash.to_owned(),
            public_key: spki_der,
            signature: Vec::new(),
            text: Vec::new(),
        }
        .encode_to_vec();
        Some(NativeKey { encoded_key, form })
    }

    /// The encoded arguments that check `signature` (as the JWS carries it) over `text`; `None`
    /// when the signature cannot be one of this key's (an ECDSA `r||s` of the wrong length, `r` or
    /// `s` zero or not below the group order: jwt-simple refuses those before any arithmetic too).
    pub fn arguments(&self, text: &[u8], signature: &[u8]) -> Option<Vec<u8>> {
        match self.form {
            Form::Raw => Some(self.encode(text, signature)),
            Form::P256 => p256::ecdsa::Signature::from_slice(signature)
                .ok()
                .map(|s| self.encode(text, s.to_der().as_bytes())),
            Form::P384 => p384::ecdsa::Signature::from_slice(signature)
                .ok()
                .map(|s| self.encode(text, s.to_der().as_bytes())),
        }
    }

    /// The key's fields, then `signature` (field 3) and `text` (field 4), in one buffer.
    fn encode(&self, text: &[u8], signature: &[u8]) -> Vec<u8> {
        use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
        let fields = [(3, signature), (4, text)];
        let len = fields
            .iter()
            .fold(self.encoded_key.len(), |n, (tag, bytes)| {
                n + key_len(*tag) + encoded_len_varint(bytes.len() as u64) + bytes.len()
            });
        let mut buf = Vec::with_capacity(len);
        buf.extend_from_slice(&self.encoded_key);
        for (tag, bytes) in fields {
            encode_key(tag, WireType::LengthDelimited, &mut buf);
            encode_varint(bytes.len() as u64, &mut buf);
            buf.extend_from_slice(bytes);
        }
        buf
    }
}

/// Who verifies signatures for a config's providers, and how many each path verified.
#[derive(Default)]
pub struct Signatures {
    host: Option<Arc<dyn ForeignFunctions + Send + Sync>>,
    by_host: AtomicU64,
    by_wasm: AtomicU64,
}

/// What the host answered for one signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostAnswer {
    /// The signature verified.
    Valid,
    /// It did not.
    Invalid,
    /// The host could not tell (an error status, an answer that does not decode): verify in Wasm.
    Unavailable,
}

/// A P-256 key, a message and its JWS (`r||s`) signature: the configure-time self-test.
const SELF_TEST_SPKI: &str = "3059301306072a8648ce3d020106082a8648ce3d03010703420004f727019145268d2b0742a41711b0ce23d5cde0f19a0ba59acf1a486a2766f9ddd0ec21bf75dab30b23008ab413193bc92e3acf90bf2c21a20a57dd46e60f95cc";
const SELF_TEST_TEXT: &[u8] = b"warden verify_signature self-test";
const SELF_TEST_SIGNATURE: &str = "3a205fe495d99718dcfdedfd0b9dfc01814b47db670c371ac0de881a03961af6d6c99aaa4f49b52ee7d679f58c3b70adb065161e2d36c6cdfed6547e8f3abc0b";

impl Signatures {
    /// Pure-Rust verification only (Kong, the CLI, a host without the function).
    pub fn wasm() -> Signatures {
        Signatures::default()
    }

    /// The host's `verify_signature` when it has one that answers right, else pure Rust, and why.
    /// A host whose foreign-function call traps (ngx_wasm_module: `HostRules::foreign_functions`)
    /// is never called. The self-test checks a good signature and the same signature over other
    /// text: a function that says yes to both (or no to both) is not used.
    pub fn detect(
        rules: HostRules,
        host: Arc<dyn ForeignFunctions + Send + Sync>,
    ) -> (Signatures, String) {
        if !rules.foreign_functions {
            return (
                Signatures::wasm(),
                "no foreign functions on this gateway".into(),
            );
        }
        let (Ok(spki), Ok(sig)) = (
            hex::decode(SELF_TEST_SPKI),
            hex::decode(SELF_TEST_SIGNATURE),
        ) else {
            return (Signatures::wasm(), "self-test vector unreadable".into());
        };
        let Some(key) = NativeKey::new(Algorithm::ES256, spki) else {
            return (Signatures::wasm(), "self-test key unusable".into());
        };
        let good = ask(host.as_ref(), &key, SELF_TEST_TEXT, &sig);
        let bad = ask(
            host.as_ref(),
            &key,
            b"warden verify_signature self-tesT",
            &sig,
        );
        match (good, bad) {
            (Ok(HostAnswer::Valid), Ok(HostAnswer::Invalid)) => (
                Signatures {
                    host: Some(host),
                    ..Signatures::default()
                },
                format!("host ({VERIFY_SIGNATURE})"),
            ),
            (Err(ForeignError::NotFound), _) => (
                Signatures::wasm(),
                format!("the host has no {VERIFY_SIGNATURE}"),
            ),
            (good, bad) => (
                Signatures::wasm(),
                format!("{VERIFY_SIGNATURE} failed its self-test ({good:?}, {bad:?})"),
            ),
        }
    }

    /// Whether the host verifies (some) signatures.
    pub fn on_host(&self) -> bool {
        self.host.is_some()
    }

    /// The host's verdict on `signature` over `text` with `key`, when the host has the function.
    pub(crate) fn verify(&self, key: &NativeKey, text: &[u8], signature: &[u8]) -> HostAnswer {
        let Some(host) = &self.host else {
            return HostAnswer::Unavailable;
        };
        let answer = ask(host.as_ref(), key, text, signature).unwrap_or(HostAnswer::Unavailable);
        if answer != HostAnswer::Unavailable {
            self.by_host.fetch_add(1, Ordering::Relaxed);
        }
        answer
    }

    /// Counts a signature checked in Wasm.
    pub(crate) fn count_wasm(&self) {
        self.by_wasm.fetch_add(1, Ordering::Relaxed);
    }

    /// Signatures checked so far: (by the host, in Wasm).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.by_host.load(Ordering::Relaxed),
            self.by_wasm.load(Ordering::Relaxed),
        )
    }
}

/// One call of the host's function.
fn ask(
    host: &dyn ForeignFunctions,
    key: &NativeKey,
    text: &[u8],
    signature: &[u8],
) -> Result<HostAnswer, ForeignError> {
    use prost::Message as _;
    let Some(args) = key.arguments(text, signature) else {
        return Ok(HostAnswer::Invalid);
    };
    let answer = host.call(VERIFY_SIGNATURE, &args)?;
    Ok(match VerifySignatureResult::decode(answer.as_slice()) {
        Ok(r) if r.result => HostAnswer::Valid,
        Ok(_) => HostAnswer::Invalid,
        Err(_) => HostAnswer::Unavailable,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::gateway::mock::{EnvoyForeign, NgxForeign, NgxPin};
    use crate::gateway::HostKind;
    use prost::Message as _;

    #[test]
    fn envoy_with_verify_signature_passes_the_self_test() {
        let host = Arc::new(EnvoyForeign::new(true));
        let (s, why) = Signatures::detect(HostRules::of(HostKind::Envoy), host.clone());
        assert!(s.on_host(), "{why}");
        // The good signature and the same signature over other text: two calls.
        assert_eq!(host.calls.lock().unwrap().len(), 2);
    }

    #[test]
    fn an_unknown_foreign_function_answers_not_found_on_envoy_and_pure_rust_is_used() {
        let host = Arc::new(EnvoyForeign::new(false));
        let (s, why) = Signatures::detect(HostRules::of(HostKind::Envoy), host.clone());
        assert!(!s.on_host());
        assert_eq!(why, "the host has no verify_signature");
        assert_eq!(
            host.call("no_such_function", b""),
            Err(ForeignError::NotFound)
        );
    }

    #[test]
    fn ngx_wasm_module_is_never_asked_for_a_foreign_function() {
        // The double panics (ngx_wasm_module traps) if a call goes through.
        for pin in [NgxPin::Kong39, NgxPin::Kong310] {
            let (s, why) =
                Signatures::detect(HostRules::of(HostKind::Kong), Arc::new(NgxForeign(pin)));
            assert!(!s.on_host());
            assert_eq!(why, "no foreign functions on this gateway");
        }
        assert!(!HostRules::of(HostKind::Kong).foreign_functions);
        assert!(HostRules::of(HostKind::Envoy).foreign_functions);
    }

    /// A host that says yes to everything must not be trusted with signatures.
    struct YesMan;
    impl ForeignFunctions for YesMan {
        fn call(&self, _: &str, _: &[u8]) -> Result<Vec<u8>, ForeignError> {
            use prost::Message as _;
            Ok(VerifySignatureResult {
                result: true,
                error: String::new(),
            }
            .encode_to_vec())
        }
    }

    #[test]
    fn a_function_that_accepts_a_wrong_signature_fails_the_self_test() {
        let (s, why) = Signatures::detect(HostRules::of(HostKind::Envoy), Arc::new(YesMan));
        assert!(!s.on_host());
        assert!(why.contains("failed its self-test"), "{why}");
    }

    #[test]
    fn ecdsa_signatures_go_to_the_host_as_der_and_bad_ones_never_leave() {
        let spki = hex::decode(SELF_TEST_SPKI).unwrap();
        let key = NativeKey::new(Algorithm::ES256, spki.clone()).unwrap();
        let sig = hex::decode(SELF_TEST_SIGNATURE).unwrap();
        let encoded = key.arguments(b"x", &sig).unwrap();
        // Sized up front for exactly the fields written (`Vec::with_capacity` gives exactly that).
        assert_eq!(encoded.len(), encoded.capacity());
        let args = VerifySignatureArguments::decode(encoded.as_slice()).unwrap();
        assert_eq!(args.hash_function, "sha256");
        assert_eq!(args.public_key, spki);
        assert_eq!(args.text, b"x");
        // SEQUENCE { INTEGER r, INTEGER s }
        assert_eq!(args.signature[0], 0x30);
        assert!(p256::ecdsa::Signature::from_der(&args.signature).is_ok());
        // Wrong length, zero `s`: refused before any call.
        assert!(key.arguments(b"x", &sig[..63]).is_none());
        let mut zero_s = sig.clone();
        zero_s[32..].fill(0);
        assert!(key.arguments(b"x", &zero_s).is_none());
        // PS256 and EdDSA stay in Wasm.
        assert!(NativeKey::new(Algorithm::PS256, spki.clone()).is_none());
        assert!(NativeKey::new(Algorithm::EdDSA, spki).is_none());
    }
}
