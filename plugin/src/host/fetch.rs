//! Outbound calls of the adapter: the one [`dispatch`] and [`answer`] every call goes through
//! (remote keys, introspection, the revocation feed), and the worker's remote key sets (JWKS, OIDC
//! discovery), fetched on the tick timer or for a request that waits. The decisions (when to fetch,
//! what a fetched document means) are the engine's (`credential::jwks`, `credential::introspection`);
//! this file dispatches the calls, reads the answers, counts and logs.

use super::log;
use super::shared::HostShared;
use crate::config::ConfigError;
use crate::credential::jwks::{self, KeySync, Stage};
use crate::decision::Engine;
use crate::gateway::DispatchError;
use crate::outbound::{Call, HostKind};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MetricType, Status};
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// Checks that every call the config asks for can be made on `host` (e.g. Envoy needs a cluster).
pub fn check(engine: &Engine, host: HostKind) -> Result<(), ConfigError> {
    for (i, p) in engine.providers().iter().enumerate() {
        let at = format!("providers[{i}]");
        if let Some(r) = &p.remote {
            r.check_host(host, &at)?;
        }
        if let Some(x) = &p.introspection {
            x.check_host(host, &format!("{at}.introspection"))?;
        }
    }
    if let Some(a) = engine.alerts() {
        a.check_host(host)?;
    }
    if let Some(s) = engine.shipping() {
        s.check_host(host)?;
    }
    if let Some(f) = engine.risk_deny_feed() {
        f.call(host)?;
    }
    Ok(())
}

/// Why an outbound call brought no usable answer (for the log; the engine is told as text).
#[derive(Debug)]
pub enum CallError {
    /// The call could not be built for this gateway.
    Build(ConfigError),
    /// The discovery document named no usable `jwks_uri`.
    Discovery(String),
    /// The host refused to dispatch the call.
    Dispatch {
        /// Cluster or `host:port`.
        upstream: String,
        /// The host's status.
        status: Status,
    },
    /// The call brought no HTTP response.
    NoResponse(DispatchError),
    /// An HTTP status other than 200.
    Status(u16),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Build(e) => write!(f, "{e}"),
            CallError::Discovery(e) => f.write_str(e),
            CallError::Dispatch { upstream, status } => {
                write!(f, "dispatch to {upstream:?} failed: {status:?}")
            }
            CallError::NoResponse(e) => write!(f, "{e}"),
            CallError::Status(s) => write!(f, "answered {s}"),
        }
    }
}

/// Dispatches a call built by the engine; the answer comes to the calling context.
pub fn dispatch(call: &Call) -> Result<u32, CallError> {
    let headers: Vec<(&str, &str)> = call
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    hostcalls::dispatch_http_call(
        &call.upstream,
        headers,
        call.body.as_deref(),
        vec![],
        Duration::from_millis(call.timeout_ms),
    )
    .map_err(|status| CallError::Dispatch {
        upstream: call.upstream.clone(),
        status,
    })
}

/// The answer to a dispatched call: its status (or why there is none: Envoy sends no headers, Kong a
/// `:dispatch_status`) and at most `max` bytes of body (one more, so that the engine can tell that
/// an answer is too large).
pub fn answer(body_size: usize, max: usize) -> Result<(u16, Vec<u8>), CallError> {
    let status = super::gateway::call_outcome().map_err(CallError::NoResponse)?;
    let body = hostcalls::get_buffer(
        BufferType::HttpCallResponseBody,
        0,
        body_size.min(max.saturating_add(1)),
    )
    .ok()
    .flatten()
    .unwrap_or_default();
    Ok((status, body))
}

