//! Scalar values and the KQL scalar types: `DateTime`, `Timespan`, `Value`, `ColumnType`.
//!
//! Invariants:
//! - Datetimes and timespans are counted in 100-ns ticks, as Kusto does. A `DateTime` holds ticks
//!   since `0001-01-01T00:00:00Z` (the .NET epoch Kusto uses), so `bin(t, 7d)` buckets the way
//!   Kusto's do, and it is always UTC. Valid years are 1..=9999.
//! - Strings in KQL are never null: a missing string is the empty string. `Value::Null` is the
//!   null of every other type.
//! - `int` and `long` share the `Value::Long` representation; the column type keeps them apart.
//!   `guid` values are carried as strings.

use std::fmt;
use std::sync::Arc;

/// Ticks (100 ns) per time unit.
pub const TICKS_PER_MICROSECOND: i64 = 10;
pub const TICKS_PER_MILLISECOND: i64 = 10_000;
pub const TICKS_PER_SECOND: i64 = 10_000_000;
pub const TICKS_PER_MINUTE: i64 = 60 * TICKS_PER_SECOND;
pub const TICKS_PER_HOUR: i64 = 60 * TICKS_PER_MINUTE;
pub const TICKS_PER_DAY: i64 = 24 * TICKS_PER_HOUR;

/// Ticks from 0001-01-01 to 1970-01-01.
const UNIX_EPOCH_TICKS: i64 = 621_355_968_000_000_000;
/// Ticks of 9999-12-31T23:59:59.9999999Z, the largest datetime.
const MAX_TICKS: i64 = 3_155_378_975_999_999_999;

/// The type of a column, as named in the Log Analytics response (`columns[].type`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ColumnType {
    Bool,
    Int,
    Long,
    Real,
    String,
    DateTime,
    Timespan,
    Guid,
    Dynamic,
}

