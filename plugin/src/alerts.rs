//! Alerts: the decisions a person should see (step-up, block, quarantine, revoked, rate-limited,
//! risk breaker) and the gateway's own trouble (key fetch failure, config refused), pushed to a
//! receiver in batches.
//!
//! Sans-IO, like the revocation feed: a request that ends with an alerting decision appends one
//! event line to a bounded queue in shared data ([`Alerts::enqueue`]; a full queue drops the event,
//! and the caller counts and logs it). On the root context's tick, the worker that takes the lease
//! ([`Alerts::take_lease`]) takes a ready batch ([`Alerts::take_batch`]: enough events, or the
//! oldest has waited `batch_delay_ms`) and dispatches [`Alerts::call`]; a failed call is retried on
//! later ticks after [`backoff_ms`], then dropped. A worker holds at most one batch, calls are only
//! made from `on_tick` (never from a call's answer: that crashes ngx_wasm_module's workers), and
//! nothing in the request path waits for the receiver.

use crate::audit::{AuditRecord, Factor};
use crate::config::alerts::{AlertEvent, AlertFormat, AlertsConfig};
use crate::config::ConfigError;
use crate::decision::{Decision, Verdict};
use crate::outbound::{Call, HostKind, Service};
use crate::shared::{self, SharedData, SharedError};
use serde::Serialize;
use std::net::IpAddr;

/// Shared-data key of the queue: event lines, `ts_ms \t line \n` each.
pub const QUEUE_KEY: &str = "warden:alerts:queue";
/// Shared-data key of the sender lease (when the next batch may be taken).
pub const LEASE_KEY: &str = "warden:alerts:lease";
/// Largest `queue_max`.
pub const MAX_QUEUE: u32 = 1_000;
/// Largest `batch_records`.
pub const MAX_BATCH: u32 = 500;
/// The queue's size in bytes stays under this (shared values are small).
pub const MAX_QUEUE_BYTES: usize = 60 * 1024;
/// Longest event line kept; a longer one is dropped.
pub const MAX_EVENT_BYTES: usize = 4 * 1024;
/// Longest backoff between retries.
pub const MAX_BACKOFF_MS: u64 = 30_000;

/// The compiled `alerts` section.
#[derive(Debug)]
pub struct Alerts {
    service: Service,
    header: Option<(String, String)>,
    events: Vec<AlertEvent>,
    min_score: u8,
    format: AlertFormat,
    batch_records: usize,
    batch_delay_ms: u64,
    queue_max: usize,
    retries: u32,
}

/// What became of an event handed to [`Alerts::enqueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// In the queue.
    Queued,
    /// Dropped: the queue is full.
    QueueFull,
    /// Dropped: the event is larger than [`MAX_EVENT_BYTES`].
    TooLarge,
}

/// Milliseconds to wait before retry `attempt` (1-based): 1 s, 2 s, 4 s ... up to [`MAX_BACKOFF_MS`].
pub fn backoff_ms(attempt: u32) -> u64 {
    let exp = attempt.saturating_sub(1).min(15);
    (1_000u64 << exp).min(MAX_BACKOFF_MS)
}

impl Alerts {
    /// Compiles the section; the error names the field.
    pub fn compile(c: &AlertsConfig) -> Result<Alerts, ConfigError> {
        let service = Service::compile(&c.service, "alerts.service")?;
        let header = c
            .header
            .as_ref()
            .map(|h| crate::outbound::header(h, "alerts.header"))
            .transpose()?;
        if c.events.is_empty() {
            return Err(ConfigError::new(
                "alerts.events",
                "name at least one event (or leave `alerts` out)",
            ));
        }
        if c.batch_records == 0 || c.batch_records > MAX_BATCH {
            return Err(ConfigError::new(
                "alerts.batch_records",
                format!("must be between 1 and {MAX_BATCH}"),
            ));
        }
        if c.queue_max < c.batch_records || c.queue_max > MAX_QUEUE {
            return Err(ConfigError::new(
                "alerts.queue_max",
                format!("must be between batch_records and {MAX_QUEUE}"),
            ));
        }
        if c.min_score > 100 {
            return Err(ConfigError::new("alerts.min_score", "must be 0 to 100"));
        }
        Ok(Alerts {
            service,
            header,
            events: c.events.clone(),
            min_score: c.min_score,
            format: c.format,
            batch_records: c.batch_records as usize,
            batch_delay_ms: c.batch_delay_ms,
            queue_max: c.queue_max as usize,
            retries: c.retries,
        })
    }

