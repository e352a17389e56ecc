//! The `azure-ai-gateway-mcp` binary: parse the command line, log to stderr, run.

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use aigw_host::cli::{Cli, run};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // stdout belongs to the MCP protocol in stdio mode: every log line goes to stderr.
    // The MCP SDK logs every session at info; keep it to warnings unless asked for.
    let directive =
        if cli.global.log.contains("rmcp") { cli.global.log.clone() } else { format!("{},rmcp=warn", cli.global.log) };
    let filter = EnvFilter::try_new(&directive).unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .with_target(false)
        .init();
    let runtime =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(cli.worker_threads()).enable_all().build() {
            Ok(runtime) => runtime,
            Err(e) => {
                eprintln!("azure-ai-gateway-mcp: cannot start the async runtime: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
    let result = runtime.block_on(run(cli));
    // Do not wait for background tasks (idle HTTP connections, the epoch ticker): the client
    // is gone, exit now.
    runtime.shutdown_background();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("azure-ai-gateway-mcp: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
