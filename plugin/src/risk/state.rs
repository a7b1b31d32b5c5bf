//! Behavioural state: one fixed-size binary record per identity and one per source address, kept in
//! shared data so every worker sees one picture.
//!
//! Memory is bounded by design: a record lives at `hash(name) mod risk.state_slots`, so there are never
//! more keys than slots, whatever the number of identities; the full 64-bit hash is stored in the record
//! and a record whose hash differs (a slot collision) is reset, never mixed. Every set is a small array.
//! Records are plain values: decoded, changed by a pure function, encoded, written with compare-and-set.

use crate::slot::SlotKey;
use std::fmt::Write as _;
use std::net::IpAddr;

/// Key prefix of identity records.
pub const IDENTITY_PREFIX: &str = "warden:risk:id:";
/// Key prefix of source-address records.
pub const SOURCE_PREFIX: &str = "warden:risk:src:";

/// Default length of a request-rate bucket, seconds (`risk.responses.throttle.pace_bucket_s`): an
/// identity's pace is its requests per five minutes, long enough to hold a whole burst of an agent's
/// work, short enough to see a flood within a minute. A new record starts with it.
pub const RATE_BUCKET_S: u32 = 300;
/// The shortest rate bucket a deployment may choose, seconds: a pace is a mean over more than a few
/// requests' gaps.
pub const RATE_BUCKET_MIN_S: u32 = 10;
/// The longest, seconds: a pace is known after three busy buckets.
pub const RATE_BUCKET_MAX_S: u32 = 3600;
/// Weight of one active bucket in the rate baseline once [`IdentityState::rate_buckets`] exceeds its
/// inverse: an exponential mean over ~32 busy buckets (a few days of a human's sessions).
const RATE_ALPHA: f32 = 1.0 / 32.0;
/// Least room above the baseline, as a log ratio (2x): the sliding-window estimate of
/// [`IdentityState::rate_at`] can read up to twice a steady rate just after a bucket boundary.
const RATE_SLACK: f32 = std::f32::consts::LN_2;
/// Time constant of the short-term request rate ([`IdentityState::recent_at`]), seconds: short enough
/// that a flood stands out within its first few requests (at 2.5 a second the count nears its
/// level after 5 of them; at 5 s it took 10 to 14), long enough to span several requests of a burst.
pub const BURST_TAU_S: f32 = 2.0;
/// Weight of one request in the short-term rate baseline once [`IdentityState::count`] exceeds its
/// inverse: an exponential mean over ~1024 requests (a few days of a bursty agent's work), slow enough
/// that the requests of a flood that pass before it is stepped up barely move it.
const BURST_ALPHA: f32 = 1.0 / 1024.0;
/// Requests an identity needs before its short-term pace is compared with its own habit.
pub const BURST_MIN_REQUESTS: u32 = 32;
/// Usual deviations of short-term pace that are still the identity's habit (see
/// [`IdentityState::pace_deviations`]): the `burst` feature counts the ones beyond, and a learnt
/// request beyond them teaches the baseline only the habit's edge.
pub const BURST_DEVIATIONS: f32 = 2.0;
/// Longest gap between two requests of one run (see [`IdentityState::run_pace`]), seconds: longer
/// than any pause inside an agent's burst of work, shorter than the idle time between bursts.
pub const RUN_GAP_S: u64 = 10;
/// Weight of one gap in the usual gap within runs once [`IdentityState::run_gaps`] exceeds its
/// inverse: an exponential mean over ~256 gaps (a day or two of an agent's bursts).
const RUN_ALPHA: f32 = 1.0 / 256.0;
/// Time constant of the failure counters, seconds.
pub const FAILURE_TAU_S: f32 = 900.0;
/// Requests an identity needs before a walk (consecutive requests on one route, each to another
/// object) is compared with its habit: a new caller's first walks are how its habit forms.
pub const WALK_MIN_HISTORY: u32 = 32;
/// Length of the distinct-endpoints and distinct-identities windows, seconds.
pub const WINDOW_S: u64 = 600;
/// Weight of one request in the endpoint-spread baseline: an exponential mean over ~64 requests.
const BASELINE_ALPHA: f32 = 1.0 / 64.0;
/// Weights of one response in the fast and slow response-size means.
const BYTES_FAST_ALPHA: f32 = 0.3;
const BYTES_SLOW_ALPHA: f32 = 0.02;
/// When the hour histogram holds this many requests it is halved (old habits fade).
const HOURS_CAP: u32 = 4096;

/// 64-bit FNV-1a with a domain byte, for sketch items inside one record (not a security boundary: a
/// collision only merges two items of the caller's own record). Slots use [`SlotKey::hash`].
pub fn hash64(domain: u8, bytes: &[u8]) -> u64 {
    hash64_of(domain, bytes.iter().copied())
}

/// [`hash64`] over a stream of bytes (the parts of a key, without joining them first).
pub fn hash64_of(domain: u8, bytes: impl Iterator<Item = u8>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::iter::once(domain).chain(bytes) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Finalise (murmur3 fmix64) so that low bits mix well for `mod slots` and bitmaps.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// A non-zero 32-bit item for a known-set (0 marks an empty entry).
pub fn item32(domain: u8, bytes: &[u8]) -> u32 {
    object_item(hash64(domain, bytes))
}

/// The known-set item of a client: its user agent with the digits left out, so that a browser's or an
/// SDK's update (`Firefox/133.0` to `Firefox/134.0`) is the same client and another program is not.
pub fn client_item(user_agent: &[u8]) -> u32 {
    object_item(hash64_of(
        b'u',
        user_agent.iter().copied().filter(|b| !b.is_ascii_digit()),
    ))
}

/// The item of a 64-bit hash (its two halves folded, never 0): an object's, kept as a walk's last
/// object, or any other item's.
pub fn object_item(object: u64) -> u32 {
    ((object >> 32) as u32 ^ (object as u32)).max(1)
}

/// The known-set item of a country code.
pub fn country_item(code: [u8; 2]) -> u32 {
    (u32::from(code[0]) << 8) | u32::from(code[1])
}

/// The known-set item of an address's network: /24 for IPv4, /48 for IPv6.
pub fn prefix_item(addr: &IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => {
            let [x, y, z, _] = a.octets();
            item32(b'4', &[x, y, z])
        }
        IpAddr::V6(a) => {
            let o = a.octets();
            item32(b'6', o.get(..6).unwrap_or(&o))
        }
    }
}

/// Where a record lives: its shared-data key and the full hash of what it describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Shared-data key (`warden:risk:id:1234`).
    pub key: String,
    /// Full hash, stored in the record to detect collisions.
    pub hash: u64,
}

impl Slot {
    /// The slot of an identity name such as `sub:alice`, `act:agent-7` or `key:ci-bot`, under the
    /// deployment's slot key (a client cannot aim at another identity's slot).
    /// The name comes in parts, hashed as one string (not joined first).
    pub fn identity(name: &[&str], slots: u32, key: &SlotKey) -> Slot {
        let hash = key.hash_parts(b'i', name.iter().map(|p| p.as_bytes()));
        Slot::new(IDENTITY_PREFIX, hash, slots)
    }

    /// The slot of a source address.
    pub fn source(addr: &IpAddr, slots: u32, key: &SlotKey) -> Slot {
        let hash = match addr {
            IpAddr::V4(a) => key.hash(b's', &a.octets()),
            IpAddr::V6(a) => key.hash(b's', &a.octets()),
        };
        Slot::new(SOURCE_PREFIX, hash, slots)
    }

    fn new(prefix: &str, hash: u64, slots: u32) -> Slot {
        let n = hash % u64::from(slots.max(1));
        // Sized once: `format!` grows its string as it goes (a request builds two slot keys).
        let mut key = String::with_capacity(prefix.len() + 20);
        key.push_str(prefix);
        let _ = write!(key, "{n}");
        Slot { key, hash }
    }
}

