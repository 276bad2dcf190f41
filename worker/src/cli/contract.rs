//! `lakegate contract`: help for writing contracts. `draft` infers a first contract from sample
//! files, reading a bounded sample of each, with every inference marked `# guess:`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use lakegate::LakeConfig;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Write a contract inferred from sample files (CSV, TSV, NDJSON, FHIR Bulk NDJSON; gzip
    /// detected) to stdout or --out. Only the first --sample-rows records of each file are read.
    Draft(DraftArgs),
}

#[derive(Debug, clap::Args)]
struct DraftArgs {
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The dataset the contract is for (landing/<source>/<dataset>/...).
    #[arg(long)]
    dataset: String,
    /// One table for all the files; without it, each file's name before its first `.` names
    /// its table.
    #[arg(long)]
    table: Option<String>,
    /// Records read from each file.
    #[arg(long, default_value_t = 10_000)]
    sample_rows: u64,
    /// Most distinct values a column may have to get an `allowed_values` rule.
    #[arg(long, default_value_t = 12)]
    max_allowed_values: usize,
    /// Write the contract here instead of stdout (refuses to overwrite a file).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub async fn run(_config: &LakeConfig, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Sub::Draft(a) => {
            let opts = lakegate_validate::DraftOptions {
                table: a.table,
                sample_rows: a.sample_rows,
                max_allowed_values: a.max_allowed_values,
                ..lakegate_validate::DraftOptions::new(&a.dataset)
            };
            let files = a.files;
            let yaml = tokio::task::spawn_blocking(move || lakegate_validate::draft(&files, &opts))
                .await??;
            match a.out {
                Some(path) => {
                    use std::io::Write as _;
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    f.write_all(yaml.as_bytes())?;
                    eprintln!("wrote {}", path.display());
                }
                None => {
                    use std::io::Write as _;
                    std::io::stdout().write_all(yaml.as_bytes())?;
                    std::io::stdout().flush()?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
