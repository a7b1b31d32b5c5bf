//! One request as the proxy-wasm adapter drives it, written once over [`Host`]: the request read
//! once, the engine stepped until it decides (answering what it asks for), the decision applied
//! (counted, then a local reply or the request forwarded with its headers edited), the upstream's
//! status kept, and when the stream ends the response phase, the decision record and the alert.
//!
//! The adapter (`host/`) implements [`Host`] with proxy-wasm calls; the native tests implement it
//! with a host that counts its calls (`gateway::mock::Counting`), so the host calls they pin are
//! this code's, not a model's.

use crate::audit::{AuditRecord, Outcome};
use crate::config::alerts::AlertEvent;
use crate::credential::cache::TokenCache;
use crate::credential::Introspection;
use crate::decision::{self, Body, Decision, Engine, Env, Progress, Request, Step};
use crate::gateway::{self, BodyPlan, HostRules, Properties};
use crate::outbound::{Call, HostKind};
use crate::reply::LocalReply;
use crate::shared::SharedData;
use std::cell::{Cell, OnceCell, RefCell};
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Instant;

/// A point of the request path that `make bench`'s instrumented build times (`host/stages.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lap {
    /// The engine has decided.
    Engine,
    /// The decision is counted.
    Metrics,
    /// The request's headers are edited for the upstream.
    Forward,
    /// The response phase of the behavioural state is done (`Engine::observe_response`).
    Observe,
}

/// The host calls the request path makes, one method per kind. Shared data and properties come
/// from the supertraits.
pub trait Host: Properties + SharedData {
    /// The gateway.
    fn kind(&self) -> HostKind;
    /// The request's headers, names and raw values (one host call).
    fn request_headers(&self) -> Vec<(String, Vec<u8>)>;
    /// A request id for a request without a usable `x-request-id` of its own.
    fn new_request_id(&self) -> String;
    /// The wall clock, microseconds since the Unix epoch.
    fn now_us(&self) -> u64;
    /// Now on a monotonic clock (the host's: WASI in the filter).
    fn monotonic(&self) -> Instant;
    /// Removes a request header before the request goes upstream.
    fn remove_request_header(&self, name: &str);
    /// Sets a request header before the request goes upstream.
    fn set_request_header(&self, name: &str, value: &str);
    /// Adds a request header before the request goes upstream (the request has none of that name).
    fn add_request_header(&self, name: &str, value: &str);
    /// Adds a header to the upstream's response.
    fn set_response_header(&self, name: &str, value: &str);
    /// The upstream's status (`:status` of the response headers).
    fn response_status(&self) -> Option<u16>;
    /// Sends a local reply: the request goes no further.
    fn send(&self, reply: &LocalReply);
    /// Counts a decision that took the engine `engine_us` (metrics).
    fn count(&self, decision: &Decision, engine_us: u64);
    /// Writes the decision record to the engine's sink (`Engine::audit_sink`).
    fn write_record(&self, engine: &Engine, record: &AuditRecord<'_>);
    /// Queues the alert event a decision raised, with its record.
    fn raise(&self, engine: &Engine, event: AlertEvent, ts_ms: u64, record: &AuditRecord<'_>);
    /// The remote keys of `provider` lack the token's key: installs newer ones from shared data,
    /// or starts a (rate-limited) fetch; true when the request must wait for it.
    fn refetch_keys(&self, engine: &Engine, now_s: u64, provider: usize) -> bool;
    /// A decision missed keys of `provider` without waiting: they are fetched on a tick.
    fn keys_missed(&self, provider: usize);
    /// Dispatches an outbound call (its answer resumes the request).
    fn dispatch(&self, call: &Call) -> Result<(), String>;
    /// Logs a warning.
    fn warn(&self, msg: &str);
    /// Marks a point of the request path (timed in the instrumented build only).
    fn lap(&self, _at: Lap) {}
}

/// What the host does with the request next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Go on: forward the request (or, waiting for its body on Kong, read it).
    Continue,
    /// Stop here: the request waits for an answer or its body, or a local reply was sent.
    Pause,
}

/// What a paused request waits for.
pub enum Wait {
    /// Keys this request's fetch brings (an unknown `kid`, or none yet).
    Keys,
    /// The answer to the introspection of its opaque token.
    Introspection(Introspection),
    /// Its body (an MCP call), at most this many bytes.
    Body(usize),
}

/// The request body as read from the host (at most once).
pub enum HostBody {
    /// Read whole.
    Read(Vec<u8>),
    /// Over the endpoint's limit, or not readable whole.
    TooLarge,
    /// A body without a length where one is needed.
    LengthRequired,
}

/// The request as read from the host, once: the headers (with invalid UTF-8 repaired) and the
/// connection facts. Each step of the engine sees the same request.
pub struct Facts {
    /// The request headers.
    pub headers: Vec<(String, String)>,
    /// The request id (the client's `x-request-id`, or a generated one).
    pub request_id: String,
    /// The client certificate's digest, once read (only when the engine asks: a bound token).
    pub peer_cert_sha256: OnceCell<Option<String>>,
    /// The client's address, once read (only when the config uses it: the engine asks,
    /// `Step::NeedClientAddress`).
    pub source: OnceCell<Option<IpAddr>>,
    /// The body, once read (only when the engine asks: MCP calls).
    pub body: OnceCell<HostBody>,
}

impl Facts {
    /// Reads the request once. Header values may hold any byte (obs-text): invalid UTF-8 is
    /// replaced (U+FFFD is not token68, so such a credential is refused, never guessed).
    pub fn read(host: &impl Host) -> Facts {
        let headers: Vec<(String, String)> = host
            .request_headers()
            .into_iter()
            .map(|(name, value)| {
                let value = String::from_utf8(value)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                (name, value)
            })
            .collect();
        let request_id = decision::request_id(&headers, || host.new_request_id()).into_owned();
        Facts {
            headers,
            request_id,
            peer_cert_sha256: OnceCell::new(),
            source: OnceCell::new(),
            body: OnceCell::new(),
        }
    }

