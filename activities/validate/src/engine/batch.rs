//! CSV records checked in batches, column by column. A column's checks then run over a few
//! hundred values in a row (its branches stay predictable, its state stays in cache), and the
//! `unique` set's lookups, which miss the cache, are issued together before the checks so the
//! misses overlap. Each column still sees its values in row order, and no check reads another
//! column, so every count and row list is the one row-by-row checking gives; a table with
//! `when` or `compare` rules (which read several columns of a row) is checked row by row.

use super::cells::{hash_value, tally};
use super::line::{Span, range, span};
use super::memo::Looked;
use super::plan::{CellCheck, State};
use super::stored::Buffer;

/// Records per batch, and the field bytes after which a batch is checked anyway.
const RECORDS: usize = 512;
const BYTES: usize = 256 * 1024;

/// Spans a line may write before the splitter asks for more room: lines of up to this many
/// fields are split once.
const ROOM: usize = 64;

/// Data records waiting for their cell checks: record bytes, field bounds and row numbers.
/// The bytes are the read buffer the lines are in ([`push_lent`](Self::push_lent)), or a copy
/// of them when there is none to keep (gzip) or csv-core read a record.
#[derive(Debug, Default)]
pub(super) struct Batch {
    /// The copied record bytes, when the batch lends no buffer.
    data: Vec<u8>,
    lent: Option<Buffer>,
    /// Record bytes in the batch, lent or copied.
    bytes: usize,
    /// Every field's bounds in `data`, record after record, in the first `used` entries; the
    /// rest is room for the splitter to write the next line's into (see [`room`](Self::room)).
    spans: Vec<Span>,
    used: usize,
    recs: Vec<Rec>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Rec {
    pub(super) row: u64,
    /// Index of the record's first field in `spans`.
    first: usize,
    fields: usize,
}

impl Batch {
    /// Adds a record whose fields are at `spans` in `data` (a line as read, quotes and
    /// delimiters included, or csv-core's unquoted field bytes).
    pub(super) fn push(&mut self, row: u64, data: &[u8], spans: &[Span]) {
        self.own();
        self.bytes += data.len();
        let base = self.data.len();
        self.data.extend_from_slice(data);
        let first = self.used;
        self.spans.truncate(first);
        self.spans.extend(spans.iter().map(|&f| {
            let r = range(f);
            span(base + r.start, base + r.end)
        }));
        self.used = self.spans.len();
        self.recs.push(Rec {
            row,
            first,
            fields: spans.len(),
        });
    }

    /// Where the next record's bytes will start, and its first field's index: what the
    /// splitter needs to put a line's spans straight into [`room`](Self::room).
    pub(super) fn next_record(&self) -> (usize, usize) {
        (self.data.len(), self.used)
    }

    /// Where the splitter writes the next line's spans: at least [`ROOM`] of them, or
    /// `more` times what there was when the last line did not fit.
    #[inline]
    pub(super) fn room(&mut self, more: bool) -> &mut [Span] {
        let free = self.spans.len() - self.used;
        if more || free < ROOM {
            self.grow_room(if more { 2 * free.max(ROOM) } else { ROOM });
        }
        &mut self.spans[self.used..]
    }

    /// Room for `want` spans past the used ones; out of line, as it is rarely needed.
    #[cold]
    #[inline(never)]
    fn grow_room(&mut self, want: usize) {
        self.spans
            .resize(self.spans.len().max(self.used + want), (0, 0));
    }

    /// The spans the splitter wrote into [`room`](Self::room) for the last line.
    pub(super) fn split_spans(&self, fields: usize) -> &[Span] {
        &self.spans[self.used..self.used + fields]
    }

    /// Adds a record whose `fields` spans the splitter wrote into [`room`](Self::room), at
    /// offsets from where `data` now goes (see [`next_record`](Self::next_record)).
    pub(super) fn push_split(&mut self, row: u64, data: &[u8], fields: usize) {
        debug_assert!(
            self.lent.is_none(),
            "spans of a copied line in a lent batch"
        );
        self.bytes += data.len();
        self.data.extend_from_slice(data);
        self.recs.push(Rec {
            row,
            first: self.used,
            fields,
        });
        self.used += fields;
    }

    /// Adds a record of `len` bytes whose `fields` spans the splitter wrote into
    /// [`room`](Self::room) at their offsets in `buffer`, which the batch keeps instead of a
    /// copy. Only into a batch that is empty or lends `buffer` already
    /// ([`may_lend`](Self::may_lend)).
    pub(super) fn push_lent(&mut self, row: u64, buffer: &Buffer, len: usize, fields: usize) {
        if self.lent.is_none() {
            debug_assert!(self.recs.is_empty(), "a lent line in a batch of copies");
            self.lent = Some(buffer.clone());
        }
        self.bytes += len;
        self.recs.push(Rec {
            row,
            first: self.used,
            fields,
        });
        self.used += fields;
    }

