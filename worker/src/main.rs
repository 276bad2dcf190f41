//! `lakegate`: onboard data files into a lake as durable Temporal workflows.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let (cli, matches) = cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Declared after the runtime, so dropped before it: the last spans are flushed while tonic's
    // connection still has a runtime to run on.
    #[cfg(feature = "otel")]
    let spans = {
        let _runtime = runtime.enter();
        match &cli.command {
            cli::Command::Worker(args) => {
                match args.telemetry.start_span_export(&cli.config.task_queue) {
                    Ok(spans) => spans,
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            _ => None,
        }
    };
    #[cfg(feature = "otel")]
    cli::init_logging(cli.log_format, spans.as_ref().map(|spans| spans.layer()));
    #[cfg(not(feature = "otel"))]
    cli::init_logging(cli.log_format, None::<tracing_subscriber::layer::Identity>);
    match runtime.block_on(cli::run(cli, &matches)) {
        Ok(code) => code,
        // The reader went away (`| head`): nothing left to tell it, and no one to tell.
        Err(e) if cli::is_broken_pipe(&e) => ExitCode::from(cli::EXIT_BROKEN_PIPE),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
