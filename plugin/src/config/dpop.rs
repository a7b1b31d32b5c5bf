//! The `dpop` section: how DPoP proofs (RFC 9449) are checked. DPoP is always on: a token bound with
//! `cnf.jkt` needs a valid proof; this section tunes the checks.

use super::Algorithm;
use schemars::JsonSchema;
use serde::Deserialize;

/// DPoP proof checks.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DpopConfig {
    /// Proof algorithms accepted: ES256, ES384, EdDSA.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<Algorithm>,
    /// Oldest proof accepted: `iat` at most this many seconds ago.
    #[serde(default = "default_max_age_s")]
    pub max_age_s: u64,
    /// Clock skew tolerated for a proof `iat` in the future, in seconds.
    #[serde(default = "default_future_skew_s")]
    pub future_skew_s: u64,
    /// The public origin clients address (`https://api.example.com`), when the gateway sits behind a
    /// TLS terminator or rewrites the host; default: the request's own scheme and authority.
    #[serde(default)]
    pub origin: Option<String>,
    /// Replay cache size: slots in shared data (each holds up to 128 recent proof ids).
    #[serde(default = "default_replay_slots")]
    pub replay_slots: u32,
    /// Refuse every JWT not presented with DPoP.
    #[serde(default)]
    pub required: bool,
}

impl Default for DpopConfig {
    fn default() -> Self {
        DpopConfig {
            algorithms: default_algorithms(),
            max_age_s: default_max_age_s(),
            future_skew_s: default_future_skew_s(),
            origin: None,
            replay_slots: default_replay_slots(),
            required: false,
        }
    }
}

fn default_algorithms() -> Vec<Algorithm> {
    vec![Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA]
}
fn default_max_age_s() -> u64 {
    60
}
fn default_future_skew_s() -> u64 {
    5
}
fn default_replay_slots() -> u32 {
    256
}
