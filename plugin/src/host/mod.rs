//! The proxy-wasm adapter: the only code that talks to the host (Envoy or Kong).
//! It reads the request, asks the engine, applies the decision and logs the audit record.

use crate::audit::AuditRecord;
use crate::credential::cache::TokenCache;
use crate::decision::{Decision, Engine, Env, Request};
use crate::gateway::HostRules;
use crate::outbound::HostKind;
use crate::schedule::{self, Timers};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub mod fetch;
pub mod gateway;
pub mod revocation;
pub mod risk;
pub mod shared;

use self::risk::RiskMetrics;
use self::shared::HostShared;

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
    metrics: RiskMetrics,
}

fn now_s(t: SystemTime) -> u64 {
    micros(t) / 1_000_000
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
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _: usize) {
        if let Some(engine) = self.engine.clone() {
            if self.revocation_call == Some(token) {
                self.revocation_call = None;
                revocation::on_response(&engine, body_size);
                return;
            }
            let now = now_s(self.get_current_time());
            if let Ok(mut f) = self.fetcher.try_borrow_mut() {
                f.on_response(&engine, host_kind(), token, body_size, now);
            }
        }
    }
}

impl RootContext for WardenRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let kind = gateway::detect();
        let rules = HostRules::of(kind);
        let compiled = Engine::from_json(&bytes).map(|e| e.with_host(rules));
        match compiled.and_then(|e| fetch::check(&e, kind).map(|()| e)) {
            Ok(engine) => {
                let fetcher = fetch::KeyFetcher::new(&engine);
                let users = schedule::Users {
                    remote_keys: fetcher.active(),
                    // Each worker ticks; the shared lease lets one of them fetch per interval.
                    feed: engine.revocation().has_feed(),
                };
                self.fetcher = Rc::new(RefCell::new(fetcher));
                if let Err(e) = self.timers.configure(users, &mut HostTimer) {
                    log(LogLevel::Error, &format!("warden: tick timer: {e}"));
                }
                if engine.risk_enabled() {
                    self.metrics = RiskMetrics::define();
                    if let Some(timing) = risk::time_model() {
                        log(LogLevel::Info, &timing);
                    }
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
                        "warden: configuration loaded (gateway: {name}); clock step {} us",
                        rules.clock_step_us
                    ),
                );
                true
            }
            Err(e) => {
                log(LogLevel::Error, &format!("warden: {e}"));
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let Some(engine) = self.engine.clone() else {
            return;
        };
        let now_us = micros(self.get_current_time());
        let now = now_us / 1_000_000;
        let Ok(mut fetcher) = self.fetcher.try_borrow_mut() else {
            return;
        };
        let due = self.timers.tick(now_us / 1_000, fetcher.all_installed());
        if due.feed {
            if let Some(token) = revocation::tick(&engine, now) {
                self.revocation_call = Some(token);
            }
        }
        if due.keys {
            fetcher.tick(&engine, host_kind(), now);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(WardenHttp {
            introspecting: None,
            response_headers: Vec::new(),
            fetcher: Rc::clone(&self.fetcher),
            key_wait: KeyWait::No,
            engine: self.engine.clone(),
            cache: Rc::clone(&self.cache),
            counter: Rc::clone(&self.counter),
            context_id,
            metrics: self.metrics,
            forwarded: None,
            response_status: None,
            response_bytes: 0,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Whether a request waits for keys after meeting an unknown `kid` (once per request).
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyWait {
    No,
    Waiting,
    Done,
}

struct WardenHttp {
    /// An introspection call in flight for this (paused) request.
    introspecting: Option<fetch::Introspecting>,
    /// Headers the decision adds to the upstream's response.
    response_headers: Vec<(String, String)>,
    /// The worker's key fetcher (for a refetch on an unknown `kid`).
    fetcher: Rc<RefCell<fetch::KeyFetcher>>,
    key_wait: KeyWait,
    engine: Option<Rc<Engine>>,
    cache: Rc<RefCell<TokenCache>>,
    counter: Rc<Cell<u64>>,
    context_id: u32,
    metrics: RiskMetrics,
    /// The decision of a forwarded, risk-scored request, for the response phase.
    forwarded: Option<Decision>,
    response_status: Option<u16>,
    response_bytes: u64,
}

impl Context for WardenHttp {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _: usize) {
        if self.key_wait == KeyWait::Waiting {
            let Some(engine) = self.engine.clone() else {
                return;
            };
            let now = now_s(self.get_current_time());
            let done = match self.fetcher.try_borrow_mut() {
                Ok(mut f) => f.on_response(&engine, host_kind(), token, body_size, now),
                Err(_) => Some(true),
            };
            if done != Some(false) {
                self.key_wait = KeyWait::Done;
                if let Action::Continue = self.decide() {
                    self.resume_http_request();
                }
            }
            return;
        }
        let (Some(started), Some(engine)) = (self.introspecting.take(), self.engine.clone()) else {
            return;
        };
        let now = now_s(self.get_current_time());
        if let Ok(mut cache) = self.cache.try_borrow_mut() {
            fetch::introspected(&engine, started, body_size, now, &mut cache);
        }
        if let Action::Continue = self.decide() {
            self.resume_http_request();
        }
    }
}

fn micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl WardenHttp {
    fn fail_closed(&self) -> Action {
        self.send_http_response(
            503,
            vec![("content-type", "application/json"), ("cache-control", "no-store")],
            Some(br#"{"error":"temporarily_unavailable","error_description":"authorization is not configured"}"#),
        );
        Action::Pause
    }
}

impl HttpContext for WardenHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(engine) = self.engine.clone() else {
            return self.fail_closed();
        };
        if !engine.providers().iter().any(|p| p.introspection.is_some()) {
            return self.decide();
        }
        // An opaque token: ask the IdP first (the request waits), then decide from the cache.
        let headers: Vec<(String, String)> = self
            .get_http_request_headers_bytes()
            .into_iter()
            .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
            .collect();
        let now = now_s(self.get_current_time());
        if let Ok(mut cache) = self.cache.try_borrow_mut() {
            self.introspecting = fetch::introspect(&engine, host_kind(), &headers, now, &mut cache);
        }
        if self.introspecting.is_some() {
            return Action::Pause;
        }
        self.decide()
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        for (name, value) in std::mem::take(&mut self.response_headers) {
            self.set_http_response_header(&name, Some(&value));
        }
        if self.forwarded.is_some() {
            self.response_status = risk::response_status();
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, _end_of_stream: bool) -> Action {
        if self.forwarded.is_some() {
            // Not buffering: each call reports the size of its own chunk.
            let n = u64::try_from(body_size).unwrap_or(u64::MAX);
            self.response_bytes = self.response_bytes.saturating_add(n);
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        // The stream is over: the upstream's answer teaches the caller's behavioural record.
        let (Some(engine), Some(decision), Some(status)) =
            (&self.engine, &self.forwarded, self.response_status)
        else {
            return;
        };
        let now_s = proxy_wasm::hostcalls::get_current_time()
            .map(micros)
            .unwrap_or(0)
            / 1_000_000;
        engine.observe_response(decision, status, self.response_bytes, now_s, &HostShared);
    }
}

impl WardenHttp {
    /// Decides the request and applies the decision: `Continue` to forward it, `Pause` when a local
    /// reply was sent.
    fn decide(&mut self) -> Action {
        let Some(engine) = self.engine.clone() else {
            return self.fail_closed();
        };
        let started = self.get_current_time();
        let started_mono = Instant::now();
        // Header values may hold any byte (obs-text): the SDK's `get_http_request_headers` unwraps
        // `String::from_utf8` and traps the VM on them, killing the filter for the worker. Read bytes and
        // replace invalid UTF-8 (U+FFFD is not token68, so such a credential is refused, never guessed).
        let headers: Vec<(String, String)> = self
            .get_http_request_headers_bytes()
            .into_iter()
            .map(|(name, value)| {
                let value = String::from_utf8(value)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                (name, value)
            })
            .collect();
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let method = find(":method").unwrap_or("");
        let path = find(":path").unwrap_or("");
        let generated;
        let request_id = match find("x-request-id") {
            Some(id) if !id.is_empty() && id.len() <= 128 => id,
            _ => {
                let n = self.counter.get().wrapping_add(1);
                self.counter.set(n);
                generated = format!("{:x}-{:x}-{n:x}", micros(started), self.context_id);
                &generated
            }
        };
        let now_us = micros(started);
        // Kong cannot tell: none, so certificate-bound tokens are refused there.
        let peer_cert_sha256 = gateway::peer_certificate_sha256()
            .ok()
            .flatten()
            .map(hex::encode);
        let req = Request {
            method,
            path,
            headers: &headers,
            request_id,
            now_s: now_us / 1_000_000,
            peer_cert_sha256: peer_cert_sha256.as_deref(),
            source: gateway::client_address().map(|a| a.ip),
        };
        let clock_us = || monotonic_us(started_mono);
        let mut decision = match self.cache.try_borrow_mut() {
            Ok(mut cache) => engine.decide(
                &req,
                &mut Env {
                    cache: &mut cache,
                    shared: &HostShared,
                    clock_us: &clock_us,
                },
            ),
            Err(_) => engine.decide(
                &req,
                &mut Env {
                    cache: &mut TokenCache::new(1),
                    shared: &HostShared,
                    clock_us: &clock_us,
                },
            ),
        };
        if matches!(decision.reason, "unknown_key" | "keys_unavailable")
            && self.key_wait == KeyWait::No
        {
            // Perhaps the IdP rotated, or another worker fetched the first key set before this worker's
            // tick installed it: newer keys from shared data, or a (rate-limited) refetch this request
            // waits for.
            self.key_wait = KeyWait::Done;
            let refetch = match self.fetcher.try_borrow_mut() {
                Ok(mut f) => f.refetch_now(&engine, host_kind(), req.now_s),
                Err(_) => fetch::Refetch::No,
            };
            match refetch {
                fetch::Refetch::Started => {
                    self.key_wait = KeyWait::Waiting;
                    return Action::Pause;
                }
                fetch::Refetch::Installed => return self.decide(),
                fetch::Refetch::No => {}
            }
        }
        self.metrics.count(&decision);
        let engine_us = monotonic_us(started_mono);
        if engine.audit_enabled() {
            let record = AuditRecord::new(&req, &decision, now_us / 1000, engine_us);
            log(LogLevel::Info, &record.to_json());
        }
        if let Some(reply) = &decision.reply {
            let hs: Vec<(&str, &str)> = reply
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            self.send_http_response(u32::from(reply.status), hs, Some(reply.body.as_bytes()));
            return Action::Pause;
        }
        crate::upstream::forward(
            &decision.remove_headers,
            &decision.upstream_headers,
            &mut HostRequestHeaders,
        );
        self.response_headers = std::mem::take(&mut decision.response_headers);
        if decision.risk.is_some() {
            self.forwarded = Some(decision);
        }
        Action::Continue
    }
}
