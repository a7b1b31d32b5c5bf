//! `warden token ...`: keys, minting and inspection of JWT access tokens.

pub mod inspect;
pub mod keygen;
pub mod keys;
pub mod mint;

use warden::config::Algorithm;

/// Parses an `alg` name exactly as it appears in a JWS header.
pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    Algorithm::from_name(name).ok_or_else(|| {
        let all: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
        format!("unsupported algorithm; one of {}", all.join(", "))
    })
}
