//! Verified-token cache, one per worker: a hit skips the signature, never the claim checks.

use super::{Claims, TokenError};
use lru::LruCache;
use sha2::{Digest, Sha256};
use std::num::NonZeroUsize;
use std::sync::Arc;

/// Default number of tokens remembered per worker.
pub const DEFAULT_CAPACITY: usize = 4096;

/// A bounded LRU of verified tokens, keyed by the SHA-256 of the token (never the token itself).
pub struct TokenCache {
    lru: LruCache<[u8; 32], Arc<Claims>>,
    /// Tokens refused without a local check (introspection said inactive, or the IdP was
    /// unreachable), until a time: (until_s, why). Bounded like `lru`.
    refused: LruCache<[u8; 32], (u64, TokenError)>,
    hits: u64,
    misses: u64,
    /// The providers' key generation the verified tokens were checked against.
    generation: u64,
}

/// The cache key of a token.
pub fn key_of(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    /// A cache holding at most `capacity` tokens (at least one).
    pub fn new(capacity: usize) -> TokenCache {
        let cap = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        TokenCache {
            lru: LruCache::new(cap),
            refused: LruCache::new(cap),
            hits: 0,
            misses: 0,
            generation: 0,
        }
    }

    /// The claims of a token verified before and not yet expired at `now_s` (`exp` + `skew_s`).
    pub fn get(&mut self, key: &[u8; 32], now_s: u64, skew_s: u64) -> Option<Arc<Claims>> {
        match self.lru.get(key) {
            Some(c) if now_s <= c.exp.saturating_add(skew_s) => {
                self.hits += 1;
                Some(Arc::clone(c))
            }
            Some(_) => {
                self.lru.pop(key);
                self.misses += 1;
                None
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// Forgets every verified token when the key generation moved: a key removed from a remote JWKS
    /// (rotation, or a compromised key withdrawn at the IdP) must stop working for cached tokens too.
    /// Refusals stay: they do not depend on keys.
    pub fn sync_generation(&mut self, generation: u64) {
        if generation != self.generation {
            self.lru.clear();
            self.generation = generation;
        }
    }

    /// Remembers a verified token until its `exp`.
    pub fn put(&mut self, key: [u8; 32], claims: Arc<Claims>) {
        self.lru.put(key, claims);
    }

    /// Refuses a token (`why`) until `until_s` (inclusive) without checking it again.
    pub fn refuse(&mut self, key: [u8; 32], until_s: u64, why: TokenError) {
        self.lru.pop(&key);
        self.refused.put(key, (until_s, why));
    }

    /// Why a token is refused at `now_s`, if it was refused recently.
    pub fn refused(&mut self, key: &[u8; 32], now_s: u64) -> Option<TokenError> {
        match self.refused.get(key) {
            Some((until, why)) if now_s <= *until => Some(*why),
            Some(_) => {
                self.refused.pop(key);
                None
            }
            None => None,
        }
    }

    /// Whether the cache can answer for a token at `now_s` (accepted and unexpired, or refused).
    pub fn knows(&self, key: &[u8; 32], now_s: u64) -> bool {
        self.lru.peek(key).is_some_and(|c| now_s <= c.exp)
            || self
                .refused
                .peek(key)
                .is_some_and(|(until, _)| now_s <= *until)
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.lru.len().saturating_add(self.refused.len())
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.lru.is_empty() && self.refused.is_empty()
    }

    /// (hits, misses) since creation.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::new(DEFAULT_CAPACITY)
    }
}
