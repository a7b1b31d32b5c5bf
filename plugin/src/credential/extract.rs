//! Where a credential comes from: the `Authorization` header (Bearer, scheme case-insensitive)
//! or the API-key header. Two credentials, or a header twice, is an ambiguous request: an API key
//! beside an `Authorization` header of any scheme (`Basic` included) too, since the upstream may
//! act on the other one.

/// What the request presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// Nothing we accept.
    Nothing,
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// `Authorization: DPoP <token>` (RFC 9449 §7.1): a token that needs a `DPoP` proof header.
    Dpop(&'a str),
    /// The API-key header.
    ApiKey(&'a str),
}

/// Why the credential headers are unusable (answered 400 `invalid_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractError {
    /// Two credentials, or the same credential header twice.
    Ambiguous,
    /// A Bearer header that is not `Bearer <token68>`, or an empty API key.
    Malformed,
}

impl ExtractError {
    /// Name for audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            ExtractError::Ambiguous => "ambiguous_credentials",
            ExtractError::Malformed => "malformed_credentials",
        }
    }
}

/// Finds the one credential in `headers` (names compared case-insensitively).
pub fn extract<'a>(
    headers: &'a [(String, String)],
    api_key_header: Option<&str>,
) -> Result<Presented<'a>, ExtractError> {
    let mut found = Presented::Nothing;
    let mut authorization_seen = false;
    let mut api_key_seen = false;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("authorization") {
            if authorization_seen {
                return Err(ExtractError::Ambiguous);
            }
            authorization_seen = true;
            if api_key_seen {
                return Err(ExtractError::Ambiguous);
            }
            if let Some(p) = authorization(value)? {
                if found != Presented::Nothing {
                    return Err(ExtractError::Ambiguous);
                }
                found = p;
            }
        } else if api_key_header.is_some_and(|h| name.eq_ignore_ascii_case(h)) {
            if api_key_seen {
                return Err(ExtractError::Ambiguous);
            }
            api_key_seen = true;
            let key = value.trim();
            if key.is_empty() {
                return Err(ExtractError::Malformed);
            }
            if authorization_seen {
                return Err(ExtractError::Ambiguous);
            }
            found = Presented::ApiKey(key);
        }
    }
    Ok(found)
}

/// `Bearer <token68>` (RFC 6750 §2.1) or `DPoP <token68>` (RFC 9449 §7.1); another scheme is not
/// ours and yields `None`.
fn authorization(header: &str) -> Result<Option<Presented<'_>>, ExtractError> {
    let value = header.trim_matches(|c| c == ' ' || c == '\t');
    let (scheme, rest) = match value.split_once([' ', '\t']) {
        Some((s, r)) => (s, r.trim_start_matches([' ', '\t'])),
        None => (value, ""),
    };
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    let ours = dpop || scheme.eq_ignore_ascii_case("bearer");
    // The common case first: a scheme and one token68, which holds no comma, so nothing was
    // joined into it (the walk for commas is a second pass over every token).
    if ours && !rest.is_empty() && is_token68(rest) {
        return Ok(Some(if dpop {
            Presented::Dpop(rest)
        } else {
            Presented::Bearer(rest)
        }));
    }
    if joined(header) {
        return Err(ExtractError::Ambiguous);
    }
    if !ours {
        if scheme.is_empty() {
            return Err(ExtractError::Malformed);
        }
        return Ok(None);
    }
    Err(ExtractError::Malformed)
}

/// Whether `value` is two `Authorization` headers the gateway joined into one (Envoy joins a
/// repeated inline header with `,`): a comma followed by `<scheme> <credentials>`. An auth-param
/// list (`Digest realm="a", nonce="b"`) has `name=value` after its commas, not a scheme.
fn joined(value: &str) -> bool {
    value.split(',').skip(1).any(|piece| {
        let piece = piece.trim_start_matches([' ', '\t']);
        match piece.split_once([' ', '\t']) {
            Some((scheme, rest)) => {
                !scheme.is_empty()
                    && !scheme.contains('=')
                    && !rest.trim_matches([' ', '\t']).is_empty()
            }
            None => false,
        }
    })
}

