//! DPoP (RFC 9449): the proof a client sends with a sender-constrained token, checked as §4.3 lists,
//! bound to the token through `cnf.jkt` (the RFC 7638 thumbprint of the proof key), with a replay
//! cache of proof ids in shared data (bounded: a fixed set of slots, expired ids pruned on write).
//!
//! The checks of RFC 9449 §4.3, where each happens: (1) one `DPoP` header: [`proof_header`]; (2) one
//! well-formed JWS, (3) required claims, (4) `typ`, (5) `alg` allowed and asymmetric, (6) signature by
//! the `jwk`, (7) `jwk` public, (8) `htm`, (9) `htu`, (11) `iat` window, (12) `ath`:
//! [`DpopPolicy::verify`]; (12) the key is the token's `cnf.jkt`: the caller compares [`Proof::jkt`];
//! (10) server nonces are not issued, so there is none to check; the `jti` replay check of §11.1:
//! [`DpopPolicy::record`].
//!
//! Keys are loaded by jwt-simple (through [`super::jwk`]); the signature is checked with the curve crates
//! jwt-simple itself uses, because jwt-simple cannot parse a header whose `jwk` is an object.

use super::jwk;
use crate::config::dpop::DpopConfig;
use crate::config::{Algorithm, ConfigError};
use crate::shared::{self, SharedData};
use crate::slot::SlotKey;
use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Largest proof accepted, in bytes.
pub const MAX_PROOF_BYTES: usize = 8 * 1024;

/// Proof ids remembered per replay-cache slot.
pub const IDS_PER_SLOT: usize = 128;

const RECORD: usize = 24; // 16-byte id digest + 8-byte expiry

/// Why a DPoP proof is refused (401 `DPoP error="invalid_dpop_proof"`); the name goes to the audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopError {
    /// A DPoP-bound token without a `DPoP` header.
    Missing,
    /// More than one `DPoP` header (§4.3 check 1).
    Multiple,
    /// Not one well-formed JWT, or a required claim missing (checks 2, 3).
    Malformed,
    /// `typ` is not `dpop+jwt` (check 4).
    Typ,
    /// `alg` not asymmetric or not allowed (check 5).
    Algorithm,
    /// `jwk` missing, private, or unusable (check 7).
    Key,
    /// The signature does not verify with the `jwk` (check 6).
    Signature,
    /// `htm` is not the request method (check 8).
    Method,
    /// `htu` is not the request URI (check 9).
    Uri,
    /// `iat` too old (check 11).
    Stale,
    /// `iat` in the future (check 11).
    Future,
    /// `ath` is not the hash of the access token (check 12).
    Ath,
    /// The proof key is not the token's `cnf.jkt` (check 12).
    KeyBinding,
    /// The proof id was seen before (§11.1).
    Replay,
    /// Every id in the proof's replay slot is still live: refused rather than forgotten.
    ReplayCacheFull,
    /// The replay cache could not be read or written (fail closed).
    Store,
}

impl DpopError {
    /// Name for audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            DpopError::Missing => "dpop_missing",
            DpopError::Multiple => "dpop_multiple",
            DpopError::Malformed => "dpop_malformed",
            DpopError::Typ => "dpop_typ",
            DpopError::Algorithm => "dpop_algorithm",
            DpopError::Key => "dpop_key",
            DpopError::Signature => "dpop_signature",
            DpopError::Method => "dpop_htm",
            DpopError::Uri => "dpop_htu",
            DpopError::Stale => "dpop_stale",
            DpopError::Future => "dpop_future",
            DpopError::Ath => "dpop_ath",
            DpopError::KeyBinding => "dpop_key_binding",
            DpopError::Replay => "dpop_replay",
            DpopError::ReplayCacheFull => "dpop_replay_cache_full",
            DpopError::Store => "dpop_replay_store",
        }
    }
}

