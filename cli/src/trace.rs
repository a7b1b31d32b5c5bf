//! Recorded traffic through the engine (the offline contract, docs/ARCHITECTURE.md): each trace
//! line becomes a request at the trace's own clock, decided by the same `Engine::decide` as the
//! filter, with the behavioural state in an in-memory store that follows a host's compare-and-set
//! rule; the recorded upstream answer (status, bytes) then goes through the same response phase.
//!
//! Shared by `warden replay` (decision lines) and `warden features` (model training data). Both
//! print the filter's decision record ([`AuditRecord`]) with the trace's own fields beside it.

use serde::Serialize;
use serde_json::{Map, Value};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use warden::audit::{AuditRecord, Outcome};
use warden::shared::{CasRule, MemoryStore};
use warden::{Body, Decision, Engine, Env, Request, TokenCache, Verdict};

/// Trace fields the engine reads; every other field is copied to the output unchanged.
pub const ENGINE_FIELDS: [&str; 9] = [
    "ts_ms",
    "method",
    "path",
    "source_ip",
    "headers",
    "body",
    "status",
    "response_bytes",
    STEP_UP_HEADERS,
];

/// A trace field: the headers a client that can answer a step-up challenge (RFC 9470) sends when
/// it does, e.g. a fresh token with the required `acr` and a recent `auth_time` from its IdP. When
/// the engine answers the line with an enforced step-up, the request is sent again at the same time
/// with these headers in place of its own; the retry is an output line of its own, with the same
/// line number and `"step_up_retry": true`. Never copied to the output (it holds a credential).
pub const STEP_UP_HEADERS: &str = "step_up_headers";

/// Fields an output line adds to the record; a trace field of the same name is not copied.
const OUTPUT_FIELDS: [&str; 2] = ["line", "features"];

/// Largest trace line, bytes (a request's headers, tokens included, fit many times over).
const MAX_LINE_BYTES: u64 = 1 << 20;

/// One recorded request.
pub struct TraceLine {
    /// 1-based line number in the trace.
    pub number: usize,
    /// Milliseconds since the epoch.
    pub ts_ms: u64,
    /// The upstream's status, when recorded.
    pub status: Option<u16>,
    /// The upstream's response size, when recorded.
    pub response_bytes: Option<u64>,
    /// Fields the engine does not read and the output does not write itself (`label`,
    /// `scenario`, ...): copied to the output line unchanged.
    pub rest: Map<String, Value>,
    method: String,
    path: String,
    source: Option<std::net::IpAddr>,
    headers: Vec<(String, String)>,
    request_id: String,
    /// The request body (MCP calls): a string as is, any other JSON value as its JSON text.
    body: Option<Vec<u8>>,
    /// [`STEP_UP_HEADERS`], when the line has them.
    step_up: Option<Vec<(String, String)>>,
}

impl TraceLine {
    /// The request this line records, at the trace's own clock.
    pub fn request(&self) -> Request<'_> {
        Request {
            method: &self.method,
            path: &self.path,
            headers: &self.headers,
            request_id: &self.request_id,
            now_s: self.ts_ms / 1000,
            source: self.source,
            body: self.body.as_deref().map_or(Body::Unread, Body::Read),
            peer_cert_sha256: None,
            peer_cert_unread: false,
            source_unread: false,
        }
    }

    /// The same request as the client sends it again after answering a step-up challenge: its
    /// [`STEP_UP_HEADERS`] in place of the headers of the same names, when it has them.
    fn stepped_up(&self) -> Option<TraceLine> {
        let step_up = self.step_up.as_ref()?;
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .filter(|(n, _)| !step_up.iter().any(|(m, _)| m == n))
            .cloned()
            .collect();
        headers.extend(step_up.iter().cloned());
        let mut rest = self.rest.clone();
        rest.insert("step_up_retry".into(), Value::Bool(true));
        Some(TraceLine {
            number: self.number,
            ts_ms: self.ts_ms,
            status: self.status,
            response_bytes: self.response_bytes,
            rest,
            method: self.method.clone(),
            path: self.path.clone(),
            source: self.source,
            headers,
            request_id: format!("{}-step-up", self.request_id),
            body: self.body.clone(),
            step_up: None,
        })
    }
}

