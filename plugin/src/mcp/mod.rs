//! MCP endpoints (Model Context Protocol, Streamable HTTP) guarded as OAuth resource servers: the
//! RFC 9728 metadata, the JSON-RPC call a request makes (`jsonrpc`), what it needs (per-method and
//! per-tool rules, audience binding to the endpoint's resource, RFC 8707), the challenges that
//! point clients at the metadata, and the `tools/list` answers cut to what the caller may call
//! (`tools_list`). The engine asks the adapter for the body ([`crate::decision::Step::NeedBody`]).

pub mod jsonrpc;
pub mod tools_list;

use crate::authz::guardrails::Guardrails;
use crate::authz::owner::Place;
use crate::authz::pattern;
use crate::authz::routes::is_scope_token;
use crate::config::mcp::{Batches, ChallengeScopes, DefaultAction, McpEndpointConfig};
use crate::config::{Config, ConfigError, Sensitivity};
use crate::credential::Identity;
use crate::decision::Body;
use crate::reply::{json_reply, Denial, LocalReply};
use jsonrpc::{code, Call};
use serde_json::Value;

/// Largest `max_body_bytes` / `max_response_bytes` accepted (what the filter may buffer).
pub const MAX_BUFFER_BYTES: u32 = 16 << 20;

/// The RFC 9728 well-known prefix.
pub const METADATA_PREFIX: &str = "/.well-known/oauth-protected-resource";

/// Why an MCP request is refused before (or apart from) the token checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpError {
    /// The body is larger than `max_body_bytes` (413).
    BodyTooLarge,
    /// The body has no length and the gateway cannot read it safely (411).
    LengthRequired,
    /// The body is not JSON (400, JSON-RPC -32700).
    Parse,
    /// Not a request the endpoint takes: a refused batch, no `method`, no tool name (400,
    /// JSON-RPC -32600), with the message's id when it had one.
    InvalidRequest(Option<Value>),
    /// `Mcp-Method` / `Mcp-Name` missing or not matching the body (400, JSON-RPC -32020).
    HeaderMismatch(Option<Value>),
    /// A rule refuses the call, or no rule names its tool, resource or prompt (403).
    Denied,
    /// Not a method of the Streamable HTTP transport (405): its body would reach the server unread.
    MethodNotAllowed,
}

impl McpError {
    /// Reason for the audit record.
    pub fn as_str(&self) -> &'static str {
        match self {
            McpError::BodyTooLarge => "mcp_body_too_large",
            McpError::LengthRequired => "mcp_length_required",
            McpError::Parse => "mcp_parse_error",
            McpError::InvalidRequest(_) => "mcp_invalid_request",
            McpError::HeaderMismatch(_) => "mcp_header_mismatch",
            McpError::Denied => "mcp_denied",
            McpError::MethodNotAllowed => "mcp_method_not_allowed",
        }
    }

    /// The reply: JSON-RPC error bodies where the client speaks JSON-RPC to the endpoint.
    pub fn reply(&self, request_id: &str) -> LocalReply {
        let rpc = |id: Option<&Value>, code, message: &str| LocalReply {
            status: 400,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("cache-control".into(), "no-store".into()),
            ],
            body: jsonrpc::error_body(id, code, message),
        };
        match self {
            McpError::BodyTooLarge => json_reply(
                413,
                Vec::new(),
                "request_too_large",
                "the JSON-RPC request body is too large",
                request_id,
            ),
            McpError::LengthRequired => json_reply(
                411,
                Vec::new(),
                "invalid_request",
                "send the JSON-RPC request with a content-length",
                request_id,
            ),
            McpError::Parse => rpc(None, code::PARSE_ERROR, "Parse error"),
            McpError::InvalidRequest(id) => {
                rpc(id.as_ref(), code::INVALID_REQUEST, "Invalid Request")
            }
            McpError::HeaderMismatch(id) => rpc(
                id.as_ref(),
                code::HEADER_MISMATCH,
                "Mcp-Method or Mcp-Name header missing or not matching the request body",
            ),
            McpError::MethodNotAllowed => json_reply(
                405,
                vec![("allow".into(), "GET, POST, DELETE".into())],
                "invalid_request",
                "the MCP endpoint takes GET, POST and DELETE",
                request_id,
            ),
            McpError::Denied => json_reply(
                403,
                Vec::new(),
                "access_denied",
                "the call is not allowed by policy",
                request_id,
            ),
        }
    }
}

