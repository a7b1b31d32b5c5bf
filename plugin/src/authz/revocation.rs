//! Revocation and kill switch: static deny lists, a revocation feed kept in shared data (one worker
//! fetches it per interval for all, under a lease), and quarantine of tokens the risk stage blocks
//! repeatedly. Every piece of shared state is bounded: the feed list is at most `max_entries` 8-byte
//! digests, quarantine a fixed set of slots.
//!
//! The adapter drives the feed (`host/revocation.rs`): it asks [`Revocation::take_lease`] on each tick,
//! dispatches [`Revocation::feed_call`], and hands the body to [`Revocation::store_feed`].

use crate::config::revocation::{DenyListConfig, RevocationConfig};
use crate::config::ConfigError;
use crate::credential::{Identity, IdentityKind, TokenError};
use crate::outbound::{Call, HostKind, Service};
use crate::shared::{self, SharedData, SharedError};
use crate::slot::SlotKey;
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// Shared-data key of the feed's list (sorted 8-byte digests).
pub const FEED_KEY: &str = "warden:revocation:list";
/// Shared-data key of the fetch lease (the time the next fetch is due).
pub const LEASE_KEY: &str = "warden:revocation:lease";
/// Most entries a feed may carry (64 KiB of digests).
pub const MAX_FEED_ENTRIES: usize = 8000;
/// Largest feed body accepted.
pub const MAX_FEED_BYTES: usize = 1 << 20;

const KINDS: [&str; 4] = ["jti", "sub", "client_id", "agent"];

/// The compiled `revocation` section.
pub struct Revocation {
    deny: HashSet<(usize, String)>,
    feed: Option<Feed>,
    quarantine: Option<Quarantine>,
    slot_key: SlotKey,
}

struct Feed {
    service: Service,
    interval_s: u64,
    max_entries: usize,
}

struct Quarantine {
    threshold: u32,
    window_s: u64,
    ttl_s: u64,
    slots: u32,
}

pub use crate::feed::FeedError;

fn digest(kind: usize, value: &str) -> [u8; 8] {
    let mut h = Sha256::new();
    h.update(KINDS.get(kind).copied().unwrap_or("").as_bytes());
    h.update([0]);
    h.update(value.as_bytes());
    let d: [u8; 32] = h.finalize().into();
    [d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]
}

fn lists(d: &DenyListConfig) -> [&Vec<String>; 4] {
    [&d.jti, &d.sub, &d.client_id, &d.agent]
}

/// The (kind, value) pairs an identity is known by: its token id, subject, client and agents.
fn names(id: &Identity) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    if let Some(j) = &id.token_id {
        out.push((0, j.as_str()));
    }
    out.push((1, id.subject.as_str()));
    if let Some(c) = &id.client {
        out.push((2, c.as_str()));
    }
    for a in &id.actors {
        out.push((3, a.subject.as_str()));
    }
    if id.kind == IdentityKind::Agent && id.actors.is_empty() {
        out.push((3, id.subject.as_str()));
    }
    out
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at.saturating_add(8))
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

