//! The `http` sink: decision records shipped to a collector in batches (`audit.http`).
//!
//! Sans-IO. Each worker keeps an [`Outbox`]: a request appends its record to it (no host call, no
//! shared data), and the root context's tick takes the batches that are ready ([`Outbox::ready`]:
//! `batch_bytes` of records, or the oldest has waited `batch_delay_ms`, or a failed batch's retry is
//! due), at most [`MAX_IN_FLIGHT`] calls at once. The adapter dispatches [`Shipping::call`] for each
//! and hands the answer back: [`Outbox::delivered`] or [`Outbox::failed`] (a retry after
//! [`backoff_ms`], then dropped). Everything a worker holds (waiting, in flight, waiting for a
//! retry) stays under `buffer_bytes`; a record beyond it is dropped and counted, never waited for.

use crate::alerts::backoff_ms;
use crate::config::audit::{HttpSinkConfig, RecordFormat};
use crate::config::ConfigError;
use crate::outbound::{header, Call, HostKind, Service};
use std::collections::VecDeque;

/// Calls in flight from one worker.
pub const MAX_IN_FLIGHT: usize = 8;
/// Smallest `batch_bytes`.
pub const MIN_BATCH_BYTES: u32 = 1024;
/// Largest `batch_bytes`.
pub const MAX_BATCH_BYTES: u32 = 4 * 1024 * 1024;
/// Largest `buffer_bytes`.
pub const MAX_BUFFER_BYTES: u32 = 64 * 1024 * 1024;
/// Longest `batch_delay_ms`.
pub const MAX_BATCH_DELAY_MS: u64 = 60_000;

/// The compiled `audit.http` section.
#[derive(Debug)]
pub struct Shipping {
    service: Service,
    header: Option<(String, String)>,
    format: RecordFormat,
    batch_bytes: usize,
    batch_delay_ms: u64,
    buffer_bytes: usize,
    retries: u32,
}

impl Shipping {
    /// Compiles the section; the error names the field.
    pub fn compile(c: &HttpSinkConfig) -> Result<Shipping, ConfigError> {
        let service = Service::compile(&c.service, "audit.http.service")?;
        let header = c
            .header
            .as_ref()
            .map(|h| header(h, "audit.http.header"))
            .transpose()?;
        if !(MIN_BATCH_BYTES..=MAX_BATCH_BYTES).contains(&c.batch_bytes) {
            return Err(ConfigError::new(
                "audit.http.batch_bytes",
                format!("must be between {MIN_BATCH_BYTES} and {MAX_BATCH_BYTES}"),
            ));
        }
        if c.buffer_bytes < c.batch_bytes || c.buffer_bytes > MAX_BUFFER_BYTES {
            return Err(ConfigError::new(
                "audit.http.buffer_bytes",
                format!("must be between batch_bytes and {MAX_BUFFER_BYTES}"),
            ));
        }
        if c.batch_delay_ms > MAX_BATCH_DELAY_MS {
            return Err(ConfigError::new(
                "audit.http.batch_delay_ms",
                format!("must be at most {MAX_BATCH_DELAY_MS}"),
            ));
        }
        Ok(Shipping {
            service,
            header,
            format: c.format,
            batch_bytes: c.batch_bytes as usize,
            batch_delay_ms: c.batch_delay_ms,
            buffer_bytes: c.buffer_bytes as usize,
            retries: c.retries,
        })
    }

    /// The collector's address on `host` is configured (Envoy needs a cluster).
    pub fn check_host(&self, host: HostKind) -> Result<(), ConfigError> {
        self.service
            .upstream(host, "audit.http.service")
            .map(|_| ())
    }

    /// The call that delivers `body` (a batch's) on `host`.
    pub fn call(&self, host: HostKind, body: Vec<u8>) -> Result<Call, ConfigError> {
        let content_type = match self.format {
            RecordFormat::Ndjson => "application/x-ndjson",
            RecordFormat::SplunkHec => "application/json",
        };
        let mut headers = vec![("content-type", content_type)];
        if let Some((n, v)) = &self.header {
            headers.push((n.as_str(), v.as_str()));
        }
        self.service
            .call(host, "POST", &headers, Some(body))
            .map_err(|e| ConfigError::new(format!("audit.http.{}", e.field), e.message))
    }

