//! Risk model inference, natively: `cargo bench -p warden --bench risk` (unset RUST_BACKTRACE first;
//! it slows tract down). The same call inside V8 is timed by `plugin/examples/risk_timing.rs`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use warden::risk::model::RiskModel;

fn inference(c: &mut Criterion) {
    let model = match RiskModel::embedded() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let x: Vec<f32> = (0..model.width()).map(|j| (j % 5) as f32 / 4.0).collect();
    c.bench_function("risk_model_score", |b| {
        b.iter(|| model.score(black_box(&x)))
    });
    c.bench_function("risk_model_load", |b| b.iter(RiskModel::embedded));
}

criterion_group!(benches, inference);
criterion_main!(benches);
