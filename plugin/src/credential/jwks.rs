//! Remote key sets (`jwks_uri`, OIDC discovery), sans-IO: when a worker fetches, what it asks for, and
//! what it does with the answer. The adapter only dispatches the calls this module builds.
//!
//! One fetch serves every worker: the fetched JWKS lives in shared data (one record per provider), and
//! a compare-and-set lease in a small state record decides which worker fetches each refresh. Workers
//! install a new key set when the record's version moves. A failed fetch keeps the last good keys,
//! and retries with exponential backoff; an unknown `kid` asks for an early, rate-limited refetch.

use super::jwk::{self, VerifyingKey};
use crate::config::{Algorithm, ConfigError, ProviderConfig};
use crate::outbound::{Call, HostKind, Service, ServiceConfig};
use crate::shared::{self, SharedData, SharedError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Largest JWKS (or discovery document) accepted, in bytes. It must fit one shared-data record.
pub const MAX_DOCUMENT_BYTES: usize = shared::MAX_VALUE_BYTES - 8;

/// Most keys taken from one JWKS.
pub const MAX_KEYS: usize = 64;

/// Longest backoff after failed fetches, seconds.
pub const MAX_BACKOFF_S: u64 = 60;

/// How many cas attempts a shared-data update gets.
const CAS_ATTEMPTS: u32 = 4;

/// Where a remote key set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `jwks_uri`: fetched directly.
    Uri(Service),
    /// OIDC discovery: the discovery document first (this service), then its `jwks_uri` on the same host.
    Discovery(Service),
}

/// A provider's remote key set, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwks {
    /// Where the keys come from.
    pub source: Source,
    /// Seconds between scheduled refreshes.
    pub refresh_s: u64,
    /// Smallest interval between two fetches, for refetches on an unknown `kid`.
    pub min_refetch_s: u64,
    /// How long a worker holds the fetch lease (longer than the calls it makes can take).
    pub lease_s: u64,
    /// Shared-data key prefix: bound to the provider and its key source, so a config that changes
    /// the source never reads the old source's keys.
    prefix: String,
    issuer: String,
}

/// Which call an answer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The OIDC discovery document.
    Discovery,
    /// The JWKS itself.
    Jwks,
}

impl RemoteJwks {
    /// The remote key set of a provider config, if it has one; `at` is its JSON path.
    pub fn compile(cfg: &ProviderConfig, at: &str) -> Result<Option<RemoteJwks>, ConfigError> {
        let sources = usize::from(cfg.jwks.is_some())
            + usize::from(cfg.jwks_uri.is_some())
            + usize::from(cfg.discovery);
        if sources > 1 {
            let field = if cfg.jwks_uri.is_some() {
                "jwks_uri"
            } else {
                "discovery"
            };
            return Err(ConfigError::new(
                format!("{at}.{field}"),
                "give exactly one of `jwks`, `jwks_uri` and `discovery`",
            ));
        }
        if !cfg.discovery && (cfg.envoy_cluster.is_some() || cfg.kong_address.is_some()) {
            let field = if cfg.envoy_cluster.is_some() {
                "envoy_cluster"
            } else {
                "kong_address"
            };
            return Err(ConfigError::new(
                format!("{at}.{field}"),
                "only used with `discovery: true`",
            ));
        }
        if !(1..=86_400).contains(&cfg.jwks_refresh_s) {
            return Err(ConfigError::new(
                format!("{at}.jwks_refresh_s"),
                "must be between 1 and 86400",
            ));
        }
        if !(1..=86_400).contains(&cfg.jwks_min_refetch_s) {
            return Err(ConfigError::new(
                format!("{at}.jwks_min_refetch_s"),
                "must be between 1 and 86400",
            ));
        }
        let source = if let Some(uri) = &cfg.jwks_uri {
            Source::Uri(Service::compile(uri, &format!("{at}.jwks_uri"))?)
        } else if cfg.discovery {
            let url = format!(
                "{}/.well-known/openid-configuration",
                cfg.issuer.trim_end_matches('/')
            );
            let svc = ServiceConfig {
                url,
                envoy_cluster: cfg.envoy_cluster.clone(),
                kong_address: cfg.kong_address.clone(),
                timeout_ms: 2000,
            };
            Source::Discovery(
                Service::compile(&svc, at)
                    .map_err(|e| ConfigError::new(format!("{at}.issuer"), e.message))?,
            )
        } else {
            return Ok(None);
        };
        let (Source::Uri(svc) | Source::Discovery(svc)) = &source;
        let calls = if cfg.discovery { 2 } else { 1 };
        let lease_s = svc
            .timeout_ms()
            .saturating_mul(calls)
            .div_ceil(1000)
            .saturating_add(1);
        let identity = format!("{}\n{}\n{:?}", cfg.name, cfg.issuer, source);
        let digest = Sha256::digest(identity.as_bytes());
        let prefix = format!(
            "warden.jwks.{}",
            hex::encode(digest.get(..8).unwrap_or(&[]))
        );
        Ok(Some(RemoteJwks {
            source,
            refresh_s: cfg.jwks_refresh_s,
            // Never rarer than the scheduled refresh.
            min_refetch_s: cfg.jwks_min_refetch_s.min(cfg.jwks_refresh_s),
            lease_s,
            prefix,
            issuer: cfg.issuer.clone(),
        }))
    }

