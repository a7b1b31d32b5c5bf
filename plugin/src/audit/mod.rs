//! The decision record: one explainable JSON line per request (who, what, which rule, why, what the
//! upstream answered), never the token or an API key. The filter writes it once per request when
//! the stream ends (the gateway log, or Envoy's access log through filter state); `warden replay`
//! and `warden features` print the same type through the same serializer, and `warden replay
//! --audit` reads it back ([`recorded`]) to decide again from the record alone.
//!
//! Versioned: [`VERSION`] is the `v` of every line, and `docs/schema/decision-record.v1.json` is
//! this type's JSON Schema (`warden schema --record`). A field may be added within a version; a
//! field is renamed, retyped or removed only with a new version.

pub mod ocsf;
pub mod recorded;
pub mod shipping;

use crate::config::AuditSink;
use crate::decision::{Decision, Request};
use crate::gateway::HostRules;
use schemars::JsonSchema;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The property the filter-state sink sets (Envoy's filter-state key `wasm.warden_record`).
pub const FILTER_STATE_PROPERTY: &str = "warden_record";

/// Where records go on this gateway: the configured sink, or the log where the host keeps no
/// filter state (Kong) and `filter_state` was configured.
pub fn sink(configured: AuditSink, host: HostRules) -> AuditSink {
    match configured {
        AuditSink::FilterState if !host.filter_state => AuditSink::Log,
        other => other,
    }
}

/// The record format's version: the `v` of every line.
pub const VERSION: u32 = 1;

/// The longest user agent a record keeps, bytes (cut at a character boundary): a record stays
/// small whatever a client sends. Replay sees the cut value.
pub const MAX_USER_AGENT_BYTES: usize = 256;

/// Claims of a token (besides those with fields of their own) that the stages after the
/// credential read: carried in the record so that `warden replay --audit` can decide again
/// without the token. `kinds.claim` and the guardrails' `owner.roles_claim`, when configured, are
/// added by the engine.
pub const RECORDED_CLAIMS: [&str; 4] = ["acr", "amr", "auth_time", "act"];

/// The decision record (one JSON line). Its field names are [`AuditRecord::FIELDS`].
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "Warden decision record",
    description = "One JSON line per request, written when the request ends. Never holds a token or an API key."
)]
pub struct AuditRecord<'a> {
    /// Record format version (1).
    pub v: u32,
    /// When the decision was taken, milliseconds since the Unix epoch.
    pub ts_ms: u64,
    /// Request id (the client's `x-request-id` when usable, else generated).
    pub request_id: &'a str,
    /// The request method.
    pub method: &'a str,
    /// Path without the query string.
    pub path: &'a str,
    /// Matched route rule (a name from the config).
    pub route: Option<&'a str>,
    /// The client's address as the gateway saw it (Envoy's `source.address`, Kong's `ngx.remote_addr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
    /// The `User-Agent` header, at most 256 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
    /// The edge's country code (`risk.geo_header`), as the risk stage read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[A-Z]{2}$"))]
    pub country: Option<String>,
    /// `jwt`, `api_key`, or absent.
    pub credential: Option<&'static str>,
    /// Subject.
    pub subject: Option<&'a str>,
    /// Client id or API key id.
    pub client_id: Option<&'a str>,
    /// Tenant.
    pub tenant: Option<&'a str>,
    /// Provider name (`api_keys` for an API key).
    pub issuer: Option<&'a str>,
    /// Token id.
    pub jti: Option<&'a str>,
    /// `human`, `service` or `agent`: the party making the call (the current actor when delegated).
    pub kind: Option<&'static str>,
    /// The delegation chain, current actor first (prior actors are informational).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actors: Vec<&'a str>,
    /// The token's audiences (`aud`): replay checks an MCP endpoint's audience binding on them.
    #[serde(default, skip_serializing_if = "<[String]>::is_empty")]
    pub audiences: &'a [String],
    /// Scopes the credential grants (before a delegation rule narrows them).
    #[serde(default, skip_serializing_if = "<[String]>::is_empty")]
    pub scopes: &'a [String],
    /// Scopes the matched route requires.
    #[serde(default, skip_serializing_if = "<[String]>::is_empty")]
    pub required_scopes: &'a [String],
    /// The token's claims the later stages read (`iat`, `acr`, `amr`, `auth_time`, `act`, the
    /// `kinds` claim, the guardrails' roles claim): never a signature, a key or a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Map<String, Value>>")]
    pub claims: Option<RecordedClaims<'a>>,
    /// Seconds since the token was issued (`iat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_age_s: Option<u64>,
    /// Seconds since the user authenticated (`auth_time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_age_s: Option<u64>,
    /// `allow`, `tag`, `throttle`, `step_up`, `suspend`, `block` or `deny` (in shadow mode: what would
    /// have happened).
    #[schemars(regex(pattern = "^(allow|tag|throttle|step_up|suspend|block|deny)$"))]
    pub decision: &'static str,
    /// Status the client got (in shadow mode: would have got).
    pub status: u16,
    /// Why (`ok`, `expired`, `insufficient_scope`, `step_up_required`, the agent guardrails'
    /// `owner_mismatch`, `owner_missing`, `user_not_present`, `approval_required`, ...).
    pub reason: &'static str,
    /// `enforce` or `shadow`.
    #[schemars(regex(pattern = "^(enforce|shadow)$"))]
    pub mode: &'static str,
    /// Whether the verified-token cache answered.
    pub cache_hit: bool,
    /// The refusal counted as a failure in the caller's and the source's behavioural records.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub counted_failure: bool,
    /// This request's block-level score put the token in quarantine (`revocation.quarantine`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quarantined: bool,
    /// Engine time, microseconds (measured by the host adapter; 0 in replay).
    pub engine_us: u64,
    /// Risk score 0-100, when the request was scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_score: Option<u8>,
    /// The factors that raised the risk, highest first, with their contributions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub factors: Vec<Factor>,
    /// Every feature the model saw, by name, in model input order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<BTreeMap<String, f32>>")]
    pub risk_features: Option<Features>,
    /// The model that scored (`risk-` and the first 12 hex digits of its SHA-256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<&'a str>,
    /// Whether the token showed a valid step-up (`acr` and a recent `auth_time`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stepped_up: bool,
    /// Set when the circuit breaker decided instead of the score: `error` (scoring failed) or
    /// `open` (the breaker was open: not scored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_breaker: Option<&'static str>,
    /// Scoring ran over `risk.budget_us` (a computed score is still used; repeated overruns open
    /// the breaker).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub risk_over_budget: bool,
    /// What this request did to the circuit breaker: `opened` it, or `closed` it (a half-open probe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_breaker_event: Option<&'static str>,
    /// What `risk.on_error` made of a breaker trip: `open` or `closed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_on_error: Option<&'static str>,
    /// Risk stage time, microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_us: Option<u64>,
    /// The upstream's status, when the request was forwarded and answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    /// Response body bytes sent to the client (the upstream's, or the local reply's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_bytes: Option<u64>,
    /// From the decision to the end of the request, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The MCP endpoint (`mcp.endpoints[].name`) the request went to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_endpoint: Option<&'a str>,
    /// The JSON-RPC method of the (first) MCP call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_method: Option<&'a str>,
    /// The tool, resource URI or prompt the (first) MCP call addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_name: Option<&'a str>,
    /// `MCP-Protocol-Version`, as the client sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_protocol_version: Option<&'a str>,
}

