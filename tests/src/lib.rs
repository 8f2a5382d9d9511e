//! Shared helpers for Chokepoint's end-to-end tests: where the scenarios are, and how to run one
//! to its digest sequence on a given layout.

use coordinator::{Placement, Scenario, Sim};
use engine::digest::Digest;
use std::path::PathBuf;
use std::sync::Arc;

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate sits in the workspace").to_path_buf()
}

pub fn scenario_path(file: &str) -> PathBuf {
    workspace_root().join("scenarios").join(file)
}

/// Loads a scenario from `scenarios/`, panicking with the validation message if it is invalid.
pub fn load(file: &str) -> Scenario {
    coordinator::load_scenario(&scenario_path(file)).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `ticks` ticks on local hosts laid out by `placement` and returns the digest after each.
pub fn digests(scenario: &Scenario, placement: Placement, ticks: u32) -> Vec<Digest> {
    let mut s = scenario.clone();
    s.ticks = ticks;
    let mut engine = Sim::local(Arc::new(s), placement);
    let mut out = Vec::new();
    while !engine.is_finished() {
        let record = engine.step().unwrap_or_else(|e| panic!("seed {}: {e}", scenario.seed));
        out.push(record.digest);
    }
    out
}
