//! The classes of the adversarial suite (issue: default-deny routing, header and credential
//! smuggling, identity values, keyed slots), each through `Engine::decide` with real signed tokens.
//! The same classes through a real Envoy live in `tests/test_hardening.py`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "common/mod.rs"]
mod common;

use common::*;
use serde_json::{json, Value};
use warden::{Decision, Engine, TokenCache};

/// The shared test config plus `extra` top-level members (replacing those it has).
fn engine_with(extra: Value) -> Engine {
    let mut c = config();
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    Engine::from_json(c.to_string().as_bytes()).unwrap()
}

fn upstream_header<'d>(d: &'d Decision, name: &str) -> Option<&'d str> {
    d.upstream_headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| &**v)
}

// --- unmatched requests ----------------------------------------------------------------------------

/// Routes like examples/agents/multi-tenant-saas.json: only some methods and sub-paths listed.
fn saas() -> Engine {
    engine_with(json!({
        "routes": [
            {"name": "health", "path": "/health", "methods": ["GET"], "anonymous": true},
            {"name": "read", "methods": ["GET"], "path": "/tenants/{tenant}/orders/{id}",
             "scopes": ["orders:read"]},
            {"name": "admin", "prefix": "/admin", "scopes": ["admin"]}
        ],
        "tenancy": {"header": "x-tenant-id", "require": true}
    }))
}

#[test]
fn a_request_no_route_matches_is_denied_after_its_credential() {
    let e = saas();
    let t = bearer_with(json!({}));
    let d = decide_once(
        &e,
        "DELETE",
        "/tenants/acme/orders/1",
        &[("authorization", &t)],
    );
    assert_decision(&d, 404, "no_route");
    assert_eq!(d.reply.as_ref().unwrap().status, 404);
    assert!(d.upstream_headers.is_empty());
    // The credential is checked first: no route table is revealed to the anonymous.
    assert_decision(
        &decide_once(&e, "DELETE", "/tenants/acme/orders/1", &[]),
        401,
        "no_credential",
    );
    // A matched route still works.
    let d = decide_once(
        &e,
        "GET",
        "/tenants/acme/orders/1",
        &[("authorization", &t)],
    );
    assert_decision(&d, 200, "ok");
}

#[test]
fn tenancy_holds_whichever_route_matched() {
    let e = saas();
    let t = bearer_with(json!({}));
    // Another tenant's path is refused for its tenant before the route question is asked, also
    // with the attacker's own tenant header.
    for (method, path) in [
        ("DELETE", "/tenants/globex/orders/1"),
        ("GET", "/tenants/globex/orders/1/items"),
        ("GET", "/tenants//globex/./orders/1"),
        ("GET", "/tenants/%67lobex/orders/1"),
    ] {
        let d = decide_once(
            &e,
            method,
            path,
            &[("authorization", &t), ("x-tenant-id", "acme")],
        );
        assert_decision(&d, 403, "tenant_mismatch");
    }
    // With the operator's catch-all, tenancy still applies to what the catch-all admits.
    let open = engine_with(json!({
        "routes": [{"name": "read", "methods": ["GET"], "path": "/tenants/{tenant}/orders/{id}"},
                   {"name": "rest", "prefix": "/"}],
        "tenancy": {}
    }));
    let d = decide_once(
        &open,
        "DELETE",
        "/tenants/globex/orders/1",
        &[("authorization", &t)],
    );
    assert_decision(&d, 403, "tenant_mismatch");
    let d = decide_once(
        &open,
        "DELETE",
        "/tenants/acme/orders/1",
        &[("authorization", &t)],
    );
    assert_decision(&d, 200, "ok");
    assert_eq!(d.route.as_deref(), Some("rest"));
    // `authenticate` keeps the old behaviour for unmatched requests, tenancy included.
    let lax = engine_with(json!({
        "routes": [{"name": "read", "methods": ["GET"], "path": "/tenants/{tenant}/orders/{id}"}],
        "tenancy": {}, "routing": {"unmatched": "authenticate"}
    }));
    let d = decide_once(
        &lax,
        "DELETE",
        "/tenants/globex/orders/1",
        &[("authorization", &t)],
    );
    assert_decision(&d, 403, "tenant_mismatch");
    let d = decide_once(
        &lax,
        "DELETE",
        "/tenants/acme/orders/1",
        &[("authorization", &t)],
    );
    assert_decision(&d, 200, "ok");
}

