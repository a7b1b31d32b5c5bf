//! The proxy-wasm adapter: the only code that talks to the host (Envoy or Kong).
//! It reads the request once, steps the engine (serving what it asks for: keys, introspection),
//! applies the decision and logs the audit record.

use crate::audit::{AuditRecord, Outcome};
use crate::credential::cache::TokenCache;
use crate::credential::native::Signatures;
use crate::credential::{introspection, Introspection};
use crate::decision::{self, Body, Decision, Engine, Env, Progress, Request, Step};
use crate::gateway::{BodyPlan, HostRules};
use crate::outbound::HostKind;
use crate::reply::{self, LocalReply};
use crate::schedule::{self, Timers};
use crate::slot::SlotKey;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::cell::{Cell, OnceCell, RefCell};
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, UNIX_EPOCH};

pub mod alerts;
pub mod fetch;
pub mod gateway;
pub mod metrics;
pub mod record;
pub mod revocation;
pub mod risk;
pub mod shared;
pub mod stages;

use self::risk::RiskMetrics;
use self::shared::HostShared;
use self::stages::Stage;

/// The gateway we run in (detected once at configure time).
fn host_kind() -> HostKind {
    gateway::kind()
}

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(WardenRoot::default()) });
}}

/// Logs at an explicit level; the host filters by its own level. The filter never asks the host for
/// its log level (that host call traps on Kong).
fn log(level: LogLevel, msg: &str) {
    // Logging must never take the request down with it.
    let _ = proxy_wasm::hostcalls::log(level, msg);
}

/// Per worker: the compiled config and the verified-token cache.
#[derive(Default)]
struct WardenRoot {
    engine: Option<Rc<Engine>>,
    cache: Rc<RefCell<TokenCache>>,
    counter: Rc<Cell<u64>>,
    /// Remote key sets (JWKS, discovery) of this worker; requests that meet an unknown `kid` use it too.
    fetcher: Rc<RefCell<fetch::KeyFetcher>>,
    /// The root context's one tick timer and who is due on each tick.
    timers: Timers,
    /// The revocation-feed call in flight from this worker, if any.
    revocation_call: Option<u32>,
    /// The risk deny-feed call in flight from this worker, if any.
    risk_feed_call: Option<u32>,
    metrics: RiskMetrics,
    /// Decisions, timings, cache hits, alerts.
    meter: metrics::Meter,
    /// This worker's alert sender (one batch at most).
    alerts: alerts::Sender,
}

/// The host's tick timer.
struct HostTimer;

impl schedule::TickHost for HostTimer {
    fn set_tick_period(&mut self, period: Duration) -> Result<(), String> {
        proxy_wasm::hostcalls::set_tick_period(period).map_err(|s| format!("{s:?}"))
    }
}

/// The forwarded request's headers on this host.
struct HostRequestHeaders;

impl crate::upstream::RequestHeaders for HostRequestHeaders {
    fn remove(&mut self, name: &str) {
        let _ = proxy_wasm::hostcalls::set_map_value(
            proxy_wasm::types::MapType::HttpRequestHeaders,
            name,
            None,
        );
    }

    fn set(&mut self, name: &str, value: &str) {
        let _ = proxy_wasm::hostcalls::set_map_value(
            proxy_wasm::types::MapType::HttpRequestHeaders,
            name,
            Some(value),
        );
    }
}

/// Microseconds on the host's monotonic clock (WASI), for durations: finer than a microsecond on
/// Envoy, whole milliseconds on ngx_wasm_module (`HostRules::clock_step_us`).
fn monotonic_us(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

impl Context for WardenRoot {
    /// The root context is going away (the VM stops, or a new config replaces this plugin): the
    /// counters not yet published are.
    fn on_done(&mut self) -> bool {
        if let Some(engine) = &self.engine {
            engine.flush_responses(&HostShared);
            self.meter
                .signatures(engine.credentials().signatures().counts());
        }
        self.meter.flush();
        true
    }

    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _: usize) {
        if let Some(engine) = self.engine.clone() {
            if self.revocation_call == Some(token) {
                self.revocation_call = None;
                revocation::on_response(&engine, body_size);
                return;
            }
            if self.risk_feed_call == Some(token) {
                self.risk_feed_call = None;
                risk::feed_response(&engine, body_size);
                return;
            }
            if self.alerts.owns(token) {
                // Records the outcome only: a retry waits for a tick.
                self.alerts
                    .on_response(&engine, &self.meter, now_us() / 1_000);
                return;
            }
            let now = now_us() / 1_000_000;
            if let Ok(mut f) = self.fetcher.try_borrow_mut() {
                f.on_response(&engine, true, host_kind(), token, body_size, now);
            }
        }
    }
}

