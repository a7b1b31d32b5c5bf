//! Identity-bound rate limits: one token bucket per (policy, identity), kept in shared data and updated
//! with compare-and-set so that every worker draws from the same bucket. The key space is bounded: an
//! identity maps to one of `slots` buckets per policy by a keyed hash ([`crate::slot`]), so memory
//! never grows with traffic and nobody can aim at another identity's bucket; the hash is kept in the
//! bucket, and an identity finding another's bucket in its slot starts a fresh one (never shares it).
//!
//! Headers follow draft-ietf-httpapi-ratelimit-headers-10: `RateLimit-Policy: "name";q=100;w=60` and
//! `RateLimit: "name";r=42;t=30` (`r` remaining, `t` seconds until the bucket is full again).

use super::routes::RouteTable;
use crate::config::rate_limits::{RateLimitKey, RateLimitsConfig};
use crate::config::ConfigError;
use crate::credential::{Identity, IdentityKind};
use crate::shared::{self, SharedData, SharedError};
use crate::slot::SlotKey;

/// Largest bucket and window accepted.
pub const MAX_LIMIT: u64 = 1_000_000_000;
/// Longest window, in seconds (one day).
pub const MAX_WINDOW_S: u64 = 86_400;

/// One token, in the bucket's fixed-point units (refill rounding loses under a millionth per step).
const UNIT: u64 = 1_000_000;

struct Policy {
    name: String,
    key: RateLimitKey,
    limit: u64,
    window_s: u64,
    routes: Vec<String>,
    /// Named by an MCP rule: drawn from only by the calls such rules match (and its own routes).
    calls_only: bool,
}

/// The compiled `rate_limits` section.
pub struct RateLimits {
    slots: u32,
    key: SlotKey,
    fail_open: bool,
    policies: Vec<Policy>,
}

/// The outcome of one policy for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Policy name.
    pub name: String,
    /// Bucket size.
    pub limit: u64,
    /// Refill window, seconds.
    pub window_s: u64,
    /// Whether the request got a token.
    pub admitted: bool,
    /// Whole tokens left.
    pub remaining: u64,
    /// Seconds until the next token (0 when admitted).
    pub retry_after_s: u64,
    /// Seconds until the bucket is full.
    pub full_in_s: u64,
}

impl Outcome {
    /// `RateLimit-Policy` member.
    pub fn policy_header(&self) -> String {
        format!("\"{}\";q={};w={}", self.name, self.limit, self.window_s)
    }

    /// `RateLimit` member.
    pub fn state_header(&self) -> String {
        format!(
            "\"{}\";r={};t={}",
            self.name, self.remaining, self.full_in_s
        )
    }
}

/// The response headers describing `outcomes` (none when empty).
pub fn headers(outcomes: &[Outcome]) -> Vec<(String, String)> {
    if outcomes.is_empty() {
        return Vec::new();
    }
    let join = |f: fn(&Outcome) -> String| outcomes.iter().map(f).collect::<Vec<_>>().join(", ");
    let mut h = vec![
        ("ratelimit-policy".to_owned(), join(Outcome::policy_header)),
        ("ratelimit".to_owned(), join(Outcome::state_header)),
    ];
    if let Some(wait) = outcomes
        .iter()
        .filter(|o| !o.admitted)
        .map(|o| o.retry_after_s)
        .max()
    {
        h.push(("retry-after".to_owned(), wait.max(1).to_string()));
    }
    h
}

