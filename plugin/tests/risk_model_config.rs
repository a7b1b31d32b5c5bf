//! `risk.model`: a model deployed through the config instead of the embedded one. Checked at load
//! like the embedded model (features by name and order, operators, outputs, size), refused naming
//! the field; the model that scored is named in every record and on the risk score metric.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use base64::Engine as _;
use jwt_simple::prelude::*;
use prost::Message;
use serde_json::{json, Value};
use warden::audit::AuditRecord;
use warden::config::risk::MAX_MODEL_BYTES;
use warden::risk::model;
use warden::shared::{CasRule, MemoryStore};
use warden::{Decision, Engine, Env, Request, TokenCache};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const EMBEDDED: &[u8] = include_bytes!("../../model/risk.onnx");
/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn config(model: Option<String>) -> Value {
    let mut risk = json!({"tag_at": 1, "step_up_at": 100});
    if let Some(m) = model {
        risk["model"] = json!(m);
    }
    json!({
        "providers": [{"name": "corp", "issuer": "https://idp.test", "audiences": ["api"],
            "jwks": {"keys": [{"kty": "oct", "kid": "h1", "alg": "HS256",
                "k": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(SECRET)}]}}],
        "routes": [{"name": "orders", "prefix": "/orders"}],
        "risk": risk,
    })
}

fn load(c: &Value) -> Result<Engine, warden::config::ConfigError> {
    Engine::from_json(c.to_string().as_bytes())
}

/// The embedded model with its bias shifted by `delta` (its logit moves by `delta` for every input).
fn shifted(delta: f32) -> Vec<u8> {
    edit(|m| {
        let graph = m.graph.as_mut().unwrap();
        let b = graph
            .initializer
            .iter_mut()
            .find(|t| t.name == "B")
            .unwrap();
        if b.float_data.is_empty() {
            let v = f32::from_le_bytes(b.raw_data[..4].try_into().unwrap()) + delta;
            b.raw_data[..4].copy_from_slice(&v.to_le_bytes());
        } else {
            b.float_data[0] += delta;
        }
    })
}

fn edit(f: impl FnOnce(&mut tract_onnx::pb::ModelProto)) -> Vec<u8> {
    let mut proto = tract_onnx::pb::ModelProto::decode(EMBEDDED).unwrap();
    f(&mut proto);
    proto.encode_to_vec()
}

/// One scored request and its record's `model` field.
fn decide(engine: &Engine) -> (Decision, Value) {
    let mut claims = Claims::create(Duration::from_secs(3600))
        .with_issuer("https://idp.test")
        .with_audience("api")
        .with_subject("alice");
    claims.issued_at = Some(UnixTimeStamp::from_secs(T0));
    claims.expires_at = Some(UnixTimeStamp::from_secs(T0 + 3600));
    claims.invalid_before = None;
    let token = HS256Key::from_bytes(SECRET)
        .with_key_id("h1")
        .authenticate(claims)
        .unwrap();
    let headers = vec![("authorization".to_owned(), format!("Bearer {token}"))];
    let req = Request {
        method: "GET",
        path: "/orders/1",
        headers: &headers,
        request_id: "r1",
        now_s: T0 + 60,
        source: "198.51.100.7".parse().ok(),
        body: Default::default(),
        peer_cert_sha256: None,
        peer_cert_unread: false,
        source_unread: false,
    };
    let store = MemoryStore::new(CasRule::Envoy);
    let mut cache = TokenCache::default();
    let d = engine.decide(
        &req,
        &mut Env {
            cache: &mut cache,
            shared: &store,
            clock_us: &|| 0,
        },
    );
    let record: Value =
        serde_json::from_str(&AuditRecord::new(&req, &d, (T0 + 60) * 1000, 0, &[]).to_json())
            .unwrap();
    (d, record)
}

#[test]
fn a_configured_model_scores_and_is_named_in_the_record_and_metric() {
    let (d0, r0) = decide(&load(&config(None)).unwrap());
    assert_eq!(r0["model"], json!(model::id()));
    // The embedded bytes through the config: the same scores, the same id.
    let (d1, r1) = decide(&load(&config(Some(b64(EMBEDDED)))).unwrap());
    assert_eq!(r1["model"], r0["model"]);
    assert_eq!(
        d1.risk.as_ref().unwrap().score,
        d0.risk.as_ref().unwrap().score
    );

    // A model whose logit is 8 higher: a higher score for the same request (a first-seen caller's,
    // the intercept's alone, about -8), and its own id.
    let hot = shifted(8.0);
    let (d2, r2) = decide(&load(&config(Some(b64(&hot)))).unwrap());
    let (s0, s2) = (
        r0["risk_score"].as_u64().unwrap(),
        r2["risk_score"].as_u64().unwrap(),
    );
    assert!(s2 > s0 + 20, "{s0} -> {s2}");
    assert_eq!(r2["model"], json!(model::id_of(&hot)));
    assert_ne!(r2["model"], r0["model"]);
    let a = d2.risk.as_ref().unwrap();
    assert_eq!(
        warden::metrics::risk_score(&a.model),
        format!("warden_risk_score.model.{}", model::id_of(&hot))
    );
}

#[test]
fn a_bad_model_is_refused_naming_the_field() {
    let reordered = edit(|m| {
        let names = m
            .metadata_props
            .iter_mut()
            .find(|p| p.key == "feature_names")
            .unwrap();
        let mut v: Vec<&str> = names.value.split(',').collect();
        v.swap(0, 1);
        names.value = v.join(",");
    });
    let unnamed = edit(|m| m.metadata_props.retain(|p| p.key != "feature_names"));
    let foreign_op = edit(|m| m.graph.as_mut().unwrap().node[2].op_type = "Softmax".into());
    let too_big = "A".repeat((MAX_MODEL_BYTES / 3 + 2) * 4);
    for (model, why) in [
        ("not base64!".to_owned(), "not base64"),
        (b64(b"not an onnx file"), "cannot be used"),
        (b64(&reordered), "other features"),
        (b64(&unnamed), "other features"),
        (b64(&foreign_op), "unsupported operator Softmax"),
        (too_big, "larger than"),
        (String::new(), "1 to"),
    ] {
        let err = load(&config(Some(model))).err().expect(why);
        assert_eq!(err.field, "risk.model", "{err}");
        assert!(err.to_string().contains(why), "{why}: {err}");
    }
}
