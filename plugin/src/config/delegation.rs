//! The `delegation` section: who may act for whom (RFC 8693 `act`), and which client headers that
//! claim a delegation are stripped or refused.

use schemars::JsonSchema;
use serde::Deserialize;

/// Delegation policy. Without this section a token carrying `act` is refused (no actor is allowed).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegationConfig {
    /// Longest `act` chain accepted (1: one actor, no nested `act`). At most 8.
    #[serde(default = "default_max_depth")]
    pub max_depth: usize,
    /// Actors allowed to act, first matching rule wins; an actor no rule matches is refused.
    #[serde(default)]
    pub actors: Vec<ActorRuleConfig>,
    /// Every actor that carries a tenant must carry the subject's tenant.
    #[serde(default = "default_true")]
    pub same_tenant: bool,
    /// The claim in an `act` object holding the actor's tenant.
    #[serde(default = "default_tenant_claim")]
    pub tenant_claim: String,
    /// Client headers that assert a delegation; never trusted.
    #[serde(default = "default_untrusted_headers")]
    pub untrusted_headers: Vec<String>,
    /// What to do with a request carrying one of `untrusted_headers`.
    #[serde(default)]
    pub untrusted_header_action: UntrustedHeaderAction,
}

impl Default for DelegationConfig {
    fn default() -> Self {
        DelegationConfig {
            max_depth: default_max_depth(),
            actors: Vec::new(),
            same_tenant: true,
            tenant_claim: default_tenant_claim(),
            untrusted_headers: default_untrusted_headers(),
            untrusted_header_action: UntrustedHeaderAction::default(),
        }
    }
}

/// One allowed actor.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActorRuleConfig {
    /// A name for audit records; default `actor-N`.
    #[serde(default)]
    pub name: Option<String>,
    /// Pattern on the actor's `sub` (`*` wildcards).
    #[serde(default)]
    pub sub: Option<String>,
    /// Pattern on the actor's `client_id`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Pattern on the actor's `iss`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Patterns on the subjects this actor may act for (`["*"]`: anyone).
    pub subjects: Vec<String>,
    /// Route names this actor may call; empty: every route.
    #[serde(default)]
    pub routes: Vec<String>,
    /// The most this actor may use: effective scopes are the token's scopes within this list.
    pub scopes: Vec<String>,
}

/// What happens to a request carrying a delegation header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UntrustedHeaderAction {
    /// Remove the header and go on.
    #[default]
    Remove,
    /// Refuse the request (403).
    Refuse,
}

fn default_max_depth() -> usize {
    1
}
fn default_true() -> bool {
    true
}
fn default_tenant_claim() -> String {
    "tenant".into()
}
fn default_untrusted_headers() -> Vec<String> {
    [
        "x-on-behalf-of",
        "x-forwarded-user",
        "x-act-as",
        "x-impersonate-user",
        "x-delegated-by",
    ]
    .map(String::from)
    .to_vec()
}

/// The `kinds` section: which identities are agents, services or humans.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KindsConfig {
    /// A token claim naming the kind (`agent`, `service`, `human`); checked first when present.
    #[serde(default)]
    pub claim: Option<String>,
    /// Rules by `sub`/`client_id` pattern, first match wins.
    #[serde(default)]
    pub rules: Vec<KindRuleConfig>,
}

/// One kind rule: all given patterns must match.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KindRuleConfig {
    /// The kind this rule assigns.
    pub kind: crate::credential::IdentityKind,
    /// Pattern on `sub`.
    #[serde(default)]
    pub sub: Option<String>,
    /// Pattern on the client id (or API key id).
    #[serde(default)]
    pub client_id: Option<String>,
}
