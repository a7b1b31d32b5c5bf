//! The decision pipeline, top to bottom in [`Engine::decide`]: route → credential → authorization →
//! decision. Pure: the request facts and the time come in as values, a [`Decision`] comes out.

use crate::authz::{self, routes::RouteTable};
use crate::config::{Config, ConfigError, Mode};
use crate::credential::api_key::ApiKeyStore;
use crate::credential::cache::{self, TokenCache};
use crate::credential::extract::{self, ExtractError, Presented};
use crate::credential::jwt::{self, Provider};
use crate::credential::{Identity, TokenError};
use crate::reply::Denial;
use std::sync::Arc;

/// Prefix of the headers Warden sends upstream; any the client sent are removed.
pub const OWN_HEADER_PREFIX: &str = "x-auth-";

/// The facts of one request, as the host saw them.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:path`, query included.
    pub path: &'a str,
    /// Every request header, in order, duplicates kept.
    pub headers: &'a [(String, String)],
    /// Request id for the reply body and the audit record.
    pub request_id: &'a str,
    /// Wall-clock time, seconds since the Unix epoch.
    pub now_s: u64,
}

/// What to do with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forward upstream.
    Allow,
    /// Answer locally with an error.
    Deny,
}

impl Verdict {
    /// Name for audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
        }
    }
}

/// A local reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status.
    pub status: u16,
    /// Headers of the reply.
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub body: String,
}

/// The engine's answer for one request.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Allow or deny (what enforcement does; in shadow mode a deny is only logged).
    pub verdict: Verdict,
    /// The status the client gets (200 when forwarded).
    pub status: u16,
    /// Why, for the audit record (`ok`, `no_credential`, `expired`, `insufficient_scope`, ...).
    pub reason: &'static str,
    /// The route rule that matched.
    pub route: Option<String>,
    /// The proven caller.
    pub identity: Option<Identity>,
    /// Client-sent headers to remove before forwarding (our own namespace).
    pub remove_headers: Vec<String>,
    /// Headers to set on the forwarded request.
    pub upstream_headers: Vec<(String, String)>,
    /// The local reply, when the request is not forwarded.
    pub reply: Option<LocalReply>,
    /// Mode the decision was taken in.
    pub mode: Mode,
    /// Whether the token came from the verified-token cache.
    pub cache_hit: bool,
}

/// The compiled config: everything needed to decide, nothing that talks to a host.
pub struct Engine {
    mode: Mode,
    providers: Vec<Provider>,
    api_keys: Option<ApiKeyStore>,
    routes: RouteTable,
    audit: bool,
}

impl Engine {
    /// Parses and compiles a config document; the error names the offending field.
    pub fn from_json(json: &[u8]) -> Result<Engine, ConfigError> {
        Engine::compile(&Config::from_json(json)?)
    }

    /// Compiles a parsed config.
    pub fn compile(c: &Config) -> Result<Engine, ConfigError> {
        let mut providers = Vec::with_capacity(c.providers.len());
        for (i, p) in c.providers.iter().enumerate() {
            let provider = Provider::compile(p, &format!("providers[{i}]"))?;
            if providers.iter().any(|o: &Provider| o.name == provider.name) {
                return Err(ConfigError::new(
                    format!("providers[{i}].name"),
                    "duplicate provider name",
                ));
            }
            if providers
                .iter()
                .any(|o: &Provider| o.issuer == provider.issuer)
            {
                return Err(ConfigError::new(
                    format!("providers[{i}].issuer"),
                    "duplicate issuer",
                ));
            }
            if provider.introspection.is_some()
                && providers
                    .iter()
                    .any(|o: &Provider| o.introspection.is_some())
            {
                return Err(ConfigError::new(
                    format!("providers[{i}].introspection"),
                    "only one provider may introspect opaque tokens",
                ));
            }
            providers.push(provider);
        }
        let api_keys = c.api_keys.as_ref().map(ApiKeyStore::compile).transpose()?;
        let routes = RouteTable::compile(&c.routes)?;
        if providers.is_empty() && api_keys.is_none() {
            return Err(ConfigError::new(
                "providers",
                "no providers and no api_keys: every protected request would be refused",
            ));
        }
        Ok(Engine {
            mode: c.mode,
            providers,
            api_keys,
            routes,
            audit: c.audit.enabled,
        })
    }

    /// Whether audit records are wanted.
    pub fn audit_enabled(&self) -> bool {
        self.audit
    }