/// Start of the rate bucket of `len_s` seconds holding `now_s`.
fn bucket_of(now_s: u64, len_s: u64) -> u64 {
    now_s - now_s % len_s.max(1)
}

/// Exponential decay of `v` over `dt` seconds with time constant `tau`.
fn decay(v: f32, dt: u64, tau: f32) -> f32 {
    v * (-(dt as f32) / tau).exp()
}

/// Linear-counting estimate of distinct items in a 64-bit bitmap.
pub fn distinct(bits: u64) -> f32 {
    let zeros = 64 - bits.count_ones();
    if zeros == 0 {
        // Saturated: the estimate's ceiling.
        return 64.0 * 64f32.ln();
    }
    64.0 * (64.0 / zeros as f32).ln()
}

/// A small set of the items most seen, with hit counts; the least-seen entry makes room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownSet<const N: usize> {
    items: [u32; N],
    hits: [u8; N],
}

impl<const N: usize> Default for KnownSet<N> {
    fn default() -> Self {
        KnownSet {
            items: [0; N],
            hits: [0; N],
        }
    }
}

impl<const N: usize> KnownSet<N> {
    /// Whether `item` is known.
    pub fn contains(&self, item: u32) -> bool {
        self.slot(item).is_some()
    }

    /// How often `item` was seen (halved with the others as counts saturate); 0 when not known.
    pub fn uses(&self, item: u32) -> u8 {
        self.slot(item)
            .and_then(|i| self.hits.get(i).copied())
            .unwrap_or(0)
    }

    /// The position of a known `item`.
    pub fn slot(&self, item: u32) -> Option<usize> {
        (item != 0)
            .then(|| self.items.iter().position(|&x| x == item))
            .flatten()
    }

    /// Whether nothing is known yet.
    pub fn is_empty(&self) -> bool {
        self.items.iter().all(|&i| i == 0)
    }

    /// Records a sighting of `item`. Returns the position of an item that took the place of another
    /// (or of an empty one), so that what a caller keeps per position can start afresh.
    pub fn insert(&mut self, item: u32) -> Option<usize> {
        if item == 0 {
            return None;
        }
        if let Some(i) = self.slot(item) {
            if let Some(h) = self.hits.get_mut(i) {
                if *h == u8::MAX {
                    // Halve all so that the counts stay comparable.
                    self.hits.iter_mut().for_each(|h| *h /= 2);
                }
            }
            if let Some(h) = self.hits.get_mut(i) {
                *h = h.saturating_add(1);
            }
            return None;
        }
        // Replace an empty or the least-seen entry (the first of equals).
        let mut victim = 0;
        for i in 0..N {
            if self.hits.get(i) < self.hits.get(victim) {
                victim = i;
            }
        }
        if let (Some(x), Some(h)) = (self.items.get_mut(victim), self.hits.get_mut(victim)) {
            *x = item;
            *h = 1;
        }
        Some(victim)
    }
}

/// What a request tells an identity's record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sighting {
    /// Request time, seconds since the epoch.
    pub now_s: u64,
    /// Country from the edge's geo header.
    pub country: Option<[u8; 2]>,
    /// Network of the source address ([`prefix_item`]).
    pub prefix: Option<u32>,
    /// User agent ([`item32`] of the header value).
    pub agent: u32,
    /// Endpoint (method and path, [`hash64`]).
    pub endpoint: u64,
    /// Route rule or MCP tool ([`item32`]), 0 when neither names the request.
    pub route: u32,
    /// The object addressed: the route's template variables other than the tenant ([`hash64`],
    /// with the route), when it has any.
    pub object: Option<u64>,
    /// The policy let this request through, a step-up-level score of a caller that cannot step up
    /// included (see `learn`): it counts as a call of its route.
    pub passed: bool,
    /// Learn habits (country, network, client, hours, baselines) from this request: only requests
    /// the policy let through teach the record what is normal, so an attacker who is being
    /// challenged cannot make his country "known" by retrying.
    pub learn: bool,
    /// The score reached `tag_at`: a request that is unusual enough to be tagged does not teach
    /// the hour of day (the hours are a share of requests, which a short burst moves: five writes at
    /// 3 a.m. would make 3 a.m. a habit within a minute); its other habits are learnt as `learn` says.
    pub tagged: bool,
}

/// The behaviour of one identity.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct IdentityState {
    /// Full hash of the identity (collision check).
    pub hash: u64,
    /// First request seen.
    pub first_seen_s: u64,
    /// Last request seen.
    pub last_seen_s: u64,
    /// Requests seen (saturating).
    pub count: u32,
    /// Start of the current rate bucket (a multiple of its length; seconds since the epoch).
    pub bucket_s: u64,
    /// Length of the rate buckets the counts and the pace below were learnt in, seconds: never 0
    /// ([`RATE_BUCKET_S`] in a new record; a record holding 0 reads as corrupt).
    pub bucket_len_s: u32,
    /// Requests in the current bucket.
    pub bucket_count: u32,
    /// Requests in the bucket just before it (0 when that one was idle).
    pub prev_count: u32,
    /// Requests in the current bucket that taught the record (see [`Sighting::learn`]).
    pub bucket_learned: u32,
    /// The identity's own pace: exponential mean of `ln(1 + learned requests)` over its past active
    /// buckets. Idle buckets are left out, so an agent that works in bursts has the pace of its bursts.
    pub rate_baseline: f32,
    /// Mean absolute deviation of those bucket values from the baseline: how bursty the identity is.
    pub rate_spread: f32,
    /// Active buckets folded into the baseline (saturating).
    pub rate_buckets: u32,
    /// Requests in the last few seconds: a count decayed with [`BURST_TAU_S`] since `last_seen_s`.
    pub recent: f32,
    /// The identity's usual short-term pace: exponential mean of `ln(1 + recent)` as its learnt
    /// requests found it (request-weighted, so idle time does not pull it down).
    pub burst_baseline: f32,
    /// Mean absolute deviation of those values from `burst_baseline`: how bursty the identity is.
    pub burst_spread: f32,
    /// Start of the current run: consecutive requests at most [`RUN_GAP_S`] apart.
    pub run_start_s: u64,
    /// Requests in the current run (saturating).
    pub run_count: u32,
    /// The identity's usual gap between two requests of a run, seconds: exponential mean over its
    /// learnt requests, a gap shorter than half of it learnt as half (a fast run that passes does
    /// not become the habit it is measured against). See [`IdentityState::usual_gap`].
    pub run_gap: f32,
    /// Gaps folded into `run_gap` (saturating).
    pub run_gaps: u32,
    /// Country of the last request that taught the record, and when.
    pub last_country: [u8; 2],
    /// Time of `last_country`.
    pub last_country_s: u64,
    /// Countries seen.
    pub countries: KnownSet<4>,
    /// Source networks seen.
    pub prefixes: KnownSet<8>,
    /// User agents seen.
    pub agents: KnownSet<4>,
    /// Requests per UTC hour of day.
    pub hours: [u16; 24],
    /// Recent failures (401/403), decayed with [`FAILURE_TAU_S`].
    pub failures: f32,
    /// Recent requests that taught the record (successes), decayed with [`FAILURE_TAU_S`].
    pub successes: f32,
    /// Time `failures` and `successes` were last brought up to date.
    pub failures_s: u64,
    /// Start of the current endpoint window.
    pub window_s: u64,
    /// Endpoints seen in the current window (bitmap sketch).
    pub endpoints: u64,
    /// Usual `ln(1 + distinct endpoints in the window)` at request time.
    pub spread_baseline: f32,
    /// Recent mean of `ln(1 + response bytes)`.
    pub bytes_fast: f32,
    /// Long-run mean of `ln(1 + response bytes)`.
    pub bytes_slow: f32,
    /// Responses seen (saturating).
    pub responses: u32,
    /// Route rules and MCP tools this identity used in requests that taught the record.
    pub routes: KnownSet<16>,
    /// Per entry of `routes`: the longest walk (see `walk`) of learnt requests the identity made on
    /// it (saturating).
    pub walks: [u8; 16],
    /// The route of the current walk: consecutive requests on one route, each to another object
    /// than the one before (a caller paging through records), 0: none.
    pub walk_route: u32,
    /// The last object of the walk ([`item32`] of the object's hash).
    pub walk_object: u32,
    /// Requests in the current walk.
    pub walk: u16,
    /// Of them, the requests that taught the record.
    pub walk_learnt: u16,
    /// Objects (route and template variables) addressed in the current window (bitmap sketch).
    pub objects: u64,
    /// Usual `ln(1 + distinct objects in the window)` at request time.
    pub objects_baseline: f32,
    /// Response bytes in the current window.
    pub volume: f32,
    /// Usual `ln(1 + response bytes in the window)` at request time.
    pub volume_baseline: f32,
    /// Tokens in the risk throttle's bucket (see `risk::respond`), as of `throttle_s`.
    pub throttle_tokens: f32,
    /// Time of `throttle_tokens`; 0: the bucket was never used (full).
    pub throttle_s: u64,
    /// Recent scores at the step-up level of a caller that cannot step up, decayed over the
    /// suspension window (see `risk::respond`).
    pub hot: f32,
    /// Time of `hot`.
    pub hot_s: u64,
    /// Suspended (refused on every worker) until this time; 0: never.
    pub suspended_until_s: u64,
}

