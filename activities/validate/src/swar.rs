//! Eight bytes at a time in a `u64` (SWAR, safe code): the exact per-byte tests that the CSV
//! splitter and the PHI prefilter share. A result has the high bit of each byte that passes.

/// 0x01 in every byte: `ONES * b` repeats the byte `b`.
pub(crate) const ONES: u64 = 0x0101_0101_0101_0101;
/// The high bit of every byte.
pub(crate) const HIGH: u64 = 0x8080_8080_8080_8080;
/// The low seven bits of every byte.
pub(crate) const LOW7: u64 = !HIGH;

/// The high bit of every byte of `w` equal to the byte repeated in `splat` (`ONES * b`).
/// Exact per byte: the low seven bits are added without a carry leaving the byte, unlike the
/// borrow of the classic `(x - ONES) & !x` test, which also flags the byte above a match.
#[inline(always)]
pub(crate) fn equal(w: u64, splat: u64) -> u64 {
    let x = w ^ splat;
    !(((x & LOW7) + LOW7) | x | LOW7)
}
