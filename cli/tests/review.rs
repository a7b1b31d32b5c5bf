//! `warden report`, `warden entitlements` and `warden suggest` as a user runs them on decision records.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Output};

/// 2026-01-01T00:00:00Z, ms.
const T0: u64 = 1_767_225_600_000;
const DAY: u64 = 86_400_000;

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .output()
        .expect("run warden")
}

fn ok(o: Output) -> (String, String) {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{err}");
    (String::from_utf8(o.stdout).unwrap(), err)
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("warden-review-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    }
}

fn rec(ts: u64, id: &str, sub: &str, kind: &str, route: &str, decision: &str, score: u8) -> Value {
    let (status, reason) = match decision {
        "step_up" => (401, "step_up_required"),
        "rate_limited" => (429, "rate_limited"),
        _ => (200, "ok"),
    };
    let scopes = if kind == "service" {
        json!(["orders", "admin"])
    } else {
        json!(["orders"])
    };
    json!({"v": 1, "ts_ms": ts, "request_id": id, "method": "GET", "path": "/orders",
           "route": route, "subject": sub, "client_id": format!("{sub}-app"), "kind": kind,
           "actors": [], "scopes": scopes, "required_scopes": ["orders"],
           "decision": if decision == "rate_limited" { "deny" } else { decision },
           "status": status, "reason": reason, "mode": "shadow", "engine_us": 3,
           "risk_score": score, "factors": [{"name": "new_country", "contribution": 1.5}],
           "risk_features": {"velocity": (score as f64) / 50.0, "new_country": 1.0},
           "model": "risk-0123456789ab"})
}

/// A week before and a week in the period: alice challenged then stepping up a minute later, a
/// service with an unused admin scope, rate-limit hits; and a party whose name is markup.
fn records(d: &Dir) -> (String, u64) {
    let mut lines = Vec::new();
    for i in 0..200u64 {
        lines.push(rec(
            T0 + i * 3_000_000,
            &format!("p{i}"),
            "alice",
            "human",
            "orders",
            "allow",
            5,
        ));
    }
    let t = T0 + 7 * DAY;
    for i in 0..200u64 {
        lines.push(rec(
            t + i * 3_000_000,
            &format!("a{i}"),
            "alice",
            "human",
            "orders",
            "allow",
            40,
        ));
    }
    lines.push(rec(
        t + 1000,
        "c1",
        "alice",
        "human",
        "orders",
        "step_up",
        85,
    ));
    let mut passed = rec(t + 61_000, "c2", "alice", "human", "orders", "allow", 85);
    passed["stepped_up"] = json!(true);
    lines.push(passed);
    for i in 0..30u64 {
        lines.push(rec(
            t + 5000 + i * 1000,
            &format!("s{i}"),
            "billing",
            "service",
            "orders",
            "allow",
            2,
        ));
    }
    for i in 0..4u64 {
        lines.push(rec(
            t + 9000 + i,
            &format!("r{i}"),
            "billing",
            "service",
            "orders",
            "rate_limited",
            2,
        ));
    }
    lines.push(rec(
        t + 7000,
        "x1",
        "<script>alert(1)</script>",
        "human",
        "orders",
        "step_up",
        90,
    ));
    lines.sort_by_key(|l| l["ts_ms"].as_u64());
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    (d.write("records.jsonl", &text), t + 7 * DAY)
}

#[test]
fn report_is_one_self_contained_html_file() {
    let d = Dir::new("report");
    let (recs, until) = records(&d);
    let labels = d.write(
        "labels.jsonl",
        "{\"request_id\": \"x1\", \"label\": \"fp\"}\n",
    );
    let out = d.0.join("r.html");
    let until = until.to_string();
    let (_, err) = ok(warden(&[
        "report",
        &recs,
        "--since",
        "7d",
        "--until-ms",
        &until,
        "--labels",
        &labels,
        "-o",
        out.to_str().unwrap(),
    ]));
    assert!(
        err.contains("237 records in the period (200 before it), 2 false-positive"),
        "{err}"
    );
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Self-contained: no script, no fetched resource, nothing but the SVG namespace as a URL.
    for banned in ["<script", "<link", "src=", "@import", "url("] {
        assert!(!html.contains(banned), "{banned}");
    }
    let urls = html.matches("http").count();
    assert_eq!(
        urls,
        html.matches("http://www.w3.org/2000/svg").count()
            + html.matches("http://www.w3.org/1999/xlink").count()
    );
    assert!(html.matches("<svg").count() >= 8, "charts");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("stepped up 60 s later") && html.contains("labelled fp"));
    // Drift: the scores and velocity moved from the previous week.
    assert!(html.contains("(risk score)") && html.contains("major"));
    // Entitlements: the service never exercised admin.
    assert!(html.contains("grant only [orders]; drop [admin]"));
}

