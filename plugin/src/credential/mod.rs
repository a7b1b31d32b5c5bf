//! Who is calling: find the one credential a request carries and prove it.
//!
//! `extract` finds it in the headers, `jwt` checks a token against its provider, `api_key` a static
//! key, `cache` remembers verified tokens per worker. The result is an [`Identity`].

pub mod api_key;
pub mod authenticate;
pub mod cache;
pub mod dpop;
pub mod ed25519_key;
pub mod extract;
pub mod introspection;
pub mod jwk;
pub mod jwks;
pub mod jwt;
pub mod mtls;
pub mod native;
pub mod rsa_key;

pub use authenticate::{Credentials, Introspection, Refused, Verified};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Why a token was refused. The client only ever learns `invalid_token`; this goes to the audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a compact JWS with three base64url parts and a JSON header.
    Malformed,
    /// Larger than [`jwt::MAX_TOKEN_BYTES`].
    TooLarge,
    /// `alg` is not one this provider allows (including `none`).
    Algorithm,
    /// The header carries `crit`: no extension is understood, so the token is refused.
    Crit,
    /// `typ` is not `JWT`/`at+jwt`, or not the provider's `require_typ`.
    Typ,
    /// No configured provider has this `iss`.
    UnknownIssuer,
    /// No configured key has this `kid` and `alg`.
    UnknownKey,
    /// The signature does not verify.
    Signature,
    /// No `exp`.
    MissingExp,
    /// Past `exp` (plus skew).
    Expired,
    /// Before `nbf` (minus skew).
    NotYetValid,
    /// `iat` in the future (beyond skew).
    IssuedInFuture,
    /// `exp - iat` beyond `max_lifetime_s`.
    Lifetime,
    /// `iss` differs from the provider's.
    Issuer,
    /// No accepted `aud`.
    Audience,
    /// The claims are not a JSON object of the expected shapes.
    Claims,
    /// No non-empty subject: `sub` (or the claims of `claims.subject`, in order) missing or empty.
    NoSubject,
    /// An API key that matches no configured key.
    UnknownApiKey,
    /// Introspection says the token is not active (expired, revoked, unknown, or not for us).
    Inactive,
    /// The provider's remote keys have not arrived yet.
    KeysUnavailable,
    /// The introspection endpoint could not be reached or gave no usable answer.
    IdpUnavailable,
    /// A sender-constrained token (`cnf`) presented without its binding: a DPoP-bound token sent as
    /// `Bearer`, an mTLS-bound token without the certificate, or any plain token where DPoP is required.
    Binding,
    /// Denied by a revocation list or the revocation feed.
    Revoked,
    /// Quarantined after repeated block-level risk scores.
    Quarantined,
}

impl TokenError {
    /// Whether the token could not be checked at all (the IdP's fault, not the token's).
    pub fn is_unavailable(self) -> bool {
        matches!(
            self,
            TokenError::KeysUnavailable | TokenError::IdpUnavailable
        )
    }

    /// A stable name for audit records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::TooLarge => "too_large",
            TokenError::Algorithm => "algorithm",
            TokenError::Crit => "crit",
            TokenError::Typ => "typ",
            TokenError::UnknownIssuer => "unknown_issuer",
            TokenError::UnknownKey => "unknown_key",
            TokenError::Signature => "signature",
            TokenError::MissingExp => "missing_exp",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::IssuedInFuture => "issued_in_future",
            TokenError::Lifetime => "lifetime",
            TokenError::Issuer => "issuer",
            TokenError::Audience => "audience",
            TokenError::Claims => "claims",
            TokenError::NoSubject => "no_subject",
            TokenError::UnknownApiKey => "unknown_api_key",
            TokenError::Inactive => "inactive",
            TokenError::KeysUnavailable => "keys_unavailable",
            TokenError::IdpUnavailable => "idp_unavailable",
            TokenError::Binding => "binding",
            TokenError::Revoked => "revoked",
            TokenError::Quarantined => "quarantined",
        }
    }

    /// Whether the token's signature verified and a claim rule refused it. Only the claim checks
    /// run after the signature, so these reasons prove a genuine token (audits, vector tests).
    pub fn signature_verified(self) -> bool {
        matches!(
            self,
            TokenError::MissingExp
                | TokenError::Expired
                | TokenError::NotYetValid
                | TokenError::IssuedInFuture
                | TokenError::Lifetime
                | TokenError::Issuer
                | TokenError::Audience
                | TokenError::Claims
                | TokenError::NoSubject
        )
    }
}

