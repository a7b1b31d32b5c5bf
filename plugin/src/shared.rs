//! State shared by every worker of the gateway (proxy-wasm shared data), seen through a small trait so
//! that what lives there (risk state, rate limits, revocation, keys) is tested natively against stores
//! that behave like Envoy's and like Kong's.
//!
//! The one write rule correct on both hosts: write with the cas you read, 0 when the key did not exist.
//! Envoy ignores a cas of 0 and refuses any other stale one; Kong (ngx_wasm_module) requires the exact
//! current cas, and 0 for a key that does not exist yet. Shared data never expires, so every user of this
//! module must keep its key space bounded (fixed keys, or keys recycled by time bucket or slot).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;

/// Largest value [`update`] will write, in bytes: shared records are small, fixed-size ones.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Why a shared-data call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedError {
    /// Another worker wrote the key since it was read.
    CasMismatch,
    /// Still a cas mismatch after every attempt [`update`] was allowed.
    Contended,
    /// A value larger than [`MAX_VALUE_BYTES`].
    TooLarge,
    /// The host refused the call (its status, for logs).
    Host(String),
}

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SharedError::CasMismatch => f.write_str("shared data: cas mismatch"),
            SharedError::Contended => f.write_str("shared data: still contended after retries"),
            SharedError::TooLarge => f.write_str("shared data: value too large"),
            SharedError::Host(s) => write!(f, "shared data: host error: {s}"),
        }
    }
}

impl std::error::Error for SharedError {}

/// Key-value data shared by all workers, with compare-and-set.
pub trait SharedData {
    /// The value and its cas; `(None, 0)` when the key does not exist.
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), SharedError>;
    /// Writes `value` if `cas` is still the key's current cas (0: the key must not exist yet).
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SharedError>;
}

