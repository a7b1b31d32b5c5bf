//! Reading a JSON-RPC request body of an MCP endpoint: the method and the name or URI a call
//! addresses, and the `Mcp-Method` / `Mcp-Name` headers that mirror them (MCP 2026-07-28,
//! SEP-2243). The body decides; the headers only have to agree with it.

use super::McpError;
use crate::config::mcp::Batches;
use base64::Engine as _;
use serde_json::Value;

/// The first protocol version whose clients must send `Mcp-Method` and `Mcp-Name`.
pub const HEADERS_REQUIRED_FROM: &str = "2026-07-28";

/// JSON-RPC error codes the filter answers with.
pub mod code {
    /// The body is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// The body is JSON but not a request the endpoint takes (a refused batch, no `method`).
    pub const INVALID_REQUEST: i64 = -32600;
    /// `Mcp-Method` / `Mcp-Name` missing, malformed or not matching the body (MCP 2026-07-28).
    pub const HEADER_MISMATCH: i64 = -32020;
    /// The filter could not produce the answer (a `tools/list` answer too large to filter).
    pub const INTERNAL_ERROR: i64 = -32603;
}

/// One JSON-RPC message of the body, as far as authorization needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `method`; `None` for a response the client posts back (to a server's request).
    pub method: Option<String>,
    /// `params.name` (`tools/call`, `prompts/get`) or `params.uri` (`resources/*`).
    pub target: Option<String>,
    /// A method that addresses an object sent without one (`resources/subscribe` with no `uri`):
    /// an unnamed object, which `default: deny` refuses; the server answers it otherwise.
    pub untargeted: bool,
    /// What `Mcp-Name` mirrors for a method whose object no rule governs: `params.taskId` of
    /// `tasks/get`, `tasks/update`, `tasks/cancel` (SEP-2243).
    pub mirrored: Option<String>,
    /// `id` (absent for notifications).
    pub id: Option<Value>,
    /// `params.arguments` of a `tools/call` (an object), read for owner isolation and then dropped
    /// ([`crate::mcp::Mcp::inspect`]): the decision keeps no argument.
    pub arguments: Option<serde_json::Map<String, Value>>,
}

impl Call {
    /// The value `Mcp-Name` must equal, when the method has one.
    pub fn name(&self) -> Option<&str> {
        self.target.as_deref().or(self.mirrored.as_deref())
    }
}

/// Which parameter a method addresses its object by, if it addresses one.
pub fn target_param(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some("uri"),
        _ => None,
    }
}

/// Which parameter `Mcp-Name` mirrors for a method whose object is not a policy target.
fn mirrored_param(method: &str) -> Option<&'static str> {
    match method {
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    }
}

/// The calls in `body`: one, or each member of a batch when `batches` is `each`.
pub fn parse(body: &[u8], batches: Batches) -> Result<Vec<Call>, McpError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| McpError::Parse)?;
    match value {
        Value::Array(items) => {
            if batches == Batches::Refuse || items.is_empty() {
                return Err(McpError::InvalidRequest(None));
            }
            items.iter().map(call).collect()
        }
        v => Ok(vec![call(&v)?]),
    }
}

/// One message: a request or notification (`method`, a string) or a response (`result` or
/// `error`, no `method`).
fn call(v: &Value) -> Result<Call, McpError> {
    let Value::Object(m) = v else {
        return Err(McpError::InvalidRequest(None));
    };
    let id = m.get("id").cloned();
    let invalid = || McpError::InvalidRequest(id.clone());
    if m.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid());
    }
    let method = match m.get("method") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(invalid()),
        None if m.contains_key("result") || m.contains_key("error") => {
            return Ok(Call {
                method: None,
                target: None,
                untargeted: false,
                mirrored: None,
                id,
                arguments: None,
            })
        }
        None => return Err(invalid()),
    };
    // A string parameter: absent is `None`, any other type an invalid request.
    let param = |name: &str| match m.get("params").and_then(|p| p.get(name)) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid()),
    };
    let target = target_param(&method).map(param).transpose()?.flatten();
    // A call that names no tool or prompt is invalid (the name is required); a resource method
    // without `uri` (`resources/subscribe`, gone in 2026-07-28) is left to the server unless the
    // endpoint denies unnamed objects.
    let untargeted = match (target_param(&method), &target) {
        (Some("name"), None) => return Err(invalid()),
        (Some(_), None) => true,
        _ => false,
    };
    let mirrored = mirrored_param(&method).map(param).transpose()?.flatten();
    let arguments = match m.get("params").and_then(|p| p.get("arguments")) {
        Some(Value::Object(a)) if method == "tools/call" => Some(a.clone()),
        _ => None,
    };
    Ok(Call {
        method: Some(method),
        target,
        untargeted,
        mirrored,
        id,
        arguments,
    })
}

