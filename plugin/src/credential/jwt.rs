//! One JWT access token against its provider: strict compact parsing, RFC 8725 header rules,
//! key choice by `kid` among configured keys only, signature (jwt-simple), then the claim checks.

use super::introspection::Introspector;
use super::jwk::{self, VerifyingKey};
use super::jwks::RemoteJwks;
use super::native::{HostAnswer, Signatures};
use super::{Claims, TokenError};
use crate::config::remote::UnavailableConfig;
use crate::config::{Algorithm, ClaimsMapping, ConfigError, ProviderConfig};
use base64::Engine as _;
use jwt_simple::prelude::{Audiences, JWTClaims, UnixTimeStamp, VerificationOptions};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::cell::Cell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Largest token accepted, in bytes. Larger ones are refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Largest value copied from a claim into an identity (and so into an upstream header).
pub const MAX_CLAIM_BYTES: usize = 1024;

/// A provider compiled from config: its keys loaded and bound to their algorithms.
pub struct Provider {
    /// Name from config.
    pub name: String,
    /// Exact `iss`.
    pub issuer: String,
    audiences: HashSet<String>,
    /// The keys in use: the inline ones, or the last good remote set (empty until it arrives).
    /// Each worker compiles its own provider, so this is the worker's view of the keys.
    keys: RwLock<Arc<Vec<VerifyingKey>>>,
    /// The configured allow-list (what a fetched key may serve).
    allowed: Vec<Algorithm>,
    /// Where remote keys come from (`jwks_uri` or discovery); `None` for inline keys.
    pub remote: Option<RemoteJwks>,
    /// Introspection of opaque tokens.
    pub introspection: Option<Introspector>,
    /// The reply while keys or introspection are unavailable.
    pub unavailable: UnavailableConfig,
    /// Forward (without identity) instead of `unavailable`.
    pub fail_open: bool,
    /// How many key sets were installed: tokens verified before an install are verified again.
    generation: AtomicU64,
    clock_skew_s: u64,
    max_lifetime_s: Option<u64>,
    require_typ: Option<String>,
    claims: ClaimsMapping,
    /// Who does the signature arithmetic: the host where it can, else jwt-simple.
    signatures: Arc<Signatures>,
}

/// The protected header, as far as we read it. The key-locating members (`jwk`, `jku`, `x5u`,
/// `x5c`, `x5t`) are never used to find a key; they are declared with the types jwt-simple reads
/// them as, so that a header jwt-simple cannot read is refused here as malformed, before any key
/// is tried, and a JSON error from jwt-simple can only come from the claims (see [`classify`]).
#[derive(Deserialize)]
#[allow(dead_code)] // fields declared for their type check only
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
    #[serde(default)]
    cty: Option<String>,
    #[serde(default)]
    jku: Option<String>,
    #[serde(default)]
    jwk: Option<String>,
    #[serde(default)]
    x5u: Option<String>,
    #[serde(default)]
    x5c: Option<Vec<String>>,
    #[serde(default)]
    x5t: Option<String>,
    #[serde(default, rename = "x5t#S256")]
    x5t_s256: Option<String>,
    #[serde(default)]
    salt: Option<String>,
}

/// A token split and decoded, not yet verified.
pub struct Parsed<'t> {
    token: &'t str,
    /// The lengths of the encoded header and of the signing input (`header.payload`), found by
    /// the one walk over the token in [`parse`].
    header_len: usize,
    signed_len: usize,
    alg: Algorithm,
    kid: Option<String>,
    typ: Option<String>,
    /// The header's `salt` (jwt-simple decodes it before the signature, refusing what does not).
    salt: Option<String>,
    /// The payload's `iss`, unverified: used only to pick the provider.
    pub issuer: Option<String>,
    /// The payload and the signature, decoded once here: [`verify_detached`] reads them (the
    /// base64url alphabet, no padding, zero trailing bits: what jwt-simple's decoder accepts).
    payload: Vec<u8>,
    signature: Vec<u8>,
    /// The payload parsed as jwt-simple's claims (where `iss` was read), until
    /// [`verify_detached`] takes them once the signature holds; `None` when the payload is not
    /// such claims (it is parsed again there, and refused as jwt-simple refuses it).
    claims: Cell<Option<RawClaims>>,
}

