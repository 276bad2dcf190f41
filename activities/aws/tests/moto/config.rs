//! Endpoint precedence, checked in child processes: the environment cannot be changed inside this
//! process (unsafe code is forbidden in the workspace), so each case re-runs this test binary with
//! the variables set, on one `#[ignore]`d helper test that only does something when its
//! `LAKEGATE_TEST_MOTO` variable names a moto endpoint.

use std::process::Command;

use anyhow::{Result, ensure};
use bytes::Bytes;
use lakegate_activities::ports::ObjectStore;
use lakegate_aws::{AwsClients, AwsSettings, S3Store};

use crate::harness::Moto;

const MOTO_VAR: &str = "LAKEGATE_TEST_MOTO";
const MODE_VAR: &str = "LAKEGATE_TEST_MODE";
/// A loopback port nothing listens on: a client that goes there fails.
const DEAD_ENDPOINT: &str = "http://127.0.0.1:9";

fn run_child(moto: &Moto, mode: &str, env: &[(&str, &str)]) -> Result<()> {
    let out = Command::new(std::env::current_exe()?)
        .args(["--ignored", "--exact", "config::child", "--nocapture"])
        .env(MOTO_VAR, &moto.endpoint)
        .env(MODE_VAR, mode)
        .env_remove("AWS_PROFILE")
        .envs(env.iter().copied())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && stdout.contains("1 passed"),
        "child {mode} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn an_explicit_endpoint_beats_endpoint_variables() -> Result<()> {
    let moto = Moto::start().await?;
    run_child(
        &moto,
        "explicit",
        &[
            ("AWS_ENDPOINT_URL", DEAD_ENDPOINT),
            ("AWS_ENDPOINT_URL_S3", DEAD_ENDPOINT),
        ],
    )
}

#[tokio::test]
async fn an_endpoint_from_the_environment_is_used_with_path_style_addressing() -> Result<()> {
    let moto = Moto::start().await?;
    // Virtual-hosted addressing would send the request to `lake.127.0.0.1`, which does not resolve.
    let endpoint = moto.endpoint.clone();
    run_child(&moto, "env", &[("AWS_ENDPOINT_URL_S3", endpoint.as_str())])
}

#[tokio::test]
#[ignore = "helper run by the endpoint tests in a child process"]
async fn child() -> Result<()> {
    let endpoint = std::env::var(MOTO_VAR)?;
    let settings = match std::env::var(MODE_VAR)?.as_str() {
        "explicit" => AwsSettings::emulator(endpoint),
        _ => AwsSettings {
            endpoint_url: None,
            ..AwsSettings::emulator(endpoint)
        },
    };
    let clients = AwsClients::load(&settings).await;
    clients.s3.create_bucket().bucket("lake").send().await?;
    let store = S3Store::new(clients.s3, "lake");
    store.put("landing/a.csv", Bytes::from_static(b"a")).await?;
    ensure!(store.head("landing/a.csv").await?.is_some());
    Ok(())
}
