//! Time conversions shared by every component: nanoseconds since the Unix epoch (UTC) are the one
//! representation of a time in batches, tables and findings.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

/// Nanoseconds in one day.
pub const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// Days since 1970-01-01 of the UTC date containing `ns` (Arrow `Date32`).
pub fn epoch_day(ns: i64) -> i32 {
    // A day count of i64 ns always fits i32 (about +-106,000 days).
    i32::try_from(ns.div_euclid(NANOS_PER_DAY)).unwrap_or(i32::MAX)
}

/// The UTC calendar date of an epoch day.
pub fn date_of_epoch_day(day: i32) -> NaiveDate {
    // 719,163 days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
    NaiveDate::from_num_days_from_ce_opt(day.saturating_add(719_163)).unwrap_or(NaiveDate::MAX)
}

/// `ns` as RFC 3339 UTC with a `Z` suffix, to the millisecond.
pub fn format_ns(ns: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Why a time string was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a time: use RFC 3339 (2026-11-21T10:00:00Z) or a date (2026-11-21)")]
pub struct TimeParseError {
    /// The text that failed to parse.
    pub input: String,
}

/// Parses RFC 3339 (`2026-11-21T10:00:00Z`, any offset) or a bare date (midnight UTC) to ns.
pub fn parse_time(s: &str) -> Result<i64, TimeParseError> {
    let err = || TimeParseError { input: s.to_owned() };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return t.timestamp_nanos_opt().ok_or_else(err);
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| err())?;
    date.and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_utc().timestamp_nanos_opt())
        .ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_day_handles_midnight_and_negative_times() {
        let t = parse_time("2026-11-21T00:00:00Z").unwrap();
        assert_eq!(date_of_epoch_day(epoch_day(t)).to_string(), "2026-11-21");
        assert_eq!(date_of_epoch_day(epoch_day(t - 1)).to_string(), "2026-11-20");
        assert_eq!(epoch_day(-1), -1);
        assert_eq!(date_of_epoch_day(-1).to_string(), "1969-12-31");
    }

    #[test]
    fn parses_rfc3339_with_offsets_and_bare_dates() {
        let z = parse_time("2026-11-21T10:00:00Z").unwrap();
        assert_eq!(parse_time("2026-11-21T11:00:00+01:00").unwrap(), z);
        assert_eq!(parse_time("2026-11-21").unwrap() + 10 * 3_600_000_000_000, z);
        assert_eq!(format_ns(z), "2026-11-21T10:00:00.000Z");
        assert!(parse_time("yesterday").is_err());
    }
}