/// The value of header `name` (any case), `Err` when sent more than once.
fn header<'h>(headers: &'h [(String, String)], name: &str) -> Result<Option<&'h str>, ()> {
    let mut found = None;
    for (n, v) in headers {
        if n.eq_ignore_ascii_case(name) {
            if found.is_some() {
                return Err(());
            }
            found = Some(v.as_str());
        }
    }
    Ok(found)
}

/// The protocol version the client speaks (`MCP-Protocol-Version`), when it says.
pub fn protocol_version(headers: &[(String, String)]) -> Option<&str> {
    header(headers, "mcp-protocol-version").ok().flatten()
}

/// A header value as SEP-2243 writes it: plain, or `=?base64?<standard base64 of UTF-8>?=` for a
/// value that is not plain ASCII. `None`: not decodable.
pub fn decode_header_value(v: &str) -> Option<String> {
    let v = v.trim();
    match v
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(b64) => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
            String::from_utf8(bytes).ok()
        }
        None => Some(v.to_owned()),
    }
}

/// `Mcp-Method` and `Mcp-Name` against the body: when present they must match it (once each,
/// decoded); from [`HEADERS_REQUIRED_FROM`] on, they must be present. A batch has no single
/// method to mirror and is not checked.
pub fn check_headers(headers: &[(String, String)], calls: &[Call]) -> Result<(), McpError> {
    let [call] = calls else {
        return Ok(());
    };
    let mismatch = || McpError::HeaderMismatch(call.id.clone());
    let required = protocol_version(headers).is_some_and(|v| v >= HEADERS_REQUIRED_FROM);
    let method = header(headers, "mcp-method").map_err(|()| mismatch())?;
    let name = header(headers, "mcp-name").map_err(|()| mismatch())?;
    match (&call.method, method) {
        (Some(m), Some(h)) if h.trim() == m => {}
        (Some(_), None) if !required => {}
        // A response the client posts back carries no method to mirror.
        (None, None) => {}
        _ => return Err(mismatch()),
    }
    match (call.name(), name) {
        (Some(t), Some(h)) if decode_header_value(h).as_deref() == Some(t) => Ok(()),
        (Some(_), None) if !required => Ok(()),
        (None, None) => Ok(()),
        _ => Err(mismatch()),
    }
}