/// Bytes of an encoded [`IdentityState`].
pub const IDENTITY_BYTES: usize = 1 + 8 * 13 + 4 * 27 + 2 + (4 + 1) * 32 + 2 * 26 + 16;

/// Record layout version: a record of another version reads as none (the identity starts afresh).
/// 3: the short-term rate (`recent`, `burst_baseline`, `burst_spread`); the source record counts
/// successes (`SourceState::successes`). Both unreleased, hence one version.
/// 4: routes used, objects and volume in the window, the risk throttle and suspension.
/// 5: walks (consecutive requests on one route to other objects), per route the longest one;
/// recent successes beside recent failures.
/// 6: runs of requests and the usual gap within them (`run_start_s`, `run_count`, `run_gap`,
/// `run_gaps`); the short-term rate decays over 2 s, not 5 (`BURST_TAU_S`); the rate buckets'
/// length (`bucket_len_s`, its own 4 bytes after the bucket's start).
/// A record of an older version reads as none: the identity's habits are learnt afresh.
const VERSION: u8 = 6;

impl IdentityState {
    /// A record for a new identity.
    pub fn fresh(hash: u64, now_s: u64) -> IdentityState {
        IdentityState {
            hash,
            first_seen_s: now_s,
            last_seen_s: now_s,
            failures_s: now_s,
            window_s: now_s,
            bucket_s: bucket_of(now_s, u64::from(RATE_BUCKET_S)),
            bucket_len_s: RATE_BUCKET_S,
            ..IdentityState::default()
        }
    }

    /// The record in `bytes` if it is one of `hash` (a collision or a corrupt value reads as none).
    pub fn decode(bytes: Option<&[u8]>, hash: u64) -> Option<IdentityState> {
        let mut r = Reader::new(bytes?, IDENTITY_BYTES)?;
        let (stored, first_seen_s, last_seen_s, count) = (r.u64()?, r.u64()?, r.u64()?, r.u32()?);
        let s = IdentityState {
            hash: stored,
            first_seen_s,
            last_seen_s,
            count,
            bucket_s: r.u64()?,
            bucket_len_s: r.u32()?,
            bucket_count: r.u32()?,
            prev_count: r.u32()?,
            bucket_learned: r.u32()?,
            rate_baseline: r.f32()?,
            rate_spread: r.f32()?,
            rate_buckets: r.u32()?,
            recent: r.f32()?,
            burst_baseline: r.f32()?,
            burst_spread: r.f32()?,
            run_start_s: r.u64()?,
            run_count: r.u32()?,
            run_gap: r.f32()?,
            run_gaps: r.u32()?,
            last_country: [r.u8()?, r.u8()?],
            last_country_s: r.u64()?,
            countries: r.set()?,
            prefixes: r.set()?,
            agents: r.set()?,
            hours: r.array(Reader::u16)?,
            failures: r.f32()?,
            successes: r.f32()?,
            failures_s: r.u64()?,
            window_s: r.u64()?,
            endpoints: r.u64()?,
            spread_baseline: r.f32()?,
            bytes_fast: r.f32()?,
            bytes_slow: r.f32()?,
            responses: r.u32()?,
            routes: r.set()?,
            walks: r.take()?,
            walk_route: r.u32()?,
            walk_object: r.u32()?,
            walk: r.u16()?,
            walk_learnt: r.u16()?,
            objects: r.u64()?,
            objects_baseline: r.f32()?,
            volume: r.f32()?,
            volume_baseline: r.f32()?,
            throttle_tokens: r.f32()?,
            throttle_s: r.u64()?,
            hot: r.f32()?,
            hot_s: r.u64()?,
            suspended_until_s: r.u64()?,
        };
        (s.hash == hash && s.bucket_len_s > 0).then_some(s)
    }

