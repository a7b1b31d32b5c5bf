//! The `audit` section: whether decision records are written, and where.

use super::alerts::AlertHeaderConfig;
use crate::outbound::ServiceConfig;
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
    /// it). Kong has no filter state: there `filter_state` writes to the log. `http`: shipped in
    /// batches to a collector (`audit.http`), from each worker's tick.
    #[serde(default)]
    pub sink: AuditSink,
    /// The collector of the `http` sink (required with it, refused without it).
    #[serde(default)]
    pub http: Option<HttpSinkConfig>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            enabled: true,
            sink: AuditSink::Log,
            http: None,
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
    /// A collector over HTTP (`audit.http`), in batches.
    Http,
}

/// The `http` sink's collector: records are POSTed to its URL in batches, by each worker from its
/// tick; nothing in the request path waits for it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpSinkConfig {
    /// The collector (Envoy: a cluster; Kong: host:port).
    pub service: ServiceConfig,
    /// A header carrying the collector's token (e.g. `authorization: Splunk <token>`).
    #[serde(default)]
    pub header: Option<AlertHeaderConfig>,
    /// `ndjson` (default): one record per line (`application/x-ndjson`); `splunk_hec`: Splunk HTTP
    /// Event Collector events (`{"time", "source", "sourcetype", "event"}`), one per line.
    #[serde(default)]
    pub format: RecordFormat,
    /// Most bytes of records in one call (1 KiB to 4 MiB); a larger record goes alone.
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: u32,
    /// Longest a record waits for its batch to fill, milliseconds (at most 60,000; the tick is
    /// 250 ms).
    #[serde(default = "default_batch_delay_ms")]
    pub batch_delay_ms: u64,
    /// Most bytes of records a worker holds (waiting, in flight, waiting for a retry), from
    /// `batch_bytes` to 64 MiB; beyond it new records are dropped (counted).
    #[serde(default = "default_buffer_bytes")]
    pub buffer_bytes: u32,
    /// Retries of a failed call (backoff 1 s, 2 s, 4 s ...); then its records are dropped (counted).
    #[serde(default = "default_retries")]
    pub retries: u32,
}

/// Body format of the `http` sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordFormat {
    /// One record per line, `application/x-ndjson`.
    #[default]
    Ndjson,
    /// Splunk HTTP Event Collector (`/services/collector/event`).
    SplunkHec,
}

fn default_batch_bytes() -> u32 {
    512 * 1024
}
fn default_batch_delay_ms() -> u64 {
    1_000
}
fn default_buffer_bytes() -> u32 {
    4 * 1024 * 1024
}
fn default_retries() -> u32 {
    3
}
