//! Replays every committed history under tests/histories/<WorkflowType>/ against the current
//! workflow code, through the same library function as `lakegate replay`, so a change that would
//! break running workflows fails here rather than in production. Histories come in both JSON forms
//! the function reads: the SDK's (`*.json`) and the canonical proto3 JSON of the Temporal CLI and
//! Web UI (`*.proto3.json`). Recording adds new files and never rewrites one (docs/evolution.md):
//! `LAKEGATE_RECORD_HISTORIES=1 cargo test -p lakegate-tests --test <ingest|pipeline|...>`.

use std::collections::BTreeSet;
use std::time::Duration;

use lakegate::replay::{self, HistorySource, Verdict};
use lakegate_models::{IngestInput, names};
use lakegate_tests::histories;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use temporalio_sdk::{WorkflowContext, WorkflowResult};

/// The paths each workflow type must keep covered, so deleting a history does not quietly pass.
const REQUIRED: &[&str] = &[
    "IngestFileWorkflow/promoted.json",
    "IngestFileWorkflow/quarantined_approved.json",
    "IngestFileWorkflow/quarantined_approved.proto3.json",
    "IngestFileWorkflow/quarantined_rejected.json",
    "IngestFileWorkflow/review_timed_out.json",
    "IngestFileWorkflow/no_contract_rejected.json",
    "IngestFileWorkflow/changed_during_validation.json",
    "CrawlWorkflow/coalesced.json",
    "CrawlWorkflow/continued_as_new.json",
    // Recorded with the code from before the transform child got its Web UI summary.
    "CrawlWorkflow/transform_child_started.json",
    "TransformWorkflow/dbt_retry.json",
    "TransformWorkflow/check_deadline.json",
    // After transform-logs-in-lake: the failed jobs' logs kept by key, not as a tail.
    "TransformWorkflow/dbt_retry.3.json",
    "OnboardDatasetWorkflow/continued_as_new.json",
    "LandingSweepWorkflow/swept.json",
    // After ingest-alerts and transform-alerts: alerts sent by the send_alert activity.
    "IngestFileWorkflow/alerts_quarantine_warning_timeout.json",
    "TransformWorkflow/alerts_check_failed.json",
    "TransformWorkflow/alerts_stage_failed.json",
    "RetractWorkflow/retracted.json",
    "RetractWorkflow/refused_not_promoted.json",
    "RetractWorkflow/refused_already_retracted.json",
    "RetractWorkflow/bad_input.json",
];

/// The id prefix each workflow type's ids start with.
fn id_prefix(workflow_type: &str) -> &'static str {
    match workflow_type {
        names::INGEST_FILE_WORKFLOW => "ingest-",
        names::CRAWL_WORKFLOW => "crawl-",
        names::TRANSFORM_WORKFLOW => "transform-",
        names::ONBOARD_DATASET_WORKFLOW => "backfill-",
        names::RETRACT_WORKFLOW => "retract-",
        _ => "",
    }
}

fn history(name: &str) -> Vec<u8> {
    std::fs::read(histories::dir().join(name)).unwrap()
}

