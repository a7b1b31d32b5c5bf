//! What the upstream gets of the headers Warden reserves (docs/ARCHITECTURE.md): Warden's `x-auth-*`
//! values, once each, and never a client's value of an `x-auth-*` header (any case) or of an
//! untrusted delegation header, also when the client sends one twice.
//!
//! How depends on the gateway ([`HostRules::removes_request_headers`]). Envoy removes a request
//! header: the client's copies are removed and Warden's values set. ngx_wasm_module (Kong) cannot:
//! a removal only zeroes the entry's hash and nginx's `proxy_pass` still forwards it, and a
//! replace overwrites the first copy in place but lets a second copy through. There, a request
//! carrying a reserved header is refused ([`ReservedHeaderAction::Refuse`], the default), or each
//! such header is overwritten in place when the client sent it once
//! ([`ReservedHeaderAction::Overwrite`]). The engine applies this rule ([`admit`], [`edits`]); the
//! adapter only carries out the edits ([`forward`]).

use crate::config::ReservedHeaderAction;
use crate::decision::UpstreamHeader;
use crate::gateway::HostRules;
use crate::reply::Denial;
use std::borrow::Cow;

/// Whether header names `a` and `b` are one header to an upstream: case ignored, and `_` read as
/// `-`, as CGI, WSGI and Rack do (both `x_auth_subject` and `x-auth-subject` become
/// `HTTP_X_AUTH_SUBJECT` there, and the server merges or picks one).
pub fn same_header(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y))
}

/// Every value of header `name` in `headers` (trimmed), names read as [`same_header`] reads them:
/// a value an upstream would take for that header, in whatever spelling the client sent it.
pub fn header_values<'a: 'n, 'n>(
    headers: &'a [(String, String)],
    name: &'n str,
) -> impl Iterator<Item = &'a str> + 'n {
    headers
        .iter()
        .filter(move |(n, _)| same_header(n, name))
        .map(|(_, v)| v.trim())
}

/// Whether header name `name` starts with `prefix`, read as [`same_header`] reads names.
pub fn header_has_prefix(name: &str, prefix: &str) -> bool {
    name.get(..prefix.len())
        .is_some_and(|head| same_header(head, prefix))
}

fn fold(b: u8) -> u8 {
    if b == b'_' {
        b'-'
    } else {
        b.to_ascii_lowercase()
    }
}

/// A request's headers as the gateway lets a filter change them.
pub trait RequestHeaders {
    /// Removes every copy of `name` (as far as the gateway can).
    fn remove(&mut self, name: &str);
    /// Sets `name` to `value` (replacing the gateway's entry, or adding one).
    fn set(&mut self, name: &str, value: &str);
    /// Adds an entry `name: value`, leaving any entry of that name as it is.
    fn add(&mut self, name: &str, value: &str);
}

/// Whether a request carrying the `reserved` headers (lower-cased names present in `headers`) may be
/// forwarded on this gateway: always where removal works; otherwise only with none, or with
/// `overwrite` and each sent once.
pub fn admit(
    host: HostRules,
    action: ReservedHeaderAction,
    headers: &[(String, String)],
    reserved: &[String],
) -> Result<(), Denial> {
    if host.removes_request_headers || reserved.is_empty() {
        return Ok(());
    }
    let once = |name: &String| headers.iter().filter(|(n, _)| same_header(n, name)).count() <= 1;
    match action {
        ReservedHeaderAction::Overwrite if reserved.iter().all(once) => Ok(()),
        _ => Err(Denial::ReservedHeader),
    }
}

/// The edits of a forwarded request: the client's reserved headers to remove and Warden's headers
/// to set. Where removal does not work, nothing is removed: a reserved header Warden does not set
/// is overwritten with an empty value instead ([`admit`] let through only headers sent once).
pub fn edits(
    host: HostRules,
    remove: Vec<String>,
    mut set: Vec<UpstreamHeader>,
) -> (Vec<String>, Vec<UpstreamHeader>) {
    if host.removes_request_headers {
        return (remove, set);
    }
    for name in remove {
        if !set.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            set.push((name.into(), Cow::Borrowed("")));
        }
    }
    (Vec::new(), set)
}

