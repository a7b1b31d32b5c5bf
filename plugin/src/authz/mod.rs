//! What a proven caller may do: the route policy it falls under, who may act for whom, its tenant,
//! its scopes, its rate limits and whether it is revoked. [`Policy`] holds the compiled rules; the
//! pipeline ([`crate::decision::Engine::decide`]) asks it in order.

pub mod delegation;
pub mod guardrails;
pub mod kind;
pub mod owner;
pub mod pattern;
pub mod presence;
pub mod rate_limit;
pub mod revocation;
pub mod routes;
pub mod target;
pub mod tenant;

use crate::config::routing::{MethodOverride, Unmatched};
use crate::config::{Config, ConfigError};
use crate::credential::Identity;
use crate::decision::Request;
use crate::reply::Denial;
use crate::shared::SharedData;
use delegation::Delegation;
use kind::Kinds;
use rate_limit::RateLimits;
use revocation::Revocation;
use routes::{RouteMatch, RouteTable};
use target::{Target, TargetError};
use tenant::Tenancy;

/// The route's required scopes that `identity` lacks (empty: authorized).
pub fn missing_scopes<'r>(required: &'r [String], identity: &Identity) -> Vec<&'r str> {
    required
        .iter()
        .filter(|s| !identity.scopes.iter().any(|g| g == *s))
        .map(String::as_str)
        .collect()
}

/// The authorization rules of a config, compiled: routes, delegation, kinds, tenancy, rate limits
/// and revocation. Pure: shared data is lent per call.
pub struct Policy {
    routes: RouteTable,
    unmatched: Unmatched,
    method_override: MethodOverride,
    delegation: Delegation,
    kinds: Kinds,
    tenancy: Option<Tenancy>,
    rate_limits: Option<RateLimits>,
    revocation: Revocation,
}

impl Policy {
    /// Compiles the authorization sections of `c`; the error names the offending field.
    pub fn compile(c: &Config) -> Result<Policy, ConfigError> {
        let routes = RouteTable::compile(&c.routes, &c.routing)?;
        let delegation =
            Delegation::compile(&c.delegation.clone().unwrap_or_default(), &routes.names())?;
        let kinds = Kinds::compile(&c.kinds)?;
        let tenancy = c
            .tenancy
            .as_ref()
            .map(|t| Tenancy::compile(t, &routes))
            .transpose()?;
        let mut rate_limits = c
            .rate_limits
            .as_ref()
            .map(|r| RateLimits::compile(r, &routes.names()))
            .transpose()?;
        if let Some(rl) = &mut rate_limits {
            rl.for_calls_only(&crate::mcp::Mcp::rate_limit_policies(c));
        }
        let revocation = Revocation::compile(&c.revocation.clone().unwrap_or_default())?;
        Ok(Policy {
            routes,
            unmatched: c.routing.unmatched.unwrap_or(if c.routes.is_empty() {
                Unmatched::Authenticate
            } else {
                Unmatched::Deny
            }),
            method_override: c.routing.method_override,
            delegation,
            kinds,
            tenancy,
            rate_limits,
            revocation,
        })
    }

