//! A CIDR (`risk.deny_cidrs`), and membership of the addresses the input also reads as.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| targets::cidr(data));