/// A feed's call, once this worker holds the lease: dispatched, or why not logged (`what` names the
/// feed). The token of the call.
pub fn dispatch_feed(what: &str, call: Result<Call, ConfigError>) -> Option<u32> {
    let call = match call {
        Ok(c) => c,
        Err(e) => {
            log(LogLevel::Error, &format!("warden: {what}: {e}"));
            return None;
        }
    };
    match dispatch(&call) {
        Ok(token) => Some(token),
        Err(e) => {
            log(LogLevel::Warn, &format!("warden: {what}: {e}"));
            None
        }
    }
}

/// A feed's answer: the body of a 200 (at most `max` bytes and one), or `None` with the reason
/// logged (the previous list stays; the next lease retries).
pub fn feed_body(what: &str, body_size: usize, max: usize) -> Option<Vec<u8>> {
    let why = match answer(body_size, max) {
        Ok((200, body)) => return Some(body),
        Ok((status, _)) => CallError::Status(status),
        Err(e) => e,
    };
    keep_previous(what, &why);
    None
}

/// Logs what storing a feed's body came to: the number of `unit`s, or why the previous list stays.
pub fn feed_stored(what: &str, stored: Result<usize, crate::feed::FeedError>, unit: &str) {
    match stored {
        Ok(n) => log(LogLevel::Info, &format!("warden: {what}: {n} {unit}")),
        Err(e) => keep_previous(what, &e),
    }
}

fn keep_previous(what: &str, why: &dyn fmt::Display) {
    log(
        LogLevel::Warn,
        &format!("warden: {what}: {why}; keeping the previous list"),
    );
}

/// Counters (proxy-wasm metrics; Envoy shows them as `wasmcustom.<name>`).
#[derive(Default)]
struct Metrics {
    fetch_ok: Option<u32>,
    fetch_failed: Option<u32>,
}

impl Metrics {
    fn define() -> Metrics {
        let counter = |name| hostcalls::define_metric(MetricType::Counter, name).ok();
        Metrics {
            fetch_ok: counter("warden_jwks_fetch_success"),
            fetch_failed: counter("warden_jwks_fetch_failure"),
        }
    }

    fn bump(id: Option<u32>) {
        if let Some(id) = id {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }
}

/// One worker's remote key sets: the root context calls [`KeyFetcher::tick`] when its timer says
/// the fetcher is due (`schedule::Timers`), and [`KeyFetcher::on_response`] with the answers.
#[derive(Default)]
pub struct KeyFetcher {
    /// Per provider (same index), its sync state when it has remote keys.
    syncs: Vec<Option<KeySync>>,
    /// Per provider: a request missed its keys and did not wait; the next tick may fetch early.
    wanted: Vec<bool>,
    /// Calls in flight: token → (provider index, stage).
    inflight: HashMap<u32, (usize, Stage)>,
    /// Key-set calls that a root context's discovery answer asked for, dispatched on the next tick:
    /// ngx_wasm_module runs a root-context call on a fake request whose connection is gone once its
    /// answer is handled, and a call dispatched from that callback crashes the worker (SIGSEGV).
    deferred: Vec<(usize, Call)>,
    metrics: Metrics,
    /// Per provider: when this worker installed its current remote key set (seconds).
    installed_at: Vec<Option<u64>>,
}

impl KeyFetcher {
    /// A fetcher for `engine`'s remote providers.
    pub fn new(engine: &Engine) -> KeyFetcher {
        KeyFetcher {
            syncs: engine
                .providers()
                .iter()
                .map(|p| p.remote.as_ref().map(|_| KeySync::default()))
                .collect(),
            wanted: vec![false; engine.providers().len()],
            inflight: HashMap::new(),
            deferred: Vec::new(),
            metrics: Metrics::define(),
            installed_at: vec![None; engine.providers().len()],
        }
    }

    /// Each remote provider's key set age on this worker at `now_s` (since it was installed here):
    /// the `warden_key_age_seconds` gauge. Providers without keys yet are left out.
    pub fn key_ages<'e>(&self, engine: &'e Engine, now_s: u64) -> Vec<(&'e str, u64)> {
        engine
            .providers()
            .iter()
            .zip(&self.installed_at)
            .filter_map(|(p, at)| at.map(|t| (p.name.as_str(), now_s.saturating_sub(t))))
            .collect()
    }