    /// What routes match a request on: its normalised path and effective method.
    pub fn target<'a>(&self, req: &Request<'a>) -> Result<Target<'a>, TargetError> {
        target::target(req.method, req.path, req.headers, self.method_override)
    }

    /// The route rule a request's target falls under, with its path variables.
    pub fn route<'r>(&'r self, target: &'r Target<'_>) -> Option<RouteMatch<'r>> {
        self.routes.find(&target.method, &target.path)
    }

    /// A request no route matches: refused by `routing.unmatched` (the default), or let through.
    pub fn unmatched(&self, route: Option<&RouteMatch<'_>>) -> Result<(), Denial> {
        match (route, self.unmatched) {
            (None, Unmatched::Deny) => Err(Denial::NoRoute),
            _ => Ok(()),
        }
    }

    /// Keys the rate-limit and quarantine slots (the deployment's key).
    pub fn set_slot_key(&mut self, key: crate::slot::SlotKey) {
        if let Some(rl) = &mut self.rate_limits {
            rl.set_slot_key(key);
        }
        self.revocation.set_slot_key(key);
    }

    /// The revocation lists, feed and quarantine.
    pub fn revocation(&self) -> &Revocation {
        &self.revocation
    }

    /// The untrusted delegation headers present in the request (lower-cased, once each).
    pub fn present_untrusted(&self, headers: &[(String, String)]) -> Vec<String> {
        self.delegation.present_untrusted(headers)
    }

    /// Delegation asserted by headers is never trusted, on any route: a refusal when the config
    /// refuses requests carrying the untrusted headers `found` ([`Policy::present_untrusted`]).
    pub fn refuse_untrusted(&self, found: &[String]) -> Result<(), Denial> {
        Ok(self.delegation.refuse_untrusted(found)?)
    }

    /// Agents as identities: the kind of the caller and its `act` chain, revocation (deny lists,
    /// feed, quarantine), the delegation policy (effective scopes replace the token's), tenant
    /// isolation. Works on the identity in place, so a refused caller is still known (the record
    /// and the alert say who was refused).
    pub fn agent_policy(
        &self,
        req: &Request<'_>,
        path: &str,
        id: &mut Identity,
        route: Option<&RouteMatch<'_>>,
        shared: &dyn SharedData,
    ) -> Result<(), Denial> {
        // The verified token's claims (none for an API key), carried by the identity.
        let claims = id.claims.clone();
        let claims = claims.as_deref();
        if let Some(c) = claims {
            id.actors = self.delegation.chain(&c.extra)?;
        }
        id.kind = match id.actor() {
            Some(actor) => self.kinds.of_actor(actor),
            None => self.kinds.of_subject(id, claims.map(|c| &c.extra)),
        };
        self.revocation
            .check(id, shared, req.now_s)
            .map_err(Denial::InvalidToken)?;
        let route_name = route.map(|m| &*m.route.name);
        if let Some(scopes) = self.delegation.authorize(id, route_name)? {
            id.scopes = scopes;
        }
        if let Some(t) = &self.tenancy {
            let vars = route.map(|m| m.vars.as_slice()).unwrap_or_default();
            t.check(id.tenant.as_deref(), &t.requested(vars, path, req.headers))?;
        }
        Ok(())
    }

    /// The route's scopes, all held by the caller, or `insufficient_scope` naming them.
    pub fn scopes(route: Option<&RouteMatch<'_>>, id: &Identity) -> Result<(), Denial> {
        match route {
            Some(m) if !missing_scopes(&m.route.scopes, id).is_empty() => {
                Err(Denial::InsufficientScope(m.route.scopes.join(" ")))
            }
            _ => Ok(()),
        }
    }

    /// The route's guardrails (owner isolation, user presence, approval) for `id`.
    pub fn guardrails(
        req: &Request<'_>,
        route: Option<&RouteMatch<'_>>,
        id: &Identity,
    ) -> Result<(), Denial> {
        let Some(m) = route else {
            return Ok(());
        };
        let g = &m.route.guardrails;
        let named = g
            .owner
            .as_ref()
            .map(|o| o.requested(&m.vars, req.path, req.headers))
            .unwrap_or_default();
        g.check(id, req.now_s, &named)
    }

    /// Identity-bound rate limits: a token from every bucket that applies, or 429. On success, the
    /// `RateLimit` headers for the response.
    /// `calls`: the policies the request's MCP calls name.
    pub fn rate_limit(
        &self,
        req: &Request<'_>,
        id: &Identity,
        route: Option<&RouteMatch<'_>>,
        calls: &[String],
        shared: &dyn SharedData,
    ) -> Result<Vec<(String, String)>, Denial> {
        let Some(rl) = &self.rate_limits else {
            return Ok(Vec::new());
        };
        let route = route.map(|m| &*m.route.name);
        let outcomes = rl
            .check_calls(shared, id, route, calls, req.now_s)
            .map_err(|_| Denial::RateLimited(vec![("retry-after".into(), "1".into())]))?;
        let headers = rate_limit::headers(&outcomes);
        if outcomes.iter().all(|o| o.admitted) {
            Ok(headers)
        } else {
            Err(Denial::RateLimited(headers))
        }
    }
}
