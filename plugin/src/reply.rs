//! The answers a client gets (a public contract, docs/ARCHITECTURE.md): status, `WWW-Authenticate`,
//! a small JSON body. No body echoes the token or names the failed check beyond the RFC 6750 error
//! code.

use crate::authz::delegation::DelegationError;
use crate::authz::owner::OwnerError;
use crate::authz::presence::PresenceError;
use crate::authz::target::TargetError;
use crate::authz::tenant::TenantError;
use crate::credential::dpop::DpopError;
use crate::credential::extract::ExtractError;
use crate::credential::TokenError;

/// A reply the gateway sends in place of the upstream's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status.
    pub status: u16,
    /// Headers of the reply.
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub body: String,
}

/// Why delegation or tenant policy refused a request: the client only sees `access_denied` (403);
/// the reason names the rule for the audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyError {
    /// The delegation policy (actor chain, untrusted delegation headers).
    Delegation(DelegationError),
    /// Tenant isolation.
    Tenant(TenantError),
    /// Owner isolation (whose data the request names).
    Owner(OwnerError),
}

impl PolicyError {
    /// Name for audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyError::Delegation(e) => e.as_str(),
            PolicyError::Tenant(e) => e.as_str(),
            PolicyError::Owner(e) => e.as_str(),
        }
    }
}

impl From<DelegationError> for Denial {
    fn from(e: DelegationError) -> Denial {
        Denial::Forbidden(PolicyError::Delegation(e))
    }
}

impl From<OwnerError> for Denial {
    fn from(e: OwnerError) -> Denial {
        Denial::Forbidden(PolicyError::Owner(e))
    }
}

impl From<TenantError> for Denial {
    fn from(e: TenantError) -> Denial {
        Denial::Forbidden(PolicyError::Tenant(e))
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// No credential at all.
    NoCredential,
    /// Malformed or ambiguous credential headers.
    InvalidRequest(ExtractError),
    /// The token (or API key) is not valid.
    InvalidToken(TokenError),
    /// The route needs these scopes (space-separated).
    InsufficientScope(String),
    /// The token cannot be checked now: the IdP's keys or introspection are unavailable.
    Unavailable {
        /// Why (audit reason).
        why: TokenError,
        /// Reply status (5xx).
        status: u16,
        /// `Retry-After`, seconds.
        retry_after_s: u64,
        /// The provider forwards such requests without identity instead (`fail_open`).
        fail_open: bool,
    },
    /// Refused by delegation or tenant policy (403, JSON body only); the reason is for the audit.
    Forbidden(PolicyError),
    /// Over a rate limit (429), with `Retry-After` and the `RateLimit` headers.
    RateLimited(Vec<(String, String)>),
    /// An invalid token presented with the DPoP scheme (401 `DPoP error="invalid_token"`, RFC 9449 §7.1).
    InvalidDpopToken(TokenError, String),
    /// A missing or invalid DPoP proof (401 `DPoP error="invalid_dpop_proof"`), with the `algs` offered.
    InvalidDpop(DpopError, String),
    /// Risk (or the route) demands a step-up the token does not show (RFC 9470).
    StepUp {
        /// `acr_values` of the challenge (space-separated).
        acr_values: String,
        /// `max_age` of the challenge, seconds.
        max_age_s: u64,
    },
    /// The user behind a delegated call is not shown present, or has not approved the operation
    /// (RFC 9470 challenge naming `max_age` and the `acr_values` wanted).
    UserAbsent(PresenceError),
    /// Refused for risk (`risk.block_at`).
    Blocked,
    /// A caller that cannot step up, over its risk throttle's pace (429, `Retry-After` seconds).
    RiskThrottled(u64),
    /// A caller that cannot step up, suspended after sustained step-up-level scores (403,
    /// `Retry-After` seconds: the suspension's end).
    Suspended(u64),
    /// Risk could not be assessed and `risk.on_error` is `closed`.
    RiskUnavailable,
    /// The request's path or method cannot be routed safely (400 `invalid_request`).
    BadTarget(TargetError),
    /// No route matches and `routing.unmatched` is `deny` (404 `not_found`).
    NoRoute,
    /// The request carries a header Warden reserves (`x-auth-*`, an untrusted delegation header)
    /// that this gateway cannot keep from the upstream (400 `invalid_request`; see `upstream`).
    ReservedHeader,
    /// An MCP request the endpoint does not take (body, batch, headers) or a call a rule refuses.
    Mcp(crate::mcp::McpError),
}

impl Denial {
    /// Reason for the audit record.
    pub fn reason(&self) -> &'static str {
        match self {
            Denial::NoCredential => "no_credential",
            Denial::InvalidRequest(e) => e.as_str(),
            Denial::InvalidToken(e) => e.as_str(),
            Denial::InsufficientScope(_) => "insufficient_scope",
            Denial::Unavailable { why, .. } => why.as_str(),
            Denial::Forbidden(why) => why.as_str(),
            Denial::InvalidDpop(e, _) => e.as_str(),
            Denial::InvalidDpopToken(e, _) => e.as_str(),
            Denial::RateLimited(_) => "rate_limited",
            Denial::StepUp { .. } => "step_up_required",
            Denial::UserAbsent(e) => e.as_str(),
            Denial::Blocked => "risk_blocked",
            Denial::RiskThrottled(_) => "risk_throttled",
            Denial::Suspended(_) => "risk_suspended",
            Denial::RiskUnavailable => "risk_unavailable",
            Denial::ReservedHeader => "reserved_header",
            Denial::BadTarget(e) => e.as_str(),
            Denial::NoRoute => "no_route",
            Denial::Mcp(e) => e.as_str(),
        }
    }