    fn installed(&mut self, i: usize, now_s: u64) {
        if let Some(at) = self.installed_at.get_mut(i) {
            *at = Some(now_s);
        }
    }

    /// Whether there is anything to fetch at all.
    pub fn active(&self) -> bool {
        self.syncs.iter().any(Option::is_some)
    }

    /// Whether every remote key set has arrived (the tick can slow down).
    pub fn all_installed(&self) -> bool {
        self.syncs.iter().flatten().all(|s| s.installed() > 0)
    }

    /// Picks up key sets fetched by other workers and starts the fetches this worker won the lease for.
    pub fn tick(&mut self, engine: &Engine, host: HostKind, now_s: u64) {
        for (i, call) in std::mem::take(&mut self.deferred) {
            match dispatch(&call) {
                Ok(token) => {
                    self.inflight.insert(token, (i, Stage::Jwks));
                }
                Err(e) => {
                    if let Some(Some(sync)) = self.syncs.get_mut(i) {
                        fail(sync, &self.metrics, engine, i, now_s, e);
                    }
                }
            }
        }
        for i in 0..engine.providers().len() {
            let wanted = self.wanted.get_mut(i).map(std::mem::take);
            self.step(engine, host, i, now_s, wanted.unwrap_or(false));
        }
    }

    /// A request missed provider `i`'s keys and did not wait: the next tick asks for an early
    /// (rate-limited) fetch.
    pub fn want(&mut self, i: usize) {
        if let Some(w) = self.wanted.get_mut(i) {
            *w = true;
        }
    }

    /// A request just missed provider `i`'s keys: pick up newer keys at once, or start the
    /// (rate-limited) refetch from the calling context, whose request then waits for it.
    pub fn refetch_now(
        &mut self,
        engine: &Engine,
        host: HostKind,
        now_s: u64,
        i: usize,
    ) -> Refetch {
        if let Some(w) = self.wanted.get_mut(i) {
            *w = false;
        }
        self.step(engine, host, i, now_s, true)
    }

    /// One provider: install newer shared keys, take the lease and start a fetch when due.
    fn step(
        &mut self,
        engine: &Engine,
        host: HostKind,
        i: usize,
        now_s: u64,
        refetch: bool,
    ) -> Refetch {
        let (Some(Some(sync)), Some(p)) = (self.syncs.get_mut(i), engine.providers().get(i)) else {
            return Refetch::No;
        };
        let Some(remote) = p.remote.as_ref() else {
            return Refetch::No;
        };
        let tick = match sync.tick(&HostShared, remote, p.allowed(), now_s, refetch) {
            Ok(t) => t,
            Err(e) => {
                log(LogLevel::Warn, &format!("warden: jwks {}: {e}", p.name));
                return Refetch::No;
            }
        };
        let mut out = Refetch::No;
        if let Some(keys) = tick.install {
            p.install_keys(keys);
            if let Some(at) = self.installed_at.get_mut(i) {
                *at = Some(now_s);
            }
            out = Refetch::Installed;
        }
        if tick.fetch {
            let started = remote
                .first_call(host)
                .map_err(CallError::Build)
                .and_then(|(stage, call)| dispatch(&call).map(|token| (stage, token)));
            match started {
                Ok((stage, token)) => {
                    self.inflight.insert(token, (i, stage));
                    out = Refetch::Started;
                }
                Err(e) => fail(sync, &self.metrics, engine, i, now_s, e),
            }
        }
        out
    }