#[test]
fn path_variants_fall_under_their_route() {
    let e = saas();
    let user = bearer_with(json!({}));
    let user = [("authorization", user.as_str()), ("x-tenant-id", "acme")];
    for path in [
        "/admin/x",
        "//admin/x",
        "/a/../admin/x",
        "/./admin/x",
        "/%61dmin/x",
        "/admin/x?y=/public",
    ] {
        let d = decide_once(&e, "GET", path, &user);
        assert_decision(&d, 403, "insufficient_scope");
    }
    // Case variants are other paths by default (no route: denied); case-insensitive routing puts
    // them under the route.
    let d = decide_once(&e, "GET", "/ADMIN/x", &user);
    assert_decision(&d, 404, "no_route");
    let ci = engine_with(json!({
        "routes": [{"name": "admin", "prefix": "/admin", "scopes": ["admin"]},
                   {"name": "rest", "prefix": "/"}],
        "routing": {"case_sensitive": false}
    }));
    for path in ["/ADMIN/x", "/Admin", "/aDmIn/y"] {
        let d = decide_once(&ci, "GET", path, &user);
        assert_decision(&d, 403, "insufficient_scope");
    }
    // An encoded separator is refused, whatever the route.
    let d = decide_once(&e, "GET", "/admin%2Fx", &user);
    assert_decision(&d, 400, "encoded_path_separator");
}

#[test]
fn a_config_without_routes_protects_every_path_alike() {
    let mut c = config();
    c.as_object_mut().unwrap().remove("routes");
    let e = Engine::from_json(c.to_string().as_bytes()).unwrap();
    let d = decide_once(
        &e,
        "DELETE",
        "/anything",
        &[("authorization", &bearer_with(json!({})))],
    );
    assert_decision(&d, 200, "ok");
    assert_decision(
        &decide_once(&e, "GET", "/anything", &[]),
        401,
        "no_credential",
    );
    let mut c = config();
    c["routes"] = json!([]);
    c["routing"] = json!({"unmatched": "deny"});
    let e = Engine::from_json(c.to_string().as_bytes()).unwrap();
    let d = decide_once(
        &e,
        "GET",
        "/anything",
        &[("authorization", &bearer_with(json!({})))],
    );
    assert_decision(&d, 404, "no_route");
}

// --- smuggled headers ------------------------------------------------------------------------------

#[test]
fn underscore_spellings_of_reserved_headers_are_removed() {
    let e = saas();
    let t = bearer_with(json!({}));
    let d = decide_once(
        &e,
        "GET",
        "/tenants/acme/orders/1",
        &[
            ("authorization", &t),
            ("x_auth_subject", "admin"),
            ("X_Auth-Tenant", "globex"),
            ("x_on_behalf_of", "root"),
        ],
    );
    assert_decision(&d, 200, "ok");
    for name in ["x_auth_subject", "x_auth-tenant", "x_on_behalf_of"] {
        assert!(d.remove_headers.iter().any(|n| n == name), "{name}: {d:?}");
    }
    assert_eq!(upstream_header(&d, "x-auth-subject"), Some("alice"));
    // Kong cannot remove: refused by default, whichever spelling.
    let kong = saas().with_host(warden::gateway::HostRules::of(
        warden::gateway::HostKind::Kong,
    ));
    for name in ["x_auth_subject", "x_on_behalf_of", "X_AUTH_ACTOR"] {
        let d = decide_once(
            &kong,
            "GET",
            "/tenants/acme/orders/1",
            &[("authorization", &t), (name, "x")],
        );
        assert_decision(&d, 400, "reserved_header");
    }
}

