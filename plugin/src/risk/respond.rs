//! Answers that fit the caller (`risk.responses`): a person can step up (RFC 9470), a caller that
//! cannot (a service account, an agent on client credentials, an API key) gets an answer it can act
//! on: a throttle to a multiple of its own pace while its score stays at `tag_at` or above (429 with
//! `Retry-After`; once it has a pace of its own every request takes a token, so a flood that turns
//! risky has spent its burst), and a suspension for a TTL when step-up-level scores persist (refused on every
//! worker: the state is the identity's shared record).
//!
//! Pure: the identity's record as read comes in, the verdict and the change to the record go out.

use super::state::IdentityState;
use crate::config::risk::{Response, ResponsesConfig};
use crate::credential::IdentityKind;

/// Busy rate buckets an identity needs before its own pace sets its throttle (before: the floor).
const PACE_MIN_BUCKETS: u32 = 3;

/// The compiled `risk.responses`.
#[derive(Debug, Clone)]
pub struct Responses {
    human: Response,
    agent: Response,
    service: Response,
    multiple: f32,
    floor_per_s: f32,
    burst_s: f32,
    bucket_s: u32,
    after: f32,
    window_s: f32,
    ttl_s: u64,
}

/// What the policy asks of the identity's record for this request.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Mark {
    /// The throttle's bucket was consulted: (tokens after this request, as of now).
    pub bucket: Option<f32>,
    /// A step-up-level score of a caller that cannot step up: counts towards suspension.
    pub hot: bool,
}

/// A refusal by this policy: throttled or suspended, with the seconds to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Over the throttle's pace: 429.
    Throttled(u64),
    /// Suspended: 403.
    Suspended(u64),
}

impl Responses {
    /// Compiles the section.
    pub fn compile(c: &ResponsesConfig) -> Responses {
        Responses {
            human: c.human,
            agent: c.agent,
            service: c.service,
            multiple: c.throttle.multiple as f32,
            floor_per_s: c.throttle.min_per_minute as f32 / 60.0,
            burst_s: c.throttle.burst_s as f32,
            bucket_s: c.throttle.pace_bucket_s,
            after: c.suspend.after as f32,
            window_s: c.suspend.window_s as f32,
            ttl_s: c.suspend.ttl_s,
        }
    }

    /// The answer for callers of `kind`.
    pub fn of(&self, kind: IdentityKind) -> Response {
        match kind {
            IdentityKind::Human => self.human,
            IdentityKind::Agent => self.agent,
            IdentityKind::Service => self.service,
        }
    }

    /// Seconds left of a suspension at `now_s`, if the identity is suspended.
    pub fn suspended(s: Option<&IdentityState>, now_s: u64) -> Option<u64> {
        let until = s?.suspended_until_s;
        (until > now_s).then(|| until - now_s)
    }

    /// Length of the rate buckets a pace is learnt in (`throttle.pace_bucket_s`), seconds: a record
    /// is moved to it ([`IdentityState::set_rate_bucket`]) before each request is recorded.
    pub fn pace_bucket_s(&self) -> u32 {
        self.bucket_s
    }

    /// Whether the identity has a pace of its own (else the throttle runs at `min_per_minute`).
    pub fn has_pace(s: Option<&IdentityState>) -> bool {
        s.is_some_and(|s| s.rate_buckets >= PACE_MIN_BUCKETS)
    }

    /// The throttle's pace for this identity, requests a second: `multiple` times its usual pace
    /// (its learnt requests per busy bucket, over the length of the buckets the record was learnt
    /// in) once it has one, else `min_per_minute`.
    pub fn pace_per_s(&self, s: Option<&IdentityState>) -> f32 {
        s.filter(|s| Responses::has_pace(Some(s)))
            .map_or(self.floor_per_s, |s| {
                self.multiple * s.rate_baseline.exp_m1() / s.bucket_len_s as f32
            })
    }

