//! A trace line of `warden replay`, decided by the engine, and the decision record line it writes.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../../cli/src/files.rs"]
mod files;
#[allow(dead_code)]
#[path = "../../cli/src/trace.rs"]
mod trace;

fuzz_target!(|data: &[u8]| trace::exercise(common::engine(), data));
