//! `run`, `serve` and `exercise`: the verbs that run a scenario.

use super::{RunArgs, announce, default_out, new_run, open_store, prepare, seconds};
use crate::exercise::{self, Setup};
use crate::run::{Hooks, Persist, RunOptions, drive};
use crate::serve::{self, PlacementKind, ServeError, ServeOptions};
use crate::store::{RunId, RunStatus};
use anyhow::Context;
use engine::scenario;
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

/// How a served run is placed and timed.
pub(super) struct ServeFlags {
    pub listen: String,
    pub nodes: usize,
    pub placement: PlacementKind,
    pub tick_deadline: f64,
    pub join_timeout: f64,
}

pub(super) fn serve(db: &Path, scenario: PathBuf, flags: ServeFlags, args: RunArgs) -> anyhow::Result<ExitCode> {
    let ServeFlags { listen, nodes, placement, tick_deadline, join_timeout } = flags;
    let RunArgs { seed, ticks, out, snapshot_every, quiet } = args;
    anyhow::ensure!(nodes >= 1, "--nodes must be at least 1");
    let s = prepare(&scenario, seed, ticks)?;
    let (store, _live) = open_store(db)?;
    let out = out.unwrap_or_else(|| default_out(&s));
    let run = new_run(&store, &s, &scenario, &out, snapshot_every, format!("served on {nodes} nodes"))?;
    let options = ServeOptions {
        run_id: run.to_string(),
        persist: Some(Persist { store, run, snapshot_every }),
        nodes,
        placement,
        tick_deadline: seconds("--tick-deadline", tick_deadline)?,
        join_timeout: seconds("--join-timeout", join_timeout)?,
        run: RunOptions { out: Some(out.clone()), progress: !quiet, append: false },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(serve_main(s, &listen, options, &out, db))
}

async fn serve_main(
    s: scenario::Scenario,
    listen: &str,
    options: ServeOptions,
    out: &Path,
    db: &Path,
) -> anyhow::Result<ExitCode> {
    // Listening for signals before anything is printed, so none can end the process unhandled.
    let mut signals = crate::signals::Listener::new();
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            // The run was recorded before the bind: say how it ended.
            if let Some(p) = &options.persist {
                let _ = p.store.update_run(p.run, |m| {
                    m.status = RunStatus::Failed;
                    m.error = Some(format!("cannot listen on {listen}: {e}"));
                });
                let _ = p.store.flush();
            }
            return Err(anyhow::Error::new(e).context(format!("cannot listen on {listen}")));
        }
    };
    let addr = listener.local_addr()?;
    announce(&s, out);
    println!("Run {} listening on {addr}; waiting for {} agent node(s):", options.run_id, options.nodes);
    println!("  agent-node --coordinator http://{addr}");
    let s = Arc::new(s);
    let got = Arc::new(std::sync::Mutex::new(None));
    let seen = got.clone();
    let shutdown = async move {
        let signal = signals.next().await;
        *crate::run::lock(&seen) = Some(signal);
    };
    let code = move || crate::run::lock(&got).map_or(130, crate::signals::Signal::exit_code);
    let run_id = options.run_id.clone();
    match serve::serve(listener, s.clone(), options, shutdown).await {
        Ok(report) => {
            print!("{}", report.summary.render(&s));
            print!("{}", report.latency.render());
            let (messages, bytes) = report.traffic_per_tick();
            println!("Traffic: {messages:.1} messages and {bytes:.0} bytes per tick over {} nodes", report.nodes.len());
            for (name, agents, _) in &report.nodes {
                println!("  node {name}: {agents} agents");
            }
            println!("Run {run_id}, seed {}; outputs in {}; recorded in {}", s.seed, out.display(), db.display());
            if report.completed {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "interrupted after {} ticks; outputs of completed ticks are in {}",
                    report.ticks,
                    out.display()
                );
                Ok(ExitCode::from(code()))
            }
        }
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

/// What `exercise` was asked for.
pub(super) struct ExerciseFlags {
    pub players: Vec<String>,
    pub turn: u32,
    pub deadline: String,
    pub tick_interval: String,
    pub listen: String,
    pub grpc_listen: String,
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
    let (store, _live) = open_store(db)?;
    let out = out.unwrap_or_else(|| default_out(&s));
    let setup = Setup { players, turn_ticks: flags.turn, deadline, tick_interval };
    let options =
        exercise::Options { setup, scenario_path: scenario.display().to_string(), out: out.clone(), snapshot_every };
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
    println!("Console: http://{}/", http.local_addr()?);
    println!(
        "gRPC: {} (chokepoint.v1.Exercise; token as `authorization: Bearer <token>` metadata)",
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
