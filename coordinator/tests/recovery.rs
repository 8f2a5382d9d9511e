//! Distributed runs that lose nodes, on real processes on loopback: a node killed with kill -9
//! at a random tick (many trials, each with its seed printed), a node stopped past the tick
//! deadline, a replacement joining mid-run, the coordinator's own host taking over when no node
//! is left, and the coordinator itself killed and resumed with `--serve` onto fresh nodes. Every
//! run completes and every output file is byte-identical to the embedded run. A run resumed
//! with `--serve` still knows what control injected before the kill (a `lift` may target it).
//!
//! `CHOKEPOINT_TEST_SEED=S` reruns the kill trials from seed S; `CHOKEPOINT_RECOVERY_TRIALS=N`
//! runs N of them (default 10).

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

mod common;
use common::served::{Coordinator, assert_same_outputs, embedded, serve_args, strs};
use common::{chokepoint, ok, temp_dir, wait_with_timeout};

const SCENARIO: &str = "baseline-2024.toml";

/// A small seeded generator (SplitMix64), so a trial is chosen by its seed alone.
struct Draw(u64);

impl Draw {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Waits until the served run reaches `tick`; returns the tick it was at.
async fn reach(coordinator: &mut Coordinator, tick: u32) -> u32 {
    let give_up = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(t) = coordinator.tick().await
            && t >= tick
        {
            return t;
        }
        if let Ok(Some(status)) = coordinator.child.try_wait() {
            panic!("the coordinator exited ({status}) before tick {tick}");
        }
        assert!(Instant::now() < give_up, "the run never reached tick {tick}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn signal(child: &Child, sig: &str) {
    let pid = child.id().to_string();
    assert!(Command::new("kill").args([sig, &pid]).status().expect("kill runs").success(), "kill {sig} {pid}");
}

/// The placement lines `runs show` prints for run 1 of `db`.
fn placement(db: &Path) -> String {
    ok(&chokepoint(db, &["runs", "show", "1"]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_at_a_random_tick_leaves_the_embedded_runs_outputs() {
    let reference = temp_dir("kill-embedded");
    embedded(SCENARIO, &[], &reference);
    #[allow(clippy::disallowed_methods)] // Only the choice of trials; the runs are seeded.
    let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    let base = env_u64("CHOKEPOINT_TEST_SEED").unwrap_or(clock % 1_000_000);
    let trials = env_u64("CHOKEPOINT_RECOVERY_TRIALS").unwrap_or(10);
    for seed in base..base + trials {
        let mut draw = Draw(seed);
        let victim = draw.below(3) as usize;
        let target = 3 + draw.below(420) as u32;
        println!("trial seed {seed} (rerun with CHOKEPOINT_TEST_SEED={seed}): kill -9 node-{victim} at tick {target}");
        let out = temp_dir(&format!("kill-{seed}"));
        let mut coordinator = Coordinator::start(&strs(&serve_args(SCENARIO, 3, &out, &["--tick-deadline", "20"])));
        let mut nodes: Vec<Child> = (0..3).map(|i| coordinator.node(&format!("node-{i}"))).collect();
        let at = reach(&mut coordinator, target).await;
        let victim_node = &mut nodes[victim];
        victim_node.kill().expect("kill -9");
        let _ = victim_node.wait();
        let db = coordinator.db.clone();
        let (ok_, stderr) = coordinator.finish();
        assert!(ok_, "seed {seed}: the run did not survive the loss of node-{victim}:\n{stderr}");
        let lost = stderr.lines().find(|l| l.contains(&format!("node node-{victim} lost at tick")));
        assert!(lost.is_some(), "seed {seed}: the loss is logged (killed at tick {at}):\n{stderr}");
        println!("  killed at tick {at}; {}", lost.unwrap_or_default().trim());
        assert_same_outputs(&reference, &out, &format!("the run that lost node-{victim} (seed {seed})"));
        let shown = placement(&db);
        assert!(shown.contains(&format!("node node-{victim} lost")), "seed {seed}: runs show:\n{shown}");
        assert!(shown.contains("completed"), "{shown}");
        for (i, node) in nodes.iter_mut().enumerate().filter(|(i, _)| *i != victim) {
            assert!(wait_with_timeout(node, Duration::from_secs(30)), "seed {seed}: node-{i} exits 0");
        }
        let _ = std::fs::remove_dir_all(out);
    }
    let _ = std::fs::remove_dir_all(reference);
}

/// A node stopped (SIGSTOP) past the tick deadline is dropped and its agents move; continued
/// (SIGCONT), it learns it was dropped and exits non-zero, and the run is the embedded one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_node_is_dropped_at_the_deadline_and_its_agents_move() {
    let reference = temp_dir("stall-embedded");
    embedded(SCENARIO, &[], &reference);
    let out = temp_dir("stall");
    let mut coordinator = Coordinator::start(&strs(&serve_args(SCENARIO, 3, &out, &["--tick-deadline", "1"])));
    let mut nodes: Vec<Child> = (0..3).map(|i| coordinator.node(&format!("node-{i}"))).collect();
    reach(&mut coordinator, 40).await;
    signal(&nodes[1], "-STOP");
    let stopped = Instant::now();
    let seen = coordinator.wait_for_log("node node-1 lost at tick");
    let dropped_after = stopped.elapsed();
    assert!(seen.iter().any(|l| l.contains("missed the tick deadline")), "{}", seen.join("\n"));
    std::thread::sleep(Duration::from_millis(500));
    signal(&nodes[1], "-CONT");
    let db = coordinator.db.clone();
    let (ok_, stderr) = coordinator.finish();
    assert!(ok_, "the run survives a stalled node:\n{stderr}");
    println!("node-1 dropped {dropped_after:?} after SIGSTOP (deadline 1 s)");
    assert!(dropped_after >= Duration::from_millis(900), "dropped only at the deadline: {dropped_after:?}");
    assert_same_outputs(&reference, &out, "the run with a stalled node");
    let stalled = nodes.remove(1);
    let output = stalled.wait_with_output().expect("node-1 exits");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a dropped node exits non-zero");
    assert!(said.contains("dropped from the run") || said.contains("closed"), "node-1 said:\n{said}");
    for node in &mut nodes {
        assert!(wait_with_timeout(node, Duration::from_secs(30)));
    }
    assert!(placement(&db).contains("node node-1 lost (missed the tick deadline"), "{}", placement(&db));
    let _ = std::fs::remove_dir_all(out);
    let _ = std::fs::remove_dir_all(reference);
}

/// A node that joins a running run which has lost one takes agents at the next tick boundary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_node_joins_mid_run_and_takes_agents() {
    let reference = temp_dir("replace-embedded");
    embedded(SCENARIO, &["--ticks", "1040"], &reference);
    let out = temp_dir("replace");
    let mut coordinator = Coordinator::start(&strs(&serve_args(SCENARIO, 2, &out, &["--ticks", "1040"])));
    let mut a = coordinator.node("node-a");
    let mut b = coordinator.node("node-b");
    reach(&mut coordinator, 30).await;
    b.kill().expect("kill -9");
    let _ = b.wait();
    coordinator.wait_for_log("node node-b lost at tick");
    let mut c = coordinator.node("node-c");
    let joined = coordinator.wait_for_log("joined at tick");
    let db = coordinator.db.clone();
    let (ok_, stderr) = coordinator.finish();
    assert!(ok_, "{stderr}");
    assert_same_outputs(&reference, &out, "the run with a replacement node");
    let shown = placement(&db);
    println!("{}\n{shown}", joined.last().cloned().unwrap_or_default());
    assert!(shown.contains("node node-c joined"), "{shown}");
    // After the replacement, both nodes run agents (74 and 75 of the 149).
    let last = shown.lines().rev().find(|l| l.contains("node node-c")).unwrap_or_default();
    assert!(last.contains("node node-a") && last.contains("74 agents") && last.contains("75 agents"), "{shown}");
    assert!(wait_with_timeout(&mut a, Duration::from_secs(30)));
    assert!(wait_with_timeout(&mut c, Duration::from_secs(30)));
    let _ = std::fs::remove_dir_all(out);
    let _ = std::fs::remove_dir_all(reference);
}

/// With `--local-fallback`, losing the last node moves every agent to the coordinator itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_runs_the_agents_itself_when_no_node_is_left() {
    let reference = temp_dir("fallback-embedded");
    embedded(SCENARIO, &[], &reference);
    let out = temp_dir("fallback");
    let mut coordinator = Coordinator::start(&strs(&serve_args(SCENARIO, 1, &out, &["--local-fallback"])));
    let mut only = coordinator.node("only");
    reach(&mut coordinator, 20).await;
    only.kill().expect("kill -9");
    let _ = only.wait();
    let db = coordinator.db.clone();
    let (ok_, stderr) = coordinator.finish();
    assert!(ok_, "{stderr}");
    assert!(stderr.contains("the coordinator runs every agent itself"), "{stderr}");
    assert_same_outputs(&reference, &out, "the run finished by the coordinator");
    assert!(placement(&db).contains("coordinator: 149 agents"), "{}", placement(&db));

    // Without the flag, losing the last node stops the run, naming it.
    let out = temp_dir("no-fallback");
    let mut coordinator = Coordinator::start(&strs(&serve_args(SCENARIO, 1, &out, &[])));
    let mut only = coordinator.node("only");
    reach(&mut coordinator, 20).await;
    only.kill().expect("kill -9");
    let _ = only.wait();
    let (ok_, stderr) = coordinator.finish();
    assert!(!ok_);
    assert!(stderr.contains("node only failed at tick"), "{stderr}");
    let _ = std::fs::remove_dir_all(out);
    let _ = std::fs::remove_dir_all(reference);
}

/// The coordinator killed with kill -9 mid-run, then `resume ID --serve` onto two fresh nodes:
/// the finished run is the embedded one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_coordinator_resumes_serving_onto_fresh_nodes() {
    let reference = temp_dir("restart-embedded");
    embedded(SCENARIO, &[], &reference);
    let out = temp_dir("restart");
    let secret = out.join("secret");
    std::fs::write(&secret, "restart-secret-0123456789abcdef\n").expect("secret file");
    let secret_s = secret.display().to_string();
    let args = serve_args(SCENARIO, 2, &out, &["--snapshot-every", "20", "--node-secret-file", &secret_s]);
    let mut coordinator = Coordinator::start(&strs(&args));
    assert!(coordinator.secret.is_empty(), "a secret read from a file is not printed");
    coordinator.secret = "restart-secret-0123456789abcdef".into();
    let mut old: Vec<Child> = ["n1", "n2"].iter().map(|n| coordinator.node(n)).collect();
    let at = reach(&mut coordinator, 150).await;
    coordinator.child.kill().expect("kill -9 the coordinator");
    let _ = coordinator.child.wait();
    for node in &mut old {
        assert!(!wait_with_timeout(node, Duration::from_secs(30)), "a node of the killed coordinator exits non-zero");
    }
    println!("coordinator killed at tick {at}");
    let db = coordinator.db.clone();
    let resume = ["resume", "1", "--serve", "--nodes", "2", "--node-secret-file", &secret_s, "--tick-deadline", "20"];
    let mut resumed = Coordinator::launch(&db, &resume);
    resumed.secret = "restart-secret-0123456789abcdef".into();
    let mut fresh: Vec<Child> = ["fresh-1", "fresh-2"].iter().map(|n| resumed.node(n)).collect();
    let (ok_, stderr) = resumed.finish();
    assert!(ok_, "{stderr}");
    assert_same_outputs(&reference, &out, "the run whose coordinator was killed and resumed with --serve");
    for node in &mut fresh {
        assert!(wait_with_timeout(node, Duration::from_secs(30)));
    }
    let shown = placement(&db);
    assert!(shown.contains("completed") && shown.contains("node fresh-1"), "{shown}");
    let replay = ok(&chokepoint(&db, &["replay", "1"]));
    assert!(replay.contains("all 520 recorded digests match"), "{replay}");
    let _ = std::fs::remove_dir_all(out);
    let _ = std::fs::remove_dir_all(reference);
}

/// Control.Inject on a served run: `toml` with the join secret; the ticks the events take
/// effect at, or the refusal.
async fn inject(url: String, toml: &str, secret: &str) -> Result<Vec<u32>, tonic::Status> {
    let mut control = proto::v1::control_client::ControlClient::connect(url)
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut request = tonic::Request::new(proto::v1::InjectRequest { events_toml: toml.into() });
    request.metadata_mut().insert("authorization", format!("Bearer {secret}").parse().expect("header"));
    Ok(control.inject(request).await?.into_inner().effective_ticks)
}

/// A ban control injected, the coordinator killed with kill -9 after it took effect (and after
/// a snapshot, which keeps no past events), then `resume ID --serve`: a `lift` of the ban is
/// accepted (a lift of a name never defined is still refused), it lifts the ban, and the run
/// replays; a fork from after the ban may lift it as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_served_run_lifts_what_control_injected_before_the_kill() {
    let out = temp_dir("restart-inject");
    let secret = "inject-secret-0123456789abcdef";
    let secret_file = out.join("secret");
    std::fs::write(&secret_file, format!("{secret}\n")).expect("secret file");
    let secret_s = secret_file.display().to_string();
    let args = serve_args(SCENARIO, 1, &out, &["--snapshot-every", "20", "--node-secret-file", &secret_s]);
    let mut coordinator = Coordinator::start(&strs(&args));
    let ban =
        "[[events]]\ntick = 100\nname = \"us-co-ban\"\nnation = \"US\"\naction = \"export_ban\"\ncommodity = \"co\"\n";
    // Sent before the node joins, the inject is taken before the first tick.
    let pending = tokio::spawn(inject(coordinator.url(), ban, secret));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    coordinator.secret = secret.into();
    let mut node = coordinator.node("n1");
    assert_eq!(pending.await.expect("joined").expect("the ban is accepted"), vec![100]);
    let at = reach(&mut coordinator, 150).await;
    coordinator.child.kill().expect("kill -9 the coordinator");
    let _ = coordinator.child.wait();
    assert!(
        !wait_with_timeout(&mut node, Duration::from_secs(30)),
        "the node of the killed coordinator exits non-zero"
    );
    println!("coordinator killed at tick {at}");

