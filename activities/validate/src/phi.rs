//! Detectors for values that look like HIPAA Safe Harbor identifiers. They only ever answer
//! "which detector fired", so nothing about the value itself can leak into a report.

use regex::bytes::{Regex, RegexSet};

use crate::contract::PhiDetector;

pub(crate) const ALL: [PhiDetector; 5] = [
    PhiDetector::Ssn,
    PhiDetector::Phone,
    PhiDetector::Email,
    PhiDetector::Mrn,
    PhiDetector::Dob,
];

/// ASCII-only patterns (`(?-u)`): the lazy DFA then never falls back to a slower engine on
/// non-ASCII cells, which keeps the per-cell cost flat.
fn pattern(d: PhiDetector) -> &'static str {
    match d {
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
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Scanner {
    set: RegexSet,
    detectors: Vec<PhiDetector>,
    /// A custom MRN pattern may match cells with few digits, so the cheap prefilter is off.
    prefilter: bool,
}

impl Scanner {
    pub(crate) fn new(
        detectors: &[PhiDetector],
        mrn_pattern: Option<&str>,
    ) -> Result<Self, regex::Error> {
        let patterns: Vec<String> = detectors
            .iter()
            .map(|&d| match (d, mrn_pattern) {
                (PhiDetector::Mrn, Some(p)) => p.to_owned(),
                _ => pattern(d).to_owned(),
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
        })
    }

    /// Adds one to `hits[i]` for every detector `i` (index into [`ALL`]) that fires on `v`;
    /// returns whether any did. `skip_dob` is set for columns declared as dates.
    pub(crate) fn scan(&self, v: &[u8], skip_dob: bool, hits: &mut [u64; 5]) -> bool {
        if self.prefilter && !worth_scanning(v) {
            return false;
        }
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
}

/// Every default detector needs either an `@` or at least five digits (an MRN; a date has six,
/// an SSN nine, a phone number ten); most cells have neither, and this byte loop is far cheaper
/// than running the regex set.
fn worth_scanning(v: &[u8]) -> bool {
    // Eight bytes at a time (SWAR): flag the ASCII digits and the `@`s of a word exactly, so a
    // long free-text cell costs a few operations per word instead of one branch per byte.
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut digits = 0;
    let mut words = v.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes(w.try_into().unwrap_or_default());
        // A digit becomes 0..=9 after xor 0x30; a byte is below 10 when subtracting 10 from it
        // (with its high bit forced on, so no borrow crosses bytes) clears that high bit.
        let t = w ^ (ONES * 0x30);
        let digit = !((t | HIGH) - ONES * 10) & !t & HIGH;
        // A byte is `@` when it is zero after xor 0x40 (exact zero-byte test).
        let at = w ^ (ONES * 0x40);
        let zero = !(((at & !HIGH) + !HIGH) | at | !HIGH);
        if zero != 0 {
            return true;
        }
        digits += digit.count_ones();
        if digits >= 5 {
            return true;
        }
    }
    for &b in words.remainder() {
        if b.is_ascii_digit() {
            digits += 1;
            if digits >= 5 {
                return true;
            }
        } else if b == b'@' {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fired(v: &str) -> Vec<&'static str> {
        let s = Scanner::new(&ALL, None).unwrap();
        let mut hits = [0; 5];
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
                assert_eq!(worth_scanning(&v), naive(&v), "{v:?}");
            }
        }
    }

    #[test]
    fn custom_mrn_pattern() {
        let s = Scanner::new(&[PhiDetector::Mrn], Some(r"^AB[0-9]{3}$")).unwrap();
        let mut hits = [0; 5];
        assert!(s.scan(b"AB123", false, &mut hits));
        assert!(!s.scan(b"AB12", false, &mut hits));
    }
}
