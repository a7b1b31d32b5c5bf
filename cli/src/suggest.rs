//! `warden suggest`: config snippets from evidence. `rate-limits` sizes one token-bucket policy per
//! bucket kind (subject, client, agent) from the peaks observed in decision records, with a stated
//! margin; `routes` turns an OpenAPI 3 document into `routes` (methods, path templates, the scopes of
//! its `security` requirements, `sensitivity` from the `x-warden-sensitivity` extension). With
//! `--config` the snippet is merged into that config, and the result is what `warden check` accepts.

use crate::records::{self, Rec};
use crate::Report;
use clap::{Args, Subcommand};
use openapiv3::{OpenAPI, Operation, ReferenceOr, SecurityRequirement};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use warden::Engine;

/// The OpenAPI extension naming an operation's (or a path's) sensitivity: `low`, `medium`, `high`
/// or `critical`, the values of a route's `sensitivity`.
pub const SENSITIVITY_EXTENSION: &str = "x-warden-sensitivity";

/// Config snippets from records (rate limits) or from an OpenAPI 3 document (routes).
#[derive(Debug, Subcommand)]
pub enum SuggestCommand {
    /// Rate-limit policies sized from the peaks observed in decision records.
    RateLimits(RateLimitArgs),
    /// Routes from an OpenAPI 3 document (YAML or JSON).
    Routes(RoutesArgs),
}

/// Rate-limit policies from observed peaks.
///
/// For each bucket kind (`subject`, `client`, `agent`: whose bucket a policy fills), the largest
/// number of requests one holder of that kind made in a `--window-s` window (two grids of aligned
/// windows, offset by half a window, so that a burst across a boundary is seen whole in one), counting
/// the requests the policy let through; `limit` is that peak times `1 + --margin`, rounded up.
/// Standard error states each kind's peak, who reached it, and the margin.
#[derive(Debug, Args)]
pub struct RateLimitArgs {
    /// The records and the period.
    #[command(flatten)]
    pub period: records::PeriodArgs,
    /// The window of each policy, seconds.
    #[arg(long, default_value_t = 60)]
    pub window_s: u64,
    /// Headroom above the observed peak: 0.5 is 50 % more.
    #[arg(long, default_value_t = 0.5)]
    pub margin: f64,
}

/// Routes from an OpenAPI 3 document.
///
/// One route per path and set of operations sharing scopes and sensitivity: `methods`, `path` (the
/// template, variables renamed to letters, digits and `_`), `scopes` (of the operation's `security`,
/// else the document's; with alternatives, the first: the route demands all of one), `anonymous`
/// for `security: []`, and `sensitivity` from `x-warden-sensitivity` on the operation or the path.
#[derive(Debug, Args)]
pub struct RoutesArgs {
    /// The OpenAPI 3 document (`-` reads standard input).
    #[arg(value_name = "OPENAPI")]
    pub openapi: String,
    /// Merge the routes into this config (replacing its `routes`) and print the whole config.
    #[arg(long, value_name = "CONFIG")]
    pub config: Option<String>,
}

/// Runs `suggest`.
pub fn run(cmd: &SuggestCommand) -> Result<Report, String> {
    match cmd {
        SuggestCommand::RateLimits(args) => rate_limits(args),
        SuggestCommand::Routes(args) => routes(args),
    }
}

/// Peaks of one bucket kind.
#[derive(Debug, Default)]
struct Peaks {
    /// Per holder: (window index on each grid, count in it) and the holder's peak.
    holders: HashMap<String, ([(u64, u64); 2], u64)>,
}

impl Peaks {
    fn add(&mut self, holder: &str, ts_ms: u64, window_ms: u64) {
        let h = match self.holders.get_mut(holder) {
            Some(h) => h,
            None => self.holders.entry(holder.to_owned()).or_default(),
        };
        for (grid, (index, count)) in h.0.iter_mut().enumerate() {
            let i = (ts_ms + grid as u64 * window_ms / 2) / window_ms + 1;
            if *index == i {
                *count += 1;
            } else {
                *index = i;
                *count = 1;
            }
            h.1 = h.1.max(*count);
        }
    }

    /// The holders by peak, highest first.
    fn ranked(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self
            .holders
            .iter()
            .map(|(k, h)| (k.as_str(), h.1))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }
}

