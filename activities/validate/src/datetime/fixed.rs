//! Formats whose fields all have fixed widths (`%Y-%m-%d`, `%Y-%m-%dT%H:%M:%S`, `%m/%d/%Y`):
//! every field sits at a known byte, so a value is checked eight bytes at a time against a
//! template (each byte a digit or one literal), its digit pairs are made in those words with
//! one multiply and read from known places, and the day count is done in unsigned arithmetic
//! (a four-digit year is never negative). Under callgrind the bench's timestamps took 300
//! instructions a value when the fields were read byte by byte and the day count was signed,
//! 248 this way reading all four template words, and 226 reading only the words the value
//! spans; checked without the day count, and with the ISO layouts' templates as constants
//! ([`PRESETS`]), about a hundred. It accepts exactly the values the item reader accepts, with the same seconds
//! (tested against it).

use super::Item;
use crate::swar::ONES;

/// Longest template kept: four words.
const WORDS: usize = 4;

/// Digit pairs read per value: the year's two, one each for month, day, hour, minute, second.
const PAIRS: usize = 7;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fixed {
    len: usize,
    /// Where word `i` is read: byte `8 * i`, or the last eight bytes for the words past the
    /// end (a template is at least eight bytes long, so every read is whole).
    starts: [usize; WORDS],
    /// Per word: the bytes that are literals, and their values.
    literal_mask: [u64; WORDS],
    literal: [u64; WORDS],
    /// Per word: the bytes that must be ASCII digits.
    digit_mask: [u64; WORDS],
    /// Words that tile the value: its length over eight, rounded up.
    words: usize,
    /// Per digit pair (see [`PAIRS`]): the word that holds both digits and the shift of the
    /// first there. An absent field's pair reads word `WORDS`, which is zero.
    places: [(u8, u8); PAIRS],
    /// 1 + the index in [`PRESETS`] of an equal template, else 0.
    preset: u8,
}

/// The templates of the ISO 8601 layouts most files use, as [`Fixed::of`] builds them (a test
/// requires it): `%Y-%m-%d`, `%Y-%m-%dT%H:%M:%S` and `%Y-%m-%d %H:%M:%S`. A value read with a
/// constant template has its masks and places folded into the code; read through `&self`,
/// the bench's timestamps took about 170 instructions, most of them loading the template.
const PRESETS: [Fixed; 3] = [
    Fixed {
        len: 10,
        starts: [0, 2, 2, 2],
        literal_mask: [
            0xff00_00ff_0000_0000,
            0xff00_00ff_0000,
            0xff00_00ff_0000,
            0xff00_00ff_0000,
        ],
        literal: [
            0x2d00_002d_0000_0000,
            0x2d00_002d_0000,
            0x2d00_002d_0000,
            0x2d00_002d_0000,
        ],
        digit_mask: [
            0x00ff_ff00_ffff_ffff,
            0xffff_00ff_ff00_ffff,
            0xffff_00ff_ff00_ffff,
            0xffff_00ff_ff00_ffff,
        ],
        words: 2,
        places: [(0, 0), (0, 16), (0, 40), (1, 48), (4, 0), (4, 0), (4, 0)],
        preset: 0,
    },
    iso_datetime(0x54),
    iso_datetime(0x20),
];

/// `%Y-%m-%d<sep>%H:%M:%S`.
const fn iso_datetime(sep: u64) -> Fixed {
    Fixed {
        len: 19,
        starts: [0, 8, 11, 11],
        literal_mask: [
            0xff00_00ff_0000_0000,
            0xff00_00ff_0000,
            0xff00_00ff_0000,
            0xff00_00ff_0000,
        ],
        literal: [
            0x2d00_002d_0000_0000,
            0x3a00_0000_0000 | sep << 16,
            0x3a00_003a_0000,
            0x3a00_003a_0000,
        ],
        digit_mask: [
            0x00ff_ff00_ffff_ffff,
            0xffff_00ff_ff00_ffff,
            0xffff_00ff_ff00_ffff,
            0xffff_00ff_ff00_ffff,
        ],
        words: 3,
        places: [(0, 0), (0, 16), (0, 40), (1, 0), (1, 24), (1, 48), (2, 48)],
        preset: 0,
    }
}

