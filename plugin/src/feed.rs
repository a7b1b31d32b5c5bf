//! Lists fetched over HTTP for every worker (the revocation feed, `risk.deny_cidrs_feed`): the
//! shared lease that lets one worker per interval fetch, and why a fetched body was not stored.

use crate::shared::{self, SharedData, SharedError};

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
