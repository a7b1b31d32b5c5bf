//! Ed25519 signatures (EdDSA) checked in Wasm, by ed25519-dalek from a key decoded once, when it loads.
//!
//! jwt-simple verifies EdDSA with ed25519-compact, whose field arithmetic multiplies 64-bit limbs
//! into 128-bit products, which wasm32 has no instruction for. curve25519-dalek picks its 32-bit
//! backend there and uses a precomputed table of the base point's odd multiples: a first-seen EdDSA
//! token costs ~285 µs under wasmtime with the former and ~90 µs with the latter (5.6 and 2.1
//! million wasm operators). The check is
//! `verify_strict` (RFC 8032 §5.1.7 without the cofactor, non-canonical `S` and small-order `A` or
//! `R` refused), at least as strict as ed25519-compact's. Only the arithmetic is here: the token
//! rules stay in `jwt.rs`.

/// An Ed25519 public key, decoded and ready to verify.
pub struct Ed25519Key(ed25519_dalek::VerifyingKey);

impl Ed25519Key {
    /// The key from its 32 bytes (RFC 8037 `x`); a string that is not a point on the curve is refused.
    pub fn new(bytes: &[u8]) -> Result<Ed25519Key, String> {
        let bytes: &[u8; 32] = bytes
            .try_into()
            .map_err(|_| "unusable EdDSA key: not 32 bytes".to_owned())?;
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map(Ed25519Key)
            .map_err(|_| "unusable EdDSA key: not a point on Ed25519".to_owned())
    }

    /// Whether `signature` (as the JWS carries it, 64 bytes) is this key's over `text`.
    pub fn verify(&self, text: &[u8], signature: &[u8]) -> bool {
        ed25519_dalek::Signature::from_slice(signature)
            .is_ok_and(|s| self.0.verify_strict(text, &s).is_ok())
    }
}
