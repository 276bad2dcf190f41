//! The `unique` rule's set of value hashes: open addressing with linear probing in one array
//! of `u64`. A lookup in a table of a million values misses the cache; hashbrown's layout
//! (control bytes apart from the entries) missed it twice per value and cost about a sixth of
//! the validator's time on the benchmark, this costs one miss.

/// Distinct 64-bit keys (already keyed hashes, so their low bits are uniform).
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// Zero marks an empty slot; the key 0 itself is kept in `zero`.
    slots: Vec<u64>,
    len: usize,
    zero: bool,
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
        self.len + usize::from(self.zero)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

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