/// A payload's claims as jwt-simple reads them.
type RawClaims = JWTClaims<Map<String, Value>>;

impl Parsed<'_> {
    /// The token as it came.
    pub(super) fn token(&self) -> &str {
        self.token
    }
}

/// What jwt-simple's verification checks besides the signature, for one token at one time: the
/// provider's own values, borrowed (jwt-simple's `VerificationOptions` owns sets built per token,
/// made only where jwt-simple itself verifies: [`Expect::options`]).
pub(super) struct Expect<'p> {
    now_s: u64,
    skew_s: u64,
    issuer: &'p str,
    audiences: &'p HashSet<String>,
    /// The header's `typ`: the `typ` rules are ours (RFC 9068 media types), and jwt-simple's own
    /// check would refuse `application/jwt`, so it is told to expect what the header says.
    typ: Option<&'p str>,
}

impl Expect<'_> {
    /// The same rules as jwt-simple's options, for a key jwt-simple verifies itself.
    pub(super) fn options(&self) -> VerificationOptions {
        VerificationOptions {
            time_tolerance: Some(jwt_simple::prelude::Duration::from_secs(self.skew_s)),
            artificial_time: Some(UnixTimeStamp::from_secs(self.now_s)),
            allowed_issuers: Some(HashSet::from([self.issuer.to_owned()])),
            allowed_audiences: Some(self.audiences.clone()),
            max_token_length: Some(MAX_TOKEN_BYTES),
            required_signature_type: self.typ.map(str::to_owned),
            ..VerificationOptions::default()
        }
    }
}

fn b64(part: &str) -> Result<Vec<u8>, TokenError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)
}

/// Splits and decodes a compact JWS, applying the header rules that need no key.
pub fn parse(token: &str) -> Result<Parsed<'_>, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        // JWE (five parts), JSON serialization or garbage.
        return Err(TokenError::Malformed);
    };
    if h.is_empty() || p.is_empty() || s.is_empty() {
        return Err(TokenError::Malformed);
    }
    let header: Header = serde_json::from_slice(&b64(h)?).map_err(|_| TokenError::Malformed)?;
    let signature = b64(s)?;
    if header.crit.is_some() {
        return Err(TokenError::Crit);
    }
    let alg = Algorithm::from_name(&header.alg).ok_or(TokenError::Algorithm)?;
    #[derive(Deserialize)]
    struct Peek {
        #[serde(default)]
        iss: Option<Value>,
    }
    let payload = b64(p)?;
    // One pass over the claims for a well-formed token; the peek only for one that is not (its
    // `iss` picks the provider all the same, and the claims are refused after the signature).
    let claims = serde_json::from_slice::<RawClaims>(&payload).ok();
    let issuer = match &claims {
        Some(c) => c.issuer.clone(),
        None => match serde_json::from_slice::<Peek>(&payload) {
            Ok(Peek {
                iss: Some(Value::String(iss)),
            }) => Some(iss),
            Ok(_) => None,
            // Not a JSON object: fine for a bare JWS, refused later as claims.
            Err(_) => None,
        },
    };
    Ok(Parsed {
        token,
        header_len: h.len(),
        signed_len: h.len() + 1 + p.len(),
        alg,
        kid: header.kid,
        typ: header.typ,
        salt: header.salt,
        issuer,
        payload,
        signature,
        claims: Cell::new(claims),
    })
}

/// RFC 9068 §4 / RFC 7515 §4.1.9: compare media types case-insensitively, `application/` optional.
fn media_type_eq(a: &str, b: &str) -> bool {
    fn strip(s: &str) -> &str {
        match s.get(..12) {
            Some(p) if p.eq_ignore_ascii_case("application/") => s.get(12..).unwrap_or(""),
            _ => s,
        }
    }
    strip(a).eq_ignore_ascii_case(strip(b))
}

