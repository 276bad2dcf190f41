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

/// What [`Memo::look`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Looked {
    /// Kept, and nothing failed or was found: the end of the value's checks.
    Clean,
    Kept(Verdict),
    Missed,
}

/// Values looked at before the layout is chosen, and in each window after that.
const SAMPLE: u32 = 256;
const WINDOW: u32 = 16 * 1024;
/// Entries per column, two per set: 512 KiB, room for ten thousand values (the dates of three
/// decades, as text). At 8,192 entries a date column of 26 years (9,500 values) missed 30 % of
/// its lookups, each a full check; only the entries a column uses are ever in the cache. A
/// typed column drops a table this large (see [`Forget`]).
const ENTRIES: usize = 16 * 1024;
/// Bytes kept of a value past its first and last eight: values up to 64 bytes are kept.
const MAX_MIDDLE: usize = 48;

/// A value as two words and its length: for a value of up to 16 bytes, overlapping reads from
/// both ends cover every byte, so the triple is the value; a longer one keeps its middle apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Key {
    head: u64,
    tail: u64,
    /// The value's length plus one; 0 for an empty entry.
    len: u8,
}

impl Key {
    #[inline]
    fn of(v: &[u8]) -> Key {
        let n = v.len();
        let (head, tail) = if n >= 8 {
            (le64(&v[..8]), le64(&v[n - 8..]))
        } else if n >= 4 {
            (le32(&v[..4]), le32(&v[n - 4..]))
        } else if n > 0 {
            let b = |i: usize| u64::from(v[i]);
            (b(0) | b(n / 2) << 8 | b(n - 1) << 16, 0)
        } else {
            (0, 0)
        };
        // Callers keep values shorter than 16 + MAX_MIDDLE < 255 bytes.
        Key {
            head,
            tail,
            len: (n + 1) as u8,
        }
    }

    /// Which set the value lives in: a multiply-fold of the key (the comparison is exact, so
    /// values that share a set only cost hits).
    #[inline]
    fn set(&self, sets: usize) -> usize {
        let m = u128::from(self.head ^ 0x9E37_79B9_7F4A_7C15)
            * u128::from(self.tail ^ u64::from(self.len).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let h = (m as u64) ^ ((m >> 64) as u64);
        (h ^ (h >> 29)) as usize & (sets - 1)
    }
}

/// One remembered value in 32 bytes, two to a cache line.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    head: u64,
    tail: u64,
    failed: u64,
    /// The key's `len` in the top byte; below it the verdict's PHI counts, one byte per
    /// detector, all zero when the scan found nothing. Words, as comparing a `[u8; 7]` was a
    /// call.
    meta: u64,
}

const PHI_BITS: u64 = (1 << 56) - 1;

impl Entry {
    #[inline]
    fn holds(&self, key: &Key) -> bool {
        (self.head ^ key.head) | (self.tail ^ key.tail) | ((self.meta >> 56) ^ u64::from(key.len))
            == 0
    }

    /// Nothing failed and the PHI scan found nothing.
    #[inline]
    fn clean(&self) -> bool {
        self.failed | (self.meta & PHI_BITS) == 0
    }

    #[inline]
    fn verdict(&self) -> Verdict {
        let phi = self.meta & PHI_BITS;
        Verdict {
            failed: self.failed,
            phi: (phi != 0).then(|| {
                let bytes = phi.to_le_bytes();
                std::array::from_fn(|d| bytes[d])
            }),
        }
    }
}

/// Two ways: a new value takes the first, pushing the older one to the second.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(64))]
struct Set([Entry; 2]);

/// Entries of the table of short clean values (see `Memo::short`).
const SHORT: usize = 256;

/// A two-way set-associative table from value to verdict, one per column.
#[derive(Debug, Default)]
pub(super) struct Memo {
    sets: Vec<Set>,
    /// Values of up to seven bytes whose verdict is clean, each as one word (its bytes and,
    /// in the top byte, its length; 0 for none), direct-mapped: a gender, a status, an age
    /// or a code is found with one compare instead of the two-way table's key, set and two
    /// entries. Asked only by [`is_clean`](Self::is_clean).
    short: Vec<u64>,
    /// Bytes 8.. of values longer than 16, per entry (set, way), zero-padded to `middle`.
    middles: Vec<u8>,
    /// Middle bytes kept per entry: values longer than 16 + this are never kept.
    middle: usize,
    longest: usize,
    lookups: u32,
    hits: u32,
    /// A window has passed since the layout.
    filled: bool,
    /// Sets holding a value.
    used: u32,
    /// Lookups answered since the start, for tests.
    answered: u64,
    off: bool,
    /// Whether to turn off at a window's end once the table outgrew the first-level cache.
    forget: Forget,
}

