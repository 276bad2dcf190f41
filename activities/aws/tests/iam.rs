//! The deployed IAM policy allows every AWS operation the adapters call, and the list of calls is
//! complete: a new SDK call in src/ without an entry in `lakegate_aws::iam::OPERATIONS` fails here.

use std::collections::BTreeSet;
use std::path::Path;

use lakegate_aws::iam::{ATHENA_ON_BEHALF, OPERATIONS};
use serde_json::Value;

const CLIENT_FIELDS: &[&str] = &["s3", "sqs", "glue", "athena", "batch", "logs"];

fn policy(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/iam")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn allowed_actions(policy: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for st in policy["Statement"].as_array().unwrap() {
        assert_eq!(st["Effect"], "Allow", "only Allow statements are expected");
        match &st["Action"] {
            Value::String(a) => out.push(a.clone()),
            Value::Array(a) => out.extend(a.iter().map(|v| v.as_str().unwrap().to_owned())),
            other => panic!("Action must be a string or list: {other}"),
        }
    }
    out
}

/// IAM action matching: case-insensitive, `*` and `?` wildcards.
fn matches(pattern: &str, action: &str) -> bool {
    fn go(p: &[u8], a: &[u8]) -> bool {
        match (p.first(), a.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], a) || (!a.is_empty() && go(p, &a[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &a[1..]),
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => go(&p[1..], &a[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), action.as_bytes())
}

#[test]
fn the_worker_policy_allows_every_operation_the_adapters_call() {
    let allowed = allowed_actions(&policy("worker-policy.json"));
    let needed: BTreeSet<&str> = OPERATIONS
        .iter()
        .flat_map(|(_, _, actions)| actions.iter().copied())
        .chain(ATHENA_ON_BEHALF.iter().copied())
        .collect();
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|n| !allowed.iter().any(|a| matches(a, n)))
        .collect();
    assert!(
        missing.is_empty(),
        "deploy/iam/worker-policy.json lacks {missing:?}"
    );
}

#[test]
fn the_policies_are_least_privilege() {
    for name in ["worker-policy.json", "batch-job-policy.json"] {
        let p = policy(name);
        for action in allowed_actions(&p) {
            assert!(!action.contains('*'), "{name}: wildcard action {action}");
        }
        for st in p["Statement"].as_array().unwrap() {
            let resources: Vec<&str> = st["Resource"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            // Only Batch's list and describe calls, which have no resource-level permissions, may
            // name every resource.
            if resources.contains(&"*") {
                let actions = allowed_actions(&serde_json::json!({"Statement": [st]}));
                assert_eq!(
                    actions,
                    ["batch:ListJobs", "batch:DescribeJobs"],
                    "{name}: Resource * for {actions:?}"
                );
            }
        }
    }
    // The worker deletes only in the four zones (moves) and in the index (retraction takes a
    // file's entries out); never in the log zone, which is the audit trail of tool output.
    let worker = policy("worker-policy.json");
    for st in worker["Statement"].as_array().unwrap() {
        let actions = allowed_actions(&serde_json::json!({"Statement": [st]}));
        if actions.iter().any(|a| a == "s3:DeleteObject") {
            for r in st["Resource"].as_array().unwrap() {
                let r = r.as_str().unwrap();
                assert!(
                    [
                        "landing/*",
                        "raw/*",
                        "quarantine/*",
                        "rejected/*",
                        "index/*"
                    ]
                    .iter()
                    .any(|z| r.ends_with(z)),
                    "DeleteObject on {r}"
                );
            }
        }
    }
}

/// The actions of the worker policy's statements that name `${lake_bucket}/<prefix>*`.
fn actions_on_lake_prefix(policy: &Value, prefix: &str) -> BTreeSet<String> {
    let resource = format!("arn:aws:s3:::${{lake_bucket}}/{prefix}*");
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|st| {
            st["Resource"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.as_str() == Some(resource.as_str()))
        })
        .flat_map(|st| allowed_actions(&serde_json::json!({"Statement": [st]})))
        .collect()
}

/// The action list alone let the lake index ship without a grant: every promotion would have
/// been denied on AWS while moto (which does not enforce IAM) passed. So each area of the lake
/// the worker writes is checked by prefix, from the same constants the code writes with.
#[test]
fn the_worker_policy_grants_every_lake_area_the_worker_writes() {
    let worker = policy("worker-policy.json");
    let zones = lakegate_models::Zone::ALL.map(|z| z.prefix());
    for area in zones.iter().chain(lakegate_models::RECORD_AREAS.iter()) {
        let granted = actions_on_lake_prefix(&worker, area);
        for needed in ["s3:GetObject", "s3:PutObject"] {
            assert!(
                granted.contains(needed),
                "deploy/iam/worker-policy.json grants no {needed} on {area}*"
            );
        }
    }
    assert!(
        actions_on_lake_prefix(&worker, lakegate_models::INDEX_ZONE).contains("s3:DeleteObject"),
        "retraction deletes index entries"
    );
}

/// The Rust files under src/ that hold the worker's SDK calls, submodule folders included (a
/// split such as s3/copy.rs must not hide its calls).
fn worker_sources() -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_str().unwrap().to_owned();
            // config.rs builds clients (endpoint_url, force_path_style...) and calls no
            // operation; iam.rs is the list itself; testing.rs and testing/ are the moto harness
            // and its fault proxy (set-up calls the worker never makes, compiled only with the
            // `testing` feature).
            if ["config.rs", "iam.rs", "testing.rs", "testing"].contains(&file.as_str()) {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else if file.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files
}

/// Every `<client>.<operation>(` in src/, with whitespace removed so rustfmt's chains
/// (`self\n.s3\n.head_object()`) read as one.
fn calls_in_sources() -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for path in worker_sources() {
        let text: String = std::fs::read_to_string(&path)
            .unwrap()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        for field in CLIENT_FIELDS {
            let needle = format!("{field}.");
            let mut from = 0;
            while let Some(pos) = text[from..].find(&needle) {
                let start = from + pos;
                from = start + needle.len();
                let before = text[..start].chars().last();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue; // part of a longer name, e.g. `aws_sdk_s3.`
                }
                let rest = &text[from..];
                let ident: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if !ident.is_empty() && rest[ident.len()..].starts_with("()") && ident != "clone" {
                    found.insert(((*field).to_owned(), ident));
                }
            }
        }
    }
    found
}

#[test]
fn every_sdk_call_in_the_sources_is_listed_and_every_listed_call_is_made() {
    let in_code = calls_in_sources();
    let listed: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|(c, op, _)| ((*c).to_owned(), (*op).to_owned()))
        .collect();
    let unlisted: Vec<_> = in_code.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "SDK calls missing from lakegate_aws::iam::OPERATIONS: {unlisted:?}"
    );
    let stale: Vec<_> = listed.difference(&in_code).collect();
    assert!(
        stale.is_empty(),
        "OPERATIONS lists calls the code no longer makes: {stale:?}"
    );
}

#[test]
fn the_scanner_sees_chained_calls() {
    // Guards the scanner itself: these calls are formatted across lines in src/.
    let found = calls_in_sources();
    for (c, op) in [
        ("s3", "head_object"),
        ("sqs", "receive_message"),
        ("logs", "get_log_events"),
        ("glue", "update_crawler"),
    ] {
        assert!(
            found.contains(&(c.to_owned(), op.to_owned())),
            "{c}.{op} not found"
        );
    }
}
