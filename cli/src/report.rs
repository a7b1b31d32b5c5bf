//! `warden report`: the weekly review of decision records as one self-contained HTML file (inline
//! CSS and SVG charts, no script, no network; opens from disk and prints). One pass over the records
//! in constant memory per party: a million records stream through in seconds (BENCHMARKS.md).

use crate::charts::{self, Line, Part};
use crate::entitlements::Entitlements;
use crate::records::{self, Label, Period, Rec};
use crate::Report;
use clap::Args;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// Render the review of a period's decision records as one HTML file.
///
/// Sections: decisions over time by verdict; score distribution by route and by kind; top factors;
/// step-ups and blocks by route and party; in shadow, what would have been refused, by route and
/// reason; the riskiest parties with their factors; false-positive candidates (challenged, then
/// through with a step-up within `--fp-window-s`, or labelled `fp`); rate-limit hits; quarantines;
/// drift (population stability index of each feature and of the score against the previous period
/// of the same length); entitlements (scopes granted against exercised). Records are expected in
/// time order, as the gateway writes them.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The records and the period.
    #[command(flatten)]
    pub period: records::PeriodArgs,
    /// Operator labels, JSON lines: {"request_id": "...", "label": "fp|tp|benign|attack"}.
    #[arg(long, value_name = "LABELS.jsonl")]
    pub labels: Option<String>,
    /// A challenge passed with a step-up within this many seconds is a false-positive candidate.
    #[arg(long, default_value_t = 600)]
    pub fp_window_s: u64,
    /// Where to write the HTML (default: standard output).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<String>,
}

/// Score bins: 0-9, 10-19, ... 90-100.
const SCORE_BINS: usize = 10;
/// Feature bins for drift: below 0, exactly 0, then up to each edge, then above the last.
const FEATURE_EDGES: [f64; 11] = [0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0];
const FEATURE_BINS: usize = FEATURE_EDGES.len() + 3;
/// Rows of a table, at most.
const MAX_ROWS: usize = 25;
/// Bars of a chart, at most.
const MAX_BARS: usize = 15;
/// Buckets of the timeline.
const TIME_BUCKETS: u64 = 84;
/// Kept rows of lists that could grow with the traffic (quarantines, candidates).
const MAX_KEPT: usize = 1_000;

fn score_bin(s: u8) -> usize {
    (usize::from(s) / 10).min(SCORE_BINS - 1)
}

fn feature_bin(v: f64) -> usize {
    if v < 0.0 {
        0
    } else if v == 0.0 {
        1
    } else {
        2 + FEATURE_EDGES.iter().take_while(|e| v > **e).count()
    }
}

/// Population stability index of `actual` against `expected` (counts over the same bins), with
/// empty bins smoothed to half a count: 0 for identical shares; above 0.1 a moderate and above 0.25
/// a major shift, by the usual rule of thumb.
pub fn psi(expected: &[u64], actual: &[u64]) -> Option<f64> {
    let (te, ta) = (expected.iter().sum::<u64>(), actual.iter().sum::<u64>());
    if te == 0 || ta == 0 {
        return None;
    }
    let bins = expected.len() as f64;
    Some(
        expected
            .iter()
            .zip(actual)
            .map(|(&e, &a)| {
                let e = (e as f64 + 0.5) / (te as f64 + 0.5 * bins);
                let a = (a as f64 + 0.5) / (ta as f64 + 0.5 * bins);
                (a - e) * (a / e).ln()
            })
            .sum(),
    )
}

/// One party's risk.
#[derive(Debug, Default)]
struct Risky {
    scored: u64,
    score_sum: u64,
    max: u8,
    max_request: String,
    step_ups: u64,
    blocks: u64,
    factors: HashMap<String, u64>,
}

/// A challenge not yet followed by a step-up.
#[derive(Debug)]
struct Challenge {
    ts_ms: u64,
    request_id: String,
    route: String,
    score: Option<u8>,
}

