//! The MCP rules through the whole engine, with real HS256 tokens.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::decision::{Body, Decision, Engine, Env, Progress, Request, Step};
use crate::gateway::mock::{EnvoyHeaders, NgxHeaders};
use crate::gateway::{HostKind, HostRules};
use crate::shared::MemoryStore;
use crate::TokenCache;
use jwt_simple::prelude::*;
use serde_json::{json, Value};

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
const ISSUER: &str = "http://127.0.0.1:9000";
const RESOURCE: &str = "http://127.0.0.1:10000/mcp";
const META: &str = "http://127.0.0.1:10000/.well-known/oauth-protected-resource/mcp";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The issue's endpoint, with `extra` merged into it.
fn config(extra: Value) -> Value {
    let mut endpoint = json!({
    "name": "orders-mcp", "path": "/mcp", "resource": RESOURCE,
    "authorization_servers": [ISSUER],
    "scopes_supported": ["orders:read", "orders:refund", "admin"],
    "max_body_bytes": 4096,
    "rules": [
        {"method": "tools/call", "tool": "read_orders", "scopes": ["orders:read"]},
        {"method": "tools/call", "tool": "refund_order", "scopes": ["orders:refund"], "step_up": true, "sensitivity": "critical"},
        {"method": "tools/call", "tool": "delete_customer", "scopes": ["admin"], "sensitivity": "high"},
        {"method": "tools/call", "tool": "internal_*", "deny": true},
        {"method": "resources/read", "uri": "orders://*", "scopes": ["orders:read"]},
        {"method": "prompts/get", "prompt": "*"},
        {"method": "tools/call", "tool": "search_*", "rate_limit": "searches"}
    ]});
    for (k, v) in extra.as_object().unwrap() {
        endpoint[k] = v.clone();
    }
    json!({
        "providers": [{"name": "idp", "issuer": ISSUER, "audiences": [RESOURCE, "orders-api"],
            "jwks": {"keys": [{"kty": "oct", "alg": "HS256", "kid": "hs",
                "k": base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, KEY)}]}}],
        "rate_limits": {"policies": [{"name": "searches", "key": "subject", "limit": 1, "window_s": 3600}]},
        "mcp": {"endpoints": [endpoint]}
    })
}

fn engine_with(extra: Value, host: HostKind) -> Engine {
    Engine::from_json(config(extra).to_string().as_bytes())
        .unwrap()
        .with_host(HostRules::of(host))
}

fn engine() -> Engine {
    engine_with(json!({}), HostKind::Envoy)
}

fn token(scope: &str, aud: &str) -> String {
    let claims = Claims::with_custom_claims(json!({"scope": scope}), Duration::from_hours(1))
        .with_issuer(ISSUER)
        .with_audience(aud)
        .with_subject("agent-7");
    HS256Key::from_bytes(KEY)
        .with_key_id("hs")
        .authenticate(claims)
        .unwrap()
}

fn call(method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string()
}

fn tool(name: &str) -> String {
    call("tools/call", json!({"name": name, "arguments": {}}))
}

/// One request to `path` with `headers` (an `authorization` from `token` when given) and `body`.
fn send(
    e: &Engine,
    method: &str,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
    body: Body<'_>,
    store: &MemoryStore,
) -> Decision {
    let mut headers: Vec<(String, String)> = extra
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    if let Some(t) = token {
        headers.push(("authorization".into(), format!("Bearer {t}")));
    }
    let req = Request {
        method,
        path,
        headers: &headers,
        request_id: "r1",
        now_s: now(),
        body,
        ..Request::default()
    };
    let mut cache = TokenCache::new(8);
    let mut env = Env {
        cache: &mut cache,
        shared: store,
        clock_us: &|| 0,
    };
    e.decide(&req, &mut env)
}

fn post(e: &Engine, token: Option<&str>, body: &str) -> Decision {
    send(
        e,
        "POST",
        "/mcp",
        token,
        &[],
        Body::Read(body.as_bytes()),
        &MemoryStore::default(),
    )
}

