//! The `tenancy` section: where a request names its tenant, and which cross-tenant pairs are allowed.

use schemars::JsonSchema;
use serde::Deserialize;

/// Tenant isolation: the credential's tenant must be the tenant the request addresses.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenancyConfig {
    /// Route template variable naming the tenant (`/tenants/{tenant}/...`).
    #[serde(default = "default_path_variable")]
    pub path_variable: String,
    /// Path templates naming the tenant, matched against the leading segments of every request path
    /// whichever route matched (or none), e.g. `/tenants/{tenant}`. Default: each route template
    /// holding `{path_variable}`, cut after it.
    #[serde(default)]
    pub paths: Vec<String>,
    /// A request header naming the tenant.
    #[serde(default)]
    pub header: Option<String>,
    /// Host suffix: a request to `acme.api.example.com` with suffix `.api.example.com` addresses `acme`.
    #[serde(default)]
    pub host_suffix: Option<String>,
    /// Allowed cross-tenant pairs: a credential of tenant `from` may address tenant `to`.
    #[serde(default)]
    pub federated: Vec<FederationConfig>,
    /// Refuse an authenticated request that names no tenant at all.
    #[serde(default)]
    pub require: bool,
}

/// One allowed cross-tenant pair (one direction).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// The credential's tenant.
    pub from: String,
    /// The tenant it may address.
    pub to: String,
}

fn default_path_variable() -> String {
    "tenant".into()
}
