//! Host glue of the alerts (see [`crate::alerts`]): requests queue the events their decisions raise;
//! each worker's root context, on its tick, sends a ready batch when it takes the shared lease, and
//! retries a failed one on later ticks. Calls leave only from `on_tick`: the answer's callback
//! records the outcome and dispatches nothing (a call dispatched from a root context's answer
//! crashes ngx_wasm_module's workers).

use super::fetch;
use super::gateway;
use super::metrics::Meter;
use super::shared::HostShared;
use crate::alerts::{backoff_ms, AlertLine, Alerts, Enqueued};
use crate::audit::AuditRecord;
use crate::config::alerts::AlertEvent;
use crate::decision::Engine;
use crate::metrics;
use proxy_wasm::types::LogLevel;

/// How long one worker holds the sender lease: one tick.
const LEASE_MS: u64 = crate::schedule::TICK.as_millis() as u64;

/// Queues `event`; a full queue drops it, counted (`warden_alerts_dropped_total{why}`) and logged
/// (the first drop and every power of two after, so a dead receiver cannot flood the log).
pub fn raise(alerts: &Alerts, meter: &Meter, event: AlertEvent, ts_ms: u64, line: &str) {
    let outcome = alerts.enqueue(&HostShared, ts_ms, line);
    let why = match outcome {
        Ok(Enqueued::Queued) => {
            meter.count(
                metrics::named(metrics::ALERTS_QUEUED, &[("event", event.as_str())]),
                1,
            );
            return;
        }
        Ok(Enqueued::QueueFull) => "queue_full",
        Ok(Enqueued::TooLarge) => "too_large",
        Err(_) => "shared_data",
    };
    dropped(meter, why, 1);
}

/// Defines the alert counters at zero, so that dashboards see them before the first event.
pub fn define_metrics(meter: &Meter) {
    meter.count(metrics::ALERTS_SENT.to_owned(), 0);
    for why in ["queue_full", "send_failed"] {
        meter.count(metrics::named(metrics::ALERTS_DROPPED, &[("why", why)]), 0);
    }
}

/// Counts and logs dropped events.
fn dropped(meter: &Meter, why: &'static str, n: u64) {
    meter.dropped(metrics::ALERTS_DROPPED, ("alerts", "event"), why, n);
}

/// The event line of a decision's record.
pub fn line_of(event: AlertEvent, record: &AuditRecord<'_>) -> String {
    AlertLine::of_record(event, record).to_json()
}

/// A remote key set could not be fetched (rare: its own meter).
pub fn key_fetch_failure(engine: &Engine, now_ms: u64, provider: &str, why: &str) {
    if let Some(alerts) = engine.alerts() {
        gateway_event(
            alerts,
            AlertEvent::KeyFetchFailure,
            now_ms,
            &format!("{provider}: {why}"),
        );
    }
}

/// A config was refused: when its `alerts` section alone is usable, the event is queued for the
/// workers still running the previous config (Envoy keeps it) to send.
pub fn config_refused(config: &[u8], now_ms: u64, why: &str) {
    let section = serde_json::from_slice::<serde_json::Value>(config)
        .ok()
        .and_then(|v| v.get("alerts").cloned())
        .and_then(|v| serde_json::from_value(v).ok());
    if let Some(alerts) = section.and_then(|c| Alerts::compile(&c).ok()) {
        gateway_event(&alerts, AlertEvent::ConfigRefused, now_ms, why);
    }
}

fn gateway_event(alerts: &Alerts, event: AlertEvent, now_ms: u64, reason: &str) {
    if alerts.wants(event) {
        let line = AlertLine::of_gateway(event, now_ms, reason).to_json();
        raise(alerts, &Meter::default(), event, now_ms, &line);
    }
}

/// One worker's sender: at most one batch, in flight or waiting for its retry.
#[derive(Default)]
pub struct Sender {
    /// The call in flight: its token, its events, its attempt (0: first).
    inflight: Option<(u32, Vec<String>, u32)>,
    /// A failed batch waiting for its retry: when, its events, the attempts made.
    retry: Option<(u64, Vec<String>, u32)>,
}

impl Sender {
    /// One tick: retry a failed batch when due, else take a ready batch if this worker gets the lease.
    pub fn tick(&mut self, engine: &Engine, meter: &Meter, now_ms: u64) {
        let Some(alerts) = engine.alerts() else {
            return;
        };
        if self.inflight.is_some() {
            return;
        }
        let (events, attempt) = match self.retry.take() {
            Some((due, events, attempt)) if now_ms >= due => (events, attempt),
            Some(waiting) => {
                self.retry = Some(waiting);
                return;
            }
            None => {
                if !alerts.take_lease(&HostShared, now_ms, LEASE_MS) {
                    return;
                }
                match alerts.take_batch(&HostShared, now_ms) {
                    Ok(events) if !events.is_empty() => (events, 0),
                    _ => return,
                }
            }
        };
        let body = alerts.payload(&events, now_ms);
        let dispatched = alerts
            .call(gateway::kind(), body)
            .map_err(|e| e.to_string())
            .and_then(|call| fetch::dispatch(&call).map_err(|e| e.to_string()));
        match dispatched {
            Ok(token) => self.inflight = Some((token, events, attempt)),
            Err(e) => self.failed(alerts, meter, now_ms, events, attempt, &e),
        }
    }

    /// Whether `token` is this sender's call.
    pub fn owns(&self, token: u32) -> bool {
        self.inflight.as_ref().is_some_and(|(t, _, _)| *t == token)
    }

    /// The answer to this sender's call: a 2xx delivers the batch; anything else schedules a retry
    /// (on a later tick) or drops it. Dispatches nothing.
    pub fn on_response(&mut self, engine: &Engine, meter: &Meter, now_ms: u64) {
        let (Some(alerts), Some((_, events, attempt))) = (engine.alerts(), self.inflight.take())
        else {
            return;
        };
        match gateway::call_outcome() {
            Ok(status) if (200..300).contains(&status) => {
                let n = i64::try_from(events.len()).unwrap_or(i64::MAX);
                meter.count(metrics::ALERTS_SENT.to_owned(), n);
            }
            Ok(status) => self.failed(
                alerts,
                meter,
                now_ms,
                events,
                attempt,
                &format!("status {status}"),
            ),
            Err(e) => self.failed(alerts, meter, now_ms, events, attempt, &e.to_string()),
        }
    }

    fn failed(
        &mut self,
        alerts: &Alerts,
        meter: &Meter,
        now_ms: u64,
        events: Vec<String>,
        attempt: u32,
        why: &str,
    ) {
        if attempt < alerts.retries() {
            let next = attempt + 1;
            super::log(
                LogLevel::Warn,
                &format!(
                    "warden: alerts: delivery failed ({why}); retry {next} in {} ms",
                    backoff_ms(next)
                ),
            );
            self.retry = Some((now_ms.saturating_add(backoff_ms(next)), events, next));
        } else {
            dropped(meter, "send_failed", events.len() as u64);
        }
    }
}
