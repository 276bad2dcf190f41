//! Verdicts of values a column has checked before. EHR extracts repeat most of their values
//! (codes, statuses, payers, dates, templated notes), and a value's type, value rules and PHI
//! scan depend on the value alone, so the second time a column sees a value its verdict is
//! looked up instead of recomputed. The key is the value's exact bytes, so a hit is always the
//! verdict the checks would give. A column whose values rarely repeat (ids, amounts,
//! timestamps, free text) turns its memo off after a few thousand values, and then pays
//! nothing for it.

/// What the value-only checks of a column said about one value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Verdict {
    /// Bit `j`: the column's check `j` failed.
    pub(super) failed: u64,
    /// Matches per PHI detector (0 or 1 each: a scanner lists a detector once), when the scan
    /// found any.
    pub(super) phi: Option<[u8; crate::phi::DETECTORS]>,
}

impl Verdict {
    /// Nothing failed and the PHI scan found nothing.
    #[inline]
    pub(super) fn is_clean(&self) -> bool {
        self.failed == 0 && self.phi.is_none()
    }
}

/// Values looked at before the layout is chosen, and in each window after that.
const SAMPLE: u32 = 256;
const WINDOW: u32 = 16 * 1024;
/// Key bytes per column: the table stays in the core's L2 cache next to the batch.
const KEY_BYTES: usize = 256 * 1024;
const MAX_ENTRIES: usize = 16 * 1024;
const MAX_STRIDE: usize = 64;

/// A direct-mapped table from value bytes to verdict, one per column.
#[derive(Debug, Default)]
pub(super) struct Memo {
    /// Bytes per key: values longer than this are never kept.
    stride: usize,
    keys: Vec<u8>,
    /// Length of the key held in each entry plus one; 0 for an empty entry.
    lens: Vec<u8>,
    verdicts: Vec<Verdict>,
    longest: usize,
    lookups: u32,
    hits: u32,
    /// Lookups answered since the start, for tests.
    answered: u64,
    off: bool,
}

impl Memo {
    /// Whether `get` may ever answer: false once the column proved not to repeat its values.
    #[inline]
    pub(super) fn on(&self) -> bool {
        !self.off
    }

    /// The verdict kept for `v`, counting the lookup; a miss is to be answered with `put`.
    #[inline]
    pub(super) fn get(&mut self, v: &[u8]) -> Option<Verdict> {
        self.lookups += 1;
        if self.keys.is_empty() {
            self.longest = self.longest.max(v.len());
            if self.lookups >= SAMPLE {
                self.lay_out();
            }
            return None;
        }
        if self.lookups >= WINDOW {
            // Worth keeping while at least half the values of a window are repeats; the
            // first window after the layout also pays for filling the table.
            if self.hits * 2 < self.lookups {
                self.turn_off();
                return None;
            }
            self.lookups = 0;
            self.hits = 0;
        }
        let i = self.entry(v)?;
        let at = i * self.stride;
        if usize::from(self.lens[i]) == v.len() + 1 && same(&self.keys[at..at + self.stride], v) {
            self.hits += 1;
            self.answered += 1;
            return Some(self.verdicts[i]);
        }
        None
    }

    /// Keeps the verdict of `v` (a value `get` missed), replacing the entry's previous one.
    #[inline]
    pub(super) fn put(&mut self, v: &[u8], verdict: Verdict) {
        let Some(i) = self.entry(v) else {
            return;
        };
        let at = i * self.stride;
        let key = &mut self.keys[at..at + self.stride];
        // Zeros after the value, which `same` compares a word at a time.
        key.fill(0);
        key[..v.len()].copy_from_slice(v);
        // v.len() < stride <= 64, so it fits.
        self.lens[i] = (v.len() + 1) as u8;
        self.verdicts[i] = verdict;
    }

    /// Where `v` lives, or None when it is too long to keep (or the table is not laid out).
    #[inline]
    fn entry(&self, v: &[u8]) -> Option<usize> {
        if v.len() >= self.stride || self.off {
            return None;
        }
        Some(slot_hash(v) as usize & (self.lens.len() - 1))
    }

