//! The credential stage: the one credential a request carries (bearer or DPoP token, API key),
//! proven against the configured providers, keys and DPoP policy. [`Credentials`] holds what a
//! config says about credentials; the pipeline asks it once per request.

use super::api_key::ApiKeyStore;
use super::cache::TokenCache;
use super::dpop::{self, DpopError, DpopPolicy, ProofTarget};
use super::extract::{self, ExtractError, Presented};
use super::introspection::{self, Outcome};
use super::jwt::{self, Provider};
use super::mtls;
use super::native::Signatures;
use super::{Claims, Identity, TokenError};
use crate::config::{Config, ConfigError};
use crate::decision::{Draft, Request};
use crate::outbound::{Call, HostKind};
use crate::reply::Denial;
use crate::shared::SharedData;
use std::sync::Arc;

/// The compiled providers, API keys and DPoP policy of a config.
pub struct Credentials {
    providers: Vec<Provider>,
    api_keys: Option<ApiKeyStore>,
    dpop: DpopPolicy,
    /// Who checks the providers' signatures (the host where it can), and how many each did.
    signatures: Arc<Signatures>,
}

/// A token's claims, and whether the worker's verified-token cache answered (for the audit).
#[derive(Debug, Clone)]
pub struct Verified {
    /// The verified claims.
    pub claims: Arc<Claims>,
    /// Whether they came from the cache (claim checks re-run) rather than a signature check.
    pub cache_hit: bool,
}

/// A refused token and the provider answerable for it (its issuer's, or the introspecting one for an
/// opaque token), found while verifying: the caller never parses the token again to learn it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// Why.
    pub why: TokenError,
    /// Index of the provider in [`Credentials::providers`], when one is answerable.
    pub provider: Option<usize>,
}

/// An opaque token to introspect before the request can be decided: the call to make, and what
/// [`Credentials::introspected`] needs to record the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspection {
    /// The call to dispatch (the request waits for its answer).
    pub call: Call,
    provider: usize,
    token: String,
}

impl Credentials {
    /// Compiles the credential sections of `c` (providers, API keys, DPoP); the error names the
    /// offending field.
    pub fn compile(c: &Config) -> Result<Credentials, ConfigError> {
        let mut providers = Vec::with_capacity(c.providers.len());
        for (i, p) in c.providers.iter().enumerate() {
            let provider = Provider::compile(p, &format!("providers[{i}]"))?;
            if providers.iter().any(|o: &Provider| o.name == provider.name) {
                return Err(ConfigError::new(
                    format!("providers[{i}].name"),
                    "duplicate provider name",
                ));
            }
            if providers
                .iter()
                .any(|o: &Provider| o.issuer == provider.issuer)
            {
                return Err(ConfigError::new(
                    format!("providers[{i}].issuer"),
                    "duplicate issuer",
                ));
            }
            if provider.introspection.is_some()
                && providers
                    .iter()
                    .any(|o: &Provider| o.introspection.is_some())
            {
                return Err(ConfigError::new(
                    format!("providers[{i}].introspection"),
                    "only one provider may introspect opaque tokens",
                ));
            }
            providers.push(provider);
        }
        let api_keys = c.api_keys.as_ref().map(ApiKeyStore::compile).transpose()?;
        let dpop = DpopPolicy::compile(&c.dpop.clone().unwrap_or_default())?;
        Ok(Credentials {
            providers,
            api_keys,
            dpop,
            signatures: Arc::new(Signatures::wasm()),
        })
    }

