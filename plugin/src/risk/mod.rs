//! The risk stage: the caller's behavioural state (shared data), the request's features, the model's
//! score and its explanation, and the verdict the thresholds give.
//!
//! Pure apart from the [`SharedData`] it is handed and the clock it is lent for its time budget:
//! `features` computes the numbers, `model` scores them, `state` holds what the features compare with.

pub mod breaker;
pub mod cidr;
pub mod features;
pub mod feed;
pub mod geo;
pub mod model;
pub mod pending;
pub mod respond;
pub mod state;

use crate::config::risk::Response;
use crate::config::{ConfigError, Mode, OnError, RiskConfig, Sensitivity};
use crate::credential::{CredentialKind, Identity};
use crate::shared::{self, SharedData};
use crate::slot::SlotKey;
use breaker::{Admission, CircuitBreaker, Transition};
use cidr::Cidr;
use features::{Facts, Feature, N};
use model::RiskModel;
use pending::{Pending, Response as Held, Waiting};
use respond::{Mark, Refusal, Responses};
use serde_json::Value;
use state::{IdentityState, Sighting, Slot, SourceState};
use std::borrow::Cow;
use std::cell::OnceCell;
use std::net::IpAddr;
use std::sync::Arc;

/// Factors named in `x-auth-risk-factors` and the audit record, at most.
pub const MAX_FACTORS: usize = 3;
/// Compare-and-set attempts for one state record before giving up on that update.
const CAS_ATTEMPTS: u32 = 4;

thread_local! {
    /// The embedded model, loaded once per VM (a VM is one thread; natively, once per thread) and
    /// shared by every config load. Not in the `Engine`: the model keeps per-thread run state, and the
    /// engine stays `Send + Sync`.
    static MODEL: OnceCell<Result<RiskModel, String>> = const { OnceCell::new() };
}

/// Runs `f` with the embedded model, loading it on first use; the error says why it does not load.
pub fn with_model<T>(f: impl FnOnce(&RiskModel) -> T) -> Result<T, String> {
    MODEL.with(|cell| {
        let loaded = cell.get_or_init(|| {
            let model = RiskModel::embedded().map_err(|e| e.to_string())?;
            check_features(&model, false)?;
            Ok(model)
        });
        match loaded {
            Ok(model) => Ok(f(model)),
            Err(e) => Err(e.clone()),
        }
    })
}

/// Refuses a model trained on other features than the engine computes, in another order. A model
/// from the config must name its features (`feature_names` metadata, as `model/train.py` writes it):
/// its width alone cannot tell a reordered feature set.
fn check_features(model: &RiskModel, named: bool) -> Result<(), String> {
    let names = model.feature_names();
    let unnamed_ok = !named && names.is_empty();
    if model.width() != N || !(unnamed_ok || names.iter().eq(Feature::NAMES.iter())) {
        return Err(format!(
            "it was trained on other features ({} of them: {}) than the engine computes ({N}: {})",
            model.width(),
            names.join(","),
            Feature::NAMES.join(",")
        ));
    }
    Ok(())
}

/// What the risk thresholds say about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RiskVerdict {
    /// Below `tag_at`: forward.
    Allow,
    /// From `tag_at`: forward with the factors.
    Tag,
    /// From `tag_at`, for a caller that cannot step up (`risk.responses`), over its throttle's
    /// pace: 429 with `Retry-After`.
    Throttle,
    /// From `step_up_at` (or a route demanding it) without a step-up in the token: RFC 9470 challenge.
    StepUp,
    /// A caller that cannot step up, suspended after sustained step-up-level scores: 403 with
    /// `Retry-After` until the suspension's TTL passes.
    Suspend,
    /// From `block_at`: 403.
    Block,
}

/// Why the circuit breaker decided instead of the score (`risk.on_error` then says what happens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breaker {
    /// State or model failed for this request: there is no score.
    Error,
    /// The breaker is open (repeated failures or overruns): the request was not scored.
    Open,
}

impl Breaker {
    /// Name for audit records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Breaker::Error => "error",
            Breaker::Open => "open",
        }
    }
}

/// The risk stage's result for one request.
#[derive(Debug, Clone)]
pub struct Assessment {
    /// 0 to 100 (`None` when the breaker decided).
    pub score: Option<u8>,
    /// The features the model saw.
    pub features: [f32; N],
    /// Features that raised the risk, highest contribution first, at most [`MAX_FACTORS`].
    pub factors: Vec<(&'static str, f32)>,
    /// What the thresholds (and the route, the token's step-up and the caller's kind) say.
    pub verdict: RiskVerdict,
    /// Seconds to wait, for a throttled or suspended caller (`Retry-After`).
    pub retry_after_s: Option<u64>,
    /// Whether the token showed a valid step-up.
    pub stepped_up: bool,
    /// Whether the verdict is enforced (`false`: shadow, logged only).
    pub enforced: bool,
    /// Set when the circuit breaker decided, with `on_error`.
    pub breaker: Option<(Breaker, OnError)>,
    /// Scoring ran over `risk.budget_us` (the score, when computed, is still used; the overrun
    /// counts towards opening the breaker).
    pub over_budget: bool,
    /// What this request did to the breaker (opened it, or closed it as a half-open probe).
    pub breaker_event: Option<Transition>,
    /// Scoring time, microseconds (by the lent clock).
    pub elapsed_us: u64,
    /// The edge's country as the features read it (`risk.geo_header`).
    pub country: Option<[u8; 2]>,
    /// The id of the model that scored ([`model::id_of`]).
    pub model: Arc<str>,
}

/// Which records a request touched, for the response phase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateRef {
    /// The caller's record.
    pub identity: Option<Slot>,
    /// The source address's record.
    pub source: Option<Slot>,
    /// The source's record counted the request as a success (it was let through): an upstream
    /// 401/403 takes that back.
    pub success: bool,
}