#[test]
fn method_overrides_are_refused_by_default() {
    let e = saas();
    let t = bearer_with(json!({}));
    for (path, headers) in [
        (
            "/tenants/acme/orders/1",
            vec![("x-http-method-override", "DELETE")],
        ),
        ("/tenants/acme/orders/1", vec![("X-HTTP-Method", "DELETE")]),
        ("/tenants/acme/orders/1", vec![("x-method-override", "PUT")]),
        ("/tenants/acme/orders/1?_method=DELETE", vec![]),
    ] {
        let mut headers = headers;
        headers.push(("authorization", &t));
        let d = decide_once(&e, "GET", path, &headers);
        assert_decision(&d, 400, "method_override");
    }
    // `apply`: routes are matched with the method the upstream acts on (no route lists DELETE).
    let apply = engine_with(json!({
        "routes": [{"name": "read", "methods": ["GET"], "path": "/orders/{id}"}],
        "routing": {"method_override": "apply"}
    }));
    let d = decide_once(
        &apply,
        "GET",
        "/orders/1",
        &[("authorization", &t), ("x-http-method-override", "DELETE")],
    );
    assert_decision(&d, 404, "no_route");
}

#[test]
fn two_credentials_are_refused_and_unchecked_ones_never_forwarded() {
    let e = saas();
    let t = bearer_with(json!({}));
    for headers in [
        vec![
            ("authorization", "Basic YWxpY2U6cHc="),
            ("x-api-key", API_KEY),
        ],
        vec![("authorization", t.as_str()), ("x-api-key", API_KEY)],
        vec![("authorization", t.as_str()), ("authorization", t.as_str())],
    ] {
        let d = decide_once(&e, "GET", "/tenants/acme/orders/1", &headers);
        assert_decision(&d, 400, "ambiguous_credentials");
        // Also on an anonymous route.
        let d = decide_once(&e, "GET", "/health", &headers);
        assert_decision(&d, 400, "ambiguous_credentials");
    }
    // Envoy hands two Authorization headers over as one joined with `,`: ambiguous too.
    let joined = format!("{t},{t}");
    let d = decide_once(&e, "GET", "/health", &[("authorization", &joined)]);
    assert_decision(&d, 400, "ambiguous_credentials");
    // A forged token on an anonymous route passes (nothing is checked there) but is not forwarded.
    let forged = bearer(&flip_signature_bit(&ed_token(json!({}), &claims())));
    let d = decide_once(
        &e,
        "GET",
        "/health",
        &[("authorization", &forged), ("dpop", "x")],
    );
    assert_eq!((d.status, d.reason), (200, "ok"));
    assert_eq!(d.remove_headers, vec!["authorization", "dpop"]);
    let d = decide_once(&e, "GET", "/health", &[("x-api-key", "guess")]);
    assert_eq!(d.remove_headers, vec!["x-api-key"]);
    // Another scheme is the upstream's business.
    let d = decide_once(
        &e,
        "GET",
        "/health",
        &[("authorization", "Basic YWxpY2U6cHc=")],
    );
    assert!(d.remove_headers.is_empty());
}

// --- identity values -------------------------------------------------------------------------------

#[test]
fn an_identity_needs_a_non_empty_subject() {
    let e = saas();
    for changes in [json!({"sub": null}), json!({"sub": ""})] {
        let d = decide_once(
            &e,
            "GET",
            "/tenants/acme/orders/1",
            &[("authorization", &bearer_with(changes))],
        );
        assert_decision(&d, 401, "no_subject");
    }
    // The client id stands in only when the operator says so.
    let mut c = config();
    c["providers"][0]["claims"] = json!({"subject": ["sub", "client_id"]});
    let fallback = Engine::from_json(c.to_string().as_bytes()).unwrap();
    let d = decide_once(
        &fallback,
        "GET",
        "/orders/1",
        &[("authorization", &bearer_with(json!({"sub": ""})))],
    );
    assert_decision(&d, 200, "ok");
    assert_eq!(upstream_header(&d, "x-auth-subject"), Some("web"));
    c["providers"][0]["claims"] = json!({"subject": []});
    let err = Engine::from_json(c.to_string().as_bytes()).err().unwrap();
    assert_eq!(err.field, "providers[0].claims.subject");
}

