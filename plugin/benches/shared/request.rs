//! The request every engine benchmark sends: `make bench`'s `GET /tenants/acme/orders/42` as wrk
//! sends it to Envoy, with the token as a bearer credential. Shared by `benches/engine.rs` and
//! `examples/engine_timing.rs` (the same request under criterion and under a Wasm runtime).

/// The request headers for `token`, addressed to `authority`, plus any `extra` ones.
pub fn headers(authority: &str, token: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    [
        (":authority", authority),
        (":path", "/tenants/acme/orders/42"),
        (":method", "GET"),
        (":scheme", "http"),
        ("user-agent", "wrk"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "5f0c6a1e-7d3b-4c1a-9a7e-0b9d1c2e3f40"),
    ]
    .iter()
    .chain(extra)
    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
    .chain([("authorization".to_owned(), format!("Bearer {token}"))])
    .collect()
}