    let db = coordinator.db.clone();
    let mut resumed =
        Coordinator::launch(&db, &["resume", "1", "--serve", "--nodes", "1", "--node-secret-file", &secret_s]);
    resumed.secret = secret.into();
    let unknown = "[[events]]\ntick = 400\naction = \"lift\"\ntarget = \"no-such-ban\"\n";
    let refused = inject(resumed.url(), unknown, secret).await.expect_err("a lift of a name never defined");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    let lift = "[[events]]\ntick = 400\naction = \"lift\"\ntarget = \"us-co-ban\"\n";
    let pending = tokio::spawn(inject(resumed.url(), lift, secret));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut fresh = resumed.node("fresh-1");
    let lifted = pending.await.expect("joined");
    assert_eq!(lifted.as_ref().map_err(|e| e.message().to_string()), Ok(&vec![400]), "the lift of the injected ban");
    let (ok_, stderr) = resumed.finish();
    assert!(ok_, "{stderr}");
    assert!(wait_with_timeout(&mut fresh, Duration::from_secs(30)));
    let events = std::fs::read_to_string(out.join("events.csv")).expect("events.csv");
    assert!(events.lines().any(|l| l.contains("lifted us-co-ban")), "the ban was lifted:\n{events}");
    let replay = ok(&chokepoint(&db, &["replay", "1"]));
    assert!(replay.contains("all 520 recorded digests match"), "{replay}");
    // A fork past the ban (restored from a snapshot after it) may lift it too.
    let early = out.join("early-lift.toml");
    std::fs::write(&early, "[[events]]\ntick = 300\naction = \"lift\"\ntarget = \"us-co-ban\"\n").expect("events");
    let fork_out = out.join("fork");
    let fork = ["fork", "1", "--at", "250", "--quiet", "--events", &early.display().to_string()];
    ok(&chokepoint(&db, &[&fork[..], &["--out", &fork_out.display().to_string()]].concat()));
    let events = std::fs::read_to_string(fork_out.join("events.csv")).expect("the fork's events.csv");
    assert!(events.lines().any(|l| l.starts_with("300,") && l.contains("lifted us-co-ban")), "{events}");
    let _ = std::fs::remove_dir_all(out);
}
