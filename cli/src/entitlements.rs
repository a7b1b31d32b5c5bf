//! `warden entitlements`: per client, agent and service account (and user), the scopes its
//! credentials were granted against the scopes it exercised (those the routes and tools it was let
//! through required) over a period, the routes it could call but never did, and a least-privilege
//! recommendation. Also a section of `warden report`.

use crate::records::{self, Rec};
use crate::Report;
use clap::Args;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use warden::config::Config;

/// Scopes granted against scopes exercised, per client, agent and service account.
///
/// Prints one JSON line per party (`kind:name`, the current actor of a delegation, else the
/// subject): {"party", "kind", "clients", "requests", "granted", "exercised", "unused_scopes",
/// "routes_used", "routes_never_used", "recommendation"}. A scope is exercised when a request the
/// policy let through (in shadow: would have) required it. The route catalogue is the config's
/// (`--config`) or, without one, the routes seen in the records with the scopes they required.
#[derive(Debug, Args)]
pub struct EntitlementsArgs {
    /// The records, the period and the route catalogue.
    #[command(flatten)]
    pub period: records::PeriodArgs,
}

/// Routes by name and the scopes each requires.
pub type Catalogue = BTreeMap<String, BTreeSet<String>>;

/// One party's use of its grant.
#[derive(Debug, Default)]
struct Use {
    kind: String,
    clients: BTreeSet<String>,
    requests: u64,
    granted: BTreeSet<String>,
    exercised: BTreeSet<String>,
    routes: BTreeSet<String>,
}

/// Entitlements over a stream of records.
#[derive(Debug, Default)]
pub struct Entitlements {
    parties: HashMap<String, Use>,
    /// Routes seen, with the scopes they required.
    seen_routes: Catalogue,
}

/// One party's finding.
#[derive(Debug)]
pub struct Finding {
    /// `kind:name`.
    pub party: String,
    /// `human`, `service`, `agent`.
    pub kind: String,
    /// Client ids seen.
    pub clients: Vec<String>,
    /// Requests in the period.
    pub requests: u64,
    /// Scopes granted (any credential it used).
    pub granted: Vec<String>,
    /// Scopes a request it was let through required.
    pub exercised: Vec<String>,
    /// Granted, never exercised.
    pub unused: Vec<String>,
    /// Routes it called.
    pub routes_used: Vec<String>,
    /// Routes its grant allows that it never called.
    pub routes_never_used: Vec<String>,
    /// The least-privilege advice.
    pub recommendation: String,
}

impl Entitlements {
    /// Counts one record.
    pub fn add(&mut self, r: &Rec<'_>) {
        let Some(party) = r.party() else { return };
        if let Some(route) = &r.route {
            self.seen_routes
                .entry(route.to_string())
                .or_default()
                .extend(r.required_scopes.iter().map(|s| s.to_string()));
        }
        let u = self.parties.entry(party).or_default();
        if u.kind.is_empty() {
            u.kind = party_kind(r).to_owned();
        }
        u.requests += 1;
        if let Some(c) = &r.client_id {
            if !u.clients.contains(c.as_ref()) {
                u.clients.insert(c.to_string());
            }
        }
        for s in &r.scopes {
            if !u.granted.contains(s.as_ref()) {
                u.granted.insert(s.to_string());
            }
        }
        if !r.refused() {
            for s in &r.required_scopes {
                if !u.exercised.contains(s.as_ref()) {
                    u.exercised.insert(s.to_string());
                }
            }
            if let Some(route) = &r.route {
                if !u.routes.contains(route.as_ref()) {
                    u.routes.insert(route.to_string());
                }
            }
        }
    }

    /// The findings, parties with unused scopes first, then by requests; `catalogue` is the routes
    /// and the scopes each requires (`None`: the routes seen).
    pub fn findings(&self, catalogue: Option<&Catalogue>) -> Vec<Finding> {
        let catalogue = catalogue.unwrap_or(&self.seen_routes);
        let mut out: Vec<Finding> = self
            .parties
            .iter()
            .map(|(party, u)| {
                let unused: Vec<String> = u.granted.difference(&u.exercised).cloned().collect();
                let never: Vec<String> = catalogue
                    .iter()
                    .filter(|(name, needs)| {
                        !needs.is_empty() && needs.is_subset(&u.granted) && !u.routes.contains(*name)
                    })
                    .map(|(name, _)| name.clone())
                    .collect();
                let recommendation = if unused.is_empty() {
                    "least privilege: every granted scope was exercised".to_owned()
                } else if u.exercised.is_empty() {
                    "no scope exercised in the period: review whether the credential is still needed"
                        .to_owned()
                } else {
                    format!(
                        "grant only [{}]; drop [{}]",
                        u.exercised.iter().cloned().collect::<Vec<_>>().join(" "),
                        unused.join(" ")
                    )
                };
                Finding {
                    party: party.clone(),
                    kind: u.kind.clone(),
                    clients: u.clients.iter().cloned().collect(),
                    requests: u.requests,
                    granted: u.granted.iter().cloned().collect(),
                    exercised: u.exercised.iter().cloned().collect(),
                    unused,
                    routes_used: u.routes.iter().cloned().collect(),
                    routes_never_used: never,
                    recommendation,
                }
            })
            .collect();
        out.sort_by(|a, b| {
            (b.unused.len(), b.requests, &a.party).cmp(&(a.unused.len(), a.requests, &b.party))
        });
        out
    }
}

fn party_kind<'r>(r: &'r Rec<'_>) -> &'r str {
    if r.actors.is_empty() {
        r.kind.as_deref().unwrap_or("unknown")
    } else {
        "agent"
    }
}

/// The routes of a config and the scopes each requires (anonymous routes require none).
pub fn catalogue(config: &str) -> Result<Catalogue, String> {
    let c = Config::from_json(&crate::files::read_input(config)?).map_err(|e| e.to_string())?;
    Ok(c.routes
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let name = r.name.clone().unwrap_or_else(|| format!("route-{i}"));
            let scopes = if r.anonymous {
                BTreeSet::new()
            } else {
                r.scopes.iter().cloned().collect()
            };
            (name, scopes)
        })
        .collect())
}

/// Runs `entitlements`.
pub fn run(args: &EntitlementsArgs) -> Result<Report, String> {
    let period = args.period.period()?;
    let catalogue = args.period.catalogue()?;
    let mut e = Entitlements::default();
    let n = records::each(&args.period.records, period.from_ms, period.until_ms, |r| {
        e.add(r)
    })?;
    let findings = e.findings(catalogue.as_ref());
    let mut out = String::new();
    for f in &findings {
        let line = json!({
            "party": f.party, "kind": f.kind, "clients": f.clients, "requests": f.requests,
            "granted": f.granted, "exercised": f.exercised, "unused_scopes": f.unused,
            "routes_used": f.routes_used, "routes_never_used": f.routes_never_used,
            "recommendation": f.recommendation,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    let over = findings.iter().filter(|f| !f.unused.is_empty()).count();
    Ok(Report {
        stdout: out,
        stderr: format!(
            "{n} records, {} parties, {over} with scopes granted but never exercised\n",
            findings.len()
        ),
        code: 0,
    })
}
