//! The `unique` rule's set of values: a run of consecutive integers, and a table of the other
//! values' hashes (open addressing with linear probing in one array of `u64`).
//!
//! A key column usually counts up: an extract ordered by its surrogate key gives 1, 2, 3, ...
//! Such values are counted as a run (its first and last) and never hashed, so the set of a
//! million ids takes two words instead of 16 MiB, and a lookup is a compare instead of a
//! cache miss; with the table, `unique` on the bench's ascending encounter ids cost a sixth of
//! the validator's CPU time. Only integers written canonically join the run (digits, no
//! leading zero, as `5`, not `05` or `+5`), so a value in the run and one in the table are
//! never the same bytes, and the set is exactly the values seen.
//!
//! In the table, a lookup among a million values misses the cache; hashbrown's layout
//! (control bytes apart from the entries) missed it twice per value, this costs one miss.

/// Distinct 64-bit keys (already keyed hashes, so their low bits are uniform).
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// Zero marks an empty slot; the key 0 itself is kept in `zero`.
    slots: Vec<u64>,
    len: usize,
    zero: bool,
    /// Every integer from the first to the last was seen, none of them is in the table.
    run: Option<(u64, u64)>,
    /// The largest canonical integer in the table: the run may grow past its end without
    /// asking the table only below it.
    top: Option<u64>,
}

/// What [`Seen::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    /// Already in the set: a duplicate.
    Again,
    /// New, and added.
    Added,
    /// New, but the set holds `max` keys already: not added.
    Full,
}

impl Seen {
    pub(super) fn len(&self) -> usize {
        let run = self.run.map_or(0, |(first, last)| last - first + 1);
        self.len + usize::from(self.zero) + run as usize
    }

    /// Whether a lookup may miss the cache: the table holds more than a few thousand values.
    pub(super) fn large(&self) -> bool {
        self.slots.len() > 4096
    }

    /// Looks the value `v` up (its keyed hash is `key`, asked only when the table must be)
    /// and adds it when it is new and fewer than `max` values are held.
    #[inline]
    pub(super) fn check_value(&mut self, v: &[u8], key: impl FnOnce() -> u64, max: u64) -> Found {
        let Some(n) = canonical(v) else {
            return self.check(key(), max);
        };
        let below_top = self.top.is_some_and(|top| n <= top);
        match self.run {
            Some((first, last)) if (first..=last).contains(&n) => return Found::Again,
            Some((first, last)) if n == last + 1 && !below_top => {
                if (self.len() as u64) >= max {
                    return Found::Full;
                }
                self.run = Some((first, n));
                return Found::Added;
            }
            None if !below_top => {
                if (self.len() as u64) >= max {
                    return Found::Full;
                }
                self.run = Some((n, n));
                return Found::Added;
            }
            _ => {}
        }
        let found = self.check(key(), max);
        if found == Found::Added {
            self.top = Some(self.top.map_or(n, |top| top.max(n)));
        }
        found
    }

    /// The slot where a lookup of `key` starts, read only to bring it into the cache.
    #[inline]
    pub(super) fn peek(&self, key: u64) -> u64 {
        match self.slots.len() {
            0 => 0,
            n => self.slots[(key as usize) & (n - 1)],
        }
    }

    /// Looks `key` up and adds it when it is new and fewer than `max` keys are held.
    #[inline]
    pub(super) fn check(&mut self, key: u64, max: u64) -> Found {
        if key == 0 {
            if self.zero {
                return Found::Again;
            }
            if (self.len() as u64) >= max {
                return Found::Full;
            }
            self.zero = true;
            return Found::Added;
        }
        if !self.slots.is_empty() {
            let mask = self.slots.len() - 1;
            let mut i = (key as usize) & mask;
            loop {
                match self.slots[i] {
                    0 => break,
                    k if k == key => return Found::Again,
                    _ => i = (i + 1) & mask,
                }
            }
        }
        if (self.len() as u64) >= max {
            return Found::Full;
        }
        // Three quarters full at most, so a probe run stays within a cache line or two.
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        self.put(key);
        self.len += 1;
        Found::Added
    }

