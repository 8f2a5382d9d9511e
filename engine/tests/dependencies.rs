//! The simulation core does no I/O, and its dependency tree says so: this test reads
//! `cargo metadata` and fails if a runtime, network, storage or output library is among the
//! engine's normal dependencies, however deep (the way rust-analyzer keeps `syntax` free of its
//! IDE layers). Dev-dependencies are not followed: tests may use what they like.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Libraries that mean I/O (or a runtime for it) and must never reach the core.
const FORBIDDEN: [&str; 9] = ["tokio", "tonic", "prost", "axum", "hyper", "sled", "parquet", "indicatif", "mio"];

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let host = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .expect("run rustc -vV");
    let host = String::from_utf8_lossy(&host.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV names the host");
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--filter-platform", &host])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Every package the engine depends on (normal and build dependencies, transitively), by name.
fn engine_dependencies(meta: &Value) -> BTreeSet<String> {
    let name_of: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().expect("id"), p["name"].as_str().expect("name")))
        .collect();
    let nodes: BTreeMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .expect("resolve nodes")
        .iter()
        .map(|n| (n["id"].as_str().expect("node id"), n))
        .collect();
    let root = name_of.iter().find(|(_, name)| **name == "engine").map(|(id, _)| *id).expect("the engine package");
    let mut seen = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(id) = todo.pop() {
        for dep in nodes[id]["deps"].as_array().into_iter().flatten() {
            let normal = dep["dep_kinds"].as_array().into_iter().flatten().any(|k| k["kind"].as_str() != Some("dev"));
            let pkg = dep["pkg"].as_str().expect("dep pkg");
            if normal && seen.insert(pkg) {
                todo.push(pkg);
            }
        }
    }
    seen.into_iter().map(|id| name_of[id].to_string()).collect()
}

#[test]
fn the_core_depends_on_no_io_library() {
    let deps = engine_dependencies(&metadata());
    assert!(deps.contains("agents"), "the walk found the engine's dependencies: {deps:?}");
    let bad: Vec<&str> = FORBIDDEN.iter().copied().filter(|f| deps.contains(*f)).collect();
    assert!(bad.is_empty(), "the engine crate depends on {bad:?}; its whole tree is {deps:?}");
}

#[test]
fn the_walk_would_see_a_forbidden_library() {
    // The coordinator depends on sled and tokio: the same walk from it must find them, or the
    // test above proves nothing.
    let meta = metadata();
    let mut meta = meta.clone();
    for p in meta["packages"].as_array_mut().expect("packages") {
        if p["name"] == "engine" {
            p["name"] = Value::from("engine-original");
        } else if p["name"] == "coordinator" {
            p["name"] = Value::from("engine");
        }
    }
    let deps = engine_dependencies(&meta);
    assert!(deps.contains("sled") && deps.contains("tokio"), "the coordinator's tree: {deps:?}");
}