    /// The fixed-size encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::<IDENTITY_BYTES>::new();
        w.u64(self.hash);
        w.u64(self.first_seen_s);
        w.u64(self.last_seen_s);
        w.u32(self.count);
        w.u64(self.bucket_s);
        w.u32(self.bucket_len_s);
        w.u32(self.bucket_count);
        w.u32(self.prev_count);
        w.u32(self.bucket_learned);
        w.f32(self.rate_baseline);
        w.f32(self.rate_spread);
        w.u32(self.rate_buckets);
        w.f32(self.recent);
        w.f32(self.burst_baseline);
        w.f32(self.burst_spread);
        w.u64(self.run_start_s);
        w.u32(self.run_count);
        w.f32(self.run_gap);
        w.u32(self.run_gaps);
        w.u8(self.last_country[0]);
        w.u8(self.last_country[1]);
        w.u64(self.last_country_s);
        w.set(&self.countries);
        w.set(&self.prefixes);
        w.set(&self.agents);
        self.hours.iter().for_each(|&h| w.u16(h));
        w.f32(self.failures);
        w.f32(self.successes);
        w.u64(self.failures_s);
        w.u64(self.window_s);
        w.u64(self.endpoints);
        w.f32(self.spread_baseline);
        w.f32(self.bytes_fast);
        w.f32(self.bytes_slow);
        w.u32(self.responses);
        w.set(&self.routes);
        self.walks.iter().for_each(|&v| w.u8(v));
        w.u32(self.walk_route);
        w.u32(self.walk_object);
        w.u16(self.walk);
        w.u16(self.walk_learnt);
        w.u64(self.objects);
        w.f32(self.objects_baseline);
        w.f32(self.volume);
        w.f32(self.volume_baseline);
        w.f32(self.throttle_tokens);
        w.u64(self.throttle_s);
        w.f32(self.hot);
        w.u64(self.hot_s);
        w.u64(self.suspended_until_s);
        w.finish()
    }

    /// Moves the record to rate buckets of `len_s` seconds (the configured length), at `now_s`. A
    /// record learnt under another length keeps its pace per second: the baseline, a mean of
    /// `ln(1 + requests per bucket)`, is taken to the new length (`ln(1 + (e^b - 1) x new / old)`;
    /// its deviation, a ratio, and the number of busy buckets stay), so the throttle's pace and the
    /// `velocity` feature's baseline mean what they meant. The open bucket and the one before it,
    /// counted in the old length, are dropped (a bucket of one length is no sample of another):
    /// at most one bucket of learning is lost, and `velocity` reads no flood that was not there.
    pub fn set_rate_bucket(&mut self, len_s: u32, now_s: u64) {
        let (old, new) = (self.bucket_len_s, len_s.max(1));
        if old == new {
            return;
        }
        if self.rate_buckets > 0 {
            let per_s = self.rate_baseline.exp_m1() / old as f32;
            self.rate_baseline = (per_s * new as f32).ln_1p();
        }
        self.bucket_len_s = new;
        self.bucket_s = bucket_of(now_s.max(self.bucket_s), u64::from(new));
        self.bucket_count = 0;
        self.prev_count = 0;
        self.bucket_learned = 0;
    }

    /// Requests in the last bucket's length ([`IdentityState::bucket_len_s`]) at `now_s`, this
    /// request included: the current bucket plus the share of the previous one that the sliding
    /// window still covers (the usual sliding-window estimate, so that the rate does not drop to
    /// zero at every bucket boundary).
    pub fn rate_at(&self, now_s: u64) -> f32 {
        let len = u64::from(self.bucket_len_s);
        let now = now_s.max(self.bucket_s);
        let b = bucket_of(now, len);
        let (cur, prev) = if b == self.bucket_s {
            (self.bucket_count, self.prev_count)
        } else if b == self.bucket_s.saturating_add(len) {
            (0, self.bucket_count)
        } else {
            (0, 0)
        };
        let covered = 1.0 - now.saturating_sub(b) as f32 / len as f32;
        cur as f32 + prev as f32 * covered + 1.0
    }

    /// The pace above which the rate is unusual for this identity, as `ln(1 + requests per bucket)`:
    /// its baseline plus its usual deviation (a bursty identity has room for its bursts), at least 2x.
    pub fn rate_ceiling(&self) -> f32 {
        self.rate_baseline + self.rate_spread.max(RATE_SLACK)
    }

    /// Requests in the last few seconds at `now_s`, this request included: the count decayed with
    /// [`BURST_TAU_S`] since the last request, plus one. A steady rate of r requests a second reads
    /// about `1 + r x BURST_TAU_S`.
    pub fn recent_at(&self, now_s: u64) -> f32 {
        decay(
            self.recent,
            now_s.saturating_sub(self.last_seen_s),
            BURST_TAU_S,
        ) + 1.0
    }

    /// How far the short-term pace at `now_s` is above this identity's usual one, in its usual
    /// deviations: `(ln(1 + recent) - burst_baseline) / burst_spread`. The deviation counts as at least
    /// ln 2 / 2, so that for a perfectly regular identity two deviations are twice its pace.
    pub fn pace_deviations(&self, now_s: u64) -> f32 {
        let excess = self.recent_at(now_s).ln_1p() - self.burst_baseline;
        excess / self.burst_deviation()
    }

    /// How much faster than its usual the identity's current run goes with a request at `now_s`, as a
    /// log ratio: `ln((n - 1) x run_gap / seconds since the run began)` for the n gaps of the run
    /// this request would close (n - 1 over the time of n gaps is the unbiased estimate of a rate
    /// from exponential gaps; n over it reads a run's first few quick gaps as a flood), the seconds
    /// at least 1 (the clock's grain). `None` for a run's first two requests (the last one was more
    /// than [`RUN_GAP_S`] ago, or began the run); the usual gap is [`IdentityState::usual_gap`]. Counting from the
    /// run's start uses every gap of it: a flood at four times a burst's pace is told from a quick
    /// stretch of the burst within a few requests, where a decayed count holds only the last second
    /// or two.
    pub fn run_pace(&self, now_s: u64) -> Option<f32> {
        let now = now_s.max(self.last_seen_s);
        if self.count == 0 || self.run_count < 2 || now.saturating_sub(self.last_seen_s) > RUN_GAP_S
        {
            return None;
        }
        let elapsed = now.saturating_sub(self.run_start_s).max(1) as f32;
        let gaps = (self.run_count - 1) as f32;
        Some(
            (gaps * self.usual_gap() / elapsed)
                .max(f32::MIN_POSITIVE)
                .ln(),
        )
    }

    /// Extends the current run with a request at `now` (not before the last one), or starts one;
    /// returns the gap to the last request if it is part of the run.
    fn step_run(&mut self, now: u64) -> Option<u64> {
        let gap = now.saturating_sub(self.last_seen_s);
        if self.count == 0 || gap > RUN_GAP_S {
            self.run_start_s = now;
            self.run_count = 1;
            return None;
        }
        self.run_count = self.run_count.saturating_add(1);
        Some(gap)
    }

    /// The usual gap within runs, seconds: [`RUN_GAP_S`] for an identity that never made two
    /// requests that close (one a minute, around the clock), whose first run is faster than any.
    pub fn usual_gap(&self) -> f32 {
        if self.run_gaps == 0 {
            RUN_GAP_S as f32
        } else {
            self.run_gap
        }
    }

    /// The usual deviation of the short-term pace, at least ln 2 / 2.
    fn burst_deviation(&self) -> f32 {
        self.burst_spread.max(RATE_SLACK / 2.0)
    }

    /// Moves to the bucket of `now` (which is not before the current one), folding the bucket that
    /// ends into the baseline if it taught the record anything.
    fn roll_bucket(&mut self, now: u64) {
        let len = u64::from(self.bucket_len_s);
        let b = bucket_of(now, len);
        if b == self.bucket_s {
            return;
        }
        if self.bucket_learned > 0 {
            let v = (self.bucket_learned as f32).ln_1p();
            let n = self.rate_buckets.saturating_add(1);
            let alpha = (1.0 / n as f32).max(RATE_ALPHA);
            // The first bucket sets the baseline; its deviation is known from the second on.
            if self.rate_buckets > 0 {
                let dev = (v - self.rate_baseline).abs();
                self.rate_spread += alpha * (dev - self.rate_spread);
            }
            self.rate_baseline += alpha * (v - self.rate_baseline);
            self.rate_buckets = n;
        }
        self.prev_count = if b == self.bucket_s.saturating_add(len) {
            self.bucket_count
        } else {
            0
        };
        self.bucket_s = b;
        self.bucket_count = 0;
        self.bucket_learned = 0;
    }

    /// Endpoints in the window at `now_s` with `endpoint` added: (bitmap, window start).
    pub fn endpoints_at(&self, now_s: u64, endpoint: u64) -> (u64, u64) {
        let bit = 1u64 << (endpoint % 64);
        if now_s.saturating_sub(self.window_s) >= WINDOW_S {
            (bit, now_s)
        } else {
            (self.endpoints | bit, self.window_s)
        }
    }

    /// Objects in the window at `now_s` with `object` added (the window is the endpoints').
    pub fn objects_at(&self, now_s: u64, object: Option<u64>) -> u64 {
        let bit = object.map_or(0, |o| 1u64 << (o % 64));
        if self.window_over(now_s) {
            bit
        } else {
            self.objects | bit
        }
    }

    /// The walk at `now_s` with this request (on `route`, to `object`) added: its length, 0 for a
    /// request that names no route or no object. A walk continues while consecutive requests, less
    /// than the window apart, stay on its route and move to another object (asking for the same one
    /// again neither extends nor ends it); anything else starts a new one, except that a walk
    /// already beyond the habit outlasts requests that are not part of it (see `step_walk`).
    pub fn walk_at(&self, now_s: u64, route: u32, object: Option<u64>) -> u16 {
        let Some(o) = object.filter(|_| route != 0) else {
            return 0;
        };
        let recent = self.walk > 0 && now_s.saturating_sub(self.last_seen_s) < WINDOW_S;
        if !recent || route != self.walk_route {
            1
        } else if object_item(o) == self.walk_object {
            self.walk
        } else {
            self.walk.saturating_add(1)
        }
    }

    /// How far the walk at `now_s` with this request added goes beyond the identity's habit on the
    /// route: `ln(1 + walk)` minus `ln(1 + twice the longest walk it made there)` (at least `ln 2`:
    /// a single read is no walk), at least 0; 0 until [`WALK_MIN_HISTORY`] requests came before the
    /// walk (a new caller's first walk is how its habit forms) or for a request without an object.
    pub fn walk_excess(&self, now_s: u64, route: u32, object: Option<u64>) -> f32 {
        self.walk_beyond(route, self.walk_at(now_s, route, object))
    }

    /// How far a walk of `walk` requests on `route` goes beyond the habit (see
    /// [`IdentityState::walk_excess`]).
    fn walk_beyond(&self, route: u32, walk: u16) -> f32 {
        if !self.walk_judged(walk) {
            return 0.0;
        }
        let ceiling = (1.0 + 2.0 * f32::from(self.route_walk(route))).max(2.0);
        (f32::from(walk).ln_1p() - ceiling.ln()).max(0.0)
    }

    /// Whether a walk of this length (with this request) is compared with the habit: it has one
    /// (an object) and [`WALK_MIN_HISTORY`] requests came before it.
    fn walk_judged(&self, walk: u16) -> bool {
        let before = self.count.saturating_sub(u32::from(walk.saturating_sub(1)));
        walk > 0 && before >= WALK_MIN_HISTORY
    }

    /// The longest walk the identity made on `route` (0 for a route it has not used).
    pub fn route_walk(&self, route: u32) -> u8 {
        self.routes
            .slot(route)
            .and_then(|i| self.walks.get(i).copied())
            .unwrap_or(0)
    }

    /// Moves the walk on by this request; a walk that ends is folded into its route's longest
    /// (its learnt requests only: a sweep that was refused does not become the habit).
    fn step_walk(&mut self, now_s: u64, route: u32, object: Option<u64>, learn: bool) {
        // While the caller is under suspicion (a step-up-level score within the window: see
        // `risk::respond`), a walk already beyond its habit is not ended by a request that is not
        // part of it (on another route, or naming no object): an agent's own calls interleaved
        // with a sweep must not hide the sweep. It still ends after a pause of the window, or on
        // its own route. Unwatched, walks end as before (a service reading orders all day between
        // other calls would otherwise make one endless walk).
        let recent = self.walk > 0 && now_s.saturating_sub(self.last_seen_s) < WINDOW_S;
        let watched = self.hot > 0.0 && now_s.saturating_sub(self.hot_s) < WINDOW_S;
        let apart = object.is_none() || route != self.walk_route;
        if recent && watched && apart && self.walk_beyond(self.walk_route, self.walk) > 0.0 {
            return;
        }
        let walk = self.walk_at(now_s, route, object);
        // Once the habit is judged, a walk teaches it one request more than its longest: a sweep
        // whose first requests pass must not become the walk it is measured against, and a
        // habit grows with the walks the identity keeps making.
        let usual = !self.walk_judged(walk) || walk <= u16::from(self.route_walk(route)) + 1;
        if walk <= 1 {
            let done = u8::try_from(self.walk_learnt).unwrap_or(u8::MAX);
            if let Some(w) = self
                .routes
                .slot(self.walk_route)
                .and_then(|i| self.walks.get_mut(i))
            {
                *w = (*w).max(done);
            }
            self.walk_learnt = 0;
        }
        self.walk = walk;
        self.walk_route = if walk > 0 { route } else { 0 };
        self.walk_object = object.map_or(0, object_item);
        if learn && usual && walk > 0 {
            self.walk_learnt = self.walk_learnt.saturating_add(1);
        }
    }

    /// Response bytes in the window at `now_s`.
    pub fn volume_at(&self, now_s: u64) -> f32 {
        if self.window_over(now_s) {
            0.0
        } else {
            self.volume
        }
    }

    /// Whether the endpoints' window has ended at `now_s`.
    fn window_over(&self, now_s: u64) -> bool {
        now_s.saturating_sub(self.window_s) >= WINDOW_S
    }

    /// Failures at `now_s`, decayed.
    pub fn failures_at(&self, now_s: u64) -> f32 {
        decay(
            self.failures,
            now_s.saturating_sub(self.failures_s),
            FAILURE_TAU_S,
        )
    }

    /// Successes at `now_s`, decayed.
    pub fn successes_at(&self, now_s: u64) -> f32 {
        decay(
            self.successes,
            now_s.saturating_sub(self.failures_s),
            FAILURE_TAU_S,
        )
    }

    /// Brings both counts to `now_s` (never back in time) and adds to them.
    fn count(&mut self, now_s: u64, failures: f32, successes: f32) {
        let now = now_s.max(self.failures_s);
        self.failures = self.failures_at(now) + failures;
        self.successes = self.successes_at(now) + successes;
        self.failures_s = now;
    }

    /// Records a request.
    pub fn observe(&mut self, s: &Sighting) {
        let now = s.now_s.max(self.last_seen_s).max(self.bucket_s);
        let objects = self.objects_at(now, s.object);
        let volume = self.volume_at(now);
        let (endpoints, window_s) = self.endpoints_at(now, s.endpoint);
        let recent = self.recent_at(now);
        let gap = self.step_run(now);
        self.step_walk(now, s.route, s.object, s.learn);
        self.roll_bucket(now);
        self.count = self.count.saturating_add(1);
        self.bucket_count = self.bucket_count.saturating_add(1);
        self.endpoints = endpoints;
        self.objects = objects;
        self.volume = volume;
        self.window_s = window_s;
        self.last_seen_s = now;
        // Every request counts towards the pace, learnt or not: a flood that is being challenged is
        // still a flood.
        self.recent = recent;
        // A route counts as called when the request passed, risky or not: a caller that cannot step
        // up and calls a new tool is held to its pace while the tool is new, and the calls it gets
        // through at that pace make the tool its own (see `features::MACHINE_ROUTE_USES`).
        if let Some(i) = s.passed.then(|| self.routes.insert(s.route)).flatten() {
            // A route that takes another's place starts without a walk.
            if let Some(w) = self.walks.get_mut(i) {
                *w = 0;
            }
        }
        if !s.learn {
            return;
        }
        self.bucket_learned = self.bucket_learned.saturating_add(1);
        self.count(now, 0.0, 1.0);
        // The short-term pace this request found; its deviation is known from the second request on.
        // Once the habit is trusted, a pace beyond it teaches only the habit's edge (a winsorised
        // mean): a flood whose first requests pass does not become the habit it is measured against.
        let mut pace = recent.ln_1p();
        if self.count > BURST_MIN_REQUESTS {
            pace = pace.min(self.burst_baseline + BURST_DEVIATIONS * self.burst_deviation());
        }
        let alpha = (1.0 / self.count as f32).max(BURST_ALPHA);
        if self.count > 1 {
            self.burst_spread += alpha * ((pace - self.burst_baseline).abs() - self.burst_spread);
        }
        self.burst_baseline += alpha * (pace - self.burst_baseline);
        if let Some(gap) = gap {
            let gap = (gap as f32).max(self.usual_gap() / 2.0);
            self.run_gaps = self.run_gaps.saturating_add(1);
            self.run_gap += (1.0 / self.run_gaps as f32).max(RUN_ALPHA) * (gap - self.run_gap);
        }
        // A mean over all requests at first, then an exponential one.
        let alpha = (1.0 / self.count as f32).max(BASELINE_ALPHA);
        self.spread_baseline += alpha * (distinct(endpoints).ln_1p() - self.spread_baseline);
        self.objects_baseline += alpha * (distinct(objects).ln_1p() - self.objects_baseline);
        self.volume_baseline += alpha * (volume.ln_1p() - self.volume_baseline);
        if let Some(c) = s.country {
            self.countries.insert(country_item(c));
            self.last_country = c;
            self.last_country_s = now;
        }
        if let Some(p) = s.prefix {
            self.prefixes.insert(p);
        }
        self.agents.insert(s.agent);
        let hour = usize::try_from(now / 3600 % 24).unwrap_or(0);
        if let Some(h) = self.hours.get_mut(hour).filter(|_| !s.tagged) {
            *h = h.saturating_add(1);
        }
        if self.hours.iter().map(|&h| u32::from(h)).sum::<u32>() >= HOURS_CAP {
            self.hours.iter_mut().for_each(|h| *h /= 2);
        }
    }

    /// Records a failure (401/403, from the filter or the upstream).
    pub fn observe_failure(&mut self, now_s: u64) {
        self.count(now_s, 1.0, 0.0);
    }

    /// Records the size of a response at `now_s`.
    pub fn observe_response(&mut self, bytes: u64, now_s: u64) {
        // Bytes of a response count in the window of its request (a long answer that ends after
        // the window counts in none: the next request starts the new window).
        if !self.window_over(now_s.max(self.window_s)) {
            self.volume += bytes as f32;
        }
        let v = (bytes as f32).ln_1p();
        if self.responses == 0 {
            self.bytes_fast = v;
            self.bytes_slow = v;
        } else {
            self.bytes_fast += BYTES_FAST_ALPHA * (v - self.bytes_fast);
            self.bytes_slow += BYTES_SLOW_ALPHA * (v - self.bytes_slow);
        }
        self.responses = self.responses.saturating_add(1);
    }
}

