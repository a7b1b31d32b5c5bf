//! Host glue of the decision record: written once per request when the stream ends (`on_log`), to
//! the sink the engine chose for this gateway (`Engine::audit_sink`).

use super::fetch;
use super::gateway;
use super::metrics::Meter;
use crate::audit::shipping::{Batch, Failed, Outbox, Shipping};
use crate::audit::{AuditRecord, FILTER_STATE_PROPERTY};
use crate::config::AuditSink;
use crate::decision::Engine;
use crate::metrics;
use proxy_wasm::types::LogLevel;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Last calls a worker makes when its root context goes away ([`Shipper::last_calls`]): all it
/// holds at the default settings (a 4 MiB buffer of 512 KiB batches is 8), a bound for the
/// smallest batches (a 64 MiB buffer of 1 KiB ones would be 65,536 calls at once). The newest
/// records beyond are dropped as `shutdown`.
const MAX_LAST_CALLS: usize = 64;

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
    /// The root context is going away: its last calls are out ([`Shipper::last_calls`]).
    closing: Rc<Cell<bool>>,
}

impl Shipper {
    /// Takes one request's record into the outbox (no host call); a full outbox drops it, counted.
    pub fn take(&self, engine: &Engine, meter: &Meter, line: &str, ts_ms: u64) {
        let (Some(s), Ok(mut outbox)) = (engine.shipping(), self.outbox.try_borrow_mut()) else {
            return;
        };
        if self.closing.get() {
            // Its last calls are out: nothing would send it.
            dropped(meter, "shutdown", 1);
        } else if !outbox.push(s, line, ts_ms) {
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
        for batch in outbox.ready(s, now_ms) {
            if let Err((batch, why)) = send(s, batch, &mut inflight) {
                failed(&mut outbox, Some(s), meter, batch, now_ms, &why);
            }
        }
    }

    /// The root context is going away (Envoy's `on_done`: the worker stops, or a new config
    /// replaces this one) and no tick will come: every batch not in flight leaves now, whatever
    /// its delay or retry, for one last call (a failure then drops it as `send_failed`), at most
    /// [`MAX_LAST_CALLS`].
    /// Whether calls are in flight: then the root context must stay until their answers
    /// ([`Shipper::on_response`] says when the last is in).
    pub fn last_calls(&self, engine: &Engine, meter: &Meter) -> bool {
        let Some(s) = engine.shipping() else {
            self.close(meter, "shutdown");
            return false;
        };
        let (Ok(mut outbox), Ok(mut inflight)) =
            (self.outbox.try_borrow_mut(), self.inflight.try_borrow_mut())
        else {
            return false;
        };
        self.closing.set(true);
        let (last, beyond) = outbox.flush(MAX_LAST_CALLS);
        if beyond > 0 {
            dropped(meter, "shutdown", beyond);
        }
        let (mut calls, mut records) = (0, 0);
        for batch in last {
            let n = batch.records;
            match send(s, batch, &mut inflight) {
                Ok(()) => (calls, records) = (calls + 1, records + n),
                Err((batch, why)) => failed(&mut outbox, None, meter, batch, 0, &why),
            }
        }
        if calls > 0 {
            // Envoy ends a root context when a new config replaces it (after the old listener's
            // drain) and when it exits, after its workers have stopped: then these calls are never
            // sent, and this line is all that tells of them.
            super::log(
                LogLevel::Info,
                &format!(
                    "warden: records: stopping: {records} record(s) in {calls} last call(s) to the \
                     collector"
                ),
            );
        }
        !inflight.is_empty()
    }

    /// The records not yet sent will never be (`why`): the root context's new config has no
    /// `http` sink (`sink_removed`: no tick looks at the outbox again), or it goes away with no
    /// config to send them by (`shutdown`). They are counted and logged as lost; calls in flight
    /// are the host's to finish or cancel.
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
    /// a later tick) or drops it (no retry after [`Shipper::last_calls`]). Whether it was the last
    /// call the closing root context waited for.
    pub fn on_response(&self, engine: &Engine, meter: &Meter, token: u32, now_ms: u64) -> bool {
        let (Ok(mut outbox), Ok(mut inflight)) =
            (self.outbox.try_borrow_mut(), self.inflight.try_borrow_mut())
        else {
            return false;
        };
        let Some(i) = inflight.iter().position(|(t, _)| *t == token) else {
            return false;
        };
        let (_, batch) = inflight.swap_remove(i);
        let s = engine.shipping().filter(|_| !self.closing.get());
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
                s,
                meter,
                batch,
                now_ms,
                &format!("status {status}"),
            ),
            Err(e) => failed(&mut outbox, s, meter, batch, now_ms, &e.to_string()),
        }
        self.closing.get() && inflight.is_empty()
    }
}

/// Dispatches `batch` as one call (kept in `inflight` under its token); the batch back with why
/// when it could not be. The body moves into the call and back: a batch is never copied.
fn send(
    s: &Shipping,
    mut batch: Batch,
    inflight: &mut Vec<(u32, Batch)>,
) -> Result<(), (Batch, String)> {
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
        Ok(token) => {
            inflight.push((token, batch));
            Ok(())
        }
        Err(why) => Err((batch, why)),
    }
}

/// Defines the `http` sink's counters at zero, so that dashboards see them before the first record.
pub fn define_metrics(meter: &Meter) {
    meter.count(metrics::RECORDS_SENT.to_owned(), 0);
    for why in ["buffer_full", "send_failed"] {
        meter.count(metrics::named(metrics::RECORDS_DROPPED, &[("why", why)]), 0);
    }
}

/// `batch` failed: a retry when `s` (the sink) allows one, else dropped.
fn failed(
    outbox: &mut Outbox,
    s: Option<&Shipping>,
    meter: &Meter,
    batch: Batch,
    now_ms: u64,
    why: &str,
) {
    match outbox.failed(s, batch, now_ms) {
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