/// When a memo whose table outgrew the first-level cache turns off at a window's end.
#[derive(Debug, Default, Clone, Copy)]
enum Forget {
    /// Never: the column's checks cost more than a lookup that misses the cache.
    #[default]
    Never,
    /// Always: its checks cost no more than such a lookup (a typed column without a regex).
    Always,
    /// Unless at least one in eight of the values kept since the layout had to go through the
    /// PHI scan's patterns (a text column without a regex): `kept`, `scanned`.
    UnlessScanned(u32, u32),
}

impl Memo {
    /// Whether `get` may ever answer: false once the column proved not to repeat its values.
    #[inline]
    pub(super) fn on(&self) -> bool {
        !self.off
    }

    /// The verdict kept for `v`, counting the lookup; a miss is to be answered with `put`.
    #[inline(always)]
    pub(super) fn get(&mut self, v: &[u8]) -> Option<Verdict> {
        match self.look(v) {
            Looked::Clean => Some(Verdict::default()),
            Looked::Kept(verdict) => Some(verdict),
            Looked::Missed => None,
        }
    }

    /// [`get`](Self::get), with the common answer (a clean verdict) told apart in one test
    /// of the entry, before any verdict is built.
    #[inline(always)]
    pub(super) fn look(&mut self, v: &[u8]) -> Looked {
        // The common case inline (it runs for most cells); sampling, the end of a window and
        // a memo that is off out of line.
        if self.sets.is_empty() || self.lookups + 1 >= WINDOW {
            return self.get_rarely(v);
        }
        self.lookups += 1;
        self.find(v)
    }

    /// How many lookups may be answered by [`is_clean`](Self::is_clean) and counted with
    /// [`count_clean`](Self::count_clean) before `look` must run (the table is being laid out,
    /// a window ends, or the memo is off).
    #[inline]
    pub(super) fn clean_budget(&self) -> u32 {
        if self.sets.is_empty() {
            return 0;
        }
        (WINDOW - 1).saturating_sub(self.lookups)
    }

    /// Whether `v` is kept with a clean verdict, without counting the lookup: for a run of
    /// values whose clean hits are counted together (see `check_remembered`). Only within
    /// [`clean_budget`](Self::clean_budget).
    #[inline(always)]
    pub(super) fn is_clean(&mut self, v: &[u8]) -> bool {
        if let Some(word) = short_word(v)
            && self.short[short_slot(word)] == word
        {
            return true;
        }
        let clean = self.entry_of(v).is_some_and(|entry| entry.clean());
        if clean {
            self.remember_short(v);
        }
        clean
    }

    /// Counts `n` lookups that [`is_clean`](Self::is_clean) answered.
    #[inline]
    pub(super) fn count_clean(&mut self, n: u32) {
        self.lookups += n;
        self.hits += n;
        self.answered += u64::from(n);
    }

    /// Reads the set where `v` would be, only to bring it into the cache (see
    /// `check_batch_column`); 0 when the table is not laid out or `v` is not kept.
    #[inline(always)]
    pub(super) fn touch(&self, v: &[u8]) -> u64 {
        if self.sets.is_empty() || !self.keeps(v) {
            return 0;
        }
        self.sets[Key::of(v).set(self.sets.len())].0[0].head
    }

    /// Whether the table holds more than a core's first-level cache does, so that a batch's
    /// lookups miss it unless its sets are read ahead.
    pub(super) fn large(&self) -> bool {
        self.used > 512
    }

    #[cold]
    #[inline(never)]
    fn get_rarely(&mut self, v: &[u8]) -> Looked {
        if self.off {
            return Looked::Missed;
        }
        self.lookups += 1;
        if self.sets.is_empty() {
            self.longest = self.longest.max(v.len());
            if self.lookups >= SAMPLE {
                self.lay_out();
            }
            return Looked::Missed;
        }
        // Worth keeping while at least half the values of a window are repeats. The first
        // window after the layout fills the table (ten thousand dates take most of it), so
        // its hits are not judged; its size is.
        let cheap = match self.forget {
            Forget::Never => false,
            Forget::Always => true,
            Forget::UnlessScanned(kept, scanned) => scanned.saturating_mul(8) <= kept,
        };
        if (self.filled && self.hits * 2 < self.lookups) || (cheap && self.large()) {
            self.turn_off();
            return Looked::Missed;
        }
        self.filled = true;
        self.lookups = 0;
        self.hits = 0;
        self.find(v)
    }

