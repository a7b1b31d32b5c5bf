//! The tick timer of a root context, shared by every timer user (remote key sets, the revocation
//! feed, whatever comes next). Pure: the adapter calls [`Timers::configure`] from `on_configure` and
//! [`Timers::tick`] from `on_tick`, and does what the returned [`Due`] says.
//!
//! One period, set once per root context and never changed: ngx_wasm_module (Kong) traps a second
//! non-zero `set_tick_period` ("tick_period already set"), and a reset to 0 leaves the old timer
//! chain running beside the new one. Kong may call `on_configure` again on the same root context
//! (a config reload), so the timer remembers that it was started. Each user is due by time instead:
//! the key fetcher on every tick until its key sets are installed, then once a second; the feed once
//! a second (its shared lease spaces the fetches across workers).

use std::time::Duration;

/// The one tick period: fast enough for a new gateway to get its keys quickly.
pub const TICK: Duration = Duration::from_millis(250);
/// How often the key fetcher runs once every remote key set is installed (its own refresh and
/// backoff, kept in shared data, decide whether a fetch starts).
pub const KEYS_SLOW_MS: u64 = 1_000;
/// How often the revocation feed's lease is checked.
pub const FEED_MS: u64 = 1_000;
/// How often the gauges (key age, state slots in use) are refreshed.
pub const GAUGES_MS: u64 = 5_000;

/// The host's timer (proxy-wasm `set_tick_period`).
pub trait TickHost {
    /// Starts the root context's tick timer; `Err` is the host's refusal (on ngx_wasm_module a
    /// second non-zero period is a trap).
    fn set_tick_period(&mut self, period: Duration) -> Result<(), String>;
}

/// What the timer users of a config are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Users {
    /// Some provider has remote keys (`jwks_uri`, `discovery`).
    pub remote_keys: bool,
    /// A revocation feed is configured.
    pub feed: bool,
    /// Alerts are configured (the sender runs on every tick).
    pub alerts: bool,
    /// Records go to the `http` sink (its outbox is looked at on every tick).
    pub records: bool,
    /// Something to report in gauges (remote key sets, behavioural state).
    pub gauges: bool,
    /// Counters summed in the worker, to publish (`host::metrics::Meter::flush`).
    pub metrics: bool,
}

impl Users {
    fn any(self) -> bool {
        self.remote_keys || self.feed || self.alerts || self.records || self.gauges || self.metrics
    }
}

/// Who is due on one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Due {
    /// Run the key fetcher (`KeyFetcher::tick`).
    pub keys: bool,
    /// Run the revocation feed (`revocation::tick`).
    pub feed: bool,
    /// Run the alert sender (`alerts::Sender::tick`).
    pub alerts: bool,
    /// Send the `http` sink's ready batches (`record::Shipper::tick`).
    pub records: bool,
    /// Refresh the gauges.
    pub gauges: bool,
    /// Publish the counters (on every tick: they lag by one period at most).
    pub metrics: bool,
}

/// A user that runs at most once per interval; due at once the first time.
#[derive(Debug, Clone, Copy, Default)]
struct Cadence {
    last_ms: Option<u64>,
}

impl Cadence {
    fn due(&mut self, now_ms: u64, every_ms: u64) -> bool {
        let due = match self.last_ms {
            None => true,
            // A clock that stepped back: run now rather than wait for it to catch up.
            Some(last) => now_ms < last || now_ms - last >= every_ms,
        };
        if due {
            self.last_ms = Some(now_ms);
        }
        due
    }
}

/// The timer of one root context and the cadence of each of its users.
#[derive(Debug, Default)]
pub struct Timers {
    /// The period given to the host, once set (it stays for the root context's life).
    started: Option<Duration>,
    users: Users,
    keys: Cadence,
    feed: Cadence,
    gauges: Cadence,
}

impl Timers {
    /// A (new) config's timer users: starts the timer when one is needed and it has never been
    /// started on this root context. Never sets the period twice; a config without users leaves a
    /// running timer running (its ticks then do nothing). `Err`: the host refused to start it.
    pub fn configure(&mut self, users: Users, host: &mut dyn TickHost) -> Result<(), String> {
        self.users = users;
        self.keys = Cadence::default();
        self.feed = Cadence::default();
        self.gauges = Cadence::default();
        if users.any() && self.started.is_none() {
            host.set_tick_period(TICK)?;
            self.started = Some(TICK);
        }
        Ok(())
    }

