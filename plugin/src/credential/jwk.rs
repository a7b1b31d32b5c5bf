//! Public keys from JWKs, each bound to the one algorithm it may verify.
//!
//! jwt-simple parses the key material (it refuses a JWK whose `kty`, `crv`, `alg` or `use` does not
//! fit the key type); this module decides which algorithms a key may serve (RFC 8725 §3.1). RSA keys
//! then verify with `rsa_key.rs`, Ed25519 keys with `ed25519_key.rs`, the others with jwt-simple.

use super::ed25519_key::Ed25519Key;
use super::jwt::{self, Expect, Parsed};
use super::native::NativeKey;
use super::rsa_key::RsaKey;
use super::TokenError;
use crate::config::Algorithm;
use base64::Engine as _;
use jwt_simple::prelude::*;
use serde_json::Value;

/// A key usable for exactly one algorithm.
pub struct VerifyingKey {
    /// The JWK's `kid`, if any.
    pub kid: Option<String>,
    /// The one algorithm this key verifies.
    pub alg: Algorithm,
    key: KeyMaterial,
    /// The key as the host's `verify_signature` takes it (RS*, ES*), made once at load.
    native: Option<NativeKey>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

enum KeyMaterial {
    /// RS* and PS*, bound to the algorithm by the key itself.
    Rsa(RsaKey),
    Es256(ES256PublicKey),
    Es384(ES384PublicKey),
    /// EdDSA, verified by `ed25519_key.rs`.
    EdDsa(Ed25519Key),
    Hs256(HS256Key),
    Hs384(HS384Key),
    Hs512(HS512Key),
}

/// Smallest HMAC key accepted for HS256, in bytes.
pub const MIN_HMAC_KEY_BYTES: usize = 32;

/// Smallest HMAC key for `alg`, in bytes: the hash's output size (RFC 7518 §3.2), so 32, 48 or 64.
pub fn min_hmac_key_bytes(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => MIN_HMAC_KEY_BYTES,
    }
}

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

impl VerifyingKey {
    /// The key in the form the host's `verify_signature` takes, if the host can verify its algorithm.
    pub(crate) fn native(&self) -> Option<&NativeKey> {
        self.native.as_ref()
    }

    /// Verifies the token in Wasm (signature and jwt-simple's own claim checks) and returns its
    /// claims: RSA and EdDSA through `rsa_key.rs` and `ed25519_key.rs` in jwt-simple's steps
    /// ([`jwt::verify_detached`]), the rest by jwt-simple itself.
    pub(super) fn verify(
        &self,
        parsed: &Parsed<'_>,
        expect: &Expect<'_>,
    ) -> Result<JWTClaims<serde_json::Map<String, Value>>, TokenError> {
        let token = parsed.token();
        let o = || Some(expect.options());
        let verified = match &self.key {
            KeyMaterial::Rsa(k) => {
                return in_steps(parsed, expect, |text, sig| k.verify(text, sig))
            }
            KeyMaterial::EdDsa(k) => {
                return in_steps(parsed, expect, |text, sig| k.verify(text, sig))
            }
            KeyMaterial::Es256(k) => k.verify_token(token, o()),
            KeyMaterial::Es384(k) => k.verify_token(token, o()),
            KeyMaterial::Hs256(k) => k.verify_token(token, o()),
            KeyMaterial::Hs384(k) => k.verify_token(token, o()),
            KeyMaterial::Hs512(k) => k.verify_token(token, o()),
        };
        verified.map_err(|e| jwt::classify(&e))
    }
}

/// A token whose signature `check` verifies (RSA, EdDSA), in jwt-simple's steps
/// ([`jwt::verify_detached`]): its claims, or why not.
fn in_steps(
    parsed: &Parsed<'_>,
    expect: &Expect<'_>,
    check: impl Fn(&[u8], &[u8]) -> bool,
) -> Result<JWTClaims<serde_json::Map<String, Value>>, TokenError> {
    jwt::verify_detached(parsed, expect, |text, sig| Some(check(text, sig)))
        .unwrap_or(Err(TokenError::Signature))
}

impl VerifyingKey {
    /// Verifies a detached JWS signature over `signing_input` (`header.payload`), for a JWS whose header
    /// jwt-simple cannot parse (a DPoP proof carries its key as a `jwk` object). ES256 and ES384 with
    /// the curve crates jwt-simple itself verifies with; EdDSA as tokens are (`ed25519_key.rs`).
    pub(crate) fn verify_detached(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier as _;
        match &self.key {
            KeyMaterial::Es256(k) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| k.public_key().as_ref().verify(signing_input, &s).is_ok()),
            KeyMaterial::Es384(k) => p384::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| k.public_key().as_ref().verify(signing_input, &s).is_ok()),
            KeyMaterial::EdDsa(k) => k.verify(signing_input, signature),
            _ => false,
        }
    }
}

