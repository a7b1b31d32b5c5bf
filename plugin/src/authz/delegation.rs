//! Delegation (RFC 8693 §4.1): the `act` chain of a token, and whether its current actor may act for
//! the subject on this route, with which scopes at most. Delegation asserted by request headers is
//! never trusted: those headers are removed or the request refused.
//!
//! Only the token's top-level claims and the current (outermost) actor are authorized; prior actors
//! are informational (kept for the audit record) and `may_act` grants nothing at the resource.

use super::pattern;
use super::routes::RouteTable;
use crate::config::delegation::{DelegationConfig, UntrustedHeaderAction};
use crate::config::ConfigError;
use crate::credential::{Actor, Identity};
use serde_json::{Map, Value};

/// Deepest `act` nesting ever parsed; a deeper chain is refused without reading further.
pub const MAX_CHAIN_DEPTH: usize = 8;

/// Why a delegation is refused (403; the reason goes to the audit record only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelegationError {
    /// `act` is not an object of string members with a `sub`.
    Malformed,
    /// More nested actors than `max_depth`.
    TooDeep,
    /// No actor rule matches the current actor, subject and route.
    ActorNotAllowed,
    /// An actor carries a tenant other than the subject's.
    TenantMismatch,
    /// The request carries a delegation header and the config refuses those.
    UntrustedHeader,
}

impl DelegationError {
    /// Name for audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            DelegationError::Malformed => "delegation_malformed",
            DelegationError::TooDeep => "delegation_too_deep",
            DelegationError::ActorNotAllowed => "actor_not_allowed",
            DelegationError::TenantMismatch => "actor_tenant_mismatch",
            DelegationError::UntrustedHeader => "untrusted_delegation_header",
        }
    }
}

struct ActorRule {
    sub: Option<String>,
    client_id: Option<String>,
    issuer: Option<String>,
    subjects: Vec<String>,
    routes: Vec<String>,
    scopes: Vec<String>,
}

/// The compiled `delegation` section.
pub struct Delegation {
    max_depth: usize,
    rules: Vec<ActorRule>,
    same_tenant: bool,
    tenant_claim: String,
    untrusted_headers: Vec<String>,
    action: UntrustedHeaderAction,
}