    /// The value of the header `name` (lower case), or "".
    pub fn find(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The request at `now_us`, for the engine.
    pub fn request(&self, now_us: u64) -> Request<'_> {
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

/// A request's decision, with when it was taken and how long the engine took.
pub struct Decided {
    /// The decision.
    pub decision: Decision,
    /// Wall clock when the engine started on it, microseconds since the epoch.
    pub at_us: u64,
    /// The engine's time.
    pub engine_us: u64,
}

/// One request's state between the host's callbacks.
pub struct Exchange {
    /// The request, once read.
    pub facts: Option<Rc<Facts>>,
    /// What the engine has asked for this request.
    pub progress: Progress,
    /// What the paused request waits for.
    pub waiting: Option<Wait>,
    /// `end_of_stream` of the request headers (Envoy: the request has no body).
    pub end_of_stream: bool,
    /// Headers the decision adds to the upstream's response.
    pub response_headers: Vec<(String, String)>,
    /// A forwarded `tools/list` call: its decision and the largest answer to filter.
    pub tools_list: Option<(Decision, usize)>,
    /// The decision, kept for the end of the request (the response phase, the record).
    pub decided: Option<Decided>,
    /// The upstream's status (a forwarded request).
    pub response_status: Option<u16>,
    /// Response body bytes (the upstream's, or the local reply's).
    pub response_bytes: u64,
}

impl Exchange {
    /// A request on `kind`'s host, not read yet.
    pub fn new(kind: HostKind) -> Exchange {
        Exchange {
            facts: None,
            progress: Progress::new(kind),
            waiting: None,
            end_of_stream: false,
            response_headers: Vec::new(),
            tools_list: None,
            decided: None,
            response_status: None,
            response_bytes: 0,
        }
    }

    /// Whether the request was decided and forwarded upstream.
    pub fn forwarded(&self) -> bool {
        self.decided
            .as_ref()
            .is_some_and(|d| d.decision.reply.is_none())
    }

    /// Steps the engine until it decides or the request must wait, answering what it asks for:
    /// `Continue` to forward, `Pause` to wait or when a local reply was sent. The wall clock is
    /// read once here, for every step of this phase, and once more when the engine has decided
    /// (its time, `warden_engine_us`).
    pub fn run(
        &mut self,
        host: &impl Host,
        engine: &Engine,
        cache: &RefCell<TokenCache>,
        facts: &Facts,
    ) -> Next {
        let started_us = host.now_us();
        loop {
            let req = facts.request(started_us);
            match self.step(host, engine, cache, &req) {
                Step::Decided(decision) => {
                    host.lap(Lap::Engine);
                    return self.apply(host, engine, *decision, started_us);
                }
                Step::NeedKeys(provider) => {
                    // Perhaps the IdP rotated, or another worker fetched the first key set before
                    // this worker's tick installed it: newer keys from shared data, or a
                    // (rate-limited) fetch this request waits for.
                    if host.refetch_keys(engine, req.now_s, provider) {
                        self.waiting = Some(Wait::Keys);
                        return Next::Pause;
                    }
                }
                Step::NeedBody { max_bytes } => {
                    let rules = HostRules::of(host.kind());
                    let plan =
                        gateway::body_plan(rules, self.end_of_stream, &facts.headers, max_bytes);
                    let body = match plan {
                        BodyPlan::Empty => HostBody::Read(Vec::new()),
                        BodyPlan::TooLarge => HostBody::TooLarge,
                        BodyPlan::LengthRequired => HostBody::LengthRequired,
                        BodyPlan::Wait => {
                            self.waiting = Some(Wait::Body(max_bytes));
                            // ngx_wasm_module: nothing goes upstream before on_http_request_body.
                            return if rules.pauses_for_body {
                                Next::Pause
                            } else {
                                Next::Continue
                            };
                        }
                    };
                    let _ = facts.body.set(body);
                }
                Step::NeedPeerCertificate => {
                    // Kong cannot tell: none, so certificate-bound tokens are refused there.
                    let digest = gateway::peer_certificate_sha256(host.kind(), host)
                        .ok()
                        .flatten()
                        .map(hex::encode);
                    let _ = facts.peer_cert_sha256.set(digest);
                }
                Step::NeedClientAddress => {
                    let _ = facts
                        .source
                        .set(gateway::client_address(host).map(|a| a.ip));
                }
                Step::Introspect(asked) => match host.dispatch(&asked.call) {
                    Ok(()) => {
                        self.waiting = Some(Wait::Introspection(asked));
                        return Next::Pause;
                    }
                    Err(e) => {
                        host.warn(&format!("warden: introspection: {e}"));
                        if let Ok(mut cache) = cache.try_borrow_mut() {
                            let _ = engine.credentials().introspected(
                                &asked,
                                Err(e),
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
    /// monotonic clock (the risk stage's time budget) is read only when the engine asks for it:
    /// its first reading is zero.
    fn step(
        &mut self,
        host: &impl Host,
        engine: &Engine,
        cache: &RefCell<TokenCache>,
        req: &Request<'_>,
    ) -> Step {
        let mut spare;
        let mut borrowed = cache.try_borrow_mut();
        let cache = match &mut borrowed {
            Ok(cache) => &mut **cache,
            Err(_) => {
                spare = TokenCache::new(1);
                &mut spare
            }
        };
        let started: Cell<Option<Instant>> = Cell::new(None);
        let clock_us = || match started.get() {
            Some(t) => {
                u64::try_from(host.monotonic().duration_since(t).as_micros()).unwrap_or(u64::MAX)
            }
            None => {
                started.set(Some(host.monotonic()));
                0
            }
        };
        let mut env = Env {
            cache,
            shared: host,
            clock_us: &clock_us,
        };
        engine.step(req, &mut env, &mut self.progress)
    }

    /// Applies a decision: counted, kept for the end of the request, then a local reply (`Pause`)
    /// or the request forwarded with its headers edited (`Continue`).
    fn apply(
        &mut self,
        host: &impl Host,
        engine: &Engine,
        mut decision: Decision,
        started_us: u64,
    ) -> Next {
        if let Some(provider) = decision.keys_missed {
            host.keys_missed(provider);
        }
        // The wall clock (whole milliseconds on ngx_wasm_module, as its monotonic one); a clock
        // set back counts zero.
        let engine_us = host.now_us().saturating_sub(started_us);
        host.count(&decision, engine_us);
        host.lap(Lap::Metrics);
        let next = match &decision.reply {
            Some(reply) => {
                self.response_bytes = u64::try_from(reply.body.len()).unwrap_or(u64::MAX);
                host.send(reply);
                Next::Pause
            }
            None => {
                crate::upstream::forward(
                    HostRules::of(host.kind()),
                    &decision.remove_headers,
                    &decision.upstream_headers,
                    &mut Upstream(host),
                );
                host.lap(Lap::Forward);
                self.response_headers = std::mem::take(&mut decision.response_headers);
                if let Some(max) = decision.filters_tools_list() {
                    self.tools_list = Some((decision.clone(), max));
                }
                Next::Continue
            }
        };
        // Kept for the end of the request: the response phase, the record, the alert.
        if engine.audit_enabled() || engine.alerts().is_some() || decision.observes_response() {
            self.decided = Some(Decided {
                decision,
                at_us: started_us,
                engine_us,
            });
        }
        next
    }

    /// The upstream's response headers arrive: the decision's own are added.
    pub fn add_response_headers(&mut self, host: &impl Host) {
        for (name, value) in std::mem::take(&mut self.response_headers) {
            host.set_response_header(&name, &value);
        }
    }

    /// A chunk of the upstream's response body of `n` bytes passed (not buffered: each chunk
    /// reports its own size).
    pub fn response_body(&mut self, n: usize) {
        if self.forwarded() {
            let n = u64::try_from(n).unwrap_or(u64::MAX);
            self.response_bytes = self.response_bytes.saturating_add(n);
        }
    }

    /// Reads the upstream's status of a forwarded request.
    pub fn read_status(&mut self, host: &impl Host) {
        if self.forwarded() {
            self.response_status = host.response_status();
        }
    }

    /// The stream is over: the upstream's answer teaches the caller's behavioural record
    /// (`Engine::observe_response`), and the request's one decision record is written and its
    /// alert event queued. `last_of_replaced`: a new config replaced this request's engine since it
    /// began and this request holds its last reference: it writes the response facts left waiting
    /// there (the root's tick flushes only the current engine's; `risk/pending.rs`), which would
    /// otherwise be lost with it.
    pub fn end(&self, host: &impl Host, engine: &Engine, last_of_replaced: bool) {
        self.finish(host, engine);
        if last_of_replaced {
            engine.flush_responses(host);
        }
    }

    /// [`Exchange::end`] for the engine in use.
    fn finish(&self, host: &impl Host, engine: &Engine) {
        let (Some(decided), Some(facts)) = (&self.decided, &self.facts) else {
            return;
        };
        let now_us = host.now_us();
        let decision = &decided.decision;
        if let (Some(status), true) = (self.response_status, decision.observes_response()) {
            let now_s = now_us / 1_000_000;
            engine.observe_response(decision, status, self.response_bytes, now_s, host);
        }
        host.lap(Lap::Observe);
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
                host.write_record(engine, &record);
            }
            if let Some(event) = event {
                host.raise(engine, event, ts_ms, &record);
            }
        }
    }
}

/// The request's headers for the upstream, edited through the host.
struct Upstream<'h, H>(&'h H);

impl<H: Host> crate::upstream::RequestHeaders for Upstream<'_, H> {
    fn remove(&mut self, name: &str) {
        self.0.remove_request_header(name);
    }

    fn set(&mut self, name: &str, value: &str) {
        self.0.set_request_header(name, value);
    }

    fn add(&mut self, name: &str, value: &str) {
        self.0.add_request_header(name, value);
    }
}