    /// Sizes keys from the sample's longest value: short codes and dates get many entries.
    fn lay_out(&mut self) {
        let stride = (self.longest + 1).next_multiple_of(8).min(MAX_STRIDE);
        let entries = (KEY_BYTES / stride).min(MAX_ENTRIES).next_power_of_two();
        self.stride = stride;
        self.keys = vec![0; entries * stride];
        self.lens = vec![0; entries];
        self.verdicts = vec![Verdict::default(); entries];
        self.lookups = 0;
        self.hits = 0;
    }

    #[cfg(test)]
    pub(super) fn answered(&self) -> u64 {
        self.answered
    }

    /// A memo that never answers.
    pub(super) fn off() -> Self {
        Memo {
            off: true,
            ..Memo::default()
        }
    }

    fn turn_off(&mut self) {
        *self = Memo {
            answered: self.answered,
            ..Memo::off()
        };
    }
}

/// Whether `key` (a value followed by zeros, longer than `v`) holds `v`, given equal lengths:
/// a word at a time, where a call to memcmp per cell cost more than the comparison.
#[inline]
fn same(key: &[u8], v: &[u8]) -> bool {
    let mut words = v.chunks_exact(8);
    let mut kept = key.chunks_exact(8);
    for (a, b) in (&mut words).zip(&mut kept) {
        if word(a) != word(b) {
            return false;
        }
    }
    let rest = words.remainder();
    rest.is_empty() || kept.next().is_some_and(|b| word(rest) == word(b))
}

/// Up to eight bytes as a little-endian word, zero-padded.
#[inline]
fn word(b: &[u8]) -> u64 {
    match <[u8; 8]>::try_from(b) {
        Ok(w) => u64::from_le_bytes(w),
        Err(_) => b.iter().rev().fold(0u64, |w, &x| (w << 8) | u64::from(x)),
    }
}

/// A cheap hash of the value's length, first and last eight bytes: only where an entry lives
/// depends on it (the key comparison is exact), so values that share it only cost hits.
#[inline]
fn slot_hash(v: &[u8]) -> u64 {
    const P: u64 = 0x9E37_79B9_7F4A_7C15;
    let n = v.len();
    let (a, b) = if n >= 8 {
        (word(&v[..8]), word(&v[n - 8..]))
    } else {
        (word(v), 0)
    };
    let m = u128::from(a ^ P) * u128::from(b ^ (n as u64).wrapping_mul(P) ^ 0x2545_F491_4F6C_DD1D);
    let h = (m as u64) ^ ((m >> 64) as u64);
    h ^ (h >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A verdict that is a function of the value, so a hit can be checked against it.
    fn verdict(v: &[u8]) -> Verdict {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let n = BuildHasherDefault::<DefaultHasher>::default().hash_one(v);
        Verdict {
            failed: n,
            phi: (n % 3 == 0).then_some([n as u8; crate::phi::DETECTORS]),
        }
    }

    /// Against recomputing every verdict: whatever collides or is evicted, a hit is the
    /// verdict of exactly that value, and values that never repeat turn the memo off.
    #[test]
    fn a_hit_is_always_the_values_own_verdict() {
        let mut memo = Memo::default();
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut hits = 0;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // 3,000 values: short ones that are prefixes of others, dates, and values
            // longer than any key the memo keeps.
            let n = state % 3000;
            let v = match n % 5 {
                0 => format!("{}", n / 5),
                1 => format!("{}{}", n / 5, "x".repeat((n % 90) as usize)),
                _ => format!("2024-{:02}-{:02}-{n}", n % 12, n % 28),
            };
            match memo.get(v.as_bytes()) {
                Some(got) => {
                    assert_eq!(got, verdict(v.as_bytes()), "{v}");
                    hits += 1;
                }
                None => memo.put(v.as_bytes(), verdict(v.as_bytes())),
            }
        }
        assert!(memo.on());
        assert!(hits > 100_000, "{hits} hits");
        let mut unique = Memo::default();
        for n in 0..100_000u64 {
            let v = format!("P{n:08}");
            assert_eq!(unique.get(v.as_bytes()), None);
            unique.put(v.as_bytes(), verdict(v.as_bytes()));
        }
        assert!(!unique.on());
        assert!(unique.keys.is_empty());
    }
}