/// A POST to the endpoint with token `t` and `extra` headers (a fresh shared store).
fn post_h(e: &Engine, t: &str, extra: &[(&str, &str)], body: &str) -> Decision {
    let store = MemoryStore::default();
    send(
        e,
        "POST",
        "/mcp",
        Some(t),
        extra,
        Body::Read(body.as_bytes()),
        &store,
    )
}

fn challenge(d: &Decision) -> String {
    let r = d.reply.as_ref().expect("a reply");
    r.headers
        .iter()
        .find(|(n, _)| n == "www-authenticate")
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn rpc_error(d: &Decision) -> (Value, i64) {
    let body: Value = serde_json::from_str(&d.reply.as_ref().unwrap().body).unwrap();
    (body["id"].clone(), body["error"]["code"].as_i64().unwrap())
}

#[test]
fn metadata_is_answered_without_a_token_at_both_paths() {
    let e = engine();
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource?x=1",
    ] {
        let d = send(
            &e,
            "GET",
            path,
            None,
            &[],
            Body::Unread,
            &MemoryStore::default(),
        );
        assert_eq!((d.status, d.reason), (200, "mcp_metadata"), "{path}");
        let doc: Value = serde_json::from_str(&d.reply.unwrap().body).unwrap();
        assert_eq!(doc["resource"], RESOURCE);
        assert_eq!(doc["authorization_servers"], json!([ISSUER]));
        assert_eq!(
            doc["scopes_supported"],
            json!(["orders:read", "orders:refund", "admin"])
        );
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    }
    // Another endpoint path, or a write: not metadata, so a credential is needed.
    let d = send(
        &e,
        "GET",
        "/.well-known/oauth-protected-resource/other",
        None,
        &[],
        Body::Unread,
        &MemoryStore::default(),
    );
    assert_eq!(d.status, 401);
    let d = send(
        &e,
        "POST",
        "/.well-known/oauth-protected-resource/mcp",
        None,
        &[],
        Body::Unread,
        &MemoryStore::default(),
    );
    assert_eq!(d.status, 401);
}

#[test]
fn the_body_is_asked_for_once_and_first() {
    let e = engine();
    let headers = vec![("authorization".to_owned(), "Bearer x".to_owned())];
    let mut req = Request {
        method: "POST",
        path: "/mcp?session=1",
        headers: &headers,
        request_id: "r",
        now_s: now(),
        ..Request::default()
    };
    let store = MemoryStore::default();
    let mut cache = TokenCache::new(4);
    let mut progress = Progress::new(HostKind::Envoy);
    let mut env = Env {
        cache: &mut cache,
        shared: &store,
        clock_us: &|| 0,
    };
    match e.step(&req, &mut env, &mut progress) {
        Step::NeedBody { max_bytes } => assert_eq!(max_bytes, 4096),
        other => panic!("expected NeedBody, got {other:?}"),
    }
    req.body = Body::Read(b"{}");
    assert!(matches!(
        e.step(&req, &mut env, &mut progress),
        Step::Decided(_)
    ));
    // Paths below the endpoint's are the endpoint's too (a server may answer `/mcp/` as `/mcp`);
    // GET (the server's event stream) and other paths carry no JSON-RPC body.
    for (method, path, asks) in [
        ("POST", "/mcp/", true),
        ("POST", "/mcp/x?y=1", true),
        ("GET", "/mcp", false),
        ("POST", "/orders", false),
        ("POST", "/mcpx", false),
    ] {
        let req = Request {
            method,
            path,
            headers: &headers,
            request_id: "r",
            now_s: now(),
            ..Request::default()
        };
        let mut progress = Progress::new(HostKind::Envoy);
        let step = e.step(&req, &mut env, &mut progress);
        assert_eq!(
            matches!(step, Step::NeedBody { .. }),
            asks,
            "{method} {path}"
        );
    }
}

