//! Decision records read back for review (`warden report`, `entitlements`, `suggest`): one line at a
//! time (a million records stream through in constant memory per identity), the fields the reviews
//! need borrowed from the line, the review period, and the operator's labels.

use serde::Deserialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;

/// The fields of a decision record (`docs/schema/decision-record.v1.json`) a review reads; the
/// rest of the line is skipped unparsed.
#[derive(Debug, Deserialize)]
pub struct Rec<'a> {
    /// Milliseconds since the epoch.
    pub ts_ms: u64,
    /// Request id.
    #[serde(borrow, default)]
    pub request_id: Cow<'a, str>,
    /// Matched route.
    #[serde(borrow, default)]
    pub route: Option<Cow<'a, str>>,
    /// Subject.
    #[serde(borrow, default)]
    pub subject: Option<Cow<'a, str>>,
    /// Client id or API key id.
    #[serde(borrow, default)]
    pub client_id: Option<Cow<'a, str>>,
    /// `human`, `service`, `agent`.
    #[serde(borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    /// The delegation chain, current actor first.
    #[serde(borrow, default)]
    pub actors: Vec<Cow<'a, str>>,
    /// Scopes the credential grants.
    #[serde(borrow, default)]
    pub scopes: Vec<Cow<'a, str>>,
    /// Scopes the route requires.
    #[serde(borrow, default)]
    pub required_scopes: Vec<Cow<'a, str>>,
    /// `allow`, `tag`, `step_up`, `block`, `deny`.
    #[serde(borrow, default)]
    pub decision: Cow<'a, str>,
    /// Status the client got (or would have, in shadow).
    #[serde(default)]
    pub status: u16,
    /// Why.
    #[serde(borrow, default)]
    pub reason: Cow<'a, str>,
    /// `enforce` or `shadow`.
    #[serde(borrow, default)]
    pub mode: Cow<'a, str>,
    /// This request put the token in quarantine.
    #[serde(default)]
    pub quarantined: bool,
    /// Risk score.
    #[serde(default)]
    pub risk_score: Option<u8>,
    /// Factors, highest first.
    #[serde(borrow, default)]
    pub factors: Vec<RecFactor<'a>>,
    /// The model's input by name.
    #[serde(borrow, default)]
    pub risk_features: Option<BTreeMap<Cow<'a, str>, f64>>,
    /// The scoring model's id.
    #[serde(borrow, default)]
    pub model: Option<Cow<'a, str>>,
    /// The token showed a valid step-up.
    #[serde(default)]
    pub stepped_up: bool,
}

/// One factor of a record.
#[derive(Debug, Deserialize)]
pub struct RecFactor<'a> {
    /// Feature name.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// Contribution (logit units).
    #[serde(default)]
    pub contribution: f64,
}

impl Rec<'_> {
    /// Who acted, as reviews name a party: `kind:name`, the current actor of a delegation (an
    /// agent acting for a user) else the subject; `None` before a caller was proven.
    pub fn party(&self) -> Option<String> {
        let name = self.actors.first().or(self.subject.as_ref())?;
        let kind = if self.actors.is_empty() {
            self.kind.as_deref().unwrap_or("unknown")
        } else {
            "agent"
        };
        Some(format!("{kind}:{name}"))
    }

    /// The route's name, `(none)` when no route matched.
    pub fn route_name(&self) -> &str {
        self.route.as_deref().unwrap_or("(none)")
    }

    /// Refused (or, in shadow, would have been).
    pub fn refused(&self) -> bool {
        self.status >= 400
    }
}

/// Calls `each` with every record of `path` (JSON lines, `-` for standard input) whose time is in
/// `[from_ms, until_ms)`; blank lines are skipped, a line that is not a record is an error naming it.
pub fn each(
    path: &str,
    from_ms: u64,
    until_ms: u64,
    mut each: impl FnMut(&Rec<'_>),
) -> Result<u64, String> {
    let mut reader = std::io::BufReader::with_capacity(1 << 20, crate::trace::open(path)?);
    let mut line = String::new();
    let mut n = 0u64;
    let mut seen = 0u64;
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .map_err(|e| format!("cannot read {path}: {e}"))?;
        if read == 0 {
            return Ok(seen);
        }
        n += 1;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let rec: Rec<'_> = serde_json::from_str(text)
            .map_err(|e| format!("{path} line {n}: not a decision record: {e}"))?;
        if rec.ts_ms >= from_ms && rec.ts_ms < until_ms {
            seen += 1;
            each(&rec);
        }
    }
}

