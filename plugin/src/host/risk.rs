//! Host glue of the risk stage: the response facts (status, body size) handed back to the engine,
//! the circuit-breaker and verdict counters, and `risk.deny_cidrs_feed` (as the revocation feed:
//! every worker's root context runs [`feed_tick`] on the one tick timer; the worker that takes the
//! shared lease fetches the list for all, and each worker refreshes its own copy from shared data).

use super::fetch;
use super::shared::HostShared;
use crate::decision::Engine;
use crate::metrics::RiskCounter;
use crate::risk::feed::MAX_BYTES;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{MapType, MetricType};

/// The upstream's status, from the response headers.
pub fn response_status() -> Option<u16> {
    let bytes = hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, ":status")
        .ok()
        .flatten()?;
    std::str::from_utf8(&bytes).ok()?.trim().parse().ok()
}

/// Counters (proxy-wasm metrics; a host without metrics simply has none).
#[derive(Debug, Default, Clone, Copy)]
pub struct RiskMetrics {
    breaker_error: Option<u32>,
    breaker_over_budget: Option<u32>,
    breaker_open: Option<u32>,
    breaker_opened: Option<u32>,
    tag: Option<u32>,
    step_up: Option<u32>,
    block: Option<u32>,
    throttle: Option<u32>,
    suspend: Option<u32>,
}

impl RiskMetrics {
    /// Defines the counters (once per VM; defining again returns the same ids).
    pub fn define() -> RiskMetrics {
        let counter = |name: &str| hostcalls::define_metric(MetricType::Counter, name).ok();
        RiskMetrics {
            breaker_error: counter("warden_risk_breaker_error_total"),
            breaker_over_budget: counter("warden_risk_breaker_over_budget_total"),
            breaker_open: counter("warden_risk_breaker_open_total"),
            breaker_opened: counter("warden_risk_breaker_opened_total"),
            tag: counter("warden_risk_tag_total"),
            step_up: counter("warden_risk_step_up_total"),
            block: counter("warden_risk_block_total"),
            throttle: counter("warden_risk_throttle_total"),
            suspend: counter("warden_risk_suspend_total"),
        }
    }

    /// The id of risk counter `c` (`None`: the host has no metrics).
    pub fn id(&self, c: RiskCounter) -> Option<u32> {
        match c {
            RiskCounter::BreakerError => self.breaker_error,
            RiskCounter::BreakerOverBudget => self.breaker_over_budget,
            RiskCounter::BreakerOpen => self.breaker_open,
            RiskCounter::BreakerOpened => self.breaker_opened,
            RiskCounter::Tag => self.tag,
            RiskCounter::StepUp => self.step_up,
            RiskCounter::Block => self.block,
            RiskCounter::Throttle => self.throttle,
            RiskCounter::Suspend => self.suspend,
        }
    }
}

/// Times the embedded model where it runs, in this VM: 1,000 scores of varied inputs (well under a
/// millisecond) at config load, for the log. Natively, `cargo bench -p warden --bench risk` times
/// the same call; this is the number inside the gateway's V8 (model/BENCHMARKS.md quotes it).
pub fn time_model() -> Option<String> {
    const CALLS: u32 = 1_000;
    let now_ns = || {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos())
    };
    crate::risk::with_model(|model| {
        let width = model.width();
        let inputs: Vec<Vec<f32>> = (0..16usize)
            .map(|i| {
                (0..width)
                    .map(|j| ((i * 7 + j * 3) % 13) as f32 / 4.0)
                    .collect()
            })
            .collect();
        let started = now_ns();
        let scored = inputs
            .iter()
            .cycle()
            .take(CALLS as usize)
            .filter(|x| model.score(x).is_ok())
            .count();
        let per_call = now_ns().saturating_sub(started) / u128::from(CALLS);
        format!(
            "warden: risk model loaded ({width} features); inference {per_call} ns per call in \
             this VM (mean of {CALLS}, {scored} scored)"
        )
    })
    .ok()
}

/// One tick of the deny feed: refresh this worker's copy, and fetch the list if this worker got the
/// lease. Returns the call's token.
pub fn feed_tick(engine: &Engine, now_s: u64) -> Option<u32> {
    let feed = engine.risk_deny_feed()?;
    feed.refresh(&HostShared);
    if !feed.take_lease(&HostShared, now_s) {
        return None;
    }
    fetch::dispatch_feed(FEED, feed.call(super::gateway::kind()))
}

/// The deny feed's answer: stored for every worker when it is a 200 with a valid body (and this
/// worker's copy refreshed); otherwise the last good list stays and the next lease retries.
pub fn feed_response(engine: &Engine, body_size: usize) {
    let Some(feed) = engine.risk_deny_feed() else {
        return;
    };
    if let Some(body) = fetch::feed_body(FEED, body_size, MAX_BYTES) {
        let stored = feed.store(&HostShared, &body);
        if stored.is_ok() {
            feed.refresh(&HostShared);
        }
        fetch::feed_stored(FEED, stored, "networks");
    }
}

/// The deny feed's name in logs.
const FEED: &str = "risk deny feed";