impl ColumnType {
    /// The name Log Analytics uses in `columns[].type`.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Bool => "bool",
            ColumnType::Int => "int",
            ColumnType::Long => "long",
            ColumnType::Real => "real",
            ColumnType::String => "string",
            ColumnType::DateTime => "datetime",
            ColumnType::Timespan => "timespan",
            ColumnType::Guid => "guid",
            ColumnType::Dynamic => "dynamic",
        }
    }

    /// Parses a KQL type name (`long`, `int`, `real`/`double`, `string`, ...).
    pub fn from_name(name: &str) -> Option<ColumnType> {
        Some(match name {
            "bool" | "boolean" => ColumnType::Bool,
            "int" => ColumnType::Int,
            "long" => ColumnType::Long,
            "real" | "double" => ColumnType::Real,
            "string" => ColumnType::String,
            "datetime" | "date" => ColumnType::DateTime,
            "timespan" | "time" => ColumnType::Timespan,
            "guid" | "uniqueid" => ColumnType::Guid,
            "dynamic" => ColumnType::Dynamic,
            _ => return None,
        })
    }

    /// `int`, `long` or `real`.
    pub fn is_numeric(self) -> bool {
        matches!(self, ColumnType::Int | ColumnType::Long | ColumnType::Real)
    }

    /// `int` or `long`.
    pub fn is_integral(self) -> bool {
        matches!(self, ColumnType::Int | ColumnType::Long)
    }

    /// `string` or `guid` (both stored as strings).
    pub fn is_stringy(self) -> bool {
        matches!(self, ColumnType::String | ColumnType::Guid)
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A UTC point in time with 100-ns resolution (ticks since 0001-01-01T00:00:00Z).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime(i64);

impl DateTime {
    /// The Unix epoch, 1970-01-01T00:00:00Z.
    pub const UNIX_EPOCH: DateTime = DateTime(UNIX_EPOCH_TICKS);

    /// From ticks since 0001-01-01T00:00:00Z; `None` outside years 1..=9999.
    pub fn from_ticks(ticks: i64) -> Option<DateTime> {
        (0..=MAX_TICKS).contains(&ticks).then_some(DateTime(ticks))
    }

    /// Ticks since 0001-01-01T00:00:00Z.
    pub fn ticks(self) -> i64 {
        self.0
    }

    /// From whole seconds since the Unix epoch.
    pub fn from_unix_seconds(secs: i64) -> Option<DateTime> {
        secs.checked_mul(TICKS_PER_SECOND).and_then(|t| t.checked_add(UNIX_EPOCH_TICKS)).and_then(DateTime::from_ticks)
    }

    /// From milliseconds since the Unix epoch.
    pub fn from_unix_millis(ms: i64) -> Option<DateTime> {
        ms.checked_mul(TICKS_PER_MILLISECOND)
            .and_then(|t| t.checked_add(UNIX_EPOCH_TICKS))
            .and_then(DateTime::from_ticks)
    }

    /// Whole seconds since the Unix epoch (floored).
    pub fn unix_seconds(self) -> i64 {
        (self.0 - UNIX_EPOCH_TICKS).div_euclid(TICKS_PER_SECOND)
    }

    /// Milliseconds since the Unix epoch (floored).
    pub fn unix_millis(self) -> i64 {
        (self.0 - UNIX_EPOCH_TICKS).div_euclid(TICKS_PER_MILLISECOND)
    }

    /// From a UTC calendar date and time of day; `None` if any field is out of range.
    pub fn from_ymd_hms(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<DateTime> {
        if !(1..=9999).contains(&y) || !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) {
            return None;
        }
        if h > 23 || mi > 59 || s > 59 {
            return None;
        }
        let days = days_from_civil(y, mo, d);
        let ticks = UNIX_EPOCH_TICKS
            + days * TICKS_PER_DAY
            + h as i64 * TICKS_PER_HOUR
            + mi as i64 * TICKS_PER_MINUTE
            + s as i64 * TICKS_PER_SECOND;
        DateTime::from_ticks(ticks)
    }

    /// The time `span` later (or earlier for negative spans); `None` if out of range.
    pub fn checked_add(self, span: Timespan) -> Option<DateTime> {
        self.0.checked_add(span.0).and_then(DateTime::from_ticks)
    }

    /// `(year, month, day, hour, minute, second, sub-second ticks)`.
    pub fn to_parts(self) -> (i64, u32, u32, u32, u32, u32, i64) {
        let rel = self.0 - UNIX_EPOCH_TICKS;
        let days = rel.div_euclid(TICKS_PER_DAY);
        let tod = rel.rem_euclid(TICKS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let h = (tod / TICKS_PER_HOUR) as u32;
        let mi = ((tod % TICKS_PER_HOUR) / TICKS_PER_MINUTE) as u32;
        let s = ((tod % TICKS_PER_MINUTE) / TICKS_PER_SECOND) as u32;
        (y, m, d, h, mi, s, tod % TICKS_PER_SECOND)
    }

    /// Parses the datetime forms KQL's `datetime(...)` accepts that the emulator supports:
    /// `2026-11-24`, `2026-11-24T10:00`, `2026-11-24T10:00:00`, `2026-11-24 10:00:00.123`,
    /// each optionally followed by `Z` or a `+hh:mm`/`-hh:mm` offset (no suffix means UTC).
    pub fn parse(s: &str) -> Option<DateTime> {
        let s = s.trim();
        let b = s.as_bytes();
        let mut p = Cursor { b, i: 0 };
        let y = p.digits(4, 4)?;
        p.expect(b'-')?;
        let mo = p.digits(1, 2)?;
        p.expect(b'-')?;
        let d = p.digits(1, 2)?;
        let (mut h, mut mi, mut sec, mut frac) = (0, 0, 0, 0i64);
        if p.peek() == Some(b'T') || p.peek() == Some(b't') || p.peek() == Some(b' ') {
            p.i += 1;
            h = p.digits(1, 2)?;
            p.expect(b':')?;
            mi = p.digits(2, 2)?;
            if p.peek() == Some(b':') {
                p.i += 1;
                sec = p.digits(2, 2)?;
                if p.peek() == Some(b'.') {
                    p.i += 1;
                    let start = p.i;
                    while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                        p.i += 1;
                    }
                    let digits = &s[start..p.i];
                    if digits.is_empty() {
                        return None;
                    }
                    // Keep 7 digits (ticks); pad or truncate.
                    let mut t = 0i64;
                    for k in 0..7 {
                        t = t * 10 + digits.as_bytes().get(k).map_or(0, |c| (c - b'0') as i64);
                    }
                    frac = t;
                }
            }
        }
        let mut offset_ticks = 0i64;
        match p.peek() {
            None => {}
            Some(b'Z') | Some(b'z') => p.i += 1,
            Some(sign @ (b'+' | b'-')) => {
                p.i += 1;
                let oh = p.digits(2, 2)? as i64;
                if p.peek() == Some(b':') {
                    p.i += 1;
                }
                let om = p.digits(2, 2)? as i64;
                offset_ticks = (oh * 60 + om) * TICKS_PER_MINUTE;
                if sign == b'-' {
                    offset_ticks = -offset_ticks;
                }
            }
            Some(_) => return None,
        }
        if p.i != b.len() {
            return None;
        }
        let base = DateTime::from_ymd_hms(y as i64, mo, d, h, mi, sec)?;
        DateTime::from_ticks(base.0 + frac - offset_ticks)
    }
}

impl fmt::Display for DateTime {
    /// ISO-8601 UTC with `Z`; fractional seconds only when non-zero, trailing zeros trimmed
    /// (`2026-11-24T10:00:00Z`, `2026-11-24T10:00:00.5Z`, `2026-11-24T10:00:00.1234567Z`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s, frac) = self.to_parts();
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")?;
        if frac != 0 {
            let digits = format!("{frac:07}");
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

impl From<std::time::SystemTime> for DateTime {
    /// Converts a system time; times outside 0001..=9999 saturate.
    fn from(t: std::time::SystemTime) -> DateTime {
        let ticks = match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => UNIX_EPOCH_TICKS.saturating_add((d.as_nanos() / 100).min(i64::MAX as u128) as i64),
            Err(e) => UNIX_EPOCH_TICKS.saturating_sub((e.duration().as_nanos() / 100).min(i64::MAX as u128) as i64),
        };
        DateTime(ticks.clamp(0, MAX_TICKS))
    }
}

/// A signed duration with 100-ns resolution.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timespan(pub i64);

impl Timespan {
    pub const ZERO: Timespan = Timespan(0);

    pub fn from_ticks(ticks: i64) -> Timespan {
        Timespan(ticks)
    }
    pub fn ticks(self) -> i64 {
        self.0
    }
    pub fn from_seconds(s: i64) -> Timespan {
        Timespan(s * TICKS_PER_SECOND)
    }
    pub fn from_minutes(m: i64) -> Timespan {
        Timespan(m * TICKS_PER_MINUTE)
    }
    pub fn from_hours(h: i64) -> Timespan {
        Timespan(h * TICKS_PER_HOUR)
    }
    pub fn from_days(d: i64) -> Timespan {
        Timespan(d * TICKS_PER_DAY)
    }
    pub fn from_millis(ms: i64) -> Timespan {
        Timespan(ms * TICKS_PER_MILLISECOND)
    }

    /// Ticks per unit for a KQL timespan-literal suffix (`d`, `h`, `m`, `s`, `ms`, `microsecond`,
    /// `tick`, and the long forms such as `hours` or `minutes`).
    pub fn unit_ticks(unit: &str) -> Option<i64> {
        Some(match unit {
            "d" | "day" | "days" => TICKS_PER_DAY,
            "h" | "hr" | "hrs" | "hour" | "hours" => TICKS_PER_HOUR,
            "m" | "min" | "minute" | "minutes" => TICKS_PER_MINUTE,
            "s" | "sec" | "second" | "seconds" => TICKS_PER_SECOND,
            "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => TICKS_PER_MILLISECOND,
            "microsecond" | "microseconds" => TICKS_PER_MICROSECOND,
            "tick" | "ticks" => 1,
            _ => return None,
        })
    }

    /// Parses the inside of `timespan(...)`: a literal such as `1h`/`2.5d`/`100ms`, or the
    /// clock form `[-][d.]hh:mm[:ss[.fffffff]]`.
    pub fn parse(s: &str) -> Option<Timespan> {
        let s = s.trim();
        if s.contains(':') {
            return parse_clock_timespan(s);
        }
        let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-')).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let unit = if unit.is_empty() { "d" } else { unit };
        let per = Timespan::unit_ticks(unit)?;
        let n: f64 = num.parse().ok()?;
        let t = (n * per as f64).round();
        (t.abs() < i64::MAX as f64).then_some(Timespan(t as i64))
    }

    /// Parses an ISO-8601 duration (`PT1H`, `P1D`, `P1DT2H30M`, `PT0.5S`, `P2W`). Years and
    /// months are rejected: their length is not fixed.
    pub fn parse_iso8601(s: &str) -> Option<Timespan> {
        let s = s.trim();
        let (neg, s) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let s = s.strip_prefix('P').or_else(|| s.strip_prefix('p'))?;
        let mut ticks = 0f64;
        let mut in_time = false;
        let mut num = String::new();
        let mut any = false;
        for c in s.chars() {
            match c.to_ascii_uppercase() {
                'T' if !in_time && num.is_empty() => in_time = true,
                '0'..='9' | '.' | ',' => num.push(if c == ',' { '.' } else { c }),
                u => {
                    let n: f64 = num.parse().ok()?;
                    num.clear();
                    let per = match (u, in_time) {
                        ('W', false) => 7 * TICKS_PER_DAY,
                        ('D', false) => TICKS_PER_DAY,
                        ('H', true) => TICKS_PER_HOUR,
                        ('M', true) => TICKS_PER_MINUTE,
                        ('S', true) => TICKS_PER_SECOND,
                        _ => return None,
                    };
                    ticks += n * per as f64;
                    any = true;
                }
            }
        }
        if !num.is_empty() || !any {
            return None;
        }
        let t = ticks.round() as i64;
        Some(Timespan(if neg { -t } else { t }))
    }
}

fn parse_clock_timespan(s: &str) -> Option<Timespan> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return None;
    }
    let (days, hours) = match parts[0].split_once('.') {
        Some((d, h)) => (d.parse::<i64>().ok()?, h.parse::<i64>().ok()?),
        None => (0, parts[0].parse::<i64>().ok()?),
    };
    let minutes: i64 = parts[1].parse().ok()?;
    let mut ticks = days * TICKS_PER_DAY + hours * TICKS_PER_HOUR + minutes * TICKS_PER_MINUTE;
    if let Some(sec) = parts.get(2) {
        let (whole, frac) = match sec.split_once('.') {
            Some((w, f)) => (w, f),
            None => (*sec, ""),
        };
        ticks += whole.parse::<i64>().ok()? * TICKS_PER_SECOND;
        if !frac.is_empty() {
            if !frac.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let mut t = 0i64;
            for k in 0..7 {
                t = t * 10 + frac.as_bytes().get(k).map_or(0, |c| (c - b'0') as i64);
            }
            ticks += t;
        }
    }
    Some(Timespan(if neg { -ticks } else { ticks }))
}

