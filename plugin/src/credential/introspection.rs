//! Opaque access tokens, checked by token introspection (RFC 7662), sans-IO.
//!
//! A bearer token that is not a JWT goes to introspection, and only when a provider has it configured
//! (at most one may). A JWT is never introspected: it is verified locally against its issuer's keys,
//! and a JWT from an unknown issuer is refused (`unknown_issuer`) without calling anyone.
//!
//! The adapter pauses the request, makes the call built here, and records the answer in the worker's
//! token cache: an active token until its `exp` (bounded LRU, the same cache as verified JWTs), an
//! inactive one for `inactive_cache_s`, an unreachable IdP for one second (the configured
//! `unavailable` reply or fail-open). Then the request is decided as usual, from the cache.

use super::cache::TokenCache;
use super::jwt::{self, Provider};
use super::{Claims, TokenError};
use crate::config::remote::IntrospectionConfig;
use crate::config::ConfigError;
use crate::credential::extract::{self, Presented};
use crate::outbound::{Call, HostKind, Service};
use base64::Engine as _;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Largest introspection answer read, in bytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Longest `inactive_cache_s` / `no_exp_cache_s` accepted.
pub const MAX_CACHE_S: u64 = 3600;

/// A provider's introspection endpoint, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspector {
    service: Service,
    /// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
    authorization: String,
    /// Seconds an inactive answer is remembered.
    pub inactive_cache_s: u64,
    /// Seconds an active answer without `exp` is remembered.
    pub no_exp_cache_s: u64,
}

impl Introspector {
    /// Checks and compiles the config; `at` is its JSON path.
    pub fn compile(cfg: &IntrospectionConfig, at: &str) -> Result<Introspector, ConfigError> {
        let service = Service::compile(&cfg.endpoint, &format!("{at}.endpoint"))?;
        if cfg.client_id.is_empty() {
            return Err(ConfigError::new(
                format!("{at}.client_id"),
                "must not be empty",
            ));
        }
        if cfg.client_secret.is_empty() {
            return Err(ConfigError::new(
                format!("{at}.client_secret"),
                "must not be empty",
            ));
        }
        for (field, v) in [
            ("inactive_cache_s", cfg.inactive_cache_s),
            ("no_exp_cache_s", cfg.no_exp_cache_s),
        ] {
            if v > MAX_CACHE_S {
                return Err(ConfigError::new(
                    format!("{at}.{field}"),
                    format!("at most {MAX_CACHE_S}"),
                ));
            }
        }
        let pair = format!(
            "{}:{}",
            form_encode(&cfg.client_id),
            form_encode(&cfg.client_secret)
        );
        Ok(Introspector {
            service,
            authorization: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ),
            inactive_cache_s: cfg.inactive_cache_s,
            no_exp_cache_s: cfg.no_exp_cache_s,
        })
    }

    /// Checks that the call can be made on `host`.
    pub fn check_host(&self, host: HostKind, at: &str) -> Result<(), ConfigError> {
        self.service
            .upstream(host, &format!("{at}.endpoint"))
            .map(|_| ())
    }

    /// The introspection request for `token` (RFC 7662 §2.1, client_secret_basic).
    pub fn call(&self, host: HostKind, token: &str) -> Result<Call, ConfigError> {
        let body = format!("token={}&token_type_hint=access_token", form_encode(token));
        self.service.call(
            host,
            "POST",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("accept", "application/json"),
                ("authorization", &self.authorization),
            ],
            Some(body.into_bytes()),
        )
    }
}

/// `application/x-www-form-urlencoded` encoding of one value (unreserved bytes kept, the rest %XX).
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A request whose token must be introspected before it can be decided.
pub struct Pending<'a> {
    /// The provider whose endpoint to ask.
    pub provider: &'a Provider,
    /// The token.
    pub token: &'a str,
}

/// Whether `headers` carry an opaque bearer token that the cache cannot answer for yet.
pub fn pending<'a>(
    providers: &'a [Provider],
    headers: &'a [(String, String)],
    now_s: u64,
    cache: &TokenCache,
) -> Option<Pending<'a>> {
    let provider = providers.iter().find(|p| p.introspection.is_some())?;
    let Ok(Presented::Bearer(token)) = extract::extract(headers, None) else {
        return None;
    };
    if !is_opaque(token) || cache.knows(&cache.key_of(token), now_s) {
        return None;
    }
    Some(Pending { provider, token })
}

