//! The run store on the baseline: a 520-tick run recorded with a snapshot every 26 ticks (time
//! against the same run unrecorded), the time to write one snapshot, the database's size, and
//! `state --at T` (nearest snapshot plus re-execution) for ticks across the run.
//! Run with `cargo bench -p chokepoint-benches --bench persistence`.

use chokepoint_benches::{describe, machine, scenarios, time_runs};
use coordinator::Sim;
use coordinator::history::state_at;
use coordinator::run::{Hooks, Persist, RunOptions, drive};
use coordinator::store::{RunId, RunMeta, Store};
use std::sync::Arc;
use std::time::Instant;

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| if e.path().is_dir() { dir_size(&e.path()) } else { e.metadata().map_or(0, |m| m.len()) })
                .sum()
        })
        .unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let path = scenarios().join("baseline-2024.toml");
    let mut scenario = coordinator::load_scenario(&path)?;
    scenario.ticks = 520;
    let scenario = Arc::new(scenario);
    let db = std::env::temp_dir().join(format!("chokepoint-bench-db-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&db);
    let store = Arc::new(Store::open(&db)?);
    println!("persistence on baseline-2024, 520 ticks, snapshot every 26 — {}", machine());

    let plain = time_runs(3, || {
        let mut engine = Sim::embedded(scenario.clone());
        drive(&mut engine, &RunOptions::default(), &Hooks::default(), None).expect("runs");
    });
    let meta = RunMeta::new(&scenario, path.display().to_string(), String::new(), 26, "embedded".into());
    let mut run = RunId(0);
    let recorded = time_runs(3, || {
        run = store.create_run(&meta).expect("create");
        let mut engine = Sim::embedded(scenario.clone());
        let persist = Persist { store: store.clone(), run, snapshot_every: 26 };
        drive(&mut engine, &RunOptions::default(), &Hooks::default(), Some(&persist)).expect("runs");
    });
    println!("  whole run: unrecorded {}", describe(&plain));
    println!("             recorded   {}", describe(&recorded));
    store.flush()?;
    println!(
        "  database: {:.2} MiB on disk for 3 recorded runs ({:.2} MiB per run)",
        dir_size(&db) as f64 / 1048576.0,
        dir_size(&db) as f64 / 3.0 / 1048576.0
    );

    let (_, state) = store.snapshot_at_or_before(run, 520)?.expect("a final snapshot");
    let encoded = postcard_len(&state);
    let writes = time_runs(20, || {
        store.put_snapshot(RunId(999_999), 0, &state).expect("snapshot");
    });
    println!("  snapshot write (encode, checksum, insert, flush; {encoded} bytes): {}", describe(&writes));

    let mut worst = 0.0f64;
    for at in [1u32, 25, 51, 130, 259, 390, 519, 520] {
        let started = Instant::now();
        let (_, s, _) = state_at(&store, run, at)?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        worst = worst.max(ms);
        assert_eq!(s.tick.0, at);
        println!("  state --at {at:>3}: {ms:.1} ms");
    }
    println!("  state --at: worst {worst:.1} ms");
    drop(store);
    let _ = std::fs::remove_dir_all(&db);
    Ok(())
}

fn postcard_len(state: &engine::world::WorldState) -> usize {
    coordinator::store::encoded_len(state)
}
