//! Keyed slots: where an identity's or an address's record lives in shared data (rate-limit buckets,
//! risk state). The slot is a SipHash-1-3 of the name under a per-deployment 128-bit key, so a client
//! cannot pick a name that lands in a victim's slot offline; the same hash is stored in the record,
//! so two names that do share a slot reset it instead of mixing their counts.
//!
//! The key is drawn once per deployment and kept in shared data ([`KEY_NAME`]): the first worker to
//! configure sets it with compare-and-set, the others (and every later config) read it, so all
//! workers agree and a config change keeps the state.

use crate::shared::{SharedData, SharedError};
use siphasher::sip::SipHasher13;
use std::hash::Hasher;

/// The shared-data key holding the slot key (16 bytes).
pub const KEY_NAME: &str = "warden:slot-key";

/// The per-deployment key of slot hashes.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotKey([u8; 16]);

impl std::fmt::Debug for SlotKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SlotKey(..)")
    }
}

impl SlotKey {
    /// A key from its bytes.
    pub fn new(bytes: [u8; 16]) -> SlotKey {
        SlotKey(bytes)
    }

    /// The keyed 64-bit hash of `bytes` in `domain` (one domain per kind of record).
    pub fn hash(&self, domain: u8, bytes: &[u8]) -> u64 {
        self.hash_parts(domain, [bytes])
    }

    /// [`SlotKey::hash`] of the bytes of `parts` one after the other, without joining them.
    pub fn hash_parts<'p>(&self, domain: u8, parts: impl IntoIterator<Item = &'p [u8]>) -> u64 {
        let mut h = SipHasher13::new_with_key(&self.0);
        h.write_u8(domain);
        for part in parts {
            h.write(part);
        }
        h.finish()
    }

    /// The deployment's key: the one in `store`, or `fresh` (random bytes) set there first. When two
    /// workers race, the compare-and-set lets one win and the other reads the winner's.
    pub fn shared(store: &dyn SharedData, fresh: [u8; 16]) -> Result<SlotKey, SharedError> {
        for _ in 0..4 {
            let (value, cas) = store.get(KEY_NAME)?;
            if let Some(v) = value {
                if let Ok(bytes) = <[u8; 16]>::try_from(v.as_slice()) {
                    return Ok(SlotKey(bytes));
                }
            }
            match store.set(KEY_NAME, &fresh, cas) {
                Ok(()) => return Ok(SlotKey(fresh)),
                Err(SharedError::CasMismatch) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(SharedError::Contended)
    }

    /// 16 random bytes from the host (WASI `random_get` in the filter).
    pub fn random() -> Result<[u8; 16], getrandom::Error> {
        let mut b = [0u8; 16];
        getrandom::getrandom(&mut b)?;
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::{CasRule, MemoryStore};

    #[test]
    fn every_worker_gets_the_first_key_set() {
        for rule in [CasRule::Envoy, CasRule::Kong] {
            let store = MemoryStore::new(rule);
            let a = SlotKey::shared(&store, [1; 16]).unwrap();
            let b = SlotKey::shared(&store, [2; 16]).unwrap();
            assert_eq!(a, SlotKey::new([1; 16]));
            assert_eq!(b, a);
        }
    }

    #[test]
    fn the_hash_depends_on_key_and_domain() {
        let (a, b) = (SlotKey::new([1; 16]), SlotKey::new([2; 16]));
        assert_ne!(a.hash(b'i', b"alice"), b.hash(b'i', b"alice"));
        assert_ne!(a.hash(b'i', b"alice"), a.hash(b's', b"alice"));
        assert_eq!(a.hash(b'i', b"alice"), a.hash(b'i', b"alice"));
        // In parts, the hash of the joined bytes.
        let parts: [&[u8]; 4] = [b"sub:", b"corp", b"", b"\0alice, a long name"];
        assert_eq!(
            a.hash_parts(b'i', parts),
            a.hash(b'i', b"sub:corp\0alice, a long name")
        );
        assert_ne!(SlotKey::random().unwrap(), SlotKey::random().unwrap());
    }
}