/// A token that is not a compact JWS: the ones introspection answers for.
pub fn is_opaque(token: &str) -> bool {
    token.len() <= jwt::MAX_TOKEN_BYTES && matches!(jwt::parse(token), Err(TokenError::Malformed))
}

/// What the IdP said about a token.
#[derive(Debug)]
pub enum Outcome {
    /// Active, with these claims.
    Active(Box<Claims>),
    /// Inactive (expired, revoked, unknown).
    Inactive,
    /// Active, but not for us (issuer, audience) or not an identity (no subject): refused with
    /// that reason, so the record says why and not just "inactive".
    Refused(TokenError),
    /// No usable answer: the IdP is down, slow, or answered garbage.
    Failed(String),
}

/// Reads an introspection answer (`status`: the HTTP status, or why the call got none).
pub fn outcome(
    provider: &Provider,
    status: Result<u16, String>,
    body: &[u8],
    now_s: u64,
) -> Outcome {
    match status {
        Ok(200) => {}
        Ok(s) => return Outcome::Failed(format!("introspection answered {s}")),
        Err(e) => return Outcome::Failed(e),
    }
    if body.len() > MAX_RESPONSE_BYTES {
        return Outcome::Failed("introspection answer too large".into());
    }
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(body) else {
        return Outcome::Failed("introspection answer is not a JSON object".into());
    };
    if map.get("active") != Some(&Value::Bool(true)) {
        return Outcome::Inactive;
    }
    match claims_from(provider, &mut map, now_s) {
        Ok(c) => Outcome::Active(Box::new(c)),
        Err(e) => Outcome::Refused(e),
    }
}

