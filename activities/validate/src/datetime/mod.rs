//! A small strftime subset for checking date and timestamp cells without a date library: the
//! validator only needs "does it parse" and "how does it compare", so values become seconds since
//! 1970-01-01 (UTC when an offset is given, naive otherwise).

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    /// Fraction of a second, 1 to 9 digits.
    Fraction,
    /// `%.f`: an optional `.` and 1 to 9 digits, for sources that drop a zero fraction.
    OptionalFraction,
    /// `Z`, `+HH:MM`, `+HHMM` or `+HH`.
    Offset,
    Literal(u8),
}

mod fixed;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DateFormat {
    items: Vec<Item>,
    /// The same format as byte positions, when every field has a fixed width.
    fixed: Option<fixed::Fixed>,
}

pub(crate) const DEFAULT_DATE: &str = "%Y-%m-%d";
pub(crate) const DEFAULT_TIMESTAMP: &str = "%Y-%m-%dT%H:%M:%S";

impl DateFormat {
    pub(crate) fn parse(fmt: &str) -> Result<Self, String> {
        let mut items = Vec::new();
        let mut bytes = fmt.bytes();
        while let Some(b) = bytes.next() {
            if b != b'%' {
                items.push(Item::Literal(b));
                continue;
            }
            items.push(match bytes.next() {
                Some(b'.') => match bytes.next() {
                    Some(b'f') => Item::OptionalFraction,
                    _ => return Err("%. must be followed by f (%.f: optional fraction)".into()),
                },
                Some(b'Y') => Item::Year,
                Some(b'm') => Item::Month,
                Some(b'd') => Item::Day,
                Some(b'H') => Item::Hour,
                Some(b'M') => Item::Minute,
                Some(b'S') => Item::Second,
                Some(b'f') => Item::Fraction,
                Some(b'z') => Item::Offset,
                Some(b'%') => Item::Literal(b'%'),
                Some(other) => {
                    return Err(format!(
                        "unsupported directive %{} (supported: %Y %m %d %H %M %S %f %.f %z %%)",
                        other as char
                    ));
                }
                None => return Err("format ends with a lone %".into()),
            });
        }
        if !items.contains(&Item::Year)
            || !items.contains(&Item::Month)
            || !items.contains(&Item::Day)
        {
            return Err("a date format needs %Y, %m and %d".into());
        }
        Ok(Self {
            fixed: fixed::Fixed::of(&items),
            items,
        })
    }

    /// Whether `v` matches the format exactly: [`eval`](Self::eval) without the instant.
    pub(crate) fn is_valid(&self, v: &[u8]) -> bool {
        match &self.fixed {
            Some(fixed) => fixed.is_valid(v),
            None => self.eval_items(v).is_some(),
        }
    }

    /// Seconds since 1970-01-01T00:00:00, or None when `v` does not match the format exactly.
    pub(crate) fn eval(&self, v: &[u8]) -> Option<i64> {
        if let Some(fixed) = &self.fixed {
            return fixed.eval(v);
        }
        self.eval_items(v)
    }

    /// [`eval`](Self::eval) item by item, for any format.
    fn eval_items(&self, v: &[u8]) -> Option<i64> {
        let (mut y, mut mo, mut d, mut h, mut mi, mut s, mut off) = (0i64, 0, 0, 0, 0, 0, 0i64);
        let mut at = 0;
        for item in &self.items {
            match item {
                Item::Year => y = digits(v, &mut at, 4, 4)?,
                Item::Month => mo = digits(v, &mut at, 2, 2)?,
                Item::Day => d = digits(v, &mut at, 2, 2)?,
                Item::Hour => h = digits(v, &mut at, 2, 2)?,
                Item::Minute => mi = digits(v, &mut at, 2, 2)?,
                Item::Second => s = digits(v, &mut at, 2, 2)?,
                Item::Fraction => {
                    digits(v, &mut at, 1, 9)?;
                }
                Item::OptionalFraction => {
                    if v.get(at) == Some(&b'.') {
                        at += 1;
                        digits(v, &mut at, 1, 9)?;
                    }
                }
                Item::Offset => off = offset(v, &mut at)?,
                Item::Literal(c) => {
                    if v.get(at) != Some(c) {
                        return None;
                    }
                    at += 1;
                }
            }
        }
        if at != v.len() {
            return None;
        }
        seconds(y, mo, d, h, mi, s, off)
    }
}

