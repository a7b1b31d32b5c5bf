//! The answers a client gets (DESIGN.md §3): status, `WWW-Authenticate`, a small JSON body.
//! No body echoes the token or names the failed check beyond the RFC 6750 error code.

use crate::credential::extract::ExtractError;
use crate::credential::TokenError;
use crate::decision::{LocalReply, Verdict};

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
    },
    /// Refused by delegation or tenant policy (403, JSON body only); the reason is for the audit.
    Forbidden(&'static str),
    /// Over a rate limit (429), with `Retry-After` and the `RateLimit` headers.
    RateLimited(Vec<(String, String)>),
    /// An invalid token presented with the DPoP scheme (401 `DPoP error="invalid_token"`, RFC 9449 §7.1).
    InvalidDpopToken(TokenError, String),
    /// A missing or invalid DPoP proof (401 `DPoP error="invalid_dpop_proof"`), with the `algs` offered.
    InvalidDpop(crate::credential::dpop::DpopError, String),
    /// Risk (or the route) demands a step-up the token does not show (RFC 9470).
    StepUp {
        /// `acr_values` of the challenge (space-separated).
        acr_values: String,
        /// `max_age` of the challenge, seconds.
        max_age_s: u64,
    },
    /// Refused for risk (`risk.block_at`).
    Blocked,
    /// Risk could not be assessed and `risk.on_error` is `closed`.
    RiskUnavailable,
    /// The request carries a header Warden reserves (`x-auth-*`, an untrusted delegation header)
    /// that this gateway cannot keep from the upstream (400 `invalid_request`; see `upstream`).
    ReservedHeader,
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
            Denial::Forbidden(reason) => reason,
            Denial::InvalidDpop(e, _) => e.as_str(),
            Denial::InvalidDpopToken(e, _) => e.as_str(),
            Denial::RateLimited(_) => "rate_limited",
            Denial::StepUp { .. } => "step_up_required",
            Denial::Blocked => "risk_blocked",
            Denial::RiskUnavailable => "risk_unavailable",
            Denial::ReservedHeader => "reserved_header",
        }
    }

    /// The verdict this refusal stands for.
    pub fn verdict(&self) -> Verdict {
        match self {
            Denial::StepUp { .. } => Verdict::StepUp,
            Denial::Blocked => Verdict::Block,
            _ => Verdict::Deny,
        }
    }

    /// Whether the risk stage refused (shadowed by the risk mode, not the credential checks).
    pub fn is_risk(&self) -> bool {
        matches!(
            self,
            Denial::StepUp { .. } | Denial::Blocked | Denial::RiskUnavailable
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
        matches!(self, Denial::InvalidToken(_) | Denial::InsufficientScope(_))
    }

    /// The reply the client gets.
    pub fn reply(&self, request_id: &str) -> LocalReply {
        match self {
            Denial::Unavailable {
                status,
                retry_after_s,
                ..
            } => return unavailable(*status, *retry_after_s, request_id),
            Denial::Forbidden(_) => {
                return json_reply(
                    403,
                    Vec::new(),
                    "access_denied",
                    "the request is not allowed by policy",
                    request_id,
                )
            }
            Denial::RateLimited(headers) => {
                return json_reply(
                    429,
                    headers.clone(),
                    "rate_limited",
                    "too many requests; retry later",
                    request_id,
                )
            }
            _ => {}
        }
        let (status, challenge, error, description) = match self {
            Denial::StepUp {
                acr_values,
                max_age_s,
            } => (
                401,
                format!(
                    r#"Bearer error="insufficient_user_authentication", error_description="a stronger or more recent authentication is required", acr_values="{acr_values}", max_age={max_age_s}"#
                ),
                "insufficient_user_authentication",
                "a stronger or more recent authentication is required",
            ),
            Denial::Blocked => (
                403,
                String::new(),
                "access_denied",
                "the request was refused by policy",
            ),
            Denial::RiskUnavailable => (
                503,
                String::new(),
                "temporarily_unavailable",
                "the request cannot be assessed right now",
            ),
            Denial::NoCredential => (
                401,
                r#"Bearer realm="warden""#.to_owned(),
                "unauthorized",
                "authentication is required",
            ),
            Denial::InvalidRequest(_) => (
                400,
                r#"Bearer error="invalid_request""#.to_owned(),
                "invalid_request",
                "the request's credentials are malformed or ambiguous",
            ),
            Denial::ReservedHeader => (
                400,
                r#"Bearer error="invalid_request""#.to_owned(),
                "invalid_request",
                "the request carries a header the gateway reserves",
            ),
            Denial::InvalidToken(_) => (
                401,
                r#"Bearer error="invalid_token""#.to_owned(),
                "invalid_token",
                "the access token is not valid",
            ),
            Denial::InsufficientScope(scope) => (
                403,
                format!(r#"Bearer error="insufficient_scope", scope="{scope}""#),
                "insufficient_scope",
                "the access token lacks a required scope",
            ),
            Denial::Unavailable { .. } => return unavailable(503, 0, request_id),
            Denial::Forbidden(_) | Denial::RateLimited(_) => {
                (403, String::new(), "access_denied", "")
            }
            Denial::InvalidDpopToken(_, algs) => (
                401,
                format!(r#"DPoP error="invalid_token", algs="{algs}""#),
                "invalid_token",
                "the access token is not valid",
            ),
            Denial::InvalidDpop(_, algs) => (
                401,
                format!(r#"DPoP error="invalid_dpop_proof", algs="{algs}""#),
                "invalid_dpop_proof",
                "the DPoP proof is missing or not valid",
            ),
        };
        let mut headers = Vec::new();
        if !challenge.is_empty() {
            headers.push(("www-authenticate".into(), challenge));
        }
        json_reply(status, headers, error, description, request_id)
    }
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
