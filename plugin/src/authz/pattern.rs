//! Name patterns in policy: an exact value, or `*` wildcards (`agent:*`, `*@corp.example`, `*`).
//! Used for actor, subject and client matching; no regex, so a pattern cannot be slow.

/// Whether `value` matches `pattern`; each `*` matches any run of characters (also none).
pub fn matches(pattern: &str, value: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return pattern == value;
    };
    let Some(mut rest) = value.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = parts.collect();
    let Some((last, middle)) = pieces.split_last() else {
        // No `*` at all: exact.
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(i) => rest = rest.get(i.saturating_add(piece.len())..).unwrap_or(""),
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Whether any of `patterns` matches `value`.
pub fn any(patterns: &[String], value: &str) -> bool {
    patterns.iter().any(|p| matches(p, value))
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn wildcards() {
        assert!(matches("*", ""));
        assert!(matches("*", "anything"));
        assert!(matches("agent:*", "agent:planner"));
        assert!(!matches("agent:*", "user:alice"));
        assert!(matches("*@corp.example", "bob@corp.example"));
        assert!(!matches("*@corp.example", "bob@corp.example.evil"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXcYYb"));
        assert!(!matches("ab*ba", "aba"));
        assert!(matches("exact", "exact"));
        assert!(!matches("exact", "exact2"));
    }
}