/// The compiled `dpop` section.
#[derive(Debug, Clone)]
pub struct DpopPolicy {
    algorithms: Vec<Algorithm>,
    max_age_s: u64,
    future_skew_s: u64,
    origin: Option<String>,
    replay_slots: u32,
    slot_key: SlotKey,
    /// Refuse JWTs not presented with DPoP.
    pub required: bool,
}

/// A verified proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// RFC 7638 thumbprint of the proof key (base64url SHA-256).
    pub jkt: String,
    /// The proof's `jti`.
    pub jti: String,
    /// The proof's `iat`.
    pub iat: u64,
}

/// What a proof must match: the request and the access token it accompanies.
#[derive(Debug, Clone, Copy)]
pub struct ProofTarget<'a> {
    /// The request method.
    pub method: &'a str,
    /// The request URI, normalised (see [`DpopPolicy::request_uri`]).
    pub uri: &'a str,
    /// The access token presented with the proof.
    pub access_token: &'a str,
    /// Now, seconds since the epoch.
    pub now_s: u64,
}

fn b64(part: &str) -> Result<Vec<u8>, DpopError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| DpopError::Malformed)
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `BASE64URL(SHA-256(access token))`, the proof's `ath`.
pub fn ath_of(access_token: &str) -> String {
    b64url(&Sha256::digest(access_token.as_bytes()))
}

/// The RFC 7638 thumbprint of a public JWK: SHA-256 of its required members in lexicographic order.
pub fn thumbprint(jwk: &Map<String, Value>) -> Result<String, DpopError> {
    let member = |name: &str| -> Result<String, DpopError> {
        let v = jwk
            .get(name)
            .and_then(Value::as_str)
            .ok_or(DpopError::Key)?;
        serde_json::to_string(v).map_err(|_| DpopError::Key)
    };
    let canonical = match jwk.get("kty").and_then(Value::as_str) {
        Some("EC") => format!(
            r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
            member("crv")?,
            member("x")?,
            member("y")?
        ),
        Some("RSA") => format!(
            r#"{{"e":{},"kty":"RSA","n":{}}}"#,
            member("e")?,
            member("n")?
        ),
        Some("OKP") => format!(
            r#"{{"crv":{},"kty":"OKP","x":{}}}"#,
            member("crv")?,
            member("x")?
        ),
        _ => return Err(DpopError::Key),
    };
    Ok(b64url(&Sha256::digest(canonical.as_bytes())))
}

/// Scheme-and-syntax normalisation of an absolute http(s) URI (RFC 3986 §6.2.2-6.2.3), without query
/// and fragment: lower-case scheme and host, default port dropped, empty path as `/`.
pub fn normalize_uri(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..end)?.to_ascii_lowercase();
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let path = rest.get(end..)?;
    let path = path.split(['?', '#']).next().unwrap_or("");
    let path = if path.is_empty() { "/" } else { path };
    Some(format!("{scheme}://{authority}{path}"))
}

/// The one `DPoP` header of a request (§4.3 check 1); `Ok(None)` when there is none.
pub fn proof_header(headers: &[(String, String)]) -> Result<Option<&str>, DpopError> {
    let mut found = None;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("dpop") {
            if found.is_some() || value.contains(',') {
                return Err(DpopError::Multiple);
            }
            found = Some(value.trim());
        }
    }
    Ok(found)
}

