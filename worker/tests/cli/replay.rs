//! `lakegate replay` of history files, live workflow ids and the Web UI's download.

use std::path::Path;

use crate::common::{detached_dev, lakegate, repo_root, run, ui_get};

/// Runs `lakegate replay` and returns its exit code and stdout.
fn replay(data_dir: &Path, target: &str) -> (Option<i32>, String, String) {
    let output = lakegate(data_dir)
        .args(["replay", target])
        .output()
        .expect("lakegate runs");
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn replay_of_a_history_file_says_compatible_or_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let histories = repo_root().join("tests/histories/IngestFileWorkflow");
    // The same run in the SDK's JSON and as `temporal workflow show --output json` prints it.
    for name in [
        "quarantined_approved.json",
        "quarantined_approved.proto3.json",
    ] {
        let path = histories.join(name);
        let (code, stdout, stderr) = replay(dir.path(), path.to_str().unwrap());
        assert_eq!(code, Some(0), "{name}: {stdout}{stderr}");
        assert!(
            stdout.starts_with("compatible: IngestFileWorkflow ingest-")
                && stdout.trim_end().ends_with(", 47 events"),
            "{name}: {stdout}"
        );
    }

    // A history whose run called an activity this build no longer schedules at that point.
    let recorded =
        std::fs::read_to_string(histories.join("quarantined_approved.proto3.json")).unwrap();
    let changed = recorded.replacen(
        r#""name": "validate_object""#,
        r#""name": "validate_object_v0""#,
        1,
    );
    assert_ne!(changed, recorded);
    let path = dir.path().join("changed.json");
    std::fs::write(&path, changed).unwrap();
    let (code, stdout, stderr) = replay(dir.path(), path.to_str().unwrap());
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("incompatible: IngestFileWorkflow ingest-")
            && stdout.contains("nondeterminism: [TMPRL1100]")
            && stdout.contains("scheduled event 'validate_object_v0' does not match")
            && !stdout.contains("Failure {"),
        "the SDK's reason, without its Debug wrapping: {stdout}"
    );

    let path = dir.path().join("not-a-history.json");
    std::fs::write(&path, r#"{"status": "ok"}"#).unwrap();
    let (code, _, stderr) = replay(dir.path(), path.to_str().unwrap());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("not a workflow history"), "{stderr}");
}

#[test]
fn replay_of_a_live_workflow_id_and_of_its_web_ui_download() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state");
    let (_guard, _, ui_port) = detached_dev(&data);
    let good = dir.path().join("patients_good.csv");
    std::fs::write(&good, "id,birthdate,gender\np1,1980-01-02,F\n").unwrap();
    let out = run(lakegate(&data)
        .args(["ingest", "--dataset", "ehr"])
        .arg(&good));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("onboarded to raw/"), "{stdout}");
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("patients_good.csv: started "))
        .expect("the workflow id is printed")
        .trim()
        .to_owned();

    let (code, stdout, stderr) = replay(&data, &id);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let line = stdout.trim_end();
    let events: usize = line
        .strip_prefix(&format!("compatible: IngestFileWorkflow {id}, "))
        .and_then(|rest| rest.strip_suffix(" events"))
        .unwrap_or_else(|| panic!("{line}"))
        .parse()
        .unwrap();
    assert!(events > 10, "{line}");

    // What the Web UI's Download (encoded) saves: `{"events": [...]}` from its HTTP API.
    let response = ui_get(
        ui_port,
        &format!("/api/v1/namespaces/default/workflows/{id}/history"),
    );
    let response: serde_json::Value = serde_json::from_str(&response).unwrap();
    let download = serde_json::json!({ "events": response["history"]["events"] });
    let path = dir.path().join("events.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&download).unwrap()).unwrap();
    let (code, stdout, stderr) = replay(&data, path.to_str().unwrap());
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout.trim_end(),
        line,
        "the download replays like the live history"
    );

    let (code, _, stderr) = replay(&data, "ingest-no-such-workflow");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("ingest-no-such-workflow"), "{stderr}");
}