    /// Appends `line` (one record's JSON, taken at `ts_ms`) to `out` in the configured format,
    /// ending in a newline.
    fn frame(&self, line: &str, ts_ms: u64, out: &mut Vec<u8>) {
        match self.format {
            RecordFormat::Ndjson => out.extend_from_slice(line.as_bytes()),
            RecordFormat::SplunkHec => {
                let head = format!(
                    "{{\"time\":{}.{:03},\"source\":\"warden\",\"sourcetype\":\"warden:decision\",\"event\":",
                    ts_ms / 1000,
                    ts_ms % 1000
                );
                out.extend_from_slice(head.as_bytes());
                out.extend_from_slice(line.as_bytes());
                out.push(b'}');
            }
        }
        out.push(b'\n');
    }
}

/// Records on their way in one call.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// The call's body: records, one per line.
    pub body: Vec<u8>,
    /// How many records.
    pub records: u64,
    /// Retries made before this call (0: the first).
    pub attempt: u32,
}

/// What became of a failed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// Sent again once `due_ms` has passed; this is retry `attempt`.
    Retry {
        /// When, milliseconds since the epoch.
        due_ms: u64,
        /// Which retry (1-based).
        attempt: u32,
    },
    /// Dropped: its retries are spent. How many records.
    Dropped(u64),
}

/// One worker's records for the collector: waiting, in flight, waiting for a retry.
///
/// Waiting records are kept in batches from the start: a record that does not fit the last one
/// begins the next, so a tick hands whole batches out without copying a byte.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Batches of waiting records (each line ending in `\n`), oldest first, at most `batch_bytes`
    /// each (a larger record alone).
    waiting: VecDeque<Batch>,
    /// Bytes of the waiting records.
    waiting_bytes: usize,
    /// When the oldest waiting record was taken.
    oldest_ms: Option<u64>,
    /// Failed batches and when each may go again.
    retries: Vec<(u64, Batch)>,
    /// Bytes of the batches out (in flight or waiting for a retry).
    out_bytes: usize,
    /// Calls in flight.
    in_flight: usize,
}

impl Outbox {
    /// Takes one record (`line`, its JSON, decided at `ts_ms`); `false` when the worker already
    /// holds `buffer_bytes` and the record is dropped.
    pub fn push(&mut self, s: &Shipping, line: &str, ts_ms: u64) -> bool {
        if self.waiting.is_empty() {
            self.waiting.push_back(Batch::default());
        }
        let held = self.held();
        let Some(last) = self.waiting.back_mut() else {
            return false;
        };
        let before = last.body.len();
        s.frame(line, ts_ms, &mut last.body);
        let added = last.body.len().saturating_sub(before);
        if held.saturating_add(added) > s.buffer_bytes {
            last.body.truncate(before);
            return false;
        }
        if before > 0 && last.body.len() > s.batch_bytes {
            // The record begins the next batch.
            let body = last.body.split_off(before);
            self.waiting.push_back(Batch {
                body,
                records: 1,
                attempt: 0,
            });
        } else {
            last.records += 1;
        }
        self.waiting_bytes = self.waiting_bytes.saturating_add(added);
        self.oldest_ms.get_or_insert(ts_ms);
        true
    }

    /// Bytes this worker holds.
    pub fn held(&self) -> usize {
        self.waiting_bytes.saturating_add(self.out_bytes)
    }

    /// Records waiting for a batch (not yet out).
    pub fn waiting_records(&self) -> u64 {
        self.waiting.iter().map(|b| b.records).sum()
    }

    /// The batches to send now: retries that are due first, then full batches of waiting records,
    /// then the last one once the oldest record has waited `batch_delay_ms`; never more calls in
    /// flight than [`MAX_IN_FLIGHT`]. Each is in flight until [`Outbox::delivered`] or
    /// [`Outbox::failed`] is told of it.
    pub fn ready(&mut self, s: &Shipping, now_ms: u64) -> Vec<Batch> {
        let mut out = Vec::new();
        while self.in_flight + out.len() < MAX_IN_FLIGHT {
            match self.retries.iter().position(|(due, _)| *due <= now_ms) {
                Some(i) => out.push(self.retries.remove(i).1),
                None => break,
            }
        }
        let old = self
            .oldest_ms
            .is_some_and(|t| now_ms.saturating_sub(t) >= s.batch_delay_ms);
        while self.in_flight + out.len() < MAX_IN_FLIGHT {
            let full = self.waiting.len() > 1
                || self
                    .waiting
                    .front()
                    .is_some_and(|b| b.body.len() >= s.batch_bytes);
            if !(full || old) {
                break;
            }
            match self.waiting.pop_front() {
                Some(batch) if !batch.body.is_empty() => {
                    self.waiting_bytes = self.waiting_bytes.saturating_sub(batch.body.len());
                    self.out_bytes = self.out_bytes.saturating_add(batch.body.len());
                    out.push(batch);
                }
                _ => break,
            }
        }
        if self.waiting.is_empty() {
            self.oldest_ms = None;
        }
        self.in_flight += out.len();
        out
    }

