//! The decision pipeline, top to bottom in [`Engine::decide`]: route → credential → authorization →
//! risk → decision. Pure: the request facts and the time come in as values, the host lends the token
//! cache, the shared state and a clock ([`Env`]), and a [`Decision`] comes out.

use crate::authz::delegation::Delegation;
use crate::authz::kind::Kinds;
use crate::authz::rate_limit::{self, RateLimits};
use crate::authz::revocation::Revocation;
use crate::authz::routes::RouteMatch;
use crate::authz::tenant::Tenancy;
use crate::authz::{self, routes::RouteTable};
use crate::config::{Config, ConfigError, Mode, OnError, ReservedHeaderAction};
use crate::credential::api_key::ApiKeyStore;
use crate::credential::cache::{self, TokenCache};
use crate::credential::dpop::{self, DpopPolicy, ProofTarget};
use crate::credential::extract::{self, ExtractError, Presented};
use crate::credential::jwt::{self, Provider};
use crate::credential::mtls;
use crate::credential::{Claims, Identity, TokenError};
use crate::gateway::HostRules;
use crate::reply::Denial;
use crate::risk::{Assessment, Inputs as RiskInputs, Risk, RiskVerdict, StateRef};
use crate::shared::SharedData;
use std::net::IpAddr;
use std::sync::Arc;

/// Prefix of the headers Warden sends upstream; any the client sent are removed.
pub const OWN_HEADER_PREFIX: &str = "x-auth-";

