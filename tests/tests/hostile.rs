//! Hostile inputs through a real worker on a real Temporal dev server and the local backend:
//! the malformed-file corpus of the validation engine (plain and gzipped), keys with `..`,
//! unicode in both normal forms, spaces, control characters and 1,024 bytes, zero-byte files, a
//! 5 GB sparse file, duplicate uploads and a file replaced while it is being validated. Each one
//! ends promoted or quarantined with a named reason, in exactly one zone, within a deadline, and
//! no history holds a failed workflow task.
//!
//! `cargo test -p lakegate-tests --test hostile -- --nocapture` prints the table of cases.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::future::join_all;
use lakegate::client::{self, StartedIngest};
use lakegate_activities::ports::{KeyTag, ObjectStore, StoreError};
use lakegate_models::{IngestInput, IngestPhase, IngestStatus, Zone};
use lakegate_tests::TestEnv;
use lakegate_tests::runs::{activity_heartbeated, settled, start};
use lakegate_validate::corpus::{self, Kind};
use lakegate_workflows::{CHANGED_REASON, NO_CONTRACT_REASON};

/// Every case, together, from start to its end state.
const DEADLINE: Duration = Duration::from_secs(240);
/// The size bound of the hostile contract's tables.
const MAX_BYTES: u64 = 64 << 20;
const GOOD: &[u8] = b"id,dx,seen\n1,a,2024-01-01\n2,b,2024-01-02\n";
const DIR: &str = "landing/emr/hostile";

/// What a case must end as: promoted to raw/, or quarantined with a reason containing this.
#[derive(Debug, Clone)]
enum Expect {
    Raw,
    Quarantine(String),
}

struct Case {
    name: String,
    key: String,
    expect: Expect,
    /// The bytes that must end in the case's zone (None: not compared, e.g. the sparse file).
    body: Option<Vec<u8>>,
}

fn contracts(dir: &Path) {
    let rules = format!("    rules:\n      - {{ rule: size, max_bytes: {MAX_BYTES} }}\n");
    let tables = [
        ("csv", corpus::CSV_TABLE, "csv"),
        ("ndjson", corpus::NDJSON_TABLE, "ndjson"),
        ("keys", corpus::CSV_TABLE, "keys"),
    ];
    for (name, table, folder) in tables {
        let glob = format!("{DIR}/{folder}/*");
        let yaml = corpus::contract_yaml(&format!("hostile_{name}"), table, name, Some(&glob));
        std::fs::write(dir.join(format!("{name}.yaml")), format!("{yaml}{rules}")).unwrap();
    }
}

