//! Agent guardrails through the whole engine, with real signed tokens: owner isolation (path
//! variable, query, header, MCP argument, support roles), user presence and approval for delegated
//! calls (RFC 9470 challenges), and a step-up shown by `amr` as well as `acr`. The same rules
//! through a real Envoy and the demo IdP live in `tests/test_guardrails.py`.
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
use warden::decision::Body;
use warden::{Decision, Engine, Request, TokenCache, Verdict};

const MCP: &str = "https://mcp.example.com/mcp";
const APPROVED: &str = "urn:warden:acr:approved";

/// Routes and an MCP endpoint guarded by every rule; `extra` top-level members replace the base's.
fn engine_with(extra: Value) -> Engine {
    let mut c = config();
    c["providers"][0]["audiences"] = json!([AUDIENCE, MCP]);
    c["routes"] = json!([
        {"name": "user-orders", "methods": ["GET"], "path": "/users/{user}/orders",
         "owner": {"path_variable": "user", "roles": ["support"]}},
        {"name": "search", "methods": ["GET"], "path": "/search",
         "owner": {"query": "user", "header": "x-user-id"}},
        {"name": "user-profile", "methods": ["GET"], "path": "/users/{user}/profile",
         "owner": {"path_variable": "user"}, "presence": {"auth_within_s": 300}},
        {"name": "user-feed", "methods": ["GET"], "path": "/users/{user}/feed",
         "presence": {"exchanged_within_s": 60, "auth_within_s": 300, "acr_values": ["urn:warden:acr:pwd"]}},
        {"name": "transfer", "methods": ["POST"], "path": "/users/{user}/transfers",
         "owner": {"path_variable": "user"},
         "approval": {"acr_values": [APPROVED], "max_age_s": 120}},
        {"name": "mfa-only", "methods": ["GET"], "path": "/secure", "step_up": true}
    ]);
    c["delegation"] = json!({"actors": [{"name": "assistant", "sub": "agent:assistant",
                                         "subjects": ["*"], "scopes": ["orders:read"]}]});
    c["mcp"] = json!({"endpoints": [{
    "name": "orders-mcp", "path": "/mcp", "resource": MCP,
    "authorization_servers": [ISSUER], "default": "allow",
    "rules": [
        {"method": "tools/call", "tool": "read_orders",
         "owner": {"argument": "user", "roles": ["support"]}},
        {"method": "tools/call", "tool": "user_summary",
         "presence": {"auth_within_s": 300}},
        {"method": "tools/call", "tool": "refund_order",
         "owner": {"argument": "user"},
         "approval": {"acr_values": [APPROVED], "max_age_s": 120}},
        {"method": "tools/call", "tool": "wipe", "step_up": true}
    ]}]});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    Engine::from_json(c.to_string().as_bytes()).unwrap()
}

fn engine() -> Engine {
    engine_with(json!({}))
}

/// The same token, delegated to the assistant agent (RFC 8693 `act`).
fn delegated(changes: Value) -> String {
    let mut c = changes;
    c["act"] = json!({"sub": "agent:assistant"});
    bearer_with(c)
}

fn get(e: &Engine, path: &str, auth: &str) -> Decision {
    decide_once(e, "GET", path, &[("authorization", auth)])
}

/// A `tools/call` of `tool` with `arguments` to the MCP endpoint.
fn call_tool(e: &Engine, auth: &str, tool: &str, arguments: Value) -> Decision {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": tool, "arguments": arguments}})
    .to_string();
    let headers = vec![
        ("authorization".to_owned(), auth.to_owned()),
        ("mcp-method".to_owned(), "tools/call".to_owned()),
        ("mcp-name".to_owned(), tool.to_owned()),
    ];
    let req = Request {
        method: "POST",
        path: "/mcp",
        headers: &headers,
        request_id: "req-1",
        now_s: NOW,
        body: Body::Read(body.as_bytes()),
        ..Request::default()
    };
    decide_request(e, &req, &mut TokenCache::default())
}

