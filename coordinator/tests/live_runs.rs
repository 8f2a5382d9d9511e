//! The process holding the database answers the read-only verbs, and SIGTERM stops it like
//! Ctrl-C, for every verb that keeps a database open: an exercise, and a run resumed on agent
//! nodes (`resume --serve`), with the real binaries.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{chokepoint, ok, scenario, temp_dir};

/// Waits until `file` has at least `rows` lines (or panics after a minute).
fn wait_for_rows(file: &Path, rows: usize) {
    let start = Instant::now();
    while std::fs::read_to_string(file).map(|t| t.lines().count()).unwrap_or(0) < rows {
        assert!(start.elapsed() < Duration::from_secs(60), "{} never reached {rows} rows", file.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run `run`'s line of `runs` asked from another process, once the process holding the
/// database answers it (it opens the database a moment before its read socket is up, and a
/// reader in between is told that the database is in use).
fn runs_line(db: &Path, run: u32) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let asked = chokepoint(db, &["runs"]);
        if asked.status.success() || Instant::now() > deadline {
            let runs = ok(&asked);
            return runs.lines().find(|l| l.trim_start().starts_with(&format!("{run} "))).unwrap_or_default().into();
        }
        let stderr = String::from_utf8_lossy(&asked.stderr);
        assert!(stderr.contains("is in use by"), "{stderr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop_with_sigterm(child: &mut Child) -> Option<i32> {
    common::signal(child, libc::SIGTERM);
    // It ends within a minute (or the wait panics), not successfully.
    assert!(!common::wait_with_timeout(child, Duration::from_secs(60)), "a process stopped by SIGTERM fails");
    child.wait().expect("wait").code()
}

#[test]
fn an_exercise_answers_reads_and_stops_on_sigterm() {
    let mut ex = common::exercise::start("AA", &[]);
    let line = runs_line(&ex.db, 1);
    assert!(line.contains(" running "), "the exercise answers `runs` while it holds the database: {line}");
    let shown = ok(&chokepoint(&ex.db, &["runs", "show", "1"]));
    assert!(shown.contains("status       running") && shown.contains("exercise     played by AA"), "{shown}");
    assert_eq!(stop_with_sigterm(&mut ex.child), Some(143), "SIGTERM gives exit status 143");
    let shown = ok(&chokepoint(&ex.db, &["runs", "show", "1"]));
    assert!(shown.contains("status       interrupted\n"), "{shown}");
    assert!(ex.db.join("chokepoint.closed").exists(), "the database was closed cleanly");
}

#[test]
fn a_run_resumed_on_agent_nodes_answers_reads_and_stops_on_sigterm() {
    let root = temp_dir("live-resume-serve");
    let db = root.join("db");
    let out = root.join("o");
    let o = out.display().to_string();
    let start = |args: &[&str]| -> Child {
        common::command(&db, args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start")
    };
    let tiny = scenario("tiny.toml");
    let mut run = start(&["run", &tiny, "--ticks", "100000", "--snapshot-every", "5", "--quiet", "--out", &o]);
    wait_for_rows(&out.join("digests.csv"), 12);
    assert_eq!(stop_with_sigterm(&mut run), Some(143));

    // Resumed on one agent node that never comes: the coordinator waits, answering reads.
    let mut served = start(&["resume", "1", "--serve", "--listen", "127.0.0.1:0", "--nodes", "1", "--quiet"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let line = loop {
        let line = runs_line(&db, 1);
        if line.contains("served on 1 nodes (resumed)") || Instant::now() > deadline {
            break line;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(line.contains(" running ") && line.contains("(resumed)"), "{line}");
    assert_eq!(stop_with_sigterm(&mut served), Some(143), "SIGTERM gives exit status 143");
    let shown = ok(&chokepoint(&db, &["runs", "show", "1"]));
    assert!(shown.contains("status       interrupted"), "{shown}");

    // Its outputs hold every tick run before, once each.
    common::assert_every_tick_once(&out.join("digests.csv"));
    let _ = std::fs::remove_dir_all(root);
}

/// A process that records runs, started while another only reads the database (a `runs` typed
/// while a run is being resumed, a debrief server), waits for the reader to let go instead of
/// failing at once; one that records runs is refused at once, naming it.
#[test]
fn a_run_waits_for_a_reader_to_let_go_of_the_database() {
    let root = temp_dir("live-reader");
    let db = root.join("db");
    let o = |n: &str| root.join(n).display().to_string();
    let tiny = scenario("tiny.toml");
    ok(&chokepoint(&db, &["run", &tiny, "--ticks", "5", "--quiet", "--out", &o("first")]));
    let (mut reader, _) = common::debrief::debrief(&db);
    let mut run = common::command(&db, ["run", tiny.as_str(), "--ticks", "5", "--quiet", "--out", &o("second")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(run.try_wait().expect("try_wait").is_none(), "it waits while the debrief server reads the database");
    common::signal(&reader, libc::SIGINT);
    reader.wait().expect("the debrief server stops");
    assert!(common::wait_with_timeout(&mut run, Duration::from_secs(60)), "it waited for the reader, then ran");
    assert!(ok(&chokepoint(&db, &["runs"])).lines().any(|l| l.trim_start().starts_with("2 ")), "run 2 recorded");

    // A holder that records runs keeps the database for as long as it runs: refused at once.
    let mut holder = common::command(&db, ["run", tiny.as_str(), "--ticks", "100000", "--quiet", "--out", &o("third")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    wait_for_rows(&root.join("third").join("digests.csv"), 3);
    let started = Instant::now();
    let refused = chokepoint(&db, &["fork", "1", "--at", "2", "--out", &o("fork")]);
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("is in use by"));
    assert!(started.elapsed() < Duration::from_secs(10), "refused at once, not after the readers' wait");
    assert_eq!(stop_with_sigterm(&mut holder), Some(143));
    let _ = std::fs::remove_dir_all(root);
}
