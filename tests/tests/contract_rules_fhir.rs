//! The FHIR example contract (examples/fhir/fhir.yaml) and `lakegate contract draft` end to end,
//! on NDJSON the example's generator writes (another seed than the committed sample): a real
//! Temporal dev server, a worker and a local lake, one landing folder per file (so no file is
//! another's batch). A drafted contract passes on the sample it was drafted from; FHIR's partial
//! dates and mixed-precision dateTimes pass; a `*` path failure counts lines, not elements, with
//! their row numbers; a misspelt path is the typo warning; an Observation of a missing Patient is
//! quarantined by `references` (and the planted subject reaches no history or log); a Patient
//! file approved from quarantine serves the references of later Observations; the same bytes
//! under a new name are a `duplicate_file`.

use std::path::Path;

use lakegate_models::{RuleOutcome, Severity};
use lakegate_tests::runs::{self, promoted, quarantined};
use lakegate_tests::{TestEnv, chaos, generate_example, repo_root};

/// The orphan subjects planted in an Observation file start so (one per row, so the rule lists
/// every row); cell values, so no history or log may hold them.
const ORPHAN_PATIENT: &str = "zq-orphan-58213";
/// Data lines (1-based) of the Observation file that get an orphan subject.
const ORPHAN_ROWS: [u64; 3] = [4, 11, 30];

/// The generated file `name` as its lines (each without its newline).
fn lines(dir: &Path, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    text.lines().map(str::to_owned).collect()
}

/// The distinct lengths of the top-level string `field` over `lines`, sorted: the precisions
/// the generator wrote.
fn field_lengths(lines: &[String], field: &str) -> Vec<usize> {
    let mut lengths: Vec<usize> = lines
        .iter()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            Some(v.get(field)?.as_str()?.len())
        })
        .collect();
    lengths.sort_unstable();
    lengths.dedup();
    lengths
}

fn ndjson(lines: &[String]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect()
}

/// The example contract under another dataset name (its own keys and index), edited by `edit`.
fn variant(dataset: &str, edit: impl Fn(String) -> String) -> String {
    let text = std::fs::read_to_string(repo_root().join("examples/fhir/fhir.yaml")).unwrap();
    let text = text
        .replace("dataset: fhir\n", &format!("dataset: {dataset}\n"))
        .replace("landing/*/fhir/", &format!("landing/*/{dataset}/"));
    edit(text)
}

/// `outcome` failed on `column` in exactly the data lines `rows` (one failure per line).
fn assert_failed_rows(outcome: &RuleOutcome, column: &str, rows: &[u64]) {
    assert_eq!(outcome.column.as_deref(), Some(column), "{outcome:?}");
    assert_eq!(outcome.failures, rows.len() as u64, "{outcome:?}");
    assert_eq!(outcome.first_rows, rows, "{outcome:?}");
}

