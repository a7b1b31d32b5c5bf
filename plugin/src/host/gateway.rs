//! The gateway-dependent host reads, over the pure decisions in [`crate::gateway`]: which gateway
//! this is (found once per worker at configure time), the properties (the request path reads the
//! client address and certificate digest through them), and the outcome of an outbound call.
//!
//! The SDK's `get_property` and `get_map_bytes` panic (trap) on a status other than Ok, NotFound,
//! SerializationFailure and InternalFailure; the properties read here answer one of those on both
//! Envoy and Kong (see kong/README.md).

use crate::gateway::{self, DispatchError, ForeignError, ForeignFunctions, HostKind, Properties};
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
        let answer = super::stages::nested(super::stages::Stage::Verify, || {
            hostcalls::call_foreign_function(name, Some(args))
        });
        match answer {
            Ok(answer) => Ok(answer.unwrap_or_default()),
            Err(Status::NotFound) => Err(ForeignError::NotFound),
            Err(Status::BadArgument) => Err(ForeignError::BadArgument),
            Err(_) => Err(ForeignError::Failed),
        }
    }
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
