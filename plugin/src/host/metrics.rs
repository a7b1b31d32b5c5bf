//! Host glue of the metrics ([`crate::metrics`] names them): defined on first use and remembered
//! per worker, so a request costs a name and a map lookup per metric, not a host definition.
//! Counters are summed in the worker and published on the root context's tick (every
//! [`crate::schedule::TICK`], and when the root context is done): a request's counters cost no host
//! call; a histogram's observation is one.

use crate::decision::{Decision, Verdict};
use crate::metrics::{self, Update};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, MetricType};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

/// Most distinct metric names a worker defines: the label sets are bounded (verdicts, reasons and
/// config route names), this keeps a bug from growing the map without end.
const MAX_METRICS: usize = 4_096;

/// The worker's metrics, shared by its root and HTTP contexts.
#[derive(Clone, Default)]
pub struct Meter {
    ids: Rc<RefCell<HashMap<String, u32>>>,
    /// Counter increments not yet published, by metric id (at most one entry per defined metric).
    pending: Rc<RefCell<Vec<(u32, i64)>>>,
    /// This worker's own tallies (for log throttling), by key.
    local: Rc<RefCell<HashMap<(&'static str, &'static str), u64>>>,
    /// The decisions counter of the last decision counted: most requests repeat it, and then
    /// cost neither its name nor a map lookup.
    last_decision: Rc<RefCell<Option<(DecisionLabels, u32)>>>,
    /// The risk-score histogram of the last scoring model, by the model's id: one model scores
    /// every request of a config, so its name is built once, not per request.
    last_risk_score: Rc<RefCell<Option<ModelMetric>>>,
}

/// A scoring model's id and its risk-score histogram.
type ModelMetric = (Arc<str>, u32);

/// The labels of a decisions counter ([`metrics::decision`]).
#[derive(PartialEq, Eq)]
struct DecisionLabels {
    verdict: Verdict,
    reason: &'static str,
    route: Option<std::sync::Arc<str>>,
}

impl Meter {
    fn id(&self, kind: MetricType, name: &str) -> Option<u32> {
        let mut ids = self.ids.try_borrow_mut().ok()?;
        if let Some(id) = ids.get(name) {
            return Some(*id);
        }
        if ids.len() >= MAX_METRICS {
            return None;
        }
        let id = hostcalls::define_metric(kind, name).ok()?;
        ids.insert(name.to_owned(), id);
        Some(id)
    }

    /// The decisions counter of `d`.
    fn decision_id(&self, d: &Decision) -> Option<u32> {
        let mut last = self.last_decision.try_borrow_mut().ok()?;
        let same = |l: &DecisionLabels| {
            l.verdict == d.verdict && l.reason == d.reason && l.route == d.route
        };
        match last.as_ref() {
            Some((labels, id)) if same(labels) => Some(*id),
            _ => {
                let id = self.id(MetricType::Counter, &metrics::decision(d))?;
                let labels = DecisionLabels {
                    verdict: d.verdict,
                    reason: d.reason,
                    route: d.route.clone(),
                };
                *last = Some((labels, id));
                Some(id)
            }
        }
    }

    /// The risk-score histogram of `model`.
    fn risk_score_id(&self, model: &Arc<str>) -> Option<u32> {
        let mut last = self.last_risk_score.try_borrow_mut().ok()?;
        match last.as_ref() {
            Some((m, id)) if **m == **model => Some(*id),
            _ => {
                let id = self.id(MetricType::Histogram, &metrics::risk_score(model))?;
                *last = Some((Arc::clone(model), id));
                Some(id)
            }
        }
    }

    /// Adds `n` to counter `id`, published at the next [`Meter::flush`].
    fn add(&self, id: Option<u32>, n: i64) {
        let (Some(id), Ok(mut pending)) = (id, self.pending.try_borrow_mut()) else {
            return;
        };
        match pending.iter_mut().find(|(i, _)| *i == id) {
            Some((_, total)) => *total = total.saturating_add(n),
            None => pending.push((id, n)),
        }
    }

