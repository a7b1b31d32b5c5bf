//! `warden check CONFIG`: the engine's own parser and compiler decide; this only reports.

use crate::files::read_input;
use crate::Report;
use clap::Args;
use warden::{Config, Engine};

/// Validate a config document with the engine's own parser.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The config JSON file (`-` reads standard input).
    #[arg(value_name = "CONFIG")]
    pub config: String,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Runs `check`.
pub fn run(args: &CheckArgs) -> Result<Report, String> {
    let bytes = read_input(&args.config)?;
    let engine = match Engine::from_json(&bytes) {
        Ok(engine) => engine,
        Err(e) => return Ok(Report::failure(format!("{e}\n"))),
    };
    // Counts as written; the engine accepted this exact document just above.
    let config = match Config::from_json(&bytes) {
        Ok(config) => config,
        Err(e) => return Ok(Report::failure(format!("{e}\n"))),
    };
    let providers: Vec<String> = engine
        .providers()
        .iter()
        .map(|p| {
            if p.remote.is_some() || p.introspection.is_some() {
                // Keys arrive at run time: say where from, and what they may serve.
                // Shared secrets are never taken from a fetched key set.
                let algs: Vec<&str> = p
                    .allowed()
                    .iter()
                    .filter(|a| !a.name().starts_with("HS"))
                    .map(|a| a.name())
                    .collect();
                let mut how = Vec::new();
                if p.remote.is_some() {
                    how.push(format!("remote keys, {}", algs.join(" ")));
                }
                if p.introspection.is_some() {
                    how.push("introspection".to_owned());
                }
                return format!("{}: {}", p.name, how.join(", "));
            }
            let algs: Vec<&str> = p.algorithms().iter().map(|a| a.name()).collect();
            format!("{}: {}", p.name, algs.join(" "))
        })
        .collect();
    let keys: usize = config
        .providers
        .iter()
        .map(|p| p.jwks.as_ref().map_or(0, |j| j.keys.len()))
        .sum();
    let api_keys = config.api_keys.as_ref().map_or(0, |k| k.keys.len());
    let mode = config.mode.as_str();
    let mut line = format!(
        "config ok: {}",
        plural(config.providers.len(), "provider", "providers")
    );
    if !providers.is_empty() {
        line.push_str(&format!(" ({})", providers.join("; ")));
    }
    line.push_str(&format!(
        ", {}, {}, {}, mode {mode}\n",
        plural(keys, "key", "keys"),
        plural(config.routes.len(), "route", "routes"),
        plural(api_keys, "api key", "api keys"),
    ));
    Ok(Report::success(line))
}
