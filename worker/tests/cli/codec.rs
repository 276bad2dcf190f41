//! Payload encryption in `lakegate dev`, decoded by its codec server for the CLI and Web UI.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{codec_endpoint, detached_dev, lakegate, run, run_expecting, venv};

/// Every payload's data in a `temporal workflow show --output json` dump, base64-decoded, and how
/// many payloads were encrypted.
fn decoded_payloads(history: &[u8]) -> (String, usize) {
    use base64::Engine;
    fn walk(value: &serde_json::Value, text: &mut String, encrypted: &mut usize) {
        let b64 = base64::engine::general_purpose::STANDARD;
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    let bytes = value.as_str().and_then(|s| b64.decode(s).ok());
                    match (key.as_str(), bytes) {
                        ("data", Some(bytes)) => text.push_str(&String::from_utf8_lossy(&bytes)),
                        ("encoding", Some(bytes)) if bytes == b"binary/encrypted" => {
                            *encrypted += 1;
                        }
                        _ => {}
                    }
                    walk(value, text, encrypted);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, text, encrypted)),
            _ => {}
        }
    }
    let (mut text, mut encrypted) = (String::new(), 0);
    walk(
        &serde_json::from_slice(history).unwrap(),
        &mut text,
        &mut encrypted,
    );
    (text, encrypted)
}

#[test]
fn dev_encrypts_payloads_and_its_codec_server_decodes_them_for_the_cli_and_web_ui() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state");
    let (_guard, port, ui_port) = detached_dev(&data);
    // A landing key with a name in it, quarantined (no id), so a review is still to come.
    let file = dir.path().join("patients_ZZSENT-Moore.csv");
    std::fs::write(&file, "id,birthdate,gender\n,1980-01-02,F\n").unwrap();
    // Exit code 3: the file waits for review.
    let out = run_expecting(
        lakegate(&data)
            .args(["ingest", "--dataset", "ehr"])
            .arg(&file),
        3,
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let id = stdout
        .split_whitespace()
        .find(|w| w.starts_with("ingest-"))
        .expect("a workflow id is printed")
        .to_owned();
    let endpoint = codec_endpoint(ui_port);
    let show = |extra: &[&str]| {
        let out = run(Command::new(venv().join("bin/temporal"))
            .args(["workflow", "show", "--output", "json", "--address"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--workflow-id", &id])
            .args(extra));
        decoded_payloads(&out.stdout)
    };

    // As the server stores it: every payload encrypted, the key nowhere.
    let (stored, encrypted) = show(&[]);
    assert!(encrypted >= 3, "{encrypted} encrypted payloads");
    assert!(
        !stored.contains("ZZSENT"),
        "the key is in clear in the history"
    );
    // Through the codec server (what the Web UI and the CLI with the endpoint show).
    let (decoded, encrypted) = show(&["--codec-endpoint", &endpoint]);
    assert_eq!(encrypted, 0);
    assert!(decoded.contains("patients_ZZSENT-Moore.csv"), "{decoded}");

    // A plain JSON signal, as the Web UI's form or a CLI without the codec sends it, still reads.
    run(Command::new(venv().join("bin/temporal"))
        .args(["workflow", "signal", "--address"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--workflow-id", &id, "--name", "review", "--input"])
        .arg(r#"{"decision": "approve", "reviewer": "alice", "reason": "plain"}"#));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = run(lakegate(&data).args(["status", &id, "--output", "json"]));
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if status["phase"] == "promoted" {
            assert_eq!(status["review"]["reviewer"], "alice");
            break;
        }
        assert!(Instant::now() < deadline, "not promoted: {status}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