    /// An answer to one of this worker's calls: `None` when not ours, `Some(true)` when the fetch is
    /// over (keys installed or failure recorded), `Some(false)` when it goes on with another call.
    /// `root`: answered in the root context, which never dispatches from the callback (the next call
    /// waits for the next tick; see `deferred`).
    pub fn on_response(
        &mut self,
        engine: &Engine,
        root: bool,
        host: HostKind,
        token: u32,
        body_size: usize,
        now_s: u64,
    ) -> Option<bool> {
        let (i, stage) = self.inflight.remove(&token)?;
        let (Some(Some(sync)), Some(p)) = (self.syncs.get_mut(i), engine.providers().get(i)) else {
            return Some(true);
        };
        let Some(remote) = p.remote.as_ref() else {
            return Some(true);
        };
        let result = match answer(body_size, jwks::MAX_DOCUMENT_BYTES) {
            Ok((200, body)) => Ok(body),
            Ok((s, _)) => Err(CallError::Status(s)),
            Err(e) => Err(e),
        };
        match (stage, result) {
            (Stage::Discovery, Ok(doc)) => {
                let next = remote
                    .call_from_discovery(host, &doc)
                    .map_err(CallError::Discovery);
                match next {
                    // The root context never dispatches from a call's answer (see `deferred`).
                    Ok(call) if root => {
                        self.deferred.push((i, call));
                        return Some(false);
                    }
                    Ok(call) => match dispatch(&call) {
                        Ok(token) => {
                            self.inflight.insert(token, (i, Stage::Jwks));
                            return Some(false);
                        }
                        Err(e) => fail(sync, &self.metrics, engine, i, now_s, e),
                    },
                    Err(e) => fail(sync, &self.metrics, engine, i, now_s, e),
                }
            }
            (Stage::Discovery, Err(e)) => fail(sync, &self.metrics, engine, i, now_s, e),
            (Stage::Jwks, result) => {
                let done = sync.finish(
                    &HostShared,
                    remote,
                    p.allowed(),
                    now_s,
                    result.as_deref().map_err(|e| format!("{stage:?}: {e}")),
                );
                match done {
                    Ok((keys, skipped)) => {
                        Metrics::bump(self.metrics.fetch_ok);
                        log(
                            LogLevel::Info,
                            &format!(
                                "warden: jwks {}: fetched {} keys ({skipped} skipped), version {}",
                                p.name,
                                keys.len(),
                                sync.installed()
                            ),
                        );
                        p.install_keys(keys);
                        self.installed(i, now_s);
                    }
                    Err(e) => {
                        Metrics::bump(self.metrics.fetch_failed);
                        super::alerts::key_fetch_failure(engine, now_s * 1_000, &p.name, &e);
                        log(
                            LogLevel::Warn,
                            &format!(
                                "warden: jwks {}: fetch failed, keeping the last good keys: {e}",
                                p.name
                            ),
                        );
                    }
                }
            }
        }
        Some(true)
    }
}

/// What [`KeyFetcher::refetch_now`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refetch {
    /// Nothing (rate-limited, or another worker holds the lease): the request is decided as it is.
    No,
    /// Newer keys (fetched by another worker) are installed: decide the request again now.
    Installed,
    /// A fetch is in flight from the calling context: the request waits for its answer.
    Started,
}

/// A fetch that failed before the JWKS stage: recorded (backoff), counted, logged.
fn fail(sync: &mut KeySync, m: &Metrics, engine: &Engine, i: usize, now_s: u64, why: CallError) {
    let Some(p) = engine.providers().get(i) else {
        return;
    };
    if let Some(remote) = &p.remote {
        let _ = sync.finish(
            &HostShared,
            remote,
            p.allowed(),
            now_s,
            Err(why.to_string()),
        );
    }
    Metrics::bump(m.fetch_failed);
    super::alerts::key_fetch_failure(engine, now_s * 1_000, &p.name, &why.to_string());
    log(
        LogLevel::Warn,
        &format!(
            "warden: jwks {}: fetch failed, keeping the last good keys: {why}",
            p.name
        ),
    );
}
