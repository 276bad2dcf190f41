//! The CSV fast path's splitter: one pass over a line, sixty-four bytes at a time, that finds the
//! line's end, its fields' bounds and any NUL together. It replaced a memchr call per field and
//! two more per line, whose start-up cost outweighed the search on fields of a few bytes.
//!
//! It takes only the common record: one line, no CR inside, fields either plain or quoted without
//! doubled quotes. Anything else is csv-core's, so both paths give the same fields (proptested).

use super::chunk::{BLOCK, Block, classify_block};

/// Where a field's bytes are in its record's buffer (or its batch's): start and end offsets.
/// Thirty-two bits each, half of what the checking thread fetches per field with `usize`s
/// from the core that split the records; a batch holds less than [`MAX_RECORD_BYTES`] plus
/// its own bound, so every offset fits.
///
/// [`MAX_RECORD_BYTES`]: super::MAX_RECORD_BYTES
pub(super) type Span = (u32, u32);

/// The span from `start` to `end`; both are below 2^32 (see [`Span`]).
#[inline(always)]
pub(super) fn span(start: usize, end: usize) -> Span {
    (start as u32, end as u32)
}

/// The byte range of `span`.
#[inline(always)]
pub(super) fn range((start, end): Span) -> std::ops::Range<usize> {
    start as usize..end as usize
}

/// What [`split`] found at the start of its buffer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Split {
    /// A record whose `body` (its bytes before LF or CRLF) and terminator take `taken` bytes.
    Line {
        taken: usize,
        body: usize,
        /// Spans written.
        fields: usize,
        nul: bool,
        /// Every byte of the line is ASCII (false may also mean a byte after it was not).
        ascii: bool,
    },
    /// A line with nothing before its LF or CRLF, `taken` bytes long; csv-core skips it too.
    Empty(usize),
    /// More fields than the room given (and no more than `max_fields`): give more, split again.
    Full,
    /// csv-core must read this record, or the buffer ends inside it.
    CsvCore,
}

/// Splits the line at the start of `buf` into `spans` (offsets from `buf`'s start, quotes
/// excluded) the way csv-core would, or says it is csv-core's: a quote inside a plain field, a
/// doubled quote, text after a closing quote, a quoted field that does not close on its line, a
/// CR not before LF, a body over `max_len` bytes, over `max_fields` fields, or no LF in `buf`.
///
/// The spans are written from the start of `room`, each offset by `base` (where the caller
/// puts the line), so that they can go straight into a batch; only those of a
/// [`Split::Line`] mean anything. A slice and a count, not a vector: a push per field
/// reloaded and stored the vector's length and tested its capacity, about a third of the
/// per-field work.
// Inlined into the reader's line loop, whose constants (the splatted delimiter, quote and
// control bound) then stay in registers across lines: 64 -> 58 ns a bench line.
#[inline(always)]
pub(super) fn split_into(
    buf: &[u8],
    delim: u8,
    quote: u8,
    max_len: usize,
    max_fields: usize,
    base: usize,
    room: &mut [Span],
) -> Split {
    let mut fields = 0;
    let found = split_line(buf, delim, quote, max_len, base, room, &mut fields);
    match found {
        // The span that found no room was field `fields + 1`.
        Split::Full if fields >= max_fields => Split::CsvCore,
        Split::Line { .. } if fields > max_fields => Split::CsvCore,
        Split::Line {
            taken,
            body,
            nul,
            ascii,
            ..
        } => Split::Line {
            taken,
            body,
            fields,
            nul,
            ascii,
        },
        other => other,
    }
}

/// [`split_into`] appending to `spans`, with room made as needed (from 16 spans, so lines
/// with more fields take the [`Split::Full`] path): what the tests compare. On anything but
/// [`Split::Line`], `spans` is left as it was.
#[cfg(test)]
fn split(
    buf: &[u8],
    delim: u8,
    quote: u8,
    max_len: usize,
    max_fields: usize,
    base: usize,
    spans: &mut Vec<Span>,
) -> Split {
    let first = spans.len();
    let mut room = 16;
    loop {
        spans.resize(first + room, (0, 0));
        let found = split_into(
            buf,
            delim,
            quote,
            max_len,
            max_fields,
            base,
            &mut spans[first..],
        );
        match found {
            Split::Line { fields, .. } => {
                spans.truncate(first + fields);
                return found;
            }
            Split::Full => room *= 2,
            _ => {
                spans.truncate(first);
                return found;
            }
        }
    }
}