/// What the risk stage reads of one request, besides the identity.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:path`.
    pub path: &'a str,
    /// Request headers.
    pub headers: &'a [(String, String)],
    /// Source address.
    pub source: Option<IpAddr>,
    /// Seconds since the epoch.
    pub now_s: u64,
    /// The matched route's sensitivity.
    pub sensitivity: Sensitivity,
    /// The matched route demands a step-up.
    pub route_step_up: bool,
    /// The risk mode that applies (route `mode`, else `risk.mode` and the top-level `mode`).
    pub mode: Mode,
    /// The route rule, or the MCP tool, the request addresses (what `new_route` compares).
    pub route: Option<&'a str>,
    /// The object the request addresses: the route's template variables other than the tenant.
    pub object: Option<&'a str>,
}

/// The compiled `risk` section.
pub struct Risk {
    /// `risk.mode`.
    pub mode: Mode,
    tag_at: u8,
    step_up_at: u8,
    block_at: Option<u8>,
    /// `risk.acr_values`.
    pub acr_values: Vec<String>,
    /// `risk.max_age_s`.
    pub max_age_s: u64,
    /// `risk.amr_any`.
    amr_any: Vec<String>,
    budget_us: u64,
    /// The step of the clock the budget is judged with (see [`Risk::set_clock_step_us`]).
    clock_step_us: u64,
    on_error: OnError,
    breaker: CircuitBreaker,
    responses: Responses,
    tenant_variable: String,
    /// The country header, when the edge owns it (`risk.geo_header_from_edge`).
    geo_header: Option<String>,
    deny: Vec<Cidr>,
    deny_feed: Option<feed::DenyFeed>,
    slots: u32,
    slot_key: SlotKey,
    travel_kmh: f32,
    /// `risk.model`, loaded and checked (`None`: the embedded model).
    model: Option<Arc<RiskModel>>,
    /// The id of the model that scores.
    model_id: Arc<str>,
    /// Response facts waiting for the identity's next write (`pending.rs`): this worker's own.
    pending: Pending,
}

impl Risk {
    /// Compiles the section (the embedded model is loaded once per VM); `tenant_variable` is the
    /// route template variable naming the tenant (`tenancy.path_variable`), never an object.
    pub fn compile(c: &RiskConfig, tenant_variable: &str) -> Result<Risk, ConfigError> {
        c.validate()?;
        let mut deny = Vec::with_capacity(c.deny_cidrs.len());
        for (i, s) in c.deny_cidrs.iter().enumerate() {
            deny.push(
                Cidr::parse(s).map_err(|m| ConfigError::new(format!("risk.deny_cidrs[{i}]"), m))?,
            );
        }
        // Loaded now, so that a model that cannot run refuses the config, not every request.
        let (model, model_id) = match c.model_bytes()? {
            Some(bytes) => {
                let model = RiskModel::from_onnx(&bytes)
                    .map_err(|e| e.to_string())
                    .and_then(|m| check_features(&m, true).map(|()| m))
                    .map_err(|e| ConfigError::new("risk.model", format!("cannot be used: {e}")))?;
                (Some(Arc::new(model)), model::id_of(&bytes))
            }
            None => {
                with_model(|_| ()).map_err(|e| {
                    ConfigError::new(
                        "risk",
                        format!("the embedded risk model cannot be used: {e}"),
                    )
                })?;
                (None, model::id().to_owned())
            }
        };
        Ok(Risk {
            mode: c.mode,
            tag_at: c.tag_at,
            step_up_at: c.step_up_at,
            block_at: c.block_at,
            acr_values: c.acr_values.clone(),
            max_age_s: c.max_age_s,
            amr_any: c.amr_any.clone(),
            budget_us: c.budget_us,
            clock_step_us: 1,
            on_error: c.on_error,
            breaker: CircuitBreaker::new(c.breaker.open_after, c.breaker.cool_down_s),
            responses: Responses::compile(&c.responses),
            tenant_variable: tenant_variable.to_owned(),
            geo_header: c
                .geo_header_from_edge
                .then(|| c.geo_header.to_ascii_lowercase()),
            deny,
            deny_feed: c
                .deny_cidrs_feed
                .as_ref()
                .map(feed::DenyFeed::compile)
                .transpose()?,
            slots: c.state_slots,
            slot_key: SlotKey::default(),
            travel_kmh: c.travel_kmh as f32,
            model,
            model_id: model_id.into(),
            pending: Pending::default(),
        })
    }