/// The deployment's slot key, shared by every worker (the first to configure draws it). When shared
/// data or the host's randomness fails, a key of this worker's own: still unguessable, but the
/// workers then keep separate records (logged).
fn slot_key() -> SlotKey {
    let fresh = SlotKey::random().unwrap_or_else(|e| {
        log(
            LogLevel::Error,
            &format!("warden: no randomness for the slot key: {e}"),
        );
        // Not secret, but distinct per worker and start: better than a fixed key.
        let t = now_us().to_le_bytes();
        let mut b = [0u8; 16];
        for (d, s) in b.iter_mut().zip(t.iter().chain(t.iter())) {
            *d = *s;
        }
        b
    });
    SlotKey::shared(&HostShared, fresh).unwrap_or_else(|e| {
        log(
            LogLevel::Error,
            &format!("warden: slot key not shared: {e}"),
        );
        SlotKey::new(fresh)
    })
}

impl RootContext for WardenRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let kind = gateway::detect();
        let rules = HostRules::of(kind);
        let (signatures, verifier) =
            Signatures::detect(rules, std::sync::Arc::new(gateway::HostForeign));
        let compiled = Engine::from_json(&bytes).map(|e| {
            e.with_host(rules)
                .with_slot_key(slot_key())
                .with_signatures(signatures)
        });
        match compiled.and_then(|e| fetch::check(&e, kind).map(|()| e)) {
            Ok(engine) => {
                let fetcher = fetch::KeyFetcher::new(&engine);
                let users = schedule::Users {
                    remote_keys: fetcher.active(),
                    // Each worker ticks; the shared lease lets one of them fetch per interval.
                    feed: engine.revocation().has_feed() || engine.risk_deny_feed().is_some(),
                    alerts: engine.alerts().is_some(),
                    gauges: fetcher.active() || engine.risk_enabled(),
                    // Every config counts its decisions.
                    metrics: true,
                };
                self.fetcher = Rc::new(RefCell::new(fetcher));
                if let Err(e) = self.timers.configure(users, &mut HostTimer) {
                    log(LogLevel::Error, &format!("warden: tick timer: {e}"));
                }
                if engine.alerts().is_some() {
                    alerts::define_metrics(&self.meter);
                }
                if engine.has_mcp() && kind == HostKind::Envoy {
                    log(
                        LogLevel::Info,
                        "warden: MCP endpoints configured: their request bodies are read, which needs \
                         allow_on_headers_stop_iteration: true in the Wasm filter's config (Envoy 1.35+)",
                    );
                }
                if engine.risk_enabled() {
                    self.metrics = RiskMetrics::define();
                    if let Some(timing) = risk::time_model() {
                        log(LogLevel::Info, &timing);
                    }
                }
                if let Some(old) = &self.engine {
                    old.flush_responses(&HostShared);
                }
                self.engine = Some(Rc::new(engine));
                // A new config invalidates what the old one verified.
                self.cache = Rc::new(RefCell::new(TokenCache::default()));
                let name = match kind {
                    HostKind::Envoy => "envoy",
                    HostKind::Kong => "kong",
                };
                log(
                    LogLevel::Info,
                    &format!(
                        "warden: configuration loaded (gateway: {name}); clock step {} us; \
                         signatures: {verifier}",
                        rules.clock_step_us
                    ),
                );
                true
            }
            Err(e) => {
                log(LogLevel::Error, &format!("warden: {e}"));
                alerts::config_refused(&bytes, now_us() / 1_000, &e.to_string());
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let Some(engine) = self.engine.clone() else {
            return;
        };
        // The response facts the requests since the last tick left waiting (risk/pending.rs).
        engine.flush_responses(&HostShared);
        let now_us = now_us();
        let now = now_us / 1_000_000;
        let Ok(mut fetcher) = self.fetcher.try_borrow_mut() else {
            return;
        };
        let due = self.timers.tick(now_us / 1_000, fetcher.all_installed());
        if due.feed {
            if let Some(token) = revocation::tick(&engine, now) {
                self.revocation_call = Some(token);
            }
            if let Some(token) = risk::feed_tick(&engine, now) {
                self.risk_feed_call = Some(token);
            }
        }
        if due.keys {
            fetcher.tick(&engine, host_kind(), now);
        }
        if due.alerts {
            self.alerts.tick(&engine, &self.meter, now_us / 1_000);
        }
        if due.gauges {
            gauges(&engine, &fetcher, &self.meter, now);
        }
        if due.metrics {
            // The engine's signature totals are read here, not per decision: a signature checked
            // by a request that then resumed from the cache (a certificate-bound token read after
            // `NeedPeerCertificate`) is published on this tick all the same.
            self.meter
                .signatures(engine.credentials().signatures().counts());
            self.meter.flush();
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(WardenHttp {
            engine: self.engine.clone(),
            cache: Rc::clone(&self.cache),
            fetcher: Rc::clone(&self.fetcher),
            counter: Rc::clone(&self.counter),
            context_id,
            metrics: self.metrics,
            meter: self.meter.clone(),
            facts: None,
            progress: Progress::new(host_kind()),
            waiting: None,
            end_of_stream: false,
            tools_list: None,
            response_headers: Vec::new(),
            decided: None,
            response_status: None,
            response_bytes: 0,
            clock: stages::start(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The gauges: each remote key set's age on this worker, the behavioural record slots in use.
fn gauges(engine: &Engine, fetcher: &fetch::KeyFetcher, meter: &metrics::Meter, now_s: u64) {
    use crate::metrics as m;
    for (provider, age) in fetcher.key_ages(engine, now_s) {
        meter.gauge(m::named(m::KEY_AGE, &[("provider", provider)]), age);
    }
    if let Some((identity, source, capacity)) = engine.slots_in_use(&HostShared) {
        meter.gauge(m::named(m::SLOTS_IN_USE, &[("kind", "identity")]), identity);
        meter.gauge(m::named(m::SLOTS_IN_USE, &[("kind", "source")]), source);
        meter.gauge(m::SLOTS_CAPACITY.to_owned(), u64::from(capacity));
    }
}

/// What a paused request waits for.
enum Wait {
    /// Keys this request's fetch brings (an unknown `kid`, or none yet).
    Keys,
    /// The answer to the introspection of its opaque token.
    Introspection(Introspection),
    /// Its body (an MCP call), at most this many bytes.
    Body(usize),
}

/// The request body as read from the host (at most once).
enum HostBody {
    Read(Vec<u8>),
    TooLarge,
    LengthRequired,
}

/// A forwarded `tools/list` call whose answer is buffered and filtered.
struct ToolsList {
    decision: Decision,
    max: usize,
    content_type: String,
    /// Buffering was asked for once (ngx_wasm_module honours one `Pause` only).
    paused: bool,
    /// The answer overflowed `max` and was replaced: later chunks are dropped.
    replaced: bool,
}

/// The request as read from the host, once: the headers (with invalid UTF-8 repaired) and the
/// connection facts. Each step of the engine sees the same request.
struct Facts {
    headers: Vec<(String, String)>,
    request_id: String,
    /// The client certificate's digest, once read (only when the engine asks: a bound token).
    peer_cert_sha256: OnceCell<Option<String>>,
    /// The client's address, once read (only when the config uses it: the engine asks,
    /// `Step::NeedClientAddress`).
    source: OnceCell<Option<IpAddr>>,
    /// The body, once read (only when the engine asks: MCP calls).
    body: OnceCell<HostBody>,
}

impl Facts {
    fn find(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The request at `now_us`, for the engine.
    fn request(&self, now_us: u64) -> Request<'_> {
        Request {
            method: self.find(":method"),
            path: self.find(":path"),
            headers: &self.headers,
            request_id: &self.request_id,
            now_s: now_us / 1_000_000,
            peer_cert_sha256: self.peer_cert_sha256.get().and_then(Option::as_deref),
            peer_cert_unread: self.peer_cert_sha256.get().is_none(),
            source: self.source.get().copied().flatten(),
            source_unread: self.source.get().is_none(),
            body: match self.body.get() {
                None => Body::Unread,
                Some(HostBody::Read(b)) => Body::Read(b),
                Some(HostBody::TooLarge) => Body::TooLarge,
                Some(HostBody::LengthRequired) => Body::LengthRequired,
            },
        }
    }
}

struct WardenHttp {
    engine: Option<Rc<Engine>>,
    cache: Rc<RefCell<TokenCache>>,
    /// The worker's key fetcher (a request that meets an unknown `kid` may wait for it).
    fetcher: Rc<RefCell<fetch::KeyFetcher>>,
    counter: Rc<Cell<u64>>,
    context_id: u32,
    metrics: RiskMetrics,
    meter: metrics::Meter,
    /// The request, once read.
    facts: Option<Rc<Facts>>,
    /// What the engine has asked for this request.
    progress: Progress,
    /// What the paused request waits for.
    waiting: Option<Wait>,
    /// Headers the decision adds to the upstream's response.
    response_headers: Vec<(String, String)>,
    /// The decision, kept for the end of the request (the response phase, the record).
    decided: Option<Decided>,
    /// The upstream's status (a forwarded request).
    response_status: Option<u16>,
    /// Response body bytes (the upstream's, or the local reply's).
    response_bytes: u64,
    /// `end_of_stream` of the request headers (Envoy: the request has no body).
    end_of_stream: bool,
    /// A forwarded `tools/list` call, its answer to filter.
    tools_list: Option<ToolsList>,
    /// The stage clock (`make bench`'s instrumented build; nothing otherwise).
    clock: stages::Clock,
}

/// A request's decision, with when it was taken and how long the engine took.
struct Decided {
    decision: Decision,
    /// Wall clock when the engine started on it, microseconds since the epoch.
    at_us: u64,
    engine_us: u64,
}

impl Context for WardenHttp {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _: usize) {
        let (Some(engine), Some(facts), Some(wait)) =
            (self.engine.clone(), self.facts.clone(), self.waiting.take())
        else {
            return;
        };
        let now_s = now_us() / 1_000_000;
        match wait {
            Wait::Keys => {
                let done = match self.fetcher.try_borrow_mut() {
                    Ok(mut f) => {
                        f.on_response(&engine, false, host_kind(), token, body_size, now_s)
                    }
                    Err(_) => Some(true),
                };
                if done == Some(false) {
                    // The fetch goes on (discovery, then the key set).
                    self.waiting = Some(Wait::Keys);
                    return;
                }
            }
            // Not an HTTP call's answer.
            Wait::Body(max) => {
                self.waiting = Some(Wait::Body(max));
                return;
            }
            Wait::Introspection(asked) => {
                let answer = fetch::answer(body_size, introspection::MAX_RESPONSE_BYTES);
                let answer = match &answer {
                    Ok((status, body)) => Ok((*status, body.as_slice())),
                    Err(e) => Err(e.to_string()),
                };
                let credentials = engine.credentials();
                let recorded = match self.cache.try_borrow_mut() {
                    Ok(mut cache) => credentials.introspected(&asked, answer, now_s, &mut cache),
                    Err(_) => Ok(()),
                };
                if let Err(why) = recorded {
                    log(LogLevel::Warn, &format!("warden: {why}"));
                }
            }
        }
        if let Action::Continue = self.run(&engine, &facts) {
            self.resume_http_request();
        }
    }
}

/// Microseconds since the Unix epoch, from the host: the adapter's one clock.
fn now_us() -> u64 {
    proxy_wasm::hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl HttpContext for WardenHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.end_of_stream = end_of_stream;
        self.clock = stages::start();
        let facts = Rc::new(self.read_request());
        stages::lap(&mut self.clock, Stage::Read);
        if let Ok(cache) = self.cache.try_borrow() {
            stages::probe_cache_key(&cache, facts.find("authorization"));
        }
        self.clock = stages::start();
        let Some(engine) = self.engine.clone() else {
            return self.send(&reply::not_configured(&facts.request_id));
        };
        self.facts = Some(Rc::clone(&facts));
        self.run(&engine, &facts)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        // With `allow_on_headers_stop_iteration`, Envoy hands the body over while the request waits
        // (keys, introspection): `Continue` would forward it undecided, so hold it.
        let max = match self.waiting {
            Some(Wait::Body(max)) => max,
            Some(_) => return Action::Pause,
            None => return Action::Continue,
        };
        let (Some(engine), Some(facts)) = (self.engine.clone(), self.facts.clone()) else {
            return Action::Continue;
        };
        let body = if body_size > max {
            HostBody::TooLarge
        } else if !end_of_stream {
            // Envoy buffers until the end; each call reports the whole buffer so far.
            return Action::Pause;
        } else {
            match self.get_http_request_body(0, body_size) {
                Some(b) if b.len() == body_size => HostBody::Read(b),
                None if body_size == 0 => HostBody::Read(Vec::new()),
                // ngx_wasm_module cannot read a body nginx buffered to a temporary file.
                _ => {
                    log(
                        LogLevel::Warn,
                        "warden: the request body could not be read whole; on Kong raise \
                         client_body_buffer_size (nginx_http_client_body_buffer_size) to at \
                         least the endpoint's max_body_bytes",
                    );
                    HostBody::TooLarge
                }
            }
        };
        self.waiting = None;
        let _ = facts.body.set(body);
        self.run(&engine, &facts)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.clock = stages::start();
        for (name, value) in std::mem::take(&mut self.response_headers) {
            self.set_http_response_header(&name, Some(&value));
        }
        if self.tools_list.is_some() {
            let ok = self
                .get_http_response_header(":status")
                .is_some_and(|s| s.starts_with('2'));
            let content_type = self
                .get_http_response_header("content-type")
                .unwrap_or_default();
            match (&mut self.tools_list, ok) {
                (Some(t), true) => {
                    t.content_type = content_type;
                    // The filtered answer has another length.
                    self.set_http_response_header("content-length", None);
                }
                _ => self.tools_list = None,
            }
        }
        if self.forwarded() {
            self.response_status = risk::response_status();
        }
        stages::lap(&mut self.clock, Stage::Response);
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.tools_list.is_some() {
            return self.filter_tools_list(body_size, end_of_stream);
        }
        if self.forwarded() {
            // Not buffering: each call reports the size of its own chunk.
            let n = u64::try_from(body_size).unwrap_or(u64::MAX);
            self.response_bytes = self.response_bytes.saturating_add(n);
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        // The stream is over: the upstream's answer teaches the caller's behavioural record, and
        // the request's one decision record is written.
        stages::request_done();
        let mut clock = stages::start();
        let (Some(engine), Some(decided), Some(facts)) = (&self.engine, &self.decided, &self.facts)
        else {
            return;
        };
        let now_us = now_us();
        let decision = &decided.decision;
        if let (Some(status), true) = (self.response_status, decision.observes_response()) {
            let now_s = now_us / 1_000_000;
            engine.observe_response(decision, status, self.response_bytes, now_s, &HostShared);
        }
        stages::lap(&mut clock, Stage::Observe);
        let event = engine.alerts().and_then(|a| a.event_of(decision));
        if engine.audit_enabled() || event.is_some() {
            let req = facts.request(decided.at_us);
            let outcome = Outcome {
                upstream_status: self.response_status,
                response_bytes: Some(self.response_bytes),
                duration_ms: Some(now_us.saturating_sub(decided.at_us) / 1_000),
            };
            let ts_ms = decided.at_us / 1_000;
            let claims = engine.recorded_claims();
            let record = AuditRecord::new(&req, decision, ts_ms, decided.engine_us, claims)
                .with_outcome(outcome);
            if engine.audit_enabled() {
                record::with_line(&record, |line| {
                    stages::lap(&mut clock, Stage::Record);
                    record::write(engine.audit_sink(), line);
                    stages::lap(&mut clock, Stage::Write);
                });
            }
            if let (Some(event), Some(a)) = (event, engine.alerts()) {
                let line = alerts::line_of(event, &record);
                alerts::raise(a, &self.meter, event, ts_ms, &line);
            }
        }
    }
}

impl WardenHttp {
    /// Whether the request was decided and forwarded upstream.
    fn forwarded(&self) -> bool {
        self.decided
            .as_ref()
            .is_some_and(|d| d.decision.reply.is_none())
    }

    /// Reads the request once. Header values may hold any byte (obs-text): the SDK's
    /// `get_http_request_headers` unwraps `String::from_utf8` and traps the VM on them, killing the
    /// filter for the worker. Read bytes and replace invalid UTF-8 (U+FFFD is not token68, so such a
    /// credential is refused, never guessed).
    fn read_request(&self) -> Facts {
        let headers: Vec<(String, String)> = self
            .get_http_request_headers_bytes()
            .into_iter()
            .map(|(name, value)| {
                let value = String::from_utf8(value)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                (name, value)
            })
            .collect();
        let request_id = decision::request_id(&headers, || {
            let n = self.counter.get().wrapping_add(1);
            self.counter.set(n);
            format!("{:x}-{:x}-{n:x}", now_us(), self.context_id)
        })
        .into_owned();
        Facts {
            headers,
            request_id,
            // Read when a certificate-bound token asks for it (`Step::NeedPeerCertificate`).
            peer_cert_sha256: OnceCell::new(),
            // Read when the engine asks for it (`Step::NeedClientAddress`).
            source: OnceCell::new(),
            body: OnceCell::new(),
        }
    }

    /// Buffers a `tools/list` answer (at most `max` bytes), then forwards it filtered; a larger
    /// one is replaced by a JSON-RPC error and the rest of it dropped.
    fn filter_tools_list(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let (Some(engine), Some(mut t)) = (self.engine.clone(), self.tools_list.take()) else {
            return Action::Continue;
        };
        if t.replaced {
            self.set_http_response_body(0, body_size, b"");
            self.tools_list = Some(t);
            return Action::Continue;
        }
        let once = !HostRules::of(host_kind()).buffers_response_repeatedly;
        let full = body_size > t.max || (!end_of_stream && t.paused && once);
        if !full && !end_of_stream {
            t.paused = true;
            self.tools_list = Some(t);
            return Action::Pause;
        }
        let body = if full {
            None
        } else {
            Some(
                self.get_http_response_body(0, body_size)
                    .unwrap_or_default(),
            )
        };
        let new = engine.filter_tools_list(&t.decision, &t.content_type, body.as_deref());
        self.set_http_response_body(0, body_size, &new);
        if full && !end_of_stream {
            t.replaced = true;
            self.tools_list = Some(t);
        }
        if self.forwarded() {
            let n = u64::try_from(new.len()).unwrap_or(u64::MAX);
            self.response_bytes = self.response_bytes.saturating_add(n);
        }
        Action::Continue
    }

    /// Steps the engine until it decides or the request must wait, serving what it asks for:
    /// `Continue` to forward, `Pause` to wait or when a local reply was sent.
    /// The wall clock is read once here, for every step of this phase, and once more when the
    /// engine has decided (its time, `warden_engine_us`).
    fn run(&mut self, engine: &Engine, facts: &Facts) -> Action {
        let started_us = now_us();
        loop {
            let req = facts.request(started_us);
            match self.step(engine, &req) {
                Step::Decided(decision) => {
                    stages::lap(&mut self.clock, Stage::Engine);
                    return self.apply(engine, *decision, started_us);
                }
                Step::NeedKeys(provider) => {
                    // Perhaps the IdP rotated, or another worker fetched the first key set before this
                    // worker's tick installed it: newer keys from shared data, or a (rate-limited)
                    // fetch this request waits for.
                    let refetch = match self.fetcher.try_borrow_mut() {
                        Ok(mut f) => f.refetch_now(engine, host_kind(), req.now_s, provider),
                        Err(_) => fetch::Refetch::No,
                    };
                    if refetch == fetch::Refetch::Started {
                        self.waiting = Some(Wait::Keys);
                        return Action::Pause;
                    }
                }
                Step::NeedBody { max_bytes } => {
                    let rules = HostRules::of(host_kind());
                    match crate::gateway::body_plan(
                        rules,
                        self.end_of_stream,
                        &facts.headers,
                        max_bytes,
                    ) {
                        BodyPlan::Empty => {
                            let _ = facts.body.set(HostBody::Read(Vec::new()));
                        }
                        BodyPlan::TooLarge => {
                            let _ = facts.body.set(HostBody::TooLarge);
                        }
                        BodyPlan::LengthRequired => {
                            let _ = facts.body.set(HostBody::LengthRequired);
                        }
                        BodyPlan::Wait => {
                            self.waiting = Some(Wait::Body(max_bytes));
                            // ngx_wasm_module: nothing goes upstream before on_http_request_body.
                            return if rules.pauses_for_body {
                                Action::Pause
                            } else {
                                Action::Continue
                            };
                        }
                    }
                }
                Step::NeedPeerCertificate => {
                    // Kong cannot tell: none, so certificate-bound tokens are refused there.
                    let digest = gateway::peer_certificate_sha256()
                        .ok()
                        .flatten()
                        .map(hex::encode);
                    let _ = facts.peer_cert_sha256.set(digest);
                }
                Step::NeedClientAddress => {
                    let _ = facts.source.set(gateway::client_address().map(|a| a.ip));
                }
                Step::Introspect(asked) => match fetch::dispatch(&asked.call) {
                    Ok(_) => {
                        self.waiting = Some(Wait::Introspection(asked));
                        return Action::Pause;
                    }
                    Err(e) => {
                        log(LogLevel::Warn, &format!("warden: introspection: {e}"));
                        if let Ok(mut cache) = self.cache.try_borrow_mut() {
                            let _ = engine.credentials().introspected(
                                &asked,
                                Err(e.to_string()),
                                req.now_s,
                                &mut cache,
                            );
                        }
                    }
                },
            }
        }
    }

    /// One step of the engine with this worker's cache (a throwaway one if it is busy). The
    /// monotonic clock (the risk stage's time budget) is read only when the engine asks for it: its
    /// first reading is zero.
    fn step(&mut self, engine: &Engine, req: &Request<'_>) -> Step {
        let mut spare;
        let mut borrowed = self.cache.try_borrow_mut();
        let cache = match &mut borrowed {
            Ok(cache) => &mut **cache,
            Err(_) => {
                spare = TokenCache::new(1);
                &mut spare
            }
        };
        let started: Cell<Option<Instant>> = Cell::new(None);
        let clock_us = || match started.get() {
            Some(t) => monotonic_us(t),
            None => {
                started.set(Some(Instant::now()));
                0
            }
        };
        let mut env = Env {
            cache,
            shared: &HostShared,
            clock_us: &clock_us,
        };
        engine.step(req, &mut env, &mut self.progress)
    }

    /// Applies a decision: counted, audited, then a local reply (`Pause`) or the request forwarded
    /// with its headers edited (`Continue`).
    fn apply(&mut self, engine: &Engine, mut decision: Decision, started_us: u64) -> Action {
        if let (Some(provider), Ok(mut f)) = (decision.keys_missed, self.fetcher.try_borrow_mut()) {
            f.want(provider);
        }
        // The wall clock (whole milliseconds on ngx_wasm_module, as its monotonic one); a clock set
        // back counts zero.
        let engine_us = now_us().saturating_sub(started_us);
        self.meter.decision(&decision, engine_us, &self.metrics);
        stages::lap(&mut self.clock, Stage::Metrics);
        let action = match &decision.reply {
            Some(reply) => {
                self.response_bytes = u64::try_from(reply.body.len()).unwrap_or(u64::MAX);
                self.send(reply)
            }
            None => {
                crate::upstream::forward(
                    &decision.remove_headers,
                    &decision.upstream_headers,
                    &mut HostRequestHeaders,
                );
                stages::lap(&mut self.clock, Stage::Forward);
                self.response_headers = std::mem::take(&mut decision.response_headers);
                if let Some(max) = decision.filters_tools_list() {
                    self.tools_list = Some(ToolsList {
                        decision: decision.clone(),
                        max,
                        content_type: String::new(),
                        paused: false,
                        replaced: false,
                    });
                }
                Action::Continue
            }
        };
        // Kept for the end of the request: the response phase, the record, the alert (`on_log`).
        if engine.audit_enabled() || engine.alerts().is_some() || decision.observes_response() {
            self.decided = Some(Decided {
                decision,
                at_us: started_us,
                engine_us,
            });
        }
        action
    }

    /// Sends a local reply; the request goes no further.
    fn send(&self, reply: &LocalReply) -> Action {
        let headers: Vec<(&str, &str)> = reply
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        self.send_http_response(
            u32::from(reply.status),
            headers,
            Some(reply.body.as_bytes()),
        );
        Action::Pause
    }
}
