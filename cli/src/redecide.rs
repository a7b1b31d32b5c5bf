//! `warden replay --audit AUDIT.jsonl --config CONFIG`: the filter's decision records decided again
//! from the records alone, with another model, thresholds or policy. How operators try a change on
//! recorded production traffic before enforcing it; on an unchanged config it reproduces the
//! filter's decisions.
//!
//! Records are taken in time order (a gateway's workers write them as requests end, not as they
//! are decided). The behavioural state starts empty and evolves as in the filter: each scored
//! request, then the upstream's recorded answer; a recorded refusal that counted as a failure
//! counts again. What the record cannot carry is not replayed: the revocation feed's content,
//! a time budget overrun (replay never trips the budget).

use crate::trace::{open, write_line};
use crate::Report;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, BufWriter, Write};
use warden::audit::recorded::Recorded;
use warden::audit::{AuditRecord, Outcome};
use warden::shared::{CasRule, MemoryStore};
use warden::{Engine, Env, Request, TokenCache};

/// Runs `replay --audit` with the config document `config`.
pub fn run(config: &[u8], audit: &str) -> Result<Report, String> {
    let engine = Engine::from_json(config).map_err(|e| e.to_string())?;
    let mut records = Vec::new();
    for (i, line) in BufReader::new(open(audit)?).lines().enumerate() {
        let line = line.map_err(|e| format!("cannot read {audit}: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = |e: String| format!("record line {}: {e}", i + 1);
        let rec = Recorded::parse(&line).map_err(at)?;
        let value: Value = serde_json::from_str(&line).map_err(|e| at(e.to_string()))?;
        records.push((i + 1, rec, value));
    }
    // Stable: records of the same millisecond keep their order in the file.
    records.sort_by_key(|(_, r, _)| r.ts_ms);
    let store = MemoryStore::new(CasRule::Envoy);
    let mut cache = TokenCache::default();
    let clock = || 0u64;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let (mut redecided, mut changed) = (0u64, 0u64);
    for (number, rec, value) in &records {
        let now_s = rec.ts_ms / 1000;
        let headers = rec.headers(engine.geo_header());
        let body = rec.mcp_body();
        let req = Request {
            method: &rec.method,
            path: &rec.path,
            headers: &headers,
            request_id: &rec.request_id,
            now_s,
            peer_cert_sha256: None,
            peer_cert_unread: false,
            source_unread: false,
            source: rec.source_ip,
            body: body
                .as_deref()
                .map_or(warden::decision::Body::Unread, warden::decision::Body::Read),
        };
        let was = json!({"decision": rec.decision, "status": rec.status, "reason": rec.reason,
                         "risk_score": rec.risk_score});
        let Some(identity) = rec.identity() else {
            if rec.counted_failure {
                engine.count_failure(rec.source_ip, now_s, &store);
            }
            write_line(
                &mut out,
                &annotated(value.clone(), *number, false, was, false),
            )?;
            continue;
        };
        let mut env = Env {
            cache: &mut cache,
            shared: &store,
            clock_us: &clock,
        };
        let decision = engine.redecide(&req, identity, &mut env);
        if let (Some(status), true) = (rec.upstream_status, decision.observes_response()) {
            let bytes = rec.response_bytes.unwrap_or(0);
            engine.observe_response(&decision, status, bytes, now_s, &store);
        }
        let outcome = Outcome {
            upstream_status: rec.upstream_status.filter(|_| decision.reply.is_none()),
            response_bytes: rec.response_bytes,
            duration_ms: None,
        };
        let record = AuditRecord::new(&req, &decision, rec.ts_ms, 0, engine.recorded_claims())
            .with_outcome(outcome);
        let differs = record.decision != rec.decision
            || record.status != rec.status
            || record.reason != rec.reason
            || record.risk_score != rec.risk_score;
        redecided += 1;
        changed += u64::from(differs);
        // Through the text the filter writes: f32 values keep their shortest form (0.5881).
        let line: Value = serde_json::from_str(&record.to_json()).map_err(|e| e.to_string())?;
        write_line(&mut out, &annotated(line, *number, true, was, differs))?;
    }
    out.flush()
        .map_err(|e| format!("cannot write output: {e}"))?;
    Ok(Report {
        stdout: String::new(),
        stderr: format!(
            "{} records, {redecided} decided again, {changed} changed\n",
            records.len()
        ),
        code: 0,
    })
}

/// An output line: the record with the record line's number, whether it was decided again, the
/// recorded decision and whether the new one differs.
fn annotated(mut line: Value, number: usize, redecided: bool, was: Value, changed: bool) -> Value {
    if let Value::Object(obj) = &mut line {
        obj.insert("line".into(), json!(number));
        obj.insert("redecided".into(), json!(redecided));
        obj.insert("was".into(), was);
        obj.insert("changed".into(), json!(changed));
    }
    line
}
