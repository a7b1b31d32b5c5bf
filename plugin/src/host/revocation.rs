//! The revocation feed on the host: every worker's root context runs it once a second (on the one
//! tick timer, `schedule::Timers`); the one that takes the shared lease (see
//! [`crate::authz::revocation::Revocation::take_lease`]) fetches the feed with `dispatch_http_call`
//! and stores it in shared data for all.

use super::gateway;
use super::shared::HostShared;
use crate::decision::Engine;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel};

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
    let headers: Vec<(&str, &str)> = call
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    match hostcalls::dispatch_http_call(
        &call.upstream,
        headers,
        call.body.as_deref(),
        vec![],
        std::time::Duration::from_millis(call.timeout_ms),
    ) {
        Ok(token) => Some(token),
        Err(s) => {
            super::log(
                LogLevel::Warn,
                &format!("warden: revocation feed: dispatch failed: {s:?}"),
            );
            None
        }
    }
}

/// The feed's answer: stored for every worker when it is a 200 with a valid body; otherwise the
/// previous list stays (and the next lease retries).
pub fn on_response(engine: &Engine, body_size: usize) {
    match gateway::call_outcome() {
        Ok(200) => {}
        outcome => {
            super::log(
                LogLevel::Warn,
                &format!("warden: revocation feed: {outcome:?}; keeping the previous list"),
            );
            return;
        }
    }
    let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
        .ok()
        .flatten()
        .unwrap_or_default();
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
