//! Route matching: method(s) and path (exact, prefix, or template such as
//! `/tenants/{tenant}/orders/{id}`). First match wins. Paths come in normalised
//! ([`super::target`]); literals compare case-sensitively unless `routing.case_sensitive` is off.

use crate::config::routing::RoutingConfig;
use crate::config::{ConfigError, Mode, RouteConfig, Sensitivity};
use std::sync::Arc;

/// A compiled route rule.
#[derive(Debug)]
pub struct Route {
    /// Name for logs and audit (shared with each decision on the route: not copied per request).
    pub name: Arc<str>,
    methods: Vec<String>,
    path: PathMatcher,
    /// Scopes required (all of; shared with each decision on the route).
    pub scopes: Arc<[String]>,
    /// No credential required.
    pub anonymous: bool,
    /// This route's mode, overriding the top-level one.
    pub mode: Option<Mode>,
    /// How much harm the route can do (a risk feature).
    pub sensitivity: Sensitivity,
    /// Every request must show a step-up, whatever its risk score.
    pub step_up: bool,
    /// Owner isolation, user presence, approval.
    pub guardrails: super::guardrails::Guardrails,
}

#[derive(Debug)]
enum PathMatcher {
    Exact(String),
    Prefix(String),
    Template(Template),
}

/// A path template such as `/tenants/{tenant}/orders/{id}`: literal segments and `{name}`
/// variables, each a whole segment.
#[derive(Debug, Clone)]
pub struct Template {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    Var(String),
}

/// A route that matched, with the values of its template variables.
#[derive(Debug)]
pub struct RouteMatch<'r> {
    /// The rule.
    pub route: &'r Route,
    /// `{name}` → segment value (borrowed from the path), in template order.
    pub vars: Vec<(&'r str, &'r str)>,
}

/// The ordered route rules.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    case_sensitive: bool,
}

/// RFC 6749 §3.3 scope-token characters (NQCHAR without space).
pub(crate) fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

