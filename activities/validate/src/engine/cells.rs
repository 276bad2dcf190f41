//! One cell through its column's checks: null handling, the checks that keep state (`unique`,
//! `completeness`, key collection), then the checks that depend on the value alone (typed
//! parsing computed once, the value rules, the PHI scan), whose verdict a column's memo keeps.

use super::batch::Batch;
use super::memo::Verdict;
use super::plan::{CellCheck, ColPlan, Cond, State};
use super::seen::Found;
use super::slot::Slot;
use crate::contract::ColumnType;
use crate::phi::{DETECTORS, Scanner};

/// Parsed form of a non-null cell, computed once per cell for every check that needs it.
struct Typed {
    ok: bool,
    number: Option<f64>,
    time: Option<i64>,
}

impl State<'_> {
    #[inline]
    pub(super) fn check_cell(&mut self, c: usize, v: Option<&[u8]>, row: u64) {
        self.check_cell_hashed(c, v, row, None);
    }

    /// `check_cell`, given the value's hash for `unique` when the caller computed it.
    #[inline]
    pub(super) fn check_cell_hashed(
        &mut self,
        c: usize,
        v: Option<&[u8]>,
        row: u64,
        hash: Option<u64>,
    ) {
        let k = self.k;
        let plan = &mut self.cols[c];
        let v = match v {
            Some(v) if !v.is_empty() && !self.null_values.iter().any(|n| n == v) => v,
            _ => {
                for (check, s, when) in &plan.checks {
                    if when.is_some_and(|w| !self.conds[w].holds) {
                        continue;
                    }
                    if matches!(
                        check,
                        CellCheck::Required | CellCheck::NotNull | CellCheck::NotBlank
                    ) {
                        self.slots[*s].hit(row, k);
                    }
                }
                return;
            }
        };
        if let Some(i) = plan.collect {
            self.collected[i].add(v);
        }
        if let Some(i) = plan.reference {
            self.probes[i].add(v, row);
        }
        if !plan.tallies.is_empty() {
            tally(plan, self.seed, v, hash, row, &mut self.slots, k);
        }
        self.check_value(c, v, row, None);
    }

    /// A non-null cell of a column whose only work is its memo's, which `looked` it up already.
    #[inline]
    pub(super) fn check_looked_up(
        &mut self,
        c: usize,
        v: &[u8],
        row: u64,
        looked: Option<Verdict>,
    ) {
        self.check_value(c, v, row, Some(looked));
    }

    /// The value-only checks of a non-null cell, from the memo where it can answer; `looked`
    /// is the memo's answer when the caller asked it already.
    #[inline]
    fn check_value(&mut self, c: usize, v: &[u8], row: u64, looked: Option<Option<Verdict>>) {
        let k = self.k;
        let plan = &mut self.cols[c];
        let scanner = plan.phi.map(|_| self.scanners[plan.scanner]);
        let phi = if plan.memo.on() {
            let verdict = match looked.unwrap_or_else(|| plan.memo.get(v)) {
                Some(verdict) => verdict,
                None => {
                    let mut failed = 0u64;
                    let (phi, _) = judge(plan, scanner, v, None, |j| failed |= 1 << j);
                    let verdict = Verdict { failed, phi };
                    plan.memo
                        .count_scanned(|| scanner.is_some_and(|s| s.reads_patterns(v)));
                    plan.memo.put(v, verdict);
                    verdict
                }
            };
            let mut failed = verdict.failed;
            while failed != 0 {
                let j = failed.trailing_zeros() as usize;
                failed &= failed - 1;
                self.slots[plan.checks[j].1].hit(row, k);
            }
            verdict.phi
        } else {
            let slots = &mut self.slots;
            let checks = &plan.checks;
            let (phi, typed) = judge(plan, scanner, v, Some(&self.conds), |j| {
                slots[checks[j].1].hit(row, k);
            });
            if let Some(i) = plan.row_value
                && typed.ok
            {
                self.row_values[i] = typed.time.map(|t| t as f64).or(typed.number);
            }
            phi
        };
        if let (Some(counts), Some(s)) = (phi, plan.phi) {
            for (total, n) in plan.phi_hits.iter_mut().zip(counts) {
                *total += u64::from(n);
            }
            self.slots[s].hit(row, k);
        }
    }
}