    /// A 2xx answered `batch`: its bytes are freed; how many records it delivered.
    pub fn delivered(&mut self, batch: Batch) -> u64 {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.out_bytes = self.out_bytes.saturating_sub(batch.body.len());
        batch.records
    }

    /// `batch` failed (a status other than 2xx, no answer, or not dispatched): it waits for a
    /// retry, or is dropped once `retries` are spent, or at once when its sink is gone (`s` is
    /// `None`: a new config without it). Either way its call no longer counts as in flight.
    pub fn failed(&mut self, s: Option<&Shipping>, mut batch: Batch, now_ms: u64) -> Failed {
        self.in_flight = self.in_flight.saturating_sub(1);
        if batch.attempt < s.map_or(0, |s| s.retries) {
            batch.attempt += 1;
            let attempt = batch.attempt;
            let due_ms = now_ms.saturating_add(backoff_ms(attempt));
            self.retries.push((due_ms, batch));
            Failed::Retry { due_ms, attempt }
        } else {
            self.out_bytes = self.out_bytes.saturating_sub(batch.body.len());
            Failed::Dropped(batch.records)
        }
    }

    /// The batches not in flight (failed batches whatever their retry is due, then the waiting
    /// records, oldest first), at most `max_calls` of them, for one last call each, [`MAX_IN_FLIGHT`]
    /// aside: the root context is going away and no tick will come. Each is in flight until
    /// [`Outbox::delivered`] or [`Outbox::failed`] is told of it. The rest is dropped: how many
    /// records.
    pub fn flush(&mut self, max_calls: usize) -> (Vec<Batch>, u64) {
        let mut out: Vec<Batch> = Vec::new();
        let mut dropped = 0;
        for (_, batch) in self.retries.drain(..) {
            if out.len() < max_calls {
                out.push(batch);
            } else {
                self.out_bytes = self.out_bytes.saturating_sub(batch.body.len());
                dropped += batch.records;
            }
        }
        for batch in self.waiting.drain(..) {
            if batch.body.is_empty() {
                continue;
            }
            if out.len() < max_calls {
                self.out_bytes = self.out_bytes.saturating_add(batch.body.len());
                out.push(batch);
            } else {
                dropped += batch.records;
            }
        }
        self.waiting_bytes = 0;
        self.oldest_ms = None;
        self.in_flight += out.len();
        (out, dropped)
    }