    /// Whether lines in `buffer` may be added without a copy: the batch is empty, or holds
    /// lines of that buffer only.
    pub(super) fn may_lend(&self, buffer: &Buffer) -> bool {
        match &self.lent {
            Some(lent) => std::sync::Arc::ptr_eq(lent, buffer),
            None => self.recs.is_empty(),
        }
    }

    /// Whether the batch holds lines of a buffer other than `buffer`: the reader checks it
    /// before going on, so that a batch lends one buffer only and the old one comes free.
    pub(super) fn lends_other_than(&self, buffer: &Buffer) -> bool {
        self.lent
            .as_ref()
            .is_some_and(|lent| !std::sync::Arc::ptr_eq(lent, buffer))
    }

    /// Copies the lent bytes of the records so far, so that copied ones may follow: csv-core
    /// read a record, which is rare enough that the lines before it are copied once.
    pub(super) fn own(&mut self) {
        let Some(lent) = self.lent.take() else {
            return;
        };
        let spans = &mut self.spans[..self.used];
        let lo = spans.iter().map(|&f| range(f).start).min().unwrap_or(0);
        let hi = spans.iter().map(|&f| range(f).end).max().unwrap_or(lo);
        self.data.clear();
        self.data.extend_from_slice(&lent[lo..hi]);
        for f in spans {
            let r = range(*f);
            *f = span(r.start - lo, r.end - lo);
        }
    }

    pub(super) fn is_full(&self) -> bool {
        self.recs.len() >= RECORDS || self.bytes >= BYTES
    }

    pub(super) fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.data.clear();
        self.lent = None;
        self.bytes = 0;
        self.used = 0;
        self.recs.clear();
    }

    pub(super) fn recs(&self) -> &[Rec] {
        &self.recs
    }

    /// Field `i` of `r`, as the record's own field list would give it.
    #[inline]
    pub(super) fn field(&self, r: &Rec, i: usize) -> Option<&[u8]> {
        if i >= r.fields {
            return None;
        }
        let bytes = match &self.lent {
            Some(lent) => &lent[..],
            None => &self.data[..],
        };
        bytes.get(range(*self.spans.get(r.first + i)?))
    }
}

