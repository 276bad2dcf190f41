//! The `temporal` CLI of the virtualenv against the test's server, as an operator (or any other
//! client of the namespace) runs it: without lakegate's codec unless a test adds one.

use std::process::Output;

use crate::TestEnv;

/// Runs `temporal <args>` against the test's server; its exit status and output.
pub async fn temporal(env: &TestEnv, args: &[&str]) -> Output {
    tokio::process::Command::new(crate::venv().join("bin/temporal"))
        .args(args)
        .args(["--address", env.server_address(), "--namespace", "default"])
        .output()
        .await
        .unwrap()
}

/// Runs `temporal <args>` and asserts that it succeeded.
pub async fn temporal_ok(env: &TestEnv, args: &[&str]) {
    let output = temporal(env, args).await;
    assert!(
        output.status.success(),
        "temporal {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
