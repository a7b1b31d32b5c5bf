//! The decision pipeline, top to bottom in [`Engine::decide`]: route → credential → authorization →
//! risk → decision. Pure: the request facts and the time come in as values, the host lends the token
//! cache, the shared state and a clock ([`Env`]), and a [`Decision`] comes out.

use crate::authz::{self, routes::Route, routes::RouteTable};
use crate::config::{Config, ConfigError, Mode, OnError};
use crate::credential::api_key::ApiKeyStore;
use crate::credential::cache::{self, TokenCache};
use crate::credential::extract::{self, ExtractError, Presented};
use crate::credential::jwt::{self, Provider};
use crate::credential::{Identity, TokenError};
use crate::reply::Denial;
use crate::risk::{Assessment, Inputs as RiskInputs, Risk, RiskVerdict, StateRef};
use crate::shared::SharedData;
use std::net::IpAddr;
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
    /// The client's address as the gateway saw it (Envoy `source.address`, Kong `ngx.remote_addr`).
    pub source: Option<IpAddr>,
}

/// What the host lends the engine for one request.
pub struct Env<'a> {
    /// This worker's verified-token cache.
    pub cache: &'a mut TokenCache,
    /// Data shared by every worker (behavioural state).
    pub shared: &'a dyn SharedData,
    /// A monotonic clock in microseconds, for time budgets.
    pub clock_us: &'a dyn Fn() -> u64,
}

/// What to do with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forward upstream.
    Allow,
    /// Forward upstream with the risk factors (the risk score reached `risk.tag_at`).
    Tag,
    /// Challenge the client to step up its authentication (RFC 9470).
    StepUp,
    /// Refuse for risk (403).
    Block,
    /// Answer locally with an error.
    Deny,
}

impl Verdict {
    /// Name for audit records and `warden replay`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Tag => "tag",
            Verdict::StepUp => "step_up",
            Verdict::Block => "block",
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
    /// The risk stage's score, factors and would-be verdict (when it ran).
    pub risk: Option<Assessment>,
    /// The behavioural records this request touched (for the response phase).
    pub state: StateRef,
}

