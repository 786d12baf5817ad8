//! Cron schedules in the dialect of VOLTTRON's `scheduling.cron()`.
//!
//! Agents declare periodic work with `#[schedule(cron = "m h dom mon dow")]`;
//! the expression is parsed into a [`CronSchedule`], which answers "when is
//! the next fire time after this instant?" ([`CronSchedule::next_after`]).
//!
//! **All times are UTC.** A schedule fires at whole minutes (seconds and
//! nanoseconds zero); there is no local-time or daylight-saving handling.
//!
//! # Fields
//!
//! An expression has exactly five whitespace-separated fields:
//!
//! | field        | allowed values | names                                 |
//! |--------------|----------------|---------------------------------------|
//! | minute       | `0-59`         |                                       |
//! | hour         | `0-23`         |                                       |
//! | day of month | `1-31`         |                                       |
//! | month        | `1-12`         | `jan` .. `dec`                        |
//! | day of week  | `0-7`          | `sun` .. `sat` (`0` and `7` = Sunday) |
//!
//! # Field syntax
//!
//! A field is a comma-separated list of items (`1,15`, `0-4,8-12`); the set
//! of values is the union of the items. Each item is one of:
//!
//! | item      | meaning                                             |
//! |-----------|-----------------------------------------------------|
//! | `*`       | every value, `min-max`                              |
//! | `n`       | the single value `n`                                |
//! | `a-b`     | `a` through `b` inclusive (`a <= b`)                |
//! | `a-`      | `a` through the field maximum                       |
//! | `-b`      | the field minimum through `b`                       |
//! | `-`       | the whole field                                     |
//! | `*/s`     | every `s`-th value from the minimum (`-/s` is same) |
//! | `a-b/s`   | every `s`-th value from `a` up to `b` (also `a-/s`) |
//! | `a/s`     | every `s`-th value from `a` up to the maximum       |
//!
//! Month and day names are case-insensitive and may be the three-letter
//! abbreviation or any longer prefix of the full name (`jan`, `Sept`,
//! `THURS`, `wednesday`). Names work anywhere numbers do, including in
//! ranges (`mon-fri`, `jan-mar/2`). As in VOLTTRON, `sun` means `0` when it
//! starts a range or stands alone and `7` when it ends a range, so both
//! `sun-sat` and `mon-sun` cover a whole week.
//!
//! Steps must be decimal integers `>= 1`. Every number, including range
//! end points, must lie in the field's allowed range, and ranges must not be
//! reversed.
//!
//! # Day matching
//!
//! Following VOLTTRON (and the classic Vixie cron rule): if **both** the day
//! of month and the day of week fields are restricted, a day matches when
//! *either* matches; if one of them is `*`, only the other one counts. A
//! field is "unrestricted" only when it is exactly `*`, so `0 0 */2 * mon`
//! fires on odd days of the month *and* on every Monday.
//!
//! A schedule whose month and day-of-month fields can only produce
//! impossible dates (e.g. `0 0 30 feb *`) is rejected, as VOLTTRON does.
//! February 29 is allowed and fires in leap years only.
//!
//! # Examples
//!
//! ```text
//! */15 * * * *        every quarter hour
//! 0 9-17 * * mon-fri  on the hour, 09:00-17:00, Monday to Friday
//! 30 2 1,15 * *       02:30 on the 1st and the 15th
//! 0 0 13 * fri        midnight on every Friday and on every 13th
//! 0 12 * jan,jul *    noon every day in January and July
//! 5/20 * * * *        minutes 5, 25 and 45 of every hour
//! 0 0 29 2 *          midnight on February 29 (leap years only)
//! ```
//!
//! ```rust
//! use chrono::{TimeZone, Utc};
//! use volttron::agent::cron::CronSchedule;
//!
//! let s: CronSchedule = "*/15 * * * *".parse().unwrap();
//! let t = Utc.with_ymd_and_hms(2024, 3, 15, 10, 7, 30).unwrap();
//! assert_eq!(s.next_after(t), Some(Utc.with_ymd_and_hms(2024, 3, 15, 10, 15, 0).unwrap()));
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};

/// How many years [`CronSchedule::next_after`] looks ahead before giving up.
/// The longest possible gap is February 29 across a skipped century leap
/// year (2096 -> 2104), i.e. 8 years.
const SEARCH_YEARS: i32 = 9;

const MONTH_NAMES: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

const DAY_NAMES: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

/// One of the five fields of a cron expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CronField {
    /// Minute of the hour, `0-59`.
    Minute,
    /// Hour of the day, `0-23`.
    Hour,
    /// Day of the month, `1-31`.
    DayOfMonth,
    /// Month of the year, `1-12` or `jan`..`dec`.
    Month,
    /// Day of the week, `0-7` (`0` and `7` are Sunday) or `sun`..`sat`.
    DayOfWeek,
}

