//! The agent guardrails of one route or MCP rule, in the order they are checked: whose data the
//! request is ([`Owner`], 403), whether the user behind a delegated call is present
//! ([`Presence`], RFC 9470 challenge), and the user's approval of the operation ([`Approval`],
//! RFC 9470 challenge). Pure: the identity, the time and the owners the request names come in.

use super::owner::{Owner, Place};
use super::presence::{Approval, Presence};
use crate::config::guardrails::{ApprovalConfig, OwnerConfig, PresenceConfig};
use crate::config::{Config, ConfigError};
use crate::credential::Identity;
use crate::reply::Denial;
use std::borrow::Cow;

/// The compiled guardrails of a route or an MCP rule (each optional).
#[derive(Debug, Clone, Default)]
pub struct Guardrails {
    /// Owner isolation.
    pub owner: Option<Owner>,
    presence: Option<Presence>,
    approval: Option<Approval>,
}

impl Guardrails {
    /// Compiles the `owner`, `presence` and `approval` keys of the rule at `at`.
    pub fn compile(
        owner: Option<&OwnerConfig>,
        presence: Option<&PresenceConfig>,
        approval: Option<&ApprovalConfig>,
        at: &str,
        place: Place<'_>,
    ) -> Result<Guardrails, ConfigError> {
        Ok(Guardrails {
            owner: owner
                .map(|o| Owner::compile(o, &format!("{at}.owner"), place))
                .transpose()?,
            presence: presence
                .map(|p| Presence::compile(p, &format!("{at}.presence")))
                .transpose()?,
            approval: approval
                .map(|a| Approval::compile(a, &format!("{at}.approval")))
                .transpose()?,
        })
    }

    /// Whether the rule carries no guardrail.
    pub fn is_empty(&self) -> bool {
        self.owner.is_none() && self.presence.is_none() && self.approval.is_none()
    }

    /// Checks `id` at `now_s`; `named`: the owners the request names (see [`Owner::requested`]).
    pub fn check(&self, id: &Identity, now_s: u64, named: &[Cow<'_, str>]) -> Result<(), Denial> {
        if let Some(o) = &self.owner {
            o.check(id, named)?;
        }
        if let Some(p) = &self.presence {
            p.check(id, now_s).map_err(Denial::UserAbsent)?;
        }
        if let Some(a) = &self.approval {
            a.check(id, now_s).map_err(Denial::UserAbsent)?;
        }
        Ok(())
    }
}

/// Claims the decision record carries besides `audit::RECORDED_CLAIMS`: `kinds.claim`, and the
/// roles claim of every `owner` rule that names roles (so that `warden replay --audit` can decide
/// them again).
pub fn recorded_claims(c: &Config) -> Vec<String> {
    let mut out: Vec<String> = c.kinds.claim.iter().cloned().collect();
    let rules = c
        .mcp
        .iter()
        .flat_map(|m| &m.endpoints)
        .flat_map(|e| &e.rules);
    let owners = c
        .routes
        .iter()
        .filter_map(|r| r.owner.as_ref())
        .chain(rules.filter_map(|r| r.owner.as_ref()));
    for o in owners.filter(|o| !o.roles.is_empty()) {
        if !out.contains(&o.roles_claim) {
            out.push(o.roles_claim.clone());
        }
    }
    out
}
