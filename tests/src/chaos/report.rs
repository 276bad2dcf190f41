//! What a chaos run measured, and how it reads.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

use crate::phi;

/// Everything the run measured. `problems` is empty when every check held.
#[derive(Debug, Default)]
pub struct ChaosReport {
    pub seed: u64,
    pub files: usize,
    pub fates: BTreeMap<&'static str, usize>,
    pub kills: usize,
    /// Kills that came while some file's workflow was still open.
    pub kills_mid_run: usize,
    pub server_restarts: usize,
    /// Times the worker exited without being killed (and was started again).
    pub worker_self_exits: usize,
    pub ingest_invocations: usize,
    pub ingest_retries: usize,
    pub reviews_sent: usize,
    pub zones: BTreeMap<&'static str, usize>,
    pub expected_zones: BTreeMap<&'static str, usize>,
    pub files_in_expected_zone: usize,
    pub raw_duplicates: usize,
    pub workflows: usize,
    pub workflows_completed: usize,
    pub starts_took: Duration,
    pub took: Duration,
    pub leak_scan: phi::LeakScan,
    pub problems: Vec<String>,
    /// Kept when something is off: the lake, the logs, the server's database.
    pub kept_dir: Option<PathBuf>,
}

impl ChaosReport {
    pub fn ensure_ok(&self) -> anyhow::Result<()> {
        if self.problems.is_empty() {
            return Ok(());
        }
        bail!(
            "the chaos run found problems:\n  {}",
            self.problems.join("\n  ")
        )
    }
}

fn counts(map: &BTreeMap<&'static str, usize>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed:       {}", self.seed)?;
        writeln!(f, "files:      {} ({})", self.files, counts(&self.fates))?;
        writeln!(
            f,
            "chaos:      {} worker SIGKILLs ({} while files were in flight), {} dev server restart(s), {} worker exit(s) on its own",
            self.kills, self.kills_mid_run, self.server_restarts, self.worker_self_exits
        )?;
        writeln!(
            f,
            "starts:     {} `lakegate ingest` invocations ({} retried), {:.1} s; {} review signals",
            self.ingest_invocations,
            self.ingest_retries,
            self.starts_took.as_secs_f64(),
            self.reviews_sent
        )?;
        writeln!(f, "zones:      {}", counts(&self.zones))?;
        writeln!(f, "expected:   {}", counts(&self.expected_zones))?;
        writeln!(
            f,
            "placement:  {} of {} files in exactly one zone, the expected one; {} content(s) in raw/ more than once",
            self.files_in_expected_zone, self.files, self.raw_duplicates
        )?;
        writeln!(
            f,
            "workflows:  {} IngestFileWorkflow runs, {} completed",
            self.workflows, self.workflows_completed
        )?;
        writeln!(f, "phi scan:   {}", self.leak_scan)?;
        writeln!(f, "time:       {:.1} s", self.took.as_secs_f64())?;
        if let Some(dir) = &self.kept_dir {
            writeln!(f, "kept:       {}", dir.display())?;
        }
        if self.problems.is_empty() {
            write!(f, "result:     OK")
        } else {
            write!(f, "result:     {} PROBLEM(S)", self.problems.len())?;
            for p in &self.problems {
                write!(f, "\n  - {p}")?;
            }
            Ok(())
        }
    }
}