impl State<'_> {
    /// Whether column `c`'s cells need none of the per-cell machinery around its checks: no
    /// memo, no keys or references to collect, no PHI scan of a value that could reach one
    /// (a text value past the scan's prefilter, or a typed value that does not parse: those
    /// take the full path), no null spellings. Such a column (an id with `required` and `unique`, a timestamp, an
    /// amount) is checked by [`check_plain_run`](Self::check_plain_run), which does only that.
    pub(super) fn plain(&self, c: usize) -> bool {
        #[cfg(test)]
        if self.no_plain {
            return false;
        }
        let plan = &self.cols[c];
        !plan.memo.on()
            && plan.collect.is_none()
            && plan.reference.is_none()
            && plan.row_value.is_none()
            && self.null_values.is_empty()
            && self.conds.is_empty()
    }

    /// The cell checks of [`plain`](Self::plain) column `c` (field `i` of each record) in
    /// `batch` from record `from` on, what `check_cell_hashed` would do in the same order,
    /// with the column's plan and the slots borrowed once for the run rather than looked up
    /// per cell. Stops at the first record that needs the full path (a missing or empty
    /// field, a scanned column's typed value that does not parse, or its text value that the
    /// scan's prefilter lets through) and returns its index, or the batch's length. `hashed`: `hashes` holds each record's value hash for `unique`.
    pub(super) fn check_plain_run(
        &mut self,
        batch: &Batch,
        c: usize,
        i: usize,
        from: usize,
        hashed: bool,
    ) -> usize {
        let State {
            cols,
            slots,
            seed,
            k,
            hashes,
            scanners,
            ..
        } = self;
        let (seed, k) = (*seed, *k);
        let plan = &mut cols[c];
        let scanned = plan.phi.is_some();
        // The bench's `zip3` (three digits, a thousand values) took 16 ns a value through the
        // full path, for a prefilter that never lets one through.
        let text_scanner = plan
            .phi
            .filter(|_| plan.kind == ColumnType::String)
            .map(|_| scanners[plan.scanner]);
        let tallied = !plan.tallies.is_empty();
        for (n, r) in batch.recs().iter().enumerate().skip(from) {
            let Some(v) = batch.field(r, i).filter(|v| !v.is_empty()) else {
                return n;
            };
            if text_scanner.is_some_and(|s| s.reads_patterns(v)) {
                return n;
            }
            let typed = typed(plan, v);
            if !typed.ok && scanned {
                return n;
            }
            if tallied {
                let hash = if hashed { hashes.get(n).copied() } else { None };
                tally(plan, seed, v, hash, r.row, slots, k);
            }
            let checks = &plan.checks;
            value_checks(plan, v, &typed, None, |j| slots[checks[j].1].hit(r.row, k));
        }
        batch.recs().len()
    }
}

/// The checks that keep state across values: `unique` and `completeness`.
#[inline]
pub(super) fn tally(
    plan: &mut ColPlan,
    seed: u64,
    v: &[u8],
    hash: Option<u64>,
    row: u64,
    slots: &mut [Slot],
    k: usize,
) {
    for &j in &plan.tallies {
        let (check, s, _) = &mut plan.checks[j];
        match check {
            CellCheck::Unique {
                seen,
                max,
                saturated,
            } => match seen.check_value(v, || hash.unwrap_or_else(|| hash_apart(seed, v)), *max) {
                Found::Again => slots[*s].hit(row, k),
                Found::Added => {}
                Found::Full => *saturated = true,
            },
            CellCheck::Completeness {
                present, last_row, ..
            } if *last_row != row => {
                *last_row = row;
                *present += 1;
            }
            _ => {}
        }
    }
}

/// [`hash_value`] kept out of line for [`tally`]: inlined, its set-up was hoisted to the top
/// of the tally and paid for every value (about sixty instructions), though ascending ids,
/// counted as a run, never need a hash.
#[inline(never)]
fn hash_apart(seed: u64, v: &[u8]) -> u64 {
    hash_value(seed, v)
}

