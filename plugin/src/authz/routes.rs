//! Route matching: method(s) and path (exact, prefix, or template such as
//! `/tenants/{tenant}/orders/{id}`). First match wins.

use crate::config::{ConfigError, Mode, RouteConfig, Sensitivity};

/// A compiled route rule.
#[derive(Debug)]
pub struct Route {
    /// Name for logs and audit.
    pub name: String,
    methods: Vec<String>,
    path: PathMatcher,
    /// Scopes required (all of).
    pub scopes: Vec<String>,
    /// No credential required.
    pub anonymous: bool,
    /// This route's mode, overriding the top-level one.
    pub mode: Option<Mode>,
    /// How much harm the route can do (a risk feature).
    pub sensitivity: Sensitivity,
    /// Every request must show a step-up, whatever its risk score.
    pub step_up: bool,
}

#[derive(Debug)]
enum PathMatcher {
    Exact(String),
    Prefix(String),
    Template(Vec<Segment>),
}

#[derive(Debug)]
enum Segment {
    Literal(String),
    Var(String),
}

/// A route that matched, with the values of its template variables.
#[derive(Debug)]
pub struct RouteMatch<'r> {
    /// The rule.
    pub route: &'r Route,
    /// `{name}` → segment value, in template order.
    pub vars: Vec<(&'r str, String)>,
}

/// The ordered route rules.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

/// RFC 6749 §3.3 scope-token characters (NQCHAR without space).
pub(crate) fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

impl RouteTable {
    /// Compiles the `routes` section.
    pub fn compile(cfgs: &[RouteConfig]) -> Result<RouteTable, ConfigError> {
        let mut routes = Vec::with_capacity(cfgs.len());
        for (i, r) in cfgs.iter().enumerate() {
            let at = format!("routes[{i}]");
            let path = match (&r.path, &r.prefix) {
                (Some(p), None) => {
                    compile_path(p).map_err(|m| ConfigError::new(format!("{at}.path"), m))?
                }
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
            routes.push(Route {
                name: r.name.clone().unwrap_or_else(|| format!("route-{i}")),
                methods,
                path,
                scopes: r.scopes.clone(),
                anonymous: r.anonymous,
                mode: r.mode,
                sensitivity: r.sensitivity,
                step_up: r.step_up,
            });
        }
        Ok(RouteTable { routes })
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
        self.routes.iter().map(|r| r.name.as_str()).collect()
    }

    /// The first rule matching `method` and `path` (query string ignored).
    ///
    /// Upstreams commonly treat `/orders/7/` as `/orders/7` and answer `HEAD` like `GET`, so a
    /// rule must too, or a near-miss would escape the rule's scopes: one trailing slash is ignored
    /// for exact and template paths, and a rule for `GET` also covers `HEAD`.
    pub fn find(&self, method: &str, path: &str) -> Option<RouteMatch<'_>> {
        let path = path.split(['?', '#']).next().unwrap_or("");
        self.routes.iter().find_map(|route| {
            let method_ok = route.methods.is_empty()
                || route.methods.iter().any(|m| {
                    m.eq_ignore_ascii_case(method)
                        || (m == "GET" && method.eq_ignore_ascii_case("HEAD"))
                });
            if !method_ok {
                return None;
            }
            let vars = route.path.matches(path)?;
            Some(RouteMatch { route, vars })
        })
    }
}

fn compile_path(p: &str) -> Result<PathMatcher, String> {
    if !p.starts_with('/') {
        return Err("must start with `/`".into());
    }
    if !p.contains('{') && !p.contains('}') {
        return Ok(PathMatcher::Exact(p.to_owned()));
    }
    let mut segments = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for seg in p.split('/').skip(1) {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
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
    Ok(PathMatcher::Template(segments))
}

impl PathMatcher {
    fn matches<'r>(&'r self, path: &str) -> Option<Vec<(&'r str, String)>> {
        let trimmed = match path.strip_suffix('/') {
            Some(t) if !t.is_empty() => t,
            _ => path,
        };
        match self {
            PathMatcher::Exact(p) => (p == path || p == trimmed).then(Vec::new),
            PathMatcher::Prefix(p) => path.starts_with(p.as_str()).then(Vec::new),
            PathMatcher::Template(segments) => {
                let mut parts = trimmed.strip_prefix('/')?.split('/');
                let mut vars = Vec::new();
                for seg in segments {
                    let part = parts.next()?;
                    match seg {
                        Segment::Literal(l) if l == part => {}
                        Segment::Literal(_) => return None,
                        Segment::Var(_) if part.is_empty() => return None,
                        Segment::Var(name) => vars.push((name.as_str(), part.to_owned())),
                    }
                }
                parts.next().is_none().then_some(vars)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn table(json: &str) -> RouteTable {
        let c = Config::from_json(format!(r#"{{"routes": {json}}}"#).as_bytes()).unwrap();
        RouteTable::compile(&c.routes).unwrap()
    }

    #[test]
    fn template_captures_variables() {
        let t = table(r#"[{"path": "/tenants/{tenant}/orders/{id}", "scopes": ["orders:read"]}]"#);
        let m = t.find("GET", "/tenants/acme/orders/7?x=1").unwrap();
        assert_eq!(
            m.vars,
            vec![("tenant", "acme".to_string()), ("id", "7".to_string())]
        );
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
        assert_eq!(t.find("POST", "/orders/1").unwrap().route.name, "w");
        assert_eq!(t.find("GET", "/orders/1").unwrap().route.name, "r");
        assert!(t.find("GET", "/health").unwrap().route.anonymous);
        assert!(t.find("GET", "/health/x").is_none());
    }

    #[test]
    fn near_misses_still_match() {
        let t = table(
            r#"[{"name": "one", "methods": ["GET"], "path": "/orders/{id}"},
                {"name": "create", "methods": ["POST"], "path": "/orders"}]"#,
        );
        assert_eq!(t.find("GET", "/orders/7/").unwrap().route.name, "one");
        assert_eq!(t.find("HEAD", "/orders/7").unwrap().route.name, "one");
        assert_eq!(t.find("POST", "/orders/").unwrap().route.name, "create");
        assert!(t.find("GET", "/orders/7//").is_none());
        assert!(t.find("PUT", "/orders/7").is_none());
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
                RouteTable::compile(&c.routes).unwrap_err().field,
                field,
                "{json}"
            );
        }
    }
}
