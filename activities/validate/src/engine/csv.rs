//! CSV: csv-core's state machine with bounded record and field buffers, and a fast path for
//! the common one-line record that gives the same fields (proptested against csv-core alone).

use std::io;
use std::thread::Scope;

use super::line::{Span, Split, fields_utf8, fields_utf8_checked, range, span, split_into};
use super::plan::State;
use super::split::Helper;
use super::stored::{Buffer, Source};
use crate::contract::{CaseRule, HeaderMode};

/// The longest start of a line that moves to the next read buffer with it (see `read_csv`);
/// a longer one is csv-core's.
const CARRIED: usize = 64 * 1024;

impl<'a> State<'a> {
    pub(super) fn run_csv(&mut self, input: &mut dyn Source) -> io::Result<()> {
        std::thread::scope(|scope| {
            let mut helper = Helper::untried();
            let result = self.read_csv(input, &mut helper, scope);
            // Also after a failed read: a corrupt gzip stream still reports the rows before it.
            let flushed = self.dispatch(&mut helper, scope);
            self.join_helper(helper);
            result.and(flushed)
        })
    }

    fn read_csv<'scope>(
        &mut self,
        input: &mut dyn Source,
        helper: &mut Helper<'scope, 'a>,
        scope: &'scope Scope<'scope, '_>,
    ) -> io::Result<()>
    where
        'a: 'scope,
    {
        let f = &self.table.format;
        let quote = f.quote as u8;
        let mut core = csv_core::ReaderBuilder::new()
            .delimiter(f.delimiter as u8)
            .quote(quote)
            .build();
        let mut out = vec![0u8; (64 * 1024).min(self.limits.max_record_bytes).max(1)];
        let mut ends = vec![0usize; 64.min(self.limits.max_fields).max(1)];
        let (mut outlen, mut endlen) = (0, 0);
        let (mut overlong, mut quotes, mut nul) = (false, 0u64, false);
        let delimiter = f.delimiter as u8;
        // Whether csv-core sits at a record start in its plain state, so lines may bypass it.
        // Not before its first read: that is where it strips a byte-order mark.
        let mut core_idle = false;
        let mut carry_declined = false;
        loop {
            if self.batch.is_full() {
                self.dispatch(helper, scope)?;
            }
            input.fill_buf()?;
            let lent = input.lent();
            // A batch lends one buffer: once reading has moved on to the next, the batch goes
            // to be checked, so that the old buffer comes free once it is.
            if let Some((buffer, _)) = &lent
                && self.batch.lends_other_than(buffer)
            {
                self.dispatch(helper, scope)?;
            }
            let buf = match &lent {
                Some((buffer, at)) => &buffer[at.clone()],
                None => input.fill_buf()?,
            };
            if core_idle && self.fast_csv {
                let lent = lent.as_ref().map(|(buffer, at)| (buffer, at.start));
                let taken = self.fast_lines(buf, lent, delimiter, quote);
                if taken > 0 {
                    input.consume(taken);
                    continue;
                }
                // The buffer ends inside a line: it goes on in the next buffer, whole, so that
                // the batch there lends it too, instead of csv-core copying it.
                if lent.is_some()
                    && !carry_declined
                    && !buf.is_empty()
                    && buf.len() <= CARRIED
                    && memchr::memchr(b'\n', buf).is_none()
                {
                    // Declined (the stream ended, or delivers too little at a time), the line
                    // is csv-core's.
                    carry_declined = !input.carry()?;
                    continue;
                }
            }
            let (res, nin, nout, nend) =
                core.read_record(buf, &mut out[outlen..], &mut ends[endlen..]);
            let consumed = &buf[..nin];
            // Only a record that csv-core ended on an LF leaves it plainly at a record start
            // (after a CR it waits to see whether an LF follows).
            core_idle =
                res == csv_core::ReadRecordResult::Record && consumed.last() == Some(&b'\n');
            carry_declined &= nin == 0;
            quotes += memchr::memchr_iter(quote, consumed).count() as u64;
            nul |= memchr::memchr(0, consumed).is_some();
            input.consume(nin);
            outlen += nout;
            endlen += nend;
            match res {
                csv_core::ReadRecordResult::InputEmpty => {}
                csv_core::ReadRecordResult::OutputFull => {
                    if !grow(&mut out, self.limits.max_record_bytes) {
                        // Keep parsing to find the record's end, but stop keeping its bytes.
                        overlong = true;
                        outlen = 0;
                    }
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    if !grow(&mut ends, self.limits.max_fields) {
                        overlong = true;
                        endlen = 0;
                    }
                }
                csv_core::ReadRecordResult::Record => {
                    self.csv_record(
                        &out[..outlen],
                        &ends[..endlen],
                        overlong,
                        quotes % 2 == 1,
                        nul,
                    );
                    (outlen, endlen, overlong, quotes, nul) = (0, 0, false, 0, false);
                }
                csv_core::ReadRecordResult::End => return Ok(()),
            }
        }
    }

    /// The fast path for the common record (see [`line`](super::line)): takes every whole line
    /// at the start of `buf` that it can split and returns the bytes it took. It stops at the
    /// first record csv-core must read, so both paths give the same fields. `lent` is the read
    /// buffer `buf` is in, and where, when the batch may keep a handle to it.
    fn fast_lines(
        &mut self,
        buf: &[u8],
        lent: Option<(&Buffer, usize)>,
        delim: u8,
        quote: u8,
    ) -> usize {
        let (max_len, max_fields) = (self.limits.max_record_bytes, self.limits.max_fields);
        // A batched line's spans go straight into the batch: no second copy of them. Its
        // bytes stay in the read buffer, unless the batch holds copies already.
        let batching = self.batching();
        let lent = lent.filter(|(buffer, _)| batching && self.batch.may_lend(buffer));
        if batching && lent.is_none() {
            self.batch.own();
        }
        let mut spans = std::mem::take(&mut self.spans);
        let mut taken = 0;
        let mut more = false;
        while !self.batch.is_full() {
            let rest = &buf[taken..];
            let (base, into) = if batching {
                let base = match lent {
                    Some((_, at)) => at + taken,
                    None => self.batch.next_record().0,
                };
                (base, self.batch.room(more))
            } else {
                let want = if more { 2 * spans.len() } else { 64 };
                if spans.len() < want {
                    spans.resize(want, (0, 0));
                }
                (0, &mut spans[..])
            };
            let found = split_into(rest, delim, quote, max_len, max_fields, base, into);
            more = false;
            match found {
                Split::Line {
                    taken: n,
                    body,
                    fields,
                    nul,
                    ascii,
                } => {
                    let line = &rest[..body];
                    if batching {
                        let spans = self.batch.split_spans(fields);
                        let utf8 = ascii || fields_utf8_checked(line, spans, base);
                        let row = self.count_record(fields, utf8, nul);
                        match lent {
                            Some((buffer, _)) => self.batch.push_lent(row, buffer, body, fields),
                            None => self.batch.push_split(row, line, fields),
                        }
                    } else {
                        let spans = &spans[..fields];
                        let utf8 = ascii || fields_utf8_checked(line, spans, 0);
                        self.data_record(line, spans, utf8, nul);
                    }
                    taken += n;
                }
                Split::Empty(n) => taken += n,
                // The same line again, with more room.
                Split::Full => more = true,
                Split::CsvCore => break,
            }
        }
        self.spans = spans;
        taken
    }

    fn csv_record(
        &mut self,
        data: &[u8],
        ends: &[usize],
        overlong: bool,
        odd_quotes: bool,
        nul: bool,
    ) {
        let is_header = !self.header_seen && self.table.format.header;
        let first = !self.header_seen;
        self.header_seen = true;
        let k = self.k;
        let row = if is_header { 0 } else { self.rows + 1 };
        if odd_quotes {
            self.slots[self.parses].hit(row, k);
        }
        // A data record that is read has its NUL counted by `data_record`, as on the fast path.
        if nul && (is_header || overlong) {
            self.slots[self.nul].hit(row, k);
        }
        if overlong {
            if !is_header {
                self.rows = row;
            }
            self.slots[self.record_length].hit(row, k);
            if is_header && let Some((slot, ..)) = self.header {
                self.slots[slot].hit(0, k);
                self.slots[slot].detail = "the header record is too long to read".into();
                for c in &mut self.cols {
                    c.absent = true;
                }
            }
            return;
        }
        // Fields live in `data`, delimited by `ends`; a BOM is only meaningful on the first one.
        let bom = if first
            && data.starts_with(b"\xEF\xBB\xBF")
            && ends.first().is_some_and(|&e| e >= 3)
        {
            3
        } else {
            0
        };
        let mut spans = std::mem::take(&mut self.spans);
        spans.clear();
        spans.extend(
            ends.iter()
                .enumerate()
                .map(|(i, &e)| span(if i == 0 { bom } else { ends[i - 1] }, e)),
        );
        let utf8_ok = fields_utf8(data, &spans);
        if is_header {
            if !utf8_ok && let Some(s) = self.utf8 {
                self.slots[s].hit(0, k);
            }
            let names: Vec<String> = spans
                .iter()
                .map(|&f| String::from_utf8_lossy(data.get(range(f)).unwrap_or_default()))
                .map(|n| n.into_owned())
                .collect();
            self.expected_fields = names.len();
            self.check_header(&names);
            self.header_names = Some(names);
        } else {
            self.data_record(data, &spans, utf8_ok, nul);
        }
        self.spans = spans;
    }

    /// A data record whose fields are at `spans` in `data`: counted, then checked here or
    /// batched.
    fn data_record(&mut self, data: &[u8], spans: &[Span], utf8_ok: bool, nul: bool) {
        let row = self.count_record(spans.len(), utf8_ok, nul);
        if self.batching() {
            self.batch.push(row, data, spans);
            return;
        }
        let field = |i: usize| -> Option<&[u8]> { data.get(range(*spans.get(i)?)) };
        if !self.conds.is_empty() {
            self.begin_row(|p| {
                if p.absent {
                    None
                } else {
                    p.index.and_then(field)
                }
            });
        }
        for c in 0..self.cols.len() {
            if self.cols[c].absent {
                continue;
            }
            let v = self.cols[c].index.and_then(field);
            self.check_cell(c, v, row);
        }
        self.end_row(row);
    }

    /// A data record of `fields` fields counted, with what its bytes broke: its row number.
    fn count_record(&mut self, fields: usize, utf8_ok: bool, nul: bool) -> u64 {
        let row = self.rows + 1;
        self.rows = row;
        let k = self.k;
        if nul {
            self.slots[self.nul].hit(row, k);
        }
        if !utf8_ok && let Some(s) = self.utf8 {
            self.slots[s].hit(row, k);
        }
        if let Some(s) = self.column_count
            && fields != self.expected_fields
        {
            self.slots[s].hit(row, k);
        }
        row
    }

    fn check_header(&mut self, names: &[String]) {
        let Some((slot, mode, case)) = self.header else {
            return;
        };
        let eq = |a: &str, b: &str| match case {
            CaseRule::Sensitive => a == b,
            CaseRule::Insensitive => a.eq_ignore_ascii_case(b),
        };
        let mut missing = Vec::new();
        let mut positions = Vec::new();
        for plan in &mut self.cols {
            match names.iter().position(|n| eq(n, &plan.spec_name)) {
                Some(i) => {
                    plan.index = Some(i);
                    positions.push(i);
                }
                None => {
                    plan.absent = true;
                    missing.push(plan.spec_name.clone());
                }
            }
        }
        let declared = self.cols.len();
        let in_order = positions.windows(2).all(|w| w[0] < w[1]);
        let extra = names.len().saturating_sub(positions.len());
        let ok = missing.is_empty()
            && match mode {
                HeaderMode::Exact => extra == 0 && in_order && names.len() == declared,
                HeaderMode::Ordered => in_order,
                HeaderMode::Subset => true,
            };
        let s = &mut self.slots[slot];
        if ok {
            s.detail = format!("{declared} declared columns found ({mode:?} match)").to_lowercase();
            return;
        }
        s.hit(0, self.k);
        // Only contract names and counts: a header-less file's first line would be a data row.
        let mut why = vec![format!(
            "file has {} columns, contract declares {declared}",
            names.len()
        )];
        if !missing.is_empty() {
            why.push(format!("missing: [{}]", missing.join(", ")));
        }
        if extra > 0 && mode == HeaderMode::Exact {
            why.push(format!("{extra} undeclared columns"));
        }
        if !in_order && mode != HeaderMode::Subset {
            why.push("columns are out of the declared order".into());
        }
        if names.len() == 1 && declared > 1 {
            why.push(format!(
                "one field only: is the delimiter {:?} right?",
                self.table.format.delimiter
            ));
        }
        s.detail = why.join("; ");
    }
}

/// Doubles a csv-core output buffer (record bytes or field ends), never past `max` entries;
/// false when it is at `max` already: the record is overlong.
pub(crate) fn grow<T: Copy + Default>(buf: &mut Vec<T>, max: usize) -> bool {
    if buf.len() >= max {
        return false;
    }
    let grown = (buf.len() * 2).min(max.max(1));
    buf.resize(grown, T::default());
    true
}
