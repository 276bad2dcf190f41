//! Batches that lend the read buffer against batches of copies: a plain file's records stay in
//! the stored bytes' buffers (carried over at each buffer's end), a gzip file's are copied,
//! and both must give one report.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::stored::SharedHash;
use super::tests::content;
use super::{Threads, ValidateOptions, validate_hashed};
use crate::Contract;

const CONTRACT: &str = "dataset: d\ntables:\n  - name: t\n    columns:\n      - { name: a, required: true }\n      - { name: b, type: integer }\n      - { name: c }\n    rules:\n      - { rule: max_length, column: c, max: 2 }\n      - { rule: unique, column: a }\n";

/// Rows the fast path takes, with csv-core's among them: a quoted line break (a record over
/// two lines) every 101 rows, a doubled quote every 53, and two lines longer than what moves
/// to the next buffer. `shift` moves every buffer boundary to another place in the records.
fn mixed(rows: usize, shift: usize) -> Vec<u8> {
    let mut data = format!("a,b,c\npad,0,{}\n", "p".repeat(shift)).into_bytes();
    for i in 0..rows {
        match i {
            _ if i % 101 == 0 => writeln!(data, "{i},\"1\n2\",ab"),
            _ if i % 53 == 0 => writeln!(data, "{i},{i},\"a\"\"b\""),
            40_000 | 90_001 => writeln!(data, "{i},{i},{}", "x".repeat(100_000)),
            _ => writeln!(data, "{i},{i},ab"),
        }
        .unwrap();
    }
    data
}

#[test]
fn lent_buffers_give_the_report_copies_give() {
    let contract = Contract::parse(CONTRACT, Path::new("t.yaml")).unwrap();
    let table = &contract.tables[0];
    let opts = ValidateOptions::default();
    let run = |reader: &mut dyn Read, checking: bool| {
        let threads = Threads {
            hashing: false,
            checking,
        };
        let hash = Arc::new(SharedHash::default());
        validate_hashed(&contract, table, reader, &opts, threads, hash)
            .unwrap()
            .report
    };
    // Past both splits of the columns between two threads (about 57,000 rows).
    let rows = 120_000;
    for shift in [0, 7, 4096, 100_003] {
        let plain = mixed(rows, shift);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let copied = content(&run(&mut &gz.finish().unwrap()[..], false));
        assert_eq!(copied.0, rows as u64 + 1);
        for checking in [false, true] {
            let lent = run(&mut &plain[..], checking);
            assert_eq!(lent.sha256, hex::encode(Sha256::digest(&plain)), "{shift}");
            assert_eq!(lent.bytes, plain.len() as u64);
            assert_eq!(
                content(&lent),
                copied,
                "shift {shift}, checking thread {checking}"
            );
        }
        let failed = |rule: &str| copied.1.iter().find(|r| r.0 == rule).unwrap().1;
        // Every 101st row's b is not an integer; every other 53rd row's c, both long lines and
        // the padding row (past two bytes) are over max_length.
        assert_eq!(failed("type"), rows.div_ceil(101) as u64);
        let over = (0..rows).filter(|i| i % 101 != 0 && i % 53 == 0).count() as u64
            + 2
            + u64::from(shift > 2);
        assert_eq!(failed("max_length"), over, "shift {shift}");
    }
}
