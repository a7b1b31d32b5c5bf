//! The `alerts` section: decisions worth a person's attention, pushed to a receiver (a SIEM's HTTP
//! collector, an ITSM webhook) in batches by one sender for all workers.

use crate::outbound::ServiceConfig;
use schemars::JsonSchema;
use serde::Deserialize;

/// Alerts to a receiver.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// The receiver (Envoy: a cluster; Kong: host:port). Alerts are POSTed to its URL.
    pub service: ServiceConfig,
    /// A header carrying the receiver's token (e.g. `authorization: Splunk <token>`).
    #[serde(default)]
    pub header: Option<AlertHeaderConfig>,
    /// Which events are sent (default: all).
    #[serde(default = "AlertEvent::all")]
    pub events: Vec<AlertEvent>,
    /// Events carrying a risk score below this are not sent (events without a score always are).
    #[serde(default)]
    pub min_score: u8,
    /// `json` (default): `{"source": "warden", "events": [...]}`; `splunk_hec`: Splunk HTTP Event
    /// Collector events, one JSON object per event, concatenated.
    #[serde(default)]
    pub format: AlertFormat,
    /// Most events per call.
    #[serde(default = "default_batch_records")]
    pub batch_records: u32,
    /// Longest an event waits for its batch to fill, milliseconds.
    #[serde(default = "default_batch_delay_ms")]
    pub batch_delay_ms: u64,
    /// Most events waiting in shared data; beyond it new events are dropped (counted and logged).
    #[serde(default = "default_queue_max")]
    pub queue_max: u32,
    /// Retries of a failed call (backoff 1 s, 2 s, 4 s ...); then its events are dropped.
    #[serde(default = "default_retries")]
    pub retries: u32,
}

/// The header carrying the receiver's token.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertHeaderConfig {
    /// Header name (lower-case).
    pub name: String,
    /// Header value.
    pub value: String,
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// Risk (or the route) demanded a step-up.
    StepUp,
    /// Risk blocked the request.
    Block,
    /// A quarantined token was refused (repeated block-level scores).
    Quarantine,
    /// A revoked token, subject, client or agent was refused (deny list, feed).
    Revoked,
    /// A caller went over its rate limit.
    RateLimited,
    /// The risk stage's circuit breaker decided (model error, time budget).
    RiskBreaker,
    /// A remote key set (JWKS, discovery) could not be fetched.
    KeyFetchFailure,
    /// A new config was refused (sent by a worker still running the previous one).
    ConfigRefused,
}

impl AlertEvent {
    /// Every event.
    pub fn all() -> Vec<AlertEvent> {
        vec![
            AlertEvent::StepUp,
            AlertEvent::Block,
            AlertEvent::Quarantine,
            AlertEvent::Revoked,
            AlertEvent::RateLimited,
            AlertEvent::RiskBreaker,
            AlertEvent::KeyFetchFailure,
            AlertEvent::ConfigRefused,
        ]
    }

    /// Name in payloads and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::StepUp => "step_up",
            AlertEvent::Block => "block",
            AlertEvent::Quarantine => "quarantine",
            AlertEvent::Revoked => "revoked",
            AlertEvent::RateLimited => "rate_limited",
            AlertEvent::RiskBreaker => "risk_breaker",
            AlertEvent::KeyFetchFailure => "key_fetch_failure",
            AlertEvent::ConfigRefused => "config_refused",
        }
    }
}

/// Payload format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertFormat {
    /// `{"source": "warden", "events": [...]}`.
    #[default]
    Json,
    /// Splunk HTTP Event Collector (`/services/collector/event`): `{"time", "source",
    /// "sourcetype", "event"}` per event, concatenated.
    SplunkHec,
}

fn default_batch_records() -> u32 {
    20
}
fn default_batch_delay_ms() -> u64 {
    1_000
}
fn default_queue_max() -> u32 {
    200
}
fn default_retries() -> u32 {
    3
}