impl Fixed {
    /// The fixed layout of `items`, or None when a field's width varies, it is longer than
    /// four words or shorter than one.
    pub(super) fn of(items: &[Item]) -> Option<Fixed> {
        // Per template byte: Some(true) a digit, Some(false) a literal (in `literals`).
        let mut bytes: Vec<(bool, u8)> = Vec::new();
        // Where the last occurrence of each field starts (the last wins, as in the item reader).
        let mut at: [Option<usize>; 6] = [None; 6];
        for item in items {
            let (field, width) = match item {
                Item::Year => (0, 4),
                Item::Month => (1, 2),
                Item::Day => (2, 2),
                Item::Hour => (3, 2),
                Item::Minute => (4, 2),
                Item::Second => (5, 2),
                Item::Literal(b) => {
                    bytes.push((false, *b));
                    continue;
                }
                Item::Fraction | Item::OptionalFraction | Item::Offset => return None,
            };
            at[field] = Some(bytes.len());
            bytes.extend(std::iter::repeat_n((true, b'0'), width));
        }
        let len = bytes.len();
        if !(8..=WORDS * 8).contains(&len) || at[..3].iter().any(Option::is_none) {
            return None;
        }
        let starts: [usize; WORDS] = std::array::from_fn(|i| (8 * i).min(len - 8));
        let mut f = Fixed {
            len,
            starts,
            literal_mask: [0; WORDS],
            literal: [0; WORDS],
            digit_mask: [0; WORDS],
            words: len.div_ceil(8),
            places: [(WORDS as u8, 0); PAIRS],
            preset: 0,
        };
        for (i, &start) in starts.iter().enumerate() {
            for (k, &(digit, b)) in bytes[start..start + 8].iter().enumerate() {
                let shift = 8 * k;
                if digit {
                    f.digit_mask[i] |= 0xFF << shift;
                } else {
                    f.literal_mask[i] |= 0xFF << shift;
                    f.literal[i] |= u64::from(b) << shift;
                }
            }
        }
        // The year's pairs, then one per other field.
        let pairs = [(0, 0), (0, 2), (1, 0), (2, 0), (3, 0), (4, 0), (5, 0)];
        for (pair, (field, offset)) in pairs.into_iter().enumerate() {
            if let Some(first) = at[field] {
                let p = first + offset;
                // A word that holds both digits; a pair across every word boundary is the
                // item reader's.
                let i = starts[..f.words]
                    .iter()
                    .position(|&s| s <= p && p + 1 < s + 8)?;
                f.places[pair] = (i as u8, (8 * (p - starts[i])) as u8);
            }
        }
        f.preset = PRESETS
            .iter()
            .position(|p| *p == f)
            .map_or(0, |i| i as u8 + 1);
        Some(f)
    }

    /// Seconds since 1970-01-01 of `v`, or None when it does not have the template's shape
    /// or a field is out of its range.
    #[inline]
    pub(super) fn eval(&self, v: &[u8]) -> Option<i64> {
        let (year, month, day, seconds) = self.read(v)?;
        Some(days_since_epoch(year, month, day) * 86_400 + i64::from(seconds))
    }

    /// Whether `v` has the template's shape with every field in range: [`eval`](Self::eval)
    /// without counting the days, for a column whose checks need no instant.
    #[inline]
    pub(super) fn is_valid(&self, v: &[u8]) -> bool {
        self.read(v).is_some()
    }

    /// The year, month, day and second of the day of `v`, each in range.
    #[inline(always)]
    fn read(&self, v: &[u8]) -> Option<(u32, u32, u32, u32)> {
        match self.preset {
            1 => PRESETS[0].read_template(v),
            2 => PRESETS[1].read_template(v),
            3 => PRESETS[2].read_template(v),
            _ => self.read_template(v),
        }
    }

    #[inline(always)]
    fn read_template(&self, v: &[u8]) -> Option<(u32, u32, u32, u32)> {
        if v.len() != self.len {
            return None;
        }
        // Only the words that tile the value: a column's values share a template, so the
        // loop's exit is predicted, and a date reads two words, not four. The words past
        // them stay zero for the absent fields' pairs.
        let mut words = [0u64; 2 * WORDS];
        let mut bad = 0u64;
        #[allow(clippy::needless_range_loop)]
        for i in 0..self.words.min(WORDS) {
            let start = self.starts[i];
            let word = v.get(start..).and_then(|w| w.first_chunk::<8>())?;
            let w = u64::from_le_bytes(*word);
            bad |= (w ^ self.literal[i]) & self.literal_mask[i];
            // A digit is 0x30..=0x39: with 0x30 taken off, no high nibble, and a low one that
            // stays below 0x10 when 6 is added (no byte carries into the next).
            let x = w ^ (ONES * 0x30);
            let high_nibble = x & (ONES * 0xF0);
            let over_nine = ((x & (ONES * 0x0F)) + ONES * 0x06) & (ONES * 0x10);
            bad |= (high_nibble | over_nine) & self.digit_mask[i];
            // Digits only (the literals zeroed), then each byte with ten times itself plus
            // the next: byte k holds the pair that starts there (at most 99, no carry).
            // Wrapping: a value that failed the test may overflow, and is refused below.
            let digits = x & self.digit_mask[i];
            words[i] = digits.wrapping_mul(10).wrapping_add(digits >> 8);
        }
        if bad != 0 {
            return None;
        }
        let pair = |k: usize| {
            let (i, shift) = self.places[k];
            ((words[usize::from(i) & (2 * WORDS - 1)] >> shift) & 0xFF) as u32
        };
        let year = pair(0) * 100 + pair(1);
        let (month, day) = (pair(2), pair(3));
        let (hour, minute, second) = (pair(4), pair(5), pair(6));
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        Some((year, month, day, hour * 3600 + minute * 60 + second))
    }
}

