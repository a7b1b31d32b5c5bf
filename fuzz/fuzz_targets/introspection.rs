//! An introspection answer (RFC 7662) as the IdP sends it.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| targets::introspection(data));
