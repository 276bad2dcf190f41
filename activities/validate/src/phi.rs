//! Detectors for values that look like HIPAA Safe Harbor identifiers. They only ever answer
//! "which detector fired", so nothing about the value itself can leak into a report.

use regex::bytes::{Regex, RegexSet};

use crate::contract::PhiDetector;
use crate::swar::{HIGH, ONES, equal, low_bytes};

pub(crate) const ALL: [PhiDetector; DETECTORS] = [
    PhiDetector::Ssn,
    PhiDetector::Phone,
    PhiDetector::Email,
    PhiDetector::Mrn,
    PhiDetector::Dob,
    PhiDetector::Zip,
    PhiDetector::Address,
];

/// How many detectors there are: the length of every per-column hit counter.
pub(crate) const DETECTORS: usize = 7;

/// USPS state and territory codes, for a ZIP written after one (`Boston, MA 02139`).
const STATES: &str = "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR|GU|VI|AS|MP";

/// Street suffixes (USPS's common ones, full and abbreviated) that end a street address.
const SUFFIXES: &str = "Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Drive|Dr|Lane|Ln|Way|Court|Ct|Place|Pl|Terrace|Ter|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Square|Sq|Trail|Trl";

/// ASCII-only patterns (`(?-u)`): the lazy DFA then never falls back to a slower engine on
/// non-ASCII cells, which keeps the per-cell cost flat.
fn pattern(d: PhiDetector) -> String {
    match d {
        // A bare five-digit number is a lab value or a code as often as a ZIP: only the ZIP+4
        // shape, or five digits that a state code or the word ZIP introduces, count.
        PhiDetector::Zip => format!(
            r"(?-u)(?:(?:^|[^0-9A-Za-z-])[0-9]{{5}}-[0-9]{{4}}(?:$|[^0-9A-Za-z-])|(?:^|[^A-Za-z])(?:{STATES}),? +[0-9]{{5}}(?:-[0-9]{{4}})?(?:$|[^0-9])|(?i:zip|postal)(?i: ?code)?[:#. ]*[0-9]{{5}}(?:$|[^0-9]))"
        ),
        // Words of a street name start with a capital: "2 tablets by mouth" is no address, and
        // a number with a suffix right after it ("5 St") is too short to be one.
        PhiDetector::Address => format!(
            r"(?-u)(?:(?:^|[^0-9A-Za-z])[0-9]{{1,6}}[A-Za-z]? +(?:[A-Z][A-Za-z'-]*\.? +){{1,4}}(?:{SUFFIXES})\.?(?:$|[^A-Za-z])|(?i:\bP\.? ?O\.? *Box +[0-9]+))"
        ),
        other => base_pattern(other).to_owned(),
    }
}

fn base_pattern(d: PhiDetector) -> &'static str {
    match d {
        PhiDetector::Zip | PhiDetector::Address => unreachable!("built by pattern()"),
        PhiDetector::Ssn => {
            r"(?-u)(?:^|[^0-9A-Za-z-])[0-9]{3}[- ][0-9]{2}[- ][0-9]{4}(?:$|[^0-9A-Za-z-])"
        }
        PhiDetector::Phone => {
            r"(?-u)(?:^|[^0-9A-Za-z])(?:\+?1[-. ]?)?(?:\([0-9]{3}\) ?|[0-9]{3}[-. ])[0-9]{3}[-. ][0-9]{4}(?:$|[^0-9A-Za-z])"
        }
        PhiDetector::Email => {
            r"(?-u)[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
        }
        PhiDetector::Mrn => r"(?i-u)(?:^|[^0-9A-Za-z])MRN[-:# ]*[0-9]{5,}",
        PhiDetector::Dob => {
            r"(?-u)(?:^|[^0-9])(?:(?:19|20)[0-9]{2}[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12][0-9]|3[01])|(?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12][0-9]|3[01])[-/.](?:19|20)[0-9]{2})(?:$|[^0-9])"
        }
    }
}