#[test]
fn empty_tenant_and_client_are_absent_never_empty_headers() {
    let t = bearer_with(json!({"tenant": "", "client_id": ""}));
    let d = decide_once(
        &engine_with(json!({})),
        "GET",
        "/orders/1",
        &[("authorization", &t)],
    );
    assert_decision(&d, 200, "ok");
    assert_eq!(upstream_header(&d, "x-auth-tenant"), None);
    assert_eq!(upstream_header(&d, "x-auth-client"), None);
    assert!(d
        .upstream_headers
        .iter()
        .all(|(n, v)| !v.is_empty() || n == "x-auth-scopes"));
    // An empty tenant addresses no tenant: another tenant's path is refused.
    let d = decide_once(
        &saas(),
        "GET",
        "/tenants/acme/orders/1",
        &[("authorization", &t)],
    );
    assert_decision(&d, 403, "tenant_mismatch");
    // An API key with an empty tenant is a config error.
    let mut c = config();
    c["api_keys"]["keys"][0]["tenant"] = json!("");
    let err = Engine::from_json(c.to_string().as_bytes()).err().unwrap();
    assert_eq!(err.field, "api_keys.keys[0].tenant");
}

// --- the geo header --------------------------------------------------------------------------------

/// `new_country` of the second of two requests by the same caller, from NO then AU.
fn new_country_after_moving(risk: Value) -> f32 {
    use warden::risk::features::Feature;
    use warden::shared::MemoryStore;
    let e = engine_with(json!({"routes": [{"name": "any", "prefix": "/"}], "risk": risk}));
    let store = MemoryStore::default();
    let t = bearer_with(json!({}));
    let mut last = None;
    for (i, country) in ["NO", "AU"].into_iter().enumerate() {
        let headers = vec![
            ("authorization".to_owned(), t.clone()),
            ("x-geo-country".to_owned(), country.to_owned()),
        ];
        let req = warden::Request {
            method: "GET",
            path: "/orders/1",
            headers: &headers,
            request_id: "r",
            now_s: NOW + i as u64 * 300,
            peer_cert_sha256: None,
            peer_cert_unread: false,
            source_unread: false,
            source: None,
            body: warden::decision::Body::Unread,
        };
        let mut cache = TokenCache::default();
        let mut env = warden::Env {
            cache: &mut cache,
            shared: &store,
            clock_us: &|| 0,
        };
        let d = e.decide(&req, &mut env);
        e.observe_response(&d, 200, 100, req.now_s, &store);
        last = d.risk;
    }
    let at = Feature::NAMES
        .iter()
        .position(|n| *n == "new_country")
        .unwrap();
    last.unwrap().features[at]
}

#[test]
fn the_geo_header_counts_only_when_the_edge_owns_it() {
    let on = json!({"enabled": true, "geo_header_from_edge": true});
    assert_eq!(new_country_after_moving(on), 1.0);
    // By default a client's value is ignored: it could choose its own country.
    assert_eq!(new_country_after_moving(json!({"enabled": true})), 0.0);
}

// --- shared data stays bounded ---------------------------------------------------------------------

