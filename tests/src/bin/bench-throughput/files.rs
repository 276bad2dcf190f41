//! The benchmark's files, placed in the landing zone before any clock starts.

use lakegate_local::LocalObjectStore;
use lakegate_models::IngestInput;
use lakegate_tests::land;

pub(crate) const FILE_BYTES: usize = 1024;

/// A patients file of about 1 KB that passes the fixture contract; synthetic ids only.
pub(crate) fn valid_csv(n: usize) -> Vec<u8> {
    csv_of(|row| format!("p{n}-{row},1980-01-02,F\n"))
}

/// The same, with one row lacking its required id: quarantined as `required(id)`.
pub(crate) fn invalid_csv(n: usize) -> Vec<u8> {
    csv_of(|row| {
        if row == 3 {
            ",1980-01-02,F\n".to_owned()
        } else {
            format!("q{n}-{row},1980-01-02,F\n")
        }
    })
}

pub(crate) fn csv_of(row: impl Fn(usize) -> String) -> Vec<u8> {
    let mut body = b"id,birthdate,gender\n".to_vec();
    let mut i = 0;
    while body.len() < FILE_BYTES {
        body.extend_from_slice(row(i).as_bytes());
        i += 1;
    }
    body
}

pub(crate) async fn place(
    store: &LocalObjectStore,
    bucket: &str,
    kind: &str,
    count: usize,
    body: fn(usize) -> Vec<u8>,
) -> anyhow::Result<Vec<IngestInput>> {
    let mut inputs = Vec::with_capacity(count);
    for n in 0..count {
        let key = format!("landing/bench/ehr/patients_{kind}_{n:05}.csv");
        inputs.push(land(store, bucket, &key, &body(n)).await?);
    }
    Ok(inputs)
}
