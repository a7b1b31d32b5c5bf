//! The revocation feed on the host: every worker's root context runs it once a second (on the one
//! tick timer, `schedule::Timers`); the one that takes the shared lease (see
//! [`crate::authz::revocation::Revocation::take_lease`]) fetches the feed with [`fetch::dispatch`]
//! and stores it in shared data for all.

use super::fetch::{self, CallError};
use super::gateway;
use super::shared::HostShared;
use crate::authz::revocation::MAX_FEED_BYTES;
use crate::decision::Engine;
use proxy_wasm::types::LogLevel;

/// One tick: fetch the feed if this worker got the lease. Returns the call's token.
pub fn tick(engine: &Engine, now_s: u64) -> Option<u32> {
    let revocation = engine.revocation();
    if !revocation.take_lease(&HostShared, now_s) {
        return None;
    }
    let call = match revocation.feed_call(gateway::kind())? {
        Ok(c) => c,
        Err(e) => {
            super::log(LogLevel::Error, &format!("warden: {e}"));
            return None;
        }
    };
    match fetch::dispatch(&call) {
        Ok(token) => Some(token),
        Err(e) => {
            super::log(LogLevel::Warn, &format!("warden: revocation feed: {e}"));
            None
        }
    }
}

/// The feed's answer: stored for every worker when it is a 200 with a valid body; otherwise the
/// previous list stays (and the next lease retries).
pub fn on_response(engine: &Engine, body_size: usize) {
    let body = match fetch::answer(body_size, MAX_FEED_BYTES) {
        Ok((200, body)) => body,
        Ok((status, _)) => return keep_previous(&CallError::Status(status)),
        Err(e) => return keep_previous(&e),
    };
    match engine.revocation().store_feed(&HostShared, &body) {
        Ok(n) => super::log(
            LogLevel::Info,
            &format!("warden: revocation feed: {n} entries"),
        ),
        Err(e) => super::log(
            LogLevel::Warn,
            &format!("warden: {e}; keeping the previous list"),
        ),
    }
}

fn keep_previous(why: &CallError) {
    super::log(
        LogLevel::Warn,
        &format!("warden: revocation feed: {why}; keeping the previous list"),
    );
}