/// `lakegate contract draft` (the binary) of `files` for `dataset`, written to `out`.
fn draft(files: &[&Path], dataset: &str, out: &Path) -> String {
    let status = std::process::Command::new(chaos::lakegate_bin().unwrap())
        .args(["contract", "draft", "--dataset", dataset, "--out"])
        .arg(out)
        .args(files)
        .status()
        .unwrap();
    assert!(status.success(), "contract draft failed: {status}");
    std::fs::read_to_string(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhir_rules_catch_array_failures_typos_orphans_and_duplicates_and_drafts_pass() {
    let generated = tempfile::tempdir().unwrap();
    generate_example(
        "fhir",
        generated.path(),
        &["--seed", "61", "--patients", "40"],
    )
    .unwrap();
    let patients = lines(generated.path(), "Patient.ndjson");
    let observations = lines(generated.path(), "Observation.ndjson");

    let contracts = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo_root().join("examples/fhir/fhir.yaml"),
        contracts.path().join("fhir.yaml"),
    )
    .unwrap();
    // A steward's typo (`famly`) in a contract that only warns about unseen paths.
    let typo = variant("fhirtypo", |t| {
        t.replacen("    unseen_paths: error\n", "", 1)
            .replacen("name.*.family", "name.*.famly", 1)
    });
    assert!(typo.contains("name.*.famly"), "the typo was not planted");
    std::fs::write(contracts.path().join("fhirtypo.yaml"), typo).unwrap();
    let files = [
        generated.path().join("Patient.ndjson"),
        generated.path().join("Observation.ndjson"),
    ];
    let files: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let drafted = draft(
        &files,
        "fhirdraft",
        &contracts.path().join("fhirdraft.yaml"),
    );
    for path in ["telecom.*.value", "code.coding.*.code", "subject.reference"] {
        assert!(
            drafted.contains(path),
            "the draft has no {path}:\n{drafted}"
        );
    }

    let env = TestEnv::start_with(contracts.path(), None).await.unwrap();

    // The draft passes on the sample it was drafted from.
    promoted(
        &env,
        "landing/d0/fhirdraft/Patient.ndjson",
        &ndjson(&patients),
    )
    .await;
    promoted(
        &env,
        "landing/d0/fhirdraft/Observation.ndjson",
        &ndjson(&observations),
    )
    .await;

    // Partial dates and dateTimes with and without a fraction, `Z` or an offset, in one column
    // each: the promotions are the proof that `fhir_date` and `fhir_datetime` take them all.
    let birth_lengths = field_lengths(&patients, "birthDate");
    assert_eq!(birth_lengths, [4, 7, 10], "year, year-month and full dates");
    let effective = field_lengths(&observations, "effectiveDateTime");
    // `...:00Z`, and both `...:00.5+01:00` and `...:07.123456Z` (27 chars each).
    assert_eq!(
        effective,
        [4, 7, 10, 20, 27],
        "effectiveDateTime precisions"
    );
    for shape in [".5+01:00\"", ".123456Z\""] {
        assert!(
            observations.iter().any(|l| l.contains(shape)),
            "no effectiveDateTime ending {shape}"
        );
    }
    promoted(&env, "landing/d1/fhir/Patient.ndjson", &ndjson(&patients)).await;
    let observations_bytes = ndjson(&observations);
    promoted(
        &env,
        "landing/d2/fhir/Observation.ndjson",
        &observations_bytes,
    )
    .await;

    // `*` over arrays: every telecom element of two lines with two elements gets an unknown
    // system; the failure counts the two lines and names them. The file's patients are new.
    let two_telecoms: Vec<usize> = patients
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("\"system\":\"email\""))
        .map(|(i, _)| i)
        .take(2)
        .collect();
    assert_eq!(two_telecoms.len(), 2, "no two patients with an email");
    let renamed: Vec<String> = patients
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let l = l.replace("\"id\":\"pat-", "\"id\":\"new-");
            if two_telecoms.contains(&i) {
                l.replace("\"system\":\"phone\"", "\"system\":\"pager\"")
                    .replace("\"system\":\"email\"", "\"system\":\"pager\"")
            } else {
                l
            }
        })
        .collect();
    let (pagers_id, failed) = quarantined(
        &env,
        "landing/d3/fhir/Patient.ndjson",
        &ndjson(&renamed),
        &["allowed_values"],
    )
    .await;
    let rows: Vec<u64> = two_telecoms.iter().map(|i| *i as u64 + 1).collect();
    assert_failed_rows(&failed[0], "telecom.*.system", &rows);

    // Approved (the pager is a local system code), its patients serve later references.
    runs::approve(&env, &pagers_id, "pager is a local telecom system").await;
    let of_new: Vec<String> = observations
        .iter()
        .take(50)
        .map(|l| {
            l.replace("Patient/pat-", "Patient/new-")
                .replace("\"id\":\"obs-", "\"id\":\"obn-")
        })
        .collect();
    promoted(&env, "landing/d4/fhir/Observation.ndjson", &ndjson(&of_new)).await;

    // A misspelt path: every value would count as null; the file passes with the warning.
    let (_, outcomes) = promoted(
        &env,
        "landing/d5/fhirtypo/Patient.ndjson",
        &ndjson(&patients),
    )
    .await;
    let typo = outcomes
        .iter()
        .find(|o| o.rule == "declared_paths")
        .unwrap_or_else(|| panic!("no declared_paths outcome: {outcomes:#?}"));
    assert!(!typo.passed, "{typo:?}");
    assert_eq!(typo.severity, Severity::Warn, "{typo:?}");
    assert_eq!(typo.failures, 1, "{typo:?}");
    assert!(typo.detail.contains("name.*.famly"), "{typo:?}");

    // Orphans: three observations of patients no file holds.
    let mut orphaned: Vec<String> = observations
        .iter()
        .map(|l| l.replace("\"id\":\"obs-", "\"id\":\"obo-"))
        .collect();
    for (n, row) in ORPHAN_ROWS.iter().enumerate() {
        let i = usize::try_from(*row).unwrap() - 1;
        let subject = orphaned[i]
            .split("\"reference\":\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .to_owned();
        orphaned[i] = orphaned[i].replace(&subject, &format!("Patient/{ORPHAN_PATIENT}{n}"));
    }
    let (_, failed) = quarantined(
        &env,
        "landing/d6/fhir/Observation.ndjson",
        &ndjson(&orphaned),
        &["references"],
    )
    .await;
    assert_failed_rows(&failed[0], "subject.reference", &ORPHAN_ROWS);
    assert!(
        !failed[0].detail.contains(ORPHAN_PATIENT),
        "{:?}",
        failed[0]
    );

    // The d2 observations again, byte for byte, under another name and day.
    quarantined(
        &env,
        "landing/d7/fhir/Observation_resent.ndjson",
        &observations_bytes,
        &["duplicate_file"],
    )
    .await;

    // The orphans' subjects are in no history, stored or decrypted, and in no log.
    env.assert_no_leaks(ORPHAN_PATIENT, 9).await;
}
