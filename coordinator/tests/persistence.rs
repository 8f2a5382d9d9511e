//! Persistence and time travel with the real binary and a real sled database: a run killed
//! with SIGKILL and resumed ends bit-for-bit like one never interrupted; replay checks every
//! digest and names the tick where a tampered journal makes it diverge; forks reproduce or
//! diverge as they should; a damaged snapshot falls back to the one before; a locked or
//! corrupted database gets a clear error.

use coordinator::store::{JournalInput, RunId, Store};
use proto::v1;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{chokepoint, ok, scenario, temp_dir};

fn digests(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("digests.csv")).expect("digests.csv").lines().skip(1).map(String::from).collect()
}

#[test]
fn a_killed_run_resumes_to_the_same_bits() {
    let root = temp_dir("crash");
    let db = root.join("db");
    let (whole, crashed) = (root.join("whole"), root.join("crashed"));
    ok(&chokepoint(
        &db,
        &[
            "run",
            &scenario("baseline-2024.toml"),
            "--ticks",
            "300",
            "--snapshot-every",
            "10",
            "--quiet",
            "--out",
            &whole.display().to_string(),
        ],
    ));

    let mut child = Command::new(env!("CARGO_BIN_EXE_chokepoint"))
        .arg("--db")
        .arg(&db)
        .args([
            "run",
            &scenario("baseline-2024.toml"),
            "--ticks",
            "300",
            "--snapshot-every",
            "10",
            "--quiet",
            "--out",
            &crashed.display().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the run");
    // Wait until a few snapshots are on disk, then kill -9.
    let start = std::time::Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let rows = std::fs::read_to_string(crashed.join("digests.csv")).map(|t| t.lines().count()).unwrap_or(0);
        if rows > 40 || start.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert!(digests(&crashed).len() < 300, "the run was killed before it finished");

    // No process runs it any more, and `runs` says so, and how to continue it.
    let runs = ok(&chokepoint(&db, &["runs"]));
    assert!(
        runs.lines().any(|l| l.trim_start().starts_with("2 ") && l.contains("interrupted (process ended)")),
        "{runs}"
    );
    assert!(runs.contains("resume 2`"), "{runs}");
    // Resumed from another folder, it continues its own outputs (recorded as an absolute path).
    let elsewhere = root.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let resumed = Command::new(env!("CARGO_BIN_EXE_chokepoint"))
        .current_dir(&elsewhere)
        .arg("--db")
        .arg(&db)
        .args(["resume", "2", "--quiet"])
        .output()
        .expect("resume");
    let resumed = ok(&resumed);
    assert!(resumed.contains("resumed to tick 300 (completed)"), "{resumed}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "resume wrote outputs where it was started");
    for f in
        ["digests.csv", "markets.csv", "trades.csv", "stockpiles.csv", "shortages.csv", "events.csv", "nations.csv"]
    {
        assert!(
            std::fs::read(whole.join(f)).unwrap() == std::fs::read(crashed.join(f)).unwrap(),
            "{f} differs after resume"
        );
    }
    ok(&chokepoint(&db, &["replay", "2"]));
    let again = chokepoint(&db, &["resume", "2"]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("is complete"));
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn forks_reproduce_or_diverge_from_the_branch_tick() {
    let root = temp_dir("fork");
    let db = root.join("db");
    let out = |n: &str| root.join(n).display().to_string();
    ok(&chokepoint(&db, &["run", &scenario("tiny.toml"), "--quiet", "--out", &out("parent")]));
    let same = ok(&chokepoint(&db, &["fork", "1", "--at", "25", "--quiet", "--out", &out("same")]));
    assert!(same.contains("Run 2 forked from run 1 at tick 25"), "{same}");
    let parent = digests(&root.join("parent"));
    assert_eq!(digests(&root.join("same")), parent[25..].to_vec(), "a fork without changes continues its parent");

    // The counterfactual: the quota of tick 20 lifted early, at tick 30 instead of 45.
    let events = root.join("events.toml");
    std::fs::write(&events, "[[events]]\ntick = 30\naction = \"lift\"\ntarget = \"bb-dy-quota\"\n").unwrap();
    ok(&chokepoint(
        &db,
        &["fork", "1", "--at", "25", "--events", &events.display().to_string(), "--quiet", "--out", &out("changed")],
    ));
    let changed = digests(&root.join("changed"));
    let first = changed.iter().zip(&parent[25..]).position(|(a, b)| a != b).expect("the forks diverge");
    assert_eq!(first, 29 - 25, "the lift at tick 30 is applied at the end of tick 29");
    let shows = ok(&chokepoint(&db, &["runs", "show", "3"]));
    assert!(
        shows.contains("forked from  run 1 at tick 25") && shows.contains("replaced after the branch tick"),
        "{shows}"
    );
    ok(&chokepoint(&db, &["replay", "3"]));

    // Bad fork requests are refused clearly.
    std::fs::write(&events, "[[events]]\ntick = 10\naction = \"lift\"\ntarget = \"bb-dy-quota\"\n").unwrap();
    let early = chokepoint(&db, &["fork", "1", "--at", "25", "--events", &events.display().to_string()]);
    assert!(!early.status.success() && String::from_utf8_lossy(&early.stderr).contains("already passed"));
    let beyond = chokepoint(&db, &["fork", "1", "--at", "500"]);
    assert!(!beyond.status.success() && String::from_utf8_lossy(&beyond.stderr).contains("beyond"));
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn state_at_any_tick_matches_the_recorded_digest() {
    let root = temp_dir("state");
    let db = root.join("db");
    ok(&chokepoint(&db, &["run", &scenario("tiny.toml"), "--quiet", "--out", &root.join("o").display().to_string()]));
    let recorded = digests(&root.join("o"));
    for at in [1u32, 17, 26, 40, 60] {
        let json = root.join(format!("s{at}.json"));
        ok(&chokepoint(&db, &["state", "1", "--at", &at.to_string(), "--json", &json.display().to_string()]));
        let text = std::fs::read_to_string(&json).unwrap();
        // The state at the start of tick `at` is the state after tick at-1.
        let want = recorded[at as usize - 1].split(',').nth(1).unwrap();
        assert!(text.contains(&format!("\"digest\": \"{want}\"")), "state at {at} has another digest");
        assert!(text.contains(&format!("\"tick\": {at}")));
    }
    let printed = ok(&chokepoint(&db, &["state", "1", "--at", "30"]));
    assert!(printed.contains("at the start of tick 30") && printed.contains("dy refined"), "{printed}");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_damaged_snapshot_falls_back_to_the_previous_one() {
    let root = temp_dir("torn");
    let db = root.join("db");
    ok(&chokepoint(
        &db,
        &[
            "run",
            &scenario("tiny.toml"),
            "--ticks",
            "40",
            "--snapshot-every",
            "10",
            "--quiet",
            "--out",
            &root.join("o").display().to_string(),
        ],
    ));
    {
        let store = Store::open(&db).expect("open");
        assert_eq!(store.snapshot_ticks(RunId(1)).unwrap(), vec![0, 10, 20, 30, 40]);
        // Tear the snapshot at tick 30: keep its header, cut its body.
        store.put_raw_snapshot(RunId(1), 30, b"CKPT\x00\x01 torn").unwrap();
    }
    let out = chokepoint(&db, &["replay", "1", "--from", "35"]);
    let stdout = ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("snapshot of run 1 at tick 30 is damaged"), "{stderr}");
    assert!(stdout.contains("from the snapshot at tick 20"), "{stdout}");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn locked_and_corrupted_databases_get_clear_errors() {
    let root = temp_dir("locks");
    let db = root.join("db");
    ok(&chokepoint(
        &db,
        &["run", &scenario("tiny.toml"), "--ticks", "5", "--quiet", "--out", &root.join("o").display().to_string()],
    ));
    {
        let _held = Store::open(&db).expect("open");
        let out = chokepoint(&db, &["replay", "1"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains(&format!("is in use by process {}", std::process::id())), "{stderr}");
        assert!(!stderr.contains("panicked"));
    }
    ok(&chokepoint(&db, &["runs"]));
    // Overwrite the start of sled's data file: the database is refused in one sentence, and
    // left byte for byte as it was.
    let data = db.join("db");
    let mut bytes = std::fs::read(&data).unwrap();
    for (i, b) in bytes.iter_mut().take(4096).enumerate() {
        *b = (i * 7 + 13) as u8;
    }
    std::fs::write(&data, bytes).unwrap();
    let damaged = common::files(&db);
    let out = chokepoint(&db, &["runs"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("the database at {} is damaged", db.display())), "{stderr}");
    assert!(stderr.contains("db salvage"), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("Some("), "{stderr}");
    assert!(common::files(&db) == damaged, "reading a damaged database changed it");
    let _ = std::fs::remove_dir_all(root);
}

/// A served run with a control inject, journaled; tampering with the journal entry makes replay
/// fail at the inject's tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_names_the_tick_of_a_tampered_journal_entry() {
    let root = temp_dir("journal");
    let db = root.join("db");
    let mut coordinator = tokio::process::Command::new(env!("CARGO_BIN_EXE_chokepoint"))
        .arg("--db")
        .arg(&db)
        .args([
            "serve",
            &scenario("tiny.toml"),
            "--listen",
            "127.0.0.1:0",
            "--nodes",
            "1",
            "--quiet",
            "--out",
            &root.join("o").display().to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("serve");
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(coordinator.stdout.take().unwrap()).lines();
    let port = loop {
        let line = lines.next_line().await.unwrap().expect("the coordinator prints its address");
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split(';').next().unwrap().rsplit(':').next().unwrap().parse::<u16>().unwrap();
        }
    };
    let url = format!("http://127.0.0.1:{port}");
    let mut control = v1::control_client::ControlClient::connect(url.clone()).await.expect("connect");
    // An invalid inject is refused with the reason and changes nothing.
    let bad = control
        .inject(v1::InjectRequest {
            events_toml: "[[events]]\ntick = 12\nnation = \"ZZ\"\naction = \"export_ban\"\ncommodity = \"co\"\n".into(),
        })
        .await;
    assert_eq!(bad.as_ref().unwrap_err().code(), tonic::Code::InvalidArgument);
    assert!(bad.unwrap_err().message().contains("unknown nation \"ZZ\""));
    // A valid one is scheduled once the run starts.
    let inject = tokio::spawn(async move {
        control
            .inject(v1::InjectRequest { events_toml: "[[events]]\ntick = 12\nname = \"aa-ban\"\nnation = \"AA\"\naction = \"export_ban\"\ncommodity = \"co\"\nstage = \"ore\"\n".into() })
            .await
    });
    // Give the inject time to reach the coordinator's inbox before the run starts (it is taken
    // before the first tick, and must be before tick 12).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let node = tokio::process::Command::new(env!("CARGO_BIN_EXE_agent-node"))
        .args(["--coordinator", &url, "--name", "n"])
        .stderr(Stdio::null())
        .status();
    let (node, reply) = tokio::join!(node, inject);
    assert!(node.expect("node ran").success());
    assert_eq!(reply.unwrap().expect("inject accepted").into_inner().effective_ticks, vec![12]);
    assert!(coordinator.wait().await.unwrap().success());

    ok(&chokepoint(&db, &["replay", "1"]));
    {
        let store = Store::open(&db).expect("open");
        let journal = store.journal(RunId(1)).unwrap();
        assert_eq!(journal.len(), 1);
        assert_eq!(journal[0].source, "control");
        let mut entry = journal[0].clone();
        let JournalInput::Inject(event) = &mut entry.input else { panic!("the journaled input is an inject") };
        use engine::scenario::{EventKind, Partners, Restriction};
        event.kind = match &event.kind {
            EventKind::Restrict(Restriction::ExportBan { nation, market, .. }) => {
                EventKind::Restrict(Restriction::ExportBan {
                    nation: *nation,
                    market: *market,
                    to: Partners::Only(vec![agents::NationId(1)]),
                })
            }
            other => panic!("unexpected {other:?}"),
        };
        store.put_raw_journal(RunId(1), entry.tick, entry.seq, &serde_json::to_vec(&entry).unwrap()).unwrap();
    }
    let out = chokepoint(&db, &["replay", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a tampered journal must fail replay");
    assert!(stderr.contains("diverges at tick 11"), "the ban of tick 12 is applied at the end of tick 11: {stderr}");
    assert!(stderr.contains("restrictions"), "names what differs: {stderr}");
    let _ = std::fs::remove_dir_all(root);
}