/// The checks of a non-null value that depend on the value alone: calls `failed(j)` for each
/// check `j` of the column that fails (those whose `when` holds, when `conds` are given), and
/// returns the PHI scan's matches per detector when it found any, with the parsed value.
#[inline]
fn judge(
    plan: &ColPlan,
    scanner: Option<&Scanner>,
    v: &[u8],
    conds: Option<&[Cond]>,
    failed: impl FnMut(usize),
) -> (Option<[u8; DETECTORS]>, Typed) {
    let typed = typed(plan, v);
    value_checks(plan, v, &typed, conds, failed);
    // A value that parsed as the declared non-string type cannot be a free-text identifier.
    let phi = scanner
        .filter(|_| !(plan.kind != ColumnType::String && typed.ok))
        .and_then(|scanner| {
            let mut hits = [0u64; DETECTORS];
            scanner
                .scan(v, plan.kind.is_temporal(), &mut hits)
                .then(|| hits.map(|n| u8::try_from(n).unwrap_or(u8::MAX)))
        });
    (phi, typed)
}

/// The value as the column's type reads it, once for every check that needs it.
#[inline]
fn typed(plan: &ColPlan, v: &[u8]) -> Typed {
    if plan.kind == ColumnType::String {
        let number = if plan.needs_number {
            parse_f64(v)
        } else {
            None
        };
        Typed {
            ok: true,
            number,
            time: None,
        }
    } else {
        parse_typed(plan, v)
    }
}

/// [`judge`]'s checks of the value, without the PHI scan.
#[inline]
fn value_checks(
    plan: &ColPlan,
    v: &[u8],
    typed: &Typed,
    conds: Option<&[Cond]>,
    mut failed: impl FnMut(usize),
) {
    for (j, (check, _, when)) in plan.checks.iter().enumerate() {
        if let (Some(w), Some(conds)) = (when, conds)
            && !conds[*w].holds
        {
            continue;
        }
        let fails = match check {
            CellCheck::Required | CellCheck::NotBlank => v.iter().all(u8::is_ascii_whitespace),
            CellCheck::NotNull | CellCheck::Unique { .. } | CellCheck::Completeness { .. } => false,
            CellCheck::Type => !typed.ok,
            CellCheck::Regex(re) => !re.is_match(v),
            CellCheck::Allowed { set, fold } => {
                if *fold {
                    !set.iter().any(|a| a.eq_ignore_ascii_case(v))
                } else {
                    !set.iter().any(|a| a == v)
                }
            }
            CellCheck::Range(min, max) => match typed.number {
                Some(n) => min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m),
                // A bad number in a typed column is the type rule's failure, not this one's.
                None => plan.kind == ColumnType::String,
            },
            CellCheck::DateRange(min, max) => typed
                .time
                .is_some_and(|t| min.is_some_and(|m| t < m) || max.is_some_and(|m| t > m)),
            CellCheck::MaxLength(max) => {
                let chars = v.iter().filter(|&&b| (b as i8) >= -0x40).count() as u64;
                chars > *max
            }
        };
        if fails {
            failed(j);
        }
    }
}

fn parse_typed(plan: &ColPlan, v: &[u8]) -> Typed {
    let needs_number = plan.needs_number;
    match plan.kind {
        ColumnType::Integer => {
            let n = parse_i64(v);
            Typed {
                ok: n.is_some(),
                number: n.filter(|_| needs_number).map(|n| n as f64),
                time: None,
            }
        }
        ColumnType::Decimal => {
            let ok = is_decimal(v);
            Typed {
                ok,
                number: (ok && needs_number).then(|| parse_f64(v)).flatten(),
                time: None,
            }
        }
        ColumnType::Boolean => Typed {
            ok: is_bool(v),
            number: None,
            time: None,
        },
        ColumnType::Date
        | ColumnType::Timestamp
        | ColumnType::FhirDate
        | ColumnType::FhirDateTime => {
            let date = plan.date.as_ref();
            if plan.needs_time {
                let time = date.and_then(|f| f.eval(v));
                Typed {
                    ok: time.is_some(),
                    number: None,
                    time,
                }
            } else {
                Typed {
                    ok: date.is_some_and(|f| f.is_valid(v)),
                    number: None,
                    time: None,
                }
            }
        }
        ColumnType::String => Typed {
            ok: true,
            number: None,
            time: None,
        },
    }
}

