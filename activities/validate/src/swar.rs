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

/// The one to eight bytes of `v` in a word, first byte lowest, the bytes past them zero: two
/// overlapping four-byte loads, or three single bytes for a value shorter than four, instead
/// of a copy of variable length.
#[inline(always)]
pub(crate) fn low_bytes(v: &[u8]) -> Option<u64> {
    let n = v.len();
    let le32 = |b: &[u8]| {
        b.first_chunk::<4>()
            .map_or(0, |w| u64::from(u32::from_le_bytes(*w)))
    };
    match n {
        4..=8 => Some(le32(v) | le32(&v[n - 4..]) << (8 * (n - 4))),
        1..4 => {
            let b = |i: usize| u64::from(v[i]) << (8 * i);
            Some(b(0) | b(n / 2) | b(n - 1))
        }
        _ => None,
    }
}

/// The number `v` writes when it is one to eight ASCII digits (leading zeros allowed). Most
/// integers in a file are this short, and a word at a time takes a few multiplies instead of
/// a checked multiply and add per digit.
#[inline]
pub(crate) fn digits(v: &[u8]) -> Option<u64> {
    let n = v.len();
    let x = low_bytes(v)? ^ (ONES * b'0' as u64);
    let real = u64::MAX >> (8 * (8 - n));
    let over_nine = ((x & (ONES * 0x0F)) + ONES * 0x06) & (ONES * 0x10);
    if (x & (ONES * 0xF0) | over_nine) & real != 0 {
        return None;
    }
    // The digits moved to the top bytes, the first (most significant) in the lowest of them,
    // so the bytes below stand for leading zeros; then pairs, fours and the eight combined.
    let d = x << (8 * (8 - n));
    let d = (d.wrapping_mul(10) + (d >> 8)) & 0x00FF_00FF_00FF_00FF;
    let d = (d.wrapping_mul(100) + (d >> 16)) & 0x0000_FFFF_0000_FFFF;
    Some((d.wrapping_mul(10_000) + (d >> 32)) & 0xFFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{digits, low_bytes};

    fn naive(v: &[u8]) -> Option<u64> {
        if v.is_empty() || v.len() > 8 || !v.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(v).ok()?.parse().ok()
    }

    #[test]
    fn every_length_and_every_byte_in_every_place() {
        for n in 0..=9 {
            for place in 0..n.max(1) {
                for b in 0..=255u8 {
                    let mut v: Vec<u8> = b"987654321"[..n].to_vec();
                    if let Some(p) = v.get_mut(place) {
                        *p = b;
                    }
                    assert_eq!(digits(&v), naive(&v), "{v:?}");
                }
            }
        }
        assert_eq!(digits(b"00000000"), Some(0));
        assert_eq!(digits(b"99999999"), Some(99_999_999));
        assert_eq!(digits(b"0007"), Some(7));
    }

    proptest! {
        #[test]
        fn digits_read_what_str_parse_reads(v in proptest::collection::vec(
            prop_oneof![8 => b'0'..=b'9', 1 => any::<u8>()], 0..10)) {
            prop_assert_eq!(digits(&v), naive(&v));
        }

        #[test]
        fn low_bytes_are_the_bytes(v in proptest::collection::vec(any::<u8>(), 0..10)) {
            let mut word = [0u8; 8];
            let expected = (1..=8).contains(&v.len()).then(|| {
                word[..v.len()].copy_from_slice(&v);
                u64::from_le_bytes(word)
            });
            prop_assert_eq!(low_bytes(&v), expected);
        }
    }
}
