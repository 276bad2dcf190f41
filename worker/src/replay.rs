//! Replays a recorded workflow history against this build's workflow code and says whether the
//! code can still run it: the check to make before deploying a change while runs are open.
//!
//! Histories come in two JSON forms. The SDK's own (`WorkflowHistory::to_json`: serde names, oneof
//! attributes under `attributes`) is what the tests record. The canonical proto3 JSON (camelCase
//! names, int64 as strings, enum names, base64 payloads) is what `temporal workflow show --output
//! json` prints and the Web UI downloads; the SDK 1.1.1 cannot read it, so it is decoded here with
//! prost-reflect against the descriptors the SDK's protos were compiled from and re-encoded into
//! the SDK's types.

use std::sync::OnceLock;

use prost::Message;
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage};
use temporalio_client::{
    Client, NamespacedClient, WorkflowExecutionInfo, WorkflowFetchHistoryOptions, WorkflowHistory,
};
use temporalio_common::protos::temporal::api::history::v1::{History, history_event::Attributes};
use temporalio_sdk::workflow_replayer::{
    WorkflowReplayError, WorkflowReplayFailure, WorkflowReplayer, WorkflowReplayerOptions,
};
use tracing::instrument::WithSubscriber;

use crate::codec::EncryptionCodec;

/// Temporal's API descriptors, as compiled by temporalio-protos (see build.rs).
static DESCRIPTORS: &[u8] = include_bytes!(env!("LAKEGATE_TEMPORAL_DESCRIPTORS"));
const HISTORY_MESSAGE: &str = "temporal.api.history.v1.History";

/// Where a history came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistorySource {
    /// JSON in the Rust SDK's serde form (`WorkflowHistory::to_json`).
    SdkJson,
    /// Canonical proto3 JSON (Temporal CLI, Web UI download, HTTP API).
    Proto3Json,
    /// Fetched from a Temporal cluster.
    Cluster,
}

/// A history ready to replay, with what a report names it by.
#[derive(Debug, Clone)]
pub struct LoadedHistory {
    pub history: History,
    pub workflow_type: String,
    /// Empty when the history does not record it (histories from servers before 1.2x).
    pub workflow_id: String,
    pub source: HistorySource,
}

impl LoadedHistory {
    fn new(history: History, source: HistorySource) -> Result<Self, ReplayError> {
        let Some(Attributes::WorkflowExecutionStartedEventAttributes(started)) = history
            .events
            .first()
            .and_then(|event| event.attributes.as_ref())
        else {
            return Err(ReplayError::NotAHistory(
                "the first event is not WorkflowExecutionStarted".into(),
            ));
        };
        Ok(Self {
            workflow_type: started
                .workflow_type
                .as_ref()
                .map(|t| t.name.clone())
                .unwrap_or_default(),
            workflow_id: started.workflow_id.clone(),
            history,
            source,
        })
    }

    pub fn events(&self) -> usize {
        self.history.events.len()
    }
}

/// What the current code made of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Compatible,
    /// The code issues different commands than the history recorded (the SDK's message).
    Nondeterministic(String),
    /// The code failed the workflow task while replaying (a panic, an input it can no longer
    /// decode, a workflow type this build does not have).
    TaskFailed(String),
}

/// The outcome of one replay.
#[derive(Debug, Clone)]
pub struct ReplayOutcome {
    pub workflow_type: String,
    pub workflow_id: String,
    pub events: usize,
    pub source: HistorySource,
    pub verdict: Verdict,
}

impl ReplayOutcome {
    pub fn is_compatible(&self) -> bool {
        self.verdict == Verdict::Compatible
    }
}

impl std::fmt::Display for ReplayOutcome {
    /// One line for the CLI: `compatible: <type> <id>, N events`, or why not.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (ty, id, n) = (&self.workflow_type, &self.workflow_id, self.events);
        match &self.verdict {
            Verdict::Compatible => write!(f, "compatible: {ty} {id}, {n} events"),
            Verdict::Nondeterministic(why) => {
                let why = headline(why);
                write!(
                    f,
                    "incompatible: {ty} {id}, {n} events: nondeterminism: {why}"
                )
            }
            Verdict::TaskFailed(why) => {
                let why = headline(why);
                write!(
                    f,
                    "incompatible: {ty} {id}, {n} events: workflow task failed: {why}"
                )
            }
        }
    }
}