/// Sign and digits that fit in an i64; parsed by hand because the float parser it replaces
/// took a twentieth of the validator's time on integer range checks.
pub(crate) fn parse_i64(v: &[u8]) -> Option<i64> {
    if let Some(n) = crate::swar::digits(v) {
        return Some(n as i64);
    }
    let (negative, digits) = match v.first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: i64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_sub(i64::from(d))?;
    }
    if negative { Some(n) } else { n.checked_neg() }
}

pub(crate) fn is_decimal(v: &[u8]) -> bool {
    let body = match v.first() {
        Some(b'+' | b'-') => &v[1..],
        _ => v,
    };
    let mut dot = false;
    let mut digits = 0;
    for &b in body {
        match b {
            b'0'..=b'9' => digits += 1,
            b'.' if !dot => dot = true,
            _ => return false,
        }
    }
    digits > 0
}

pub(crate) fn is_bool(v: &[u8]) -> bool {
    const WORDS: [&[u8]; 10] = [
        b"true", b"false", b"t", b"f", b"yes", b"no", b"y", b"n", b"1", b"0",
    ];
    v.len() <= 5 && WORDS.iter().any(|w| w.eq_ignore_ascii_case(v))
}

fn parse_f64(v: &[u8]) -> Option<f64> {
    std::str::from_utf8(v)
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
}

/// A keyed 64-bit hash of a cell for the uniqueness set: 8 bytes per step with a
/// multiply-fold mix (the folded-multiply construction of wyhash/foldhash). SipHash cost a
/// tenth of the validator's time; two distinct values collide with probability about 2^-64,
/// which would report one false duplicate.
pub(super) fn hash_value(seed: u64, v: &[u8]) -> u64 {
    const P: u64 = 0x9E37_79B9_7F4A_7C15;
    let fold = |a: u64, b: u64| {
        let m = u128::from(a) * u128::from(b);
        (m as u64) ^ ((m >> 64) as u64)
    };
    let mut h = seed ^ (v.len() as u64).wrapping_mul(P);
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap_or_default());
        h = fold(h ^ w, P ^ seed.rotate_left(17));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        // The tail as a little-endian word, zero-padded; a byte loop, as a copy into a
        // buffer became a call to memcpy for every short value.
        let w = rest
            .iter()
            .rev()
            .fold(0u64, |w, &b| (w << 8) | u64::from(b));
        h = fold(h ^ w, P ^ seed.rotate_left(29));
    }
    fold(h, P)
}

#[cfg(test)]
mod tests {
    use super::hash_value;

    /// The hash as first written (the tail copied into a buffer): index runs in a lake store
    /// these values, so a faster implementation must give the same ones.
    fn reference(seed: u64, v: &[u8]) -> u64 {
        const P: u64 = 0x9E37_79B9_7F4A_7C15;
        let fold = |a: u64, b: u64| {
            let m = u128::from(a) * u128::from(b);
            (m as u64) ^ ((m >> 64) as u64)
        };
        let mut h = seed ^ (v.len() as u64).wrapping_mul(P);
        let mut chunks = v.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().unwrap());
            h = fold(h ^ w, P ^ seed.rotate_left(17));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            h = fold(h ^ u64::from_le_bytes(buf), P ^ seed.rotate_left(29));
        }
        fold(h, P)
    }

    #[test]
    fn the_value_hash_is_unchanged() {
        let bytes: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) ^ 0xA5).collect();
        for seed in [0, 1, 0x6c61_6b65_6761_7465, u64::MAX] {
            for len in 0..bytes.len() {
                assert_eq!(
                    hash_value(seed, &bytes[..len]),
                    reference(seed, &bytes[..len])
                );
            }
        }
        assert_eq!(
            crate::key_hash(b"P00000042"),
            reference(0x6c61_6b65_6761_7465, b"P00000042")
        );
    }
}
