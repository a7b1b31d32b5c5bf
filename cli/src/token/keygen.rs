//! `warden token keygen`: a new signing key as a private JWK and a public JWKS.

use super::keys::{self, RSA_BITS};
use super::parse_algorithm;
use crate::files::{write_private, write_public};
use crate::Report;
use clap::Args;
use std::path::PathBuf;
use warden::config::Algorithm;

/// Generate a signing key: a private JWK (mode 0600) and the public JWKS to put in a config.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Algorithm the key is bound to (ES256, ES384, EdDSA, RS256..512, PS256..512, HS256..512).
    #[arg(long, value_parser = parse_algorithm)]
    pub alg: Algorithm,
    /// Key id, written into both JWKs and later into the `kid` header of minted tokens.
    #[arg(long)]
    pub kid: String,
    /// Where to write the private JWK (created with mode 0600).
    #[arg(long, value_name = "FILE")]
    pub private: PathBuf,
    /// Where to write the public JWKS (`{"keys": [...]}`); for HMAC it holds the secret itself.
    #[arg(long, value_name = "FILE")]
    pub jwks: PathBuf,
    /// RSA modulus size in bits (2048, 3072 or 4096); ignored for other key types.
    #[arg(long, default_value_t = 2048)]
    pub bits: usize,
}

fn pretty(v: &serde_json::Value) -> Result<Vec<u8>, String> {
    let mut out = serde_json::to_vec_pretty(v).map_err(|e| e.to_string())?;
    out.push(b'\n');
    Ok(out)
}

/// Runs `token keygen`.
pub fn run(args: &KeygenArgs) -> Result<Report, String> {
    if args.kid.is_empty() {
        return Err("--kid must not be empty".into());
    }
    if !RSA_BITS.contains(&args.bits) {
        return Err(format!(
            "--bits {} is not supported: use 2048, 3072 or 4096",
            args.bits
        ));
    }
    if args.private == args.jwks {
        return Err("--private and --jwks must be different files".into());
    }
    let generated = keys::generate(args.alg, &args.kid, args.bits)?;
    let jwks = serde_json::json!({ "keys": [generated.public] });
    write_private(&args.private, &pretty(&generated.private)?)?;
    write_public(&args.jwks, &pretty(&jwks)?)?;
    let mut out = format!(
        "generated {} key `{}`\n  private JWK: {} (mode 0600)\n  public JWKS: {}\n",
        args.alg.name(),
        args.kid,
        args.private.display(),
        args.jwks.display()
    );
    if matches!(
        args.alg,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    ) {
        out.push_str("  note: an HMAC key is a shared secret: the JWKS holds the key itself\n");
    }
    Ok(Report::success(out))
}
