//! Host glue of the risk stage: the response facts (status, body size) handed back to the engine,
//! and the circuit-breaker and verdict counters.

use crate::decision::{Decision, Verdict};
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
        }
    }

    /// Counts what the risk stage did for `d` (shadowed verdicts included: they are what would happen).
    pub fn count(&self, d: &Decision) {
        let Some(a) = &d.risk else {
            return;
        };
        let hit = |id: Option<u32>| {
            if let Some(id) = id {
                let _ = hostcalls::increment_metric(id, 1);
            }
        };
        match a.breaker {
            Some((crate::risk::Breaker::Error, _)) => hit(self.breaker_error),
            Some((crate::risk::Breaker::Open, _)) => hit(self.breaker_open),
            None => {}
        }
        if a.over_budget {
            hit(self.breaker_over_budget);
        }
        if a.breaker_event == Some(crate::risk::breaker::Transition::Opened) {
            hit(self.breaker_opened);
        }
        match d.verdict {
            Verdict::Tag => hit(self.tag),
            Verdict::StepUp => hit(self.step_up),
            Verdict::Block => hit(self.block),
            Verdict::Allow | Verdict::Deny => {}
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
