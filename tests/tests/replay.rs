//! Replays every committed history in tests/histories against the current workflow code, so a
//! change that would break running workflows fails here rather than in production.
//! Re-record with `LAKEGATE_RECORD_HISTORIES=1 cargo test -p lakegate-tests --test ingest`.

use lakegate_tests::repo_root;
use lakegate_workflows::IngestFileWorkflow;
use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

fn replayer() -> WorkflowReplayer {
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<IngestFileWorkflow>()
        .expect("register IngestFileWorkflow")
        .build();
    WorkflowReplayer::new(options).expect("replayer")
}

fn histories() -> Vec<(String, Vec<u8>)> {
    let dir = repo_root().join("tests/histories");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn committed_histories_replay_against_current_code() {
    let histories = histories();
    let names: Vec<&str> = histories.iter().map(|(n, _)| n.as_str()).collect();
    // The main paths must all be covered, so deleting a history does not quietly pass.
    for expected in [
        "promoted.json",
        "quarantined_approved.json",
        "quarantined_rejected.json",
        "review_timed_out.json",
        "no_contract_rejected.json",
    ] {
        assert!(
            names.contains(&expected),
            "tests/histories lacks {expected}: {names:?}"
        );
    }
    let replayer = replayer();
    for (name, json) in histories {
        let history = WorkflowHistory::from_json(&json).unwrap_or_else(|e| panic!("{name}: {e}"));
        replayer
            .replay_workflow(history)
            .await
            .unwrap_or_else(|e| panic!("{name} no longer replays: {e}"));
    }
}
