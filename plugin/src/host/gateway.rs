//! The gateway-dependent host reads, over the pure decisions in [`crate::gateway`]: which gateway
//! this is (found once per worker at configure time), the client address, the client certificate's
//! digest, and the outcome of an outbound call.
//!
//! The SDK's `get_property` and `get_map_bytes` panic (trap) on a status other than Ok, NotFound,
//! SerializationFailure and InternalFailure; the properties read here answer one of those on both
//! Envoy and Kong (see kong/README.md).

use crate::gateway::{
    self, ClientAddress, DispatchError, ForeignError, ForeignFunctions, HostKind, HostLogLevel,
    HostRules, PeerCertError, Properties,
};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{MapType, Status};
use std::cell::Cell;

/// Properties as this host answers them.
pub struct HostProperties;

impl Properties for HostProperties {
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        hostcalls::get_property(path.to_vec()).ok().flatten()
    }

    /// Anything but NotFound: Envoy answers a map such as `xds` with SerializationFailure.
    fn answers(&self, path: &[&str]) -> bool {
        !matches!(hostcalls::get_property(path.to_vec()), Ok(None))
    }
}

/// The host's foreign functions. Call only where `HostRules::foreign_functions` holds: the SDK's
/// `call_foreign_function` panics on a status other than Ok, NotFound, BadArgument,
/// SerializationFailure and InternalFailure, and ngx_wasm_module traps on any call.
pub struct HostForeign;

impl ForeignFunctions for HostForeign {
    fn call(&self, name: &str, args: &[u8]) -> Result<Vec<u8>, ForeignError> {
        match hostcalls::call_foreign_function(name, Some(args)) {
            Ok(answer) => Ok(answer.unwrap_or_default()),
            Err(Status::NotFound) => Err(ForeignError::NotFound),
            Err(Status::BadArgument) => Err(ForeignError::BadArgument),
            Err(_) => Err(ForeignError::Failed),
        }
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    // The SDK's binding writes the answer into its `LogLevel` enum, which Envoy's `off` (6) is not:
    // read it as the number it is.
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
}

/// The host's log level, read as a number. Only through `logs_info` (ngx_wasm_module traps).
struct HostLog;

impl HostLogLevel for HostLog {
    #[allow(unsafe_code)]
    fn log_level(&self) -> Option<u32> {
        let mut level = 0u32;
        // SAFETY: the host writes one u32 through the pointer, which outlives the call.
        let status = unsafe { proxy_get_log_level(&mut level) };
        (status == Status::Ok as u32).then_some(level)
    }
}

/// Whether a line logged at info reaches this host's log now (asked per request: Envoy's level
/// can change at run time).
pub fn logs_info() -> bool {
    let rules = HostRules::of(kind());
    gateway::logs_info(rules, &HostLog)
}

thread_local! {
    static KIND: Cell<Option<HostKind>> = const { Cell::new(None) };
}

/// Finds out which gateway this is and remembers it for the worker (call from `on_configure`).
pub fn detect() -> HostKind {
    let kind = gateway::detect(&HostProperties);
    KIND.with(|k| k.set(Some(kind)));
    kind
}

/// Which gateway this is (detected at configure time; detected now if it was not).
pub fn kind() -> HostKind {
    KIND.with(|k| k.get()).unwrap_or_else(detect)
}

/// The client's address as the gateway saw the connection (`source.address`, or `ngx.remote_addr`).
pub fn client_address() -> Option<ClientAddress> {
    gateway::client_address(&HostProperties)
}

/// SHA-256 of the client certificate; on Kong always "unavailable on this gateway", so a
/// certificate-bound token is refused there rather than let through unchecked.
pub fn peer_certificate_sha256() -> Result<Option<[u8; 32]>, PeerCertError> {
    gateway::peer_certificate_sha256(kind(), &HostProperties)
}

/// The HTTP status of the outbound call being answered (`on_http_call_response`), or why there is
/// none (Kong reports connection failures in the `:dispatch_status` pseudo-header). Each header is
/// read by name: a host may not list pseudo-headers among the pairs.
pub fn call_outcome() -> Result<u16, DispatchError> {
    let headers: Vec<(String, Vec<u8>)> = [":status", ":dispatch_status"]
        .into_iter()
        .filter_map(|name| {
            hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, name)
                .ok()
                .flatten()
                .map(|v| (name.to_owned(), v))
        })
        .collect();
    gateway::dispatch_outcome(&headers)
}