/// The behaviour seen from one source address, across identities.
///
/// Failures are weighed against successes: behind an office or carrier NAT many users share an
/// address, and their expired tokens (401, refresh, retry) and odd 403s are a small share of what the
/// address does, while a credential-stuffing source fails far more often than it gets through.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SourceState {
    /// Full hash of the address (collision check).
    pub hash: u64,
    /// Recent failures (401/403, any identity or none), decayed with [`FAILURE_TAU_S`].
    pub failures: f32,
    /// Recent successes (requests of a proven, authorised caller that the policy let through and the
    /// upstream did not refuse with 401/403, any identity), decayed with [`FAILURE_TAU_S`].
    pub successes: f32,
    /// Time `failures` and `successes` were last brought up to date.
    pub counts_s: u64,
    /// Start of the current identity window.
    pub window_s: u64,
    /// Identities seen in the current window (bitmap sketch).
    pub identities: u64,
}

/// Bytes of an encoded [`SourceState`] (version 3: `successes`, 4 bytes more than version 2).
pub const SOURCE_BYTES: usize = 1 + 8 + 4 * 2 + 8 * 3;

impl SourceState {
    /// A record for a new address.
    pub fn fresh(hash: u64, now_s: u64) -> SourceState {
        SourceState {
            hash,
            counts_s: now_s,
            window_s: now_s,
            ..SourceState::default()
        }
    }