impl RateLimits {
    /// Compiles the section; `route_names` are the configured routes.
    pub fn compile(c: &RateLimitsConfig, route_names: &[&str]) -> Result<RateLimits, ConfigError> {
        if c.slots == 0 || c.slots > 1 << 20 {
            return Err(ConfigError::new(
                "rate_limits.slots",
                "must be between 1 and 1048576",
            ));
        }
        let mut policies: Vec<Policy> = Vec::with_capacity(c.policies.len());
        for (i, p) in c.policies.iter().enumerate() {
            let at = format!("rate_limits.policies[{i}]");
            if p.name.is_empty()
                || p.name.len() > 64
                || !p
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                || policies.iter().any(|o| o.name == p.name)
            {
                return Err(ConfigError::new(
                    format!("{at}.name"),
                    "a unique name of letters, digits, `-`, `_`, `.`",
                ));
            }
            if p.limit == 0 || p.limit > MAX_LIMIT {
                return Err(ConfigError::new(
                    format!("{at}.limit"),
                    format!("must be between 1 and {MAX_LIMIT}"),
                ));
            }
            if p.window_s == 0 || p.window_s > MAX_WINDOW_S {
                return Err(ConfigError::new(
                    format!("{at}.window_s"),
                    format!("must be between 1 and {MAX_WINDOW_S}"),
                ));
            }
            RouteTable::check_names(route_names, &p.routes, &format!("{at}.routes"))?;
            policies.push(Policy {
                name: p.name.clone(),
                key: p.key,
                limit: p.limit,
                window_s: p.window_s,
                routes: p.routes.clone(),
                calls_only: false,
            });
        }
        Ok(RateLimits {
            slots: c.slots,
            key: SlotKey::default(),
            fail_open: c.fail_open,
            policies,
        })
    }

    /// Keys the slot hash (the deployment's key, [`SlotKey::shared`]).
    pub fn set_slot_key(&mut self, key: SlotKey) {
        self.key = key;
    }

    /// Draws one token from every policy that applies to `id` on `route`. `Err` when the store failed
    /// and the config does not fail open.
    pub fn check(
        &self,
        store: &dyn SharedData,
        id: &Identity,
        route: Option<&str>,
        now_s: u64,
    ) -> Result<Vec<Outcome>, SharedError> {
        self.check_calls(store, id, route, &[], now_s)
    }

    /// Marks the policies MCP rules name (`mcp.endpoints[].rules[].rate_limit`): they no longer
    /// apply to every request, only to the calls those rules match (and to the routes they list).
    pub fn for_calls_only(&mut self, names: &[String]) {
        for p in &mut self.policies {
            p.calls_only |= names.contains(&p.name);
        }
    }

