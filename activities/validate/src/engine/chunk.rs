//! Sixteen bytes of a line classified at once, as bit masks (bit `i` for byte `i`): the
//! delimiters, every other byte the splitter must stop at (quote, LF, CR, NUL and the other
//! control bytes), and the bytes that are not ASCII. On x86_64 this is four SSE2 compares
//! (through `safe_arch`, as the workspace forbids `unsafe` and std's intrinsics need it even
//! for SSE2, which every x86_64 has); elsewhere, two SWAR words give the same masks.

/// What [`classify`] found in a chunk; bits past the end of the buffer are clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Classes {
    pub(super) delims: u32,
    /// Quotes and control bytes (a tab delimiter is among them too).
    pub(super) others: u32,
    pub(super) high: u32,
}

/// Bytes classified per call: one SSE2 register.
pub(super) const CHUNK: usize = 16;

/// The chunk of `buf` from `at` (zero-padded past the end) and the mask of its real bytes.
#[inline(always)]
fn chunk(buf: &[u8], at: usize) -> ([u8; CHUNK], u32) {
    match buf.get(at..at + CHUNK) {
        Some(bytes) => {
            let mut c = [0u8; CHUNK];
            c.copy_from_slice(bytes);
            (c, u32::from(u16::MAX))
        }
        None => {
            let rest = buf.get(at.min(buf.len())..).unwrap_or_default();
            let mut c = [0u8; CHUNK];
            c[..rest.len()].copy_from_slice(rest);
            (c, (1u32 << rest.len()) - 1)
        }
    }
}

/// The classes of the sixteen bytes of `buf` from `at`. Sixteen, not sixty-four: a line stops
/// at a quote or its end within a few chunks, and classifying four chunks per call took a
/// quarter more instructions for the bench's lines than one.
#[inline(always)]
pub(super) fn classify(buf: &[u8], at: usize, delim: u8, quote: u8) -> Classes {
    let (c, valid) = chunk(buf, at);
    let (delims, quotes, below_space, high) = masks(c, delim, quote);
    Classes {
        delims: delims & valid,
        // A signed compare takes bytes from 0x80 up as below 0x20 too; they are the high ones.
        others: (quotes | (below_space & !high)) & valid,
        high: high & valid,
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn masks(c: [u8; CHUNK], delim: u8, quote: u8) -> (u32, u32, u32, u32) {
    use safe_arch::{
        cmp_eq_mask_i8_m128i, cmp_lt_mask_i8_m128i, m128i, move_mask_i8_m128i, set_splat_i8_m128i,
    };
    let v = m128i::from(c);
    let bits = |m: m128i| move_mask_i8_m128i(m) as u32;
    let eq = |b: u8| bits(cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(b as i8)));
    (
        eq(delim),
        eq(quote),
        bits(cmp_lt_mask_i8_m128i(v, set_splat_i8_m128i(0x20))),
        bits(v),
    )
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn masks(c: [u8; CHUNK], delim: u8, quote: u8) -> (u32, u32, u32, u32) {
    masks_swar(c, delim, quote)
}

/// [`masks`] without SSE2; compiled everywhere so that its test runs on x86_64 too.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn masks_swar(c: [u8; CHUNK], delim: u8, quote: u8) -> (u32, u32, u32, u32) {
    use crate::swar::{HIGH, LOW7, ONES, equal};
    // The high bit of each byte, gathered into the low eight bits.
    let gather = |m: u64| (((m & HIGH) >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32;
    let half = |w: u64| {
        let below_space = !(((w & LOW7) + 0x6060_6060_6060_6060) | w | LOW7);
        (
            gather(equal(w, ONES * u64::from(delim))),
            gather(equal(w, ONES * u64::from(quote))),
            gather(below_space),
            gather(w),
        )
    };
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&c[..8]);
    hi.copy_from_slice(&c[8..]);
    let (a, b) = (half(u64::from_le_bytes(lo)), half(u64::from_le_bytes(hi)));
    // Bytes from 0x80 count as below 0x20 on x86's signed compare; give the same here.
    (
        a.0 | b.0 << 8,
        a.1 | b.1 << 8,
        (a.2 | a.3) | (b.2 | b.3) << 8,
        a.3 | b.3 << 8,
    )
}

#[cfg(test)]
mod tests {
    use super::{CHUNK, Classes, classify, masks, masks_swar};

    /// The classes byte by byte, as the masks must give them.
    fn slow(buf: &[u8], at: usize, delim: u8, quote: u8) -> Classes {
        let mut c = Classes {
            delims: 0,
            others: 0,
            high: 0,
        };
        for (i, &b) in buf.iter().skip(at).take(16).enumerate() {
            if b == delim {
                c.delims |= 1 << i;
            }
            if b == quote || b < 0x20 {
                c.others |= 1 << i;
            }
            if b >= 0x80 {
                c.high |= 1 << i;
            }
        }
        c
    }

    #[test]
    fn every_byte_value_in_every_position_and_a_short_tail() {
        for b in 0..=255u8 {
            for pos in (0..70).step_by(3) {
                let mut buf =
                    *b"a,b\"cdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnop";
                buf[pos] = b;
                for at in [0, 3, 9, 40, 70, 80] {
                    for (delim, quote) in [(b',', b'"'), (b'\t', b'\''), (b';', b'"')] {
                        assert_eq!(
                            classify(&buf, at, delim, quote),
                            slow(&buf, at, delim, quote),
                            "byte {b:#x} at {pos}, chunk at {at}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_swar_masks_are_the_sse2_ones() {
        for b in 0..=255u8 {
            for pos in 0..CHUNK {
                let mut c = *b"a,b\"cdefghijklmn";
                c[pos] = b;
                for (delim, quote) in [(b',', b'"'), (b'\t', b'\''), (0x80, 0xff)] {
                    assert_eq!(
                        masks_swar(c, delim, quote),
                        masks(c, delim, quote),
                        "byte {b:#x} at {pos}"
                    );
                }
            }
        }
    }
}
