//! `run`, `serve` and `exercise`: the verbs that run a scenario.

use super::{RunArgs, ServeArgs, TlsArgs, announce, default_out, new_run, open_store, prepare, seconds};
use crate::exercise::{self, Setup};
use crate::guard::JoinSecret;
use crate::history;
use crate::hosts::Recovery;
use crate::run::{Hooks, Persist, RunOptions, drive};
use crate::serve::{self, ServeError, ServeOptions};
use crate::store::{RunId, RunStatus};
use anyhow::Context;
use engine::Engine;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

pub(super) fn run(db: &Path, scenario: PathBuf, threads: Option<u16>, args: RunArgs) -> anyhow::Result<ExitCode> {
    let RunArgs { seed, ticks, out, snapshot_every, quiet } = args;
    let s = prepare(&scenario, seed, ticks)?;
    let (store, _live) = open_store(db)?;
    let out = out.unwrap_or_else(|| default_out(&s));
    let run = new_run(&store, &s, &scenario, &out, snapshot_every, "embedded".into())?;
    announce(&s, &out);
    println!("Run {run} recorded in {}", db.display());
    let s = Arc::new(s);
    let mut engine = match threads {
        Some(t) => crate::sim::Sim::embedded_on(s.clone(), usize::from(t)),
        None => crate::sim::Sim::embedded(s.clone()),
    };
    let persist = Persist { store: store.clone(), run, snapshot_every };
    let options = RunOptions { out: Some(out.clone()), progress: !quiet, append: false };
    let watch = crate::signals::Watch::start();
    let hooks = Hooks { stop: watch.stop.clone(), ..Hooks::default() };
    let outcome = drive(&mut engine, &options, &hooks, Some(&persist))
        .with_context(|| format!("run {run} of {} with seed {} failed", s.name, s.seed))?;
    print!("{}", outcome.summary.render(&s));
    println!("Run {run}, seed {}; outputs in {}; recorded in {}", s.seed, out.display(), db.display());
    Ok(stopped(&watch, run, outcome.completed, outcome.summary.ticks, db))
}

/// The exit status of a run that has ended: success, or for one stopped by a signal the
/// signal's status, after saying how to continue it.
pub(super) fn stopped(watch: &crate::signals::Watch, run: RunId, completed: bool, ticks: u32, db: &Path) -> ExitCode {
    if completed {
        return ExitCode::SUCCESS;
    }
    let signal = watch.signal().unwrap_or(crate::signals::Signal::Interrupt);
    eprintln!(
        "Run {run} interrupted by {} after {ticks} more ticks; its outputs are flushed and it is recorded as interrupted; continue it with `chokepoint --db {} resume {run}`",
        signal.name(),
        db.display()
    );
    ExitCode::from(signal.exit_code())
}

/// The join secret: read from `--node-secret-file`, or made now (and then printed).
fn join_secret(flags: &ServeArgs) -> anyhow::Result<String> {
    match &flags.node_secret_file {
        Some(path) => Ok(JoinSecret::read(path)?),
        None => Ok(JoinSecret::generate()?),
    }
}

/// The serving options from the flags, for run `run` recorded in `persist`.
fn serve_options(flags: &ServeArgs, persist: Persist, run: RunOptions, secret: String) -> anyhow::Result<ServeOptions> {
    anyhow::ensure!(flags.nodes >= 1, "--nodes must be at least 1");
    let max_connections = flags.max_connections.unwrap_or_else(|| serve::default_max_connections(flags.nodes));
    anyhow::ensure!(max_connections > flags.nodes, "--max-connections must be more than --nodes");
    let mut options = ServeOptions::new(persist.run.to_string(), flags.nodes, secret);
    options.placement = flags.placement;
    options.tick_deadline = seconds("--tick-deadline", flags.tick_deadline)?;
    options.join_timeout = seconds("--join-timeout", flags.join_timeout)?;
    options.auth_timeout = seconds("--auth-timeout", flags.auth_timeout)?;
    options.recovery = Recovery { on_loss: flags.on_node_loss, local_fallback: flags.local_fallback };
    options.journal_actions = flags.journal_actions;
    options.tls = flags.tls.load()?;
    options.max_connections = max_connections;
    options.persist = Some(persist);
    options.run = run;
    Ok(options)
}

