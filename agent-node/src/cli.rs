//! The `agent-node` command: join a coordinator and serve its agents until the run ends.
//! Exit status: 0 when the run finished normally, 1 on any failure, 130 on Ctrl-C, 143 on SIGTERM.

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
    /// A file holding the run's join secret (as `chokepoint serve` printed it). The secret may
    /// also come from the CHOKEPOINT_NODE_SECRET environment variable.
    #[arg(long)]
    pub secret_file: Option<std::path::PathBuf>,
    /// For an https:// coordinator: the PEM certificate to trust (its self-signed certificate,
    /// or the CA that signed it).
    #[arg(long)]
    pub tls_ca: Option<std::path::PathBuf>,
    /// The name to check the coordinator's certificate against (default: the address's host).
    #[arg(long)]
    pub tls_domain: Option<String>,
    /// Announce this protocol version instead of our own (for testing refusals).
    #[arg(long, hide = true)]
    pub protocol_version: Option<u32>,
}

/// The join secret: from `--secret-file`, else from CHOKEPOINT_NODE_SECRET, else none (a
/// coordinator then refuses the node, saying why).
fn secret(args: &Args) -> Result<String, String> {
    match &args.secret_file {
        Some(path) => std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("cannot read the join secret from {}: {e}", path.display())),
        None => Ok(std::env::var("CHOKEPOINT_NODE_SECRET").map(|s| s.trim().to_string()).unwrap_or_default()),
    }
}

/// The node's options from its arguments, or what is wrong with them.
fn options(args: Args) -> Result<NodeOptions, String> {
    let secret = secret(&args)?;
    let tls_ca = match &args.tls_ca {
        Some(path) => Some(std::fs::read(path).map_err(|e| format!("cannot read --tls-ca {}: {e}", path.display()))?),
        None => None,
    };
    let mut options =
        NodeOptions::new(args.coordinator, args.name.unwrap_or_else(|| format!("agent-node-{}", std::process::id())));
    options.run_id = args.run;
    options.connect_timeout = Duration::from_secs(args.connect_timeout);
    options.secret = secret;
    options.tls_ca = tls_ca;
    options.tls_domain = args.tls_domain;
    if let Some(v) = args.protocol_version {
        options.protocol_version = v;
    }
    Ok(options)
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
    let options = match options(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let name = options.name.clone();
    // SIGTERM (what Kubernetes and Slurm send) stops the node as Ctrl-C does; the exit status
    // says which it was (130 or 143).
    let signalled = std::sync::Arc::new(std::sync::atomic::AtomicI32::new(130));
    let which = signalled.clone();
    let shutdown = async move {
        let mut term = runtime_signal(tokio::signal::unix::SignalKind::terminate());
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {
                which.store(143, std::sync::atomic::Ordering::SeqCst);
            }
        }
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
            ExitCode::from(signalled.load(std::sync::atomic::Ordering::SeqCst) as u8)
        }
        Err(e) => {
            eprintln!("error: agent-node {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A stream of `kind` signals, when the runtime can listen for them.
fn runtime_signal(kind: tokio::signal::unix::SignalKind) -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind).ok()
}