    /// The record in `bytes` if it is one of `hash`.
    pub fn decode(bytes: Option<&[u8]>, hash: u64) -> Option<SourceState> {
        let mut r = Reader::new(bytes?, SOURCE_BYTES)?;
        let s = SourceState {
            hash: r.u64()?,
            failures: r.f32()?,
            successes: r.f32()?,
            counts_s: r.u64()?,
            window_s: r.u64()?,
            identities: r.u64()?,
        };
        (s.hash == hash).then_some(s)
    }

    /// The fixed-size encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::<SOURCE_BYTES>::new();
        w.u64(self.hash);
        w.f32(self.failures);
        w.f32(self.successes);
        w.u64(self.counts_s);
        w.u64(self.window_s);
        w.u64(self.identities);
        w.finish()
    }

    /// Failures at `now_s`, decayed.
    pub fn failures_at(&self, now_s: u64) -> f32 {
        decay(
            self.failures,
            now_s.saturating_sub(self.counts_s),
            FAILURE_TAU_S,
        )
    }

    /// Successes at `now_s`, decayed.
    pub fn successes_at(&self, now_s: u64) -> f32 {
        decay(
            self.successes,
            now_s.saturating_sub(self.counts_s),
            FAILURE_TAU_S,
        )
    }

    /// Identities in the window at `now_s` with `identity` (a hash) added.
    pub fn identities_at(&self, now_s: u64, identity: Option<u64>) -> (u64, u64) {
        let bit = identity.map_or(0, |h| 1u64 << (h % 64));
        if now_s.saturating_sub(self.window_s) >= WINDOW_S {
            (bit, now_s)
        } else {
            (self.identities | bit, self.window_s)
        }
    }

    /// Records a request (by `identity`, when one was proven); `success`: the policy let it through.
    pub fn observe(&mut self, now_s: u64, identity: Option<u64>, success: bool) {
        let (bits, window) = self.identities_at(now_s.max(self.window_s), identity);
        self.identities = bits;
        self.window_s = window;
        if success {
            self.count(now_s, 0.0, 1.0);
        }
    }

    /// Records a failure; `retract_success`: the request was counted as a success when it was let
    /// through (the upstream refused it).
    pub fn observe_failure(&mut self, now_s: u64, retract_success: bool) {
        self.count(now_s, 1.0, if retract_success { -1.0 } else { 0.0 });
    }

    /// Brings both counts to `now_s` (never back in time) and adds to them.
    fn count(&mut self, now_s: u64, failures: f32, successes: f32) {
        let now = now_s.max(self.counts_s);
        self.failures = self.failures_at(now) + failures;
        self.successes = (self.successes_at(now) + successes).max(0.0);
        self.counts_s = now;
    }
}

/// Applies `change` to the record in `current` (a fresh one if absent or another identity's) and
/// encodes the result: the pure function handed to [`crate::shared::update`].
pub fn apply_identity(
    current: Option<&[u8]>,
    hash: u64,
    now_s: u64,
    change: impl Fn(&mut IdentityState),
) -> Vec<u8> {
    let mut s =
        IdentityState::decode(current, hash).unwrap_or_else(|| IdentityState::fresh(hash, now_s));
    change(&mut s);
    s.encode()
}

/// [`apply_identity`] for source records.
pub fn apply_source(
    current: Option<&[u8]>,
    hash: u64,
    now_s: u64,
    change: impl Fn(&mut SourceState),
) -> Vec<u8> {
    let mut s =
        SourceState::decode(current, hash).unwrap_or_else(|| SourceState::fresh(hash, now_s));
    change(&mut s);
    s.encode()
}

/// Little-endian fixed-layout writer of an `N`-byte record. Fields go into a fixed array (a
/// constant-size copy each, no growth check or call per field: the risk stage encodes a record per
/// request), which becomes the record's bytes once.
struct Writer<const N: usize> {
    buf: [u8; N],
    at: usize,
}