/// The claims of an active answer, mapped like a JWT's (`scope`, `client_id`, tenant ...).
fn claims_from(
    provider: &Provider,
    map: &mut Map<String, Value>,
    now_s: u64,
) -> Result<Claims, TokenError> {
    let no_exp = provider
        .introspection
        .as_ref()
        .map_or(0, |i| i.no_exp_cache_s);
    let num = |v: Option<Value>| v.as_ref().and_then(Value::as_u64);
    for standard in ["active", "token_type", "username"] {
        map.remove(standard);
    }
    let exp = num(map.remove("exp")).unwrap_or_else(|| now_s.saturating_add(no_exp));
    let iat = num(map.remove("iat"));
    let nbf = num(map.remove("nbf"));
    let issuer = match map.remove("iss") {
        None => provider.issuer.clone(),
        Some(Value::String(s)) if s == provider.issuer => s,
        Some(_) => return Err(TokenError::Issuer),
    };
    let audiences = match map.remove("aud") {
        Some(Value::String(a)) => vec![a],
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let jti = match map.remove("jti") {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let sub = match map.remove("sub") {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let super::jwt::Mapped {
        client,
        tenant,
        scopes,
    } = provider.map_claims(map)?;
    let subject = provider.subject_of(sub.as_deref(), map)?;
    let claims = Claims {
        issuer,
        subject,
        audiences,
        exp,
        nbf,
        iat,
        jti,
        client,
        tenant,
        scopes,
        provider: provider.name.clone(),
        extra: std::mem::take(map),
    };
    provider.check_claims(&claims, now_s)?;
    Ok(claims)
}

/// Remembers what the IdP said, so that the request (and the next ones) decide from the cache.
pub fn record(cache: &mut TokenCache, provider: &Provider, token: &str, o: Outcome, now_s: u64) {
    let key = cache.key_of(token);
    let until = now_s.saturating_add(
        provider
            .introspection
            .as_ref()
            .map_or(0, |i| i.inactive_cache_s),
    );
    match o {
        Outcome::Active(claims) => cache.put(key, Arc::new(*claims)),
        Outcome::Inactive => cache.refuse(key, until, TokenError::Inactive),
        Outcome::Refused(why) => cache.refuse(key, until, why),
        // Only for the current second: a down IdP is asked again soon, but not per request.
        Outcome::Failed(_) => cache.refuse(key, now_s, TokenError::IdpUnavailable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::decision::{Engine, Request};

    const CONFIG: &str = r#"{"providers": [{"name": "idp", "issuer": "https://idp.example.com",
        "audiences": ["orders-api"],
        "introspection": {"endpoint": {"url": "https://idp.example.com/introspect", "envoy_cluster": "idp"},
                          "client_id": "warden", "client_secret": "s3cr:t/+", "inactive_cache_s": 30}}]}"#;

    fn engine() -> Engine {
        Engine::from_json(CONFIG.as_bytes()).unwrap()
    }

    fn headers(token: &str) -> Vec<(String, String)> {
        vec![("authorization".into(), format!("Bearer {token}"))]
    }

    fn decide(e: &Engine, token: &str, now: u64, cache: &mut TokenCache) -> (u16, &'static str) {
        let hs = headers(token);
        let req = Request {
            method: "GET",
            path: "/x",
            headers: &hs,
            request_id: "r",
            now_s: now,
            peer_cert_sha256: None,
            peer_cert_unread: false,
            source_unread: false,
            source: None,
            body: Default::default(),
        };
        let store = crate::shared::MemoryStore::default();
        let mut env = crate::decision::Env {
            cache,
            shared: &store,
            clock_us: &|| 0,
        };
        let d = e.decide(&req, &mut env);
        (d.status, d.reason)
    }

    const ACTIVE: &str = r#"{"active": true, "sub": "agent-7", "client_id": "demo-agent",
        "scope": "orders:read orders:write", "tenant": "acme", "aud": "orders-api",
        "iss": "https://idp.example.com", "exp": 2000, "iat": 1000,
        "cnf": {"jkt": "abc"}, "acr": "urn:mfa", "auth_time": 990, "token_type": "Bearer"}"#;

    #[test]
    fn the_call_is_a_form_post_with_basic_auth() {
        let e = engine();
        let p = &e.providers()[0];
        let call = p
            .introspection
            .as_ref()
            .unwrap()
            .call(HostKind::Envoy, "a+b/c=")
            .unwrap();
        assert_eq!(call.upstream, "idp");
        assert!(call.headers.contains(&(":method".into(), "POST".into())));
        assert!(call
            .headers
            .contains(&(":path".into(), "/introspect".into())));
        let basic = base64::engine::general_purpose::STANDARD.encode("warden:s3cr%3At%2F%2B");
        assert!(call
            .headers
            .contains(&("authorization".into(), format!("Basic {basic}"))));
        assert_eq!(
            call.body.unwrap(),
            b"token=a%2Bb%2Fc%3D&token_type_hint=access_token"
        );
    }

    #[test]
    fn active_answers_map_like_jwt_claims_and_are_cached_until_exp() {
        let e = engine();
        let p = &e.providers()[0];
        let mut cache = TokenCache::new(8);
        let hs = headers("opaque-1");
        assert!(pending(e.providers(), &hs, 1500, &cache).is_some());
        let Outcome::Active(c) = outcome(p, Ok(200), ACTIVE.as_bytes(), 1500) else {
            panic!("not active")
        };
        assert_eq!(c.subject, "agent-7");
        assert_eq!(c.client.as_deref(), Some("demo-agent"));
        assert_eq!(c.tenant.as_deref(), Some("acme"));
        assert_eq!(c.scopes, ["orders:read", "orders:write"]);
        assert_eq!(c.extra["cnf"]["jkt"], "abc");
        assert_eq!(c.extra["acr"], "urn:mfa");
        assert_eq!(c.extra["auth_time"], 990);
        record(&mut cache, p, "opaque-1", Outcome::Active(c), 1500);
        assert!(pending(e.providers(), &hs, 1500, &cache).is_none());
        // Bound to a DPoP key (`cnf.jkt`): as a Bearer token it is refused (RFC 9449 §7.2), from the cache.
        assert_eq!(decide(&e, "opaque-1", 1500, &mut cache), (401, "binding"));
        // Past exp: asked again (and the IdP now says inactive).
        assert!(pending(e.providers(), &hs, 2001, &cache).is_some());
        record(&mut cache, p, "opaque-1", Outcome::Inactive, 2001);
        assert_eq!(decide(&e, "opaque-1", 2001, &mut cache), (401, "inactive"));
    }

    #[test]
    fn inactive_foreign_and_subjectless_answers_are_refused_with_their_reason() {
        let e = engine();
        let p = &e.providers()[0];
        let mut cache = TokenCache::new(8);
        for (body, token, reason) in [
            (r#"{"active": false}"#, "t1", "inactive"),
            (&ACTIVE.replace("orders-api", "other-api"), "t2", "audience"),
            (
                &ACTIVE.replace("https://idp.example.com", "https://evil"),
                "t3",
                "issuer",
            ),
            // An active answer without `sub` (how some IdPs answer for client credentials) is
            // not an identity unless `claims.subject` names another claim.
            (
                &ACTIVE.replace(r#""sub": "agent-7","#, ""),
                "t4",
                "no_subject",
            ),
        ] {
            let o = outcome(p, Ok(200), body.as_bytes(), 1500);
            assert!(
                matches!(o, Outcome::Inactive | Outcome::Refused(_)),
                "{body}"
            );
            record(&mut cache, p, token, o, 1500);
            assert_eq!(decide(&e, token, 1500, &mut cache), (401, reason));
            assert!(pending(e.providers(), &headers(token), 1529, &cache).is_none());
            assert!(pending(e.providers(), &headers(token), 1531, &cache).is_some());
        }
    }

    #[test]
    fn an_unreachable_idp_gets_503_unless_fail_open() {
        let e = engine();
        let p = &e.providers()[0];
        let mut cache = TokenCache::new(8);
        for (status, body) in [
            (Err("timeout".to_owned()), &b""[..]),
            (Ok(500), b"{}"),
            (Ok(200), b"<html>"),
        ] {
            let o = outcome(p, status, body, 1500);
            assert!(matches!(o, Outcome::Failed(_)));
            record(&mut cache, p, "t", o, 1500);
            assert_eq!(decide(&e, "t", 1500, &mut cache), (503, "idp_unavailable"));
        }
        // Asked again the next second.
        assert!(pending(e.providers(), &headers("t"), 1501, &cache).is_some());

        let open = CONFIG.replace(r#""audiences""#, r#""fail_open": true, "audiences""#);
        let e = Engine::compile(&Config::from_json(open.as_bytes()).unwrap()).unwrap();
        let p = &e.providers()[0];
        record(&mut cache, p, "t", Outcome::Failed("down".into()), 1600);
        assert_eq!(
            decide(&e, "t", 1600, &mut cache),
            (200, "idp_unavailable_fail_open")
        );
    }

    #[test]
    fn the_per_worker_cache_stays_bounded() {
        let e = engine();
        let p = &e.providers()[0];
        let mut cache = TokenCache::new(4);
        for i in 0..100 {
            let body = ACTIVE.replace("agent-7", &format!("agent-{i}"));
            let o = outcome(p, Ok(200), body.as_bytes(), 1500);
            record(&mut cache, p, &format!("active-{i}"), o, 1500);
            record(
                &mut cache,
                p,
                &format!("inactive-{i}"),
                Outcome::Inactive,
                1500,
            );
        }
        assert_eq!(
            cache.len(),
            8,
            "4 accepted + 4 refused, least recently used evicted"
        );
        assert!(cache.knows(&cache.key_of("active-99"), 1500));
        assert!(!cache.knows(&cache.key_of("active-0"), 1500));
    }

    #[test]
    fn jwts_are_never_introspected() {
        let e = engine();
        let cache = TokenCache::new(8);
        let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln";
        assert!(!is_opaque(jwt));
        assert!(pending(e.providers(), &headers(jwt), 1, &cache).is_none());
        assert!(is_opaque("2YotnFZFEjr1zCsicMWpAA"));
    }

    #[test]
    fn config_errors_name_the_field() {
        let bad = |from: &str, to: &str| {
            Engine::from_json(CONFIG.replace(from, to).as_bytes())
                .err()
                .unwrap()
                .field
        };
        assert_eq!(
            bad(r#""client_id": "warden""#, r#""client_id": """#),
            "providers[0].introspection.client_id"
        );
        assert_eq!(
            bad(r#""inactive_cache_s": 30"#, r#""inactive_cache_s": 99999"#),
            "providers[0].introspection.inactive_cache_s"
        );
        assert_eq!(
            bad("https://idp.example.com/introspect", "idp/introspect"),
            "providers[0].introspection.endpoint.url"
        );
        let at = r#""audiences""#;
        assert_eq!(
            bad(at, r#""fail_open": true, "unavailable": {}, "audiences""#),
            "providers[0].fail_open"
        );
        assert_eq!(
            bad(at, r#""unavailable": {"status": 401}, "audiences""#),
            "providers[0].unavailable"
        );
        let no_source = r#"{"providers": [{"name": "a", "issuer": "i", "audiences": ["x"]}]}"#;
        let e = Engine::from_json(no_source.as_bytes()).err().unwrap();
        assert_eq!(e.field, "providers[0].jwks");
        let v: serde_json::Value = serde_json::from_str(CONFIG).unwrap();
        let mut second = v["providers"][0].clone();
        second["name"] = "other".into();
        second["issuer"] = "https://other.example.com".into();
        let two = serde_json::json!({"providers": [v["providers"][0].clone(), second]});
        let e = Engine::from_json(two.to_string().as_bytes()).err().unwrap();
        assert_eq!(e.field, "providers[1].introspection");
    }
}
