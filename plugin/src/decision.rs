//! The decision pipeline, top to bottom in [`Engine::decide`]: route → credential → authorization →
//! risk → decision. Pure: the request facts and the time come in as values, the host lends the token
//! cache, the shared state and a clock ([`Env`]), and a [`Step`] comes out: the [`Decision`], or what
//! the adapter must get first (keys, an introspection answer).

use crate::authz::revocation::Revocation;
use crate::authz::routes::{Route, RouteMatch};
use crate::authz::target::{Target, TargetError};
use crate::authz::Policy;
use crate::config::{Config, ConfigError, Mode, OnError, ReservedHeaderAction};
use crate::credential::cache::TokenCache;
use crate::credential::jwt::Provider;
use crate::credential::{Credentials, Identity, Introspection, TokenError, Verified};
use crate::gateway::HostRules;
use crate::mcp::{Inspected, Mcp};
use crate::outbound::HostKind;
use crate::reply::{Denial, LocalReply};
use crate::risk::{Assessment, Inputs as RiskInputs, Risk, RiskVerdict, StateRef};
use crate::shared::SharedData;
use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

/// Prefix of the headers Warden sends upstream; any the client sent are removed.
pub const OWN_HEADER_PREFIX: &str = "x-auth-";

/// A header set on the forwarded request: name and value, each static (Warden's names, the
/// identity's kind) or owned.
pub type UpstreamHeader = (Cow<'static, str>, Cow<'static, str>);

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
    /// The adapter has not asked the host for the client certificate yet (`peer_cert_sha256` is
    /// then `None`): a certificate-bound token asks for it ([`Step::NeedPeerCertificate`]), any other
    /// request never needs it. `false`: `peer_cert_sha256` is what the host reports.
    pub peer_cert_unread: bool,
    /// The client's address as the gateway saw it (Envoy `source.address`, Kong `ngx.remote_addr`).
    pub source: Option<IpAddr>,
    /// The adapter has not asked the host for the client's address yet (`source` is then `None`):
    /// a config that uses it asks for it ([`Step::NeedClientAddress`]), any other never needs it. `false`: `source` is what the host reports.
    pub source_unread: bool,
    /// The request body, when the engine asked for it ([`Step::NeedBody`]).
    pub body: Body<'a>,
}

/// The request body as the adapter could read it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Body<'a> {
    /// Not read (the engine did not ask, or the request has none).
    #[default]
    Unread,
    /// The whole body.
    Read(&'a [u8]),
    /// Larger than the `max_bytes` the engine asked for: not read.
    TooLarge,
    /// Not readable on this gateway without a length (chunked on ngx_wasm_module): not read.
    LengthRequired,
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
    /// Hold a caller that cannot step up to its risk throttle's pace (429).
    Throttle,
    /// Refuse a suspended caller (403).
    Suspend,
    /// Answer locally with an error.
    Deny,
}

impl Verdict {
    /// The verdict a refusal stands for: risk's own, otherwise a plain deny.
    pub fn of(denial: &Denial) -> Verdict {
        match denial {
            Denial::StepUp { .. } | Denial::UserAbsent(_) => Verdict::StepUp,
            Denial::Blocked => Verdict::Block,
            Denial::RiskThrottled(_) => Verdict::Throttle,
            Denial::Suspended(_) => Verdict::Suspend,
            _ => Verdict::Deny,
        }
    }

    /// Name for audit records and `warden replay`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Tag => "tag",
            Verdict::StepUp => "step_up",
            Verdict::Block => "block",
            Verdict::Throttle => "throttle",
            Verdict::Suspend => "suspend",
            Verdict::Deny => "deny",
        }
    }
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
    /// The route rule that matched (its name, shared with the compiled route).
    pub route: Option<Arc<str>>,
    /// The proven caller.
    pub identity: Option<Identity>,
    /// Client-sent headers to remove before forwarding (our own namespace).
    pub remove_headers: Vec<String>,
    /// Headers to set on the forwarded request (Warden's own names, and values such as the kind,
    /// are static: not allocated per request).
    pub upstream_headers: Vec<UpstreamHeader>,
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
    /// A provider (index in [`Engine::providers`]) whose remote keys lacked what the token needed
    /// and that this request did not wait for: the adapter asks for an early (rate-limited) fetch
    /// on its next tick.
    pub keys_missed: Option<usize>,
    /// The scopes the matched route requires (for the decision record; shared with the compiled
    /// route).
    pub required_scopes: Arc<[String]>,
    /// The refusal counted as a failure in the behavioural records (a bad credential, a missing
    /// scope), for the decision record: replay counts it again without the credential.
    pub counted_failure: bool,
    /// The MCP call(s), when the request went to an MCP endpoint.
    pub mcp: Option<Inspected>,
    /// This block-level score put the token in quarantine (`revocation.quarantine`): an alert event.
    pub quarantined: bool,
}

impl Decision {
    /// Whether the upstream's answer (status, bytes) should come back through
    /// [`Engine::observe_response`]: a forwarded request the risk stage scored. The one rule for the
    /// adapter, the CLI and the engine.
    pub fn observes_response(&self) -> bool {
        self.risk.is_some() && self.reply.is_none()
    }

    /// When the answer is a `tools/list` result the adapter must buffer (at most this many bytes)
    /// and pass through [`Engine::filter_tools_list`]: a forwarded MCP `tools/list` call, enforced
    /// (shadow mode only records what it would have refused, and changes no answer).
    pub fn filters_tools_list(&self) -> Option<usize> {
        match (&self.reply, &self.mcp, self.mode) {
            (None, Some(seen), Mode::Enforce) if seen.lists_tools() => {
                usize::try_from(seen.max_response_bytes).ok()
            }
            _ => None,
        }
    }
}

