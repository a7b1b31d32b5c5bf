//! A DPoP proof (RFC 9449) against a request: header, JWK thumbprint, claims, signature.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| targets::dpop(data));