    /// Checks that the calls can be made on `host` (the Envoy cluster is given, on Envoy).
    pub fn check_host(&self, host: HostKind, at: &str) -> Result<(), ConfigError> {
        match &self.source {
            Source::Uri(s) => s.upstream(host, &format!("{at}.jwks_uri")).map(|_| ()),
            Source::Discovery(s) => s.upstream(host, at).map(|_| ()),
        }
    }

    /// Shared-data key of the fetch state (lease, schedule, version).
    pub fn state_key(&self) -> String {
        format!("{}.state", self.prefix)
    }

    /// Shared-data key of the last good JWKS.
    pub fn keys_key(&self) -> String {
        format!("{}.keys", self.prefix)
    }

    /// The first call of a fetch: the discovery document, or the JWKS.
    pub fn first_call(&self, host: HostKind) -> Result<(Stage, Call), ConfigError> {
        let accept = [("accept", "application/json")];
        match &self.source {
            Source::Uri(s) => Ok((Stage::Jwks, s.call(host, "GET", &accept, None)?)),
            Source::Discovery(s) => Ok((Stage::Discovery, s.call(host, "GET", &accept, None)?)),
        }
    }

    /// The JWKS call named by a discovery document (which must be this provider's, on the same host).
    pub fn call_from_discovery(&self, host: HostKind, document: &[u8]) -> Result<Call, String> {
        let Source::Discovery(svc) = &self.source else {
            return Err("not a discovery provider".into());
        };
        let jwks_uri = parse_discovery(document, &self.issuer)?;
        let origin = self.issuer.split('/').take(3).collect::<Vec<_>>().join("/");
        let path = jwks_uri
            .strip_prefix(&origin)
            .filter(|p| p.starts_with('/'))
            .ok_or_else(|| {
                format!("jwks_uri {jwks_uri:?} is not on the issuer's host {origin:?}")
            })?;
        let mut call = svc
            .call(host, "GET", &[("accept", "application/json")], None)
            .map_err(|e| e.to_string())?;
        if let Some(h) = call.headers.iter_mut().find(|(n, _)| n == ":path") {
            h.1 = path.to_owned();
        }
        Ok(call)
    }
}

/// The `jwks_uri` of an OIDC discovery document whose `issuer` is exactly `issuer`.
pub fn parse_discovery(document: &[u8], issuer: &str) -> Result<String, String> {
    if document.len() > MAX_DOCUMENT_BYTES {
        return Err("discovery document too large".into());
    }
    #[derive(Deserialize)]
    struct Discovery {
        issuer: String,
        jwks_uri: String,
    }
    let d: Discovery = serde_json::from_slice(document)
        .map_err(|e| format!("discovery document is not usable: {e}"))?;
    if d.issuer != issuer {
        return Err(format!(
            "discovery document names issuer {:?}, configured {issuer:?}",
            d.issuer
        ));
    }
    Ok(d.jwks_uri)
}

