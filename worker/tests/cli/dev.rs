//! The dev loop: `lakegate dev --detach`, ingest, review, status and stop; the settings a detached
//! dev hands to client commands; per-command help.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use lakegate::dev_server::{self, free_port};

use crate::common::{
    DevGuard, detached_dev, ingest_ehr, lakegate, patient_files, repo_root, review_id, run,
    run_expecting, venv,
};

#[test]
fn dev_ingest_review_status_and_stop_work_as_the_readme_says() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state");
    let (_guard, port, _) = detached_dev(&data);
    let pid: u32 = std::fs::read_to_string(data.join("dev.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(dev_server::is_alive(pid));

    let (good, bad) = patient_files(dir.path());
    // Exit code 3: a file waits for review.
    let out = ingest_ehr(lakegate(&data), &[&good, &bad], 3);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("patients_good.csv: onboarded to raw/ehr/patients/"),
        "{stdout}"
    );
    assert!(
        stdout.contains("patients_bad.csv: QUARANTINED (required(id))"),
        "{stdout}"
    );
    let id = review_id(&stdout);

    let out = run(lakegate(&data).args([
        "review",
        &id,
        "approve",
        "--reviewer",
        "alice",
        "--reason",
        "fixed",
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The `review` Update answers with what the workflow did, then the status follows.
    assert!(
        stdout.contains("outcome:   promoted to raw/ehr/patients/"),
        "{stdout}"
    );
    assert!(stdout.contains("phase:     promoted"), "{stdout}");
    // A second review of a decided file is refused: exit 1, the workflow's reason on stderr.
    let out = run_expecting(
        lakegate(&data).args(["review", &id, "reject", "--reviewer", "bob"]),
        1,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("review refused: already decided"),
        "{stderr}"
    );
    let out = run(lakegate(&data).args(["status", &id, "--output", "json"]));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["phase"], "promoted");
    assert_eq!(status["review"]["reviewer"], "alice");

    // The same file again is recognised, not onboarded twice.
    let out = run(lakegate(&data)
        .args(["ingest", "--dataset", "ehr", "--no-wait"])
        .arg(&good));
    assert!(String::from_utf8_lossy(&out.stdout).contains("already onboarded"));

    run(lakegate(&data).args(["dev", "--stop"]));
    assert!(!dev_server::is_alive(pid));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err(),
        "the dev server it started is stopped too"
    );
}

/// `lakegate` as a second terminal runs it: only the data directory, no other lakegate setting
/// in the environment.
fn bare_lakegate(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lakegate"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LAKEGATE_") {
            command.env_remove(name);
        }
    }
    command
        .env("LAKEGATE_DATA_DIR", data_dir)
        .env_remove("TEMPORAL_ADDRESS")
        .env_remove("TEMPORAL_PROFILE")
        .stdin(Stdio::null());
    command
}