#[test]
fn thousands_of_identities_stay_within_the_slot_bound() {
    use warden::shared::MemoryStore;
    let e = engine_with(json!({
        "routes": [{"name": "any", "prefix": "/"}],
        "rate_limits": {"slots": 64, "policies": [
            {"name": "s", "key": "subject", "limit": 1000, "window_s": 60}]},
        "risk": {"mode": "shadow", "state_slots": 128}
    }))
    .with_slot_key(warden::slot::SlotKey::new([9; 16]));
    let store = MemoryStore::default();
    let mut cache = TokenCache::new(64);
    for i in 0..3000 {
        let t = bearer_with(json!({"sub": format!("user-{i}")}));
        let headers = vec![("authorization".to_owned(), t)];
        let req = warden::Request {
            method: "GET",
            path: "/orders/1",
            headers: &headers,
            request_id: "r",
            now_s: NOW,
            peer_cert_sha256: None,
            peer_cert_unread: false,
            source_unread: false,
            body: warden::decision::Body::Unread,
            source: Some(std::net::IpAddr::from([
                10,
                0,
                (i / 256) as u8,
                (i % 256) as u8,
            ])),
        };
        let mut env = warden::Env {
            cache: &mut cache,
            shared: &store,
            clock_us: &|| 0,
        };
        let d = e.decide(&req, &mut env);
        assert_eq!(d.status, 200, "{d:?}");
        e.observe_response(&d, 200, 100, NOW, &store);
    }
    // 64 rate-limit slots + 128 identity + 128 source records, and the two counters of slots in
    // use (the gauges): nothing else, whatever the traffic.
    assert!(store.len() <= 64 + 2 * 128 + 2, "{} keys", store.len());
}

/// One step of `e` on `req` with a fresh cache and shared store.
fn step_fresh(
    e: &Engine,
    req: &warden::Request<'_>,
    progress: &mut warden::Progress,
) -> warden::Step {
    let store = warden::shared::MemoryStore::default();
    let mut cache = TokenCache::default();
    let mut env = warden::Env {
        cache: &mut cache,
        shared: &store,
        clock_us: &|| 0,
    };
    e.step(req, &mut env, progress)
}

/// RFC 8705 §3 with the client certificate read lazily: the adapter reads it only when a
/// certificate-bound token asks (`Step::NeedPeerCertificate`, once); with the matching digest the
/// token passes, without one (no certificate, Kong, or an adapter that never answers) it is refused;
/// an unbound token never asks, so a request without mTLS binding costs no host call for it.
#[test]
fn the_client_certificate_is_read_only_for_a_certificate_bound_token() {
    use sha2::{Digest, Sha256};
    use warden::gateway::HostKind;
    use warden::{Progress, Request, Step};
    let digest = Sha256::digest(b"a client certificate, DER");
    let bound = bearer(&es_token(&with(
        claims(),
        json!({"cnf": {"x5t#S256": b64(digest)}}),
    )));
    let plain = bearer(&es_token(&claims()));
    let right = hex::encode(digest);
    let wrong = hex::encode(Sha256::digest(b"another certificate"));
    fn request<'a>(
        headers: &'a [(String, String)],
        cert: Option<&'a str>,
        unread: bool,
    ) -> Request<'a> {
        Request {
            method: "GET",
            path: "/orders/7",
            headers,
            request_id: "r",
            now_s: NOW,
            peer_cert_sha256: cert,
            peer_cert_unread: unread,
            ..Request::default()
        }
    }
    let step = |auth: &str, cert: Option<&str>, unread: bool, progress: &mut Progress| {
        let headers = vec![("authorization".to_owned(), auth.to_owned())];
        step_fresh(engine(), &request(&headers, cert, unread), progress)
    };
    let decided = |s: Step| match s {
        Step::Decided(d) => (d.status, d.reason),
        other => panic!("expected a decision, got {other:?}"),
    };
    // Unbound: decided at once, the certificate never asked for.
    let mut p = Progress::new(HostKind::Envoy);
    assert_eq!(decided(step(&plain, None, true, &mut p)), (200, "ok"));
    // Bound: asked once, then decided on what the adapter read.
    for (cert, want) in [
        (Some(right.as_str()), (200, "ok")),
        (Some(wrong.as_str()), (401, "binding")),
        (None, (401, "binding")),
    ] {
        let mut p = Progress::new(HostKind::Envoy);
        assert!(matches!(
            step(&bound, None, true, &mut p),
            Step::NeedPeerCertificate
        ));
        assert_eq!(decided(step(&bound, cert, false, &mut p)), want, "{cert:?}");
    }
    // An adapter that never reads it: asked once, then refused (the binding is never skipped).
    let mut p = Progress::new(HostKind::Envoy);
    assert!(matches!(
        step(&bound, None, true, &mut p),
        Step::NeedPeerCertificate
    ));
    assert_eq!(decided(step(&bound, None, true, &mut p)), (401, "binding"));
    // `decide` (the CLI, replay) never asks: an unread certificate is no certificate.
    let headers = vec![("authorization".to_owned(), bound.clone())];
    let req = request(&headers, None, true);
    let d = decide_request(engine(), &req, &mut TokenCache::default());
    assert_eq!((d.status, d.reason), (401, "binding"));
}

