//! Behavioural records as read back from shared data (another version's, or corrupt): decoding
//! never panics, and what decodes encodes back to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| targets::state_record(data));