/// A compiled rule.
#[derive(Debug)]
struct Rule {
    method: String,
    target: Option<String>,
    scopes: Vec<String>,
    deny: bool,
    step_up: bool,
    sensitivity: Option<Sensitivity>,
    rate_limit: Option<String>,
    guardrails: Guardrails,
}

/// A compiled endpoint.
#[derive(Debug)]
pub struct Endpoint {
    /// Name for logs and audit.
    pub name: String,
    path: String,
    resource: String,
    /// Where the RFC 9728 document is served, as an absolute URL (the `resource_metadata` of
    /// challenges).
    metadata_url: String,
    /// The RFC 9728 document.
    metadata: String,
    challenge_scopes: ChallengeScopes,
    /// Largest request body read, bytes.
    pub max_body_bytes: u32,
    max_response_bytes: u32,
    batches: Batches,
    forward_credentials: bool,
    default: DefaultAction,
    scopes: Vec<String>,
    rules: Vec<Rule>,
}

/// The MCP endpoints of a config.
#[derive(Debug, Default)]
pub struct Mcp {
    endpoints: Vec<Endpoint>,
}

/// What the engine learnt of an MCP request: the endpoint, the calls and what they need. Kept in
/// the decision (audit, the `tools/list` filter).
#[derive(Debug, Clone, Default)]
pub struct Inspected {
    /// Index of the endpoint in the config.
    pub endpoint: usize,
    /// The endpoint's name.
    pub name: String,
    /// The calls of the body (several for a batch under `batches: each`); empty until read.
    pub calls: Vec<Call>,
    /// `MCP-Protocol-Version`, when sent.
    pub protocol_version: Option<String>,
    /// Scopes the calls need (endpoint and rules), for challenges.
    pub needed: Vec<String>,
    /// The most sensitive matched rule's sensitivity.
    pub sensitivity: Option<Sensitivity>,
    /// A matched rule demands a step-up.
    pub step_up: bool,
    /// Rate-limit policies the matched rules name.
    pub rate_limits: Vec<String>,
    /// A matched rule (or the default) refuses a call.
    pub denied: bool,
    /// The calls whose rule carries guardrails: the rule's index, and the owner the call's
    /// arguments name (when the rule reads one).
    pub guarded: Vec<(usize, Option<String>)>,
    /// `resource_metadata` of challenges.
    pub metadata_url: String,
    /// Largest `tools/list` answer filtered, bytes.
    pub max_response_bytes: u32,
}

impl Inspected {
    /// Whether the answer is a `tools/list` result to filter.
    pub fn lists_tools(&self) -> bool {
        self.calls
            .iter()
            .any(|c| c.method.as_deref() == Some("tools/list"))
    }

    /// The first call's method, tool/resource/prompt name (for the audit record).
    pub fn first(&self) -> (Option<&str>, Option<&str>) {
        self.calls
            .first()
            .map_or((None, None), |c| (c.method.as_deref(), c.target.as_deref()))
    }
}

fn check_scopes(scopes: &[String], at: &str) -> Result<(), ConfigError> {
    for (k, s) in scopes.iter().enumerate() {
        if !is_scope_token(s) {
            return Err(ConfigError::new(
                format!("{at}[{k}]"),
                "not a valid scope token",
            ));
        }
    }
    Ok(())
}

/// `scheme://authority` and the path of an absolute http(s) URL without query or fragment.
fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    if url.contains(['?', '#', ' ']) {
        return None;
    }
    let slash = rest.find('/').unwrap_or(rest.len());
    if slash == 0 {
        return None;
    }
    let origin_len = url.len().checked_sub(rest.len())?.checked_add(slash)?;
    Some((url.get(..origin_len)?, url.get(origin_len..)?))
}

