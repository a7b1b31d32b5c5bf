//! Static API keys, known only by their SHA-256 digests and compared in constant time.

use super::{CredentialKind, Identity, TokenError};
use crate::config::{ApiKeysConfig, ConfigError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The configured keys.
pub struct ApiKeyStore {
    /// Lower-case name of the header that carries a key.
    pub header: String,
    keys: Vec<ApiKey>,
}

struct ApiKey {
    digest: [u8; 32],
    identity: Identity,
}

impl ApiKeyStore {
    /// Compiles the `api_keys` section.
    pub fn compile(cfg: &ApiKeysConfig) -> Result<ApiKeyStore, ConfigError> {
        let header = cfg.header.to_ascii_lowercase();
        if header.is_empty()
            || !header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::new(
                "api_keys.header",
                "not a valid header name",
            ));
        }
        if header == "authorization" || header.starts_with("x-auth-") || header.starts_with(':') {
            return Err(ConfigError::new("api_keys.header", "reserved header name"));
        }
        let mut keys: Vec<ApiKey> = Vec::with_capacity(cfg.keys.len());
        for (i, k) in cfg.keys.iter().enumerate() {
            let at = format!("api_keys.keys[{i}]");
            let mut digest = [0u8; 32];
            hex::decode_to_slice(&k.sha256, &mut digest).map_err(|_| {
                ConfigError::new(
                    format!("{at}.sha256"),
                    "must be 64 hex digits (SHA-256 of the key)",
                )
            })?;
            if k.id.is_empty() {
                return Err(ConfigError::new(format!("{at}.id"), "must not be empty"));
            }
            if k.subject.is_empty() {
                return Err(ConfigError::new(
                    format!("{at}.subject"),
                    "must not be empty",
                ));
            }
            if k.tenant.as_deref() == Some("") {
                return Err(ConfigError::new(
                    format!("{at}.tenant"),
                    "must not be empty (leave it out for no tenant)",
                ));
            }
            if keys
                .iter()
                .any(|o| o.digest == digest || o.identity.client.as_deref() == Some(&k.id))
            {
                return Err(ConfigError::new(at, "duplicate key id or digest"));
            }
            keys.push(ApiKey {
                digest,
                identity: Identity {
                    credential: CredentialKind::ApiKey,
                    subject: k.subject.clone(),
                    client: Some(k.id.clone()),
                    tenant: k.tenant.clone(),
                    scopes: k.scopes.clone(),
                    provider: "api_keys".into(),
                    token_id: None,
                    kind: super::IdentityKind::Service,
                    actors: Vec::new(),
                    claims: None,
                },
            });
        }
        Ok(ApiKeyStore { header, keys })
    }

    /// The identity of a presented key. Every configured digest is compared, in constant time.
    pub fn authenticate(&self, presented: &str) -> Result<Identity, TokenError> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found: Option<&ApiKey> = None;
        for key in &self.keys {
            if bool::from(key.digest.ct_eq(&digest)) {
                found = Some(key);
            }
        }
        found
            .map(|k| k.identity.clone())
            .ok_or(TokenError::UnknownApiKey)
    }
}