    /// Whether the risk stage refused (shadowed by the risk mode, not the credential checks).
    pub fn is_risk(&self) -> bool {
        matches!(
            self,
            Denial::StepUp { .. }
                | Denial::Blocked
                | Denial::RiskUnavailable
                | Denial::RiskThrottled(_)
                | Denial::Suspended(_)
        )
    }

    /// Whether this refusal holds in shadow mode too: forwarding would hand the upstream a client's
    /// value of a header it trusts.
    pub fn always_enforced(&self) -> bool {
        matches!(self, Denial::ReservedHeader)
    }

    /// Whether this refusal counts as a failure in the behavioural state (a bad credential or a
    /// missing scope: what credential stuffing and privilege probing produce).
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Denial::InvalidToken(_) | Denial::InsufficientScope(_) | Denial::NoRoute
        )
    }

    /// The reply the client gets: the RFC 6750 / 9449 / 9470 challenge where one applies, and a small
    /// JSON body that names the error code only.
    pub fn reply(&self, request_id: &str) -> LocalReply {
        let challenged = |status, challenge: String, error, description| {
            let headers = vec![("www-authenticate".to_owned(), challenge)];
            json_reply(status, headers, error, description, request_id)
        };
        let plain = |status, error, description| {
            json_reply(status, Vec::new(), error, description, request_id)
        };
        match self {
            Denial::Unavailable {
                status,
                retry_after_s,
                ..
            } => unavailable(*status, *retry_after_s, request_id),
            Denial::Mcp(e) => e.reply(request_id),
            Denial::Forbidden(_) => {
                plain(403, "access_denied", "the request is not allowed by policy")
            }
            Denial::RateLimited(headers) => json_reply(
                429,
                headers.clone(),
                "rate_limited",
                "too many requests; retry later",
                request_id,
            ),
            Denial::StepUp {
                acr_values,
                max_age_s,
            } => challenged(
                401,
                step_up_challenge(acr_values, *max_age_s),
                "insufficient_user_authentication",
                STEP_UP_DESCRIPTION,
            ),
            Denial::UserAbsent(e) => challenged(
                401,
                step_up_challenge(&e.acr_values, e.max_age_s),
                "insufficient_user_authentication",
                STEP_UP_DESCRIPTION,
            ),
            Denial::Blocked => plain(403, "access_denied", "the request was refused by policy"),
            Denial::RiskThrottled(wait) => json_reply(
                429,
                vec![("retry-after".to_owned(), wait.to_string())],
                "rate_limited",
                "too many requests; retry later",
                request_id,
            ),
            Denial::Suspended(wait) => json_reply(
                403,
                vec![("retry-after".to_owned(), wait.to_string())],
                "access_denied",
                "the caller is suspended; retry later",
                request_id,
            ),
            Denial::RiskUnavailable => plain(
                503,
                "temporarily_unavailable",
                "the request cannot be assessed right now",
            ),
            Denial::NoCredential => challenged(
                401,
                r#"Bearer realm="warden""#.to_owned(),
                "unauthorized",
                "authentication is required",
            ),
            Denial::InvalidRequest(_) | Denial::ReservedHeader | Denial::BadTarget(_) => {
                challenged(
                    400,
                    r#"Bearer error="invalid_request""#.to_owned(),
                    "invalid_request",
                    match self {
                        Denial::ReservedHeader => {
                            "the request carries a header the gateway reserves"
                        }
                        Denial::BadTarget(_) => "the request's path or method cannot be routed",
                        _ => "the request's credentials are malformed or ambiguous",
                    },
                )
            }
            Denial::NoRoute => plain(404, "not_found", "no route serves this request"),
            Denial::InvalidToken(_) => challenged(
                401,
                r#"Bearer error="invalid_token""#.to_owned(),
                "invalid_token",
                "the access token is not valid",
            ),
            Denial::InsufficientScope(scope) => challenged(
                403,
                format!(r#"Bearer error="insufficient_scope", scope="{scope}""#),
                "insufficient_scope",
                "the access token lacks a required scope",
            ),
            Denial::InvalidDpopToken(_, algs) => challenged(
                401,
                format!(r#"DPoP error="invalid_token", algs="{algs}""#),
                "invalid_token",
                "the access token is not valid",
            ),
            Denial::InvalidDpop(_, algs) => challenged(
                401,
                format!(r#"DPoP error="invalid_dpop_proof", algs="{algs}""#),
                "invalid_dpop_proof",
                "the DPoP proof is missing or not valid",
            ),
        }
    }
}

/// What every RFC 9470 challenge says.
const STEP_UP_DESCRIPTION: &str = "a stronger or more recent authentication is required";

/// An RFC 9470 challenge: `acr_values` when any are wanted, and `max_age`.
fn step_up_challenge(acr_values: &str, max_age_s: u64) -> String {
    let acr = if acr_values.is_empty() {
        String::new()
    } else {
        format!(r#", acr_values="{acr_values}""#)
    };
    format!(
        r#"Bearer error="insufficient_user_authentication", error_description="{STEP_UP_DESCRIPTION}"{acr}, max_age={max_age_s}"#
    )
}

/// The answer while the IdP cannot be reached: no `WWW-Authenticate` (the token is not at fault).
fn unavailable(status: u16, retry_after_s: u64, request_id: &str) -> LocalReply {
    json_reply(
        status,
        vec![("retry-after".into(), retry_after_s.to_string())],
        "temporarily_unavailable",
        "the token cannot be checked now; retry later",
        request_id,
    )
}

/// The answer while no configuration is loaded (the filter fails closed): 503, with the request id
/// like every other reply.
pub fn not_configured(request_id: &str) -> LocalReply {
    json_reply(
        503,
        Vec::new(),
        "temporarily_unavailable",
        "authorization is not configured",
        request_id,
    )
}

/// A small JSON error reply with `extra` headers first.
pub fn json_reply(
    status: u16,
    mut headers: Vec<(String, String)>,
    error: &str,
    description: &str,
    request_id: &str,
) -> LocalReply {
    let body = serde_json::json!({
        "error": error,
        "error_description": description,
        "request_id": request_id,
    })
    .to_string();
    headers.push(("content-type".into(), "application/json".into()));
    headers.push(("cache-control".into(), "no-store".into()));
    LocalReply {
        status,
        headers,
        body,
    }
}
