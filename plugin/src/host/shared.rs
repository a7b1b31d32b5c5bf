//! [`SharedData`] over proxy-wasm shared data (Envoy and Kong).

use crate::gateway::InZone;
use crate::shared::{SharedData, SharedError};
use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

/// The host's shared data, visible to every worker of this plugin's VM id. Keys are namespaced into
/// the `warden` zone ([`InZone`]): Kong keeps them in `shm_kv warden` and traps without it.
pub struct HostShared;

impl SharedData for HostShared {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), SharedError> {
        InZone(Raw).get(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SharedError> {
        InZone(Raw).set(key, value, cas)
    }
}

/// The host calls themselves, keys as given.
struct Raw;

impl SharedData for Raw {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), SharedError> {
        match hostcalls::get_shared_data(key) {
            Ok((value, cas)) => Ok((value, cas.unwrap_or(0))),
            Err(Status::NotFound) => Ok((None, 0)),
            Err(s) => Err(SharedError::Host(format!("{s:?}"))),
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SharedError> {
        // Always pass the cas we read (0 for a new key): Kong requires it, Envoy honours it.
        match hostcalls::set_shared_data(key, Some(value), Some(cas)) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(SharedError::CasMismatch),
            Err(s) => Err(SharedError::Host(format!("{s:?}"))),
        }
    }
}