    /// The throttle for a request (it refuses only one scored at `tag_at` or above): takes a token
    /// from the identity's bucket (refilled at [`Responses::pace_per_s`], holding `burst_s` of it), or says how long to
    /// wait. Returns the bucket after the request, and the refusal if there was no token.
    pub fn throttle(&self, s: Option<&IdentityState>, now_s: u64) -> (f32, Option<Refusal>) {
        let rate = self.pace_per_s(s).max(f32::MIN_POSITIVE);
        let cap = (rate * self.burst_s).max(1.0);
        let tokens = match s {
            Some(s) if s.throttle_s != 0 => {
                let dt = now_s.saturating_sub(s.throttle_s) as f32;
                (s.throttle_tokens + rate * dt).min(cap)
            }
            _ => cap,
        };
        if tokens >= 1.0 {
            return (tokens - 1.0, None);
        }
        let wait = ((1.0 - tokens) / rate).ceil().clamp(1.0, 86_400.0) as u64;
        (tokens, Some(Refusal::Throttled(wait)))
    }

    /// Whether this step-up-level score, with the ones before it in the window, suspends the caller.
    pub fn suspends(&self, s: Option<&IdentityState>, now_s: u64) -> bool {
        self.reaches(hot_at(s, now_s, self.window_s) + 1.0)
    }

    /// Whether a decayed count of step-up-level scores is `suspend.after` of them: half a score of
    /// slack, so that `after` scores within seconds count as `after` despite the decay.
    fn reaches(&self, hot: f32) -> bool {
        hot >= self.after - 0.5
    }

    /// The suspension's TTL, seconds.
    pub fn ttl_s(&self) -> u64 {
        self.ttl_s
    }

    /// Applies `mark` to the record (the write after scoring, redone on a compare-and-set retry).
    pub fn apply(&self, s: &mut IdentityState, now_s: u64, mark: Mark) {
        if let Some(tokens) = mark.bucket {
            s.throttle_tokens = tokens;
            s.throttle_s = now_s.max(1);
        }
        if mark.hot {
            let hot = hot_at(Some(s), now_s, self.window_s) + 1.0;
            if self.reaches(hot) {
                s.suspended_until_s = s.suspended_until_s.max(now_s.saturating_add(self.ttl_s));
                s.hot = 0.0;
            } else {
                s.hot = hot;
            }
            s.hot_s = now_s;
        }
    }
}

