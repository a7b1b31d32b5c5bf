//! The `mcp` section: Model Context Protocol endpoints Warden guards as an OAuth resource server
//! (RFC 9728 metadata, audience binding, per-tool rules). Compiled by `crate::mcp`.

use super::Sensitivity;
use schemars::JsonSchema;
use serde::Deserialize;

/// MCP endpoints.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    /// The MCP endpoints (Streamable HTTP), each at its own path.
    pub endpoints: Vec<McpEndpointConfig>,
}

/// One MCP endpoint: a resource server with its own identifier and rules.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpEndpointConfig {
    /// A name for logs and audit records; unique among endpoints.
    pub name: String,
    /// The endpoint's path (exact, no query), e.g. `/mcp`.
    pub path: String,
    /// The resource identifier (RFC 8707): exactly the URL clients use, e.g.
    /// `https://mcp.example.com/mcp`. A token's `aud` must contain it.
    pub resource: String,
    /// The authorization servers clients get tokens from (RFC 9728 `authorization_servers`).
    pub authorization_servers: Vec<String>,
    /// Scopes published in the metadata (RFC 9728 `scopes_supported`).
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// What `scope` lists in a 403 `insufficient_scope` challenge: `operation` (default, what MCP
    /// 2026-07-28 says: the scopes the refused call needs) or `granted_and_required` (the token's
    /// scopes plus those, for clients that replace their token with one of exactly that scope).
    #[serde(default)]
    pub challenge_scopes: ChallengeScopes,
    /// Largest JSON-RPC request body read, in bytes (a larger one gets 413).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u32,
    /// Largest `tools/list` answer buffered to filter it, in bytes (a larger one is replaced by a
    /// JSON-RPC error: the tool list is never passed on unfiltered).
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u32,
    /// JSON-RPC batches: `refuse` (default; MCP 2025-06-18 and later have none) or `each` (every
    /// member authorized, all must pass).
    #[serde(default)]
    pub batches: Batches,
    /// Forward the client's `Authorization` and `DPoP` headers to the MCP server. Off by default:
    /// the MCP spec forbids token passthrough; the server gets the `x-auth-*` identity instead.
    #[serde(default)]
    pub forward_credentials: bool,
    /// Tools, resources and prompts no rule names: `deny` (default) or `allow`.
    #[serde(default)]
    pub default: DefaultAction,
    /// Scopes every call to the endpoint needs (protocol methods too).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Per-method rules, first match wins.
    #[serde(default)]
    pub rules: Vec<McpRuleConfig>,
}

/// One rule: which JSON-RPC calls it covers and what they need.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpRuleConfig {
    /// The JSON-RPC method (`tools/call`, `resources/read`, `prompts/get`, or a protocol method
    /// such as `tools/list`); `*` globs allowed.
    pub method: String,
    /// `tools/call`: the tool name (`*` globs).
    #[serde(default)]
    pub tool: Option<String>,
    /// `resources/read`: the resource URI (`*` globs).
    #[serde(default)]
    pub uri: Option<String>,
    /// `prompts/get`: the prompt name (`*` globs).
    #[serde(default)]
    pub prompt: Option<String>,
    /// Scopes the call needs (all of), on top of the endpoint's.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Refuse every call the rule matches.
    #[serde(default)]
    pub deny: bool,
    /// Demand a step-up (RFC 9470) on every call, whatever the risk score (needs `risk`).
    #[serde(default)]
    pub step_up: bool,
    /// How much harm the call can do: the risk stage's sensitivity feature.
    #[serde(default)]
    pub sensitivity: Option<Sensitivity>,
    /// A `rate_limits` policy drawn from on every call the rule matches.
    #[serde(default)]
    pub rate_limit: Option<String>,
    /// Owner isolation: the call's argument (or a header) naming whose data it is.
    #[serde(default)]
    pub owner: Option<super::guardrails::OwnerConfig>,
    /// Delegated calls: the user behind the token must be present (see `routes[].presence`).
    #[serde(default)]
    pub presence: Option<super::guardrails::PresenceConfig>,
    /// Delegated calls: the user's own approval first (see `routes[].approval`).
    #[serde(default)]
    pub approval: Option<super::guardrails::ApprovalConfig>,
}

/// What `scope` a 403 `insufficient_scope` challenge lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeScopes {
    /// The scopes the refused operation needs.
    #[default]
    Operation,
    /// The token's scopes plus the ones the operation needs.
    GrantedAndRequired,
}

/// What a JSON-RPC batch (an array body) gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Batches {
    /// 400 with a JSON-RPC invalid-request error.
    #[default]
    Refuse,
    /// Every member is authorized; one refusal refuses the batch.
    Each,
}

/// What a call gets that no rule names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DefaultAction {
    /// Refuse it (403).
    #[default]
    Deny,
    /// Allow it with the endpoint's scopes.
    Allow,
}

fn default_max_body_bytes() -> u32 {
    65_536
}

fn default_max_response_bytes() -> u32 {
    1 << 20
}