/// A JSON-RPC error object answering `id`.
pub fn error_body(id: Option<&Value>, code: i64, message: &str) -> String {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": id.cloned().unwrap_or(Value::Null),
        "error": {"code": code, "message": message},
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn one(body: &str) -> Result<Vec<Call>, McpError> {
        parse(body.as_bytes(), Batches::Refuse)
    }

    #[test]
    fn reads_method_and_target() {
        let calls = one(
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"read_orders"}}"#,
        )
        .unwrap();
        assert_eq!(calls[0].method.as_deref(), Some("tools/call"));
        assert_eq!(calls[0].target.as_deref(), Some("read_orders"));
        assert_eq!(calls[0].id, Some(Value::from(7)));
        let calls = one(
            r#"{"jsonrpc":"2.0","id":"a","method":"resources/read","params":{"uri":"orders://1"}}"#,
        )
        .unwrap();
        assert_eq!(calls[0].target.as_deref(), Some("orders://1"));
        let calls = one(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(
            (calls[0].target.as_ref(), calls[0].id.as_ref()),
            (None, None)
        );
        let calls = one(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#).unwrap();
        assert_eq!(calls[0].method, None);
    }

    #[test]
    fn malformed_and_invalid_bodies() {
        assert_eq!(one("{not json"), Err(McpError::Parse));
        assert_eq!(one(""), Err(McpError::Parse));
        assert_eq!(one("[1"), Err(McpError::Parse));
        assert_eq!(one("42"), Err(McpError::InvalidRequest(None)));
        assert_eq!(
            one(r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#),
            Err(McpError::InvalidRequest(Some(Value::from(3))))
        );
        assert_eq!(
            one(r#"{"jsonrpc":"2.0","id":3,"method":5}"#),
            Err(McpError::InvalidRequest(Some(Value::from(3))))
        );
        // A tool call that names no tool cannot be authorized.
        assert_eq!(
            one(r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{}}"#),
            Err(McpError::InvalidRequest(Some(Value::from(4))))
        );
        assert_eq!(
            one(r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":7}}"#),
            Err(McpError::InvalidRequest(Some(Value::from(4))))
        );
        // A resource method without `uri` is an unnamed object, not an invalid request.
        let calls =
            one(r#"{"jsonrpc":"2.0","id":5,"method":"resources/subscribe","params":{}}"#).unwrap();
        assert!(calls[0].untargeted && calls[0].target.is_none());
        assert_eq!(
            one(r#"{"jsonrpc":"2.0","id":5,"method":"resources/read","params":{"uri":1}}"#),
            Err(McpError::InvalidRequest(Some(Value::from(5))))
        );
        // Deeply nested JSON is refused by the parser's recursion limit, not a stack overflow.
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(one(&deep), Err(McpError::Parse));
    }

    #[test]
    fn batches_refused_or_each_member_read() {
        let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},
                        {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x"}}]"#;
        assert_eq!(one(batch), Err(McpError::InvalidRequest(None)));
        let calls = parse(batch.as_bytes(), Batches::Each).unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            parse(b"[]", Batches::Each),
            Err(McpError::InvalidRequest(None))
        );
    }

    /// SEP-2243: `Mcp-Name` mirrors `params.taskId` of the task methods.
    #[test]
    fn task_methods_mirror_their_task_id() {
        let call =
            one(r#"{"jsonrpc":"2.0","id":9,"method":"tasks/get","params":{"taskId":"t-1"}}"#)
                .unwrap();
        assert_eq!(
            (call[0].target.as_deref(), call[0].name()),
            (None, Some("t-1"))
        );
        let new = ("mcp-protocol-version", "2026-07-28");
        let ok = hs(&[new, ("mcp-method", "tasks/get"), ("mcp-name", "t-1")]);
        assert_eq!(check_headers(&ok, &call), Ok(()));
        let bad = hs(&[new, ("mcp-method", "tasks/get"), ("mcp-name", "t-2")]);
        assert_eq!(
            check_headers(&bad, &call),
            Err(McpError::HeaderMismatch(Some(Value::from(9))))
        );
    }

    #[test]
    fn headers_must_match_the_body() {
        let call = one(
            r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"read_orders"}}"#,
        )
        .unwrap();
        let new = ("mcp-protocol-version", "2026-07-28");
        let ok = hs(&[
            new,
            ("mcp-method", "tools/call"),
            ("mcp-name", "read_orders"),
        ]);
        assert_eq!(check_headers(&ok, &call), Ok(()));
        let mismatch = Err(McpError::HeaderMismatch(Some(Value::from(9))));
        for bad in [
            hs(&[
                new,
                ("mcp-method", "tools/call"),
                ("mcp-name", "delete_customer"),
            ]),
            hs(&[
                new,
                ("mcp-method", "tools/list"),
                ("mcp-name", "read_orders"),
            ]),
            hs(&[new, ("mcp-method", "tools/call")]),
            hs(&[new, ("mcp-name", "read_orders")]),
            hs(&[
                new,
                ("Mcp-Method", "tools/call"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "read_orders"),
            ]),
            // Older versions need no headers, but a header sent must still match.
            hs(&[
                ("mcp-protocol-version", "2025-06-18"),
                ("mcp-name", "delete_customer"),
            ]),
            hs(&[
                new,
                ("mcp-method", "tools/call"),
                ("mcp-name", "=?base64?!!?="),
            ]),
        ] {
            assert_eq!(check_headers(&bad, &call), mismatch, "{bad:?}");
        }
        let old = hs(&[("mcp-protocol-version", "2025-06-18")]);
        assert_eq!(check_headers(&old, &call), Ok(()));
        assert_eq!(check_headers(&[], &call), Ok(()));
        // Base64-encoded names are decoded first (`read_orders`).
        let b64 = hs(&[
            new,
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?cmVhZF9vcmRlcnM=?="),
        ]);
        assert_eq!(check_headers(&b64, &call), Ok(()));
        // A method without a target needs no Mcp-Name, and must not carry one.
        let list = one(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap();
        assert_eq!(
            check_headers(&hs(&[new, ("mcp-method", "tools/list")]), &list),
            Ok(())
        );
        assert!(check_headers(
            &hs(&[new, ("mcp-method", "tools/list"), ("mcp-name", "x")]),
            &list
        )
        .is_err());
    }

    #[test]
    fn non_ascii_names_round_trip_through_base64() {
        let call = one(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"bestellungen_prüfen"}}"#)
            .unwrap();
        let enc = base64::engine::general_purpose::STANDARD.encode("bestellungen_prüfen");
        let headers = hs(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", &format!("=?base64?{enc}?=")),
        ]);
        assert_eq!(check_headers(&headers, &call), Ok(()));
    }
}