/// A false-positive candidate.
#[derive(Debug)]
struct Candidate {
    ts_ms: u64,
    party: String,
    route: String,
    request_id: String,
    score: Option<u8>,
    why: String,
}

/// Everything the report shows, tallied in one pass.
#[derive(Debug, Default)]
pub struct Tally {
    period: Option<Period>,
    bucket_ms: u64,
    fp_window_ms: u64,
    labels: HashMap<String, Label>,
    /// Records in the period and in the one before.
    pub records: u64,
    previous_records: u64,
    decisions: BTreeMap<String, u64>,
    timeline: BTreeMap<String, Vec<u64>>,
    score_route: HashMap<String, [u64; SCORE_BINS]>,
    score_kind: HashMap<String, [u64; SCORE_BINS]>,
    factors: HashMap<String, (u64, f64)>,
    step_route: HashMap<String, [u64; 2]>,
    step_party: HashMap<String, [u64; 2]>,
    shadow: HashMap<(String, String), u64>,
    risky: HashMap<String, Risky>,
    pending: HashMap<String, Challenge>,
    candidates: Vec<Candidate>,
    candidate_count: u64,
    rate_route: HashMap<String, u64>,
    rate_party: HashMap<String, u64>,
    quarantines: Vec<(u64, String, String, String, Option<u8>)>,
    quarantine_count: u64,
    labelled: BTreeMap<(Label, String), u64>,
    models: BTreeMap<String, u64>,
    drift: BTreeMap<String, [[u64; FEATURE_BINS]; 2]>,
    drift_score: [[u64; SCORE_BINS]; 2],
    /// Entitlements of the period.
    pub entitlements: Entitlements,
}

impl Tally {
    /// A tally of `period` (and the previous one, for drift).
    pub fn new(period: Period, labels: HashMap<String, Label>, fp_window_s: u64) -> Tally {
        Tally {
            period: Some(period),
            bucket_ms: period.len_ms().div_ceil(TIME_BUCKETS).max(1),
            fp_window_ms: fp_window_s.saturating_mul(1000),
            labels,
            ..Tally::default()
        }
    }

    /// Counts one record of the period or the previous one.
    pub fn add(&mut self, r: &Rec<'_>) {
        let Some(period) = self.period else { return };
        let current = usize::from(r.ts_ms >= period.from_ms);
        for (name, v) in r.risk_features.iter().flatten() {
            let bins = match self.drift.get_mut(name.as_ref()) {
                Some(b) => b,
                None => self.drift.entry(name.to_string()).or_default(),
            };
            if let Some(b) = bins
                .get_mut(current)
                .and_then(|b| b.get_mut(feature_bin(*v)))
            {
                *b += 1;
            }
        }
        if let Some(s) = r.risk_score {
            if let Some(b) = self
                .drift_score
                .get_mut(current)
                .and_then(|b| b.get_mut(score_bin(s)))
            {
                *b += 1;
            }
        }
        if current == 0 {
            self.previous_records += 1;
            return;
        }
        self.records += 1;
        self.current(r, period);
        self.entitlements.add(r);
    }

