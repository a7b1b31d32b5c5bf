//! `warden replay` and `warden features` as a user runs them: a key from `warden token keygen`, tokens
//! from `warden token mint`, a trace in the offline contract's format (docs/ARCHITECTURE.md), and the
//! decision and feature lines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Output};

/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600;
const ISS: &str = "https://idp.example.com";

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .output()
        .expect("run warden")
}

fn ok(o: Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// An ES256 key from `warden token keygen`: the private JWK at `private`, the JWKS (returned) at `jwks`.
fn keygen(private: &str, jwks: &str) -> Value {
    let args = [
        "token",
        "keygen",
        "--alg",
        "ES256",
        "--kid",
        "k1",
        "--private",
        private,
    ];
    ok(warden(&[&args[..], &["--jwks", jwks]].concat()));
    serde_json::from_slice(&std::fs::read(jwks).unwrap()).unwrap()
}

/// A scratch directory for one test, with a key from `warden token keygen` in it (`k.jwk`; its JWKS
/// returned).
fn scratch(name: &str) -> (PathBuf, Value) {
    let dir = std::env::temp_dir().join(format!("warden-replay-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |f: &str| dir.join(f).to_str().unwrap().to_owned();
    let jwks = keygen(&file("k.jwk"), &file("jwks.json"));
    (dir, jwks)
}

/// `records` decided again from the records alone (`--audit`) on `dir`'s `config.json`.
fn replay_audit(dir: &std::path::Path, records: &str) -> Vec<Value> {
    let file = |f: &str| dir.join(f).to_str().unwrap().to_owned();
    std::fs::write(file("audit.jsonl"), records).unwrap();
    let args = ["replay", "--config", &file("config.json"), "--audit"];
    lines(&ok(warden(&[&args[..], &[&file("audit.jsonl")]].concat())))
}

/// A token of issuer [`ISS`] at [`T0`] from `warden token mint`, signed with the key at `key`.
fn mint(key: &str, claims: &[&str]) -> String {
    let t0 = T0.to_string();
    let args = ["token", "mint", "--key", key, "--iss", ISS, "--now", &t0];
    ok(warden(&[&args[..], claims].concat()))
}

struct Fixture {
    dir: PathBuf,
    config: String,
    trace: String,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A habitual user (20 mornings from Norway), then a thief with her token (Brazil, seconds later, a
/// critical write), then a forged token.
fn fixture(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("warden-replay-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = |f: &str| dir.join(f).to_str().unwrap().to_owned();
    let jwks = keygen(&p("k.jwk"), &p("jwks.json"));
    let config = json!({
        "providers": [{"name": "corp", "issuer": ISS, "audiences": ["api"], "jwks": jwks}],
        "routes": [{"name": "transfer", "methods": ["POST"], "path": "/transfer", "sensitivity": "critical"},
                   {"name": "rest", "prefix": "/"}],
        "risk": {"geo_header_from_edge": true},
    });
    std::fs::write(p("config.json"), config.to_string()).unwrap();
    let token = mint(
        &p("k.jwk"),
        &["--aud", "api", "--sub", "alice", "--expires-in", "3000000"],
    );
    let token = token.trim();
    let mut trace = String::new();
    let mut line = |v: Value| {
        trace.push_str(&v.to_string());
        trace.push('\n');
    };
    let home = json!({"authorization": format!("Bearer {token}"), "user-agent": "app/1", "x-geo-country": "NO"});
    let mut last = 0;
    for day in 0..20u64 {
        for i in 0..10u64 {
            last = (T0 + day * 86_400 + 9 * 3600 + i * 60) * 1000;
            line(
                json!({"ts_ms": last, "method": "GET", "path": format!("/orders/{}", i % 2),
                        "source_ip": "198.51.100.7", "headers": home, "status": 200,
                        "response_bytes": 900, "label": 0, "scenario": "normal"}),
            );
        }
    }
    line(
        json!({"ts_ms": last + 30_000, "method": "POST", "path": "/transfer", "source_ip": "192.0.2.9",
                "headers": {"authorization": format!("Bearer {token}"), "user-agent": "curl/8",
                            "x-geo-country": "BR"},
                "label": 1, "scenario": "stolen_token"}),
    );
    line(
        json!({"ts_ms": last + 31_000, "method": "GET", "path": "/orders/1", "source_ip": "192.0.2.9",
                "headers": {"authorization": format!("Bearer {token}x")}, "label": 1,
                "scenario": "forged"}),
    );
    std::fs::write(p("trace.jsonl"), trace).unwrap();
    Fixture {
        config: p("config.json"),
        trace: p("trace.jsonl"),
        dir,
    }
}

#[test]
fn replay_prints_one_decision_per_request_on_the_trace_clock() {
    let f = fixture("replay");
    let out = ok(warden(&["replay", "--config", &f.config, &f.trace]));
    let d = lines(&out);
    assert_eq!(d.len(), 202);
    assert!(d[..200]
        .iter()
        .all(|l| l["decision"] == "allow" || l["decision"] == "tag"));
    assert!(d.iter().all(|l| l["line"].is_u64() && l["label"].is_u64()));
    let thief = &d[200];
    assert_eq!(thief["decision"], "step_up", "{thief}");
    assert_eq!(thief["status"], 401);
    assert_eq!(thief["scenario"], "stolen_token");
    assert!(thief["risk_score"].as_u64().unwrap() >= 70);
    let factors = thief["factors"].as_array().unwrap();
    assert!(!factors.is_empty() && factors.len() <= 3);
    // The decision record's factors: each a name with its (positive) contribution.
    for f in factors {
        assert!(f["name"].is_string(), "{f}");
        assert!(f["contribution"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(d[201]["decision"], "deny");
    assert_eq!(d[201]["risk_score"], Value::Null);
    // Deterministic: the same trace gives the same lines.
    assert_eq!(
        out,
        ok(warden(&["replay", "--config", &f.config, &f.trace]))
    );
}

#[test]
fn features_have_a_header_and_one_line_per_request() {
    let f = fixture("features");
    let out = lines(&ok(warden(&["features", "--config", &f.config, &f.trace])));
    assert_eq!(out.len(), 203);
    let names: Vec<&str> = out[0]["feature_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(names, warden::risk::features::Feature::NAMES);
    let at = |line: &Value, name: &str| {
        let i = names.iter().position(|n| *n == name).unwrap();
        line["features"][i].as_f64().unwrap()
    };
    assert_eq!(at(&out[1], "first_seen"), 1.0);
    assert_eq!(at(&out[2], "first_seen"), 0.0);
    let thief = &out[201];
    assert_eq!(
        (thief["label"].clone(), thief["scenario"].clone()),
        (json!(1), json!("stolen_token"))
    );
    for name in [
        "new_country",
        "new_client",
        "new_ip_prefix",
        "impossible_travel",
        "write_method",
    ] {
        assert_eq!(at(thief, name), 1.0, "{name}");
    }
    assert_eq!(out[202]["features"], Value::Null);
}

#[test]
fn a_person_who_answers_a_step_up_is_let_through_and_learnt() {
    let f = fixture("step-up");
    let key = f.dir.join("k.jwk").to_str().unwrap().to_owned();
    let plain = mint(
        &key,
        &["--aud", "api", "--sub", "alice", "--expires-in", "3000000"],
    );
    // Alice in Japan an hour after her last request from Norway (impossible travel): she answers
    // the challenge with the token her IdP issues after a second factor (`acr`, `auth_time` now).
    let at = T0 + 19 * 86_400 + 9 * 3600 + 9 * 60 + 3600;
    let mfa = mint(
        &key,
        &[
            "--aud",
            "api",
            "--sub",
            "alice",
            "--expires-in",
            "3000000",
            "--claim",
            "acr=\"mfa\"",
            "--claim",
            &format!("auth_time={at}"),
        ],
    );
    let away = |ts_s: u64, answer: bool| {
        let mut l = json!({"ts_ms": ts_s * 1000, "method": "GET", "path": "/orders/1",
            "source_ip": "203.0.113.50", "status": 200, "response_bytes": 900,
            "headers": {"authorization": format!("Bearer {}", plain.trim()), "user-agent": "app/1",
                        "x-geo-country": "JP"}});
        if answer {
            l["step_up_headers"] = json!({"authorization": format!("Bearer {}", mfa.trim())});
        }
        format!("{l}\n")
    };
    let mut trace = std::fs::read_to_string(&f.trace).unwrap();
    trace.push_str(&away(at, true));
    trace.push_str(&away(at + 60, false));
    std::fs::write(&f.trace, trace).unwrap();
    let d = lines(&ok(warden(&["replay", "--config", &f.config, &f.trace])));
    assert_eq!(d.len(), 205);
    // Lines 203 and 204: the challenge, then the same request again with the fresh token.
    let (challenged, retry, after) = (&d[202], &d[203], &d[204]);
    assert_eq!(challenged["decision"], "step_up", "{challenged}");
    assert_eq!(challenged["line"], 203);
    assert!(challenged.get("step_up_retry").is_none());
    assert_eq!(retry["line"], 203);
    assert_eq!(retry["step_up_retry"], true);
    assert!(
        retry["decision"] == "tag" || retry["decision"] == "allow",
        "{retry}"
    );
    // The credential the client answers with is never printed.
    assert!(d.iter().all(|l| l.get("step_up_headers").is_none()));
    // What went through taught her record: a minute later Japan is where she is.
    assert_eq!(after["line"], 204);
    assert!(
        after["decision"] == "allow" || after["decision"] == "tag",
        "{after}"
    );
    // Without the answer (the thief on line 201, the plain token) there is no retry.
    assert_eq!(d.iter().filter(|l| l["line"] == 201).count(), 1);
}

#[test]
fn a_bad_trace_line_is_named() {
    let f = fixture("bad");
    std::fs::write(
        &f.trace,
        "{\"ts_ms\": 1, \"method\": \"GET\", \"path\": \"/\"}\n{\"method\": \"GET\"}\n",
    )
    .unwrap();
    let o = warden(&["replay", "--config", &f.config, &f.trace]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("trace line 2: `ts_ms`"));
}

/// The records `warden replay` prints are decision records: decided again from the records alone
/// (`--audit`, no token), on the same config, they give the same decisions, scores and factors; on
/// stricter thresholds, the differences are flagged.
#[test]
fn replay_from_records_alone_reproduces_then_tries_a_change() {
    let f = fixture("audit");
    let records = ok(warden(&["replay", "--config", &f.config, &f.trace]));
    let audit = std::path::Path::new(&f.config).with_file_name("audit.jsonl");
    std::fs::write(&audit, &records).unwrap();
    let audit = audit.to_str().unwrap();
    let again = lines(&ok(warden(&[
        "replay", "--config", &f.config, "--audit", audit,
    ])));
    let before = lines(&records);
    assert_eq!(again.len(), before.len());
    for (was, now) in before.iter().zip(&again) {
        for field in [
            "request_id",
            "decision",
            "status",
            "reason",
            "risk_score",
            "factors",
        ] {
            assert_eq!(was[field], now[field], "{field}: {was} vs {now}");
        }
        assert_eq!(now["changed"], false);
    }
    // The forged token had no caller to decide again; every other line was.
    let redecided: Vec<bool> = again.iter().map(|l| l["redecided"] == true).collect();
    assert_eq!(redecided.iter().filter(|r| !**r).count(), 1);
    // Another policy: reading orders needs a scope the token lacks.
    let mut config: Value = serde_json::from_slice(&std::fs::read(&f.config).unwrap()).unwrap();
    config["routes"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"name": "orders", "methods": ["GET"], "prefix": "/orders", "scopes": ["orders:read"]}));
    let stricter = std::path::Path::new(&f.config).with_file_name("stricter.json");
    std::fs::write(&stricter, config.to_string()).unwrap();
    let changed = lines(&ok(warden(&[
        "replay",
        "--config",
        stricter.to_str().unwrap(),
        "--audit",
        audit,
    ])));
    let flagged: Vec<&Value> = changed.iter().filter(|l| l["changed"] == true).collect();
    let reads: Vec<&&Value> = flagged.iter().filter(|l| l["method"] == "GET").collect();
    assert_eq!(reads.len(), 200, "every read");
    assert!(reads
        .iter()
        .all(|l| l["was"]["status"] == 200 && l["reason"] == "insufficient_scope"));
}

/// MCP calls replay from their recorded `body` (a JSON value or a string): the same rules as the
/// filter, and the record names the call.
#[test]
fn replay_reads_mcp_bodies() {
    let (dir, jwks) = scratch("mcp");
    let p = |f: &str| dir.join(f).to_str().unwrap().to_owned();
    let resource = "https://mcp.example.com/mcp";
    let config = json!({
        "providers": [{"name": "corp", "issuer": ISS, "audiences": [resource], "jwks": jwks}],
        "mcp": {"endpoints": [{"name": "orders-mcp", "path": "/mcp", "resource": resource,
            "authorization_servers": [ISS],
            "rules": [{"method": "tools/call", "tool": "read_orders", "scopes": ["orders:read"]}]}]},
    });
    std::fs::write(p("config.json"), config.to_string()).unwrap();
    let token = mint(
        &p("k.jwk"),
        &[
            "--aud",
            resource,
            "--sub",
            "agent-7",
            "--scope",
            "orders:read",
            "--expires-in",
            "3600",
        ],
    );
    let headers = json!({"authorization": format!("Bearer {}", token.trim())});
    let call = |name: &str| json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name}});
    let trace = [
        json!({"ts_ms": T0 * 1000, "method": "POST", "path": "/mcp", "headers": headers, "body": call("read_orders")}),
        json!({"ts_ms": T0 * 1000, "method": "POST", "path": "/mcp", "headers": headers,
               "body": call("delete_customer").to_string()}),
        json!({"ts_ms": T0 * 1000, "method": "POST", "path": "/mcp", "headers": headers}),
    ]
    .iter()
    .map(|v| v.to_string() + "\n")
    .collect::<String>();
    std::fs::write(p("trace.jsonl"), trace).unwrap();
    let out = lines(&ok(warden(&[
        "replay",
        "--config",
        &p("config.json"),
        &p("trace.jsonl"),
    ])));
    let got: Vec<(u64, &str, Option<&str>)> = out
        .iter()
        .map(|r| {
            (
                r["status"].as_u64().unwrap(),
                r["reason"].as_str().unwrap(),
                r["mcp_name"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (200, "ok", Some("read_orders")),
            (403, "mcp_denied", Some("delete_customer")),
            (400, "mcp_parse_error", None),
        ]
    );
    // The records alone (no token, no body) decide the same: the call is rebuilt from
    // `mcp_method`/`mcp_name`, the audience binding reads the recorded `audiences`.
    let records: String = out.iter().map(|r| r.to_string() + "\n").collect();
    let again = replay_audit(&dir, &records);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(again.len(), 3);
    for (was, now) in out.iter().zip(&again) {
        assert_eq!(
            (&was["status"], &was["reason"]),
            (&now["status"], &now["reason"]),
            "{now}"
        );
        assert_eq!(now["changed"], false, "{now}");
    }
    assert_eq!(again[0]["redecided"], true);
    assert_eq!(again[1]["redecided"], true);
}

/// The agent guardrails decide again from the record alone: a support role passes owner isolation,
/// another user's data is refused, `amr` shows a step-up, a delegated call's aged login is
/// challenged and a fresh approval passes. The record carries `amr` and the roles claim for that.
#[test]
fn guardrail_decisions_replay_from_records_alone() {
    let (dir, jwks) = scratch("guard");
    let p = |f: &str| dir.join(f).to_str().unwrap().to_owned();
    let config = json!({
        "providers": [{"name": "corp", "issuer": ISS, "audiences": ["api"], "jwks": jwks}],
        "routes": [
            {"name": "orders", "path": "/users/{user}/orders",
             "owner": {"path_variable": "user", "roles": ["support"], "roles_claim": "groups"}},
            {"name": "profile", "path": "/users/{user}/profile", "presence": {"auth_within_s": 300}},
            {"name": "payout", "path": "/users/{user}/payouts",
             "approval": {"acr_values": ["urn:warden:acr:approved"], "max_age_s": 120}},
            {"name": "secure", "path": "/secure", "step_up": true}],
        "delegation": {"actors": [{"sub": "agent-7", "subjects": ["*"], "scopes": []}]},
        "risk": {"amr_any": ["mfa"], "on_error": "open", "budget_us": 1000000},
    });
    std::fs::write(p("config.json"), config.to_string()).unwrap();
    let at = |sub: &str, claims: &[&str]| {
        let base = ["--aud", "api", "--sub", sub, "--expires-in", "3600"];
        mint(&p("k.jwk"), &[&base[..], claims].concat())
            .trim()
            .to_owned()
    };
    let auth = |age: u64| format!("auth_time={}", T0 - age);
    let act = r#"act={"sub":"agent-7"}"#;
    let approved = r#"acr="urn:warden:acr:approved""#;
    let cases = [
        (
            "/users/bob/orders",
            at("sam", &["--claim", r#"groups=["support"]"#]),
            200,
            "ok",
        ),
        ("/users/alice/orders", at("bob", &[]), 403, "owner_mismatch"),
        (
            "/secure",
            at(
                "alice",
                &["--claim", r#"amr=["pwd","mfa"]"#, "--claim", &auth(10)],
            ),
            200,
            "ok",
        ),
        (
            "/secure",
            at(
                "alice",
                &["--claim", r#"amr=["pwd"]"#, "--claim", &auth(10)],
            ),
            401,
            "step_up_required",
        ),
        (
            "/users/alice/profile",
            at("alice", &["--claim", act, "--claim", &auth(900)]),
            401,
            "user_not_present",
        ),
        (
            "/users/alice/profile",
            at("alice", &["--claim", act, "--claim", &auth(5)]),
            200,
            "ok",
        ),
        (
            "/users/alice/payouts",
            at(
                "alice",
                &["--claim", act, "--claim", approved, "--claim", &auth(5)],
            ),
            200,
            "ok",
        ),
        (
            "/users/alice/payouts",
            at("alice", &["--claim", act, "--claim", &auth(5)]),
            401,
            "approval_required",
        ),
    ];
    let mut trace = String::new();
    for (i, (path, token, _, _)) in cases.iter().enumerate() {
        let line = json!({"ts_ms": T0 * 1000 + i as u64, "method": "GET", "path": path,
                          "source_ip": "198.51.100.7", "headers": {"authorization": format!("Bearer {token}")}});
        trace.push_str(&format!("{line}\n"));
    }
    std::fs::write(p("trace.jsonl"), trace).unwrap();
    let records = ok(warden(&[
        "replay",
        "--config",
        &p("config.json"),
        &p("trace.jsonl"),
    ]));
    for (line, (path, _, status, reason)) in lines(&records).iter().zip(&cases) {
        assert_eq!(
            (&line["status"], &line["reason"]),
            (&json!(status), &json!(reason)),
            "{path}: {line}"
        );
    }
    let again = replay_audit(&dir, &records);
    assert_eq!(again.len(), cases.len());
    for (now, (path, _, status, reason)) in again.iter().zip(&cases) {
        assert_eq!(
            (&now["status"], &now["reason"]),
            (&json!(status), &json!(reason)),
            "{path}: {now}"
        );
        assert_eq!(now["changed"], false, "{path}: {now}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--model`: what-if with another ONNX file, checked as `risk.model` is at load.
#[test]
fn replay_with_a_model_file() {
    let f = fixture("model");
    let embedded = concat!(env!("CARGO_MANIFEST_DIR"), "/../model/risk.onnx");
    let base = ok(warden(&["replay", "--config", &f.config, &f.trace]));
    let with = ok(warden(&[
        "replay", "--config", &f.config, "--model", embedded, &f.trace,
    ]));
    // The embedded model as a file: the same decisions, the same model id in every scored record.
    assert_eq!(base, with);
    let scored: Vec<Value> = lines(&with)
        .into_iter()
        .filter(|l| l["risk_score"].is_u64())
        .collect();
    assert!(scored.len() > 200);
    assert!(scored
        .iter()
        .all(|l| l["model"].as_str().unwrap().starts_with("risk-")
            && l["model"] == scored[0]["model"]));
    // Not a model: refused naming the field, nothing replayed.
    let o = warden(&[
        "replay", "--config", &f.config, "--model", &f.trace, &f.trace,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("risk.model"), "{err}");
}