#[inline]
fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a valid date of year 0 to 9999: Howard Hinnant's count, on a
/// year that starts in March and is moved one era (400 years) on, so nothing goes negative
/// and every division is an unsigned one by a constant.
#[inline]
fn days_since_epoch(year: u32, month: u32, day: u32) -> i64 {
    let y = year + 400 - u32::from(month <= 2);
    let m = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    let days = y * 365 + y / 4 - y / 100 + y / 400 + day_of_year;
    i64::from(days) - 719_468 - 146_097
}

#[cfg(test)]
mod tests {
    use super::super::DateFormat;
    use super::{Fixed, PRESETS};
    use proptest::prelude::*;

    const FORMATS: [&str; 7] = [
        "%Y-%m-%d",
        "%Y-%m-%dT%H:%M:%S",
        "%m/%d/%Y",
        "%Y%m%d%H%M%S",
        "%d.%m.%Y %H:%M",
        "%%%Y-%m-%d %S%%",
        "%Y-%m-%d %H:%M:%S %Y",
    ];

    /// Every month and day near the ranges, over the years whose leap rules differ, gives the
    /// item reader's seconds.
    #[test]
    fn every_day_of_four_centuries_and_the_ends_of_the_year_range() {
        let f = DateFormat::parse("%Y-%m-%dT%H:%M:%S").unwrap();
        let years = (0..10).chain(1596..2404).chain(9990..10_000);
        for y in years {
            for m in 0..14 {
                for d in 0..33 {
                    let v = format!("{y:04}-{m:02}-{d:02}T23:59:60");
                    let v = v.as_bytes();
                    assert_eq!(f.eval(v), f.eval_items(v), "{}", String::from_utf8_lossy(v));
                }
            }
        }
    }

    #[test]
    fn the_presets_are_the_templates_of_their_formats() {
        let formats = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"];
        for (i, (f, preset)) in formats.iter().zip(&PRESETS).enumerate() {
            let built = DateFormat::parse(f).unwrap().fixed.unwrap();
            assert_eq!(built.preset as usize, i + 1, "{f}");
            assert_eq!(Fixed { preset: 0, ..built }, *preset, "{f}");
        }
        let other = DateFormat::parse("%m/%d/%Y").unwrap().fixed.unwrap();
        assert_eq!(other.preset, 0);
    }

    #[test]
    fn only_fixed_width_formats_get_a_template() {
        for f in FORMATS {
            assert!(DateFormat::parse(f).unwrap().fixed.is_some(), "{f}");
        }
        for f in ["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d%.f"] {
            assert!(DateFormat::parse(f).unwrap().fixed.is_none(), "{f}");
        }
        let long = format!("%Y-%m-%d{}", "x".repeat(30));
        assert!(DateFormat::parse(&long).unwrap().fixed.is_none());
        // Shorter than a word: the item reader's.
        assert!(DateFormat::parse("%Y%m%d").unwrap().fixed.is_some());
        assert!(DateFormat::parse("%Y%m").is_err());
    }

    /// A byte to put in a value: mostly those next to the digits (`/` and `:` to `?`), where a
    /// digit test that is off by one would show.
    fn edit_byte() -> impl Strategy<Value = u8> {
        prop_oneof![b'/'..=b'?', Just(b'-'), Just(b'T'), any::<u8>()]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        /// Values of each format's shape with fields near their ranges, a byte or two swapped,
        /// one more or less, read as the item reader reads them.
        #[test]
        fn the_template_reads_what_the_items_read(
            format in 0..FORMATS.len(),
            fields in (0u32..10_000, 0u32..14, 0u32..33, 0u32..25, 0u32..62, 0u32..62),
            edits in proptest::collection::vec((0usize..40, edit_byte()), 0..3),
            cut in 0usize..3,
        ) {
            let f = DateFormat::parse(FORMATS[format]).unwrap();
            let (y, mo, d, h, mi, sec) = fields;
            let mut v = String::new();
            let mut chars = FORMATS[format].chars();
            while let Some(c) = chars.next() {
                if c != '%' {
                    v.push(c);
                    continue;
                }
                match chars.next() {
                    Some('Y') => v += &format!("{y:04}"),
                    Some('m') => v += &format!("{mo:02}"),
                    Some('d') => v += &format!("{d:02}"),
                    Some('H') => v += &format!("{h:02}"),
                    Some('M') => v += &format!("{mi:02}"),
                    Some('S') => v += &format!("{sec:02}"),
                    _ => v.push('%'),
                }
            }
            let mut v = v.into_bytes();
            for (at, b) in edits {
                if at < v.len() { v[at] = b; } else { v.push(b); }
            }
            v.truncate(v.len() - cut.min(v.len()));
            prop_assert_eq!(f.eval(&v), f.eval_items(&v), "{:?}", String::from_utf8_lossy(&v));
            prop_assert_eq!(f.is_valid(&v), f.eval_items(&v).is_some());
        }
    }
}