/// One explanation of a risk score.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Factor {
    /// Feature name.
    pub name: &'static str,
    /// How much it raised the risk (model units).
    pub contribution: f32,
}

/// The claims a record carries (`iat`, [`RECORDED_CLAIMS`], the engine's extra names), written as
/// one JSON object straight from the token's claims: nothing is copied.
#[derive(Debug, Clone, Copy)]
pub struct RecordedClaims<'a> {
    claims: &'a crate::credential::Claims,
    names: &'a [String],
}

impl<'a> RecordedClaims<'a> {
    /// The recorded claims of `claims`: `iat`, [`RECORDED_CLAIMS`] and `names`, those present.
    pub fn new(claims: &'a crate::credential::Claims, names: &'a [String]) -> Self {
        RecordedClaims { claims, names }
    }

    /// Whether the record carries claim `name` (besides `iat`).
    fn wanted(&self, name: &str) -> bool {
        name != "iat" && (RECORDED_CLAIMS.contains(&name) || self.names.iter().any(|n| n == name))
    }
}

impl Serialize for RecordedClaims<'_> {
    /// In name order (as a JSON object map keeps them), `iat` among them.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        let mut iat = self.claims.iat;
        for (name, value) in &self.claims.extra {
            if !self.wanted(name) {
                continue;
            }
            if let Some(t) = iat.filter(|_| name.as_str() > "iat") {
                map.serialize_entry("iat", &t)?;
                iat = None;
            }
            map.serialize_entry(name, value)?;
        }
        if let Some(t) = iat {
            map.serialize_entry("iat", &t)?;
        }
        map.end()
    }
}