impl CronField {
    /// The field's name as used in error messages (`"day of month"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::DayOfMonth => "day of month",
            Self::Month => "month",
            Self::DayOfWeek => "day of week",
        }
    }

    /// Smallest value the field accepts.
    pub const fn min(self) -> u32 {
        match self {
            Self::Minute | Self::Hour | Self::DayOfWeek => 0,
            Self::DayOfMonth | Self::Month => 1,
        }
    }

    /// Largest value the field accepts.
    pub const fn max(self) -> u32 {
        match self {
            Self::Minute => 59,
            Self::Hour => 23,
            Self::DayOfMonth => 31,
            Self::Month => 12,
            Self::DayOfWeek => 7,
        }
    }

    /// What a non-numeric word in this field should have been.
    const fn expected(self) -> &'static str {
        match self {
            Self::Month => "a number or a month name jan..dec",
            Self::DayOfWeek => "a number or a day name sun..sat",
            _ => "a number; names are only allowed in the month and day of week fields",
        }
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a cron expression was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CronError {
    /// The expression does not have exactly five fields.
    #[error(
        "cron expression {expression:?} has {found} field(s); expected 5 \
         (minute hour day-of-month month day-of-week)"
    )]
    FieldCount {
        /// The whole expression.
        expression: String,
        /// How many whitespace-separated fields it has.
        found: usize,
    },
    /// A list item has a shape the grammar does not allow.
    #[error("{field} field: malformed item {token:?}: {reason}")]
    Syntax {
        /// The field containing the item.
        field: CronField,
        /// The offending list item.
        token: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A number lies outside the field's allowed range.
    #[error("{field} field: value {value} in {token:?} is out of range (allowed {min}-{max})")]
    OutOfRange {
        /// The field containing the item.
        field: CronField,
        /// The offending list item.
        token: String,
        /// The out-of-range number, as written.
        value: String,
        /// Smallest allowed value.
        min: u32,
        /// Largest allowed value.
        max: u32,
    },
    /// The `/step` part is missing, not a number, or zero.
    #[error("{field} field: bad step in {token:?}: {reason}")]
    BadStep {
        /// The field containing the item.
        field: CronField,
        /// The offending list item.
        token: String,
        /// What is wrong with the step.
        reason: &'static str,
    },
    /// A range `a-b` with `a > b`.
    #[error("{field} field: reversed range {token:?}: start {start} is greater than end {end}")]
    ReversedRange {
        /// The field containing the item.
        field: CronField,
        /// The offending list item.
        token: String,
        /// Range start (after name translation).
        start: u32,
        /// Range end (after name translation).
        end: u32,
    },
    /// A word that is not a month or day name valid in this field.
    #[error("{field} field: unknown name {name:?} in {token:?} (expected {expected})")]
    UnknownName {
        /// The field containing the item.
        field: CronField,
        /// The offending list item.
        token: String,
        /// The unrecognised word.
        name: String,
        /// What the field accepts.
        expected: &'static str,
    },
    /// The month and day-of-month fields (with day of week `*`) only name
    /// dates that never exist, such as February 30.
    #[error(
        "cron expression {expression:?}: month and day of month fields only produce \
         impossible dates (such as February 30 or April 31)"
    )]
    ImpossibleDate {
        /// The whole expression.
        expression: String,
    },
}

/// Normalised value sets of a schedule; what equality compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sets {
    /// Bits 0..=59.
    minutes: u64,
    /// Bits 0..=23.
    hours: u64,
    /// Bits 1..=31; all set when the day is decided by `weekdays` alone.
    days: u64,
    /// Bits 1..=12.
    months: u64,
    /// Bits 0..=6, 0 = Sunday; all set when the day is decided by `days` alone.
    weekdays: u64,
    /// Both day fields restricted: a day matches if either matches (Vixie rule).
    /// Otherwise a day must match both (the unrestricted one is full).
    day_or: bool,
}

const FULL_DAYS: u64 = ((1 << 32) - 1) & !1;
const FULL_WEEKDAYS: u64 = (1 << 7) - 1;

/// A parsed cron schedule (see the [module docs](self) for the grammar).
///
/// All times are UTC. Equality compares the normalised schedule (expanded
/// value sets and day-matching rule), not the expression text, so
/// `0 0 * * 0` equals `0 0 * * 7` and `0 0 * * sun`.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expr: String,
    sets: Sets,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.sets == other.sets
    }
}

impl Eq for CronSchedule {}

