//! No PHI in Temporal on the failure paths, with the real parts: a `lakegate worker` process on a
//! Temporal dev server, dbt-duckdb and the DuckDB CLI from the virtualenv, `lakegate pipeline`,
//! `lakegate status` and `lakegate codec-server` as an operator runs them.
//!
//! Values planted in files make the tools fail and quote them: three dbt models (DuckDB's error
//! quotes the value in double quotes, unquoted on a line of its own, and with an apostrophe), a
//! SQL check whose query fails on one and one whose violating rows hold them, and a crawl the
//! local crawler fails on (DuckDB prints the offending line). A second sentinel is in a landing
//! key. The scan reads every history as the server stores it, the visibility store (search
//! attributes), the worker's and the server's logs and the CLI's output: no sentinel anywhere.
//! Through the codec server the payloads decrypt; decrypted, they still hold no cell value and no
//! tool text. The landing key may appear there, and only there: a workflow's input names its
//! file, inside an encrypted payload.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lakegate::client::{self, StartedIngest};
use lakegate::config::AwsConfig;
use lakegate_activities::ports::ObjectStore;
use lakegate_activities::testing::pipeline::dbt_pipeline_yaml;
use lakegate_models::{Check, CrawlStatus, IngestPhase, TransformResult};
use lakegate_tests::{phi, repo_root, start_dev_server, venv};
use lakegate_workflows::TransformWorkflow;
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};
use tokio::io::AsyncReadExt;

/// In cell values: never in a history (stored or decrypted), a log or the CLI's output.
const VALUE: &str = "ZZPHIFAIL";
/// In a landing key: only ever inside an encrypted payload.
const KEY: &str = "ZZKEYSENT";
const WAIT: Duration = Duration::from_secs(600);

/// A `lakegate` process's environment: this test's server, lake, contracts, pipeline and queue.
struct Lakegate {
    bin: PathBuf,
    vars: Vec<(&'static str, String)>,
}

impl Lakegate {
    fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        for (name, _) in std::env::vars() {
            if name.starts_with("TEMPORAL_") || name.starts_with("LAKEGATE_") {
                command.env_remove(name);
            }
        }
        command.envs(self.vars.iter().map(|(k, v)| (*k, v)));
        command.stdin(Stdio::null());
        command
    }

