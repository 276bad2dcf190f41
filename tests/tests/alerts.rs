//! Alert webhooks (issue 15): the worker posts PHI-free alerts, Slack-compatible and plain JSON,
//! to a real HTTP receiver on loopback, and retries one that is down.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::post;
use lakegate::client::{self, StartedIngest};
use lakegate_models::{Check, IngestPhase, TransformInput, Zone};
use lakegate_tests::{TestEnv, repo_root};
use lakegate_workflows::TransformWorkflow;
use serde_json::Value;
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};

/// In the landing key and in a cell: neither may reach a webhook.
const SENTINEL: &str = "ZZALERT-Okafor";
const WAIT: Duration = Duration::from_secs(120);

/// What the receiver got: (webhook path, body).
#[derive(Clone, Default)]
struct Received {
    posts: Arc<Mutex<Vec<(String, Value)>>>,
    /// Requests answered 503 so far on the `/flaky` path.
    refused: Arc<Mutex<u32>>,
}

impl Received {
    fn bodies(&self, path: &str) -> Vec<Value> {
        let posts = self.posts.lock().unwrap();
        posts
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }

    fn raw_text(&self) -> String {
        let posts = self.posts.lock().unwrap();
        posts.iter().map(|(_, b)| b.to_string()).collect()
    }