impl Delegation {
    /// Compiles the section; `route_names` are the configured routes (a rule naming another is an error).
    pub fn compile(c: &DelegationConfig, route_names: &[&str]) -> Result<Delegation, ConfigError> {
        if c.max_depth == 0 || c.max_depth > MAX_CHAIN_DEPTH {
            return Err(ConfigError::new(
                "delegation.max_depth",
                format!("must be between 1 and {MAX_CHAIN_DEPTH}"),
            ));
        }
        if c.tenant_claim.is_empty() {
            return Err(ConfigError::new(
                "delegation.tenant_claim",
                "must not be empty",
            ));
        }
        let mut rules = Vec::with_capacity(c.actors.len());
        for (i, a) in c.actors.iter().enumerate() {
            let at = format!("delegation.actors[{i}]");
            if a.sub.is_none() && a.client_id.is_none() {
                return Err(ConfigError::new(
                    at,
                    "name the actor by `sub` or `client_id` (a rule matching any actor is too broad)",
                ));
            }
            if a.subjects.is_empty() {
                return Err(ConfigError::new(
                    format!("{at}.subjects"),
                    "list the subjects this actor may act for (`[\"*\"]` for anyone)",
                ));
            }
            RouteTable::check_names(route_names, &a.routes, &format!("{at}.routes"))?;
            rules.push(ActorRule {
                sub: a.sub.clone(),
                client_id: a.client_id.clone(),
                issuer: a.issuer.clone(),
                subjects: a.subjects.clone(),
                routes: a.routes.clone(),
                scopes: a.scopes.clone(),
            });
        }
        let mut untrusted_headers = Vec::with_capacity(c.untrusted_headers.len());
        for (i, h) in c.untrusted_headers.iter().enumerate() {
            let h = h.to_ascii_lowercase();
            if h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(ConfigError::new(
                    format!("delegation.untrusted_headers[{i}]"),
                    "not a header name",
                ));
            }
            untrusted_headers.push(h);
        }
        Ok(Delegation {
            max_depth: c.max_depth,
            rules,
            same_tenant: c.same_tenant,
            tenant_claim: c.tenant_claim.clone(),
            untrusted_headers,
            action: c.untrusted_header_action,
        })
    }

    /// The delegation headers present in the request (lower-cased, once each), whatever the action:
    /// they never reach the upstream, also when a shadowed refusal forwards the request.
    pub fn present_untrusted(&self, headers: &[(String, String)]) -> Vec<String> {
        let mut found: Vec<String> = Vec::new();
        for (name, _) in headers {
            // `same_header` folds case itself: only a header found is lower-cased (allocated).
            let untrusted = self
                .untrusted_headers
                .iter()
                .any(|h| crate::upstream::same_header(h, name));
            if !untrusted {
                continue;
            }
            let lower = name.to_ascii_lowercase();
            if !found.contains(&lower) {
                found.push(lower);
            }
        }
        found
    }

    /// The delegation headers present in the request (lower-cased): to remove, or `Err` to refuse.
    pub fn untrusted_headers(
        &self,
        headers: &[(String, String)],
    ) -> Result<Vec<String>, DelegationError> {
        let found = self.present_untrusted(headers);
        self.refuse_untrusted(&found)?;
        Ok(found)
    }

    /// `Err` when the config refuses requests carrying the untrusted headers `found`
    /// ([`Delegation::present_untrusted`]).
    pub fn refuse_untrusted(&self, found: &[String]) -> Result<(), DelegationError> {
        if !found.is_empty() && self.action == UntrustedHeaderAction::Refuse {
            return Err(DelegationError::UntrustedHeader);
        }
        Ok(())
    }

    /// The actor chain of a token's claims, current actor first (empty: no `act`).
    pub fn chain(&self, claims: &Map<String, Value>) -> Result<Vec<Actor>, DelegationError> {
        parse_chain(claims, &self.tenant_claim, self.max_depth)
    }

    /// Authorizes a delegated call: the current actor against the rules, every actor's tenant against
    /// the subject's. Returns the effective scopes (the token's, within the actor's allowance), or
    /// `None` when nobody acts for the subject (the token's scopes stand, not copied).
    pub fn authorize(
        &self,
        id: &Identity,
        route: Option<&str>,
    ) -> Result<Option<Vec<String>>, DelegationError> {
        let Some(current) = id.actor() else {
            return Ok(None);
        };
        if self.same_tenant
            && id
                .actors
                .iter()
                .any(|a| a.tenant.is_some() && a.tenant != id.tenant)
        {
            return Err(DelegationError::TenantMismatch);
        }
        let rule = self
            .rules
            .iter()
            .find(|r| {
                opt_match(&r.sub, Some(&current.subject))
                    && opt_match(&r.client_id, current.client.as_deref())
                    && opt_match(&r.issuer, current.issuer.as_deref())
                    && pattern::any(&r.subjects, &id.subject)
                    && (r.routes.is_empty()
                        || route.is_some_and(|n| r.routes.iter().any(|x| x == n)))
            })
            .ok_or(DelegationError::ActorNotAllowed)?;
        Ok(Some(
            id.scopes
                .iter()
                .filter(|s| rule.scopes.contains(s))
                .cloned()
                .collect(),
        ))
    }
}

/// A rule's optional pattern: absent matches anything, present needs a value that matches.
fn opt_match(p: &Option<String>, value: Option<&str>) -> bool {
    match p {
        None => true,
        Some(p) => value.is_some_and(|v| pattern::matches(p, v)),
    }
}