impl Endpoint {
    fn compile(
        e: &McpEndpointConfig,
        at: &str,
        policies: &[&str],
    ) -> Result<Endpoint, ConfigError> {
        if e.name.is_empty() {
            return Err(ConfigError::new(format!("{at}.name"), "must not be empty"));
        }
        if !e.path.starts_with('/') || e.path.contains(['?', '#']) {
            return Err(ConfigError::new(
                format!("{at}.path"),
                "must start with `/` and carry no query",
            ));
        }
        if e.path.starts_with(METADATA_PREFIX) {
            return Err(ConfigError::new(
                format!("{at}.path"),
                "is the protected-resource metadata path",
            ));
        }
        let Some((origin, resource_path)) = split_url(&e.resource) else {
            return Err(ConfigError::new(
                format!("{at}.resource"),
                "must be an absolute http(s) URL without query or fragment",
            ));
        };
        if e.authorization_servers.is_empty() {
            return Err(ConfigError::new(
                format!("{at}.authorization_servers"),
                "at least one authorization server is required",
            ));
        }
        for (k, s) in e.authorization_servers.iter().enumerate() {
            if split_url(s).is_none() {
                return Err(ConfigError::new(
                    format!("{at}.authorization_servers[{k}]"),
                    "must be an absolute http(s) URL",
                ));
            }
        }
        check_scopes(&e.scopes_supported, &format!("{at}.scopes_supported"))?;
        check_scopes(&e.scopes, &format!("{at}.scopes"))?;
        for (field, v) in [
            ("max_body_bytes", e.max_body_bytes),
            ("max_response_bytes", e.max_response_bytes),
        ] {
            if v == 0 || v > MAX_BUFFER_BYTES {
                return Err(ConfigError::new(
                    format!("{at}.{field}"),
                    format!("must be between 1 and {MAX_BUFFER_BYTES}"),
                ));
            }
        }
        let mut rules = Vec::with_capacity(e.rules.len());
        for (j, r) in e.rules.iter().enumerate() {
            let at = format!("{at}.rules[{j}]");
            if r.method.is_empty() {
                return Err(ConfigError::new(
                    format!("{at}.method"),
                    "must not be empty",
                ));
            }
            let named = [("tool", &r.tool), ("uri", &r.uri), ("prompt", &r.prompt)];
            let mut target = None;
            for (field, value) in named {
                let Some(v) = value else { continue };
                if target.is_some() {
                    return Err(ConfigError::new(
                        format!("{at}.{field}"),
                        "at most one of `tool`, `uri` and `prompt`",
                    ));
                }
                let fits = match field {
                    "tool" => r.method == "tools/call",
                    "prompt" => r.method == "prompts/get",
                    _ => {
                        r.method.starts_with("resources/")
                            && jsonrpc::target_param(&r.method) == Some("uri")
                    }
                };
                if !fits {
                    return Err(ConfigError::new(
                        format!("{at}.{field}"),
                        match field {
                            "tool" => "a `tool` pattern needs `method: tools/call`",
                            "prompt" => "a `prompt` pattern needs `method: prompts/get`",
                            _ => "a `uri` pattern needs `method: resources/read` (or subscribe, unsubscribe)",
                        },
                    ));
                }
                if v.is_empty() {
                    return Err(ConfigError::new(
                        format!("{at}.{field}"),
                        "must not be empty",
                    ));
                }
                target = Some(v.clone());
            }
            check_scopes(&r.scopes, &format!("{at}.scopes"))?;
            if r.deny && (!r.scopes.is_empty() || r.step_up || r.rate_limit.is_some()) {
                return Err(ConfigError::new(
                    format!("{at}.deny"),
                    "a denying rule takes no scopes, step_up or rate_limit",
                ));
            }
            if let Some(p) = &r.rate_limit {
                if !policies.contains(&p.as_str()) {
                    return Err(ConfigError::new(
                        format!("{at}.rate_limit"),
                        format!("no rate_limits policy named {p:?}"),
                    ));
                }
            }
            let guardrails = Guardrails::compile(
                r.owner.as_ref(),
                r.presence.as_ref(),
                r.approval.as_ref(),
                &at,
                Place::Mcp(&r.method),
            )?;
            if r.deny && !guardrails.is_empty() {
                return Err(ConfigError::new(
                    format!("{at}.deny"),
                    "a denying rule takes no owner, presence or approval",
                ));
            }
            rules.push(Rule {
                method: r.method.clone(),
                target,
                scopes: r.scopes.clone(),
                deny: r.deny,
                step_up: r.step_up,
                sensitivity: r.sensitivity,
                rate_limit: r.rate_limit.clone(),
                guardrails,
            });
        }
        let metadata_url = format!("{origin}{METADATA_PREFIX}{resource_path}");
        let metadata = serde_json::json!({
            "resource": e.resource,
            "authorization_servers": e.authorization_servers,
            "scopes_supported": e.scopes_supported,
            "bearer_methods_supported": ["header"],
        })
        .to_string();
        Ok(Endpoint {
            name: e.name.clone(),
            path: e.path.clone(),
            resource: e.resource.clone(),
            metadata_url,
            metadata,
            challenge_scopes: e.challenge_scopes,
            max_body_bytes: e.max_body_bytes,
            max_response_bytes: e.max_response_bytes,
            batches: e.batches,
            forward_credentials: e.forward_credentials,
            default: e.default,
            scopes: e.scopes.clone(),
            rules,
        })
    }

