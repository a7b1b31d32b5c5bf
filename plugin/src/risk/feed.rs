//! `risk.deny_cidrs_feed`: known-bad source networks served over HTTP, in the plain format public
//! blocklists use (one network or address a line; `#` and `;` start comments), added to the static
//! `risk.deny_cidrs` for the `bad_source` feature.
//!
//! One worker per interval fetches it for all, under a shared lease (as the revocation feed); a body
//! that does not parse or holds more than `max_entries` networks is refused and the last good list
//! stays. The list lives in shared data (18 bytes a network, at most [`MAX_ENTRIES`]: one value under
//! the host's size bound); each worker keeps its own parsed copy, brought up to date on its tick
//! ([`DenyFeed::refresh`]), so a request reads no shared data for it.

use super::cidr::Cidr;
use crate::config::risk::DenyFeedConfig;
use crate::config::ConfigError;
use crate::outbound::{Call, HostKind, Service};
use crate::shared::{self, SharedData};
use std::net::IpAddr;
use std::sync::RwLock;

/// Shared-data key of the list (encoded networks).
pub const LIST_KEY: &str = "warden:risk:deny_feed:list";
/// Shared-data key of the fetch lease (the time the next fetch is due).
pub const LEASE_KEY: &str = "warden:risk:deny_feed:lease";
/// Most networks a feed may carry (18 bytes each: one shared value under 64 KiB).
pub const MAX_ENTRIES: usize = 3500;
/// Largest feed body accepted (comments included).
pub const MAX_BYTES: usize = 1 << 20;
/// Bytes of one encoded network: IPv4 flag, prefix length, 16 address bytes.
const ENTRY: usize = 18;
// The largest list fits one shared value (checked when the crate compiles).
const _: () = assert!(MAX_ENTRIES * ENTRY <= crate::shared::MAX_VALUE_BYTES);

pub use crate::feed::FeedError;

/// This worker's copy of the list: the shared value's cas it was parsed from, and the networks.
#[derive(Debug, Default)]
struct Copy {
    cas: Option<u32>,
    nets: Vec<Cidr>,
}

/// The compiled feed.
#[derive(Debug)]
pub struct DenyFeed {
    service: Service,
    interval_s: u64,
    max_entries: usize,
    copy: RwLock<Copy>,
}

impl DenyFeed {
    /// Compiles `risk.deny_cidrs_feed`.
    pub fn compile(c: &DenyFeedConfig) -> Result<DenyFeed, ConfigError> {
        crate::feed::check_bounds(
            "risk.deny_cidrs_feed",
            c.interval_s,
            c.max_entries,
            MAX_ENTRIES,
        )?;
        Ok(DenyFeed {
            service: Service::compile(&c.service, "risk.deny_cidrs_feed.service")?,
            interval_s: c.interval_s,
            max_entries: c.max_entries,
            copy: RwLock::default(),
        })
    }

    /// Takes the fetch lease if a fetch is due: true for exactly one worker per interval.
    pub fn take_lease(&self, store: &dyn SharedData, now_s: u64) -> bool {
        crate::feed::take_lease(store, LEASE_KEY, now_s, self.interval_s)
    }

    /// The feed request for `host`.
    pub fn call(&self, host: HostKind) -> Result<Call, ConfigError> {
        self.service
            .call(host, "GET", &[("accept", "text/plain")], None)
            .map_err(|e| ConfigError::new("risk.deny_cidrs_feed.service.envoy_cluster", e.message))
    }

    /// Parses a feed body and stores it for every worker. Returns the number of networks.
    pub fn store(&self, store: &dyn SharedData, body: &[u8]) -> Result<usize, FeedError> {
        if body.len() > MAX_BYTES {
            return Err(FeedError::TooLarge(usize::MAX));
        }
        let nets = parse(body, self.max_entries)?;
        let bytes: Vec<u8> = nets.iter().flat_map(encode).collect();
        shared::update(store, LIST_KEY, 8, |_| (Some(bytes.clone()), ()))
            .map_err(FeedError::Store)?;
        Ok(nets.len())
    }

    /// Brings this worker's copy up to date with the shared list (a no-op when it has not changed).
    pub fn refresh(&self, store: &dyn SharedData) {
        let Ok((value, cas)) = store.get(LIST_KEY) else {
            return;
        };
        if self.copy.read().is_ok_and(|c| c.cas == Some(cas)) {
            return;
        }
        let nets = value
            .unwrap_or_default()
            .chunks_exact(ENTRY)
            .filter_map(decode)
            .collect();
        if let Ok(mut c) = self.copy.write() {
            *c = Copy {
                cas: Some(cas),
                nets,
            };
        }
    }

    /// Whether `addr` is in this worker's copy of the list.
    pub fn contains(&self, addr: &IpAddr) -> bool {
        self.copy
            .read()
            .is_ok_and(|c| c.nets.iter().any(|n| n.contains(addr)))
    }
}

