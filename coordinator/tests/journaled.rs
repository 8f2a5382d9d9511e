//! Journaled decisions, on real processes: a node that does not decide as agent-node does
//! (played from this test, dropping every order at some ticks) takes part in a run that
//! `replay`, `state`, `fork` and `export` then reproduce exactly — under `--journal-actions`, or
//! because the node says in its Hello that it is not deterministic. Without either, replay
//! diverges and says why.

use std::path::Path;
use std::time::Duration;

mod common;
use common::served::{Coordinator, hello, open, play_node, serve_args, strs};
use common::{chokepoint, ok, temp_dir, wait_with_timeout};

const TICKS: &str = "40";

/// Serves tiny on two nodes, a real agent-node and one played here that drops every order at
/// ticks 2, 7, 12, …; `declares` is what that node says of itself. Returns the database.
async fn run_with_odd_node(out: &Path, extra: &[&str], declares_deterministic: bool) -> std::path::PathBuf {
    let mut args = vec!["--ticks", TICKS];
    args.extend_from_slice(extra);
    let coordinator = Coordinator::start(&strs(&serve_args("tiny.toml", 2, out, &args)));
    let mut real = coordinator.node("a-real");
    let odd_hello = proto::v1::Hello { deterministic: declares_deterministic, ..hello("b-odd", &coordinator.secret) };
    let (tx, inbound) = open(&coordinator.url(), odd_hello).await.expect("the odd node joins");
    let finish = play_node(tx, inbound, "b-odd", |tick, actions| {
        if tick % 5 == 2 {
            actions.iter_mut().for_each(|a| a.orders.clear());
        }
    })
    .await;
    assert!(finish.ok, "{}", finish.reason);
    let db = coordinator.db.clone();
    let (ok_, stderr) = coordinator.finish();
    assert!(ok_, "{stderr}");
    assert!(wait_with_timeout(&mut real, Duration::from_secs(30)));
    db
}

/// The recorded digest after tick `t`, from digests.csv.
fn digest_after(out: &Path, t: u32) -> String {
    let text = std::fs::read_to_string(out.join("digests.csv")).expect("digests.csv");
    let row = text.lines().find(|l| l.starts_with(&format!("{t},"))).expect("the tick's row");
    row.split(',').nth(1).expect("digest").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_decides_differently_replays_exactly_under_journal_actions() {
    let root = temp_dir("journaled");
    let out = root.join("out");
    let db = run_with_odd_node(&out, &["--journal-actions"], true).await;
    let replay = ok(&chokepoint(&db, &["replay", "1"]));
    assert!(replay.contains("all 40 recorded digests match"), "{replay}");
    let shown = ok(&chokepoint(&db, &["runs", "show", "1"]));
    assert!(shown.contains("every node's action batches journaled, at 40 ticks"), "{shown}");
    // The world at tick 30 is rebuilt from the snapshot at 26 and four journaled ticks.
    let state = ok(&chokepoint(&db, &["state", "1", "--at", "30"]));
    assert!(state.contains(&digest_after(&out, 29)), "state --at 30 is the recorded world:\n{state}");
    // A fork at 17 starts from the recorded world (its first tick is the parent's from there
    // on, decided by this build's agents).
    let fork_out = root.join("fork");
    ok(&chokepoint(&db, &["fork", "1", "--at", "17", "--quiet", "--out", &fork_out.display().to_string()]));
    let forked = ok(&chokepoint(&db, &["state", "2", "--at", "17"]));
    assert!(forked.contains(&digest_after(&out, 16)), "{forked}");
    // The debrief re-executes the whole run with the journaled decisions: its trades are the run's.
    let export = root.join("export");
    ok(&chokepoint(&db, &["export", "1", "--format", "csv", "--out", &export.display().to_string()]));
    let (exported, written) = (read(&export.join("trades.csv")), read(&out.join("trades.csv")));
    assert_eq!(exported.lines().skip(1).collect::<Vec<_>>(), written.lines().skip(1).collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(root);
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_says_it_is_not_deterministic_is_journaled_without_the_flag() {
    let root = temp_dir("self-declared");
    let db = run_with_odd_node(&root.join("out"), &[], false).await;
    let replay = ok(&chokepoint(&db, &["replay", "1"]));
    assert!(replay.contains("all 40 recorded digests match"), "{replay}");
    let shown = ok(&chokepoint(&db, &["runs", "show", "1"]));
    assert!(shown.contains("non-deterministic nodes' action batches journaled, at 40 ticks"), "{shown}");
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_journal_a_replay_diverges_and_says_why() {
    let root = temp_dir("unjournaled");
    let db = run_with_odd_node(&root.join("out"), &[], true).await;
    let out = chokepoint(&db, &["replay", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the odd node's decisions are lost");
    assert!(stderr.contains("diverges at tick 2"), "{stderr}");
    assert!(stderr.contains("--journal-actions"), "the divergence says why: {stderr}");
    let _ = std::fs::remove_dir_all(root);
}
