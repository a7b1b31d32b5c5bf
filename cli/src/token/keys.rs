//! Signing keys as private JWKs: generated, written and loaded with jwt-simple.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::{
    ECDSAP256KeyPairLike, ECDSAP384KeyPairLike, ES256KeyPair, ES384KeyPair, Ed25519KeyPair,
    EdDSAKeyPairLike, HS256Key, HS384Key, HS512Key, HeaderOptions, JWTClaims, MACLike,
    PS256KeyPair, PS384KeyPair, PS512KeyPair, RS256KeyPair, RS384KeyPair, RS512KeyPair,
    RSAKeyPairLike,
};
use serde_json::{Map, Value};
use warden::config::Algorithm;

/// RSA modulus sizes jwt-simple generates.
pub const RSA_BITS: [usize; 3] = [2048, 3072, 4096];

/// A freshly generated key: the private JWK and the public JWK to publish in a JWKS.
pub struct Generated {
    /// The private JWK (for HMAC: the `oct` key itself).
    pub private: Value,
    /// The public JWK (for HMAC: the same `oct` key, which is the shared secret).
    pub public: Value,
}

fn parse_jwk(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("jwt-simple exported an unreadable JWK: {e}"))
}

/// Generates a key for `alg`, named `kid`. `rsa_bits` applies to RSA algorithms only.
pub fn generate(alg: Algorithm, kid: &str, rsa_bits: usize) -> Result<Generated, String> {
    macro_rules! pair {
        ($key:expr) => {{
            let key = $key.with_key_id(kid);
            (key.to_jwk(), key.public_key().to_jwk())
        }};
    }
    let rsa_err = |e: jwt_simple::Error| format!("RSA key generation failed: {e}");
    let (private, public) = match alg {
        Algorithm::RS256 => pair!(RS256KeyPair::generate(rsa_bits).map_err(rsa_err)?),
        Algorithm::RS384 => pair!(RS384KeyPair::generate(rsa_bits).map_err(rsa_err)?),
        Algorithm::RS512 => pair!(RS512KeyPair::generate(rsa_bits).map_err(rsa_err)?),
        Algorithm::PS256 => pair!(PS256KeyPair::generate(rsa_bits).map_err(rsa_err)?),
        Algorithm::PS384 => pair!(PS384KeyPair::generate(rsa_bits).map_err(rsa_err)?),
        Algorithm::PS512 => pair!(PS512KeyPair::generate(rsa_bits).map_err(rsa_err)?),
        Algorithm::ES256 => pair!(ES256KeyPair::generate()),
        Algorithm::ES384 => pair!(ES384KeyPair::generate()),
        Algorithm::EdDSA => pair!(Ed25519KeyPair::generate()),
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            let oct = oct_jwk(alg, kid, &hmac_secret(alg));
            return Ok(Generated {
                private: oct.clone(),
                public: oct,
            });
        }
    };
    Ok(Generated {
        private: parse_jwk(&private)?,
        public: parse_jwk(&public)?,
    })
}

/// Random HMAC key material of the hash's size (RFC 7518 §3.2): 32, 48 or 64 bytes.
fn hmac_secret(alg: Algorithm) -> Vec<u8> {
    let size = match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    };
    // jwt-simple's generator draws 32 bytes from the OS-seeded CSPRNG per key.
    let mut secret = Vec::with_capacity(64);
    while secret.len() < size {
        secret.extend_from_slice(&HS256Key::generate().to_bytes());
    }
    secret.truncate(size);
    secret
}

fn oct_jwk(alg: Algorithm, kid: &str, secret: &[u8]) -> Value {
    serde_json::json!({
        "kty": "oct",
        "kid": kid,
        "alg": alg.name(),
        "use": "sig",
        "k": URL_SAFE_NO_PAD.encode(secret),
    })
}

/// A key that signs tokens for one algorithm.
pub enum SigningKey {
    Rs256(RS256KeyPair),
    Rs384(RS384KeyPair),
    Rs512(RS512KeyPair),
    Ps256(PS256KeyPair),
    Ps384(PS384KeyPair),
    Ps512(PS512KeyPair),
    Es256(ES256KeyPair),
    Es384(ES384KeyPair),
    EdDsa(Ed25519KeyPair),
    Hs256(HS256Key),
    Hs384(HS384Key),
    Hs512(HS512Key),
}

/// The algorithm a private JWK is for, from its `alg` or, failing that, its key type.
pub fn jwk_algorithm(jwk: &Map<String, Value>) -> Result<Algorithm, String> {
    if let Some(alg) = jwk.get("alg") {
        let name = alg.as_str().ok_or("the key's `alg` is not a string")?;
        return Algorithm::from_name(name)
            .ok_or_else(|| format!("the key's `alg` {name:?} is not a supported algorithm"));
    }
    let member = |name: &str| jwk.get(name).and_then(Value::as_str);
    match (member("kty"), member("crv")) {
        (Some("EC"), Some("P-256")) => Ok(Algorithm::ES256),
        (Some("EC"), Some("P-384")) => Ok(Algorithm::ES384),
        (Some("OKP"), Some("Ed25519")) => Ok(Algorithm::EdDSA),
        _ => Err("the key has no `alg`: say which algorithm with --alg".to_owned()),
    }
}