/// The usable keys of a fetched JWKS, restricted to `allowed`. Keys that cannot be used (another
/// type, an encryption key, a bad member), shared secrets (`oct`: never taken from a published set)
/// and later keys repeating a `kid` are skipped; a document without one usable key is an error.
pub fn parse_jwks(
    document: &[u8],
    allowed: &[Algorithm],
) -> Result<(Vec<VerifyingKey>, usize), String> {
    if document.len() > MAX_DOCUMENT_BYTES {
        return Err(format!("JWKS larger than {MAX_DOCUMENT_BYTES} bytes"));
    }
    #[derive(Deserialize)]
    struct Jwks {
        keys: Vec<serde_json::Value>,
    }
    let jwks: Jwks =
        serde_json::from_slice(document).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut keys: Vec<VerifyingKey> = Vec::new();
    let mut skipped = 0usize;
    for k in jwks.keys.iter().take(MAX_KEYS) {
        match jwk::load(k, allowed) {
            Ok(jwk::Loaded::Keys(mut ks)) => {
                let kid = ks.first().and_then(|k| k.kid.as_deref());
                let repeated =
                    kid.is_some() && keys.iter().any(|o: &VerifyingKey| o.kid.as_deref() == kid);
                if repeated || ks.iter().any(super::jwt::is_hmac) {
                    skipped = skipped.saturating_add(1);
                } else {
                    keys.append(&mut ks);
                }
            }
            Ok(jwk::Loaded::Skipped(_)) | Err(_) => skipped = skipped.saturating_add(1),
        }
    }
    skipped = skipped.saturating_add(jwks.keys.len().saturating_sub(MAX_KEYS));
    if keys.is_empty() {
        return Err("no usable signing key in the JWKS".into());
    }
    Ok((keys, skipped))
}

/// The fetch state shared by every worker (one small record per provider).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchState {
    /// Version of the key set in the keys record (0: none yet).
    pub version: u64,
    /// When the next scheduled fetch is due, seconds since the epoch.
    pub next_due_s: u64,
    /// Until when a worker holds the fetch lease.
    pub lease_until_s: u64,
    /// When the last fetch started.
    pub last_attempt_s: u64,
    /// Failed fetches in a row.
    pub failures: u32,
}

impl FetchState {
    fn decode(bytes: Option<&[u8]>) -> FetchState {
        bytes
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default()
    }

    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The state after taking the lease at `now`, or `None` when no fetch is due or another worker
    /// holds the lease. `refetch`: a request saw an unknown `kid` (allowed every `min_refetch_s`).
    pub fn lease(&self, r: &RemoteJwks, now: u64, refetch: bool) -> Option<FetchState> {
        if now < self.lease_until_s {
            return None;
        }
        let due = now >= self.next_due_s;
        let early = refetch && now >= self.last_attempt_s.saturating_add(r.min_refetch_s);
        if !(due || early) {
            return None;
        }
        Some(FetchState {
            lease_until_s: now.saturating_add(r.lease_s),
            last_attempt_s: now,
            ..*self
        })
    }

    /// The state after a fetch that brought new keys.
    pub fn succeeded(&self, r: &RemoteJwks, now: u64) -> FetchState {
        FetchState {
            version: self.version.saturating_add(1),
            next_due_s: now.saturating_add(r.refresh_s),
            lease_until_s: 0,
            last_attempt_s: self.last_attempt_s,
            failures: 0,
        }
    }

    /// The state after a failed fetch: retry after a backoff, never later than the next refresh.
    pub fn failed(&self, r: &RemoteJwks, now: u64) -> FetchState {
        let failures = self.failures.saturating_add(1);
        FetchState {
            next_due_s: now.saturating_add(backoff_s(failures, r.refresh_s)),
            lease_until_s: 0,
            failures,
            ..*self
        }
    }
}