/// The model's input, written as `{"name": value}` in model input order.
#[derive(Debug, Clone, Copy)]
pub struct Features(pub [f32; crate::risk::features::N]);

impl Serialize for Features {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, v) in crate::risk::features::Feature::NAMES.iter().zip(self.0) {
            map.serialize_entry(name, &round4(v))?;
        }
        map.end()
    }
}

/// Four decimals are plenty for a person, and keep the line short.
fn round4(v: f32) -> f32 {
    (v * 10_000.0).round() / 10_000.0
}

/// What happened after the decision: the adapter's (or replay's) view of the end of the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The upstream's status (forwarded requests that got an answer).
    pub upstream_status: Option<u16>,
    /// Response body bytes.
    pub response_bytes: Option<u64>,
    /// Decision to end of request, milliseconds.
    pub duration_ms: Option<u64>,
}

impl<'a> AuditRecord<'a> {
    /// The record's JSON field names, in the order they are written. Optional fields are left out
    /// of a line when empty; `warden replay` drops trace fields of these names, so that every one of
    /// them in its output is the engine's.
    pub const FIELDS: [&'static str; 48] = [
        "v",
        "ts_ms",
        "request_id",
        "method",
        "path",
        "route",
        "source_ip",
        "user_agent",
        "country",
        "credential",
        "subject",
        "client_id",
        "tenant",
        "issuer",
        "jti",
        "kind",
        "actors",
        "audiences",
        "scopes",
        "required_scopes",
        "claims",
        "token_age_s",
        "auth_age_s",
        "decision",
        "status",
        "reason",
        "mode",
        "cache_hit",
        "counted_failure",
        "quarantined",
        "engine_us",
        "risk_score",
        "factors",
        "risk_features",
        "model",
        "stepped_up",
        "risk_breaker",
        "risk_over_budget",
        "risk_breaker_event",
        "risk_on_error",
        "risk_us",
        "upstream_status",
        "response_bytes",
        "duration_ms",
        "mcp_endpoint",
        "mcp_method",
        "mcp_name",
        "mcp_protocol_version",
    ];

