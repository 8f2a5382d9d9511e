//! Determinism: the same scenario and seed give the same digest sequence run after run and on
//! any layout of agents over hosts; a different seed gives a different run; and the digests of
//! the tiny scenario match a golden file (re-bless with CHOKEPOINT_BLESS=1).

use chokepoint_tests::{digests, load, workspace_root};
use coordinator::Placement;

#[test]
fn tiny_matches_its_golden_digests() {
    let scenario = load("tiny.toml");
    let got: Vec<String> = digests(&scenario, Placement::single(scenario.agents.len()), scenario.ticks)
        .iter()
        .enumerate()
        .map(|(t, d)| format!("{t} {d}"))
        .collect();
    let path = workspace_root().join("tests/golden/tiny.digests");
    let got = got.join("\n") + "\n";
    if std::env::var_os("CHOKEPOINT_BLESS").is_some() {
        std::fs::write(&path, &got).expect("write golden file");
        return;
    }
    let want = std::fs::read_to_string(&path).expect("golden file exists (bless with CHOKEPOINT_BLESS=1)");
    if want != got {
        let first = want.lines().zip(got.lines()).position(|(a, b)| a != b);
        panic!(
            "tiny.toml (seed {}) diverges from tests/golden/tiny.digests at line {first:?}; if the change is intended, re-bless with CHOKEPOINT_BLESS=1",
            scenario.seed
        );
    }
}

#[test]
fn the_same_run_twice_gives_the_same_digests() {
    let scenario = load("tiny.toml");
    let n = scenario.agents.len();
    assert_eq!(digests(&scenario, Placement::single(n), 40), digests(&scenario, Placement::single(n), 40));
}

#[test]
fn digests_do_not_depend_on_the_layout() {
    let scenario = load("tiny.toml");
    let n = scenario.agents.len();
    let reference = digests(&scenario, Placement::single(n), scenario.ticks);
    for (name, placement) in [
        ("round robin over 2", Placement::round_robin(n, 2)),
        ("round robin over 4", Placement::round_robin(n, 4)),
        ("blocks of 3 hosts", Placement::blocks(n, 3)),
        ("one agent per host", Placement::round_robin(n, n)),
    ] {
        assert_eq!(
            reference,
            digests(&scenario, placement, scenario.ticks),
            "layout {name} diverged (seed {})",
            scenario.seed
        );
    }
}

#[test]
fn a_different_seed_gives_a_different_run() {
    let mut scenario = load("tiny.toml");
    let n = scenario.agents.len();
    let a = digests(&scenario, Placement::single(n), 5);
    scenario.seed += 1;
    let b = digests(&scenario, Placement::single(n), 5);
    assert!(a.iter().zip(&b).all(|(x, y)| x != y), "seeds {} and {} share a digest", scenario.seed - 1, scenario.seed);
}

#[test]
fn baseline_twice_gives_the_same_digests() {
    let scenario = load("baseline-2024.toml");
    let n = scenario.agents.len();
    let ticks = 104;
    let a = digests(&scenario, Placement::single(n), ticks);
    let b = digests(&scenario, Placement::round_robin(n, 3), ticks);
    assert_eq!(a, b, "baseline seed {} diverged between runs/layouts", scenario.seed);
}

/// Large batches are decided on several threads inside one host: a 12,000-agent synthetic world
/// gives the same digests on one thread, on three, and spread over four hosts.
#[test]
fn digests_do_not_depend_on_decision_threads() {
    use coordinator::Sim;
    use std::sync::Arc;
    let text = engine::synth::generate(&engine::synth::SynthOptions { nations: 30, agents: 12_000, seed: 5, ticks: 4 })
        .expect("generate");
    let scenario = Arc::new(engine::scenario::parse(&text, "synth").expect("synthetic worlds are valid"));
    let n = scenario.agents.len();
    let run = |threads: usize| {
        let mut engine = Sim::embedded_on(scenario.clone(), threads);
        let mut out = Vec::new();
        while !engine.is_finished() {
            out.push(engine.step().expect("step").digest);
        }
        out
    };
    let one = run(1);
    assert_eq!(one.len(), 4);
    assert_eq!(one, run(3), "three decision threads diverged from one");
    assert_eq!(one, digests(&scenario, Placement::round_robin(n, 4), 4), "four hosts diverged from one");
}