    fn current(&mut self, r: &Rec<'_>, period: Period) {
        let route = r.route_name();
        let party = r.party();
        let decision = r.decision.as_ref();
        bump(&mut self.decisions, decision);
        let bucket = ((r.ts_ms - period.from_ms) / self.bucket_ms) as usize;
        let line = match self.timeline.get_mut(decision) {
            Some(l) => l,
            None => self
                .timeline
                .entry(decision.to_owned())
                .or_insert_with(|| vec![0; TIME_BUCKETS as usize + 1]),
        };
        if let Some(b) = line.get_mut(bucket) {
            *b += 1;
        }
        if let Some(m) = &r.model {
            bump(&mut self.models, m);
        }
        if let Some(s) = r.risk_score {
            let kind = r.kind.as_deref().unwrap_or("unknown");
            for (map, key) in [(&mut self.score_route, route), (&mut self.score_kind, kind)] {
                if let Some(b) = entry(map, key).get_mut(score_bin(s)) {
                    *b += 1;
                }
            }
            if let Some(p) = &party {
                let k = entry(&mut self.risky, p);
                k.scored += 1;
                k.score_sum += u64::from(s);
                if s >= k.max {
                    k.max = s;
                    k.max_request = r.request_id.to_string();
                }
                for f in &r.factors {
                    bump(&mut k.factors, &f.name);
                }
            }
        }
        for f in &r.factors {
            let e = entry(&mut self.factors, &f.name);
            e.0 += 1;
            e.1 += f.contribution;
        }
        let which = match decision {
            "step_up" => Some(0),
            "block" => Some(1),
            _ => None,
        };
        if let Some(w) = which {
            for (map, key) in [
                (&mut self.step_route, route),
                (
                    &mut self.step_party,
                    party.as_deref().unwrap_or("(unproven)"),
                ),
            ] {
                if let Some(c) = entry(map, key).get_mut(w) {
                    *c += 1;
                }
            }
            if let Some(k) = party.as_ref().and_then(|p| self.risky.get_mut(p)) {
                if w == 0 {
                    k.step_ups += 1;
                } else {
                    k.blocks += 1;
                }
            }
        }
        if r.mode == "shadow" && r.refused() {
            *self
                .shadow
                .entry((route.to_owned(), r.reason.to_string()))
                .or_default() += 1;
        }
        if r.reason == "rate_limited" {
            bump(&mut self.rate_route, route);
            bump(
                &mut self.rate_party,
                party.as_deref().unwrap_or("(unproven)"),
            );
        }
        if r.quarantined {
            self.quarantine_count += 1;
            if self.quarantines.len() < MAX_KEPT {
                self.quarantines.push((
                    r.ts_ms,
                    party.clone().unwrap_or_default(),
                    route.to_owned(),
                    r.request_id.to_string(),
                    r.risk_score,
                ));
            }
        }
        let label = self.labels.get(r.request_id.as_ref()).copied();
        if let Some(l) = label {
            *self.labelled.entry((l, decision.to_owned())).or_default() += 1;
        }
        if let Some(p) = party {
            self.false_positives(r, p, route, label);
        }
    }

    /// A challenge remembered per party; the party's next request through with a step-up within
    /// the window makes it a candidate. A record labelled `fp` is one outright.
    fn false_positives(&mut self, r: &Rec<'_>, party: String, route: &str, label: Option<Label>) {
        let mut found = |c: Candidate| {
            self.candidate_count += 1;
            if self.candidates.len() < MAX_KEPT {
                self.candidates.push(c);
            }
        };
        if label == Some(Label::Fp) {
            found(Candidate {
                ts_ms: r.ts_ms,
                party: party.clone(),
                route: route.to_owned(),
                request_id: r.request_id.to_string(),
                score: r.risk_score,
                why: "labelled fp".into(),
            });
        }
        if r.decision == "step_up" && !r.stepped_up {
            self.pending.insert(
                party,
                Challenge {
                    ts_ms: r.ts_ms,
                    request_id: r.request_id.to_string(),
                    route: route.to_owned(),
                    score: r.risk_score,
                },
            );
        } else if r.stepped_up && !r.refused() {
            if let Some(c) = self.pending.remove(&party) {
                if r.ts_ms.saturating_sub(c.ts_ms) <= self.fp_window_ms
                    && label.is_none_or(|l| l != Label::Fp)
                {
                    let secs = r.ts_ms.saturating_sub(c.ts_ms) / 1000;
                    found(Candidate {
                        ts_ms: c.ts_ms,
                        party,
                        route: c.route,
                        request_id: c.request_id,
                        score: c.score,
                        why: format!("stepped up {secs} s later"),
                    });
                }
            }
        }
    }
}

fn entry<'m, V: Default>(map: &'m mut HashMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.entry(key.to_owned()).or_default()
}

fn bump<M: CountMap>(map: &mut M, key: &str) {
    map.bump(key);
}

/// A count by name, without allocating the name for one already counted.
trait CountMap {
    fn bump(&mut self, key: &str);
}