/// Seconds since the epoch of a date and time read from a value, when they are in range.
#[inline]
fn seconds(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64, off: i64) -> Option<i64> {
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - off)
}

/// How a date/timestamp column's values are read: one or more formats (any may match), or
/// FHIR's own date and dateTime grammars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TimeParser {
    Formats(Vec<DateFormat>),
    FhirDate,
    FhirDateTime,
}

impl TimeParser {
    /// Seconds since the epoch of the value (the start of the period for a partial FHIR date).
    pub(crate) fn eval(&self, v: &[u8]) -> Option<i64> {
        match self {
            Self::Formats(fs) => fs.iter().find_map(|f| f.eval(v)),
            Self::FhirDate => fhir(v, false),
            Self::FhirDateTime => fhir(v, true),
        }
    }

    /// Whether the value reads as a time: [`eval`](Self::eval) without the instant where a
    /// format can tell that more cheaply.
    pub(crate) fn is_valid(&self, v: &[u8]) -> bool {
        match self {
            Self::Formats(fs) => fs.iter().any(|f| f.is_valid(v)),
            _ => self.eval(v).is_some(),
        }
    }
}

/// FHIR R4 `date` (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`) and `dateTime` (those, or a full date with
/// `Thh:mm:ss`, an optional fraction and a mandatory zone `Z` / `+hh:mm` / `-hh:mm`).
fn fhir(v: &[u8], time_allowed: bool) -> Option<i64> {
    let mut at = 0;
    let y = fixed(v, &mut at, 4)?;
    let (mut mo, mut d) = (1, 1);
    if at < v.len() {
        lit(v, &mut at, b'-')?;
        mo = fixed(v, &mut at, 2)?;
        if at < v.len() {
            lit(v, &mut at, b'-')?;
            d = fixed(v, &mut at, 2)?;
        }
    }
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    let mut secs = days_from_civil(y, mo, d) * 86_400;
    if at < v.len() {
        // A time needs a full date, and in FHIR a zone.
        if !time_allowed || at != 10 {
            return None;
        }
        lit(v, &mut at, b'T')?;
        let h = fixed(v, &mut at, 2)?;
        lit(v, &mut at, b':')?;
        let mi = fixed(v, &mut at, 2)?;
        lit(v, &mut at, b':')?;
        let s = fixed(v, &mut at, 2)?;
        if v.get(at) == Some(&b'.') {
            at += 1;
            digits(v, &mut at, 1, 9)?;
        }
        // `offset` also takes `+hh` and `+hhmm`; FHIR wants `+hh:mm`.
        let zone = v.get(at..)?;
        if !(zone == b"Z" || (zone.len() == 6 && zone[3] == b':')) {
            return None;
        }
        let off = offset(v, &mut at)?;
        if at != v.len() || h > 23 || mi > 59 || s > 60 {
            return None;
        }
        secs += h * 3600 + mi * 60 + s - off;
    }
    Some(secs)
}

fn fixed(v: &[u8], at: &mut usize, n: usize) -> Option<i64> {
    let n = digits(v, at, n, n)?;
    // `digits` stops at `max`; a longer run of digits is not this field.
    v.get(*at).is_none_or(|b| !b.is_ascii_digit()).then_some(n)
}

fn lit(v: &[u8], at: &mut usize, c: u8) -> Option<()> {
    (v.get(*at) == Some(&c)).then(|| *at += 1)
}

fn digits(v: &[u8], at: &mut usize, min: usize, max: usize) -> Option<i64> {
    let mut n = 0i64;
    let start = *at;
    while *at < v.len() && *at - start < max && v[*at].is_ascii_digit() {
        n = n * 10 + i64::from(v[*at] - b'0');
        *at += 1;
    }
    (*at - start >= min).then_some(n)
}

