//! Which decisions raise which alert event, through the real engine on real signed tokens, and what
//! the event says (the fields a revocation feed needs).

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::{claims, config, decide_token_on, es_token, with, NOW};
use serde_json::{json, Value};
use warden::alerts::AlertLine;
use warden::audit::AuditRecord;
use warden::config::alerts::AlertEvent;
use warden::Engine;

fn engine(extra: Value) -> Engine {
    let mut c = config();
    c["alerts"] = json!({"service": {"url": "http://siem/x", "envoy_cluster": "siem"}});
    c["revocation"] = json!({"deny": {"sub": ["mallory"]}});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    Engine::from_json(c.to_string().as_bytes()).unwrap()
}

fn token(sub: &str) -> String {
    es_token(&with(
        claims(),
        json!({"sub": sub, "jti": format!("jti-{sub}")}),
    ))
}

#[test]
fn a_revoked_caller_raises_revoked_naming_what_a_feed_lists() {
    let e = engine(json!({}));
    let d = decide_token_on(&e, &token("mallory"));
    assert_eq!(d.reason, "revoked");
    let event = e.alerts().unwrap().event_of(&d);
    assert_eq!(event, Some(AlertEvent::Revoked));
    let headers = [];
    let req = warden::Request {
        method: "GET",
        path: "/orders/7",
        headers: &headers,
        request_id: "req-1",
        now_s: NOW,
        peer_cert_sha256: None,
        peer_cert_unread: false,
        source_unread: false,
        source: None,
        body: warden::decision::Body::Unread,
    };
    let record = AuditRecord::new(&req, &d, NOW * 1000, 1, e.recorded_claims());
    let line: Value =
        serde_json::from_str(&AlertLine::of_record(event.unwrap(), &record).to_json()).unwrap();
    assert_eq!(line["event"], "revoked");
    assert_eq!(line["subject"], "mallory");
    assert_eq!(line["jti"], "jti-mallory");
    assert_eq!(line["status"], 401);
    // An allowed request raises nothing.
    let ok = decide_token_on(&e, &token("alice"));
    assert_eq!(ok.status, 200);
    assert_eq!(e.alerts().unwrap().event_of(&ok), None);
}

#[test]
fn step_up_is_an_event_unless_unwanted_or_under_the_minimum_score() {
    let route = json!([{"path": "/orders/{id}", "methods": ["GET"], "scopes": ["orders:read"], "step_up": true}]);
    let e = engine(json!({"routes": route, "risk": {}}));
    let d = decide_token_on(&e, &token("alice"));
    assert_eq!(d.reason, "step_up_required");
    assert_eq!(e.alerts().unwrap().event_of(&d), Some(AlertEvent::StepUp));
    let high =
        json!({"service": {"url": "http://siem/x", "envoy_cluster": "siem"}, "min_score": 100});
    let e = engine(json!({"routes": route, "risk": {}, "alerts": high}));
    let d = decide_token_on(&e, &token("alice"));
    assert!(d.risk.as_ref().unwrap().score.unwrap() < 100);
    assert_eq!(e.alerts().unwrap().event_of(&d), None);
    let only_block =
        json!({"service": {"url": "http://siem/x", "envoy_cluster": "siem"}, "events": ["block"]});
    let e = engine(json!({"routes": route, "risk": {}, "alerts": only_block}));
    assert_eq!(
        e.alerts()
            .unwrap()
            .event_of(&decide_token_on(&e, &token("alice"))),
        None
    );
}

#[test]
fn the_block_that_quarantines_a_token_raises_quarantine() {
    let risk = json!({"tag_at": 0, "step_up_at": 0, "block_at": 0});
    let quarantine = json!({"deny": {"sub": ["mallory"]}, "quarantine": {"threshold": 2}});
    let e = engine(json!({"risk": risk, "revocation": quarantine}));
    let alerts = e.alerts().unwrap();
    let store = warden::shared::MemoryStore::default();
    let mut cache = warden::TokenCache::default();
    let tok = token("bob");
    let headers = [("authorization".to_owned(), common::bearer(&tok))];
    let mut decide = || {
        let req = warden::Request {
            method: "GET",
            path: "/orders/7",
            headers: &headers,
            request_id: "r",
            now_s: NOW,
            peer_cert_sha256: None,
            peer_cert_unread: false,
            source_unread: false,
            source: None,
            body: warden::decision::Body::Unread,
        };
        e.decide(
            &req,
            &mut warden::Env {
                cache: &mut cache,
                shared: &store,
                clock_us: &|| 0,
            },
        )
    };
    let first = decide();
    assert_eq!((first.reason, first.quarantined), ("risk_blocked", false));
    assert_eq!(alerts.event_of(&first), Some(AlertEvent::Block));
    let second = decide();
    assert!(second.quarantined, "{second:?}");
    assert_eq!(alerts.event_of(&second), Some(AlertEvent::Quarantine));
    let third = decide();
    assert_eq!(third.reason, "quarantined");
    assert_eq!(alerts.event_of(&third), Some(AlertEvent::Quarantine));
}