/// The verified claims of a token, as Warden uses them.
#[derive(Debug, Clone)]
pub struct Claims {
    /// `iss`.
    pub issuer: String,
    /// The first non-empty claim of `claims.subject` (default: `sub` only).
    pub subject: String,
    /// `aud`.
    pub audiences: Vec<String>,
    /// `exp` (required).
    pub exp: u64,
    /// `nbf`.
    pub nbf: Option<u64>,
    /// `iat`.
    pub iat: Option<u64>,
    /// `jti`.
    pub jti: Option<String>,
    /// Client id, from the mapped claims (`client_id`, `azp`).
    pub client: Option<String>,
    /// Tenant, from the mapped claim.
    pub tenant: Option<String>,
    /// Scopes, from the mapped claims.
    pub scopes: Vec<String>,
    /// Name of the provider that verified the token.
    pub provider: String,
    /// Every other claim (`act`, `cnf`, `acr`, ...), for the later stages.
    pub extra: Map<String, Value>,
}

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A JWT access token.
    Jwt,
    /// A static API key.
    ApiKey,
}

impl CredentialKind {
    /// Name for audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Jwt => "jwt",
            CredentialKind::ApiKey => "api_key",
        }
    }
}

/// A proven caller: what every later stage (policy, rate limits, risk, audit, upstream headers)
/// knows of who is calling.
#[derive(Debug, Clone)]
pub struct Identity {
    /// What proved it (a JWT or an API key).
    pub credential: CredentialKind,
    /// The subject.
    pub subject: String,
    /// The OAuth client (JWT) or the API key id.
    pub client: Option<String>,
    /// The tenant.
    pub tenant: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The name of the provider that verified the token (JWT), or `api_keys`.
    pub provider: String,
    /// `jti` of a token.
    pub token_id: Option<String>,
    /// Human, service or agent (see `kinds` in the config).
    pub kind: IdentityKind,
    /// The delegation chain (RFC 8693 `act`), current actor first; empty when nobody acts for the subject.
    pub actors: Vec<Actor>,
    /// The token's verified claims (`act`, `acr`, `auth_time`, `iat` ...), for the later stages.
    pub claims: Option<Arc<Claims>>,
}

/// What sort of party an identity is: carried to the upstream (`x-auth-kind`), audit and risk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    /// A person (the default for a token with a `sub`).
    #[default]
    Human,
    /// A workload acting for itself (client credentials, API keys).
    Service,
    /// An autonomous AI agent.
    Agent,
}

impl IdentityKind {
    /// Name for headers and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Human => "human",
            IdentityKind::Service => "service",
            IdentityKind::Agent => "agent",
        }
    }
}

/// One party of an `act` chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The actor's `sub`.
    pub subject: String,
    /// Its `client_id`, if the `act` object names one.
    pub client: Option<String>,
    /// Its `iss`, if named.
    pub issuer: Option<String>,
    /// Its tenant, if named.
    pub tenant: Option<String>,
}

impl Identity {
    /// A JWT identity for unit tests: `sub` of tenant `acme` via client `web`, with `actor` acting.
    #[cfg(test)]
    pub(crate) fn for_test(sub: &str, actor: Option<&str>) -> Identity {
        Identity {
            credential: CredentialKind::Jwt,
            subject: sub.into(),
            client: Some("web".into()),
            tenant: Some("acme".into()),
            scopes: vec![],
            provider: "corp".into(),
            token_id: None,
            kind: IdentityKind::Human,
            actors: actor
                .map(|a| Actor {
                    subject: a.into(),
                    client: None,
                    issuer: None,
                    tenant: None,
                })
                .into_iter()
                .collect(),
            claims: None,
        }
    }

    /// The current actor of a delegation, if any.
    pub fn actor(&self) -> Option<&Actor> {
        self.actors.first()
    }
}

impl Identity {
    /// The identity a verified token stands for.
    pub fn from_claims(c: &Arc<Claims>) -> Identity {
        Identity {
            credential: CredentialKind::Jwt,
            subject: c.subject.clone(),
            client: c.client.clone(),
            tenant: c.tenant.clone(),
            scopes: c.scopes.clone(),
            provider: c.provider.clone(),
            token_id: c.jti.clone(),
            kind: IdentityKind::default(),
            actors: Vec::new(),
            claims: Some(Arc::clone(c)),
        }
    }
}