impl DpopPolicy {
    /// Compiles the section (defaults when absent).
    pub fn compile(c: &DpopConfig) -> Result<DpopPolicy, ConfigError> {
        if c.algorithms.is_empty() {
            return Err(ConfigError::new("dpop.algorithms", "must not be empty"));
        }
        for (i, a) in c.algorithms.iter().enumerate() {
            if !matches!(a, Algorithm::ES256 | Algorithm::ES384 | Algorithm::EdDSA) {
                return Err(ConfigError::new(
                    format!("dpop.algorithms[{i}]"),
                    "DPoP proofs may use ES256, ES384 or EdDSA",
                ));
            }
        }
        if c.max_age_s == 0 || c.max_age_s > 3600 {
            return Err(ConfigError::new(
                "dpop.max_age_s",
                "must be between 1 and 3600",
            ));
        }
        if c.future_skew_s > 300 {
            return Err(ConfigError::new("dpop.future_skew_s", "at most 300"));
        }
        if c.replay_slots == 0 || c.replay_slots > 65_536 {
            return Err(ConfigError::new(
                "dpop.replay_slots",
                "must be between 1 and 65536",
            ));
        }
        let origin = match &c.origin {
            Some(o) => {
                let n = normalize_uri(o)
                    .filter(|n| n.ends_with('/') && n.matches('/').count() == 3)
                    .ok_or_else(|| {
                        ConfigError::new(
                            "dpop.origin",
                            "must be scheme://host[:port] without a path",
                        )
                    })?;
                Some(n.trim_end_matches('/').to_owned())
            }
            None => None,
        };
        Ok(DpopPolicy {
            algorithms: c.algorithms.clone(),
            max_age_s: c.max_age_s,
            future_skew_s: c.future_skew_s,
            origin,
            replay_slots: c.replay_slots,
            slot_key: SlotKey::default(),
            required: c.required,
        })
    }

    /// The `algs` parameter of the `WWW-Authenticate: DPoP` challenge.
    pub fn algs(&self) -> String {
        self.algorithms
            .iter()
            .map(|a| a.name())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The request URI a proof's `htu` must name: the configured origin (or the request's `:scheme`
    /// and `:authority`) and the path without query.
    pub fn request_uri(&self, headers: &[(String, String)], path: &str) -> Option<String> {
        let find = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
        };
        let base = match &self.origin {
            Some(o) => o.clone(),
            None => format!(
                "{}://{}",
                find(":scheme").unwrap_or("https"),
                find(":authority").or_else(|| find("host"))?
            ),
        };
        normalize_uri(&format!("{base}{path}"))
    }