impl<const N: usize> Writer<N> {
    fn new() -> Writer<N> {
        let mut buf = [0; N];
        if let Some(b) = buf.first_mut() {
            *b = VERSION;
        }
        Writer { buf, at: 1 }
    }
    fn put<const K: usize>(&mut self, bytes: [u8; K]) {
        if let Some(dst) = self.buf.get_mut(self.at..self.at + K) {
            dst.copy_from_slice(&bytes);
        }
        self.at += K;
    }
    fn u8(&mut self, v: u8) {
        self.put([v]);
    }
    fn u16(&mut self, v: u16) {
        self.put(v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.put(v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.put(v.to_le_bytes());
    }
    fn f32(&mut self, v: f32) {
        // Non-finite values never enter a record.
        self.u32(if v.is_finite() { v.to_bits() } else { 0 });
    }
    fn set<const S: usize>(&mut self, s: &KnownSet<S>) {
        s.items.iter().for_each(|&i| self.u32(i));
        s.hits.iter().for_each(|&h| self.u8(h));
    }
    fn finish(self) -> Vec<u8> {
        debug_assert_eq!(self.at, N, "a record's fields fill its layout exactly");
        self.buf.to_vec()
    }
}

/// Little-endian fixed-layout reader: `None` on a wrong version, length or value.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], size: usize) -> Option<Reader<'a>> {
        match bytes.split_first() {
            Some((&VERSION, rest)) if bytes.len() == size => Some(Reader(rest)),
            _ => None,
        }
    }
    fn take<const K: usize>(&mut self) -> Option<[u8; K]> {
        let (head, rest) = self.0.split_at_checked(K)?;
        self.0 = rest;
        head.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }
    fn f32(&mut self) -> Option<f32> {
        let v = f32::from_bits(self.u32()?);
        v.is_finite().then_some(v)
    }
    /// `N` values, each read by `read`.
    fn array<T: Copy + Default, const N: usize>(
        &mut self,
        read: fn(&mut Self) -> Option<T>,
    ) -> Option<[T; N]> {
        let mut a = [T::default(); N];
        for v in a.iter_mut() {
            *v = read(self)?;
        }
        Some(a)
    }
    fn set<const N: usize>(&mut self) -> Option<KnownSet<N>> {
        Some(KnownSet {
            items: self.array(Reader::u32)?,
            hits: self.take()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sighting(now_s: u64) -> Sighting {
        Sighting {
            now_s,
            country: Some(*b"NO"),
            prefix: Some(prefix_item(&"203.0.113.7".parse().unwrap())),
            agent: client_item(b"app/1.0"),
            endpoint: hash64(b'e', b"GET /orders"),
            route: 7,
            object: Some(9),
            passed: true,
            learn: true,
            tagged: false,
        }
    }

    /// The features hash a key's parts as a stream: the same value as the joined key (records
    /// written before keep their endpoints and objects).
    #[test]
    fn a_key_hashed_in_parts_is_the_joined_key() {
        let parts = b"GET".iter().copied().chain([b' ']).chain(*b"/orders/7");
        assert_eq!(hash64_of(b'e', parts), hash64(b'e', b"GET /orders/7"));
        assert_ne!(
            hash64(b'e', b"GET /orders/7"),
            hash64(b'o', b"GET /orders/7")
        );
    }

    #[test]
    fn records_round_trip_at_their_fixed_size() {
        let mut s = IdentityState::fresh(42, 1000);
        s.observe(&sighting(1001));
        s.observe_failure(1002);
        s.observe_response(512, 1003);
        s.observe(&sighting(1004));
        assert_eq!((s.run_start_s, s.run_count, s.run_gaps), (1001, 2, 1));
        let bytes = s.encode();
        assert_eq!(bytes.len(), IDENTITY_BYTES);
        assert_eq!(IdentityState::decode(Some(&bytes), 42), Some(s));
        let mut src = SourceState::fresh(7, 1000);
        src.observe(1001, Some(42), true);
        src.observe_failure(1001, false);
        let bytes = src.encode();
        assert_eq!(bytes.len(), SOURCE_BYTES);
        assert_eq!(SourceState::decode(Some(&bytes), 7), Some(src));
    }

    #[test]
    fn a_run_ends_at_a_gap_over_ten_seconds_and_learns_the_usual_gap() {
        let mut s = IdentityState::fresh(1, 0);
        // Runs of 5 requests 2 s apart, a minute apart: the usual gap is 2 s (the first gap is
        // learnt as half the 10 s a caller without runs is given, 5 s, and fades).
        for run in 0..20 {
            for i in 0..5 {
                s.observe(&sighting(run * 60 + i * 2));
            }
        }
        assert!((2.0..2.1).contains(&s.run_gap), "{}", s.run_gap);
        assert_eq!(s.run_count, 5);
        // 11 s after the last request a new run begins: no pace yet.
        assert_eq!(s.run_pace(19 * 60 + 8 + 11), None);
        // 10 s after it, the run goes on at about half its usual pace: its 5 gaps took 18 s
        // (estimated as 4 x 2 s / 18 s).
        let slow = s.run_pace(19 * 60 + 8 + 10).unwrap();
        assert!(
            (slow - (4.0 * s.run_gap / 18.0).ln()).abs() < 1e-4,
            "{slow}"
        );
        // A run's second request has one gap: no estimate.
        let mut t = s;
        t.observe(&sighting(19 * 60 + 8 + 20));
        assert_eq!(t.run_pace(19 * 60 + 8 + 21), None);
        // A run at 4 requests a second reads eight times its pace; requests that pass learn a gap
        // shorter than half the usual as half: 200 of them move the habit only towards 1 s.
        let start = 2000;
        s.observe(&sighting(start));
        for i in 1..200 {
            let mut x = sighting(start + i / 4);
            x.learn = i % 2 == 0;
            s.observe(&x);
        }
        let fast = s.run_pace(start + 50).unwrap();
        assert!(fast > 1.0, "{fast}");
        assert!(s.run_gap > 1.0, "{}", s.run_gap);
    }

    #[test]
    fn a_source_counts_successes_and_failures_on_one_clock() {
        let mut s = SourceState::fresh(7, 0);
        for t in 0..10 {
            s.observe(t, Some(t), true);
        }
        // Unproven or stepped-up requests are no successes.
        s.observe(10, None, false);
        s.observe_failure(10, false);
        assert!((s.successes_at(10) - 10.0).abs() < 0.1, "{s:?}");
        assert!((s.failures_at(10) - 1.0).abs() < 1e-6);
        // Both decay with the failure time constant; a late write from another worker does not go
        // back in time.
        let later = 10 + FAILURE_TAU_S as u64;
        assert!((s.successes_at(later) - 10.0 / std::f32::consts::E).abs() < 0.1);
        s.observe_failure(5, false);
        assert_eq!(s.counts_s, 10);
        assert!((s.failures_at(10) - 2.0).abs() < 1e-6);
    }

    #[test]
    fn an_upstream_refusal_takes_back_the_success() {
        let mut s = SourceState::fresh(7, 0);
        s.observe(1, Some(1), true);
        s.observe_failure(1, true);
        assert_eq!((s.failures_at(1), s.successes_at(1)), (1.0, 0.0));
        // Never below zero.
        s.observe_failure(2, true);
        assert_eq!(s.successes_at(2), 0.0);
    }

    #[test]
    fn a_collision_or_garbage_reads_as_no_record() {
        let bytes = IdentityState::fresh(42, 1000).encode();
        assert_eq!(IdentityState::decode(Some(&bytes), 43), None);
        assert_eq!(IdentityState::decode(Some(&bytes[1..]), 42), None);
        assert_eq!(IdentityState::decode(Some(b"junk"), 42), None);
        assert_eq!(IdentityState::decode(None, 42), None);
        // A collision resets rather than mixes.
        let mut other = IdentityState::fresh(43, 0);
        other.count = 99;
        let out = apply_identity(Some(&other.encode()), 42, 5, |s| s.observe(&sighting(5)));
        let s = IdentityState::decode(Some(&out), 42).unwrap();
        assert_eq!((s.count, s.first_seen_s), (1, 5));
    }

    #[test]
    fn slots_are_keyed() {
        let (a, b) = (SlotKey::new([1; 16]), SlotKey::new([2; 16]));
        let at = |k: &SlotKey| {
            (0..32)
                .map(|i| Slot::identity(&[&format!("sub:user{i}")], 65_536, k).key)
                .collect::<Vec<_>>()
        };
        assert_ne!(at(&a), at(&b));
        let addr: IpAddr = "203.0.113.7".parse().unwrap();
        assert_ne!(
            Slot::source(&addr, 65_536, &a).hash,
            Slot::source(&addr, 65_536, &b).hash
        );
    }

    #[test]
    fn slots_bound_the_key_space() {
        let keys: std::collections::HashSet<String> = (0..10_000)
            .map(|i| Slot::identity(&[&format!("sub:user{i}")], 16, &SlotKey::default()).key)
            .collect();
        assert_eq!(keys.len(), 16);
    }

    #[test]
    fn known_set_keeps_the_most_seen() {
        let mut s = KnownSet::<2>::default();
        assert!(s.is_empty());
        s.insert(1);
        s.insert(1);
        s.insert(2);
        s.insert(3); // replaces 2, the least seen
        assert!(s.contains(1) && s.contains(3) && !s.contains(2));
        for _ in 0..1000 {
            s.insert(1);
        }
        assert!(s.contains(1));
    }

    #[test]
    fn rate_counts_the_sliding_window() {
        const B: u64 = RATE_BUCKET_S as u64;
        let mut s = IdentityState::fresh(1, 0);
        for t in 0..10 {
            s.observe(&sighting(t));
        }
        // Ten before this one, this one included.
        assert_eq!(s.rate_at(10), 11.0);
        // Half-way through the next bucket, half of the previous one still counts.
        assert_eq!(s.rate_at(B + B / 2), 1.0 + 5.0);
        // After an idle bucket, nothing.
        assert_eq!(s.rate_at(2 * B + 1), 1.0);
        assert_eq!(s.rate_at(100 * B), 1.0);
        // A time before the current bucket (another worker's clock) reads the current bucket.
        s.observe(&sighting(B + 1));
        assert_eq!(s.rate_at(30), s.rate_at(B));
        assert_eq!(s.rate_at(B), 1.0 + 1.0 + 10.0);
    }

    #[test]
    fn the_rate_baseline_learns_active_buckets_only() {
        let mut s = IdentityState::fresh(1, 0);
        // 5 requests in each of 40 minutes, an hour apart: idle hours do not pull the pace down.
        for h in 0..40u64 {
            for i in 0..5 {
                s.observe(&sighting(h * 3600 + i));
            }
        }
        assert_eq!(s.rate_buckets, 39); // the last bucket is still open
        assert!(
            (s.rate_baseline - 6f32.ln()).abs() < 1e-4,
            "{}",
            s.rate_baseline
        );
        assert!(s.rate_spread < 1e-4, "{}", s.rate_spread);
        // Requests that did not teach (sent to step-up) do not enter it.
        let before = s.rate_baseline;
        for i in 0..500 {
            let mut x = sighting(200_000 + i / 10);
            x.learn = false;
            s.observe(&x);
        }
        s.observe(&sighting(300_000));
        assert_eq!(s.rate_baseline, before);
    }

    #[test]
    fn a_pace_is_learnt_in_buckets_of_the_configured_length() {
        let mut s = IdentityState::fresh(1, 1000);
        // 5 requests at the start of each of three 10-second buckets, then one in the fourth.
        for b in 0..4u64 {
            for i in 0..if b < 3 { 5 } else { 1 } {
                let now = 1000 + b * 10 + i;
                s.set_rate_bucket(10, now);
                s.observe(&sighting(now));
            }
        }
        assert_eq!((s.bucket_len_s, s.bucket_s), (10, 1030));
        assert_eq!(s.rate_buckets, 3);
        assert!((s.rate_baseline - 6f32.ln()).abs() < 1e-5, "{s:?}");
        // The sliding window is 10 s long: half-way through the fifth bucket, half of the fourth.
        assert_eq!(s.rate_at(1045), 1.0 + 0.5);
        assert_eq!(s.rate_at(1060), 1.0);
        // The length is kept in the record.
        let back = IdentityState::decode(Some(&s.encode()), 1).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.bucket_len_s, 10);
    }

    #[test]
    fn the_bucket_length_is_its_own_field_after_the_bucket_start() {
        let mut s = IdentityState::fresh(1, 1_700_000_123);
        assert_eq!((s.bucket_s, s.bucket_len_s), (1_700_000_100, RATE_BUCKET_S));
        s.set_rate_bucket(30, 5_000_000_017);
        s.observe(&sighting(5_000_000_017));
        let bytes = s.encode();
        assert_eq!(bytes.len(), 443);
        // Version, hash, first and last seen, count; then the bucket's start (8 bytes, past 2106
        // too) and its length (4 bytes).
        let at = 1 + 8 + 8 + 8 + 4;
        assert_eq!(bytes[at..at + 8], 5_000_000_010u64.to_le_bytes());
        assert_eq!(bytes[at + 8..at + 12], 30u32.to_le_bytes());
        assert_eq!(bytes[at + 12..at + 16], 1u32.to_le_bytes());
        // A record always says its length: one holding none is corrupt and reads as none.
        let mut none = bytes.clone();
        none[at + 8..at + 12].fill(0);
        assert_eq!(IdentityState::decode(Some(&none), 1), None);
        assert_eq!(IdentityState::decode(Some(&bytes), 1), Some(s));
    }

    #[test]
    fn a_record_learnt_under_another_length_keeps_its_pace_per_second() {
        // 60 requests in each busy 5-minute bucket: 0.2 a second.
        let mut s = IdentityState::fresh(1, 0);
        for b in 0..6u64 {
            for i in 0..60 {
                s.observe(&sighting(b * 300 + i));
            }
        }
        assert_eq!(s.rate_buckets, 5);
        let per_s = |s: &IdentityState| s.rate_baseline.exp_m1() / s.bucket_len_s as f32;
        assert!((per_s(&s) - 0.2).abs() < 1e-4);
        // The operator shortens the buckets to 10 s: the same pace per second (2 a bucket), the
        // busy buckets kept, the open bucket (60 requests in 300 s) dropped, so no flood is read.
        let (spread, before) = (s.rate_spread, s);
        s.set_rate_bucket(10, 1520);
        assert_eq!((s.bucket_len_s, s.bucket_s, s.rate_buckets), (10, 1520, 5));
        assert!(
            (s.rate_baseline - 3f32.ln()).abs() < 1e-4,
            "{}",
            s.rate_baseline
        );
        assert_eq!(s.rate_spread, spread);
        assert_eq!(s.rate_at(1521), 1.0);
        // A ceiling in the new length: the 60 requests of the old bucket read as the flood they
        // would be in 10 s only if they came again.
        assert!(((1.0 + 60.0) as f32).ln() > s.rate_ceiling());
        // And back: the pace it had.
        s.set_rate_bucket(300, 1530);
        assert!((per_s(&s) - per_s(&before)).abs() < 1e-4);
        assert_eq!((s.bucket_len_s, s.bucket_s), (300, 1500));
        // A time before the open bucket (another worker's clock) never moves it back.
        s.set_rate_bucket(10, 1000);
        assert_eq!(s.bucket_s, 1500);
    }

    #[test]
    fn the_short_term_rate_decays_and_counts_every_request() {
        let mut s = IdentityState::fresh(1, 0);
        assert_eq!(s.recent_at(0), 1.0);
        // Ten in one second, one of them not learnt: all count.
        for i in 0..10 {
            let mut x = sighting(100);
            x.learn = i != 3;
            s.observe(&x);
        }
        assert_eq!(s.recent_at(100), 11.0);
        // One time constant later, e^-1 of them.
        let later = s.recent_at(100 + BURST_TAU_S as u64);
        assert!(
            (later - (1.0 + 10.0 / std::f32::consts::E)).abs() < 1e-3,
            "{later}"
        );
        assert_eq!(s.recent_at(100_000), 1.0);
        // The baseline is the learnt requests' mean of ln(1 + recent): ln 2 to ln 11 here.
        assert!(s.burst_baseline > 2f32.ln() && s.burst_baseline < 11f32.ln());
        assert!(s.burst_spread > 0.0);
    }

    #[test]
    fn unlearnt_requests_count_but_teach_nothing() {
        let mut s = IdentityState::fresh(1, 0);
        let mut x = sighting(10);
        x.learn = false;
        x.country = Some(*b"KP");
        s.observe(&x);
        assert_eq!(s.count, 1);
        assert!(s.countries.is_empty());
        assert_eq!(s.hours.iter().sum::<u16>(), 0);
    }

    #[test]
    fn distinct_estimates() {
        assert_eq!(distinct(0), 0.0);
        assert!((distinct(0b111) - 3.0).abs() < 0.2);
        assert!(distinct(u64::MAX) > 200.0);
    }
}
