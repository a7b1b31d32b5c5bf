//! The filter's metrics, by name: what a platform team graphs (decisions by verdict, reason and
//! route; engine time and risk score histograms; token-cache hits; alerts sent and dropped).
//! Pure: the names are built here, the host (`host::metrics`) defines and bumps them.
//!
//! Labels ride in the name as `.label.value` pairs, because proxy-wasm metrics have no labels:
//! Envoy shows `wasmcustom.warden_decisions_total.verdict.allow.reason.ok.route.read-order`, and
//! the stats tag extraction of the shipped bootstrap (`envoy/render.py`, `STATS_TAGS`) turns each
//! pair into a Prometheus label: `warden_decisions_total{verdict="allow",reason="ok",route="read-order"}`.
//! Every label's values are bounded: verdicts and reasons are the engine's own names, routes the
//! config's route names (or `none`).

use crate::decision::Decision;

/// Decisions, labelled `verdict`, `reason`, `route`.
pub const DECISIONS: &str = "warden_decisions_total";
/// Engine time per decision, microseconds (histogram).
pub const ENGINE_US: &str = "warden_engine_us";
/// Risk score of scored requests, 0 to 100 (histogram), labelled `model` (the scoring model's id).
pub const RISK_SCORE: &str = "warden_risk_score";
/// Bearer tokens answered from the verified-token cache, labelled `result` (`hit`, `miss`).
pub const TOKEN_CACHE: &str = "warden_token_cache_total";
/// Token signatures checked, labelled `kind`: `host` (the host's `verify_signature`, BoringSSL in
/// Envoy) or `wasm` (jwt-simple's pure Rust).
pub const SIGNATURES: &str = "warden_signatures_total";
/// Age of a provider's remote key set on a worker, seconds (gauge), labelled `provider`.
pub const KEY_AGE: &str = "warden_key_age_seconds";
/// Behavioural record slots in use (gauge), labelled `kind` (`identity`, `source`).
pub const SLOTS_IN_USE: &str = "warden_state_slots_in_use";
/// Behavioural record slots of each kind (gauge: `risk.state_slots`).
pub const SLOTS_CAPACITY: &str = "warden_state_slots_capacity";
/// Alert events handed to the sender's queue, labelled `event`.
pub const ALERTS_QUEUED: &str = "warden_alerts_queued_total";
/// Alert events delivered to the receiver.
pub const ALERTS_SENT: &str = "warden_alerts_sent_total";
/// Alert events dropped, labelled `why` (`queue_full`, `send_failed`).
pub const ALERTS_DROPPED: &str = "warden_alerts_dropped_total";
/// Decision records delivered by the `http` sink (a 2xx from the collector).
pub const RECORDS_SENT: &str = "warden_records_sent_total";
/// Decision records the `http` sink dropped, labelled `why` (`buffer_full`, `send_failed`,
/// `sink_removed`, `shutdown`).
pub const RECORDS_DROPPED: &str = "warden_records_dropped_total";

/// Every label any metric carries. Envoy: `envoy/render.py` (`STATS_LABELS`) makes each a stats tag;
/// Kong: `kong/warden.meta.json` (`metrics.label_patterns`) gives the Prometheus plugin the same.
pub const LABELS: [&str; 9] = [
    "verdict", "reason", "route", "result", "event", "why", "kind", "provider", "model",
];

/// Kong's Prometheus plugin (3.8 and later, `wasm_metrics: true`; `kong/plugins/prometheus/wasmx.lua`)
/// reads a filter's metric labels from `<filter>.meta.json`: `{"metrics": {"label_patterns":
/// [{"label", "pattern"}]}}`, PCRE patterns (`ngx.re.match`) whose second capture is the value and
/// whose first is cut from the name. ngx_wasm_module keys a metric `pw:warden:<name>`, which shows as
/// `pw_warden_<name>{labels}`: `pw_warden_warden_decisions_total{verdict="allow",...}`.
pub fn kong_label_patterns() -> Vec<(&'static str, String)> {
    LABELS
        .iter()
        .map(|l| (*l, format!("(\\.{l}\\.([^.]+))")))
        .collect()
}

