//! Config of a provider's remote parts: where its keys come from (inline, `jwks_uri`, OIDC discovery),
//! how often they are refreshed, what a request gets while the IdP cannot be reached, and token
//! introspection (RFC 7662) for opaque tokens.

use crate::outbound::ServiceConfig;
use schemars::JsonSchema;
use serde::Deserialize;

/// What a request gets while its provider's keys (or introspection) are not available:
/// before the first JWKS arrived, or while the introspection endpoint cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnavailableConfig {
    /// Status of the local reply (5xx).
    #[serde(default = "default_unavailable_status")]
    pub status: u16,
    /// `Retry-After` of the reply, seconds.
    #[serde(default = "default_retry_after_s")]
    pub retry_after_s: u64,
}

impl Default for UnavailableConfig {
    fn default() -> Self {
        UnavailableConfig {
            status: default_unavailable_status(),
            retry_after_s: default_retry_after_s(),
        }
    }
}

fn default_unavailable_status() -> u16 {
    503
}
fn default_retry_after_s() -> u64 {
    5
}

/// Token introspection (RFC 7662) for opaque (non-JWT) access tokens.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionConfig {
    /// The introspection endpoint.
    pub endpoint: ServiceConfig,
    /// Warden's client id at the IdP (client_secret_basic).
    pub client_id: String,
    /// Warden's client secret at the IdP.
    pub client_secret: String,
    /// How long an inactive answer is remembered, seconds (a revoked token stays refused that long
    /// without asking the IdP again).
    #[serde(default = "default_inactive_cache_s")]
    pub inactive_cache_s: u64,
    /// How long an active answer without `exp` is remembered, seconds.
    #[serde(default = "default_no_exp_cache_s")]
    pub no_exp_cache_s: u64,
}

fn default_inactive_cache_s() -> u64 {
    30
}
fn default_no_exp_cache_s() -> u64 {
    60
}

/// Defaults of the remote-JWKS schedule.
pub fn default_jwks_refresh_s() -> u64 {
    300
}
/// Default smallest interval between two fetches caused by an unknown `kid`.
pub fn default_jwks_min_refetch_s() -> u64 {
    30
}
