//! Lists fetched over HTTP for every worker (the revocation feed, `risk.deny_cidrs_feed`): the
//! shared lease that lets one worker per interval fetch, and why a fetched body was not stored.

use crate::config::ConfigError;
use crate::shared::{self, SharedData, SharedError};

/// Longest interval a feed may be fetched at: a day.
const MAX_INTERVAL_S: u64 = 86_400;

/// Checks a feed's `interval_s` (1 to a day) and `max_entries` (1 to `max`), naming the field
/// under `prefix` (`revocation.feed`, `risk.deny_cidrs_feed`) that is out of bounds.
pub fn check_bounds(
    prefix: &str,
    interval_s: u64,
    max_entries: usize,
    max: usize,
) -> Result<(), ConfigError> {
    if interval_s == 0 || interval_s > MAX_INTERVAL_S {
        return Err(ConfigError::new(
            format!("{prefix}.interval_s"),
            format!("must be between 1 and {MAX_INTERVAL_S}"),
        ));
    }
    if max_entries == 0 || max_entries > max {
        return Err(ConfigError::new(
            format!("{prefix}.max_entries"),
            format!("must be between 1 and {max}"),
        ));
    }
    Ok(())
}

/// Why a feed body was not stored (the previous list stays).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedError {
    /// Not the feed's format (what is wrong, and where).
    Malformed(String),
    /// More entries than allowed (or a body over the size bound).
    TooLarge(usize),
    /// The shared store refused the write.
    Store(SharedError),
}

impl std::fmt::Display for FeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FeedError::Malformed(e) => write!(f, "malformed body: {e}"),
            FeedError::TooLarge(n) => write!(f, "{n} entries, over max_entries"),
            FeedError::Store(e) => write!(f, "{e}"),
        }
    }
}

/// Takes the lease at `key` if a fetch is due at `now_s`: true for exactly one worker per
/// `interval_s` (the lease holds the time the next fetch is due).
pub fn take_lease(store: &dyn SharedData, key: &str, now_s: u64, interval_s: u64) -> bool {
    shared::update(store, key, 1, |cur| {
        let due = cur
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_le_bytes);
        if now_s < due {
            return (None, false);
        }
        let next = now_s.saturating_add(interval_s);
        (Some(next.to_le_bytes().to_vec()), true)
    })
    .unwrap_or(false)
}
