//! Times as VOLTTRON's agents write and read them, shared by the building agents.
//!
//! Formatting is the configuration store's [`format_timestamp`](crate::config_store::format_timestamp)
//! (VOLTTRON's `format_timestamp`: `2024-06-01T12:00:00.000000+00:00`).

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// An absolute timestamp string, as `parse_timestamp_string` (dateutil) reads the usual
/// ones; no offset means UTC.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    parse_timestamp_in(s, &Utc)
}

/// As [`parse_timestamp`], but a time without an offset is a wall-clock time in `zone`
/// (VOLTTRON's actuator reads schedule requests in the host's local zone). A wall-clock time
/// that occurs twice (the hour after a DST change) is the earlier one; one that does not
/// occur (the hour skipped) is `None`.
pub fn parse_timestamp_in<Tz: TimeZone>(s: &str, zone: &Tz) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return in_zone(&t, zone);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| in_zone(&t, zone))
}

fn in_zone<Tz: TimeZone>(t: &NaiveDateTime, zone: &Tz) -> Option<DateTime<Utc>> {
    zone.from_local_datetime(t)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use chrono::FixedOffset;

    use super::*;

    #[test]
    fn naive_times_are_in_the_given_zone_and_offsets_win() {
        let pacific = FixedOffset::west_opt(8 * 3600).unwrap();
        let utc = |s: &str| parse_timestamp(s).unwrap();
        assert_eq!(
            parse_timestamp_in("2026-12-07 09:00:00", &pacific),
            Some(utc("2026-12-07T17:00:00Z"))
        );
        assert_eq!(
            parse_timestamp_in("2026-12-07 09:00:00+00:00", &pacific),
            Some(utc("2026-12-07T09:00:00Z"))
        );
        assert_eq!(
            parse_timestamp_in("2026-12-07", &pacific),
            Some(utc("2026-12-07T08:00:00Z"))
        );
        assert_eq!(
            parse_timestamp("2026-12-07 09:00"),
            Some(utc("2026-12-07T09:00:00+00:00"))
        );
        assert_eq!(parse_timestamp_in("next tuesday", &pacific), None);
    }
}
