//! A decision record read back: what `warden replay --audit` needs to decide a request again from
//! its record alone. The identity is taken as recorded (the record reports what the filter proved;
//! there is no token to prove anything again), and the request is rebuilt from the facts the later
//! stages read: method, path, source, user agent, country, time.

use super::VERSION;
use crate::credential::{Claims, CredentialKind, Identity, IdentityKind};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::net::IpAddr;
use std::sync::Arc;

/// The fields of a decision record that replay reads (others are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct Recorded {
    /// Record format version.
    pub v: u32,
    /// When the decision was taken, milliseconds since the epoch.
    pub ts_ms: u64,
    /// Request id.
    pub request_id: String,
    /// Method.
    pub method: String,
    /// Path (no query).
    pub path: String,
    /// Source address.
    #[serde(default)]
    pub source_ip: Option<IpAddr>,
    /// User agent.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// Country code from the edge.
    #[serde(default)]
    pub country: Option<String>,
    /// `jwt` or `api_key`; absent when no caller was proven.
    #[serde(default)]
    pub credential: Option<String>,
    /// Subject.
    #[serde(default)]
    pub subject: Option<String>,
    /// Client id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Provider name.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Token id.
    #[serde(default)]
    pub jti: Option<String>,
    /// Granted scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The claims the later stages read.
    #[serde(default)]
    pub claims: Option<Map<String, Value>>,
    /// The recorded verdict.
    pub decision: String,
    /// The recorded status.
    pub status: u16,
    /// The recorded reason.
    pub reason: String,
    /// The refusal counted as a failure.
    #[serde(default)]
    pub counted_failure: bool,
    /// The recorded risk score.
    #[serde(default)]
    pub risk_score: Option<u8>,
    /// The upstream's status.
    #[serde(default)]
    pub upstream_status: Option<u16>,
    /// Response bytes.
    #[serde(default)]
    pub response_bytes: Option<u64>,
    /// The token's audiences.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// The JSON-RPC method of an MCP call.
    #[serde(default)]
    pub mcp_method: Option<String>,
    /// The tool, resource or prompt the MCP call named.
    #[serde(default)]
    pub mcp_name: Option<String>,
}

impl Recorded {
    /// Parses one record line; a record of another version is refused, naming it.
    pub fn parse(line: &str) -> Result<Recorded, String> {
        let r: Recorded = serde_json::from_str(line).map_err(|e| e.to_string())?;
        if r.v != VERSION {
            return Err(format!(
                "record version {} (this warden reads version {VERSION})",
                r.v
            ));
        }
        Ok(r)
    }

    /// The request headers the later stages read: the user agent, and the country in the header
    /// the (new) config's risk stage reads it from.
    pub fn headers(&self, geo_header: Option<&str>) -> Vec<(String, String)> {
        let mut h = Vec::new();
        if let Some(ua) = &self.user_agent {
            h.push(("user-agent".to_owned(), ua.clone()));
        }
        if let (Some(name), Some(c)) = (geo_header, &self.country) {
            h.push((name.to_owned(), c.clone()));
        }
        h
    }

    /// The MCP call the record names, as the JSON-RPC body that carried it: its method and the
    /// tool, resource or prompt, which is all an endpoint's rules read (`None`: no MCP call).
    pub fn mcp_body(&self) -> Option<Vec<u8>> {
        let method = self.mcp_method.as_deref()?;
        let mut params = serde_json::Map::new();
        if let (Some(key), Some(name)) = (crate::mcp::jsonrpc::target_param(method), &self.mcp_name)
        {
            params.insert(key.to_owned(), Value::String(name.clone()));
        }
        let call =
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        serde_json::to_vec(&call).ok()
    }

    /// The identity the filter proved, as recorded (`None`: the request was refused before a
    /// caller was proven, or the route was anonymous). Its kind and actor chain are worked out
    /// again by the policy, from the recorded claims.
    pub fn identity(&self) -> Option<Identity> {
        let credential = match self.credential.as_deref()? {
            "jwt" => CredentialKind::Jwt,
            "api_key" => CredentialKind::ApiKey,
            _ => return None,
        };
        let subject = self.subject.clone()?;
        let provider = self.issuer.clone().unwrap_or_default();
        let claims = match credential {
            CredentialKind::ApiKey => None,
            CredentialKind::Jwt => {
                let mut extra = self.claims.clone().unwrap_or_default();
                let iat = extra.remove("iat").and_then(|v| v.as_u64());
                Some(Arc::new(Claims {
                    issuer: provider.clone(),
                    subject: subject.clone(),
                    audiences: self.audiences.clone(),
                    exp: u64::MAX,
                    nbf: None,
                    iat,
                    jti: self.jti.clone(),
                    client: self.client_id.clone(),
                    tenant: self.tenant.clone(),
                    scopes: self.scopes.clone(),
                    provider: provider.clone(),
                    extra,
                }))
            }
        };
        Some(Identity {
            credential,
            subject,
            client: self.client_id.clone(),
            tenant: self.tenant.clone(),
            scopes: self.scopes.clone(),
            provider,
            token_id: self.jti.clone(),
            kind: IdentityKind::default(),
            actors: Vec::new(),
            claims,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_a_record_back_into_an_identity_and_request_headers() {
        let line = r#"{"v":1,"ts_ms":1767225600000,"request_id":"r1","method":"GET","path":"/x",
            "source_ip":"203.0.113.7","user_agent":"curl/8","country":"NO","credential":"jwt",
            "subject":"alice","client_id":"web","tenant":"acme","issuer":"corp","jti":"j1",
            "scopes":["a","b"],"claims":{"iat":1767225000,"acr":"mfa","act":{"sub":"bot"}},
            "decision":"allow","status":200,"reason":"ok","mode":"enforce","cache_hit":false,
            "engine_us":3}"#;
        let r = Recorded::parse(&line.replace('\n', " ")).unwrap();
        let id = r.identity().unwrap();
        assert_eq!(id.subject, "alice");
        assert_eq!(id.scopes, vec!["a", "b"]);
        let claims = id.claims.unwrap();
        assert_eq!(claims.iat, Some(1_767_225_000));
        assert_eq!(claims.extra["acr"], "mfa");
        assert_eq!(claims.extra["act"]["sub"], "bot");
        assert!(!claims.extra.contains_key("iat"));
        assert_eq!(
            r.headers(Some("x-geo-country")),
            vec![
                ("user-agent".to_owned(), "curl/8".to_owned()),
                ("x-geo-country".to_owned(), "NO".to_owned())
            ]
        );
    }

    #[test]
    fn no_identity_without_a_proven_caller_and_other_versions_refused() {
        let line = r#"{"v":1,"ts_ms":1,"request_id":"r","method":"GET","path":"/","credential":null,
            "subject":null,"decision":"deny","status":401,"reason":"no_credential"}"#;
        let r = Recorded::parse(&line.replace('\n', " ")).unwrap();
        assert!(r.identity().is_none());
        let v2 = line.replace("\"v\":1", "\"v\":2").replace('\n', " ");
        assert!(Recorded::parse(&v2).unwrap_err().contains("version 2"));
    }
}
