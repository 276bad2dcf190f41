//! Both cores for one CSV file: once a file proves larger than a few dozen batches, a second
//! thread checks some of the columns of every batch while this one reads, splits records and
//! checks the others. The columns are split so both threads carry about the same cost (this
//! one also tokenizes), as measured on the batches before the split: what a column costs
//! depends on its data (how often its memo answers, how long its text is) more than on its
//! rules. Costs measured on one thread misjudge two: the checking thread reads batches another
//! core wrote, and the reading thread's share includes hashing that comes a buffer at a time.
//! So both threads time their columns again on the batches after the split, and the columns
//! are split once more from those figures. Each column is checked by one thread only, in row
//! order, with its own rule slots, so the counts, row lists and set contents are those of one
//! thread; when the checking thread stops (to split again, or at the end) its columns and slots
//! are moved back. Batches are shared (`Arc`) and recycled, at most [`DEPTH`] of them, so
//! memory stays constant. On two cores the checking thread also hashes the stored bytes (see
//! `stored`), and the columns are shared out with that counted on its side.
//!
//! Timed costs still leave one thread waiting for the other: a share of whole columns is
//! uneven, and what a column costs changes with the data and with what else runs on the
//! machine (on the bench's shared two cores, the checking thread's columns cost 10 % more
//! than on one thread in some runs and 60 % more in others). So after the second split, each
//! thread counts the time it waits for the other, and every [`WINDOW`] batches the column
//! that best closes the gap moves to the thread that waited.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{
    Receiver, RecvError, SyncSender, TryRecvError, TrySendError, channel, sync_channel,
};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use super::batch::Batch;
use super::plan::State;
use super::stored::{Lane, Work};

/// Batches in existence while a checking thread runs: one filling, the others being checked.
const DEPTH: usize = 4;

/// Full batches checked on this thread before the split: the first ones fill the memos, the
/// later ones are timed.
const WARM: usize = 64;
const TIMED: usize = 16;

/// Batches both threads time after the first split, before the second.
const RETIMED: usize = 32;

/// Batches between two looks at the threads' waits (about 60 ms on the bench).
const WINDOW: usize = 512;

/// Less than this gap between the threads, in seconds per batch, is left alone: a move stops
/// the checking thread and starts another.
const LEAST_GAP: f64 = 2e-6;

/// The checking thread, once started.
pub(super) struct Split<'scope, 'a> {
    to_check: SyncSender<Work<Arc<Batch>>>,
    checked: Receiver<Arc<Batch>>,
    handle: ScopedJoinHandle<'scope, Option<State<'a>>>,
    batches: usize,
    /// Until the columns are split again: this thread's timing since the split, and where the
    /// checking thread sends its own.
    retiming: Option<(Timing, Receiver<Timing>)>,
    /// Once they are: what each column cost and which the checking thread checks.
    balance: Option<Balance>,
    /// Nanoseconds the checking thread waited for work, added by it.
    idle: Arc<AtomicU64>,
}

/// The split after the second one, and the waits since the last look at them.
struct Balance {
    /// Per column, seconds per batch, as last timed.
    costs: Vec<f64>,
    /// The columns the checking thread checks.
    share: Vec<bool>,
    batches: usize,
    /// This thread's waits for the checking thread.
    waited: Duration,
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
    /// Hashing the stored bytes over the timed batches: the reader's share of `reading`
    /// before the split, the checking thread's own work after it.
    hashing: Duration,
    /// The reader's hashing total when it last went back to reading.
    hashed_since: Duration,
}

impl Timing {
    /// Ends the reading that began when this thread last went back to it; `hashed` is the
    /// reader's hashing total now.
    fn reading_done(&mut self, hashed: Duration) {
        if let Some(since) = self.reading_since {
            self.reading.push(since.elapsed());
            self.hashing += hashed.saturating_sub(self.hashed_since);
        }
    }

    /// Goes back to reading; `hashed` is the reader's hashing total now.
    fn reading_again(&mut self, hashed: Duration) {
        self.reading_since = Some(Instant::now());
        self.hashed_since = hashed;
    }

    /// Hashing per batch over `batches` timed ones.
    fn hashing_per(&self, batches: usize) -> f64 {
        self.hashing.as_secs_f64() / batches.max(1) as f64
    }

