//! The risk stage through the whole engine: real signed tokens, histories built request by request in
//! an in-memory store with a host's cas rule, and the decisions the thresholds, routes and modes give.
//!
//! No test depends on a particular model's scores: thresholds are set so that the outcome is decided by
//! histories any sensible model scores low (a habitual user at home) or high (a stolen token replayed
//! from another continent, a new client and network, seconds later, on a critical route).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use jwt_simple::prelude::*;
use serde_json::{json, Value};
use std::cell::Cell;
use warden::risk::features::{self, Feature};
use warden::risk::RiskVerdict;
use warden::shared::{CasRule, MemoryStore};
use warden::{Decision, Engine, Env, Request, TokenCache, Verdict};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const ISS: &str = "https://idp.test";
const AUD: &str = "api";
/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600;
const DAY: u64 = 86_400;

fn b64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn config(mut risk: Value, extra_routes: Value) -> Value {
    // These requests come from behind an edge that owns the country header.
    if let Some(r) = risk.as_object_mut() {
        r.entry("geo_header_from_edge").or_insert(json!(true));
    }
    let mut routes = vec![
        json!({"name": "transfer", "methods": ["POST"], "path": "/transfer", "sensitivity": "critical"}),
        json!({"name": "admin", "prefix": "/admin", "scopes": ["admin"]}),
        json!({"name": "orders", "prefix": "/orders", "sensitivity": "low"}),
    ];
    routes.extend(extra_routes.as_array().cloned().unwrap_or_default());
    json!({
        "providers": [{"name": "corp", "issuer": ISS, "audiences": [AUD],
                       "jwks": {"keys": [{"kty": "oct", "kid": "h1", "alg": "HS256", "k": b64(SECRET)}]}}],
        "routes": routes,
        "risk": risk,
    })
}

fn engine(c: &Value) -> Engine {
    Engine::from_json(c.to_string().as_bytes()).unwrap()
}

/// A token for `sub` issued at `iat`, valid for 60 days, with extra claims.
fn token(sub: &str, iat: u64, extra: Value) -> String {
    let custom: serde_json::Map<String, Value> = extra.as_object().cloned().unwrap_or_default();
    let mut claims = Claims::with_custom_claims(custom, Duration::from_secs(60 * DAY))
        .with_issuer(ISS)
        .with_audience(AUD)
        .with_subject(sub);
    claims.issued_at = Some(UnixTimeStamp::from_secs(iat));
    claims.expires_at = Some(UnixTimeStamp::from_secs(iat + 60 * DAY));
    claims.invalid_before = None;
    HS256Key::from_bytes(SECRET)
        .with_key_id("h1")
        .authenticate(claims)
        .unwrap()
}

/// One request as the gateway sees it.
struct Call<'a> {
    method: &'a str,
    path: &'a str,
    token: &'a str,
    now_s: u64,
    ip: &'a str,
    country: &'a str,
    agent: &'a str,
}

/// The engine, its state and its clock, as one worker holds them.
struct Gateway {
    engine: Engine,
    store: MemoryStore,
    cache: TokenCache,
    /// Microseconds each reading of the clock advances.
    tick_us: u64,
    clock: Cell<u64>,
    /// What the upstream answers a forwarded request.
    upstream_status: u16,
}

impl Gateway {
    fn new(c: &Value) -> Gateway {
        Gateway::with_rule(c, CasRule::Envoy)
    }

    fn with_rule(c: &Value, rule: CasRule) -> Gateway {
        Gateway {
            engine: engine(c),
            store: MemoryStore::new(rule),
            cache: TokenCache::default(),
            tick_us: 1,
            clock: Cell::new(0),
            upstream_status: 200,
        }
    }

    fn send(&mut self, call: &Call<'_>) -> Decision {
        self.send_with(call, &[])
    }

    fn send_with(&mut self, call: &Call<'_>, more: &[(&str, &str)]) -> Decision {
        let mut headers = vec![
            ("authorization".to_owned(), format!("Bearer {}", call.token)),
            ("user-agent".to_owned(), call.agent.to_owned()),
            ("x-geo-country".to_owned(), call.country.to_owned()),
        ];
        headers.extend(more.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())));
        let req = Request {
            method: call.method,
            path: call.path,
            headers: &headers,
            request_id: "r",
            now_s: call.now_s,
            source: call.ip.parse().ok(),
            body: Default::default(),
            peer_cert_sha256: None,
            peer_cert_unread: false,
            source_unread: false,
        };
        let tick = self.tick_us;
        let clock = &self.clock;
        let read = || {
            clock.set(clock.get() + tick);
            clock.get()
        };
        let d = self.engine.decide(
            &req,
            &mut Env {
                cache: &mut self.cache,
                shared: &self.store,
                clock_us: &read,
            },
        );
        if d.reply.is_none() {
            self.engine
                .observe_response(&d, self.upstream_status, 1200, call.now_s, &self.store);
        }
        d
    }

    /// 20 working days of a habitual user: 10 reads a morning from Norway, one network, one app.
    fn habitual(&mut self, sub: &str) -> String {
        let tok = token(sub, T0, json!({}));
        for day in 0..20 {
            for i in 0..10 {
                let d = self.send(&Call {
                    method: "GET",
                    path: &format!("/orders/{}", i % 3),
                    token: &tok,
                    now_s: T0 + day * DAY + 9 * 3600 + i * 90,
                    ip: "198.51.100.7",
                    country: "NO",
                    agent: "bank-app/4.2",
                });
                assert!(d.reply.is_none(), "history request refused: {:?}", d.reason);
            }
        }
        tok
    }
}

