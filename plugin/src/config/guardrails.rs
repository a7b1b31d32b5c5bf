//! Agent guardrails a route or an MCP rule can carry: whose data the request is (`owner`), whether
//! the user behind a delegated call is present (`presence`), and the user's approval before a
//! high-privilege operation (`approval`). Compiled by `crate::authz::guardrails`.

use super::ConfigError;
use schemars::JsonSchema;
use serde::Deserialize;

/// Owner isolation: which part of the request names the user whose data it is. The request passes
/// when every value present is the token's subject (for a delegated call: the user the agent acts
/// for), or when the token carries one of `roles`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnerConfig {
    /// Routes: the path template variable naming the owner (`user` for `/users/{user}/...`).
    #[serde(default)]
    pub path_variable: Option<String>,
    /// Routes: the query parameter naming the owner (every occurrence is checked).
    #[serde(default)]
    pub query: Option<String>,
    /// A request header naming the owner (every value is checked).
    #[serde(default)]
    pub header: Option<String>,
    /// MCP rules: the `tools/call` argument (`params.arguments.NAME`, a string) naming the owner.
    #[serde(default)]
    pub argument: Option<String>,
    /// Roles that may reach anyone's data (support staff), read from `roles_claim`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The claim holding the token's roles: an array of strings or a space-separated string.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
}

fn default_roles_claim() -> String {
    "roles".into()
}

/// User presence for delegated calls: the user behind the token authenticated recently (its
/// `auth_time`, carried into the exchanged token), or the token was exchanged recently (its
/// `iat`). Either one that is configured and holds lets the call pass; otherwise an RFC 9470
/// challenge with `max_age`. Calls without an actor (the user calling in person) are not checked.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceConfig {
    /// The user's authentication (`auth_time`) must be at most this many seconds old.
    #[serde(default)]
    pub auth_within_s: Option<u64>,
    /// The delegated token must have been issued (`iat`) at most this many seconds ago.
    #[serde(default)]
    pub exchanged_within_s: Option<u64>,
    /// `acr_values` sent in the challenge (optional: the challenge may name only `max_age`).
    #[serde(default)]
    pub acr_values: Vec<String>,
}

/// The user's approval before a high-privilege operation, for delegated calls: the token must show
/// an `acr` that only the user's own approval gives (OpenID CIBA at the IdP: the user confirms on
/// their device), at most `max_age_s` old (`auth_time`). Otherwise an RFC 9470 challenge asking for
/// it. Calls without an actor are not checked.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalConfig {
    /// `acr` values that mean "the user approved" (also the challenge's `acr_values`).
    pub acr_values: Vec<String>,
    /// The approval counts for this many seconds (`auth_time`; the challenge's `max_age`).
    #[serde(default = "default_approval_max_age_s")]
    pub max_age_s: u64,
}

fn default_approval_max_age_s() -> u64 {
    300
}

/// Checks the `acr_values` of the rule at `at` as a challenge carries them (inside a quoted string
/// of `WWW-Authenticate`, space-separated).
pub(crate) fn check_acr_values(values: &[String], at: &str) -> Result<(), ConfigError> {
    for (i, v) in values.iter().enumerate() {
        if v.is_empty()
            || !v
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        {
            return Err(ConfigError::new(
                format!("{at}.acr_values[{i}]"),
                "must be printable ASCII without spaces, quotes or backslashes",
            ));
        }
    }
    Ok(())
}
