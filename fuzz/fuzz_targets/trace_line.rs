//! A trace line of `warden replay`, decided by the engine, and the decision record line it writes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warden::shared::{CasRule, MemoryStore};
use warden::{Env, TokenCache};

#[path = "../common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../../cli/src/files.rs"]
mod files;
#[allow(dead_code)]
#[path = "../../cli/src/trace.rs"]
mod trace;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(line) = trace::parse_line(1, text) else {
        return;
    };
    let req = line.request();
    let store = MemoryStore::new(CasRule::Envoy);
    let mut cache = TokenCache::new(4);
    let engine = common::engine();
    let mut env = Env {
        cache: &mut cache,
        shared: &store,
        clock_us: &|| 0,
    };
    let decision = engine.decide(&req, &mut env);
    engine.observe_response(&decision, line.status.unwrap_or(200), 0, req.now_s, &store);
    let record =
        warden::audit::AuditRecord::new(&req, &decision, line.ts_ms, 0, engine.recorded_claims());
    let _ = serde_json::to_string(&record);
});