/// Where the splitter is in a line: the masks of the block from `at`, with the bits of bytes
/// already taken cleared. Every stop of a block comes from its masks. The sixteen-byte
/// splitter before it restarted at the byte after each stop (about a sixth of a line's bytes
/// classified twice) and spent three more compares and two more mask moves per sixteen bytes:
/// 88 ns a bench line, against 64 now (the splitter alone, on 256 KiB buffers).
struct Cursor<'a> {
    buf: &'a [u8],
    delim: u8,
    quote: u8,
    /// Past this a new block is not read: the line is csv-core's.
    limit: usize,
    at: usize,
    block: Block,
    /// The high bits of every block read, for the ASCII test that spares a UTF-8 check.
    high: u64,
}

impl Cursor<'_> {
    /// Reads the block after the current one; false past `limit`.
    #[inline(always)]
    fn next_block(&mut self) -> bool {
        self.at += BLOCK;
        if self.at >= self.limit {
            return false;
        }
        self.block = classify_block(self.buf, self.at, self.delim, self.quote);
        self.high |= self.block.high;
        true
    }

    /// Takes every byte before `p`: their bits are cleared, or, when `p` is past the block,
    /// the next block read starts at `p`.
    #[inline(always)]
    fn skip_to(&mut self, p: usize) {
        let off = p - self.at;
        if off < BLOCK {
            let keep = u64::MAX << off;
            self.block.delims &= keep;
            self.block.others &= keep;
        } else {
            self.at = p - BLOCK;
            self.block.delims = 0;
            self.block.others = 0;
        }
    }
}

/// Writes `s` as span `*fields` of `room`, counting it; false when there is no room for it.
#[inline(always)]
fn put(room: &mut [Span], fields: &mut usize, s: Span) -> bool {
    match room.get_mut(*fields) {
        Some(slot) => {
            *slot = s;
            *fields += 1;
            true
        }
        None => false,
    }
}

/// The line's spans, written into `room` from `*fields` on, which counts them; no room for
/// one is [`Split::Full`].
#[inline(always)]
fn split_line(
    buf: &[u8],
    delim: u8,
    quote: u8,
    max_len: usize,
    base: usize,
    room: &mut [Span],
    fields: &mut usize,
) -> Split {
    // A body over max_len is csv-core's: no need to read past its terminator.
    let limit = buf.len().min(max_len.saturating_add(3));
    if limit == 0 {
        return Split::CsvCore;
    }
    let block = classify_block(buf, 0, delim, quote);
    let mut cur = Cursor {
        buf,
        delim,
        quote,
        limit,
        at: 0,
        block,
        high: block.high,
    };
    // The current field's first byte (after its opening quote when quoted).
    let mut start = 0;
    let mut nul = false;
    // The body ends at `end`; the terminator takes `taken - end` bytes.
    let (end, taken) = loop {
        // Outside quotes: the delimiters before the block's first other stop. Their bits need
        // no clearing: `skip_to` past that stop, or the next block, drops them.
        let others = cur.block.others;
        let first = others & others.wrapping_neg();
        let mut d = cur.block.delims & first.wrapping_sub(1);
        while d != 0 {
            let i = cur.at + d.trailing_zeros() as usize;
            d &= d - 1;
            if !put(room, fields, span(base + start, base + i)) {
                return Split::Full;
            }
            start = i + 1;
        }
        if first == 0 {
            if !cur.next_block() {
                return Split::CsvCore;
            }
            continue;
        }
        let i = cur.at + first.trailing_zeros() as usize;
        cur.skip_to(i + 1);
        let b = buf[i];
        if b == delim {
            // A control byte as the delimiter (a tab).
            if !put(room, fields, span(base + start, base + i)) {
                return Split::Full;
            }
            start = i + 1;
        } else if b == quote {
            if i != start {
                return Split::CsvCore;
            }
            start = i + 1;
            // Inside quotes only the closing quote (and a line end, csv-core's then) matters.
            let close = loop {
                let others = cur.block.others;
                if others == 0 {
                    if !cur.next_block() {
                        return Split::CsvCore;
                    }
                    continue;
                }
                let j = cur.at + others.trailing_zeros() as usize;
                cur.skip_to(j + 1);
                match buf[j] {
                    b if b == quote => break j,
                    0 => nul = true,
                    b'\n' | b'\r' => return Split::CsvCore,
                    _ => {}
                }
            };
            if !put(room, fields, span(base + start, base + close)) {
                return Split::Full;
            }
            match buf.get(close + 1) {
                Some(&d) if d == delim => {
                    start = close + 2;
                    cur.skip_to(close + 2);
                }
                Some(b'\n') => break (close + 1, close + 2),
                Some(b'\r') if buf.get(close + 2) == Some(&b'\n') => break (close + 1, close + 3),
                _ => return Split::CsvCore,
            }
        } else if b == b'\n' {
            if !put(room, fields, span(base + start, base + i)) {
                return Split::Full;
            }
            break (i, i + 1);
        } else if b == b'\r' {
            if buf.get(i + 1) != Some(&b'\n') {
                return Split::CsvCore;
            }
            if !put(room, fields, span(base + start, base + i)) {
                return Split::Full;
            }
            break (i, i + 2);
        } else if b == 0 {
            nul = true;
        }
    };
    if end == 0 {
        return Split::Empty(taken);
    }
    if end > max_len {
        return Split::CsvCore;
    }
    Split::Line {
        taken,
        body: end,
        fields: 0,
        nul,
        ascii: cur.high == 0,
    }
}

