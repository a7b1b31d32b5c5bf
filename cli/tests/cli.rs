//! The `warden` binary, run as a user runs it: keygen → mint → inspect against a config built from
//! the generated JWKS, and `check` on good and bad configs.
//!
//! RSA key generation is the slow step, so the suite generates one RSA key in all.

// clippy.toml allows these in `#[test]` functions; the helpers below are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

const ISS: &str = "https://idp.example.com";
const HMAC_ISS: &str = "https://hmac.example.com";
const AUD: &str = "orders-api";
/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600;

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run warden");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn warden(args: &[&str]) -> Output {
    run(args, None)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "warden-cli-test-{}-{name}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, contents: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, contents).unwrap();
        s(&p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

/// `warden token keygen`; returns the private JWK path and the one public JWK.
fn keygen(dir: &Scratch, alg: &str, kid: &str) -> (String, Value) {
    let private = dir.path(&format!("{kid}.private.jwk"));
    let jwks = dir.path(&format!("{kid}.jwks.json"));
    let o = warden(&[
        "token",
        "keygen",
        "--alg",
        alg,
        "--kid",
        kid,
        "--private",
        &s(&private),
        "--jwks",
        &s(&jwks),
    ]);
    assert_exit(&o, 0);
    let set: Value = serde_json::from_slice(&std::fs::read(&jwks).unwrap()).unwrap();
    let keys = set["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{set}");
    (s(&private), keys[0].clone())
}

fn config(keys: &[Value]) -> Value {
    json!({"providers": [{"name": "corp", "issuer": ISS, "audiences": [AUD],
                          "jwks": {"keys": keys}}]})
}

fn mint(key: &str, extra: &[&str]) -> String {
    let mut args = vec!["token", "mint", "--key", key, "--sub", "alice"];
    if !extra.contains(&"--iss") {
        args.extend(["--iss", ISS]);
    }
    if !extra.contains(&"--aud") {
        args.extend(["--aud", AUD]);
    }
    args.extend(extra);
    let o = warden(&args);
    assert_exit(&o, 0);
    let token = stdout(&o).trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "{token}");
    token
}

fn inspect(token: &str, config: &str, extra: &[&str]) -> Output {
    let mut args = vec!["token", "inspect", token, "--config", config];
    args.extend(extra);
    warden(&args)
}

fn decode_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// An ES256 key and a config that trusts it: the fixture of most tests.
fn es256_fixture(name: &str) -> (Scratch, String, String) {
    let dir = Scratch::new(name);
    let (key, public) = keygen(&dir, "ES256", "k1");
    let cfg = dir.write("config.json", &config(&[public]).to_string());
    (dir, key, cfg)
}

