//! The `revocation` section: the kill switch. Static deny lists, a revocation feed fetched on a timer,
//! and automatic quarantine of tokens that keep scoring at the block level.

use crate::outbound::ServiceConfig;
use schemars::JsonSchema;
use serde::Deserialize;

/// Revocation and kill switch.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevocationConfig {
    /// Identities refused outright.
    #[serde(default)]
    pub deny: DenyListConfig,
    /// A deny list served over HTTP, fetched by one worker per interval for all.
    #[serde(default)]
    pub feed: Option<FeedConfig>,
    /// Automatic quarantine of tokens the risk stage blocks repeatedly.
    #[serde(default)]
    pub quarantine: Option<QuarantineConfig>,
}

/// Deny lists, exact values. The feed serves the same document.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DenyListConfig {
    /// Token ids (`jti`).
    #[serde(default)]
    pub jti: Vec<String>,
    /// Subjects (`sub`, or an API key's subject).
    #[serde(default)]
    pub sub: Vec<String>,
    /// OAuth clients (or API key ids).
    #[serde(default)]
    pub client_id: Vec<String>,
    /// Agents: refused as the subject (of kind agent) or anywhere in a delegation chain.
    #[serde(default)]
    pub agent: Vec<String>,
}

/// The revocation feed.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// Where the feed is (Envoy: a cluster; Kong: host:port).
    pub service: ServiceConfig,
    /// Seconds between fetches; a deny published by the feed applies within this time.
    #[serde(default = "default_interval_s")]
    pub interval_s: u64,
    /// Most entries kept (beyond it the fetch is refused and the previous list stays).
    #[serde(default = "default_max_entries")]
    pub max_entries: usize,
}

/// Quarantine of tokens that keep scoring at or above the block level.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuarantineConfig {
    /// Block-level scores within `window_s` that quarantine the token.
    #[serde(default = "default_threshold")]
    pub threshold: u32,
    /// Seconds in which the block-level scores count.
    #[serde(default = "default_window_s")]
    pub window_s: u64,
    /// Seconds a quarantined token stays refused.
    #[serde(default = "default_ttl_s")]
    pub ttl_s: u64,
    /// Slots in shared data (tokens hashing to one slot share it).
    #[serde(default = "default_slots")]
    pub slots: u32,
}

fn default_interval_s() -> u64 {
    30
}
fn default_max_entries() -> usize {
    8000
}
fn default_threshold() -> u32 {
    3
}
fn default_window_s() -> u64 {
    300
}
fn default_ttl_s() -> u64 {
    3600
}
fn default_slots() -> u32 {
    4096
}
