//! Timestamps as VOLTTRON's historians write and read them.
//!
//! | input | meaning |
//! |-------|---------|
//! | `2026-12-07T17:00:00.000000+00:00`, `2026-12-07T17:00:00Z`, `2026-12-07 17:00:00`, `2026-12-07` | that instant (no offset: UTC, as VOLTTRON) |
//! | `now`, `now -1h`, `now -1d -1h -20m`, `now +30s` | relative to the platform clock (units `d`/`day(s)`, `h`/`hour(s)`, `m`/`minute(s)`, `s`/`second(s)`) |
//! | a number, `1733590800000` | milliseconds since the epoch |
//! | `"12/07/2026"`, `"12/07/2026 17:00"` (quoted) | VOLTTRON's time-parser patterns, here in UTC |
//!
//! Stored and returned timestamps are VOLTTRON's `format_timestamp` of an aware UTC
//! datetime: `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`. SQLite compares them as text, so every
//! bound of a query is formatted the same way.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::agents::time::parse_timestamp;

/// A time the historian could not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid time {input:?}: {reason}")]
pub struct TimeError {
    /// What was given.
    pub input: String,
    /// Why it was refused.
    pub reason: &'static str,
}

/// A query bound: an absolute timestamp or VOLTTRON's time-parser syntax (module docs).
pub fn parse_query_time(input: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, TimeError> {
    if let Some(t) = parse_timestamp(input) {
        return Ok(t);
    }
    let err = |reason| TimeError {
        input: input.to_owned(),
        reason,
    };
    let s = input.trim();
    let (base, rest) = if let Some(rest) = s.strip_prefix("now") {
        (now, rest)
    } else if let Some(q) = s.strip_prefix(['"', '\'']) {
        let quote = s.as_bytes()[0] as char;
        let end = q.find(quote).ok_or_else(|| err("an unterminated quoted time"))?;
        (
            parse_pattern(&q[..end]).ok_or_else(|| err("not a time VOLTTRON's parser reads"))?,
            &q[end + 1..],
        )
    } else {
        let digits = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let ms: f64 = s[..digits]
            .parse()
            .map_err(|_| err("not a timestamp, \"now ...\" or a number"))?;
        let t = DateTime::<Utc>::from_timestamp_millis(ms as i64).ok_or_else(|| err("out of range"))?;
        (t, &s[digits..])
    };
    Ok(base + parse_offsets(rest).ok_or_else(|| err("offsets are like -1h, -2d, +30m, 10s"))?)
}

/// `-1d -1h +20m` (signs optional, spaces between number and unit allowed).
fn parse_offsets(mut s: &str) -> Option<Duration> {
    let mut total = Duration::zero();
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return Some(total);
        }
        let num_len = s
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '-' || c == '+'))))
            .map_or(s.len(), |(i, _)| i);
        let n: f64 = s[..num_len].parse().ok()?;
        s = s[num_len..].trim_start();
        let unit_len = s.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(s.len());
        let secs = match &s[..unit_len] {
            "d" | "day" | "days" => 86_400.0,
            "h" | "hour" | "hours" => 3_600.0,
            "m" | "minute" | "minutes" => 60.0,
            "s" | "second" | "seconds" => 1.0,
            _ => return None,
        };
        s = &s[unit_len..];
        total += Duration::microseconds((n * secs * 1e6).round() as i64);
    }
}

/// VOLTTRON's `TIMEZONE_PATTERNS` (`%m/%d/%Y`, `%m/%d/%Y %H:%M`, ISO), in UTC.
fn parse_pattern(s: &str) -> Option<DateTime<Utc>> {
    if let Some(t) = parse_timestamp(s) {
        return Some(t);
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%m/%d/%Y %H:%M") {
        return Some(Utc.from_utc_datetime(&t));
    }
    NaiveDate::parse_from_str(s, "%m/%d/%Y")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Utc.from_utc_datetime(&t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_store::format_timestamp;

    fn at(s: &str) -> DateTime<Utc> {
        parse_timestamp(s).unwrap()
    }

    #[test]
    fn formats_as_volttron() {
        assert_eq!(
            format_timestamp(&at("2026-12-07T17:00:01.5Z")),
            "2026-12-07T17:00:01.500000+00:00"
        );
        assert_eq!(
            format_timestamp(&at("2026-12-07T18:00:01+01:00")),
            "2026-12-07T17:00:01.000000+00:00"
        );
        assert_eq!(
            format_timestamp(&at("2026-12-07 17:00:01")),
            "2026-12-07T17:00:01.000000+00:00"
        );
        assert_eq!(
            format_timestamp(&at("2026-12-07")),
            "2026-12-07T00:00:00.000000+00:00"
        );
    }

    #[test]
    fn relative_and_numeric_times() {
        let now = at("2026-12-07T17:00:00Z");
        assert_eq!(parse_query_time("now", now).unwrap(), now);
        assert_eq!(
            parse_query_time("now -1h", now).unwrap(),
            at("2026-12-07T16:00:00Z")
        );
        assert_eq!(
            parse_query_time("now -1d -1h -20m", now).unwrap(),
            at("2026-12-06T15:40:00Z")
        );
        assert_eq!(
            parse_query_time("now +30 seconds", now).unwrap(),
            at("2026-12-07T17:00:30Z")
        );
        assert_eq!(parse_query_time("1000", now).unwrap(), at("1970-01-01T00:00:01Z"));
        assert_eq!(
            parse_query_time("\"12/07/2026 17:00\" -1m", now).unwrap(),
            at("2026-12-07T16:59:00Z")
        );
        assert!(parse_query_time("yesterday", now).is_err());
        assert!(parse_query_time("now -1y", now).is_err());
    }
}