#[test]
fn a_detached_dev_keeps_its_flags_and_tells_client_commands_its_settings() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state");
    let pipeline = dir.path().join("my-pipeline.yaml");
    let (port, ui_port) = (free_port().unwrap(), free_port().unwrap());
    let _guard = DevGuard(data.clone());
    let out = run(bare_lakegate(&data)
        .args(["dev", "--detach", "--task-queue", "cli-settings"])
        .args([
            "--port",
            &port.to_string(),
            "--ui-port",
            &ui_port.to_string(),
        ])
        .arg("--contracts")
        .arg(repo_root().join("tests/fixtures/contracts"))
        .arg("--pipeline")
        .arg(&pipeline)
        .arg("--venv")
        .arg(venv()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "Stop it with: lakegate dev --stop --data-dir {}",
            data.display()
        )),
        "{stdout}"
    );

    // The background process got every flag, --pipeline included, and says so in dev.json.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("dev.json")).unwrap()).unwrap();
    assert_eq!(state["pipeline"], pipeline.to_str().unwrap());
    assert_eq!(state["task_queue"], "cli-settings");
    assert_eq!(state["address"], format!("127.0.0.1:{port}"));
    let pid = state["pid"].as_u64().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.contains("--pipeline"), "{cmdline}");
    assert!(!cmdline.contains("--detach"), "{cmdline}");

    let (good, bad) = patient_files(dir.path());

    // No flags: the contracts and the task queue come from dev.json (the default task queue has
    // no worker, the default contracts no such table), and every file is promoted: exit 0.
    let out = run(bare_lakegate(&data)
        .args(["ingest", "--dataset", "ehr"])
        .arg(&good));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("onboarded to raw/ehr/patients/"),
        "{out:?}"
    );
    // A missing file is named as such, before anything starts.
    let out = run_expecting(
        bare_lakegate(&data).args(["ingest", "--dataset", "ehr", "/no/such/file.csv"]),
        1,
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("file not found: /no/such/file.csv"),
        "{out:?}"
    );

    // Quarantined: exit 3. Its run terminated: a failed run, started again, not "already
    // onboarded".
    let out = ingest_ehr(bare_lakegate(&data), &[&bad], 3);
    let id = review_id(&String::from_utf8_lossy(&out.stdout));
    run(Command::new(venv().join("bin/temporal")).args([
        "workflow",
        "terminate",
        "--address",
        &format!("127.0.0.1:{port}"),
        "--workflow-id",
        &id,
        "--reason",
        "test",
    ]));
    let out = ingest_ehr(bare_lakegate(&data), &[&bad], 3);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("failed; starting it again") && !stdout.contains("already onboarded"),
        "{stdout}"
    );

    // A closed stdout (`lakegate status ... | head`) ends the command quietly (exit 141 as for
    // SIGPIPE), without a panic; a review so closed is still made.
    let closed_stdout = |args: &[&str]| {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = bare_lakegate(&data)
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(141), "{args:?}: {out:?}");
        assert!(out.stderr.is_empty(), "{args:?}: {out:?}");
    };
    closed_stdout(&["status", &id]);

    // A second terminal in the folder whose `.lakegate` is the dev server's: no flag and no
    // setting in the environment at all, and it still reaches this server (not one on 7233).
    std::os::unix::fs::symlink(&data, dir.path().join(".lakegate")).unwrap();
    let mut second_terminal = bare_lakegate(&data);
    second_terminal
        .env_remove("LAKEGATE_DATA_DIR")
        .current_dir(dir.path());
    let out = run(second_terminal.args(["status", &id, "--output", "json"]));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["phase"], "awaiting_review", "{status}");

    closed_stdout(&["review", &id, "reject", "--reviewer", "bob"]);

    // Rejected: the same bytes again are recognised, and the exit code says they failed.
    let out = ingest_ehr(bare_lakegate(&data), &[&bad], 4);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("already onboarded"),
        "{out:?}"
    );

    // The background log is plain text.
    let log = std::fs::read_to_string(data.join("dev.log")).unwrap();
    assert!(
        log.contains("Worker serving task queue 'cli-settings'"),
        "{log}"
    );
    assert!(!log.contains('\u{1b}'), "ANSI codes in dev.log: {log:?}");

    run(bare_lakegate(&data).args(["dev", "--stop"]));
}

#[test]
fn each_command_lists_only_the_flags_it_reads() {
    let help = |command: &[&str]| {
        let out = run(Command::new(env!("CARGO_BIN_EXE_lakegate"))
            .args(command)
            .arg("--help"));
        String::from_utf8(out.stdout).unwrap()
    };
    let validate = help(&["validate"]);
    for hidden in [
        "--aws-endpoint-url",
        "--backend",
        "--data-dir",
        "--pipeline",
    ] {
        assert!(!validate.contains(hidden), "{validate}");
    }
    assert!(help(&["status"]).contains("--data-dir"));
    assert!(!help(&["status"]).contains("--athena-workgroup"));
    assert!(help(&["query"]).contains("--athena-workgroup"));
    assert!(help(&["worker"]).contains("--batch-job-queue"));
    assert!(help(&["schedule", "sweep"]).contains("--task-queue"));
    assert!(!help(&["schedule", "sweep"]).contains("--backend"));
    // Hidden, not refused: environments that set every flag keep working.
    let out = run_expecting(
        Command::new(env!("CARGO_BIN_EXE_lakegate")).args([
            "validate",
            "--backend",
            "aws",
            "--contract",
            "/no/such/contract.yaml",
            "/no/such/file.csv",
        ]),
        2,
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("bad contract"));
}

/// `query --output json` types its values by column: numbers and booleans as JSON numbers and
/// booleans, NULL as null, text (a zero-padded code too) and dates as strings.
#[test]
fn query_json_output_is_typed_by_column() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(lakegate(&dir.path().join("state")).args([
        "query",
        "--output",
        "json",
        "select 42 as n, 2.5::double as x, 12.30::decimal(10, 2) as amount, true as ok, \
         '01234' as zip, date '2026-01-02' as day, null::bigint as missing",
    ]));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([{
            "n": 42, "x": 2.5, "amount": 12.3, "ok": true, "zip": "01234",
            "day": "2026-01-02", "missing": null
        }])
    );
}
