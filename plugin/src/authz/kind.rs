//! Which sort of party an identity is (human, service, AI agent), from the `kinds` config: a claim
//! naming the kind, then `sub`/`client_id` rules, then a default (a token without its own `sub`, and
//! an API key, is a service; an actor is an agent; anyone else a human).

use super::pattern;
use crate::config::delegation::KindsConfig;
use crate::config::ConfigError;
use crate::credential::{Actor, CredentialKind, Identity, IdentityKind};
use serde_json::{Map, Value};

/// The compiled `kinds` section.
#[derive(Debug, Default)]
pub struct Kinds {
    claim: Option<String>,
    rules: Vec<crate::config::delegation::KindRuleConfig>,
}

impl Kinds {
    /// Compiles the section.
    pub fn compile(c: &KindsConfig) -> Result<Kinds, ConfigError> {
        if matches!(&c.claim, Some(s) if s.is_empty()) {
            return Err(ConfigError::new("kinds.claim", "must not be empty"));
        }
        for (i, r) in c.rules.iter().enumerate() {
            if r.sub.is_none() && r.client_id.is_none() {
                return Err(ConfigError::new(
                    format!("kinds.rules[{i}]"),
                    "give `sub` or `client_id`",
                ));
            }
        }
        Ok(Kinds {
            claim: c.claim.clone(),
            rules: c.rules.clone(),
        })
    }

    fn by_rule(&self, sub: &str, client: Option<&str>) -> Option<IdentityKind> {
        self.rules
            .iter()
            .find(|r| {
                r.sub.as_deref().is_none_or(|p| pattern::matches(p, sub))
                    && r.client_id
                        .as_deref()
                        .is_none_or(|p| client.is_some_and(|c| pattern::matches(p, c)))
            })
            .map(|r| r.kind)
    }

    /// The kind of the subject of a credential; `claims` are the token's other claims (none for API keys).
    pub fn of_subject(&self, id: &Identity, claims: Option<&Map<String, Value>>) -> IdentityKind {
        if let (Some(name), Some(c)) = (&self.claim, claims) {
            if let Some(k) = c.get(name).and_then(Value::as_str).and_then(parse) {
                return k;
            }
        }
        if let Some(k) = self.by_rule(&id.subject, id.client.as_deref()) {
            return k;
        }
        let client_credentials = id.client.as_deref() == Some(id.subject.as_str());
        if id.credential == CredentialKind::ApiKey || client_credentials {
            IdentityKind::Service
        } else {
            IdentityKind::Human
        }
    }

    /// The kind of an actor (default: agent, the party a delegation exists for).
    pub fn of_actor(&self, a: &Actor) -> IdentityKind {
        self.by_rule(&a.subject, a.client.as_deref())
            .unwrap_or(IdentityKind::Agent)
    }
}

fn parse(s: &str) -> Option<IdentityKind> {
    match s {
        "human" | "user" => Some(IdentityKind::Human),
        "service" => Some(IdentityKind::Service),
        "agent" => Some(IdentityKind::Agent),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    fn id(sub: &str, client: Option<&str>, kind: CredentialKind) -> Identity {
        Identity {
            credential: kind,
            subject: sub.into(),
            client: client.map(String::from),
            tenant: None,
            scopes: vec![],
            provider: "x".into(),
            token_id: None,
            kind: IdentityKind::Human,
            actors: vec![],
            claims: None,
        }
    }

    #[test]
    fn claim_then_rules_then_defaults() {
        let c = Config::from_json(
            br#"{"kinds": {"claim": "agent_kind", "rules": [
                {"kind": "agent", "client_id": "agent-*"}, {"kind": "service", "sub": "svc:*"}]}}"#,
        )
        .unwrap();
        let k = Kinds::compile(&c.kinds).unwrap();
        let claims = json!({"agent_kind": "agent"});
        let alice = id("alice", Some("web"), CredentialKind::Jwt);
        assert_eq!(
            k.of_subject(&alice, claims.as_object()),
            IdentityKind::Agent
        );
        assert_eq!(k.of_subject(&alice, None), IdentityKind::Human);
        let bot = id("u1", Some("agent-planner"), CredentialKind::Jwt);
        assert_eq!(k.of_subject(&bot, None), IdentityKind::Agent);
        assert_eq!(
            k.of_subject(&id("svc:ci", None, CredentialKind::Jwt), None),
            IdentityKind::Service
        );
        assert_eq!(
            k.of_subject(&id("c1", Some("c1"), CredentialKind::Jwt), None),
            IdentityKind::Service
        );
        assert_eq!(
            k.of_subject(&id("k", Some("key"), CredentialKind::ApiKey), None),
            IdentityKind::Service
        );
        let actor = Actor {
            subject: "svc:x".into(),
            client: None,
            issuer: None,
            tenant: None,
        };
        assert_eq!(k.of_actor(&actor), IdentityKind::Service);
        let agent = Actor {
            subject: "planner".into(),
            ..actor
        };
        assert_eq!(k.of_actor(&agent), IdentityKind::Agent);
    }
}