    /// [`RateLimits::check`] for a request whose MCP calls named the policies `calls`.
    pub fn check_calls(
        &self,
        store: &dyn SharedData,
        id: &Identity,
        route: Option<&str>,
        calls: &[String],
        now_s: u64,
    ) -> Result<Vec<Outcome>, SharedError> {
        let mut out = Vec::new();
        for (i, p) in self.policies.iter().enumerate() {
            let on_route = route.is_some_and(|r| p.routes.iter().any(|x| x == r));
            let applies = if p.calls_only {
                calls.contains(&p.name) || on_route
            } else {
                p.routes.is_empty() || on_route
            };
            if !applies {
                continue;
            }
            let Some(who) = key_of(p.key, id) else {
                continue;
            };
            let hash = self.key.hash(b'r', who.as_bytes());
            let slot = hash % u64::from(self.slots.max(1));
            let key = format!("warden:rl:{i}:{slot}");
            match take(store, &key, hash, p.limit, p.window_s, now_s) {
                Ok((admitted, remaining, retry_after_s, full_in_s)) => out.push(Outcome {
                    name: p.name.clone(),
                    limit: p.limit,
                    window_s: p.window_s,
                    admitted,
                    remaining,
                    retry_after_s,
                    full_in_s,
                }),
                Err(_) if self.fail_open => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

/// The identity a bucket belongs to under `key` (none: the policy does not apply).
fn key_of(key: RateLimitKey, id: &Identity) -> Option<String> {
    match key {
        RateLimitKey::Agent => match id.actor() {
            Some(a) => Some(format!("a\0{}", a.subject)),
            None if id.kind == IdentityKind::Agent => Some(format!("a\0{}", id.subject)),
            None => None,
        },
        RateLimitKey::Subject => Some(format!("s\0{}\0{}", id.provider, id.subject)),
        RateLimitKey::Client => id.client.as_ref().map(|c| format!("c\0{c}")),
        RateLimitKey::Tenant => id.tenant.as_ref().map(|t| format!("t\0{t}")),
    }
}

/// One token bucket step on the bucket of the identity hashed to `owner`: refill for the time passed,
/// then take a token if there is one. A bucket of another owner (a slot collision) or of an older
/// layout is replaced by a full one. Returns (admitted, whole tokens left, seconds to the next token,
/// seconds to full).
pub fn take(
    store: &dyn SharedData,
    key: &str,
    owner: u64,
    limit: u64,
    window_s: u64,
    now_s: u64,
) -> Result<(bool, u64, u64, u64), SharedError> {
    let capacity = limit.saturating_mul(UNIT);
    let window = window_s.max(1);
    // Seconds for `units` to refill, rounded up.
    let secs_for = |units: u64| {
        let s = u128::from(units) * u128::from(window);
        u64::try_from(s.div_ceil(u128::from(capacity.max(1)))).unwrap_or(u64::MAX)
    };
    shared::update(store, key, 32, |cur| {
        let word = |b: &[u8], at: usize| {
            b.get(at..at + 8)
                .and_then(|w| <[u8; 8]>::try_from(w).ok())
                .map(u64::from_le_bytes)
        };
        let (tokens, last) = match cur {
            Some(b) if b.len() == 24 && word(b, 16) == Some(owner) => {
                (word(b, 0).unwrap_or(0), word(b, 8).unwrap_or(now_s))
            }
            _ => (capacity, now_s),
        };
        let elapsed = now_s.saturating_sub(last);
        let refill = u128::from(elapsed) * u128::from(capacity) / u128::from(window);
        let tokens = u64::try_from(u128::from(tokens).saturating_add(refill))
            .unwrap_or(u64::MAX)
            .min(capacity);
        let (admitted, left) = match tokens.checked_sub(UNIT) {
            Some(left) => (true, left),
            None => (false, tokens),
        };
        let retry = if admitted {
            0
        } else {
            secs_for(UNIT.saturating_sub(left))
        };
        let full_in = secs_for(capacity.saturating_sub(left));
        let mut v = left.to_le_bytes().to_vec();
        v.extend_from_slice(&now_s.max(last).to_le_bytes());
        v.extend_from_slice(&owner.to_le_bytes());
        (Some(v), (admitted, left / UNIT, retry, full_in))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::shared::{CasRule, MemoryStore};

    fn limits(json: &str, routes: &[&str]) -> Result<RateLimits, ConfigError> {
        let c = Config::from_json(format!(r#"{{"rate_limits": {json}}}"#).as_bytes()).unwrap();
        RateLimits::compile(&c.rate_limits.unwrap(), routes)
    }

    fn id(sub: &str, actor: Option<&str>) -> Identity {
        Identity::for_test(sub, actor)
    }

    #[test]
    fn bucket_admits_limit_then_refills() {
        for rule in [CasRule::Envoy, CasRule::Kong] {
            let s = MemoryStore::new(rule);
            let admitted = (0..15)
                .filter(|_| take(&s, "k", 7, 10, 60, 1000).unwrap().0)
                .count();
            assert_eq!(admitted, 10);
            let (ok, left, retry, full) = take(&s, "k", 7, 10, 60, 1000).unwrap();
            assert!(!ok);
            assert_eq!((left, retry, full), (0, 6, 60));
            // 6 s later one token is back (10 per 60 s).
            assert!(take(&s, "k", 7, 10, 60, 1006).unwrap().0);
            assert!(!take(&s, "k", 7, 10, 60, 1006).unwrap().0);
        }
    }

    #[test]
    fn per_agent_subject_and_tenant_keys_and_bounded_slots() {
        let rl = limits(
            r#"{"slots": 8, "policies": [
                {"name": "agent", "key": "agent", "limit": 2, "window_s": 60},
                {"name": "tenant", "key": "tenant", "limit": 100, "window_s": 60, "routes": ["r"]}]}"#,
            &["r"],
        )
        .unwrap();
        let s = MemoryStore::new(CasRule::Kong);
        // No actor and not an agent: the agent policy does not apply; the tenant one only on route r.
        assert!(rl
            .check(&s, &id("alice", None), None, 0)
            .unwrap()
            .is_empty());
        let o = rl
            .check(&s, &id("alice", Some("bot")), Some("r"), 0)
            .unwrap();
        assert_eq!(o.len(), 2);
        assert!(rl.check(&s, &id("bob", Some("bot")), None, 0).unwrap()[0].admitted);
        // The third call of the same agent, for any subject, is refused.
        let third = rl.check(&s, &id("carol", Some("bot")), None, 0).unwrap();
        assert!(!third[0].admitted);
        let h = headers(&third);
        assert_eq!(
            h[0],
            ("ratelimit-policy".into(), "\"agent\";q=2;w=60".into())
        );
        assert_eq!(h[1], ("ratelimit".into(), "\"agent\";r=0;t=60".into()));
        assert_eq!(h[2], ("retry-after".into(), "30".into()));
        for i in 0..100 {
            rl.check(&s, &id("x", Some(&format!("bot{i}"))), Some("r"), 0)
                .unwrap();
        }
        assert!(s.len() <= 8 + 8, "{} keys", s.len());
    }

    /// One per-subject policy of `limit` per hour over `slots` slots, keyed with `key`.
    fn per_subject(slots: u32, limit: u64, key: u8) -> RateLimits {
        let json = format!(
            r#"{{"slots": {slots}, "policies": [{{"name": "s", "key": "subject", "limit": {limit}, "window_s": 3600}}]}}"#
        );
        let mut rl = limits(&json, &[]).unwrap();
        rl.set_slot_key(SlotKey::new([key; 16]));
        rl
    }

    #[test]
    fn a_slot_collision_resets_the_bucket_never_shares_it() {
        let rl = per_subject(1, 2, 3);
        let s = MemoryStore::new(CasRule::Envoy);
        let admitted = |who: &str| rl.check(&s, &id(who, None), None, 0).unwrap()[0].admitted;
        assert!(admitted("victim") && admitted("victim") && !admitted("victim"));
        // The attacker shares the only slot: it gets a bucket of its own, not the victim's remainder,
        // and draining it does not drain the victim's (whose bucket is reset, not taken over).
        assert!(admitted("attacker") && admitted("attacker") && !admitted("attacker"));
        assert!(admitted("victim"));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn the_slot_depends_on_the_deployment_key() {
        let keys_of = |rl: &RateLimits| {
            let s = MemoryStore::new(CasRule::Envoy);
            for i in 0..8 {
                rl.check(&s, &id(&format!("u{i}"), None), None, 0).unwrap();
            }
            s.keys()
        };
        assert_ne!(
            keys_of(&per_subject(4096, 1, 1)),
            keys_of(&per_subject(4096, 1, 2))
        );
    }

    #[test]
    fn bad_config_names_the_field() {
        for (json, field) in [
            (r#"{"slots": 0, "policies": []}"#, "rate_limits.slots"),
            (
                r#"{"policies": [{"name": "a b", "key": "subject", "limit": 1, "window_s": 1}]}"#,
                "rate_limits.policies[0].name",
            ),
            (
                r#"{"policies": [{"name": "a", "key": "subject", "limit": 0, "window_s": 1}]}"#,
                "rate_limits.policies[0].limit",
            ),
            (
                r#"{"policies": [{"name": "a", "key": "subject", "limit": 1, "window_s": 0}]}"#,
                "rate_limits.policies[0].window_s",
            ),
            (
                r#"{"policies": [{"name": "a", "key": "subject", "limit": 1, "window_s": 1, "routes": ["x"]}]}"#,
                "rate_limits.policies[0].routes[0]",
            ),
        ] {
            assert_eq!(limits(json, &[]).err().unwrap().field, field, "{json}");
        }
    }
}