/// The facts of one request, as the host saw them.
#[derive(Debug, Clone, Copy, Default)]
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
    /// Lower-case hex SHA-256 of the client certificate (mTLS), when the host reports one.
    pub peer_cert_sha256: Option<&'a str>,
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
    /// Client-sent headers to remove before forwarding (our own namespace, untrusted delegation
    /// headers); always empty on a gateway that cannot remove them (see `upstream`).
    pub remove_headers: Vec<String>,
    /// Headers to set on the forwarded request.
    pub upstream_headers: Vec<(String, String)>,
    /// The local reply, when the request is not forwarded.
    pub reply: Option<LocalReply>,
    /// Headers to add to the upstream's response (`RateLimit-Policy`, `RateLimit`).
    pub response_headers: Vec<(String, String)>,
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
    delegation: Delegation,
    kinds: Kinds,
    tenancy: Option<Tenancy>,
    dpop: DpopPolicy,
    rate_limits: Option<RateLimits>,
    revocation: Revocation,
    risk: Option<Risk>,
    reserved_header_action: ReservedHeaderAction,
    host: HostRules,
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
        let delegation =
            Delegation::compile(&c.delegation.clone().unwrap_or_default(), &routes.names())?;
        let kinds = Kinds::compile(&c.kinds)?;
        let tenancy = c.tenancy.as_ref().map(Tenancy::compile).transpose()?;
        let dpop = DpopPolicy::compile(&c.dpop.clone().unwrap_or_default())?;
        let rate_limits = c
            .rate_limits
            .as_ref()
            .map(|r| RateLimits::compile(r, &routes.names()))
            .transpose()?;
        let revocation = Revocation::compile(&c.revocation.clone().unwrap_or_default())?;
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
            delegation,
            kinds,
            tenancy,
            dpop,
            rate_limits,
            revocation,
            risk,
            reserved_header_action: c.reserved_header_action,
            host: HostRules::default(),
        })
    }

    /// The engine for the gateway the adapter runs in (default: Envoy's rules): how reserved
    /// request headers are kept from the upstream, and the clock step `risk.budget_us` is judged in.
    pub fn with_host(mut self, host: HostRules) -> Engine {
        self.host = host;
        if let Some(risk) = &mut self.risk {
            risk.set_clock_step_us(host.clock_step_us);
        }
        self
    }

    /// The revocation lists, feed and quarantine (the adapter drives the feed; the risk stage calls
    /// [`Revocation::quarantine`] for a block-level score).
    pub fn revocation(&self) -> &Revocation {
        &self.revocation
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

    /// Decides one request: headers → credential → agent policy → scopes → rate limits → risk → decision.
    pub fn decide(&self, req: &Request<'_>, env: &mut Env<'_>) -> Decision {
        let mut remove_headers = own_headers(req.headers);
        let mut response_headers = Vec::new();
        let matched = self.routes.find(req.method, req.path);
        let route_name = matched.as_ref().map(|m| m.route.name.clone());
        let route = matched.as_ref().map(|m| m.route);
        // A route's own mode overrides the top-level one (phased rollout).
        let mode = route.and_then(|r| r.mode).unwrap_or(self.mode);
        let mut cache_hit = false;
        let mut failed_open = false;

        // Route, credential, authorization.
        let (identity, outcome) = self.authorize(
            req,
            matched.as_ref(),
            env,
            &mut remove_headers,
            &mut response_headers,
            &mut cache_hit,
            &mut failed_open,
        );

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
                // A block-level score counts towards quarantine (`revocation.quarantine`), when enforced.
                if a.verdict == RiskVerdict::Block && risk_mode == Mode::Enforce {
                    // Best effort: shared data failing only delays the quarantine.
                    let _ = self.revocation.quarantine(env.shared, id, req.now_s);
                }
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
            Err(d) if d.always_enforced() => Mode::Enforce,
            Err(d) if d.is_risk() => risk_mode,
            Ok(()) if assessment.is_some() => risk_mode,
            _ => mode,
        };
        let (status, reply) = match (decided_mode, reply) {
            (_, None) => (200, None),
            (Mode::Shadow, Some(r)) => (r.status, None),
            (Mode::Enforce, Some(r)) => (r.status, Some(r)),
        };
        let (remove_headers, upstream_headers) =
            crate::upstream::edits(self.host, remove_headers, upstream_headers);
        Decision {
            verdict,
            status,
            reason,
            route: route_name,
            identity,
            remove_headers,
            upstream_headers,
            reply,
            response_headers,
            mode: decided_mode,
            cache_hit,
            risk: assessment,
            state,
        }
    }

    /// Header checks, credential, agent policy (delegation, revocation, tenancy), scopes and rate
    /// limits: the proven caller (also when a scope is missing, so that the refusal counts in its
    /// history) and whether it may pass. Untrusted delegation headers to strip go to
    /// `remove_headers`, `RateLimit` headers for the response to `response_headers`.
    #[allow(clippy::too_many_arguments)]
    fn authorize(
        &self,
        req: &Request<'_>,
        matched: Option<&RouteMatch<'_>>,
        env: &mut Env<'_>,
        remove_headers: &mut Vec<String>,
        response_headers: &mut Vec<(String, String)>,
        cache_hit: &mut bool,
        failed_open: &mut bool,
    ) -> (Option<Identity>, Result<(), Denial>) {
        // Delegation asserted by headers is never trusted, on any route, and never forwarded (also
        // when a shadowed refusal forwards the request).
        remove_headers.extend(self.delegation.present_untrusted(req.headers));
        // Reserved headers this gateway cannot keep from the upstream: refused, on every route.
        if let Err(denial) = crate::upstream::admit(
            self.host,
            self.reserved_header_action,
            req.headers,
            remove_headers,
        ) {
            return (None, Err(denial));
        }
        if let Err(e) = self.delegation.untrusted_headers(req.headers) {
            return (None, Err(Denial::Forbidden(e.as_str())));
        }
        if matched.is_some_and(|m| m.route.anonymous) {
            return (None, Ok(()));
        }
        let identity = match self.authenticate(req, env.cache, env.shared, cache_hit) {
            Ok(found) => found,
            // The operator chose to forward, without identity, what the IdP cannot vouch for now.
            Err(Denial::Unavailable { .. }) if self.fails_open(req) => {
                *failed_open = true;
                return (None, Ok(()));
            }
            Err(denial) => return (None, Err(denial)),
        };
        let identity = match self.agent_policy(req, identity, matched, env.shared) {
            Ok(id) => id,
            Err(denial) => return (None, Err(denial)),
        };
        if let Some(m) = matched {
            let missing = authz::missing_scopes(&m.route.scopes, &identity);
            if !missing.is_empty() {
                return (
                    Some(identity),
                    Err(Denial::InsufficientScope(m.route.scopes.join(" "))),
                );
            }
        }
        match self.rate_limit(req, &identity, matched, env.shared) {
            Ok(headers) => *response_headers = headers,
            Err(denial) => return (Some(identity), Err(denial)),
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

    /// The one credential of the request, proven, with the token's claims (none for an API key).
    fn authenticate(
        &self,
        req: &Request<'_>,
        cache: &mut TokenCache,
        shared: &dyn SharedData,
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
                let claims = self
                    .verify_token(token, req.now_s, cache, cache_hit)
                    .map_err(|why| self.token_denial(token, why))?;
                // RFC 9449 §7.2: a DPoP-bound token presented as a bearer token is refused.
                if self.dpop.required || bound_jkt(&claims).is_some() {
                    return Err(Denial::InvalidToken(TokenError::Binding));
                }
                mtls::check(&claims, req.peer_cert_sha256).map_err(Denial::InvalidToken)?;
                Ok(Identity::from_claims(&claims))
            }
            Ok(Presented::Dpop(token)) => {
                // RFC 9449 §7.1: a token refused under the DPoP scheme is challenged with DPoP.
                let dpop_denial = |d: Denial| match d {
                    Denial::InvalidToken(why) => Denial::InvalidDpopToken(why, self.dpop.algs()),
                    other => other,
                };
                let claims = self
                    .verify_token(token, req.now_s, cache, cache_hit)
                    .map_err(|why| dpop_denial(self.token_denial(token, why)))?;
                mtls::check(&claims, req.peer_cert_sha256)
                    .map_err(|why| dpop_denial(Denial::InvalidToken(why)))?;
                self.check_dpop(req, token, &claims, shared)?;
                Ok(Identity::from_claims(&claims))
            }
        }
    }

    /// Why a token was refused, as the client is told: unavailable (5xx) when the IdP could not be
    /// asked, otherwise `invalid_token`.
    fn token_denial(&self, token: &str, why: TokenError) -> Denial {
        if !why.is_unavailable() {
            return Denial::InvalidToken(why);
        }
        let p = self.provider_of(token);
        let u = p.map(|p| p.unavailable.clone()).unwrap_or_default();
        Denial::Unavailable {
            why,
            status: u.status,
            retry_after_s: u.retry_after_s,
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
            Ok(Presented::Bearer(token) | Presented::Dpop(token)) => {
                self.provider_of(token).is_some_and(|p| p.fail_open)
            }
            _ => false,
        }
    }

    /// Identity-bound rate limits: a token from every bucket that applies, or 429. On success, the
    /// `RateLimit` headers for the response.
    fn rate_limit(
        &self,
        req: &Request<'_>,
        id: &Identity,
        route: Option<&RouteMatch<'_>>,
        shared: &dyn SharedData,
    ) -> Result<Vec<(String, String)>, Denial> {
        let Some(rl) = &self.rate_limits else {
            return Ok(Vec::new());
        };
        let outcomes = rl
            .check(shared, id, route.map(|m| m.route.name.as_str()), req.now_s)
            .map_err(|_| Denial::RateLimited(vec![("retry-after".into(), "1".into())]))?;
        let headers = rate_limit::headers(&outcomes);
        if outcomes.iter().all(|o| o.admitted) {
            Ok(headers)
        } else {
            Err(Denial::RateLimited(headers))
        }
    }

    /// RFC 9449 §4.3 and §7.1: the request's one proof, valid for this request and token, made with the
    /// key the token is bound to, and never seen before by any worker.
    fn check_dpop(
        &self,
        req: &Request<'_>,
        token: &str,
        claims: &Claims,
        shared: &dyn SharedData,
    ) -> Result<(), Denial> {
        let fail = |e| Denial::InvalidDpop(e, self.dpop.algs());
        let proof = dpop::proof_header(req.headers)
            .map_err(fail)?
            .ok_or(fail(dpop::DpopError::Missing))?;
        let uri = self
            .dpop
            .request_uri(req.headers, req.path)
            .ok_or(fail(dpop::DpopError::Uri))?;
        let target = ProofTarget {
            method: req.method,
            uri: &uri,
            access_token: token,
            now_s: req.now_s,
        };
        let verified = self.dpop.verify(proof, &target).map_err(fail)?;
        if bound_jkt(claims) != Some(verified.jkt.as_str()) {
            return Err(fail(dpop::DpopError::KeyBinding));
        }
        self.dpop.record(shared, &verified, req.now_s).map_err(fail)
    }

    /// Agents as identities: the kind of the caller and its `act` chain, revocation (deny lists, feed,
    /// quarantine), the delegation policy (effective scopes replace the token's), tenant isolation.
    fn agent_policy(
        &self,
        req: &Request<'_>,
        mut id: Identity,
        route: Option<&RouteMatch<'_>>,
        shared: &dyn SharedData,
    ) -> Result<Identity, Denial> {
        // The verified token's claims (none for an API key), carried by the identity.
        let claims = id.claims.clone();
        let claims = claims.as_deref();
        let forbidden = |e: authz::delegation::DelegationError| Denial::Forbidden(e.as_str());
        if let Some(c) = claims {
            id.actors = self.delegation.chain(&c.extra).map_err(forbidden)?;
        }
        id.identity_kind = match id.actor() {
            Some(actor) => self.kinds.of_actor(actor),
            None => self.kinds.of_subject(&id, claims.map(|c| &c.extra)),
        };
        self.revocation
            .check(&id, shared, req.now_s)
            .map_err(Denial::InvalidToken)?;
        id.scopes = self
            .delegation
            .authorize(&id, route.map(|m| m.route.name.as_str()))
            .map_err(forbidden)?;
        if let Some(t) = &self.tenancy {
            let vars = route.map(|m| m.vars.as_slice()).unwrap_or_default();
            t.check(id.tenant.as_deref(), &t.requested(vars, req.headers))
                .map_err(|e| Denial::Forbidden(e.as_str()))?;
        }
        Ok(id)
    }

    /// How many key sets the providers installed so far: the verified-token cache is valid for one
    /// generation (see [`TokenCache::sync_generation`]).
    pub fn key_generation(&self) -> u64 {
        self.providers
            .iter()
            .fold(0u64, |g, p| g.wrapping_add(p.key_generation()))
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
        cache.sync_generation(self.key_generation());
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

/// The `cnf.jkt` a token is bound to (RFC 9449 §6), if any.
fn bound_jkt(c: &Claims) -> Option<&str> {
    c.extra.get("cnf")?.get("jkt")?.as_str()
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
    h.push(("x-auth-kind".into(), id.identity_kind.as_str().into()));
    if let Some(a) = id.actor() {
        h.push(("x-auth-actor".into(), a.subject.clone()));
    }
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