/// Read-modify-write of one key with compare-and-set, retried up to `attempts` times on a cas mismatch.
///
/// `f` sees the current value (`None` when absent) and returns the value to write (`None`: write
/// nothing) and a result for the caller. It may run several times, so it must be pure.
pub fn update<S, T, F>(store: &S, key: &str, attempts: u32, mut f: F) -> Result<T, SharedError>
where
    S: SharedData + ?Sized,
    F: FnMut(Option<&[u8]>) -> (Option<Vec<u8>>, T),
{
    for _ in 0..attempts.max(1) {
        let (current, cas) = store.get(key)?;
        let (next, out) = f(current.as_deref());
        let Some(next) = next else {
            return Ok(out);
        };
        if next.len() > MAX_VALUE_BYTES {
            return Err(SharedError::TooLarge);
        }
        match store.set(key, &next, cas) {
            Ok(()) => return Ok(out),
            Err(SharedError::CasMismatch) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(SharedError::Contended)
}

/// Which host's cas rule a [`MemoryStore`] follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasRule {
    /// Envoy: cas 0 writes unconditionally; a new key takes any cas.
    Envoy,
    /// Kong (ngx_wasm_module): the exact current cas, 0 for a new key.
    Kong,
}

/// An in-memory [`SharedData`] with a host's cas rule: the CLI's state, and the test double of a host.
#[derive(Debug)]
pub struct MemoryStore {
    rule: CasRule,
    next_cas: Cell<u32>,
    map: RefCell<HashMap<String, (Vec<u8>, u32)>>,
}

impl MemoryStore {
    /// An empty store following `rule`.
    pub fn new(rule: CasRule) -> MemoryStore {
        MemoryStore {
            rule,
            next_cas: Cell::new(0),
            map: RefCell::new(HashMap::new()),
        }
    }

    /// Number of keys held (for tests that prove a key space is bounded).
    pub fn len(&self) -> usize {
        self.map.borrow().len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.map.borrow().is_empty()
    }

    /// The keys held, sorted (for tests of where records land).
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.map.borrow().keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Total bytes of keys and values held.
    pub fn bytes(&self) -> usize {
        self.map
            .borrow()
            .iter()
            .map(|(k, (v, _))| k.len().saturating_add(v.len()))
            .sum()
    }

    fn bump(&self) -> u32 {
        // Never 0: 0 means "no cas" to Envoy and "new key" to Kong.
        let n = self.next_cas.get().wrapping_add(1).max(1);
        self.next_cas.set(n);
        n
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(CasRule::Kong)
    }
}

impl SharedData for MemoryStore {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), SharedError> {
        Ok(match self.map.borrow().get(key) {
            Some((v, cas)) => (Some(v.clone()), *cas),
            None => (None, 0),
        })
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SharedError> {
        let current = self.map.borrow().get(key).map(|(_, c)| *c);
        let ok = match (self.rule, current) {
            (CasRule::Envoy, None) => true,
            (CasRule::Envoy, Some(c)) => cas == 0 || cas == c,
            (CasRule::Kong, None) => cas == 0,
            (CasRule::Kong, Some(c)) => cas == c,
        };
        if !ok {
            return Err(SharedError::CasMismatch);
        }
        let next = self.bump();
        self.map
            .borrow_mut()
            .insert(key.to_owned(), (value.to_vec(), next));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(store: &dyn SharedData) -> u64 {
        update(store, "n", 4, |cur| {
            let n = cur
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
                .unwrap_or(0)
                + 1;
            (Some(n.to_le_bytes().to_vec()), n)
        })
        .unwrap()
    }

    #[test]
    fn update_counts_under_both_rules() {
        for rule in [CasRule::Envoy, CasRule::Kong] {
            let s = MemoryStore::new(rule);
            for want in 1..=5 {
                assert_eq!(incr(&s), want, "{rule:?}");
            }
            assert_eq!(s.len(), 1);
        }
    }

    #[test]
    fn kong_refuses_a_nonzero_cas_for_a_new_key_and_a_stale_cas() {
        let s = MemoryStore::new(CasRule::Kong);
        assert_eq!(s.set("k", b"a", 7), Err(SharedError::CasMismatch));
        s.set("k", b"a", 0).unwrap();
        let (_, cas) = s.get("k").unwrap();
        assert_eq!(s.set("k", b"b", 0), Err(SharedError::CasMismatch));
        s.set("k", b"b", cas).unwrap();
        assert_eq!(s.set("k", b"c", cas), Err(SharedError::CasMismatch));
    }

    #[test]
    fn envoy_takes_cas_zero_unconditionally_but_refuses_a_stale_one() {
        let s = MemoryStore::new(CasRule::Envoy);
        s.set("k", b"a", 9).unwrap();
        let (_, cas) = s.get("k").unwrap();
        s.set("k", b"b", cas).unwrap();
        assert_eq!(s.set("k", b"c", cas), Err(SharedError::CasMismatch));
        s.set("k", b"c", 0).unwrap();
    }

    /// A store whose first `n` writes lose a race to another worker.
    struct Racy {
        inner: MemoryStore,
        lose: Cell<u32>,
    }
    impl SharedData for Racy {
        fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), SharedError> {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SharedError> {
            if self.lose.get() > 0 {
                self.lose.set(self.lose.get() - 1);
                // The other worker's write lands first.
                let (_, c) = self.inner.get(key)?;
                self.inner.set(key, &1u64.to_le_bytes(), c)?;
            }
            self.inner.set(key, value, cas)
        }
    }

    #[test]
    fn update_retries_a_lost_race_and_gives_up_when_contended() {
        let s = Racy {
            inner: MemoryStore::new(CasRule::Kong),
            lose: Cell::new(1),
        };
        // First attempt loses (the racer wrote 1), the retry sees 1 and writes 2.
        assert_eq!(incr(&s), 2);
        s.lose.set(10);
        assert_eq!(
            update(&s, "n", 3, |_| (Some(vec![0]), ())),
            Err(SharedError::Contended)
        );
    }
}
