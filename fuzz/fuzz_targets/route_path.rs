//! A route template (first line) and a request path (the rest): compiling, normalising, matching,
//! and a whole request through the engine's routing and tenancy.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| targets::route_path(data));