/// A 401 RFC 9470 challenge (`insufficient_user_authentication`) for `reason`.
#[track_caller]
fn assert_challenged(d: &Decision, reason: &str) {
    assert_eq!((d.status, d.reason), (401, reason), "decision: {d:?}");
    assert_eq!(d.verdict, Verdict::StepUp);
    assert!(
        challenge(d).starts_with(r#"Bearer error="insufficient_user_authentication""#),
        "{d:?}"
    );
}

fn challenge(d: &Decision) -> &str {
    d.reply
        .as_ref()
        .and_then(|r| r.headers.iter().find(|(n, _)| n == "www-authenticate"))
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

fn mcp_token(changes: Value) -> String {
    let mut c = changes;
    c["aud"] = json!(MCP);
    bearer_with(c)
}

fn mcp_delegated(changes: Value) -> String {
    let mut c = changes;
    c["aud"] = json!(MCP);
    delegated(c)
}

// --- owner isolation -------------------------------------------------------------------------

#[test]
fn an_agent_reads_alices_data_for_alice_and_not_bobs() {
    let e = engine();
    let t = delegated(json!({}));
    assert_decision(&get(&e, "/users/alice/orders", &t), 200, "ok");
    let d = get(&e, "/users/bob/orders", &t);
    assert_decision(&d, 403, "owner_mismatch");
    assert_eq!(d.reply.as_ref().unwrap().status, 403);
    assert!(d.reply.as_ref().unwrap().body.contains("access_denied"));
    assert!(
        challenge(&d).is_empty(),
        "a policy refusal carries no challenge"
    );
    // The agent's own subject is never the owner: the user it acts for is.
    assert_decision(
        &get(&e, "/users/agent:assistant/orders", &t),
        403,
        "owner_mismatch",
    );
    // The user in person, too.
    assert_decision(
        &get(&e, "/users/alice/orders", &bearer_with(json!({}))),
        200,
        "ok",
    );
    assert_decision(
        &get(&e, "/users/bob/orders", &bearer_with(json!({}))),
        403,
        "owner_mismatch",
    );
}

#[test]
fn a_support_role_reaches_anyones_data() {
    let e = engine();
    for roles in [json!(["support"]), json!("staff support")] {
        let t = bearer_with(json!({"sub": "sam", "roles": roles}));
        assert_decision(&get(&e, "/users/bob/orders", &t), 200, "ok");
    }
    // Another role, or the role in another claim, is not enough.
    let t = bearer_with(json!({"sub": "sam", "roles": ["sales"], "groups": ["support"]}));
    assert_decision(&get(&e, "/users/bob/orders", &t), 403, "owner_mismatch");
    // The route without roles holds staff to their own data.
    let t = bearer_with(json!({"sub": "sam", "roles": ["support"]}));
    assert_decision(&get(&e, "/users/bob/profile", &t), 403, "owner_mismatch");
    // A configured claim name.
    let e = engine_with(json!({"routes": [{"name": "u", "path": "/users/{user}",
        "owner": {"path_variable": "user", "roles": ["support"], "roles_claim": "groups"}}]}));
    let t = bearer_with(json!({"sub": "sam", "groups": ["support"]}));
    assert_decision(&get(&e, "/users/bob", &t), 200, "ok");
}

#[test]
fn query_and_header_owners_must_all_be_the_subject() {
    let e = engine();
    let t = delegated(json!({}));
    assert_decision(&get(&e, "/search?user=alice", &t), 200, "ok");
    assert_decision(&get(&e, "/search?q=x&user=bob", &t), 403, "owner_mismatch");
    // Percent- and plus-decoded as a form, and every occurrence counts.
    assert_decision(&get(&e, "/search?%75ser=bob", &t), 403, "owner_mismatch");
    assert_decision(
        &get(&e, "/search?user=alice&user=bob", &t),
        403,
        "owner_mismatch",
    );
    assert_decision(&get(&e, "/search?user=al%69ce", &t), 200, "ok");
    // The header, in any spelling an upstream may fold into it.
    let d = decide_once(
        &e,
        "GET",
        "/search",
        &[("authorization", &t), ("x_user_id", "bob")],
    );
    assert_decision(&d, 403, "owner_mismatch");
    let d = decide_once(
        &e,
        "GET",
        "/search?user=alice",
        &[("authorization", &t), ("x-user-id", "alice")],
    );
    assert_decision(&d, 200, "ok");
    // Naming nobody, or an empty owner, is refused.
    assert_decision(&get(&e, "/search", &t), 403, "owner_missing");
    assert_decision(&get(&e, "/search?user=", &t), 403, "owner_missing");
}

#[test]
fn an_mcp_tool_names_its_owner_by_argument() {
    let e = engine();
    let t = mcp_delegated(json!({}));
    let d = call_tool(&e, &t, "read_orders", json!({"user": "alice"}));
    assert_decision(&d, 200, "ok");
    // The decision keeps no argument.
    assert!(d.mcp.as_ref().unwrap().calls[0].arguments.is_none());
    let d = call_tool(&e, &t, "read_orders", json!({"user": "bob"}));
    assert_decision(&d, 403, "owner_mismatch");
    for args in [json!({}), json!({"user": 7}), json!({"user": ""})] {
        assert_decision(
            &call_tool(&e, &t, "read_orders", args),
            403,
            "owner_missing",
        );
    }
    let staff = mcp_token(json!({"sub": "sam", "roles": ["support"]}));
    assert_decision(
        &call_tool(&e, &staff, "read_orders", json!({"user": "bob"})),
        200,
        "ok",
    );
    // A tool without an owner rule is not held to one.
    assert_decision(
        &call_tool(&e, &t, "other", json!({"user": "bob"})),
        200,
        "ok",
    );
}

// --- user presence -----------------------------------------------------------------------------

#[test]
fn a_delegated_call_needs_the_user_to_have_authenticated_recently() {
    let e = engine();
    let fresh = delegated(json!({"auth_time": NOW - 60}));
    assert_decision(&get(&e, "/users/alice/profile", &fresh), 200, "ok");
    for stale in [
        delegated(json!({"auth_time": NOW - 301})),
        delegated(json!({})),                        // no auth_time at all
        delegated(json!({"auth_time": NOW + 3600})), // from the future
    ] {
        let d = get(&e, "/users/alice/profile", &stale);
        assert_challenged(&d, "user_not_present");
        assert_eq!(d.verdict, Verdict::StepUp);
        assert_eq!(
            challenge(&d),
            r#"Bearer error="insufficient_user_authentication", error_description="a stronger or more recent authentication is required", max_age=300"#
        );
    }
    // The user in person is present by definition.
    assert_decision(
        &get(&e, "/users/alice/profile", &bearer_with(json!({}))),
        200,
        "ok",
    );
    // Owner isolation comes first: bob's profile is refused, not challenged.
    let d = get(&e, "/users/bob/profile", &delegated(json!({})));
    assert_decision(&d, 403, "owner_mismatch");
}

#[test]
fn a_recent_exchange_also_shows_presence() {
    let e = engine();
    // Exchanged 30 s ago, the user's login long gone: present.
    let t = delegated(json!({"iat": NOW - 30, "auth_time": NOW - 5000}));
    assert_decision(&get(&e, "/users/alice/feed", &t), 200, "ok");
    // Exchanged long ago, but the user logged in recently: present.
    let t = delegated(json!({"iat": NOW - 500, "auth_time": NOW - 10}));
    assert_decision(&get(&e, "/users/alice/feed", &t), 200, "ok");
    // Neither: the challenge names the acr and max_age configured.
    let t = delegated(json!({"iat": NOW - 500, "auth_time": NOW - 5000}));
    let d = get(&e, "/users/alice/feed", &t);
    assert_challenged(&d, "user_not_present");
    assert!(challenge(&d).ends_with(r#"acr_values="urn:warden:acr:pwd", max_age=300"#));
}

#[test]
fn an_mcp_tool_can_require_presence() {
    let e = engine();
    let d = call_tool(
        &e,
        &mcp_delegated(json!({"auth_time": NOW - 10})),
        "user_summary",
        json!({}),
    );
    assert_decision(&d, 200, "ok");
    let d = call_tool(
        &e,
        &mcp_delegated(json!({"auth_time": NOW - 900})),
        "user_summary",
        json!({}),
    );
    assert_challenged(&d, "user_not_present");
    // The MCP challenge points at the endpoint's metadata too.
    assert!(challenge(&d).contains("max_age=300, resource_metadata="));
}

// --- approval ----------------------------------------------------------------------------------

#[test]
fn a_high_privilege_operation_needs_the_users_approval() {
    let e = engine();
    let post = |auth: &str| {
        decide_once(
            &e,
            "POST",
            "/users/alice/transfers",
            &[("authorization", auth)],
        )
    };
    let d = post(&delegated(
        json!({"acr": "urn:warden:acr:mfa", "auth_time": NOW - 5}),
    ));
    assert_challenged(&d, "approval_required");
    assert!(challenge(&d).ends_with(r#"acr_values="urn:warden:acr:approved", max_age=120"#));
    // Approved a moment ago: passes.
    let approved = delegated(json!({"acr": APPROVED, "auth_time": NOW - 5}));
    assert_decision(&post(&approved), 200, "ok");
    // An approval too old no longer counts.
    let old = delegated(json!({"acr": APPROVED, "auth_time": NOW - 121}));
    assert_challenged(&post(&old), "approval_required");
    // An approval for alice does not open bob's account.
    let d = decide_once(
        &e,
        "POST",
        "/users/bob/transfers",
        &[("authorization", &approved)],
    );
    assert_decision(&d, 403, "owner_mismatch");
    // The user in person needs no approval from themself.
    assert_decision(&post(&bearer_with(json!({}))), 200, "ok");
}

#[test]
fn an_mcp_tool_can_require_approval() {
    let e = engine();
    let args = json!({"user": "alice", "order": "7"});
    let d = call_tool(&e, &mcp_delegated(json!({})), "refund_order", args.clone());
    assert_challenged(&d, "approval_required");
    assert!(challenge(&d).contains(r#"acr_values="urn:warden:acr:approved", max_age=120"#));
    let ok = mcp_delegated(json!({"acr": APPROVED, "auth_time": NOW - 1}));
    assert_decision(&call_tool(&e, &ok, "refund_order", args), 200, "ok");
    let bob = json!({"user": "bob", "order": "7"});
    assert_decision(
        &call_tool(&e, &ok, "refund_order", bob),
        403,
        "owner_mismatch",
    );
}

// --- step-up by amr ----------------------------------------------------------------------------

fn with_risk(risk: Value) -> Engine {
    engine_with(json!({"risk": risk}))
}

#[test]
fn amr_satisfies_a_step_up_configured_for_it() {
    let e =
        with_risk(json!({"acr_values": ["urn:warden:acr:mfa"], "amr_any": ["mfa", "otp", "hwk"]}));
    let mfa = bearer_with(json!({"amr": ["pwd", "mfa"], "auth_time": NOW - 10}));
    assert_decision(&get(&e, "/secure", &mfa), 200, "ok");
    assert!(get(&e, "/secure", &mfa).risk.unwrap().stepped_up);
    // acr still counts.
    let acr = bearer_with(json!({"acr": "urn:warden:acr:mfa", "auth_time": NOW - 10}));
    assert_decision(&get(&e, "/secure", &acr), 200, "ok");
    // A password alone, an amr as a string, or a stale MFA: challenged.
    for t in [
        bearer_with(json!({"amr": ["pwd"], "auth_time": NOW - 10})),
        bearer_with(json!({"amr": "mfa", "auth_time": NOW - 10})),
        bearer_with(json!({"amr": ["mfa"], "auth_time": NOW - 301})),
        bearer_with(json!({"amr": ["mfa"]})),
    ] {
        let d = get(&e, "/secure", &t);
        assert_challenged(&d, "step_up_required");
        assert!(challenge(&d).contains(r#"acr_values="urn:warden:acr:mfa""#));
    }
    // An MCP tool's step-up likewise.
    let t = mcp_token(json!({"amr": ["hwk"], "auth_time": NOW - 10}));
    assert_decision(&call_tool(&e, &t, "wipe", json!({})), 200, "ok");
}

#[test]
fn amr_counts_only_where_configured() {
    let e = with_risk(json!({"acr_values": ["urn:warden:acr:mfa"]}));
    let mfa = bearer_with(json!({"amr": ["mfa"], "auth_time": NOW - 10}));
    assert_challenged(&get(&e, "/secure", &mfa), "step_up_required");
    let t = mcp_token(json!({"amr": ["mfa"], "auth_time": NOW - 10}));
    assert_challenged(&call_tool(&e, &t, "wipe", json!({})), "step_up_required");
}

// --- config ------------------------------------------------------------------------------------

#[test]
fn bad_guardrail_configs_are_refused_naming_the_field() {
    let route = |extra: Value| {
        let mut r = json!({"name": "u", "path": "/users/{user}"});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        let mut c = config();
        c["routes"] = json!([r]);
        Engine::from_json(c.to_string().as_bytes())
            .err()
            .unwrap()
            .field
    };
    assert_eq!(
        route(json!({"owner": {"path_variable": "id"}})),
        "routes[0].owner.path_variable"
    );
    assert_eq!(route(json!({"owner": {}})), "routes[0].owner");
    assert_eq!(
        route(json!({"owner": {"argument": "user"}})),
        "routes[0].owner.argument"
    );
    assert_eq!(
        route(json!({"owner": {"header": "x-auth-subject"}})),
        "routes[0].owner.header"
    );
    assert_eq!(
        route(json!({"owner": {"query": "u", "roles": [""]}})),
        "routes[0].owner.roles[0]"
    );
    assert_eq!(route(json!({"presence": {}})), "routes[0].presence");
    assert_eq!(
        route(json!({"presence": {"auth_within_s": 0}})),
        "routes[0].presence.auth_within_s"
    );
    assert_eq!(
        route(json!({"approval": {"acr_values": []}})),
        "routes[0].approval.acr_values"
    );
    assert_eq!(
        route(json!({"approval": {"acr_values": ["a b"]}})),
        "routes[0].approval.acr_values[0]"
    );
    assert_eq!(
        route(json!({"anonymous": true, "owner": {"path_variable": "user"}})),
        "routes[0].anonymous"
    );
    let mut c = config();
    c["providers"][0]["audiences"] = json!([MCP]);
    c["mcp"] = json!({"endpoints": [{"name": "m", "path": "/mcp", "resource": MCP,
        "authorization_servers": [ISSUER],
        "rules": [{"method": "prompts/get", "owner": {"argument": "user"}}]}]});
    let err = Engine::from_json(c.to_string().as_bytes()).err().unwrap();
    assert_eq!(err.field, "mcp.endpoints[0].rules[0].owner.argument");
    let mut c = config();
    c["risk"] = json!({"amr_any": [""]});
    let err = Engine::from_json(c.to_string().as_bytes()).err().unwrap();
    assert_eq!(err.field, "risk.amr_any[0]");
}

#[test]
fn shadow_mode_records_guardrail_refusals_and_forwards() {
    let e = engine_with(json!({"mode": "shadow"}));
    let d = get(&e, "/users/bob/orders", &delegated(json!({})));
    assert_eq!(
        (d.status, d.reason, d.reply.is_none()),
        (403, "owner_mismatch", true)
    );
    let d = get(
        &e,
        "/users/alice/profile",
        &delegated(json!({"auth_time": NOW - 900})),
    );
    assert_eq!(
        (d.status, d.reason, d.reply.is_none()),
        (401, "user_not_present", true)
    );
    assert_eq!(d.verdict, Verdict::StepUp);
}