impl Provider {
    /// Compiles a provider config; `at` is its JSON path for error messages.
    pub fn compile(cfg: &ProviderConfig, at: &str) -> Result<Provider, ConfigError> {
        if cfg.name.trim().is_empty() {
            return Err(ConfigError::new(format!("{at}.name"), "must not be empty"));
        }
        if cfg.issuer.is_empty() {
            return Err(ConfigError::new(
                format!("{at}.issuer"),
                "must not be empty",
            ));
        }
        if cfg.audiences.is_empty() || cfg.audiences.iter().any(String::is_empty) {
            return Err(ConfigError::new(
                format!("{at}.audiences"),
                "at least one non-empty audience is required",
            ));
        }
        if cfg.clock_skew_s > 600 {
            return Err(ConfigError::new(
                format!("{at}.clock_skew_s"),
                "more than 600 s of clock skew defeats expiry",
            ));
        }
        if let Some(typ) = &cfg.require_typ {
            if typ.is_empty() {
                return Err(ConfigError::new(
                    format!("{at}.require_typ"),
                    "must not be empty",
                ));
            }
        }
        if cfg.claims.tenant.is_empty() {
            return Err(ConfigError::new(
                format!("{at}.claims.tenant"),
                "must not be empty",
            ));
        }
        let allowed: Vec<Algorithm> = match &cfg.algorithms {
            Some(list) if list.is_empty() => {
                return Err(ConfigError::new(
                    format!("{at}.algorithms"),
                    "an empty allow-list refuses every token",
                ))
            }
            Some(list) => list.clone(),
            None => Algorithm::ALL.to_vec(),
        };
        let remote = RemoteJwks::compile(cfg, at)?;
        let introspection = cfg
            .introspection
            .as_ref()
            .map(|i| Introspector::compile(i, &format!("{at}.introspection")))
            .transpose()?;
        let unavailable = cfg.unavailable.clone().unwrap_or_default();
        if cfg.fail_open && cfg.unavailable.is_some() {
            return Err(ConfigError::new(
                format!("{at}.fail_open"),
                "choose `unavailable` or `fail_open`, not both",
            ));
        }
        if !(500..=599).contains(&unavailable.status) || unavailable.retry_after_s > 3600 {
            return Err(ConfigError::new(
                format!("{at}.unavailable"),
                "status must be 5xx and retry_after_s at most 3600",
            ));
        }
        let mut keys: Vec<VerifyingKey> = Vec::new();
        match &cfg.jwks {
            Some(jwks) => {
                for (i, key) in jwks.keys.iter().enumerate() {
                    match jwk::load(key, &allowed) {
                        Ok(jwk::Loaded::Keys(mut k)) => {
                            // A token's `kid` must name one key (RFC 7517 §4.5), not a set to try.
                            let kid = k.first().and_then(|k| k.kid.as_deref());
                            if kid.is_some() && keys.iter().any(|o| o.kid.as_deref() == kid) {
                                return Err(ConfigError::new(
                                    format!("{at}.jwks.keys[{i}].kid"),
                                    "duplicate kid",
                                ));
                            }
                            keys.append(&mut k)
                        }
                        Ok(jwk::Loaded::Skipped(_)) => {}
                        Err(e) => return Err(ConfigError::new(format!("{at}.jwks.keys[{i}]"), e)),
                    }
                }
                if keys.is_empty() {
                    return Err(ConfigError::new(
                        format!("{at}.jwks.keys"),
                        "no usable signing key for the allowed algorithms",
                    ));
                }
                // A shared secret beside public keys invites algorithm confusion and the publication
                // of the secret with the public set: an HMAC issuer gets a provider of its own.
                if keys.iter().any(is_hmac) && !keys.iter().all(is_hmac) {
                    return Err(ConfigError::new(
                        format!("{at}.jwks.keys"),
                        "mixes shared secrets (`oct`) with public keys; configure them as separate providers",
                    ));
                }
            }
            None if remote.is_none() && introspection.is_none() => {
                return Err(ConfigError::new(
                    format!("{at}.jwks"),
                    "one of `jwks`, `jwks_uri`, `discovery` or `introspection` is required",
                ))
            }
            None => {}
        }
        if cfg.claims.subject.is_empty() || cfg.claims.subject.iter().any(String::is_empty) {
            return Err(ConfigError::new(
                format!("{at}.claims.subject"),
                "must name at least one claim, none empty",
            ));
        }
        Ok(Provider {
            name: cfg.name.clone(),
            issuer: cfg.issuer.clone(),
            audiences: cfg.audiences.iter().cloned().collect(),
            keys: RwLock::new(Arc::new(keys)),
            allowed,
            remote,
            introspection,
            unavailable,
            fail_open: cfg.fail_open,
            generation: AtomicU64::new(0),
            clock_skew_s: cfg.clock_skew_s,
            max_lifetime_s: cfg.max_lifetime_s,
            require_typ: cfg.require_typ.clone(),
            claims: cfg.claims.clone(),
            signatures: Arc::new(Signatures::wasm()),
        })
    }

