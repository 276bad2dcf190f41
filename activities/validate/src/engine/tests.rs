//! The CSV fast path against csv-core alone.

use std::path::Path;

use proptest::prelude::*;

use std::io::BufReader;

use super::plan::State;
use super::{Limits, ValidateOptions};
use crate::Contract;

const CONTRACT: &str = "dataset: d\ntables:\n  - name: t\n    columns:\n      - { name: a, required: true }\n      - { name: b, type: integer }\n      - { name: c }\n    rules:\n      - { rule: max_length, column: c, max: 2 }\n      - { rule: unique, column: a }\n";

/// Rows, then per rule: id, failures, first failing rows.
type Seen = (u64, Vec<(&'static str, u64, Vec<u64>)>);

/// Everything a report says about the content, from one path or the other.
fn outcome(data: &[u8], fast: bool, buffer: usize) -> Seen {
    let contract = Contract::parse(CONTRACT, Path::new("t.yaml")).unwrap();
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
}

#[test]
fn fast_path_splits_like_csv_core() {
    let data = b"a,b,c\n1,2,ab\n\"q\",3,\"\"\n\r\n4,,\n5,6,\"x,\"\r\n\"7\",8,\"a\"\"b\"\n9\n";
    assert_eq!(outcome(data, true, 4096), outcome(data, false, 4096));
    let (rows, _) = outcome(data, true, 4096);
    assert_eq!(rows, 6);
}
