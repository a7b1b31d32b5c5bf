//! The user behind a delegated call (RFC 8693: `sub` is the user, `act` the agent): whether the
//! user is present (authenticated recently, or the token exchanged recently) and whether the user
//! approved a high-privilege operation (an `acr` only the user's own approval gives, e.g. through
//! OpenID CIBA). A call without an actor is the user in person and is not checked here. Refusals
//! are RFC 9470 challenges naming what is missing (`max_age`, `acr_values`). Also how a token
//! shows multi-factor authentication in `amr` (RFC 8176), which the risk step-up accepts.

use crate::config::guardrails::{check_acr_values, ApprovalConfig, PresenceConfig};
use crate::config::ConfigError;
use crate::credential::Identity;
use serde_json::{Map, Value};

/// Future `auth_time` tolerated (clock skew between the IdP and the gateway), seconds.
const SKEW_S: u64 = 60;

/// Why the user behind a delegated call is not shown to be there: an RFC 9470 challenge (401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceError {
    /// Approval (rather than presence) is what is missing.
    pub approval: bool,
    /// The challenge's `acr_values` (space-separated; may be empty).
    pub acr_values: String,
    /// The challenge's `max_age`, seconds.
    pub max_age_s: u64,
}

impl PresenceError {
    /// Name for audit records.
    pub fn as_str(&self) -> &'static str {
        if self.approval {
            "approval_required"
        } else {
            "user_not_present"
        }
    }
}

/// Whether `t` (seconds since the epoch) is at most `max_age_s` before `now_s` (and not in the
/// future beyond the skew).
fn recent(t: u64, now_s: u64, max_age_s: u64) -> bool {
    t <= now_s.saturating_add(SKEW_S) && now_s.saturating_sub(t) <= max_age_s
}

/// The token's `auth_time`.
fn auth_time(id: &Identity) -> Option<u64> {
    id.claims
        .as_deref()
        .and_then(|c| c.extra.get("auth_time"))
        .and_then(Value::as_u64)
}

/// Whether the token's `amr` (an array of strings) holds any of `wanted`.
pub fn amr_holds(claims: &Map<String, Value>, wanted: &[String]) -> bool {
    match claims.get("amr") {
        Some(Value::Array(items)) if !wanted.is_empty() => items
            .iter()
            .filter_map(Value::as_str)
            .any(|m| wanted.iter().any(|w| w == m)),
        _ => false,
    }
}

/// A compiled `presence` rule.
#[derive(Debug, Clone)]
pub struct Presence {
    auth_within_s: Option<u64>,
    exchanged_within_s: Option<u64>,
    acr_values: Vec<String>,
}

impl Presence {
    /// Compiles `c`, found at `at`.
    pub fn compile(c: &PresenceConfig, at: &str) -> Result<Presence, ConfigError> {
        if c.auth_within_s.is_none() && c.exchanged_within_s.is_none() {
            return Err(ConfigError::new(
                at,
                "give `auth_within_s`, `exchanged_within_s` or both",
            ));
        }
        for (name, v) in [
            ("auth_within_s", c.auth_within_s),
            ("exchanged_within_s", c.exchanged_within_s),
        ] {
            if v == Some(0) {
                return Err(ConfigError::new(
                    format!("{at}.{name}"),
                    "must be at least 1",
                ));
            }
        }
        check_acr_values(&c.acr_values, at)?;
        Ok(Presence {
            auth_within_s: c.auth_within_s,
            exchanged_within_s: c.exchanged_within_s,
            acr_values: c.acr_values.clone(),
        })
    }

    /// A delegated call passes when the user authenticated within `auth_within_s` or the token was
    /// issued within `exchanged_within_s` (whichever are configured).
    pub fn check(&self, id: &Identity, now_s: u64) -> Result<(), PresenceError> {
        if id.actors.is_empty() {
            return Ok(());
        }
        let authenticated = self
            .auth_within_s
            .is_some_and(|n| auth_time(id).is_some_and(|t| recent(t, now_s, n)));
        let iat = id.claims.as_deref().and_then(|c| c.iat);
        let exchanged = self
            .exchanged_within_s
            .is_some_and(|n| iat.is_some_and(|t| recent(t, now_s, n)));
        if authenticated || exchanged {
            return Ok(());
        }
        Err(PresenceError {
            approval: false,
            acr_values: self.acr_values.join(" "),
            max_age_s: self.auth_within_s.or(self.exchanged_within_s).unwrap_or(1),
        })
    }
}

/// A compiled `approval` rule.
#[derive(Debug, Clone)]
pub struct Approval {
    acr_values: Vec<String>,
    max_age_s: u64,
}

impl Approval {
    /// Compiles `c`, found at `at`.
    pub fn compile(c: &ApprovalConfig, at: &str) -> Result<Approval, ConfigError> {
        if c.acr_values.is_empty() {
            return Err(ConfigError::new(
                format!("{at}.acr_values"),
                "at least one acr value meaning \"the user approved\" is needed",
            ));
        }
        check_acr_values(&c.acr_values, at)?;
        if c.max_age_s == 0 {
            return Err(ConfigError::new(
                format!("{at}.max_age_s"),
                "must be at least 1",
            ));
        }
        Ok(Approval {
            acr_values: c.acr_values.clone(),
            max_age_s: c.max_age_s,
        })
    }

    /// A delegated call passes when its token shows the user's approval: `acr` among the rule's
    /// values, given (`auth_time`) at most `max_age_s` ago.
    pub fn check(&self, id: &Identity, now_s: u64) -> Result<(), PresenceError> {
        if id.actors.is_empty() {
            return Ok(());
        }
        let acr = id
            .claims
            .as_deref()
            .and_then(|c| c.extra.get("acr"))
            .and_then(Value::as_str);
        let approved = acr.is_some_and(|a| self.acr_values.iter().any(|v| v == a))
            && auth_time(id).is_some_and(|t| recent(t, now_s, self.max_age_s));
        if approved {
            return Ok(());
        }
        Err(PresenceError {
            approval: true,
            acr_values: self.acr_values.join(" "),
            max_age_s: self.max_age_s,
        })
    }
}
