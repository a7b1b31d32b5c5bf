//! The operator's config: one JSON document (Envoy `configuration`, Kong filter `config`).
//!
//! These types are a public contract (docs/ARCHITECTURE.md). Parsing is strict: unknown keys are
//! errors, so a typo can never silently disable a control, and every error names the field that is
//! wrong.

use schemars::JsonSchema;
use serde::Deserialize;
use std::fmt;

pub mod alerts;
pub mod audit;
pub mod delegation;
pub mod dpop;
pub mod guardrails;
pub mod mcp;
pub mod rate_limits;
pub mod remote;
pub mod revocation;
pub mod risk;
pub mod routing;
mod strict;
pub mod tenancy;

pub use audit::{AuditConfig, AuditSink};
pub use risk::{OnError, RiskConfig, Sensitivity};

/// The whole filter config, as the operator writes it.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `enforce` (default) refuses what fails; `shadow` only logs what would have been refused.
    #[serde(default)]
    pub mode: Mode,
    /// Token issuers whose JWT access tokens are accepted.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    /// Static API keys (stored as SHA-256 digests only).
    #[serde(default)]
    pub api_keys: Option<ApiKeysConfig>,
    /// Route policy, first match wins; what an unmatched request gets is `routing.unmatched`.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Unmatched requests, path case, method-override headers.
    #[serde(default)]
    pub routing: routing::RoutingConfig,
    /// Where audit records go.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Alerts pushed to a receiver (SIEM, ITSM webhook).
    #[serde(default)]
    pub alerts: Option<alerts::AlertsConfig>,
    /// Who may act for whom (RFC 8693 `act`) and which delegation headers are never trusted.
    #[serde(default)]
    pub delegation: Option<delegation::DelegationConfig>,
    /// Which identities are agents, services or humans.
    #[serde(default)]
    pub kinds: delegation::KindsConfig,
    /// Tenant isolation: the tenant a request addresses against the credential's.
    #[serde(default)]
    pub tenancy: Option<tenancy::TenancyConfig>,
    /// DPoP proof checks (RFC 9449).
    #[serde(default)]
    pub dpop: Option<dpop::DpopConfig>,
    /// Token buckets per agent, subject, client or tenant, shared by every worker.
    #[serde(default)]
    pub rate_limits: Option<rate_limits::RateLimitsConfig>,
    /// Kill switch: deny lists, a revocation feed, quarantine.
    #[serde(default)]
    pub revocation: Option<revocation::RevocationConfig>,
    /// Behavioural risk scoring (off when absent).
    #[serde(default)]
    pub risk: Option<RiskConfig>,
    /// On a gateway that cannot remove a request header (Kong: ngx_wasm_module forwards a removed
    /// header to the upstream), what a request gets that carries a header Warden reserves (any
    /// `x-auth-*`, or one of `delegation.untrusted_headers`). Envoy removes such headers whatever
    /// this says.
    #[serde(default)]
    pub reserved_header_action: ReservedHeaderAction,
    /// MCP endpoints (Model Context Protocol) guarded as OAuth resource servers: RFC 9728
    /// metadata, audience binding, per-tool rules, filtered `tools/list`.
    #[serde(default)]
    pub mcp: Option<mcp::McpConfig>,
}

/// What happens, on a gateway that cannot remove request headers, to a request carrying a header
/// Warden reserves. Enforced in shadow mode too: it is what keeps a client's value from the upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReservedHeaderAction {
    /// Refuse it: 400 `invalid_request` (the safe default).
    #[default]
    Refuse,
    /// Forward it with each such header overwritten in place (Warden's value, or empty when Warden
    /// sets none); a header sent more than once is still refused, its second copy cannot be
    /// overwritten.
    Overwrite,
}

/// Whether failed checks are enforced or only logged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Refuse requests that fail a check.
    #[default]
    Enforce,
    /// Forward everything; log and tag what would have been refused.
    Shadow,
}

impl Mode {
    /// Name as written in config and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
        }
    }
}

