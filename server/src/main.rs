//! `murmur`: one system controller. See `murmur --help`.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = server::cli::Cli::parse();
    match server::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Logging may not be up yet (bad config): say it plainly on stderr too.
            eprintln!("murmur: {e:#}");
            tracing::error!(error = %format!("{e:#}"), "murmur stopped");
            ExitCode::FAILURE
        }
    }
}
