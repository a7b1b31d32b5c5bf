//! The risk stage's circuit breaker: a score that was computed is always used; repeated failures
//! (scoring errors, or runs over `risk.budget_us`) open the breaker for a cool-down, during which the
//! stage is skipped and `risk.on_error` decides; after the cool-down the next request is a half-open
//! probe: scored, it closes the breaker, failing, it opens it again.
//!
//! One breaker per worker (per VM; natively per engine): it protects the worker's own time, and a
//! worker whose neighbour is slow should not stop scoring. Two atomics, so the engine stays
//! `Send + Sync`; the clock is the request's (seconds), so replay is deterministic.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Where the breaker stands for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: score as usual.
    Closed,
    /// The cool-down has passed: score, and let the outcome close or reopen the breaker.
    HalfOpen,
    /// Open: do not score; `on_error` decides.
    Open,
}

/// What one outcome did to the breaker (for the record and the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// This failure opened the breaker (from closed, or a failed half-open probe).
    Opened,
    /// This half-open probe succeeded: the breaker is closed again.
    Closed,
}

impl Transition {
    /// Name for the decision record (`risk_breaker_event`).
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Opened => "opened",
            Transition::Closed => "closed",
        }
    }
}

/// A per-worker circuit breaker over the risk stage.
#[derive(Debug)]
pub struct CircuitBreaker {
    open_after: u32,
    cool_down_s: u64,
    /// Consecutive failures (saturating).
    failures: AtomicU32,
    /// Open until this time (seconds since the epoch); 0: never opened since the last close.
    open_until_s: AtomicU64,
}

impl CircuitBreaker {
    /// A closed breaker that opens after `open_after` consecutive failures for `cool_down_s`.
    pub fn new(open_after: u32, cool_down_s: u64) -> CircuitBreaker {
        CircuitBreaker {
            open_after: open_after.max(1),
            cool_down_s,
            failures: AtomicU32::new(0),
            open_until_s: AtomicU64::new(0),
        }
    }

    /// Whether a request at `now_s` is scored.
    pub fn admit(&self, now_s: u64) -> Admission {
        let until = self.open_until_s.load(Ordering::Relaxed);
        if until == 0 {
            Admission::Closed
        } else if now_s < until {
            Admission::Open
        } else {
            Admission::HalfOpen
        }
    }

    /// Records the outcome of a scored request (`ok`: scored within budget).
    pub fn record(&self, now_s: u64, ok: bool) -> Option<Transition> {
        let was_open = self.open_until_s.load(Ordering::Relaxed) != 0;
        if ok {
            self.failures.store(0, Ordering::Relaxed);
            if was_open {
                self.open_until_s.store(0, Ordering::Relaxed);
                return Some(Transition::Closed);
            }
            return None;
        }
        let failures = self
            .failures
            .load(Ordering::Relaxed)
            .saturating_add(1)
            .min(self.open_after);
        self.failures.store(failures, Ordering::Relaxed);
        // A failed half-open probe reopens at once; a closed breaker needs `open_after` in a row.
        if was_open || failures >= self.open_after {
            let until = now_s.saturating_add(self.cool_down_s).max(1);
            self.open_until_s.store(until, Ordering::Relaxed);
            return Some(Transition::Opened);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_repeated_failures_and_a_probe_closes_it() {
        let b = CircuitBreaker::new(3, 10);
        assert_eq!(b.admit(100), Admission::Closed);
        assert_eq!(b.record(100, false), None);
        assert_eq!(b.record(100, false), None);
        // A success in between resets the count: isolated overruns never open it.
        assert_eq!(b.record(100, true), None);
        assert_eq!(b.record(100, false), None);
        assert_eq!(b.record(100, false), None);
        assert_eq!(b.record(101, false), Some(Transition::Opened));
        assert_eq!(b.admit(101), Admission::Open);
        assert_eq!(b.admit(110), Admission::Open);
        // Cool-down over: a probe; it fails, the breaker opens again for a full cool-down.
        assert_eq!(b.admit(111), Admission::HalfOpen);
        assert_eq!(b.record(111, false), Some(Transition::Opened));
        assert_eq!(b.admit(120), Admission::Open);
        assert_eq!(b.admit(121), Admission::HalfOpen);
        assert_eq!(b.record(121, true), Some(Transition::Closed));
        assert_eq!(b.admit(121), Admission::Closed);
        // Closed again: it takes `open_after` failures in a row once more.
        assert_eq!(b.record(122, false), None);
        assert_eq!(b.admit(122), Admission::Closed);
    }
}