/// The client's address is a property read on the host: asked once, first
/// (`Step::NeedClientAddress`), where the config uses it (risk, the decision record, alerts), never
/// otherwise; a request the risk stage would score, whose adapter never answers, is refused
/// (`risk_unavailable`), never scored without it; the address read is the one scored and recorded.
#[test]
fn the_client_address_is_read_only_where_the_config_uses_it() {
    use warden::gateway::HostKind;
    use warden::{Progress, Request, Step};
    let token = bearer(&es_token(&claims()));
    let headers = vec![("authorization".to_owned(), token)];
    let with_cfg = |extra: Value| {
        let mut cfg = config();
        for (k, v) in extra.as_object().unwrap() {
            cfg[k] = v.clone();
        }
        Engine::from_json(cfg.to_string().as_bytes()).unwrap()
    };
    let step = |e: &Engine, source: Option<std::net::IpAddr>, unread: bool, p: &mut Progress| {
        let req = Request {
            method: "GET",
            path: "/orders/7",
            headers: &headers,
            request_id: "r",
            now_s: NOW,
            source,
            source_unread: unread,
            ..Request::default()
        };
        step_fresh(e, &req, p)
    };
    let decided = |s: Step| match s {
        Step::Decided(d) => d,
        other => panic!("expected a decision, got {other:?}"),
    };
    let plain = with_cfg(json!({"audit": {"enabled": false}}));
    assert!(!plain.wants_client_address());
    let mut p = Progress::new(HostKind::Envoy);
    assert_eq!(decided(step(&plain, None, true, &mut p)).status, 200);
    let addr = std::net::IpAddr::from([198, 51, 100, 7]);
    for extra in [
        json!({"audit": {"enabled": true}}),
        json!({"audit": {"enabled": false}, "risk": {"mode": "enforce"}}),
        json!({"audit": {"enabled": false},
               "alerts": {"service": {"url": "http://siem/x", "envoy_cluster": "siem"}}}),
    ] {
        let e = with_cfg(extra.clone());
        assert!(e.wants_client_address(), "{extra}");
        let mut p = Progress::new(HostKind::Envoy);
        assert!(
            matches!(step(&e, None, true, &mut p), Step::NeedClientAddress),
            "{extra}"
        );
        let d = decided(step(&e, Some(addr), false, &mut p));
        assert_eq!(d.status, 200, "{extra}: {d:?}");
        if let Some(a) = &d.risk {
            assert!(a.score.is_some(), "scored with the address read: {a:?}");
        }
    }
    // An adapter that never answers: asked once, then not scored but refused.
    let risk = with_cfg(json!({"audit": {"enabled": false}, "risk": {"mode": "enforce"}}));
    let mut p = Progress::new(HostKind::Envoy);
    assert!(matches!(
        step(&risk, None, true, &mut p),
        Step::NeedClientAddress
    ));
    let d = decided(step(&risk, None, true, &mut p));
    assert_eq!((d.status, d.reason), (503, "risk_unavailable"), "{d:?}");
    assert!(d.risk.is_none());
}