/// What became of one JWK of a JWKS.
pub enum Loaded {
    /// Usable keys (one per algorithm the JWK may serve).
    Keys(Vec<VerifyingKey>),
    /// An encryption key (`use: enc`) or an algorithm outside the allow-list: not for us.
    Skipped(&'static str),
}

/// Loads one JWK, restricted to `allowed` algorithms. Errors are for the operator to read.
pub fn load(jwk: &Value, allowed: &[Algorithm]) -> Result<Loaded, String> {
    let obj = jwk.as_object().ok_or("a JWK must be a JSON object")?;
    let str_member = |name: &str| -> Result<Option<&str>, String> {
        match obj.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("`{name}` must be a string")),
        }
    };
    if str_member("use")? == Some("enc") {
        return Ok(Loaded::Skipped("encryption key (use=enc)"));
    }
    for private in ["d", "p", "q", "dp", "dq", "qi", "oth"] {
        if obj.contains_key(private) {
            return Err(format!(
                "JWK carries private member `{private}`: configure public keys only"
            ));
        }
    }
    let kid = str_member("kid")?.map(str::to_owned);
    let kty = str_member("kty")?.ok_or("missing `kty`")?;
    let crv = str_member("crv")?;
    let jwk_alg = match str_member("alg")? {
        Some(name) => Some(
            Algorithm::from_name(name)
                .ok_or_else(|| format!("unsupported or forbidden `alg` {name:?}"))?,
        ),
        None => None,
    };
    // The algorithms this key type can serve at all.
    let family: &[Algorithm] = match (kty, crv) {
        ("RSA", _) => &RsaKey::ALGORITHMS,
        ("EC", Some("P-256")) => &[Algorithm::ES256],
        ("EC", Some("P-384")) => &[Algorithm::ES384],
        ("OKP", Some("Ed25519")) => &[Algorithm::EdDSA],
        ("oct", _) => &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
        ("EC", c) | ("OKP", c) => return Err(format!("unsupported curve {c:?}")),
        (other, _) => return Err(format!("unsupported `kty` {other:?}")),
    };
    // A JWK's `alg` binds the key to that one algorithm (RFC 8725 §3.1).
    let candidates: Vec<Algorithm> = match jwk_alg {
        Some(a) if family.contains(&a) => vec![a],
        Some(a) => return Err(format!("`alg` {} does not fit a `{kty}` key", a.name())),
        None => family.to_vec(),
    };
    let mut algs: Vec<Algorithm> = candidates
        .into_iter()
        .filter(|a| allowed.contains(a))
        .collect();
    if algs.is_empty() {
        return Ok(Loaded::Skipped("no allowed algorithm fits this key"));
    }
    // An `oct` key without `alg` serves only the HMACs its length is strong enough for.
    if kty == "oct" && jwk_alg.is_none() {
        let len = hmac_secret(obj)?.len();
        let strong: Vec<Algorithm> = algs
            .iter()
            .copied()
            .filter(|a| len >= min_hmac_key_bytes(*a))
            .collect();
        if !strong.is_empty() {
            algs = strong;
        }
    }
    let mut keys = Vec::with_capacity(algs.len());
    for alg in algs {
        let key = material(obj, alg)?;
        let native = native_form(&key, alg);
        keys.push(VerifyingKey {
            kid: kid.clone(),
            alg,
            key,
            native,
        });
    }
    Ok(Loaded::Keys(keys))
}