impl CronSchedule {
    /// Parses a five-field cron expression.
    ///
    /// # Errors
    ///
    /// Returns a [`CronError`] naming the field, the offending item and the
    /// reason when the expression does not follow the grammar in the
    /// [module docs](self).
    pub fn parse(expr: &str) -> Result<Self, CronError> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields[..] else {
            return Err(CronError::FieldCount {
                expression: expr.to_owned(),
                found: fields.len(),
            });
        };
        let minutes = parse_field(CronField::Minute, minute)?;
        let hours = parse_field(CronField::Hour, hour)?;
        let mut days = parse_field(CronField::DayOfMonth, dom)?;
        let months = parse_field(CronField::Month, month)?;
        let raw_weekdays = parse_field(CronField::DayOfWeek, dow)?;
        // Fold 7 (Sunday) onto 0.
        let mut weekdays = (raw_weekdays & FULL_WEEKDAYS) | (raw_weekdays >> 7);

        // VOLTTRON treats a field as restricted unless it is exactly "*".
        let dom_restricted = dom != "*";
        let dow_restricted = dow != "*";
        let mut day_or = dom_restricted && dow_restricted;
        if day_or && (days == FULL_DAYS || weekdays == FULL_WEEKDAYS) {
            // Either side matches every day, so the union is every day.
            day_or = false;
            days = FULL_DAYS;
            weekdays = FULL_WEEKDAYS;
        }

        if !day_or && weekdays == FULL_WEEKDAYS && !possible_dates(months, days) {
            return Err(CronError::ImpossibleDate {
                expression: expr.to_owned(),
            });
        }

        Ok(Self {
            expr: expr.to_owned(),
            sets: Sets {
                minutes,
                hours,
                days,
                months,
                weekdays,
                day_or,
            },
        })
    }

    /// The expression this schedule was parsed from, exactly as given.
    pub fn expression(&self) -> &str {
        &self.expr
    }

    /// Whether the minute containing `at` (UTC) is a fire time; seconds and
    /// sub-seconds are ignored.
    pub fn matches(&self, at: DateTime<Utc>) -> bool {
        let s = &self.sets;
        has(s.minutes, at.minute())
            && has(s.hours, at.hour())
            && has(s.months, at.month())
            && self.day_matches(at.date_naive())
    }

    /// The first fire time (a whole UTC minute) strictly after `after`.
    ///
    /// An instant exactly on a fire time yields the *next* fire time.
    /// Returns `None` only if nothing matches within the search horizon
    /// (nine years, enough for February 29 across a skipped leap year) or
    /// the result would exceed chrono's representable range.
    ///
    /// The search skips non-matching months, days and hours wholesale; it
    /// never steps minute by minute.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let naive = after.naive_utc();
        let floored = naive.date().and_hms_opt(naive.hour(), naive.minute(), 0)?;
        let start = floored.checked_add_signed(TimeDelta::minutes(1))?;
        let limit_year = start.year().checked_add(SEARCH_YEARS)?;
        let s = &self.sets;

        let mut date = start.date();
        let mut hour = start.hour();
        let mut minute = start.minute();
        while date.year() <= limit_year {
            if !has(s.months, date.month()) {
                date = self.next_month_start(date)?;
                (hour, minute) = (0, 0);
                continue;
            }
            if !self.day_matches(date) {
                date = date.succ_opt()?;
                (hour, minute) = (0, 0);
                continue;
            }
            let Some(h) = next_bit(s.hours, hour) else {
                date = date.succ_opt()?;
                (hour, minute) = (0, 0);
                continue;
            };
            if h != hour {
                minute = 0;
            }
            match next_bit(s.minutes, minute) {
                Some(m) => return Some(date.and_hms_opt(h, m, 0)?.and_utc()),
                None => (hour, minute) = (h + 1, 0),
            }
        }
        None
    }

    /// Successive fire times strictly after `after`, in increasing order.
    pub fn iter_after(&self, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        std::iter::successors(self.next_after(after), move |t| self.next_after(*t))
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let s = &self.sets;
        let dom = has(s.days, date.day());
        let dow = has(s.weekdays, date.weekday().num_days_from_sunday());
        if s.day_or { dom || dow } else { dom && dow }
    }

    /// First day of the next month (after `date`'s) that is in the month set.
    fn next_month_start(&self, date: NaiveDate) -> Option<NaiveDate> {
        let (mut year, mut month) = (date.year(), date.month());
        for _ in 0..12 {
            month += 1;
            if month > 12 {
                month = 1;
                year = year.checked_add(1)?;
            }
            if has(self.sets.months, month) {
                return NaiveDate::from_ymd_opt(year, month, 1);
            }
        }
        None
    }
}

impl FromStr for CronSchedule {
    type Err = CronError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expr)
    }
}