/// Walks nested `act` objects (outermost = current actor). A chain longer than `max_depth` is refused.
pub fn parse_chain(
    claims: &Map<String, Value>,
    tenant_claim: &str,
    max_depth: usize,
) -> Result<Vec<Actor>, DelegationError> {
    let mut out = Vec::new();
    let mut next = claims.get("act");
    while let Some(v) = next {
        if out.len() >= max_depth.min(MAX_CHAIN_DEPTH) {
            return Err(DelegationError::TooDeep);
        }
        let obj = v.as_object().ok_or(DelegationError::Malformed)?;
        let s = |name: &str| -> Result<Option<String>, DelegationError> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s))
                    if s.len() <= 1024 && !s.bytes().any(|b| b < 0x20 || b == 0x7f) =>
                {
                    Ok(Some(s.clone()))
                }
                Some(_) => Err(DelegationError::Malformed),
            }
        };
        out.push(Actor {
            subject: s("sub")?.ok_or(DelegationError::Malformed)?,
            client: s("client_id")?,
            issuer: s("iss")?,
            tenant: s(tenant_claim)?,
        });
        next = obj.get("act");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::credential::{CredentialKind, IdentityKind};
    use serde_json::json;

    fn policy(json: &str, routes: &[&str]) -> Delegation {
        let c = Config::from_json(json.as_bytes()).unwrap();
        Delegation::compile(&c.delegation.unwrap(), routes).unwrap()
    }

    fn identity(claims: &Value, d: &Delegation) -> Identity {
        let m = claims.as_object().unwrap();
        Identity {
            credential: CredentialKind::Jwt,
            subject: m["sub"].as_str().unwrap().into(),
            client: None,
            tenant: m.get("tenant").and_then(|t| t.as_str()).map(String::from),
            scopes: m["scope"]
                .as_str()
                .unwrap()
                .split(' ')
                .map(String::from)
                .collect(),
            provider: "corp".into(),
            token_id: None,
            kind: IdentityKind::Human,
            actors: d.chain(m).unwrap(),
            claims: None,
        }
    }

    /// RFC 8693 §4.1, the nested `act` example: service16 is the current actor, service77 a prior one.
    #[test]
    fn rfc8693_nested_act_example() {
        let claims = json!({
            "aud": "https://consumer.example.com",
            "iss": "https://issuer.example.com",
            "exp": 1443904177,
            "nbf": 1443904077,
            "sub": "user@example.com",
            "act": {"sub": "https://service16.example.com",
                    "act": {"sub": "https://service77.example.com"}}
        });
        let chain = parse_chain(claims.as_object().unwrap(), "tenant", 2).unwrap();
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[0].subject, "https://service16.example.com");
        assert_eq!(chain[1].subject, "https://service77.example.com");
        assert_eq!(
            parse_chain(claims.as_object().unwrap(), "tenant", 1),
            Err(DelegationError::TooDeep)
        );
    }

    #[test]
    fn malformed_act_is_refused() {
        for act in [json!("agent"), json!({"client_id": "x"}), json!({"sub": 7})] {
            let m = json!({"sub": "u", "act": act});
            assert_eq!(
                parse_chain(m.as_object().unwrap(), "tenant", 4),
                Err(DelegationError::Malformed)
            );
        }
    }

    const POLICY: &str = r#"{"delegation": {"max_depth": 2, "actors": [
        {"sub": "agent:planner", "subjects": ["user:*"], "routes": ["read"], "scopes": ["orders:read"]},
        {"client_id": "bot-*", "issuer": "https://idp", "subjects": ["*"], "scopes": ["orders:read", "orders:write"]}
    ]}}"#;

    #[test]
    fn current_actor_only_and_scopes_within_allowance() {
        let d = policy(POLICY, &["read", "write"]);
        let id = identity(
            &json!({"sub": "user:alice", "tenant": "acme", "scope": "orders:read orders:write",
                    "act": {"sub": "agent:planner", "act": {"sub": "agent:unknown"}}}),
            &d,
        );
        // The prior actor matches no rule: irrelevant. The write scope is outside the allowance.
        assert_eq!(
            d.authorize(&id, Some("read")).unwrap(),
            Some(vec!["orders:read".to_owned()])
        );
        assert_eq!(
            d.authorize(&id, Some("write")),
            Err(DelegationError::ActorNotAllowed)
        );
        assert_eq!(
            d.authorize(&id, None),
            Err(DelegationError::ActorNotAllowed)
        );
        let other = identity(
            &json!({"sub": "svc:x", "scope": "orders:read", "act": {"sub": "agent:planner"}}),
            &d,
        );
        assert_eq!(
            d.authorize(&other, Some("read")),
            Err(DelegationError::ActorNotAllowed)
        );
    }

    #[test]
    fn actor_by_client_and_issuer() {
        let d = policy(POLICY, &["read"]);
        let ok = identity(
            &json!({"sub": "bob", "scope": "orders:write admin",
                    "act": {"sub": "x", "client_id": "bot-7", "iss": "https://idp"}}),
            &d,
        );
        assert_eq!(
            d.authorize(&ok, None).unwrap(),
            Some(vec!["orders:write".to_owned()])
        );
        let wrong_iss = identity(
            &json!({"sub": "bob", "scope": "a", "act": {"sub": "x", "client_id": "bot-7", "iss": "https://evil"}}),
            &d,
        );
        assert!(d.authorize(&wrong_iss, None).is_err());
    }

    #[test]
    fn actors_share_the_subjects_tenant() {
        let d = policy(POLICY, &["read"]);
        let id = identity(
            &json!({"sub": "user:a", "tenant": "acme", "scope": "orders:read",
                    "act": {"sub": "agent:planner", "tenant": "globex"}}),
            &d,
        );
        assert_eq!(
            d.authorize(&id, Some("read")),
            Err(DelegationError::TenantMismatch)
        );
    }

    #[test]
    fn no_act_passes_unchanged_and_no_rules_refuse_any_actor() {
        let d = policy(r#"{"delegation": {}}"#, &[]);
        let plain = identity(&json!({"sub": "u", "scope": "a b"}), &d);
        assert_eq!(d.authorize(&plain, None).unwrap(), None);
        assert_eq!(plain.scopes, ["a", "b"]);
        let acted = identity(&json!({"sub": "u", "scope": "a", "act": {"sub": "x"}}), &d);
        assert_eq!(
            d.authorize(&acted, None),
            Err(DelegationError::ActorNotAllowed)
        );
    }

    #[test]
    fn untrusted_headers_removed_or_refused() {
        let h = vec![
            ("X-On-Behalf-Of".to_string(), "admin".to_string()),
            ("x_on_behalf_of".to_string(), "root".to_string()),
            ("accept".to_string(), "*/*".to_string()),
        ];
        let d = policy(r#"{"delegation": {}}"#, &[]);
        assert_eq!(
            d.untrusted_headers(&h).unwrap(),
            vec!["x-on-behalf-of", "x_on_behalf_of"]
        );
        let r = policy(
            r#"{"delegation": {"untrusted_header_action": "refuse", "untrusted_headers": ["X-On-Behalf-Of"]}}"#,
            &[],
        );
        assert_eq!(
            r.untrusted_headers(&h),
            Err(DelegationError::UntrustedHeader)
        );
    }

    #[test]
    fn bad_config_names_the_field() {
        for (json, field) in [
            (r#"{"max_depth": 0}"#, "delegation.max_depth"),
            (
                r#"{"actors": [{"subjects": ["*"], "scopes": []}]}"#,
                "delegation.actors[0]",
            ),
            (
                r#"{"actors": [{"sub": "a", "subjects": [], "scopes": []}]}"#,
                "delegation.actors[0].subjects",
            ),
            (
                r#"{"actors": [{"sub": "a", "subjects": ["*"], "routes": ["nope"], "scopes": []}]}"#,
                "delegation.actors[0].routes[0]",
            ),
            (
                r#"{"untrusted_headers": ["a b"]}"#,
                "delegation.untrusted_headers[0]",
            ),
        ] {
            let c = Config::from_json(format!(r#"{{"delegation": {json}}}"#).as_bytes()).unwrap();
            let e = Delegation::compile(&c.delegation.unwrap(), &[])
                .err()
                .unwrap();
            assert_eq!(e.field, field, "{json}");
        }
    }
}