    /// Who checks this provider's signatures, and how many each path checked.
    pub fn signatures(&self) -> &Signatures {
        &self.signatures
    }

    /// Lets the host verify the signatures it can (`Signatures::detect`); the rules stay here.
    pub fn set_signatures(&mut self, signatures: Arc<Signatures>) {
        self.signatures = signatures;
    }

    /// The algorithms this provider accepts now (its keys' algorithms within the allow-list).
    pub fn algorithms(&self) -> Vec<Algorithm> {
        let mut algs: Vec<Algorithm> = self.keys().iter().map(|k| k.alg).collect();
        algs.sort();
        algs.dedup();
        algs
    }

    /// The configured allow-list: what keys fetched later may serve.
    pub fn allowed(&self) -> &[Algorithm] {
        &self.allowed
    }

    fn keys(&self) -> Arc<Vec<VerifyingKey>> {
        match self.keys.read() {
            Ok(k) => Arc::clone(&k),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the keys (a newer remote key set).
    pub fn install_keys(&self, keys: Vec<VerifyingKey>) {
        let keys = Arc::new(keys);
        match self.keys.write() {
            Ok(mut k) => *k = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// How many key sets [`Provider::install_keys`] installed so far.
    pub fn key_generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Verifies the signature with a configured key and checks every claim rule at `now`.
    pub fn verify(&self, parsed: &Parsed<'_>, now_s: u64) -> Result<Claims, TokenError> {
        match (&self.require_typ, &parsed.typ) {
            (Some(want), Some(got)) if media_type_eq(want, got) => {}
            (Some(_), _) => return Err(TokenError::Typ),
            (None, Some(got)) if media_type_eq(got, "JWT") || media_type_eq(got, "at+jwt") => {}
            (None, Some(_)) => return Err(TokenError::Typ),
            (None, None) => {}
        }
        let keys = self.keys();
        if self.remote.is_some() && keys.is_empty() {
            // Another worker may have fetched them already (the engine asks the adapter to look).
            return Err(TokenError::KeysUnavailable);
        }
        if !keys.iter().any(|k| k.alg == parsed.alg) {
            if self.remote.is_some() && self.allowed.contains(&parsed.alg) {
                // Perhaps a key the IdP published since the last fetch (the engine asks for it).
                return Err(TokenError::UnknownKey);
            }
            return Err(TokenError::Algorithm);
        }
        let mut candidates = keys
            .iter()
            .filter(|k| k.alg == parsed.alg)
            .filter(|k| match &parsed.kid {
                Some(kid) => k.kid.as_deref() == Some(kid.as_str()),
                None => true,
            })
            .peekable();
        if candidates.peek().is_none() {
            return Err(TokenError::UnknownKey);
        }
        let expect = Expect {
            now_s,
            skew_s: self.clock_skew_s,
            issuer: &self.issuer,
            audiences: &self.audiences,
            typ: parsed.typ.as_deref(),
        };
        let mut last = TokenError::Signature;
        for key in candidates {
            if let Some(native) = key.native().filter(|_| self.signatures.on_host()) {
                let host = |text: &[u8], sig: &[u8]| match self.signatures.verify(native, text, sig)
                {
                    HostAnswer::Valid => Some(true),
                    HostAnswer::Invalid => Some(false),
                    HostAnswer::Unavailable => None,
                };
                match verify_detached(parsed, &expect, host) {
                    // The host gave its verdict: the same rules follow as after jwt-simple's.
                    Some(Ok(raw)) => {
                        let claims = self.claims_from(raw)?;
                        self.check_claims(&claims, now_s)?;
                        return Ok(claims);
                    }
                    Some(Err(TokenError::Signature)) => continue,
                    Some(Err(why)) => return Err(why),
                    // The host could not answer: Wasm decides.
                    None => {}
                }
            }
            self.signatures.count_wasm();
            match key.verify(parsed, &expect) {
                Ok(raw) => {
                    let claims = self.claims_from(raw)?;
                    self.check_claims(&claims, now_s)?;
                    return Ok(claims);
                }
                Err(e) => {
                    last = e;
                    if last != TokenError::Signature {
                        // The signature verified; the claims are what failed.
                        return Err(last);
                    }
                }
            }
        }
        Err(last)
    }

    /// The claim rules, checked on every use of a token, cached or not.
    pub fn check_claims(&self, c: &Claims, now_s: u64) -> Result<(), TokenError> {
        let skew = self.clock_skew_s;
        if now_s > c.exp.saturating_add(skew) {
            return Err(TokenError::Expired);
        }
        if let Some(nbf) = c.nbf {
            if now_s.saturating_add(skew) < nbf {
                return Err(TokenError::NotYetValid);
            }
        }
        if let Some(iat) = c.iat {
            if iat > now_s.saturating_add(skew) {
                return Err(TokenError::IssuedInFuture);
            }
        }
        if let Some(max) = self.max_lifetime_s {
            let start = c.iat.or(c.nbf).unwrap_or(now_s);
            if c.exp.saturating_sub(start) > max {
                return Err(TokenError::Lifetime);
            }
        }
        if c.issuer != self.issuer {
            return Err(TokenError::Issuer);
        }
        if !c.audiences.iter().any(|a| self.audiences.contains(a)) {
            return Err(TokenError::Audience);
        }
        Ok(())
    }

    fn claims_from(&self, raw: JWTClaims<Map<String, Value>>) -> Result<Claims, TokenError> {
        let exp = raw.expires_at.ok_or(TokenError::MissingExp)?.as_secs();
        let audiences = match raw.audiences {
            Some(Audiences::AsString(a)) => vec![a],
            Some(Audiences::AsSet(set)) => set.into_iter().collect(),
            None => Vec::new(),
        };
        let custom = raw.custom;
        let Mapped {
            client,
            tenant,
            scopes,
        } = self.map_claims(&custom)?;
        let subject = self.subject_of(raw.subject.as_deref(), &custom)?;
        Ok(Claims {
            issuer: raw.issuer.unwrap_or_default(),
            subject,
            audiences,
            exp,
            nbf: raw.invalid_before.map(|t| t.as_secs()),
            iat: raw.issued_at.map(|t| t.as_secs()),
            jti: raw.jwt_id,
            client,
            tenant,
            scopes,
            provider: self.name.clone(),
            extra: custom,
        })
    }
}

/// Client id, tenant and scopes, read by a provider's claim mapping.
pub(crate) struct Mapped {
    pub client: Option<String>,
    pub tenant: Option<String>,
    pub scopes: Vec<String>,
}

impl Provider {
    /// Client id, tenant and scopes from a token's (or introspection answer's) claims, by the
    /// provider's claim mapping.
    /// The subject: the first non-empty claim of `claims.subject` (`sub` is the registered claim,
    /// given as `sub`; the others are read from `custom`).
    pub(crate) fn subject_of(
        &self,
        sub: Option<&str>,
        custom: &Map<String, Value>,
    ) -> Result<String, TokenError> {
        for name in &self.claims.subject {
            let value = match name.as_str() {
                "sub" => sub.filter(|s| !s.is_empty()).map(str::to_owned),
                other => string_claim(custom, other)?,
            };
            if let Some(v) = value {
                return Ok(header_safe(&v)?.to_owned());
            }
        }
        Err(TokenError::NoSubject)
    }

    pub(crate) fn map_claims(&self, custom: &Map<String, Value>) -> Result<Mapped, TokenError> {
        let string_claim = |name: &str| string_claim(custom, name);
        let client = self
            .claims
            .client
            .iter()
            .find_map(|c| string_claim(c).transpose())
            .transpose()?;
        let tenant = string_claim(&self.claims.tenant)?;
        let scopes = self
            .claims
            .scopes
            .iter()
            .find_map(|name| custom.get(name))
            .map(scopes_of)
            .transpose()?
            .unwrap_or_default();
        Ok(Mapped {
            client,
            tenant,
            scopes,
        })
    }
}

/// A string claim as an identity value: absent, `null` and `""` are none (an empty value never
/// becomes an empty `x-auth-*` header); another type is refused.
fn string_claim(custom: &Map<String, Value>, name: &str) -> Result<Option<String>, TokenError> {
    match custom.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => header_safe(s).map(|s| Some(s.to_owned())),
        Some(_) => Err(TokenError::Claims),
    }
}

/// Whether a key is a shared secret (HMAC).
pub(crate) fn is_hmac(k: &VerifyingKey) -> bool {
    matches!(
        k.alg,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    )
}

/// Scope claim: a space-separated string (`scope`) or an array of strings (`scp`).
fn scopes_of(v: &Value) -> Result<Vec<String>, TokenError> {
    let scopes: Vec<String> = match v {
        Value::String(s) => s
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or(TokenError::Claims))
            .collect::<Result<_, _>>()?,
        _ => return Err(TokenError::Claims),
    };
    for s in &scopes {
        if s.contains(' ') {
            return Err(TokenError::Claims);
        }
        header_safe(s)?;
    }
    Ok(scopes)
}

/// A claim that will travel in an upstream header must be short and printable.
pub(crate) fn header_safe(s: &str) -> Result<&str, TokenError> {
    if s.len() > MAX_CLAIM_BYTES || s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(TokenError::Claims);
    }
    Ok(s)
}

/// jwt-simple's `Token::verify` with the signature checked apart from it (`check`: the host's
/// `verify_signature`, or `rsa_key.rs` in Wasm): the same steps in the same order, each refused with
/// the reason [`classify`] gives jwt-simple's error, so every path accepts and refuses the same
/// tokens for the same reasons (`tests/wycheproof.rs` and the attack suite run through each).
/// `check` answers whether the signature is good over the signing input, or `None` when it could
/// not tell (the host failed); then this answers `None` too.
pub(super) fn verify_detached(
    parsed: &Parsed<'_>,
    expect: &Expect<'_>,
    check: impl FnOnce(&[u8], &[u8]) -> Option<bool>,
) -> Option<Result<JWTClaims<Map<String, Value>>, TokenError>> {
    use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder as _};
    let decode = |part: &str| {
        Base64UrlSafeNoPadding::decode_to_vec(part, None).map_err(|_| TokenError::Signature)
    };
    if parsed.header_len > jwt_simple::token::MAX_HEADER_LENGTH {
        return Some(Err(TokenError::Signature));
    }
    if let Some(salt) = &parsed.salt {
        if let Err(why) = decode(salt) {
            return Some(Err(why));
        }
    }
    // The signature and the payload were decoded by [`parse`] (the same bytes jwt-simple's
    // decoder would give, which refuses nothing `parse` accepted).
    let signed = parsed.token.get(..parsed.signed_len)?;
    if !check(signed.as_bytes(), &parsed.signature)? {
        return Some(Err(TokenError::Signature));
    }
    let raw = match parsed.claims.take() {
        Some(raw) => raw,
        None => match serde_json::from_slice::<RawClaims>(&parsed.payload) {
            Ok(raw) => raw,
            Err(_) => return Some(Err(TokenError::Claims)),
        },
    };
    Some(jwt_simple_validate(&raw, expect).map(|()| raw))
}