fn has(bits: u64, value: u32) -> bool {
    value < 64 && bits & (1 << value) != 0
}

/// Smallest set bit `>= from`.
fn next_bit(bits: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let masked = bits & (u64::MAX << from);
    (masked != 0).then(|| masked.trailing_zeros())
}

/// Whether some (month, day) pair names a real date (February 29 counts).
fn possible_dates(months: u64, days: u64) -> bool {
    (1..=12u32).any(|m| {
        let len = match m {
            2 => 29,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        has(months, m) && (1..=len).any(|d| has(days, d))
    })
}

fn parse_field(field: CronField, text: &str) -> Result<u64, CronError> {
    let mut bits = 0u64;
    for token in text.split(',') {
        if token.is_empty() {
            return Err(CronError::Syntax {
                field,
                token: text.to_owned(),
                reason: "empty list element".to_owned(),
            });
        }
        let (start, end, step) = parse_item(field, token)?;
        let step = usize::try_from(step).unwrap_or(usize::MAX);
        for v in (start..=end).step_by(step) {
            bits |= 1 << v;
        }
    }
    Ok(bits)
}

/// Whether a name stands at the start (or alone) or at the end of a range.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pos {
    Start,
    End,
}

/// Parses one list item into `(start, end, step)`.
fn parse_item(field: CronField, token: &str) -> Result<(u32, u32, u32), CronError> {
    let (range, step) = match token.split_once('/') {
        Some((range, step)) => (range, Some(parse_step(field, token, step)?)),
        None => (token, None),
    };
    let (min, max) = (field.min(), field.max());
    let (start, end) = if range == "*" {
        (min, max)
    } else if let Some((a, b)) = range.split_once('-') {
        let start = if a.is_empty() {
            min
        } else {
            parse_atom(field, token, a, Pos::Start)?
        };
        let end = if b.is_empty() {
            max
        } else {
            parse_atom(field, token, b, Pos::End)?
        };
        (start, end)
    } else if range.is_empty() {
        return Err(CronError::Syntax {
            field,
            token: token.to_owned(),
            reason: "missing value before '/'".to_owned(),
        });
    } else {
        let value = parse_atom(field, token, range, Pos::Start)?;
        (value, if step.is_some() { max } else { value })
    };
    if start > end {
        return Err(CronError::ReversedRange {
            field,
            token: token.to_owned(),
            start,
            end,
        });
    }
    Ok((start, end, step.unwrap_or(1)))
}

fn parse_step(field: CronField, token: &str, step: &str) -> Result<u32, CronError> {
    let bad = |reason| CronError::BadStep {
        field,
        token: token.to_owned(),
        reason,
    };
    if step.is_empty() {
        return Err(bad("missing step value after '/'"));
    }
    if !step.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("step must be a positive decimal integer"));
    }
    // All digits, so the only failure is overflow: such a step just selects
    // the start value, like any step larger than the field.
    match step.parse::<u32>().unwrap_or(u32::MAX) {
        0 => Err(bad("step must be at least 1")),
        n => Ok(n),
    }
}

