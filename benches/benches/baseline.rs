//! The embedded run of the baseline scenario: 520 weekly ticks (ten simulated years) in one
//! process with no outputs written, repeated; reports wall time, ticks per second, agent-steps per
//! second and peak memory. Run with `cargo bench -p chokepoint-benches --bench baseline`.
//! `CHOKEPOINT_BENCH_RUNS` sets the number of repetitions (default 5).

use chokepoint_benches::{describe, machine, peak_rss_kib, scenarios, time_runs};
use coordinator::run::{RunOptions, run_embedded};
use std::sync::Arc;

fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::var("CHOKEPOINT_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5).max(1);
    let mut scenario = coordinator::load_scenario(&scenarios().join("baseline-2024.toml"))?;
    scenario.ticks = 520;
    let agents = scenario.agents.len();
    let scenario = Arc::new(scenario);
    let rss_before = peak_rss_kib();
    let mut digest = String::new();
    let times = time_runs(runs, || {
        let summary = run_embedded(scenario.clone(), &RunOptions::default()).expect("the baseline runs");
        digest = summary.last_digest;
    });
    let median = times[times.len() / 2].as_secs_f64();
    println!("baseline-2024, embedded, 520 ticks, {agents} agents — {}", machine());
    println!("  wall time: {}", describe(&times));
    println!("  {:.0} ticks/s, {:.0} agent-steps/s (median)", 520.0 / median, 520.0 * agents as f64 / median);
    if let (Some(before), Some(after)) = (rss_before, peak_rss_kib()) {
        println!("  peak RSS: {:.1} MiB (before the runs: {:.1} MiB)", after as f64 / 1024.0, before as f64 / 1024.0);
    }
    println!("  final digest: {digest}");
    Ok(())
}
