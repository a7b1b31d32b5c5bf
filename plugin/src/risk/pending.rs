//! Response facts (a forwarded request's body size) the worker holds until it next writes the
//! identity's record, so that the response phase makes no shared-data call.
//!
//! The response phase used to read the identity's record and write it back with compare-and-set:
//! two host calls per request, after the request phase's own read and write of the same record. The
//! facts now wait here, in the worker, and go into shared data with the next write of that record:
//! the identity's next request on this worker applies them (to what it reads, so its features see
//! them, and to what it writes back), or the root context's tick writes whatever is left (every
//! 250 ms, and when the config or VM goes away). Every write is still a compare-and-set on the
//! current record, so no other worker's update is lost; another worker sees a response at most one
//! tick later. The key space is bounded: [`MAX_IDENTITIES`] identities, [`MAX_RESPONSES`] facts
//! each; past either, the facts are written at once, as before.

use super::state::Slot;
use std::collections::HashMap;
use std::sync::Mutex;

/// Identities with facts waiting, at most (past it, a new identity's facts are written at once).
pub const MAX_IDENTITIES: usize = 256;
/// Facts waiting for one identity, at most (the one that would pass it is written with them).
pub const MAX_RESPONSES: usize = 16;

/// One response: its body size and when it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// Bytes of the upstream's body.
    pub bytes: u64,
    /// Seconds since the epoch, when the response ended.
    pub now_s: u64,
}

/// The facts waiting for one identity's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// The record (key and the identity's hash).
    pub slot: Slot,
    /// Oldest first.
    pub responses: Vec<Response>,
}

/// The worker's waiting facts, by record key.
#[derive(Debug, Default)]
pub struct Pending {
    map: Mutex<HashMap<String, Waiting>>,
}

impl Pending {
    /// Holds `response` for `slot`'s record; gives the facts back when they must be written now
    /// (too many waiting for this identity, or too many identities).
    pub fn hold(&self, slot: &Slot, response: Response) -> Option<Waiting> {
        let mut map = self.lock();
        if let Some(w) = map.get_mut(&slot.key).filter(|w| w.slot.hash == slot.hash) {
            w.responses.push(response);
            if w.responses.len() < MAX_RESPONSES {
                return None;
            }
            return map.remove(&slot.key);
        }
        let fresh = Waiting {
            slot: slot.clone(),
            responses: vec![response],
        };
        if map.len() >= MAX_IDENTITIES && !map.contains_key(&slot.key) {
            return Some(fresh);
        }
        // Another identity's facts in the same slot (a collision): they go now, these wait.
        map.insert(slot.key.clone(), fresh)
    }

    /// Takes the facts waiting for `slot`'s identity (none for another identity in that slot).
    pub fn take(&self, slot: &Slot) -> Vec<Response> {
        let mut map = self.lock();
        match map.get(&slot.key) {
            Some(w) if w.slot.hash == slot.hash => map
                .remove(&slot.key)
                .map(|w| w.responses)
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Takes every identity's waiting facts.
    pub fn drain(&self) -> Vec<Waiting> {
        self.lock().drain().map(|(_, w)| w).collect()
    }

    /// Whether no fact is waiting.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiting>> {
        // A worker is one thread: the lock is never contended, and never poisoned by a panic
        // (the filter has none); a poisoned one is used as it is.
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn slot(key: &str, hash: u64) -> Slot {
        Slot {
            key: key.into(),
            hash,
        }
    }

    fn r(bytes: u64) -> Response {
        Response { bytes, now_s: 100 }
    }

    #[test]
    fn facts_wait_until_taken_by_their_identity_only() {
        let p = Pending::default();
        assert_eq!(p.hold(&slot("k", 1), r(10)), None);
        assert_eq!(p.hold(&slot("k", 1), r(20)), None);
        // Another identity in the same slot takes nothing.
        assert!(p.take(&slot("k", 2)).is_empty());
        assert_eq!(p.take(&slot("k", 1)), vec![r(10), r(20)]);
        assert!(p.take(&slot("k", 1)).is_empty());
        assert!(p.is_empty());
    }

    #[test]
    fn a_colliding_identity_sends_the_older_facts_to_be_written() {
        let p = Pending::default();
        assert_eq!(p.hold(&slot("k", 1), r(10)), None);
        let out = p.hold(&slot("k", 2), r(20)).unwrap();
        assert_eq!(out.slot, slot("k", 1));
        assert_eq!(out.responses, vec![r(10)]);
        assert_eq!(p.take(&slot("k", 2)), vec![r(20)]);
    }

    #[test]
    fn the_held_facts_are_bounded() {
        let p = Pending::default();
        for i in 0..MAX_RESPONSES - 1 {
            assert_eq!(p.hold(&slot("k", 1), r(i as u64)), None);
        }
        let full = p.hold(&slot("k", 1), r(99)).unwrap();
        assert_eq!(full.responses.len(), MAX_RESPONSES);
        assert!(p.is_empty());
        for i in 0..MAX_IDENTITIES {
            assert_eq!(p.hold(&slot(&format!("k{i}"), 1), r(1)), None);
        }
        let over = p.hold(&slot("one-more", 1), r(1)).unwrap();
        assert_eq!(over.slot, slot("one-more", 1));
        assert_eq!(p.drain().len(), MAX_IDENTITIES);
        assert!(p.is_empty());
    }
}