/// The compiled config: everything needed to decide, nothing that talks to a host.
pub struct Engine {
    mode: Mode,
    providers: Vec<Provider>,
    api_keys: Option<ApiKeyStore>,
    routes: RouteTable,
    audit: bool,
    risk: Option<Risk>,
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
        let risk = match &c.risk {
            Some(r) if r.enabled => Some(Risk::compile(r)?),
            _ => None,
        };
        Ok(Engine {
            mode: c.mode,
            providers,
            api_keys,
            routes,
            audit: c.audit.enabled,
            risk,
        })
    }

    /// Whether audit records are wanted.
    pub fn audit_enabled(&self) -> bool {
        self.audit
    }

    /// Whether requests are risk-scored.
    pub fn risk_enabled(&self) -> bool {
        self.risk.is_some()
    }

    /// The compiled providers.
    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// Decides one request: route → credential → authorization → risk → decision.
    pub fn decide(&self, req: &Request<'_>, env: &mut Env<'_>) -> Decision {
        let remove_headers = own_headers(req.headers);
        let matched = self.routes.find(req.method, req.path);
        let route_name = matched.as_ref().map(|m| m.route.name.clone());
        let route = matched.as_ref().map(|m| m.route);
        // A route's own mode overrides the top-level one (phased rollout).
        let mode = route.and_then(|r| r.mode).unwrap_or(self.mode);
        let mut cache_hit = false;
        let mut failed_open = false;

        // Route, credential, authorization.
        let (identity, outcome) =
            self.authorize(req, route, env.cache, &mut cache_hit, &mut failed_open);

        // Risk: only a proven, authorised caller is scored; refusals feed the failure counters.
        let mut risk_mode = mode;
        let mut assessment = None;
        let mut state = StateRef::default();
        let outcome = match (&self.risk, outcome, &identity) {
            (Some(risk), Ok(()), Some(id)) => {
                risk_mode = match route.and_then(|r| r.mode) {
                    Some(m) => m,
                    None if self.mode == Mode::Enforce && risk.mode == Mode::Enforce => {
                        Mode::Enforce
                    }
                    None => Mode::Shadow,
                };
                let inputs = RiskInputs {
                    method: req.method,
                    path: req.path,
                    headers: req.headers,
                    source: req.source,
                    now_s: req.now_s,
                    sensitivity: route.map(|r| r.sensitivity).unwrap_or_default(),
                    route_step_up: route.is_some_and(|r| r.step_up),
                    mode: risk_mode,
                };
                let (a, refs) = risk.assess(&inputs, id, env.shared, env.clock_us);
                state = refs;
                let result = risk_outcome(risk, &a);
                assessment = Some(a);
                result
            }
            (Some(risk), Err(denial), _) => {
                state = risk.slots(identity.as_ref(), req.source);
                if denial.is_failure() {
                    risk.record_failure(&state, req.now_s, env.shared);
                }
                Err(denial)
            }
            (_, outcome, _) => outcome,
        };

        // Decision.
        let (verdict, reason, reply) = match &outcome {
            Ok(()) if failed_open => (Verdict::Allow, "idp_unavailable_fail_open", None),
            Ok(()) => {
                let tagged = assessment
                    .as_ref()
                    .is_some_and(|a| a.verdict >= RiskVerdict::Tag);
                let verdict = if tagged { Verdict::Tag } else { Verdict::Allow };
                (verdict, "ok", None)
            }
            Err(denial) => (
                denial.verdict(),
                denial.reason(),
                Some(denial.reply(req.request_id)),
            ),
        };
        // The identity is asserted upstream only when the request passed authorization.
        let authorised = outcome.as_ref().map_or_else(Denial::is_risk, |()| true);
        let mut upstream_headers = match (&identity, authorised) {
            (Some(id), true) => upstream_headers(id),
            _ => Vec::new(),
        };
        if let Some(a) = &assessment {
            upstream_headers.extend(risk_headers(a));
        }
        let decided_mode = match &outcome {
            Err(d) if d.is_risk() => risk_mode,
            Ok(()) if assessment.is_some() => risk_mode,
            _ => mode,
        };
        let (status, reply) = match (decided_mode, reply) {
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
            mode: decided_mode,
            cache_hit,
            risk: assessment,
            state,
        }
    }

    /// Route policy, credential and scopes: the proven caller (also when a scope is missing, so that
    /// the refusal counts in its history) and whether it may pass.
    fn authorize(
        &self,
        req: &Request<'_>,
        route: Option<&Route>,
        cache: &mut TokenCache,
        cache_hit: &mut bool,
        failed_open: &mut bool,
    ) -> (Option<Identity>, Result<(), Denial>) {
        if route.is_some_and(|r| r.anonymous) {
            return (None, Ok(()));
        }
        let identity = match self.authenticate(req, cache, cache_hit) {
            Ok(id) => id,
            // The operator chose to forward, without identity, what the IdP cannot vouch for now.
            Err(Denial::Unavailable { .. }) if self.fails_open(req) => {
                *failed_open = true;
                return (None, Ok(()));
            }
            Err(denial) => return (None, Err(denial)),
        };
        if let Some(r) = route {
            let missing = authz::missing_scopes(&r.scopes, &identity);
            if !missing.is_empty() {
                return (
                    Some(identity),
                    Err(Denial::InsufficientScope(r.scopes.join(" "))),
                );
            }
        }
        (Some(identity), Ok(()))
    }

    /// The response phase of a forwarded request: the upstream's status and body size teach the
    /// caller's record (failures, usual response volume).
    pub fn observe_response(
        &self,
        decision: &Decision,
        status: u16,
        bytes: u64,
        now_s: u64,
        shared: &dyn SharedData,
    ) {
        if let Some(risk) = &self.risk {
            if decision.reply.is_none() {
                risk.observe_response(&decision.state, status, bytes, now_s, shared);
            }
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

/// The refusal a risk assessment calls for, if any.
fn risk_outcome(risk: &Risk, a: &Assessment) -> Result<(), Denial> {
    if let Some((_, OnError::Closed)) = a.breaker {
        return Err(Denial::RiskUnavailable);
    }
    match a.verdict {
        RiskVerdict::Allow | RiskVerdict::Tag => Ok(()),
        RiskVerdict::StepUp => Err(Denial::StepUp {
            acr_values: risk.acr_values.join(" "),
            max_age_s: risk.max_age_s,
        }),
        RiskVerdict::Block => Err(Denial::Blocked),
    }
}

/// `x-auth-risk-score` on every scored request; `x-auth-risk-factors` from `risk.tag_at`.
fn risk_headers(a: &Assessment) -> Vec<(String, String)> {
    let mut h = Vec::new();
    if let Some(score) = a.score {
        h.push(("x-auth-risk-score".to_owned(), score.to_string()));
        if a.verdict >= RiskVerdict::Tag && !a.factors.is_empty() {
            let names: Vec<&str> = a.factors.iter().map(|(n, _)| *n).collect();
            h.push(("x-auth-risk-factors".to_owned(), names.join(",")));
        }
    }
    h
}
