//! The revocation feed's body, stored in shared data, then a revocation check against it.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| targets::revocation_feed(data));
