//! Calls Warden makes to other services (remote JWKS, OIDC discovery, introspection, revocation feed):
//! where each call goes on each gateway, and the request line it carries. Sans-IO: this builds the call;
//! the adapter dispatches it (`dispatch_http_call`) and hands the answer back to the engine.
//!
//! Envoy dispatches to a cluster named in its bootstrap; Kong (ngx_wasm_module) to a `host:port`. The
//! config carries both, so one document serves either gateway.

use crate::config::alerts::AlertHeaderConfig;
use crate::config::ConfigError;
use schemars::JsonSchema;
use serde::Deserialize;

/// A remote HTTP service, as the operator configures it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Full URL of the resource, e.g. `https://idp.example.com/oauth2/v1/keys`.
    pub url: String,
    /// Envoy: the cluster (in Envoy's bootstrap) that reaches the service. Required on Envoy.
    #[serde(default)]
    pub envoy_cluster: Option<String>,
    /// Kong: `host:port` to connect to; default: the URL's host and port.
    #[serde(default)]
    pub kong_address: Option<String>,
    /// Timeout of one call, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    2000
}

/// Which gateway the filter runs in; the adapter finds out at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// Envoy (V8, Wasmtime or WAMR).
    Envoy,
    /// Kong 3.4 to 3.10 (ngx_wasm_module).
    Kong,
}

/// A compiled [`ServiceConfig`]: its URL split and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    scheme: &'static str,
    authority: String,
    path: String,
    envoy_cluster: Option<String>,
    kong_address: String,
    timeout_ms: u64,
}

/// One call to dispatch: upstream (cluster or `host:port`), headers (pseudo-headers first), body, timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Envoy cluster name or Kong `host:port`.
    pub upstream: String,
    /// Request headers, `:method`, `:path`, `:authority`, `:scheme` first.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Option<Vec<u8>>,
    /// Timeout, milliseconds.
    pub timeout_ms: u64,
}

/// Longest timeout accepted: a call that hangs longer holds requests that wait on it.
pub const MAX_TIMEOUT_MS: u64 = 60_000;

impl Service {
    /// Checks and splits a service config; `at` is its JSON path for errors.
    pub fn compile(cfg: &ServiceConfig, at: &str) -> Result<Service, ConfigError> {
        let bad = |msg: &str| ConfigError::new(format!("{at}.url"), msg);
        let (scheme, rest) = if let Some(r) = cfg.url.strip_prefix("https://") {
            ("https", r)
        } else if let Some(r) = cfg.url.strip_prefix("http://") {
            ("http", r)
        } else {
            return Err(bad("must start with https:// or http://"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("/")),
            None => (rest, "/"),
        };
        if authority.is_empty()
            || authority.contains('@')
            || !authority
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        {
            return Err(bad("needs a plain host[:port] (no user info)"));
        }
        if path.contains('#') || path.bytes().any(|b| b <= 0x20 || b == 0x7f) {
            return Err(bad("path must be printable, without a fragment"));
        }
        if cfg.timeout_ms == 0 || cfg.timeout_ms > MAX_TIMEOUT_MS {
            return Err(ConfigError::new(
                format!("{at}.timeout_ms"),
                format!("must be between 1 and {MAX_TIMEOUT_MS}"),
            ));
        }
        if matches!(&cfg.envoy_cluster, Some(c) if c.is_empty()) {
            return Err(ConfigError::new(
                format!("{at}.envoy_cluster"),
                "must not be empty",
            ));
        }
        let kong_address = match &cfg.kong_address {
            Some(a) if a.is_empty() || !a.contains(':') => {
                return Err(ConfigError::new(
                    format!("{at}.kong_address"),
                    "must be host:port",
                ))
            }
            Some(a) => a.clone(),
            None if has_port(authority) => authority.to_owned(),
            None if scheme == "https" => format!("{authority}:443"),
            None => format!("{authority}:80"),
        };
        Ok(Service {
            scheme,
            authority: authority.to_owned(),
            path: path.to_owned(),
            envoy_cluster: cfg.envoy_cluster.clone(),
            kong_address,
            timeout_ms: cfg.timeout_ms,
        })
    }

    /// Where calls go on `host`; an error (naming the field) when the config lacks it.
    pub fn upstream(&self, host: HostKind, at: &str) -> Result<&str, ConfigError> {
        match host {
            HostKind::Envoy => self.envoy_cluster.as_deref().ok_or_else(|| {
                ConfigError::new(
                    format!("{at}.envoy_cluster"),
                    "required on Envoy: the cluster that reaches this service",
                )
            }),
            HostKind::Kong => Ok(&self.kong_address),
        }
    }

    /// Timeout of one call, milliseconds.
    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }

    /// The path and query of the configured URL.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// A call to the configured URL on `host`, with extra headers and an optional body.
    pub fn call(
        &self,
        host: HostKind,
        method: &str,
        extra_headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Call, ConfigError> {
        let upstream = self.upstream(host, "service")?.to_owned();
        let mut headers = vec![
            (":method".to_owned(), method.to_owned()),
            (":path".to_owned(), self.path.clone()),
            (":authority".to_owned(), self.authority.clone()),
            (":scheme".to_owned(), self.scheme.to_owned()),
        ];
        headers.extend(
            extra_headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
        );
        Ok(Call {
            upstream,
            headers,
            body,
            timeout_ms: self.timeout_ms,
        })
    }
}

/// A header a call carries (`alerts.header`, `audit.http.header`), checked; the error names `at`.
pub fn header(h: &AlertHeaderConfig, at: &str) -> Result<(String, String), ConfigError> {
    let token = !h.name.is_empty()
        && h.name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-' || b.is_ascii_digit());
    if !token {
        return Err(ConfigError::new(
            format!("{at}.name"),
            "a lower-case header name",
        ));
    }
    if h.value.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(ConfigError::new(format!("{at}.value"), "must be printable"));
    }
    Ok((h.name.clone(), h.value.clone()))
}

fn has_port(authority: &str) -> bool {
    match authority.rfind(':') {
        Some(i) => authority.rfind(']').is_none_or(|j| i > j),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(json: &str) -> Result<Service, ConfigError> {
        Service::compile(
            &serde_json::from_str(json).unwrap(),
            "providers[0].jwks_uri",
        )
    }

    #[test]
    fn envoy_calls_a_cluster_and_kong_a_host_port() {
        let s =
            svc(r#"{"url": "https://idp.example.com/keys?x=1", "envoy_cluster": "idp"}"#).unwrap();
        let c = s
            .call(
                HostKind::Envoy,
                "GET",
                &[("accept", "application/json")],
                None,
            )
            .unwrap();
        assert_eq!(c.upstream, "idp");
        assert_eq!(
            c.headers[..4],
            [
                (":method".into(), "GET".into()),
                (":path".into(), "/keys?x=1".into()),
                (":authority".into(), "idp.example.com".into()),
                (":scheme".into(), "https".into()),
            ]
        );
        assert_eq!(c.headers[4], ("accept".into(), "application/json".into()));
        let k = s.call(HostKind::Kong, "GET", &[], None).unwrap();
        assert_eq!(k.upstream, "idp.example.com:443");
        let plain = svc(r#"{"url": "http://127.0.0.1:9000/jwks"}"#).unwrap();
        assert_eq!(
            plain.upstream(HostKind::Kong, "x").unwrap(),
            "127.0.0.1:9000"
        );
        let v6 = svc(r#"{"url": "http://[::1]/jwks"}"#).unwrap();
        assert_eq!(v6.upstream(HostKind::Kong, "x").unwrap(), "[::1]:80");
    }

    #[test]
    fn envoy_without_a_cluster_names_the_field() {
        let s = svc(r#"{"url": "https://idp.example.com/keys"}"#).unwrap();
        let e = s
            .upstream(HostKind::Envoy, "providers[0].jwks_uri")
            .unwrap_err();
        assert_eq!(e.field, "providers[0].jwks_uri.envoy_cluster");
    }

    #[test]
    fn bad_urls_and_timeouts_are_refused() {
        for url in [
            "ftp://x/y",
            "https://",
            "https://user@idp/x",
            "https://idp/x#frag",
            "idp/x",
        ] {
            let e = svc(&format!(r#"{{"url": "{url}", "envoy_cluster": "c"}}"#)).unwrap_err();
            assert_eq!(e.field, "providers[0].jwks_uri.url", "{url}");
        }
        let e = svc(r#"{"url": "https://idp/x", "timeout_ms": 0}"#).unwrap_err();
        assert_eq!(e.field, "providers[0].jwks_uri.timeout_ms");
        let e = svc(r#"{"url": "https://idp/x", "kong_address": "idp"}"#).unwrap_err();
        assert_eq!(e.field, "providers[0].jwks_uri.kong_address");
    }
}