/// The failure's own message out of the SDK's Debug rendering of a completion failure
/// (`... Failure { message: "[TMPRL1100] Nondeterminism error: ...", source: ...`), or all of it.
fn headline(sdk_message: &str) -> &str {
    sdk_message
        .split_once("message: \"")
        .and_then(|(_, rest)| rest.split_once("\", "))
        .map_or(sdk_message, |(message, _)| message)
}

/// Why a history could not be replayed at all (as opposed to replaying as incompatible).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    #[error("not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("not a workflow history: {0}")]
    NotAHistory(String),
    #[error("not a workflow history in the SDK's JSON form: {0}")]
    SdkJson(#[source] serde_json::Error),
    #[error("not a workflow history in proto3 JSON: {0}")]
    CanonicalJson(#[source] serde_json::Error),
    #[error("fetching the history of {workflow_id}: {message}")]
    Fetch {
        workflow_id: String,
        message: String,
    },
    /// The replayer rejected the history itself, or could not run.
    #[error("replay did not run: {0}")]
    Replayer(String),
}

/// Parses a history in either JSON form.
pub fn load_history(json: &[u8]) -> Result<LoadedHistory, ReplayError> {
    let value: serde_json::Value = serde_json::from_slice(json).map_err(ReplayError::NotJson)?;
    // Accepted wrappings: {"events": [...]} (CLI, Web UI, SDK), a bare array of events (the Web
    // UI's import accepts it) and the HTTP API's {"history": {"events": [...]}}.
    let value = match value {
        serde_json::Value::Object(mut map) if map.contains_key("history") => {
            map.remove("history").unwrap_or_default()
        }
        events @ serde_json::Value::Array(_) => serde_json::json!({ "events": events }),
        other => other,
    };
    let first = value
        .get("events")
        .and_then(|events| events.as_array())
        .ok_or_else(|| ReplayError::NotAHistory("no `events` array".into()))?
        .first()
        .ok_or_else(|| ReplayError::NotAHistory("no events".into()))?;
    // The SDK's serde form puts the oneof under `attributes`; proto3 JSON inlines its member.
    if first.get("attributes").is_some() {
        let history: History = serde_json::from_value(value).map_err(ReplayError::SdkJson)?;
        LoadedHistory::new(history, HistorySource::SdkJson)
    } else {
        // Fields a newer server added are skipped, as a protobuf decoder would.
        let options = DeserializeOptions::new().deny_unknown_fields(false);
        let message =
            DynamicMessage::deserialize_with_options(history_descriptor(), value, &options)
                .map_err(ReplayError::CanonicalJson)?;
        let history = History::decode(message.encode_to_vec().as_slice()).map_err(|e| {
            ReplayError::NotAHistory(format!("re-encoding the proto3 JSON history: {e}"))
        })?;
        LoadedHistory::new(history, HistorySource::Proto3Json)
    }
}

fn history_descriptor() -> prost_reflect::MessageDescriptor {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(DESCRIPTORS).expect("temporalio-protos' descriptor set decodes")
    })
    .get_message_by_name(HISTORY_MESSAGE)
    .expect("the descriptor set defines temporal.api.history.v1.History")
}

/// A replayer with every workflow the lakegate worker registers (see `worker::options`).
pub fn lakegate_replayer() -> Result<WorkflowReplayer, ReplayError> {
    lakegate_replayer_with(None)
}

/// [`lakegate_replayer`] decrypting payloads with `codec`: histories of encrypted runs carry
/// their inputs, results and signals encrypted, and the workflow code needs them in clear.
pub fn lakegate_replayer_with(
    codec: Option<&EncryptionCodec>,
) -> Result<WorkflowReplayer, ReplayError> {
    let data_converter = codec
        .map(EncryptionCodec::data_converter)
        .unwrap_or_default();
    let registered = || -> Result<WorkflowReplayerOptions, Box<dyn std::error::Error>> {
        Ok(
            register_all_workflows!(WorkflowReplayerOptions::new().data_converter(data_converter))
                .build(),
        )
    };
    let options = registered().map_err(|e| ReplayError::Replayer(e.to_string()))?;
    WorkflowReplayer::new(options).map_err(|e| ReplayError::Replayer(e.to_string()))
}