/// Seconds to wait after `failures` failed fetches in a row: 1, 2, 4 ... up to [`MAX_BACKOFF_S`],
/// and never beyond the refresh interval.
pub fn backoff_s(failures: u32, refresh_s: u64) -> u64 {
    let exp = failures.saturating_sub(1).min(16);
    (1u64 << exp).min(MAX_BACKOFF_S).min(refresh_s.max(1))
}

/// What a worker should do after looking at the shared state.
#[derive(Default)]
pub struct Tick {
    /// A newer key set than the worker's: install it.
    pub install: Option<Vec<VerifyingKey>>,
    /// This worker holds the lease: make the first call.
    pub fetch: bool,
}

/// One worker's view of one remote key set.
#[derive(Debug, Default)]
pub struct KeySync {
    installed: u64,
    /// This worker's fetch is in flight until this time (its lease); 0: none. A fetch whose answer
    /// never comes does not block this worker past its lease.
    fetching_until: u64,
}

impl KeySync {
    /// Version of the key set this worker uses (0: none yet).
    pub fn installed(&self) -> u64 {
        self.installed
    }

    /// Called on the timer: picks up a key set another worker fetched, and takes the lease when a
    /// fetch is due (`refetch`: a request saw an unknown `kid`).
    pub fn tick<S: SharedData + ?Sized>(
        &mut self,
        store: &S,
        r: &RemoteJwks,
        allowed: &[Algorithm],
        now: u64,
        refetch: bool,
    ) -> Result<Tick, SharedError> {
        let mut out = Tick::default();
        let (state, _) = store.get(&r.state_key())?;
        let state = FetchState::decode(state.as_deref());
        if state.version != self.installed {
            if let Some((version, doc)) = read_keys(store, r)? {
                if version != self.installed {
                    // Stored keys were valid when written; a later loader change could refuse them.
                    if let Ok((keys, _)) = parse_jwks(&doc, allowed) {
                        out.install = Some(keys);
                    }
                    self.installed = version;
                }
            }
        }
        if now >= self.fetching_until {
            let leased =
                shared::update(
                    store,
                    &r.state_key(),
                    CAS_ATTEMPTS,
                    |cur| match FetchState::decode(cur).lease(r, now, refetch) {
                        Some(next) => (Some(next.encode()), true),
                        None => (None, false),
                    },
                )?;
            self.fetching_until = if leased {
                now.saturating_add(r.lease_s)
            } else {
                0
            };
            out.fetch = leased;
        }
        Ok(out)
    }

    /// The end of this worker's fetch: `Ok(document)` with the JWKS, or why it failed. On success the
    /// keys are stored for every worker and returned for this one; on failure the last good keys stay.
    pub fn finish<S: SharedData + ?Sized>(
        &mut self,
        store: &S,
        r: &RemoteJwks,
        allowed: &[Algorithm],
        now: u64,
        result: Result<&[u8], String>,
    ) -> Result<(Vec<VerifyingKey>, usize), String> {
        self.fetching_until = 0;
        let parsed = result.and_then(|doc| parse_jwks(doc, allowed).map(|k| (k, doc)));
        match parsed {
            Ok((keys, doc)) => {
                let (state, _) = store.get(&r.state_key()).map_err(|e| e.to_string())?;
                let version = FetchState::decode(state.as_deref())
                    .version
                    .saturating_add(1);
                let mut record = version.to_le_bytes().to_vec();
                record.extend_from_slice(doc);
                // Keys first, then the version that announces them.
                shared::update(store, &r.keys_key(), CAS_ATTEMPTS, |_| {
                    (Some(record.clone()), ())
                })
                .map_err(|e| e.to_string())?;
                let written = shared::update(store, &r.state_key(), CAS_ATTEMPTS, |cur| {
                    let next = FetchState::decode(cur).succeeded(r, now);
                    (Some(next.encode()), next.version)
                })
                .map_err(|e| e.to_string())?;
                self.installed = written.max(version);
                Ok(keys)
            }
            Err(why) => {
                // Best effort: if even this fails, the lease runs out and another worker retries.
                let _ = shared::update(store, &r.state_key(), CAS_ATTEMPTS, |cur| {
                    (Some(FetchState::decode(cur).failed(r, now).encode()), ())
                });
                Err(why)
            }
        }
    }
}