impl Revocation {
    /// Compiles the section.
    pub fn compile(c: &RevocationConfig) -> Result<Revocation, ConfigError> {
        let mut deny = HashSet::new();
        for (k, list) in lists(&c.deny).into_iter().enumerate() {
            for (i, v) in list.iter().enumerate() {
                if v.is_empty() {
                    let kind = KINDS.get(k).copied().unwrap_or("");
                    return Err(ConfigError::new(
                        format!("revocation.deny.{kind}[{i}]"),
                        "must not be empty",
                    ));
                }
                deny.insert((k, v.clone()));
            }
        }
        let feed = match &c.feed {
            Some(f) => {
                crate::feed::check_bounds(
                    "revocation.feed",
                    f.interval_s,
                    f.max_entries,
                    MAX_FEED_ENTRIES,
                )?;
                Some(Feed {
                    service: Service::compile(&f.service, "revocation.feed.service")?,
                    interval_s: f.interval_s,
                    max_entries: f.max_entries,
                })
            }
            None => None,
        };
        let quarantine = match &c.quarantine {
            Some(q) => {
                if q.threshold == 0 {
                    return Err(ConfigError::new(
                        "revocation.quarantine.threshold",
                        "must be at least 1",
                    ));
                }
                for (v, name) in [(q.window_s, "window_s"), (q.ttl_s, "ttl_s")] {
                    if v == 0 || v > 30 * 86_400 {
                        return Err(ConfigError::new(
                            format!("revocation.quarantine.{name}"),
                            "must be between 1 and 2592000",
                        ));
                    }
                }
                if q.slots == 0 || q.slots > 1 << 20 {
                    return Err(ConfigError::new(
                        "revocation.quarantine.slots",
                        "must be between 1 and 1048576",
                    ));
                }
                Some(Quarantine {
                    threshold: q.threshold,
                    window_s: q.window_s,
                    ttl_s: q.ttl_s,
                    slots: q.slots,
                })
            }
            None => None,
        };
        Ok(Revocation {
            deny,
            feed,
            quarantine,
            slot_key: SlotKey::default(),
        })
    }

    /// Whether a feed is configured (the adapter then runs a timer).
    pub fn has_feed(&self) -> bool {
        self.feed.is_some()
    }

    /// Refuses a revoked or quarantined identity. A store that cannot be read refuses too (fail closed).
    pub fn check(
        &self,
        id: &Identity,
        store: &dyn SharedData,
        now_s: u64,
    ) -> Result<(), TokenError> {
        let names = names(id);
        if names
            .iter()
            .any(|(k, v)| self.deny.contains(&(*k, (*v).to_owned())))
        {
            return Err(TokenError::Revoked);
        }
        if self.feed.is_some() {
            let (list, _) = store.get(FEED_KEY).map_err(|_| TokenError::Revoked)?;
            let list = list.unwrap_or_default();
            for (k, v) in &names {
                let d = digest(*k, v);
                if list.chunks_exact(8).any(|e| e == d) {
                    return Err(TokenError::Revoked);
                }
            }
        }
        if let Some(q) = &self.quarantine {
            let (key, who) = self.quarantine_slot(q, id);
            let (rec, _) = store.get(&key).map_err(|_| TokenError::Quarantined)?;
            if let Some(rec) = rec {
                if rec.get(..8) == Some(&who[..]) && u64_at(&rec, 20) > now_s {
                    return Err(TokenError::Quarantined);
                }
            }
        }
        Ok(())
    }

    /// Keys the quarantine slots (the deployment's key).
    pub fn set_slot_key(&mut self, key: SlotKey) {
        self.slot_key = key;
    }

    fn quarantine_slot(&self, q: &Quarantine, id: &Identity) -> (String, [u8; 8]) {
        let who = match &id.token_id {
            Some(j) => digest(0, j),
            None => digest(1, &id.subject),
        };
        let slot = self.slot_key.hash(b'q', &who) % u64::from(q.slots.max(1));
        (format!("warden:quarantine:{slot}"), who)
    }

    /// Records that the risk stage scored this token at or above the block level. Returns whether it
    /// is now quarantined (refused on every worker until the TTL passes). No-op without `quarantine`.
    pub fn quarantine(
        &self,
        store: &dyn SharedData,
        id: &Identity,
        now_s: u64,
    ) -> Result<bool, SharedError> {
        let Some(q) = &self.quarantine else {
            return Ok(false);
        };
        let (key, who) = self.quarantine_slot(q, id);
        // Record: who (8) | count (4) | window start (8) | quarantined until (8).
        shared::update(store, &key, 16, |cur| {
            let (mut count, mut start, mut until) = (0u32, now_s, 0u64);
            if let Some(rec) = cur.filter(|r| r.len() == 28 && r.get(..8) == Some(&who[..])) {
                count = rec
                    .get(8..12)
                    .and_then(|s| s.try_into().ok())
                    .map(u32::from_le_bytes)
                    .unwrap_or(0);
                start = u64_at(rec, 12);
                until = u64_at(rec, 20);
            }
            if now_s.saturating_sub(start) > q.window_s {
                count = 0;
                start = now_s;
            }
            count = count.saturating_add(1);
            if count >= q.threshold {
                until = until.max(now_s.saturating_add(q.ttl_s));
            }
            let mut v = who.to_vec();
            v.extend_from_slice(&count.to_le_bytes());
            v.extend_from_slice(&start.to_le_bytes());
            v.extend_from_slice(&until.to_le_bytes());
            (Some(v), until > now_s)
        })
    }

