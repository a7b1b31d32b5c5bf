//! The `audit` section: whether decision records are written, and where.

use schemars::JsonSchema;
use serde::Deserialize;

/// Audit output.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Write one decision record per request, when the request ends.
    #[serde(default = "super::default_true")]
    pub enabled: bool,
    /// Where the records go: `log` (the gateway's log, info level; the default) or `filter_state`
    /// (Envoy: the filter-state object `wasm.warden_record`, printed by an access log with
    /// `%FILTER_STATE(wasm.warden_record:PLAIN)%`, so file, gRPC or OpenTelemetry access logs carry
    /// it). Kong has no filter state: there `filter_state` writes to the log.
    #[serde(default)]
    pub sink: AuditSink,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            enabled: true,
            sink: AuditSink::Log,
        }
    }
}

/// Where decision records go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditSink {
    /// The gateway's log, at info level.
    #[default]
    Log,
    /// Envoy's filter state (`wasm.warden_record`), for Envoy's access loggers.
    FilterState,
}