/// One token issuer.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// A name for logs and audit records; unique among providers.
    pub name: String,
    /// The exact `iss` value of this provider's tokens.
    pub issuer: String,
    /// Accepted `aud` values; a token must carry at least one of them.
    pub audiences: Vec<String>,
    /// The provider's public keys, inline (a JWKS document: `{"keys": [...]}`). Exactly one of
    /// `jwks`, `jwks_uri` and `discovery` (or none, for an introspection-only provider).
    #[serde(default)]
    pub jwks: Option<JwksConfig>,
    /// The provider's JWKS, fetched from this URL (and refreshed) by the gateway.
    #[serde(default)]
    pub jwks_uri: Option<crate::outbound::ServiceConfig>,
    /// Find the JWKS through `{issuer}/.well-known/openid-configuration` (its `issuer` must match).
    #[serde(default)]
    pub discovery: bool,
    /// Discovery: the Envoy cluster reaching the issuer's host.
    #[serde(default)]
    pub envoy_cluster: Option<String>,
    /// Discovery: the Kong `host:port` of the issuer (default: the issuer URL's host and port).
    #[serde(default)]
    pub kong_address: Option<String>,
    /// Remote keys: refetch every this many seconds.
    #[serde(default = "remote::default_jwks_refresh_s")]
    pub jwks_refresh_s: u64,
    /// Remote keys: smallest interval between two fetches caused by an unknown `kid`.
    #[serde(default = "remote::default_jwks_min_refetch_s")]
    pub jwks_min_refetch_s: u64,
    /// The reply while keys (or introspection) are unavailable; default 503 with `Retry-After: 5`.
    #[serde(default)]
    pub unavailable: Option<remote::UnavailableConfig>,
    /// Forward requests (without identity) while keys or introspection are unavailable, instead
    /// of the `unavailable` reply. The operator's choice; off by default.
    #[serde(default)]
    pub fail_open: bool,
    /// Opaque tokens: check them at this introspection endpoint (RFC 7662).
    #[serde(default)]
    pub introspection: Option<remote::IntrospectionConfig>,
    /// Allow-list of JWS algorithms; default: what the configured keys support.
    #[serde(default)]
    pub algorithms: Option<Vec<Algorithm>>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    #[serde(default = "default_clock_skew_s")]
    pub clock_skew_s: u64,
    /// Refuse tokens whose lifetime (`exp - iat`) exceeds this many seconds.
    #[serde(default)]
    pub max_lifetime_s: Option<u64>,
    /// Require exactly this `typ` header (media-type rules: case-insensitive, `application/` optional).
    #[serde(default)]
    pub require_typ: Option<String>,
    /// Which claims carry tenant, scopes and client id.
    #[serde(default)]
    pub claims: ClaimsMapping,
}

fn default_clock_skew_s() -> u64 {
    60
}

/// An inline JWKS document.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwksConfig {
    /// The keys, as JWK objects (RSA, EC P-256/P-384, OKP Ed25519, oct).
    pub keys: Vec<serde_json::Value>,
}

/// The JWS algorithms Warden accepts. `none` is not one of them, by construction.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, JsonSchema)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
    HS256,
    HS384,
    HS512,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 12] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
    ];

    /// The `alg` header value.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
        }
    }

    /// Parses an `alg` header value (exact, case-sensitive as RFC 7515 requires).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// Where to find subject, tenant, scopes and client id in a token.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimsMapping {
    /// Claims holding the subject, tried in order; the first non-empty one is the subject, and a
    /// token with none is refused (`no_subject`). Default `["sub"]`: a token without `sub` is not
    /// taken for its client unless this says so (`["sub", "client_id"]`).
    #[serde(default = "default_subject_claims")]
    pub subject: Vec<String>,
    /// Claim holding the tenant.
    #[serde(default = "default_tenant_claim")]
    pub tenant: String,
    /// Claims holding scopes, tried in order: a space-separated string or an array of strings.
    #[serde(default = "default_scope_claims")]
    pub scopes: Vec<String>,
    /// Claims holding the OAuth client id, tried in order.
    #[serde(default = "default_client_claims")]
    pub client: Vec<String>,
}

impl Default for ClaimsMapping {
    fn default() -> Self {
        ClaimsMapping {
            subject: default_subject_claims(),
            tenant: default_tenant_claim(),
            scopes: default_scope_claims(),
            client: default_client_claims(),
        }
    }
}

fn default_subject_claims() -> Vec<String> {
    vec!["sub".into()]
}
fn default_tenant_claim() -> String {
    "tenant".into()
}
fn default_scope_claims() -> Vec<String> {
    vec!["scope".into(), "scp".into()]
}
fn default_client_claims() -> Vec<String> {
    vec!["client_id".into(), "azp".into()]
}

/// Static API keys.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeysConfig {
    /// The request header carrying the key.
    #[serde(default = "default_api_key_header")]
    pub header: String,
    /// The keys, each known only by its SHA-256 digest.
    pub keys: Vec<ApiKeyConfig>,
}

fn default_api_key_header() -> String {
    "x-api-key".into()
}

