//! Both cores for one CSV file: once a file proves larger than a few dozen batches, a second
//! thread checks some of the columns of every batch while this one reads, splits records and
//! checks the others. The columns are split so both threads carry about the same cost (this
//! one also tokenizes), as measured on the batches before the split: what a column costs
//! depends on its data (how often its memo answers, how long its text is) more than on its
//! rules. Each column is checked by one thread only, in row order, with its own rule
//! slots, so the counts, row lists and set contents are those of one thread; at the end the
//! checking thread's columns and slots are moved back. Batches are shared (`Arc`) and recycled,
//! at most [`DEPTH`] of them, so memory stays constant.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, channel, sync_channel};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use super::batch::Batch;
use super::plan::State;

/// Batches in existence while a checking thread runs: one filling, the others being checked.
const DEPTH: usize = 4;

/// Full batches checked on this thread before the split: the first ones fill the memos, the
/// later ones are timed.
const WARM: usize = 64;
const TIMED: usize = 16;

/// The checking thread, once started.
pub(super) struct Split<'scope, 'a> {
    to_check: SyncSender<Arc<Batch>>,
    checked: Receiver<Arc<Batch>>,
    handle: ScopedJoinHandle<'scope, Option<State<'a>>>,
    batches: usize,
}

/// Whether a checking thread was tried, and the thread when it runs.
pub(super) enum Helper<'scope, 'a> {
    Untried(Timing),
    Declined,
    Running(Split<'scope, 'a>),
}

impl Helper<'_, '_> {
    pub(super) fn untried() -> Self {
        Helper::Untried(Timing::default())
    }
}

/// What the batches before the split took on this thread: the reading of each batch and
/// each column's checks of it.
#[derive(Debug, Default)]
pub(super) struct Timing {
    full_batches: usize,
    /// When this thread last went back to reading.
    reading_since: Option<Instant>,
    reading: Vec<Duration>,
    /// Per batch, per column.
    columns: Vec<Vec<Duration>>,
}

/// The mean without the slowest eighth (batches that lost the core).
fn typical(samples: &[Duration]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let kept = &sorted[..sorted.len() - sorted.len() / 8];
    kept.iter().map(Duration::as_secs_f64).sum::<f64>() / kept.len().max(1) as f64
}