/// Keys a user's upload can really have; each holds a valid file and must be promoted.
fn odd_keys() -> Vec<(String, String)> {
    let k = |name: &str, rest: &str| (name.to_owned(), format!("{DIR}/keys/{rest}"));
    // 1,024 bytes in all, no path component over 255 bytes (the local file system's limit).
    let mut long = format!("{DIR}/keys/");
    while long.len() < 1024 - 260 {
        long.push_str(&"d".repeat(200));
        long.push('/');
    }
    let stem = "f".repeat(1024 - long.len() - 4);
    long.push_str(&stem);
    long.push_str(".csv");
    assert_eq!(long.len(), 1024);
    vec![
        k("spaces", "with spaces/patients 2026 11.csv"),
        k("leading_space", " leading.csv"),
        k("trailing_space", "trailing .csv"),
        k("nfc", "caf\u{e9}.csv"),
        k("nfd", "cafe\u{301}.csv"),
        k("cjk", "患者データ.csv"),
        k("rtl", "ملف.csv"),
        k("emoji", "🩺 visits.csv"),
        k("zero_width", "zero\u{200b}width.csv"),
        k("dots_inside", "a..b.csv"),
        k("dots_leading", "..hidden.csv"),
        k("dots_dir", ".../x.csv"),
        k("tab", "tab\there.csv"),
        k("newline", "new\nline.csv"),
        k("quotes", "quote\"s and 'apostrophes'.csv"),
        k("backslash", "back\\slash.csv"),
        k("percent", "percent%2F%00.csv"),
        k("glob_chars", "star*?[x].csv"),
        k("hash_amp", "hash#amp&eq=.csv"),
        k("name_255", &format!("{}.csv", "n".repeat(251))),
        ("key_1024".to_owned(), long),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_input_ends_in_one_zone_with_a_named_reason() {
    let contracts_dir = tempfile::tempdir().unwrap();
    contracts(contracts_dir.path());
    let env = TestEnv::start_with(contracts_dir.path(), None)
        .await
        .unwrap();
    let began = Instant::now();
    let mut cases: Vec<Case> = Vec::new();
    let mut ids: Vec<String> = Vec::new();

    // The malformed files of the validation engine's corpus, as stored and gzipped.
    for m in corpus::all() {
        let folder = match m.kind {
            Kind::Csv => "csv",
            Kind::Ndjson => "ndjson",
        };
        let mut variants = vec![(
            m.name.to_owned(),
            format!("{}.{folder}", m.name),
            m.data.clone(),
        )];
        if m.kind == Kind::Csv && !m.name.contains("gzip") {
            variants.push((
                format!("{}.gz", m.name),
                format!("{}.csv.gz", m.name),
                corpus::gzip(&m.data),
            ));
        }
        for (name, file, data) in variants {
            let key = format!("{DIR}/{folder}/{file}");
            ids.push(start(&env, env.land(&key, &data).await.unwrap()).await);
            cases.push(Case {
                name,
                key,
                expect: Expect::Quarantine(m.rule.to_owned()),
                body: Some(data),
            });
        }
    }

    // Keys that are odd but legal: the file is valid, so it is promoted under its own name.
    for (name, key) in odd_keys() {
        ids.push(start(&env, env.land(&key, GOOD).await.unwrap()).await);
        cases.push(Case {
            name,
            key,
            expect: Expect::Raw,
            body: Some(GOOD.to_vec()),
        });
    }

    // Bad files under odd keys keep their keys in quarantine/ (1,027 bytes for the longest).
    let long_bad = odd_keys().pop().unwrap().1.replace("/ddd", "/eee");
    for (name, key, data, reason) in [
        (
            "ragged_unicode_key",
            format!("{DIR}/keys/患者 ragged.csv"),
            corpus::ragged_rows(),
            "column_count",
        ),
        (
            "ragged_nfd_dir",
            format!("{DIR}/keys/cafe\u{301} dir/ragged.csv"),
            corpus::ragged_rows(),
            "column_count",
        ),
        ("latin1_key_1024", long_bad, corpus::latin1(), "utf8"),
    ] {
        ids.push(start(&env, env.land(&key, &data).await.unwrap()).await);
        cases.push(Case {
            name: name.into(),
            key,
            expect: Expect::Quarantine(reason.into()),
            body: Some(data),
        });
    }

    // The same bytes under two names are two files: both promoted.
    for name in ["copy_a", "copy_b"] {
        let key = format!("{DIR}/keys/{name}.csv");
        ids.push(start(&env, env.land(&key, GOOD).await.unwrap()).await);
        cases.push(Case {
            name: name.into(),
            key,
            expect: Expect::Raw,
            body: Some(GOOD.to_vec()),
        });
    }

    // Zero bytes: named by the built-in rules, or by no contract at all.
    for (name, key, reason) in [
        (
            "zero_bytes_csv",
            format!("{DIR}/keys/zero.csv"),
            "not_empty",
        ),
        (
            "zero_bytes_gz",
            format!("{DIR}/csv/zero.csv.gz"),
            "not_empty",
        ),
        (
            "zero_bytes_no_contract",
            "landing/emr/nowhere/zero.bin".to_owned(),
            NO_CONTRACT_REASON,
        ),
    ] {
        ids.push(start(&env, env.land(&key, b"").await.unwrap()).await);
        cases.push(Case {
            name: name.into(),
            key,
            expect: Expect::Quarantine(reason.into()),
            body: Some(Vec::new()),
        });
    }

    // 5 GB, sparse: refused by the contract's size rule before a byte is read.
    let sparse_key = format!("{DIR}/csv/huge.csv");
    let sparse_path = env.store.path_of(&sparse_key).unwrap();
    std::fs::create_dir_all(sparse_path.parent().unwrap()).unwrap();
    std::fs::File::create(&sparse_path)
        .unwrap()
        .set_len(5 << 30)
        .unwrap();
    let sparse_started = Instant::now();
    let sparse_id = start(
        &env,
        IngestInput {
            bucket: env.config.bucket.clone(),
            key: sparse_key.clone(),
            version: "sparse-5g".into(),
            review_timeout_secs: 3600,
            crawl_later: false,
        },
    )
    .await;
    ids.push(sparse_id.clone());
    cases.push(Case {
        name: "sparse_5gb".into(),
        key: sparse_key,
        expect: Expect::Quarantine("size".into()),
        body: None,
    });

    // Same bytes twice under one key: the second start is answered with the first run.
    let dup_key = format!("{DIR}/keys/duplicate.csv");
    let first = env.land(&dup_key, GOOD).await.unwrap();
    let dup_id = start(&env, first.clone()).await;
    client::wait_for_status(&env.client, &dup_id, DEADLINE, settled)
        .await
        .unwrap();
    match client::start_ingest(&env.client, &env.config.task_queue, first)
        .await
        .unwrap()
    {
        StartedIngest::Duplicate(id) => assert_eq!(id, dup_id),
        StartedIngest::Started(id) => panic!("the same bytes started a second run {id}"),
    }
    ids.push(dup_id);
    cases.push(Case {
        name: "same_bytes_twice".into(),
        key: dup_key.clone(),
        expect: Expect::Raw,
        body: Some(GOOD.to_vec()),
    });
    // Same name, different bytes, after the first was promoted: both kept, the second tagged.
    for (name, file) in [
        ("same_name_new_bytes", "duplicate.csv"),
        (
            "same_long_name_new_bytes",
            &format!("{}.csv", "n".repeat(251)),
        ),
    ] {
        let key = format!("{DIR}/keys/{file}");
        let body = b"id,dx,seen\n9,z,2024-02-02\n".to_vec();
        if name == "same_long_name_new_bytes" {
            // Its first version (an odd key above) must be in raw/ before this one arrives.
            let first = ids[cases.iter().position(|c| c.name == "name_255").unwrap()].clone();
            client::wait_for_status(&env.client, &first, DEADLINE, settled)
                .await
                .unwrap();
        }
        ids.push(start(&env, env.land(&key, &body).await.unwrap()).await);
        cases.push(Case {
            name: name.into(),
            key,
            expect: Expect::Raw,
            body: Some(body),
        });
    }

    // Replaced while being validated: a file large enough to take a while, replaced (as an
    // upload does, by a rename over it) once validation has opened it. The validated bytes are
    // gone, so the new ones must not be promoted unvalidated. "Opened" is the activity's first
    // heartbeat, which follows the open; the phase alone is set before the activity starts, and
    // a replacement then is simply the file that gets validated. Under the table's size cap,
    // which would refuse it before a byte is read.
    let replaced_key = format!("{DIR}/csv/replaced.csv");
    let mut big = b"id,dx,seen\n".to_vec();
    while big.len() < 60 << 20 {
        big.extend_from_slice(b"1234567,abcdefgh,2024-01-01\n");
    }
    let replaced_id = start(&env, env.land(&replaced_key, &big).await.unwrap()).await;
    drop(big);
    let deadline = Instant::now() + DEADLINE;
    while !activity_heartbeated(&env, &replaced_id).await.unwrap() {
        assert!(
            Instant::now() < deadline,
            "never saw the large file being validated (its activity heartbeating)"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let replacement = b"id,dx,seen\n5,replaced,2024-03-03\n".to_vec();
    env.store
        .put(&replaced_key, replacement.clone().into())
        .await
        .unwrap();
    ids.push(replaced_id.clone());
    cases.push(Case {
        name: "replaced_while_validating".into(),
        key: replaced_key,
        expect: Expect::Quarantine(CHANGED_REASON.into()),
        body: Some(replacement),
    });

    // A key that would escape the lake is refused before anything is written anywhere.
    // Its error names the key as every error does, by tag (keys may hold patient names).
    let lake_root = env.store.root().to_owned();
    let mut refused = Vec::new();
    for (name, bad) in [
        (
            "dotdot_escape",
            format!("{DIR}/keys/../../../../../escaped.csv"),
        ),
        ("dotdot_leading", "../escaped.csv".to_owned()),
        ("dotdot_middle", format!("{DIR}/keys/../x.csv")),
        ("dot_segment", format!("{DIR}/keys/./x.csv")),
        ("empty_segment", format!("{DIR}/keys//x.csv")),
    ] {
        let err = env.land(&bad, GOOD).await.unwrap_err();
        let err = err.downcast::<StoreError>().unwrap();
        assert!(matches!(err, StoreError::InvalidKey { .. }), "{bad}: {err}");
        let text = err.to_string();
        assert!(text.contains(&KeyTag(bad.clone()).to_string()), "{text}");
        assert!(text.contains("'..' path segment"), "{text}");
        refused.push((name.to_owned(), "refused", text));
    }
    assert!(!lake_root.parent().unwrap().join("escaped.csv").exists());
    assert!(!lake_root.join("escaped.csv").exists());

    // Every run reaches its end state within the deadline.
    let remaining = DEADLINE.saturating_sub(began.elapsed());
    let results = join_all(
        ids.iter()
            .map(|id| client::wait_for_status(&env.client, id, remaining, settled)),
    )
    .await;
    let stuck: Vec<String> = cases
        .iter()
        .zip(&results)
        .filter_map(|(case, r)| r.as_ref().err().map(|e| format!("{}: {e:#}", case.name)))
        .collect();
    assert!(
        stuck.is_empty(),
        "not settled in time:\n{}",
        stuck.join("\n")
    );
    let statuses: Vec<IngestStatus> = results.into_iter().map(Result::unwrap).collect();
    env.record_history("changed_during_validation", &replaced_id)
        .await
        .unwrap();
    let sparse_secs = sparse_started.elapsed().as_secs_f64();
    let sparse = &statuses[ids.iter().position(|id| *id == sparse_id).unwrap()];
    let report = sparse.report.as_ref().unwrap();
    assert_eq!(report.bytes, 0, "the 5 GB file was read: {report:?}");

    let all_keys = env.all_keys().await.unwrap();
    let mut table = Vec::new();
    let mut by_key: BTreeMap<&str, &str> = BTreeMap::new();
    for ((case, status), id) in cases.iter().zip(&statuses).zip(&ids) {
        let reason = status.quarantine_reason.clone().unwrap_or_default();
        match &case.expect {
            Expect::Raw => {
                assert_eq!(
                    (status.phase, status.zone),
                    (IngestPhase::Promoted, Zone::Raw),
                    "{}: {reason}",
                    case.name
                );
                // Under its own name; version-tagged (the stem shortened to keep the name
                // within 255 bytes) when another file already had it.
                let name = case.key.rsplit('/').next().unwrap();
                let (stem, ext) = name.split_once('.').unwrap();
                let promoted = status.key.rsplit('/').next().unwrap();
                let promoted_stem = promoted.split('.').next().unwrap();
                assert!(
                    promoted == name
                        || (stem.starts_with(promoted_stem)
                            && promoted.ends_with(&format!(".{ext}"))
                            && promoted.len() <= 255),
                    "{}: promoted as {promoted:?}",
                    case.name
                );
            }
            Expect::Quarantine(want) => {
                // The landing key under quarantine/; a name shortened only where the key would
                // pass 1,024 bytes.
                let rehomed = Zone::rehome(&case.key, Zone::Quarantine);
                let dir = |k: &str| k.rsplit_once('/').unwrap().0.to_owned();
                assert!(
                    status.key == rehomed
                        || (rehomed.len() > 1024
                            && status.key.len() <= 1024
                            && dir(&status.key) == dir(&rehomed)),
                    "{}: quarantined as {}",
                    case.name,
                    status.key
                );
                assert_eq!(
                    (status.phase, status.zone),
                    (IngestPhase::AwaitingReview, Zone::Quarantine),
                    "{}",
                    case.name
                );
                assert!(
                    reason.contains(want.as_str()),
                    "{}: {reason:?} lacks {want:?}",
                    case.name
                );
            }
        }
        // In exactly one zone: the status names it, it is there, and nothing else is.
        assert!(
            all_keys.contains(&status.key),
            "{}: {} missing",
            case.name,
            status.key
        );
        assert!(
            by_key.insert(&status.key, &case.name).is_none(),
            "{} and another case share {}",
            case.name,
            status.key
        );
        if let Some(body) = &case.body {
            let stored = std::fs::read(env.store.path_of(&status.key).unwrap()).unwrap();
            assert!(
                &stored == body,
                "{}: other bytes at {}",
                case.name,
                status.key
            );
        }
        let history = env.history_json(id).await.unwrap();
        assert!(
            !String::from_utf8_lossy(&history).contains("WorkflowTaskFailed"),
            "{}: a workflow task failed",
            case.name
        );
        let zone = status.zone.prefix().trim_end_matches('/');
        table.push((
            case.name.clone(),
            zone,
            if reason.is_empty() {
                "-".to_owned()
            } else {
                reason
            },
        ));
    }
    // Nothing left in landing/, nothing unaccounted for anywhere.
    let mut expected: Vec<String> = statuses.iter().map(|s| s.key.clone()).collect();
    expected.sort();
    assert_eq!(all_keys, expected);
    let corpus_size = cases.len() + refused.len();
    assert!(corpus_size >= 60, "{corpus_size} files and keys");
    table.extend(refused);

    println!("\n{:<28} {:<11} reason", "case", "end zone");
    for (name, zone, reason) in &table {
        println!("{name:<28} {zone:<11} {reason}");
    }
    println!(
        "\n{corpus_size} files and keys: {} runs, all settled in {:.1} s (the 5 GB sparse file \
         refused in {sparse_secs:.1} s), and {} keys refused before placing",
        cases.len(),
        began.elapsed().as_secs_f64(),
        corpus_size - cases.len()
    );
}