/// Parses a number or a name.
fn parse_atom(field: CronField, token: &str, atom: &str, pos: Pos) -> Result<u32, CronError> {
    if atom.bytes().all(|b| b.is_ascii_digit()) {
        return match atom.parse::<u32>() {
            Ok(v) if (field.min()..=field.max()).contains(&v) => Ok(v),
            _ => Err(CronError::OutOfRange {
                field,
                token: token.to_owned(),
                value: atom.to_owned(),
                min: field.min(),
                max: field.max(),
            }),
        };
    }
    if let Some(c) = atom.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(CronError::Syntax {
            field,
            token: token.to_owned(),
            reason: format!("unexpected character {c:?}"),
        });
    }
    let unknown = || CronError::UnknownName {
        field,
        token: token.to_owned(),
        name: atom.to_owned(),
        expected: field.expected(),
    };
    let names: &[&str] = match field {
        CronField::Month => &MONTH_NAMES,
        CronField::DayOfWeek => &DAY_NAMES,
        _ => return Err(unknown()),
    };
    let lower = atom.to_ascii_lowercase();
    let index = names
        .iter()
        .position(|name| lower.len() >= 3 && name.starts_with(&lower))
        .ok_or_else(unknown)?;
    let index = u32::try_from(index).map_err(|_| unknown())?;
    Ok(match field {
        CronField::Month => index + 1,
        // Sunday is 0 at the start of a range (or alone) and 7 at its end.
        _ if index == 0 && pos == Pos::End => 7,
        _ => index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn cron(expr: &str) -> CronSchedule {
        CronSchedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    fn take(expr: &str, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        cron(expr).iter_after(after).take(n).collect()
    }

    #[test]
    fn every_quarter_hour() {
        let t = Utc.with_ymd_and_hms(2024, 3, 15, 10, 7, 30).unwrap();
        assert_eq!(
            take("*/15 * * * *", t, 4),
            vec![
                at(2024, 3, 15, 10, 15),
                at(2024, 3, 15, 10, 30),
                at(2024, 3, 15, 10, 45),
                at(2024, 3, 15, 11, 0)
            ]
        );
    }

    #[test]
    fn strictly_after() {
        let s = cron("*/15 * * * *");
        assert_eq!(
            s.next_after(at(2024, 3, 15, 10, 15)),
            Some(at(2024, 3, 15, 10, 30))
        );
        let just_before = at(2024, 3, 15, 10, 14) + TimeDelta::milliseconds(59_999);
        assert_eq!(s.next_after(just_before), Some(at(2024, 3, 15, 10, 15)));
        let just_after = at(2024, 3, 15, 10, 15) + TimeDelta::nanoseconds(1);
        assert_eq!(s.next_after(just_after), Some(at(2024, 3, 15, 10, 30)));
        assert!(s.matches(at(2024, 3, 15, 10, 15)));
        assert!(!s.matches(at(2024, 3, 15, 10, 16)));
    }

    #[test]
    fn business_hours() {
        let s = cron("0 9-17 * * mon-fri");
        // 2024-03-15 is a Friday.
        assert_eq!(s.next_after(at(2024, 3, 15, 16, 0)), Some(at(2024, 3, 15, 17, 0)));
        assert_eq!(s.next_after(at(2024, 3, 15, 17, 0)), Some(at(2024, 3, 18, 9, 0)));
        assert_eq!(s.next_after(at(2024, 3, 18, 8, 59)), Some(at(2024, 3, 18, 9, 0)));
        assert_eq!(s, cron("0 9-17 * * 1-5"));
        assert_eq!(s, cron("0 9-17 * * Monday-FRIDAY"));
    }

    #[test]
    fn list_of_days() {
        let s = cron("30 2 1,15 * *");
        assert_eq!(s.next_after(at(2024, 1, 10, 0, 0)), Some(at(2024, 1, 15, 2, 30)));
        assert_eq!(s.next_after(at(2024, 1, 15, 2, 30)), Some(at(2024, 2, 1, 2, 30)));
    }

    #[test]
    fn sunday_is_zero_or_seven() {
        let a = cron("0 0 * * 0");
        assert_eq!(a, cron("0 0 * * 7"));
        assert_eq!(a, cron("0 0 * * sun"));
        assert_eq!(a, cron("0 0 * * 0,7"));
        assert_ne!(a, cron("0 0 * * 1"));
        assert_eq!(a.expression(), "0 0 * * 0");
        let t = at(2024, 3, 15, 0, 0);
        assert_eq!(a.next_after(t), Some(at(2024, 3, 17, 0, 0)));
        assert_eq!(
            a.iter_after(t).take(5).collect::<Vec<_>>(),
            cron("0 0 * * 7").iter_after(t).take(5).collect::<Vec<_>>()
        );
        // `sun` is 0 at a range start and 7 at a range end.
        assert_eq!(cron("0 0 * * sun-sat"), cron("0 0 * * 0-6"));
        assert_eq!(cron("0 0 * * sat-sun"), cron("0 0 * * 0,6"));
        assert_eq!(cron("0 0 * * mon-sun"), cron("0 0 * * 0-6"));
    }

    #[test]
    fn friday_or_thirteenth() {
        let got = take("0 0 13 * 5", at(2024, 3, 15, 0, 0), 6);
        assert_eq!(
            got,
            vec![
                at(2024, 3, 22, 0, 0),
                at(2024, 3, 29, 0, 0),
                at(2024, 4, 5, 0, 0),
                at(2024, 4, 12, 0, 0),
                at(2024, 4, 13, 0, 0),
                at(2024, 4, 19, 0, 0)
            ]
        );
        // Only-one-restricted: the other is ignored.
        assert_eq!(
            cron("0 0 13 * *").next_after(at(2024, 3, 15, 0, 0)),
            Some(at(2024, 4, 13, 0, 0))
        );
        assert_eq!(
            cron("0 0 * * 5").next_after(at(2024, 3, 15, 0, 0)),
            Some(at(2024, 3, 22, 0, 0))
        );
    }

    #[test]
    fn restricted_means_not_exactly_star() {
        // VOLTTRON: `*/2` counts as restricted, so odd days OR Mondays.
        let got = take("0 0 */2 * mon", at(2024, 4, 1, 0, 0), 4);
        // 2024-04-01 is a Monday.
        assert_eq!(
            got,
            vec![
                at(2024, 4, 3, 0, 0),
                at(2024, 4, 5, 0, 0),
                at(2024, 4, 7, 0, 0),
                at(2024, 4, 8, 0, 0)
            ]
        );
        // A full restricted field makes the union every day.
        assert_eq!(cron("0 0 1-31 * 5"), cron("0 0 * * *"));
        assert_eq!(cron("0 0 13 * 0-7"), cron("0 0 * * *"));
        assert_eq!(cron("0 0 1-31 * *"), cron("0 0 * * *"));
    }

    #[test]
    fn months_by_name() {
        let s = cron("0 12 * jan,jul *");
        assert_eq!(s.next_after(at(2024, 1, 31, 12, 0)), Some(at(2024, 7, 1, 12, 0)));
        assert_eq!(s.next_after(at(2024, 7, 31, 12, 0)), Some(at(2025, 1, 1, 12, 0)));
        assert_eq!(s, cron("0 12 * 1,7 *"));
        assert_eq!(s, cron("0 12 * JANUARY,Jul *"));
        assert_eq!(cron("0 0 1 sept *"), cron("0 0 1 9 *"));
        assert_eq!(cron("0 0 1 jan-mar/2 *"), cron("0 0 1 1,3 *"));
    }

    #[test]
    fn stepped_ranges() {
        let s = cron("5-10/2 * * * *");
        assert_eq!(s, cron("5,7,9 * * * *"));
        assert_eq!(
            s.iter_after(at(2024, 1, 1, 10, 5)).take(3).collect::<Vec<_>>(),
            vec![
                at(2024, 1, 1, 10, 7),
                at(2024, 1, 1, 10, 9),
                at(2024, 1, 1, 11, 5)
            ]
        );
        assert_eq!(cron("5/20 * * * *"), cron("5,25,45 * * * *"));
        assert_eq!(cron("*/20 * * * *"), cron("0,20,40 * * * *"));
        assert_eq!(cron("-/20 * * * *"), cron("0,20,40 * * * *"));
        assert_eq!(cron("50-/5 * * * *"), cron("50,55 * * * *"));
        assert_eq!(cron("-5 * * * *"), cron("0-5 * * * *"));
        assert_eq!(cron("55- * * * *"), cron("55-59 * * * *"));
        assert_eq!(cron("- * * * *"), cron("* * * * *"));
        assert_eq!(cron("0 */100 * * *"), cron("0 0 * * *"));
        assert_eq!(cron("*/1 * * * *"), cron("* * * * *"));
        assert_eq!(cron("07 * * * *"), cron("7 * * * *"));
    }

    #[test]
    fn feb_29() {
        let s = cron("0 0 29 2 *");
        assert_eq!(s.next_after(at(2024, 3, 1, 0, 0)), Some(at(2028, 2, 29, 0, 0)));
        assert_eq!(s.next_after(at(2023, 1, 1, 0, 0)), Some(at(2024, 2, 29, 0, 0)));
        // 2100 is not a leap year: 8-year gap.
        assert_eq!(s.next_after(at(2096, 3, 1, 0, 0)), Some(at(2104, 2, 29, 0, 0)));
        // Feb 29 or Feb 30/31 mixed with real dates is fine.
        assert!(CronSchedule::parse("0 0 30,31 2,3 *").is_ok());
        assert_eq!(
            cron("0 0 30,31 2,3 *").next_after(at(2023, 2, 1, 0, 0)),
            Some(at(2023, 3, 30, 0, 0))
        );
    }

    #[test]
    fn rollover() {
        let s = cron("59 23 31 12 *");
        assert_eq!(
            s.next_after(at(2024, 12, 31, 23, 59)),
            Some(at(2025, 12, 31, 23, 59))
        );
        let t = Utc.with_ymd_and_hms(2024, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(cron("0 0 1 1 *").next_after(t), Some(at(2025, 1, 1, 0, 0)));
        assert_eq!(cron("* * * * *").next_after(t), Some(at(2025, 1, 1, 0, 0)));
        assert_eq!(
            cron("0 0 31 * *").next_after(at(2024, 1, 31, 0, 0)),
            Some(at(2024, 3, 31, 0, 0))
        );
        assert_eq!(
            cron("30 * * * *").next_after(at(2024, 2, 29, 23, 30)),
            Some(at(2024, 3, 1, 0, 30))
        );
    }

    #[test]
    fn end_of_time() {
        let s = cron("* * * * *");
        assert_eq!(s.next_after(DateTime::<Utc>::MAX_UTC), None);
    }

    #[test]
    fn display_and_from_str() {
        let s: CronSchedule = "0  9-17 * * mon-fri".parse().unwrap();
        assert_eq!(s.to_string(), "0  9-17 * * mon-fri");
        assert_eq!(s.expression(), "0  9-17 * * mon-fri");
        assert!(" \t*/5 * * * *\n".parse::<CronSchedule>().is_ok());
    }

    fn err(expr: &str) -> CronError {
        match CronSchedule::parse(expr) {
            Ok(_) => panic!("{expr:?} should be rejected"),
            Err(e) => e,
        }
    }

    #[test]
    fn field_count_errors() {
        for (expr, n) in [("", 0), ("* * * *", 4), ("* * * * * *", 6), ("   ", 0)] {
            assert!(
                matches!(err(expr), CronError::FieldCount { found, .. } if found == n),
                "{expr}"
            );
        }
        assert!(err("* * * *").to_string().contains("4 field"));
    }

    #[test]
    fn out_of_range_errors() {
        let cases = [
            ("60 * * * *", CronField::Minute, "60"),
            ("* 24 * * *", CronField::Hour, "24"),
            ("* * 0 * *", CronField::DayOfMonth, "0"),
            ("* * 32 * *", CronField::DayOfMonth, "32"),
            ("* * * 13 *", CronField::Month, "13"),
            ("* * * 0 *", CronField::Month, "0"),
            ("* * * * 8", CronField::DayOfWeek, "8"),
            ("50-70/30 * * * *", CronField::Minute, "70"),
            ("99999999999 * * * *", CronField::Minute, "99999999999"),
        ];
        for (expr, f, v) in cases {
            match err(expr) {
                CronError::OutOfRange {
                    field,
                    value,
                    min,
                    max,
                    ..
                } => {
                    assert_eq!((field, value.as_str()), (f, v), "{expr}");
                    assert_eq!((min, max), (f.min(), f.max()));
                }
                e => panic!("{expr}: {e}"),
            }
        }
        assert_eq!(
            err("* 1,24 * * *").to_string(),
            "hour field: value 24 in \"24\" is out of range (allowed 0-23)"
        );
    }

    #[test]
    fn step_errors() {
        for expr in [
            "*/0 * * * *",
            "*/ * * * *",
            "*/x * * * *",
            "1/2/3 * * * *",
            "*/-1 * * * *",
        ] {
            assert!(
                matches!(
                    err(expr),
                    CronError::BadStep {
                        field: CronField::Minute,
                        ..
                    }
                ),
                "{expr}"
            );
        }
        assert!(
            err("* * * * */0")
                .to_string()
                .starts_with("day of week field: bad step in \"*/0\"")
        );
    }

    #[test]
    fn reversed_range_errors() {
        assert_eq!(
            err("* 17-9 * * *"),
            CronError::ReversedRange {
                field: CronField::Hour,
                token: "17-9".into(),
                start: 17,
                end: 9
            }
        );
        assert!(matches!(
            err("* * * * fri-mon"),
            CronError::ReversedRange { start: 5, end: 1, .. }
        ));
        assert!(matches!(err("* * * dec-jan *"), CronError::ReversedRange { .. }));
        assert!(err("* * * dec-jan *").to_string().contains("month field"));
    }

    #[test]
    fn unknown_name_errors() {
        let cases = [
            ("* * * foo *", CronField::Month, "foo"),
            ("* * * ja *", CronField::Month, "ja"),
            ("* * * janitor *", CronField::Month, "janitor"),
            ("* * * * funday", CronField::DayOfWeek, "funday"),
            ("* mon * * *", CronField::Hour, "mon"),
            ("jan * * * *", CronField::Minute, "jan"),
            ("* * 1st * *", CronField::DayOfMonth, "1st"),
            ("* * * * mon-xyz", CronField::DayOfWeek, "xyz"),
        ];
        for (expr, f, n) in cases {
            match err(expr) {
                CronError::UnknownName { field, name, .. } => {
                    assert_eq!((field, name.as_str()), (f, n), "{expr}")
                }
                e => panic!("{expr}: {e}"),
            }
        }
        assert!(err("* * * * funday").to_string().contains("sun..sat"));
    }

    #[test]
    fn syntax_errors() {
        for expr in [
            "1,,2 * * * *",
            "1, * * * *",
            ", * * * *",
            "*5 * * * *",
            "5* * * * *",
            "** * * * *",
            "/5 * * * *",
            "1-2-3 * * * *",
            "*-5 * * * *",
            "1_0 * * * *",
            "+5 * * * *",
            "1.5 * * * *",
        ] {
            assert!(
                matches!(
                    err(expr),
                    CronError::Syntax {
                        field: CronField::Minute,
                        ..
                    }
                ),
                "{expr}: {}",
                err(expr)
            );
        }
    }

    #[test]
    fn impossible_date_errors() {
        for expr in ["0 0 30 2 *", "0 0 30,31 feb *", "0 0 31 4,6,9,11 *"] {
            assert!(matches!(err(expr), CronError::ImpossibleDate { .. }), "{expr}");
        }
        // With a restricted weekday the union still has dates.
        let s = cron("0 0 30 2 mon");
        assert_eq!(s.next_after(at(2024, 1, 1, 0, 0)), Some(at(2024, 2, 5, 0, 0)));
        assert!(CronSchedule::parse("0 0 29 2 *").is_ok());
        assert!(CronSchedule::parse("0 0 31 * *").is_ok());
    }

    /// One generated list item: text and the (start, end, step) it denotes.
    type Item = (String, u32, u32, u32);

    fn item(min: u32, max: u32) -> BoxedStrategy<Item> {
        prop_oneof![
            (min..=max).prop_map(|v| (v.to_string(), v, v, 1)),
            (min..=max, min..=max).prop_map(|(a, b)| {
                let (a, b) = (a.min(b), a.max(b));
                (format!("{a}-{b}"), a, b, 1)
            }),
            (1..=max).prop_map(move |n| (format!("*/{n}"), min, max, n)),
            (min..=max, min..=max, 1..=max).prop_map(|(a, b, n)| {
                let (a, b) = (a.min(b), a.max(b));
                (format!("{a}-{b}/{n}"), a, b, n)
            }),
            (min..=max, 1..=max).prop_map(move |(a, n)| (format!("{a}/{n}"), a, max, n)),
        ]
        .boxed()
    }

    /// A field: its text and its items (`None` for `*`).
    fn field(min: u32, max: u32, star_weight: u32) -> BoxedStrategy<(String, Option<Vec<Item>>)> {
        prop_oneof![
            star_weight => Just(("*".to_owned(), None)),
            1 => proptest::collection::vec(item(min, max), 1..=3).prop_map(|items| {
                let text = items.iter().map(|i| i.0.as_str()).collect::<Vec<_>>().join(",");
                (text, Some(items))
            }),
        ]
        .boxed()
    }

    fn in_items(items: &Option<Vec<Item>>, x: u32) -> bool {
        items.as_ref().is_none_or(|v| {
            v.iter()
                .any(|&(_, a, b, n)| a <= x && x <= b && (x - a).is_multiple_of(n))
        })
    }

    struct Reference([Option<Vec<Item>>; 5]);

    impl Reference {
        fn matches(&self, t: DateTime<Utc>) -> bool {
            let [mi, h, dom, mon, dow] = &self.0;
            let wd = t.weekday().num_days_from_sunday();
            let dom_ok = in_items(dom, t.day());
            let dow_ok = in_items(dow, wd) || (wd == 0 && in_items(dow, 7));
            let day_ok = if dom.is_some() && dow.is_some() {
                dom_ok || dow_ok
            } else {
                dom_ok && dow_ok
            };
            in_items(mi, t.minute()) && in_items(h, t.hour()) && in_items(mon, t.month()) && day_ok
        }
    }

    proptest! {
        #[test]
        fn next_after_matches_brute_force(
            mi in field(0, 59, 1),
            h in field(0, 23, 1),
            dom in field(1, 31, 2),
            mon in field(1, 12, 3),
            dow in field(0, 7, 2),
            secs in 946_684_800i64..4_102_444_800i64,
            nanos in 0u32..1_000_000_000,
        ) {
            let expr = format!("{} {} {} {} {}", mi.0, h.0, dom.0, mon.0, dow.0);
            let sched = match CronSchedule::parse(&expr) {
                Ok(s) => s,
                Err(CronError::ImpossibleDate { .. }) => return Ok(()),
                Err(e) => panic!("{expr}: {e}"),
            };
            let reference = Reference([mi.1, h.1, dom.1, mon.1, dow.1]);
            let after = DateTime::from_timestamp(secs, nanos).unwrap();
            let first = DateTime::from_timestamp(secs - secs.rem_euclid(60) + 60, 0).unwrap();
            let window = 4 * 24 * 60;
            let brute = (0..window)
                .map(|i| first + TimeDelta::minutes(i))
                .find(|t| reference.matches(*t));
            let got = sched.next_after(after);
            match brute {
                Some(t) => prop_assert_eq!(got, Some(t), "{}", expr),
                None => prop_assert!(
                    got.is_none_or(|g| g >= first + TimeDelta::minutes(window)),
                    "{}: {:?}", expr, got
                ),
            }
            if let Some(g) = got {
                prop_assert!(g > after && reference.matches(g) && sched.matches(g));
                prop_assert_eq!((g.second(), g.nanosecond()), (0, 0));
            }
        }
    }
}
