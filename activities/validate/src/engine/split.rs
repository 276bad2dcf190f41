//! Both cores for one CSV file: once a file proves larger than one batch, a second thread
//! checks some of the columns of every batch while this one reads, splits records and checks
//! the others. The columns are split so both threads carry about the same cost (this one also
//! tokenizes). Each column is checked by one thread only, in row order, with its own rule
//! slots, so the counts, row lists and set contents are those of one thread; at the end the
//! checking thread's columns and slots are moved back. Batches are shared (`Arc`) and recycled,
//! at most [`DEPTH`] of them, so memory stays constant.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, channel, sync_channel};
use std::thread::{Scope, ScopedJoinHandle};

use super::batch::Batch;
use super::plan::{CellCheck, ColPlan, State};
use crate::contract::ColumnType;

/// Batches in existence while a checking thread runs: one filling, the others being checked.
const DEPTH: usize = 4;

/// The checking thread, once started.
pub(super) struct Split<'scope, 'a> {
    to_check: SyncSender<Arc<Batch>>,
    checked: Receiver<Arc<Batch>>,
    handle: ScopedJoinHandle<'scope, State<'a>>,
    batches: usize,
}

/// Whether a checking thread was tried, and the thread when it runs.
pub(super) enum Helper<'scope, 'a> {
    Untried,
    Declined,
    Running(Split<'scope, 'a>),
}

impl<'a> State<'a> {
    /// Checks the full batch: all of it here, or this thread's columns here and the others on
    /// the checking thread (started at the first full batch of a file that may use one).
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
        // Not for the last, partial batch of a file smaller than one: no thread for small files.
        if matches!(helper, Helper::Untried) && self.batch.is_full() {
            *helper = match self.start_helper(scope) {
                Some(split) => Helper::Running(split),
                None => Helper::Declined,
            };
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
            Ok(other) => other,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        for c in 0..self.cols.len() {
            if !self.cols[c].delegated {
                continue;
            }
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
    }

    /// Starts the checking thread with the costlier share of the columns, or None when one
    /// thread is better: a single core, rules that read two columns of a row, or too few
    /// columns worth moving.
    fn start_helper<'scope>(
        &mut self,
        scope: &'scope Scope<'scope, '_>,
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
        let mine = self.helper_columns();
        if !mine.iter().any(|&m| m) {
            return None;
        }
        let mut other = State::new(self.table, self.opts);
        for (c, plan) in other.cols.iter_mut().enumerate() {
            plan.index = self.cols[c].index;
            plan.absent = self.cols[c].absent;
            plan.delegated = !mine[c];
            self.cols[c].delegated = mine[c];
        }
        let (to_check, rx) = sync_channel::<Arc<Batch>>(DEPTH);
        let (back, checked) = channel();
        let handle = std::thread::Builder::new()
            .name("lakegate-checks".into())
            .spawn_scoped(scope, move || {
                for batch in rx {
                    other.check_batch(&batch);
                    // The reader may have stopped (a failed stream); then nobody needs it.
                    let _ = back.send(batch);
                }
                other
            })
            .ok();
        let Some(handle) = handle else {
            for plan in &mut self.cols {
                plan.delegated = false;
            }
            return None;
        };
        self.split_used = true;
        Some(Split {
            to_check,
            checked,
            handle,
            // The one being filled; the thread gets its first batch next.
            batches: 1,
        })
    }

    /// Which columns go to the checking thread: about half the estimated cost of a row, this
    /// thread's share including reading and splitting the records.
    fn helper_columns(&self) -> Vec<bool> {
        let rows = self.batch.len().max(1) as f64;
        let mut costs: Vec<(usize, f64)> = self
            .cols
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.absent && p.index.is_some())
            .map(|(c, p)| {
                let avg = p.index.map_or(0, |i| self.batch.field_bytes(i)) as f64 / rows;
                (c, cost(p, avg))
            })
            .collect();
        let checks: f64 = costs.iter().map(|(_, n)| n).sum();
        // Reading, splitting and batching a record: about 130 ns for the benchmark's 217-byte
        // rows since the one-pass splitter (it was three times that with memchr per field).
        let reading = 30.0 + 0.5 * self.batch.data_len() as f64 / rows;
        let target = (checks + reading) / 2.0;
        costs.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut mine = vec![false; self.cols.len()];
        let mut load = 0.0;
        for (c, n) in costs {
            if load + n / 2.0 <= target {
                mine[c] = true;
                load += n;
            }
        }
        mine
    }
}

/// Estimated nanoseconds a value of column `plan` costs, from profiles of the benchmark: a
/// base per cell, the type's parse, each rule, the PHI scan by length, key hashing.
fn cost(plan: &ColPlan, avg_len: f64) -> f64 {
    let mut n = 12.0
        + match plan.kind {
            ColumnType::String => 0.0,
            ColumnType::Integer | ColumnType::Decimal | ColumnType::Boolean => 8.0,
            ColumnType::Timestamp | ColumnType::FhirDateTime => 50.0,
            ColumnType::Date | ColumnType::FhirDate => 35.0,
        };
    for (check, ..) in &plan.checks {
        n += match check {
            CellCheck::Regex(_) => 30.0,
            CellCheck::Unique { .. } => 70.0,
            CellCheck::MaxLength(_) => 2.0 + avg_len / 8.0,
            _ => 5.0,
        };
    }
    if plan.phi.is_some() && plan.kind == ColumnType::String {
        n += 5.0 + avg_len * 0.5;
    }
    if plan.collect.is_some() || plan.reference.is_some() {
        n += 40.0;
    }
    n
}

fn stopped() -> std::io::Error {
    std::io::Error::other("the checking thread stopped")
}
