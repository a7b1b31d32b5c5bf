//! The request target routes are matched on: the path as the upstream will resolve it (RFC 3986
//! normalised here, whatever the gateway did before) and the method the upstream will act on.
//!
//! Normalisation: the query and fragment are dropped, percent-encoded unreserved characters
//! (`A-Z a-z 0-9 - . _ ~`) are decoded, duplicate slashes merged and dot-segments (`.`, `..`)
//! removed. An encoded `/` or `\` (`%2F`, `%5C`) is refused: upstreams disagree on whether it
//! separates segments. Envoy's `normalize_path`, `merge_slashes` and
//! `path_with_escaped_slashes_action` (set in the shipped bootstrap) do the same before the filter;
//! the filter does not depend on them (Kong does none of it).

use crate::config::routing::MethodOverride;
use std::borrow::Cow;

/// Method-override headers some frameworks honour (lower-case).
pub const METHOD_OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// The query parameter some frameworks (Rails, Laravel, Express `method-override`) honour.
const METHOD_OVERRIDE_PARAM: &str = "_method";

/// Why a request target is refused (400 `invalid_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetError {
    /// `%2F` or `%5C` in the path.
    EncodedSeparator,
    /// A method-override header or `_method` parameter, refused by `routing.method_override`.
    MethodOverride,
    /// Method overrides that disagree, or one that is not a method.
    BadMethodOverride,
}

impl TargetError {
    /// Name for audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetError::EncodedSeparator => "encoded_path_separator",
            TargetError::MethodOverride => "method_override",
            TargetError::BadMethodOverride => "bad_method_override",
        }
    }
}

/// What routes are matched on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    /// The method the upstream acts on.
    pub method: Cow<'a, str>,
    /// The normalised path, without query.
    pub path: Cow<'a, str>,
}

/// The target of a request with `method`, `path` (query included) and `headers`.
pub fn target<'a>(
    method: &'a str,
    path: &'a str,
    headers: &'a [(String, String)],
    overrides: MethodOverride,
) -> Result<Target<'a>, TargetError> {
    let (raw, query) = match path.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path, ""),
    };
    let raw = raw.split('#').next().unwrap_or("");
    let path = normalize(raw)?;
    let mut asked: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| {
            METHOD_OVERRIDE_HEADERS
                .iter()
                .any(|h| crate::upstream::same_header(n, h))
        })
        .map(|(_, v)| v.trim())
        .collect();
    asked.extend(
        query
            .split('#')
            .next()
            .unwrap_or("")
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            // Frameworks decode the name first: `%5Fmethod` is `_method` to them.
            .filter(|(k, _)| {
                decode_unreserved(k).is_ok_and(|k| k.eq_ignore_ascii_case(METHOD_OVERRIDE_PARAM))
            })
            .map(|(_, v)| v),
    );
    let method = match (asked.first(), overrides) {
        (None, _) => Cow::Borrowed(method),
        (Some(_), MethodOverride::Refuse) => return Err(TargetError::MethodOverride),
        (Some(first), MethodOverride::Apply) => {
            let ok = |m: &&str| !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphabetic());
            if !asked.iter().all(|m| ok(m) && m.eq_ignore_ascii_case(first)) {
                return Err(TargetError::BadMethodOverride);
            }
            Cow::Owned(first.to_ascii_uppercase())
        }
    };
    Ok(Target { method, path })
}

/// `raw` (a path without query) normalised as the module doc says.
pub fn normalize(raw: &str) -> Result<Cow<'_, str>, TargetError> {
    let clean = !raw.contains(['%', '.']) && !raw.contains("//");
    if clean || !raw.starts_with('/') {
        return Ok(Cow::Borrowed(raw));
    }
    let decoded = decode_unreserved(raw)?;
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = decoded.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    // A path ending in `/`, `/.` or `/..` keeps its trailing slash (RFC 3986 §5.2.4).
    let mut trailing = false;
    for (i, seg) in segments.into_iter().enumerate() {
        trailing = i == last && matches!(seg, "" | "." | "..");
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut path = String::with_capacity(raw.len());
    for seg in &out {
        path.push('/');
        path.push_str(seg);
    }
    if trailing || out.is_empty() {
        path.push('/');
    }
    Ok(Cow::Owned(path))
}