    /// The receiver's address on `host` is configured (Envoy needs a cluster).
    pub fn check_host(&self, host: HostKind) -> Result<(), ConfigError> {
        self.service.upstream(host, "alerts.service").map(|_| ())
    }

    /// Retries of a failed call before its events are dropped.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Whether `event` is wanted.
    pub fn wants(&self, event: AlertEvent) -> bool {
        self.events.contains(&event)
    }

    /// The event a decision raises, if any (and wanted, and at or above `min_score` when scored).
    /// Cheap: a request that raises none costs a few comparisons.
    pub fn event_of(&self, d: &Decision) -> Option<AlertEvent> {
        let risk = d.risk.as_ref();
        let event = match (d.verdict, d.reason) {
            _ if d.quarantined => AlertEvent::Quarantine,
            (Verdict::StepUp, _) => AlertEvent::StepUp,
            (Verdict::Block, _) => AlertEvent::Block,
            (_, "quarantined") => AlertEvent::Quarantine,
            (_, "revoked") => AlertEvent::Revoked,
            (_, "rate_limited") => AlertEvent::RateLimited,
            _ if risk.is_some_and(|a| a.breaker.is_some()) => AlertEvent::RiskBreaker,
            _ => return None,
        };
        let score = risk.and_then(|a| a.score);
        let low = score.is_some_and(|s| s < self.min_score);
        (self.wants(event) && !low).then_some(event)
    }

    /// Appends an event line to the shared queue, unless it is full.
    pub fn enqueue(
        &self,
        store: &dyn SharedData,
        ts_ms: u64,
        line: &str,
    ) -> Result<Enqueued, SharedError> {
        if line.len() > MAX_EVENT_BYTES || line.contains('\n') {
            return Ok(Enqueued::TooLarge);
        }
        let entry = format!("{ts_ms}\t{line}\n");
        shared::update(store, QUEUE_KEY, 8, |cur| {
            let cur = cur.unwrap_or_default();
            let queued = cur.iter().filter(|b| **b == b'\n').count();
            if queued >= self.queue_max || cur.len() + entry.len() > MAX_QUEUE_BYTES {
                return (None, Enqueued::QueueFull);
            }
            let mut next = cur.to_vec();
            next.extend_from_slice(entry.as_bytes());
            (Some(next), Enqueued::Queued)
        })
    }

    /// Events waiting in the queue.
    pub fn queued(&self, store: &dyn SharedData) -> usize {
        store
            .get(QUEUE_KEY)
            .ok()
            .and_then(|(v, _)| v)
            .map_or(0, |v| v.iter().filter(|b| **b == b'\n').count())
    }