/// What the engine needs next for a request: the decision, or something only the adapter can get.
/// The adapter gets it, records it with the engine, and calls [`Engine::step`] again; each need is
/// asked at most once per request ([`Progress`]), so the steps always end in `Decided`.
#[derive(Debug)]
pub enum Step {
    /// Apply this decision (boxed: the other steps are small).
    Decided(Box<Decision>),
    /// The remote keys of this provider (index in [`Engine::providers`]) lack the token's key:
    /// install newer keys from shared data, or fetch them (the request waits), then step again.
    NeedKeys(usize),
    /// An opaque token must be introspected first: dispatch the call (the request waits), hand the
    /// answer to [`Credentials::introspected`], then step again.
    Introspect(Introspection),
    /// The request goes to an MCP endpoint: read the whole body, at most `max_bytes` (the request
    /// waits), put it in [`Request::body`] ([`Body::TooLarge`] beyond that), then step again.
    NeedBody {
        /// Largest body to read.
        max_bytes: usize,
    },
    /// A certificate-bound token (RFC 8705) met a request whose client certificate was not read
    /// ([`Request::peer_cert_unread`]): read it into [`Request::peer_cert_sha256`], then step again.
    /// Asked once; a request still without it is refused (the binding is never skipped).
    NeedPeerCertificate,
    /// The config uses the client's address ([`Engine::wants_client_address`]: risk, the decision
    /// record, alerts) and it was not read ([`Request::source_unread`]): read it into
    /// [`Request::source`], then step again. Asked once, first; a request the risk stage would score
    /// still without it is refused as unassessable ([`Denial::RiskUnavailable`]).
    NeedClientAddress,
}

/// What the engine has asked the adapter for one request, and the gateway it asks on. Kept by the
/// adapter between steps.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    host: HostKind,
    introspection_asked: bool,
    keys_asked: bool,
    body_asked: bool,
    peer_cert_asked: bool,
    source_asked: bool,
}

impl Progress {
    /// A request not stepped yet, on gateway `host` (outbound calls are addressed per gateway).
    pub fn new(host: HostKind) -> Progress {
        Progress {
            host,
            introspection_asked: false,
            keys_asked: false,
            body_asked: false,
            peer_cert_asked: false,
            source_asked: false,
        }
    }
}

/// The decision as the stages build it: one per request, lent to each stage in turn.
#[derive(Debug, Default)]
pub(crate) struct Draft {
    /// The proven caller (kept when a scope or rate limit refuses it, so the refusal counts in its
    /// history).
    pub(crate) identity: Option<Identity>,
    /// Client-sent headers to strip: our own namespace, untrusted delegation headers.
    pub(crate) remove_headers: Vec<String>,
    /// `RateLimit` headers for the response.
    pub(crate) response_headers: Vec<(String, String)>,
    /// The verified-token cache answered.
    pub(crate) cache_hit: bool,
    /// The IdP could not vouch for the token and its provider fails open.
    pub(crate) failed_open: bool,
    /// The provider whose remote keys lacked the token's key.
    pub(crate) keys_missed: Option<usize>,
    /// A certificate-bound token was refused because the client certificate was not read yet.
    pub(crate) peer_cert_wanted: bool,
    /// The risk stage's result.
    pub(crate) assessment: Option<Assessment>,
    /// The behavioural records touched.
    pub(crate) state: StateRef,
    /// The refusal counted as a failure in the behavioural records.
    pub(crate) counted_failure: bool,
    /// A proven caller the agent policy refused (revoked, quarantined, delegation, tenant).
    pub(crate) refused_identity: Option<Identity>,
    /// The MCP call(s) of a request to an MCP endpoint.
    pub(crate) mcp: Option<Inspected>,
    /// The block-level score quarantined the token.
    pub(crate) quarantined: bool,
}

/// The modes a request is decided in, found once from the route and the config.
#[derive(Debug, Clone, Copy)]
struct Modes {
    /// Credential and policy checks: the route's mode, else the top-level one.
    checks: Mode,
    /// The risk stage: the route's mode, else enforce only when both the top level and `risk` enforce.
    risk: Mode,
}

/// The request id of replies and the audit record: the client's `x-request-id` when it is usable
/// (non-empty, at most 128 bytes), otherwise one the adapter generates.
pub fn request_id<'a>(
    headers: &'a [(String, String)],
    generate: impl FnOnce() -> String,
) -> Cow<'a, str> {
    match headers.iter().find(|(n, _)| n == "x-request-id") {
        Some((_, id)) if !id.is_empty() && id.len() <= 128 => Cow::Borrowed(id),
        _ => Cow::Owned(generate()),
    }
}

/// The `http` sink's section, compiled: required with `audit.sink: http`, refused with any other sink.
fn shipping(
    c: &crate::config::AuditConfig,
) -> Result<Option<crate::audit::shipping::Shipping>, ConfigError> {
    use crate::config::AuditSink;
    match (c.sink, &c.http) {
        (AuditSink::Http, Some(h)) => crate::audit::shipping::Shipping::compile(h).map(Some),
        (AuditSink::Http, None) => Err(ConfigError::new(
            "audit.http",
            "required with sink `http`: the collector's service",
        )),
        (_, Some(_)) => Err(ConfigError::new(
            "audit.sink",
            "`audit.http` is configured: set sink to `http`, or leave `audit.http` out",
        )),
        (_, None) => Ok(None),
    }
}

