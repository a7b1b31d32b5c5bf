//! The fuzz corpus and every kept crash (`fuzz/regressions/<target>/`), replayed through the fuzz
//! targets' own functions (`fuzz/targets.rs`) on the stable toolchain: a crash once found stays fixed.
//! The fuzzing itself is `make fuzz` (cargo-fuzz, libFuzzer).

#[path = "../../fuzz/targets.rs"]
mod targets;

use std::path::Path;

/// Runs every file of the target's corpus and regressions through `run`; the count replayed.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries.flatten() {
            if let Ok(data) = std::fs::read(entry.path()) {
                run(&data);
                n += 1;
            }
        }
    }
    n
}

macro_rules! replays {
    ($($name:ident),*) => {$(
        #[test]
        fn $name() {
            assert!(replay(stringify!($name), targets::$name) > 0, "no corpus for {}", stringify!($name));
        }
    )*};
}

replays!(
    config,
    jws,
    jwks,
    dpop,
    introspection,
    revocation_feed,
    route_path,
    cidr,
    state_record,
    mcp_body
);

/// The `state_record` corpus holds a record of each current layout (`fuzz/seed_corpus.py` writes
/// them), so the round trip is fuzzed from a record that decodes: a layout change needs new seeds.
#[test]
fn the_state_record_corpus_holds_current_records() {
    use warden::risk::state::{IdentityState, SourceState};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/state_record");
    let seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect();
    for record in [
        IdentityState::fresh(42, 0).encode(),
        SourceState::fresh(42, 0).encode(),
    ] {
        assert!(seeds.contains(&record), "no seed {record:02x?}");
    }
}