/// The last history request was at day 19, 09:13:30.
const LAST: u64 = T0 + 19 * DAY + 9 * 3600 + 9 * 90;

fn usual(tok: &str) -> Call<'_> {
    Call {
        method: "GET",
        path: "/orders/1",
        token: tok,
        now_s: LAST + 120,
        ip: "198.51.100.7",
        country: "NO",
        agent: "bank-app/4.2",
    }
}

/// The stolen token: Brazil 30 seconds after Norway, curl, another network, a critical write.
fn stolen(tok: &str) -> Call<'_> {
    Call {
        method: "POST",
        path: "/transfer",
        token: tok,
        now_s: LAST + 30,
        ip: "192.0.2.99",
        country: "BR",
        agent: "curl/8.5",
    }
}

fn header<'a>(d: &'a Decision, name: &str) -> Option<&'a str> {
    d.upstream_headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| &**v)
}

fn score(d: &Decision) -> u8 {
    d.risk.as_ref().unwrap().score.unwrap()
}

fn feature(d: &Decision, name: &str) -> f32 {
    let x = d.risk.as_ref().unwrap().features;
    features::get(&x, name).unwrap()
}

#[test]
fn stolen_token_is_challenged_and_the_usual_request_is_not() {
    let mut g = Gateway::new(&config(json!({}), json!([])));
    let tok = g.habitual("alice");

    let d = g.send(&stolen(&tok));
    for f in [
        "new_country",
        "new_client",
        "new_ip_prefix",
        "impossible_travel",
    ] {
        assert_eq!(feature(&d, f), 1.0, "{f}");
    }
    assert_eq!(d.verdict, Verdict::StepUp, "score {}", score(&d));
    assert!(score(&d) >= 70);
    let reply = d.reply.as_ref().unwrap();
    assert_eq!(reply.status, 401);
    let challenge = &reply
        .headers
        .iter()
        .find(|(n, _)| n == "www-authenticate")
        .unwrap()
        .1;
    assert!(
        challenge
            .starts_with(r#"Bearer error="insufficient_user_authentication", error_description=""#),
        "{challenge}"
    );
    assert!(
        challenge.ends_with(r#"acr_values="mfa", max_age=300"#),
        "{challenge}"
    );
    let factors = &d.risk.as_ref().unwrap().factors;
    assert!(!factors.is_empty() && factors.len() <= 3);
    assert!(factors.windows(2).all(|w| w[0].1 >= w[1].1), "{factors:?}");
    assert!(factors
        .iter()
        .all(|(n, c)| *c > 0.0 && Feature::NAMES.contains(n)));

    let d = g.send(&usual(&tok));
    assert!(
        matches!(d.verdict, Verdict::Allow | Verdict::Tag),
        "{:?} {}",
        d.verdict,
        score(&d)
    );
    assert!(score(&d) < 70);
    assert!(d.reply.is_none());
    assert_eq!(
        header(&d, "x-auth-risk-score"),
        Some(score(&d).to_string().as_str())
    );
}

#[test]
fn challenged_requests_do_not_teach_the_history() {
    let mut g = Gateway::new(&config(json!({}), json!([])));
    let tok = g.habitual("alice");
    // The attacker retries ten times: Brazil, curl and his network never become "known".
    for i in 0..10 {
        let mut call = stolen(&tok);
        call.now_s += i * 600;
        let d = g.send(&call);
        assert_eq!(d.verdict, Verdict::StepUp, "retry {i}");
        assert_eq!(feature(&d, "new_country"), 1.0);
        assert_eq!(feature(&d, "new_client"), 1.0);
    }
}

#[test]
fn a_stepped_up_token_passes_unless_its_authentication_is_too_old() {
    let mut g = Gateway::new(&config(json!({}), json!([])));
    let tok = g.habitual("alice");
    let call = stolen(&tok);
    // Challenged: the step-up is too old, or not the required one.
    let stale = token(
        "alice",
        call.now_s - 10,
        json!({"acr": "mfa", "auth_time": call.now_s - 301}),
    );
    let d = g.send(&Call {
        token: &stale,
        ..stolen(&tok)
    });
    assert_eq!(d.verdict, Verdict::StepUp);
    assert!(!d.risk.as_ref().unwrap().stepped_up);
    let weak = token(
        "alice",
        call.now_s - 10,
        json!({"acr": "pwd", "auth_time": call.now_s}),
    );
    let d = g.send(&Call {
        token: &weak,
        now_s: call.now_s + 1,
        ..stolen(&tok)
    });
    assert_eq!(d.verdict, Verdict::StepUp);

    let fresh = token(
        "alice",
        call.now_s - 10,
        json!({"acr": "mfa", "auth_time": call.now_s - 20}),
    );
    let d = g.send(&Call {
        token: &fresh,
        now_s: call.now_s + 2,
        ..stolen(&tok)
    });
    assert!(d.reply.is_none(), "{:?}", d.reason);
    assert!(d.risk.as_ref().unwrap().stepped_up);
    assert!(matches!(d.verdict, Verdict::Tag | Verdict::Allow));
    assert!(header(&d, "x-auth-risk-score").is_some());
    // The caller proved himself from there: that country is his now.
    let d = g.send(&Call {
        now_s: call.now_s + 3,
        ..stolen(&tok)
    });
    assert_eq!(feature(&d, "new_country"), 0.0);
}

#[test]
fn a_route_can_demand_step_up_whatever_the_score() {
    let c = config(
        json!({"acr_values": ["urn:acr:hw", "mfa"], "max_age_s": 60}),
        json!([{"name": "keys", "methods": ["POST"], "path": "/keys", "step_up": true}]),
    );
    let mut g = Gateway::new(&c);
    let tok = g.habitual("alice");
    let call = Call {
        method: "POST",
        path: "/keys",
        ..usual(&tok)
    };
    let d = g.send(&call);
    assert_eq!(d.verdict, Verdict::StepUp);
    let challenge = &d.reply.as_ref().unwrap().headers[0].1;
    assert!(
        challenge.contains(r#"acr_values="urn:acr:hw mfa", max_age=60"#),
        "{challenge}"
    );
    let up = token(
        "alice",
        call.now_s,
        json!({"acr": "urn:acr:hw", "auth_time": call.now_s - 5}),
    );
    let d = g.send(&Call { token: &up, ..call });
    assert!(d.reply.is_none());
    assert!(matches!(d.verdict, Verdict::Allow | Verdict::Tag));
}

#[test]
fn thresholds_decide_tag_and_block() {
    // Everything scored is tagged: the factors go upstream.
    let mut g = Gateway::new(&config(json!({"tag_at": 0, "step_up_at": 100}), json!([])));
    let tok = g.habitual("alice");
    // The stolen request can score 100 (= the highest `step_up_at`): show a step-up, so it is tagged.
    let call = stolen(&tok);
    let up = token(
        "alice",
        call.now_s,
        json!({"acr": "mfa", "auth_time": call.now_s - 5}),
    );
    let d = g.send(&Call { token: &up, ..call });
    assert_eq!(d.verdict, Verdict::Tag, "score {}", score(&d));
    assert!(d.reply.is_none());
    let names = header(&d, "x-auth-risk-factors").unwrap();
    let first = d.risk.as_ref().unwrap().factors[0].0;
    assert_eq!(names.split(',').next(), Some(first));

    // block_at at the step-up threshold: the stolen token is refused outright, without a challenge.
    let mut g = Gateway::new(&config(
        json!({"step_up_at": 70, "block_at": 70}),
        json!([]),
    ));
    let tok = g.habitual("alice");
    let d = g.send(&stolen(&tok));
    assert_eq!(d.verdict, Verdict::Block);
    let reply = d.reply.as_ref().unwrap();
    assert_eq!(reply.status, 403);
    assert!(reply.headers.iter().all(|(n, _)| n != "www-authenticate"));
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["error"], "access_denied");
}

#[test]
fn shadow_scores_and_tags_but_never_refuses_for_risk() {
    for c in [config(json!({"mode": "shadow"}), json!([])), {
        let mut c = config(json!({}), json!([]));
        c["mode"] = json!("shadow");
        c
    }] {
        let mut g = Gateway::new(&c);
        let tok = g.habitual("alice");
        let d = g.send(&stolen(&tok));
        assert_eq!(d.verdict, Verdict::StepUp, "the would-be decision");
        assert_eq!(d.status, 401);
        assert!(d.reply.is_none(), "forwarded");
        assert_eq!(d.mode.as_str(), "shadow");
        assert!(header(&d, "x-auth-risk-score").is_some());
        assert!(header(&d, "x-auth-risk-factors").is_some());
        assert_eq!(header(&d, "x-auth-subject"), Some("alice"));
    }
}

#[test]
fn route_mode_overrides_for_a_phased_rollout() {
    // Shadow everywhere, enforced on /transfer only.
    let mut c = config(json!({"mode": "shadow"}), json!([]));
    c["routes"][0]["mode"] = json!("enforce");
    c["routes"][2]["mode"] = json!("shadow");
    let mut g = Gateway::new(&c);
    let tok = g.habitual("alice");
    let d = g.send(&stolen(&tok));
    assert_eq!((d.verdict, d.reply.is_some()), (Verdict::StepUp, true));
    // The same thief reading orders: shadowed.
    let d = g.send(&Call {
        method: "GET",
        path: "/orders/9",
        now_s: LAST + 31,
        ..stolen(&tok)
    });
    assert!(d.reply.is_none());
    assert_eq!(d.mode.as_str(), "shadow");
}

/// A score computed over budget is used (the wall clock counts descheduling); `open_after` overruns
/// in a row open the breaker: for its cool-down requests are not scored and `on_error` decides; then a
/// half-open probe scored in time closes it.
#[test]
fn circuit_breaker_uses_late_scores_and_opens_on_repeated_overruns() {
    for (policy, refused) in [("closed", true), ("open", false)] {
        let mut g = Gateway::new(&config(
            json!({"budget_us": 50, "on_error": policy,
                   "breaker": {"open_after": 3, "cool_down_s": 30}}),
            json!([]),
        ));
        let tok = token("alice", T0, json!({}));
        g.tick_us = 1000; // every clock reading is a millisecond later: always over budget
        let at = |s: u64| Call {
            now_s: T0 + s,
            ..usual(&tok)
        };
        for i in 0..3 {
            let d = g.send(&at(10 + i));
            let a = d.risk.as_ref().unwrap();
            assert!(a.over_budget && a.score.is_some() && a.breaker.is_none());
            assert!(d.reply.is_none(), "a computed score is used");
            assert!(header(&d, "x-auth-risk-score").is_some());
            let opened = a.breaker_event.map(|t| t.as_str());
            assert_eq!(opened, (i == 2).then_some("opened"), "request {i}");
        }
        // Open: not scored, on_error decides.
        let d = g.send(&at(20));
        let a = d.risk.as_ref().unwrap();
        assert_eq!(a.breaker.map(|(b, _)| b.as_str()), Some("open"));
        assert_eq!(a.score, None);
        assert_eq!(d.reply.is_some(), refused, "{policy}");
        if refused {
            assert_eq!(d.status, 503);
        } else {
            assert!(header(&d, "x-auth-risk-score").is_none(), "unscored");
        }
        // After the cool-down a probe within budget closes it.
        g.tick_us = 1;
        let d = g.send(&at(12 + 30));
        let a = d.risk.as_ref().unwrap();
        assert!(a.score.is_some() && a.breaker.is_none());
        assert_eq!(a.breaker_event.map(|t| t.as_str()), Some("closed"));
        assert!(d.reply.is_none());
    }
}

/// A store that fails every read while `down` is set.
struct Flaky {
    inner: MemoryStore,
    down: Cell<bool>,
}

impl warden::shared::SharedData for Flaky {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), warden::shared::SharedError> {
        if self.down.get() {
            return Err(warden::shared::SharedError::Host("down".into()));
        }
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), warden::shared::SharedError> {
        self.inner.set(key, value, cas)
    }
}

/// Scoring errors (the state cannot be read): no score, `on_error` decides at once, and repeated
/// errors open the breaker.
#[test]
fn scoring_errors_let_on_error_decide_and_open_the_breaker() {
    let engine = engine(&config(
        json!({"breaker": {"open_after": 2, "cool_down_s": 10}}),
        json!([]),
    ));
    let store = Flaky {
        inner: MemoryStore::new(CasRule::Envoy),
        down: Cell::new(true),
    };
    let tok = token("alice", T0, json!({}));
    let headers = vec![("authorization".to_owned(), format!("Bearer {tok}"))];
    let mut cache = TokenCache::default();
    let mut send = |now_s: u64| {
        let req = Request {
            method: "GET",
            path: "/orders/1",
            headers: &headers,
            request_id: "r",
            now_s,
            source: "198.51.100.7".parse().ok(),
            body: Default::default(),
            peer_cert_sha256: None,
            peer_cert_unread: false,
            source_unread: false,
        };
        let clock = || 0;
        let d = engine.decide(
            &req,
            &mut Env {
                cache: &mut cache,
                shared: &store,
                clock_us: &clock,
            },
        );
        let a = d.risk.clone().unwrap();
        (
            d.status,
            a.breaker.map(|(b, _)| b.as_str()),
            a.breaker_event,
        )
    };
    let (status, breaker, event) = send(T0);
    assert_eq!((status, breaker, event), (503, Some("error"), None));
    let (status, breaker, event) = send(T0 + 1);
    assert_eq!((status, breaker), (503, Some("error")));
    assert_eq!(event.map(|t| t.as_str()), Some("opened"));
    store.down.set(false);
    assert_eq!(send(T0 + 5).1, Some("open"), "open for its cool-down");
    let (status, breaker, event) = send(T0 + 11);
    assert_eq!((status, breaker), (200, None));
    assert_eq!(event.map(|t| t.as_str()), Some("closed"));
}

/// Kong's clocks count whole milliseconds: a fast scoring during which the clock ticks once reads
/// 1000 µs. Judged with the clock's step (`HostRules::clock_step_us`), that tick is not an overrun
/// of a budget under 1 ms; a reading a whole step beyond the budget is. On Envoy's clock a reading
/// of 1000 µs is 1000 µs spent.
#[test]
fn the_budget_is_judged_with_the_clock_step() {
    use warden::gateway::{HostKind, HostRules};
    let cfg = config(json!({"budget_us": 500}), json!([]));
    let tok = token("alice", T0, json!({}));
    let over = |g: &mut Gateway, tick_us: u64| {
        g.tick_us = tick_us;
        let d = g.send(&Call {
            now_s: T0 + 10,
            ..usual(&tok)
        });
        d.risk.map(|a| a.over_budget)
    };
    let mut kong = Gateway::new(&cfg);
    kong.engine = engine(&cfg).with_host(HostRules::of(HostKind::Kong));
    assert_eq!(over(&mut kong, 0), Some(false));
    assert_eq!(
        over(&mut kong, 1000),
        Some(false),
        "one tick of a 1 ms clock"
    );
    assert_eq!(over(&mut kong, 2000), Some(true));
    let mut envoy = Gateway::new(&cfg);
    assert_eq!(over(&mut envoy, 500), Some(false));
    assert_eq!(over(&mut envoy, 501), Some(true));
    assert_eq!(over(&mut envoy, 1000), Some(true));
}

#[test]
fn refusals_feed_the_failure_counters() {
    let mut g = Gateway::new(&config(json!({}), json!([])));
    let tok = g.habitual("alice");
    // Privilege probing: admin endpoints without the scope.
    for i in 0..10 {
        let d = g.send(&Call {
            path: &format!("/admin/{i}"),
            now_s: LAST + 60 + i,
            ..usual(&tok)
        });
        assert_eq!(d.status, 403);
    }
    let d = g.send(&Call {
        now_s: LAST + 80,
        ..usual(&tok)
    });
    assert!(feature(&d, "recent_failures") > 2.0);
    // Credential stuffing from one address: bad tokens, then a valid one from there.
    let bob = token("bob", T0, json!({}));
    for i in 0..30 {
        let forged = format!("{}x", &bob[..bob.len() - 1]);
        let d = g.send(&Call {
            token: &forged,
            ip: "203.0.113.5",
            now_s: LAST + 100 + i,
            ..usual(&tok)
        });
        assert_eq!(d.verdict, Verdict::Deny);
    }
    let d = g.send(&Call {
        token: &bob,
        ip: "203.0.113.5",
        now_s: LAST + 140,
        ..usual(&tok)
    });
    assert!(feature(&d, "source_failures") > 2.5);
    assert_eq!(feature(&d, "first_seen"), 1.0);
}

#[test]
fn a_nat_address_that_mostly_succeeds_is_not_a_failing_source() {
    let mut g = Gateway::new(&config(json!({}), json!([])));
    let nat = "198.51.100.99";
    let at = |i: u64| LAST + 60 + i * 10;
    // An office behind one address: 12 users get through 60 times in ten minutes ...
    let staff: Vec<String> = (0..12)
        .map(|u| token(&format!("staff{u}"), T0, json!({})))
        .collect();
    for i in 0..60 {
        let d = g.send(&Call {
            ip: nat,
            now_s: at(i),
            ..usual(&staff[i as usize % 12])
        });
        assert_eq!(d.verdict, Verdict::Allow);
    }
    // ... then three are refused (a token that no longer verifies, e.g. expired, and pages outside
    // their scopes), from the office and, for comparison, from an address that never succeeded.
    let forged = format!("{}x", &staff[0][..staff[0].len() - 1]);
    for ip in [nat, "203.0.113.77"] {
        let d = g.send(&Call {
            token: &forged,
            ip,
            now_s: at(60),
            ..usual(&staff[0])
        });
        assert_eq!(d.verdict, Verdict::Deny);
        for tok in &staff[1..3] {
            let d = g.send(&Call {
                path: "/admin/users",
                ip,
                now_s: at(60),
                ..usual(tok)
            });
            assert_eq!(d.status, 403);
        }
    }
    // A new colleague's first request from the office carries no source failures; from the other
    // address, the same three failures count.
    let newcomer = token("newcomer", T0, json!({}));
    let d = g.send(&Call {
        ip: nat,
        now_s: at(61),
        ..usual(&newcomer)
    });
    assert_eq!(feature(&d, "source_failures"), 0.0);
    let d = g.send(&Call {
        ip: "203.0.113.77",
        now_s: at(61),
        ..usual(&token("stranger", T0, json!({})))
    });
    assert!(feature(&d, "source_failures") > 1.0, "{d:?}");
}

#[test]
fn an_upstream_refusal_is_a_failure_of_the_source_not_a_success() {
    let mut g = Gateway::new(&config(json!({}), json!([])));
    // Valid tokens the upstream refuses (401/403): let through by the filter, failures all the same.
    g.upstream_status = 403;
    for i in 0..20 {
        let tok = token(&format!("user{i}"), T0, json!({}));
        g.send(&Call {
            ip: "203.0.113.78",
            now_s: LAST + 60 + i,
            ..usual(&tok)
        });
    }
    g.upstream_status = 200;
    let d = g.send(&Call {
        ip: "203.0.113.78",
        now_s: LAST + 90,
        ..usual(&token("next", T0, json!({})))
    });
    // ln(1 + 20): no success offsets them.
    assert!(feature(&d, "source_failures") > 2.9, "{d:?}");
}

#[test]
fn bad_sources_and_client_sent_risk_headers() {
    let mut g = Gateway::new(&config(json!({"deny_cidrs": ["192.0.2.0/24"]}), json!([])));
    let tok = token("alice", T0, json!({}));
    let d = g.send_with(
        &Call {
            ip: "192.0.2.1",
            now_s: T0 + 5,
            ..usual(&tok)
        },
        &[("X-Auth-Risk-Score", "0"), ("x-auth-risk-factors", "none")],
    );
    assert_eq!(feature(&d, "bad_source"), 1.0);
    assert!(d.remove_headers.contains(&"x-auth-risk-score".to_owned()));
    assert!(d.remove_headers.contains(&"x-auth-risk-factors".to_owned()));
    // The engine's own score is what goes upstream.
    assert_eq!(
        header(&d, "x-auth-risk-score"),
        Some(score(&d).to_string().as_str())
    );
}

/// The operator's deny list counts whatever the training data said: the usual request of a habitual
/// user, sent from a listed network, scores higher with `bad_source` as its first factor (`make model`
/// sets its weight so that the median ordinary request from a listed network reaches `tag_at`).
#[test]
fn a_listed_network_raises_an_ordinary_requests_risk() {
    let mut g = Gateway::new(&config(json!({"deny_cidrs": ["192.0.2.0/24"]}), json!([])));
    let tok = g.habitual("erin");
    let home = g.send(&usual(&tok));
    let listed = g.send(&Call {
        ip: "192.0.2.1",
        now_s: LAST + 180,
        ..usual(&tok)
    });
    let first = listed
        .risk
        .as_ref()
        .and_then(|r| r.factors.first())
        .map(|f| f.0);
    assert_eq!(first, Some("bad_source"));
    assert!(
        score(&listed) > score(&home),
        "{} vs {}",
        score(&listed),
        score(&home)
    );
}

#[test]
fn delegated_tokens_build_the_actor_history() {
    // A token carrying `act` needs its actor allowed (and a chain of two allowed).
    let mut c = config(json!({"state_slots": 1024}), json!([]));
    c["delegation"] =
        json!({"max_depth": 2, "actors": [{"sub": "agent-7", "subjects": ["*"], "scopes": []}]});
    let mut g = Gateway::new(&c);
    let act = json!({"act": {"sub": "agent-7", "act": {"sub": "orchestrator"}}});
    let t1 = token("alice", T0, act.clone());
    let t2 = token("bob", T0, act);
    let d = g.send(&Call {
        now_s: T0 + 1,
        ..usual(&t1)
    });
    assert_eq!(feature(&d, "first_seen"), 1.0);
    assert_eq!(feature(&d, "delegation_depth"), 0.5);
    // Another user, the same agent: its history, not a new one.
    let d = g.send(&Call {
        now_s: T0 + 2,
        ..usual(&t2)
    });
    assert_eq!(feature(&d, "first_seen"), 0.0);
}

#[test]
fn the_callers_kind_is_a_feature() {
    // Agents by delegation, services by the `kinds` rules, humans otherwise.
    let mut c = config(json!({}), json!([]));
    c["delegation"] = json!({"actors": [{"sub": "agent-*", "subjects": ["*"], "scopes": []}]});
    c["kinds"] = json!({"rules": [{"kind": "service", "sub": "svc-*"}]});
    let mut g = Gateway::new(&c);
    for (sub, extra, agent, service) in [
        ("alice", json!({}), 0.0, 0.0),
        ("alice", json!({"act": {"sub": "agent-7"}}), 1.0, 0.0),
        ("svc-billing", json!({}), 0.0, 1.0),
    ] {
        let t = token(sub, T0, extra);
        let d = g.send(&Call {
            now_s: T0 + 1,
            ..usual(&t)
        });
        assert_eq!(
            (feature(&d, "agent"), feature(&d, "service")),
            (agent, service),
            "{sub}"
        );
    }
}

#[test]
fn state_is_bounded_and_works_under_kongs_cas_rule() {
    let mut g = Gateway::with_rule(&config(json!({"state_slots": 8}), json!([])), CasRule::Kong);
    for i in 0..200 {
        let tok = token(&format!("user{i}"), T0, json!({}));
        let ip = format!("10.0.{}.{}", i / 250, i % 250);
        let d = g.send(&Call {
            ip: &ip,
            now_s: T0 + i,
            ..usual(&tok)
        });
        assert!(d.reply.is_none() || d.verdict == Verdict::StepUp);
    }
    // 8 identity and 8 source slots, and the two counters of slots in use.
    let bound = 16 + warden::risk::SLOTS_USED_KEYS.len();
    assert!(g.store.len() <= bound, "{} keys", g.store.len());
    // A returning identity still has its history under Kong's rule (cas-correct writes).
    let tok = token("alice", T0, json!({}));
    g.send(&Call {
        now_s: T0 + 500,
        ..usual(&tok)
    });
    let d = g.send(&Call {
        now_s: T0 + 501,
        ..usual(&tok)
    });
    assert_eq!(feature(&d, "first_seen"), 0.0);
}

#[test]
fn risk_config_errors_name_the_field() {
    for (risk, field) in [
        (json!({"tag_at": 80}), "risk.step_up_at"),
        (json!({"block_at": 50}), "risk.block_at"),
        (json!({"tag_at": 101, "step_up_at": 102}), "risk.tag_at"),
        (json!({"deny_cidrs": ["10.0.0.1/8"]}), "risk.deny_cidrs[0]"),
        (json!({"acr_values": []}), "risk.acr_values"),
        (json!({"acr_values": ["a b"]}), "risk.acr_values[0]"),
        (json!({"geo_header": "x-auth-country"}), "risk.geo_header"),
        (json!({"state_slots": 0}), "risk.state_slots"),
        (json!({"on_error": "maybe"}), "risk.on_error"),
        (
            json!({"responses": {"throttle": {"pace_bucket_s": 5}}}),
            "risk.responses.throttle.pace_bucket_s",
        ),
        (
            json!({"responses": {"throttle": {"pace_bucket_s": 7200}}}),
            "risk.responses.throttle.pace_bucket_s",
        ),
        (json!({"tag_at": 30, "stepup_at": 70}), "risk"),
    ] {
        let err = Engine::from_json(config(risk.clone(), json!([])).to_string().as_bytes())
            .err()
            .unwrap_or_else(|| panic!("{risk} accepted"));
        assert!(err.field.starts_with(field), "{risk}: {err}");
    }
    let mut c = config(json!({}), json!([]));
    c["routes"][0]["sensitivity"] = json!("extreme");
    let err = Engine::from_json(c.to_string().as_bytes()).err().unwrap();
    assert_eq!(err.field, "routes[0].sensitivity");
    let c = config(
        json!({}),
        json!([{"path": "/p", "anonymous": true, "step_up": true}]),
    );
    let err = Engine::from_json(c.to_string().as_bytes()).err().unwrap();
    assert_eq!(err.field, "routes[3].step_up");
}

#[test]
fn without_a_risk_section_nothing_is_scored_or_stored() {
    let mut c = config(json!({}), json!([]));
    c.as_object_mut().unwrap().remove("risk");
    let mut g = Gateway::new(&c);
    let tok = token("alice", T0, json!({}));
    let d = g.send(&stolen(&tok));
    assert!(d.risk.is_none());
    assert_eq!(d.verdict, Verdict::Allow);
    assert!(g.store.is_empty());
    let _ = RiskVerdict::Allow;
}

/// Slots in use grow once per identity and per source, however many requests they send, and a
/// refusal before the risk stage takes a source slot too; on Kong's cas rule as on Envoy's.
#[test]
fn slots_in_use_count_each_slot_once() {
    for rule in [CasRule::Envoy, CasRule::Kong] {
        let c = config(json!({}), json!([]));
        let mut gw = Gateway::with_rule(&c, rule);
        assert_eq!(gw.engine.slots_in_use(&gw.store), Some((0, 0, 65_536)));
        gw.habitual("ann");
        gw.habitual("bob");
        assert_eq!(
            gw.engine.slots_in_use(&gw.store).map(|s| (s.0, s.1)),
            Some((2, 1))
        );
        let forged = format!("{}x", token("eve", T0, json!({})));
        let d = gw.send(&Call {
            ip: "192.0.2.9",
            ..stolen(&forged)
        });
        assert_eq!(d.verdict, Verdict::Deny);
        assert_eq!(
            gw.engine.slots_in_use(&gw.store).map(|s| (s.0, s.1)),
            Some((2, 2))
        );
    }
    let off = engine(&json!({"providers": config(json!({}), json!([]))["providers"]}));
    assert_eq!(off.slots_in_use(&MemoryStore::default()), None);
}

/// An agent, which cannot step up, flooding at 100x its own pace: held to twice its own pace by the
/// throttle (429 with `Retry-After`), then suspended for the TTL by sustained step-up-level scores,
/// even for an ordinary request; once the TTL has passed its ordinary requests pass again.
#[test]
fn an_agents_flood_is_throttled_to_its_own_pace_then_suspended() {
    let mut c = config(json!({}), json!([]));
    c["kinds"] = json!({"rules": [{"kind": "agent", "sub": "bot-*"}]});
    let mut g = Gateway::new(&c);
    let tok = token("bot-1", T0, json!({}));
    let read = |now_s: u64, i: u64| Call {
        method: "GET",
        path: if i % 2 == 0 { "/orders/1" } else { "/orders/2" },
        token: "",
        now_s,
        ip: "198.51.100.7",
        country: "NO",
        agent: "bot/1.0",
    };
    // Its habit: two hours a day for 5 days, a request every 30 s (10 per 5-minute bucket).
    for day in 0..5 {
        for i in 0..240 {
            let d = g.send(&Call {
                token: &tok,
                ..read(T0 + day * DAY + 9 * 3600 + i * 30, i)
            });
            assert!(d.reply.is_none(), "history refused: {:?}", d.reason);
        }
    }
    let start = T0 + 5 * DAY + 9 * 3600;
    let (mut passed, mut throttled, mut suspended_at) = (0, 0, None);
    // The flood: 10 requests a second for 60 s (the habit is 1 every 30 s).
    for k in 0..600u64 {
        let now = start + k / 10;
        let d = g.send(&Call {
            token: &tok,
            ..read(now, k)
        });
        assert_ne!(d.verdict, Verdict::StepUp, "an agent was sent to a step-up");
        match d.verdict {
            Verdict::Allow | Verdict::Tag => passed += 1,
            Verdict::Throttle => {
                throttled += 1;
                let reply = d.reply.as_ref().unwrap();
                assert_eq!(reply.status, 429);
                assert!(reply
                    .headers
                    .iter()
                    .any(|(n, v)| n == "retry-after" && v != "0"));
            }
            Verdict::Suspend => {
                suspended_at.get_or_insert(now);
                assert_eq!(d.reply.as_ref().unwrap().status, 403);
            }
            v => panic!("{v:?}"),
        }
    }
    // Twice its own pace (10 per 300 s) over 60 s, plus the bucket: 4 at most, plus the learnt pace's
    // own slack (its baseline is a mean of ln(1 + requests)).
    assert!(throttled > 0, "never throttled");
    assert!(passed <= 2 * 60 * 10 / 300 + 4 + 30, "{passed} passed");
    let suspended_at = suspended_at.expect("never suspended");
    // Suspended on the shared record: an ordinary request is refused too, until the TTL (900 s).
    let d = g.send(&Call {
        token: &tok,
        ..read(suspended_at + 600, 0)
    });
    assert_eq!(d.verdict, Verdict::Suspend);
    let d = g.send(&Call {
        token: &tok,
        ..read(suspended_at + 901, 0)
    });
    assert!(d.reply.is_none(), "{:?}", d.verdict);
}

/// An agent whose habit is 10 requests per busy 10-second bucket (`pace_bucket_s: 10`), learnt in
/// 40 seconds, floods from another network: held to twice its own pace (2 a second), far from the
/// floor (50 a second here), then suspended. After the operator goes back to 5-minute buckets its
/// pace is the same per second.
#[test]
fn a_pace_learnt_in_short_buckets_throttles_the_flood_then_suspends() {
    let mut c = config(json!({}), json!([]));
    c["kinds"] = json!({"rules": [{"kind": "agent", "sub": "bot-*"}]});
    c["risk"]["responses"] = json!({
        "throttle": {"pace_bucket_s": 10, "min_per_minute": 3000, "burst_s": 3},
        "suspend": {"after": 40, "window_s": 600, "ttl_s": 600},
    });
    let mut g = Gateway::new(&c);
    let tok = token("bot-7", T0, json!({}));
    let read = |now_s: u64, i: u64| Call {
        method: "GET",
        path: if i % 2 == 0 { "/orders/1" } else { "/orders/2" },
        token: &tok,
        now_s,
        ip: "198.51.100.7",
        country: "NO",
        agent: "bot/1.0",
    };
    let flood = |now_s: u64| Call {
        method: "POST",
        path: "/transfer",
        token: &tok,
        now_s,
        ip: "192.0.2.99",
        country: "BR",
        agent: "curl/8.5",
    };
    // Three 10-second buckets of 10 reads each, one read in the fourth.
    let start = T0 + 9 * 3600;
    for b in 0..4u64 {
        for i in 0..if b < 3 { 10 } else { 1 } {
            let d = g.send(&read(start + b * 10, i));
            assert!(d.reply.is_none(), "history refused: {:?}", d.reason);
        }
    }
    // The flood: 10 a second for 6 seconds, from the fourth bucket on.
    let (mut passed, mut throttled, mut suspended) = (0u32, 0u32, 0u32);
    for k in 0..60u64 {
        let now = start + 32 + k / 10;
        let d = g.send(&flood(now));
        match d.verdict {
            Verdict::Allow | Verdict::Tag => passed += 1,
            Verdict::Throttle => {
                throttled += 1;
                assert!(score(&d) >= 30);
            }
            Verdict::Suspend => suspended += 1,
            v => panic!("{v:?}"),
        }
    }
    // Twice its own pace over the 6 seconds of the flood, plus the bucket (3 s of it): 18, not the
    // floor's 60 (everything).
    assert!(
        throttled > 0 && suspended > 0,
        "{passed} {throttled} {suspended}"
    );
    assert!((12..=18).contains(&passed), "{passed} passed");
    // An ordinary read is refused while the suspension lasts, also under another config.
    c["risk"]["responses"]["throttle"]["pace_bucket_s"] = json!(300);
    g.engine = engine(&c);
    let d = g.send(&read(start + 300, 0));
    assert_eq!(d.verdict, Verdict::Suspend);
    // The same pace per second after the change: once the suspension is over, a second flood is
    // held to about 2 a second again, not to the 10-second baseline read over 5 minutes.
    let later = start + 40 + 601;
    for i in 0..3 {
        assert!(g.send(&read(later + i, i)).reply.is_none());
    }
    let mut passed = 0;
    for k in 0..30u64 {
        if g.send(&flood(later + 10 + k / 10)).reply.is_none() {
            passed += 1;
        }
    }
    assert!(
        (6..=12).contains(&passed),
        "{passed} passed after the change"
    );
}

/// Suspension follows proven identities only: tokens forged in an agent's name (another key), sent
/// from a flooding address, leave its record alone, and one agent's suspension is not another's.
#[test]
fn forged_tokens_and_a_neighbours_suspension_do_not_suspend_an_agent() {
    let mut c = config(json!({}), json!([]));
    c["kinds"] = json!({"rules": [{"kind": "agent", "sub": "bot-*"}]});
    c["risk"]["responses"] = json!({"suspend": {"after": 3, "window_s": 600, "ttl_s": 600}});
    let mut g = Gateway::new(&c);
    let start = T0 + 9 * 3600;
    let call = |tok: &'static str, now_s: u64, write: bool| Call {
        method: if write { "POST" } else { "GET" },
        path: if write { "/transfer" } else { "/orders/1" },
        token: tok,
        now_s,
        ip: if write { "192.0.2.99" } else { "198.51.100.7" },
        country: if write { "BR" } else { "NO" },
        agent: if write { "curl/8.5" } else { "bot/1.0" },
    };
    let victim: &'static str = Box::leak(token("bot-victim", T0, json!({})).into_boxed_str());
    let thief: &'static str = Box::leak(token("bot-thief", T0, json!({})).into_boxed_str());
    for i in 0..20 {
        assert!(g.send(&call(victim, start + i, false)).reply.is_none());
        assert!(g.send(&call(thief, start + i, false)).reply.is_none());
    }
    let before = g.send(&call(victim, start + 30, false));
    // Forged: the victim's name, signed with another key.
    let mut claims = Claims::with_custom_claims(
        serde_json::Map::<String, Value>::new(),
        Duration::from_secs(DAY),
    )
    .with_issuer(ISS)
    .with_audience(AUD)
    .with_subject("bot-victim");
    claims.issued_at = Some(UnixTimeStamp::from_secs(T0));
    let forged: &'static str = Box::leak(
        HS256Key::from_bytes(b"another key, not the provider's!")
            .with_key_id("h1")
            .authenticate(claims)
            .unwrap()
            .into_boxed_str(),
    );
    for i in 0..30 {
        let d = g.send(&call(forged, start + 31 + i / 10, true));
        assert_eq!(d.reply.as_ref().unwrap().status, 401);
    }
    // The thief's own flood suspends the thief.
    let mut thief_suspended = false;
    for i in 0..30 {
        let d = g.send(&call(thief, start + 31 + i / 10, true));
        thief_suspended |= d.verdict == Verdict::Suspend;
    }
    assert!(thief_suspended);
    assert_eq!(
        g.send(&call(thief, start + 40, false)).verdict,
        Verdict::Suspend
    );
    // The victim passes, with the features its own history gives (no failures counted to it).
    let after = g.send(&call(victim, start + 40, false));
    assert!(after.reply.is_none(), "{:?}", after.verdict);
    assert_eq!(feature(&after, "recent_failures"), 0.0);
    assert_eq!(feature(&before, "recent_failures"), 0.0);
}