/// RFC 7235 token68: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`. Eight bytes
/// at a time without a branch between them (a JWT is hundreds of bytes, and a branch per byte
/// was most of the credential stage's own instructions), then the rest one by one.
fn is_token68(s: &str) -> bool {
    let body = s.trim_end_matches('=').as_bytes();
    let mut words = body.chunks_exact(8);
    let whole = words.all(|w| {
        <[u8; 8]>::try_from(w).is_ok_and(|[a, b, c, d, e, f, g, h]| {
            let t = token68_byte;
            t(a) & t(b) & t(c) & t(d) & t(e) & t(f) & t(g) & t(h)
        })
    });
    !body.is_empty() && whole && words.remainder().iter().all(|&b| token68_byte(b))
}

/// Whether `b` may stand in token68's body.
fn token68_byte(b: u8) -> bool {
    TOKEN68.get(usize::from(b)).copied().unwrap_or(false)
}

/// The bytes of token68's body, as a table: one load per byte of every token (a JWT is hundreds
/// of bytes), where the ranges and the six symbols took several comparisons each.
static TOKEN68: [bool; 256] = token68_table();

// Evaluated at compile time: an index out of range would fail the build, never a request.
#[allow(clippy::indexing_slicing)]
const fn token68_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// The table holds exactly RFC 7235's token68 characters, byte for byte.
    #[test]
    fn token68_table_is_the_grammar() {
        for b in 0..=255u8 {
            let grammar =
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
            let s = [b'a', b, b'='];
            let as_str = std::str::from_utf8(&s);
            assert_eq!(TOKEN68[usize::from(b)], grammar, "byte {b}");
            if let Ok(s) = as_str {
                assert_eq!(is_token68(s), grammar || b == b'=', "byte {b}");
            }
            // At every place of a body long enough for whole words and a rest.
            for at in 0..19 {
                let mut body = vec![b'a'; 19];
                body[at] = b;
                if let Ok(s) = std::str::from_utf8(&body) {
                    let padding = b == b'=' && at == 18;
                    assert_eq!(is_token68(s), grammar || padding, "byte {b} at {at}");
                }
            }
        }
    }

    /// The answer before the token68 fast path: the walk for commas first, on every value.
    fn authorization_commas_first(value: &str) -> Result<Option<Presented<'_>>, ExtractError> {
        if joined(value) {
            return Err(ExtractError::Ambiguous);
        }
        let value = value.trim_matches(|c| c == ' ' || c == '\t');
        let (scheme, rest) = match value.split_once([' ', '\t']) {
            Some((s, r)) => (s, r.trim_start_matches([' ', '\t'])),
            None => (value, ""),
        };
        let dpop = scheme.eq_ignore_ascii_case("dpop");
        if !scheme.eq_ignore_ascii_case("bearer") && !dpop {
            if scheme.is_empty() {
                return Err(ExtractError::Malformed);
            }
            return Ok(None);
        }
        if rest.is_empty() || !is_token68(rest) {
            return Err(ExtractError::Malformed);
        }
        Ok(Some(if dpop {
            Presented::Dpop(rest)
        } else {
            Presented::Bearer(rest)
        }))
    }

    /// Checking token68 before the commas changes no answer: every value built from schemes,
    /// blanks, bodies and a second credential answers as the commas-first order did.
    #[test]
    fn token68_first_answers_as_commas_first() {
        let schemes = ["Bearer", "dPoP", "Basic", "", "a=b", "Bearer,"];
        let blanks = ["", " ", "\t", " \t "];
        let bodies = [
            "a.b.c",
            "",
            "a b",
            "a,b",
            "a.b=",
            "===",
            "a=b",
            "a,",
            ",",
            "é",
            "a,\tBasic x",
            ", Bearer a.b.c",
            ",Bearer ",
            ", realm=\"x\"",
            "a.b.c, DPoP d",
        ];
        let mut n = 0;
        for scheme in schemes {
            for lead in blanks {
                for gap in blanks {
                    for body in bodies {
                        for tail in blanks {
                            let v = format!("{lead}{scheme}{gap}{body}{tail}");
                            assert_eq!(authorization(&v), authorization_commas_first(&v), "{v:?}");
                            n += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(n, 6 * 4 * 4 * 15 * 4);
    }

    #[test]
    fn scheme_is_case_insensitive() {
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let hs = h(&[("authorization", &format!("{scheme} abc.def.ghi"))]);
            assert_eq!(extract(&hs, None), Ok(Presented::Bearer("abc.def.ghi")));
        }
    }

    #[test]
    fn two_authorization_headers_are_ambiguous() {
        let hs = h(&[
            ("authorization", "Bearer a.b.c"),
            ("Authorization", "Bearer d.e.f"),
        ]);
        assert_eq!(extract(&hs, None), Err(ExtractError::Ambiguous));
    }

    /// Two `Authorization` headers reach the filter as two entries on ngx_wasm_module and as one
    /// value joined with `,` on Envoy: refused either way, whatever the schemes.
    #[test]
    fn two_authorization_headers_are_ambiguous_as_each_gateway_delivers_them() {
        use crate::gateway::mock::EnvoyHeaders;
        let creds = [
            "Bearer a.b.c",
            "DPoP a.b.c",
            "Basic dXNlcjpwYXNz",
            "Negotiate abc",
        ];
        for first in creds {
            for second in creds {
                let sent = h(&[("Authorization", first), ("authorization", second)]);
                let envoy = EnvoyHeaders::received(&sent).0;
                assert_eq!(envoy.len(), 1, "Envoy joins them: {envoy:?}");
                for seen in [&sent, &envoy] {
                    assert_eq!(
                        extract(seen, None),
                        Err(ExtractError::Ambiguous),
                        "{seen:?}"
                    );
                }
            }
        }
        // One header whose parameters carry commas is one credential (not ours).
        let digest = h(&[(
            "authorization",
            r#"Digest username="a", realm="b", uri="/x y""#,
        )]);
        assert_eq!(extract(&digest, None), Ok(Presented::Nothing));
    }

    #[test]
    fn bearer_and_api_key_are_ambiguous() {
        let hs = h(&[("authorization", "Bearer a.b.c"), ("x-api-key", "k")]);
        assert_eq!(
            extract(&hs, Some("x-api-key")),
            Err(ExtractError::Ambiguous)
        );
    }

    #[test]
    fn malformed_bearer() {
        for v in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a,b",
            "Bearer a.b.c,",
            "Bearer ===",
            "",
            "  ",
        ] {
            let hs = h(&[("authorization", v)]);
            assert_eq!(extract(&hs, None), Err(ExtractError::Malformed), "{v:?}");
        }
    }

    #[test]
    fn dpop_scheme() {
        let hs = h(&[("authorization", "DPoP a.b.c")]);
        assert_eq!(extract(&hs, None), Ok(Presented::Dpop("a.b.c")));
        let hs = h(&[("authorization", "DPoP")]);
        assert_eq!(extract(&hs, None), Err(ExtractError::Malformed));
    }

    #[test]
    fn other_scheme_is_no_credential_but_not_beside_an_api_key() {
        let hs = h(&[("authorization", "Basic dXNlcjpwYXNz")]);
        assert_eq!(extract(&hs, None), Ok(Presented::Nothing));
        assert_eq!(extract(&hs, Some("x-api-key")), Ok(Presented::Nothing));
        for hs in [
            h(&[("authorization", "Basic dXNlcjpwYXNz"), ("x-api-key", "k")]),
            h(&[("x-api-key", "k"), ("authorization", "Basic dXNlcjpwYXNz")]),
            h(&[("x-api-key", "k"), ("authorization", "Negotiate abc")]),
        ] {
            assert_eq!(
                extract(&hs, Some("x-api-key")),
                Err(ExtractError::Ambiguous)
            );
        }
    }

    #[test]
    fn api_key() {
        let hs = h(&[("X-Api-Key", "secret")]);
        assert_eq!(
            extract(&hs, Some("x-api-key")),
            Ok(Presented::ApiKey("secret"))
        );
        assert_eq!(extract(&hs, None), Ok(Presented::Nothing));
    }
}
