//! `murmur-agent`: the agent of one real subcloud (`run`), the fleet simulator (`simulate`)
//! and the simulator's remote control (`fault`, `stats`, `sites`, `steps`). See `--help`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Cli::parse();
    init_logging();
    match cli::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("murmur-agent: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr (stdout carries the JSON of `stats`, `sites` and `fault`), filtered by
/// `RUST_LOG` (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