    fn put(&mut self, key: u64) {
        let mask = self.slots.len() - 1;
        let mut i = (key as usize) & mask;
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = key;
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(1024);
        let old = std::mem::replace(&mut self.slots, vec![0; size]);
        for key in old.into_iter().filter(|&k| k != 0) {
            self.put(key);
        }
    }
}

/// The integer `v` writes canonically (1 to 19 digits, no leading zero): below 10^19, so
/// the run's end plus one never overflows.
#[inline]
fn canonical(v: &[u8]) -> Option<u64> {
    let (&lead, _) = v.split_first()?;
    if v.len() > 19 || (lead == b'0' && v.len() > 1) {
        return None;
    }
    if v.len() <= 8 {
        return crate::swar::digits(v);
    }
    v.iter().try_fold(0u64, |n, &b| {
        let d = b.wrapping_sub(b'0');
        (d < 10).then(|| n * 10 + u64::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

    /// Values and their membership as a plain set of byte strings says, including ascending
    /// runs with gaps, repeats inside and just past a run, integers the table holds above and
    /// below it, non-canonical spellings of the same numbers, and the bound.
    #[test]
    fn values_agree_with_a_set_of_their_bytes() {
        let hasher = BuildHasherDefault::<DefaultHasher>::default();
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        for max in [0u64, 1, 7, 500, 20_000, u64::MAX] {
            for pattern in 0..4 {
                let mut seen = Seen::default();
                let mut reference: HashSet<Vec<u8>> = HashSet::new();
                let mut next = 1u64;
                for i in 0..20_000u64 {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let v = match (pattern, state % 16) {
                        // Counting up, now and then skipping or repeating.
                        (0, 0) => (next - 1).to_string(),
                        (0, 1) => {
                            next += 3;
                            next.to_string()
                        }
                        (0 | 1, _) if pattern == 0 || i % 3 > 0 => {
                            next += 1;
                            (next - 1).to_string()
                        }
                        // Values the table takes, near and beyond the run.
                        (1, 2) => (next + state % 8).to_string(),
                        (1, _) => (state % (next + 10)).to_string(),
                        (2, 0..=3) => format!("0{}", state % 50),
                        (2, 4) => format!("+{}", state % 50),
                        (2, _) => (state % 60).to_string(),
                        _ => match state % 5 {
                            0 => "18446744073709551615".into(),
                            1 => "9999999999999999999".into(),
                            2 => "0".into(),
                            3 => String::new(),
                            _ => format!("{}x", state % 9),
                        },
                    };
                    let v = v.into_bytes();
                    let expected = if reference.contains(&v) {
                        Found::Again
                    } else if (reference.len() as u64) < max {
                        reference.insert(v.clone());
                        Found::Added
                    } else {
                        Found::Full
                    };
                    let key = || hasher.hash_one(&v) | 1;
                    let what = String::from_utf8_lossy(&v).into_owned();
                    assert_eq!(seen.check_value(&v, key, max), expected, "{what} max {max}");
                    assert_eq!(seen.len(), reference.len(), "{what} max {max}");
                }
            }
        }
    }

    #[test]
    fn agrees_with_a_hash_set_including_zero_and_the_bound() {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for max in [0u64, 1, 5, 3000, u64::MAX] {
            let mut seen = Seen::default();
            let mut reference: HashSet<u64> = HashSet::new();
            for n in 0..20_000u64 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Small keys repeat often; 0 and keys equal modulo the table size collide.
                let key = match n % 4 {
                    0 => state % 5000,
                    1 => (state % 7) << 20,
                    _ => state,
                };
                let expected = if reference.contains(&key) {
                    Found::Again
                } else if (reference.len() as u64) < max {
                    reference.insert(key);
                    Found::Added
                } else {
                    Found::Full
                };
                assert_eq!(seen.check(key, max), expected, "key {key} max {max}");
                assert_eq!(seen.len(), reference.len());
            }
        }
    }
}
