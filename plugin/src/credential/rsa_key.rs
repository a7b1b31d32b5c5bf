//! RSA signatures checked in Wasm: RS256/384/512 (PKCS#1 v1.5) and PS256/384/512 (PSS, the salt as
//! long as the hash, RFC 7518 §3.5), by RustCrypto's `rsa` crate from a key parsed once, when it loads.
//!
//! jwt-simple's own RSA path (through superboring and `rsa` 0.9) rebuilt the key on every call and
//! ran num-bigint-dig's fixed-window exponentiation over all 32 bits of `e`'s word: ~55 Montgomery
//! products of 2048 bits for what `e = 65537` needs in 17, ~800 µs a token under V8 and wasmtime.
//! `rsa` 0.10 keeps the key's Montgomery parameters (computed here, once); its constant-time window
//! over `e`'s 17 bits still took 35 products, so the workspace patches it (`vendor/rsa`) to raise to
//! the public `e` by square-and-multiply: 17 products, 350 to 160 µs a PS256 token under wasmtime.
//! Both RS* and PS* go through that one operation (`rsa::hazmat::rsa_encrypt`), then the crate's own
//! PKCS#1 v1.5 or PSS checks. Only the arithmetic is here: the token rules stay in `jwt.rs`.

use crate::config::Algorithm;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::sha2::{Sha256, Sha384, Sha512};
use rsa::{pkcs1v15, pss};

/// An RSA public key bound to one algorithm, ready to verify.
pub struct RsaKey {
    verifier: Verifier,
    /// The DER SubjectPublicKeyInfo (RS* go to the host's `verify_signature` in this form).
    spki_der: Vec<u8>,
}

enum Verifier {
    Rs256(pkcs1v15::VerifyingKey<Sha256>),
    Rs384(pkcs1v15::VerifyingKey<Sha384>),
    Rs512(pkcs1v15::VerifyingKey<Sha512>),
    Ps256(pss::VerifyingKey<Sha256>),
    Ps384(pss::VerifyingKey<Sha384>),
    Ps512(pss::VerifyingKey<Sha512>),
}

impl RsaKey {
    /// The algorithms an RSA key can serve.
    pub const ALGORITHMS: [Algorithm; 6] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ];

    /// The key for `alg` (an RS* or PS* algorithm) from its DER SubjectPublicKeyInfo. The modulus
    /// and exponent are checked by `rsa` (at most 4096 bits, a usable exponent); the operator's
    /// rules (size floor, ROCA) are `jwk.rs`'s.
    pub fn new(alg: Algorithm, spki_der: Vec<u8>) -> Result<RsaKey, String> {
        let key = rsa::PublicKey::from_public_key_der(&spki_der)
            .map_err(|e| format!("unusable {} key: {e}", alg.name()))?;
        let verifier = match alg {
            Algorithm::RS256 => Verifier::Rs256(pkcs1v15::VerifyingKey::new(key)),
            Algorithm::RS384 => Verifier::Rs384(pkcs1v15::VerifyingKey::new(key)),
            Algorithm::RS512 => Verifier::Rs512(pkcs1v15::VerifyingKey::new(key)),
            Algorithm::PS256 => Verifier::Ps256(pss::VerifyingKey::new(key)),
            Algorithm::PS384 => Verifier::Ps384(pss::VerifyingKey::new(key)),
            Algorithm::PS512 => Verifier::Ps512(pss::VerifyingKey::new(key)),
            other => return Err(format!("{} is not an RSA algorithm", other.name())),
        };
        Ok(RsaKey { verifier, spki_der })
    }

    /// The key as DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// Whether `signature` (as the JWS carries it) is this key's over `text`.
    pub fn verify(&self, text: &[u8], signature: &[u8]) -> bool {
        match &self.verifier {
            Verifier::Rs256(k) => check::<pkcs1v15::Signature, _>(k, text, signature),
            Verifier::Rs384(k) => check::<pkcs1v15::Signature, _>(k, text, signature),
            Verifier::Rs512(k) => check::<pkcs1v15::Signature, _>(k, text, signature),
            Verifier::Ps256(k) => check::<pss::Signature, _>(k, text, signature),
            Verifier::Ps384(k) => check::<pss::Signature, _>(k, text, signature),
            Verifier::Ps512(k) => check::<pss::Signature, _>(k, text, signature),
        }
    }
}

/// `signature` checked by `key` over `text`; a signature that is not one (`S` refuses its bytes,
/// e.g. not exactly the modulus's length) is refused.
fn check<S, K>(key: &K, text: &[u8], signature: &[u8]) -> bool
where
    S: for<'a> TryFrom<&'a [u8]>,
    K: rsa::signature::Verifier<S>,
{
    S::try_from(signature).is_ok_and(|s| key.verify(text, &s).is_ok())
}