impl CountMap for HashMap<String, u64> {
    fn bump(&mut self, key: &str) {
        match self.get_mut(key) {
            Some(c) => *c += 1,
            None => {
                self.insert(key.to_owned(), 1);
            }
        }
    }
}

impl CountMap for BTreeMap<String, u64> {
    fn bump(&mut self, key: &str) {
        match self.get_mut(key) {
            Some(c) => *c += 1,
            None => {
                self.insert(key.to_owned(), 1);
            }
        }
    }
}

/// HTML text: `& < > " '` escaped.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return "<p class=\"none\">None in this period.</p>".into();
    }
    let mut h = String::from("<table><thead><tr>");
    for c in head {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("</tr></thead><tbody>");
    for r in rows.iter().take(MAX_ROWS) {
        h.push_str("<tr>");
        for c in r {
            let _ = write!(h, "<td>{}</td>", esc(c));
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table>");
    if rows.len() > MAX_ROWS {
        let _ = write!(
            h,
            "<p class=\"more\">and {} more</p>",
            rows.len() - MAX_ROWS
        );
    }
    h
}

fn time(ms: u64) -> String {
    i64::try_from(ms / 1000)
        .ok()
        .and_then(crate::clock::utc)
        .unwrap_or_default()
}

/// The top `MAX_BARS` of `counts`, largest first.
fn top<V: Copy, K: AsRef<str>>(
    counts: impl Iterator<Item = (K, V)>,
    key: impl Fn(V) -> f64,
) -> Vec<(String, V)> {
    let mut v: Vec<(String, V)> = counts.map(|(k, c)| (k.as_ref().to_owned(), c)).collect();
    v.sort_by(|a, b| key(b.1).total_cmp(&key(a.1)).then_with(|| a.0.cmp(&b.0)));
    v.truncate(MAX_BARS);
    v
}

fn shares(bins: &[u64; SCORE_BINS]) -> Vec<(f64, f64)> {
    let total = bins.iter().sum::<u64>().max(1) as f64;
    bins.iter()
        .enumerate()
        .map(|(i, c)| (i as f64 * 10.0 + 5.0, *c as f64 / total))
        .collect()
}

impl Tally {
    /// The HTML page.
    pub fn html(
        &self,
        catalogue: Option<&crate::entitlements::Catalogue>,
    ) -> Result<String, String> {
        let period = self.period.unwrap_or(Period {
            from_ms: 0,
            until_ms: 1,
        });
        let mut s = Sections::default();

        // Summary.
        let mut summary: Vec<Vec<String>> = self
            .decisions
            .iter()
            .map(|(d, c)| vec![d.clone(), c.to_string(), pct(*c, self.records)])
            .collect();
        summary.push(vec![
            "total".into(),
            self.records.to_string(),
            "100%".into(),
        ]);
        let models: Vec<String> = self
            .models
            .iter()
            .map(|(m, c)| format!("{m} ({c})"))
            .collect();
        s.add(
            "Summary",
            &format!(
                "{} records from {} to {} (UTC); {} in the previous period of the same length. \
                 Models that scored: {}.",
                self.records,
                time(period.from_ms),
                time(period.until_ms),
                self.previous_records,
                if models.is_empty() {
                    "none".into()
                } else {
                    models.join(", ")
                }
            ),
            table(&["decision", "records", "share"], &summary),
        );

        // Decisions over time.
        let hours = self.bucket_ms as f64 / 3_600_000.0;
        let lines: Vec<Line> = self
            .timeline
            .iter()
            .map(|(d, counts)| Line {
                name: d.clone(),
                points: counts
                    .iter()
                    .take(TIME_BUCKETS as usize)
                    .enumerate()
                    .map(|(i, c)| (i as f64 * hours, *c as f64))
                    .collect(),
            })
            .collect();
        s.add(
            "Decisions over time",
            &format!(
                "Records per {:.1} h bucket by decision (in shadow: what would have happened).",
                hours
            ),
            charts::lines(
                "Decisions by verdict",
                "hours since the start of the period",
                "records",
                (0.0, TIME_BUCKETS as f64 * hours),
                &lines,
            )?,
        );

        // Score distributions.
        for (title, map, what) in [
            ("Score distribution by route", &self.score_route, "route"),
            ("Score distribution by kind", &self.score_kind, "kind"),
        ] {
            let groups = top(map.iter(), |b: &[u64; SCORE_BINS]| {
                b.iter().sum::<u64>() as f64
            });
            let lines: Vec<Line> = groups
                .iter()
                .take(7)
                .map(|(name, bins)| Line {
                    name: format!("{name} ({})", bins.iter().sum::<u64>()),
                    points: shares(bins),
                })
                .collect();
            s.add(
                title,
                &format!("Share of each {what}'s scored requests per 10-point score bin (the busiest {what}s)."),
                charts::lines(title, "risk score", "share of requests", (0.0, 100.0), &lines)?,
            );
        }

        // Top factors.
        let factors = top(
            self.factors.iter().map(|(k, v)| (k, *v)),
            |v: (u64, f64)| v.0 as f64,
        );
        let names: Vec<String> = factors.iter().map(|(n, _)| n.clone()).collect();
        s.add(
            "Top factors",
            "How often each feature was among a request's top factors, and its mean contribution.",
            format!(
                "{}{}",
                charts::bars(
                    "Requests naming the factor",
                    "requests",
                    &names,
                    &[Part {
                        name: "requests".into(),
                        values: factors.iter().map(|(_, v)| v.0 as f64).collect(),
                    }],
                )?,
                table(
                    &["factor", "requests", "mean contribution"],
                    &factors
                        .iter()
                        .map(|(n, (c, sum))| vec![
                            n.clone(),
                            c.to_string(),
                            format!("{:.3}", sum / *c as f64)
                        ])
                        .collect::<Vec<_>>(),
                )
            ),
        );

        // Step-ups and blocks.
        for (title, map) in [
            ("Step-ups and blocks by route", &self.step_route),
            ("Step-ups and blocks by party", &self.step_party),
        ] {
            let rows = top(map.iter().map(|(k, v)| (k, *v)), |v: [u64; 2]| {
                (v[0] + v[1]) as f64
            });
            let cats: Vec<String> = rows.iter().map(|(n, _)| n.clone()).collect();
            let body = if rows.is_empty() {
                table(&[], &[])
            } else {
                charts::bars(
                    title,
                    "requests",
                    &cats,
                    &[
                        Part {
                            name: "step_up".into(),
                            values: rows.iter().map(|(_, v)| v[0] as f64).collect(),
                        },
                        Part {
                            name: "block".into(),
                            values: rows.iter().map(|(_, v)| v[1] as f64).collect(),
                        },
                    ],
                )?
            };
            s.add(title, "Requests challenged for a step-up or blocked by risk (in shadow: would have been).", body);
        }

        // Shadow.
        let mut reasons: Vec<String> = self.shadow.keys().map(|(_, r)| r.clone()).collect();
        reasons.sort();
        reasons.dedup();
        let mut per_route: HashMap<&str, u64> = HashMap::new();
        for ((route, _), c) in &self.shadow {
            *per_route.entry(route.as_str()).or_default() += c;
        }
        let routes = top(per_route.into_iter(), |c: u64| c as f64);
        let cats: Vec<String> = routes.iter().map(|(r, _)| r.clone()).collect();
        let parts: Vec<Part> = reasons
            .iter()
            .map(|reason| Part {
                name: reason.clone(),
                values: cats
                    .iter()
                    .map(|r| {
                        self.shadow
                            .get(&(r.clone(), reason.clone()))
                            .copied()
                            .unwrap_or(0) as f64
                    })
                    .collect(),
            })
            .collect();
        s.add(
            "In shadow: what would have been refused",
            "Requests forwarded in shadow mode that enforcement would have refused, by route and reason.",
            if cats.is_empty() {
                table(&[], &[])
            } else {
                charts::bars("Would have been refused", "requests", &cats, &parts)?
            },
        );

        // Riskiest parties.
        let mut risky: Vec<(&String, &Risky)> = self.risky.iter().collect();
        risky.sort_by(|a, b| {
            (b.1.max, b.1.step_ups + b.1.blocks, a.0).cmp(&(
                a.1.max,
                a.1.step_ups + a.1.blocks,
                b.0,
            ))
        });
        let rows: Vec<Vec<String>> = risky
            .iter()
            .map(|(p, k)| {
                let f = top(k.factors.iter().map(|(n, c)| (n, *c)), |c: u64| c as f64);
                vec![
                    (*p).clone(),
                    k.max.to_string(),
                    format!("{:.1}", k.score_sum as f64 / k.scored.max(1) as f64),
                    k.scored.to_string(),
                    k.step_ups.to_string(),
                    k.blocks.to_string(),
                    f.iter()
                        .take(4)
                        .map(|(n, c)| format!("{n} ({c})"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    k.max_request.clone(),
                ]
            })
            .collect();
        s.add(
            "Riskiest parties",
            "By highest score, with how often each factor explained their scores.",
            table(
                &[
                    "party",
                    "max",
                    "mean",
                    "scored",
                    "step-ups",
                    "blocks",
                    "factors",
                    "request at max",
                ],
                &rows,
            ),
        );

        // False-positive candidates.
        let rows: Vec<Vec<String>> = self
            .candidates
            .iter()
            .map(|c| {
                vec![
                    time(c.ts_ms),
                    c.party.clone(),
                    c.route.clone(),
                    c.score.map(|s| s.to_string()).unwrap_or_default(),
                    c.why.clone(),
                    c.request_id.clone(),
                ]
            })
            .collect();
        let labelled: Vec<Vec<String>> = self
            .labelled
            .iter()
            .map(|((l, d), c)| vec![l.as_str().to_owned(), d.clone(), c.to_string()])
            .collect();
        s.add(
            "False-positive candidates",
            &format!(
                "{} challenges passed with a step-up within the window, or labelled fp; label them in a \
                 labels file (request id and fp|tp|benign|attack) to review and retrain.",
                self.candidate_count
            ),
            format!(
                "{}<h3>Labels by decision</h3>{}",
                table(&["challenged", "party", "route", "score", "why", "request id"], &rows),
                table(&["label", "decision", "records"], &labelled)
            ),
        );

        // Rate limits.
        let by_route = top(self.rate_route.iter().map(|(k, v)| (k, *v)), |c: u64| {
            c as f64
        });
        let by_party = top(self.rate_party.iter().map(|(k, v)| (k, *v)), |c: u64| {
            c as f64
        });
        s.add(
            "Rate-limit hits",
            "Requests refused with 429 by a rate-limit policy.",
            if by_route.is_empty() {
                table(&[], &[])
            } else {
                format!(
                    "{}{}",
                    charts::bars(
                        "Rate-limit hits by route",
                        "requests",
                        &by_route.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
                        &[Part {
                            name: "429".into(),
                            values: by_route.iter().map(|(_, c)| *c as f64).collect()
                        }],
                    )?,
                    table(
                        &["party", "hits"],
                        &by_party
                            .iter()
                            .map(|(p, c)| vec![p.clone(), c.to_string()])
                            .collect::<Vec<_>>()
                    )
                )
            },
        );

        // Quarantines.
        let rows: Vec<Vec<String>> = self
            .quarantines
            .iter()
            .map(|(ts, p, r, id, sc)| {
                vec![
                    time(*ts),
                    p.clone(),
                    r.clone(),
                    sc.map(|s| s.to_string()).unwrap_or_default(),
                    id.clone(),
                ]
            })
            .collect();
        s.add(
            "Quarantines",
            &format!(
                "{} tokens put in quarantine by a block-level score.",
                self.quarantine_count
            ),
            table(&["when", "party", "route", "score", "request id"], &rows),
        );

        // Drift.
        let mut drift: Vec<(String, f64)> = self
            .drift
            .iter()
            .filter_map(|(n, [prev, cur])| psi(prev, cur).map(|p| (n.clone(), p)))
            .collect();
        let score_psi = psi(&self.drift_score[0], &self.drift_score[1]);
        if let Some(p) = score_psi {
            drift.push(("(risk score)".into(), p));
        }
        drift.sort_by(|a, b| b.1.total_cmp(&a.1));
        s.add(
            "Drift",
            "Population stability index of each feature and of the score, this period against the \
             previous one of the same length (above 0.1: a moderate shift, above 0.25: a major one; \
             retrain or review the feature).",
            if drift.is_empty() {
                "<p class=\"none\">No scored records in one of the two periods.</p>".into()
            } else {
                format!(
                    "{}{}",
                    charts::bars(
                        "Population stability index",
                        "PSI",
                        &drift.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
                        &[Part { name: "PSI".into(), values: drift.iter().map(|(_, p)| *p).collect() }],
                    )?,
                    table(
                        &["feature", "PSI", "shift"],
                        &drift
                            .iter()
                            .map(|(n, p)| vec![n.clone(), format!("{p:.3}"), shift(*p).into()])
                            .collect::<Vec<_>>()
                    )
                )
            },
        );

        // Entitlements.
        let rows: Vec<Vec<String>> = self
            .entitlements
            .findings(catalogue)
            .into_iter()
            .map(|f| {
                vec![
                    f.party,
                    f.clients.join(" "),
                    f.granted.join(" "),
                    f.exercised.join(" "),
                    f.routes_never_used.join(" "),
                    f.recommendation,
                ]
            })
            .collect();
        s.add(
            "Entitlements",
            "Scopes granted against scopes exercised (required by a request that was let through), \
             routes the grant allows but that were never called, and the least-privilege advice.",
            table(&["party", "clients", "granted", "exercised", "never used routes", "recommendation"], &rows),
        );

        Ok(s.page(&format!(
            "Warden review {} to {}",
            time(period.from_ms),
            time(period.until_ms)
        )))
    }
}

fn pct(n: u64, of: u64) -> String {
    format!("{:.1}%", 100.0 * n as f64 / of.max(1) as f64)
}

fn shift(p: f64) -> &'static str {
    if p > 0.25 {
        "major"
    } else if p > 0.1 {
        "moderate"
    } else {
        "stable"
    }
}

/// The page's sections, in order.
#[derive(Default)]
struct Sections {
    body: String,
    toc: String,
}

impl Sections {
    fn add(&mut self, title: &str, note: &str, content: String) {
        let id: String = title
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let _ = write!(self.toc, "<li><a href=\"#{id}\">{}</a></li>", esc(title));
        let _ = write!(
            self.body,
            "<section id=\"{id}\"><h2>{}</h2><p class=\"note\">{}</p>{content}</section>",
            esc(title),
            esc(note)
        );
    }

    fn page(&self, title: &str) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{t}</title><style>{CSS}</style></head><body><h1>{t}</h1>\
             <nav><ol>{}</ol></nav>{}<footer>Generated by warden report from decision records.</footer>\
             </body></html>\n",
            self.toc,
            self.body,
            t = esc(title)
        )
    }
}

const CSS: &str = "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222;padding:0 1em}\
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}\
.note{color:#555}.none,.more{color:#777;font-style:italic}svg{max-width:100%;height:auto;display:block}\
table{border-collapse:collapse;width:100%;font-size:.85em;margin:.6em 0}\
th,td{border:1px solid #ddd;padding:.25em .45em;text-align:left;vertical-align:top;word-break:break-word}\
th{background:#f3f3f3}nav ol{columns:2}footer{margin-top:3em;color:#777;font-size:.8em}\
@media print{body{margin:0;max-width:none}nav{display:none}section{break-inside:avoid-page}\
h2{break-after:avoid}a{color:inherit;text-decoration:none}}";

/// Runs `report`.
pub fn run(args: &ReportArgs) -> Result<Report, String> {
    let period = args.period.period()?;
    let labels = match &args.labels {
        Some(p) => records::labels(p)?,
        None => HashMap::new(),
    };
    let catalogue = args.period.catalogue()?;
    let mut tally = Tally::new(period, labels, args.fp_window_s);
    let previous = period.previous();
    records::each(
        &args.period.records,
        previous.from_ms,
        period.until_ms,
        |r| tally.add(r),
    )?;
    let html = tally.html(catalogue.as_ref())?;
    let summary = format!(
        "{} records in the period ({} before it), {} false-positive candidates\n",
        tally.records, tally.previous_records, tally.candidate_count
    );
    match &args.out {
        Some(path) => {
            crate::files::write_public(std::path::Path::new(path), html.as_bytes())?;
            Ok(Report {
                stdout: String::new(),
                stderr: summary,
                code: 0,
            })
        }
        None => Ok(Report {
            stdout: html,
            stderr: summary,
            code: 0,
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn psi_is_zero_for_the_same_shares_and_grows_with_the_shift() {
        assert!(psi(&[10, 20, 30], &[20, 40, 60]).unwrap().abs() < 1e-3);
        let small = psi(&[50, 50], &[55, 45]).unwrap();
        let big = psi(&[50, 50], &[90, 10]).unwrap();
        assert!(small > 0.0 && small < 0.1 && big > 0.25, "{small} {big}");
        assert_eq!(psi(&[0, 0], &[1, 2]), None);
    }

    #[test]
    fn feature_bins_cover_every_value() {
        assert_eq!(feature_bin(-1.0), 0);
        assert_eq!(feature_bin(0.0), 1);
        assert_eq!(feature_bin(0.05), 2);
        assert_eq!(feature_bin(1.0), 6);
        assert_eq!(feature_bin(1e9), FEATURE_BINS - 1);
        assert_eq!(score_bin(100), SCORE_BINS - 1);
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(time(1_767_225_600_000), "2026-01-01T00:00:00Z");
        assert_eq!(time(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn a_challenge_passed_with_a_step_up_soon_after_is_a_candidate() {
        let p = Period {
            from_ms: 0,
            until_ms: 10_000_000,
        };
        let mut labels = HashMap::new();
        labels.insert("r9".to_owned(), Label::Fp);
        let mut t = Tally::new(p, labels, 600);
        fn rec(s: &str) -> Rec<'_> {
            serde_json::from_str(s).unwrap()
        }
        let lines = [
            r#"{"ts_ms": 1000, "request_id": "r1", "subject": "alice", "kind": "human", "route": "pay", "decision": "step_up", "status": 401, "reason": "step_up_required", "risk_score": 80}"#,
            r#"{"ts_ms": 61000, "request_id": "r2", "subject": "alice", "kind": "human", "route": "pay", "decision": "allow", "status": 200, "reason": "ok", "risk_score": 80, "stepped_up": true}"#,
            r#"{"ts_ms": 70000, "request_id": "r3", "subject": "bob", "kind": "human", "route": "pay", "decision": "step_up", "status": 401, "reason": "step_up_required"}"#,
            r#"{"ts_ms": 9000000, "request_id": "r4", "subject": "bob", "kind": "human", "route": "pay", "decision": "allow", "status": 200, "reason": "ok", "stepped_up": true}"#,
            r#"{"ts_ms": 9000001, "request_id": "r9", "subject": "carol", "kind": "human", "route": "pay", "decision": "step_up", "status": 401, "reason": "step_up_required"}"#,
        ];
        for l in lines {
            t.add(&rec(l));
        }
        let found: Vec<(&str, &str)> = t
            .candidates
            .iter()
            .map(|c| (c.request_id.as_str(), c.why.as_str()))
            .collect();
        assert_eq!(
            found,
            [("r1", "stepped up 60 s later"), ("r9", "labelled fp")]
        );
        let html = t.html(None).unwrap();
        assert!(html.contains("stepped up 60 s later") && html.contains("<svg"));
    }
}
