//! Moving columns between the threads from their waits.

use std::path::Path;

use super::super::plan::State;
use super::super::tests::{WIDE, wide, wide_report};
use super::{column_to_move, recv_spinning, send_spinning};
use crate::{Contract, ValidateOptions};

#[test]
fn the_costliest_column_that_does_not_overshoot_moves_to_the_thread_that_waited() {
    let us = 1e-6;
    let costs = [10.0 * us, 4.0 * us, 6.0 * us, 0.0, 3.0 * us];
    let share = [true, true, false, true, false];
    // The checking thread has 9 us more per batch: its 4 us column leaves 1 us; its 10 us
    // one would turn the gap round (11 us the other way), and the free one changes nothing.
    assert_eq!(column_to_move(&costs, &share, 9.0 * us), Some(1));
    // This thread has 12 us more: its 6 us column closes the gap exactly.
    assert_eq!(column_to_move(&costs, &share, -12.0 * us), Some(2));
    // 7 us more here: the 3 us column leaves 1 us; the 6 us one would leave 5 the other way.
    assert_eq!(column_to_move(&costs, &share, -7.0 * us), Some(4));
    // 5 us more here: every column would overshoot.
    assert_eq!(column_to_move(&costs, &share, -5.0 * us), None);
    // 40 us more there: the 4 us column closes less than a quarter of it, the 10 us one
    // is the checking thread's costliest.
    assert_eq!(column_to_move(&costs, &share, 40.0 * us), Some(0));
    assert_eq!(
        column_to_move(&costs, &[false, true, false, true, true], 40.0 * us),
        None
    );
    // A gap too small to be worth a new thread.
    assert_eq!(column_to_move(&costs, &share, 1.0 * us), None);
    // The checking thread keeps its last column, whatever the gap.
    let alone = [true, false, false, false, false];
    assert_eq!(column_to_move(&costs, &alone, 20.0 * us), None);
    assert_eq!(column_to_move(&costs, &alone, -12.0 * us), Some(2));
}

/// Columns moved every few batches, one way then the other, take their counts, row lists,
/// sets and keys with them: the report is the one a single thread gives.
#[test]
fn columns_moved_between_the_threads_keep_the_result() {
    let contract = Contract::parse(WIDE, Path::new("t.yaml")).unwrap();
    let table = &contract.tables[0];
    let opts = ValidateOptions {
        index_columns: vec!["id".into(), "pid".into()],
        check_references: true,
        ..ValidateOptions::default()
    };
    // 234 batches: split at 81 and 113, then a look every 8, 15 in all. The checking thread
    // keeps its last column, so a move to the reader may be declined, but not the one after.
    let data = wide(120_000);
    let run = |parallel: bool, forced: Option<(usize, bool)>| {
        let mut st = State::new(table, &opts);
        st.parallel = parallel;
        st.forced_gap = forced;
        wide_report(st, &data)
    };
    let (one, _) = run(false, None);
    for to_reader in [true, false] {
        let (two, splits) = run(true, Some((8, to_reader)));
        assert!(
            splits >= 2 + 7,
            "{splits} threads started, first to the reader: {to_reader}"
        );
        assert_eq!(two, one, "first to the reader: {to_reader}");
    }
}

/// Waiting by polling first gives what waiting on the channel gives: the value, however late
/// it comes (past the polling, the wait sleeps), and an error once the other side is gone.
#[test]
fn spinning_waits_get_what_blocking_ones_get() {
    use std::sync::mpsc::{channel, sync_channel};
    use std::time::Duration;
    let (tx, rx) = channel();
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        tx.send(7).unwrap();
    });
    assert_eq!(recv_spinning(&rx), Ok(7));
    late.join().unwrap();
    assert!(recv_spinning(&rx).is_err(), "the sender is gone");

    let (tx, rx) = sync_channel(1);
    send_spinning(&tx, 1).unwrap();
    let taker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        (rx.recv().unwrap(), rx.recv().unwrap())
    });
    // The queue is full until the taker wakes up.
    send_spinning(&tx, 2).unwrap();
    assert_eq!(taker.join().unwrap(), (1, 2));
    assert!(send_spinning(&tx, 3).is_err(), "the receiver is gone");
}