    /// Takes the fetch lease if a fetch is due: true for exactly one worker per interval.
    pub fn take_lease(&self, store: &dyn SharedData, now_s: u64) -> bool {
        self.feed
            .as_ref()
            .is_some_and(|f| crate::feed::take_lease(store, LEASE_KEY, now_s, f.interval_s))
    }

    /// The feed request for `host`.
    pub fn feed_call(&self, host: HostKind) -> Option<Result<Call, ConfigError>> {
        let f = self.feed.as_ref()?;
        Some(
            f.service
                .call(host, "GET", &[("accept", "application/json")], None)
                .map_err(|e| ConfigError::new("revocation.feed.service.envoy_cluster", e.message)),
        )
    }

    /// Parses a feed body (the `deny` document: `{"jti": [...], "sub": [...], ...}`) and stores it for
    /// every worker. Returns the number of entries.
    pub fn store_feed(&self, store: &dyn SharedData, body: &[u8]) -> Result<usize, FeedError> {
        let max = self.feed.as_ref().map_or(0, |f| f.max_entries);
        if body.len() > MAX_FEED_BYTES {
            return Err(FeedError::TooLarge(usize::MAX));
        }
        let doc: DenyListConfig =
            serde_json::from_slice(body).map_err(|e| FeedError::Malformed(e.to_string()))?;
        let mut digests: Vec<[u8; 8]> = lists(&doc)
            .into_iter()
            .enumerate()
            .flat_map(|(k, l)| l.iter().map(move |v| digest(k, v)))
            .collect();
        digests.sort_unstable();
        digests.dedup();
        if digests.len() > max {
            return Err(FeedError::TooLarge(digests.len()));
        }
        let bytes: Vec<u8> = digests.concat();
        shared::update(store, FEED_KEY, 8, |_| (Some(bytes.clone()), ()))
            .map_err(FeedError::Store)?;
        Ok(digests.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::shared::{CasRule, MemoryStore};

    fn revocation(json: &str) -> Result<Revocation, ConfigError> {
        let c = Config::from_json(format!(r#"{{"revocation": {json}}}"#).as_bytes()).unwrap();
        Revocation::compile(&c.revocation.unwrap())
    }

    fn id(jti: &str, sub: &str, actor: Option<&str>) -> Identity {
        Identity {
            tenant: None,
            token_id: Some(jti.into()),
            ..Identity::for_test(sub, actor)
        }
    }

    const FEED: &str = r#""feed": {"service": {"url": "http://127.0.0.1:9/deny", "envoy_cluster": "feed"}, "interval_s": 5, "max_entries": 3}"#;

    #[test]
    fn static_deny_lists() {
        let r = revocation(
            r#"{"deny": {"jti": ["t1"], "sub": ["mallory"], "client_id": ["bad-app"], "agent": ["agent:rogue"]}}"#,
        )
        .unwrap();
        let s = MemoryStore::new(CasRule::Kong);
        assert_eq!(
            r.check(&id("t1", "a", None), &s, 0),
            Err(TokenError::Revoked)
        );
        assert_eq!(
            r.check(&id("t2", "mallory", None), &s, 0),
            Err(TokenError::Revoked)
        );
        assert_eq!(
            r.check(&id("t2", "a", Some("agent:rogue")), &s, 0),
            Err(TokenError::Revoked)
        );
        let mut c = id("t2", "a", None);
        c.client = Some("bad-app".into());
        assert_eq!(r.check(&c, &s, 0), Err(TokenError::Revoked));
        assert_eq!(r.check(&id("t2", "a", Some("agent:ok")), &s, 0), Ok(()));
    }

    #[test]
    fn feed_lease_store_and_bound() {
        let r = revocation(&format!("{{{FEED}}}")).unwrap();
        for rule in [CasRule::Envoy, CasRule::Kong] {
            let s = MemoryStore::new(rule);
            // One worker per interval gets the lease.
            assert!(r.take_lease(&s, 100));
            assert!(!r.take_lease(&s, 100));
            assert!(!r.take_lease(&s, 104));
            assert!(r.take_lease(&s, 105));
            assert_eq!(r.check(&id("t1", "bob", None), &s, 0), Ok(()));
            assert_eq!(
                r.store_feed(&s, br#"{"sub": ["bob"], "jti": ["x"]}"#),
                Ok(2)
            );
            assert_eq!(
                r.check(&id("t1", "bob", None), &s, 0),
                Err(TokenError::Revoked)
            );
            assert_eq!(
                r.check(&id("x", "alice", None), &s, 0),
                Err(TokenError::Revoked)
            );
            // Too many entries or a bad body: refused, the previous list stays.
            assert_eq!(
                r.store_feed(&s, br#"{"sub": ["a", "b", "c", "d"]}"#),
                Err(FeedError::TooLarge(4))
            );
            assert!(matches!(
                r.store_feed(&s, b"[1]"),
                Err(FeedError::Malformed(_))
            ));
            assert_eq!(
                r.check(&id("t1", "bob", None), &s, 0),
                Err(TokenError::Revoked)
            );
            // An empty feed lifts the deny.
            assert_eq!(r.store_feed(&s, b"{}"), Ok(0));
            assert_eq!(r.check(&id("t1", "bob", None), &s, 0), Ok(()));
        }
        let call = r.feed_call(HostKind::Envoy).unwrap().unwrap();
        assert_eq!(call.upstream, "feed");
        assert_eq!(
            r.feed_call(HostKind::Kong).unwrap().unwrap().upstream,
            "127.0.0.1:9"
        );
    }

    #[test]
    fn quarantine_after_repeated_blocks_until_ttl() {
        let r = revocation(
            r#"{"quarantine": {"threshold": 3, "window_s": 60, "ttl_s": 600, "slots": 16}}"#,
        )
        .unwrap();
        let s = MemoryStore::new(CasRule::Kong);
        let t = id("tok", "alice", None);
        assert!(!r.quarantine(&s, &t, 1000).unwrap());
        assert!(!r.quarantine(&s, &t, 1010).unwrap());
        assert_eq!(r.check(&t, &s, 1010), Ok(()));
        assert!(r.quarantine(&s, &t, 1020).unwrap());
        assert_eq!(r.check(&t, &s, 1021), Err(TokenError::Quarantined));
        assert_eq!(r.check(&id("other", "alice", None), &s, 1021), Ok(()));
        assert_eq!(r.check(&t, &s, 1020 + 600), Ok(()));
        // Scores spread beyond the window do not add up.
        let u = id("tok2", "bob", None);
        for at in [0, 100, 200, 300] {
            assert!(!r.quarantine(&s, &u, 5000 + at).unwrap());
        }
        assert!(s.len() <= 16);
    }

    #[test]
    fn bad_config_names_the_field() {
        for (json, field) in [
            (r#"{"deny": {"sub": [""]}}"#, "revocation.deny.sub[0]"),
            (
                r#"{"feed": {"service": {"url": "http://x/"}, "interval_s": 0}}"#,
                "revocation.feed.interval_s",
            ),
            (
                r#"{"feed": {"service": {"url": "http://x/"}, "max_entries": 0}}"#,
                "revocation.feed.max_entries",
            ),
            (
                r#"{"feed": {"service": {"url": "x"}}}"#,
                "revocation.feed.service.url",
            ),
            (
                r#"{"quarantine": {"threshold": 0}}"#,
                "revocation.quarantine.threshold",
            ),
        ] {
            assert_eq!(revocation(json).err().unwrap().field, field, "{json}");
        }
    }
}