/// The records a review reads and its period (shared by `report`, `entitlements`, `suggest`).
#[derive(Debug, clap::Args)]
pub struct PeriodArgs {
    /// Decision records, JSON lines (`-` reads standard input).
    #[arg(value_name = "RECORDS.jsonl")]
    pub records: String,
    /// The period: records of the last `7d`, `24h`, `30m`... before `--until-ms`.
    #[arg(long, default_value = "7d")]
    pub since: String,
    /// End of the period, milliseconds since the epoch (default: now).
    #[arg(long, value_name = "MS")]
    pub until_ms: Option<u64>,
    /// The config whose routes are the entitlement catalogue (default: the routes seen).
    #[arg(long, value_name = "CONFIG")]
    pub config: Option<String>,
}

impl PeriodArgs {
    /// The period asked for.
    pub fn period(&self) -> Result<Period, String> {
        Period::parse(&self.since, self.until_ms)
    }

    /// The config's routes and their scopes, when `--config` is given.
    pub fn catalogue(&self) -> Result<Option<crate::entitlements::Catalogue>, String> {
        self.config
            .as_deref()
            .map(crate::entitlements::catalogue)
            .transpose()
    }
}

/// A review period: `--since` before `--until` (default now).
#[derive(Debug, Clone, Copy)]
pub struct Period {
    /// Start, milliseconds since the epoch (inclusive).
    pub from_ms: u64,
    /// End (exclusive).
    pub until_ms: u64,
}

impl Period {
    /// The period of `since` (`7d`, `24h`, `30m`, `90s`) ending at `until_ms` (default: now).
    pub fn parse(since: &str, until_ms: Option<u64>) -> Result<Period, String> {
        let bad =
            || format!("--since {since:?}: expected a number and a unit (d, h, m, s), e.g. 7d");
        let (digits, unit) = since.split_at(since.len().saturating_sub(1));
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let unit_ms = match unit {
            "d" => 86_400_000,
            "h" => 3_600_000,
            "m" => 60_000,
            "s" => 1_000,
            _ => return Err(bad()),
        };
        let len = n.checked_mul(unit_ms).filter(|l| *l > 0).ok_or_else(bad)?;
        let until_ms = match until_ms {
            Some(u) => u,
            None => crate::clock::now_s()?.saturating_mul(1000),
        };
        Ok(Period {
            from_ms: until_ms.saturating_sub(len),
            until_ms,
        })
    }

    /// Length in milliseconds.
    pub fn len_ms(&self) -> u64 {
        self.until_ms - self.from_ms
    }

    /// The period of the same length just before this one (drift compares against it).
    pub fn previous(&self) -> Period {
        Period {
            from_ms: self.from_ms.saturating_sub(self.len_ms()),
            until_ms: self.from_ms,
        }
    }
}

/// An operator's verdict on one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// A refusal or challenge that should not have happened.
    Fp,
    /// A refusal or challenge that was right.
    Tp,
    /// Benign traffic (whatever the decision).
    Benign,
    /// An attack (whatever the decision).
    Attack,
}

impl Label {
    /// As written in the labels file.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Fp => "fp",
            Label::Tp => "tp",
            Label::Benign => "benign",
            Label::Attack => "attack",
        }
    }
}

/// One line of a labels file: `{"request_id": "...", "label": "fp|tp|benign|attack"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelLine {
    request_id: String,
    label: Label,
}

/// Labels by request id (JSON lines; a later line for the same id wins).
pub fn labels(path: &str) -> Result<HashMap<String, Label>, String> {
    let reader = std::io::BufReader::new(crate::trace::open(path)?);
    let mut out = HashMap::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("cannot read {path}: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let l: LabelLine = serde_json::from_str(&line).map_err(|e| {
            format!(
                "{path} line {}: expected {{\"request_id\": ..., \"label\": \"fp|tp|benign|attack\"}}: {e}",
                i + 1
            )
        })?;
        out.insert(l.request_id, l.label);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_and_refuse() {
        let p = Period::parse("7d", Some(10 * 86_400_000)).ok();
        assert_eq!(
            p.map(|p| (p.from_ms, p.until_ms)),
            Some((3 * 86_400_000, 10 * 86_400_000))
        );
        let prev = p.map(|p| p.previous());
        assert_eq!(prev.map(|p| p.from_ms), Some(0));
        for bad in ["", "7", "d", "7w", "-1d", "0h"] {
            assert!(Period::parse(bad, Some(1)).is_err(), "{bad}");
        }
    }

    #[test]
    fn party_is_the_acting_agent_or_the_subject() {
        let r: Rec<'_> = serde_json::from_str(
            r#"{"ts_ms": 1, "subject": "alice", "kind": "human", "actors": ["bot-7"]}"#,
        )
        .unwrap();
        assert_eq!(r.party().as_deref(), Some("agent:bot-7"));
        let r: Rec<'_> =
            serde_json::from_str(r#"{"ts_ms": 1, "subject": "svc", "kind": "service"}"#).unwrap();
        assert_eq!(r.party().as_deref(), Some("service:svc"));
    }
}