impl RouteTable {
    /// Compiles the `routes` section, matched by the rules of `routing`.
    pub fn compile(
        cfgs: &[RouteConfig],
        routing: &RoutingConfig,
    ) -> Result<RouteTable, ConfigError> {
        let mut routes = Vec::with_capacity(cfgs.len());
        for (i, r) in cfgs.iter().enumerate() {
            let at = format!("routes[{i}]");
            let path = match (&r.path, &r.prefix) {
                (Some(p), None) if !p.contains(['{', '}']) => {
                    if !p.starts_with('/') {
                        return Err(ConfigError::new(
                            format!("{at}.path"),
                            "must start with `/`",
                        ));
                    }
                    PathMatcher::Exact(p.clone())
                }
                (Some(p), None) => PathMatcher::Template(
                    Template::compile(p).map_err(|m| ConfigError::new(format!("{at}.path"), m))?,
                ),
                (None, Some(p)) => {
                    if !p.starts_with('/') {
                        return Err(ConfigError::new(
                            format!("{at}.prefix"),
                            "must start with `/`",
                        ));
                    }
                    PathMatcher::Prefix(p.clone())
                }
                _ => {
                    return Err(ConfigError::new(
                        at,
                        "exactly one of `path` and `prefix` is required",
                    ))
                }
            };
            let mut methods = Vec::with_capacity(r.methods.len());
            for (j, m) in r.methods.iter().enumerate() {
                if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return Err(ConfigError::new(
                        format!("{at}.methods[{j}]"),
                        "not an HTTP method",
                    ));
                }
                methods.push(m.to_ascii_uppercase());
            }
            for (j, s) in r.scopes.iter().enumerate() {
                if !is_scope_token(s) {
                    return Err(ConfigError::new(
                        format!("{at}.scopes[{j}]"),
                        "not a valid scope token",
                    ));
                }
            }
            if r.anonymous && !r.scopes.is_empty() {
                return Err(ConfigError::new(
                    format!("{at}.anonymous"),
                    "an anonymous route cannot require scopes",
                ));
            }
            if r.anonymous && r.step_up {
                return Err(ConfigError::new(
                    format!("{at}.step_up"),
                    "an anonymous route has no caller to step up",
                ));
            }
            let template = match &path {
                PathMatcher::Template(t) => Some(t),
                _ => None,
            };
            let guardrails = super::guardrails::Guardrails::compile(
                r.owner.as_ref(),
                r.presence.as_ref(),
                r.approval.as_ref(),
                &at,
                super::owner::Place::Route(template),
            )?;
            if r.anonymous && !guardrails.is_empty() {
                return Err(ConfigError::new(
                    format!("{at}.anonymous"),
                    "an anonymous route has no caller to hold to `owner`, `presence` or `approval`",
                ));
            }
            routes.push(Route {
                name: r
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("route-{i}"))
                    .into(),
                methods,
                path,
                scopes: r.scopes.as_slice().into(),
                anonymous: r.anonymous,
                mode: r.mode,
                sensitivity: r.sensitivity,
                step_up: r.step_up,
                guardrails,
            });
        }
        Ok(RouteTable {
            routes,
            case_sensitive: routing.case_sensitive,
        })
    }

    /// Whether paths compare case-sensitively (`routing.case_sensitive`).
    pub fn case_sensitive(&self) -> bool {
        self.case_sensitive
    }

    /// The route templates, in order (tenancy finds its path variable in them).
    pub fn templates(&self) -> impl Iterator<Item = &Template> {
        self.routes.iter().filter_map(|r| match &r.path {
            PathMatcher::Template(t) => Some(t),
            _ => None,
        })
    }

    /// Checks that every name in `names` (at JSON path `at`) is a configured route.
    pub fn check_names(known: &[&str], names: &[String], at: &str) -> Result<(), ConfigError> {
        for (j, r) in names.iter().enumerate() {
            if !known.contains(&r.as_str()) {
                return Err(ConfigError::new(
                    format!("{at}[{j}]"),
                    format!("no route named {r:?}"),
                ));
            }
        }
        Ok(())
    }

    /// The rule names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.routes.iter().map(|r| &*r.name).collect()
    }

    /// The first rule matching `method` and the normalised `path` (no query).
    ///
    /// Upstreams commonly treat `/orders/7/` as `/orders/7` and answer `HEAD` like `GET`, so a
    /// rule must too, or a near-miss would escape the rule's scopes: one trailing slash is ignored
    /// for exact and template paths, and a rule for `GET` also covers `HEAD`.
    pub fn find<'r>(&'r self, method: &str, path: &'r str) -> Option<RouteMatch<'r>> {
        self.routes.iter().find_map(|route| {
            let method_ok = route.methods.is_empty()
                || route.methods.iter().any(|m| {
                    m.eq_ignore_ascii_case(method)
                        || (m == "GET" && method.eq_ignore_ascii_case("HEAD"))
                });
            if !method_ok {
                return None;
            }
            let vars = route.path.matches(path, self.case_sensitive)?;
            Some(RouteMatch { route, vars })
        })
    }
}