/// Whether every field is UTF-8 (checked per field: the delimiters between them are not text).
pub(super) fn fields_utf8(data: &[u8], spans: &[Span]) -> bool {
    data.is_ascii() || fields_utf8_checked(data, spans, 0)
}

/// [`fields_utf8`] without the ASCII shortcut, for a line known not to be all ASCII, whose
/// spans are offset by `base`.
pub(super) fn fields_utf8_checked(data: &[u8], spans: &[Span], base: usize) -> bool {
    spans.iter().all(|&field| {
        let r = range(field);
        data.get(r.start - base..r.end - base)
            .is_some_and(|f| std::str::from_utf8(f).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Split, range, split};

    fn fields(line: &[u8]) -> Option<(Vec<&[u8]>, bool)> {
        let mut spans = Vec::new();
        match split(line, b',', b'"', 1 << 20, 64, 0, &mut spans) {
            Split::Line { nul, .. } => {
                Some((spans.iter().map(|&f| &line[range(f)]).collect(), nul))
            }
            _ => None,
        }
    }

    #[test]
    fn splits_plain_quoted_and_empty_fields_across_word_boundaries() {
        let (f, nul) = fields(b"12345678,\"a,b\",,x\0y,\"\"\r\nnext").unwrap();
        assert_eq!(f, [&b"12345678"[..], b"a,b", b"", b"x\0y", b""]);
        assert!(nul);
        assert_eq!(fields(b"a,\n").unwrap().0, [&b"a"[..], b""]);
        assert_eq!(
            split(b"\r\nx", b',', b'"', 99, 9, 0, &mut Vec::new()),
            Split::Empty(2)
        );
    }

    #[test]
    fn leaves_what_csv_core_must_read() {
        for line in [
            &b"a\"b,c\n"[..],
            b"\"a\"\"b\"\n",
            b"\"a\"b\n",
            b"\"open\nline\"\n",
            b"a\rb\n",
            b"no end",
            b"cut at cr\r",
        ] {
            assert_eq!(fields(line), None, "{:?}", String::from_utf8_lossy(line));
        }
        assert_eq!(
            split(b"a,b,c\n", b',', b'"', 99, 2, 0, &mut Vec::new()),
            Split::CsvCore
        );
        assert_eq!(
            split(b"abcdef\n", b',', b'"', 5, 9, 0, &mut Vec::new()),
            Split::CsvCore
        );
    }

    #[test]
    fn spans_are_appended_at_the_callers_offset_and_only_for_a_line() {
        let mut spans = vec![(0, 3)];
        let found = split(b"ab,\"c\"\n", b',', b'"', 99, 9, 100, &mut spans);
        assert!(matches!(found, Split::Line { taken: 7, .. }), "{found:?}");
        assert_eq!(spans, [(0, 3), (100, 102), (104, 105)]);
        assert_eq!(
            split(b"ab,\"c\"d\n", b',', b'"', 99, 9, 100, &mut spans),
            Split::CsvCore
        );
        assert_eq!(
            split(b"\n", b',', b'"', 99, 9, 100, &mut spans),
            Split::Empty(1)
        );
        assert_eq!(spans, [(0, 3), (100, 102), (104, 105)]);
    }

    #[test]
    fn a_tab_delimiter_is_a_control_byte_too() {
        let mut spans = Vec::new();
        let line = b"a\tb\t\"c\td\"\n";
        assert!(matches!(
            split(line, b'\t', b'"', 99, 9, 0, &mut spans),
            Split::Line { .. }
        ));
        let f: Vec<&[u8]> = spans.iter().map(|&f| &line[range(f)]).collect();
        assert_eq!(f, [&b"a"[..], b"b", b"c\td"]);
    }

    /// The lines `split` takes from the start of `buf`, one after another, until it leaves one
    /// to csv-core: the bytes taken and each record's fields, NUL and ASCII flags.
    /// A line taken: its fields' bytes, its NUL and ASCII flags.
    type Taken = (Vec<Vec<u8>>, bool, bool);

    fn take_lines(buf: &[u8], delim: u8) -> (usize, Vec<Taken>) {
        let (mut at, mut lines) = (0, Vec::new());
        loop {
            let mut spans = Vec::new();
            match split(&buf[at..], delim, b'"', 1 << 20, 64, 0, &mut spans) {
                Split::Line {
                    taken, nul, ascii, ..
                } => {
                    let line = &buf[at..];
                    lines.push((
                        spans.iter().map(|&f| line[range(f)].to_vec()).collect(),
                        nul,
                        ascii,
                    ));
                    at += taken;
                }
                Split::Empty(taken) => at += taken,
                Split::Full => unreachable!("split makes room"),
                Split::CsvCore => return (at, lines),
            }
        }
    }

    /// csv-core's records of `buf`, which ends at a record's end.
    fn csv_core(buf: &[u8], delim: u8) -> Vec<Vec<Vec<u8>>> {
        let mut r = csv_core::ReaderBuilder::new().delimiter(delim).build();
        let (mut out, mut ends) = (vec![0u8; 1 << 16], vec![0usize; 256]);
        let (mut records, mut rest) = (Vec::new(), buf);
        loop {
            let (res, nin, _, nend) = r.read_record(rest, &mut out, &mut ends);
            rest = &rest[nin..];
            match res {
                csv_core::ReadRecordResult::Record => {
                    let mut start = 0;
                    records.push(
                        ends[..nend]
                            .iter()
                            .map(|&e| {
                                let f = out[start..e].to_vec();
                                start = e;
                                f
                            })
                            .collect(),
                    );
                }
                csv_core::ReadRecordResult::End => return records,
                csv_core::ReadRecordResult::InputEmpty => {}
                other => panic!("{other:?}"),
            }
        }
    }

    fn pieces() -> impl Strategy<Value = Vec<u8>> {
        const PIECES: &[&[u8]] = &[
            b",",
            b"\"",
            b"\"\"",
            b"\n",
            b"\r\n",
            b"\r",
            b"a",
            b"12",
            b"x y",
            b"\0",
            b"\t",
            b"\xC3\xA9",
            b"\"quoted, text\"",
            b"0123456789abcdefghijklmnopqrstu",
            b"a,b,c\n",
        ];
        prop::collection::vec(prop::sample::select(PIECES), 0..120).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

        /// What the splitter takes, csv-core reads as the same records, with quotes and
        /// field ends falling on every offset within and across chunks.
        #[test]
        fn the_lines_taken_are_csv_cores_records(body in pieces(), tab in any::<bool>()) {
            let (delim, body): (u8, Vec<u8>) = if tab {
                (b'\t', body.iter().map(|&b| match b { b',' => b'\t', b'\t' => b',', b => b }).collect())
            } else {
                (b',', body)
            };
            let (taken, lines) = take_lines(&body, delim);
            let fields: Vec<Vec<Vec<u8>>> = lines.iter().map(|l| l.0.clone()).collect();
            prop_assert_eq!(fields, csv_core(&body[..taken], delim));
            for (fields, nul, ascii) in &lines {
                let bytes = fields.concat();
                prop_assert_eq!(*nul, bytes.contains(&0));
                // `ascii` may be false for a byte past the line; when true, it holds.
                if *ascii {
                    prop_assert!(bytes.is_ascii());
                }
            }
        }

        /// Well-formed lines, quoted fields included, are all taken.
        #[test]
        fn well_formed_lines_are_taken_whole(
            rows in prop::collection::vec(
                prop::collection::vec("[a-z é]{0,40}|\"[a-z,\t é]{0,40}\"", 1..8), 1..20),
            crlf in any::<bool>(),
        ) {
            let end = if crlf { "\r\n" } else { "\n" };
            let text: String = rows.iter().map(|r| r.join(",") + end).collect();
            let (taken, lines) = take_lines(text.as_bytes(), b',');
            prop_assert_eq!(taken, text.len());
            let expected: Vec<Vec<Vec<u8>>> = rows
                .iter()
                .filter(|r| r.len() > 1 || !r[0].is_empty())
                .map(|r| r.iter().map(|f| f.trim_matches('"').as_bytes().to_vec()).collect())
                .collect();
            let fields: Vec<Vec<Vec<u8>>> = lines.iter().map(|l| l.0.clone()).collect();
            prop_assert_eq!(fields, expected);
        }
    }
}
