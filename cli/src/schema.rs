//! `warden schema`: the config's JSON Schema, generated from the engine's own config types (one
//! source), in the form Kong reads beside the filter: `warden.meta.json` = `{"config_schema": ...}`
//! in JSON Schema draft 4 (Kong validates filter configs with lua-resty-ljsonschema, draft 4 only).
//!
//! schemars writes draft 7; [`to_draft4`] rewrites the few constructs draft 4 spells differently and
//! refuses any it cannot express, so the schema can never be looser than the parser without failing
//! here. `make schema` regenerates the checked-in `kong/warden.meta.json`; a test fails when it is stale.

use crate::Report;
use clap::Args;
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

/// The draft 4 meta-schema URI, as Kong writes it (`kong.db.schema.json.DRAFT_4`).
pub const DRAFT_4: &str = "http://json-schema.org/draft-04/schema#";

/// Print `warden.meta.json` (Kong's filter metadata: the config JSON Schema, draft 4), or with
/// `--record` the decision record's JSON Schema (`docs/schema/decision-record.v1.json`).
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Print the decision record's schema instead of the config's.
    #[arg(long)]
    pub record: bool,
}

/// Runs `schema`.
pub fn run(args: &SchemaArgs) -> Result<Report, String> {
    if args.record {
        return serde_json::to_string_pretty(&warden::audit::schema())
            .map(|s| Report::success(s + "\n"))
            .map_err(|e| e.to_string());
    }
    meta_json().map(Report::success)
}

/// The text of `kong/warden.meta.json`: pretty JSON and a final newline.
pub fn meta_json() -> Result<String, String> {
    let patterns: Vec<Value> = warden::metrics::kong_label_patterns()
        .into_iter()
        .map(|(label, pattern)| json!({"label": label, "pattern": pattern}))
        .collect();
    let meta = json!({
        "config_schema": config_schema()?,
        "metrics": {"label_patterns": patterns},
    });
    serde_json::to_string_pretty(&meta)
        .map(|s| s + "\n")
        .map_err(|e| e.to_string())
}

/// The config's JSON Schema in draft 4, every subschema inlined (no `$ref`), so any validator reads
/// it without resolving references.
pub fn config_schema() -> Result<Value, String> {
    let generator = SchemaSettings::draft07()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let schema = generator.into_root_schema_for::<warden::Config>();
    let mut value = serde_json::to_value(schema).map_err(|e| e.to_string())?;
    to_draft4(&mut value, "#")?;
    if let Value::Object(root) = &mut value {
        root.insert("$schema".into(), Value::String(DRAFT_4.into()));
        root.remove("title");
        root.insert("title".into(), Value::String("Warden filter config".into()));
    }
    Ok(value)
}

/// Keywords that only annotate (no effect on validation) and that draft 4 lacks: dropped.
const DROP: &[&str] = &[
    "$comment",
    "examples",
    "readOnly",
    "writeOnly",
    "deprecated",
    "contentEncoding",
    "contentMediaType",
    "$id",
];

/// Keywords that validate in draft 6+ and have no draft 4 spelling: refusing them keeps the schema
/// from silently accepting what the parser refuses.
const REFUSE: &[&str] = &[
    "if",
    "then",
    "else",
    "propertyNames",
    "contains",
    "prefixItems",
    "unevaluatedProperties",
    "unevaluatedItems",
    "dependentRequired",
    "dependentSchemas",
    "$defs",
    "$anchor",
    "$dynamicRef",
];

/// The `format` values draft 4 defines; others (schemars' `uint64`, `int32`...) are dropped: the
/// `type`, `minimum` and `maximum` beside them already say what they mean.
const DRAFT4_FORMATS: &[&str] = &["date-time", "email", "hostname", "ipv4", "ipv6", "uri"];

/// Keys whose value is a map of name to schema.
const SCHEMA_MAPS: &[&str] = &["properties", "patternProperties", "definitions"];
/// Keys whose value is a schema (or, for `items`, a list of schemas).
const SCHEMA_VALUES: &[&str] = &["items", "additionalItems", "not", "additionalProperties"];
/// Keys whose value is a list of schemas.
const SCHEMA_LISTS: &[&str] = &["allOf", "anyOf", "oneOf"];

/// Rewrites a draft 7 schema (as schemars writes it) into draft 4, in place. `at` is the JSON pointer
/// of `schema`, for errors.
pub fn to_draft4(schema: &mut Value, at: &str) -> Result<(), String> {
    let obj = match schema {
        // Draft 4 has no boolean schemas (except for `additionalProperties`/`additionalItems`,
        // handled by the caller).
        Value::Bool(true) => {
            *schema = json!({});
            return Ok(());
        }
        Value::Bool(false) => {
            *schema = json!({ "not": {} });
            return Ok(());
        }
        Value::Object(obj) => obj,
        _ => return Err(format!("{at}: a schema must be an object")),
    };
    for key in REFUSE {
        if obj.contains_key(*key) {
            return Err(format!("{at}: `{key}` has no draft 4 equivalent"));
        }
    }
    if obj.contains_key("$ref") {
        return Err(format!("{at}: `$ref` left after inlining"));
    }
    for key in DROP {
        obj.remove(*key);
    }
    if let Some(Value::String(f)) = obj.get("format").cloned() {
        // schemars bounds every integer type but u64/i64 (`minimum: 0` only); say it, so a number
        // the parser refuses as out of range is refused by the schema too.
        let bounds = match f.as_str() {
            "uint64" => Some((json!(0), json!(u64::MAX))),
            "int64" => Some((json!(i64::MIN), json!(i64::MAX))),
            _ => None,
        };
        if let Some((min, max)) = bounds {
            obj.entry("minimum").or_insert(min);
            obj.entry("maximum").or_insert(max);
        }
        if !DRAFT4_FORMATS.contains(&f.as_str()) {
            obj.remove("format");
        }
    }
    if let Some(v) = obj.remove("const") {
        obj.insert("enum".into(), Value::Array(vec![v]));
    }
    for (exclusive, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(Value::Number(n)) = obj.get(exclusive).cloned() {
            obj.insert(bound.into(), Value::Number(n));
            obj.insert(exclusive.into(), Value::Bool(true));
        }
    }
    walk(obj, at)
}