/// Replays `json` (either form) against every lakegate workflow of this build.
pub async fn replay_json(json: &[u8]) -> Result<ReplayOutcome, ReplayError> {
    replay_json_with(&lakegate_replayer()?, json).await
}

/// [`replay_json`] with a replayer of one's own (a test's deliberately changed workflow).
pub async fn replay_json_with(
    replayer: &WorkflowReplayer,
    json: &[u8],
) -> Result<ReplayOutcome, ReplayError> {
    replay(replayer, load_history(json)?).await
}

/// Replays a loaded history.
pub async fn replay(
    replayer: &WorkflowReplayer,
    loaded: LoadedHistory,
) -> Result<ReplayOutcome, ReplayError> {
    let events = loaded.events();
    // Core logs the failed workflow task as a warning; the verdict already carries it.
    let replayed = replayer
        .replay_workflow(WorkflowHistory::from(loaded.history))
        .with_subscriber(tracing::subscriber::NoSubscriber::default())
        .await;
    let verdict = match replayed {
        Ok(()) => Verdict::Compatible,
        Err(WorkflowReplayError::Replay(WorkflowReplayFailure::Nondeterminism { message })) => {
            Verdict::Nondeterministic(message)
        }
        Err(WorkflowReplayError::Replay(WorkflowReplayFailure::WorkflowTaskFailure {
            message,
        })) => Verdict::TaskFailed(message),
        Err(e) => return Err(ReplayError::Replayer(e.to_string())),
    };
    Ok(ReplayOutcome {
        workflow_type: loaded.workflow_type,
        workflow_id: loaded.workflow_id,
        events,
        source: loaded.source,
        verdict,
    })
}

/// The history of a workflow (its latest run, or `run_id`) from the cluster `client` is
/// connected to.
pub async fn fetch_history(
    client: &Client,
    workflow_id: &str,
    run_id: Option<&str>,
) -> Result<LoadedHistory, ReplayError> {
    let handle = WorkflowExecutionInfo::builder()
        .namespace(client.namespace())
        .workflow_id(workflow_id)
        .maybe_run_id(run_id.map(str::to_owned))
        .build()
        .bind_untyped(client.clone());
    let events = handle
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .into_events()
        .await
        .map_err(|e| ReplayError::Fetch {
            workflow_id: workflow_id.to_owned(),
            message: e.to_string(),
        })?;
    let mut loaded = LoadedHistory::new(History { events }, HistorySource::Cluster)?;
    if loaded.workflow_id.is_empty() {
        workflow_id.clone_into(&mut loaded.workflow_id);
    }
    Ok(loaded)
}

/// `lakegate replay <PATH|WORKFLOW_ID> [--run-id]`: a path that exists is read as a history file,
/// anything else is a workflow id whose history is fetched from the cluster (`address` overrides
/// the configured one, as for the other client commands). Prints one line and returns the exit
/// code: 0 compatible, 1 incompatible, 2 unreadable input or no connection.
pub async fn run_cli(
    target: &str,
    run_id: Option<&str>,
    address: Option<&str>,
    codec: Option<&EncryptionCodec>,
) -> u8 {
    let replayer = match lakegate_replayer_with(codec) {
        Ok(replayer) => replayer,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let path = std::path::Path::new(target);
    let outcome = if path.exists() {
        if run_id.is_some() {
            eprintln!("error: --run-id applies to a workflow id, and {target} is a file");
            return 2;
        }
        match std::fs::read(path) {
            Ok(json) => replay_json_with(&replayer, &json)
                .await
                .map_err(|e| anyhow::Error::new(e).context(target.to_owned())),
            Err(e) => Err(anyhow::Error::new(e).context(target.to_owned())),
        }
    } else {
        async {
            let client = crate::client::connect(address, codec).await?;
            let loaded = fetch_history(&client, target, run_id).await?;
            Ok(replay(&replayer, loaded).await?)
        }
        .await
    };
    match outcome {
        Ok(outcome) => {
            println!("{outcome}");
            if outcome.is_compatible() { 0 } else { 1 }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}