/// The compiled config: everything needed to decide, nothing that talks to a host.
///
/// How an adapter uses it, per request: build a [`Request`] and a [`Progress`], then call
/// [`Engine::step`] until it returns [`Step::Decided`], serving each need in between (keys,
/// introspection); apply the decision; when [`Decision::observes_response`], hand the upstream's
/// answer to [`Engine::observe_response`]. Offline callers (the CLI, tests, benchmarks) ask for
/// nothing and call [`Engine::decide`].
pub struct Engine {
    mode: Mode,
    credentials: Credentials,
    policy: Policy,
    audit: bool,
    audit_sink: crate::config::AuditSink,
    risk: Option<Risk>,
    reserved_header_action: ReservedHeaderAction,
    host: HostRules,
    /// Claims the decision record carries besides `audit::RECORDED_CLAIMS` (`kinds.claim`).
    recorded_claims: Vec<String>,
    alerts: Option<crate::alerts::Alerts>,
    /// The `http` sink's collector (`audit.http`).
    shipping: Option<crate::audit::shipping::Shipping>,
    mcp: Mcp,
}

impl Engine {
    /// Parses and compiles a config document; the error names the offending field.
    pub fn from_json(json: &[u8]) -> Result<Engine, ConfigError> {
        Engine::compile(&Config::from_json(json)?)
    }