/// Carries out a decision's edits on the request (the adapter's part). Where removal works, every
/// client copy of Warden's own headers (`x-auth-*`, any spelling) is on the decision's removal list
/// ([`crate::decision::OWN_HEADER_PREFIX`]) and removed first, so Warden's values of those are
/// added: in Envoy an add costs less than a replace, which looks the name up and clears what it
/// finds (0.38 vs 0.61 µs per header, BENCHMARKS.md). Any other name (`accept-encoding`), and every
/// name on a gateway that cannot remove, is replaced.
pub fn forward(
    host: HostRules,
    remove: &[String],
    set: &[UpstreamHeader],
    headers: &mut dyn RequestHeaders,
) {
    for name in remove {
        headers.remove(name);
    }
    for (name, value) in set {
        if host.removes_request_headers
            && header_has_prefix(name, crate::decision::OWN_HEADER_PREFIX)
        {
            headers.add(name, value);
        } else {
            headers.set(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{Decision, Engine, Env, Request};
    use crate::gateway::mock::{EnvoyHeaders, NgxHeaders};
    use crate::gateway::HostKind;
    use crate::shared::{CasRule, MemoryStore};
    use crate::TokenCache;
    use sha2::{Digest, Sha256};

    const KEY: &str = "k-alice";

    fn engine(host: HostKind, extra: &str) -> Engine {
        let sha = hex::encode(Sha256::digest(KEY.as_bytes()));
        let json = format!(
            r#"{{"api_keys": {{"keys": [{{"id": "a", "sha256": "{sha}", "subject": "alice",
                "tenant": "acme", "scopes": ["orders:read"]}}]}},
                "routes": [{{"name": "health", "path": "/health", "anonymous": true}},
                           {{"name": "any", "prefix": "/"}}]{extra}}}"#
        );
        Engine::from_json(json.as_bytes())
            .unwrap()
            .with_host(HostRules::of(host))
    }

    fn decide(engine: &Engine, path: &str, headers: &[(String, String)]) -> Decision {
        let req = Request {
            method: "GET",
            path,
            headers,
            request_id: "r1",
            now_s: 1_767_225_600,
            ..Request::default()
        };
        let shared = MemoryStore::new(CasRule::Kong);
        engine.decide(
            &req,
            &mut Env {
                cache: &mut TokenCache::new(8),
                shared: &shared,
                clock_us: &|| 0,
            },
        )
    }

    fn hs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// What the upstream receives when the adapter forwards `d` on gateway `kind`, which keeps
    /// `headers` so.
    fn upstream_of(kind: HostKind, d: &Decision, headers: &mut dyn RequestHeaders) {
        forward(
            HostRules::of(kind),
            &d.remove_headers,
            &d.upstream_headers,
            headers,
        );
    }

    /// Client values of reserved headers, and headers Warden sets that arrive more than once.
    fn leaks(forwarded: &[(String, String)], client: &[(String, String)]) -> Vec<String> {
        let reserved = |n: &str| {
            let n = n.to_ascii_lowercase();
            n.starts_with("x-auth-") || n == "x-on-behalf-of" || n == "x-forwarded-user"
        };
        let mut out = Vec::new();
        for (n, v) in forwarded.iter().filter(|(n, _)| reserved(n)) {
            if client
                .iter()
                .any(|(cn, cv)| cn.eq_ignore_ascii_case(n) && cv == v)
            {
                out.push(format!("client value {n}: {v}"));
            }
            let copies = forwarded
                .iter()
                .filter(|(m, _)| m.eq_ignore_ascii_case(n))
                .count();
            if copies > 1 {
                out.push(format!("{copies} copies of {n}"));
            }
        }
        out
    }

    /// The issue's requests, the header sent in odd case and twice.
    fn spoofing_requests() -> Vec<Vec<(String, String)>> {
        [
            &[("x-auth-subject", "evil")][..],
            &[("X-Auth-Subject", "evil"), ("x-auth-subject", "evil2")],
            &[("x-auth-tenant", "evil-tenant"), ("X-AUTH-RISK-SCORE", "0")],
            &[("x-on-behalf-of", "root"), ("X-Forwarded-User", "admin")],
            &[("x-auth-anything", "1"), ("x-auth-anything", "2")],
        ]
        .iter()
        .map(|pairs| {
            let mut h = hs(&[
                (":method", "GET"),
                (":path", "/orders/1"),
                ("x-api-key", KEY),
            ]);
            h.extend(hs(pairs));
            h
        })
        .collect()
    }

    /// On ngx_wasm_module (a removal leaves the entry forwarded), no client value of a reserved
    /// header reaches the upstream and Warden's headers arrive once: every such request is refused
    /// (400 `invalid_request`), or (`overwrite`) forwarded with the client's copy overwritten.
    #[test]
    fn kong_upstream_never_gets_a_client_value() {
        for extra in ["", r#", "reserved_header_action": "overwrite""#] {
            let engine = engine(HostKind::Kong, extra);
            for client in spoofing_requests() {
                let d = decide(&engine, "/orders/1", &client);
                let mut ngx = NgxHeaders::new(&client);
                match &d.reply {
                    Some(r) => {
                        assert_eq!(r.status, 400, "{client:?}");
                        assert_eq!(d.reason, "reserved_header");
                        let challenge = r.headers.iter().find(|(n, _)| n == "www-authenticate");
                        assert_eq!(
                            challenge.map(|(_, v)| v.as_str()),
                            Some(r#"Bearer error="invalid_request""#)
                        );
                        continue;
                    }
                    None => upstream_of(HostKind::Kong, &d, &mut ngx),
                }
                assert!(!extra.is_empty(), "refuse forwarded {client:?}");
                let forwarded = ngx.forwarded();
                assert_eq!(
                    leaks(&forwarded, &client),
                    Vec::<String>::new(),
                    "{client:?}"
                );
                let subject = forwarded.iter().filter(|(n, _)| n == "x-auth-subject");
                assert_eq!(
                    subject.map(|(_, v)| v.as_str()).collect::<Vec<_>>(),
                    ["alice"]
                );
            }
        }
    }

    /// `overwrite` forwards a reserved header sent once (overwritten: Warden's value, or empty) and
    /// refuses one sent twice; without one, both actions forward as usual.
    #[test]
    fn kong_overwrite_is_for_single_copies_only() {
        let engine = engine(HostKind::Kong, r#", "reserved_header_action": "overwrite""#);
        let statuses: Vec<u16> = spoofing_requests()
            .iter()
            .map(|c| decide(&engine, "/orders/1", c).status)
            .collect();
        assert_eq!(statuses, [200, 400, 200, 200, 400]);
        let client = &spoofing_requests()[3];
        let d = decide(&engine, "/orders/1", client);
        let mut ngx = NgxHeaders::new(client);
        upstream_of(HostKind::Kong, &d, &mut ngx);
        let forwarded = ngx.forwarded();
        let get = |name: &str| forwarded.iter().find(|(n, _)| n.eq_ignore_ascii_case(name));
        assert_eq!(get("x-on-behalf-of").map(|(_, v)| v.as_str()), Some(""));
        assert_eq!(get("x-forwarded-user").map(|(_, v)| v.as_str()), Some(""));
        let plain = hs(&[(":path", "/orders/1"), ("x-api-key", KEY)]);
        for extra in ["", r#", "reserved_header_action": "overwrite""#] {
            assert_eq!(
                decide(&self::engine(HostKind::Kong, extra), "/", &plain).status,
                200
            );
        }
    }

    /// Refused whatever the mode and the route: shadow mode and an anonymous route would otherwise
    /// forward the client's value.
    #[test]
    fn kong_refusal_holds_in_shadow_mode_and_on_anonymous_routes() {
        let client = &spoofing_requests()[0];
        let shadow = engine(HostKind::Kong, r#", "mode": "shadow""#);
        let d = decide(&shadow, "/orders/1", client);
        assert_eq!(
            (d.status, d.reply.as_ref().map(|r| r.status)),
            (400, Some(400))
        );
        let d = decide(&engine(HostKind::Kong, ""), "/health", client);
        assert_eq!(d.reply.map(|r| r.status), Some(400));
    }

    /// A refused delegation header (`untrusted_header_action: refuse`) in shadow mode: the request
    /// is forwarded, the header is not (removed on Envoy; on Kong the request is refused outright, or
    /// with `overwrite` the header is emptied).
    #[test]
    fn a_shadowed_delegation_refusal_does_not_forward_the_header() {
        let extra = r#", "mode": "shadow", "delegation": {"untrusted_header_action": "refuse"}"#;
        let client = &spoofing_requests()[3];
        for (host, action, status) in [
            (HostKind::Envoy, "", 403),
            (HostKind::Kong, "", 400),
            (
                HostKind::Kong,
                r#", "reserved_header_action": "overwrite""#,
                403,
            ),
        ] {
            let engine = engine(host, &format!("{extra}{action}"));
            let d = decide(&engine, "/orders/1", client);
            assert_eq!(d.status, status, "{host:?} {action}");
            if d.reply.is_some() {
                continue;
            }
            let forwarded = match host {
                HostKind::Envoy => {
                    let mut h = EnvoyHeaders(client.clone());
                    upstream_of(host, &d, &mut h);
                    h.0
                }
                HostKind::Kong => {
                    let mut h = NgxHeaders::new(client);
                    upstream_of(host, &d, &mut h);
                    h.forwarded()
                }
            };
            assert_eq!(leaks(&forwarded, client), Vec::<String>::new(), "{host:?}");
        }
    }

    /// The edits the adapter makes: on Envoy the client's copies go first and Warden's own headers
    /// are then added (cheaper than a replace), any other header replaced; on Kong, which cannot
    /// remove, every header is replaced.
    #[test]
    fn own_headers_are_added_only_where_removal_works() {
        struct Edits(Vec<String>);
        impl RequestHeaders for Edits {
            fn remove(&mut self, name: &str) {
                self.0.push(format!("remove {name}"));
            }
            fn set(&mut self, name: &str, value: &str) {
                self.0.push(format!("set {name}: {value}"));
            }
            fn add(&mut self, name: &str, value: &str) {
                self.0.push(format!("add {name}: {value}"));
            }
        }
        let remove = ["x-auth-subject".to_owned(), "x_auth_tenant".to_owned()];
        let set: [UpstreamHeader; 3] = [
            ("x-auth-subject".into(), "alice".into()),
            ("x-auth-tenant".into(), "acme".into()),
            ("accept-encoding".into(), "identity".into()),
        ];
        let mut envoy = Edits(Vec::new());
        forward(HostRules::of(HostKind::Envoy), &remove, &set, &mut envoy);
        assert_eq!(
            envoy.0,
            [
                "remove x-auth-subject",
                "remove x_auth_tenant",
                "add x-auth-subject: alice",
                "add x-auth-tenant: acme",
                "set accept-encoding: identity",
            ]
        );
        let mut kong = Edits(Vec::new());
        forward(HostRules::of(HostKind::Kong), &[], &set, &mut kong);
        assert_eq!(
            kong.0,
            [
                "set x-auth-subject: alice",
                "set x-auth-tenant: acme",
                "set accept-encoding: identity",
            ]
        );
    }

    /// Envoy removes: the same requests are forwarded, the client's copies gone, Warden's set once.
    #[test]
    fn envoy_removes_and_sets() {
        let engine = engine(HostKind::Envoy, "");
        for client in spoofing_requests() {
            let d = decide(&engine, "/orders/1", &client);
            assert_eq!(d.status, 200, "{client:?}");
            let mut envoy = EnvoyHeaders(client.clone());
            upstream_of(HostKind::Envoy, &d, &mut envoy);
            assert_eq!(leaks(&envoy.0, &client), Vec::<String>::new());
            assert!(!envoy
                .0
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("x-on-behalf-of")));
        }
    }

    /// The double is ngx_wasm_module's: remove-then-set (what Envoy's rule does, and what the
    /// adapter did on Kong) hands the upstream both values, as measured on the real host.
    #[test]
    fn remove_then_set_leaks_on_ngx_wasm_module() {
        let client = hs(&[("x-auth-subject", "evil"), ("x-auth-risk-score", "0")]);
        let mut ngx = NgxHeaders::new(&client);
        forward(
            HostRules::of(HostKind::Envoy),
            &["x-auth-subject".into(), "x-auth-risk-score".into()],
            &[
                ("x-auth-subject".into(), "alice".into()),
                ("x-auth-risk-score".into(), "14".into()),
            ],
            &mut ngx,
        );
        assert_eq!(
            ngx.forwarded(),
            hs(&[
                ("x-auth-subject", "evil"),
                ("x-auth-risk-score", "0"),
                ("x-auth-subject", "alice"),
                ("x-auth-risk-score", "14"),
            ])
        );
        // A set over a header sent twice updates the first copy; the second still goes upstream.
        let mut twice = NgxHeaders::new(&hs(&[("X-Auth-Subject", "e1"), ("x-auth-subject", "e2")]));
        twice.set("x-auth-subject", "alice");
        assert_eq!(
            twice.forwarded(),
            hs(&[("x-auth-subject", "alice"), ("x-auth-subject", "e2")])
        );
    }
}
