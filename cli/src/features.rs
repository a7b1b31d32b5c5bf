//! `warden features --config CONFIG TRACE.jsonl`: the model's training data, computed by the same
//! engine, state model and feature code as the filter (never a copy in another language).

use crate::trace::{self, round4, write_line};
use crate::Report;
use clap::Args;
use serde_json::{json, Value};
use std::io::{BufWriter, Write};
use warden::risk::features::Feature;

/// Export the risk features of recorded traffic, one JSON line per trace line.
///
/// The first output line is a header: {"feature_names": [...], "feature_docs": [...]}. Then, for
/// each trace line: {"line": N, "features": [f32 ...] in feature_names order, or null when the
/// request was refused before the risk stage (no or invalid credential, missing scope)} plus the
/// same fields as `warden replay`: the decision record and every trace field the engine does not
/// read (e.g. "label", "scenario"). The state evolves exactly as in `warden replay`.
#[derive(Debug, Args)]
pub struct FeaturesArgs {
    /// The config JSON file (must have a `risk` section).
    #[arg(long, value_name = "CONFIG")]
    pub config: String,
    /// The trace, JSON lines (`-` reads standard input).
    #[arg(value_name = "TRACE.jsonl")]
    pub trace: String,
}

/// Runs `features`.
pub fn run(args: &FeaturesArgs) -> Result<Report, String> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let docs: Vec<&str> = Feature::ALL.into_iter().map(Feature::doc).collect();
    write_line(
        &mut out,
        &json!({"feature_names": Feature::NAMES, "feature_docs": docs}),
    )?;
    let mut total = 0u64;
    let mut scored = 0u64;
    let config = crate::files::read_input(&args.config)?;
    trace::run(&config, &args.trace, |mut line, d| {
        total += 1;
        let features = match &d.risk {
            Some(a) => {
                scored += 1;
                Value::Array(a.features.iter().map(|v| round4(*v)).collect())
            }
            None => Value::Null,
        };
        line.features = Some(features);
        write_line(&mut out, &line)
    })?;
    out.flush()
        .map_err(|e| format!("cannot write output: {e}"))?;
    if scored == 0 && total > 0 {
        return Ok(Report::failure(
            "warden: no request reached the risk stage: does the config have a `risk` section?\n"
                .into(),
        ));
    }
    Ok(Report {
        stdout: String::new(),
        stderr: format!("{total} requests, {scored} with features\n"),
        code: 0,
    })
}