fn holders<'r>(r: &'r Rec<'_>) -> [(&'static str, Option<&'r str>); 3] {
    let agent = r.actors.first().map(|a| a.as_ref()).or_else(|| {
        (r.kind.as_deref() == Some("agent"))
            .then_some(r.subject.as_deref())
            .flatten()
    });
    [
        ("subject", r.subject.as_deref()),
        ("client", r.client_id.as_deref()),
        ("agent", agent),
    ]
}

fn rate_limits(args: &RateLimitArgs) -> Result<Report, String> {
    if args.window_s == 0 {
        return Err("--window-s must be at least 1".into());
    }
    if !(args.margin >= 0.0 && args.margin <= 100.0) {
        return Err("--margin must be between 0 and 100".into());
    }
    let period = args.period.period()?;
    let window_ms = args.window_s.saturating_mul(1000);
    let mut kinds: BTreeMap<&'static str, Peaks> = BTreeMap::new();
    let n = records::each(&args.period.records, period.from_ms, period.until_ms, |r| {
        if r.refused() {
            return;
        }
        for (kind, holder) in holders(r) {
            if let Some(h) = holder {
                kinds.entry(kind).or_default().add(h, r.ts_ms, window_ms);
            }
        }
    })?;
    let mut policies = Vec::new();
    let mut notes = format!(
        "{n} records; peaks of requests let through per {} s window, limit = ceil(peak x {:.2}) \
         (margin {:.0} %):\n",
        args.window_s,
        1.0 + args.margin,
        args.margin * 100.0
    );
    for (kind, peaks) in &kinds {
        let ranked = peaks.ranked();
        let Some((top, peak)) = ranked.first() else {
            continue;
        };
        let limit = ((*peak as f64) * (1.0 + args.margin)).ceil().max(1.0) as u64;
        policies.push(json!({
            "name": format!("suggested-{kind}"), "key": kind, "limit": limit,
            "window_s": args.window_s,
        }));
        let next: Vec<String> = ranked
            .iter()
            .skip(1)
            .take(4)
            .map(|(h, p)| format!("{h} {p}"))
            .collect();
        notes.push_str(&format!(
            "  {kind}: {} holders, peak {peak} ({top}), then {}; limit {limit}\n",
            ranked.len(),
            if next.is_empty() {
                "none".into()
            } else {
                next.join(", ")
            }
        ));
    }
    if policies.is_empty() {
        return Ok(Report::failure(format!(
            "warden: no request let through in the period ({n} records): nothing to size a limit on\n"
        )));
    }
    let snippet = json!({"rate_limits": {"policies": policies}});
    let out = merged(args.period.config.as_deref(), snippet)?;
    Ok(Report {
        stdout: out,
        stderr: notes,
        code: 0,
    })
}

/// `snippet` alone, or merged into `config` (its keys replacing the config's) and checked by the
/// engine, pretty-printed.
fn merged(config: Option<&str>, snippet: Value) -> Result<String, String> {
    let doc = match config {
        None => snippet,
        Some(path) => {
            let bytes = crate::files::read_input(path)?;
            let mut doc: Map<String, Value> = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{path}: not a JSON object: {e}"))?;
            if let Value::Object(s) = snippet {
                doc.extend(s);
            }
            let doc = Value::Object(doc);
            Engine::from_json(doc.to_string().as_bytes())
                .map_err(|e| format!("the merged config does not pass `warden check`: {e}"))?;
            doc
        }
    };
    serde_json::to_string_pretty(&doc)
        .map(|s| s + "\n")
        .map_err(|e| e.to_string())
}