    /// The compiled providers.
    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// Decides one request. `cache` is this worker's verified-token cache.
    pub fn decide(&self, req: &Request<'_>, cache: &mut TokenCache) -> Decision {
        let remove_headers = own_headers(req.headers);
        let matched = self.routes.find(req.method, req.path);
        let route_name = matched.as_ref().map(|m| m.route.name.clone());
        let mut cache_hit = false;
        let mut failed_open = false;

        let outcome: Result<Option<Identity>, Denial> = (|| {
            // The operator chose to forward, without identity, what the IdP cannot vouch for now.
            let mut authenticate = || match self.authenticate(req, cache, &mut cache_hit) {
                Err(Denial::Unavailable { .. }) if self.fails_open(req) => {
                    failed_open = true;
                    Ok(None)
                }
                other => other.map(Some),
            };
            let Some(m) = &matched else {
                return authenticate();
            };
            if m.route.anonymous {
                return Ok(None);
            }
            let Some(identity) = authenticate()? else {
                return Ok(None);
            };
            let missing = authz::missing_scopes(&m.route.scopes, &identity);
            if !missing.is_empty() {
                return Err(Denial::InsufficientScope(m.route.scopes.join(" ")));
            }
            Ok(Some(identity))
        })();

        let (verdict, reason, identity, reply) = match outcome {
            Ok(identity) if failed_open => {
                (Verdict::Allow, "idp_unavailable_fail_open", identity, None)
            }
            Ok(identity) => (Verdict::Allow, "ok", identity, None),
            Err(denial) => (
                Verdict::Deny,
                denial.reason(),
                None,
                Some(denial.reply(req.request_id)),
            ),
        };
        let upstream_headers = identity.as_ref().map(upstream_headers).unwrap_or_default();
        let (status, reply) = match (self.mode, reply) {
            (_, None) => (200, None),
            (Mode::Shadow, Some(r)) => (r.status, None),
            (Mode::Enforce, Some(r)) => (r.status, Some(r)),
        };
        Decision {
            verdict,
            status,
            reason,
            route: route_name,
            identity,
            remove_headers,
            upstream_headers,
            reply,
            mode: self.mode,
            cache_hit,
        }
    }

    /// The one credential of the request, proven.
    fn authenticate(
        &self,
        req: &Request<'_>,
        cache: &mut TokenCache,
        cache_hit: &mut bool,
    ) -> Result<Identity, Denial> {
        let header = self.api_keys.as_ref().map(|k| k.header.as_str());
        match extract::extract(req.headers, header) {
            Err(e) => Err(Denial::InvalidRequest(e)),
            Ok(Presented::Nothing) => Err(Denial::NoCredential),
            Ok(Presented::ApiKey(key)) => match &self.api_keys {
                Some(store) => store.authenticate(key).map_err(Denial::InvalidToken),
                None => Err(Denial::InvalidRequest(ExtractError::Malformed)),
            },
            Ok(Presented::Bearer(token)) => {
                match self.verify_token(token, req.now_s, cache, cache_hit) {
                    Ok(c) => Ok(Identity::from_claims(&c)),
                    Err(why) if why.is_unavailable() => {
                        let p = self.provider_of(token);
                        let u = p.map(|p| p.unavailable.clone()).unwrap_or_default();
                        Err(Denial::Unavailable {
                            why,
                            status: u.status,
                            retry_after_s: u.retry_after_s,
                        })
                    }
                    Err(why) => Err(Denial::InvalidToken(why)),
                }
            }
        }
    }

    /// The provider answerable for a token: its issuer's, or the introspecting one for opaque tokens.
    fn provider_of(&self, token: &str) -> Option<&Provider> {
        match jwt::parse(token) {
            Ok(parsed) => parsed
                .issuer
                .as_deref()
                .and_then(|iss| self.providers.iter().find(|p| p.issuer == iss)),
            Err(_) => self.providers.iter().find(|p| p.introspection.is_some()),
        }
    }

    /// Whether the request's provider fails open when the IdP is unavailable.
    fn fails_open(&self, req: &Request<'_>) -> bool {
        match extract::extract(req.headers, None) {
            Ok(Presented::Bearer(token)) => self.provider_of(token).is_some_and(|p| p.fail_open),
            _ => false,
        }
    }

    /// A bearer token's claims: from the cache (claim checks re-run) or verified now.
    pub fn verify_token(
        &self,
        token: &str,
        now_s: u64,
        cache: &mut TokenCache,
        cache_hit: &mut bool,
    ) -> Result<Arc<crate::credential::Claims>, TokenError> {
        let key = cache::key_of(token);
        if let Some(claims) = cache.get(&key, now_s, 0) {
            let provider = self
                .providers
                .iter()
                .find(|p| p.name == claims.provider)
                .ok_or(TokenError::UnknownIssuer)?;
            provider.check_claims(&claims, now_s)?;
            *cache_hit = true;
            return Ok(claims);
        }
        if let Some(why) = cache.refused(&key, now_s) {
            return Err(why);
        }
        let parsed = match jwt::parse(token) {
            // An opaque token the adapter has not introspected (yet): nobody can vouch for it.
            Err(TokenError::Malformed)
                if self.providers.iter().any(|p| p.introspection.is_some()) =>
            {
                return Err(TokenError::IdpUnavailable)
            }
            other => other?,
        };
        let provider = parsed
            .issuer
            .as_deref()
            .and_then(|iss| self.providers.iter().find(|p| p.issuer == iss))
            .ok_or(TokenError::UnknownIssuer)?;
        let claims = Arc::new(provider.verify(&parsed, now_s)?);
        cache.put(key, Arc::clone(&claims));
        Ok(claims)
    }
}

/// Names of client-sent headers in our namespace (lower-cased, once each).
fn own_headers(headers: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (name, _) in headers {
        let lower = name.to_ascii_lowercase();
        if lower.starts_with(OWN_HEADER_PREFIX) && !out.contains(&lower) {
            out.push(lower);
        }
    }
    out
}

/// What the upstream learns of the caller.
fn upstream_headers(id: &Identity) -> Vec<(String, String)> {
    let mut h = vec![("x-auth-subject".to_owned(), id.subject.clone())];
    if let Some(t) = &id.tenant {
        h.push(("x-auth-tenant".into(), t.clone()));
    }
    if let Some(c) = &id.client {
        h.push(("x-auth-client".into(), c.clone()));
    }
    h.push(("x-auth-scopes".into(), id.scopes.join(" ")));
    h
}