impl State<'_> {
    /// Whether a data record's cells may wait in the batch (no rule reads two columns of a row).
    pub(super) fn batching(&self) -> bool {
        self.conds.is_empty() && self.compares.is_empty()
    }

    /// Runs the cell checks of every record in the batch here, column by column, and empties it.
    pub(super) fn flush_batch(&mut self) {
        let mut batch = std::mem::take(&mut self.batch);
        self.check_batch(&batch);
        batch.clear();
        self.batch = batch;
    }

    /// This thread's cell checks of every record in `batch`, column by column.
    pub(super) fn check_batch(&mut self, batch: &Batch) {
        for c in 0..self.cols.len() {
            self.check_batch_column(batch, c);
        }
    }

    /// The checks of column `c` over every record in `batch`, when this thread checks it.
    pub(super) fn check_batch_column(&mut self, batch: &Batch, c: usize) {
        if self.cols[c].absent || self.cols[c].delegated || self.cols[c].idle {
            return;
        }
        let index = self.cols[c].index;
        let hashed = index.is_some_and(|i| self.prefetch_unique(c, batch, i));
        let plan = &self.cols[c];
        // Cells whose only work is the memo's (and a `completeness` count): a clean
        // remembered verdict is the end of it.
        let remembered = plan.memo.on()
            && plan.collect.is_none()
            && plan.reference.is_none()
            && !plan
                .checks
                .iter()
                .any(|(check, ..)| matches!(check, CellCheck::Unique { .. }))
            && self.null_values.is_empty();
        if remembered
            && let Some(i) = index
            && self.cols[c].memo.large()
        {
            // As for `unique`: the memo's sets for the whole batch first, in a loop whose
            // loads do not wait for each other.
            let memo = &self.cols[c].memo;
            let acc = batch
                .recs
                .iter()
                .filter_map(|r| batch.field(r, i))
                .fold(0u64, |acc, v| acc.wrapping_add(memo.touch(v)));
            std::hint::black_box(acc);
        }
        if remembered && let Some(i) = index {
            return self.check_remembered(batch, c, i);
        }
        if !remembered
            && self.plain(c)
            && let Some(i) = index
        {
            let mut n = 0;
            while n < batch.recs.len() {
                n = self.check_plain_run(batch, c, i, n, hashed);
                if let Some(r) = batch.recs.get(n) {
                    let hash = if hashed {
                        self.hashes.get(n).copied()
                    } else {
                        None
                    };
                    self.check_cell_hashed(c, batch.field(r, i), r.row, hash);
                    n += 1;
                }
            }
            return;
        }
        for (n, r) in batch.recs.iter().enumerate() {
            let v = index.and_then(|i| batch.field(r, i));
            let hash = if hashed {
                self.hashes.get(n).copied()
            } else {
                None
            };
            self.check_cell_hashed(c, v, r.row, hash);
        }
    }

    /// The checks of a column whose only work is its memo's (see `check_batch_column`), in a
    /// loop of their own: most of the values are the memo's clean hits, which a run takes
    /// with the column borrowed once and counts together; any other value (missing, empty,
    /// a failing verdict, a miss, the end of the memo's window) ends the run and goes the
    /// way every value went before, and the run resumes after it. Under callgrind a clean
    /// hit of the bench's `gender` took 133 instructions in the loop shared with the other
    /// kinds of column, and takes 69 in a run (with the memo's table of short values).
    fn check_remembered(&mut self, batch: &Batch, c: usize, i: usize) {
        // A memo larger than the first-level cache also misses more: a miss would be looked
        // up twice, by the run and then by `look`.
        let large = self.cols[c].memo.large();
        let mut n = 0;
        while n < batch.recs.len() {
            if !large {
                n = self.remembered_run(batch, c, i, n);
            }
            let Some(r) = batch.recs.get(n) else {
                break;
            };
            n += 1;
            let v = batch.field(r, i);
            let Some(v) = v.filter(|v| !v.is_empty()) else {
                self.check_cell_hashed(c, v, r.row, None);
                continue;
            };
            let plan = &mut self.cols[c];
            if !plan.tallies.is_empty() {
                tally(plan, self.seed, v, None, r.row, &mut self.slots, self.k);
            }
            match plan.memo.look(v) {
                Looked::Clean => {}
                Looked::Kept(verdict) => self.check_looked_up(c, v, r.row, Some(verdict)),
                Looked::Missed => self.check_looked_up(c, v, r.row, None),
            }
        }
    }

    /// Column `c`'s clean memo hits from record `from` on: tallied, counted, and nothing
    /// else to do. Returns the index of the first record that is not one, or the length.
    fn remembered_run(&mut self, batch: &Batch, c: usize, i: usize, from: usize) -> usize {
        let (seed, k) = (self.seed, self.k);
        let plan = &mut self.cols[c];
        let budget = plan.memo.clean_budget() as usize;
        let end = batch.recs.len().min(from + budget);
        let mut n = from;
        while n < end {
            let r = &batch.recs[n];
            match batch.field(r, i) {
                Some(v) if !v.is_empty() && plan.memo.is_clean(v) => {
                    if !plan.tallies.is_empty() {
                        tally(plan, seed, v, None, r.row, &mut self.slots, k);
                    }
                }
                _ => break,
            }
            n += 1;
        }
        plan.memo.count_clean((n - from) as u32);
        n
    }

    /// Reads the `unique` set where the batch's values of column `c` will be looked up: the
    /// loads are independent, so their cache misses overlap instead of coming one per row.
    /// Leaves each record's value hash in `hashes` (0 for a missing field) and says whether
    /// it did, so the checks do not hash again.
    fn prefetch_unique(&mut self, c: usize, batch: &Batch, i: usize) -> bool {
        // A table that fits in the cache, or none (ascending ids are a run): nothing to read
        // ahead, and the hashes are computed only for the values that reach it.
        let large =
            |check: &CellCheck| matches!(check, CellCheck::Unique { seen, .. } if seen.large());
        if !self.cols[c].checks.iter().any(|(check, ..)| large(check)) {
            return false;
        }
        // Hashes first, then the loads in a loop of their own: nothing between two loads
        // waits for a miss, so many are in flight at once.
        let mut hashes = std::mem::take(&mut self.hashes);
        hashes.clear();
        hashes.extend(
            batch
                .recs
                .iter()
                .map(|r| batch.field(r, i).map_or(0, |v| hash_value(self.seed, v))),
        );
        for (check, ..) in &self.cols[c].checks {
            if let CellCheck::Unique { seen, .. } = check {
                let acc = hashes
                    .iter()
                    .fold(0u64, |acc, &h| acc.wrapping_add(seen.peek(h)));
                std::hint::black_box(acc);
            }
        }
        self.hashes = hashes;
        true
    }
}
