//! A fetched JWKS document (every JWK in it) and an OIDC discovery document.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| targets::jwks(data));
