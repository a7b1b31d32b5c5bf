//! The `routing` section: what a request no route matches gets, how paths compare, and what a
//! method-override header does.

use schemars::JsonSchema;
use serde::Deserialize;

/// How requests are matched to routes.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// What a request no route matches gets: `deny` (after the credential checks, 404 `not_found`,
    /// reason `no_route`) or `authenticate` (any valid credential passes, with tenancy still
    /// checked). Default: `deny` once `routes` lists any route; a config without routes protects
    /// every path alike (`authenticate`). A catch-all route (`{"prefix": "/"}`) written last is the
    /// explicit way to admit everything else.
    #[serde(default)]
    pub unmatched: Option<Unmatched>,
    /// Whether route paths and prefixes compare case-sensitively (default `true`). Set `false` when
    /// the upstream treats `/Admin` like `/admin`: route literals and tenants then compare without
    /// regard to ASCII case.
    #[serde(default = "default_true")]
    pub case_sensitive: bool,
    /// What a request carrying a method-override header (`X-HTTP-Method-Override`, `X-HTTP-Method`,
    /// `X-Method-Override`) or a `_method` query parameter gets: `refuse` (default, 400
    /// `invalid_request`) or `apply` (routes are matched with the overriding method, the one such an
    /// upstream acts on).
    #[serde(default)]
    pub method_override: MethodOverride,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            unmatched: None,
            case_sensitive: true,
            method_override: MethodOverride::default(),
        }
    }
}

/// What a request no route matches gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unmatched {
    /// Refused (404) once its credential is checked.
    Deny,
    /// Any valid credential passes (no scopes, no step-up; tenancy still applies).
    Authenticate,
}

/// What a method-override header does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MethodOverride {
    /// 400 `invalid_request`.
    #[default]
    Refuse,
    /// The overriding method is the one routes are matched with.
    Apply,
}

fn default_true() -> bool {
    true
}