    /// Whether nothing could ever prove a caller (no providers, no API keys).
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty() && self.api_keys.is_none()
    }

    /// The compiled providers (the adapter fetches their remote keys by index).
    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// How many key sets the providers installed so far: the verified-token cache is valid for one
    /// generation (see [`TokenCache::sync_generation`]).
    pub fn key_generation(&self) -> u64 {
        self.providers
            .iter()
            .fold(0u64, |g, p| g.wrapping_add(p.key_generation()))
    }

    /// Lets the host check the signatures it can for every provider (see [`Signatures::detect`]).
    pub(crate) fn set_signatures(&mut self, signatures: Signatures) {
        let signatures = Arc::new(signatures);
        for p in &mut self.providers {
            p.set_signatures(Arc::clone(&signatures));
        }
        self.signatures = signatures;
    }

    /// Who checks signatures, and how many each path checked.
    pub fn signatures(&self) -> &Signatures {
        &self.signatures
    }

    /// Keys the DPoP replay-cache slots (the deployment's key).
    pub(crate) fn set_slot_key(&mut self, key: crate::slot::SlotKey) {
        self.dpop.set_slot_key(key);
    }

    /// On an anonymous route: the credential headers to keep from the upstream (a token nobody
    /// checked is never forwarded, so an upstream cannot be fooled by a forged one), or 400 when
    /// the request carries two credentials or a malformed one, as on every route (two
    /// `Authorization` headers too in the one value Envoy joins them into).
    pub(crate) fn unchecked(&self, headers: &[(String, String)]) -> Result<Vec<String>, Denial> {
        let header = self.api_keys.as_ref().map(|k| k.header.as_str());
        let mut strip = Vec::new();
        let (ours, key) = match extract::extract(headers, header) {
            Err(e) => return Err(Denial::InvalidRequest(e)),
            Ok(Presented::Bearer(_) | Presented::Dpop(_)) => (true, false),
            Ok(Presented::ApiKey(_)) => (false, true),
            Ok(Presented::Nothing) => (false, false),
        };
        let present = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        if ours && present("authorization") {
            strip.push("authorization".to_owned());
        }
        if let Some(h) = header.filter(|h| key && present(h)) {
            strip.push(h.to_ascii_lowercase());
        }
        if present("dpop") {
            strip.push("dpop".to_owned());
        }
        Ok(strip)
    }

    /// The one credential of the request, proven, with the token's claims (none for an API key).
    /// A cache hit and a miss of remote keys are noted in `draft`.
    pub(crate) fn authenticate(
        &self,
        req: &Request<'_>,
        cache: &mut TokenCache,
        shared: &dyn SharedData,
        draft: &mut Draft,
    ) -> Result<Identity, Denial> {
        let header = self.api_keys.as_ref().map(|k| k.header.as_str());
        let (token, dpop) = match extract::extract(req.headers, header) {
            Err(e) => return Err(Denial::InvalidRequest(e)),
            Ok(Presented::Nothing) => return Err(Denial::NoCredential),
            Ok(Presented::ApiKey(key)) => {
                return match &self.api_keys {
                    Some(store) => store.authenticate(key).map_err(Denial::InvalidToken),
                    None => Err(Denial::InvalidRequest(ExtractError::Malformed)),
                }
            }
            Ok(Presented::Bearer(token)) => (token, false),
            Ok(Presented::Dpop(token)) => (token, true),
        };
        // RFC 9449 §7.1: a token refused under the DPoP scheme is challenged with DPoP.
        let scheme = |d: Denial| match d {
            Denial::InvalidToken(why) if dpop => Denial::InvalidDpopToken(why, self.dpop.algs()),
            other => other,
        };
        let claims = match self.verify_token(token, req.now_s, cache) {
            Ok(v) => {
                draft.cache_hit = v.cache_hit;
                v.claims
            }
            Err(refused) => {
                draft.keys_missed = self.keys_missed(refused);
                return Err(scheme(self.token_denial(refused)));
            }
        };
        if !dpop && (self.dpop.required || bound_jkt(&claims).is_some()) {
            // RFC 9449 §7.2: a DPoP-bound token presented as a bearer token is refused.
            return Err(Denial::InvalidToken(TokenError::Binding));
        }
        // The client certificate is read only for a token bound to one (the adapter is asked).
        if req.peer_cert_unread && mtls::bound_x5t(&claims).is_some() {
            draft.peer_cert_wanted = true;
        }
        mtls::check(&claims, req.peer_cert_sha256)
            .map_err(|why| scheme(Denial::InvalidToken(why)))?;
        if dpop {
            self.check_dpop(req, token, &claims, shared)?;
        }
        Ok(Identity::from_claims(&claims))
    }

    /// A bearer token's claims: from the cache (claim checks re-run) or verified now.
    pub fn verify_token(
        &self,
        token: &str,
        now_s: u64,
        cache: &mut TokenCache,
    ) -> Result<Verified, Refused> {
        let by = |provider| move |why| Refused { why, provider };
        let key = cache.key_of(token);
        cache.sync_generation(self.key_generation());
        if let Some(claims) = cache.get(&key) {
            let i = self
                .providers
                .iter()
                .position(|p| p.name == claims.provider);
            let p = self.provider(i).ok_or(by(i)(TokenError::UnknownIssuer))?;
            p.check_claims(&claims, now_s).map_err(by(i))?;
            return Ok(Verified {
                claims,
                cache_hit: true,
            });
        }
        // Opaque tokens (only introspection records refusals) are the introspecting provider's.
        let opaque = self
            .providers
            .iter()
            .position(|p| p.introspection.is_some());
        if let Some(why) = cache.refused(&key, now_s) {
            return Err(by(opaque)(why));
        }
        let parsed = jwt::parse(token).map_err(|why| match why {
            // An opaque token the adapter has not introspected (yet): nobody can vouch for it.
            TokenError::Malformed if opaque.is_some() => by(opaque)(TokenError::IdpUnavailable),
            why => by(opaque)(why),
        })?;
        let issuer = parsed.issuer.as_deref();
        let i = issuer.and_then(|iss| self.providers.iter().position(|p| p.issuer == iss));
        let p = self.provider(i).ok_or(by(i)(TokenError::UnknownIssuer))?;
        let claims = match p.verify(&parsed, now_s) {
            Ok(claims) => Arc::new(claims),
            Err(TokenError::Expired) => {
                // Only a good signature yields a claim reason, and an expired token stays so
                // (a new config starts a new cache): it is not checked again.
                cache.refuse(key, u64::MAX, TokenError::Expired);
                return Err(by(i)(TokenError::Expired));
            }
            Err(why) => return Err(by(i)(why)),
        };
        cache.put(key, Arc::clone(&claims));
        Ok(Verified {
            claims,
            cache_hit: false,
        })
    }

    fn provider(&self, i: Option<usize>) -> Option<&Provider> {
        self.providers.get(i?)
    }

    /// The provider whose remote keys lack what a refused token needs (none yet, or not its `kid`):
    /// the adapter can install newer keys or fetch them early, then decide again.
    fn keys_missed(&self, r: Refused) -> Option<usize> {
        let missed = matches!(r.why, TokenError::UnknownKey | TokenError::KeysUnavailable);
        r.provider
            .filter(|&i| missed && self.providers.get(i).is_some_and(|p| p.remote.is_some()))
    }

    /// Why a token was refused, as the client is told: unavailable (5xx, or forwarded without
    /// identity when the provider fails open) when the IdP could not be asked, otherwise
    /// `invalid_token`.
    fn token_denial(&self, r: Refused) -> Denial {
        if !r.why.is_unavailable() {
            return Denial::InvalidToken(r.why);
        }
        let p = r.provider.and_then(|i| self.providers.get(i));
        let u = p.map(|p| p.unavailable.clone()).unwrap_or_default();
        Denial::Unavailable {
            why: r.why,
            status: u.status,
            retry_after_s: u.retry_after_s,
            fail_open: p.is_some_and(|p| p.fail_open),
        }
    }

    /// RFC 9449 §4.3 and §7.1: the request's one proof, valid for this request and token, made with the
    /// key the token is bound to, and never seen before by any worker.
    fn check_dpop(
        &self,
        req: &Request<'_>,
        token: &str,
        claims: &Claims,
        shared: &dyn SharedData,
    ) -> Result<(), Denial> {
        let fail = |e| Denial::InvalidDpop(e, self.dpop.algs());
        let proof = dpop::proof_header(req.headers)
            .map_err(fail)?
            .ok_or(fail(DpopError::Missing))?;
        let uri = self
            .dpop
            .request_uri(req.headers, req.path)
            .ok_or(fail(DpopError::Uri))?;
        let target = ProofTarget {
            method: req.method,
            uri: &uri,
            access_token: token,
            now_s: req.now_s,
        };
        let verified = self.dpop.verify(proof, &target).map_err(fail)?;
        if bound_jkt(claims) != Some(verified.jkt.as_str()) {
            return Err(fail(DpopError::KeyBinding));
        }
        self.dpop.record(shared, &verified, req.now_s).map_err(fail)
    }

    /// The introspection a request needs first: an opaque bearer token the cache cannot answer
    /// for, when a provider introspects. A call that cannot be built is recorded as an unavailable
    /// IdP at once (the request is then decided as such).
    pub fn introspection(
        &self,
        host: HostKind,
        headers: &[(String, String)],
        now_s: u64,
        cache: &mut TokenCache,
    ) -> Option<Introspection> {
        let pending = introspection::pending(&self.providers, headers, now_s, cache)?;
        let provider = self
            .providers
            .iter()
            .position(|p| std::ptr::eq(p, pending.provider))?;
        let built = pending
            .provider
            .introspection
            .as_ref()
            .map(|x| x.call(host, pending.token));
        match built {
            Some(Ok(call)) => Some(Introspection {
                call,
                provider,
                token: pending.token.to_owned(),
            }),
            Some(Err(e)) => {
                let failed = Outcome::Failed(e.to_string());
                introspection::record(cache, pending.provider, pending.token, failed, now_s);
                None
            }
            None => None,
        }
    }

    /// Records the answer to an [`Introspection`] in the cache, which the next decision reads:
    /// `answer` is the status and body, or why there is none (a failed dispatch, no status).
    /// Returns why the answer was unusable, for the adapter's log.
    pub fn introspected(
        &self,
        asked: &Introspection,
        answer: Result<(u16, &[u8]), String>,
        now_s: u64,
        cache: &mut TokenCache,
    ) -> Result<(), String> {
        let Some(p) = self.providers.get(asked.provider) else {
            return Ok(());
        };
        let outcome = match answer {
            Ok((status, body)) => introspection::outcome(p, Ok(status), body, now_s),
            Err(e) => Outcome::Failed(e),
        };
        let failed = match &outcome {
            Outcome::Failed(why) => Err(format!("introspection {}: {why}", p.name)),
            _ => Ok(()),
        };
        // Forget tokens verified with older keys first, so the decision that follows does not forget
        // this answer (it syncs the cache with the key generation too).
        cache.sync_generation(self.key_generation());
        introspection::record(cache, p, &asked.token, outcome, now_s);
        failed
    }
}

/// The `cnf.jkt` a token is bound to (RFC 9449 §6), if any.
fn bound_jkt(c: &Claims) -> Option<&str> {
    c.extra.get("cnf")?.get("jkt")?.as_str()
}