pub(super) fn serve(db: &Path, scenario: PathBuf, flags: ServeArgs, args: RunArgs) -> anyhow::Result<ExitCode> {
    let RunArgs { seed, ticks, out, snapshot_every, quiet } = args;
    anyhow::ensure!(flags.nodes >= 1, "--nodes must be at least 1");
    let secret = join_secret(&flags)?;
    // The TLS pair is checked before anything is recorded.
    flags.tls.load()?;
    let s = prepare(&scenario, seed, ticks)?;
    let (store, _live) = open_store(db)?;
    let out = out.unwrap_or_else(|| default_out(&s));
    let run = new_run(&store, &s, &scenario, &out, snapshot_every, format!("served on {} nodes", flags.nodes))?;
    if flags.journal_actions {
        store.update_run(run, |m| m.journal_actions = true)?;
    }
    let persist = Persist { store, run, snapshot_every };
    let run_options = RunOptions { out: Some(out.clone()), progress: !quiet, append: false };
    let options = serve_options(&flags, persist, run_options, secret)?;
    let s = Arc::new(s);
    announce(&s, &out);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let listen = Listen { addr: &flags.listen, secret_file: flags.node_secret_file.as_deref() };
    runtime.block_on(serve_main(Engine::new(s), listen, options, &out, db))
}

/// `resume ID --serve`: the rest of a recorded run, served to agent nodes again.
pub(super) fn resume_served(db: &Path, run: u64, flags: ServeArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let secret = join_secret(&flags)?;
    flags.tls.load()?;
    let (store, _live) = open_store(db)?;
    let options = history::ResumeOptions { snapshot_every: None, progress: !quiet, under_ai: None };
    let resumed = history::prepare_resume(store.clone(), RunId(run), options)?;
    let journal = flags.journal_actions || resumed.meta.journal_actions;
    store.update_run(RunId(run), |m| {
        m.mode = format!("served on {} nodes (resumed)", flags.nodes);
        m.journal_actions = journal;
    })?;
    let out = PathBuf::from(&resumed.meta.out_dir);
    let mut options = serve_options(&flags, resumed.persist, resumed.options, secret)?;
    options.journal_actions = journal;
    println!("Resuming run {run} from tick {} of {}", resumed.engine.state().tick.0, resumed.meta.ticks);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let listen = Listen { addr: &flags.listen, secret_file: flags.node_secret_file.as_deref() };
    runtime.block_on(serve_main(resumed.engine, listen, options, &out, db))
}

/// Where a served run listens, and how nodes learn its secret.
struct Listen<'a> {
    addr: &'a str,
    /// Where the secret was read from; when it was made now, it is printed instead.
    secret_file: Option<&'a Path>,
}

async fn serve_main(
    engine: Engine,
    listen: Listen<'_>,
    options: ServeOptions,
    out: &Path,
    db: &Path,
) -> anyhow::Result<ExitCode> {
    // Listening for signals before anything is printed, so none can end the process unhandled.
    let mut signals = crate::signals::Listener::new();
    let listener = match tokio::net::TcpListener::bind(listen.addr).await {
        Ok(l) => l,
        Err(e) => {
            // The run was recorded before the bind: say how it ended.
            if let Some(p) = &options.persist {
                let _ = p.store.update_run(p.run, |m| {
                    m.status = RunStatus::Failed;
                    m.error = Some(format!("cannot listen on {}: {e}", listen.addr));
                });
                let _ = p.store.flush();
            }
            return Err(anyhow::Error::new(e).context(format!("cannot listen on {}", listen.addr)));
        }
    };
    let addr = listener.local_addr()?;
    let scheme = if options.tls.is_some() { "https" } else { "http" };
    println!("Run {} listening on {addr}; waiting for {} agent node(s):", options.run_id, options.nodes);
    let tls = if options.tls.is_some() { " --tls-ca CERT.pem" } else { "" };
    match listen.secret_file {
        Some(file) => {
            println!("  agent-node --coordinator {scheme}://{addr} --secret-file {}{tls}", file.display());
        }
        None => {
            println!("  CHOKEPOINT_NODE_SECRET={} agent-node --coordinator {scheme}://{addr}{tls}", options.secret)
        }
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let s = engine.scenario_arc();
    let got = Arc::new(std::sync::Mutex::new(None));
    let seen = got.clone();
    let shutdown = async move {
        let signal = signals.next().await;
        *crate::run::lock(&seen) = Some(signal);
    };
    let code = move || crate::run::lock(&got).map_or(130, crate::signals::Signal::exit_code);
    let run_id = options.run_id.clone();
    match serve::serve(listener, engine, options, shutdown).await {
        Ok(report) => Ok(print_report(&report, &s, out, db, code())),
        Err(ServeError::Interrupted) => {
            eprintln!("interrupted before the run started");
            Ok(ExitCode::from(code()))
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "run {run_id} of {} with seed {} failed; outputs of completed ticks are in {}",
            s.name,
            s.seed,
            out.display()
        ))),
    }
}