    /// Drops every record not in flight (the sink was configured away, or the worker stops); how
    /// many.
    pub fn clear(&mut self) -> u64 {
        self.flush(0).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipping(extra: &str) -> Result<Shipping, ConfigError> {
        let json = format!(
            r#"{{"service": {{"url": "http://collector:8088/records", "envoy_cluster": "records"}}{extra}}}"#
        );
        Shipping::compile(&serde_json::from_str(&json).unwrap())
    }

    fn small() -> Shipping {
        shipping(
            r#", "batch_bytes": 1024, "buffer_bytes": 4096, "batch_delay_ms": 500, "retries": 1"#,
        )
        .unwrap()
    }

    fn record(i: usize, len: usize) -> String {
        let pad = "x".repeat(len.saturating_sub(17));
        format!(r#"{{"i":{i:>4},"p":"{pad}"}}"#)
    }

    #[test]
    fn limits_are_refused_with_their_field() {
        for (extra, field) in [
            (r#", "batch_bytes": 10"#, "audit.http.batch_bytes"),
            (r#", "batch_bytes": 8000000"#, "audit.http.batch_bytes"),
            (
                r#", "batch_bytes": 4096, "buffer_bytes": 2048"#,
                "audit.http.buffer_bytes",
            ),
            (r#", "buffer_bytes": 100000000"#, "audit.http.buffer_bytes"),
            (r#", "batch_delay_ms": 60001"#, "audit.http.batch_delay_ms"),
            (
                r#", "header": {"name": "Authorization", "value": "x"}"#,
                "audit.http.header.name",
            ),
            (
                r#", "header": {"name": "authorization", "value": "a\nb"}"#,
                "audit.http.header.value",
            ),
        ] {
            assert_eq!(shipping(extra).unwrap_err().field, field, "{extra}");
        }
        let no_cluster = Shipping::compile(
            &serde_json::from_str(r#"{"service": {"url": "http://collector:8088/records"}}"#)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            no_cluster.check_host(HostKind::Envoy).unwrap_err().field,
            "audit.http.service.envoy_cluster"
        );
        assert!(no_cluster.check_host(HostKind::Kong).is_ok());
    }

    #[test]
    fn a_batch_goes_when_full_or_when_its_oldest_record_has_waited() {
        let s = small();
        let mut o = Outbox::default();
        assert!(o.push(&s, &record(0, 100), 1_000));
        assert!(o.push(&s, &record(1, 100), 1_200));
        assert!(o.ready(&s, 1_400).is_empty(), "neither full nor old");
        let b = o.ready(&s, 1_500);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].records, 2);
        let lines: Vec<&str> = std::str::from_utf8(&b[0].body).unwrap().lines().collect();
        assert_eq!(lines, [record(0, 100), record(1, 100)]);
        // A full batch goes at once, cut at a record's end, at most batch_bytes.
        let mut o = Outbox::default();
        for i in 0..25 {
            assert!(o.push(&s, &record(i, 100), 2_000));
        }
        let b = o.ready(&s, 2_000);
        assert_eq!(b.len(), 2, "two full batches; the rest waits");
        for batch in &b {
            assert!(batch.body.len() <= 1024);
            assert!(batch.body.ends_with(b"\n"));
            assert_eq!(batch.records, 10);
        }
        assert_eq!(o.waiting_records(), 5);
        assert_eq!(o.ready(&s, 2_499).len(), 0);
        assert_eq!(o.ready(&s, 2_500)[0].records, 5);
    }

    #[test]
    fn a_record_larger_than_a_batch_goes_alone() {
        let s = small();
        let mut o = Outbox::default();
        assert!(o.push(&s, &record(0, 2_000), 0));
        assert!(o.push(&s, &record(1, 100), 0));
        let b = o.ready(&s, 0);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].records, 1);
        assert_eq!(b[0].body.len(), 2_001);
        assert_eq!(o.waiting_records(), 1);
    }

    #[test]
    fn the_worker_holds_at_most_buffer_bytes_and_drops_beyond() {
        let s = small();
        let mut o = Outbox::default();
        let accepted = (0..100).filter(|i| o.push(&s, &record(*i, 100), 0)).count();
        assert_eq!(accepted, 40, "4096 bytes hold 40 records of 101");
        assert!(o.held() <= 4096);
        // Batches out still count: nothing more fits until one is delivered.
        let out = o.ready(&s, 500);
        assert_eq!(out.len(), 4);
        assert!(!o.push(&s, &record(100, 100), 0));
        let mut out = out.into_iter();
        assert_eq!(o.delivered(out.next().unwrap()), 10);
        assert!(o.push(&s, &record(101, 100), 0));
    }

    #[test]
    fn a_failed_batch_is_retried_after_its_backoff_then_dropped() {
        let s = small();
        let mut o = Outbox::default();
        assert!(o.push(&s, &record(0, 100), 0));
        let b = o.ready(&s, 500).pop().unwrap();
        let body = b.body.clone();
        assert_eq!(
            o.failed(Some(&s), b, 600),
            Failed::Retry {
                due_ms: 1_600,
                attempt: 1
            }
        );
        assert!(o.ready(&s, 1_599).is_empty());
        let again = o.ready(&s, 1_600).pop().unwrap();
        assert_eq!((again.body.clone(), again.attempt), (body, 1));
        assert_eq!(o.failed(Some(&s), again, 1_700), Failed::Dropped(1));
        assert_eq!(o.held(), 0);
        assert!(o.ready(&s, 100_000).is_empty());
    }

    #[test]
    fn a_batch_whose_sink_is_gone_is_dropped_and_frees_its_call() {
        let s = small();
        let mut o = Outbox::default();
        for i in 0..80 {
            assert!(o.push(&s, &record(i, 100), 0) || i >= 40);
        }
        let out = o.ready(&s, 500);
        assert_eq!(out.len(), 4);
        // A new config without the sink: the answers still come, each batch is dropped at once.
        for b in out {
            assert_eq!(o.failed(None, b, 600), Failed::Dropped(10));
        }
        assert_eq!(o.held(), 0);
        // With the sink back, calls leave again: none is still counted in flight.
        for i in 0..80 {
            assert!(o.push(&s, &record(i, 100), 1_000) || i >= 40);
        }
        assert_eq!(o.ready(&s, 1_500).len(), 4);
    }

    #[test]
    fn at_most_eight_calls_are_in_flight() {
        let s = shipping(r#", "batch_bytes": 1024, "buffer_bytes": 65536"#).unwrap();
        let mut o = Outbox::default();
        for i in 0..100 {
            assert!(o.push(&s, &record(i, 100), 0));
        }
        let first = o.ready(&s, 0);
        assert_eq!(first.len(), MAX_IN_FLIGHT);
        assert!(o.ready(&s, 10_000).is_empty(), "eight in flight");
        for b in first {
            o.delivered(b);
        }
        let rest = o.ready(&s, 10_000);
        assert_eq!(rest.iter().map(|b| b.records).sum::<u64>(), 20);
    }

    #[test]
    fn splunk_hec_wraps_each_record_as_an_event() {
        let s = shipping(r#", "format": "splunk_hec""#).unwrap();
        let mut o = Outbox::default();
        assert!(o.push(&s, r#"{"v":1,"id":"a"}"#, 1_700_000_000_123));
        assert!(o.push(&s, r#"{"v":1,"id":"b"}"#, 1_700_000_000_124));
        let b = o.ready(&s, 1_700_000_009_000).pop().unwrap();
        let events: Vec<serde_json::Value> = std::str::from_utf8(&b.body)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["time"], serde_json::json!(1_700_000_000.123));
        assert_eq!(events[0]["sourcetype"], "warden:decision");
        assert_eq!(events[1]["event"]["id"], "b");
        let call = s.call(HostKind::Envoy, b.body).unwrap();
        assert!(call
            .headers
            .contains(&("content-type".to_owned(), "application/json".to_owned())));
    }

    #[test]
    fn a_flush_hands_out_everything_not_in_flight_at_once() {
        let s = shipping(r#", "batch_bytes": 1024, "buffer_bytes": 65536, "retries": 3"#).unwrap();
        let mut o = Outbox::default();
        for i in 0..100 {
            assert!(o.push(&s, &record(i, 100), 0));
        }
        // Eight calls in flight; one of them fails and waits a second for its retry.
        let mut first = o.ready(&s, 0);
        let failed = first.pop().unwrap();
        assert!(matches!(
            o.failed(Some(&s), failed, 10),
            Failed::Retry { .. }
        ));
        // The flush takes the retry before it is due, the full batch and the partial last one,
        // beyond the eight in flight.
        let (last, dropped) = o.flush(64);
        assert_eq!(dropped, 0);
        assert_eq!(last.iter().map(|b| b.records).sum::<u64>(), 100 - 70);
        assert_eq!(last.len(), 3);
        assert_eq!(
            last[0].attempt, 1,
            "the failed batch first: its records are the oldest"
        );
        assert_eq!(o.in_flight, 7 + 3);
        assert_eq!(o.waiting_records(), 0);
        assert_eq!(o.flush(64), (Vec::new(), 0));
        for b in first.into_iter().chain(last) {
            o.delivered(b);
        }
        assert_eq!((o.held(), o.in_flight), (0, 0));
    }

    #[test]
    fn a_flush_makes_at_most_max_calls_and_drops_the_newest_beyond() {
        let s = shipping(r#", "batch_bytes": 1024, "buffer_bytes": 65536"#).unwrap();
        let mut o = Outbox::default();
        for i in 0..95 {
            assert!(o.push(&s, &record(i, 100), 0));
        }
        let (last, dropped) = o.flush(4);
        assert_eq!(last.len(), 4);
        let lines: Vec<&str> = std::str::from_utf8(&last[0].body)
            .unwrap()
            .lines()
            .collect();
        assert_eq!(lines[0], record(0, 100), "the oldest records go");
        assert_eq!(dropped, 95 - 40);
        for b in last {
            o.delivered(b);
        }
        assert_eq!((o.held(), o.in_flight, o.waiting_records()), (0, 0, 0));
    }

    #[test]
    fn clearing_drops_what_is_not_in_flight() {
        let s = small();
        let mut o = Outbox::default();
        for i in 0..12 {
            assert!(o.push(&s, &record(i, 100), 0));
        }
        let b = o.ready(&s, 0).pop().unwrap();
        assert_eq!(o.clear(), 2);
        assert_eq!(o.held(), b.body.len());
        o.delivered(b);
        assert_eq!(o.held(), 0);
    }
}