/// Step-up-level scores at `now_s`, decayed over the suspension window.
fn hot_at(s: Option<&IdentityState>, now_s: u64, window_s: f32) -> f32 {
    s.map_or(0.0, |s| {
        let dt = now_s.saturating_sub(s.hot_s) as f32;
        s.hot * (-dt / window_s.max(1.0)).exp()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::risk::ResponsesConfig;

    fn responses() -> Responses {
        Responses::compile(&ResponsesConfig::default())
    }

    #[test]
    fn the_throttle_holds_a_caller_to_a_multiple_of_its_own_pace() {
        let r = responses();
        let mut s = IdentityState::fresh(1, 0);
        // 42 learnt requests per busy bucket: 0.14 a second; twice that is the throttle's pace.
        s.rate_baseline = 43f32.ln();
        s.rate_buckets = 10;
        let pace = r.pace_per_s(Some(&s));
        assert!((pace - 2.0 * 42.0 / 300.0).abs() < 1e-3, "{pace}");
        // A flood of 20 a second for 30 seconds gets about the pace, plus the burst.
        let mut passed = 0;
        for t in 0..600u64 {
            let now = 1000 + t / 20;
            let (tokens, refused) = r.throttle(Some(&s), now);
            if refused.is_none() {
                passed += 1;
            }
            r.apply(
                &mut s,
                now,
                Mark {
                    bucket: Some(tokens),
                    hot: false,
                },
            );
        }
        let allowed = pace * (30.0 + ResponsesConfig::default().throttle.burst_s as f32);
        assert!((passed as f32) <= allowed + 1.0, "{passed} > {allowed}");
        assert!(passed >= 5, "{passed}");
        let (_, refused) = r.throttle(Some(&s), 1029);
        assert!(matches!(refused, Some(Refusal::Throttled(w)) if (1..=10).contains(&w)));
    }

    fn with_bucket(len_s: u32) -> Responses {
        let mut c = ResponsesConfig::default();
        c.throttle.pace_bucket_s = len_s;
        Responses::compile(&c)
    }

    /// An agent's habit: `per_bucket` requests in the first half of each of three `every_s`
    /// periods, one in the fourth, recorded as the filter does under `r` (moved to its bucket
    /// length, then observed).
    fn habit(r: &Responses, every_s: u64, per_bucket: u64) -> IdentityState {
        let mut s = IdentityState::fresh(1, 0);
        for b in 0..4 {
            for i in 0..if b < 3 { per_bucket } else { 1 } {
                let now = 10_000 + b * every_s + i * every_s / 2 / per_bucket;
                s.set_rate_bucket(r.pace_bucket_s(), now);
                s.observe(&crate::risk::state::Sighting {
                    now_s: now,
                    country: None,
                    prefix: None,
                    agent: 1,
                    endpoint: 1,
                    route: 0,
                    object: None,
                    passed: true,
                    learn: true,
                    tagged: false,
                });
            }
        }
        s
    }

    #[test]
    fn a_pace_learnt_in_short_buckets_sets_the_throttle() {
        // 10 requests per busy 10-second bucket: 1 a second, the throttle's pace twice that.
        let r = with_bucket(10);
        let s = habit(&r, 10, 10);
        assert!(Responses::has_pace(Some(&s)));
        let pace = r.pace_per_s(Some(&s));
        assert!((pace - 2.0).abs() < 1e-3, "{pace}");
        // The same 31 requests in 5-minute buckets fall in one bucket: no pace yet, the floor.
        let r300 = responses();
        let t = habit(&r300, 10, 10);
        assert!(!Responses::has_pace(Some(&t)));
        assert_eq!(r300.pace_per_s(Some(&t)), 1.0);
    }

    #[test]
    fn after_a_change_of_bucket_length_the_pace_is_the_same_per_second() {
        let short = with_bucket(10);
        let mut s = habit(&short, 10, 10);
        let learnt = short.pace_per_s(Some(&s));
        // The operator goes back to 5-minute buckets: until the record is moved (its next request),
        // its pace is read in the length it was learnt in; after, converted to the new one.
        let long = responses();
        assert!((long.pace_per_s(Some(&s)) - learnt).abs() < 1e-3);
        s.set_rate_bucket(long.pace_bucket_s(), 10_100);
        let moved = long.pace_per_s(Some(&s));
        assert!(
            (moved - learnt).abs() / learnt < 1e-3,
            "{moved} vs {learnt}"
        );
        // Not the 30x slower pace the 10-second baseline would mean over 300 s.
        assert!(moved > 10.0 * learnt / 30.0);
        assert!(Responses::has_pace(Some(&s)));
    }

    #[test]
    fn sustained_step_up_level_scores_suspend_for_the_ttl() {
        let r = responses();
        let mut s = IdentityState::fresh(1, 0);
        let after = ResponsesConfig::default().suspend.after;
        for i in 0..after {
            let now = 100 + u64::from(i);
            assert_eq!(Responses::suspended(Some(&s), now), None);
            assert_eq!(r.suspends(Some(&s), now), i + 1 == after);
            r.apply(
                &mut s,
                now,
                Mark {
                    bucket: None,
                    hot: true,
                },
            );
        }
        let end = 100 + u64::from(after) - 1 + r.ttl_s();
        assert_eq!(Responses::suspended(Some(&s), end - 1), Some(1));
        assert_eq!(Responses::suspended(Some(&s), end), None);
        // A slow sweep's, one every 10 to 15 s, do: the fourth suspends.
        let mut w = IdentityState::fresh(3, 0);
        for (i, now) in [1000u64, 1010, 1025, 1035].into_iter().enumerate() {
            assert_eq!(r.suspends(Some(&w), now), i == 3, "{i}");
            r.apply(
                &mut w,
                now,
                Mark {
                    bucket: None,
                    hot: true,
                },
            );
        }
        // Scattered high scores (one an hour) never add up.
        let mut t = IdentityState::fresh(2, 0);
        for i in 0..20 {
            let now = 10_000 + i * 3600;
            assert!(!r.suspends(Some(&t), now));
            r.apply(
                &mut t,
                now,
                Mark {
                    bucket: None,
                    hot: true,
                },
            );
        }
    }
}
