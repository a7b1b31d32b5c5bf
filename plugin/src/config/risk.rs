//! The `risk` section: behavioural risk scoring, its thresholds and its failure policy.
//!
//! Present (even as `{}`) means on. Thresholds are on the 0-100 score; `block_at` is off unless set.

use super::{ConfigError, Mode};
use crate::risk::state::{RATE_BUCKET_MAX_S, RATE_BUCKET_MIN_S};
use schemars::JsonSchema;
use serde::Deserialize;

/// Behavioural risk scoring.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskConfig {
    /// Score requests (default true when the section is present).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// `enforce` (default) or `shadow`: score, tag and log, never refuse for risk (every route).
    #[serde(default)]
    pub mode: Mode,
    /// From this score the request is tagged: forwarded with `x-auth-risk-factors`.
    #[serde(default = "default_tag_at")]
    pub tag_at: u8,
    /// From this score the client must step up (RFC 9470 challenge).
    #[serde(default = "default_step_up_at")]
    pub step_up_at: u8,
    /// From this score the request is refused with 403 (off by default).
    #[serde(default)]
    pub block_at: Option<u8>,
    /// `acr` values that count as a step-up, also sent in the challenge's `acr_values`.
    #[serde(default = "default_acr_values")]
    pub acr_values: Vec<String>,
    /// `amr` values that count as a step-up too: a token whose `amr` holds any of them (and a recent
    /// `auth_time`) shows the step-up whatever its `acr` (e.g. `["mfa", "otp", "hwk"]`). Empty by
    /// default: `acr` only.
    #[serde(default)]
    pub amr_any: Vec<String>,
    /// A step-up counts only if `auth_time` is at most this old (also the challenge's `max_age`).
    #[serde(default = "default_max_age_s")]
    pub max_age_s: u64,
    /// Time allowed for scoring (state read, features, model), in microseconds. A score computed
    /// late is still used; repeated overruns open the circuit breaker (`breaker`).
    #[serde(default = "default_budget_us")]
    pub budget_us: u64,
    /// What a request gets when there is no score (scoring failed, or the breaker is open):
    /// `closed` (default, 503) or `open` (forward unscored).
    #[serde(default)]
    pub on_error: OnError,
    /// The circuit breaker over the risk stage (per worker).
    #[serde(default)]
    pub breaker: BreakerConfig,
    /// What a risky request gets, by the caller's kind: a step-up for those who can, a throttle
    /// and suspension for those who cannot.
    #[serde(default)]
    pub responses: ResponsesConfig,
    /// Request header with the caller's ISO 3166-1 alpha-2 country, set by the edge.
    #[serde(default = "default_geo_header")]
    pub geo_header: String,
    /// The edge in front of Warden owns `geo_header`: it removes any copy the client sent and sets its
    /// own (the shipped Envoy bootstrap removes it; see the README for setting it). Default false:
    /// the header is ignored (no country features), since a client could otherwise choose its country.
    #[serde(default)]
    pub geo_header_from_edge: bool,
    /// Source networks known to be bad (`203.0.113.0/24`, `2001:db8::/32`, or single addresses).
    #[serde(default)]
    pub deny_cidrs: Vec<String>,
    /// More known-bad networks, served over HTTP in the plain blocklist format (one network or
    /// address a line, `#` or `;` comments): fetched by one worker per `interval_s` for all, at most
    /// `max_entries` (up to 3500); a body that does not parse is refused and the last good list stays.
    #[serde(default)]
    pub deny_cidrs_feed: Option<DenyFeedConfig>,
    /// Behavioural records kept per kind (identities, sources): the memory bound, whatever the traffic.
    #[serde(default = "default_state_slots")]
    pub state_slots: u32,
    /// A country change faster than this (km/h between centroids) is impossible travel.
    #[serde(default = "default_travel_kmh")]
    pub travel_kmh: u32,
    /// A risk model to use instead of the embedded one: the ONNX file (as `make model` or
    /// `model/retrain.py` writes it), base64 (standard alphabet, padded), at most
    /// [`MAX_MODEL_BYTES`] decoded. Checked at load like the embedded model: the features it was
    /// trained on (names and order), its operators, its outputs. Its id (`risk-` and 12 hex digits
    /// of its SHA-256) is in every decision record and on the risk score metric.
    #[serde(default)]
    pub model: Option<String>,
}

