//! Sixty-four bytes of a line classified at once, as bit masks (bit `i` for byte `at + i`): the
//! delimiters, and every other byte the splitter must stop at (quote, LF, CR, NUL and the other
//! control bytes), plus whether any byte is not ASCII. On x86_64 this is SSE2 (through
//! `safe_arch`, as the workspace forbids `unsafe` and std's intrinsics need it even for SSE2,
//! which every x86_64 has); elsewhere, SWAR words give the same masks.

/// What [`classify_block`] found; bits past the end of the buffer are clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Block {
    pub(super) delims: u64,
    /// Quotes and control bytes (a tab delimiter is among them too).
    pub(super) others: u64,
    /// Not zero when a byte of the block is not ASCII: the splitter only asks whether a line
    /// has one, so the bytes are OR-ed together and their high bits taken once per block.
    pub(super) high: u64,
}

/// Bytes classified per call: four SSE2 registers. The splitter takes every stop in a block
/// from its masks, so no byte of a line is classified twice.
pub(super) const BLOCK: usize = 64;

/// The classes of the sixty-four bytes of `buf` from `at` (as if zero-padded past its end).
#[inline(always)]
pub(super) fn classify_block(buf: &[u8], at: usize, delim: u8, quote: u8) -> Block {
    match buf
        .get(at..at + BLOCK)
        .and_then(|b| <&[u8; BLOCK]>::try_from(b).ok())
    {
        Some(bytes) => masks(bytes, delim, quote),
        None => tail(buf, at, delim, quote),
    }
}

/// A block that runs past the end of `buf`: the padding must not read as NULs.
#[cold]
#[inline(never)]
fn tail(buf: &[u8], at: usize, delim: u8, quote: u8) -> Block {
    let rest = buf.get(at.min(buf.len())..).unwrap_or_default();
    let mut bytes = [0u8; BLOCK];
    bytes[..rest.len()].copy_from_slice(rest);
    // `rest` is shorter than a block here.
    let valid = (1u64 << rest.len()) - 1;
    let block = masks(&bytes, delim, quote);
    Block {
        delims: block.delims & valid,
        others: block.others & valid,
        high: block.high,
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn masks(bytes: &[u8; BLOCK], delim: u8, quote: u8) -> Block {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, m128i, min_u8_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };
    let (delim, quote) = (
        set_splat_i8_m128i(delim as i8),
        set_splat_i8_m128i(quote as i8),
    );
    let control = set_splat_i8_m128i(0x1F);
    let bits = |m: m128i| u64::from(move_mask_i8_m128i(m) as u16);
    let (mut delims, mut others, mut any) = (0, 0, m128i::default());
    for (k, chunk) in bytes.chunks_exact(16).enumerate() {
        let mut c = [0u8; 16];
        c.copy_from_slice(chunk);
        let v = m128i::from(c);
        delims |= bits(cmp_eq_mask_i8_m128i(v, delim)) << (16 * k);
        // Unsigned `v <= 0x1F` is `min(v, 0x1F) == v`: one compare fewer than SSE2's signed
        // ones, which take bytes from 0x80 up as below 0x20 too.
        let below_space = cmp_eq_mask_i8_m128i(min_u8_m128i(v, control), v);
        others |= bits(bitor_m128i(below_space, cmp_eq_mask_i8_m128i(v, quote))) << (16 * k);
        any = bitor_m128i(any, v);
    }
    Block {
        delims,
        others,
        high: bits(any),
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn masks(bytes: &[u8; BLOCK], delim: u8, quote: u8) -> Block {
    masks_swar(bytes, delim, quote)
}

/// [`masks`] without SSE2; compiled everywhere so that its test runs on x86_64 too.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn masks_swar(bytes: &[u8; BLOCK], delim: u8, quote: u8) -> Block {
    use crate::swar::{HIGH, LOW7, ONES, equal};
    // The high bit of each byte, gathered into the low eight bits.
    let gather = |m: u64| ((m & HIGH) >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56;
    let mut block = Block {
        delims: 0,
        others: 0,
        high: 0,
    };
    for (k, word) in bytes.chunks_exact(8).enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
        let below_space = !(((w & LOW7) + 0x6060_6060_6060_6060) | w | LOW7);
        block.delims |= gather(equal(w, ONES * u64::from(delim))) << (8 * k);
        block.others |= gather(equal(w, ONES * u64::from(quote)) | below_space) << (8 * k);
        block.high |= w & HIGH;
    }
    block
}

#[cfg(test)]
mod tests {
    use super::{BLOCK, Block, classify_block, masks, masks_swar};

    /// The classes byte by byte, as the masks must give them.
    fn slow(buf: &[u8], at: usize, delim: u8, quote: u8) -> Block {
        let mut c = Block {
            delims: 0,
            others: 0,
            high: 0,
        };
        for (i, &b) in buf.iter().skip(at).take(BLOCK).enumerate() {
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

    /// `high` only says whether a byte is not ASCII.
    fn same(a: Block, b: Block) -> bool {
        a.delims == b.delims && a.others == b.others && (a.high == 0) == (b.high == 0)
    }

    #[test]
    fn every_byte_value_in_every_position_and_a_short_tail() {
        let text = b"a,b\"cdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz01234";
        for b in 0..=255u8 {
            for pos in (0..text.len()).step_by(3) {
                let mut buf = *text;
                buf[pos] = b;
                for at in [0, 3, 9, 17, 40, 70, 90, 200] {
                    for (delim, quote) in [(b',', b'"'), (b'\t', b'\''), (b';', b'"')] {
                        let (fast, slow) = (
                            classify_block(&buf, at, delim, quote),
                            slow(&buf, at, delim, quote),
                        );
                        assert!(
                            same(fast, slow),
                            "byte {b:#x} at {pos}, block at {at}: {fast:?} {slow:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_swar_masks_are_the_sse2_ones() {
        for b in 0..=255u8 {
            for pos in 0..BLOCK {
                let mut c =
                    *b"a,b\"cdefghijklmnopqrstuvwxyz,\"ABCDEFGHIJKLMNOPQRSTUVWXYZ\t\r\n01234";
                c[pos] = b;
                for (delim, quote) in [(b',', b'"'), (b'\t', b'\''), (0x80, 0xff)] {
                    let (swar, sse) = (masks_swar(&c, delim, quote), masks(&c, delim, quote));
                    assert!(same(swar, sse), "byte {b:#x} at {pos}: {swar:?} {sse:?}");
                }
            }
        }
    }
}
