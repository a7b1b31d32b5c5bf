//! Times the embedded risk model where the filter runs it: built for wasm32-wasip1 and run under
//! V8 (`node model/wasm_timing.js`), or natively. Prints one JSON line: load time and the median and
//! 99th percentile of `RiskModel::score` over many calls.
//!
//! `cargo build --release --target wasm32-wasip1 -p warden --example risk_timing`

use std::time::Instant;
use warden::risk::model::RiskModel;

fn main() {
    let started = Instant::now();
    let model = match RiskModel::embedded() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let load_us = started.elapsed().as_secs_f64() * 1e6;
    // Varied inputs, so nothing is constant-folded across calls.
    let inputs: Vec<Vec<f32>> = (0..64u16)
        .map(|i| {
            (0..model.width())
                .map(|j| f32::from((i * 7 + j as u16 * 3) % 13) / 4.0)
                .collect()
        })
        .collect();
    let mut sink = 0f32;
    for x in inputs.iter().cycle().take(2_000) {
        sink += model.score(x).map(|o| o.probability).unwrap_or(0.0);
    }
    // Batches of 100 calls: the WASI clock's resolution is coarse under some hosts.
    let mut per_call_ns: Vec<f64> = Vec::with_capacity(500);
    for batch in 0..500usize {
        let t = Instant::now();
        for k in 0..100usize {
            let x = inputs
                .get((batch + k) % inputs.len())
                .map_or(&[][..], |v| &v[..]);
            sink += model.score(x).map(|o| o.probability).unwrap_or(0.0);
        }
        per_call_ns.push(t.elapsed().as_secs_f64() * 1e9 / 100.0);
    }
    per_call_ns.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((per_call_ns.len() as f64 - 1.0) * q).round() as usize;
        per_call_ns.get(i).copied().unwrap_or(f64::NAN)
    };
    println!(
        "{{\"target\": \"{}\", \"load_us\": {:.0}, \"score_median_ns\": {:.0}, \"score_p99_ns\": {:.0}, \"calls\": 50000, \"checksum\": {:.3}}}",
        std::env::consts::ARCH,
        load_us,
        at(0.5),
        at(0.99),
        sink
    );
}