/// Loads a private JWK for `alg`, with `kid` as the key id (`None`: no `kid` header).
///
/// The JWK's own `alg` and `kid` are replaced by the ones asked for, so that one RSA key can sign
/// RS256 and PS256 tokens, or a token can carry another `kid` than the key's.
pub fn load(
    jwk: &Map<String, Value>,
    alg: Algorithm,
    kid: Option<&str>,
) -> Result<SigningKey, String> {
    let mut jwk = jwk.clone();
    jwk.insert("alg".into(), Value::String(alg.name().into()));
    match kid {
        Some(kid) => jwk.insert("kid".into(), Value::String(kid.into())),
        None => jwk.remove("kid"),
    };
    let text = serde_json::to_string(&jwk).map_err(|e| format!("unreadable key: {e}"))?;
    let err = |e: jwt_simple::Error| format!("not a usable {} private key: {e}", alg.name());
    Ok(match alg {
        Algorithm::RS256 => SigningKey::Rs256(RS256KeyPair::from_jwk(&text).map_err(err)?),
        Algorithm::RS384 => SigningKey::Rs384(RS384KeyPair::from_jwk(&text).map_err(err)?),
        Algorithm::RS512 => SigningKey::Rs512(RS512KeyPair::from_jwk(&text).map_err(err)?),
        Algorithm::PS256 => SigningKey::Ps256(PS256KeyPair::from_jwk(&text).map_err(err)?),
        Algorithm::PS384 => SigningKey::Ps384(PS384KeyPair::from_jwk(&text).map_err(err)?),
        Algorithm::PS512 => SigningKey::Ps512(PS512KeyPair::from_jwk(&text).map_err(err)?),
        Algorithm::ES256 => SigningKey::Es256(ES256KeyPair::from_jwk(&text).map_err(err)?),
        Algorithm::ES384 => SigningKey::Es384(ES384KeyPair::from_jwk(&text).map_err(err)?),
        Algorithm::EdDSA => SigningKey::EdDsa(Ed25519KeyPair::from_jwk(&text).map_err(err)?),
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => load_hmac(&jwk, alg, kid)?,
    })
}

fn load_hmac(
    jwk: &Map<String, Value>,
    alg: Algorithm,
    kid: Option<&str>,
) -> Result<SigningKey, String> {
    if jwk.get("kty").and_then(Value::as_str) != Some("oct") {
        return Err(format!("{} needs an `oct` key", alg.name()));
    }
    let k = jwk
        .get("k")
        .and_then(Value::as_str)
        .ok_or("the `oct` key has no `k`")?;
    let secret = URL_SAFE_NO_PAD
        .decode(k)
        .map_err(|e| format!("the key's `k` is not base64url: {e}"))?;
    macro_rules! hmac {
        ($variant:ident, $ty:ty) => {{
            let key = <$ty>::from_bytes(&secret);
            SigningKey::$variant(match kid {
                Some(kid) => key.with_key_id(kid),
                None => key,
            })
        }};
    }
    Ok(match alg {
        Algorithm::HS384 => hmac!(Hs384, HS384Key),
        Algorithm::HS512 => hmac!(Hs512, HS512Key),
        _ => hmac!(Hs256, HS256Key),
    })
}

impl SigningKey {
    /// Signs `claims` into a compact JWS whose header carries `typ`.
    pub fn sign(&self, claims: JWTClaims<Map<String, Value>>, typ: &str) -> Result<String, String> {
        let opts = HeaderOptions {
            signature_type: Some(typ.to_owned()),
            ..HeaderOptions::default()
        };
        let signed = match self {
            SigningKey::Rs256(k) => k.sign_with_options(claims, &opts),
            SigningKey::Rs384(k) => k.sign_with_options(claims, &opts),
            SigningKey::Rs512(k) => k.sign_with_options(claims, &opts),
            SigningKey::Ps256(k) => k.sign_with_options(claims, &opts),
            SigningKey::Ps384(k) => k.sign_with_options(claims, &opts),
            SigningKey::Ps512(k) => k.sign_with_options(claims, &opts),
            SigningKey::Es256(k) => k.sign_with_options(claims, &opts),
            SigningKey::Es384(k) => k.sign_with_options(claims, &opts),
            SigningKey::EdDsa(k) => k.sign_with_options(claims, &opts),
            SigningKey::Hs256(k) => k.authenticate_with_options(claims, &opts),
            SigningKey::Hs384(k) => k.authenticate_with_options(claims, &opts),
            SigningKey::Hs512(k) => k.authenticate_with_options(claims, &opts),
        };
        signed.map_err(|e| format!("signing failed: {e}"))
    }
}
