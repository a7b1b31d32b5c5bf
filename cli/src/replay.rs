//! `warden replay --config CONFIG TRACE.jsonl`: one decision record per trace line, from the same
//! engine and state model as the filter, on the trace's own clock (the offline contract,
//! docs/ARCHITECTURE.md). How operators tune thresholds on recorded traffic and how the model is
//! evaluated.

use crate::trace::{self, write_line};
use crate::Report;
use clap::Args;
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};

/// Replay recorded traffic through the engine: one decision line per request.
///
/// A trace line: {"ts_ms": 1767225600000, "method": "GET", "path": "/orders/7",
/// "source_ip": "203.0.113.7", "headers": {"authorization": "Bearer ...", ...}, "status": 200,
/// "response_bytes": 512}. Other fields (e.g. "label", "scenario") are copied to the decision line.
/// A decision line is the filter's decision record with the trace line's number: {"line": 1,
/// "label": 0, "ts_ms": ..., "request_id", "method", "path", "route", "subject", ..., "decision":
/// "allow|tag|throttle|step_up|suspend|block|deny", "status": 200, "reason", "mode", "risk_score": 17, "factors":
/// [{"name": "new_country", "contribution": 1.2}], ...}. A summary goes to standard error.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The config JSON file.
    #[arg(long, value_name = "CONFIG")]
    pub config: String,
    /// The trace, JSON lines (`-` reads standard input).
    #[arg(
        value_name = "TRACE.jsonl",
        required_unless_present = "audit",
        conflicts_with = "audit"
    )]
    pub trace: Option<String>,
    /// Decision records (the filter's audit lines) to decide again, instead of a trace: from the
    /// records alone (the identity as recorded, no token). Each output line is the new record with
    /// "line", "redecided" (false for a request refused before a caller was proven: printed as
    /// recorded), "was" (the recorded decision, status, reason, risk_score) and "changed".
    #[arg(long, value_name = "AUDIT.jsonl")]
    pub audit: Option<String>,
    /// What-if: score with this ONNX model instead of the config's (set as `risk.model`, checked as
    /// at load: features, operators, size). Records name the model that scored in `model`.
    #[arg(long, value_name = "MODEL.onnx")]
    pub model: Option<String>,
}

/// Runs `replay`.
pub fn run(args: &ReplayArgs) -> Result<Report, String> {
    let config = config_with_model(&args.config, args.model.as_deref())?;
    if let Some(audit) = &args.audit {
        return crate::redecide::run(&config, audit);
    }
    let input = args.trace.as_deref().unwrap_or("-");
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut total = 0u64;
    trace::run(&config, input, |line, d| {
        total += 1;
        *counts.entry(d.verdict.as_str()).or_default() += 1;
        write_line(&mut out, &line)
    })?;
    out.flush()
        .map_err(|e| format!("cannot write output: {e}"))?;
    let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    Ok(Report {
        stdout: String::new(),
        stderr: format!("replayed {total} requests: {}\n", parts.join(", ")),
        code: 0,
    })
}

/// The config document of `config` (a path, `-` for standard input), with `risk.model` set to the
/// ONNX file `model` when given: `--model` asks "what would this model have decided", and the
/// engine checks the model exactly as it checks one in a deployed config.
pub fn config_with_model(config: &str, model: Option<&str>) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let bytes = crate::files::read_input(config)?;
    let Some(model) = model else {
        return Ok(bytes);
    };
    let mut doc: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{config}: not JSON: {e}"))?;
    let onnx = crate::files::read_input(model)?;
    let risk = doc
        .get_mut("risk")
        .and_then(serde_json::Value::as_object_mut)
        .ok_or_else(|| {
            format!("--model needs a config with a `risk` section ({config} has none)")
        })?;
    risk.insert(
        "model".into(),
        base64::engine::general_purpose::STANDARD
            .encode(onnx)
            .into(),
    );
    serde_json::to_vec(&doc).map_err(|e| e.to_string())
}
