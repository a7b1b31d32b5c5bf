//! Warden: inline authentication and authorization for API gateways.
//!
//! The engine is sans-IO: [`decision::Engine::step`] takes the request facts, the time and the
//! worker's token cache as values and returns a [`decision::Step`]: the [`decision::Decision`], or
//! what the adapter must fetch first. The proxy-wasm adapter in `host` (compiled for wasm32 only)
//! is the one piece that talks to Envoy or Kong.
#![deny(missing_docs)]

pub mod alerts;
pub mod audit;
pub mod authz;
pub mod config;
pub mod credential;
pub mod decision;
pub mod exchange;
pub mod feed;
pub mod gateway;
pub mod mcp;
pub mod metrics;
pub mod outbound;
pub mod reply;
pub mod risk;
pub mod schedule;
pub mod shared;
pub mod slot;
pub mod upstream;

#[cfg(target_arch = "wasm32")]
mod host;

pub use config::{Config, ConfigError, Mode};
pub use credential::cache::TokenCache;
pub use decision::{Body, Decision, Engine, Env, Progress, Request, Step, Verdict};
