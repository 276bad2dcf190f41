//! Replays every committed history in tests/histories against the current workflow code, through
//! the same library function as `lakegate replay`, so a change that would break running workflows
//! fails here rather than in production. Histories come in both JSON forms the function reads: the
//! SDK's (`*.json`) and the canonical proto3 JSON of the Temporal CLI and Web UI (`*.proto3.json`).
//! Re-record with `LAKEGATE_RECORD_HISTORIES=1 cargo test -p lakegate-tests --test ingest`.

use std::time::Duration;

use lakegate::replay::{self, HistorySource, Verdict};
use lakegate_models::{IngestInput, names};
use lakegate_tests::repo_root;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use temporalio_sdk::{WorkflowContext, WorkflowResult};

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

fn history(name: &str) -> Vec<u8> {
    std::fs::read(repo_root().join("tests/histories").join(name)).unwrap()
}

#[tokio::test]
async fn committed_histories_replay_against_current_code() {
    let histories = histories();
    let names: Vec<&str> = histories.iter().map(|(n, _)| n.as_str()).collect();
    // The main paths must all be covered, so deleting a history does not quietly pass.
    for expected in [
        "promoted.json",
        "quarantined_approved.json",
        "quarantined_approved.proto3.json",
        "quarantined_rejected.json",
        "review_timed_out.json",
        "no_contract_rejected.json",
    ] {
        assert!(
            names.contains(&expected),
            "tests/histories lacks {expected}: {names:?}"
        );
    }
    for (name, json) in histories {
        let outcome = replay::replay_json(&json)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            outcome.verdict,
            Verdict::Compatible,
            "{name} no longer replays"
        );
        assert_eq!(outcome.workflow_type, names::INGEST_FILE_WORKFLOW, "{name}");
        assert!(outcome.workflow_id.starts_with("ingest-"), "{name}");
        let expected = if name.ends_with(".proto3.json") {
            HistorySource::Proto3Json
        } else {
            HistorySource::SdkJson
        };
        assert_eq!(
            outcome.source, expected,
            "{name} was read as {:?}",
            outcome.source
        );
    }
}

/// Both files were recorded from one run, so the proto3-JSON conversion must give exactly the
/// events the SDK's own form holds: nothing dropped, renamed or mistyped on the way.
#[test]
fn the_proto3_json_history_decodes_to_the_same_events_as_the_sdk_form() {
    let sdk = replay::load_history(&history("quarantined_approved.json")).unwrap();
    let proto3 = replay::load_history(&history("quarantined_approved.proto3.json")).unwrap();
    assert_eq!(sdk.source, HistorySource::SdkJson);
    assert_eq!(proto3.source, HistorySource::Proto3Json);
    assert!(sdk.events() > 10, "{} events", sdk.events());
    assert_eq!(sdk.history, proto3.history);
}

#[test]
fn input_that_is_no_history_is_an_error_not_a_verdict() {
    for (json, expected) in [
        (&b"not json"[..], "not JSON"),
        (br#"{"events": []}"#, "no events"),
        (
            br#"{"events": [{"eventId": "1", "eventType": 7}]}"#,
            "not a workflow history",
        ),
    ] {
        let error = replay::load_history(json).unwrap_err().to_string();
        assert!(error.contains(expected), "{error}");
    }
}

/// `IngestFileWorkflow` as a careless change might leave it: it now waits before doing anything
/// else, so its first command is a timer where every recorded history has other commands.
#[workflow]
#[derive(Default)]
struct ChangedIngestFileWorkflow;

#[workflow_methods]
impl ChangedIngestFileWorkflow {
    #[run(name = names::INGEST_FILE_WORKFLOW)]
    async fn run(ctx: &mut WorkflowContext<Self>, _input: IngestInput) -> WorkflowResult<()> {
        ctx.timer(Duration::from_secs(1)).await;
        Ok(())
    }
}

#[tokio::test]
async fn a_deliberately_incompatible_change_fails_replay_in_both_formats() {
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<ChangedIngestFileWorkflow>()
        .unwrap()
        .build();
    let changed = WorkflowReplayer::new(options).unwrap();
    for name in [
        "quarantined_approved.json",
        "quarantined_approved.proto3.json",
    ] {
        let outcome = replay::replay_json_with(&changed, &history(name))
            .await
            .unwrap();
        let Verdict::Nondeterministic(message) = &outcome.verdict else {
            panic!("{name}: expected nondeterminism, got {:?}", outcome.verdict);
        };
        assert!(!message.is_empty(), "{name}");
        assert_eq!(outcome.workflow_type, names::INGEST_FILE_WORKFLOW, "{name}");
        assert!(outcome.workflow_id.starts_with("ingest-"), "{name}");
        assert!(
            outcome
                .to_string()
                .starts_with("incompatible: IngestFileWorkflow ingest-"),
            "{outcome}"
        );
    }
}
