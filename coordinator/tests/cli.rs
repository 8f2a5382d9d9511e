//! The `chokepoint` binary as a user runs it: same seed, byte-identical CSV files; another seed,
//! another run; a bad scenario, a clear message and a non-zero exit, never a panic.

use std::path::Path;
use std::process::Output;

mod common;
use common::{OUTPUT_FILES, fresh_db, scenario, temp_dir};

/// Runs the binary with its own run database, so tests running in parallel never share one.
fn chokepoint(args: &[&str]) -> Output {
    let db = fresh_db();
    let out = common::chokepoint(&db, args);
    let _ = std::fs::remove_dir_all(db);
    out
}

fn run_to(dir: &Path, seed: &str) -> Output {
    let out =
        chokepoint(&["run", &scenario("tiny.toml"), "--seed", seed, "--out", &dir.display().to_string(), "--quiet"]);
    assert!(out.status.success(), "run failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn the_same_seed_gives_byte_identical_csv_files() {
    let (a, b, c) = (temp_dir("a"), temp_dir("b"), temp_dir("c"));
    let out = run_to(&a, "11");
    run_to(&b, "11");
    run_to(&c, "12");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("seed 11"), "the seed is printed: {stdout}");
    assert!(stdout.contains("Final state digest"), "a summary is printed: {stdout}");
    for f in OUTPUT_FILES {
        let x = std::fs::read(a.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(x, std::fs::read(b.join(f)).unwrap(), "{f} differs between two runs with seed 11");
    }
    assert_ne!(
        std::fs::read(a.join("digests.csv")).unwrap(),
        std::fs::read(c.join("digests.csv")).unwrap(),
        "seeds 11 and 12 gave the same run"
    );
    let markets = std::fs::read_to_string(a.join("markets.csv")).unwrap();
    assert_eq!(markets.lines().next(), Some("tick,commodity,stage,price_cents_per_kg,volume_kg,traded"));
    assert_eq!(markets.lines().count(), 1 + 60 * 4, "one row per tick and market");
    for d in [a, b, c] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn ticks_overrides_the_scenario() {
    let dir = temp_dir("ticks");
    let out =
        chokepoint(&["run", &scenario("tiny.toml"), "--ticks", "5", "--out", &dir.display().to_string(), "--quiet"]);
    assert!(out.status.success());
    let digests = std::fs::read_to_string(dir.join("digests.csv")).unwrap();
    assert_eq!(digests.lines().count(), 6);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_bad_scenario_is_refused_clearly() {
    let dir = temp_dir("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(scenario("tiny.toml")).unwrap().replacen(
        "nation = \"DD\"\ncommodity = \"co\"",
        "nation = \"ZZ\"\ncommodity = \"co\"",
        1,
    );
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, text).unwrap();
    let out = chokepoint(&["run", &bad.display().to_string(), "--out", &dir.join("out").display().to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("bad.toml:") && stderr.contains("miners[1].nation") && stderr.contains("unknown nation \"ZZ\""),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!dir.join("out").exists(), "nothing is written for a refused scenario");

    let missing = chokepoint(&["run", "/nonexistent/scenario.toml"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read the scenario"));
    let _ = std::fs::remove_dir_all(dir);
}