    /// The first rule for `call`.
    fn rule(&self, method: &str, target: Option<&str>) -> Option<&Rule> {
        self.rules.iter().find(|r| {
            pattern::matches(&r.method, method)
                && match (&r.target, target) {
                    (None, _) => true,
                    (Some(p), Some(t)) => pattern::matches(p, t),
                    (Some(_), None) => false,
                }
        })
    }

    /// What a call needs: `None` when refused, else the scopes (endpoint's first), and the rule.
    fn needs(&self, call: &Call) -> Result<(Vec<String>, Option<&Rule>), ()> {
        let mut scopes = self.scopes.clone();
        let Some(method) = call.method.as_deref() else {
            // A response the client posts back: the endpoint's scopes only.
            return Ok((scopes, None));
        };
        match self.rule(method, call.target.as_deref()) {
            Some(r) if r.deny => Err(()),
            Some(r) => {
                for s in &r.scopes {
                    if !scopes.contains(s) {
                        scopes.push(s.clone());
                    }
                }
                Ok((scopes, Some(r)))
            }
            // A tool, resource or prompt no rule names.
            None if (call.target.is_some() || call.untargeted)
                && self.default == DefaultAction::Deny =>
            {
                Err(())
            }
            None => Ok((scopes, None)),
        }
    }

    /// Whether `id` may call tool `name` (the `tools/list` filter).
    pub fn may_call_tool(&self, id: &Identity, name: &str) -> bool {
        let call = Call {
            method: Some("tools/call".into()),
            target: Some(name.into()),
            untargeted: false,
            mirrored: None,
            id: None,
            arguments: None,
        };
        self.needs(&call)
            .is_ok_and(|(scopes, _)| scopes.iter().all(|s| id.scopes.contains(s)))
    }

    /// The metadata reply (RFC 9728 §3.2).
    fn metadata_reply(&self) -> LocalReply {
        LocalReply {
            status: 200,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("cache-control".into(), "max-age=300".into()),
            ],
            body: self.metadata.clone(),
        }
    }
}

impl Mcp {
    /// Compiles the `mcp` section of `c`; the error names the offending field.
    pub fn compile(c: &Config) -> Result<Mcp, ConfigError> {
        let Some(m) = &c.mcp else {
            return Ok(Mcp::default());
        };
        let policies: Vec<&str> = c
            .rate_limits
            .iter()
            .flat_map(|r| r.policies.iter().map(|p| p.name.as_str()))
            .collect();
        let mut endpoints: Vec<Endpoint> = Vec::with_capacity(m.endpoints.len());
        for (i, e) in m.endpoints.iter().enumerate() {
            let at = format!("mcp.endpoints[{i}]");
            let ep = Endpoint::compile(e, &at, &policies)?;
            if endpoints.iter().any(|o| o.name == ep.name) {
                return Err(ConfigError::new(
                    format!("{at}.name"),
                    "duplicate endpoint name",
                ));
            }
            if endpoints.iter().any(|o| o.path == ep.path) {
                return Err(ConfigError::new(
                    format!("{at}.path"),
                    "duplicate endpoint path",
                ));
            }
            endpoints.push(ep);
        }
        Ok(Mcp { endpoints })
    }

    /// The rate-limit policies the rules name: they apply only to the calls their rules match.
    pub fn rate_limit_policies(c: &Config) -> Vec<String> {
        c.mcp
            .iter()
            .flat_map(|m| &m.endpoints)
            .flat_map(|e| &e.rules)
            .filter_map(|r| r.rate_limit.clone())
            .collect()
    }

