//! `lakegate retract` as a user runs it against `lakegate dev --detach`: a promoted file taken
//! back, the second retract and a quarantined run's retract refused with exit code 4, and a help
//! that lists only the command's own flags.

mod common;

use std::path::Path;
use std::process::Command;

use common::{
    codec_endpoint, detached_dev, ingest_ehr, lakegate, patient_files, run_expecting, started_id,
    summary_of,
};

/// Every file under `dir`, relative to it, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn retract_takes_a_promoted_file_back_once_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state");
    let (_guard, port, ui_port) = detached_dev(&data);

    let (good, bad) = patient_files(dir.path());
    let out = ingest_ehr(lakegate(&data), &[&good, &bad], 3);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (promoted, quarantined) = (
        started_id(&stdout, "patients_good.csv"),
        started_id(&stdout, "patients_bad.csv"),
    );

    // The reviewer defaults to the OS user.
    let out = run_expecting(
        lakegate(&data)
            .env("USER", "carol")
            .args(["retract", &promoted, "--reason", "wrong site"]),
        0,
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(&format!("workflow:  retract-{promoted}")),
        "{stdout}"
    );
    assert!(stdout.contains("reviewer:  carol"), "{stdout}");
    assert!(stdout.contains("reason:    wrong site"), "{stdout}");
    assert!(
        stdout.contains("-> rejected/ehr/patients/ingest_date="),
        "{stdout}"
    );
    assert!(stdout.contains("no pipeline configured"), "{stdout}");
    let lake = files_under(&data.join("lake"));
    let good_files: Vec<&String> = lake
        .iter()
        .filter(|f| f.ends_with("patients_good.csv"))
        .collect();
    assert_eq!(good_files.len(), 1, "{lake:?}");
    assert!(
        good_files[0].starts_with("rejected/ehr/patients/"),
        "{lake:?}"
    );

    // Twice: refused, naming the retract that did it and who.
    let out = run_expecting(
        lakegate(&data).args([
            "retract",
            &promoted,
            "--reason",
            "again",
            "--reviewer",
            "dave",
        ]),
        4,
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("already retracted by retract-{promoted}")),
        "{stderr}"
    );
    assert!(stderr.contains("reviewer carol"), "{stderr}");
    assert_eq!(files_under(&data.join("lake")), lake, "nothing moved");

    // A quarantined run promoted nothing.
    let out = run_expecting(
        lakegate(&data).args([
            "retract",
            &quarantined,
            "--reason",
            "bad",
            "--reviewer",
            "dave",
            "--output",
            "json",
        ]),
        4,
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("refused:"), "{stderr}");
    assert!(stderr.contains("awaiting_review"), "{stderr}");
    assert_eq!(files_under(&data.join("lake")), lake, "nothing moved");

    // The Web UI tells the runs apart in words, without a file name.
    let endpoint = codec_endpoint(ui_port);
    let ingest = summary_of(port, &endpoint, &promoted);
    assert!(
        ingest.starts_with("Onboard one ehr.patients file"),
        "{ingest}"
    );
    let retract = summary_of(port, &endpoint, &format!("retract-{promoted}"));
    assert!(
        retract.starts_with("Retract one promoted file"),
        "{retract}"
    );
    let out = run_expecting(
        lakegate(&data).args(["backfill", "landing/synthea/ehr/", "--no-wait"]),
        0,
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let backfill = stdout
        .split_whitespace()
        .find(|w| w.starts_with("backfill-"))
        .unwrap_or_else(|| panic!("no backfill id in {stdout}"));
    let summary = summary_of(port, &endpoint, backfill);
    assert!(summary.starts_with("Backfill dataset ehr:"), "{summary}");
    for summary in [ingest, retract, summary] {
        assert!(!summary.contains(".csv"), "a file name in {summary}");
    }

    run_expecting(lakegate(&data).args(["dev", "--stop"]), 0);
}

#[test]
fn retract_needs_a_reason_and_lists_only_its_flags() {
    let out = run_expecting(
        Command::new(env!("CARGO_BIN_EXE_lakegate")).args(["retract", "--help"]),
        0,
    );
    let help = String::from_utf8(out.stdout).unwrap();
    for shown in [
        "--reason",
        "--reviewer",
        "--no-wait",
        "--data-dir",
        "--task-queue",
        "Exit code",
    ] {
        assert!(help.contains(shown), "{shown}: {help}");
    }
    for hidden in ["--backend", "--pipeline", "--athena-workgroup", "--venv"] {
        assert!(!help.contains(hidden), "{hidden}: {help}");
    }
    run_expecting(
        Command::new(env!("CARGO_BIN_EXE_lakegate")).args(["retract", "ingest-x"]),
        2,
    );
    run_expecting(
        Command::new(env!("CARGO_BIN_EXE_lakegate")).args(["retract", "ingest-x", "--reason", ""]),
        2,
    );
}