    /// The id of the model that scores (`risk-` and 12 hex digits of its SHA-256).
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// The step of the host's clock in microseconds (1: Envoy; 1000: ngx_wasm_module). A reading
    /// `r` on a clock of step `s` means the run took more than `r - s`, so scoring is over budget
    /// when `r >= budget_us + s`: never for a run within the budget, always for one longer than
    /// `budget_us + s` (for a `budget_us` in whole steps). With step 1 that is `r > budget_us`.
    pub fn set_clock_step_us(&mut self, step_us: u64) {
        self.clock_step_us = step_us.max(1);
    }

    /// Keys the slot hash (the deployment's key, [`SlotKey::shared`]).
    pub fn set_slot_key(&mut self, key: SlotKey) {
        self.slot_key = key;
    }

    /// The records of a request: the caller's (when proven) and the source address's.
    pub fn slots(&self, identity: Option<&Identity>, source: Option<IpAddr>) -> StateRef {
        let key = &self.slot_key;
        StateRef {
            identity: identity.map(|i| Slot::identity(&identity_name(i), self.slots, key)),
            source: source.map(|a| Slot::source(&a, self.slots, key)),
            success: false,
        }
    }

    /// What a request addresses, for the features: the route rule or MCP tool (`route`, or
    /// `mcp:<endpoint>:<tool>`), and the object (the route's template variables other than the
    /// tenant, joined), when it has any.
    pub fn addressed<'m>(
        &self,
        matched: Option<&'m crate::authz::routes::RouteMatch<'m>>,
        mcp: Option<&crate::mcp::Inspected>,
    ) -> (Option<Cow<'m, str>>, Option<Cow<'m, str>>) {
        let tool = mcp.and_then(|m| {
            let call = m.calls.first()?;
            let target = call.target.as_deref()?;
            Some(Cow::Owned(format!(
                "mcp:{}:{}:{target}",
                m.name,
                call.method.as_deref().unwrap_or("")
            )))
        });
        let route = tool.or_else(|| matched.map(|m| Cow::Borrowed(&*m.route.name)));
        // Borrowed for the usual one variable (besides the tenant); joined only for more.
        let mut object: Option<Cow<'m, str>> = None;
        let vars = matched.map(|m| m.vars.as_slice()).unwrap_or_default();
        for (_, v) in vars.iter().filter(|(n, _)| *n != self.tenant_variable) {
            object = Some(match object {
                None => Cow::Borrowed(*v),
                Some(o) => Cow::Owned(format!("{o}/{v}")),
            });
        }
        (route, object)
    }

    /// `risk.deny_cidrs_feed`, when configured (the adapter drives it on its tick).
    pub fn deny_feed(&self) -> Option<&feed::DenyFeed> {
        self.deny_feed.as_ref()
    }

    /// The header the edge's country is read from (lower-case), when the edge owns it.
    pub fn geo_header(&self) -> Option<&str> {
        self.geo_header.as_deref()
    }

    /// Scores a request whose caller is proven and authorised, and records it in the state.
    /// `clock_us` is a monotonic clock for the time budget.
    pub fn assess(
        &self,
        inputs: &Inputs<'_>,
        identity: &Identity,
        store: &dyn SharedData,
        clock_us: &dyn Fn() -> u64,
    ) -> (Assessment, StateRef) {
        let stepped_up = self.stepped_up(identity, inputs.now_s);
        let enforced = inputs.mode == Mode::Enforce;
        let admission = self.breaker.admit(inputs.now_s);
        if admission == Admission::Open {
            // Not scored, nothing read or written: the breaker sheds the stage's load. `closed`
            // refuses in the caller, `open` forwards unscored; a route that demands step-up still does.
            let assessment = Assessment {
                score: None,
                features: [0.0; N],
                factors: Vec::new(),
                verdict: self.verdict(0, inputs.route_step_up, stepped_up),
                retry_after_s: None,
                stepped_up,
                enforced,
                breaker: Some((Breaker::Open, self.on_error)),
                over_budget: false,
                breaker_event: None,
                elapsed_us: 0,
                country: None,
                model: Arc::clone(&self.model_id),
            };
            return (assessment, StateRef::default());
        }
        let started = clock_us();
        let mut refs = self.slots(Some(identity), inputs.source);
        let facts = self.facts(inputs, identity, refs.identity.as_ref().map(|s| s.hash));
        // The identity's responses this worker has not written yet: read into its record now.
        let held = refs
            .identity
            .as_ref()
            .map(|s| self.pending.take(s))
            .unwrap_or_default();
        let (features, scored, read) = self.score(&refs, &facts, held, store);
        let elapsed_us = clock_us().saturating_sub(started);
        // A reading `r` on a clock of step `s` means the run took more than `r - s`.
        let over_budget = elapsed_us >= self.budget_us.saturating_add(self.clock_step_us);
        let breaker_event = self
            .breaker
            .record(inputs.now_s, scored.is_ok() && !over_budget);
        // A score that was computed is used, however long it took (the wall clock counts the time
        // the worker was descheduled): only a missing score lets the breaker decide.
        let (score, contributions, breaker) = match scored {
            Ok((score, contributions)) => (Some(score), contributions, None),
            Err(ScoreError::State | ScoreError::Model) => (None, Vec::new(), Some(Breaker::Error)),
        };
        let (verdict, mark, retry_after_s) = match score {
            Some(s) => {
                let before = read.identity_state.as_ref();
                self.answer(identity.kind, s, inputs, stepped_up, before)
            }
            None => (
                self.verdict(0, inputs.route_step_up, stepped_up),
                Mark::default(),
                None,
            ),
        };
        let factors = top_factors(&contributions);
        // Only requests the policy lets through teach the record what is normal; a step-up-level
        // score that a caller who cannot step up got through its throttle teaches nothing either (a
        // thief's first request must not make his country and client "known").
        let passed = score.is_some() && verdict <= RiskVerdict::Tag;
        let learn = passed && !mark.hot;
        let tagged = score.is_some_and(|s| s >= self.tag_at);
        self.record_request(&refs, &read, &facts, (passed, learn, tagged), mark, store);
        refs.success = learn && refs.source.is_some();
        (
            Assessment {
                score,
                features,
                factors,
                verdict,
                retry_after_s,
                stepped_up,
                enforced,
                breaker: breaker.map(|b| (b, self.on_error)),
                over_budget,
                breaker_event,
                elapsed_us,
                country: facts.country,
                model: Arc::clone(&self.model_id),
            },
            refs,
        )
    }

    /// The facts of a request, as the features read them.
    fn facts(&self, inputs: &Inputs<'_>, identity: &Identity, hash: Option<u64>) -> Facts {
        let header = |name: &str| {
            inputs
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let method = || inputs.method.bytes().map(|b| b.to_ascii_uppercase());
        let is = |m: &str| inputs.method.eq_ignore_ascii_case(m);
        let path = inputs.path.split('?').next().unwrap_or("");
        let claims = identity.claims.as_deref();
        Facts {
            now_s: inputs.now_s,
            write: ["POST", "PUT", "PATCH", "DELETE"].into_iter().any(is),
            delete: is("DELETE"),
            sensitivity: inputs.sensitivity.weight(),
            // A client's own value is never read: only an edge-owned header names the country.
            country: self
                .geo_header
                .as_deref()
                .and_then(header)
                .and_then(geo::country_code),
            prefix: inputs.source.as_ref().map(state::prefix_item),
            agent: state::client_item(header("user-agent").unwrap_or("").as_bytes()),
            // Hashed as the bytes of "METHOD path", without building that string.
            endpoint: state::hash64_of(b'e', method().chain([b' ']).chain(path.bytes())),
            route: inputs
                .route
                .map_or(0, |r| state::item32(b'r', r.as_bytes())),
            object: inputs.object.map(|o| {
                let route = inputs.route.unwrap_or("");
                let bytes = route.bytes().chain([0]).chain(o.bytes());
                state::hash64_of(b'o', bytes)
            }),
            identity: hash,
            issued_at: claims.and_then(|c| c.iat),
            delegation_depth: claims.map_or(0, |c| delegation_depth(c.extra.get("act"))),
            bad_source: inputs.source.is_some_and(|a| {
                self.deny.iter().any(|c| c.contains(&a))
                    || self.deny_feed.as_ref().is_some_and(|f| f.contains(&a))
            }),
            travel_kmh: self.travel_kmh,
            kind: identity.kind,
        }
    }

    /// Reads the records, computes the features and scores them: the features (zeros when the state
    /// cannot be read), the score with each feature's contribution, and what was read (for the write).
    /// `held`: the identity's responses this worker has not written yet, part of its record.
    fn score(
        &self,
        refs: &StateRef,
        facts: &Facts,
        held: Vec<Held>,
        store: &dyn SharedData,
    ) -> ([f32; N], Scored, Read) {
        let read = |slot: Option<&Slot>| slot.map(|slot| store.get(&slot.key));
        let raw = match (read(refs.identity.as_ref()), read(refs.source.as_ref())) {
            (Some(Err(_)), _) | (_, Some(Err(_))) => {
                let read = Read {
                    held,
                    ..Read::default()
                };
                return ([0.0; N], Err(ScoreError::State), read);
            }
            (id, src) => Read {
                identity: id.and_then(Result::ok),
                source: src.and_then(Result::ok),
                held,
                ..Read::default()
            },
        };
        let decode_id = |slot: &Slot| {
            let bytes = raw.identity.as_ref().and_then(|(b, _)| b.as_deref());
            IdentityState::decode(bytes, slot.hash)
        };
        let decode_src = |slot: &Slot| {
            let bytes = raw.source.as_ref().and_then(|(b, _)| b.as_deref());
            SourceState::decode(bytes, slot.hash)
        };
        let id = refs.identity.as_ref().and_then(decode_id).map(|mut s| {
            observe_responses(&mut s, &raw.held);
            s
        });
        let src = refs.source.as_ref().and_then(decode_src);
        let x = features::extract(id.as_ref(), src.as_ref(), facts);
        let raw = Read {
            identity_state: id,
            source_state: src,
            ..raw
        };
        let out = match &self.model {
            Some(m) => Ok(m.score(&x)),
            None => with_model(|m| m.score(&x)),
        };
        let scored = match out {
            Ok(Ok(out)) if out.probability.is_finite() && out.contributions.len() == N => {
                let score = (out.probability.clamp(0.0, 1.0) * 100.0).round() as u8;
                let contributions = Feature::NAMES
                    .into_iter()
                    .zip(out.contributions.iter().copied())
                    .collect();
                Ok((score, contributions))
            }
            _ => Err(ScoreError::Model),
        };
        (x, scored, raw)
    }

    /// The verdict of a score for a caller of `kind`, with what it asks of the caller's record:
    /// thresholds and route as [`Risk::verdict`] for callers who can step up; for the others
    /// (`risk.responses`) a suspension in force, a block-level score or a route's step-up stand,
    /// else every request (before the caller has a pace of its own, every one from `tag_at`) takes
    /// a token from the throttle's bucket, which refuses from `tag_at`, and step-up-level scores
    /// count towards suspension.
    fn answer(
        &self,
        kind: crate::credential::IdentityKind,
        score: u8,
        inputs: &Inputs<'_>,
        stepped_up: bool,
        before: Option<&IdentityState>,
    ) -> (RiskVerdict, Mark, Option<u64>) {
        let verdict = self.verdict(score, inputs.route_step_up, stepped_up);
        if self.responses.of(kind) == Response::StepUp {
            return (verdict, Mark::default(), None);
        }
        let now = inputs.now_s;
        if let Some(left) = Responses::suspended(before, now) {
            return (RiskVerdict::Suspend, Mark::default(), Some(left));
        }
        let by_score = self.verdict(score, false, false);
        if by_score == RiskVerdict::Block || (verdict == RiskVerdict::StepUp && by_score < verdict)
        {
            return (verdict, Mark::default(), None);
        }
        if by_score < RiskVerdict::Tag {
            // Held to its own pace, a caller's bucket drains with every request, tagged or not (it
            // refuses only from `tag_at`): a flood that turns risky mid-way has spent its burst.
            // Before it has a pace, `min_per_minute` is a guess, not its habit: a new agent's busy
            // start (a client walking an MCP server) is no flood, so only risky requests count.
            let mark = Mark {
                bucket: Responses::has_pace(before).then(|| self.responses.throttle(before, now).0),
                hot: false,
            };
            return (by_score, mark, None);
        }
        let hot = by_score >= RiskVerdict::StepUp;
        if hot && self.responses.suspends(before, now) {
            let mark = Mark { bucket: None, hot };
            return (RiskVerdict::Suspend, mark, Some(self.responses.ttl_s()));
        }
        let (tokens, refused) = self.responses.throttle(before, now);
        let mark = Mark {
            bucket: Some(tokens),
            hot,
        };
        match refused {
            Some(Refusal::Throttled(wait) | Refusal::Suspended(wait)) => {
                (RiskVerdict::Throttle, mark, Some(wait))
            }
            None => (RiskVerdict::Tag, mark, None),
        }
    }

    /// The verdict of a score, given the route and the token's step-up.
    pub fn verdict(&self, score: u8, route_step_up: bool, stepped_up: bool) -> RiskVerdict {
        let by_score = if self.block_at.is_some_and(|b| score >= b) {
            RiskVerdict::Block
        } else if score >= self.step_up_at {
            RiskVerdict::StepUp
        } else if score >= self.tag_at {
            RiskVerdict::Tag
        } else {
            RiskVerdict::Allow
        };
        let wanted = if route_step_up {
            by_score.max(RiskVerdict::StepUp)
        } else {
            by_score
        };
        match wanted {
            RiskVerdict::StepUp if stepped_up => {
                if score >= self.tag_at {
                    RiskVerdict::Tag
                } else {
                    RiskVerdict::Allow
                }
            }
            v => v,
        }
    }

    /// Whether the token shows the step-up: `acr` among `risk.acr_values` (or `amr` holding one of
    /// `risk.amr_any`) and `auth_time` at most `risk.max_age_s` old (and not in the future beyond
    /// a minute of skew).
    pub fn stepped_up(&self, identity: &Identity, now_s: u64) -> bool {
        let Some(claims) = identity.claims.as_deref() else {
            return false;
        };
        let acr_ok = claims
            .extra
            .get("acr")
            .and_then(Value::as_str)
            .is_some_and(|acr| self.acr_values.iter().any(|v| v == acr))
            || crate::authz::presence::amr_holds(&claims.extra, &self.amr_any);
        let fresh = claims
            .extra
            .get("auth_time")
            .and_then(Value::as_u64)
            .is_some_and(|t| {
                t <= now_s.saturating_add(60) && now_s.saturating_sub(t) <= self.max_age_s
            });
        acr_ok && fresh
    }

    /// Records a request in the identity's and the source's records (the identity's with the
    /// responses held for it before the request).
    fn record_request(
        &self,
        refs: &StateRef,
        read: &Read,
        facts: &Facts,
        (passed, learn, tagged): (bool, bool, bool),
        mark: Mark,
        store: &dyn SharedData,
    ) {
        let now = facts.now_s;
        if let Some(slot) = &refs.identity {
            let sighting = Sighting {
                now_s: now,
                country: facts.country,
                prefix: facts.prefix,
                agent: facts.agent,
                endpoint: facts.endpoint,
                route: facts.route,
                object: facts.object,
                passed,
                learn,
                tagged,
            };
            let request = |s: &mut IdentityState| {
                s.set_rate_bucket(self.responses.pace_bucket_s(), now);
                s.observe(&sighting);
                self.responses.apply(s, now, mark);
            };
            let decoded = read.identity_state.map(|mut s| {
                request(&mut s);
                s.encode()
            });
            let created = write_back(store, &slot.key, read.identity.as_ref(), decoded, |cur| {
                state::apply_identity(cur, slot.hash, now, |s| {
                    observe_responses(s, &read.held);
                    request(s);
                })
            });
            if created {
                count_slot(store, 0);
            }
        }
        if let Some(slot) = &refs.source {
            let who = facts.identity;
            let request = |s: &mut SourceState| s.observe(now, who, learn);
            let decoded = read.source_state.map(|mut s| {
                request(&mut s);
                s.encode()
            });
            let created = write_back(store, &slot.key, read.source.as_ref(), decoded, |cur| {
                state::apply_source(cur, slot.hash, now, request)
            });
            if created {
                count_slot(store, 1);
            }
        }
    }

    /// Records a failure (401/403): a refusal by the filter before the risk stage, or the upstream's
    /// (which also takes back the success the source's record counted for the request).
    pub fn record_failure(&self, refs: &StateRef, now_s: u64, store: &dyn SharedData) {
        if let Some(slot) = &refs.identity {
            let created = write(store, &slot.key, |cur| {
                state::apply_identity(cur, slot.hash, now_s, |s| s.observe_failure(now_s))
            });
            if created {
                count_slot(store, 0);
            }
        }
        if let Some(slot) = &refs.source {
            let created = write(store, &slot.key, |cur| {
                state::apply_source(cur, slot.hash, now_s, |s| {
                    s.observe_failure(now_s, refs.success)
                })
            });
            if created {
                count_slot(store, 1);
            }
        }
    }

    /// Behavioural record slots in use: (identity, source, the capacity of each: `risk.slots`).
    pub fn slots_in_use(&self, store: &dyn SharedData) -> (u64, u64, u32) {
        let used = |key: &str| {
            store
                .get(key)
                .ok()
                .and_then(|(v, _)| v)
                .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                .map_or(0, u64::from_le_bytes)
        };
        let [id, src] = SLOTS_USED_KEYS;
        (used(id), used(src), self.slots)
    }

    /// The response phase of a forwarded request: the upstream's status and body size. A failure
    /// (401/403) is written at once; the size waits in this worker for the identity's next write
    /// (`pending.rs`), unless too many wait.
    pub fn observe_response(
        &self,
        refs: &StateRef,
        status: u16,
        bytes: u64,
        now_s: u64,
        store: &dyn SharedData,
    ) {
        if status == 401 || status == 403 {
            self.record_failure(refs, now_s, store);
        }
        if let Some(slot) = &refs.identity {
            if let Some(due) = self.pending.hold(slot, Held { bytes, now_s }) {
                write_responses(store, &due);
            }
        }
    }

    /// Writes every response fact waiting in this worker (the root context's tick, and before the
    /// worker lets go of this config). No host call when none waits.
    pub fn flush_responses(&self, store: &dyn SharedData) {
        for due in self.pending.drain() {
            write_responses(store, &due);
        }
    }
}

