//! `warden token mint`: a signed access token from a private JWK, for demos and tests.

use super::keys;
use super::parse_algorithm;
use crate::clock;
use crate::files::read_input;
use crate::Report;
use clap::Args;
use jwt_simple::prelude::{Audiences, JWTClaims, UnixTimeStamp};
use serde_json::{Map, Value};
use std::collections::HashSet;
use warden::config::Algorithm;

/// Claims set by their own options; `--claim` may not set them.
const REGISTERED: [(&str, &str); 8] = [
    ("iss", "--iss"),
    ("sub", "--sub"),
    ("aud", "--aud"),
    ("exp", "--expires-in"),
    ("nbf", "--not-before-in"),
    ("iat", "--now"),
    ("jti", "--jti"),
    ("nonce", "no option: jwt-simple owns it"),
];

/// Sign a token with a private JWK and print it (compact JWS) on standard output.
#[derive(Debug, Args)]
pub struct MintArgs {
    /// The private JWK file, as written by `warden token keygen` (`-` reads standard input).
    #[arg(long, value_name = "PRIVATE_JWK_FILE")]
    pub key: String,
    /// Signing algorithm; default: the key's `alg`.
    #[arg(long, value_parser = parse_algorithm)]
    pub alg: Option<Algorithm>,
    /// `kid` header; default: the key's `kid`.
    #[arg(long, conflicts_with = "no_kid")]
    pub kid: Option<String>,
    /// Send no `kid` header at all.
    #[arg(long)]
    pub no_kid: bool,
    /// `iss` claim.
    #[arg(long)]
    pub iss: String,
    /// `aud` claim; repeat for several (one gives a string, several an array).
    #[arg(long, required = true)]
    pub aud: Vec<String>,
    /// `sub` claim.
    #[arg(long)]
    pub sub: String,
    /// `scope` claim, space-separated: --scope "orders:read orders:write".
    #[arg(long)]
    pub scope: Option<String>,
    /// `tenant` claim.
    #[arg(long)]
    pub tenant: Option<String>,
    /// `client_id` claim.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Seconds from now to `exp`; negative mints an already expired token.
    #[arg(
        long,
        default_value_t = 3600,
        allow_negative_numbers = true,
        value_name = "SECS"
    )]
    pub expires_in: i64,
    /// Seconds from now to `nbf` (no `nbf` claim unless given); may be negative.
    #[arg(long, allow_negative_numbers = true, value_name = "SECS")]
    pub not_before_in: Option<i64>,
    /// `jti` claim.
    #[arg(long)]
    pub jti: Option<String>,
    /// `typ` header.
    #[arg(long, default_value = "at+jwt")]
    pub typ: String,
    /// Any other claim, its value as JSON: --claim 'act={"sub":"agent-7"}' --claim 'acr="2"'.
    #[arg(long, value_name = "NAME=JSON")]
    pub claim: Vec<String>,
    /// Take this as the current time (Unix seconds) instead of the clock: `iat` is now.
    #[arg(long, value_name = "UNIX_SECS")]
    pub now: Option<u64>,
}

fn at(now: u64, offset: i64, option: &str) -> Result<UnixTimeStamp, String> {
    i64::try_from(now)
        .ok()
        .and_then(|n| n.checked_add(offset))
        .and_then(|t| u64::try_from(t).ok())
        .map(UnixTimeStamp::from_secs)
        .ok_or_else(|| format!("{option} {offset} puts the time before 1970"))
}

/// The custom claims: the dedicated options first, then each `--claim`.
fn custom_claims(args: &MintArgs) -> Result<Map<String, Value>, String> {
    let mut custom = Map::new();
    let named = [
        ("scope", "--scope", &args.scope),
        ("tenant", "--tenant", &args.tenant),
        ("client_id", "--client-id", &args.client_id),
    ];
    for (name, _, value) in named {
        if let Some(v) = value {
            custom.insert(name.to_owned(), Value::String(v.clone()));
        }
    }
    for raw in &args.claim {
        let (name, json) = raw
            .split_once('=')
            .ok_or_else(|| format!("--claim {raw:?}: expected NAME=JSON"))?;
        if name.is_empty() {
            return Err(format!("--claim {raw:?}: the claim name is empty"));
        }
        if let Some((_, option)) = REGISTERED.iter().find(|(n, _)| *n == name) {
            return Err(format!("--claim {name}: set `{name}` with {option}"));
        }
        if let Some((_, option, _)) = named.iter().find(|(n, _, v)| *n == name && v.is_some()) {
            return Err(format!(
                "--claim {name}: `{name}` is already set by {option}"
            ));
        }
        let value: Value = serde_json::from_str(json).map_err(|e| {
            format!(
                "--claim {name}: the value is not JSON ({e}); quote strings: --claim '{name}=\"text\"'"
            )
        })?;
        if custom.insert(name.to_owned(), value).is_some() {
            return Err(format!("--claim {name}: given twice"));
        }
    }
    Ok(custom)
}

/// Runs `token mint`.
pub fn run(args: &MintArgs) -> Result<Report, String> {
    let custom = custom_claims(args)?;
    let key_path = if args.key == "-" {
        "standard input"
    } else {
        args.key.as_str()
    };
    let jwk: Map<String, Value> = serde_json::from_slice(&read_input(&args.key)?)
        .map_err(|e| format!("{key_path}: not a JWK (JSON object): {e}"))?;
    let alg = match args.alg {
        Some(alg) => alg,
        None => keys::jwk_algorithm(&jwk).map_err(|e| format!("{key_path}: {e}"))?,
    };
    let jwk_kid = jwk.get("kid").and_then(Value::as_str);
    let kid = match (&args.kid, args.no_kid) {
        (_, true) => None,
        (Some(kid), false) => Some(kid.as_str()),
        (None, false) => jwk_kid,
    };
    let key = keys::load(&jwk, alg, kid).map_err(|e| format!("{key_path}: {e}"))?;

    let now = match args.now {
        Some(now) => now,
        None => clock::now_s()?,
    };
    let audiences = match args.aud.as_slice() {
        [one] => Audiences::AsString(one.clone()),
        many => Audiences::AsSet(many.iter().cloned().collect::<HashSet<String>>()),
    };
    let claims = JWTClaims {
        issued_at: Some(UnixTimeStamp::from_secs(now)),
        expires_at: Some(at(now, args.expires_in, "--expires-in")?),
        invalid_before: args
            .not_before_in
            .map(|s| at(now, s, "--not-before-in"))
            .transpose()?,
        issuer: Some(args.iss.clone()),
        subject: Some(args.sub.clone()),
        audiences: Some(audiences),
        jwt_id: args.jti.clone(),
        nonce: None,
        custom,
    };
    let token = key.sign(claims, &args.typ)?;
    Ok(Report::success(format!("{token}\n")))
}
