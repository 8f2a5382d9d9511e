//! Helpers shared by the coordinator's multi-process tests: where the scenarios are, private
//! folders and run databases per test, and running the `chokepoint` binary; `served` has
//! coordinators and agent nodes.
#![allow(dead_code)]

pub mod exercise;
pub mod served;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

/// Every CSV file a run writes.
pub const OUTPUT_FILES: [&str; 13] = [
    "production.csv",
    "markets.csv",
    "domestic_prices.csv",
    "trades.csv",
    "stockpiles.csv",
    "shortages.csv",
    "nations.csv",
    "digests.csv",
    "events.csv",
    "emissions.csv",
    "investments.csv",
    "recycling.csv",
    "rejections.csv",
];

/// The path of a file in `scenarios/`.
pub fn scenario(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(file).display().to_string()
}

/// A fresh, empty folder for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chokepoint-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A run database of its own for each process, so tests running in parallel never share one
/// (sled holds an exclusive lock).
pub fn fresh_db() -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("chokepoint-test-db-{}-{n}", std::process::id()))
}

/// Runs `chokepoint --db DB ARGS...` to completion.
pub fn chokepoint(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chokepoint")).arg("--db").arg(db).args(args).output().expect("chokepoint runs")
}

/// Asserts a command succeeded and returns its standard output.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits for a child to exit, killing it (and failing) after `timeout`; true if it succeeded.
pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> bool {
    let start = std::time::Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("process did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
