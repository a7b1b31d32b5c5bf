//! Host glue of the decision record: written once per request when the stream ends (`on_log`), to
//! the sink the engine chose for this gateway (`Engine::audit_sink`).

use crate::audit::{AuditRecord, FILTER_STATE_PROPERTY};
use crate::config::AuditSink;
use proxy_wasm::types::LogLevel;
use std::cell::RefCell;

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

/// Writes one record line. `FilterState` is only ever chosen on Envoy, which answers Ok: the SDK's
/// `set_property` panics on any other status (ngx_wasm_module answers NotFound, see
/// `gateway::HostRules::filter_state`).
pub fn write(sink: AuditSink, line: &str) {
    match sink {
        AuditSink::Log => super::log(LogLevel::Info, line),
        AuditSink::FilterState => {
            let _ = proxy_wasm::hostcalls::set_property(
                vec![FILTER_STATE_PROPERTY],
                Some(line.as_bytes()),
            );
        }
    }
}
