//! Tenant isolation: the tenant a request addresses (path, header or host) must be the credential's
//! tenant, or an explicitly federated one. Every source present must agree. The path is read with
//! tenancy's own templates (`tenancy.paths`, by default every route template's tenant prefix),
//! whichever route matched: a method or sub-path no route lists addresses its tenant all the same.

use super::routes::{RouteTable, Template};
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
    paths: Vec<Template>,
    case_sensitive: bool,
    header: Option<String>,
    host_suffix: Option<String>,
    federated: Vec<(String, String)>,
    require: bool,
}

impl Tenancy {
    /// Compiles the section; `routes` give the default tenant paths and the case rule.
    pub fn compile(c: &TenancyConfig, routes: &RouteTable) -> Result<Tenancy, ConfigError> {
        if c.path_variable.is_empty() {
            return Err(ConfigError::new(
                "tenancy.path_variable",
                "must not be empty",
            ));
        }
        let mut paths: Vec<Template> = Vec::new();
        for (i, p) in c.paths.iter().enumerate() {
            let at = format!("tenancy.paths[{i}]");
            let t = Template::compile(p).map_err(|m| ConfigError::new(&at, m))?;
            if !t.has_var(&c.path_variable) {
                let m = format!("no `{{{}}}` variable", c.path_variable);
                return Err(ConfigError::new(at, m));
            }
            paths.push(t);
        }
        if c.paths.is_empty() {
            for t in routes.templates() {
                if let Some(p) = t.up_to(&c.path_variable) {
                    if !paths.contains(&p) {
                        paths.push(p);
                    }
                }
            }
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
            paths,
            case_sensitive: routes.case_sensitive(),
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

    /// The tenants the request addresses: the matched route's variable, every tenant path that
    /// matches the normalised `path`, the header (every value) and the host.
    pub fn requested<'a>(
        &self,
        vars: &'a [(&str, &'a str)],
        path: &'a str,
        headers: &'a [(String, String)],
    ) -> Vec<std::borrow::Cow<'a, str>> {
        use std::borrow::Cow;
        let mut out: Vec<Cow<'a, str>> = vars
            .iter()
            .filter(|(n, _)| *n == self.path_variable)
            .map(|(_, v)| Cow::Borrowed(*v))
            .collect();
        for t in &self.paths {
            let found = t
                .captures(path, false, self.case_sensitive)
                .unwrap_or_default();
            out.extend(
                found
                    .into_iter()
                    .filter(|(n, _)| *n == self.path_variable)
                    .map(|(_, v)| Cow::Borrowed(v)),
            );
        }
        if let Some(h) = &self.header {
            out.extend(crate::upstream::header_values(headers, h).map(Cow::Borrowed));
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
                        out.push(Cow::Borrowed(orig));
                    }
                }
            }
        }
        out
    }

    /// Checks the credential's tenant against every tenant the request addresses.
    pub fn check<S: AsRef<str>>(
        &self,
        own: Option<&str>,
        requested: &[S],
    ) -> Result<(), TenantError> {
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
        let same = |a: &str, b: &str| {
            if self.case_sensitive {
                a == b
            } else {
                a.eq_ignore_ascii_case(b)
            }
        };
        let allowed = |t: &str| {
            same(t, own)
                || self
                    .federated
                    .iter()
                    .any(|(from, to)| same(from, own) && same(to, t))
        };
        if requested.iter().all(|t| allowed(t.as_ref())) {
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
        with_routes(json, "[]", "{}")
    }

    fn with_routes(json: &str, routes: &str, routing: &str) -> Result<Tenancy, ConfigError> {
        let c = Config::from_json(
            format!(r#"{{"tenancy": {json}, "routes": {routes}, "routing": {routing}}}"#)
                .as_bytes(),
        )
        .unwrap();
        let table = RouteTable::compile(&c.routes, &c.routing).unwrap();
        Tenancy::compile(&c.tenancy.unwrap(), &table)
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
        let vars = vec![("tenant", "acme"), ("id", "7")];
        let headers = h(&[
            (":authority", "globex.api.example.com:8443"),
            ("x-tenant", " initech "),
        ]);
        assert_eq!(
            t.requested(&vars, "/", &headers),
            vec!["acme", "initech", "globex"]
        );
        assert!(t
            .requested(&[], "/", &h(&[("host", "api.example.com")]))
            .is_empty());
        // Underscore spellings of the header are the header.
        assert_eq!(
            t.requested(&[], "/", &h(&[("x_tenant", "evil")])),
            vec!["evil"]
        );
    }

    #[test]
    fn the_path_names_the_tenant_whichever_route_matched() {
        let routes = r#"[{"methods": ["GET"], "path": "/tenants/{tenant}/orders/{id}"},
                         {"path": "/t/{tenant}/x"}]"#;
        let t = with_routes("{}", routes, "{}").unwrap();
        assert_eq!(
            t.requested(&[], "/tenants/globex/orders/1/items", &[]),
            vec!["globex"]
        );
        assert_eq!(t.requested(&[], "/t/initech", &[]), vec!["initech"]);
        assert!(t.requested(&[], "/TENANTS/globex/orders/1", &[]).is_empty());
        assert_eq!(
            t.check(
                Some("acme"),
                &t.requested(&[], "/tenants/globex/orders/1", &[])
            ),
            Err(TenantError::Mismatch)
        );
        // Case-insensitive routing: the path and the tenant compare without case.
        let t = with_routes("{}", routes, r#"{"case_sensitive": false}"#).unwrap();
        let asked = t.requested(&[], "/TENANTS/Globex/orders/1", &[]);
        assert_eq!(asked, vec!["Globex"]);
        assert_eq!(t.check(Some("globex"), &asked), Ok(()));
        assert_eq!(t.check(Some("acme"), &asked), Err(TenantError::Mismatch));
        // Explicit paths replace the derived ones.
        let t = with_routes(r#"{"paths": ["/org/{tenant}"]}"#, routes, "{}").unwrap();
        assert_eq!(t.requested(&[], "/org/a/b", &[]), vec!["a"]);
        assert!(t.requested(&[], "/t/initech", &[]).is_empty());
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
        assert_eq!(t.check::<&str>(None, &[]), Ok(()));
        let strict = tenancy(r#"{"require": true}"#).unwrap();
        assert_eq!(
            strict.check::<&str>(Some("acme"), &[]),
            Err(TenantError::Missing)
        );
    }

    #[test]
    fn bad_config_names_the_field() {
        for (json, field) in [
            (r#"{"path_variable": ""}"#, "tenancy.path_variable"),
            (r#"{"header": "x-auth-tenant"}"#, "tenancy.header"),
            (r#"{"host_suffix": "example.com"}"#, "tenancy.host_suffix"),
            (r#"{"paths": ["/org/{id}"]}"#, "tenancy.paths[0]"),
            (r#"{"paths": ["org/{tenant}"]}"#, "tenancy.paths[0]"),
            (
                r#"{"federated": [{"from": "a", "to": "a"}]}"#,
                "tenancy.federated[0]",
            ),
        ] {
            assert_eq!(tenancy(json).unwrap_err().field, field, "{json}");
        }
    }
}
