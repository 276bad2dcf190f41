//! The CSV fast path against csv-core alone, and hashing on a second thread against hashing
//! inline.

use std::io::{BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::plan::State;
use super::stored::SharedHash;
use super::{Limits, Threads, ValidateOptions, validate_hashed};
use crate::Contract;

const CONTRACT: &str = "dataset: d\ntables:\n  - name: t\n    columns:\n      - { name: a, required: true }\n      - { name: b, type: integer }\n      - { name: c }\n    rules:\n      - { rule: max_length, column: c, max: 2 }\n      - { rule: unique, column: a }\n";

/// Rows, then per rule: id, failures, first failing rows.
type Seen = (u64, Vec<(&'static str, u64, Vec<u64>)>);

/// The same table, tab-separated: a delimiter the splitter meets among the control bytes.
const TSV_FORMAT: &str = "    format: { delimiter: \"\\t\" }\n";

/// Everything a report says about the content, from one path or the other.
fn outcome(data: &[u8], fast: bool, buffer: usize) -> Seen {
    outcome_in(CONTRACT, data, fast, buffer)
}

fn outcome_in(contract: &str, data: &[u8], fast: bool, buffer: usize) -> Seen {
    let contract = Contract::parse(contract, Path::new("t.yaml")).unwrap();
    let opts = ValidateOptions {
        limits: Limits {
            max_record_bytes: 40,
            max_fields: 6,
            ..Limits::default()
        },
        ..ValidateOptions::default()
    };
    let mut st = State::new(&contract.tables[0], &opts);
    st.fast_csv = fast;
    st.run(&mut BufReader::with_capacity(buffer, data)).unwrap();
    let slots = st
        .slots
        .iter()
        .map(|s| (s.id, s.failures, s.first_rows.clone()))
        .collect();
    (st.rows, slots)
}

fn csv_bytes() -> impl Strategy<Value = Vec<u8>> {
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
        b"\xEF\xBB\xBF",
        b"a,b,c\n",
    ];
    prop::collection::vec(prop::sample::select(PIECES), 0..80).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn fast_csv_path_agrees_with_csv_core(body in csv_bytes(), buffer in 1usize..64) {
        let mut data = b"a,b,c\n".to_vec();
        data.extend(body);
        prop_assert_eq!(outcome(&data, true, buffer), outcome(&data, false, buffer));
        prop_assert_eq!(outcome(&data, true, 4096), outcome(&data, false, 4096));
    }

    #[test]
    fn fast_tsv_path_agrees_with_csv_core(body in csv_bytes(), buffer in 1usize..64) {
        let contract = CONTRACT.replace("    columns:", &format!("{TSV_FORMAT}    columns:"));
        let mut data = b"a\tb\tc\n".to_vec();
        data.extend(body.iter().map(|&b| if b == b',' { b'\t' } else { b }));
        prop_assert_eq!(
            outcome_in(&contract, &data, true, buffer),
            outcome_in(&contract, &data, false, buffer)
        );
        prop_assert_eq!(
            outcome_in(&contract, &data, true, 4096),
            outcome_in(&contract, &data, false, 4096)
        );
    }
}

#[test]
fn fast_path_splits_like_csv_core() {
    let data = b"a,b,c\n1,2,ab\n\"q\",3,\"\"\n\r\n4,,\n5,6,\"x,\"\r\n\"7\",8,\"a\"\"b\"\n9\n";
    assert_eq!(outcome(data, true, 4096), outcome(data, false, 4096));
    let (rows, _) = outcome(data, true, 4096);
    assert_eq!(rows, 6);
    let tsv = CONTRACT.replace("    columns:", &format!("{TSV_FORMAT}    columns:"));
    let (rows, slots) = outcome_in(&tsv, b"a\tb\tc\n1\t2\tab\n\"3\t\"\t4\t\n", true, 4096);
    assert_eq!(rows, 2);
    assert!(
        slots.iter().all(|(_, failures, _)| *failures == 0),
        "{slots:?}"
    );
}

/// Lines of more fields than the splitter's first room (64 in a batch, 64 without one) take
/// the fast path again with more room, and give what csv-core gives, batched or not (a
/// `compare` rule reads two cells of a row, so its records are checked unbatched).
#[test]
fn wide_lines_split_again_with_more_room() {
    let batched = CONTRACT;
    let unbatched = CONTRACT.replace(
        "    rules:\n",
        "    rules:\n      - { rule: compare, column: b, op: '>=', other: b }\n",
    );
    let mut data = b"a,b,c\n".to_vec();
    for (row, fields) in [3, 63, 64, 65, 3, 129, 300, 2, 1000, 3]
        .into_iter()
        .enumerate()
    {
        let line: Vec<String> = (0..fields).map(|f| format!("v{row}x{f}")).collect();
        data.extend(line.join(",").as_bytes());
        data.push(b'\n');
    }
    let limits = Limits {
        max_fields: 500,
        ..Limits::default()
    };
    for contract in [batched, unbatched.as_str()] {
        let contract = Contract::parse(contract, Path::new("t.yaml")).unwrap();
        let opts = ValidateOptions {
            limits,
            ..ValidateOptions::default()
        };
        let run = |fast: bool| {
            let mut st = State::new(&contract.tables[0], &opts);
            st.fast_csv = fast;
            st.run(&mut BufReader::with_capacity(1 << 16, &data[..]))
                .unwrap();
            let slots: Vec<_> = st
                .slots
                .iter()
                .map(|s| (s.id, s.failures, s.first_rows.clone()))
                .collect();
            (st.rows, slots)
        };
        let fast = run(true);
        assert_eq!(fast, run(false));
        assert_eq!(fast.0, 10);
        // The line of 1,000 fields is over max_fields: another rule's, not column_count's.
        let count = fast.1.iter().find(|s| s.0 == "column_count").unwrap();
        assert_eq!(count.2, [2, 3, 4, 6, 7, 8], "{count:?}");
    }
}

/// Hands out `data` in reads of 1 to `max` bytes, varying, as a network stream does.
struct Trickle<'a> {
    data: &'a [u8],
    max: usize,
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.step = self.step.wrapping_mul(31).wrapping_add(7);
        let n = (1 + self.step % self.max)
            .min(buf.len())
            .min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// `rows` data rows with failures spread through them: duplicate `a` after 50,000 rows, a bad
/// integer every 977 rows, an over-long `c` every 13.
fn planted(rows: usize) -> Vec<u8> {
    let mut data = b"a,b,c\n".to_vec();
    for i in 0..rows {
        let b = if i % 977 == 0 {
            "x".into()
        } else {
            i.to_string()
        };
        let c = if i % 13 == 0 { "abc" } else { "ab" };
        writeln!(data, "{},{b},{c}", i % 50_000).unwrap();
    }
    data
}

/// The stored bytes hashed inline, on a thread of their own (three cores) or by the checking
/// thread (two), of a stream read whole or trickled, plain or gzip: one report, one checksum.
#[test]
fn hashing_on_a_second_thread_gives_the_same_report() {
    let contract = Contract::parse(CONTRACT, Path::new("t.yaml")).unwrap();
    let table = &contract.tables[0];
    let opts = ValidateOptions::default();
    // Empty, one buffer, two, and many (the read buffer is 256 KiB).
    for rows in [0, 10, 30_000, 200_000] {
        let plain = planted(rows);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let mut counts = Vec::new();
        for data in [&plain, &gz] {
            let lent = AtomicU64::new(0);
            let run_with = |reader: &mut dyn Read, hashing: bool, checking: bool| {
                let threads = Threads { hashing, checking };
                let hash = Arc::new(SharedHash::default());
                let mut r = validate_hashed(&contract, table, reader, &opts, threads, hash.clone())
                    .unwrap()
                    .report;
                lent.fetch_add(hash.lent_bytes(), Ordering::Relaxed);
                r.duration_ms = 0;
                r
            };
            let run = |reader: &mut dyn Read, overlap: bool| run_with(reader, overlap, overlap);
            let inline = run(&mut &data[..], false);
            assert_eq!(inline.sha256, hex::encode(Sha256::digest(data)));
            assert_eq!(inline.bytes, data.len() as u64);
            assert_eq!(run(&mut &data[..], true), inline, "{rows} rows");
            assert_eq!(
                lent.load(Ordering::Relaxed),
                0,
                "a hashing thread of its own"
            );
            let max = if rows > 30_000 { 70_000 } else { 5 };
            for overlap in [true, false] {
                let mut trickle = Trickle { data, max, step: 1 };
                assert_eq!(run(&mut trickle, overlap), inline, "{rows} rows, trickled");
            }
            // Two cores: the checking thread hashes once it runs (only a file long enough to
            // start it, here the plain 200,000 rows), through both splits of the columns.
            assert_eq!(run_with(&mut &data[..], false, true), inline, "{rows} rows");
            let mut trickle = Trickle { data, max, step: 1 };
            assert_eq!(
                run_with(&mut trickle, false, true),
                inline,
                "{rows} rows, trickled"
            );
            let lent = lent.load(Ordering::Relaxed);
            if rows == 200_000 && data == &plain {
                let len = data.len() as u64;
                assert!(
                    lent > len / 2,
                    "{lent} of 2 x {len} bytes hashed by the checking thread"
                );
            } else if rows < 200_000 {
                assert_eq!(lent, 0, "{rows} rows never start a checking thread");
            }
            counts.push(content(&inline));
        }
        assert_eq!(counts[0], counts[1], "{rows} rows, plain and gzip");
        assert_eq!(counts[0].0, rows as u64);
    }
}

/// Every kind of cell check, key collection and `references`, so the split between two
/// checking threads moves columns of each kind.
pub(super) const WIDE: &str = "dataset: d\ntables:\n  - name: t\n    columns:\n      - { name: id, type: integer, required: true, identifier: true }\n      - { name: pid, identifier: true, references: { table: p, column: id } }\n      - { name: day, type: date }\n      - { name: at, type: timestamp }\n      - { name: code }\n      - { name: n, type: decimal }\n      - { name: note }\n      - { name: flag, type: boolean }\n    rules:\n      - { rule: unique, column: id, max_distinct: 40000 }\n      - { rule: unique, column: pid }\n      - { rule: date_range, column: day, min: '2001-01-01' }\n      - { rule: regex, column: code, pattern: '^[A-Z][0-9]{2}$' }\n      - { rule: allowed_values, column: code, values: [A10, B20, C30] }\n      - { rule: range, column: n, min: 0, max: 500 }\n      - { rule: max_length, column: note, max: 30 }\n      - { rule: completeness, column: at, min_ratio: 0.99 }\n      - { rule: phi, detectors: [ssn, phone, email, mrn, dob, zip, address] }\n  - name: p\n    columns:\n      - { name: id }\n";

/// What a run of the WIDE table says: rows, rule outcomes, PHI matches per column, and the
/// key hashes collected.
type WideOutcome = (
    u64,
    Vec<lakegate_models::RuleOutcome>,
    Vec<[u64; crate::phi::DETECTORS]>,
    Vec<Vec<u64>>,
);

fn wide_outcome(st: &mut State<'_>, bytes: usize) -> WideOutcome {
    let phi = st.cols.iter().map(|c| c.phi_hits).collect();
    let rules = st.finish(bytes as u64, "x");
    let keys = st.collected.iter().map(|k| k.hashes.clone()).collect();
    (st.rows, rules, phi, keys)
}

pub(super) fn wide(rows: usize) -> Vec<u8> {
    let mut data = b"id,pid,day,at,code,n,note,flag\n".to_vec();
    for i in 0..rows {
        let day = if i % 101 == 0 {
            "2000-02-30"
        } else {
            "2003-04-05"
        };
        let at = if i % 67 == 0 {
            ""
        } else {
            "2003-04-05T10:11:12"
        };
        let code = ["A10", "B20", "C30", "d4", "E55"][i % 5];
        let note = match i % 997 {
            0 => "call 555-867-5309 today",
            1 => "lives at 12 Elm Street",
            2 => "\"a note, long enough to be over the limit\"",
            _ => "ok",
        };
        // A phone number where a boolean goes: a type failure that the PHI scan must see.
        let flag = match (i % 89, i % 1009) {
            (_, 5) => "555-867-5309",
            (0, _) => "maybe",
            _ => "true",
        };
        writeln!(
            data,
            "{},P{},{day},{at},{code},{}.5,{note},{flag}",
            i % 60_000,
            i % 7_000,
            i % 700
        )
        .unwrap();
    }
    data
}

/// Rows, rule outcomes, collected keys and reference outcomes of a WIDE run.
pub(super) type WideReport = (
    u64,
    Vec<lakegate_models::RuleOutcome>,
    Vec<Vec<u64>>,
    Vec<lakegate_models::RuleOutcome>,
);

/// Runs `st` over `data` (the WIDE table's): what it reports, and how many times a checking
/// thread started.
pub(super) fn wide_report(mut st: State<'_>, data: &[u8]) -> (WideReport, u32) {
    st.run(&mut BufReader::with_capacity(64 * 1024, data))
        .unwrap();
    let splits = st.splits;
    let rules = st.finish(data.len() as u64, "x");
    let keys = st.collected.iter().map(|k| k.hashes.clone()).collect();
    let probes = std::mem::take(&mut st.probes)
        .into_iter()
        .map(|p| p.outcome(20))
        .collect();
    ((st.rows, rules, keys, probes), splits)
}

/// What a report says about the content, without the gzip rules: rows, and per rule its id,
/// failures and first rows.
pub(super) fn content(
    r: &lakegate_models::ValidationReport,
) -> (u64, Vec<(String, u64, Vec<u64>)>) {
    let rules = r
        .rules
        .iter()
        .filter(|r| r.rule != "gzip" && r.rule != "decompression_limit")
        .map(|r| (r.rule.clone(), r.failures, r.first_rows.clone()))
        .collect();
    (r.rows, rules)
}

#[test]
fn checking_columns_on_a_second_thread_gives_the_same_result() {
    let contract = Contract::parse(WIDE, Path::new("t.yaml")).unwrap();
    let table = &contract.tables[0];
    let opts = ValidateOptions {
        index_columns: vec!["id".into(), "pid".into()],
        check_references: true,
        ..ValidateOptions::default()
    };
    // The split starts after 80 full batches (40,960 rows here), timed on one thread, and the
    // columns are split again after 32 more (57,344 rows); the columns each split moves take
    // what they counted so far with them.
    for rows in [0, 300, 5_000, 40_000, 50_000, 120_000] {
        let data = wide(rows);
        let run = |parallel: bool| {
            let mut st = State::new(table, &opts);
            st.parallel = parallel;
            wide_report(st, &data)
        };
        let (one, used) = run(false);
        let (two, split) = run(true);
        assert_eq!(used, 0);
        let splits = u32::from(rows >= 50_000) + u32::from(rows >= 120_000);
        assert_eq!(split, splits, "{rows} rows");
        assert_eq!(two, one, "{rows} rows");
        assert!(one.1.iter().filter(|r| !r.passed).count() >= 8 || rows < 5_000);
    }
}

/// The memo of repeated values' verdicts changes nothing a report says: the same counts, rows,
/// PHI detector counts and keys as checking every value afresh, one thread or two.
#[test]
fn remembered_verdicts_give_the_same_result() {
    let contract = Contract::parse(WIDE, Path::new("t.yaml")).unwrap();
    let table = &contract.tables[0];
    let opts = ValidateOptions {
        index_columns: vec!["id".into(), "pid".into()],
        check_references: true,
        ..ValidateOptions::default()
    };
    let data = wide(120_000);
    for parallel in [false, true] {
        let run = |memo: bool| {
            let mut st = State::new(table, &opts);
            st.parallel = parallel;
            if !memo {
                st.memo_off();
            }
            st.run(&mut BufReader::with_capacity(64 * 1024, &data[..]))
                .unwrap();
            let answered: u64 = st.cols.iter().map(|c| c.memo.answered()).sum();
            assert_eq!(
                answered > 500_000,
                memo,
                "{answered} values answered by the memo"
            );
            wide_outcome(&mut st, data.len())
        };
        let fresh = run(false);
        let remembered = run(true);
        assert_eq!(remembered, fresh, "parallel {parallel}");
        // Failures that repeat, so remembered failing verdicts are exercised too.
        let failing: Vec<_> = fresh
            .1
            .iter()
            .filter(|r| !r.passed)
            .map(|r| r.rule.as_str())
            .collect();
        assert!(
            failing.contains(&"type") && failing.contains(&"phi"),
            "{failing:?}"
        );
    }
}

/// The plain path of a column with no memo, keys or PHI-scanned values gives what the full
/// path gives: valid and invalid typed values (a phone number in the boolean column is
/// scanned for PHI), blanks and missing values, `unique` and `completeness`, on one thread
/// and two.
#[test]
fn plain_columns_give_what_the_full_path_gives() {
    let contract = Contract::parse(WIDE, Path::new("t.yaml")).unwrap();
    let table = &contract.tables[0];
    let opts = ValidateOptions {
        index_columns: vec!["pid".into()],
        check_references: true,
        ..ValidateOptions::default()
    };
    let data = wide(120_000);
    for parallel in [false, true] {
        let run = |plain: bool| {
            let mut st = State::new(table, &opts);
            st.parallel = parallel;
            st.memo_off();
            st.no_plain = !plain;
            st.run(&mut BufReader::with_capacity(64 * 1024, &data[..]))
                .unwrap();
            let plain_columns = (0..st.cols.len()).filter(|&c| st.plain(c)).count();
            (wide_outcome(&mut st, data.len()), plain_columns)
        };
        let (full, none) = run(false);
        let (plain, columns) = run(true);
        assert_eq!(none, 0);
        // id, day, at, n, flag, and code and note, whose values past the PHI scan's
        // prefilter (the note's phone number and address) take the full path; pid collects
        // keys.
        assert_eq!(columns, 7, "parallel {parallel}");
        assert_eq!(plain, full, "parallel {parallel}");
        let failing: Vec<_> = full
            .1
            .iter()
            .filter(|r| !r.passed)
            .map(|r| (r.rule.as_str(), r.column.as_deref()))
            .collect();
        for expected in [("type", "flag"), ("phi", "flag"), ("unique", "id")] {
            assert!(
                failing.contains(&(expected.0, Some(expected.1))),
                "{expected:?} in {failing:?}"
            );
        }
    }
}

/// Failures planted on both sides of batch boundaries (rows 512 and 1,024; row 40,960, the
/// last before the checking thread takes its first batch; the last, partial batch) are
/// counted once each, at their rows, whichever thread's column finds them.
#[test]
fn failures_at_batch_boundaries_keep_their_rows() {
    let contract = Contract::parse(CONTRACT, Path::new("t.yaml")).unwrap();
    let table = &contract.tables[0];
    let opts = ValidateOptions::default();
    let rows = 50_000u64;
    // Data rows are numbered from 1; row r is the (r-1)-th record of the file.
    let blank = [512, 513, 1_024, 1_025, 40_961, 49_999, 50_000];
    let long = [511, 512, 1_023, 40_960, 49_873];
    let mut data = b"a,b,c\n".to_vec();
    for r in 1..=rows {
        // Three rows repeat the key of the row three before them.
        let a = if blank.contains(&r) {
            String::new()
        } else if [514, 1_030, 40_962].contains(&r) {
            format!("k{}", r - 3)
        } else {
            format!("k{r}")
        };
        let c = if long.contains(&r) { "xyz" } else { "x" };
        writeln!(data, "{a},{r},{c}").unwrap();
    }
    for parallel in [false, true] {
        let mut st = State::new(table, &opts);
        st.parallel = parallel;
        st.run(&mut BufReader::with_capacity(64 * 1024, &data[..]))
            .unwrap();
        assert_eq!(st.splits > 0, parallel);
        let rules = st.finish(data.len() as u64, "x");
        let find = |rule: &str| {
            let r = rules.iter().find(|r| r.rule == rule).unwrap();
            (r.failures, r.first_rows.clone())
        };
        assert_eq!(find("required"), (7, blank.to_vec()), "parallel {parallel}");
        assert_eq!(
            find("max_length"),
            (5, long.to_vec()),
            "parallel {parallel}"
        );
        assert_eq!(
            find("unique"),
            (3, vec![514, 1_030, 40_962]),
            "parallel {parallel}"
        );
    }
}

/// A column of many distinct values is checked afresh once its memo outgrows the first-level
/// cache: a date column, and a text column whose values the PHI scan's prefilter passes over,
/// but not one whose values need the scan's patterns; and the report is the same as with every
/// value checked afresh.
#[test]
fn cheap_columns_drop_a_large_memo_and_scanned_text_keeps_it() {
    let contract = "dataset: d\ntables:\n  - name: t\n    columns:\n      - { name: day, type: date }\n      - { name: text }\n      - { name: phone }\n    rules:\n      - { rule: date_range, column: day, min: '2001-01-01' }\n      - { rule: max_length, column: text, max: 9 }\n      - { rule: phi, detectors: [ssn, phone] }\n";
    let contract = Contract::parse(contract, Path::new("t.yaml")).unwrap();
    let mut data = b"day,text,phone\n".to_vec();
    for i in 0..80_000u64 {
        let day = (i * 7919) % 9_500;
        let v = format!(
            "{}-{:02}-{:02}",
            2000 + day / 372,
            day / 31 % 12 + 1,
            day % 28 + 1
        );
        // Eight digits, fewer than any detector needs; ten, a phone number's.
        writeln!(data, "{v},{v},555-867-{:04}", day).unwrap();
    }
    let opts = ValidateOptions::default();
    let run = |memo: bool| {
        let mut st = State::new(&contract.tables[0], &opts);
        if !memo {
            st.memo_off();
        }
        st.run(&mut BufReader::new(&data[..])).unwrap();
        let on: Vec<bool> = st.cols.iter().map(|c| c.memo.on()).collect();
        let answered: Vec<u64> = st.cols.iter().map(|c| c.memo.answered()).collect();
        (st.finish(data.len() as u64, "x"), on, answered)
    };
    let (remembered, on, answered) = run(true);
    assert_eq!(on, [false, false, true]);
    assert!(
        answered[0] < 16 * 1024 && answered[1] < 16 * 1024 && answered[2] > 40_000,
        "{answered:?}"
    );
    let (fresh, ..) = run(false);
    assert_eq!(remembered, fresh);
    let failed: Vec<(&str, u64)> = fresh
        .iter()
        .filter(|r| !r.passed)
        .map(|r| (r.rule.as_str(), r.failures))
        .collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
}
