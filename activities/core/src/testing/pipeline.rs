//! The `pipeline.yaml` of tests that run a transform: quick crawls and one dbt stage on DuckDB.
//! Shared by the end-to-end tests (lakegate-tests) and the CLI's (worker/tests), which both write
//! the file a worker reads.

use std::path::Path;

/// Crawlers named `<crawler_prefix><dataset>` whose crawls start after two quiet seconds and
/// poll every second or two, and for `dataset` a transform that runs the model folder `stage` of
/// the dbt project in `dbt` (its `profiles.yml` there too) on DuckDB, each stage at most
/// `max_attempts` times.
pub fn dbt_pipeline_yaml(
    crawler_prefix: &str,
    dataset: &str,
    dbt: &Path,
    stage: &str,
    max_attempts: u32,
) -> String {
    let dbt = dbt.display();
    format!(
        "crawler_prefix: {crawler_prefix}\ndatabase: raw\nquiet_period_secs: 2\nmax_wait_secs: 30\n\
         poll_initial_secs: 1\npoll_max_secs: 2\ncrawl_deadline_secs: 600\n\
         transforms:\n  {dataset}:\n    dataset: {dataset}\n    project_dir: {dbt}\n    \
         profiles_dir: {dbt}\n    target: duckdb\n    stages: [{stage}]\n    \
         max_attempts: {max_attempts}\n    poll_initial_secs: 1\n    poll_max_secs: 2\n"
    )
}