    /// Takes the sender lease for one tick (`hold_ms`): true for one worker per interval.
    pub fn take_lease(&self, store: &dyn SharedData, now_ms: u64, hold_ms: u64) -> bool {
        shared::update(store, LEASE_KEY, 2, |cur| {
            let due = cur
                .and_then(|b| b.get(..8))
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_le_bytes);
            if now_ms < due {
                return (None, false);
            }
            let next = now_ms.saturating_add(hold_ms);
            (Some(next.to_le_bytes().to_vec()), true)
        })
        .unwrap_or(false)
    }

    /// Takes the next batch off the queue when one is ready: `batch_records` events, or fewer once
    /// the oldest has waited `batch_delay_ms`. Empty: nothing to send yet.
    pub fn take_batch(
        &self,
        store: &dyn SharedData,
        now_ms: u64,
    ) -> Result<Vec<String>, SharedError> {
        shared::update(store, QUEUE_KEY, 4, |cur| {
            let text = cur.map(String::from_utf8_lossy).unwrap_or_default();
            let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
            let oldest = lines
                .first()
                .and_then(|l| l.split_once('\t'))
                .and_then(|(ts, _)| ts.parse::<u64>().ok());
            let Some(oldest) = oldest else {
                return (None, Vec::new());
            };
            let full = lines.len() >= self.batch_records;
            if !full && now_ms < oldest.saturating_add(self.batch_delay_ms) {
                return (None, Vec::new());
            }
            let n = lines.len().min(self.batch_records);
            let batch = lines
                .iter()
                .take(n)
                .filter_map(|l| l.split_once('\t').map(|(_, e)| e.to_owned()))
                .collect();
            let rest: String = lines.iter().skip(n).map(|l| format!("{l}\n")).collect();
            (Some(rest.into_bytes()), batch)
        })
    }

    /// The body of a call carrying `events` (event lines), in the configured format.
    pub fn payload(&self, events: &[String], now_ms: u64) -> Vec<u8> {
        match self.format {
            AlertFormat::Json => {
                let mut out = b"{\"source\":\"warden\",\"events\":[".to_vec();
                for (i, e) in events.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(e.as_bytes());
                }
                out.extend_from_slice(b"]}");
                out
            }
            AlertFormat::SplunkHec => {
                let mut out = Vec::new();
                for e in events {
                    let time = format!("{}.{:03}", now_ms / 1000, now_ms % 1000);
                    out.extend_from_slice(
                        format!(
                            "{{\"time\":{time},\"source\":\"warden\",\"sourcetype\":\"warden:alert\",\"event\":{e}}}"
                        )
                        .as_bytes(),
                    );
                }
                out
            }
        }
    }

    /// The call that delivers `body` on `host`.
    pub fn call(&self, host: HostKind, body: Vec<u8>) -> Result<Call, ConfigError> {
        let mut headers = vec![("content-type", "application/json")];
        if let Some((n, v)) = &self.header {
            headers.push((n.as_str(), v.as_str()));
        }
        self.service.call(host, "POST", &headers, Some(body))
    }
}

/// One alert event: what happened and the record's facts a person needs first.
#[derive(Debug, Default, Serialize)]
pub struct AlertLine<'a> {
    /// The event (`step_up`, `block`, ...).
    pub event: &'static str,
    /// Milliseconds since the epoch.
    pub ts_ms: u64,
    /// The request id (find the full decision record by it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
    /// Method and path (no query).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'a str>,
    /// Path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<&'a str>,
    /// Route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<&'a str>,
    /// Source address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
    /// Subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<&'a str>,
    /// Client id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
    /// Tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<&'a str>,
    /// Token id (what a revocation feed lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<&'a str>,
    /// Kind of caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'a str>,
    /// Actor chain.
    #[serde(skip_serializing_if = "<[&str]>::is_empty")]
    pub actors: &'a [&'a str],
    /// The verdict, status and reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<&'a str>,
    /// Status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Reason (for gateway events: what failed).
    pub reason: &'a str,
    /// Enforce or shadow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'a str>,
    /// Risk score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_score: Option<u8>,
    /// Top factors.
    #[serde(skip_serializing_if = "<[Factor]>::is_empty")]
    pub factors: &'a [Factor],
}

