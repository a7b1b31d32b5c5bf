//! The decision record as an OCSF API Activity event (class 6003, category 6 "Application
//! Activity"), for SIEMs that normalise on OCSF: `warden ocsf AUDIT.jsonl`. The mapping is in
//! README.md ("Decision record"); what OCSF has no attribute for goes to `unmapped`.

use serde_json::{json, Map, Value};

/// OCSF schema version the mapping follows.
pub const OCSF_VERSION: &str = "1.3.0";
/// API Activity.
pub const CLASS_UID: u64 = 6003;
/// Application Activity.
pub const CATEGORY_UID: u64 = 6;

/// Record fields the OCSF event carries in its own attributes; every other field goes to `unmapped`.
const MAPPED: [&str; 14] = [
    "v",
    "ts_ms",
    "request_id",
    "method",
    "path",
    "source_ip",
    "user_agent",
    "subject",
    "client_id",
    "tenant",
    "issuer",
    "kind",
    "status",
    "decision",
];

/// OCSF `activity_id` of an HTTP method: Create 1, Read 2, Update 3, Delete 4, Other 99.
pub fn activity_id(method: &str) -> u64 {
    match method.to_ascii_uppercase().as_str() {
        "POST" => 1,
        "GET" | "HEAD" => 2,
        "PUT" | "PATCH" => 3,
        "DELETE" => 4,
        _ => 99,
    }
}

/// OCSF `severity_id` of a verdict: Informational 1 (allow), Low 2 (tag), Medium 3 (step-up, deny),
/// High 4 (block).
fn severity_id(decision: &str) -> u64 {
    match decision {
        "allow" => 1,
        "tag" => 2,
        "block" => 4,
        _ => 3,
    }
}

/// The OCSF API Activity event of one decision record (a parsed record line).
pub fn event(record: &Value) -> Value {
    let s = |k: &str| record.get(k).cloned().unwrap_or(Value::Null);
    let method = record.get("method").and_then(Value::as_str).unwrap_or("");
    let decision = record.get("decision").and_then(Value::as_str).unwrap_or("");
    let allowed = matches!(decision, "allow" | "tag");
    let activity = activity_id(method);
    let mut unmapped = Map::new();
    if let Some(obj) = record.as_object() {
        for (k, v) in obj {
            if !MAPPED.contains(&k.as_str()) {
                unmapped.insert(k.clone(), v.clone());
            }
        }
    }
    unmapped.insert("decision".into(), s("decision"));
    json!({
        "class_uid": CLASS_UID,
        "category_uid": CATEGORY_UID,
        "activity_id": activity,
        "type_uid": CLASS_UID * 100 + activity,
        "time": s("ts_ms"),
        "severity_id": severity_id(decision),
        "status_id": if allowed { 1 } else { 2 },
        "status": if allowed { "Success" } else { "Failure" },
        "status_code": s("status").as_u64().map(|c| c.to_string()),
        "status_detail": s("reason"),
        "action_id": if allowed { 1 } else { 2 },
        "disposition_id": if allowed { 1 } else { 2 },
        "metadata": {
            "version": OCSF_VERSION,
            "uid": s("request_id"),
            "product": {"name": "Warden", "vendor_name": "Warden"},
            "profiles": ["security_control"],
            "log_name": format!("warden.decision.v{}", s("v")),
        },
        "actor": {
            "user": {
                "uid": s("subject"),
                "type": s("kind"),
                "org": {"uid": s("tenant")},
            },
            "app_uid": s("client_id"),
            "idp": {"name": s("issuer")},
        },
        "api": {
            "operation": format!("{method} {}", record.get("route").and_then(Value::as_str).unwrap_or("")).trim().to_owned(),
            "request": {"uid": s("request_id")},
            "response": {"code": s("status")},
        },
        "http_request": {
            "http_method": method,
            "url": {"path": s("path")},
            "user_agent": s("user_agent"),
            "uid": s("request_id"),
        },
        "http_response": {"code": s("upstream_status").as_u64().or(s("status").as_u64())},
        "src_endpoint": {"ip": s("source_ip")},
        "unmapped": unmapped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_a_failed_api_activity_with_warden_facts_unmapped() {
        let rec = json!({"v": 1, "ts_ms": 5, "request_id": "r", "method": "DELETE", "path": "/x",
            "route": "admin", "source_ip": "203.0.113.7", "subject": "bob", "decision": "block",
            "status": 403, "reason": "risk_blocked", "risk_score": 91});
        let e = event(&rec);
        assert_eq!(e["class_uid"], 6003);
        assert_eq!(e["activity_id"], 4);
        assert_eq!(e["type_uid"], 600304);
        assert_eq!(e["status_id"], 2);
        assert_eq!(e["severity_id"], 4);
        assert_eq!(e["status_detail"], "risk_blocked");
        assert_eq!(e["actor"]["user"]["uid"], "bob");
        assert_eq!(e["api"]["operation"], "DELETE admin");
        assert_eq!(e["src_endpoint"]["ip"], "203.0.113.7");
        assert_eq!(e["unmapped"]["risk_score"], 91);
        assert_eq!(e["unmapped"]["decision"], "block");
        assert!(e["unmapped"].get("subject").is_none());
        let ok = event(&json!({"method": "GET", "decision": "allow", "status": 200}));
        assert_eq!(
            (ok["activity_id"].as_u64(), ok["status_id"].as_u64()),
            (Some(2), Some(1))
        );
    }
}
