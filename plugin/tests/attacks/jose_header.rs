//! The JOSE header's own rules: `typ` (access tokens, not ID tokens or other JWTs) and `crit`.

use super::common::*;
use serde_json::{json, Value};
use warden::Engine;

// --- typ ---------------------------------------------------------------------------------------------

#[test]
fn typ_confusion() {
    let accepted = [
        "JWT",
        "jwt",
        "at+jwt",
        "AT+JWT",
        "application/at+jwt",
        "application/jwt",
        "Application/JWT",
    ];
    for typ in accepted {
        let d = decide_token(&ed_token(json!({"typ": typ}), &claims()));
        assert_eq!((d.status, d.reason), (200, "ok"), "typ {typ}");
    }
    // No typ at all is fine when the provider does not require one.
    assert_decision(
        &decide_token(&ed_token(json!({"typ": null}), &claims())),
        200,
        "ok",
    );
    let refused = [
        "dpop+jwt",
        "application/dpop+jwt",
        "JWS",
        "JOSE",
        "JOSE+JSON",
        "secevent+jwt",
        "logout+jwt",
        "id_token+jwt",
        "",
        "application/",
        "text/jwt",
        "application/at+jwt; charset=utf-8",
    ];
    for typ in refused {
        let d = decide_token(&ed_token(json!({"typ": typ}), &claims()));
        assert_eq!((d.status, d.reason), (401, "typ"), "typ {typ:?}");
    }
    assert_decision(
        &decide_token(&ed_token(json!({"typ": 1}), &claims())),
        401,
        "malformed",
    );
}

#[test]
fn require_typ_is_exact_up_to_media_type_rules() {
    let mut cfg = config();
    cfg["providers"][0]["require_typ"] = "at+jwt".into();
    let engine = Engine::from_json(cfg.to_string().as_bytes()).unwrap();
    let run = |typ: Value| {
        let token = ed_token(json!({"typ": typ}), &claims());
        let d = decide_token_on(&engine, &token);
        (d.status, d.reason)
    };
    for typ in ["at+jwt", "AT+JWT", "application/at+jwt"] {
        assert_eq!(run(typ.into()), (200, "ok"), "{typ}");
    }
    for typ in [
        json!("JWT"),
        json!("application/jwt"),
        json!(null),
        json!("at+jwt+jwt"),
    ] {
        assert_eq!(run(typ.clone()), (401, "typ"), "{typ}");
    }
}

// --- crit ----------------------------------------------------------------------------------------------

#[test]
fn crit_is_refused_in_every_form() {
    for crit in [
        json!(["exp"]),
        json!([]),
        json!(["b64"]),
        json!(["x-custom"]),
        json!("exp"),
    ] {
        let token = ed_token(
            json!({"crit": crit, "b64": false, "x-custom": 1}),
            &claims(),
        );
        assert_decision(&decide_token(&token), 401, "crit");
    }
}