impl<'a> AlertLine<'a> {
    /// The event of a decision, from its record.
    pub fn of_record(event: AlertEvent, r: &'a AuditRecord<'a>) -> AlertLine<'a> {
        AlertLine {
            event: event.as_str(),
            ts_ms: r.ts_ms,
            request_id: Some(r.request_id),
            method: Some(r.method),
            path: Some(r.path),
            route: r.route,
            source_ip: r.source_ip,
            subject: r.subject,
            client_id: r.client_id,
            tenant: r.tenant,
            jti: r.jti,
            kind: r.kind,
            actors: &r.actors,
            decision: Some(r.decision),
            status: Some(r.status),
            reason: r.reason,
            mode: Some(r.mode),
            risk_score: r.risk_score,
            factors: &r.factors,
        }
    }

    /// A gateway event (key fetch failure, config refused): `reason` says what failed.
    pub fn of_gateway(event: AlertEvent, ts_ms: u64, reason: &'a str) -> AlertLine<'a> {
        AlertLine {
            event: event.as_str(),
            ts_ms,
            reason,
            ..AlertLine::default()
        }
    }

    /// The event as one JSON line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::shared::{CasRule, MemoryStore};

    fn alerts(extra: &str) -> Alerts {
        let json = format!(
            r#"{{"service": {{"url": "http://siem:8088/services/collector/event", "envoy_cluster": "siem"}},
                 "header": {{"name": "authorization", "value": "Splunk t0k"}},
                 "batch_records": 3, "batch_delay_ms": 500, "queue_max": 5 {extra}}}"#
        );
        Alerts::compile(&serde_json::from_str(&json).unwrap()).unwrap()
    }

    #[test]
    fn the_queue_is_bounded_and_batches_by_count_or_delay_on_both_hosts() {
        for rule in [CasRule::Envoy, CasRule::Kong] {
            let store = MemoryStore::new(rule);
            let a = alerts("");
            for i in 0..7u64 {
                let got = a
                    .enqueue(&store, 1_000 + i, &format!("{{\"n\":{i}}}"))
                    .unwrap();
                let want = if i < 5 {
                    Enqueued::Queued
                } else {
                    Enqueued::QueueFull
                };
                assert_eq!(got, want, "{rule:?} event {i}");
            }
            assert_eq!(a.queued(&store), 5);
            // Full batches first, oldest first.
            let b = a.take_batch(&store, 1_001).unwrap();
            assert_eq!(b, vec!["{\"n\":0}", "{\"n\":1}", "{\"n\":2}"]);
            // Two left: not a full batch, and the oldest has not waited long enough.
            assert!(a.take_batch(&store, 1_100).unwrap().is_empty());
            let b = a.take_batch(&store, 1_003 + 500).unwrap();
            assert_eq!(b, vec!["{\"n\":3}", "{\"n\":4}"]);
            assert_eq!(a.queued(&store), 0);
            assert!(a.take_batch(&store, 99_999).unwrap().is_empty());
            let big = "x".repeat(MAX_EVENT_BYTES + 1);
            assert_eq!(a.enqueue(&store, 1, &big).unwrap(), Enqueued::TooLarge);
        }
    }

    #[test]
    fn one_worker_per_interval_takes_the_lease() {
        let store = MemoryStore::new(CasRule::Kong);
        let a = alerts("");
        assert!(a.take_lease(&store, 1_000, 250));
        assert!(!a.take_lease(&store, 1_100, 250));
        assert!(a.take_lease(&store, 1_250, 250));
    }

    #[test]
    fn payloads_plain_json_and_splunk_hec() {
        let events = vec![
            "{\"event\":\"block\"}".to_owned(),
            "{\"event\":\"revoked\"}".to_owned(),
        ];
        let json: serde_json::Value =
            serde_json::from_slice(&alerts("").payload(&events, 1_500)).unwrap();
        assert_eq!(json["source"], "warden");
        assert_eq!(json["events"][1]["event"], "revoked");
        let hec = alerts(r#", "format": "splunk_hec""#).payload(&events, 1_767_225_600_123);
        let parsed: Vec<serde_json::Value> = serde_json::Deserializer::from_slice(&hec)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0]["time"].as_f64(), Some(1_767_225_600.123));
        assert_eq!(parsed[0]["sourcetype"], "warden:alert");
        assert_eq!(parsed[1]["event"]["event"], "revoked");
        let call = alerts("").call(HostKind::Envoy, b"{}".to_vec()).unwrap();
        assert_eq!(call.upstream, "siem");
        assert!(call.headers.contains(&(":method".into(), "POST".into())));
        assert!(call
            .headers
            .contains(&("authorization".into(), "Splunk t0k".into())));
    }

    #[test]
    fn backoff_doubles_to_a_ceiling() {
        assert_eq!(
            (1..=6).map(backoff_ms).collect::<Vec<_>>(),
            vec![1_000, 2_000, 4_000, 8_000, 16_000, 30_000]
        );
    }

    #[test]
    fn bad_sections_are_refused_naming_the_field() {
        let bad = |extra: &str, field: &str| {
            let json = format!(
                r#"{{"service": {{"url": "http://siem/x", "envoy_cluster": "siem"}} {extra}}}"#
            );
            let err = Alerts::compile(&serde_json::from_str(&json).unwrap()).unwrap_err();
            assert_eq!(err.field, field, "{extra}");
        };
        bad(r#", "events": []"#, "alerts.events");
        bad(r#", "batch_records": 0"#, "alerts.batch_records");
        bad(
            r#", "batch_records": 10, "queue_max": 5"#,
            "alerts.queue_max",
        );
        bad(r#", "queue_max": 100000"#, "alerts.queue_max");
        bad(
            r#", "header": {"name": "Bad Name", "value": "x"}"#,
            "alerts.header.name",
        );
        bad(r#", "min_score": 101"#, "alerts.min_score");
    }
}
