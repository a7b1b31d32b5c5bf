//! The proxy-wasm adapter: the only code that talks to the host (Envoy or Kong).
//! It reads the request once, steps the engine (serving what it asks for: keys, introspection),
//! applies the decision and logs the audit record.

use crate::audit::AuditRecord;
use crate::config::alerts::AlertEvent;
use crate::config::AuditSink;
use crate::credential::cache::TokenCache;
use crate::credential::introspection;
use crate::credential::native::Signatures;
use crate::decision::{Decision, Engine};
use crate::exchange::{Exchange, Facts, HostBody, Lap, Next, Wait};
use crate::gateway::{HostRules, Properties};
use crate::outbound::{Call, HostKind};
use crate::reply::{self, LocalReply};
use crate::schedule::{self, Timers};
use crate::shared::{SharedData, SharedError};
use crate::slot::SlotKey;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType};
use std::cell::{Cell, RefCell};
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
    /// This worker's `http` record sink: its outbox and calls (shared with its requests).
    records: record::Shipper,
}

/// The host's tick timer.
struct HostTimer;

impl schedule::TickHost for HostTimer {
    fn set_tick_period(&mut self, period: Duration) -> Result<(), String> {
        proxy_wasm::hostcalls::set_tick_period(period).map_err(|s| format!("{s:?}"))
    }
}