fn read_keys<S: SharedData + ?Sized>(
    store: &S,
    r: &RemoteJwks,
) -> Result<Option<(u64, Vec<u8>)>, SharedError> {
    let (value, _) = store.get(&r.keys_key())?;
    Ok(value.and_then(|v| {
        let version = u64::from_le_bytes(v.get(..8)?.try_into().ok()?);
        Some((version, v.get(8..)?.to_vec()))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::{CasRule, MemoryStore};

    const ES_JWK: &str = r#"{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","use":"sig",
        "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    fn jwks(keys: &[&str]) -> Vec<u8> {
        format!(r#"{{"keys":[{}]}}"#, keys.join(",")).into_bytes()
    }

    fn provider(extra: &str) -> ProviderConfig {
        let json = format!(
            r#"{{"name":"idp","issuer":"https://idp.example.com","audiences":["api"]{extra}}}"#
        );
        serde_json::from_str(&json).unwrap()
    }

    fn remote(extra: &str) -> RemoteJwks {
        RemoteJwks::compile(&provider(extra), "providers[0]")
            .unwrap()
            .unwrap()
    }

    fn uri() -> RemoteJwks {
        remote(
            r#","jwks_uri":{"url":"https://idp.example.com/keys","envoy_cluster":"idp","timeout_ms":1500},
               "jwks_refresh_s":300,"jwks_min_refetch_s":30"#,
        )
    }

    #[test]
    fn key_sources_are_exclusive_and_errors_name_the_field() {
        let err = |extra: &str| RemoteJwks::compile(&provider(extra), "providers[0]").unwrap_err();
        let e = err(r#","jwks":{"keys":[]},"jwks_uri":{"url":"https://idp/keys"}"#);
        assert_eq!(e.field, "providers[0].jwks_uri");
        let e = err(r#","jwks_uri":{"url":"https://idp/keys"},"discovery":true"#);
        assert_eq!(e.field, "providers[0].jwks_uri");
        let e = err(r#","jwks":{"keys":[]},"discovery":true"#);
        assert_eq!(e.field, "providers[0].discovery");
        let e = err(r#","jwks":{"keys":[]},"envoy_cluster":"idp""#);
        assert_eq!(e.field, "providers[0].envoy_cluster");
        let e = err(r#","jwks_uri":{"url":"https://idp/keys"},"jwks_refresh_s":0"#);
        assert_eq!(e.field, "providers[0].jwks_refresh_s");
        let e = err(
            r#","jwks_uri":{"url":"https://idp/keys"},"jwks_refresh_s":10,"jwks_min_refetch_s":0"#,
        );
        assert_eq!(e.field, "providers[0].jwks_min_refetch_s");
        let e = err(r#","jwks_uri":{"url":"ftp://idp/keys"}"#);
        assert_eq!(e.field, "providers[0].jwks_uri.url");
        assert!(
            RemoteJwks::compile(&provider(r#","jwks":{"keys":[]}"#), "p")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn lease_is_exclusive_until_it_runs_out() {
        let r = uri();
        assert_eq!(r.lease_s, 3);
        let s = FetchState::default();
        let held = s.lease(&r, 1000, false).unwrap();
        assert_eq!(held.lease_until_s, 1003);
        assert!(
            held.lease(&r, 1001, false).is_none(),
            "another worker holds it"
        );
        assert!(
            held.lease(&r, 1001, true).is_none(),
            "even for an unknown kid"
        );
        // The holder died: the lease runs out and the fetch is still due.
        assert!(held.lease(&r, 1003, false).is_some());
    }

    #[test]
    fn schedule_backoff_and_refetch_rate_limit() {
        let r = uri();
        let s = FetchState::default().lease(&r, 1000, false).unwrap();
        let ok = s.succeeded(&r, 1001);
        assert_eq!((ok.version, ok.next_due_s, ok.failures), (1, 1301, 0));
        assert!(ok.lease(&r, 1100, false).is_none(), "not due");
        // Unknown kid: allowed once min_refetch_s after the last attempt, then rate-limited.
        assert!(ok.lease(&r, 1029, true).is_none());
        let early = ok.lease(&r, 1030, true).unwrap();
        let done = early.succeeded(&r, 1030);
        assert!(done.lease(&r, 1031, true).is_none(), "rate-limited");
        assert!(done.lease(&r, 1059, true).is_none());
        assert!(done.lease(&r, 1060, true).is_some());
        // Failures back off 1, 2, 4 ... 60 s, keep the version (last good keys).
        let mut f = done;
        let mut waits = vec![];
        for now in [2000u64, 3000, 4000, 5000, 6000, 7000, 8000, 9000] {
            f = f.lease(&r, now, false).unwrap().failed(&r, now);
            waits.push(f.next_due_s - now);
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(f.version, 2);
        assert_eq!(backoff_s(10, 5), 5, "never beyond the refresh interval");
        assert_eq!(f.succeeded(&r, 9500).failures, 0);
    }

    #[test]
    fn one_fetch_for_all_workers_and_everyone_installs_it() {
        for rule in [CasRule::Envoy, CasRule::Kong] {
            let store = MemoryStore::new(rule);
            let r = uri();
            let algs = Algorithm::ALL;
            let mut workers: Vec<KeySync> = (0..4).map(|_| KeySync::default()).collect();
            let fetching: Vec<bool> = workers
                .iter_mut()
                .map(|w| w.tick(&store, &r, &algs, 1000, false).unwrap().fetch)
                .collect();
            assert_eq!(fetching, [true, false, false, false], "{rule:?}");
            let (keys, skipped) = workers[0]
                .finish(&store, &r, &algs, 1000, Ok(&jwks(&[ES_JWK])))
                .unwrap();
            assert_eq!((keys.len(), skipped), (1, 0));
            assert_eq!(workers[0].installed(), 1);
            for w in &mut workers[1..] {
                let t = w.tick(&store, &r, &algs, 1001, false).unwrap();
                assert_eq!(t.install.map(|k| k.len()), Some(1));
                assert!(!t.fetch);
                assert_eq!(w.installed(), 1);
                // Nothing new: nothing to install.
                assert!(w
                    .tick(&store, &r, &algs, 1002, false)
                    .unwrap()
                    .install
                    .is_none());
            }
            assert_eq!(store.len(), 2, "one state and one keys record per provider");
            // Next refresh: again exactly one worker fetches.
            let due: Vec<bool> = workers
                .iter_mut()
                .map(|w| w.tick(&store, &r, &algs, 1300, false).unwrap().fetch)
                .collect();
            assert_eq!(due.iter().filter(|f| **f).count(), 1);
        }
    }

    #[test]
    fn a_fetch_whose_answer_never_comes_does_not_block_the_worker() {
        let store = MemoryStore::new(CasRule::Envoy);
        let r = uri();
        let mut w = KeySync::default();
        assert!(
            w.tick(&store, &r, &Algorithm::ALL, 1000, false)
                .unwrap()
                .fetch
        );
        // No answer: nobody fetches while the lease runs, then this worker (or another) may again.
        assert!(
            !w.tick(&store, &r, &Algorithm::ALL, 1002, false)
                .unwrap()
                .fetch
        );
        assert!(
            w.tick(&store, &r, &Algorithm::ALL, 1003, false)
                .unwrap()
                .fetch
        );
    }

    #[test]
    fn a_failed_fetch_keeps_the_last_good_keys() {
        let store = MemoryStore::new(CasRule::Kong);
        let r = uri();
        let algs = Algorithm::ALL;
        let mut w = KeySync::default();
        assert!(w.tick(&store, &r, &algs, 1000, false).unwrap().fetch);
        w.finish(&store, &r, &algs, 1000, Ok(&jwks(&[ES_JWK])))
            .unwrap();
        let before = store.get(&r.keys_key()).unwrap().0;
        assert!(w.tick(&store, &r, &algs, 1300, false).unwrap().fetch);
        let e = w
            .finish(&store, &r, &algs, 1300, Err("timeout".into()))
            .unwrap_err();
        assert_eq!(e, "timeout");
        // Garbage and a JWKS without a usable key are failures too.
        for (now, bad) in [
            (1400, &b"<html>"[..]),
            (1500, br#"{"keys":[{"kty":"EC","crv":"P-521"}]}"#),
        ] {
            assert!(w.tick(&store, &r, &algs, now, false).unwrap().fetch);
            assert!(w.finish(&store, &r, &algs, now, Ok(bad)).is_err());
        }
        assert_eq!(store.get(&r.keys_key()).unwrap().0, before);
        let state = FetchState::decode(store.get(&r.state_key()).unwrap().0.as_deref());
        assert_eq!((state.version, state.failures), (1, 3));
        // A fresh worker still gets the last good keys.
        let t = KeySync::default()
            .tick(&store, &r, &algs, 1501, false)
            .unwrap();
        assert_eq!(t.install.map(|k| k.len()), Some(1));
    }

    #[test]
    fn jwks_documents_are_bounded_and_bad_keys_skipped() {
        let (keys, skipped) = parse_jwks(
            &jwks(&[
                ES_JWK,
                r#"{"kty":"RSA","use":"enc","n":"x","e":"AQAB"}"#,
                r#"{"kty":"XX"}"#,
            ]),
            &Algorithm::ALL,
        )
        .unwrap();
        assert_eq!((keys.len(), skipped), (1, 2));
        assert!(parse_jwks(&jwks(&[ES_JWK]), &[Algorithm::RS256]).is_err());
        let big = vec![b' '; MAX_DOCUMENT_BYTES + 1];
        assert!(parse_jwks(&big, &Algorithm::ALL).is_err());
        assert!(parse_jwks(b"[]", &Algorithm::ALL).is_err());
    }

    #[test]
    fn discovery_needs_the_exact_issuer_and_the_same_host() {
        let r = remote(r#","discovery":true,"envoy_cluster":"idp""#);
        let (stage, call) = r.first_call(HostKind::Envoy).unwrap();
        assert_eq!(stage, Stage::Discovery);
        assert_eq!(call.headers[1].1, "/.well-known/openid-configuration");
        assert_eq!(call.upstream, "idp");
        let doc = br#"{"issuer":"https://idp.example.com","jwks_uri":"https://idp.example.com/oauth2/keys"}"#;
        let c = r.call_from_discovery(HostKind::Envoy, doc).unwrap();
        assert_eq!(c.headers[1].1, "/oauth2/keys");
        assert_eq!(c.upstream, "idp");
        let other_iss =
            br#"{"issuer":"https://idp.example.com/","jwks_uri":"https://idp.example.com/k"}"#;
        assert!(r.call_from_discovery(HostKind::Envoy, other_iss).is_err());
        let other_host =
            br#"{"issuer":"https://idp.example.com","jwks_uri":"https://evil.example/k"}"#;
        assert!(r.call_from_discovery(HostKind::Envoy, other_host).is_err());
        let sneaky =
            br#"{"issuer":"https://idp.example.com","jwks_uri":"https://idp.example.com.evil/k"}"#;
        assert!(r.call_from_discovery(HostKind::Envoy, sneaky).is_err());
        // Kong: the issuer's host and port by default.
        let k = r.first_call(HostKind::Kong).unwrap().1;
        assert_eq!(k.upstream, "idp.example.com:443");
    }

    #[test]
    fn a_changed_source_uses_other_shared_keys() {
        let a = uri();
        let b =
            remote(r#","jwks_uri":{"url":"https://idp.example.com/keys2","envoy_cluster":"idp"}"#);
        assert_ne!(a.keys_key(), b.keys_key());
        assert!(a.keys_key().starts_with("warden.jwks."));
    }
}