impl Template {
    /// Compiles a template; the error says what is wrong with it.
    pub fn compile(p: &str) -> Result<Template, String> {
        if !p.starts_with('/') {
            return Err("must start with `/`".into());
        }
        let mut segments = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for seg in p.split('/').skip(1) {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(format!("bad template variable `{{{name}}}`"));
                }
                if names.contains(&name) {
                    return Err(format!("template variable `{name}` used twice"));
                }
                names.push(name);
                segments.push(Segment::Var(name.to_owned()));
            } else if seg.contains(['{', '}']) {
                return Err("a template variable must be a whole segment".into());
            } else {
                segments.push(Segment::Literal(seg.to_owned()));
            }
        }
        Ok(Template { segments })
    }

    /// Whether the template has the variable `name`.
    pub fn has_var(&self, name: &str) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Var(v) if v == name))
    }

    /// The template cut after the variable `name` (`/t/{tenant}/x/{id}` → `/t/{tenant}`).
    pub fn up_to(&self, name: &str) -> Option<Template> {
        let at = self
            .segments
            .iter()
            .position(|s| matches!(s, Segment::Var(v) if v == name))?;
        Some(Template {
            segments: self.segments.get(..=at)?.to_vec(),
        })
    }

    /// The variables of `path` when its leading segments match (all of them when `whole`).
    pub fn captures<'r, 'p>(
        &'r self,
        path: &'p str,
        whole: bool,
        case_sensitive: bool,
    ) -> Option<Vec<(&'r str, &'p str)>> {
        let mut parts = path.strip_prefix('/')?.split('/');
        let mut vars = Vec::new();
        for seg in &self.segments {
            let part = parts.next()?;
            match seg {
                Segment::Literal(l) if same(l, part, case_sensitive) => {}
                Segment::Literal(_) => return None,
                Segment::Var(_) if part.is_empty() => return None,
                Segment::Var(name) => vars.push((name.as_str(), part)),
            }
        }
        (!whole || parts.next().is_none()).then_some(vars)
    }
}

impl PartialEq for Template {
    fn eq(&self, other: &Template) -> bool {
        self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|pair| match pair {
                    (Segment::Literal(a), Segment::Literal(b)) => a == b,
                    (Segment::Var(a), Segment::Var(b)) => a == b,
                    _ => false,
                })
    }
}

/// Whether two path pieces are equal under the case rule.
fn same(a: &str, b: &str, case_sensitive: bool) -> bool {
    if case_sensitive {
        a == b
    } else {
        a.eq_ignore_ascii_case(b)
    }
}