/// Known-bad networks from a URL (`risk.deny_cidrs_feed`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DenyFeedConfig {
    /// Where the list is (Envoy: a cluster; Kong: host:port).
    pub service: crate::outbound::ServiceConfig,
    /// Seconds between fetches (default 300); a change reaches every worker within it.
    #[serde(default = "default_feed_interval_s")]
    pub interval_s: u64,
    /// Most networks kept (default and most 3500; beyond it the list is refused, the last stays).
    #[serde(default = "default_feed_max_entries")]
    pub max_entries: usize,
}

fn default_feed_interval_s() -> u64 {
    300
}
fn default_feed_max_entries() -> usize {
    crate::risk::feed::MAX_ENTRIES
}

/// The answers of the risk stage by caller kind (`human`, `agent`, `service`: see `kinds`).
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponsesConfig {
    /// People (default `step_up`).
    #[serde(default = "default_step_up")]
    pub human: Response,
    /// AI agents, the current actor of a delegation included (default `throttle`).
    #[serde(default = "default_throttle")]
    pub agent: Response,
    /// Service accounts: client-credentials tokens and API keys by default (default `throttle`).
    #[serde(default = "default_throttle")]
    pub service: Response,
    /// The throttle of callers answered with `throttle`.
    #[serde(default)]
    pub throttle: ThrottleConfig,
    /// The suspension of callers answered with `throttle`.
    #[serde(default)]
    pub suspend: SuspendConfig,
}

impl Default for ResponsesConfig {
    fn default() -> Self {
        ResponsesConfig {
            human: Response::StepUp,
            agent: Response::Throttle,
            service: Response::Throttle,
            throttle: ThrottleConfig::default(),
            suspend: SuspendConfig::default(),
        }
    }
}

/// What a caller kind gets for a risky request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// From `step_up_at`: the RFC 9470 challenge (a person can answer it).
    StepUp,
    /// From `tag_at`: held to a multiple of its own pace (429 with `Retry-After`); step-up-level
    /// scores that persist suspend it for a TTL (403 with `Retry-After`), on every worker.
    Throttle,
}

fn default_step_up() -> Response {
    Response::StepUp
}
fn default_throttle() -> Response {
    Response::Throttle
}

/// The risk throttle: while its score stays at `tag_at` or above, a caller gets tokens at `multiple`
/// times its own usual pace (learnt requests per busy `pace_bucket_s`), or at `min_per_minute` until
/// it has one.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Times the caller's own pace (default 2).
    #[serde(default = "default_multiple")]
    pub multiple: f64,
    /// The pace of a caller without a learnt one yet, requests a minute (default 60), so that a new
    /// agent's first burst (up to `burst_s` of it) is not throttled.
    #[serde(default = "default_min_per_minute")]
    pub min_per_minute: u32,
    /// Seconds of the pace the bucket holds (default 10).
    #[serde(default = "default_burst_s")]
    pub burst_s: u32,
    /// Length of the rate buckets a caller's pace is learnt in, seconds (default 300, 10 to 3600):
    /// its pace is its learnt requests per busy bucket, known after three of them. The `velocity`
    /// feature reads the same buckets. A record learnt under another length keeps its pace per
    /// second (converted at its next request; the bucket then open starts afresh).
    #[serde(default = "default_pace_bucket_s")]
    #[schemars(range(
        min = RATE_BUCKET_MIN_S,
        max = RATE_BUCKET_MAX_S
    ))]
    pub pace_bucket_s: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            multiple: default_multiple(),
            min_per_minute: default_min_per_minute(),
            burst_s: default_burst_s(),
            pace_bucket_s: default_pace_bucket_s(),
        }
    }
}

fn default_multiple() -> f64 {
    2.0
}
fn default_min_per_minute() -> u32 {
    60
}
fn default_burst_s() -> u32 {
    10
}
fn default_pace_bucket_s() -> u32 {
    crate::risk::state::RATE_BUCKET_S
}