/// Response facts into an identity's record, oldest first.
fn observe_responses(s: &mut IdentityState, held: &[Held]) {
    for r in held {
        s.observe_response(r.bytes, r.now_s);
    }
}

/// Writes an identity's waiting response facts: only an existing record of that identity learns
/// them (a slot another identity took since starts afresh without them).
fn write_responses(store: &dyn SharedData, due: &Waiting) {
    let _ = shared::update(
        store,
        &due.slot.key,
        CAS_ATTEMPTS,
        |cur| match IdentityState::decode(cur, due.slot.hash) {
            Some(mut s) => {
                observe_responses(&mut s, &due.responses);
                (Some(s.encode()), ())
            }
            None => (None, ()),
        },
    );
}

/// A score (0-100) with each feature's contribution, or why there is none.
type Scored = Result<(u8, Vec<(&'static str, f32)>), ScoreError>;

/// Why a request could not be scored (the circuit breaker's `error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScoreError {
    /// The behavioural records could not be read from shared data.
    State,
    /// The model failed or gave no usable score.
    Model,
}

/// The records as read for scoring: value and cas of each, and the identity's responses this
/// worker held back (part of its record, written with the request).
#[derive(Default)]
struct Read {
    identity: Option<(Option<Vec<u8>>, u32)>,
    source: Option<(Option<Vec<u8>>, u32)>,
    held: Vec<Held>,
    /// The identity's record as decoded from `identity`, with `held` observed (`None`: absent,
    /// another identity's or unreadable); the request's write starts from it, not from the bytes.
    identity_state: Option<IdentityState>,
    /// The source's record as decoded from `source`.
    source_state: Option<SourceState>,
}

/// Writes `change(current)` to `key`: first with the value and cas read for scoring (saving a host
/// read), then, if another worker wrote in between, as a fresh compare-and-set update. A lost update
/// only makes a history a little shorter: never a reason to fail a request, so errors are dropped.
/// `decoded`: `change` of the value read, already made from the record scoring decoded (saving a
/// second decode); `None` when that record was absent or not this key's, and `change` makes it.
fn write_back(
    store: &dyn SharedData,
    key: &str,
    read: Option<&(Option<Vec<u8>>, u32)>,
    decoded: Option<Vec<u8>>,
    change: impl Fn(Option<&[u8]>) -> Vec<u8>,
) -> bool {
    if let Some((bytes, cas)) = read {
        let value = decoded.unwrap_or_else(|| change(bytes.as_deref()));
        match store.set(key, &value, *cas) {
            Err(shared::SharedError::CasMismatch) => {}
            Ok(()) => return bytes.is_none(),
            Err(_) => return false,
        }
    }
    write(store, key, change)
}

/// Read-modify-write of a record; true when it created the record (the slot was free).
fn write(store: &dyn SharedData, key: &str, change: impl Fn(Option<&[u8]>) -> Vec<u8>) -> bool {
    shared::update(store, key, CAS_ATTEMPTS, |cur| {
        (Some(change(cur)), cur.is_none())
    })
    .unwrap_or(false)
}

/// Shared-data keys counting the slots ever written (identity, source): slots are never freed
/// (shared data never expires), so this is the number in use, for the `warden_state_slots_in_use`
/// gauge. Written only when a slot is first taken.
pub const SLOTS_USED_KEYS: [&str; 2] = ["warden:risk:used:identity", "warden:risk:used:source"];

/// One more slot of kind `which` (0: identity, 1: source) in use.
fn count_slot(store: &dyn SharedData, which: usize) {
    if let Some(key) = SLOTS_USED_KEYS.get(which) {
        let _ = shared::update(store, key, CAS_ATTEMPTS, |cur| {
            let n = cur
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_le_bytes);
            (Some(n.saturating_add(1).to_le_bytes().to_vec()), ())
        });
    }
}