/// jwt-simple's `JWTClaims::validate` (crate-private there) for the options [`Expect::options`]
/// makes: the same checks in the same order, each with the reason [`classify`] maps jwt-simple's
/// error to.
fn jwt_simple_validate(
    c: &JWTClaims<Map<String, Value>>,
    expect: &Expect<'_>,
) -> Result<(), TokenError> {
    let now = expect.now_s;
    let tolerance = expect.skew_s;
    if let Some(iat) = c.issued_at {
        if iat.as_secs() > now.saturating_add(tolerance) {
            return Err(TokenError::IssuedInFuture);
        }
    }
    if let Some(nbf) = c.invalid_before {
        if now.saturating_add(tolerance) < nbf.as_secs() {
            return Err(TokenError::NotYetValid);
        }
    }
    if let Some(exp) = c.expires_at {
        if now < tolerance || now - tolerance > exp.as_secs() {
            return Err(TokenError::Expired);
        }
    }
    if c.issuer.as_deref() != Some(expect.issuer) {
        return Err(TokenError::Issuer);
    }
    if !c
        .audiences
        .as_ref()
        .is_some_and(|a| a.contains(expect.audiences))
    {
        return Err(TokenError::Audience);
    }
    Ok(())
}

/// Maps jwt-simple's error to our reason. Anything that is not a claim failure counts as a
/// signature failure, so that only a verified signature can yield a claim reason. A JSON error is
/// a claims error because [`parse`] has already read the header with jwt-simple's member types.
pub(super) fn classify(e: &jwt_simple::Error) -> TokenError {
    use jwt_simple::JWTError as J;
    if e.downcast_ref::<serde_json::Error>().is_some() {
        return TokenError::Claims;
    }
    match e.downcast_ref::<J>() {
        Some(J::TokenHasExpired) => TokenError::Expired,
        Some(J::TokenNotValidYet) => TokenError::NotYetValid,
        Some(J::ClockDrift) => TokenError::IssuedInFuture,
        Some(J::RequiredIssuerMismatch | J::RequiredIssuerMissing) => TokenError::Issuer,
        Some(J::RequiredAudienceMismatch | J::RequiredAudienceMissing) => TokenError::Audience,
        _ => TokenError::Signature,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder as _};

    /// [`verify_detached`] reads the parts [`parse`] decoded (the `base64` crate) where jwt-simple
    /// decodes them itself (`ct_codecs`): both must accept the same strings and give the same bytes,
    /// or a path would accept a token the other refuses. Every string of up to 5 characters over
    /// both alphabets, padding, a space and characters with and without trailing bits.
    #[test]
    fn parse_decodes_exactly_what_jwt_simple_decodes() {
        let alphabet = b"ABQw-_+/= ";
        let mut checked = 0;
        for len in 0..=5u32 {
            for mut n in 0..alphabet.len().pow(len) {
                let mut s = Vec::new();
                for _ in 0..len {
                    s.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                let s = String::from_utf8(s).unwrap();
                let ours = b64(&s).ok();
                let theirs = Base64UrlSafeNoPadding::decode_to_vec(&s, None).ok();
                assert_eq!(ours, theirs, "{s:?}");
                checked += usize::from(ours.is_some());
            }
        }
        assert!(checked > 1000, "{checked} strings decoded");
    }
}