impl fmt::Display for Timespan {
    /// The .NET constant format Log Analytics uses: `[-][d.]hh:mm:ss[.fffffff]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let t = self.0.unsigned_abs();
        let day = TICKS_PER_DAY as u64;
        let (d, rem) = (t / day, t % day);
        let h = rem / TICKS_PER_HOUR as u64;
        let mi = (rem % TICKS_PER_HOUR as u64) / TICKS_PER_MINUTE as u64;
        let s = (rem % TICKS_PER_MINUTE as u64) / TICKS_PER_SECOND as u64;
        let frac = rem % TICKS_PER_SECOND as u64;
        if neg {
            f.write_str("-")?;
        }
        if d > 0 {
            write!(f, "{d}.")?;
        }
        write!(f, "{h:02}:{mi:02}:{s:02}")?;
        if frac != 0 {
            write!(f, ".{frac:07}")?;
        }
        Ok(())
    }
}

/// A scalar KQL value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// The null of any non-string type.
    Null,
    Bool(bool),
    /// `int` and `long`.
    Long(i64),
    Real(f64),
    /// `string` and `guid`.
    String(Arc<str>),
    DateTime(DateTime),
    Timespan(Timespan),
    Dynamic(Arc<serde_json::Value>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A string value.
    pub fn string(s: impl AsRef<str>) -> Value {
        Value::String(Arc::from(s.as_ref()))
    }

    /// A `dynamic` value from JSON.
    pub fn dynamic(v: serde_json::Value) -> Value {
        Value::Dynamic(Arc::new(v))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Long(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::Long(v as i64)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Real(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::string(v)
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::String(Arc::from(v))
    }
}
impl From<Arc<str>> for Value {
    fn from(v: Arc<str>) -> Value {
        Value::String(v)
    }
}
impl From<DateTime> for Value {
    fn from(v: DateTime) -> Value {
        Value::DateTime(v)
    }
}
impl From<Timespan> for Value {
    fn from(v: Timespan) -> Value {
        Value::Timespan(v)
    }
}
impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Value {
        Value::dynamic(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn expect(&mut self, c: u8) -> Option<()> {
        (self.peek() == Some(c)).then(|| self.i += 1)
    }
    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.i;
        while self.i - start < max && self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        if self.i - start < min {
            return None;
        }
        std::str::from_utf8(&self.b[start..self.i]).ok()?.parse().ok()
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). Also the
/// emulator's calendar arithmetic (timestamps, quota periods).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Day of week, 0 = Sunday.
pub(crate) fn day_of_week(t: DateTime) -> i64 {
    // 0001-01-01 was a Monday.
    (t.ticks().div_euclid(TICKS_PER_DAY) + 1).rem_euclid(7)
}

/// Start of the month/year containing `t`.
pub(crate) fn start_of_month(t: DateTime) -> DateTime {
    let (y, m, ..) = t.to_parts();
    DateTime::from_ymd_hms(y, m, 1, 0, 0, 0).unwrap_or(t)
}

pub(crate) fn start_of_year(t: DateTime) -> DateTime {
    let (y, ..) = t.to_parts();
    DateTime::from_ymd_hms(y, 1, 1, 0, 0, 0).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_round_trips_through_text() {
        for s in [
            "2026-11-24T10:00:00Z",
            "2026-11-24T10:00:00.5Z",
            "2026-11-24T10:00:00.1234567Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.9999999Z",
            "2024-02-29T00:00:00Z",
        ] {
            assert_eq!(DateTime::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(DateTime::parse("2026-11-24").unwrap().to_string(), "2026-11-24T00:00:00Z");
        assert_eq!(DateTime::parse("2026-11-24 10:30").unwrap().to_string(), "2026-11-24T10:30:00Z");
        assert_eq!(DateTime::parse("2026-11-24T12:00:00+02:00").unwrap().to_string(), "2026-11-24T10:00:00Z");
        assert!(DateTime::parse("2026-02-30").is_none());
        assert!(DateTime::parse("2026-11-24T25:00:00Z").is_none());
        assert!(DateTime::parse("yesterday").is_none());
    }

    #[test]
    fn unix_conversions_agree() {
        let t = DateTime::parse("1970-01-02T00:00:01Z").unwrap();
        assert_eq!(t.unix_seconds(), 86_401);
        assert_eq!(DateTime::from_unix_seconds(86_401), Some(t));
        assert_eq!(DateTime::from_unix_millis(86_401_000), Some(t));
        let st = std::time::UNIX_EPOCH + std::time::Duration::from_secs(86_401);
        assert_eq!(DateTime::from(st), t);
        // 2026-11-24 is a Tuesday.
        assert_eq!(day_of_week(DateTime::parse("2026-11-24").unwrap()), 2);
    }

    #[test]
    fn timespans_parse_and_print_like_dotnet() {
        assert_eq!(Timespan::parse("1h"), Some(Timespan::from_hours(1)));
        assert_eq!(Timespan::parse("1.5h"), Some(Timespan::from_minutes(90)));
        assert_eq!(Timespan::parse("100ms"), Some(Timespan::from_millis(100)));
        assert_eq!(Timespan::parse("01:30:00"), Some(Timespan::from_minutes(90)));
        assert_eq!(Timespan::parse("1.02:00:00"), Some(Timespan::from_hours(26)));
        assert_eq!(Timespan::from_minutes(5).to_string(), "00:05:00");
        assert_eq!(Timespan::from_hours(26).to_string(), "1.02:00:00");
        assert_eq!(Timespan::from_millis(-1500).to_string(), "-00:00:01.5000000");
        assert_eq!(Timespan::parse_iso8601("PT1H"), Some(Timespan::from_hours(1)));
        assert_eq!(Timespan::parse_iso8601("P1DT2H"), Some(Timespan::from_hours(26)));
        assert_eq!(Timespan::parse_iso8601("P2W"), Some(Timespan::from_days(14)));
        assert_eq!(Timespan::parse_iso8601("PT0.5S"), Some(Timespan::from_millis(500)));
        assert_eq!(Timespan::parse_iso8601("P1M"), None);
        assert_eq!(Timespan::parse_iso8601("1h"), None);
    }
}
