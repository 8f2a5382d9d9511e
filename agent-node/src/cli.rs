//! The `agent-node` command: join a coordinator and serve its agents until the run ends.
//! Exit status: 0 when the run finished normally, 1 on any failure, 130 on Ctrl-C.

use crate::node::{NodeError, NodeOptions, run};
use clap::Parser;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "agent-node", version, about = "Hosts Chokepoint agents for a coordinator over gRPC.")]
pub struct Args {
    /// The coordinator's address.
    #[arg(long, default_value = "http://127.0.0.1:7400")]
    pub coordinator: String,
    /// This node's name, unique within the run (default: agent-node-<pid>).
    #[arg(long)]
    pub name: Option<String>,
    /// Join only this run (as printed by the coordinator).
    #[arg(long, default_value = "")]
    pub run: String,
    /// Seconds to keep trying to reach the coordinator.
    #[arg(long, default_value_t = 30)]
    pub connect_timeout: u64,
    /// Announce this protocol version instead of our own (for testing refusals).
    #[arg(long, hide = true)]
    pub protocol_version: Option<u32>,
}

pub fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CHOKEPOINT_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut options =
        NodeOptions::new(args.coordinator, args.name.unwrap_or_else(|| format!("agent-node-{}", std::process::id())));
    options.run_id = args.run;
    options.connect_timeout = Duration::from_secs(args.connect_timeout);
    if let Some(v) = args.protocol_version {
        options.protocol_version = v;
    }
    let name = options.name.clone();
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match runtime.block_on(run(options, shutdown)) {
        Ok(outcome) if outcome.ok => {
            tracing::info!(node = %name, "run {} finished after {} ticks: {}", outcome.run_id, outcome.ticks, outcome.reason);
            ExitCode::SUCCESS
        }
        Ok(outcome) => {
            eprintln!(
                "error: the coordinator stopped run {} after {} ticks: {}",
                outcome.run_id, outcome.ticks, outcome.reason
            );
            ExitCode::FAILURE
        }
        Err(NodeError::Interrupted) => {
            eprintln!("agent-node {name}: interrupted");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: agent-node {name}: {e}");
            ExitCode::FAILURE
        }
    }
}