    /// What each column cost per batch, typically.
    fn costs(&self, columns: usize) -> Vec<f64> {
        (0..columns)
            .map(|c| {
                let samples: Vec<Duration> = self
                    .columns
                    .iter()
                    .filter_map(|batch| batch.get(c).copied())
                    .collect();
                typical(&samples)
            })
            .collect()
    }
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
        if let Helper::Running(split) = helper
            && split
                .retiming
                .as_ref()
                .is_some_and(|(mine, _)| mine.columns.len() >= RETIMED)
        {
            self.split_again(helper, scope)?;
        }
        let Helper::Running(split) = helper else {
            self.flush_batch();
            return Ok(());
        };
        let batch = Arc::new(std::mem::take(&mut self.batch));
        let sending = Instant::now();
        if send_spinning(&split.to_check, Work::Check(batch.clone())).is_err() {
            return Err(stopped());
        }
        let mut waited = sending.elapsed();
        match &mut split.retiming {
            Some((mine, _)) if mine.columns.len() < RETIMED => {
                mine.reading_done(self.hashed_here());
                self.timed_check(&batch, mine);
            }
            _ => self.check_batch(&batch),
        }
        drop(batch);
        // A batch the thread is done with, a new one while fewer than DEPTH exist, or wait.
        let next = match split.checked.try_recv() {
            Ok(b) => b,
            Err(TryRecvError::Disconnected) => return Err(stopped()),
            Err(TryRecvError::Empty) if split.batches < DEPTH => {
                split.batches += 1;
                Arc::new(Batch::default())
            }
            Err(TryRecvError::Empty) => {
                let waiting = Instant::now();
                let next = recv_spinning(&split.checked).map_err(|_| stopped())?;
                waited += waiting.elapsed();
                next
            }
        };
        self.batch = Arc::try_unwrap(next).unwrap_or_default();
        self.batch.clear();
        // Reading starts after any wait for the checking thread: waiting is not its cost.
        if let Some((mine, _)) = &mut split.retiming {
            mine.reading_again(self.hashed_here());
        }
        if let Some(balance) = &mut split.balance {
            balance.waited += waited;
            balance.batches += 1;
            if balance.batches >= self.balance_window() {
                self.rebalance(helper, scope);
            }
        }
        Ok(())
    }

    fn balance_window(&self) -> usize {
        #[cfg(test)]
        if let Some((window, _)) = self.forced_gap {
            return window;
        }
        WINDOW
    }

    /// Moves the column that best closes the gap between the threads' waits over the last
    /// window to the thread that waited, if one closes it enough to be worth a new thread.
    fn rebalance<'scope>(
        &mut self,
        helper: &mut Helper<'scope, 'a>,
        scope: &'scope Scope<'scope, '_>,
    ) where
        'a: 'scope,
    {
        let Helper::Running(split) = helper else {
            return;
        };
        let Some(balance) = split.balance.as_mut() else {
            return;
        };
        let idle = Duration::from_nanos(split.idle.swap(0, Ordering::Relaxed));
        // Positive: this thread waited more, the checking thread has more to do.
        let gap = (balance.waited.as_secs_f64() - idle.as_secs_f64()) / balance.batches as f64;
        // Exactly what the busier side's costliest column closes, one way, then the other.
        #[cfg(test)]
        let gap = match &mut self.forced_gap {
            Some((_, to_reader)) => {
                let side = (0..balance.costs.len()).filter(|&c| balance.share[c] == *to_reader);
                let most = side.map(|c| balance.costs[c]).fold(LEAST_GAP, f64::max);
                *to_reader = !*to_reader;
                if *to_reader { -2.0 * most } else { 2.0 * most }
            }
            None => gap,
        };
        (balance.batches, balance.waited) = (0, Duration::ZERO);
        let Some(c) = column_to_move(&balance.costs, &balance.share, gap) else {
            return;
        };
        let costs = balance.costs.clone();
        let mut share = balance.share.clone();
        share[c] = !share[c];
        self.join_helper(std::mem::replace(helper, Helper::Declined));
        if let Some(mut split) = self.spawn_helper(scope, &share, false) {
            split.balance = Some(Balance::new(costs, share));
            *helper = Helper::Running(split);
        }
    }

    /// Splits the columns again from what they cost on the thread that checked them since
    /// the first split: stops the checking thread (its columns come back) and starts a new
    /// one with the new share.
    fn split_again<'scope>(
        &mut self,
        helper: &mut Helper<'scope, 'a>,
        scope: &'scope Scope<'scope, '_>,
    ) -> std::io::Result<()>
    where
        'a: 'scope,
    {
        let Helper::Running(split) = helper else {
            return Ok(());
        };
        let Some((mine, theirs)) = split.retiming.take() else {
            return Ok(());
        };
        // It times the batches it was sent, and this thread has sent them all. Without its
        // figures it stopped: its panic, if it was one, is this thread's.
        let Ok(theirs) = theirs.recv() else {
            self.join_helper(std::mem::replace(helper, Helper::Declined));
            return Err(stopped());
        };
        let columns = self.cols.len();
        let (my_costs, their_costs) = (mine.costs(columns), theirs.costs(columns));
        let costs: Vec<f64> = (0..columns)
            .map(|c| {
                if self.cols[c].delegated {
                    their_costs[c]
                } else {
                    my_costs[c]
                }
            })
            .collect();
        // The reader hashed nothing since the split: the checking thread did.
        let reading = typical(&mine.reading);
        let hashing = theirs.hashing_per(theirs.columns.len());
        self.join_helper(std::mem::replace(helper, Helper::Declined));
        let share = helper_columns(&costs, reading, hashing);
        if let Some(mut split) = self.spawn_helper(scope, &share, false) {
            split.balance = Some(Balance::new(costs, share));
            *helper = Helper::Running(split);
        }
        Ok(())
    }

    /// Waits for the checking thread and takes its columns' state back. A panic there is
    /// one here, as it was when one thread checked everything.
    pub(super) fn join_helper(&mut self, helper: Helper<'_, 'a>) {
        let Helper::Running(split) = helper else {
            return;
        };
        // Its queue ends once no sender is left, the stored bytes' one included.
        if let Some(hash) = &self.hash {
            hash.take_back();
        }
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
        timing.reading_done(self.hashed_here());
        let batch = std::mem::take(&mut self.batch);
        self.timed_check(&batch, timing);
        self.batch = batch;
        self.batch.clear();
        timing.reading_again(self.hashed_here());
    }

    /// What this thread spent hashing the stored bytes so far.
    fn hashed_here(&self) -> Duration {
        self.hash
            .as_ref()
            .map_or(Duration::ZERO, |h| h.hashed_here())
    }

    /// `check_batch`, timing each column's checks (next to nothing for a column another
    /// thread checks).
    fn timed_check(&mut self, batch: &Batch, timing: &mut Timing) {
        let mut columns = Vec::with_capacity(self.cols.len());
        for c in 0..self.cols.len() {
            let t = Instant::now();
            self.check_batch_column(batch, c);
            columns.push(t.elapsed());
        }
        timing.columns.push(columns);
    }

    /// Starts the checking thread with the costlier share of the columns, or None when one
    /// thread is better: a single core (`parallel` is off, see `Threads::for_machine`), rules
    /// that read two columns of a row, or too few columns worth moving.
    fn start_helper<'scope>(
        &mut self,
        scope: &'scope Scope<'scope, '_>,
        timing: &Timing,
    ) -> Option<Split<'scope, 'a>>
    where
        'a: 'scope,
    {
        if !self.parallel || !self.batching() {
            return None;
        }
        // The hashing in this thread's reading moves to the checking thread with the split.
        let hashing = timing.hashing_per(timing.reading.len());
        let reading = (typical(&timing.reading) - hashing).max(0.0);
        let share = helper_columns(&timing.costs(self.cols.len()), reading, hashing);
        self.spawn_helper(scope, &share, true)
    }

    /// Starts a checking thread with the columns `share` marks (those of them this thread
    /// checks), timing its first batches when the columns are to be split again.
    fn spawn_helper<'scope>(
        &mut self,
        scope: &'scope Scope<'scope, '_>,
        share: &[bool],
        retime: bool,
    ) -> Option<Split<'scope, 'a>>
    where
        'a: 'scope,
    {
        let mine: Vec<bool> = share
            .iter()
            .zip(&self.cols)
            .map(|(&m, plan)| m && !plan.absent && plan.index.is_some())
            .collect();
        if !mine.iter().any(|&m| m) {
            return None;
        }
        // The thread starts before any column moves: a spawn that fails drops its closure,
        // and columns already inside it would take their counts so far with them.
        let (to_check, rx) = sync_channel::<Work<Arc<Batch>>>(DEPTH);
        let (back, checked) = channel();
        let (hashed_back, hashed) = channel();
        let hash = self.hash.clone();
        let idle = Arc::new(AtomicU64::new(0));
        let idled = idle.clone();
        let (give, receive) = sync_channel::<State<'a>>(1);
        let (timed, timings) = sync_channel::<Timing>(1);
        let handle = std::thread::Builder::new()
            .name("lakegate-checks".into())
            .spawn_scoped(scope, move || {
                let mut other = receive.recv().ok()?;
                let mut timing = retime.then(Timing::default);
                loop {
                    let waiting = Instant::now();
                    let Ok(work) = recv_spinning(&rx) else {
                        break;
                    };
                    let waited = u64::try_from(waiting.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    idled.fetch_add(waited, Ordering::Relaxed);
                    let batch = match work {
                        Work::Check(batch) => batch,
                        Work::Hash(buf, range) => {
                            let started = Instant::now();
                            if let Some(hash) = &hash {
                                hash.hash_lent(&buf[range]);
                            }
                            if let Some(t) = &mut timing {
                                t.hashing += started.elapsed();
                            }
                            // The reader may have taken hashing back; then it needs none.
                            let _ = hashed_back.send(buf);
                            continue;
                        }
                    };
                    match &mut timing {
                        Some(t) => {
                            other.timed_check(&batch, t);
                            if t.columns.len() >= RETIMED {
                                // Nobody waits for it once the reader stopped.
                                let _ = timed.send(std::mem::take(t));
                                timing = None;
                            }
                        }
                        None => other.check_batch(&batch),
                    }
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
        if let Some(hash) = &self.hash {
            hash.lend(Lane {
                to_hash: to_check.clone(),
                hashed,
            });
        }
        self.splits += 1;
        Some(Split {
            to_check,
            checked,
            handle,
            // The one being filled; the thread gets its first batch next.
            batches: 1,
            retiming: retime.then(|| (Timing::default(), timings)),
            balance: None,
            idle,
        })
    }
}

/// Which columns go to the checking thread, from what each costs per batch: about half of
/// the total, this thread's half including `reading` (reading and splitting), the checking
/// thread's including `hashing`.
fn helper_columns(costs: &[f64], reading: f64, hashing: f64) -> Vec<bool> {
    let target = (costs.iter().sum::<f64>() + reading + hashing) / 2.0;
    let mut order: Vec<(usize, f64)> = costs.iter().copied().enumerate().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut mine = vec![false; costs.len()];
    let mut load = hashing;
    for (c, n) in order {
        if n > 0.0 && load + n / 2.0 <= target {
            mine[c] = true;
            load += n;
        }
    }
    mine
}

impl Balance {
    fn new(costs: Vec<f64>, share: Vec<bool>) -> Self {
        Balance {
            costs,
            share,
            batches: 0,
            waited: Duration::ZERO,
        }
    }
}

/// The column to move to the other thread when the checking thread has `gap` seconds more
/// to do per batch than this one (less, when negative): the costliest of the busier thread's
/// that does not overshoot. Moving a column that costs `k` changes the gap by `2k`; one that
/// would turn it round makes the next look move one back (the waits are noisy, and a column
/// costs more on the thread that did not read its batch), so `2k` stays within the gap, and
/// a move must close a quarter of it.
fn column_to_move(costs: &[f64], share: &[bool], gap: f64) -> Option<usize> {
    if gap.abs() < LEAST_GAP {
        return None;
    }
    let busier: Vec<usize> = (0..costs.len())
        .filter(|&c| share[c] == (gap > 0.0) && costs[c] > 0.0)
        .collect();
    // The checking thread keeps a column: without one, it would not run, and the hashing
    // would come back here with every column.
    if gap > 0.0 && busier.len() < 2 {
        return None;
    }
    let best = busier
        .into_iter()
        .filter(|&c| 2.0 * costs[c] <= gap.abs())
        .max_by(|&a, &b| costs[a].total_cmp(&costs[b]))?;
    (2.0 * costs[best] >= 0.25 * gap.abs()).then_some(best)
}

/// How long a thread that waits for the other polls before it sleeps. A batch comes about
/// every 100 us; a sleeping thread is woken by a system call on the other side and, on a
/// virtual machine, by its idle virtual CPU being scheduled again, which costs both threads
/// more than the wait. Past this the wait is a long one, and sleeping costs nothing.
const SPIN: Duration = Duration::from_micros(50);

fn recv_spinning<T>(rx: &Receiver<T>) -> Result<T, RecvError> {
    let since = Instant::now();
    loop {
        match rx.try_recv() {
            Ok(v) => return Ok(v),
            Err(TryRecvError::Disconnected) => return Err(RecvError),
            Err(TryRecvError::Empty) if since.elapsed() > SPIN => return rx.recv(),
            Err(TryRecvError::Empty) => spin(),
        }
    }
}

fn send_spinning<T>(tx: &SyncSender<T>, mut v: T) -> Result<(), ()> {
    let since = Instant::now();
    loop {
        match tx.try_send(v) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Disconnected(_)) => return Err(()),
            Err(TrySendError::Full(back)) if since.elapsed() > SPIN => {
                return tx.send(back).map_err(|_| ());
            }
            Err(TrySendError::Full(back)) => {
                v = back;
                spin();
            }
        }
    }
}

fn spin() {
    for _ in 0..32 {
        std::hint::spin_loop();
    }
}

fn stopped() -> std::io::Error {
    std::io::Error::other("the checking thread stopped")
}

#[cfg(test)]
#[path = "split_tests.rs"]
mod tests;