    /// The record of `decision` for `req`; `ts_ms` and `engine_us` come from the host, and
    /// `claim_names` are the claims to carry besides [`RECORDED_CLAIMS`] (the engine's
    /// [`crate::decision::Engine::recorded_claims`]).
    pub fn new(
        req: &Request<'a>,
        d: &'a Decision,
        ts_ms: u64,
        engine_us: u64,
        claim_names: &'a [String],
    ) -> Self {
        let id = d.identity.as_ref();
        let risk = d.risk.as_ref();
        let claims = id.and_then(|i| i.claims.as_deref());
        let now_s = ts_ms / 1000;
        let auth_time = claims
            .and_then(|c| c.extra.get("auth_time"))
            .and_then(Value::as_u64);
        let mcp = d.mcp.as_ref();
        let (mcp_method, mcp_name) = mcp.map_or((None, None), |m| m.first());
        AuditRecord {
            v: VERSION,
            ts_ms,
            request_id: req.request_id,
            method: req.method,
            path: req.path.split('?').next().unwrap_or(""),
            route: d.route.as_deref(),
            source_ip: req.source,
            user_agent: header(req.headers, "user-agent").map(|ua| cut(ua, MAX_USER_AGENT_BYTES)),
            country: risk
                .and_then(|a| a.country)
                .map(|c| String::from_utf8_lossy(&c).into_owned()),
            credential: id.map(|i| i.credential.as_str()),
            subject: id.map(|i| i.subject.as_str()),
            client_id: id.and_then(|i| i.client.as_deref()),
            tenant: id.and_then(|i| i.tenant.as_deref()),
            issuer: id.map(|i| i.provider.as_str()),
            jti: id.and_then(|i| i.token_id.as_deref()),
            kind: id.map(|i| i.kind.as_str()),
            actors: id
                .map(|i| i.actors.iter().map(|a| a.subject.as_str()).collect())
                .unwrap_or_default(),
            audiences: claims.map_or(&[], |c| c.audiences.as_slice()),
            // The credential's grant: the token's scopes, or the API key's.
            scopes: match (claims, id) {
                (Some(c), _) => &c.scopes,
                (None, Some(i)) => &i.scopes,
                (None, None) => &[],
            },
            required_scopes: &d.required_scopes,
            claims: claims.map(|c| RecordedClaims::new(c, claim_names)),
            token_age_s: claims
                .and_then(|c| c.iat)
                .map(|iat| now_s.saturating_sub(iat)),
            auth_age_s: auth_time.map(|t| now_s.saturating_sub(t)),
            decision: d.verdict.as_str(),
            status: d.status,
            reason: d.reason,
            mode: d.mode.as_str(),
            cache_hit: d.cache_hit,
            counted_failure: d.counted_failure,
            quarantined: d.quarantined,
            engine_us,
            risk_score: risk.and_then(|a| a.score),
            factors: risk
                .map(|a| {
                    a.factors
                        .iter()
                        .map(|&(name, c)| Factor {
                            name,
                            contribution: round4(c),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            risk_features: risk
                .filter(|a| a.score.is_some())
                .map(|a| Features(a.features)),
            model: risk.filter(|a| a.score.is_some()).map(|a| &*a.model),
            stepped_up: risk.is_some_and(|a| a.stepped_up),
            risk_breaker: risk.and_then(|a| a.breaker).map(|(b, _)| b.as_str()),
            risk_over_budget: risk.is_some_and(|a| a.over_budget),
            risk_breaker_event: risk.and_then(|a| a.breaker_event).map(|t| t.as_str()),
            risk_on_error: risk.and_then(|a| a.breaker).map(|(_, p)| p.as_str()),
            risk_us: risk.map(|a| a.elapsed_us),
            upstream_status: None,
            response_bytes: None,
            duration_ms: None,
            mcp_endpoint: mcp.map(|m| m.name.as_str()),
            mcp_method,
            mcp_name,
            mcp_protocol_version: mcp.and_then(|m| m.protocol_version.as_deref()),
        }
    }

    /// The record with what happened after the decision.
    pub fn with_outcome(mut self, o: Outcome) -> Self {
        self.upstream_status = o.upstream_status;
        self.response_bytes = o.response_bytes;
        self.duration_ms = o.duration_ms;
        self
    }

    /// The record as one JSON line.
    pub fn to_json(&self) -> String {
        let mut line = Vec::new();
        self.write_json(&mut line);
        String::from_utf8(line).unwrap_or_default()
    }

    /// The record as one JSON line in `line` (cleared first), so that a caller can reuse one buffer
    /// for every record: serialized straight from the decision, no intermediate values.
    pub fn write_json(&self, line: &mut Vec<u8>) {
        line.clear();
        if serde_json::to_writer(Line(&mut *line), self).is_err() {
            line.clear();
        }
    }
}

/// The record's writer: a `Vec<u8>` whose short writes are copied byte by byte, in line. The
/// serializer writes a record in ~250 pieces (each key and string with its quotes, each
/// punctuation mark), most of a few bytes, and `Vec`'s own `write` makes each a call into
/// `extend_from_slice` and `memcpy` (about half of the record's instructions, callgrind). The
/// buffer is reused, so once it has grown to a record's size no byte grows it.
struct Line<'a>(&'a mut Vec<u8>);

/// Pieces up to this many bytes are pushed one by one; longer ones are copied at once.
const SHORT_WRITE: usize = 16;

impl std::io::Write for Line<'_> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    #[inline(always)]
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if buf.len() <= SHORT_WRITE {
            self.0.extend(buf.iter().copied());
        } else {
            self.0.extend_from_slice(buf);
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The first value of header `name` (lower-case).
fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// The record's JSON Schema (draft 2020-12, as schemars writes it): `docs/schema/decision-record.v1.json`.
pub fn schema() -> Value {
    let schema = schemars::schema_for!(AuditRecord<'static>);
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn claims(iat: Option<u64>, extra: Value) -> crate::credential::Claims {
        crate::credential::Claims {
            issuer: "corp".into(),
            subject: "alice".into(),
            audiences: vec!["orders-api".into()],
            exp: 9,
            nbf: None,
            iat,
            jti: None,
            client: None,
            tenant: None,
            scopes: vec!["a".into()],
            provider: "corp".into(),
            extra: extra.as_object().unwrap().clone(),
        }
    }

    fn full() -> AuditRecord<'static> {
        static REQUIRED: [String; 1] = [String::new()];
        let claims: &'static _ = Box::leak(Box::new(claims(Some(7), json!({"acr": "mfa"}))));
        AuditRecord {
            v: VERSION,
            ts_ms: 1,
            request_id: "r",
            method: "GET",
            path: "/",
            route: Some("root"),
            source_ip: Some(IpAddr::from([127, 0, 0, 1])),
            user_agent: Some("curl/8"),
            country: Some("NO".into()),
            credential: Some("jwt"),
            subject: Some("alice"),
            client_id: Some("app"),
            tenant: Some("acme"),
            issuer: Some("corp"),
            jti: Some("j"),
            kind: Some("human"),
            actors: vec!["agent"],
            audiences: &claims.audiences,
            scopes: &claims.scopes,
            required_scopes: &REQUIRED,
            claims: Some(RecordedClaims::new(claims, &[])),
            token_age_s: Some(3),
            auth_age_s: Some(4),
            decision: "allow",
            status: 200,
            reason: "ok",
            mode: "enforce",
            cache_hit: false,
            counted_failure: true,
            quarantined: true,
            engine_us: 1,
            risk_score: Some(1),
            factors: vec![Factor {
                name: "burst",
                contribution: 0.5,
            }],
            risk_features: Some(Features([0.0; crate::risk::features::N])),
            model: Some("risk-0"),
            stepped_up: true,
            risk_breaker: Some("error"),
            risk_over_budget: true,
            risk_breaker_event: Some("opened"),
            risk_on_error: Some("open"),
            risk_us: Some(1),
            upstream_status: Some(200),
            response_bytes: Some(10),
            duration_ms: Some(2),
            mcp_endpoint: Some("orders-mcp"),
            mcp_method: Some("tools/call"),
            mcp_name: Some("read_orders"),
            mcp_protocol_version: Some("2026-07-28"),
        }
    }

    #[test]
    fn fields_are_the_names_a_full_record_writes_in_order() {
        let line = full().to_json();
        let mut at = 0;
        for name in AuditRecord::FIELDS {
            let key = format!("\"{name}\":");
            let found = line[at..].find(&key).map(|i| at + i);
            assert!(found.is_some(), "{name} missing or out of order in {line}");
            at = found.unwrap() + key.len();
        }
        let written = serde_json::from_str::<serde_json::Value>(&line).unwrap();
        assert_eq!(
            written.as_object().unwrap().len(),
            AuditRecord::FIELDS.len()
        );
        assert_eq!(written["v"], VERSION);
        assert_eq!(
            written["risk_features"].as_object().unwrap().len(),
            crate::risk::features::N
        );
    }

    /// The recorded claims: `iat`, the standard names and the engine's, those present, once each,
    /// in name order (as a JSON object map of them was written before), nothing else.
    #[test]
    fn recorded_claims_are_the_named_ones_in_name_order() {
        let c = claims(
            Some(5),
            json!({"act": {"sub": "bot"}, "acr": "mfa", "amr": ["pwd"], "auth_time": 4,
                   "cnf": {"jkt": "x"}, "roles": ["admin"], "zone": "eu", "secret": "s"}),
        );
        let names = ["roles".to_owned(), "zone".to_owned(), "acr".to_owned()];
        let line = serde_json::to_string(&RecordedClaims::new(&c, &names)).unwrap();
        assert_eq!(
            line,
            r#"{"acr":"mfa","act":{"sub":"bot"},"amr":["pwd"],"auth_time":4,"iat":5,"roles":["admin"],"zone":"eu"}"#
        );
        let only_iat = claims(Some(5), json!({"cnf": {}}));
        let line = serde_json::to_string(&RecordedClaims::new(&only_iat, &[])).unwrap();
        assert_eq!(line, r#"{"iat":5}"#);
        let none = claims(None, json!({"zz": 1}));
        let line = serde_json::to_string(&RecordedClaims::new(&none, &names)).unwrap();
        assert_eq!(line, "{}");
    }

    /// One buffer serves every record: each line is the record alone.
    #[test]
    fn a_reused_buffer_holds_one_record() {
        let mut buf = b"left over from another line".to_vec();
        full().write_json(&mut buf);
        assert_eq!(buf, full().to_json().into_bytes());
        serde_json::from_slice::<Value>(&buf).unwrap();
    }

    #[test]
    fn the_architecture_doc_names_every_field() {
        let doc = include_str!("../../../docs/ARCHITECTURE.md");
        let start = doc.find("**Decision record.**").unwrap();
        let section = &doc[start..start + doc[start..].find("\n\n").unwrap()];
        for f in AuditRecord::FIELDS {
            assert!(
                section.contains(&format!("`{f}`")),
                "docs/ARCHITECTURE.md's decision record paragraph does not name `{f}`"
            );
        }
    }

    #[test]
    fn the_schema_names_every_field_and_requires_the_ones_always_written() {
        let schema = schema();
        let props = schema["properties"].as_object().unwrap();
        let names: Vec<&str> = props.keys().map(String::as_str).collect();
        for f in AuditRecord::FIELDS {
            assert!(names.contains(&f), "{f} not in the schema");
        }
        assert_eq!(props.len(), AuditRecord::FIELDS.len());
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for f in ["v", "ts_ms", "request_id", "decision", "status", "reason"] {
            assert!(required.contains(&f), "{f} not required");
        }
        assert!(!required.contains(&"upstream_status"));
    }

    /// The checked-in schema is the one this type generates (`warden schema --record` rewrites it).
    #[test]
    fn the_checked_in_schema_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs/schema/decision-record.v1.json");
        let text = std::fs::read_to_string(&path).unwrap();
        let checked_in: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            checked_in,
            schema(),
            "stale: run `cargo run -p warden-cli -- schema --record > docs/schema/decision-record.v1.json`"
        );
    }

    #[test]
    fn user_agents_are_cut_at_a_character_boundary() {
        assert_eq!(cut("abc", 2), "ab");
        assert_eq!(cut("aé", 2), "a");
        assert_eq!(cut("short", 256), "short");
    }
}
