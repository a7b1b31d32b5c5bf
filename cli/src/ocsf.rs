//! `warden ocsf AUDIT.jsonl`: decision records as OCSF API Activity events (class 6003), one JSON
//! line each, for SIEMs that normalise on OCSF. The mapping is the engine's (`warden::audit::ocsf`).

use crate::Report;
use clap::Args;
use serde_json::Value;
use std::io::{BufRead, BufReader, BufWriter, Write};

/// Convert decision records (JSON lines, `-` for standard input) to OCSF API Activity events.
#[derive(Debug, Args)]
pub struct OcsfArgs {
    /// The decision records, JSON lines (`-` reads standard input).
    #[arg(value_name = "AUDIT.jsonl")]
    pub audit: String,
}

/// Runs `ocsf`.
pub fn run(args: &OcsfArgs) -> Result<Report, String> {
    let reader = crate::trace::open(&args.audit)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut n = 0u64;
    for (i, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(|e| format!("cannot read {}: {e}", args.audit))?;
        if line.trim().is_empty() {
            continue;
        }
        let rec: Value =
            serde_json::from_str(&line).map_err(|e| format!("record line {}: {e}", i + 1))?;
        crate::trace::write_line(&mut out, &warden::audit::ocsf::event(&rec))?;
        n += 1;
    }
    out.flush()
        .map_err(|e| format!("cannot write output: {e}"))?;
    Ok(Report {
        stdout: String::new(),
        stderr: format!("{n} events\n"),
        code: 0,
    })
}
