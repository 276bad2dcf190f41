//! The committed workflow histories under tests/histories/<WorkflowType>/, replayed in CI
//! (tests/tests/replay.rs) so a change that would break running workflows fails before it ships.
//!
//! A committed history is evidence of what an older build did and is never rewritten: recording
//! only ever adds files (`<name>.json`, or `<name>.2.json`, ... when that name is taken), and
//! `SHA256SUMS` pins the content of every committed one (`sha256sum -c` reads it), so an edited
//! or regenerated history fails the digest test instead of silently replaying something else.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::repo_root;

/// The folder of committed histories.
pub fn dir() -> PathBuf {
    repo_root().join("tests/histories")
}

/// The digest list, one `<sha256>  <path relative to tests/histories>` line per history.
pub fn digests_file() -> PathBuf {
    dir().join("SHA256SUMS")
}

/// Recording is opt-in: `LAKEGATE_RECORD_HISTORIES=1 cargo test -p lakegate-tests --test <t>`.
pub fn recording() -> bool {
    std::env::var_os("LAKEGATE_RECORD_HISTORIES").is_some()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every committed history file (`*.json` in the per-type folders), as paths relative to
/// [`dir`], sorted.
pub fn committed() -> anyhow::Result<Vec<String>> {
    let root = dir();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&root).with_context(|| root.display().to_string())? {
        let folder = entry?.path();
        if !folder.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&folder)? {
            let path = file?.path();
            if path.extension().is_some_and(|e| e == "json") {
                files.push(relative(&root, &path));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The digest list as (digest, relative path) pairs.
pub fn digests() -> anyhow::Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(digests_file()).context("reading tests/histories/SHA256SUMS")?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (digest, path) = line
                .split_once("  ")
                .with_context(|| format!("SHA256SUMS: not `<digest>  <path>`: {line}"))?;
            Ok((digest.to_owned(), path.to_owned()))
        })
        .collect()
}

/// Saves `bytes` (a history of some workflow type, in the form `extension` names: `json` or
/// `proto3.json`) as a new file `<WorkflowType>/<name>[.<n>].<extension>` and appends its digest
/// to SHA256SUMS. Returns the path written, relative to [`dir`].
pub fn record(name: &str, extension: &str, bytes: &[u8]) -> anyhow::Result<String> {
    let workflow_type = workflow_type(bytes)?;
    let folder = dir().join(&workflow_type);
    std::fs::create_dir_all(&folder)?;
    let path = (1..)
        .map(|n| match n {
            1 => folder.join(format!("{name}.{extension}")),
            n => folder.join(format!("{name}.{n}.{extension}")),
        })
        .find(|p| !p.exists())
        .expect("an unused name");
    std::fs::write(&path, bytes)?;
    let relative = relative(&dir(), &path);
    let mut list = std::fs::read_to_string(digests_file()).unwrap_or_default();
    list.push_str(&format!("{}  {relative}\n", sha256_hex(bytes)));
    std::fs::write(digests_file(), list)?;
    eprintln!("recorded tests/histories/{relative}");
    Ok(relative)
}

/// The workflow type a history (either JSON form) starts, read from its first event.
fn workflow_type(bytes: &[u8]) -> anyhow::Result<String> {
    let loaded = lakegate::replay::load_history(bytes)?;
    anyhow::ensure!(
        !loaded.workflow_type.is_empty(),
        "the history names no workflow type"
    );
    Ok(loaded.workflow_type)
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// The patch ids a history's markers record (`ctx.patched` writes one marker per id it returns
/// true for), read from the decoded marker payloads of either JSON form.
pub fn patch_ids(bytes: &[u8], known: &[&str]) -> anyhow::Result<Vec<String>> {
    let value: serde_json::Value = serde_json::from_slice(bytes)?;
    let mut text = String::new();
    let mut decoded = 0;
    crate::decode_payloads(&value, &mut text, &mut decoded);
    Ok(known
        .iter()
        .filter(|id| text.contains(&format!("\"{id}\"")))
        .map(|id| (*id).to_owned())
        .collect())
}
