//! Host glue of the decision record: written once per request when the stream ends (`on_log`), to
//! the sink the engine chose for this gateway (`Engine::audit_sink`).

use super::fetch;
use super::gateway;
use super::metrics::Meter;
use crate::audit::shipping::{Batch, Failed, Outbox};
use crate::audit::{AuditRecord, FILTER_STATE_PROPERTY};
use crate::config::AuditSink;
use crate::decision::Engine;
use crate::metrics;
use proxy_wasm::types::LogLevel;
use std::cell::RefCell;
use std::rc::Rc;

/// A line buffer kept above this many bytes (an unusually large record) is given back afterwards.
const KEEP_BYTES: usize = 16 * 1024;

thread_local! {
    /// This worker's line buffer: every record is serialized into it, so that a request allocates
    /// nothing for its line once the buffer has grown to a record's size.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Serializes `record` into the worker's line buffer and passes the line to `f` (a fresh line if
/// the buffer is in use).
pub fn with_line(record: &AuditRecord<'_>, f: impl FnOnce(&str)) {
    LINE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut line) => {
            record.write_json(&mut line);
            f(std::str::from_utf8(&line).unwrap_or_default());
            if line.capacity() > KEEP_BYTES {
                *line = Vec::new();
            }
        }
        Err(_) => f(&record.to_json()),
    });
}

/// Writes one record line (the `http` sink's lines go to the worker's [`Outbox`] instead, see
/// [`Shipper::take`]). `FilterState` is only ever chosen on Envoy, which answers Ok: the SDK's
/// `set_property` panics on any other status (ngx_wasm_module answers NotFound, see
/// `gateway::HostRules::filter_state`).
pub fn write(sink: AuditSink, line: &str) {
    match sink {
        AuditSink::Log | AuditSink::Http => super::log(LogLevel::Info, line),
        AuditSink::FilterState => {
            let _ = proxy_wasm::hostcalls::set_property(
                vec![FILTER_STATE_PROPERTY],
                Some(line.as_bytes()),
            );
        }
    }
}

/// This worker's `http` sink: the outbox its requests append to, and its calls in flight. Calls
/// leave only from the root context's tick ([`Shipper::tick`]); an answer ([`Shipper::on_response`])
/// records the outcome and dispatches nothing (ngx_wasm_module's workers crash on a call
/// dispatched from a root context's answer).
#[derive(Default, Clone)]
pub struct Shipper {
    outbox: Rc<RefCell<Outbox>>,
    inflight: Rc<RefCell<Vec<(u32, Batch)>>>,
}

impl Shipper {
    /// Takes one request's record into the outbox (no host call); a full outbox drops it, counted.
    pub fn take(&self, engine: &Engine, meter: &Meter, line: &str, ts_ms: u64) {
        let (Some(s), Ok(mut outbox)) = (engine.shipping(), self.outbox.try_borrow_mut()) else {
            return;
        };
        if !outbox.push(s, line, ts_ms) {
            dropped(meter, "buffer_full", 1);
        }
    }

    /// One tick: dispatches the batches that are ready.
    pub fn tick(&self, engine: &Engine, meter: &Meter, now_ms: u64) {
        let (Some(s), Ok(mut outbox), Ok(mut inflight)) = (
            engine.shipping(),
            self.outbox.try_borrow_mut(),
            self.inflight.try_borrow_mut(),
        ) else {
            return;
        };
        for mut batch in outbox.ready(s, now_ms) {
            // The body moves into the call and back: a batch is never copied.
            let dispatched = match s.call(gateway::kind(), Vec::new()) {
                Ok(mut call) => {
                    call.body = Some(std::mem::take(&mut batch.body));
                    let sent = fetch::dispatch(&call).map_err(|e| e.to_string());
                    batch.body = call.body.take().unwrap_or_default();
                    sent
                }
                Err(e) => Err(e.to_string()),
            };
            match dispatched {
                Ok(token) => inflight.push((token, batch)),
                Err(why) => failed(&mut outbox, engine, meter, batch, now_ms, &why),
            }
        }
    }

    /// The records not yet sent will never be (`why`): the root context is going away (`shutdown`:
    /// the worker stops, or a new config replaces this one), or its new config has no `http` sink
    /// (`sink_removed`: no tick looks at the outbox again). They are counted and logged as lost;
    /// calls in flight are the host's to finish or cancel.
    pub fn close(&self, meter: &Meter, why: &'static str) {
        if let Ok(mut outbox) = self.outbox.try_borrow_mut() {
            let n = outbox.clear();
            if n > 0 {
                dropped(meter, why, n);
            }
        }
    }

    /// Whether `token` is one of this worker's calls.
    pub fn owns(&self, token: u32) -> bool {
        self.inflight
            .try_borrow()
            .is_ok_and(|calls| calls.iter().any(|(t, _)| *t == token))
    }

    /// The answer to call `token`: a 2xx delivers its batch; anything else schedules a retry (on
    /// a later tick) or drops it.
    pub fn on_response(&self, engine: &Engine, meter: &Meter, token: u32, now_ms: u64) {
        let (Ok(mut outbox), Ok(mut inflight)) =
            (self.outbox.try_borrow_mut(), self.inflight.try_borrow_mut())
        else {
            return;
        };
        let Some(i) = inflight.iter().position(|(t, _)| *t == token) else {
            return;
        };
        let (_, batch) = inflight.swap_remove(i);
        match gateway::call_outcome() {
            Ok(status) if (200..300).contains(&status) => {
                let n = outbox.delivered(batch);
                meter.count(
                    metrics::RECORDS_SENT.to_owned(),
                    i64::try_from(n).unwrap_or(i64::MAX),
                );
            }
            Ok(status) => failed(
                &mut outbox,
                engine,
                meter,
                batch,
                now_ms,
                &format!("status {status}"),
            ),
            Err(e) => failed(&mut outbox, engine, meter, batch, now_ms, &e.to_string()),
        }
    }
}

/// Defines the `http` sink's counters at zero, so that dashboards see them before the first record.
pub fn define_metrics(meter: &Meter) {
    meter.count(metrics::RECORDS_SENT.to_owned(), 0);
    for why in ["buffer_full", "send_failed"] {
        meter.count(metrics::named(metrics::RECORDS_DROPPED, &[("why", why)]), 0);
    }
}

fn failed(
    outbox: &mut Outbox,
    engine: &Engine,
    meter: &Meter,
    batch: Batch,
    now_ms: u64,
    why: &str,
) {
    match outbox.failed(engine.shipping(), batch, now_ms) {
        Failed::Retry { due_ms, attempt } => {
            // The first failure and every power of two after: a dead collector fails every batch.
            let failures = meter.tally((metrics::RECORDS_SENT, "failed"), 1);
            if failures.is_power_of_two() {
                super::log(
                    LogLevel::Warn,
                    &format!(
                        "warden: records: delivery failed ({why}); retry {attempt} in {} ms \
                         ({failures} failed calls by this worker)",
                        due_ms.saturating_sub(now_ms)
                    ),
                );
            }
        }
        Failed::Dropped(n) => dropped(meter, "send_failed", n),
    }
}

/// Counts and logs dropped records.
fn dropped(meter: &Meter, why: &'static str, n: u64) {
    meter.dropped(metrics::RECORDS_DROPPED, ("records", "record"), why, n);
}