fn walk(obj: &mut Map<String, Value>, at: &str) -> Result<(), String> {
    for key in SCHEMA_MAPS {
        if let Some(Value::Object(map)) = obj.get_mut(*key) {
            for (name, sub) in map.iter_mut() {
                to_draft4(sub, &format!("{at}/{key}/{name}"))?;
            }
        }
    }
    for key in SCHEMA_VALUES {
        match obj.get_mut(*key) {
            // `additionalProperties: false` is draft 4 and is what keeps unknown keys out.
            Some(Value::Bool(_)) if *key == "additionalProperties" || *key == "additionalItems" => {
            }
            Some(Value::Array(list)) if *key == "items" => {
                for (i, sub) in list.iter_mut().enumerate() {
                    to_draft4(sub, &format!("{at}/{key}/{i}"))?;
                }
            }
            Some(sub) => to_draft4(sub, &format!("{at}/{key}"))?,
            None => {}
        }
    }
    for key in SCHEMA_LISTS {
        if let Some(Value::Array(list)) = obj.get_mut(*key) {
            for (i, sub) in list.iter_mut().enumerate() {
                to_draft4(sub, &format!("{at}/{key}/{i}"))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn checked_in() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kong/warden.meta.json")
    }

    #[test]
    fn checked_in_meta_json_is_what_the_generator_prints() {
        let now = meta_json().unwrap();
        let file = std::fs::read_to_string(checked_in()).unwrap_or_default();
        assert!(
            file == now,
            "kong/warden.meta.json is stale: the config types changed. Run `make schema` and commit \
             the result."
        );
    }

    /// Every object in the schema states `additionalProperties`, so no config type was derived
    /// without `deny_unknown_fields` (a typo in it would pass the schema but fail the parser, or the
    /// reverse for maps).
    #[test]
    fn every_object_is_closed_or_a_map() {
        fn check(v: &Value, at: &str, objects: &mut usize) {
            match v {
                Value::Object(o) => {
                    let is_object = match o.get("type") {
                        Some(Value::String(t)) => t == "object",
                        Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
                        _ => o.contains_key("properties"),
                    };
                    if is_object {
                        *objects += 1;
                        assert!(
                            o.contains_key("additionalProperties"),
                            "{at}: an object without additionalProperties (deny_unknown_fields?)"
                        );
                    }
                    for (k, sub) in o {
                        check(sub, &format!("{at}/{k}"), objects);
                    }
                }
                Value::Array(items) => {
                    for (i, sub) in items.iter().enumerate() {
                        check(sub, &format!("{at}/{i}"), objects);
                    }
                }
                _ => {}
            }
        }
        let schema = config_schema().unwrap();
        let mut objects = 0;
        check(&schema, "#", &mut objects);
        assert!(
            objects >= 8,
            "only {objects} objects found: did inlining change?"
        );
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(
            schema["properties"]["providers"]["items"]["properties"]["jwks"]
                ["additionalProperties"],
            false
        );
    }

    #[test]
    fn draft4_rewrites() {
        let mut v = json!({
            "$schema": "x", "const": "a", "exclusiveMinimum": 0, "format": "uint64",
            "properties": {"b": true, "c": {"exclusiveMaximum": 5, "examples": [1]}},
            "items": false, "additionalProperties": false
        });
        to_draft4(&mut v, "#").unwrap();
        assert_eq!(v["enum"], json!(["a"]));
        assert_eq!(v["minimum"], 0);
        assert_eq!(v["maximum"], u64::MAX);
        assert_eq!(v["exclusiveMinimum"], true);
        assert!(v.get("format").is_none());
        assert_eq!(v["properties"]["b"], json!({}));
        assert_eq!(
            v["properties"]["c"],
            json!({"maximum": 5, "exclusiveMaximum": true})
        );
        assert_eq!(v["items"], json!({"not": {}}));
        assert_eq!(v["additionalProperties"], false);
        for refused in [
            json!({"if": {}}),
            json!({"properties": {"x": {"propertyNames": {}}}}),
            json!({"$ref": "#/definitions/X"}),
        ] {
            let mut r = refused.clone();
            assert!(to_draft4(&mut r, "#").is_err(), "{refused}");
        }
    }

    #[test]
    fn defaults_are_the_parsers_defaults() {
        let schema = config_schema().unwrap();
        let provider = &schema["properties"]["providers"]["items"]["properties"];
        assert_eq!(provider["clock_skew_s"]["default"], 60);
        let claims = &provider["claims"]["properties"];
        assert_eq!(claims["tenant"]["default"], "tenant");
        assert_eq!(claims["scopes"]["default"], json!(["scope", "scp"]));
        let parsed = warden::Config::from_json(
            br#"{"providers": [{"name": "a", "issuer": "i", "audiences": ["x"], "jwks": {"keys": []}}]}"#,
        )
        .unwrap();
        let p = &parsed.providers[0];
        assert_eq!(p.clock_skew_s, 60);
        assert_eq!(p.claims.tenant, "tenant");
        assert_eq!(p.claims.scopes, ["scope", "scp"]);
    }
}
