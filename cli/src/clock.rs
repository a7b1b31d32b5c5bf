//! Wall-clock time for display: UTC timestamps and "expires in 55m" phrases.
//!
//! Only for showing times to a person. Whether a token is within its validity window is the
//! engine's call (`Engine::verify_token`), never this module's.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub fn now_s() -> Result<u64, String> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| "the system clock is before 1970".to_owned())
}

/// Last second of 9999-12-31: beyond it there is no four-digit year to print.
const MAX_DISPLAY_S: i64 = 253_402_300_799;

/// `2026-01-01T00:00:00Z`, or `None` outside years 1970 to 9999.
pub fn utc(t: i64) -> Option<String> {
    if !(0..=MAX_DISPLAY_S).contains(&t) {
        return None;
    }
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    ))
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant, `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A span of seconds for a person: the two largest units, `1h 5m`, `2d 3h`, `45s`.
pub fn span(secs: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")];
    let mut parts: Vec<String> = Vec::new();
    let mut rest = secs;
    for (size, name) in UNITS {
        let n = rest / size;
        rest %= size;
        if n > 0 {
            parts.push(format!("{n}{name}"));
        } else if !parts.is_empty() {
            // A zero after the first unit ends the phrase: `1h`, not `1h 0m`.
            break;
        }
        if parts.len() == 2 {
            break;
        }
    }
    if parts.is_empty() {
        "0s".to_owned()
    } else {
        parts.join(" ")
    }
}

/// The phrase for one time claim relative to `now`: `expired 5m ago`, `expires in 55m`, ...
pub fn relative(claim: &str, t: i64, now: i64) -> String {
    let ahead = t.saturating_sub(now);
    let by = span(ahead.unsigned_abs());
    match (claim, ahead.signum()) {
        ("exp", 1) => format!("expires in {by}"),
        ("exp", 0) => "expires now".to_owned(),
        ("exp", _) => format!("expired {by} ago"),
        ("nbf", 1) => format!("not valid for another {by}"),
        ("nbf", _) => format!("valid since {by} ago"),
        ("iat", 1) => format!("issued {by} in the future"),
        ("iat", _) => format!("issued {by} ago"),
        (_, 1) => format!("in {by}"),
        (_, _) => format!("{by} ago"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_known_dates() {
        assert_eq!(utc(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400).unwrap(), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_767_225_600).unwrap(), "2026-01-01T00:00:00Z");
        assert_eq!(utc(1_767_229_199).unwrap(), "2026-01-01T00:59:59Z");
        assert_eq!(utc(4_107_542_400).unwrap(), "2100-03-01T00:00:00Z");
        assert_eq!(utc(MAX_DISPLAY_S).unwrap(), "9999-12-31T23:59:59Z");
        assert_eq!(utc(-1), None);
        assert_eq!(utc(MAX_DISPLAY_S + 1), None);
    }

    #[test]
    fn utc_matches_day_arithmetic_over_centuries() {
        // Every 1st of March from 1970 to 2400 falls where counting days says it does.
        let mut days = 59; // 1970-03-01
        for year in 1970..2400 {
            assert_eq!(civil_from_days(days), (year, 3, 1));
            let leap = (year + 1) % 4 == 0 && ((year + 1) % 100 != 0 || (year + 1) % 400 == 0);
            days += if leap { 366 } else { 365 };
        }
    }

    #[test]
    fn spans() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(45), "45s");
        assert_eq!(span(300), "5m");
        assert_eq!(span(305), "5m 5s");
        assert_eq!(span(3600), "1h");
        assert_eq!(span(3660), "1h 1m");
        assert_eq!(span(3601), "1h");
        assert_eq!(span(93_600), "1d 2h");
        assert_eq!(span(86_400 * 400), "400d");
    }

    #[test]
    fn phrases() {
        assert_eq!(relative("exp", 1000, 1300), "expired 5m ago");
        assert_eq!(relative("exp", 4300, 1000), "expires in 55m");
        assert_eq!(relative("exp", 1000, 1000), "expires now");
        assert_eq!(relative("nbf", 1600, 1000), "not valid for another 10m");
        assert_eq!(relative("nbf", 1000, 1000), "valid since 0s ago");
        assert_eq!(relative("iat", 700, 1000), "issued 5m ago");
        assert_eq!(relative("iat", 1060, 1000), "issued 1m in the future");
    }
}