    /// The period in force (`None`: no timer).
    pub fn period(&self) -> Option<Duration> {
        self.started
    }

    /// One tick at `now_ms` (any millisecond clock): which users run. `keys_installed`: every
    /// remote key set has arrived (the fetcher slows down).
    pub fn tick(&mut self, now_ms: u64, keys_installed: bool) -> Due {
        let keys_every = if keys_installed { KEYS_SLOW_MS } else { 0 };
        Due {
            keys: self.users.remote_keys && self.keys.due(now_ms, keys_every),
            feed: self.users.feed && self.feed.due(now_ms, FEED_MS),
            alerts: self.users.alerts,
            records: self.users.records,
            gauges: self.users.gauges && self.gauges.due(now_ms, GAUGES_MS),
            metrics: self.users.metrics,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::mock::NgxTimer;

    const KEYS: Users = Users {
        remote_keys: true,
        feed: false,
        alerts: false,
        records: false,
        gauges: false,
        metrics: false,
    };

    /// A root context on ngx_wasm_module with a `jwks_uri` provider: keys arrive, ticks go on for
    /// a long while, the config is reloaded twice: the period is set once, one timer chain runs,
    /// nothing traps, and the fetcher slows from every tick to once a second.
    #[test]
    fn one_period_per_root_context_on_ngx_wasm_module() {
        let mut host = NgxTimer::default();
        let mut timers = Timers::default();
        assert_eq!(timers.configure(KEYS, &mut host), Ok(()));
        let mut fetches = 0;
        let mut now = 0u64;
        for i in 0..40 {
            now += 250;
            if timers.tick(now, i >= 4).keys {
                fetches += 1;
            }
        }
        // Every tick (4) until the keys arrive, then once a second (at 2 s, 3 s, ... 10 s).
        assert_eq!(fetches, 4 + 9);
        // Kong reloads the config on the same root context: still the one period.
        for users in [
            KEYS,
            Users {
                remote_keys: true,
                feed: true,
                alerts: false,
                records: false,
                gauges: true,
                metrics: true,
            },
            Users::default(),
        ] {
            assert_eq!(timers.configure(users, &mut host), Ok(()));
        }
        assert_eq!(host.traps, Vec::<String>::new());
        assert_eq!(host.chains(), 1);
        assert_eq!(timers.period(), Some(TICK));
    }

    #[test]
    fn every_user_is_due_by_time_on_the_one_tick() {
        let mut host = NgxTimer::default();
        let mut timers = Timers::default();
        timers
            .configure(
                Users {
                    remote_keys: true,
                    feed: true,
                    alerts: true,
                    records: true,
                    gauges: true,
                    metrics: true,
                },
                &mut host,
            )
            .unwrap();
        let dues: Vec<Due> = (1..=8).map(|i| timers.tick(i * 250, false)).collect();
        assert!(
            dues.iter().all(|d| d.keys),
            "keys not yet installed: every tick"
        );
        let feeds: Vec<u64> = (1..=8u64)
            .filter(|i| dues[(*i - 1) as usize].feed)
            .collect();
        assert_eq!(feeds, vec![1, 5], "the feed once a second");
        assert!(
            dues.iter().all(|d| d.alerts && d.records && d.metrics),
            "the alert sender, the record sink and the counters on every tick"
        );
        // A clock that steps back does not starve a user.
        assert!(timers.tick(10, true).feed);
    }

    #[test]
    fn no_timer_without_users_and_a_later_config_starts_it_once() {
        let mut host = NgxTimer::default();
        let mut timers = Timers::default();
        timers.configure(Users::default(), &mut host).unwrap();
        assert_eq!(host.chains(), 0);
        assert_eq!(timers.tick(1_000, true), Due::default());
        let feed = Users {
            remote_keys: false,
            feed: true,
            alerts: false,
            records: false,
            gauges: false,
            metrics: false,
        };
        timers.configure(feed, &mut host).unwrap();
        timers.configure(KEYS, &mut host).unwrap();
        assert_eq!((host.chains(), host.traps.len()), (1, 0));
    }
}
