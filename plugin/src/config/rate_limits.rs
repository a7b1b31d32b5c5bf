//! The `rate_limits` section: token buckets per identity, shared by every worker.

use schemars::JsonSchema;
use serde::Deserialize;

/// Identity-bound rate limits.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// Buckets per policy in shared data; identities whose key hashes to the same slot share a bucket.
    #[serde(default = "default_slots")]
    pub slots: u32,
    /// Admit requests when the shared store fails (default: refuse them with 429).
    #[serde(default)]
    pub fail_open: bool,
    /// The policies; a request must be admitted by every one that applies to it.
    pub policies: Vec<RateLimitPolicyConfig>,
}

/// One token-bucket policy.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitPolicyConfig {
    /// Name, sent in the `RateLimit-Policy` and `RateLimit` headers (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// Whose bucket: `agent`, `subject`, `client` or `tenant`.
    pub key: RateLimitKey,
    /// Bucket size: requests allowed in a burst, refilled evenly over `window_s`.
    pub limit: u64,
    /// Seconds to refill the whole bucket.
    pub window_s: u64,
    /// Route names the policy applies to; empty: every authenticated request.
    #[serde(default)]
    pub routes: Vec<String>,
}

/// What a bucket belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitKey {
    /// The acting agent: the current actor of a delegation, else a subject of kind `agent`.
    Agent,
    /// The token's subject (or the API key's).
    Subject,
    /// The OAuth client (or API key id).
    Client,
    /// The credential's tenant.
    Tenant,
}

fn default_slots() -> u32 {
    4096
}
