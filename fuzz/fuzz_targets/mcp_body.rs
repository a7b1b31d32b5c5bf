//! A JSON-RPC request body of an MCP endpoint, and a `tools/list` answer filtered for the caller.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../targets.rs"]
mod targets;

fuzz_target!(|data: &[u8]| targets::mcp_body(data));
