//! `warden`: the command line of the Warden engine.
//!
//! Every verdict comes from the engine crate itself (`Engine::from_json`, `Engine::verify_token`),
//! so the CLI and the filter can never disagree about a config or a token.

mod charts;
mod check;
mod clock;
mod entitlements;
mod features;
mod files;
/// The engines the fuzz targets use (their corpus is replayed by unit tests).
#[cfg(test)]
#[path = "../../fuzz/common/mod.rs"]
mod fuzz_common;
mod ocsf;
mod records;
mod redecide;
mod replay;
mod report;
mod schema;
mod suggest;
mod token;
mod trace;

use clap::{Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;

const EXIT_STATUS: &str = "\
Exit status:
  0  success (config valid, token valid)
  1  error: invalid config, unreadable input, bad usage
  2  `token inspect --config`: the engine refuses the token";

/// Warden: check configs, replay traffic, export risk features, and generate keys for, mint and
/// inspect access tokens.
#[derive(Debug, Parser)]
#[command(name = "warden", version, after_help = EXIT_STATUS)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a config with the engine's own parser; print a summary or the offending field.
    Check(check::CheckArgs),
    /// Print the config's JSON Schema as Kong's filter metadata (`kong/warden.meta.json`).
    Schema(schema::SchemaArgs),
    /// Replay recorded traffic through the engine: one JSON decision line per request.
    Replay(replay::ReplayArgs),
    /// Export the risk features of recorded traffic (the model's training data).
    Features(features::FeaturesArgs),
    /// Convert decision records to OCSF API Activity events (class 6003).
    Ocsf(ocsf::OcsfArgs),
    /// Review a period of decision records: one self-contained HTML file with charts.
    Report(Box<report::ReportArgs>),
    /// Scopes granted against scopes exercised, per client, agent and service account.
    Entitlements(entitlements::EntitlementsArgs),
    /// Config snippets: rate limits from observed peaks, routes from an OpenAPI 3 document.
    #[command(subcommand)]
    Suggest(suggest::SuggestCommand),
    /// Keys and tokens for development and tests.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    Keygen(token::keygen::KeygenArgs),
    Mint(Box<token::mint::MintArgs>),
    Inspect(token::inspect::InspectArgs),
}

/// What a command prints and how it exits.
pub struct Report {
    /// For standard output.
    pub stdout: String,
    /// For standard error.
    pub stderr: String,
    /// Exit status.
    pub code: u8,
}

impl Report {
    /// Success, printing `stdout`.
    pub fn success(stdout: String) -> Report {
        Report {
            stdout,
            stderr: String::new(),
            code: 0,
        }
    }

    /// Failure (exit 1), printing `stderr`.
    pub fn failure(stderr: String) -> Report {
        Report {
            stdout: String::new(),
            stderr,
            code: 1,
        }
    }
}

fn run(cli: &Cli) -> Result<Report, String> {
    match &cli.command {
        Command::Check(args) => check::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Features(args) => features::run(args),
        Command::Ocsf(args) => ocsf::run(args),
        Command::Report(args) => report::run(args),
        Command::Entitlements(args) => entitlements::run(args),
        Command::Suggest(cmd) => suggest::run(cmd),
        Command::Token(TokenCommand::Keygen(args)) => token::keygen::run(args),
        Command::Token(TokenCommand::Mint(args)) => token::mint::run(args),
        Command::Token(TokenCommand::Inspect(args)) => token::inspect::run(args),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version are not errors. Usage errors exit 1, keeping 2 for "token invalid".
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let report = match run(&cli) {
        Ok(report) => report,
        Err(message) => Report::failure(format!("warden: {message}\n")),
    };
    let mut code = report.code;
    if !report.stdout.is_empty() {
        let mut out = std::io::stdout().lock();
        if out
            .write_all(report.stdout.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            code = code.max(1);
        }
    }
    if !report.stderr.is_empty() {
        let _ = std::io::stderr().write_all(report.stderr.as_bytes());
    }
    ExitCode::from(code)
}