impl<'a> State<'a> {
    /// Checks the full batch: all of it here, or this thread's columns here and the others on
    /// the checking thread (started after the timed batches of a file that may use one).
    pub(super) fn dispatch<'scope>(
        &mut self,
        helper: &mut Helper<'scope, 'a>,
        scope: &'scope Scope<'scope, '_>,
    ) -> std::io::Result<()>
    where
        'a: 'scope,
    {
        if self.batch.is_empty() {
            return Ok(());
        }
        // Only full batches count: no thread for a file smaller than the batches timed.
        if let Helper::Untried(timing) = helper
            && self.batch.is_full()
        {
            timing.full_batches += 1;
            if timing.full_batches > WARM + TIMED {
                let timing = std::mem::take(timing);
                *helper = match self.start_helper(scope, &timing) {
                    Some(split) => Helper::Running(split),
                    None => Helper::Declined,
                };
            } else if timing.full_batches > WARM {
                self.timed_flush(timing);
                return Ok(());
            }
        }
        let Helper::Running(split) = helper else {
            self.flush_batch();
            return Ok(());
        };
        let batch = Arc::new(std::mem::take(&mut self.batch));
        if split.to_check.send(batch.clone()).is_err() {
            return Err(stopped());
        }
        self.check_batch(&batch);
        drop(batch);
        // A batch the thread is done with, a new one while fewer than DEPTH exist, or wait.
        let next = match split.checked.try_recv() {
            Ok(b) => b,
            Err(TryRecvError::Disconnected) => return Err(stopped()),
            Err(TryRecvError::Empty) if split.batches < DEPTH => {
                split.batches += 1;
                Arc::new(Batch::default())
            }
            Err(TryRecvError::Empty) => split.checked.recv().map_err(|_| stopped())?,
        };
        self.batch = Arc::try_unwrap(next).unwrap_or_default();
        self.batch.clear();
        Ok(())
    }

    /// Waits for the checking thread and takes its columns' state back. A panic there is
    /// one here, as it was when one thread checked everything.
    pub(super) fn join_helper(&mut self, helper: Helper<'_, 'a>) {
        let Helper::Running(split) = helper else {
            return;
        };
        drop(split.to_check);
        let mut other = match split.handle.join() {
            Ok(Some(other)) => other,
            Ok(None) => unreachable!("the checking thread is given its state once it runs"),
            Err(panic) => std::panic::resume_unwind(panic),
        };
        for c in 0..self.cols.len() {
            if self.cols[c].delegated {
                self.trade_column(&mut other, c);
            }
        }
    }

    /// Swaps column `c`'s state with `other`'s: its plan (memo, sets, counters), its rule
    /// slots, its collected keys and reference probe.
    fn trade_column(&mut self, other: &mut State<'_>, c: usize) {
        std::mem::swap(&mut self.cols[c], &mut other.cols[c]);
        let plan = &self.cols[c];
        for s in plan.checks.iter().map(|(_, s, _)| *s).chain(plan.phi) {
            std::mem::swap(&mut self.slots[s], &mut other.slots[s]);
        }
        if let Some(i) = plan.collect {
            std::mem::swap(&mut self.collected[i], &mut other.collected[i]);
        }
        if let Some(i) = plan.reference {
            std::mem::swap(&mut self.probes[i], &mut other.probes[i]);
        }
    }

    /// `flush_batch`, timing each column's checks and the reading since the last batch.
    fn timed_flush(&mut self, timing: &mut Timing) {
        let started = Instant::now();
        if let Some(since) = timing.reading_since {
            timing.reading.push(started - since);
        }
        let batch = std::mem::take(&mut self.batch);
        let mut columns = Vec::with_capacity(self.cols.len());
        for c in 0..self.cols.len() {
            let t = Instant::now();
            self.check_batch_column(&batch, c);
            columns.push(t.elapsed());
        }
        timing.columns.push(columns);
        self.batch = batch;
        self.batch.clear();
        timing.reading_since = Some(Instant::now());
    }

    /// Starts the checking thread with the costlier share of the columns, or None when one
    /// thread is better: a single core, rules that read two columns of a row, or too few
    /// columns worth moving.
    fn start_helper<'scope>(
        &mut self,
        scope: &'scope Scope<'scope, '_>,
        timing: &Timing,
    ) -> Option<Split<'scope, 'a>>
    where
        'a: 'scope,
    {
        if !self.parallel
            || !self.batching()
            || std::thread::available_parallelism().map_or(true, |n| n.get() < 2)
        {
            return None;
        }
        let mine: Vec<bool> = helper_columns(timing, self.cols.len())
            .into_iter()
            .zip(&self.cols)
            .map(|(m, plan)| m && !plan.absent && plan.index.is_some())
            .collect();
        if !mine.iter().any(|&m| m) {
            return None;
        }
        // The thread starts before any column moves: a spawn that fails drops its closure,
        // and columns already inside it would take their counts so far with them.
        let (to_check, rx) = sync_channel::<Arc<Batch>>(DEPTH);
        let (back, checked) = channel();
        let (give, receive) = sync_channel::<State<'a>>(1);
        let handle = std::thread::Builder::new()
            .name("lakegate-checks".into())
            .spawn_scoped(scope, move || {
                let mut other = receive.recv().ok()?;
                for batch in rx {
                    other.check_batch(&batch);
                    // The reader may have stopped (a failed stream); then nobody needs it.
                    let _ = back.send(batch);
                }
                Some(other)
            })
            .ok()?;
        // The checking thread carries on from where this one is: the columns it takes move
        // over with what they counted so far, and its `unique` sets hash as this thread did.
        let mut other = State::new(self.table, self.opts);
        other.seed = self.seed;
        for (c, &moved) in mine.iter().enumerate() {
            other.cols[c].index = self.cols[c].index;
            other.cols[c].absent = self.cols[c].absent;
            if moved {
                self.trade_column(&mut other, c);
            }
            other.cols[c].delegated = !moved;
            self.cols[c].delegated = moved;
        }
        // Room for one and a receiver that waits for it: this send cannot fail.
        give.send(other)
            .expect("the checking thread waits for its state before anything else");
        self.split_used = true;
        Some(Split {
            to_check,
            checked,
            handle,
            // The one being filled; the thread gets its first batch next.
            batches: 1,
        })
    }
}

/// Which columns go to the checking thread: about half of what a batch cost, this thread's
/// half including reading and splitting the records.
fn helper_columns(timing: &Timing, columns: usize) -> Vec<bool> {
    let mut costs: Vec<(usize, f64)> = (0..columns)
        .map(|c| {
            let samples: Vec<Duration> = timing
                .columns
                .iter()
                .filter_map(|batch| batch.get(c).copied())
                .collect();
            (c, typical(&samples))
        })
        .collect();
    let checks: f64 = costs.iter().map(|(_, n)| n).sum();
    let target = (checks + typical(&timing.reading)) / 2.0;
    costs.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut mine = vec![false; columns];
    let mut load = 0.0;
    for (c, n) in costs {
        if n > 0.0 && load + n / 2.0 <= target {
            mine[c] = true;
            load += n;
        }
    }
    mine
}

fn stopped() -> std::io::Error {
    std::io::Error::other("the checking thread stopped")
}
