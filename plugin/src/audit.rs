//! The decision record: one explainable JSON line per request (who, what, which rule, why), never
//! the token or an API key. The filter logs it as its audit line; `warden replay` and
//! `warden features` print the same type, through the same serializer, with the trace's own fields
//! beside it, so operators tune and retrain on the record they see in production.

use crate::decision::{Decision, Request};
use serde::Serialize;
use std::net::IpAddr;

/// The decision record (one JSON line). Its field names are [`AuditRecord::FIELDS`].
#[derive(Debug, Serialize)]
pub struct AuditRecord<'a> {
    /// Milliseconds since the Unix epoch.
    pub ts_ms: u64,
    /// Request id.
    pub request_id: &'a str,
    /// Method and path (query removed).
    pub method: &'a str,
    /// Path without the query string.
    pub path: &'a str,
    /// Matched route rule.
    pub route: Option<&'a str>,
    /// The client's address as the gateway saw it (Envoy's `source.address`, Kong's `ngx.remote_addr`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
    /// `jwt`, `api_key`, or absent.
    pub credential: Option<&'static str>,
    /// Subject.
    pub subject: Option<&'a str>,
    /// Client id or API key id.
    pub client_id: Option<&'a str>,
    /// Tenant.
    pub tenant: Option<&'a str>,
    /// Provider name.
    pub issuer: Option<&'a str>,
    /// Token id.
    pub jti: Option<&'a str>,
    /// `human`, `service` or `agent`: the party making the call (the current actor when delegated).
    pub kind: Option<&'static str>,
    /// The delegation chain, current actor first (prior actors are informational).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actors: Vec<&'a str>,
    /// `allow`, `tag`, `step_up`, `block` or `deny` (in shadow mode: what would have happened).
    pub decision: &'static str,
    /// Status the client got (in shadow mode: would have got).
    pub status: u16,
    /// Why.
    pub reason: &'static str,
    /// `enforce` or `shadow`.
    pub mode: &'static str,
    /// Whether the verified-token cache answered.
    pub cache_hit: bool,
    /// Engine time, microseconds (measured by the host adapter).
    pub engine_us: u64,
    /// Risk score 0-100, when the request was scored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_score: Option<u8>,
    /// The factors that raised the risk, highest first, with their contributions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub factors: Vec<Factor>,
    /// Whether the token showed a valid step-up (`acr` and a recent `auth_time`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stepped_up: bool,
    /// Set when the circuit breaker decided instead of the score: `error` or `over_budget`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_breaker: Option<&'static str>,
    /// What `risk.on_error` made of a breaker trip: `open` or `closed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_on_error: Option<&'static str>,
    /// Risk stage time, microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_us: Option<u64>,
    /// The MCP endpoint (`mcp.endpoints[].name`) the request went to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_endpoint: Option<&'a str>,
    /// The JSON-RPC method of the (first) MCP call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_method: Option<&'a str>,
    /// The tool, resource URI or prompt the (first) MCP call addresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_name: Option<&'a str>,
    /// `MCP-Protocol-Version`, as the client sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_protocol_version: Option<&'a str>,
}

/// One explanation of a risk score.
#[derive(Debug, Serialize)]
pub struct Factor {
    /// Feature name.
    pub name: &'static str,
    /// How much it raised the risk (model units).
    pub contribution: f32,
}

impl<'a> AuditRecord<'a> {
    /// The record's JSON field names, in the order they are written. Optional fields are left out
    /// of a line when empty; `warden replay` drops trace fields of these names, so that every one of
    /// them in its output is the engine's.
    pub const FIELDS: [&'static str; 30] = [
        "ts_ms",
        "request_id",
        "method",
        "path",
        "route",
        "source_ip",
        "credential",
        "subject",
        "client_id",
        "tenant",
        "issuer",
        "jti",
        "kind",
        "actors",
        "decision",
        "status",
        "reason",
        "mode",
        "cache_hit",
        "engine_us",
        "risk_score",
        "factors",
        "stepped_up",
        "risk_breaker",
        "risk_on_error",
        "risk_us",
        "mcp_endpoint",
        "mcp_method",
        "mcp_name",
        "mcp_protocol_version",
    ];

    /// The record of `decision` for `req`; `ts_ms` and `engine_us` come from the host.
    pub fn new(req: &Request<'a>, d: &'a Decision, ts_ms: u64, engine_us: u64) -> Self {
        let id = d.identity.as_ref();
        let risk = d.risk.as_ref();
        let mcp = d.mcp.as_ref();
        let (mcp_method, mcp_name) = mcp.map_or((None, None), |m| m.first());
        AuditRecord {
            ts_ms,
            request_id: req.request_id,
            method: req.method,
            path: req.path.split('?').next().unwrap_or(""),
            route: d.route.as_deref(),
            source_ip: req.source,
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
            decision: d.verdict.as_str(),
            status: d.status,
            reason: d.reason,
            mode: d.mode.as_str(),
            cache_hit: d.cache_hit,
            engine_us,
            risk_score: risk.and_then(|a| a.score),
            factors: risk
                .map(|a| {
                    a.factors
                        .iter()
                        .map(|&(name, c)| Factor {
                            name,
                            // Four decimals are plenty for a person.
                            contribution: (c * 10_000.0).round() / 10_000.0,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            stepped_up: risk.is_some_and(|a| a.stepped_up),
            risk_breaker: risk.and_then(|a| a.breaker).map(|(b, _)| b.as_str()),
            risk_on_error: risk.and_then(|a| a.breaker).map(|(_, p)| p.as_str()),
            risk_us: risk.map(|a| a.elapsed_us),
            mcp_endpoint: mcp.map(|m| m.name.as_str()),
            mcp_method,
            mcp_name,
            mcp_protocol_version: mcp.and_then(|m| m.protocol_version.as_deref()),
        }
    }

    /// The record as one JSON line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fields_are_the_names_a_full_record_writes_in_order() {
        let full = AuditRecord {
            ts_ms: 1,
            request_id: "r",
            method: "GET",
            path: "/",
            route: Some("root"),
            source_ip: Some(IpAddr::from([127, 0, 0, 1])),
            credential: Some("jwt"),
            subject: Some("alice"),
            client_id: Some("app"),
            tenant: Some("acme"),
            issuer: Some("corp"),
            jti: Some("j"),
            kind: Some("human"),
            actors: vec!["agent"],
            decision: "allow",
            status: 200,
            reason: "ok",
            mode: "enforce",
            cache_hit: false,
            engine_us: 1,
            risk_score: Some(1),
            factors: vec![Factor {
                name: "burst",
                contribution: 0.5,
            }],
            stepped_up: true,
            risk_breaker: Some("error"),
            risk_on_error: Some("open"),
            risk_us: Some(1),
            mcp_endpoint: Some("orders-mcp"),
            mcp_method: Some("tools/call"),
            mcp_name: Some("read_orders"),
            mcp_protocol_version: Some("2026-07-28"),
        };
        let line = full.to_json();
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
    }
}