impl Context for WardenRoot {
    /// The root context is going away (the VM stops, or a new config replaces this plugin): the
    /// records still waiting leave in one last call each, and the counters not yet published are.
    /// With calls in flight it stays (`false`) until their answers are in, then says so
    /// (`proxy_done`); Envoy cancels them if it cannot wait.
    fn on_done(&mut self) -> bool {
        let waiting = match &self.engine {
            Some(engine) => {
                engine.flush_responses(&HostShared);
                self.meter
                    .signatures(engine.credentials().signatures().counts());
                self.records.last_calls(engine, &self.meter)
            }
            None => {
                self.records.close(&self.meter, "shutdown");
                false
            }
        };
        self.meter.flush();
        !waiting
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
            if self.records.owns(token) {
                // Records the outcome only: a retry waits for a tick.
                let last = self
                    .records
                    .on_response(&engine, &self.meter, token, now_us() / 1_000);
                if last {
                    // `on_done` waited for this answer.
                    self.meter.flush();
                    self.done();
                }
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
                    records: engine.shipping().is_some(),
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
                if engine.shipping().is_some() {
                    record::define_metrics(&self.meter);
                } else {
                    self.records.close(&self.meter, "sink_removed");
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
        if due.records {
            self.records.tick(&engine, &self.meter, now_us / 1_000);
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
            host: ProxyHost {
                fetcher: Rc::clone(&self.fetcher),
                counter: Rc::clone(&self.counter),
                context_id,
                metrics: self.metrics,
                meter: self.meter.clone(),
                records: self.records.clone(),
                clock: RefCell::new(stages::start()),
            },
            x: Exchange::new(host_kind()),
            tools_list: None,
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

struct WardenHttp {
    engine: Option<Rc<Engine>>,
    cache: Rc<RefCell<TokenCache>>,
    /// The host, as the request path calls it.
    host: ProxyHost,
    /// The request between callbacks: what it is, what it waits for, its decision.
    x: Exchange,
    /// A forwarded `tools/list` call, its answer to filter.
    tools_list: Option<ToolsList>,
}

/// The proxy-wasm host as the request path ([`Exchange`]) calls it, with this worker's key fetcher,
/// metrics and request counter.
struct ProxyHost {
    /// The worker's key fetcher (a request that meets an unknown `kid` may wait for it).
    fetcher: Rc<RefCell<fetch::KeyFetcher>>,
    counter: Rc<Cell<u64>>,
    context_id: u32,
    metrics: RiskMetrics,
    meter: metrics::Meter,
    /// The worker's `http` record sink (the request's record joins its outbox).
    records: record::Shipper,
    /// The stage clock (`make bench`'s instrumented build; nothing otherwise).
    clock: RefCell<stages::Clock>,
}

impl ProxyHost {
    /// Starts the stage clock again.
    fn restart(&self) {
        if let Ok(mut c) = self.clock.try_borrow_mut() {
            *c = stages::start();
        }
    }

    /// Adds the time since the last lap to `stage`.
    fn lap_at(&self, stage: Stage) {
        if let Ok(mut c) = self.clock.try_borrow_mut() {
            stages::lap(&mut c, stage);
        }
    }
}

impl Properties for ProxyHost {
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        gateway::HostProperties.property(path)
    }

    fn answers(&self, path: &[&str]) -> bool {
        gateway::HostProperties.answers(path)
    }
}

impl SharedData for ProxyHost {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), SharedError> {
        HostShared.get(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SharedError> {
        HostShared.set(key, value, cas)
    }
}

impl crate::exchange::Host for ProxyHost {
    fn kind(&self) -> HostKind {
        host_kind()
    }

    /// As bytes: the SDK's `get_http_request_headers` unwraps `String::from_utf8` and would trap
    /// the VM on a value with obs-text, killing the filter for the worker.
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default()
    }

    fn new_request_id(&self) -> String {
        let n = self.counter.get().wrapping_add(1);
        self.counter.set(n);
        format!("{:x}-{:x}-{n:x}", now_us(), self.context_id)
    }

    fn now_us(&self) -> u64 {
        now_us()
    }

    /// WASI's monotonic clock: finer than a microsecond on Envoy, whole milliseconds on
    /// ngx_wasm_module (`HostRules::clock_step_us`).
    fn monotonic(&self) -> Instant {
        Instant::now()
    }

    fn remove_request_header(&self, name: &str) {
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None);
    }

    fn set_request_header(&self, name: &str, value: &str) {
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
    }

    fn add_request_header(&self, name: &str, value: &str) {
        let _ = hostcalls::add_map_value(MapType::HttpRequestHeaders, name, value);
    }

    fn set_response_header(&self, name: &str, value: &str) {
        let _ = hostcalls::set_map_value(MapType::HttpResponseHeaders, name, Some(value));
    }

    fn response_status(&self) -> Option<u16> {
        risk::response_status()
    }

    fn send(&self, reply: &LocalReply) {
        send(reply);
    }

    fn count(&self, decision: &Decision, engine_us: u64) {
        self.meter.decision(decision, engine_us, &self.metrics);
    }

    fn write_record(&self, engine: &Engine, record: &AuditRecord<'_>) {
        let sink = engine.audit_sink();
        record::with_line(record, |line| {
            self.lap_at(Stage::Record);
            match sink {
                AuditSink::Http => self.records.take(engine, &self.meter, line, record.ts_ms),
                _ => record::write(sink, line),
            }
            self.lap_at(Stage::Write);
        });
    }

    fn raise(&self, engine: &Engine, event: AlertEvent, ts_ms: u64, record: &AuditRecord<'_>) {
        if let Some(a) = engine.alerts() {
            let line = alerts::line_of(event, record);
            alerts::raise(a, &self.meter, event, ts_ms, &line);
        }
    }

    fn refetch_keys(&self, engine: &Engine, now_s: u64, provider: usize) -> bool {
        let refetch = match self.fetcher.try_borrow_mut() {
            Ok(mut f) => f.refetch_now(engine, host_kind(), now_s, provider),
            Err(_) => fetch::Refetch::No,
        };
        refetch == fetch::Refetch::Started
    }

    fn keys_missed(&self, provider: usize) {
        if let Ok(mut f) = self.fetcher.try_borrow_mut() {
            f.want(provider);
        }
    }

    fn dispatch(&self, call: &Call) -> Result<(), String> {
        fetch::dispatch(call).map(|_| ()).map_err(|e| e.to_string())
    }

    fn warn(&self, msg: &str) {
        log(LogLevel::Warn, msg);
    }

    fn lap(&self, at: Lap) {
        self.lap_at(match at {
            Lap::Engine => Stage::Engine,
            Lap::Metrics => Stage::Metrics,
            Lap::Forward => Stage::Forward,
            Lap::Observe => Stage::Observe,
        });
    }
}

/// Sends a local reply; the request goes no further.
fn send(reply: &LocalReply) {
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let status = u32::from(reply.status);
    let _ = hostcalls::send_http_response(status, headers, Some(reply.body.as_bytes()));
}

impl Context for WardenHttp {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _: usize) {
        let (Some(engine), Some(facts), Some(wait)) = (
            self.engine.clone(),
            self.x.facts.clone(),
            self.x.waiting.take(),
        ) else {
            return;
        };
        let now_s = now_us() / 1_000_000;
        match wait {
            Wait::Keys => {
                let done = match self.host.fetcher.try_borrow_mut() {
                    Ok(mut f) => {
                        f.on_response(&engine, false, host_kind(), token, body_size, now_s)
                    }
                    Err(_) => Some(true),
                };
                if done == Some(false) {
                    // The fetch goes on (discovery, then the key set).
                    self.x.waiting = Some(Wait::Keys);
                    return;
                }
            }
            // Not an HTTP call's answer.
            Wait::Body(max) => {
                self.x.waiting = Some(Wait::Body(max));
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
        self.x.end_of_stream = end_of_stream;
        self.host.restart();
        let facts = Rc::new(Facts::read(&self.host));
        self.host.lap_at(Stage::Read);
        if let Ok(cache) = self.cache.try_borrow() {
            stages::probe_cache_key(&cache, facts.find("authorization"));
        }
        self.host.restart();
        let Some(engine) = self.engine.clone() else {
            send(&reply::not_configured(&facts.request_id));
            return Action::Pause;
        };
        self.x.facts = Some(Rc::clone(&facts));
        self.run(&engine, &facts)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        // With `allow_on_headers_stop_iteration`, Envoy hands the body over while the request waits
        // (keys, introspection): `Continue` would forward it undecided, so hold it.
        let max = match self.x.waiting {
            Some(Wait::Body(max)) => max,
            Some(_) => return Action::Pause,
            None => return Action::Continue,
        };
        let (Some(engine), Some(facts)) = (self.engine.clone(), self.x.facts.clone()) else {
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
        self.x.waiting = None;
        let _ = facts.body.set(body);
        self.run(&engine, &facts)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.host.restart();
        self.x.add_response_headers(&self.host);
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
        self.x.read_status(&self.host);
        self.host.lap_at(Stage::Response);
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.tools_list.is_some() {
            return self.filter_tools_list(body_size, end_of_stream);
        }
        self.x.response_body(body_size);
        Action::Continue
    }

    fn on_log(&mut self) {
        // The stream is over: the upstream's answer teaches the caller's behavioural record, and
        // the request's one decision record is written.
        stages::request_done();
        self.host.restart();
        if let Some(engine) = &self.engine {
            // The root holds the engine in use: one reference left is a replaced engine's last.
            let last = Rc::strong_count(engine) == 1;
            self.x.end(&self.host, engine, last);
        }
    }
}

impl WardenHttp {
    /// Steps the engine through the request path ([`Exchange::run`]); a forwarded `tools/list`
    /// call's answer is then buffered for filtering.
    fn run(&mut self, engine: &Engine, facts: &Facts) -> Action {
        let next = self.x.run(&self.host, engine, &self.cache, facts);
        if let Some((decision, max)) = self.x.tools_list.take() {
            self.tools_list = Some(ToolsList {
                decision,
                max,
                content_type: String::new(),
                paused: false,
                replaced: false,
            });
        }
        match next {
            Next::Continue => Action::Continue,
            Next::Pause => Action::Pause,
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
        self.x.response_body(new.len());
        Action::Continue
    }
}