#[test]
fn entitlements_name_unused_scopes() {
    let d = Dir::new("ent");
    let (recs, until) = records(&d);
    let (out, _) = ok(warden(&[
        "entitlements",
        &recs,
        "--until-ms",
        &until.to_string(),
    ]));
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let svc = lines
        .iter()
        .find(|l| l["party"] == "service:billing")
        .unwrap();
    assert_eq!(svc["granted"], json!(["admin", "orders"]));
    assert_eq!(svc["exercised"], json!(["orders"]));
    assert_eq!(svc["unused_scopes"], json!(["admin"]));
    let alice = lines.iter().find(|l| l["party"] == "human:alice").unwrap();
    assert_eq!(alice["unused_scopes"], json!([]));
}

/// A config with one provider, as `warden check` needs.
fn base(d: &Dir) -> String {
    let c = json!({"providers": [{"name": "corp", "issuer": "https://idp.test", "audiences": ["api"],
        "jwks": {"keys": [{"kty": "oct", "kid": "h1", "alg": "HS256",
                           "k": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}]}}]});
    d.write("base.json", &c.to_string())
}

#[test]
fn suggested_rate_limits_come_from_peaks_and_pass_check() {
    let d = Dir::new("rl");
    let (recs, until) = records(&d);
    let until = until.to_string();
    let (snippet, notes) = ok(warden(&[
        "suggest",
        "rate-limits",
        &recs,
        "--until-ms",
        &until,
    ]));
    let v: Value = serde_json::from_str(&snippet).unwrap();
    let policies = v["rate_limits"]["policies"].as_array().unwrap();
    // billing: 30 requests let through in 30 s (its 4 rate-limited ones do not count): limit 45.
    let client = policies.iter().find(|p| p["key"] == "client").unwrap();
    assert_eq!(
        (client["limit"].as_u64(), client["window_s"].as_u64()),
        (Some(45), Some(60))
    );
    assert!(
        notes.contains("peak 30 (billing-app)") && notes.contains("margin 50 %"),
        "{notes}"
    );
    assert!(
        policies.iter().all(|p| p["key"] != "agent"),
        "no agent in the records"
    );
    let b = base(&d);
    let (whole, _) = ok(warden(&[
        "suggest",
        "rate-limits",
        &recs,
        "--until-ms",
        &until,
        "--margin",
        "1",
        "--config",
        &b,
    ]));
    let merged = d.write("merged.json", &whole);
    let (checked, _) = ok(warden(&["check", &merged]));
    assert!(checked.starts_with("config ok"), "{checked}");
    let v: Value = serde_json::from_str(&whole).unwrap();
    assert!(v["rate_limits"]["policies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["limit"] == 60));
}

const SPEC: &str = r#"
openapi: 3.0.3
info: {title: orders, version: "1"}
security:
  - oauth: [orders.read]
paths:
  /orders/{order-id}:
    get:
      operationId: getOrder
      responses: {"200": {description: ok}}
    delete:
      operationId: deleteOrder
      security:
        - oauth: [orders.write, orders.admin]
      x-warden-sensitivity: critical
      responses: {"204": {description: gone}}
  /orders:
    x-warden-sensitivity: medium
    get:
      responses: {"200": {description: ok}}
    head:
      responses: {"200": {description: ok}}
  /health:
    get:
      security: []
      responses: {"200": {description: ok}}
components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: https://idp.test/token
          scopes: {orders.read: read, orders.write: write, orders.admin: admin}
"#;

#[test]
fn routes_from_openapi_pass_check() {
    let d = Dir::new("oa");
    let spec = d.write("openapi.yaml", SPEC);
    let (snippet, _) = ok(warden(&["suggest", "routes", &spec]));
    let v: Value = serde_json::from_str(&snippet).unwrap();
    let routes = v["routes"].as_array().unwrap();
    let by_name = |n: &str| {
        routes
            .iter()
            .find(|r| r["name"] == n)
            .unwrap_or_else(|| panic!("{n}: {v}"))
    };
    assert_eq!(
        by_name("getOrder"),
        &json!({"name": "getOrder", "methods": ["GET"], "path": "/orders/{order_id}",
                "scopes": ["orders.read"]})
    );
    assert_eq!(
        by_name("deleteOrder")["scopes"],
        json!(["orders.admin", "orders.write"])
    );
    assert_eq!(by_name("deleteOrder")["sensitivity"], "critical");
    let list = by_name("GET,HEAD /orders");
    assert_eq!(
        (list["methods"].clone(), list["sensitivity"].clone()),
        (json!(["GET", "HEAD"]), json!("medium"))
    );
    assert_eq!(
        routes.iter().find(|r| r["path"] == "/health").unwrap()["anonymous"],
        true
    );
    // Merged into a config: `warden check` accepts it.
    let b = base(&d);
    let (whole, _) = ok(warden(&["suggest", "routes", &spec, "--config", &b]));
    let merged = d.write("merged.json", &whole);
    let (checked, _) = ok(warden(&["check", &merged]));
    assert!(checked.contains("4 routes"), "{checked}");
    // A sensitivity the engine does not know is refused, naming where.
    let bad = d.write("bad.yaml", &SPEC.replace("critical", "extreme"));
    let o = warden(&["suggest", "routes", &bad]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("DELETE /orders/{order-id}: x-warden-sensitivity"),
        "{err}"
    );
}