/// A label value safe in a dotted stat name: `.` (the separator) and anything outside
/// `[A-Za-z0-9_-]` become `_`; empty becomes `none`.
pub fn label(value: &str) -> String {
    if value.is_empty() {
        return "none".into();
    }
    value
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' => c,
            _ => '_',
        })
        .collect()
}

/// A metric name with its labels (`name.label.value...`).
pub fn named(name: &str, labels: &[(&str, &str)]) -> String {
    let mut out = String::from(name);
    for (k, v) in labels {
        out.push('.');
        out.push_str(k);
        out.push('.');
        out.push_str(&label(v));
    }
    out
}

/// The decisions counter of `d`.
pub fn decision(d: &Decision) -> String {
    named(
        DECISIONS,
        &[
            ("verdict", d.verdict.as_str()),
            ("reason", d.reason),
            ("route", d.route.as_deref().unwrap_or("")),
        ],
    )
}

/// The risk score histogram of a request scored by `model` (one model per config: bounded).
pub fn risk_score(model: &str) -> String {
    named(RISK_SCORE, &[("model", model)])
}

/// [`TOKEN_CACHE`] `{result="hit"}` and `{result="miss"}`, and [`SIGNATURES`] `{kind="host"}` and
/// `{kind="wasm"}`, spelled out: counted per request, they are not built per request.
const TOKEN_CACHE_HIT: &str = "warden_token_cache_total.result.hit";
const TOKEN_CACHE_MISS: &str = "warden_token_cache_total.result.miss";
/// [`SIGNATURES`] `{kind="host"}`.
pub const SIGNATURES_HOST: &str = "warden_signatures_total.kind.host";
/// [`SIGNATURES`] `{kind="wasm"}`.
pub const SIGNATURES_WASM: &str = "warden_signatures_total.kind.wasm";

/// The token-cache counter of `d`: `None` when no bearer token was verified (API keys, refusals
/// before the credential, anonymous routes).
pub fn token_cache(d: &Decision) -> Option<&'static str> {
    let jwt = d
        .identity
        .as_ref()
        .is_some_and(|i| i.credential == crate::credential::CredentialKind::Jwt);
    jwt.then_some(if d.cache_hit {
        TOKEN_CACHE_HIT
    } else {
        TOKEN_CACHE_MISS
    })
}

/// A risk-stage counter (`warden_risk_*_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskCounter {
    /// The model failed (`warden_risk_breaker_error_total`).
    BreakerError,
    /// The model ran over its time budget (`warden_risk_breaker_over_budget_total`).
    BreakerOverBudget,
    /// The breaker was open: not scored (`warden_risk_breaker_open_total`).
    BreakerOpen,
    /// The breaker opened on this request (`warden_risk_breaker_opened_total`).
    BreakerOpened,
    /// Tagged (`warden_risk_tag_total`).
    Tag,
    /// A step-up asked (`warden_risk_step_up_total`).
    StepUp,
    /// Blocked (`warden_risk_block_total`).
    Block,
    /// Throttled (`warden_risk_throttle_total`).
    Throttle,
    /// Refused while suspended (`warden_risk_suspend_total`).
    Suspend,
}

/// One metric update a decision makes: a counter's increment (summed in the worker, published per
/// tick with `proxy_increment_metric`) or a histogram's observation (`proxy_record_metric`, one host
/// call each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// [`DECISIONS`] of the decision's verdict, reason and route, plus one.
    Decision,
    /// [`ENGINE_US`]: the engine's time observed.
    EngineUs,
    /// [`RISK_SCORE`] of the scoring model: this score observed.
    RiskScore(u8),
    /// [`TOKEN_CACHE`] `hit` or `miss` ([`token_cache`]), plus one.
    TokenCache(&'static str),
    /// A risk-stage counter, plus one.
    Risk(RiskCounter),
}

