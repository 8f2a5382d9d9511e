//! Recovery from a lost node, and what journaling decisions costs, with a coordinator and three
//! agent nodes over real gRPC on loopback in one process (each node on a runtime of its own, so
//! "killing" one drops its runtime and every connection it holds, as kill -9 would):
//!
//! - a node lost at a tick a third of the way in: ticks lost (none: the tick is re-issued to
//!   the nodes left), the wall time from noticing the loss to the end of that tick's barrier,
//!   that tick's time against the median tick, the run's wall time against the same run
//!   undisturbed, and its last digest against the embedded run's;
//! - `--journal-actions` on a recorded run: the time to persist a tick (median and mean) and the
//!   bytes written per tick, with and without it.
//!
//! `cargo bench -p chokepoint-benches --bench recovery` measures the baseline (104 ticks by
//! default); `CHOKEPOINT_BENCH_SYNTH_AGENTS=100000` a synthetic world of that size (12 ticks by
//! default); `CHOKEPOINT_BENCH_TICKS` sets the length.

use agent_node::node::{NodeOptions, run as run_node};
use chokepoint_benches::{machine, scenarios};
use coordinator::metrics::PhaseSummary;
use coordinator::run::{Hooks, Persist, RunOptions, drive, lock};
use coordinator::serve::{PlacementKind, ServeOptions, ServeReport, serve};
use coordinator::store::{RunMeta, Store};
use coordinator::{Engine, Sim};
use engine::Scenario;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SECRET: &str = "bench-recovery-secret-0123456789";
const NODES: usize = 3;

fn env(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn phase<'a>(s: &'a [PhaseSummary], name: &str) -> &'a PhaseSummary {
    s.iter().find(|p| p.phase == name).expect("phase exists")
}

/// An agent node on a runtime of its own; sending on the returned channel kills it.
fn node(url: String, name: String) -> std::sync::mpsc::Sender<()> {
    let (kill, killed) = std::sync::mpsc::channel::<()>();
    let (wake, woken) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = killed.recv();
        let _ = wake.send(());
    });
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        let mut options = NodeOptions::new(url, name);
        options.secret = SECRET.into();
        rt.block_on(async {
            tokio::select! {
                _ = run_node(options, std::future::pending()) => {}
                _ = woken => {}
            }
        });
        // Dropping the runtime drops every task and connection of the node at once.
        rt.shutdown_background();
    });
    kill
}

/// The tick Control.Status reports (0 until it answers).
async fn tick_now(url: &str) -> u32 {
    let Ok(mut c) = proto::v1::control_client::ControlClient::connect(url.to_string()).await else { return 0 };
    c.status(proto::v1::StatusRequest {}).await.map_or(0, |r| r.into_inner().tick)
}

/// Serves `scenario` to three nodes; with `kill_at`, node 1 is killed once the run reaches it.
async fn served(
    scenario: Arc<Scenario>,
    kill_at: Option<u32>,
    journal: bool,
    persist: Option<Persist>,
) -> anyhow::Result<(ServeReport, Duration)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let mut options = ServeOptions::new("bench", NODES, SECRET);
    options.placement = PlacementKind::RoundRobin;
    options.tick_deadline = Duration::from_secs(600);
    options.journal_actions = journal;
    options.persist = persist;
    let kills: Vec<_> = (0..NODES).map(|i| node(url.clone(), format!("bench-{i}"))).collect();
    if let Some(at) = kill_at {
        let (url, victim) = (url.clone(), kills[1].clone());
        tokio::spawn(async move {
            while tick_now(&url).await < at {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let _ = victim.send(());
        });
    }
    let started = Instant::now();
    let report = serve(listener, Engine::new(scenario), options, std::future::pending()).await?;
    let wall = started.elapsed();
    for k in kills {
        let _ = k.send(());
    }
    Ok((report, wall))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn world(ticks: Option<usize>) -> anyhow::Result<Scenario> {
    let mut scenario = match env("CHOKEPOINT_BENCH_SYNTH_AGENTS") {
        Some(agents) => {
            let options =
                engine::synth::SynthOptions { nations: (agents / 200).clamp(20, 2000), agents, seed: 1, ticks: 12 };
            engine::scenario::parse(&engine::synth::generate(&options).map_err(anyhow::Error::msg)?, "synth")?
        }
        None => coordinator::load_scenario(&scenarios().join("baseline-2024.toml"))?,
    };
    let synthetic = env("CHOKEPOINT_BENCH_SYNTH_AGENTS").is_some();
    scenario.ticks = ticks.unwrap_or(if synthetic { 12 } else { 104 }) as u32;
    Ok(scenario)
}

fn main() -> anyhow::Result<()> {
    let scenario = Arc::new(world(env("CHOKEPOINT_BENCH_TICKS"))?);
    let (agents, ticks) = (scenario.agents.len(), scenario.ticks);
    println!(
        "recovery and journaled decisions, {NODES} nodes on loopback, {agents} agents, {ticks} ticks — {}",
        machine()
    );
    let hooks = Hooks::default();
    drive(&mut Sim::embedded(scenario.clone()), &RunOptions::default(), &hooks, None)?;
    let embedded = lock(&hooks.last).as_ref().map(|r| r.digest.to_string()).unwrap_or_default();

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let (calm, calm_wall) = runtime.block_on(served(scenario.clone(), None, false, None))?;
    let kill_at = ticks / 3;
    let (hit, hit_wall) = runtime.block_on(served(scenario.clone(), Some(kill_at), false, None))?;
    assert_eq!(hit.summary.last_digest, embedded, "the run that lost a node is the embedded run");
    assert_eq!(calm.summary.last_digest, embedded);
    let recovery = hit.placements.iter().find(|c| c.recovery_us.is_some());
    let tick = phase(&hit.latency.summaries(), "tick").clone();
    println!(
        "\nnode bench-1 killed at tick {kill_at} (or the next): ticks lost 0 (completed {} of {ticks})",
        hit.ticks
    );
    match recovery {
        Some(c) => println!(
            "  recovery at tick {}: {:.2} ms from noticing the loss to the end of the re-issued barrier ({})",
            c.tick,
            c.recovery_us.unwrap_or_default() as f64 / 1000.0,
            c.cause
        ),
        None => println!("  no loss was noticed (the run ended first)"),
    }
    println!(
        "  tick times: median {:.1} ms, slowest {:.1} ms; run wall time {:.0} ms against {:.0} ms undisturbed",
        tick.p50_us as f64 / 1000.0,
        tick.max_us as f64 / 1000.0,
        ms(hit_wall),
        ms(calm_wall)
    );

    for journal in [false, true] {
        let dir = std::env::temp_dir().join(format!("chokepoint-bench-journal-{}-{journal}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Arc::new(Store::open(&dir)?);
        let run = store.create_run(&RunMeta::new(&scenario, "bench".into(), String::new(), 26, "bench".into()))?;
        let persist = Persist { store: store.clone(), run, snapshot_every: 26 };
        let (report, wall) = runtime.block_on(served(scenario.clone(), None, journal, Some(persist)))?;
        store.flush()?;
        let p = phase(&report.latency.summaries(), "persist").clone();
        let bytes = store.size_on_disk();
        println!(
            "\n--journal-actions {}: persist per tick p50 {} µs, p99 {} µs; run wall time {:.0} ms; database {:.1} MiB ({:.0} KiB per tick)",
            if journal { "on " } else { "off" },
            p.p50_us,
            p.p99_us,
            ms(wall),
            bytes as f64 / (1 << 20) as f64,
            bytes as f64 / 1024.0 / f64::from(ticks)
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