    #[inline(always)]
    fn find(&mut self, v: &[u8]) -> Looked {
        let Some(entry) = self.entry_of(v) else {
            return Looked::Missed;
        };
        self.hits += 1;
        self.answered += 1;
        if entry.clean() {
            self.remember_short(v);
            Looked::Clean
        } else {
            Looked::Kept(entry.verdict())
        }
    }

    /// The entry that holds `v`, if one does; the lookup `find` and `is_clean` share.
    #[inline(always)]
    fn entry_of(&self, v: &[u8]) -> Option<Entry> {
        if !self.keeps(v) {
            return None;
        }
        let key = Key::of(v);
        let set = key.set(self.sets.len());
        let [first, second] = &self.sets[set].0;
        // Both ways compared before one branch: which way holds a value is not predictable.
        let (in_first, in_second) = (first.holds(&key), second.holds(&key));
        if !(in_first | in_second) {
            return None;
        }
        let way = usize::from(!in_first);
        if v.len() > 16 && !self.same_middle(2 * set + way, v) {
            return None;
        }
        Some(self.sets[set].0[way])
    }

    /// Keeps the verdict of `v` (a value `get` missed) in the first way of its set.
    #[inline]
    pub(super) fn put(&mut self, v: &[u8], verdict: Verdict) {
        if self.sets.is_empty() || !self.keeps(v) {
            return;
        }
        if let Forget::UnlessScanned(kept, _) = &mut self.forget {
            *kept += 1;
        }
        let key = Key::of(v);
        let set = key.set(self.sets.len());
        let ways = &mut self.sets[set].0;
        if ways[0].meta == 0 {
            self.used += 1;
        }
        ways[1] = ways[0];
        let mut phi = [0u8; 8];
        phi[..crate::phi::DETECTORS].copy_from_slice(&verdict.phi.unwrap_or_default());
        ways[0] = Entry {
            head: key.head,
            tail: key.tail,
            failed: verdict.failed,
            meta: u64::from(key.len) << 56 | (u64::from_le_bytes(phi) & PHI_BITS),
        };
        if verdict == Verdict::default() {
            self.remember_short(v);
        }
        let m = self.middle;
        if m > 0 {
            let first = 2 * set * m;
            self.middles.copy_within(first..first + m, first + m);
            let kept = &mut self.middles[first..first + m];
            // Zeros after the middle, which `same_middle` compares a word at a time.
            kept.fill(0);
            if v.len() > 16 {
                kept[..v.len() - 16].copy_from_slice(&v[8..v.len() - 8]);
            }
        }
    }

    /// Keeps `v`, whose verdict is clean, in the table of short values when it is short.
    #[inline]
    fn remember_short(&mut self, v: &[u8]) {
        if let Some(word) = short_word(v) {
            self.short[short_slot(word)] = word;
        }
    }

    #[inline]
    fn keeps(&self, v: &[u8]) -> bool {
        v.len() <= 16 + self.middle
    }

    /// Whether entry `i` (set * 2 + way) holds the middle of `v` (longer than 16 bytes, with
    /// an equal key).
    #[inline]
    fn same_middle(&self, i: usize, v: &[u8]) -> bool {
        let m = self.middle;
        same(&self.middles[i * m..(i + 1) * m], &v[8..v.len() - 8])
    }