/// Builds the key for one algorithm. jwt-simple's JWK import checks `kty`/`crv`/`alg`/`use`.
fn material(obj: &serde_json::Map<String, Value>, alg: Algorithm) -> Result<KeyMaterial, String> {
    if let Some(n) = rsa_modulus(obj) {
        let bits = modulus_bits(&n).unwrap_or(0);
        if bits < MIN_RSA_BITS {
            return Err(format!(
                "RSA modulus of {bits} bits; at least {MIN_RSA_BITS} required"
            ));
        }
        if roca_fingerprint(&n) {
            return Err(
                "RSA key has the ROCA fingerprint (CVE-2017-15361): it is factorable".into(),
            );
        }
    }
    // jwt-simple refuses a JWK whose `alg` names another algorithm than the type it loads into;
    // an RSA key without `alg` may serve several, so present it with the `alg` of the type it is
    // read as. The RSA material is the same for all six: jwt-simple reads it (its JWK checks) as
    // an RS256 key, and `rsa_key.rs` binds it to `alg`.
    let read_as = if RsaKey::ALGORITHMS.contains(&alg) {
        Algorithm::RS256
    } else {
        alg
    };
    let mut bound = obj.clone();
    bound.insert("alg".into(), Value::String(read_as.name().into()));
    let text = Value::Object(bound).to_string();
    let err = |e: jwt_simple::Error| format!("unusable {} key: {e}", alg.name());
    let key = match alg {
        Algorithm::ES256 => KeyMaterial::Es256(ES256PublicKey::from_jwk(&text).map_err(err)?),
        Algorithm::ES384 => KeyMaterial::Es384(ES384PublicKey::from_jwk(&text).map_err(err)?),
        Algorithm::EdDSA => KeyMaterial::EdDsa(Ed25519Key::new(
            &Ed25519PublicKey::from_jwk(&text).map_err(err)?.to_bytes(),
        )?),
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => return hmac(obj, alg),
        // RS* and PS* (`RsaKey::new` refuses anything else).
        _ => {
            let der = RS256PublicKey::from_jwk(&text)
                .and_then(|k| k.public_key().to_der())
                .map_err(err)?;
            KeyMaterial::Rsa(RsaKey::new(alg, der)?)
        }
    };
    Ok(key)
}

/// The DER SubjectPublicKeyInfo of an RSA or EC key, for the host's `verify_signature`; `None` for
/// the algorithms it cannot verify (then jwt-simple does, as everywhere else).
fn native_form(key: &KeyMaterial, alg: Algorithm) -> Option<NativeKey> {
    let der = match key {
        KeyMaterial::Rsa(k) => Ok(k.spki_der().to_vec()),
        KeyMaterial::Es256(k) => k.public_key().to_der(),
        KeyMaterial::Es384(k) => k.public_key().to_der(),
        _ => return None,
    };
    NativeKey::new(alg, der.ok()?)
}

/// The RSA modulus `n`, big-endian, when the JWK has a decodable one (jwt-simple checks the rest).
fn rsa_modulus(obj: &serde_json::Map<String, Value>) -> Option<Vec<u8>> {
    let n = obj.get("n")?.as_str()?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(n)
        .ok()
}

fn modulus_bits(n: &[u8]) -> Option<usize> {
    let first = n.iter().position(|b| *b != 0)?;
    let rest = n.get(first..)?;
    let lead = rest.first()?;
    Some((rest.len() - 1) * 8 + (8 - lead.leading_zeros() as usize))
}

/// The ROCA fingerprint (Nemec et al., CCS 2017; CVE-2017-15361): moduli made by the affected
/// Infineon library are, modulo each of these small primes, a power of 65537. A random modulus
/// passes all 38 tests with negligible probability; a fingerprinted one is factorable.
fn roca_fingerprint(n: &[u8]) -> bool {
    const PRIMES: [u32; 38] = [
        3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89,
        97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
    ];
    PRIMES.iter().all(|&p| {
        // n mod p, by Horner's rule over the bytes (every value stays below 256 * 167).
        let residue = n
            .iter()
            .fold(0u32, |acc, &b| (acc * 256 + u32::from(b)) % p);
        // Walk the subgroup generated by 65537 mod p (p is prime, so the walk returns to 1).
        let g = 65537 % p;
        let mut x = 1u32;
        loop {
            if x == residue {
                return true;
            }
            x = x * g % p;
            if x == 1 {
                return false;
            }
        }
    })
}

fn hmac_secret(obj: &serde_json::Map<String, Value>) -> Result<Vec<u8>, String> {
    let k = obj
        .get("k")
        .and_then(Value::as_str)
        .ok_or("an `oct` key needs `k`")?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(k)
        .map_err(|e| format!("`k` is not base64url: {e}"))
}

fn hmac(obj: &serde_json::Map<String, Value>, alg: Algorithm) -> Result<KeyMaterial, String> {
    // jwt-simple's JWK import, which checks `key_ops` for the other key types, is not used here.
    if let Some(ops) = obj.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verifies {
            return Err("`key_ops` does not include \"verify\"".into());
        }
    }
    let raw = hmac_secret(obj)?;
    let min = min_hmac_key_bytes(alg);
    if raw.len() < min {
        return Err(format!(
            "{} key of {} bytes; at least {min} (the hash size) required",
            alg.name(),
            raw.len()
        ));
    }
    Ok(match alg {
        Algorithm::HS384 => KeyMaterial::Hs384(HS384Key::from_bytes(&raw)),
        Algorithm::HS512 => KeyMaterial::Hs512(HS512Key::from_bytes(&raw)),
        _ => KeyMaterial::Hs256(HS256Key::from_bytes(&raw)),
    })
}