fn offset(v: &[u8], at: &mut usize) -> Option<i64> {
    match v.get(*at)? {
        b'Z' => {
            *at += 1;
            Some(0)
        }
        sign @ (b'+' | b'-') => {
            let sign = if *sign == b'-' { -1 } else { 1 };
            *at += 1;
            let h = digits(v, at, 2, 2)?;
            if v.get(*at) == Some(&b':') {
                *at += 1;
            }
            let m = if *at < v.len() {
                digits(v, at, 2, 2)?
            } else {
                0
            };
            (h <= 23 && m <= 59).then_some(sign * (h * 3600 + m * 60))
        }
        _ => None,
    }
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A `date_range` bound: `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS`.
pub(crate) fn parse_bound(s: &str) -> Result<i64, String> {
    for fmt in [DEFAULT_DATE, DEFAULT_TIMESTAMP] {
        if let Some(v) = DateFormat::parse(fmt)
            .ok()
            .and_then(|f| f.eval(s.as_bytes()))
        {
            return Ok(v);
        }
    }
    Err(format!(
        "bound {s:?} is neither YYYY-MM-DD nor YYYY-MM-DDTHH:MM:SS"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_and_compare() {
        let f = DateFormat::parse(DEFAULT_DATE).unwrap();
        assert_eq!(f.eval(b"1970-01-01"), Some(0));
        assert_eq!(f.eval(b"1970-01-02"), Some(86_400));
        assert!(f.eval(b"2024-02-29").is_some());
        assert!(f.eval(b"2023-02-29").is_none());
        assert!(f.eval(b"2023-13-01").is_none());
        assert!(f.eval(b"2023-1-01").is_none());
        assert!(f.eval(b"2023-01-01x").is_none());
        let us = DateFormat::parse("%m/%d/%Y").unwrap();
        assert_eq!(us.eval(b"01/02/1970"), Some(86_400));
    }

    #[test]
    fn timestamps_with_offsets_and_fractions() {
        let f = DateFormat::parse("%Y-%m-%dT%H:%M:%S%.%f%z").unwrap_err();
        assert!(f.contains("%."));
        let f = DateFormat::parse("%Y-%m-%dT%H:%M:%S.%f%z").unwrap();
        assert_eq!(f.eval(b"1970-01-01T01:00:00.5+01:00"), Some(0));
        assert_eq!(f.eval(b"1970-01-01T00:00:00.123Z"), Some(0));
        assert!(f.eval(b"1970-01-01T24:00:00.1Z").is_none());
        assert!(DateFormat::parse("%H:%M").is_err());
    }

    #[test]
    fn optional_fraction_and_several_formats() {
        let f = DateFormat::parse("%Y-%m-%dT%H:%M:%S%.f%z").unwrap();
        assert_eq!(f.eval(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(f.eval(b"1970-01-01T00:00:00.123456Z"), Some(0));
        assert!(f.eval(b"1970-01-01T00:00:00.Z").is_none());
        let p = TimeParser::Formats(vec![
            DateFormat::parse("%Y-%m-%d").unwrap(),
            DateFormat::parse("%m/%d/%Y").unwrap(),
        ]);
        assert_eq!(p.eval(b"01/02/1970"), Some(86_400));
        assert_eq!(p.eval(b"1970-01-02"), Some(86_400));
        assert!(p.eval(b"1970/01/02").is_none());
    }

    #[test]
    fn fhir_dates_and_datetimes() {
        let d = TimeParser::FhirDate;
        let dt = TimeParser::FhirDateTime;
        assert_eq!(d.eval(b"1970"), Some(0));
        assert_eq!(d.eval(b"1970-02"), Some(31 * 86_400));
        assert_eq!(d.eval(b"1970-01-02"), Some(86_400));
        rejects(
            &d,
            &[
                b"197",
                b"19700",
                b"1970-1",
                b"1970-13",
                b"1970-02-30",
                b"1970-01-01T00:00:00Z",
            ],
        );
        assert_eq!(dt.eval(b"1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(dt.eval(b"1970-01-01T00:00:00.123456Z"), Some(0));
        assert_eq!(dt.eval(b"1970"), Some(0));
        rejects(
            &dt,
            &[
                b"1970-01-01T00:00:00",
                b"1970-01-01T00:00Z",
                b"1970-01T00:00:00Z",
                b"1970-01-01T00:00:00+0100",
                b"1970-01-01T25:00:00Z",
                b"1970-01-01 00:00:00Z",
            ],
        );
    }

    fn rejects(parser: &TimeParser, values: &[&[u8]]) {
        for bad in values {
            assert!(parser.eval(bad).is_none(), "{bad:?}");
        }
    }
}