impl PathMatcher {
    fn matches<'r>(
        &'r self,
        path: &'r str,
        case_sensitive: bool,
    ) -> Option<Vec<(&'r str, &'r str)>> {
        let trimmed = match path.strip_suffix('/') {
            Some(t) if !t.is_empty() => t,
            _ => path,
        };
        match self {
            PathMatcher::Exact(p) => {
                (same(p, path, case_sensitive) || same(p, trimmed, case_sensitive)).then(Vec::new)
            }
            PathMatcher::Prefix(p) => path
                .get(..p.len())
                .is_some_and(|head| same(p, head, case_sensitive))
                .then(Vec::new),
            PathMatcher::Template(t) => t.captures(trimmed, true, case_sensitive),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The name of the rule `t` matches for `method` and `path`.
    fn name<'t>(t: &'t RouteTable, method: &str, path: &'t str) -> Option<&'t str> {
        t.find(method, path).map(|m| &*m.route.name)
    }
    use crate::config::Config;

    fn table(json: &str) -> RouteTable {
        let c = Config::from_json(format!(r#"{{"routes": {json}}}"#).as_bytes()).unwrap();
        RouteTable::compile(&c.routes, &c.routing).unwrap()
    }

    #[test]
    fn template_captures_variables() {
        let t = table(r#"[{"path": "/tenants/{tenant}/orders/{id}", "scopes": ["orders:read"]}]"#);
        let m = t.find("GET", "/tenants/acme/orders/7").unwrap();
        assert_eq!(m.vars, vec![("tenant", "acme"), ("id", "7")]);
        assert!(t.find("GET", "/tenants/acme/orders").is_none());
        assert!(t.find("GET", "/tenants/acme/orders/7/items").is_none());
        assert!(t.find("GET", "/tenants//orders/7").is_none());
    }

    #[test]
    fn first_match_wins_and_methods_filter() {
        let t = table(
            r#"[{"name": "w", "methods": ["post"], "prefix": "/orders"},
                {"name": "r", "prefix": "/orders"},
                {"name": "pub", "path": "/health", "anonymous": true}]"#,
        );
        assert_eq!(name(&t, "POST", "/orders/1"), Some("w"));
        assert_eq!(name(&t, "GET", "/orders/1"), Some("r"));
        assert!(t.find("GET", "/health").unwrap().route.anonymous);
        assert!(t.find("GET", "/health/x").is_none());
    }

    #[test]
    fn near_misses_still_match() {
        let t = table(
            r#"[{"name": "one", "methods": ["GET"], "path": "/orders/{id}"},
                {"name": "create", "methods": ["POST"], "path": "/orders"}]"#,
        );
        assert_eq!(name(&t, "GET", "/orders/7/"), Some("one"));
        assert_eq!(name(&t, "HEAD", "/orders/7"), Some("one"));
        assert_eq!(name(&t, "POST", "/orders/"), Some("create"));
        assert!(t.find("GET", "/orders/7/x").is_none());
        assert!(t.find("PUT", "/orders/7").is_none());
    }

    #[test]
    fn case_rule() {
        let routes = r#"[{"name": "admin", "prefix": "/admin"},
                         {"name": "one", "path": "/Orders/{id}"},
                         {"name": "exact", "path": "/health"}]"#;
        let t = table(routes);
        assert!(t.find("GET", "/ADMIN/x").is_none());
        assert!(t.find("GET", "/orders/7").is_none());
        assert_eq!(name(&t, "GET", "/Orders/7"), Some("one"));
        let c = Config::from_json(
            format!(r#"{{"routes": {routes}, "routing": {{"case_sensitive": false}}}}"#).as_bytes(),
        )
        .unwrap();
        let t = RouteTable::compile(&c.routes, &c.routing).unwrap();
        assert_eq!(name(&t, "GET", "/ADMIN/x"), Some("admin"));
        assert_eq!(name(&t, "GET", "/aDmIn"), Some("admin"));
        let m = t.find("GET", "/ORDERS/Ab7").unwrap();
        assert_eq!(m.vars, vec![("id", "Ab7")]);
        assert_eq!(name(&t, "GET", "/HEALTH/"), Some("exact"));
    }

    #[test]
    fn template_prefixes() {
        let t = Template::compile("/t/{tenant}/x/{id}").unwrap();
        let p = t.up_to("tenant").unwrap();
        assert_eq!(p, Template::compile("/t/{tenant}").unwrap());
        assert_eq!(
            p.captures("/t/acme/anything/else", false, true),
            Some(vec![("tenant", "acme")])
        );
        assert_eq!(p.captures("/t/acme/anything", true, true), None);
        assert_eq!(p.captures("/T/acme", false, true), None);
        assert!(p.captures("/T/acme", false, false).is_some());
        assert!(t.up_to("nope").is_none());
        assert!(t.has_var("id"));
    }

    #[test]
    fn bad_routes_name_the_field() {
        for (json, field) in [
            (r#"[{"path": "orders"}]"#, "routes[0].path"),
            (r#"[{"path": "/a/{x}/{x}"}]"#, "routes[0].path"),
            (r#"[{"path": "/a", "prefix": "/b"}]"#, "routes[0]"),
            (
                r#"[{"path": "/a", "methods": ["G T"]}]"#,
                "routes[0].methods[0]",
            ),
            (
                r#"[{"path": "/a", "scopes": ["a\"b"]}]"#,
                "routes[0].scopes[0]",
            ),
            (
                r#"[{"path": "/a", "anonymous": true, "scopes": ["x"]}]"#,
                "routes[0].anonymous",
            ),
        ] {
            let c = Config::from_json(format!(r#"{{"routes": {json}}}"#).as_bytes()).unwrap();
            assert_eq!(
                RouteTable::compile(&c.routes, &c.routing)
                    .unwrap_err()
                    .field,
                field,
                "{json}"
            );
        }
    }
}