/// Decodes `%XX` where it stands for an unreserved character; other escapes stay as written
/// (hex upper-cased, as RFC 3986 §6.2.2.1 normalises them).
fn decode_unreserved(raw: &str) -> Result<String, TargetError> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = match (b, bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) => hex(h).zip(hex(l)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match escaped {
            Some(b'/' | b'\\') => return Err(TargetError::EncodedSeparator),
            Some(c) if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') => {
                out.push(char::from(c));
                i += 3;
            }
            Some(c) => {
                out.push('%');
                out.push_str(&format!("{c:02X}"));
                i += 3;
            }
            None => {
                // Not an escape: copy up to the next `%` (never splits a UTF-8 character).
                let next = raw
                    .get(i + 1..)
                    .and_then(|s| s.find('%'))
                    .map_or(raw.len(), |n| n + i + 1);
                out.push_str(raw.get(i..next).unwrap_or(""));
                i = next;
            }
        }
    }
    Ok(out)
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> String {
        normalize(p).unwrap().into_owned()
    }

    #[test]
    fn paths_normalise_as_the_upstream_resolves_them() {
        for (raw, want) in [
            ("/orders/7", "/orders/7"),
            ("//orders///7", "/orders/7"),
            ("/a/./b/../orders/7", "/a/orders/7"),
            ("/orders/7/.", "/orders/7/"),
            ("/orders/7/..", "/orders/"),
            ("/../../admin", "/admin"),
            ("/%61dmin/%7E%2d%5F", "/admin/~-_"),
            ("/a/%2e%2e/admin", "/admin"),
            ("/a%20b/%c3%a9", "/a%20b/%C3%A9"),
            ("/100%", "/100%"),
            ("/%zz/x", "/%zz/x"),
            ("/é/./x", "/é/x"),
            ("/", "/"),
            ("*", "*"),
        ] {
            assert_eq!(n(raw), want, "{raw}");
        }
    }

    #[test]
    fn encoded_separators_are_refused() {
        for raw in ["/a%2Fb", "/a%2fb", "/a%5cb", "/a%5C..%5Cadmin"] {
            assert_eq!(normalize(raw), Err(TargetError::EncodedSeparator), "{raw}");
        }
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        Vec::from_iter(pairs.iter().map(|&(n, v)| (n.into(), v.into())))
    }

    #[test]
    fn method_overrides_are_refused_or_applied() {
        let none = h(&[]);
        let t = target("GET", "/a//b?x=1", &none, MethodOverride::Refuse).unwrap();
        assert_eq!((t.method.as_ref(), t.path.as_ref()), ("GET", "/a/b"));
        for (headers, path) in [
            (h(&[("X-HTTP-Method-Override", "DELETE")]), "/a"),
            (h(&[("x_http_method_override", "DELETE")]), "/a"),
            (h(&[("x-http-method", "DELETE")]), "/a"),
            (h(&[("X-Method-Override", "DELETE")]), "/a"),
            (h(&[]), "/a?_method=DELETE"),
            (h(&[]), "/a?x=1&_METHOD=delete"),
            (h(&[]), "/a?%5Fmethod=DELETE"),
        ] {
            assert_eq!(
                target("GET", path, &headers, MethodOverride::Refuse),
                Err(TargetError::MethodOverride),
                "{headers:?} {path}"
            );
            let t = target("GET", path, &headers, MethodOverride::Apply).unwrap();
            assert_eq!(t.method, "DELETE");
        }
        let two = h(&[("x-http-method", "DELETE"), ("x-method-override", "PUT")]);
        assert_eq!(
            target("GET", "/a", &two, MethodOverride::Apply),
            Err(TargetError::BadMethodOverride)
        );
        let bad = h(&[("x-http-method", "")]);
        assert_eq!(
            target("GET", "/a", &bad, MethodOverride::Apply),
            Err(TargetError::BadMethodOverride)
        );
        // `_method` only as a parameter name.
        let t = target("GET", "/a?x_method=DELETE", &none, MethodOverride::Refuse).unwrap();
        assert_eq!(t.method, "GET");
    }
}