#[test]
fn every_algorithm_keygen_mint_inspect_is_valid() {
    let dir = Scratch::new("all-algs");
    let mut publics = Vec::new();
    let mut privates = Vec::new();
    for alg in ["ES256", "ES384", "EdDSA", "HS256", "HS512", "RS256"] {
        let kid = format!("kid-{alg}");
        let (private, public) = keygen(&dir, alg, &kid);
        assert_eq!(public["kid"], kid.as_str());
        assert_eq!(public["alg"], alg);
        assert_eq!(public["use"], "sig");
        let private_jwk: Value = serde_json::from_slice(&std::fs::read(&private).unwrap()).unwrap();
        assert_eq!(private_jwk["kid"], kid.as_str());
        if alg.starts_with("HS") {
            let k = URL_SAFE_NO_PAD
                .decode(private_jwk["k"].as_str().unwrap())
                .unwrap();
            assert_eq!(k.len(), if alg == "HS256" { 32 } else { 64 });
            assert_eq!(public, private_jwk, "an HMAC JWKS holds the oct key itself");
        } else {
            assert!(private_jwk.get("d").is_some(), "{private_jwk}");
            assert!(
                public.get("d").is_none(),
                "private member in the JWKS: {public}"
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&private).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{alg} private key mode {mode:o}");
        }
        publics.push(public);
        privates.push((alg, private));
    }
    // PS256 with the one RSA key of the suite: the JWKS entry bound to PS256 under its own kid.
    let (_, rsa_private) = privates.last().unwrap().clone();
    let mut ps256 = publics.last().unwrap().clone();
    ps256["alg"] = json!("PS256");
    ps256["kid"] = json!("kid-PS256");
    publics.push(ps256);

    // HMAC secrets may not share a provider with public keys: they get an issuer of their own.
    let (hmac, public): (Vec<Value>, Vec<Value>) =
        publics.into_iter().partition(|k| k["kty"] == "oct");
    let mut doc = config(&public);
    doc["providers"].as_array_mut().unwrap().push(
        json!({"name": "shared", "issuer": HMAC_ISS, "audiences": [AUD], "jwks": {"keys": hmac}}),
    );
    let cfg = dir.write("config.json", &doc.to_string());
    let o = warden(&["check", &cfg]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("2 providers"), "{}", stdout(&o));
    assert!(stdout(&o).contains("7 keys"), "{}", stdout(&o));

    for (alg, private) in &privates {
        let iss = if alg.starts_with("HS") { HMAC_ISS } else { ISS };
        let token = mint(private, &["--scope", "orders:read", "--iss", iss]);
        let header = decode_part(&token, 0);
        assert_eq!(header["alg"], *alg, "the JWK's alg is the default");
        assert_eq!(
            header["kid"],
            format!("kid-{alg}").as_str(),
            "the JWK's kid is the default"
        );
        let o = inspect(&token, &cfg, &[]);
        assert_exit(&o, 0);
        assert!(
            stdout(&o).contains("verdict: valid"),
            "{alg}: {}",
            stdout(&o)
        );
    }
    let token = mint(&rsa_private, &["--alg", "PS256", "--kid", "kid-PS256"]);
    assert_eq!(decode_part(&token, 0)["alg"], "PS256");
    let o = inspect(&token, &cfg, &[]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("verdict: valid"),
        "PS256: {}",
        stdout(&o)
    );
}

