//! How the embedded engine scales with the number of agents: synthetic worlds (`[synthetic]`) of
//! 1k, 10k and 100k agents by default (`CHOKEPOINT_SCALE_AGENTS=1000,10000,100000,1000000` to
//! choose), each run for `CHOKEPOINT_SCALE_TICKS` ticks (default 10) with no outputs; reports
//! ticks/s, agent-steps/s, peak memory per agent and where each tick's time goes;
//! `CHOKEPOINT_SCALE_THREADS` sets the decision threads (default one per core). Sizes run in
//! ascending order, so the process's peak RSS after each size is that size's peak.
//! Run with `cargo bench -p chokepoint-benches --bench scale`.

use chokepoint_benches::{machine, peak_rss_kib};
use coordinator::Sim;
use engine::synth::{SynthOptions, SynthWorld};
use std::sync::Arc;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let sizes: Vec<usize> = std::env::var("CHOKEPOINT_SCALE_AGENTS")
        .unwrap_or_else(|_| "1000,10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let ticks: u32 = std::env::var("CHOKEPOINT_SCALE_TICKS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    // Decision threads: one per core unless CHOKEPOINT_SCALE_THREADS says.
    let threads: Option<usize> = std::env::var("CHOKEPOINT_SCALE_THREADS").ok().and_then(|v| v.parse().ok());
    let shown = threads.map_or_else(|| "one per core".to_string(), |t| t.to_string());
    println!("embedded engine scaling, {ticks} ticks per size, decision threads: {shown} — {}", machine());
    println!(
        "{:>10} {:>8} {:>10} {:>12} {:>16} {:>12} {:>14}",
        "agents", "nations", "load s", "ticks/s", "agent-steps/s", "peak MiB", "bytes/agent"
    );
    let base = peak_rss_kib().unwrap_or(0);
    for agents in sizes {
        let nations = (agents / 200).clamp(20, 2000);
        let started = Instant::now();
        // Loaded from generator parameters (`[synthetic]`), as a researcher would for a large
        // world: the same world `chokepoint synth` writes, without its text.
        let world = SynthWorld::new(&SynthOptions { nations, agents, seed: 1, ticks }).map_err(anyhow::Error::msg)?;
        let text = format!("{}\n[synthetic]\nnations = {nations}\nagents = {agents}\n", world.scenario_table());
        drop(world);
        let scenario = Arc::new(engine::scenario::parse(&text, "synth")?);
        let load = started.elapsed().as_secs_f64();
        let mut engine = match threads {
            Some(t) => Sim::embedded_on(scenario, t),
            None => Sim::embedded(scenario),
        };
        let started = Instant::now();
        let mut phases = [0f64; 5];
        while !engine.is_finished() {
            let (_, t) = engine.step_timed()?;
            let apply_rest = t.apply.saturating_sub(t.markets + t.digest);
            for (sum, d) in phases.iter_mut().zip([t.observe, t.wait, apply_rest, t.markets, t.digest]) {
                *sum += d.as_secs_f64() * 1000.0 / f64::from(ticks);
            }
        }
        let secs = started.elapsed().as_secs_f64();
        let peak = peak_rss_kib().unwrap_or(0);
        println!(
            "{agents:>10} {nations:>8} {load:>10.2} {:>12.1} {:>16.0} {:>12.1} {:>14.0}",
            f64::from(ticks) / secs,
            f64::from(ticks) * agents as f64 / secs,
            peak as f64 / 1024.0,
            (peak.saturating_sub(base) as f64 * 1024.0) / agents as f64
        );
        let [observe, decide, apply, markets, digest] = phases;
        println!(
            "{:>10} ms per tick: observe {observe:.1}, decide {decide:.1}, validate and apply {apply:.1}, \
             markets {markets:.1}, digest {digest:.1}",
            ""
        );
    }
    Ok(())
}