/// One trace line (`number` for messages), read as the offline contract says.
pub(crate) fn parse_line(number: usize, text: &str) -> Result<TraceLine, String> {
    let at = |m: &str| format!("trace line {number}: {m}");
    let Value::Object(mut obj) = serde_json::from_str(text).map_err(|e| at(&e.to_string()))? else {
        return Err(at("not a JSON object"));
    };
    let ts_ms = obj
        .get("ts_ms")
        .and_then(Value::as_u64)
        .ok_or_else(|| at("`ts_ms` (milliseconds since the epoch) is required"))?;
    let text_field = |obj: &Map<String, Value>, name: &str| -> Result<String, String> {
        obj.get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| at(&format!("`{name}` (a string) is required")))
    };
    let method = text_field(&obj, "method")?;
    let path = text_field(&obj, "path")?;
    let source = match obj.get("source_ip") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            s.parse()
                .map_err(|_| at(&format!("`source_ip` {s:?} is not an IP address")))?,
        ),
        Some(_) => return Err(at("`source_ip` must be a string")),
    };
    let headers = parse_headers(obj.get("headers"), "headers").map_err(|e| at(&e))?;
    let step_up = match obj.get(STEP_UP_HEADERS) {
        None | Some(Value::Null) => None,
        v => Some(parse_headers(v, STEP_UP_HEADERS).map_err(|e| at(&e))?),
    };
    let status = match obj.get("status") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .filter(|s| (100..600).contains(s))
                .ok_or_else(|| at("`status` must be an HTTP status code"))?,
        ),
    };
    let response_bytes = match obj.get("response_bytes") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| at("`response_bytes` must be a non-negative integer"))?,
        ),
    };
    let body = match obj.get("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone().into_bytes()),
        Some(v) => Some(v.to_string().into_bytes()),
    };
    let request_id = headers
        .iter()
        .find(|(n, _)| n == "x-request-id")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| format!("line-{number}"));
    for f in ENGINE_FIELDS
        .iter()
        .chain(&AuditRecord::FIELDS)
        .chain(&OUTPUT_FIELDS)
    {
        obj.remove(*f);
    }
    Ok(TraceLine {
        number,
        ts_ms,
        status,
        response_bytes,
        rest: obj,
        method,
        path,
        source,
        headers,
        request_id,
        body,
        step_up,
    })
}

/// The headers of a trace line's `field` (an object of names to a string or a list of strings),
/// names lower-cased, in order.
fn parse_headers(value: Option<&Value>, field: &str) -> Result<Vec<(String, String)>, String> {
    let mut headers = Vec::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (name, value) in h {
                match value {
                    Value::String(v) => headers.push((name.to_ascii_lowercase(), v.clone())),
                    Value::Array(vs) => {
                        for v in vs {
                            let v = v.as_str().ok_or_else(|| {
                                format!("header `{name}`: values must be strings")
                            })?;
                            headers.push((name.to_ascii_lowercase(), v.to_owned()));
                        }
                    }
                    _ => return Err(format!("header `{name}`: value must be a string")),
                }
            }
        }
        Some(_) => return Err(format!("`{field}` must be an object")),
    }
    Ok(headers)
}

/// One output line of `replay` and `features`: the decision record the filter would have logged
/// for the request, with the trace's line number and own fields, and (`features`) the features.
#[derive(Debug, Serialize)]
pub struct Replayed<'a> {
    /// 1-based line number in the trace.
    pub line: usize,
    /// The trace's fields the engine does not read (`label`, `scenario`, ...).
    #[serde(flatten)]
    pub trace: &'a Map<String, Value>,
    /// The decision record, as the filter logs it (`engine_us` is 0: replay does not time itself).
    #[serde(flatten)]
    pub record: AuditRecord<'a>,
    /// `warden features` only: the model's input (`null` when the request was not scored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<Value>,
}