#[test]
fn no_token_gets_a_challenge_pointing_at_the_metadata() {
    let d = post(&engine(), None, &tool("read_orders"));
    assert_eq!(d.status, 401);
    assert_eq!(
        challenge(&d),
        format!(r#"Bearer realm="warden", resource_metadata="{META}", scope="orders:read""#)
    );
    // A protocol method needs no scope: none is named.
    let d = post(&engine(), None, &call("initialize", json!({})));
    assert_eq!(
        challenge(&d),
        format!(r#"Bearer realm="warden", resource_metadata="{META}""#)
    );
}

/// A token issued for the MCP server only is not a token for the provider's other APIs, even
/// though the provider's `audiences` list the resource (RFC 8707: no replay at another API).
#[test]
fn a_token_for_the_resource_only_is_refused_elsewhere() {
    let get = |t: &str| {
        send(
            &engine(),
            "GET",
            "/orders/1",
            Some(t),
            &[],
            Body::Unread,
            &MemoryStore::default(),
        )
    };
    let d = get(&token("orders:read", RESOURCE));
    assert_eq!((d.status, d.reason), (401, "audience"));
    let d = get(&token("orders:read", "orders-api"));
    assert_eq!((d.status, d.reason), (200, "ok"));
}

#[test]
fn the_token_must_be_for_the_resource() {
    let d = post(
        &engine(),
        Some(&token("orders:read", "orders-api")),
        &tool("read_orders"),
    );
    assert_eq!((d.status, d.reason), (401, "audience"));
    assert_eq!(
        challenge(&d),
        format!(r#"Bearer error="invalid_token", resource_metadata="{META}""#)
    );
    let d = post(
        &engine(),
        Some(&token("orders:read", RESOURCE)),
        &tool("read_orders"),
    );
    assert_eq!((d.status, d.reason), (200, "ok"));
}

#[test]
fn tools_need_their_scopes() {
    let e = engine();
    let t = token("orders:read", RESOURCE);
    assert_eq!(post(&e, Some(&t), &tool("read_orders")).status, 200);
    let d = post(&e, Some(&t), &tool("refund_order"));
    assert_eq!((d.status, d.reason), (403, "insufficient_scope"));
    assert_eq!(
        challenge(&d),
        format!(
            r#"Bearer error="insufficient_scope", scope="orders:refund", resource_metadata="{META}""#
        )
    );
    let d = post(&e, Some(&t), &tool("delete_customer"));
    assert!(challenge(&d).contains(r#"scope="admin""#));
    // Older clients replace their token with one of exactly the challenged scope.
    let e = engine_with(
        json!({"challenge_scopes": "granted_and_required"}),
        HostKind::Envoy,
    );
    let d = post(&e, Some(&t), &tool("refund_order"));
    assert!(
        challenge(&d).contains(r#"scope="orders:read orders:refund""#),
        "{}",
        challenge(&d)
    );
    // The endpoint's own scopes are needed for every call.
    let e = engine_with(json!({"scopes": ["mcp:use"]}), HostKind::Envoy);
    let d = post(&e, Some(&t), &call("tools/list", json!({})));
    assert!(challenge(&d).contains(r#"scope="mcp:use""#));
    let both = token("mcp:use orders:read", RESOURCE);
    assert_eq!(post(&e, Some(&both), &tool("read_orders")).status, 200);
}

#[test]
fn denied_and_unnamed_tools_are_refused() {
    let e = engine();
    let t = token("orders:read orders:refund admin", RESOURCE);
    for name in ["internal_debug", "internal_", "unknown_tool"] {
        let d = post(&e, Some(&t), &tool(name));
        assert_eq!((d.status, d.reason), (403, "mcp_denied"), "{name}");
    }
    // A resource method naming no resource is an unnamed object: denied by default.
    let unnamed = call("resources/subscribe", json!({}));
    assert_eq!(post(&e, Some(&t), &unnamed).reason, "mcp_denied");
    let e = engine_with(json!({"default": "allow"}), HostKind::Envoy);
    assert_eq!(post(&e, Some(&t), &tool("unknown_tool")).status, 200);
    assert_eq!(post(&e, Some(&t), &tool("internal_debug")).status, 403);
    assert_eq!(post(&e, Some(&t), &unnamed).status, 200);
}

#[test]
fn resources_prompts_and_protocol_methods() {
    let e = engine();
    let none = token("", RESOURCE);
    let read = token("orders:read", RESOURCE);
    let res = |uri: &str| call("resources/read", json!({"uri": uri}));
    assert_eq!(post(&e, Some(&read), &res("orders://7")).status, 200);
    assert_eq!(post(&e, Some(&none), &res("orders://7")).status, 403);
    assert_eq!(
        post(&e, Some(&read), &res("customers://7")).reason,
        "mcp_denied"
    );
    assert_eq!(
        post(
            &e,
            Some(&none),
            &call("prompts/get", json!({"name": "summary"}))
        )
        .status,
        200
    );
    for m in [
        "initialize",
        "ping",
        "tools/list",
        "resources/list",
        "prompts/list",
    ] {
        assert_eq!(
            post(&e, Some(&none), &call(m, json!({}))).status,
            200,
            "{m}"
        );
    }
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
    assert_eq!(post(&e, Some(&none), &note).status, 200);
    // A rule can restrict a protocol method.
    let e = engine_with(
        json!({"rules": [{"method": "tools/list", "scopes": ["orders:read"]}], "default": "allow"}),
        HostKind::Envoy,
    );
    assert_eq!(
        post(&e, Some(&none), &call("tools/list", json!({}))).status,
        403
    );
    assert_eq!(
        post(&e, Some(&read), &call("tools/list", json!({}))).status,
        200
    );
}

#[test]
fn bodies_the_endpoint_does_not_take() {
    let e = engine();
    let t = token("orders:read", RESOURCE);
    let store = MemoryStore::default();
    let d = send(&e, "POST", "/mcp", Some(&t), &[], Body::TooLarge, &store);
    assert_eq!((d.status, d.reason), (413, "mcp_body_too_large"));
    // Also when a caller hands over more than the endpoint's limit (the CLI, a host that over-reads).
    let big = vec![b' '; 4097];
    let d = send(&e, "POST", "/mcp", Some(&t), &[], Body::Read(&big), &store);
    assert_eq!(d.status, 413);
    let d = send(
        &e,
        "POST",
        "/mcp",
        Some(&t),
        &[],
        Body::LengthRequired,
        &store,
    );
    assert_eq!((d.status, d.reason), (411, "mcp_length_required"));
    // Only the transport's methods: another one's body would reach the server unread.
    for method in ["PUT", "PATCH"] {
        let d = send(&e, method, "/mcp", Some(&t), &[], Body::Unread, &store);
        assert_eq!((d.status, d.reason), (405, "mcp_method_not_allowed"));
    }
    assert_eq!(
        send(&e, "DELETE", "/mcp", Some(&t), &[], Body::Unread, &store).status,
        200
    );
    assert_eq!(
        send(&e, "GET", "/mcp", Some(&t), &[], Body::Unread, &store).status,
        200
    );
    // A tool call to a path below the endpoint's meets the same rules.
    let d = send(
        &e,
        "POST",
        "/mcp/",
        Some(&t),
        &[],
        Body::Read(tool("internal_x").as_bytes()),
        &store,
    );
    assert_eq!(d.reason, "mcp_denied");
    let d = post(&e, Some(&t), "{\"jsonrpc\": ");
    assert_eq!((d.status, d.reason), (400, "mcp_parse_error"));
    assert_eq!(rpc_error(&d), (Value::Null, -32700));
    // Malformed bodies are refused before the token is looked at.
    assert_eq!(post(&e, None, "nope").status, 400);
    let batch = format!(
        "[{},{}]",
        tool("read_orders"),
        call("tools/list", json!({}))
    );
    let d = post(&e, Some(&t), &batch);
    assert_eq!((d.status, rpc_error(&d).1), (400, -32600));
    let e = engine_with(json!({"batches": "each"}), HostKind::Envoy);
    assert_eq!(post(&e, Some(&t), &batch).status, 200);
    let mixed = format!("[{},{}]", tool("read_orders"), tool("delete_customer"));
    assert_eq!(post(&e, Some(&t), &mixed).status, 403);
    let mixed = format!("[{},{}]", tool("read_orders"), tool("internal_x"));
    assert_eq!(post(&e, Some(&t), &mixed).reason, "mcp_denied");
}

#[test]
fn mirrored_headers_must_match_and_never_decide() {
    let e = engine();
    let t = token("orders:read", RESOURCE);
    let new = ("mcp-protocol-version", "2026-07-28");
    let body = json!({"jsonrpc": "2.0", "id": "c-9", "method": "tools/call",
                      "params": {"name": "delete_customer"}})
    .to_string();
    // The header names an allowed tool, the body a refused one: the mismatch is refused.
    let lying = [
        new,
        ("mcp-method", "tools/call"),
        ("mcp-name", "read_orders"),
    ];
    let d = post_h(&e, &t, &lying, &body);
    assert_eq!((d.status, d.reason), (400, "mcp_header_mismatch"));
    assert_eq!(rpc_error(&d), (json!("c-9"), -32020));
    let missing = [new, ("mcp-method", "tools/call")];
    let d = post_h(&e, &t, &missing, &body);
    assert_eq!(d.status, 400);
    // Matching headers: the body decides (here: a missing scope).
    let honest = [
        new,
        ("mcp-method", "tools/call"),
        ("mcp-name", "=?base64?ZGVsZXRlX2N1c3RvbWVy?="),
    ];
    let d = post_h(&e, &t, &honest, &body);
    assert_eq!((d.status, d.reason), (403, "insufficient_scope"));
    // Older protocol versions send no headers: the body alone decides.
    let old = [("mcp-protocol-version", "2025-06-18")];
    let d = post_h(&e, &t, &old, &body);
    assert_eq!(d.status, 403);
    assert_eq!(
        d.mcp.as_ref().unwrap().protocol_version.as_deref(),
        Some("2025-06-18")
    );
}

#[test]
fn credentials_never_reach_the_mcp_server() {
    let t = token("orders:read", RESOURCE);
    let dpop = ("DPoP", "proof");
    let body = tool("read_orders");
    let client = vec![
        ("authorization".to_owned(), format!("Bearer {t}")),
        ("dpop".to_owned(), "proof".to_owned()),
    ];
    // Envoy: removed.
    let d = post_h(&engine(), &t, &[dpop], &body);
    assert_eq!(d.status, 200);
    let mut envoy = EnvoyHeaders(client.clone());
    crate::upstream::forward(
        HostRules::of(HostKind::Envoy),
        &d.remove_headers,
        &d.upstream_headers,
        &mut envoy,
    );
    assert!(
        !envoy
            .0
            .iter()
            .any(|(n, _)| n == "authorization" || n == "dpop"),
        "{:?}",
        envoy.0
    );
    assert!(envoy
        .0
        .contains(&("x-auth-subject".into(), "agent-7".into())));
    // ngx_wasm_module cannot remove: each is emptied in place.
    let kong = engine_with(json!({}), HostKind::Kong);
    let d = post_h(&kong, &t, &[dpop], &body);
    assert_eq!(d.status, 200);
    let mut ngx = NgxHeaders::new(&client);
    crate::upstream::forward(
        HostRules::of(HostKind::Kong),
        &d.remove_headers,
        &d.upstream_headers,
        &mut ngx,
    );
    let forwarded = ngx.forwarded();
    for name in ["authorization", "dpop"] {
        let values: Vec<&str> = forwarded
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(values, [""], "{name}");
    }
    // ... so a second copy, which would reach the server, is refused (also in shadow mode).
    let twice = [dpop, ("dpop", "proof2")];
    for e in [kong, engine_with(json!({}), HostKind::Kong)] {
        let d = post_h(&e, &t, &twice, &body);
        assert_eq!((d.status, d.reason), (400, "reserved_header"));
    }
    // The operator may forward them.
    let e = engine_with(json!({"forward_credentials": true}), HostKind::Envoy);
    let d = post_h(&e, &t, &[dpop], &body);
    assert!(!d
        .remove_headers
        .iter()
        .any(|h| h == "authorization" || h == "dpop"));
}

#[test]
fn per_tool_rate_limits_apply_to_their_tools_only() {
    let e = engine();
    let t = token("orders:read", RESOURCE);
    let store = MemoryStore::default();
    let go = |name: &str| {
        send(
            &e,
            "POST",
            "/mcp",
            Some(&t),
            &[],
            Body::Read(tool(name).as_bytes()),
            &store,
        )
    };
    assert_eq!(go("search_orders").status, 200);
    assert_eq!(go("read_orders").status, 200);
    assert_eq!(go("read_orders").status, 200);
    let d = go("search_customers");
    assert_eq!((d.status, d.reason), (429, "rate_limited"));
}

#[test]
fn tool_sensitivity_and_step_up_reach_the_risk_stage() {
    let t = token("orders:read orders:refund", RESOURCE);
    let d = post(&engine(), Some(&t), &tool("refund_order"));
    let seen = d.mcp.unwrap();
    assert_eq!(seen.sensitivity, Some(crate::config::Sensitivity::Critical));
    assert!(seen.step_up);
    // With the risk stage on, a step_up tool is challenged until the token shows the step-up.
    let mut c = config(json!({}));
    c["risk"] = json!({"enabled": true, "acr_values": ["mfa"]});
    let e = Engine::from_json(c.to_string().as_bytes()).unwrap();
    let d = post(&e, Some(&t), &tool("refund_order"));
    assert_eq!((d.status, d.reason), (401, "step_up_required"));
    let ch = challenge(&d);
    assert!(
        ch.starts_with(r#"Bearer error="insufficient_user_authentication""#),
        "{ch}"
    );
    assert!(
        ch.ends_with(&format!(r#"resource_metadata="{META}""#)),
        "{ch}"
    );
    assert_eq!(post(&e, Some(&t), &tool("read_orders")).status, 200);
}

#[test]
fn tools_list_answers_are_cut_to_the_callers_tools() {
    let e = engine();
    let t = token("orders:read", RESOURCE);
    let d = post(&e, Some(&t), &call("tools/list", json!({})));
    assert!(d.filters_tools_list().is_some());
    // Asked uncompressed, so that it can be read.
    assert!(d
        .upstream_headers
        .contains(&("accept-encoding".into(), "identity".into())));
    // Shadow mode changes no answer.
    let mut c = config(json!({}));
    c["mode"] = json!("shadow");
    let shadow = Engine::from_json(c.to_string().as_bytes()).unwrap();
    let s = post(&shadow, Some(&t), &call("tools/list", json!({})));
    assert_eq!((s.status, s.reply.is_none()), (200, true));
    assert!(s.filters_tools_list().is_none());
    let s = post(&shadow, Some(&t), &tool("internal_x"));
    assert_eq!(
        (s.status, s.reason, s.reply.is_none()),
        (403, "mcp_denied", true)
    );
    assert!(s.remove_headers.iter().any(|h| h == "authorization"));
    assert!(post(&e, Some(&t), &tool("read_orders"))
        .filters_tools_list()
        .is_none());
    let result = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [
        {"name": "read_orders"}, {"name": "refund_order"}, {"name": "delete_customer"},
        {"name": "internal_debug"}, {"name": "search_orders"}, {"name": "other"}]}});
    let names = |v: &Value| -> Vec<String> {
        v["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let out = e.filter_tools_list(
        &d,
        "application/json; charset=utf-8",
        Some(result.to_string().as_bytes()),
    );
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(names(&out), ["read_orders", "search_orders"]);
    // An event stream: each event's data cut, the other fields kept.
    let sse = format!(
        "event: message\r\nid: 5\r\ndata: {}\r\n\r\n: keep-alive\n\n",
        result
    );
    let out = e.filter_tools_list(&d, "text/event-stream", Some(sse.as_bytes()));
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("event: message\nid: 5\ndata: "), "{out}");
    let data = out.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    assert_eq!(
        names(&serde_json::from_str(data).unwrap()),
        ["read_orders", "search_orders"]
    );
    assert!(out.contains(": keep-alive\n"));
    // Unreadable JSON or an answer over the limit: never passed on unfiltered.
    let out = e.filter_tools_list(&d, "application/json", Some(b"{\"result\": {\"tools\": ["));
    assert_eq!(
        serde_json::from_slice::<Value>(&out).unwrap()["error"]["code"],
        -32603
    );
    let out = e.filter_tools_list(&d, "text/event-stream", None);
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.starts_with("event: message\ndata: {") && out.contains("-32603"),
        "{out}"
    );
}

#[test]
fn bad_config_is_refused_naming_the_field() {
    let refused = |extra: Value, field: &str| {
        let err = match Engine::from_json(config(extra).to_string().as_bytes()) {
            Err(e) => e,
            Ok(_) => panic!("accepted: {field}"),
        };
        assert_eq!(err.field, field, "{err}");
    };
    refused(
        json!({"rules": [{"method": "tools/list", "tool": "x"}]}),
        "mcp.endpoints[0].rules[0].tool",
    );
    refused(
        json!({"rules": [{"method": "tools/call", "uri": "x"}]}),
        "mcp.endpoints[0].rules[0].uri",
    );
    refused(
        json!({"rules": [{"method": "tools/call", "tool": "a", "prompt": "b"}]}),
        "mcp.endpoints[0].rules[0].prompt",
    );
    refused(
        json!({"rules": [{"method": "tools/call", "tool": "x", "rate_limit": "nope"}]}),
        "mcp.endpoints[0].rules[0].rate_limit",
    );
    refused(
        json!({"rules": [{"method": "tools/call", "tool": "x", "deny": true, "scopes": ["a"]}]}),
        "mcp.endpoints[0].rules[0].deny",
    );
    refused(
        json!({"rules": [{"method": "tools/call", "tool": "x", "scopes": ["a b"]}]}),
        "mcp.endpoints[0].rules[0].scopes[0]",
    );
    refused(
        json!({"rules": [{"method": "tools/call", "tool": "x", "sensitivity": "extreme"}]}),
        "mcp.endpoints[0].rules[0].sensitivity",
    );
    refused(json!({"resource": "/mcp"}), "mcp.endpoints[0].resource");
    refused(
        json!({"resource": "https://x.example/mcp#frag"}),
        "mcp.endpoints[0].resource",
    );
    refused(json!({"path": "mcp"}), "mcp.endpoints[0].path");
    refused(
        json!({"authorization_servers": []}),
        "mcp.endpoints[0].authorization_servers",
    );
    refused(
        json!({"max_body_bytes": 0}),
        "mcp.endpoints[0].max_body_bytes",
    );
    refused(json!({"batches": "some"}), "mcp.endpoints[0].batches");
    refused(
        json!({"challenge_scopes": "all"}),
        "mcp.endpoints[0].challenge_scopes",
    );
    refused(json!({"tools": []}), "mcp.endpoints[0].tools");
    let mut c = config(json!({}));
    let first = c["mcp"]["endpoints"][0].clone();
    c["mcp"]["endpoints"] = json!([first.clone(), first]);
    let err = Engine::from_json(c.to_string().as_bytes()).err().unwrap();
    assert_eq!(err.field, "mcp.endpoints[1].name");
}