/// Suspension: `after` scores at `step_up_at` or above within about `window_s` (a count decayed
/// over it) refuse the caller for `ttl_s`.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendConfig {
    /// Step-up-level scores that suspend (default 4: a score at which a person would have been
    /// challenged at once, four times within minutes, is no spike).
    #[serde(default = "default_after")]
    pub after: u32,
    /// Seconds over which they are counted (default 300): a walk at one request every 10 s is
    /// sustained, and at that pace 4 scores decayed over 60 s never add up to 4.
    #[serde(default = "default_window_s")]
    pub window_s: u64,
    /// Seconds a suspension lasts (default 900).
    #[serde(default = "default_ttl_s")]
    pub ttl_s: u64,
}

impl Default for SuspendConfig {
    fn default() -> Self {
        SuspendConfig {
            after: default_after(),
            window_s: default_window_s(),
            ttl_s: default_ttl_s(),
        }
    }
}

fn default_after() -> u32 {
    4
}
fn default_window_s() -> u64 {
    300
}
fn default_ttl_s() -> u64 {
    900
}

/// The risk stage's circuit breaker: `open_after` failures in a row (scoring errors or runs over
/// `budget_us`) open it for `cool_down_s`, during which requests are not scored and `on_error`
/// decides; then one request probes (half-open): scored in time, it closes the breaker.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker (default 5: one descheduled request never does).
    #[serde(default = "default_open_after")]
    pub open_after: u32,
    /// Seconds the breaker stays open before a half-open probe (default 10).
    #[serde(default = "default_cool_down_s")]
    pub cool_down_s: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            open_after: default_open_after(),
            cool_down_s: default_cool_down_s(),
        }
    }
}

fn default_open_after() -> u32 {
    5
}
fn default_cool_down_s() -> u64 {
    10
}

/// What happens when there is no score (scoring failed, or the breaker is open).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Refuse the request (503): nothing goes through unscored.
    #[default]
    Closed,
    /// Forward the request unscored.
    Open,
}

impl OnError {
    /// Name as written in config and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::Closed => "closed",
            OnError::Open => "open",
        }
    }
}

/// How much harm a route can do, a feature of every request to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// Public or read-only data of little value (default).
    #[default]
    Low,
    /// Ordinary business data.
    Medium,
    /// Personal data, money movement, configuration.
    High,
    /// Irreversible or wide-impact operations (transfers, deletions, admin).
    Critical,
}