/// One API key.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Key id, for logs and audit (never the key itself).
    pub id: String,
    /// Lower-case hex SHA-256 of the key.
    pub sha256: String,
    /// The identity the key stands for.
    pub subject: String,
    /// The key's tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The scopes the key grants.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// One route rule.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// A name for logs and audit; default `route-N`.
    #[serde(default)]
    pub name: Option<String>,
    /// Methods this rule applies to; empty means any.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Exact path or template such as `/tenants/{tenant}/orders/{id}`.
    #[serde(default)]
    pub path: Option<String>,
    /// Path prefix (segment-aligned or not, as written).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Scopes the credential must all carry.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// A public route: no credential is required or checked.
    #[serde(default)]
    pub anonymous: bool,
    /// Overrides the top-level `mode` for this route (phased rollout: shadow first, route by route).
    #[serde(default)]
    pub mode: Option<Mode>,
    /// How much harm the route can do (`low` default, `medium`, `high`, `critical`): a risk feature.
    #[serde(default)]
    pub sensitivity: Sensitivity,
    /// Demand a step-up (RFC 9470) on every request, whatever the risk score.
    #[serde(default)]
    pub step_up: bool,
    /// Owner isolation: the request part naming whose data it is (path variable, query, header).
    #[serde(default)]
    pub owner: Option<guardrails::OwnerConfig>,
    /// Delegated calls: the user behind the token must have authenticated (or the token been
    /// exchanged) recently.
    #[serde(default)]
    pub presence: Option<guardrails::PresenceConfig>,
    /// Delegated calls: the user's own approval (an `acr` only the user can give) first.
    #[serde(default)]
    pub approval: Option<guardrails::ApprovalConfig>,
}

pub(crate) fn default_true() -> bool {
    true
}

/// A config that cannot be used, with the path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// JSON path of the field, e.g. `providers[0].jwks.keys[1]`; empty for the whole document.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "invalid config: {}", self.message)
        } else {
            write!(f, "invalid config at `{}`: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Largest config document accepted, in bytes.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

impl Config {
    /// Parses the JSON document, naming the offending field on error.
    pub fn from_json(json: &[u8]) -> Result<Config, ConfigError> {
        if json.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::new("", "config larger than 1 MiB"));
        }
        let mut de = serde_json::Deserializer::from_slice(json);
        // `Strict`: a struct must be a JSON object (serde alone also reads one from an array).
        let config = serde_path_to_error::deserialize(strict::Strict(&mut de)).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { String::new() } else { path };
            let message = e.into_inner().to_string();
            ConfigError::new(field, message)
        })?;
        // One document, nothing after it.
        de.end()
            .map_err(|e| ConfigError::new("", format!("after the config: {e}")))?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let err = Config::from_json(br#"{"providers": [], "rotues": []}"#).unwrap_err();
        assert!(err.message.contains("rotues"), "{err}");
    }

    #[test]
    fn nested_error_names_the_field_path() {
        let err = Config::from_json(
            br#"{"providers": [{"name": "a", "issuer": "i", "audiences": ["x"],
                 "jwks": {"keys": []}, "clock_skew_s": "soon"}]}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "providers[0].clock_skew_s");
    }

    #[test]
    fn alg_none_is_not_an_algorithm() {
        let err = Config::from_json(
            br#"{"providers": [{"name": "a", "issuer": "i", "audiences": ["x"],
                 "jwks": {"keys": []}, "algorithms": ["none"]}]}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "providers[0].algorithms[0]");
    }

    #[test]
    fn json_schema_is_as_strict_as_the_parser() {
        let schema = serde_json::to_value(schemars::schema_for!(Config)).unwrap();
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(
            schema["$defs"]["ProviderConfig"]["additionalProperties"],
            false
        );
        assert_eq!(
            schema["properties"]["mode"]["description"],
            "`enforce` (default) refuses what fails; `shadow` only logs what would have been refused."
        );
    }

    #[test]
    fn a_struct_given_as_an_array_or_trailing_text_is_refused() {
        let err = Config::from_json(br#"{"audit": [false]}"#).unwrap_err();
        assert_eq!(err.field, "audit");
        let err = Config::from_json(br#"{"routes": [["r", ["GET"]]]}"#).unwrap_err();
        assert_eq!(err.field, "routes[0]");
        assert!(Config::from_json(b"[]").is_err());
        let err = Config::from_json(br#"{"mode": "shadow"} {"mode": "enforce"}"#).unwrap_err();
        assert!(err.message.contains("after the config"), "{err}");
        assert!(Config::from_json(b"{} \n").is_ok());
    }

    #[test]
    fn defaults() {
        let c = Config::from_json(b"{}").unwrap();
        assert_eq!(c.mode, Mode::Enforce);
        assert!(c.audit.enabled);
    }
}