    /// Sizes middles from the sample's longest value: a column of short codes keeps none.
    fn lay_out(&mut self) {
        self.middle = self
            .longest
            .saturating_sub(16)
            .next_multiple_of(8)
            .min(MAX_MIDDLE);
        self.sets = vec![Set::default(); ENTRIES / 2];
        self.short = vec![0; SHORT];
        self.middles = vec![0; ENTRIES * self.middle];
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

    /// See [`Forget::Always`].
    pub(super) fn forget_when_large(&mut self) {
        self.forget = Forget::Always;
    }

    /// Like [`forget_when_large`](Self::forget_when_large), unless at least one in eight of
    /// the values kept had to go through the PHI scan's patterns ([`scanned`](Self::scanned)):
    /// past its prefilter a scan costs far more than a lookup that misses the cache.
    pub(super) fn forget_unless_scanned(&mut self) {
        self.forget = Forget::UnlessScanned(0, 0);
    }

    /// Counts the value about to be kept as one that went through the PHI scan's patterns
    /// when `scanned` says so; asked only of a memo that counts them.
    pub(super) fn count_scanned(&mut self, scanned: impl FnOnce() -> bool) {
        if let Forget::UnlessScanned(_, n) = &mut self.forget
            && scanned()
        {
            *n += 1;
        }
    }

    fn turn_off(&mut self) {
        *self = Memo {
            answered: self.answered,
            ..Memo::off()
        };
    }
}

/// A value of one to seven bytes as one word: its bytes ([`low_bytes`]) and its length in the
/// top byte (never 0).
///
/// [`low_bytes`]: crate::swar::low_bytes
#[inline(always)]
fn short_word(v: &[u8]) -> Option<u64> {
    let n = v.len();
    if n >= 8 {
        return None;
    }
    Some(crate::swar::low_bytes(v)? | (n as u64) << 56)
}

#[inline(always)]
fn short_slot(word: u64) -> usize {
    (word.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize & (SHORT - 1)
}

/// Whether `kept` (a middle followed by zeros, at least as long as `v`) holds `v`, given
/// equal lengths: a word at a time, where a call to memcmp per cell cost more than comparing.
#[inline]
fn same(kept: &[u8], v: &[u8]) -> bool {
    let mut words = v.chunks_exact(8);
    let mut held = kept.chunks_exact(8);
    for (a, b) in (&mut words).zip(&mut held) {
        if le64(a) != le64(b) {
            return false;
        }
    }
    let rest = words.remainder();
    rest.is_empty()
        || held.next().is_some_and(|b| {
            let padded = rest
                .iter()
                .rev()
                .fold(0u64, |w, &x| (w << 8) | u64::from(x));
            padded == le64(b)
        })
}

#[inline]
fn le64(b: &[u8]) -> u64 {
    b.first_chunk::<8>().map_or(0, |w| u64::from_le_bytes(*w))
}

#[inline]
fn le32(b: &[u8]) -> u64 {
    b.first_chunk::<4>()
        .map_or(0, |w| u64::from(u32::from_le_bytes(*w)))
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
            phi: (n % 3 == 0).then_some([n as u8 | 1; crate::phi::DETECTORS]),
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
        // A clean answer from `is_clean` (the short table or the two ways) is always right:
        // here half the values are clean, among them every length from one byte up, and
        // the short table fills.
        let clean_iff = |v: &[u8]| {
            let n = verdict(v).failed;
            if n.is_multiple_of(2) {
                Verdict::default()
            } else {
                verdict(v)
            }
        };
        let mut memo = Memo::default();
        let mut clean_hits = 0;
        for i in 0..100_000u64 {
            let v = format!("{}", (i * 7919) % 1500).repeat(1 + (i % 5) as usize);
            let mut v = v.as_bytes()[..v.len().min(1 + (i % 11) as usize)].to_vec();
            // A trailing NUL: only the length tells `12` from `12\0` in one word.
            if i % 3 == 0 {
                v.push(0);
            }
            let v = &v[..];
            if memo.clean_budget() > 0 && memo.is_clean(v) {
                assert_eq!(clean_iff(v), Verdict::default(), "{v:?}");
                memo.count_clean(1);
                clean_hits += 1;
            } else if memo.get(v).is_none() {
                memo.put(v, clean_iff(v));
            }
        }
        assert!(clean_hits > 10_000, "{clean_hits} clean hits");
        assert!(memo.short.iter().filter(|&&w| w != 0).count() > SHORT / 2);
        let mut unique = Memo::default();
        for n in 0..100_000u64 {
            let v = format!("P{n:08}");
            assert_eq!(unique.get(v.as_bytes()), None);
            unique.put(v.as_bytes(), verdict(v.as_bytes()));
        }
        assert!(!unique.on());
        assert!(unique.sets.is_empty());
    }

    /// A memo of cheap checks is dropped once it outgrows the first-level cache, however
    /// often its values repeat; with few values, or with costly checks, it stays.
    #[test]
    fn cheap_checks_forget_a_table_beyond_the_first_level_cache() {
        let feed = |memo: &mut Memo, distinct: u64| {
            let mut answered = 0;
            for i in 0..60_000u64 {
                let day = (i * 7919) % distinct;
                let v = format!(
                    "{}-{:02}-{:02}",
                    2000 + day / 372,
                    day / 31 % 12 + 1,
                    day % 31 + 1
                );
                match memo.get(v.as_bytes()) {
                    Some(_) => answered += 1,
                    None => memo.put(v.as_bytes(), Verdict::default()),
                }
            }
            answered
        };
        let mut many = Memo::default();
        many.forget_when_large();
        let answered = feed(&mut many, 9_500);
        assert!(!many.on(), "a table of 9,500 dates");
        assert!(many.sets.is_empty());
        assert!(
            answered < 16 * 1024,
            "{answered} answered after the first window"
        );
        let mut few = Memo::default();
        few.forget_when_large();
        assert!(feed(&mut few, 300) > 50_000);
        assert!(few.on() && !few.large());
        let mut costly = Memo::default();
        let costly_answered = feed(&mut costly, 9_500);
        assert!(costly_answered > 30_000, "{costly_answered}");
        assert!(costly.on() && costly.large());
    }
}
