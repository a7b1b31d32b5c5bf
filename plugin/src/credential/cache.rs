//! Verified-token cache, one per worker: a hit skips the signature, never the claim checks.

use super::{Claims, TokenError};
use lru::LruCache;
use sha2::{Digest, Sha256};
use siphasher::sip128::{Hasher128 as _, SipHasher24};
use std::hash::Hasher as _;
use std::num::NonZeroUsize;
use std::sync::Arc;

/// Default number of tokens remembered per worker.
pub const DEFAULT_CAPACITY: usize = 4096;

/// A bounded LRU of verified tokens, keyed by a hash of the whole token (never the token itself):
/// SipHash-2-4 with a 128-bit output under a random key of this cache's own ([`TokenCache::key_of`]).
pub struct TokenCache {
    /// The key of the token hash, drawn when the cache is made; `None` (the host gave no
    /// randomness): SHA-256.
    hash_key: Option<[u8; 16]>,
    lru: LruCache<[u8; 32], Arc<Claims>>,
    /// Tokens refused without a local check until a time, (until_s, why): introspection said
    /// inactive, the IdP was unreachable, or a token first seen expired (its signature good).
    /// Bounded like `lru`.
    refused: LruCache<[u8; 32], (u64, TokenError)>,
    hits: u64,
    misses: u64,
    /// The providers' key generation the verified tokens were checked against.
    generation: u64,
}

impl TokenCache {
    /// A cache holding at most `capacity` tokens (at least one), with a fresh random hash key.
    pub fn new(capacity: usize) -> TokenCache {
        let mut key = [0u8; 16];
        let hash_key = getrandom::getrandom(&mut key).ok().map(|()| key);
        TokenCache::with_hash_key(capacity, hash_key)
    }

    /// A cache whose token hash is keyed by `hash_key` (SHA-256 when `None`).
    pub fn with_hash_key(capacity: usize, hash_key: Option<[u8; 16]>) -> TokenCache {
        let cap = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        TokenCache {
            hash_key,
            lru: LruCache::new(cap),
            refused: LruCache::new(cap),
            hits: 0,
            misses: 0,
            generation: 0,
        }
    }

    /// The cache key of a token: its whole bytes hashed by SipHash-2-4 (128-bit output) under this
    /// cache's secret random key, so a hit means the same token, as with the SHA-256 it replaces
    /// (which cost three times as much on the request path in Envoy): the key never leaves the
    /// worker, so nobody can compute, let alone aim, another token's hash. SHA-256 where the host
    /// gave no randomness.
    pub fn key_of(&self, token: &str) -> [u8; 32] {
        match &self.hash_key {
            Some(key) => {
                let mut h = SipHasher24::new_with_key(key);
                h.write(token.as_bytes());
                let mut out = [0u8; 32];
                for (o, b) in out.iter_mut().zip(h.finish128().as_bytes()) {
                    *o = b;
                }
                out
            }
            None => Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// The claims of a token verified before, expired or not: the caller's claim checks decide,
    /// with the provider's clock skew. A token past its `exp` is refused from here, however often
    /// it comes back (a client that keeps an expired token, or a replay), without its signature
    /// being checked again: it stays expired, and the entry goes like any other, by age.
    pub fn get(&mut self, key: &[u8; 32]) -> Option<Arc<Claims>> {
        match self.lru.get(key) {
            Some(c) => {
                self.hits += 1;
                Some(Arc::clone(c))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The key covers every byte of the token, differs from cache to cache (each draws its own
    /// key) and is stable within one; without randomness it is the token's SHA-256.
    #[test]
    fn keys_cover_the_whole_token_under_the_cache_s_own_key() {
        let (a, b) = (TokenCache::new(4), TokenCache::new(4));
        let token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";
        assert_eq!(a.key_of(token), a.key_of(token));
        assert_ne!(a.key_of(token), b.key_of(token));
        for i in 0..token.len() {
            let mut other = token.as_bytes().to_vec();
            other[i] ^= 1;
            let other = String::from_utf8(other).unwrap();
            assert_ne!(a.key_of(token), a.key_of(&other), "byte {i}");
        }
        assert_ne!(a.key_of(token), a.key_of(&format!("{token}x")));
        let sha: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        assert_eq!(TokenCache::with_hash_key(4, None).key_of(token), sha);
        let fixed = TokenCache::with_hash_key(4, Some([7; 16]));
        assert_eq!(
            fixed.key_of(token),
            TokenCache::with_hash_key(4, Some([7; 16])).key_of(token)
        );
    }
}
