//! The coordinator and agent nodes over real gRPC on loopback (in one process, so the figures
//! include no process start-up), against the embedded run of the same scenario: per-phase tick
//! latency for both, the coordination overhead per tick (distributed minus embedded, at the same
//! percentile), total wall time, and messages and bytes per tick for a small and a large world.
//! Run with `cargo bench -p chokepoint-benches --bench distributed`; `CHOKEPOINT_BENCH_NODES`
//! (default 2) and `CHOKEPOINT_BENCH_TICKS` (default 520) adjust it.

use agent_node::node::{NodeOptions, run as run_node};
use chokepoint_benches::{machine, scenarios};
use coordinator::metrics::PhaseSummary;
use coordinator::run::{Hooks, RunOptions, drive, lock};
use coordinator::serve::{PlacementKind, ServeOptions, serve};
use coordinator::{Engine, Sim};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn phase<'a>(s: &'a [PhaseSummary], name: &str) -> &'a PhaseSummary {
    s.iter().find(|p| p.phase == name).expect("phase exists")
}

fn main() -> anyhow::Result<()> {
    let nodes = env("CHOKEPOINT_BENCH_NODES", 2).max(1);
    let ticks = env("CHOKEPOINT_BENCH_TICKS", 520) as u32;
    // CHOKEPOINT_BENCH_SYNTH_AGENTS=100000 measures one synthetic world of that size instead.
    let synth = env("CHOKEPOINT_BENCH_SYNTH_AGENTS", 0);
    println!("distributed vs embedded, {nodes} agent nodes on loopback — {}", machine());
    let worlds: Vec<String> =
        if synth > 0 { vec![format!("synth:{synth}")] } else { vec!["tiny.toml".into(), "baseline-2024.toml".into()] };
    for file in &worlds {
        let mut scenario = match file.strip_prefix("synth:") {
            Some(_) => {
                let options = engine::synth::SynthOptions {
                    nations: (synth / 200).clamp(20, 2000),
                    agents: synth,
                    seed: 1,
                    ticks,
                };
                let text = engine::synth::generate(&options).map_err(anyhow::Error::msg)?;
                engine::scenario::parse(&text, "synth")?
            }
            None => coordinator::load_scenario(&scenarios().join(file))?,
        };
        scenario.ticks = ticks;
        let scenario = Arc::new(scenario);

        let hooks = Hooks::default();
        let started = Instant::now();
        let mut engine = Sim::embedded(scenario.clone());
        drive(&mut engine, &RunOptions::default(), &hooks, None)?;
        let embedded_wall = started.elapsed();
        let embedded = lock(&hooks.latency).summaries();

        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let started = Instant::now();
        let report = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let url = format!("http://{}", listener.local_addr()?);
            let mut options = ServeOptions::new("bench", nodes, "bench-secret-0123456789");
            options.placement = PlacementKind::Blocks;
            options.tick_deadline = Duration::from_secs(60);
            options.join_timeout = Duration::from_secs(60);
            let node_tasks: Vec<_> = (0..nodes)
                .map(|i| {
                    let mut node = NodeOptions::new(url.clone(), format!("bench-{i}"));
                    node.secret = "bench-secret-0123456789".into();
                    tokio::spawn(run_node(node, std::future::pending()))
                })
                .collect();
            let report = serve(listener, Engine::new(scenario.clone()), options, std::future::pending()).await?;
            for t in node_tasks {
                let _ = t.await;
            }
            anyhow::Ok(report)
        })?;
        let distributed_wall = started.elapsed();
        let distributed = report.latency.summaries();
        assert_eq!(
            report.summary.last_digest,
            lock(&hooks.last).as_ref().map(|r| r.digest.to_string()).unwrap_or_default()
        );

        let (messages, bytes) = report.traffic_per_tick();
        let agents = scenario.agents.len();
        println!("\n{file}: {agents} agents, {ticks} ticks (digests identical to the embedded run)");
        println!(
            "  wall time: embedded {:.1} ms, distributed {:.1} ms ({:.2}x)",
            ms(embedded_wall),
            ms(distributed_wall),
            distributed_wall.as_secs_f64() / embedded_wall.as_secs_f64()
        );
        println!("  {:<22} {:>10} {:>10} {:>10} {:>10}", "tick phase (µs)", "p50", "p90", "p99", "max");
        for (label, s) in [("embedded", &embedded), ("distributed", &distributed)] {
            for name in ["observe", "wait", "apply", "tick"] {
                let p = phase(s, name);
                println!(
                    "  {:<22} {:>10} {:>10} {:>10} {:>10}",
                    format!("{label} {name}"),
                    p.p50_us,
                    p.p90_us,
                    p.p99_us,
                    p.max_us
                );
            }
        }
        let coord = |s: &[PhaseSummary], f: fn(&PhaseSummary) -> u64| f(phase(s, "observe")) + f(phase(s, "wait"));
        let overhead_p50 = coord(&distributed, |p| p.p50_us) as i64 - coord(&embedded, |p| p.p50_us) as i64;
        let overhead_p99 = coord(&distributed, |p| p.p99_us) as i64 - coord(&embedded, |p| p.p99_us) as i64;
        println!(
            "  coordination overhead per tick (observe+wait, distributed minus embedded): p50 {overhead_p50} µs, p99 {overhead_p99} µs"
        );
        println!(
            "  traffic: {messages:.1} messages/tick, {bytes:.0} bytes/tick, {:.0} bytes per agent per tick",
            bytes / agents as f64
        );
        println!(
            "  agent-steps/s: embedded {:.0}, distributed {:.0}",
            f64::from(ticks) * agents as f64 / embedded_wall.as_secs_f64(),
            f64::from(ticks) * agents as f64 / distributed_wall.as_secs_f64()
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