    /// Runs a client command; returns its stdout and stderr together, as an operator sees them.
    fn output(&self, args: &[&str]) -> String {
        let out = self
            .command()
            .args(args)
            .output()
            .expect("running lakegate");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

/// A child process stopped by its PID when the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        lakegate::dev_server::terminate(self.0.id());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pipeline_yaml(dir: &Path) -> PathBuf {
    let dbt = repo_root().join("tests/fixtures/phi/dbt");
    let path = dir.join("pipeline.yaml");
    std::fs::write(&path, dbt_pipeline_yaml("phi-", "phi", &dbt, "phi", 1)).unwrap();
    path
}

async fn wait_crawl(
    client: &temporalio_client::Client,
    crawler: &str,
    done: impl Fn(&CrawlStatus) -> bool,
) -> CrawlStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(status) = client::crawl_status(client, crawler).await
            && done(&status)
        {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "crawler {crawler} did not get there"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn stored(store: &dyn ObjectStore, key: &str) -> String {
    assert!(key.starts_with("logs/"), "{key} is not in the log zone");
    let mut body = store.get(key).await.unwrap();
    let mut text = String::new();
    body.read_to_string(&mut text).await.unwrap();
    text
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_errors_quoting_values_never_reach_temporal_logs_or_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_dev_server(dir.path()).unwrap();
    let address = server.address().to_owned();
    let data_dir = dir.path().join("data");
    let contracts = repo_root().join("tests/fixtures/phi/contracts");
    let pipeline = pipeline_yaml(dir.path());
    let config =
        lakegate_tests::lake_config(&data_dir, &contracts, Some(&pipeline), AwsConfig::default());
    // The dev key in the data directory: the worker, the CLI and the codec server all read it.
    let codec = config.dev_codec().unwrap();
    let client = client::connect_with_retry(Some(&address), Some(&codec), Duration::from_secs(60))
        .await
        .unwrap();
    let path = |p: &Path| p.display().to_string();
    let lakegate = Lakegate {
        bin: lakegate_tests::chaos::lakegate_bin().unwrap(),
        vars: vec![
            ("TEMPORAL_ADDRESS", address.clone()),
            ("TEMPORAL_NAMESPACE", "default".into()),
            ("LAKEGATE_DATA_DIR", path(&data_dir)),
            ("LAKEGATE_BUCKET", config.bucket.clone()),
            ("LAKEGATE_CONTRACTS", path(&contracts)),
            ("LAKEGATE_TASK_QUEUE", config.task_queue.clone()),
            ("LAKEGATE_VENV", path(&venv())),
            ("LAKEGATE_PIPELINE", path(&pipeline)),
            ("LAKEGATE_BACKEND", "local".into()),
            // Everything lakegate logs, so the scan has the most to search.
            (
                "LAKEGATE_LOG",
                "debug,temporalio_sdk_core=info,h2=info,hyper=info".into(),
            ),
        ],
    };
    let worker_log = dir.path().join("worker.log");
    let log = File::create(&worker_log).unwrap();
    let worker = Running(
        lakegate
            .command()
            .arg("worker")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );

    // Dates that are names: text to the contract, so the files are promoted; dbt's casts fail.
    let people = format!(
        "id,birthdate\np-ok,1980-01-02\np-dq,{VALUE}-dq\np-uq,{VALUE}-uq\np-ap,O'{VALUE}-ap\n"
    );
    // The crawler's sniffer types birthdate a date from the first 20,480 rows; the last fails it.
    let mut visits = String::from("id,birthdate\n");
    for n in 0..21_000 {
        visits.push_str(&format!("v{n},1980-01-02\n"));
    }
    visits.push_str(&format!("v-x,{VALUE}-crawl\n"));
    let store = lakegate::worker::local_store(&config);
    let mut ingests = Vec::new();
    for (key, body) in [
        ("landing/src/phi/people.csv".to_owned(), people),
        (
            format!("landing/src/phi/measurement_{KEY}.csv"),
            "id,value\nm1,5\n".into(),
        ),
        // DuckDB's CSV error lists the file's path, unquoted: the CLI must not print it.
        (format!("landing/src/phicrawl/visits_{KEY}.csv"), visits),
    ] {
        let input = lakegate_tests::land(&store, &config.bucket, &key, body.as_bytes())
            .await
            .unwrap();
        match client::start_ingest(&client, &config.task_queue, input)
            .await
            .unwrap()
        {
            StartedIngest::Started(id) => ingests.push(id),
            StartedIngest::Duplicate(id) => panic!("{id} should be new"),
        }
    }
    for id in &ingests {
        let outcome = client::wait_outcome(&client, id).await.unwrap();
        assert_eq!(outcome.phase, IngestPhase::Promoted, "{id}");
    }

    // The transform after the crawl fails in its one stage, three models in error.
    let phi_status = wait_crawl(&client, "phi-phi", |s| {
        s.last
            .as_ref()
            .is_some_and(|l| l.transform_succeeded.is_some())
    })
    .await;
    let crawl = phi_status.last.unwrap();
    assert_eq!(crawl.status, "SUCCEEDED", "{crawl:?}");
    assert_eq!(crawl.transform_succeeded, Some(false), "{crawl:?}");
    let transform_id = crawl.transform_workflow_id.clone().unwrap();
    let transform = client::transform_status(&client, &transform_id)
        .await
        .unwrap();
    let stage = &transform.stages[0];
    assert!(!stage.succeeded && stage.log_tail.is_empty(), "{stage:?}");
    let errors: Vec<&str> = stage
        .nodes
        .iter()
        .filter(|n| n.status == "error")
        .map(|n| n.unique_id.as_str())
        .collect();
    assert_eq!(errors.len(), 3, "{stage:?}");
    assert!(
        matches!(
            stage.error_class.as_deref(),
            Some("Conversion Error" | "Invalid Input Error")
        ),
        "{stage:?}"
    );
    // dbt's words, values and all, are in the lake's log zone, where they belong.
    let dbt_log = stored(store.as_ref(), stage.log_key.as_deref().unwrap()).await;
    for case in ["dq", "uq", "ap"] {
        assert!(
            dbt_log.contains(&format!("{VALUE}-{case}")),
            "{case}: {dbt_log}"
        );
    }

    // The crawl of the other dataset fails on its file's last line.
    let crawl_status = wait_crawl(&client, "phi-phicrawl", |s| s.last_failure.is_some()).await;
    let failed = crawl_status.last_failure.unwrap();
    assert_eq!(failed.status, "FAILED", "{failed:?}");
    assert_eq!(
        failed.error.as_deref(),
        Some("crawler FAILED (Conversion Error)"),
        "{failed:?}"
    );
    let crawl_log = stored(store.as_ref(), failed.log_key.as_deref().unwrap()).await;
    assert!(crawl_log.contains(&format!("{VALUE}-crawl")), "{crawl_log}");
    assert!(
        crawl_log.contains(&format!("visits_{KEY}.csv")),
        "{crawl_log}"
    );

    // Checks: one query fails on a value, one counts the rows that hold them.
    let checks = lakegate_tests::runs::checks_only(
        "phi",
        vec![
            Check::Sql {
                name: "birthdates_are_dates".into(),
                // In the filter: a cast only selected is optimised away under count(*).
                sql: "select id from raw.phi_people \
                      where id = 'p-ap' and cast(birthdate as date) > date '1900-01-01'"
                    .into(),
            },
            Check::Sql {
                name: "no_text_in_birthdates".into(),
                sql: "select * from raw.phi_people where try_cast(birthdate as date) is null"
                    .into(),
            },
        ],
    );
    let checks_id = "transform-phi-checks".to_owned();
    let result: TransformResult = client
        .start_workflow(
            TransformWorkflow::run,
            checks.into(),
            WorkflowStartOptions::new(config.task_queue.clone(), checks_id.clone()).build(),
        )
        .await
        .unwrap()
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap();
    assert!(!result.succeeded);
    let (failing, counted) = (&result.checks[0], &result.checks[1]);
    assert_eq!(
        failing.error.as_deref(),
        Some("Conversion Error"),
        "{failing:?}"
    );
    let query_log = stored(store.as_ref(), failing.log_key.as_deref().unwrap()).await;
    assert!(query_log.contains(&format!("O'{VALUE}-ap")), "{query_log}");
    assert_eq!(counted.observed, "3 violating rows", "{counted:?}");

    // What the operator's commands print: the stored logs, redacted; no value, no key.
    let mut cli = String::new();
    for args in [
        vec!["pipeline", "--dataset", "phi"],
        vec!["pipeline", "--dataset", "phicrawl"],
    ] {
        let out = lakegate.output(&args);
        assert!(out.contains("log: logs/"), "{args:?}: {out}");
        cli.push_str(&out);
    }
    assert!(cli.contains("error class: "), "{cli}");
    assert!(cli.contains("bad_unquoted"), "{cli}");
    let cli_log = dir.path().join("cli.log");
    std::fs::write(&cli_log, &cli).unwrap();
    // `lakegate status` decrypts the file's own input with the payload key and names its
    // location, as the codec server does for a key holder: the landing key may show there, a
    // cell value or a tool's words may not.
    let mut status = String::new();
    for id in &ingests {
        status.push_str(&lakegate.output(&["status", id]));
    }
    assert!(
        status.contains(&format!("measurement_{KEY}.csv")),
        "{status}"
    );
    let leaks = phi::find_in(&status, &[VALUE.to_owned()], "lakegate status");
    assert!(leaks.is_empty(), "{leaks:?}");
    drop(worker);

    // As stored, and decrypted through `lakegate codec-server`.
    let port = free_port();
    let _codec_server = Running(
        lakegate
            .command()
            .args(["codec-server", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the codec server did not listen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sentinels = [VALUE.to_owned(), KEY.to_owned()];
    let logs = [
        worker_log.clone(),
        data_dir.join("temporal.log"),
        dir.path().join("temporal.log"),
        cli_log,
    ]
    .into_iter()
    .filter(|p| p.exists())
    .collect::<Vec<_>>();
    let scan = phi::scan(&client, &address, Some(&endpoint), &sentinels, &logs)
        .await
        .unwrap();
    // The landing key, decrypted, is what a key holder may read; anything else is a leak.
    let (key_decrypted, leaks): (Vec<_>, Vec<_>) = scan
        .leaks
        .iter()
        .cloned()
        .partition(|l| l.sentinel.starts_with(KEY) && l.place.ends_with("(decrypted)"));
    let unexpected = phi::LeakScan {
        leaks,
        ..scan.clone()
    };
    unexpected.ensure_clean().unwrap();
    assert!(
        !key_decrypted.is_empty(),
        "the codec server decrypted no payload naming the file: {scan}"
    );
    assert!(scan.encrypted > 0 && scan.histories >= 6, "{scan}");
    let visibility = phi::scan_visibility(&address, &sentinels).await.unwrap();
    visibility.ensure_clean().unwrap();
    assert!(std::fs::metadata(&worker_log).unwrap().len() > 0);
    eprintln!(
        "{unexpected}; the landing key decrypted in {} places\nvisibility: {visibility}",
        key_decrypted.len()
    );
    server.stop();
}
