//! The revocation feed on the host: every worker's root context runs it once a second (on the one
//! tick timer, `schedule::Timers`); the one that takes the shared lease (see
//! [`crate::authz::revocation::Revocation::take_lease`]) fetches the feed with [`fetch::dispatch`]
//! and stores it in shared data for all.

use super::fetch;
use super::gateway;
use super::shared::HostShared;
use crate::authz::revocation::MAX_FEED_BYTES;
use crate::decision::Engine;

/// One tick: fetch the feed if this worker got the lease. Returns the call's token.
pub fn tick(engine: &Engine, now_s: u64) -> Option<u32> {
    let revocation = engine.revocation();
    if !revocation.take_lease(&HostShared, now_s) {
        return None;
    }
    fetch::dispatch_feed(WHAT, revocation.feed_call(gateway::kind())?)
}

/// The feed's answer: stored for every worker when it is a 200 with a valid body; otherwise the
/// previous list stays (and the next lease retries).
pub fn on_response(engine: &Engine, body_size: usize) {
    if let Some(body) = fetch::feed_body(WHAT, body_size, MAX_FEED_BYTES) {
        let stored = engine.revocation().store_feed(&HostShared, &body);
        fetch::feed_stored(WHAT, stored, "entries");
    }
}

/// The feed's name in logs.
const WHAT: &str = "revocation feed";
