//! The full chaos run, `scripts/chaos`: prints its figures and exits non-zero if any check fails.
//!
//! Flags (defaults in brackets): --files [1000] --kills [10] --server-restarts [1]
//! --invalid-percent [10] --seed [from the clock] --review-timeout-secs [30]
//! --gap-secs MIN,MAX [2,10] --deadline-secs [3600]

use std::process::ExitCode;
use std::time::Duration;

use lakegate_tests::chaos::{self, ChaosOptions};

fn parse(args: &[String]) -> anyhow::Result<ChaosOptions> {
    let mut options = ChaosOptions::full();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        let number = || -> anyhow::Result<u64> {
            value
                .parse()
                .map_err(|e| anyhow::anyhow!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--files" => options.files = number()? as usize,
            "--kills" => options.kills = number()? as usize,
            "--server-restarts" => options.server_restarts = number()? as usize,
            "--invalid-percent" => options.invalid_percent = number()? as usize,
            "--seed" => options.seed = number()?,
            "--review-timeout-secs" => options.review_timeout_secs = number()?,
            "--deadline-secs" => options.deadline = Duration::from_secs(number()?),
            "--gap-secs" => {
                let (lo, hi) = value
                    .split_once(',')
                    .ok_or_else(|| anyhow::anyhow!("--gap-secs takes MIN,MAX"))?;
                options.gap = (
                    Duration::from_secs_f64(lo.parse()?),
                    Duration::from_secs_f64(hi.parse()?),
                );
            }
            _ => anyhow::bail!("unknown flag {flag}; see the top of tests/examples/chaos.rs"),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("chaos: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "chaos: {} files, {} worker kills, {} server restart(s), seed {}",
        options.files, options.kills, options.server_restarts, options.seed
    );
    match chaos::run(&options).await {
        Ok(report) => {
            println!("{report}");
            if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("chaos: the run could not be carried out: {e:#}");
            ExitCode::FAILURE
        }
    }
}