#[test]
fn expired_token_is_invalid_expired_with_exit_2() {
    let (_dir, key, cfg) = es256_fixture("expired");
    let token = mint(&key, &["--expires-in", "-600"]);
    let o = inspect(&token, &cfg, &[]);
    assert_exit(&o, 2);
    assert!(
        stdout(&o).contains("verdict: invalid (expired)"),
        "{}",
        stdout(&o)
    );
    // The same with a fixed clock, so that the phrase can be checked exactly.
    let t0 = T0.to_string();
    let token = mint(&key, &["--now", &t0, "--expires-in", "-600"]);
    let o = inspect(&token, &cfg, &["--now", &t0]);
    assert_exit(&o, 2);
    assert!(
        stdout(&o).contains("verdict: invalid (expired)"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("expired 10m ago"), "{}", stdout(&o));
}

#[test]
fn wrong_audience_is_invalid_audience() {
    let (_dir, key, cfg) = es256_fixture("audience");
    let token = mint(&key, &["--aud", "billing-api"]);
    let o = inspect(&token, &cfg, &[]);
    assert_exit(&o, 2);
    assert!(
        stdout(&o).contains("verdict: invalid (audience)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn engine_reasons_for_time_key_and_signature() {
    let (dir, key, cfg) = es256_fixture("reasons");
    let reason = |token: &str, extra: &[&str]| {
        let o = inspect(token, &cfg, extra);
        assert_exit(&o, 2);
        stdout(&o).lines().last().unwrap().to_owned()
    };
    let early = mint(&key, &["--not-before-in", "600"]);
    assert_eq!(reason(&early, &[]), "verdict: invalid (not_yet_valid)");
    let other_kid = mint(&key, &["--kid", "k2"]);
    assert_eq!(reason(&other_kid, &[]), "verdict: invalid (unknown_key)");
    let (impostor, _) = keygen(&dir, "ES256", "k1-impostor");
    let forged = mint(&impostor, &["--kid", "k1"]);
    assert_eq!(reason(&forged, &[]), "verdict: invalid (signature)");
    // --now moves the engine's clock too.
    let token = mint(&key, &["--now", &T0.to_string()]);
    let late = (T0 + 7200).to_string();
    assert_eq!(
        reason(&token, &["--now", &late]),
        "verdict: invalid (expired)"
    );
}

#[test]
fn inspect_shows_header_payload_and_times() {
    let (_dir, key, cfg) = es256_fixture("times");
    let token = mint(
        &key,
        &[
            "--now",
            &T0.to_string(),
            "--scope",
            "orders:read orders:write",
            "--tenant",
            "acme",
            "--client-id",
            "cli-1",
            "--jti",
            "tok-1",
        ],
    );
    let now = (T0 + 300).to_string();
    let o = warden(&["token", "inspect", &token, "--now", &now]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    for want in [
        "\"alg\": \"ES256\"",
        "\"kid\": \"k1\"",
        "\"typ\": \"at+jwt\"",
        "\"tenant\": \"acme\"",
        "\"scope\": \"orders:read orders:write\"",
        "iat  1767225600  2026-01-01T00:00:00Z  issued 5m ago",
        "exp  1767229200  2026-01-01T01:00:00Z  expires in 55m",
        "lifetime (exp - iat): 1h",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(
        !out.contains("verdict"),
        "no verdict without --config:\n{out}"
    );

    let o = inspect(&token, &cfg, &["--now", &now]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    for want in [
        "verdict: valid",
        "subject: alice",
        "tenant: acme",
        "client: cli-1",
        "scopes: orders:read orders:write",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn inspect_reads_the_token_from_stdin() {
    let (_dir, key, cfg) = es256_fixture("stdin");
    let token = mint(&key, &[]);
    let o = run(
        &["token", "inspect", "-", "--config", &cfg],
        Some(&format!("{token}\n")),
    );
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("verdict: valid"), "{}", stdout(&o));
}

#[test]
fn inspect_garbage() {
    let (_dir, _key, cfg) = es256_fixture("garbage");
    let o = warden(&["token", "inspect", "not-a-token"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("not a compact JWT"), "{}", stderr(&o));
    let o = inspect("not-a-token", &cfg, &[]);
    assert_exit(&o, 2);
    assert!(
        stdout(&o).contains("verdict: invalid (malformed)"),
        "{}",
        stdout(&o)
    );
    let o = warden(&["token", "inspect", "a.b.c.d.e"]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("JWE"), "{}", stderr(&o));
}

#[test]
fn inspect_with_a_broken_config_is_an_error_not_a_verdict() {
    let dir = Scratch::new("broken-config");
    let cfg = dir.write("config.json", r#"{"providers": [], "rotues": []}"#);
    let o = inspect("a.b.c", &cfg, &[]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("rotues"), "{}", stderr(&o));
}

#[test]
fn mint_sets_header_and_claims() {
    let (_dir, key, _cfg) = es256_fixture("claims");
    let token = mint(
        &key,
        &[
            "--now",
            &T0.to_string(),
            "--expires-in",
            "120",
            "--not-before-in",
            "-5",
            "--typ",
            "JWT",
            "--jti",
            "j-9",
            "--claim",
            r#"act={"sub":"agent-7"}"#,
            "--claim",
            "acr=\"urn:mfa\"",
            "--claim",
            "scp=[\"a\",\"b\"]",
        ],
    );
    let header = decode_part(&token, 0);
    assert_eq!(header, json!({"alg": "ES256", "kid": "k1", "typ": "JWT"}));
    let claims = decode_part(&token, 1);
    assert_eq!(
        claims,
        json!({"iss": ISS, "sub": "alice", "aud": AUD, "iat": T0, "exp": T0 + 120,
               "nbf": T0 - 5, "jti": "j-9", "act": {"sub": "agent-7"}, "acr": "urn:mfa",
               "scp": ["a", "b"]})
    );

    let token = mint(&key, &["--aud", "a", "--aud", "b", "--no-kid"]);
    assert!(decode_part(&token, 0).get("kid").is_none());
    let mut aud: Vec<String> =
        serde_json::from_value(decode_part(&token, 1)["aud"].clone()).unwrap();
    aud.sort();
    assert_eq!(aud, ["a", "b"]);
}

#[test]
fn mint_refuses_ambiguous_or_malformed_claims() {
    let (_dir, key, _cfg) = es256_fixture("bad-claims");
    let base = [
        "token", "mint", "--key", &key, "--iss", ISS, "--aud", AUD, "--sub", "s",
    ];
    for (extra, want) in [
        (vec!["--claim", "iss=\"evil\""], "--iss"),
        (vec!["--claim", "exp=1"], "--expires-in"),
        (vec!["--claim", "act=agent"], "not JSON"),
        (vec!["--claim", "act"], "NAME=JSON"),
        (vec!["--tenant", "t", "--claim", "tenant=\"u\""], "--tenant"),
        (vec!["--claim", "x=1", "--claim", "x=2"], "twice"),
        (vec!["--alg", "RS256"], "RS256"),
        (vec!["--alg", "none"], "unsupported algorithm"),
    ] {
        let mut args = base.to_vec();
        args.extend(&extra);
        let o = warden(&args);
        assert_exit(&o, 1);
        assert!(stderr(&o).contains(want), "{extra:?}: {}", stderr(&o));
    }
}

#[test]
fn check_valid_config_prints_a_summary() {
    let dir = Scratch::new("check-ok");
    let (_, public) = keygen(&dir, "EdDSA", "ed-1");
    let mut cfg = config(&[public]);
    cfg["routes"] = json!([
        {"path": "/health", "anonymous": true},
        {"prefix": "/orders", "scopes": ["orders:read"]}
    ]);
    let path = dir.write("config.json", &cfg.to_string());
    let o = warden(&["check", &path]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1, "{out}");
    for want in ["1 provider", "corp: EdDSA", "1 key", "2 routes"] {
        assert!(out.contains(want), "missing {want:?} in {out}");
    }
    let o = run(&["check", "-"], Some(&cfg.to_string()));
    assert_exit(&o, 0);
}

#[test]
fn check_unknown_key_exits_1_and_names_it() {
    let o = run(&["check", "-"], Some(r#"{"providers": [], "rotues": []}"#));
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("rotues"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());

    let dir = Scratch::new("check-unknown");
    let (_, public) = keygen(&dir, "ES256", "k1");
    let mut cfg = config(&[public]);
    cfg["providers"][0]["audience"] = json!("orders-api");
    let path = dir.write("config.json", &cfg.to_string());
    let o = warden(&["check", &path]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("audience"), "{}", stderr(&o));
}

#[test]
fn check_bad_jwk_names_its_path() {
    let dir = Scratch::new("check-bad-jwk");
    let (_, mut public) = keygen(&dir, "ES256", "k1");
    public["x"] = json!("AAAA");
    let path = dir.write("config.json", &config(&[public]).to_string());
    let o = warden(&["check", &path]);
    assert_exit(&o, 1);
    assert!(
        stderr(&o).contains("invalid config at `providers[0].jwks.keys[0]`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn errors_exit_1_and_2_is_kept_for_invalid_tokens() {
    assert_exit(&warden(&["check"]), 1);
    assert_exit(&warden(&["token", "frobnicate"]), 1);
    assert_exit(&warden(&["check", "/nonexistent/warden.json"]), 1);
    assert_exit(&warden(&["--help"]), 0);
}