#[tokio::test]
async fn committed_histories_replay_against_current_code() {
    let committed = histories::committed().unwrap();
    for expected in REQUIRED {
        assert!(
            committed.iter().any(|c| c == expected),
            "tests/histories lacks {expected}: {committed:?}"
        );
    }
    for name in committed {
        let outcome = replay::replay_json(&history(&name))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            outcome.verdict,
            Verdict::Compatible,
            "{name} no longer replays"
        );
        let folder = name.split('/').next().unwrap();
        assert_eq!(
            outcome.workflow_type, folder,
            "{name} is filed under the wrong type"
        );
        assert!(
            outcome.workflow_id.starts_with(id_prefix(folder)),
            "{name}: {}",
            outcome.workflow_id
        );
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

/// A committed history is never rewritten or regenerated in place: each one's content is pinned in
/// tests/histories/SHA256SUMS, and every history is listed there (a new recording appends itself).
#[test]
fn committed_histories_match_their_recorded_digests() {
    let digests = histories::digests().unwrap();
    let listed: BTreeSet<&str> = digests.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(listed.len(), digests.len(), "SHA256SUMS lists a file twice");
    let committed = histories::committed().unwrap();
    for name in &committed {
        assert!(
            listed.contains(name.as_str()),
            "{name} is not in tests/histories/SHA256SUMS: record histories with \
             LAKEGATE_RECORD_HISTORIES=1, which appends them"
        );
    }
    for (digest, name) in &digests {
        let path = histories::dir().join(name);
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{name} is listed in SHA256SUMS but unreadable: {e}"));
        assert_eq!(
            &histories::sha256_hex(&bytes),
            digest,
            "{name} changed after it was committed: committed histories are never rewritten \
             (record a new file instead; docs/evolution.md)"
        );
    }
}

/// The one-round-trip change to IngestFileWorkflow went in behind a patch: histories recorded
/// before it (no marker) and after it (with the marker) are both committed, and the replay test
/// above replays both against this build, so runs that were open across the change survive it.
#[test]
fn ingest_histories_from_before_and_after_the_one_round_trip_patch_are_committed() {
    let patch = lakegate_workflows::patches::INGEST_ONE_ROUND_TRIP;
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for name in histories::committed().unwrap() {
        if !name.starts_with("IngestFileWorkflow/") || name.ends_with(".proto3.json") {
            continue;
        }
        let ids = histories::patch_ids(&history(&name), &[patch]).unwrap();
        if ids.is_empty() {
            before.push(name);
        } else {
            after.push(name);
        }
    }
    for path in ["promoted", "quarantined_approved", "review_timed_out"] {
        let file = format!("IngestFileWorkflow/{path}.json");
        assert!(
            before.contains(&file),
            "{file} predates the patch: {before:?}"
        );
        assert!(
            after
                .iter()
                .any(|a| a.starts_with(&format!("IngestFileWorkflow/{path}."))),
            "no {path} history recorded with {patch}: {after:?}"
        );
    }
}

/// The transform child's Web UI summary (`static_summary`) went in without a patch: core compares
/// a child start's workflow id and type on replay, not its user metadata. This history, recorded
/// with the code from just before that change (c303eb4^), starts and completes a transform child
/// without a summary, so `committed_histories_replay_against_current_code` replaying it is the
/// proof; this test keeps the history what it claims to be.
#[test]
fn a_crawl_history_starts_its_transform_child_without_a_summary() {
    use temporalio_common::protos::temporal::api::enums::v1::EventType;
    let loaded =
        replay::load_history(&history("CrawlWorkflow/transform_child_started.json")).unwrap();
    let of_type = |t: EventType| {
        loaded
            .history
            .events
            .iter()
            .filter(move |e| e.event_type == t as i32)
    };
    let starts: Vec<_> = of_type(EventType::StartChildWorkflowExecutionInitiated).collect();
    assert_eq!(starts.len(), 1, "one transform child started");
    assert!(
        starts[0].user_metadata.is_none(),
        "the child start already carries a summary: {:?}",
        starts[0].user_metadata
    );
    assert_eq!(
        of_type(EventType::ChildWorkflowExecutionCompleted).count(),
        1,
        "the child's completion is recorded, so replay goes past it"
    );
}

/// Both files were recorded from one run, so the proto3-JSON conversion must give exactly the
/// events the SDK's own form holds: nothing dropped, renamed or mistyped on the way.
#[test]
fn the_proto3_json_history_decodes_to_the_same_events_as_the_sdk_form() {
    let sdk =
        replay::load_history(&history("IngestFileWorkflow/quarantined_approved.json")).unwrap();
    let proto3 = replay::load_history(&history(
        "IngestFileWorkflow/quarantined_approved.proto3.json",
    ))
    .unwrap();
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
        "IngestFileWorkflow/quarantined_approved.json",
        "IngestFileWorkflow/quarantined_approved.proto3.json",
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