impl Sensitivity {
    /// The feature value: 0, 1/3, 2/3, 1.
    pub fn weight(self) -> f32 {
        match self {
            Sensitivity::Low => 0.0,
            Sensitivity::Medium => 1.0 / 3.0,
            Sensitivity::High => 2.0 / 3.0,
            Sensitivity::Critical => 1.0,
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_tag_at() -> u8 {
    30
}
fn default_step_up_at() -> u8 {
    70
}
fn default_acr_values() -> Vec<String> {
    vec!["mfa".into()]
}
fn default_max_age_s() -> u64 {
    300
}
fn default_budget_us() -> u64 {
    2000
}
fn default_geo_header() -> String {
    "x-geo-country".into()
}
fn default_state_slots() -> u32 {
    65_536
}
fn default_travel_kmh() -> u32 {
    1000
}

/// Largest model `risk.model` may carry, bytes once decoded: a logistic regression over the
/// engine's features is about 1 KB; the bound keeps a config from holding megabytes of model.
pub const MAX_MODEL_BYTES: usize = 256 * 1024;

/// Most records per kind: 4 Mi slots of about 200 bytes is already ~1 GiB of shared memory.
pub const MAX_STATE_SLOTS: u32 = 1 << 22;

impl RiskConfig {
    /// Checks what serde cannot: ranges, order of thresholds, header and acr syntax.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let at = |f: &str| format!("risk.{f}");
        for (name, v) in [("tag_at", self.tag_at), ("step_up_at", self.step_up_at)] {
            if v > 100 {
                return Err(ConfigError::new(at(name), "must be between 0 and 100"));
            }
        }
        if let Some(b) = self.block_at {
            if b > 100 {
                return Err(ConfigError::new(
                    at("block_at"),
                    "must be between 0 and 100",
                ));
            }
            if b < self.step_up_at {
                return Err(ConfigError::new(
                    at("block_at"),
                    "must not be below step_up_at",
                ));
            }
        }
        if self.step_up_at < self.tag_at {
            return Err(ConfigError::new(
                at("step_up_at"),
                "must not be below tag_at",
            ));
        }
        if self.acr_values.is_empty() {
            return Err(ConfigError::new(
                at("acr_values"),
                "at least one acr value is needed for step-up",
            ));
        }
        super::guardrails::check_acr_values(&self.acr_values, "risk")?;
        for (i, v) in self.amr_any.iter().enumerate() {
            if v.is_empty() {
                return Err(ConfigError::new(
                    format!("risk.amr_any[{i}]"),
                    "must not be empty",
                ));
            }
        }
        if self.max_age_s == 0 {
            return Err(ConfigError::new(at("max_age_s"), "must be at least 1"));
        }
        if self.budget_us == 0 {
            return Err(ConfigError::new(at("budget_us"), "must be at least 1"));
        }
        if !(1..=1000).contains(&self.breaker.open_after) {
            return Err(ConfigError::new(
                at("breaker.open_after"),
                "must be between 1 and 1000",
            ));
        }
        let r = &self.responses;
        if !(r.throttle.multiple.is_finite() && (0.1..=1000.0).contains(&r.throttle.multiple)) {
            return Err(ConfigError::new(
                at("responses.throttle.multiple"),
                "must be between 0.1 and 1000",
            ));
        }
        let (min, max) = (RATE_BUCKET_MIN_S, RATE_BUCKET_MAX_S);
        if !(min..=max).contains(&r.throttle.pace_bucket_s) {
            return Err(ConfigError::new(
                at("responses.throttle.pace_bucket_s"),
                format!("must be between {min} and {max} seconds"),
            ));
        }
        for (name, v, max) in [
            (
                "throttle.min_per_minute",
                u64::from(r.throttle.min_per_minute),
                1_000_000,
            ),
            ("throttle.burst_s", u64::from(r.throttle.burst_s), 3600),
            ("suspend.after", u64::from(r.suspend.after), 1000),
            ("suspend.window_s", r.suspend.window_s, 86_400),
            ("suspend.ttl_s", r.suspend.ttl_s, 30 * 86_400),
        ] {
            if !(1..=max).contains(&v) {
                return Err(ConfigError::new(
                    at(&format!("responses.{name}")),
                    format!("must be between 1 and {max}"),
                ));
            }
        }
        if !(1..=86_400).contains(&self.breaker.cool_down_s) {
            return Err(ConfigError::new(
                at("breaker.cool_down_s"),
                "must be between 1 and 86400",
            ));
        }
        let h = &self.geo_header;
        if h.is_empty()
            || !h
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::new(at("geo_header"), "not a header name"));
        }
        if h.to_ascii_lowercase().starts_with("x-auth-") {
            return Err(ConfigError::new(
                at("geo_header"),
                "x-auth-* headers are Warden's own and removed from requests",
            ));
        }
        if self.state_slots == 0 || self.state_slots > MAX_STATE_SLOTS {
            return Err(ConfigError::new(
                at("state_slots"),
                format!("must be between 1 and {MAX_STATE_SLOTS}"),
            ));
        }
        if self.travel_kmh == 0 {
            return Err(ConfigError::new(at("travel_kmh"), "must be at least 1"));
        }
        self.model_bytes()?;
        Ok(())
    }

    /// The bytes of `risk.model`, decoded and within [`MAX_MODEL_BYTES`] (`None`: the embedded model).
    pub fn model_bytes(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        use base64::Engine as _;
        let Some(text) = self.model.as_deref() else {
            return Ok(None);
        };
        let field = || "risk.model".to_owned();
        // Refused before decoding: base64 is 4 characters per 3 bytes.
        if text.len() > MAX_MODEL_BYTES.div_ceil(3) * 4 {
            return Err(ConfigError::new(
                field(),
                format!("the model is larger than {MAX_MODEL_BYTES} bytes"),
            ));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| ConfigError::new(field(), format!("not base64: {e}")))?;
        if bytes.is_empty() || bytes.len() > MAX_MODEL_BYTES {
            return Err(ConfigError::new(
                field(),
                format!("the model must be 1 to {MAX_MODEL_BYTES} bytes"),
            ));
        }
        Ok(Some(bytes))
    }
}