pub(crate) fn name(d: PhiDetector) -> &'static str {
    match d {
        PhiDetector::Ssn => "ssn",
        PhiDetector::Phone => "phone",
        PhiDetector::Email => "email",
        PhiDetector::Mrn => "mrn",
        PhiDetector::Dob => "dob",
        PhiDetector::Zip => "zip",
        PhiDetector::Address => "address",
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Scanner {
    set: RegexSet,
    detectors: Vec<PhiDetector>,
    /// A custom MRN pattern may match cells with few digits, so the cheap prefilter is off.
    prefilter: bool,
    /// Digits a cell needs before the regexes run, over the detectors other than `mrn` and
    /// `email` (`u32::MAX` when there are none): the fewest any of their patterns can match
    /// with (see [`min_digits`]).
    min_digits: u32,
    /// The default `mrn` detector is on: five digits and the letters `MRN` also call for a scan.
    mrn: bool,
    /// The `email` detector is on: an `@` calls for a scan.
    email: bool,
}

/// The fewest ASCII digits a match of `d`'s default pattern contains: an SSN has nine, a
/// phone number ten, a date six (`1/2/1984`), a ZIP five, a house number or PO box one; `mrn`
/// five, and `email` none (it needs an `@` instead).
fn min_digits(d: PhiDetector) -> u32 {
    match d {
        PhiDetector::Ssn => 9,
        PhiDetector::Phone => 10,
        PhiDetector::Dob => 6,
        PhiDetector::Zip | PhiDetector::Mrn => 5,
        PhiDetector::Address => 1,
        PhiDetector::Email => 0,
    }
}

impl Scanner {
    pub(crate) fn new(
        detectors: &[PhiDetector],
        mrn_pattern: Option<&str>,
    ) -> Result<Self, regex::Error> {
        // A detector listed twice still counts a value once.
        let mut unique: Vec<PhiDetector> = Vec::with_capacity(detectors.len());
        for &d in detectors {
            if !unique.contains(&d) {
                unique.push(d);
            }
        }
        let detectors = unique.as_slice();
        let patterns: Vec<String> = detectors
            .iter()
            .map(|&d| match (d, mrn_pattern) {
                (PhiDetector::Mrn, Some(p)) => p.to_owned(),
                _ => pattern(d),
            })
            .collect();
        // Validate a custom pattern on its own so its error is not lost among the others.
        if let Some(p) = mrn_pattern {
            Regex::new(p)?;
        }
        Ok(Self {
            set: RegexSet::new(patterns)?,
            detectors: detectors.to_vec(),
            prefilter: mrn_pattern.is_none() || !detectors.contains(&PhiDetector::Mrn),
            min_digits: detectors
                .iter()
                .filter(|d| !matches!(d, PhiDetector::Mrn | PhiDetector::Email))
                .map(|&d| min_digits(d))
                .min()
                .unwrap_or(u32::MAX),
            mrn: detectors.contains(&PhiDetector::Mrn),
            email: detectors.contains(&PhiDetector::Email),
        })
    }

    /// Adds one to `hits[i]` for every detector `i` (index into [`ALL`]) that fires on `v`;
    /// returns whether any did. `skip_dob` is set for columns declared as dates.
    #[inline]
    pub(crate) fn scan(&self, v: &[u8], skip_dob: bool, hits: &mut [u64; DETECTORS]) -> bool {
        if !self.reads_patterns(v) {
            return false;
        }
        self.scan_patterns(v, skip_dob, hits)
    }

    /// Whether [`scan`](Self::scan) goes past the prefilter for `v`, into the patterns.
    #[inline]
    pub(crate) fn reads_patterns(&self, v: &[u8]) -> bool {
        !self.prefilter || self.worth_scanning(v)
    }

    /// [`scan`](Self::scan) past the prefilter, out of line: inlined with it, the regex set's
    /// call made every value save and restore registers, though most never get here.
    #[inline(never)]
    fn scan_patterns(&self, v: &[u8], skip_dob: bool, hits: &mut [u64; DETECTORS]) -> bool {
        // Most cells match nothing: an early-exit search is much cheaper than asking which
        // patterns match, which needs an overlapping search and an allocation.
        if !self.set.is_match(v) {
            return false;
        }
        let mut any = false;
        for i in self.set.matches(v).iter() {
            let d = self.detectors[i];
            if skip_dob && d == PhiDetector::Dob {
                continue;
            }
            let slot = ALL.iter().position(|&a| a == d).unwrap_or(0);
            hits[slot] += 1;
            any = true;
        }
        any
    }

    /// Whether any detector can match `v` by the counts alone (see [`min_digits`]): most cells
    /// have too few digits and no `@`, and this byte loop is far cheaper than the regex set.
    fn worth_scanning(&self, v: &[u8]) -> bool {
        let mrn_digits = if self.mrn { 5 } else { u32::MAX };
        let Some(digits) = count_digits(v, self.min_digits, self.email) else {
            return true;
        };
        // A value shorter than its digits and the three letters cannot hold both: a five-digit
        // code skips the search for the letters.
        digits >= self.min_digits
            || (digits >= mrn_digits
                && v.len() >= mrn_digits as usize + 3
                && v.windows(3).any(|w| w.eq_ignore_ascii_case(b"mrn")))
    }
}

/// Whether `v` has at least `min_digits` digits or an `@` (the exhaustive test of the
/// counting compares this with a naive count).
#[cfg(test)]
fn worth_scanning(v: &[u8], min_digits: u32) -> bool {
    count_digits(v, min_digits, true).is_none_or(|n| n >= min_digits)
}

/// The ASCII digits of `v`, counted until there are `enough`; None when `v` has an `@` and
/// `stop_at_sign` is set.
fn count_digits(v: &[u8], enough: u32, stop_at_sign: bool) -> Option<u32> {
    // Eight bytes at a time (SWAR): flag the ASCII digits and the `@`s of a word exactly, so a
    // long free-text cell costs a few operations per word instead of one branch per byte.
    let mut digits = 0;
    let mut words = v.chunks_exact(8);
    // The last one to seven bytes are a word too, zero past the value: a zero byte is neither
    // a digit nor an `@`.
    let rest = low_bytes(words.remainder());
    let full = (&mut words).map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()));
    for w in full.chain(rest) {
        // A digit becomes 0..=9 after xor 0x30; a byte is below 10 when subtracting 10 from it
        // (with its high bit forced on, so no borrow crosses bytes) clears that high bit.
        let t = w ^ (ONES * 0x30);
        let digit = !((t | HIGH) - ONES * 10) & !t & HIGH;
        if stop_at_sign && equal(w, ONES * u64::from(b'@')) != 0 {
            return None;
        }
        digits += digit.count_ones();
        if digits >= enough {
            return Some(digits);
        }
    }
    Some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fired(v: &str) -> Vec<&'static str> {
        let s = Scanner::new(&ALL, None).unwrap();
        let mut hits = [0; DETECTORS];
        s.scan(v.as_bytes(), false, &mut hits);
        ALL.iter()
            .zip(hits)
            .filter(|(_, n)| *n > 0)
            .map(|(d, _)| name(*d))
            .collect()
    }

    #[test]
    fn detectors_fire_on_identifiers() {
        assert_eq!(fired("ssn 123-45-6789 on file"), ["ssn"]);
        assert_eq!(fired("call (555) 123-4567"), ["phone"]);
        assert_eq!(fired("555.123.4567"), ["phone"]);
        assert_eq!(fired("jane.doe@example.org"), ["email"]);
        assert_eq!(fired("MRN: 00123456"), ["mrn"]);
        assert_eq!(fired("born 1984-03-07"), ["dob"]);
        assert_eq!(fired("03/07/1984"), ["dob"]);
    }

    #[test]
    fn the_prefilter_keeps_the_shortest_mrn() {
        use PhiDetector::{Dob, Email, Mrn, Phone, Ssn};
        let s = Scanner::new(&[Ssn, Phone, Email, Mrn, Dob], None).unwrap();
        assert!(s.prefilter);
        for (v, fires) in [
            ("MRN12345", true),
            ("mrn12345", true),
            ("xMRN12345", false),
            ("MRN1234", false),
            ("12345", false),
            ("1234567", false),
        ] {
            let mut hits = [0; DETECTORS];
            assert_eq!(s.scan(v.as_bytes(), false, &mut hits), fires, "{v}");
        }
    }

    #[test]
    fn ordinary_values_do_not_fire() {
        for v in [
            "Hypertension",
            "I10",
            "12345",
            "2500.00",
            "1234-5678-9",
            "ICD-10 E11.9",
            "Room 1204",
            "x@y",
        ] {
            assert!(fired(v).is_empty(), "{v} fired {:?}", fired(v));
        }
    }

    #[test]
    fn prefilter_counts_digits_and_at_signs_exactly() {
        fn naive(v: &[u8]) -> bool {
            v.iter().filter(|b| b.is_ascii_digit()).count() >= 5 || v.contains(&b'@')
        }
        let alphabet = b"0123456789@/:?AZaz \x80\xb9\xc0\xff";
        let mut state = 0x1234_5678_9abc_def0_u64;
        for len in 0..40 {
            for _ in 0..400 {
                let v: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        alphabet[(state % alphabet.len() as u64) as usize]
                    })
                    .collect();
                assert_eq!(worth_scanning(&v, 5), naive(&v), "{v:?}");
            }
        }
    }

    #[test]
    fn zip_codes_in_free_text() {
        assert_eq!(fired("Boston, MA 02139"), ["zip"]);
        assert_eq!(fired("moved to TX 75001 last year"), ["zip"]);
        assert_eq!(fired("zip 02139"), ["zip"]);
        assert_eq!(fired("Postal code: 94110"), ["zip"]);
        assert_eq!(fired("02139-4307"), ["zip"]);
        assert_eq!(fired("mail to NY 10001-2345"), ["zip"]);
    }

    #[test]
    fn street_addresses_in_free_text() {
        assert_eq!(fired("lives at 12 Elm Street"), ["address"]);
        assert_eq!(fired("4500 N Main St."), ["address"]);
        assert_eq!(fired("1600 Pennsylvania Ave, Washington"), ["address"]);
        assert_eq!(fired("221B Baker St"), ["address"]);
        assert_eq!(fired("PO Box 1234"), ["address"]);
        assert_eq!(fired("p.o. box 77"), ["address"]);
        let both = fired("12 Elm Street, Springfield, IL 62704");
        assert_eq!(both, ["zip", "address"]);
    }

    #[test]
    fn zip_and_address_shapes_that_are_not_identifiers() {
        for v in [
            // A lab value, an order number, a bare five-digit code: no context says ZIP.
            "12345",
            "result 54321 U/L",
            "glucose 10245",
            // Codes with a dash: not the 5-4 shape.
            "1234-5678-9",
            "12345-678",
            "123456-7890",
            // Dosing and measurements: a number and words, but no street suffix.
            "take 2 tablets by mouth daily",
            "Take 2 Tablets Daily",
            "5 St",
            "Room 1204",
            "Stage 3 Cancer",
            // A state code without five digits, five digits glued to letters.
            "MA 0213",
            "IDX12345",
        ] {
            assert!(fired(v).is_empty(), "{v} fired {:?}", fired(v));
        }
    }

    #[test]
    fn the_prefilter_lets_short_house_numbers_through_only_for_address() {
        let zip_only = Scanner::new(&[PhiDetector::Zip], None).unwrap();
        let address = Scanner::new(&[PhiDetector::Address], None).unwrap();
        let mut hits = [0; DETECTORS];
        assert!(!zip_only.scan(b"7 Elm Street", false, &mut hits));
        assert!(address.scan(b"7 Elm Street", false, &mut hits));
    }

    #[test]
    fn custom_mrn_pattern() {
        let s = Scanner::new(&[PhiDetector::Mrn], Some(r"^AB[0-9]{3}$")).unwrap();
        let mut hits = [0; DETECTORS];
        assert!(s.scan(b"AB123", false, &mut hits));
        assert!(!s.scan(b"AB12", false, &mut hits));
    }
}