/// A path template with variable names the engine accepts (letters, digits, `_`).
fn template(path: &str) -> String {
    path.split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(var) => {
                    let v: String = var
                        .chars()
                        .map(|c| {
                            if c.is_ascii_alphanumeric() || c == '_' {
                                c
                            } else {
                                '_'
                            }
                        })
                        .collect();
                    format!("{{{v}}}")
                }
                None => seg.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// The sensitivity an `x-warden-sensitivity` value names, checked.
fn sensitivity(ext: Option<&Value>, at: &str) -> Result<Option<String>, String> {
    match ext {
        None => Ok(None),
        Some(Value::String(s)) if ["low", "medium", "high", "critical"].contains(&s.as_str()) => {
            Ok(Some(s.clone()))
        }
        Some(v) => Err(format!(
            "{at}: {SENSITIVITY_EXTENSION} must be low, medium, high or critical, not {v}"
        )),
    }
}

/// What a route needs of an operation: (scopes, anonymous), and a note when alternatives were cut.
fn security(
    op: &Operation,
    global: Option<&Vec<SecurityRequirement>>,
) -> (BTreeSet<String>, bool, bool) {
    match op.security.as_ref().or(global) {
        None => (BTreeSet::new(), false, false),
        Some(reqs) if reqs.is_empty() => (BTreeSet::new(), true, false),
        Some(reqs) => {
            // An empty requirement (`{}`) among alternatives makes the operation public.
            if reqs.iter().any(|r| r.is_empty()) {
                return (BTreeSet::new(), true, reqs.len() > 1);
            }
            let first = reqs
                .first()
                .map(|r| r.values().flatten().cloned().collect())
                .unwrap_or_default();
            (first, false, reqs.len() > 1)
        }
    }
}

/// What a route demands: scopes, anonymous, sensitivity.
type Needs = (Vec<String>, bool, Option<String>);

fn routes(args: &RoutesArgs) -> Result<Report, String> {
    let bytes = crate::files::read_input(&args.openapi)?;
    let spec: OpenAPI = serde_yaml_ng::from_slice(&bytes)
        .map_err(|e| format!("{}: not an OpenAPI 3 document: {e}", args.openapi))?;
    if !spec.openapi.starts_with("3.") {
        return Err(format!(
            "{}: openapi {} is not 3.x",
            args.openapi, spec.openapi
        ));
    }
    let mut notes = String::new();
    let mut routes = Vec::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    for (path, item) in spec.paths.iter() {
        let ReferenceOr::Item(item) = item else {
            notes.push_str(&format!("  {path}: a $ref path item, skipped\n"));
            continue;
        };
        let path_sens = sensitivity(item.extensions.get(SENSITIVITY_EXTENSION), path)?;
        // Operations sharing (scopes, anonymous, sensitivity) become one route.
        let mut groups: BTreeMap<Needs, Vec<(&str, &Operation)>> = BTreeMap::new();
        for (method, op) in item.iter() {
            let at = format!("{} {path}", method.to_uppercase());
            let (scopes, anonymous, cut) = security(op, spec.security.as_ref());
            if cut {
                notes.push_str(&format!(
                    "  {at}: security has alternatives; the route demands the first\n"
                ));
            }
            let sens = sensitivity(op.extensions.get(SENSITIVITY_EXTENSION), &at)?
                .or_else(|| path_sens.clone());
            groups
                .entry((scopes.into_iter().collect(), anonymous, sens))
                .or_default()
                .push((method, op));
        }
        for ((scopes, anonymous, sens), ops) in groups {
            let base = match ops.as_slice() {
                [(_, op)] if op.operation_id.is_some() => {
                    op.operation_id.clone().unwrap_or_default()
                }
                _ => {
                    let methods: Vec<&str> = ops.iter().map(|(m, _)| *m).collect();
                    format!("{} {path}", methods.join(",").to_uppercase())
                }
            };
            let mut name = base.clone();
            let mut i = 2;
            while names.contains(&name) {
                name = format!("{base}-{i}");
                i += 1;
            }
            names.insert(name.clone());
            let mut route = Map::new();
            route.insert("name".into(), json!(name));
            let methods: Vec<String> = ops.iter().map(|(m, _)| m.to_uppercase()).collect();
            route.insert("methods".into(), json!(methods));
            route.insert("path".into(), json!(template(path)));
            if anonymous {
                route.insert("anonymous".into(), json!(true));
            } else if !scopes.is_empty() {
                route.insert("scopes".into(), json!(scopes));
            }
            if let Some(s) = sens {
                route.insert("sensitivity".into(), json!(s));
            }
            routes.push(Value::Object(route));
        }
    }
    let n = routes.len();
    let out = merged(args.config.as_deref(), json!({ "routes": routes }))?;
    Ok(Report {
        stdout: out,
        stderr: format!("{n} routes from {}\n{notes}", args.openapi),
        code: 0,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn templates_keep_literals_and_clean_variables() {
        assert_eq!(
            template("/orders/{order-id}/items/{i}"),
            "/orders/{order_id}/items/{i}"
        );
    }

    #[test]
    fn peaks_see_a_burst_across_a_window_boundary() {
        let mut p = Peaks::default();
        // 10 requests from 55 s to 64 s: split 5/5 by the aligned grid, whole on the offset one.
        for s in 55..65 {
            p.add("alice", s * 1000, 60_000);
        }
        assert_eq!(p.ranked(), vec![("alice", 10)]);
    }
}
