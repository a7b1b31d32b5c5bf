//! Host glue of the decision record: written once per request when the stream ends (`on_log`), to
//! the sink the engine chose for this gateway (`Engine::audit_sink`).

use crate::audit::FILTER_STATE_PROPERTY;
use crate::config::AuditSink;
use proxy_wasm::types::LogLevel;

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