    /// Whether any endpoint is configured.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// The endpoint at `index`.
    pub fn endpoint(&self, index: usize) -> Option<&Endpoint> {
        self.endpoints.get(index)
    }

    /// The endpoint a request path (query ignored) addresses: its path, or any path below it (a
    /// server may answer `/mcp/` as `/mcp`: such a call must not escape the endpoint's rules).
    pub fn find(&self, path: &str) -> Option<(usize, &Endpoint)> {
        let path = path.split('?').next().unwrap_or(path);
        self.endpoints.iter().enumerate().find(|(_, e)| {
            path.strip_prefix(e.path.as_str()).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with('/') || e.path.ends_with('/')
            })
        })
    }

    /// The RFC 9728 answer when `method path` asks for an endpoint's metadata: at the well-known
    /// prefix followed by the endpoint's path, or at the bare prefix (the first endpoint's).
    pub fn metadata(&self, method: &str, path: &str) -> Option<LocalReply> {
        if method != "GET" && method != "HEAD" {
            return None;
        }
        let path = path.split('?').next().unwrap_or(path);
        let rest = path.strip_prefix(METADATA_PREFIX)?;
        let ep = if rest.is_empty() || rest == "/" {
            self.endpoints.first()
        } else {
            self.endpoints.iter().find(|e| e.path == rest)
        }?;
        Some(ep.metadata_reply())
    }

    /// Reads an MCP request: its calls (from `body`), the headers that mirror them, and what the
    /// calls need. `Err` for a body the endpoint does not take.
    pub fn inspect(
        &self,
        index: usize,
        method: &str,
        headers: &[(String, String)],
        body: Body<'_>,
    ) -> (Inspected, Result<(), McpError>) {
        let Some(ep) = self.endpoints.get(index) else {
            return (Inspected::default(), Err(McpError::Denied));
        };
        let mut seen = Inspected {
            endpoint: index,
            name: ep.name.clone(),
            protocol_version: jsonrpc::protocol_version(headers).map(str::to_owned),
            metadata_url: ep.metadata_url.clone(),
            max_response_bytes: ep.max_response_bytes,
            needed: ep.scopes.clone(),
            ..Inspected::default()
        };
        match method {
            "POST" => {}
            // GET (the server's event stream) and DELETE (end of session) carry no JSON-RPC
            // body; HEAD and OPTIONS neither.
            "GET" | "DELETE" | "HEAD" | "OPTIONS" => return (seen, Ok(())),
            _ => return (seen, Err(McpError::MethodNotAllowed)),
        }
        let body = match body {
            Body::Read(b) if b.len() > usize::try_from(ep.max_body_bytes).unwrap_or(usize::MAX) => {
                return (seen, Err(McpError::BodyTooLarge))
            }
            Body::Read(b) => b,
            // Offline callers without a body: an empty one (a parse error).
            Body::Unread => b"",
            Body::TooLarge => return (seen, Err(McpError::BodyTooLarge)),
            Body::LengthRequired => return (seen, Err(McpError::LengthRequired)),
        };
        let checked = jsonrpc::parse(body, ep.batches).and_then(|calls| {
            jsonrpc::check_headers(headers, &calls)?;
            Ok(calls)
        });
        let calls = match checked {
            Ok(calls) => calls,
            Err(e) => return (seen, Err(e)),
        };
        for call in &calls {
            match ep.needs(call) {
                Err(()) => seen.denied = true,
                Ok((scopes, rule)) => {
                    for s in scopes {
                        if !seen.needed.contains(&s) {
                            seen.needed.push(s);
                        }
                    }
                    if let Some(r) = rule {
                        if !r.guardrails.is_empty() {
                            let index = ep.rules.iter().position(|x| std::ptr::eq(x, r));
                            let owner = r.guardrails.owner.as_ref();
                            let named =
                                owner.and_then(|o| o.from_arguments(call.arguments.as_ref()));
                            seen.guarded.extend(index.map(|i| (i, named)));
                        }
                        seen.step_up |= r.step_up;
                        seen.sensitivity = seen.sensitivity.max(r.sensitivity);
                        if let Some(p) = &r.rate_limit {
                            if !seen.rate_limits.contains(p) {
                                seen.rate_limits.push(p.clone());
                            }
                        }
                    }
                }
            }
        }
        // The arguments were read for owner isolation; the decision keeps none of them.
        seen.calls = calls
            .into_iter()
            .map(|c| jsonrpc::Call {
                arguments: None,
                ..c
            })
            .collect();
        (seen, Ok(()))
    }

    /// A request to no MCP endpoint: a token whose every audience is an MCP endpoint's resource was
    /// issued for those MCP servers only (RFC 8707), and is refused here, even when the provider's
    /// `audiences` list the resource (so that a token an agent got for an MCP server is never
    /// replayed at another API of the same provider).
    pub fn refuse_elsewhere(&self, id: &Identity) -> Result<(), Denial> {
        let only_mcp = id.claims.as_ref().is_some_and(|c| {
            !c.audiences.is_empty()
                && c.audiences
                    .iter()
                    .all(|a| self.endpoints.iter().any(|ep| &ep.resource == a))
        });
        if only_mcp {
            return Err(Denial::InvalidToken(
                crate::credential::TokenError::Audience,
            ));
        }
        Ok(())
    }

    /// Authorizes the proven caller for the inspected calls: the token must be for the endpoint's
    /// resource (RFC 8707 audience), the calls not refused by a rule, and every needed scope held.
    pub fn authorize(&self, seen: &Inspected, id: &Identity) -> Result<(), Denial> {
        let Some(ep) = self.endpoints.get(seen.endpoint) else {
            return Err(Denial::Mcp(McpError::Denied));
        };
        let for_us = id
            .claims
            .as_ref()
            .is_some_and(|c| c.audiences.iter().any(|a| a == &ep.resource));
        if !for_us {
            return Err(Denial::InvalidToken(
                crate::credential::TokenError::Audience,
            ));
        }
        if seen.denied {
            return Err(Denial::Mcp(McpError::Denied));
        }
        if seen.needed.iter().all(|s| id.scopes.contains(s)) {
            return Ok(());
        }
        let scope = match ep.challenge_scopes {
            ChallengeScopes::Operation => seen.needed.clone(),
            ChallengeScopes::GrantedAndRequired => {
                let mut all = id.scopes.clone();
                all.extend(
                    seen.needed
                        .iter()
                        .filter(|s| !id.scopes.contains(s))
                        .cloned(),
                );
                all
            }
        };
        Err(Denial::InsufficientScope(scope.join(" ")))
    }

    /// The guardrails of the calls' rules (owner isolation by argument or header, user presence,
    /// approval) for `id`.
    pub fn guardrails(
        &self,
        seen: &Inspected,
        req: &crate::decision::Request<'_>,
        id: &Identity,
    ) -> Result<(), Denial> {
        let Some(ep) = self.endpoints.get(seen.endpoint) else {
            return Err(Denial::Mcp(McpError::Denied));
        };
        for (index, argument) in &seen.guarded {
            let Some(rule) = ep.rules.get(*index) else {
                return Err(Denial::Mcp(McpError::Denied));
            };
            let g = &rule.guardrails;
            let mut named = g
                .owner
                .as_ref()
                .map(|o| o.requested(&[], "", req.headers))
                .unwrap_or_default();
            named.extend(argument.as_deref().map(std::borrow::Cow::Borrowed));
            g.check(id, req.now_s, &named)?;
        }
        Ok(())
    }

    /// The headers the MCP server must not get: the client's credentials, unless the endpoint
    /// forwards them.
    pub fn credential_headers(&self, seen: &Inspected) -> &'static [&'static str] {
        match self.endpoints.get(seen.endpoint) {
            Some(ep) if ep.forward_credentials => &[],
            _ => &["authorization", "dpop"],
        }
    }
}

/// Points a refusal's challenge at the endpoint's metadata (RFC 9728 §5.1): every
/// `WWW-Authenticate` gets `resource_metadata`; the bare 401 (no credential) also the `scope`
/// the call needs, so the client asks for the right token first time.
pub fn challenge(reply: &mut LocalReply, seen: &Inspected, no_credential: bool) {
    for (name, value) in &mut reply.headers {
        if name != "www-authenticate" {
            continue;
        }
        value.push_str(&format!(r#", resource_metadata="{}""#, seen.metadata_url));
        if no_credential && !seen.needed.is_empty() {
            value.push_str(&format!(r#", scope="{}""#, seen.needed.join(" ")));
        }
    }
}

#[cfg(test)]
mod tests;
