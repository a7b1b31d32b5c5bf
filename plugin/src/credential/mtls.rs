//! Certificate-bound access tokens (RFC 8705 §3): a token whose `cnf` carries `x5t#S256` is valid only
//! on a connection whose client certificate has that SHA-256 thumbprint.
//!
//! Envoy reports the peer certificate's digest as the property `connection.sha256_peer_certificate_digest`
//! (lower-case hex of the SHA-256 of the DER certificate). Kong does not expose it, so there such tokens
//! are refused: the binding is never skipped.

use super::{Claims, TokenError};
use base64::Engine as _;
use subtle::ConstantTimeEq;

/// The `cnf.x5t#S256` a token is bound to, if any.
pub fn bound_x5t(c: &Claims) -> Option<&str> {
    c.extra.get("cnf")?.get("x5t#S256")?.as_str()
}

/// Checks the binding: unbound tokens pass; a bound one needs the peer certificate with that digest.
/// `peer_sha256_hex` is the host's digest of the client certificate (none: no client certificate, or a
/// host that cannot tell).
pub fn check(c: &Claims, peer_sha256_hex: Option<&str>) -> Result<(), TokenError> {
    let Some(want) = bound_x5t(c) else {
        return Ok(());
    };
    let mut digest = [0u8; 32];
    let peer = peer_sha256_hex.ok_or(TokenError::Binding)?;
    hex::decode_to_slice(peer.trim(), &mut digest).map_err(|_| TokenError::Binding)?;
    let have = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    if bool::from(have.as_bytes().ct_eq(want.as_bytes())) {
        Ok(())
    } else {
        Err(TokenError::Binding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sha2::{Digest, Sha256};

    fn claims(cnf: serde_json::Value) -> Claims {
        Claims {
            issuer: "i".into(),
            subject: "s".into(),
            audiences: vec![],
            exp: 0,
            nbf: None,
            iat: None,
            jti: None,
            client: None,
            tenant: None,
            scopes: vec![],
            provider: "p".into(),
            extra: json!({ "cnf": cnf }).as_object().unwrap().clone(),
        }
    }

    #[test]
    fn bound_token_needs_the_matching_certificate() {
        let der = b"a client certificate, DER";
        let hex_digest = hex::encode(Sha256::digest(der));
        let x5t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(der));
        let c = claims(json!({ "x5t#S256": x5t }));
        assert_eq!(check(&c, Some(&hex_digest)), Ok(()));
        assert_eq!(check(&c, Some(&hex_digest.to_uppercase())), Ok(()));
        assert_eq!(check(&c, None), Err(TokenError::Binding));
        let other = hex::encode(Sha256::digest(b"another"));
        assert_eq!(check(&c, Some(&other)), Err(TokenError::Binding));
        assert_eq!(check(&c, Some("zz")), Err(TokenError::Binding));
        // Unbound tokens do not care.
        assert_eq!(check(&claims(json!({})), None), Ok(()));
    }
}
