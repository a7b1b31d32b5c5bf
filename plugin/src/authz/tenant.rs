//! Tenant isolation: the tenant a request addresses (route template variable, header or host) must be
//! the credential's tenant, or an explicitly federated one. Every source present must agree.

use crate::config::tenancy::TenancyConfig;
use crate::config::ConfigError;

/// Why a request is refused by tenant policy (403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantError {
    /// The request addresses a tenant the credential does not belong to (or the credential has none).
    Mismatch,
    /// The request names no tenant and the config requires one.
    Missing,
}

impl TenantError {
    /// Name for audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantError::Mismatch => "tenant_mismatch",
            TenantError::Missing => "tenant_missing",
        }
    }
}

/// The compiled `tenancy` section.
#[derive(Debug)]
pub struct Tenancy {
    path_variable: String,
    header: Option<String>,
    host_suffix: Option<String>,
    federated: Vec<(String, String)>,
    require: bool,
}

impl Tenancy {
    /// Compiles the section.
    pub fn compile(c: &TenancyConfig) -> Result<Tenancy, ConfigError> {
        if c.path_variable.is_empty() {
            return Err(ConfigError::new(
                "tenancy.path_variable",
                "must not be empty",
            ));
        }
        let header = match &c.header {
            Some(h)
                if h.is_empty()
                    || h.starts_with("x-auth-")
                    || !h
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                return Err(ConfigError::new(
                    "tenancy.header",
                    "not a usable header name",
                ))
            }
            h => h.as_ref().map(|h| h.to_ascii_lowercase()),
        };
        if matches!(&c.host_suffix, Some(s) if !s.starts_with('.') || s.len() < 2) {
            return Err(ConfigError::new(
                "tenancy.host_suffix",
                "must start with `.` (e.g. `.api.example.com`)",
            ));
        }
        for (i, f) in c.federated.iter().enumerate() {
            if f.from.is_empty() || f.to.is_empty() || f.from == f.to {
                return Err(ConfigError::new(
                    format!("tenancy.federated[{i}]"),
                    "`from` and `to` must be two different tenants",
                ));
            }
        }
        Ok(Tenancy {
            path_variable: c.path_variable.clone(),
            header,
            host_suffix: c.host_suffix.as_ref().map(|s| s.to_ascii_lowercase()),
            federated: c
                .federated
                .iter()
                .map(|f| (f.from.clone(), f.to.clone()))
                .collect(),
            require: c.require,
        })
    }

    /// The tenants the request addresses: the route variable, the header (every value) and the host.
    pub fn requested<'a>(
        &self,
        vars: &'a [(&str, String)],
        headers: &'a [(String, String)],
    ) -> Vec<&'a str> {
        let mut out: Vec<&str> = vars
            .iter()
            .filter(|(n, _)| *n == self.path_variable)
            .map(|(_, v)| v.as_str())
            .collect();
        if let Some(h) = &self.header {
            out.extend(
                headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(h))
                    .map(|(_, v)| v.trim()),
            );
        }
        if let Some(suffix) = &self.host_suffix {
            let host = headers
                .iter()
                .find(|(n, _)| n == ":authority" || n.eq_ignore_ascii_case("host"))
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
            let lower = host.to_ascii_lowercase();
            if let Some(t) = lower.strip_suffix(suffix.as_str()) {
                if let Some(orig) = host.get(..t.len()) {
                    if !orig.is_empty() {
                        out.push(orig);
                    }
                }
            }
        }
        out
    }

    /// Checks the credential's tenant against every tenant the request addresses.
    pub fn check(&self, own: Option<&str>, requested: &[&str]) -> Result<(), TenantError> {
        if requested.is_empty() {
            return if self.require {
                Err(TenantError::Missing)
            } else {
                Ok(())
            };
        }
        let Some(own) = own else {
            return Err(TenantError::Mismatch);
        };
        let allowed = |t: &str| {
            t == own
                || self
                    .federated
                    .iter()
                    .any(|(from, to)| from == own && to == t)
        };
        if requested.iter().all(|t| allowed(t)) {
            Ok(())
        } else {
            Err(TenantError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn tenancy(json: &str) -> Result<Tenancy, ConfigError> {
        let c = Config::from_json(format!(r#"{{"tenancy": {json}}}"#).as_bytes()).unwrap();
        Tenancy::compile(&c.tenancy.unwrap())
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn path_header_and_host_sources() {
        let t = tenancy(r#"{"header": "X-Tenant", "host_suffix": ".api.example.com"}"#).unwrap();
        let vars = vec![("tenant", "acme".to_string()), ("id", "7".to_string())];
        let headers = h(&[
            (":authority", "globex.api.example.com:8443"),
            ("x-tenant", " initech "),
        ]);
        assert_eq!(
            t.requested(&vars, &headers),
            vec!["acme", "initech", "globex"]
        );
        assert_eq!(
            t.requested(&[], &h(&[("host", "api.example.com")])),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn mismatch_federation_and_missing() {
        let t = tenancy(r#"{"federated": [{"from": "acme", "to": "globex"}]}"#).unwrap();
        assert_eq!(t.check(Some("acme"), &["acme"]), Ok(()));
        assert_eq!(t.check(Some("acme"), &["globex"]), Ok(()));
        // Federation is one direction only.
        assert_eq!(
            t.check(Some("globex"), &["acme"]),
            Err(TenantError::Mismatch)
        );
        assert_eq!(
            t.check(Some("acme"), &["acme", "initech"]),
            Err(TenantError::Mismatch)
        );
        assert_eq!(t.check(None, &["acme"]), Err(TenantError::Mismatch));
        assert_eq!(t.check(None, &[]), Ok(()));
        let strict = tenancy(r#"{"require": true}"#).unwrap();
        assert_eq!(strict.check(Some("acme"), &[]), Err(TenantError::Missing));
    }

    #[test]
    fn bad_config_names_the_field() {
        for (json, field) in [
            (r#"{"path_variable": ""}"#, "tenancy.path_variable"),
            (r#"{"header": "x-auth-tenant"}"#, "tenancy.header"),
            (r#"{"host_suffix": "example.com"}"#, "tenancy.host_suffix"),
            (
                r#"{"federated": [{"from": "a", "to": "a"}]}"#,
                "tenancy.federated[0]",
            ),
        ] {
            assert_eq!(tenancy(json).unwrap_err().field, field, "{json}");
        }
    }
}