/// What a served run prints when it ends; its exit status.
/// `stopped` is the exit status of a run a signal stopped.
fn print_report(report: &serve::ServeReport, s: &engine::Scenario, out: &Path, db: &Path, stopped: u8) -> ExitCode {
    print!("{}", report.summary.render(s));
    print!("{}", report.latency.render());
    let (messages, bytes) = report.traffic_per_tick();
    println!("Traffic: {messages:.1} messages and {bytes:.0} bytes per tick over {} nodes", report.nodes.len());
    for (name, agents, _) in &report.nodes {
        println!("  node {name}: {agents} agents at the end");
    }
    for change in report.placements.iter().filter(|c| c.recovery_us.is_some()) {
        let ms = change.recovery_us.unwrap_or_default() as f64 / 1000.0;
        println!("Recovered at tick {} in {ms:.1} ms: {}", change.tick, change.cause);
    }
    println!("Run {}, seed {}; outputs in {}; recorded in {}", report.run_id, s.seed, out.display(), db.display());
    if report.completed {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "interrupted after {} ticks; outputs of completed ticks are in {}; continue it with `chokepoint --db {} resume {} --serve`",
            report.ticks,
            out.display(),
            db.display(),
            report.run_id
        );
        ExitCode::from(stopped)
    }
}

/// What `exercise` was asked for.
pub(super) struct ExerciseFlags {
    pub players: Vec<String>,
    pub turn: u32,
    pub deadline: String,
    pub tick_interval: String,
    pub listen: String,
    pub grpc_listen: String,
    pub tls: TlsArgs,
}

/// `chokepoint exercise`: records the exercise, prints where to find it and the tokens, and
/// serves it until it ends.
pub(super) fn exercise(db: &Path, scenario: PathBuf, flags: ExerciseFlags, args: RunArgs) -> anyhow::Result<ExitCode> {
    let RunArgs { seed, ticks, out, snapshot_every, quiet: _ } = args;
    let deadline = exercise::parse_duration(&flags.deadline).map_err(|e| anyhow::anyhow!("--deadline: {e}"))?;
    let tick_interval =
        exercise::parse_duration(&flags.tick_interval).map_err(|e| anyhow::anyhow!("--tick-interval: {e}"))?;
    let s = prepare(&scenario, seed, ticks)?;
    let mut players = Vec::new();
    for code in &flags.players {
        let n = s.nation_by_code_or_err(code.trim()).map_err(|e| anyhow::anyhow!("--players: {e}"))?;
        anyhow::ensure!(!players.contains(&n), "--players: {} is named twice", code.trim());
        players.push(n);
    }
    let tls = flags.tls.load()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let (store, _live) = open_store(db)?;
    let out = out.unwrap_or_else(|| default_out(&s));
    let setup = Setup { players, turn_ticks: flags.turn, deadline, tick_interval };
    let options = exercise::Options {
        setup,
        scenario_path: scenario.display().to_string(),
        out: out.clone(),
        snapshot_every,
        tls,
    };
    let ex = exercise::create(store, s, options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let (http, grpc) = runtime.block_on(async {
        let http = tokio::net::TcpListener::bind(&flags.listen)
            .await
            .with_context(|| format!("cannot listen on {}", flags.listen))?;
        let grpc = tokio::net::TcpListener::bind(&flags.grpc_listen)
            .await
            .with_context(|| format!("cannot listen on {}", flags.grpc_listen))?;
        anyhow::Ok((http, grpc))
    })?;
    // Listening for signals before anything is printed, so none can end the process unhandled.
    let mut signals = {
        let _entered = runtime.enter();
        crate::signals::Listener::new()
    };
    let (run, s) = (ex.run, ex.scenario.clone());
    println!(
        "Exercise: {} (run {run}), {} ticks, turns of {} ticks, deadline {}s; outputs in {}",
        s.name,
        s.ticks,
        flags.turn,
        deadline.as_secs(),
        out.display()
    );
    println!("Console: {scheme}://{}/", http.local_addr()?);
    let grpc_tls = if scheme == "https" { ", TLS" } else { "" };
    println!(
        "gRPC: {} (chokepoint.v1.Exercise{grpc_tls}; token as `authorization: Bearer <token>` metadata)",
        grpc.local_addr()?
    );
    println!("Access tokens (shown once; only their hashes are stored):");
    for (role, t) in &ex.tokens {
        println!("  {role:<8} {t}");
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let got = Arc::new(std::sync::Mutex::new(None));
    let seen = got.clone();
    let shutdown = async move {
        let signal = signals.next().await;
        *crate::run::lock(&seen) = Some(signal);
    };
    let outcome =
        runtime.block_on(ex.serve(http, grpc, shutdown)).with_context(|| format!("exercise run {run} failed"))?;
    print!("{}", outcome.summary.render(&s));
    println!(
        "Exercise run {run} ended; outputs in {}; recorded in {} (replay, fork and debrief work on it)",
        out.display(),
        db.display()
    );
    match *crate::run::lock(&got) {
        Some(signal) if !outcome.completed => {
            eprintln!("Exercise run {run} stopped by {}; it is recorded as interrupted", signal.name());
            Ok(ExitCode::from(signal.exit_code()))
        }
        Some(_) | None => Ok(ExitCode::SUCCESS),
    }
}