    /// Waits until `path` received a body for which `found` holds.
    async fn wait_for(&self, path: &str, what: &str, found: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(body) = self.bodies(path).into_iter().find(|b| found(b)) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} on {path}; got {:?}",
                self.posts.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn receive(
    State(received): State<Received>,
    UrlPath(path): UrlPath<String>,
    body: String,
) -> StatusCode {
    if path == "flaky" {
        let mut refused = received.refused.lock().unwrap();
        if *refused < 2 {
            *refused += 1;
            return StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    received
        .posts
        .lock()
        .unwrap()
        .push((format!("/{path}"), body));
    StatusCode::OK
}

/// A receiver on a free loopback port: `/json` and `/slack` take everything, `/flaky` answers 503
/// twice before it takes anything.
async fn receiver() -> (String, Received) {
    let received = Received::default();
    let app = Router::new()
        .route("/{path}", post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, received)
}

async fn env_with_alerts(base: &str) -> TestEnv {
    TestEnv::start_crawling(&format!(
        "crawler_prefix: alerts-\nquiet_period_secs: 1\nmax_wait_secs: 10\n\
         alerts:\n  console_url: http://console.example:8080\n  review_warning_secs: 4\n  \
         webhooks:\n    \
         - {{ name: ops, url: \"{base}/json\", format: json }}\n    \
         - {{ name: chat, url: \"{base}/slack\", format: slack, events: [file_quarantined, check_failed] }}\n    \
         - {{ name: pager, url: \"{base}/flaky\", events: [review_timed_out] }}\n"
    ))
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_file_alerts_then_warns_then_times_out() {
    let (base, received) = receiver().await;
    let env = env_with_alerts(&base).await;
    let bad = format!("id,birthdate,gender\np3,1990-05-06,F\n,1991-07-08,{SENTINEL}\n");
    let mut input = env
        .land(
            &format!("landing/emr/ehr/patients_{SENTINEL}.csv"),
            bad.as_bytes(),
        )
        .await
        .unwrap();
    input.review_timeout_secs = 10;
    let id = match client::start_ingest(&env.client, &env.config.task_queue, input)
        .await
        .unwrap()
    {
        StartedIngest::Started(id) => id,
        StartedIngest::Duplicate(id) => panic!("{id} should be new"),
    };

    let quarantined = received
        .wait_for("/json", "file_quarantined", |b| {
            b["kind"] == "file_quarantined"
        })
        .await;
    assert_eq!(quarantined["workflow_id"], id.as_str());
    assert_eq!(quarantined["dataset"], "ehr");
    assert_eq!(quarantined["table"], "patients");
    assert!(
        quarantined["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("(id)")),
        "{quarantined}"
    );
    assert!(quarantined["deadline"].as_u64().is_some(), "{quarantined}");
    assert_eq!(
        quarantined["console_url"],
        format!("http://console.example:8080/files/{id}").as_str()
    );
    let chat = received
        .wait_for("/slack", "a chat message", |b| b["text"].is_string())
        .await;
    let text = chat["text"].as_str().unwrap();
    assert!(text.contains("File quarantined"), "{text}");
    assert!(text.contains("`ehr.patients`"), "{text}");

    let near = received
        .wait_for("/json", "review_deadline_near", |b| {
            b["kind"] == "review_deadline_near"
        })
        .await;
    assert_eq!(near["workflow_id"], id.as_str());
    // The pager answered 503 twice: the activity retried until it took the alert, once.
    let timed_out = received
        .wait_for("/flaky", "review_timed_out", |b| {
            b["kind"] == "review_timed_out"
        })
        .await;
    assert_eq!(timed_out["workflow_id"], id.as_str());
    let outcome = client::wait_outcome(&env.client, &id).await.unwrap();
    assert_eq!(
        (outcome.phase, outcome.zone),
        (IngestPhase::Rejected, Zone::Rejected)
    );
    assert_eq!(*received.refused.lock().unwrap(), 2);
    assert_eq!(received.bodies("/flaky").len(), 1, "delivered once");
    assert_eq!(
        received.bodies("/slack").len(),
        1,
        "chat subscribes to quarantines only"
    );
    let kinds: Vec<String> = received
        .bodies("/json")
        .iter()
        .map(|b| b["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "file_quarantined",
            "review_deadline_near",
            "review_timed_out"
        ]
    );

    let everything = received.raw_text();
    assert!(
        !everything.contains(SENTINEL),
        "a webhook got a landing key or a cell: {everything}"
    );
    env.record_history("alerts_quarantine_warning_timeout", &id)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_stage_and_a_failed_check_alert() {
    let (base, received) = receiver().await;
    let env = env_with_alerts(&base).await;
    let project = repo_root()
        .join("tests/fixtures/dbt_flaky")
        .display()
        .to_string();
    let transform = |stages: Vec<String>, checks: Vec<Check>| TransformInput {
        dataset: "flaky".into(),
        project_dir: project.clone(),
        profiles_dir: project.clone(),
        target: "duckdb".into(),
        stages,
        environment: Default::default(),
        max_attempts: 3,
        poll_initial_secs: 1,
        poll_max_secs: 2,
        checks,
        job_deadline_secs: lakegate_models::default_job_deadline_secs(),
        query_deadline_secs: lakegate_models::default_query_deadline_secs(),
    };
    let run = |id: &str, input: TransformInput| {
        let options = WorkflowStartOptions::new(env.config.task_queue.clone(), id).build();
        let client = env.client.clone();
        async move {
            client
                .start_workflow(TransformWorkflow::run, input.into(), options)
                .await
                .unwrap()
                .get_result(WorkflowGetResultOptions::default())
                .await
        }
    };

    let failing_check = Check::Sql {
        name: "no_rows_expected".into(),
        sql: "select 1 as violation".into(),
    };
    let checked = run(
        "transform-alerts-check",
        transform(Vec::new(), vec![failing_check]),
    )
    .await
    .unwrap();
    assert!(!checked.succeeded);
    let check = received
        .wait_for("/json", "check_failed", |b| b["kind"] == "check_failed")
        .await;
    assert_eq!(check["workflow_id"], "transform-alerts-check");
    assert_eq!(check["dataset"], "flaky");
    assert_eq!(check["rules"], serde_json::json!(["sql:no_rows_expected"]));
    assert_eq!(check["counts"]["failed_checks"], 1);
    assert_eq!(check["console_url"], "http://console.example:8080/runs");
    received
        .wait_for("/slack", "a check message", |b| {
            b["text"]
                .as_str()
                .is_some_and(|t| t.contains("no_rows_expected"))
        })
        .await;

    let failed = run(
        "transform-alerts-stage",
        transform(vec!["broken".into()], Vec::new()),
    )
    .await;
    assert!(failed.is_err(), "a failing dbt test fails the transform");
    let stage = received
        .wait_for("/json", "transform_failed", |b| {
            b["kind"] == "transform_failed"
        })
        .await;
    assert_eq!(stage["workflow_id"], "transform-alerts-stage");
    let rules: Vec<&str> = stage["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(rules[0], "stage broken");
    assert!(
        rules[1..].iter().any(|r| r.starts_with("test.")),
        "the failed dbt test's node id: {rules:?}"
    );
    assert_eq!(stage["counts"]["failed_nodes"], (rules.len() - 1) as u64);
    env.record_history("alerts_check_failed", "transform-alerts-check")
        .await
        .unwrap();
    env.record_history("alerts_stage_failed", "transform-alerts-stage")
        .await
        .unwrap();
}
