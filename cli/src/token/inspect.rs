//! `warden token inspect`: show what a token says and, with a config, what the engine says of it.
//!
//! Decoding here is for display only. The verdict comes from `Engine::verify_token`, the same call
//! the filter makes; no check is repeated or approximated in this file.

use crate::clock;
use crate::files::read_input;
use crate::Report;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use clap::Args;
use serde_json::Value;
use std::fmt::Write as _;
use warden::{Engine, TokenCache};

/// Decode a token; with --config, verify it with the engine (exit 0 valid, 2 invalid).
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The compact JWT (`-` reads standard input).
    #[arg(value_name = "TOKEN")]
    pub token: String,
    /// Verify against this config with the engine (`-` reads standard input).
    #[arg(long, value_name = "CONFIG")]
    pub config: Option<String>,
    /// Take this as the current time (Unix seconds) instead of the clock.
    #[arg(long, value_name = "UNIX_SECS")]
    pub now: Option<u64>,
}

/// A token taken apart for display.
struct Decoded {
    header: Value,
    payload: Payload,
    signature_bytes: usize,
}

enum Payload {
    Json(Value),
    Text(String),
    Binary(usize),
}

fn b64(part: &str, what: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| format!("the {what} is not base64url: {e}"))
}

fn decode(token: &str) -> Result<Decoded, String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        return Err(match parts.len() {
            5 => "5 parts: an encrypted token (JWE), which cannot be inspected".to_owned(),
            1 => "no `.`: not a compact JWT".to_owned(),
            n => format!("{n} parts; a compact JWT has 3 (header.payload.signature)"),
        });
    };
    let header: Value = serde_json::from_slice(&b64(header, "header")?)
        .map_err(|e| format!("the header is not JSON: {e}"))?;
    let payload_bytes = b64(payload, "payload")?;
    let payload = match serde_json::from_slice::<Value>(&payload_bytes) {
        Ok(v) => Payload::Json(v),
        Err(_) => match String::from_utf8(payload_bytes) {
            Ok(text) => Payload::Text(text),
            Err(e) => Payload::Binary(e.into_bytes().len()),
        },
    };
    let signature_bytes = b64(signature, "signature")?.len();
    Ok(Decoded {
        header,
        payload,
        signature_bytes,
    })
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// A NumericDate as whole seconds, if it is one.
fn numeric_date(v: &Value) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    let f = v.as_f64()?;
    // Saturating float-to-int; a fractional date is shown by its whole second.
    (f.is_finite() && f.abs() < 1e15).then(|| f.floor() as i64)
}

fn render_times(out: &mut String, claims: &serde_json::Map<String, Value>, now: u64) {
    let now_i = i64::try_from(now).unwrap_or(i64::MAX);
    let present: Vec<(&str, &Value)> = ["iat", "nbf", "exp"]
        .into_iter()
        .filter_map(|name| claims.get(name).map(|v| (name, v)))
        .collect();
    let _ = writeln!(
        out,
        "times (now {} = {now}):",
        clock::utc(now_i).unwrap_or_else(|| "?".into())
    );
    if present.is_empty() {
        let _ = writeln!(out, "  no iat, nbf or exp claim");
        return;
    }
    for (name, value) in &present {
        match numeric_date(value) {
            Some(t) => {
                let _ = writeln!(
                    out,
                    "  {name}  {t:<11} {:<21} {}",
                    clock::utc(t).unwrap_or_else(|| "(out of range)".into()),
                    clock::relative(name, t, now_i)
                );
            }
            None => {
                let _ = writeln!(out, "  {name}  {value} (not a NumericDate)");
            }
        }
    }
    let date = |name: &str| claims.get(name).and_then(numeric_date);
    if let (Some(iat), Some(exp)) = (date("iat"), date("exp")) {
        if exp >= iat {
            let _ = writeln!(
                out,
                "  lifetime (exp - iat): {}",
                clock::span(exp.abs_diff(iat))
            );
        }
    }
}

fn render(d: &Decoded, now: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "header:\n{}", pretty(&d.header));
    match &d.payload {
        Payload::Json(v) => {
            let _ = writeln!(out, "payload:\n{}", pretty(v));
        }
        Payload::Text(t) => {
            let _ = writeln!(out, "payload (not JSON):\n{t}");
        }
        Payload::Binary(n) => {
            let _ = writeln!(out, "payload: {n} bytes, neither JSON nor text");
        }
    }
    let _ = writeln!(out, "signature: {} bytes", d.signature_bytes);
    if let Payload::Json(Value::Object(claims)) = &d.payload {
        render_times(&mut out, claims, now);
    }
    out
}

/// Runs `token inspect`.
pub fn run(args: &InspectArgs) -> Result<Report, String> {
    if args.token == "-" && args.config.as_deref() == Some("-") {
        return Err("the token and the config cannot both come from standard input".into());
    }
    // The config first: a config that does not load is an error, not a verdict on the token.
    let engine = match &args.config {
        Some(path) => {
            let bytes = read_input(path)?;
            Some(Engine::from_json(&bytes).map_err(|e| format!("{path}: {e}"))?)
        }
        None => None,
    };
    let raw = read_token(&args.token)?;
    let token = raw.trim();
    if token.is_empty() {
        return Err("the token is empty".into());
    }
    let now = match args.now {
        Some(now) => now,
        None => clock::now_s()?,
    };

    let mut report = Report::success(String::new());
    match decode(token) {
        Ok(d) => report.stdout = render(&d, now),
        Err(e) => {
            report.stderr = format!("warden: cannot decode the token: {e}\n");
            report.code = 1;
        }
    }
    if let Some(engine) = engine {
        let mut cache = TokenCache::new(1);
        match engine.verify_token(token, now, &mut cache) {
            Ok(verified) => {
                let claims = verified.claims;
                let out = &mut report.stdout;
                let _ = writeln!(out, "verdict: valid");
                let _ = writeln!(out, "  provider: {}", claims.provider);
                let _ = writeln!(out, "  subject: {}", claims.subject);
                if let Some(client) = &claims.client {
                    let _ = writeln!(out, "  client: {client}");
                }
                if let Some(tenant) = &claims.tenant {
                    let _ = writeln!(out, "  tenant: {tenant}");
                }
                let scopes = match claims.scopes.as_slice() {
                    [] => "(none)".to_owned(),
                    s => s.join(" "),
                };
                let _ = writeln!(out, "  scopes: {scopes}");
                report.code = 0;
            }
            Err(e) => {
                let _ = writeln!(report.stdout, "verdict: invalid ({})", e.as_str());
                report.code = 2;
            }
        }
    }
    Ok(report)
}

fn read_token(arg: &str) -> Result<String, String> {
    if arg != "-" {
        return Ok(arg.to_owned());
    }
    String::from_utf8(read_input("-")?).map_err(|_| "the token is not UTF-8 text".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwe_and_garbage_are_named() {
        assert!(decode("a.b.c.d.e").err().unwrap().contains("JWE"));
        assert!(decode("abc").err().unwrap().contains("not a compact JWT"));
        assert!(decode("a.b").err().unwrap().contains("2 parts"));
        assert!(decode("!!.e30.AA").err().unwrap().contains("header"));
    }

    #[test]
    fn numeric_dates() {
        assert_eq!(
            numeric_date(&serde_json::json!(1767225600)),
            Some(1767225600)
        );
        assert_eq!(
            numeric_date(&serde_json::json!(1767225600.9)),
            Some(1767225600)
        );
        assert_eq!(numeric_date(&serde_json::json!("1767225600")), None);
        assert_eq!(numeric_date(&serde_json::json!(1e300)), None);
    }
}