/// The networks of a feed body: one a line, `#` or `;` starts a comment, blank lines skipped. The
/// first line that is not a network refuses the whole body (naming its line number).
pub fn parse(body: &[u8], max_entries: usize) -> Result<Vec<Cidr>, FeedError> {
    let text = std::str::from_utf8(body).map_err(|_| FeedError::Malformed("not UTF-8".into()))?;
    let mut nets = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split(['#', ';']).next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let net =
            Cidr::parse(line).map_err(|e| FeedError::Malformed(format!("line {}: {e}", i + 1)))?;
        nets.push(net);
        if nets.len() > max_entries {
            return Err(FeedError::TooLarge(nets.len()));
        }
    }
    Ok(nets)
}

fn encode(c: &Cidr) -> [u8; ENTRY] {
    let (v4, len, addr) = c.parts();
    let mut out = [0u8; ENTRY];
    out[0] = u8::from(v4);
    out[1] = len;
    out[2..].copy_from_slice(&addr.to_be_bytes());
    out
}

fn decode(b: &[u8]) -> Option<Cidr> {
    let (&v4, rest) = b.split_first()?;
    let (&len, addr) = rest.split_first()?;
    let addr = u128::from_be_bytes(addr.try_into().ok()?);
    Cidr::from_parts(v4 == 1, len, addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::shared::{CasRule, MemoryStore};

    fn feed(max: usize) -> DenyFeed {
        let c = Config::from_json(
            format!(
                r#"{{"risk": {{"deny_cidrs_feed": {{"service": {{"url": "http://127.0.0.1:9/drop.txt",
                "envoy_cluster": "feed"}}, "interval_s": 5, "max_entries": {max}}}}}}}"#
            )
            .as_bytes(),
        )
        .unwrap();
        DenyFeed::compile(c.risk.unwrap().deny_cidrs_feed.as_ref().unwrap()).unwrap()
    }

    const DROP: &[u8] = b"; Spamhaus DROP style\n\
        203.0.113.0/24 ; SBL0001\n\
        # a comment line\n\
        \n\
        2001:db8::/32\n\
        198.51.100.7\n";

    #[test]
    fn parse_store_refresh_and_keep_the_last_good_list() {
        for rule in [CasRule::Envoy, CasRule::Kong] {
            let f = feed(3);
            let s = MemoryStore::new(rule);
            assert!(f.take_lease(&s, 100));
            assert!(!f.take_lease(&s, 104));
            assert!(f.take_lease(&s, 105));
            let ip = |a: &str| a.parse::<IpAddr>().unwrap();
            assert!(!f.contains(&ip("203.0.113.9")));
            assert_eq!(f.store(&s, DROP), Ok(3));
            // Another worker's copy learns it on its tick, not before.
            assert!(!f.contains(&ip("203.0.113.9")));
            f.refresh(&s);
            assert!(f.contains(&ip("203.0.113.9")));
            assert!(f.contains(&ip("2001:db8::1")));
            assert!(f.contains(&ip("198.51.100.7")));
            assert!(!f.contains(&ip("198.51.100.8")));
            // Too many, or a broken line: refused, the list stays.
            assert_eq!(
                f.store(&s, b"10.0.0.0/8\n10.1.0.0/16\n10.2.0.0/16\n10.3.0.0/16\n"),
                Err(FeedError::TooLarge(4))
            );
            assert!(matches!(
                f.store(&s, b"10.0.0.0/8\nnot-a-network\n"),
                Err(FeedError::Malformed(m)) if m.starts_with("line 2")
            ));
            f.refresh(&s);
            assert!(f.contains(&ip("203.0.113.9")));
            // A new list replaces it.
            assert_eq!(f.store(&s, b"192.0.2.0/24\n"), Ok(1));
            f.refresh(&s);
            assert!(!f.contains(&ip("203.0.113.9")));
            assert!(f.contains(&ip("192.0.2.1")));
        }
    }

    #[test]
    fn out_of_bounds_config_names_the_field() {
        for (fields, field, message) in [
            (r#""interval_s": 0"#, "interval_s", "between 1 and 86400"),
            (
                r#""interval_s": 86401"#,
                "interval_s",
                "between 1 and 86400",
            ),
            (r#""max_entries": 0"#, "max_entries", "between 1 and "),
            (
                r#""max_entries": 100000000"#,
                "max_entries",
                "between 1 and ",
            ),
        ] {
            let c = Config::from_json(
                format!(
                    r#"{{"risk": {{"deny_cidrs_feed": {{"service": {{"url": "http://127.0.0.1:9/d",
                    "envoy_cluster": "feed"}}, {fields}}}}}}}"#
                )
                .as_bytes(),
            )
            .unwrap();
            let e =
                DenyFeed::compile(c.risk.unwrap().deny_cidrs_feed.as_ref().unwrap()).unwrap_err();
            assert_eq!(e.field, format!("risk.deny_cidrs_feed.{field}"), "{fields}");
            assert!(e.message.contains(message), "{fields}: {}", e.message);
        }
    }
}