    /// Compiles a parsed config.
    pub fn compile(c: &Config) -> Result<Engine, ConfigError> {
        let credentials = Credentials::compile(c)?;
        let policy = Policy::compile(c)?;
        let mcp = Mcp::compile(c)?;
        if credentials.is_empty() {
            return Err(ConfigError::new(
                "providers",
                "no providers and no api_keys: every protected request would be refused",
            ));
        }
        let risk = match &c.risk {
            Some(r) if r.enabled => Some(Risk::compile(
                r,
                c.tenancy
                    .as_ref()
                    .map_or("tenant", |t| t.path_variable.as_str()),
            )?),
            _ => None,
        };
        Ok(Engine {
            mode: c.mode,
            credentials,
            policy,
            audit: c.audit.enabled,
            audit_sink: c.audit.sink,
            risk,
            reserved_header_action: c.reserved_header_action,
            host: HostRules::default(),
            recorded_claims: crate::authz::guardrails::recorded_claims(c),
            alerts: c
                .alerts
                .as_ref()
                .map(crate::alerts::Alerts::compile)
                .transpose()?,
            shipping: shipping(&c.audit)?,
            mcp,
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

    /// The engine with the host's signature checks where it has them (Envoy's `verify_signature`,
    /// found by [`crate::credential::native::Signatures::detect`] at configure time); every token
    /// rule stays the engine's.
    pub fn with_signatures(mut self, signatures: crate::credential::native::Signatures) -> Engine {
        self.credentials.set_signatures(signatures);
        self
    }

    /// The engine with the deployment's slot key ([`crate::slot::SlotKey::shared`]): where rate-limit
    /// buckets, risk records, DPoP proof ids and quarantine entries live. The adapter sets it once per config, from shared data, so every
    /// worker and every later config agree. Without it the key is all zeros (offline use).
    pub fn with_slot_key(mut self, key: crate::slot::SlotKey) -> Engine {
        self.policy.set_slot_key(key);
        self.credentials.set_slot_key(key);
        if let Some(risk) = &mut self.risk {
            risk.set_slot_key(key);
        }
        self
    }

    /// The revocation lists, feed and quarantine (the adapter drives the feed; the risk stage calls
    /// [`Revocation::quarantine`] for a block-level score).
    pub fn revocation(&self) -> &Revocation {
        self.policy.revocation()
    }

    /// Whether audit records are wanted.
    pub fn audit_enabled(&self) -> bool {
        self.audit
    }

    /// Where decision records go on this gateway (`audit.sink`, or the log where the host keeps
    /// no filter state).
    pub fn audit_sink(&self) -> crate::config::AuditSink {
        crate::audit::sink(self.audit_sink, self.host)
    }

    /// The alerts (`alerts`), when configured: the adapter queues the events decisions raise and
    /// sends them on its tick.
    pub fn alerts(&self) -> Option<&crate::alerts::Alerts> {
        self.alerts.as_ref()
    }

    /// The `http` sink's collector (`audit.http`), when that is the sink: the adapter hands each
    /// record to its worker's [`crate::audit::shipping::Outbox`] and sends batches on its tick.
    pub fn shipping(&self) -> Option<&crate::audit::shipping::Shipping> {
        self.shipping.as_ref()
    }

    /// Whether MCP endpoints are configured (their bodies are read: on Envoy that needs the Wasm
    /// filter's `allow_on_headers_stop_iteration`).
    pub fn has_mcp(&self) -> bool {
        !self.mcp.is_empty()
    }

    /// `risk.deny_cidrs_feed`, when scoring and configured (the adapter fetches it on its tick).
    pub fn risk_deny_feed(&self) -> Option<&crate::risk::feed::DenyFeed> {
        self.risk.as_ref().and_then(Risk::deny_feed)
    }

    /// Whether requests are risk-scored.
    pub fn risk_enabled(&self) -> bool {
        self.risk.is_some()
    }

    /// Behavioural record slots in use (identity, source) and the capacity of each, when scoring:
    /// the `warden_state_slots_in_use` gauge.
    pub fn slots_in_use(&self, shared: &dyn SharedData) -> Option<(u64, u64, u32)> {
        self.risk.as_ref().map(|r| r.slots_in_use(shared))
    }

    /// Claims the decision record carries besides `audit::RECORDED_CLAIMS` (see
    /// [`crate::audit::AuditRecord::new`]).
    pub fn recorded_claims(&self) -> &[String] {
        &self.recorded_claims
    }

    /// The header the risk stage reads the edge's country from (`risk.geo_header`), when scoring
    /// and the edge owns it (`risk.geo_header_from_edge`).
    pub fn geo_header(&self) -> Option<&str> {
        self.risk.as_ref().and_then(Risk::geo_header)
    }

    /// Decides a recorded request again from its recorded identity, without its credential:
    /// `warden replay --audit`. The credential stage is skipped (the record proves nothing, it
    /// reports what was proven); every later stage runs as in [`Engine::decide`] on `identity`.
    pub fn redecide(&self, req: &Request<'_>, identity: Identity, env: &mut Env<'_>) -> Decision {
        let target = self.policy.target(req);
        let route = target.as_ref().ok().and_then(|t| self.policy.route(t));
        let mut draft = Draft::new(req.headers);
        // An MCP call is inspected as the filter did, from the body the record's call rebuilds.
        let outcome = match &target {
            Ok(t) => self
                .mcp
                .find(&t.path)
                .map_or(Ok(()), |(index, _)| {
                    self.inspect_mcp(index, req, &mut draft)
                })
                .and_then(|()| {
                    self.authorize_identity(req, &t.path, identity, route.as_ref(), env, &mut draft)
                }),
            Err(e) => Err(Denial::BadTarget(*e)),
        };
        self.conclude(req, route.as_ref(), env, draft, outcome)
    }

    /// A recorded refusal that came before any identity (no or invalid credential) and counted as
    /// a failure: counted again in the source's record, as the filter did (`warden replay --audit`).
    pub fn count_failure(&self, source: Option<IpAddr>, now_s: u64, shared: &dyn SharedData) {
        if let Some(risk) = &self.risk {
            risk.record_failure(&risk.slots(None, source), now_s, shared);
        }
    }

    /// The credential stage: providers, API keys, DPoP (the adapter records introspection answers
    /// with [`Credentials::introspected`]).
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The compiled providers (the adapter fetches their remote keys).
    pub fn providers(&self) -> &[Provider] {
        self.credentials.providers()
    }

    /// How many key sets the providers installed so far (see [`TokenCache::sync_generation`]).
    pub fn key_generation(&self) -> u64 {
        self.credentials.key_generation()
    }

    /// A bearer token's claims: from the cache (claim checks re-run) or verified now. What
    /// `warden token inspect` and the benchmarks call.
    pub fn verify_token(
        &self,
        token: &str,
        now_s: u64,
        cache: &mut TokenCache,
    ) -> Result<Verified, TokenError> {
        self.credentials
            .verify_token(token, now_s, cache)
            .map_err(|r| r.why)
    }

    /// Decides one request without asking the adapter for anything (keys as they are, opaque tokens
    /// from the cache): the offline path of the CLI, the tests and the benchmarks.
    pub fn decide(&self, req: &Request<'_>, env: &mut Env<'_>) -> Decision {
        if let Some(d) = self.metadata(req) {
            return d;
        }
        let target = self.policy.target(req);
        let route = target.as_ref().ok().and_then(|t| self.policy.route(t));
        let mut draft = Draft::new(req.headers);
        let outcome = self.authorize(req, &target, route.as_ref(), env, &mut draft);
        self.conclude(req, route.as_ref(), env, draft, outcome)
    }

    /// The next step of one request: a decision, or what the adapter must get first (see [`Step`]).
    pub fn step(&self, req: &Request<'_>, env: &mut Env<'_>, progress: &mut Progress) -> Step {
        // Read only for what names it: any other config never pays the host call.
        if req.source_unread && !progress.source_asked && self.wants_client_address() {
            progress.source_asked = true;
            return Step::NeedClientAddress;
        }
        if let Some(d) = self.metadata(req) {
            return Step::Decided(Box::new(d));
        }
        // The body first: nothing is decided (and no state written) before it is in.
        if !progress.body_asked {
            progress.body_asked = true;
            if let Some(max_bytes) = self.body_wanted(req) {
                return Step::NeedBody { max_bytes };
            }
        }
        if !progress.introspection_asked {
            progress.introspection_asked = true;
            let asked =
                self.credentials
                    .introspection(progress.host, req.headers, req.now_s, env.cache);
            if let Some(x) = asked {
                return Step::Introspect(x);
            }
        }
        let target = self.policy.target(req);
        let route = target.as_ref().ok().and_then(|t| self.policy.route(t));
        let mut draft = Draft::new(req.headers);
        let outcome = self.authorize(req, &target, route.as_ref(), env, &mut draft);
        // Before any stage wrote state (the binding is checked before DPoP, revocation and the
        // rest): the request is decided again with the client certificate.
        if let (Err(_), true, false) = (&outcome, draft.peer_cert_wanted, progress.peer_cert_asked)
        {
            progress.peer_cert_asked = true;
            return Step::NeedPeerCertificate;
        }
        // Before any stage wrote state: the request is decided again once the keys are in.
        if let (Err(_), Some(provider), false) = (&outcome, draft.keys_missed, progress.keys_asked)
        {
            progress.keys_asked = true;
            return Step::NeedKeys(provider);
        }
        let decision = self.conclude(req, route.as_ref(), env, draft, outcome);
        Step::Decided(Box::new(decision))
    }

    /// Whether a request's client address is used: by the risk stage (behavioural records per
    /// address, deny lists), the decision record and alerts (its `source_ip`).
    pub fn wants_client_address(&self) -> bool {
        self.risk.is_some() || self.audit_enabled() || self.alerts().is_some()
    }

    /// The RFC 9728 metadata of an MCP endpoint, when the request asks for it (no token needed).
    fn metadata(&self, req: &Request<'_>) -> Option<Decision> {
        let reply = self.mcp.metadata(req.method, req.path)?;
        Some(Decision {
            verdict: Verdict::Allow,
            status: reply.status,
            reason: "mcp_metadata",
            route: None,
            identity: None,
            remove_headers: Vec::new(),
            upstream_headers: Vec::new(),
            reply: Some(reply),
            response_headers: Vec::new(),
            mode: Mode::Enforce,
            cache_hit: false,
            risk: None,
            state: StateRef::default(),
            keys_missed: None,
            required_scopes: Arc::default(),
            counted_failure: false,
            mcp: None,
            quarantined: false,
        })
    }

    /// The body limit of a JSON-RPC request to an MCP endpoint whose body is not read yet.
    fn body_wanted(&self, req: &Request<'_>) -> Option<usize> {
        match (req.method, req.body, self.mcp.find(req.path)) {
            ("POST", Body::Unread, Some((_, ep))) => usize::try_from(ep.max_body_bytes).ok(),
            _ => None,
        }
    }

    /// The answer of a forwarded `tools/list` call ([`Decision::filters_tools_list`]) cut to the
    /// tools the caller may call; `None` when the whole answer exceeded the limit (`body` not read):
    /// a JSON-RPC error in the answer's form then.
    pub fn filter_tools_list(
        &self,
        decision: &Decision,
        content_type: &str,
        body: Option<&[u8]>,
    ) -> Vec<u8> {
        let seen = decision.mcp.as_ref();
        match (seen.and_then(|s| self.mcp.endpoint(s.endpoint)), body) {
            (Some(ep), Some(body)) => {
                crate::mcp::tools_list::filter(ep, decision.identity.as_ref(), content_type, body)
            }
            _ => {
                let id = seen
                    .and_then(|s| s.calls.first())
                    .and_then(|c| c.id.as_ref());
                crate::mcp::tools_list::too_large(content_type, id)
            }
        }
    }

    /// Header check, credential, agent policy (delegation, revocation, tenancy), scopes and rate
    /// limits: whether the caller may pass. The proven caller goes to `draft.identity` (also when a
    /// scope is missing, so that the refusal counts in its history).
    fn authorize(
        &self,
        req: &Request<'_>,
        target: &Result<Target<'_>, TargetError>,
        route: Option<&RouteMatch<'_>>,
        env: &mut Env<'_>,
        draft: &mut Draft,
    ) -> Result<(), Denial> {
        // Delegation asserted by headers is never trusted, on any route, and never forwarded (also
        // when a shadowed refusal forwards the request).
        let untrusted = self.policy.present_untrusted(req.headers);
        let refused = self.policy.refuse_untrusted(&untrusted);
        draft.remove_headers.extend(untrusted);
        // Reserved headers this gateway cannot keep from the upstream: refused, on every route.
        crate::upstream::admit(
            self.host,
            self.reserved_header_action,
            req.headers,
            &draft.remove_headers,
        )?;
        refused?;
        let target = target.as_ref().map_err(|e| Denial::BadTarget(*e))?;
        if let Some((index, _)) = self.mcp.find(&target.path) {
            self.inspect_mcp(index, req, draft)?;
        }
        if route.is_some_and(|m| m.route.anonymous) {
            let unchecked = self.credentials.unchecked(req.headers)?;
            draft.remove_headers.extend(unchecked);
            return Ok(());
        }
        let identity = match self
            .credentials
            .authenticate(req, env.cache, env.shared, draft)
        {
            Ok(identity) => identity,
            // The operator chose to forward, without identity, what the IdP cannot vouch for now.
            // Not on an MCP endpoint: its per-tool rules need the identity.
            Err(Denial::Unavailable {
                fail_open: true, ..
            }) if draft.mcp.is_none() => {
                draft.failed_open = true;
                return Ok(());
            }
            Err(denial) => return Err(denial),
        };
        self.authorize_identity(req, &target.path, identity, route, env, draft)
    }

    /// What a proven caller may do: agent policy (delegation, revocation, tenancy), scopes, rate
    /// limits.
    fn authorize_identity(
        &self,
        req: &Request<'_>,
        path: &str,
        identity: Identity,
        route: Option<&RouteMatch<'_>>,
        env: &mut Env<'_>,
        draft: &mut Draft,
    ) -> Result<(), Denial> {
        if draft.mcp.is_none() {
            self.mcp.refuse_elsewhere(&identity)?;
        }
        let mut identity = identity;
        if let Err(denial) = self
            .policy
            .agent_policy(req, path, &mut identity, route, env.shared)
        {
            // Known for the record and the alert; not a failure in its behavioural record.
            draft.refused_identity = Some(identity);
            return Err(denial);
        }
        let identity = draft.identity.insert(identity);
        Policy::scopes(route, identity)?;
        match &draft.mcp {
            // An MCP endpoint's calls are authorised by its rules, whatever the routes say.
            Some(seen) => self.mcp.authorize(seen, identity)?,
            None => self.policy.unmatched(route)?,
        }
        Policy::guardrails(req, route, identity)?;
        if let Some(seen) = &draft.mcp {
            self.mcp.guardrails(seen, req, identity)?;
        }
        let calls = draft.mcp.as_ref().map(|s| s.rate_limits.as_slice());
        draft.response_headers =
            self.policy
                .rate_limit(req, identity, route, calls.unwrap_or_default(), env.shared)?;
        Ok(())
    }

    /// An MCP request: its calls read from the body and checked against the headers that mirror
    /// them, and the client's credentials kept from the MCP server (no token passthrough). Where the
    /// gateway cannot remove a header, a credential header is emptied in place, so one sent twice
    /// is refused (its second copy would reach the server).
    fn inspect_mcp(
        &self,
        index: usize,
        req: &Request<'_>,
        draft: &mut Draft,
    ) -> Result<(), Denial> {
        let (seen, read) = self.mcp.inspect(index, req.method, req.headers, req.body);
        let present: Vec<String> = self
            .mcp
            .credential_headers(&seen)
            .iter()
            .filter(|h| req.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(h)))
            .map(|h| (*h).to_owned())
            .collect();
        draft.mcp = Some(seen);
        crate::upstream::admit(
            self.host,
            ReservedHeaderAction::Overwrite,
            req.headers,
            &present,
        )?;
        draft.remove_headers.extend(present);
        read.map_err(Denial::Mcp)
    }

    /// Risk, then the decision: the modes, the risk stage's say, the reply or the headers.
    fn conclude(
        &self,
        req: &Request<'_>,
        route: Option<&RouteMatch<'_>>,
        env: &mut Env<'_>,
        mut draft: Draft,
        outcome: Result<(), Denial>,
    ) -> Decision {
        let modes = self.modes(route.map(|m| m.route));
        let outcome = self.assess(req, route, modes.risk, env, &mut draft, outcome);
        let route = route.map(|m| m.route);
        let mode = match (&outcome, &draft.assessment) {
            // Forwarding would hand the upstream a client's value of a header it trusts.
            (Err(d), _) if d.always_enforced() => Mode::Enforce,
            (_, Some(_)) => modes.risk,
            (_, None) => modes.checks,
        };
        draft.decision(req, route, mode, outcome, self.host)
    }

    /// The modes of a request on `route`: a route's own mode overrides the others (phased rollout).
    fn modes(&self, route: Option<&Route>) -> Modes {
        let checks = route.and_then(|r| r.mode).unwrap_or(self.mode);
        let risk = match (route.and_then(|r| r.mode), &self.risk) {
            (Some(m), _) => m,
            (None, Some(risk)) if self.mode == Mode::Enforce && risk.mode == Mode::Enforce => {
                Mode::Enforce
            }
            (None, Some(_)) => Mode::Shadow,
            (None, None) => checks,
        };
        Modes { checks, risk }
    }

    /// Risk: only a proven, authorised caller is scored (in `mode`); refusals feed the failure
    /// counters.
    fn assess(
        &self,
        req: &Request<'_>,
        matched: Option<&RouteMatch<'_>>,
        mode: Mode,
        env: &mut Env<'_>,
        draft: &mut Draft,
        outcome: Result<(), Denial>,
    ) -> Result<(), Denial> {
        let Some(risk) = &self.risk else {
            return outcome;
        };
        let route = matched.map(|m| m.route);
        match (outcome, &draft.identity) {
            // An adapter that never read the address: not scored without it (fail closed).
            (Ok(()), Some(_)) if req.source_unread => Err(Denial::RiskUnavailable),
            (Ok(()), Some(id)) => {
                let (addressed, object) = risk.addressed(matched, draft.mcp.as_ref());
                let inputs = RiskInputs {
                    method: req.method,
                    path: req.path,
                    headers: req.headers,
                    source: req.source,
                    now_s: req.now_s,
                    sensitivity: route.map(|r| r.sensitivity).unwrap_or_default().max(
                        draft
                            .mcp
                            .as_ref()
                            .and_then(|m| m.sensitivity)
                            .unwrap_or_default(),
                    ),
                    route_step_up: route.is_some_and(|r| r.step_up)
                        || draft.mcp.as_ref().is_some_and(|m| m.step_up),
                    mode,
                    route: addressed.as_deref(),
                    object: object.as_deref(),
                };
                let (a, refs) = risk.assess(&inputs, id, env.shared, env.clock_us);
                draft.state = refs;
                // A block-level score counts towards quarantine (`revocation.quarantine`), when enforced.
                if a.verdict == RiskVerdict::Block && mode == Mode::Enforce {
                    // Best effort: shared data failing only delays the quarantine.
                    let now = self.revocation().quarantine(env.shared, id, req.now_s);
                    draft.quarantined = matches!(now, Ok(true));
                }
                let result = risk_outcome(risk, &a);
                draft.assessment = Some(a);
                result
            }
            (Err(denial), _) => {
                draft.state = risk.slots(draft.identity.as_ref(), req.source);
                if denial.is_failure() {
                    risk.record_failure(&draft.state, req.now_s, env.shared);
                    draft.counted_failure = true;
                }
                Err(denial)
            }
            (Ok(()), None) => Ok(()),
        }
    }

    /// The response phase of a forwarded request: the upstream's status and body size teach the
    /// caller's record (failures, usual response volume). Does nothing unless
    /// [`Decision::observes_response`].
    pub fn observe_response(
        &self,
        decision: &Decision,
        status: u16,
        bytes: u64,
        now_s: u64,
        shared: &dyn SharedData,
    ) {
        if let (Some(risk), true) = (&self.risk, decision.observes_response()) {
            risk.observe_response(&decision.state, status, bytes, now_s, shared);
        }
    }

    /// Writes the response facts [`Engine::observe_response`] left waiting in this engine for the
    /// identity's next request (`risk/pending.rs`): the adapter calls it on its tick and before it
    /// lets go of the engine; offline callers before they read the state. No call when none wait.
    pub fn flush_responses(&self, shared: &dyn SharedData) {
        if let Some(risk) = &self.risk {
            risk.flush_responses(shared);
        }
    }
}

impl Draft {
    /// A draft that strips every client-sent header of our namespace.
    fn new(headers: &[(String, String)]) -> Draft {
        Draft {
            remove_headers: own_headers(headers),
            ..Draft::default()
        }
    }

    /// The decision the stages came to, taken in `mode`.
    fn decision(
        self,
        req: &Request<'_>,
        route: Option<&Route>,
        mode: Mode,
        outcome: Result<(), Denial>,
        host: HostRules,
    ) -> Decision {
        let (verdict, reason, reply) = match &outcome {
            Ok(()) if self.failed_open => (Verdict::Allow, "idp_unavailable_fail_open", None),
            Ok(()) => {
                let tagged = self
                    .assessment
                    .as_ref()
                    .is_some_and(|a| a.verdict >= RiskVerdict::Tag);
                let verdict = if tagged { Verdict::Tag } else { Verdict::Allow };
                (verdict, "ok", None)
            }
            Err(denial) => {
                let mut reply = denial.reply(req.request_id);
                if let Some(seen) = &self.mcp {
                    let bare = matches!(denial, Denial::NoCredential);
                    crate::mcp::challenge(&mut reply, seen, bare);
                }
                (Verdict::of(denial), denial.reason(), Some(reply))
            }
        };
        // The identity is asserted upstream only when the request passed authorization.
        let authorised = outcome.as_ref().map_or_else(Denial::is_risk, |()| true);
        let mut upstream_headers = Vec::new();
        if let (Some(id), true) = (&self.identity, authorised) {
            // One allocation for all of them.
            upstream_headers.reserve_exact(MAX_UPSTREAM_HEADERS);
            identity_headers(id, &mut upstream_headers);
        }
        if let Some(a) = &self.assessment {
            risk_headers(a, &mut upstream_headers);
        }
        // A `tools/list` answer is filtered: it must come back uncompressed.
        if self.mcp.as_ref().is_some_and(Inspected::lists_tools) {
            upstream_headers.push(("accept-encoding".into(), "identity".into()));
        }
        let (status, reply) = match (mode, reply) {
            (_, None) => (200, None),
            (Mode::Shadow, Some(r)) => (r.status, None),
            (Mode::Enforce, Some(r)) => (r.status, Some(r)),
        };
        let (remove_headers, upstream_headers) =
            crate::upstream::edits(host, self.remove_headers, upstream_headers);
        Decision {
            verdict,
            status,
            reason,
            route: route.map(|r| Arc::clone(&r.name)),
            required_scopes: route.map(|r| Arc::clone(&r.scopes)).unwrap_or_default(),
            counted_failure: self.counted_failure,
            quarantined: self.quarantined,
            identity: self.identity.or(self.refused_identity),
            remove_headers,
            upstream_headers,
            reply,
            response_headers: self.response_headers,
            mode,
            cache_hit: self.cache_hit,
            risk: self.assessment,
            state: self.state,
            keys_missed: self.keys_missed,
            mcp: self.mcp,
        }
    }
}

/// Names of client-sent headers in our namespace (lower-cased, once each), `_` spellings included
/// (`x_auth_subject` is `x-auth-subject` to CGI-style upstreams).
fn own_headers(headers: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (name, _) in headers {
        // The prefix test folds case itself: only a header to remove is lower-cased (allocated).
        if !crate::upstream::header_has_prefix(name, OWN_HEADER_PREFIX) {
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if !out.contains(&lower) {
            out.push(lower);
        }
    }
    out
}

/// The most headers a forwarded request gets: the identity's six, the risk stage's two and
/// `accept-encoding`.
const MAX_UPSTREAM_HEADERS: usize = 9;

/// What the upstream learns of the caller, added to `h`.
fn identity_headers(id: &Identity, h: &mut Vec<UpstreamHeader>) {
    h.push(("x-auth-subject".into(), id.subject.clone().into()));
    if let Some(t) = &id.tenant {
        h.push(("x-auth-tenant".into(), t.clone().into()));
    }
    if let Some(c) = &id.client {
        h.push(("x-auth-client".into(), c.clone().into()));
    }
    h.push(("x-auth-scopes".into(), id.scopes.join(" ").into()));
    h.push(("x-auth-kind".into(), id.kind.as_str().into()));
    if let Some(a) = id.actor() {
        h.push(("x-auth-actor".into(), a.subject.clone().into()));
    }
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
        RiskVerdict::Throttle => Err(Denial::RiskThrottled(a.retry_after_s.unwrap_or(1))),
        RiskVerdict::Suspend => Err(Denial::Suspended(a.retry_after_s.unwrap_or(1))),
    }
}

/// `x-auth-risk-score` on every scored request; `x-auth-risk-factors` from `risk.tag_at`; added to
/// `h`.
fn risk_headers(a: &Assessment, h: &mut Vec<UpstreamHeader>) {
    if let Some(score) = a.score {
        h.push(("x-auth-risk-score".into(), score.to_string().into()));
        if a.verdict >= RiskVerdict::Tag && !a.factors.is_empty() {
            let names: Vec<&str> = a.factors.iter().map(|(n, _)| *n).collect();
            h.push(("x-auth-risk-factors".into(), names.join(",").into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::MemoryStore;

    /// One provider with remote keys (none fetched yet), one introspecting provider.
    const CONFIG: &str = r#"{"providers": [
        {"name": "remote", "issuer": "https://remote.example.com", "audiences": ["orders-api"],
         "jwks_uri": {"url": "https://remote.example.com/keys", "envoy_cluster": "idp"}},
        {"name": "opaque", "issuer": "https://opaque.example.com", "audiences": ["orders-api"],
         "introspection": {"endpoint": {"url": "https://opaque.example.com/introspect",
                                        "envoy_cluster": "idp"},
                           "client_id": "warden", "client_secret": "s3cret"}}],
        "routes": [{"name": "any", "prefix": "/"}]}"#;

    const NOW: u64 = 1_500;

    fn engine() -> Engine {
        Engine::from_json(CONFIG.as_bytes()).unwrap()
    }

    /// Steps `token` on `GET /x` with `progress`, on a cache the caller keeps.
    fn step(e: &Engine, token: &str, cache: &mut TokenCache, progress: &mut Progress) -> Step {
        let headers = vec![("authorization".to_owned(), format!("Bearer {token}"))];
        let req = Request {
            method: "GET",
            path: "/x",
            headers: &headers,
            request_id: "r",
            now_s: NOW,
            peer_cert_sha256: None,
            peer_cert_unread: false,
            source_unread: false,
            source: None,
            body: Default::default(),
        };
        let store = MemoryStore::default();
        let mut env = Env {
            cache,
            shared: &store,
            clock_us: &|| 0,
        };
        e.step(&req, &mut env, progress)
    }

    /// An unsigned-looking JWT of the remote issuer (its keys have not arrived).
    fn remote_token() -> String {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let header = b64(r#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#);
        let claims = b64(r#"{"iss":"https://remote.example.com","sub":"a","exp":9999999999}"#);
        format!("{header}.{claims}.{}", b64("sig"))
    }

    #[test]
    fn missing_keys_are_asked_for_once_then_decided() {
        let e = engine();
        let mut cache = TokenCache::default();
        let mut progress = Progress::new(HostKind::Envoy);
        let token = remote_token();
        match step(&e, &token, &mut cache, &mut progress) {
            Step::NeedKeys(0) => {}
            other => panic!("expected NeedKeys(0), got {other:?}"),
        }
        // Nothing arrived: the second step decides, and tells the adapter the keys were missed.
        match step(&e, &token, &mut cache, &mut progress) {
            Step::Decided(d) => {
                assert_eq!((d.status, d.reason), (503, "keys_unavailable"));
                assert_eq!(d.keys_missed, Some(0));
            }
            other => panic!("expected a decision, got {other:?}"),
        }
    }

    #[test]
    fn opaque_tokens_are_introspected_then_decided_from_the_answer() {
        let e = engine();
        let mut cache = TokenCache::default();
        let mut progress = Progress::new(HostKind::Envoy);
        let asked = match step(&e, "opaque-1", &mut cache, &mut progress) {
            Step::Introspect(x) => x,
            other => panic!("expected Introspect, got {other:?}"),
        };
        assert_eq!(asked.call.upstream, "idp");
        let body = br#"{"active": true, "sub": "agent-7", "aud": "orders-api",
            "iss": "https://opaque.example.com", "exp": 2000}"#;
        assert_eq!(
            e.credentials()
                .introspected(&asked, Ok((200, body)), NOW, &mut cache),
            Ok(())
        );
        match step(&e, "opaque-1", &mut cache, &mut progress) {
            Step::Decided(d) => assert_eq!((d.status, d.reason), (200, "ok")),
            other => panic!("expected a decision, got {other:?}"),
        }
        // A failed call is recorded as an unavailable IdP, and said why.
        let mut progress = Progress::new(HostKind::Envoy);
        let Step::Introspect(asked) = step(&e, "opaque-2", &mut cache, &mut progress) else {
            panic!("expected Introspect");
        };
        assert!(e
            .credentials()
            .introspected(&asked, Err("refused".into()), NOW, &mut cache)
            .is_err());
        match step(&e, "opaque-2", &mut cache, &mut progress) {
            Step::Decided(d) => assert_eq!((d.status, d.reason), (503, "idp_unavailable")),
            other => panic!("expected a decision, got {other:?}"),
        }
    }

    #[test]
    fn the_request_id_is_the_clients_when_usable() {
        let hs = |v: &str| vec![("x-request-id".to_owned(), v.to_owned())];
        let gen = || "gen".to_owned();
        assert_eq!(request_id(&hs("abc"), gen), "abc");
        assert_eq!(request_id(&hs(""), gen), "gen");
        assert_eq!(request_id(&hs(&"a".repeat(129)), gen), "gen");
        assert_eq!(request_id(&hs(&"a".repeat(128)), gen).len(), 128);
        assert_eq!(request_id(&[], gen), "gen");
    }

    #[test]
    fn only_scored_forwarded_requests_observe_the_response() {
        let e = engine();
        let mut cache = TokenCache::default();
        let mut progress = Progress::new(HostKind::Envoy);
        let _ = step(&e, &remote_token(), &mut cache, &mut progress);
        let Step::Decided(d) = step(&e, &remote_token(), &mut cache, &mut progress) else {
            panic!("expected a decision");
        };
        assert!(!d.observes_response());
    }
}