    /// Checks a proof against the request and token: RFC 9449 §4.3 checks 2 to 12 except the key
    /// binding (compare [`Proof::jkt`] with `cnf.jkt`) and replay ([`record`]).
    pub fn verify(&self, proof: &str, target: &ProofTarget<'_>) -> Result<Proof, DpopError> {
        if proof.len() > MAX_PROOF_BYTES {
            return Err(DpopError::Malformed);
        }
        let mut parts = proof.split('.');
        let (Some(h), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(DpopError::Malformed);
        };
        let header: Map<String, Value> =
            serde_json::from_slice(&b64(h)?).map_err(|_| DpopError::Malformed)?;
        match header.get("typ").and_then(Value::as_str) {
            Some(t) if t.eq_ignore_ascii_case("dpop+jwt") => {}
            _ => return Err(DpopError::Typ),
        }
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(Algorithm::from_name)
            .filter(|a| self.algorithms.contains(a))
            .ok_or(DpopError::Algorithm)?;
        let jwk = header.get("jwk").ok_or(DpopError::Key)?;
        let jwk_obj = jwk.as_object().ok_or(DpopError::Key)?;
        // jwk::load refuses private members (check 7) and keys that do not fit `alg`.
        let key = match jwk::load(jwk, &[alg]) {
            Ok(jwk::Loaded::Keys(keys)) => keys.into_iter().find(|k| k.alg == alg),
            _ => None,
        }
        .ok_or(DpopError::Key)?;
        // jwt-simple cannot read a header whose `jwk` is an object, so the signature is checked on the
        // signing input with the same curve code, and the payload parsed after it verified.
        let (signing_input, sig) = proof.rsplit_once('.').ok_or(DpopError::Malformed)?;
        if !key.verify_detached(signing_input.as_bytes(), &b64(sig)?) {
            return Err(DpopError::Signature);
        }
        let payload = signing_input.split_once('.').map(|(_, p)| p).unwrap_or("");
        let custom: Map<String, Value> =
            serde_json::from_slice(&b64(payload)?).map_err(|_| DpopError::Malformed)?;
        let text = |name: &str| custom.get(name).and_then(Value::as_str);
        let jti = text("jti")
            .filter(|j| !j.is_empty() && j.len() <= 256)
            .ok_or(DpopError::Malformed)?
            .to_owned();
        let iat = custom
            .get("iat")
            .and_then(Value::as_u64)
            .ok_or(DpopError::Malformed)?;
        let htm = text("htm").ok_or(DpopError::Malformed)?;
        let htu = text("htu").ok_or(DpopError::Malformed)?;
        if htm != target.method {
            return Err(DpopError::Method);
        }
        if normalize_uri(htu).as_deref() != Some(target.uri) {
            return Err(DpopError::Uri);
        }
        if iat.saturating_add(self.max_age_s) < target.now_s {
            return Err(DpopError::Stale);
        }
        if iat > target.now_s.saturating_add(self.future_skew_s) {
            return Err(DpopError::Future);
        }
        let ath = text("ath").ok_or(DpopError::Malformed)?;
        let want = ath_of(target.access_token);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            ath.as_bytes(),
            want.as_bytes(),
        )) {
            return Err(DpopError::Ath);
        }
        Ok(Proof {
            jkt: thumbprint(jwk_obj)?,
            jti,
            iat,
        })
    }

    /// Keys the replay-cache slots (the deployment's key).
    pub fn set_slot_key(&mut self, key: SlotKey) {
        self.slot_key = key;
    }

    /// Remembers a proof id until it can no longer pass the `iat` check; a second use is a replay.
    pub fn record(
        &self,
        store: &dyn SharedData,
        proof: &Proof,
        now_s: u64,
    ) -> Result<(), DpopError> {
        let mut h = Sha256::new();
        h.update(proof.jkt.as_bytes());
        h.update([0]);
        h.update(proof.jti.as_bytes());
        let digest: [u8; 32] = h.finalize().into();
        let id = digest.get(..16).ok_or(DpopError::Store)?;
        // Keyed: a client choosing its `jti` cannot fill the slot other clients' proofs land in.
        let slot = self.slot_key.hash(b'd', id) % u64::from(self.replay_slots.max(1));
        let expires = proof
            .iat
            .max(now_s)
            .saturating_add(self.max_age_s)
            .saturating_add(self.future_skew_s);
        let key = format!("warden:dpop:{slot}");
        shared::update(store, &key, 8, |cur| {
            let mut kept: Vec<u8> = Vec::with_capacity(IDS_PER_SLOT * RECORD);
            for rec in cur.unwrap_or_default().chunks_exact(RECORD) {
                let (rid, exp) = rec.split_at(16);
                let exp = u64::from_le_bytes(exp.try_into().unwrap_or([0; 8]));
                if exp < now_s {
                    continue; // expired: recycled
                }
                if rid == id {
                    return (None, Err(DpopError::Replay));
                }
                kept.extend_from_slice(rec);
            }
            if kept.len() >= IDS_PER_SLOT * RECORD {
                return (None, Err(DpopError::ReplayCacheFull));
            }
            kept.extend_from_slice(id);
            kept.extend_from_slice(&expires.to_le_bytes());
            (Some(kept), Ok(()))
        })
        .map_err(|_| DpopError::Store)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::{CasRule, MemoryStore};
    use serde_json::json;

    const RFC_HEADER: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19";
    /// RFC 9449 §7.1: the proof sent with the access token to the protected resource.
    const RFC_RESOURCE_PAYLOAD: &str = "eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9";
    const RFC_RESOURCE_SIG: &str =
        "2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";
    const RFC_ACCESS_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
    /// RFC 9449 §6.1: the thumbprint of the example proof key.
    const RFC_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

    fn rfc_proof() -> String {
        format!("{RFC_HEADER}.{RFC_RESOURCE_PAYLOAD}.{RFC_RESOURCE_SIG}")
    }

    fn policy() -> DpopPolicy {
        DpopPolicy::compile(&DpopConfig::default()).unwrap()
    }

    fn target(now_s: u64) -> ProofTarget<'static> {
        ProofTarget {
            method: "GET",
            uri: "https://resource.example.org/protectedresource",
            access_token: RFC_ACCESS_TOKEN,
            now_s,
        }
    }

    /// RFC 7638 §3.1: the example RSA key and its thumbprint.
    #[test]
    fn rfc7638_thumbprint_example() {
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(jwk.as_object().unwrap()).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn rfc9449_example_ath_and_thumbprint() {
        assert_eq!(
            ath_of(RFC_ACCESS_TOKEN),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
        let jwk = json!({"kty": "EC", "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
                         "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA", "crv": "P-256"});
        assert_eq!(thumbprint(jwk.as_object().unwrap()).unwrap(), RFC_JKT);
    }

    #[test]
    fn rfc9449_example_resource_proof_verifies() {
        let p = policy()
            .verify(&rfc_proof(), &target(1_562_262_618))
            .unwrap();
        assert_eq!(p.jkt, RFC_JKT);
        assert_eq!(p.jti, "e1j3V_bKic8-LAEB");
        assert_eq!(p.iat, 1_562_262_618);
    }

    /// RFC 9449 §4.1: the example proof for the token endpoint. Its signature verifies (a bad one would
    /// be `Signature`), but a resource needs `ath` (§7), so it is refused as incomplete.
    #[test]
    fn rfc9449_token_endpoint_proof_has_no_ath_for_a_resource() {
        const TOKEN_PAYLOAD: &str = "eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ";
        const TOKEN_SIG: &str =
            "2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
        let proof = format!("{RFC_HEADER}.{TOKEN_PAYLOAD}.{TOKEN_SIG}");
        let t = ProofTarget {
            method: "POST",
            uri: "https://server.example.com/token",
            access_token: RFC_ACCESS_TOKEN,
            now_s: 1_562_262_616,
        };
        assert_eq!(policy().verify(&proof, &t), Err(DpopError::Malformed));
        let tampered = format!("{RFC_HEADER}.{TOKEN_PAYLOAD}.3{}", &TOKEN_SIG[1..]);
        assert_eq!(policy().verify(&tampered, &t), Err(DpopError::Signature));
    }

    #[test]
    fn each_check_refuses() {
        let p = policy();
        let proof = rfc_proof();
        let t = target(1_562_262_618);
        assert_eq!(
            p.verify(
                &proof,
                &ProofTarget {
                    method: "POST",
                    ..t
                }
            ),
            Err(DpopError::Method)
        );
        assert_eq!(
            p.verify(
                &proof,
                &ProofTarget {
                    uri: "https://resource.example.org/other",
                    ..t
                }
            ),
            Err(DpopError::Uri)
        );
        assert_eq!(
            p.verify(
                &proof,
                &ProofTarget {
                    access_token: "other",
                    ..t
                }
            ),
            Err(DpopError::Ath)
        );
        assert_eq!(
            p.verify(&proof, &target(1_562_262_618 + 61)),
            Err(DpopError::Stale)
        );
        assert_eq!(
            p.verify(&proof, &target(1_562_262_618 - 6)),
            Err(DpopError::Future)
        );
        // A flipped signature byte.
        let bad = format!(
            "{RFC_HEADER}.{RFC_RESOURCE_PAYLOAD}.3{}",
            &RFC_RESOURCE_SIG[1..]
        );
        assert_eq!(p.verify(&bad, &t), Err(DpopError::Signature));
        let only_es384 = DpopPolicy::compile(&DpopConfig {
            algorithms: vec![Algorithm::EdDSA],
            ..DpopConfig::default()
        })
        .unwrap();
        assert_eq!(only_es384.verify(&proof, &t), Err(DpopError::Algorithm));
        let enc = |v: Value| b64url(v.to_string().as_bytes());
        let jwk = json!({"kty": "EC", "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
                         "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA", "crv": "P-256"});
        let wrong_typ = enc(json!({"typ": "JWT", "alg": "ES256", "jwk": jwk}));
        assert_eq!(
            p.verify(
                &format!("{wrong_typ}.{RFC_RESOURCE_PAYLOAD}.{RFC_RESOURCE_SIG}"),
                &t
            ),
            Err(DpopError::Typ)
        );
        let hs = enc(json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk}));
        assert_eq!(
            p.verify(
                &format!("{hs}.{RFC_RESOURCE_PAYLOAD}.{RFC_RESOURCE_SIG}"),
                &t
            ),
            Err(DpopError::Algorithm)
        );
        let mut private = jwk.clone();
        private["d"] = json!("AAAA");
        let private = enc(json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private}));
        assert_eq!(
            p.verify(
                &format!("{private}.{RFC_RESOURCE_PAYLOAD}.{RFC_RESOURCE_SIG}"),
                &t
            ),
            Err(DpopError::Key)
        );
        assert_eq!(p.verify("a.b", &t), Err(DpopError::Malformed));
    }

    #[test]
    fn one_dpop_header_only() {
        let h = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(proof_header(&h(&[("DPoP", "a.b.c")])), Ok(Some("a.b.c")));
        assert_eq!(proof_header(&h(&[])), Ok(None));
        assert_eq!(
            proof_header(&h(&[("dpop", "a.b.c"), ("DPoP", "d.e.f")])),
            Err(DpopError::Multiple)
        );
        assert_eq!(
            proof_header(&h(&[("dpop", "a.b.c, d.e.f")])),
            Err(DpopError::Multiple)
        );
    }

    #[test]
    fn uri_normalisation() {
        assert_eq!(
            normalize_uri("HTTPS://Server.Example.COM:443/token?x=1#f").as_deref(),
            Some("https://server.example.com/token")
        );
        assert_eq!(
            normalize_uri("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080/")
        );
        assert_eq!(normalize_uri("ftp://x/y"), None);
        let p = DpopPolicy::compile(&DpopConfig {
            origin: Some("https://API.example.com:443".into()),
            ..DpopConfig::default()
        })
        .unwrap();
        assert_eq!(
            p.request_uri(&[(":authority".into(), "10.0.0.1:8080".into())], "/a?b")
                .as_deref(),
            Some("https://api.example.com/a")
        );
        let bad = DpopConfig {
            origin: Some("https://x/path".into()),
            ..DpopConfig::default()
        };
        assert_eq!(DpopPolicy::compile(&bad).unwrap_err().field, "dpop.origin");
    }

    #[test]
    fn replay_is_refused_across_workers_and_slots_recycle() {
        for rule in [CasRule::Envoy, CasRule::Kong] {
            let store = MemoryStore::new(rule);
            let p = DpopPolicy::compile(&DpopConfig {
                replay_slots: 1,
                ..DpopConfig::default()
            })
            .unwrap();
            let proof = |jti: &str| Proof {
                jkt: "k".into(),
                jti: jti.into(),
                iat: 1000,
            };
            p.record(&store, &proof("a"), 1000).unwrap();
            assert_eq!(p.record(&store, &proof("a"), 1001), Err(DpopError::Replay));
            // Fill the one slot: further ids are refused, not forgotten.
            for i in 1..IDS_PER_SLOT {
                p.record(&store, &proof(&i.to_string()), 1000).unwrap();
            }
            assert_eq!(
                p.record(&store, &proof("new"), 1000),
                Err(DpopError::ReplayCacheFull)
            );
            // Once the window has passed, every id expires and the slot is reused.
            p.record(&store, &proof("later"), 1000 + 66).unwrap();
            assert_eq!(store.len(), 1);
            assert!(store.bytes() < 100);
        }
    }
}
