//! `tools/list` answers cut to the tools the caller may call, in both answer forms of Streamable
//! HTTP: one JSON body (`application/json`) or an event stream (`text/event-stream`) whose events
//! each carry one JSON-RPC message in their `data`. The adapter buffers the whole answer (bounded by
//! `max_response_bytes`) and hands it here once.

use super::jsonrpc::{code, error_body};
use super::Endpoint;
use crate::credential::Identity;
use serde_json::Value;

/// The answer to forward in place of `body` (`content_type` as the MCP server sent it).
pub fn filter(ep: &Endpoint, id: Option<&Identity>, content_type: &str, body: &[u8]) -> Vec<u8> {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let may = |name: &str| id.is_some_and(|id| ep.may_call_tool(id, name));
    match media.as_str() {
        "application/json" => match serde_json::from_slice::<Value>(body) {
            Ok(mut v) => {
                cut(&mut v, &may);
                v.to_string().into_bytes()
            }
            // Never pass on a tool list that could not be filtered.
            Err(_) => {
                error_body(None, code::INTERNAL_ERROR, "tools/list answer unreadable").into_bytes()
            }
        },
        "text/event-stream" => events(body, &may).into_bytes(),
        _ => body.to_vec(),
    }
}

/// The answer when it exceeded `max_response_bytes`: a JSON-RPC error for request `rpc_id`, in the
/// answer's form.
pub fn too_large(content_type: &str, rpc_id: Option<&Value>) -> Vec<u8> {
    let body = error_body(
        rpc_id,
        code::INTERNAL_ERROR,
        "tools/list answer too large to filter",
    );
    if content_type
        .to_ascii_lowercase()
        .starts_with("text/event-stream")
    {
        format!("event: message\ndata: {body}\n\n").into_bytes()
    } else {
        body.into_bytes()
    }
}

/// Removes the tools `may` refuses from a JSON-RPC result (or each member of a batch answer).
fn cut(v: &mut Value, may: &dyn Fn(&str) -> bool) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(|i| cut(i, may)),
        Value::Object(m) => {
            if let Some(Value::Array(tools)) = m.get_mut("result").and_then(|r| r.get_mut("tools"))
            {
                tools.retain(|t| t.get("name").and_then(Value::as_str).is_some_and(may));
            }
        }
        _ => {}
    }
}

/// An event stream with each event's JSON `data` cut; other fields (`event`, `id`, `retry`) and
/// comments kept. Events end at a blank line (`\n`, `\r\n` or `\r` line ends).
fn events(body: &[u8], may: &dyn Fn(&str) -> bool) -> String {
    let text = String::from_utf8_lossy(body);
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(normalised.len());
    for event in normalised.split("\n\n") {
        if event.is_empty() {
            continue;
        }
        let mut data: Vec<&str> = Vec::new();
        let mut others: Vec<&str> = Vec::new();
        for line in event.split('\n') {
            match line.strip_prefix("data:") {
                Some(d) => data.push(d.strip_prefix(' ').unwrap_or(d)),
                None => others.push(line),
            }
        }
        for line in others.iter().filter(|l| !l.is_empty()) {
            out.push_str(line);
            out.push('\n');
        }
        if !data.is_empty() {
            let joined = data.join("\n");
            let data = match serde_json::from_str::<Value>(&joined) {
                Ok(mut v) => {
                    cut(&mut v, may);
                    v.to_string()
                }
                Err(_) => joined,
            };
            for line in data.split('\n') {
                out.push_str("data: ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push('\n');
    }
    out
}
