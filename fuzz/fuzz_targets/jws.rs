//! A compact JWS (header, payload, signature) as a bearer token: verification never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| targets::jws(data));
