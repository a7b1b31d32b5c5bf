//! Owner isolation: a route or an MCP rule names the request part that says whose data it is (a
//! path variable, a query parameter, a header, a `tools/call` argument). The request passes only
//! when every owner it names is the token's subject (for a delegated call, RFC 8693, that is the
//! user the agent acts for, never the agent), or when the token carries a configured role (support
//! staff). An agent working for alice cannot reach bob's records by changing `/users/alice/...`.

use super::routes::Template;
use crate::config::guardrails::OwnerConfig;
use crate::config::ConfigError;
use crate::credential::Identity;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// Why owner isolation refused a request (403, `access_denied`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerError {
    /// The request names another user's data.
    Mismatch,
    /// The request names no owner where the rule requires one.
    Missing,
}

impl OwnerError {
    /// Name for audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerError::Mismatch => "owner_mismatch",
            OwnerError::Missing => "owner_missing",
        }
    }
}

/// Where an owner rule sits: a route (path, query, header) or an MCP rule (argument, header).
#[derive(Debug, Clone, Copy)]
pub enum Place<'a> {
    /// A route, with its path template (none for an exact path or a prefix).
    Route(Option<&'a Template>),
    /// An MCP rule for this JSON-RPC method.
    Mcp(&'a str),
}

/// A compiled owner rule.
#[derive(Debug, Clone)]
pub struct Owner {
    path_variable: Option<String>,
    query: Option<String>,
    header: Option<String>,
    argument: Option<String>,
    roles: Vec<String>,
    roles_claim: String,
}

/// Whether `h` may name an owner: a plain header name outside Warden's own namespace.
fn usable_header(h: &str) -> bool {
    !h.is_empty()
        && !h.to_ascii_lowercase().starts_with("x-auth-")
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Owner {
    /// Compiles `c`, found at `at`, for `place`.
    pub fn compile(c: &OwnerConfig, at: &str, place: Place<'_>) -> Result<Owner, ConfigError> {
        let field = |f: &str| format!("{at}.{f}");
        match place {
            Place::Route(template) => {
                if c.argument.is_some() {
                    return Err(ConfigError::new(
                        field("argument"),
                        "an argument names the owner in an MCP rule only",
                    ));
                }
                if let Some(v) = &c.path_variable {
                    if !template.is_some_and(|t| t.has_var(v)) {
                        return Err(ConfigError::new(
                            field("path_variable"),
                            format!("the route's path has no `{{{v}}}` variable"),
                        ));
                    }
                }
            }
            Place::Mcp(method) => {
                for (name, set) in [
                    ("path_variable", c.path_variable.is_some()),
                    ("query", c.query.is_some()),
                ] {
                    if set {
                        return Err(ConfigError::new(
                            field(name),
                            "an MCP rule names the owner by `argument` or `header`",
                        ));
                    }
                }
                if c.argument.is_some() && method != "tools/call" {
                    return Err(ConfigError::new(
                        field("argument"),
                        "an `argument` needs `method: tools/call`",
                    ));
                }
            }
        }
        if c.path_variable.is_none()
            && c.query.is_none()
            && c.header.is_none()
            && c.argument.is_none()
        {
            return Err(ConfigError::new(
                at,
                "name the owner: `path_variable`, `query`, `header` or `argument`",
            ));
        }
        for (name, v) in [
            ("path_variable", &c.path_variable),
            ("query", &c.query),
            ("argument", &c.argument),
        ] {
            if v.as_deref() == Some("") {
                return Err(ConfigError::new(field(name), "must not be empty"));
            }
        }
        if let Some(h) = &c.header {
            if !usable_header(h) {
                return Err(ConfigError::new(
                    field("header"),
                    "not a usable header name",
                ));
            }
        }
        if c.roles_claim.is_empty() {
            return Err(ConfigError::new(field("roles_claim"), "must not be empty"));
        }
        if let Some(i) = c.roles.iter().position(String::is_empty) {
            return Err(ConfigError::new(
                format!("{at}.roles[{i}]"),
                "must not be empty",
            ));
        }
        Ok(Owner {
            path_variable: c.path_variable.clone(),
            query: c.query.clone(),
            header: c.header.as_ref().map(|h| h.to_ascii_lowercase()),
            argument: c.argument.clone(),
            roles: c.roles.clone(),
            roles_claim: c.roles_claim.clone(),
        })
    }

    /// The owners a request names: the route's path variable, every occurrence of the query
    /// parameter in `path` (percent- and `+`-decoded, as a form would be), every value of the header.
    pub fn requested<'a>(
        &self,
        vars: &'a [(&str, &'a str)],
        path: &'a str,
        headers: &'a [(String, String)],
    ) -> Vec<Cow<'a, str>> {
        let mut out: Vec<Cow<'a, str>> = Vec::new();
        if let Some(v) = &self.path_variable {
            out.extend(
                vars.iter()
                    .filter(|(n, _)| n == v)
                    .map(|(_, value)| Cow::Borrowed(*value)),
            );
        }
        if let (Some(q), Some((_, query))) = (&self.query, path.split_once('?')) {
            out.extend(
                form_urlencoded::parse(query.as_bytes())
                    .filter(|(n, _)| n == q)
                    .map(|(_, v)| v),
            );
        }
        if let Some(h) = &self.header {
            out.extend(crate::upstream::header_values(headers, h).map(Cow::Borrowed));
        }
        out
    }

    /// The owner a `tools/call` names in its arguments: `None` when the rule reads no argument;
    /// `Some("")` when the argument is missing or not a string (an empty owner is nobody's subject).
    pub fn from_arguments(&self, arguments: Option<&Map<String, Value>>) -> Option<String> {
        let name = self.argument.as_ref()?;
        let value = arguments.and_then(|a| a.get(name)).and_then(Value::as_str);
        Some(value.unwrap_or_default().to_owned())
    }

    /// Whether `id` may reach the data of every owner in `named`: each is its subject, or the
    /// token carries one of the rule's roles. Naming none (or an empty one) is refused.
    pub fn check(&self, id: &Identity, named: &[Cow<'_, str>]) -> Result<(), OwnerError> {
        if self.has_role(id) {
            return Ok(());
        }
        // An empty value (a missing argument, `?user=`) names nobody.
        if named.is_empty() || named.iter().any(|n| n.is_empty()) {
            return Err(OwnerError::Missing);
        }
        if named.iter().all(|n| *n == id.subject.as_str()) {
            Ok(())
        } else {
            Err(OwnerError::Mismatch)
        }
    }

    /// The token's roles (`roles_claim`: an array of strings or a space-separated string) hold one
    /// of the rule's.
    fn has_role(&self, id: &Identity) -> bool {
        if self.roles.is_empty() {
            return false;
        }
        let Some(claim) = id
            .claims
            .as_deref()
            .and_then(|c| c.extra.get(&self.roles_claim))
        else {
            return false;
        };
        let held = |r: &str| self.roles.iter().any(|want| want == r);
        match claim {
            Value::String(s) => s.split(' ').any(held),
            Value::Array(items) => items.iter().filter_map(Value::as_str).any(held),
            _ => false,
        }
    }
}