    /// Publishes the counters summed since the last flush (one host call per counter that moved).
    pub fn flush(&self) {
        let Ok(mut pending) = self.pending.try_borrow_mut() else {
            return;
        };
        for (id, n) in pending.drain(..) {
            if n != 0 {
                let _ = hostcalls::increment_metric(id, n);
            }
        }
    }

    /// Adds `n` to this worker's own tally `key` (never published) and returns the new total.
    pub fn tally(&self, key: (&'static str, &'static str), n: u64) -> u64 {
        let Ok(mut local) = self.local.try_borrow_mut() else {
            return 0;
        };
        let total = local.entry(key).or_default();
        *total = total.saturating_add(n);
        *total
    }

    /// Counts `n` things dropped in `metric{why}` (`warden_alerts_dropped_total`,
    /// `warden_records_dropped_total`) and logs it as `what` (`alerts: 3 event(s)`): the first drop
    /// and every power of two after, so that a dead receiver cannot flood the log.
    pub fn dropped(&self, metric: &'static str, what: (&str, &str), why: &'static str, n: u64) {
        let total = self.tally((metric, why), n);
        self.count(
            metrics::named(metric, &[("why", why)]),
            i64::try_from(n).unwrap_or(i64::MAX),
        );
        if total.is_power_of_two() || n > 1 {
            let (section, unit) = what;
            super::log(
                LogLevel::Warn,
                &format!(
                    "warden: {section}: {n} {unit}(s) dropped ({why}); {total} dropped ({why}) by this worker"
                ),
            );
        }
    }

    /// Adds `n` to the counter `name`.
    pub fn count(&self, name: String, n: i64) {
        self.add(self.id(MetricType::Counter, &name), n);
    }

    /// Sets the gauge `name`.
    pub fn gauge(&self, name: String, value: u64) {
        if let Some(id) = self.id(MetricType::Gauge, &name) {
            let _ = hostcalls::record_metric(id, value);
        }
    }

    /// Records `value` in the histogram `name`.
    pub fn observe(&self, name: &str, value: u64) {
        if let Some(id) = self.id(MetricType::Histogram, name) {
            let _ = hostcalls::record_metric(id, value);
        }
    }

    /// Publishes the signatures checked since the last call, by who checked them (`kind`: `host`
    /// for the host's `verify_signature`, `wasm` for jwt-simple). `counts` are the engine's totals,
    /// which start again at a new config.
    pub fn signatures(&self, counts: (u64, u64)) {
        let Ok(mut local) = self.local.try_borrow_mut() else {
            return;
        };
        let mut deltas = [("signatures_by_host", 0u64), ("signatures_in_wasm", 0)];
        for ((key, delta), total) in deltas.iter_mut().zip([counts.0, counts.1]) {
            let seen = local.entry((key, "")).or_default();
            // A new config counts from zero again.
            *delta = total.saturating_sub(if total < *seen { 0 } else { *seen });
            *seen = total;
        }
        drop(local);
        let names = [metrics::SIGNATURES_HOST, metrics::SIGNATURES_WASM];
        for (name, (_, delta)) in names.into_iter().zip(deltas) {
            if delta > 0 {
                let n = i64::try_from(delta).unwrap_or(i64::MAX);
                self.add(self.id(MetricType::Counter, name), n);
            }
        }
    }

    /// What one decision adds ([`metrics::updates`]: one host call each, the risk stage's counters
    /// in `risk`): its verdict, reason and route; the engine time; the risk score; the token
    /// cache's answer.
    pub fn decision(&self, d: &Decision, engine_us: u64, risk: &super::risk::RiskMetrics) {
        metrics::updates(d, |u| match u {
            Update::Decision => self.add(self.decision_id(d), 1),
            Update::EngineUs => self.observe(metrics::ENGINE_US, engine_us),
            Update::RiskScore(score) => {
                if let Some(id) = d.risk.as_ref().and_then(|a| self.risk_score_id(&a.model)) {
                    let _ = hostcalls::record_metric(id, u64::from(score));
                }
            }
            Update::TokenCache(name) => self.add(self.id(MetricType::Counter, name), 1),
            Update::Risk(c) => self.add(risk.id(c), 1),
        });
    }
}