/// The name whose behaviour is tracked: the current actor of a delegated token, the API key, or the
/// subject (within its provider): `act:`/`sub:`, the provider, NUL, who; or `key:` and the key id.
/// In parts, which the slot hashes one after the other (the name is never built).
pub fn identity_name(id: &Identity) -> [&str; 4] {
    if id.credential == CredentialKind::ApiKey {
        return ["key:", id.client.as_deref().unwrap_or(&id.subject), "", ""];
    }
    let actor = id
        .claims
        .as_deref()
        .and_then(|c| c.extra.get("act"))
        .and_then(|a| a.get("sub"))
        .and_then(Value::as_str);
    match actor {
        Some(a) => ["act:", &id.provider, "\u{0}", a],
        None => ["sub:", &id.provider, "\u{0}", &id.subject],
    }
}

/// Delegation hops: how many `act` claims are nested (RFC 8693 §4.1), at most 16 looked at.
fn delegation_depth(act: Option<&Value>) -> u32 {
    let mut depth = 0;
    let mut cur = act;
    while let Some(Value::Object(o)) = cur {
        depth += 1;
        if depth >= 16 {
            break;
        }
        cur = o.get("act");
    }
    depth
}

/// Features that raised the risk, highest first.
fn top_factors(contributions: &[(&'static str, f32)]) -> Vec<(&'static str, f32)> {
    let mut f: Vec<(&'static str, f32)> = contributions
        .iter()
        .copied()
        .filter(|(_, c)| *c > 0.0 && c.is_finite())
        .collect();
    f.sort_by(|a, b| b.1.total_cmp(&a.1));
    f.truncate(MAX_FACTORS);
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::{CasRule, MemoryStore, SharedError};
    use std::cell::Cell;

    /// A store where another worker writes the key between our read and our first write.
    struct Racy {
        inner: MemoryStore,
        armed: Cell<bool>,
    }

    impl SharedData for Racy {
        fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), SharedError> {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SharedError> {
            if self.armed.replace(false) {
                let (cur, c) = self.inner.get(key)?;
                let mut s = IdentityState::decode(cur.as_deref(), 7)
                    .unwrap_or_else(|| IdentityState::fresh(7, 0));
                s.count += 100;
                self.inner.set(key, &s.encode(), c)?;
            }
            self.inner.set(key, value, cas)
        }
    }

    /// A plain `GET` at `now_s`, enforced.
    fn inputs(now_s: u64) -> Inputs<'static> {
        Inputs {
            method: "GET",
            path: "/orders/1",
            headers: &[],
            source: None,
            now_s,
            sensitivity: Sensitivity::default(),
            route_step_up: false,
            mode: Mode::Enforce,
            route: None,
            object: None,
        }
    }

    #[test]
    fn a_flood_that_turns_risky_has_spent_its_burst_once_the_pace_is_learnt() {
        let c: RiskConfig = serde_json::from_value(serde_json::json!({})).unwrap();
        let risk = Risk::compile(&c, "tenant").unwrap();
        let agent = crate::credential::IdentityKind::Agent;
        let answer = |s: &mut IdentityState, score: u8| {
            let (verdict, mark, _) = risk.answer(agent, score, &inputs(1000), false, Some(s));
            risk.responses.apply(s, 1000, mark);
            verdict
        };
        // An agent with a pace of its own: 60 learnt requests per busy 5 minutes, so 0.4 a second
        // and a bucket of 4. Calm, its first risky request passes.
        let learnt = |hash| {
            let mut s = IdentityState::fresh(hash, 0);
            s.rate_baseline = 61f32.ln();
            s.rate_buckets = 10;
            s
        };
        let mut calm = learnt(1);
        assert_eq!(answer(&mut calm, 40), RiskVerdict::Tag);
        // After 12 unremarkable requests in the same second its burst is spent: its first risky
        // request is throttled; unremarkable ones still pass.
        let mut flood = learnt(2);
        for _ in 0..12 {
            assert_eq!(answer(&mut flood, 5), RiskVerdict::Allow);
        }
        assert_eq!(answer(&mut flood, 40), RiskVerdict::Throttle);
        assert_eq!(answer(&mut flood, 5), RiskVerdict::Allow);
        // A new agent (no pace yet: the floor's guess) is not held to it for a busy start: only its
        // risky requests take tokens.
        let mut new = IdentityState::fresh(3, 0);
        for _ in 0..30 {
            assert_eq!(answer(&mut new, 5), RiskVerdict::Allow);
        }
        assert_eq!(answer(&mut new, 40), RiskVerdict::Tag);
        // A person is never throttled.
        let (verdict, mark, _) = risk.answer(
            crate::credential::IdentityKind::Human,
            40,
            &inputs(1000),
            false,
            Some(&flood),
        );
        assert_eq!((verdict, mark), (RiskVerdict::Tag, Mark::default()));
    }

    /// A response's size costs the response phase no shared-data call: it waits in the worker,
    /// goes into the identity's next request (its features read it, its write stores it) or is
    /// written by a flush, and never into another identity's record.
    #[test]
    fn a_response_waits_for_the_identitys_next_write_or_a_flush() {
        let c: RiskConfig = serde_json::from_value(serde_json::json!({})).unwrap();
        let risk = Risk::compile(&c, "tenant").unwrap();
        let store = MemoryStore::new(CasRule::Kong);
        let alice = Identity {
            credential: CredentialKind::Jwt,
            subject: "alice".into(),
            client: None,
            tenant: None,
            scopes: Vec::new(),
            provider: "p".into(),
            token_id: None,
            kind: crate::credential::IdentityKind::Human,
            actors: Vec::new(),
            claims: None,
        };
        let request = |now_s| risk.assess(&inputs(now_s), &alice, &store, &|| 0).1;
        let record = |refs: &StateRef| {
            let slot = refs.identity.as_ref().unwrap();
            let (bytes, _) = store.get(&slot.key).unwrap();
            IdentityState::decode(bytes.as_deref(), slot.hash).unwrap()
        };
        let refs = request(1000);
        let before = store.get(&refs.identity.as_ref().unwrap().key).unwrap();
        risk.observe_response(&refs, 200, 5000, 1000, &store);
        // Nothing read or written after the response.
        assert_eq!(
            store.get(&refs.identity.as_ref().unwrap().key).unwrap(),
            before
        );
        assert_eq!(record(&refs).responses, 0);
        // The next request writes it with its own sighting.
        let refs = request(1001);
        let first = record(&refs);
        assert_eq!((first.responses, first.count), (1, 2));
        // A flush writes what waits, once.
        risk.observe_response(&refs, 200, 5000, 1001, &store);
        risk.flush_responses(&store);
        assert_eq!(record(&refs).responses, 2);
        risk.flush_responses(&store);
        assert_eq!(record(&refs).responses, 2);
        assert!(risk.pending.is_empty());
    }

    #[test]
    fn a_write_that_loses_a_race_is_redone_on_the_winners_value() {
        let store = Racy {
            inner: MemoryStore::new(CasRule::Kong),
            armed: Cell::new(false),
        };
        let key = "k";
        let bump = |cur: Option<&[u8]>| state::apply_identity(cur, 7, 0, |s| s.count += 1);
        write_back(&store, key, Some(&(None, 0)), None, bump);
        let read = store.get(key).unwrap();
        store.armed.set(true);
        write_back(&store, key, Some(&read), None, bump);
        let (bytes, _) = store.get(key).unwrap();
        // 1 (first write) + 100 (the other worker) + 1 (ours, redone).
        assert_eq!(
            IdentityState::decode(bytes.as_deref(), 7).unwrap().count,
            102
        );
    }
}
