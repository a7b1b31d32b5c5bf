//! Where a request's time goes inside the filter, for `make bench` only: built with the cargo feature
//! `stage-timing`, each stage of the host path is timed on the WASI monotonic clock, summed per
//! worker, and every [`EVERY`] requests one line gives the mean microseconds per request of each
//! stage (`warden: stages ...`, at warn, so Envoy logs it at its default level). Without the
//! feature every function here is empty and the clock is never read.

/// A stage of the host path.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    /// The request headers read once (one host call, the SDK's copy into Rust strings), the request
    /// id, the client address and certificate properties.
    Read,
    /// The engine's steps until it decides (route, credential, authorization, risk).
    Engine,
    /// Counting the decision (metrics: names, host calls).
    Metrics,
    /// Removing and adding request headers for the upstream.
    Forward,
    /// The response-header callback (response headers added, the status read).
    Response,
    /// The response phase of the behavioural state (`observe_response`).
    Observe,
    /// The decision record built and serialized.
    Record,
    /// The record handed to the host (log or filter state).
    Write,
    /// Not part of the pipeline: SHA-256 of the `Authorization` value alone, what the token
    /// cache's key costs in this VM.
    #[cfg_attr(not(feature = "stage-timing"), allow(dead_code))]
    CacheKeyProbe,
    /// Inside [`Stage::Engine`], not added to the sum: the host's foreign-function calls (the one
    /// called is `verify_signature`: a first-seen token's signature checked by Envoy), so that the
    /// engine's own work shows.
    Verify,
}

/// Requests between two lines.
#[cfg_attr(not(feature = "stage-timing"), allow(dead_code))]
pub const EVERY: u64 = 10_000;

#[cfg(feature = "stage-timing")]
mod on {
    use super::{Stage, EVERY};
    use std::cell::RefCell;
    use std::time::Instant;

    const N: usize = 10;
    const NAMES: [&str; N] = [
        "read",
        "engine",
        "metrics",
        "forward",
        "response",
        "observe",
        "record",
        "write",
        "cache_key_probe",
        "verify",
    ];

    thread_local! {
        static SUMS: RefCell<([u64; N], u64)> = const { RefCell::new(([0; N], 0)) };
    }

    /// A running clock.
    pub struct Clock(Instant);

    pub fn start() -> Clock {
        Clock(Instant::now())
    }

    /// Adds the time since the last lap to `stage`.
    pub fn lap(clock: &mut Clock, stage: Stage) {
        let now = Instant::now();
        let ns = u64::try_from(now.duration_since(clock.0).as_nanos()).unwrap_or(u64::MAX);
        clock.0 = now;
        SUMS.with(|s| {
            if let Ok(mut s) = s.try_borrow_mut() {
                if let Some(x) = s.0.get_mut(stage as usize) {
                    *x = x.saturating_add(ns);
                }
            }
        });
    }

    /// Times the token-cache key of `value` alone (`cache`'s keyed hash).
    pub fn probe_cache_key(cache: &crate::credential::cache::TokenCache, value: &str) {
        nested(Stage::CacheKeyProbe, || {
            std::hint::black_box(cache.key_of(std::hint::black_box(value)))
        });
    }

    /// Runs `f`, its time added to `stage` (a stage inside another: the outer one's clock runs on).
    pub fn nested<T>(stage: Stage, f: impl FnOnce() -> T) -> T {
        let mut clock = start();
        let out = f();
        lap(&mut clock, stage);
        out
    }

    /// One request done; every [`EVERY`] the means are logged and the sums start again.
    pub fn request_done() {
        let line = SUMS.with(|s| {
            let mut s = s.try_borrow_mut().ok()?;
            s.1 += 1;
            if s.1 < EVERY {
                return None;
            }
            let n = s.1 as f64;
            let parts: Vec<String> = NAMES
                .iter()
                .zip(s.0.iter())
                .map(|(name, ns)| format!("{name}={:.2}", *ns as f64 / n / 1_000.0))
                .collect();
            *s = ([0; N], 0);
            Some(format!(
                "warden: stages over {EVERY} requests (us/request): {}",
                parts.join(" ")
            ))
        });
        if let Some(line) = line {
            super::super::log(proxy_wasm::types::LogLevel::Warn, &line);
        }
    }
}

#[cfg(not(feature = "stage-timing"))]
mod on {
    use super::Stage;

    /// No clock without the feature.
    pub struct Clock;

    #[inline(always)]
    pub fn start() -> Clock {
        Clock
    }

    #[inline(always)]
    pub fn lap(_clock: &mut Clock, _stage: Stage) {}

    #[inline(always)]
    pub fn probe_cache_key(_cache: &crate::credential::cache::TokenCache, _value: &str) {}

    #[inline(always)]
    pub fn nested<T>(_stage: Stage, f: impl FnOnce() -> T) -> T {
        f()
    }

    #[inline(always)]
    pub fn request_done() {}
}

pub use on::{lap, nested, probe_cache_key, request_done, start, Clock};