/// Runs every line of `trace` (a path, `-` for standard input) through the engine of `config` (the
/// document), calling `emit` with each line's output (without features) and decision.
pub fn run(
    config: &[u8],
    trace: &str,
    mut emit: impl FnMut(Replayed<'_>, &Decision) -> Result<(), String>,
) -> Result<(), String> {
    let engine = Engine::from_json(config).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(open(trace)?);
    // Envoy's cas rule: the CLI is one process, so this only needs to be a correct store.
    let store = MemoryStore::new(CasRule::Envoy);
    let mut cache = TokenCache::default();
    // Replay is deterministic: the time budget never trips on the trace's clock.
    let clock = || 0u64;
    let mut buf = Vec::new();
    let mut number = 0usize;
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES)
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("cannot read {trace}: {e}"))?;
        if n == 0 {
            break;
        }
        number += 1;
        if buf.last() != Some(&b'\n') && n as u64 == MAX_LINE_BYTES {
            return Err(format!(
                "trace line {number}: longer than {MAX_LINE_BYTES} bytes"
            ));
        }
        let text = std::str::from_utf8(&buf)
            .map_err(|_| format!("trace line {number}: not UTF-8"))?
            .trim();
        if text.is_empty() {
            continue;
        }
        let line = parse_line(number, text)?;
        let mut env = Env {
            cache: &mut cache,
            shared: &store,
            clock_us: &clock,
        };
        let challenged = replay_line(&engine, &line, &mut env, &mut emit)?;
        // A client that can answer the challenge does, and sends the request again.
        if let Some(retry) = line.stepped_up().filter(|_| challenged) {
            replay_line(&engine, &retry, &mut env, &mut emit)?;
        }
    }
    Ok(())
}

/// Decides one line, feeds the recorded response back and emits the output line; returns whether
/// the client was challenged to step up (an enforced step-up).
fn replay_line(
    engine: &Engine,
    line: &TraceLine,
    env: &mut Env<'_>,
    emit: &mut impl FnMut(Replayed<'_>, &Decision) -> Result<(), String>,
) -> Result<bool, String> {
    let req = line.request();
    let decision = engine.decide(&req, env);
    if decision.observes_response() {
        engine.observe_response(
            &decision,
            line.status.unwrap_or(200),
            line.response_bytes.unwrap_or(0),
            req.now_s,
            env.shared,
        );
    }
    let forwarded = decision.reply.is_none();
    let outcome = Outcome {
        upstream_status: line.status.filter(|_| forwarded),
        response_bytes: line.response_bytes.filter(|_| forwarded),
        duration_ms: None,
    };
    // Replay does not time the engine: its output is the same on every run.
    let record = AuditRecord::new(&req, &decision, line.ts_ms, 0, engine.recorded_claims())
        .with_outcome(outcome);
    let out = Replayed {
        line: line.number,
        trace: &line.rest,
        record,
        features: None,
    };
    emit(out, &decision)?;
    Ok(decision.verdict == Verdict::StepUp && !forwarded)
}

/// The file at `path`, or standard input for `-`.
pub fn open(path: &str) -> Result<Box<dyn Read>, String> {
    Ok(if path == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(File::open(path).map_err(|e| format!("cannot read {path}: {e}"))?)
    })
}

/// A number rounded to 4 decimals, as JSON.
pub fn round4(v: f32) -> Value {
    let r = (f64::from(v) * 10_000.0).round() / 10_000.0;
    serde_json::Number::from_f64(r).map_or(Value::Null, Value::Number)
}

/// Writes one JSON line.
pub fn write_line(out: &mut impl Write, v: &impl Serialize) -> Result<(), String> {
    serde_json::to_writer(&mut *out, v)
        .and_then(|()| out.write_all(b"\n").map_err(serde_json::Error::io))
        .map_err(|e| format!("cannot write output: {e}"))
}

/// Runs bytes as one trace line through what `warden replay` does with it: parse, decide, observe
/// the response, build and encode the record. The `trace_line` fuzz target calls this, and the test
/// below replays that target's corpus and kept crashes through it, so a crash once found stays fixed.
#[cfg_attr(not(test), allow(dead_code))]
pub fn exercise(engine: &Engine, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(line) = parse_line(1, text) else {
        return;
    };
    let req = line.request();
    let store = MemoryStore::new(CasRule::Envoy);
    let mut cache = TokenCache::new(4);
    let mut env = Env {
        cache: &mut cache,
        shared: &store,
        clock_us: &|| 0,
    };
    let decision = engine.decide(&req, &mut env);
    engine.observe_response(&decision, line.status.unwrap_or(200), 0, req.now_s, &store);
    let record = AuditRecord::new(&req, &decision, line.ts_ms, 0, engine.recorded_claims());
    let _ = serde_json::to_string(&record);
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn the_trace_line_fuzz_corpus_replays() {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
        let mut n = 0;
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join("trace_line")) else {
                continue;
            };
            for entry in entries {
                let bytes = std::fs::read(entry.unwrap().path()).unwrap();
                super::exercise(crate::fuzz_common::engine(), &bytes);
                n += 1;
            }
        }
        assert!(n > 0, "no corpus for trace_line");
    }
}