impl Update {
    /// A histogram observation: one host call per request. A counter's increments are summed in the
    /// worker and published once per tick (`host::metrics::Meter::flush`).
    pub fn is_observation(self) -> bool {
        matches!(self, Update::EngineUs | Update::RiskScore(_))
    }
}

/// Every metric update of decision `d`, in order:
/// the decision, the engine time, the risk score when scored, the token cache when a bearer token
/// was verified, and the risk stage's counters (breaker, verdict; shadowed verdicts included).
pub fn updates(d: &Decision, mut each: impl FnMut(Update)) {
    use crate::decision::Verdict;
    use crate::risk::breaker::Transition;
    use crate::risk::Breaker;
    each(Update::Decision);
    each(Update::EngineUs);
    if let Some(score) = d.risk.as_ref().and_then(|a| a.score) {
        each(Update::RiskScore(score));
    }
    if let Some(name) = token_cache(d) {
        each(Update::TokenCache(name));
    }
    let Some(a) = &d.risk else {
        return;
    };
    match a.breaker {
        Some((Breaker::Error, _)) => each(Update::Risk(RiskCounter::BreakerError)),
        Some((Breaker::Open, _)) => each(Update::Risk(RiskCounter::BreakerOpen)),
        None => {}
    }
    if a.over_budget {
        each(Update::Risk(RiskCounter::BreakerOverBudget));
    }
    if a.breaker_event == Some(Transition::Opened) {
        each(Update::Risk(RiskCounter::BreakerOpened));
    }
    let verdict = match d.verdict {
        Verdict::Tag => Some(RiskCounter::Tag),
        Verdict::StepUp => Some(RiskCounter::StepUp),
        Verdict::Block => Some(RiskCounter::Block),
        Verdict::Throttle => Some(RiskCounter::Throttle),
        Verdict::Suspend => Some(RiskCounter::Suspend),
        Verdict::Allow | Verdict::Deny => None,
    };
    if let Some(c) = verdict {
        each(Update::Risk(c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Envoy's bootstrap extracts every label the filter writes.
    #[test]
    fn the_envoy_bootstrap_tags_every_label() {
        let render = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../envoy/render.py"),
        )
        .unwrap_or_default();
        let line = render
            .lines()
            .find(|l| l.starts_with("STATS_LABELS"))
            .unwrap_or_default();
        for label in LABELS {
            assert!(
                line.contains(&format!("\"{label}\"")),
                "{label} not in {line}"
            );
        }
    }

    /// Kong's plugin finds a label with `ngx.re.match` (PCRE): the captures are the `.label.value`
    /// pair (cut from the name) and the value.
    #[test]
    fn kong_label_patterns_capture_the_pair_and_the_value() {
        let patterns = kong_label_patterns();
        assert_eq!(patterns.len(), LABELS.len());
        let (label, pattern) = &patterns[0];
        assert_eq!(*label, "verdict");
        assert_eq!(pattern, r"(\.verdict\.([^.]+))");
    }

    /// The names spelled out for the request path are the ones `named` builds.
    #[test]
    fn spelled_out_names_are_the_built_ones() {
        for (name, result) in [(TOKEN_CACHE_HIT, "hit"), (TOKEN_CACHE_MISS, "miss")] {
            assert_eq!(name, named(TOKEN_CACHE, &[("result", result)]));
        }
        for (name, kind) in [(SIGNATURES_HOST, "host"), (SIGNATURES_WASM, "wasm")] {
            assert_eq!(name, named(SIGNATURES, &[("kind", kind)]));
        }
    }

    #[test]
    fn labels_cannot_break_the_name() {
        assert_eq!(label("read-order"), "read-order");
        assert_eq!(label("a.b c\"d"), "a_b_c_d");
        assert_eq!(label(""), "none");
        assert_eq!(
            named(DECISIONS, &[("verdict", "allow"), ("route", "v1.orders")]),
            "warden_decisions_total.verdict.allow.route.v1_orders"
        );
    }
}
