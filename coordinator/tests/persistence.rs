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

    let mut child = common::command(
        &db,
        [
            "run",
            &scenario("baseline-2024.toml"),
            "--ticks",
            "300",
            "--snapshot-every",
            "10",
            "--quiet",
            "--out",
            &crashed.display().to_string(),
        ],
    )
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
    // sled reads it as a copy (rebuilding its index from the log when it must), or refuses it
    // in one sentence; either way the damaged files stay as they were.
    let out = chokepoint(&db, &["runs"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        assert!(stderr.contains("reading a copy") && stderr.contains("leaving it as it is"), "{stderr}");
    } else {
        assert!(stderr.contains(&format!("the database at {} is damaged", db.display())), "{stderr}");
        assert!(stderr.contains("db salvage"), "{stderr}");
    }
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
    let mut port = 0;
    let secret = loop {
        let line = lines.next_line().await.unwrap().expect("the coordinator prints its address and secret");
        if let Some(rest) = line.split("listening on ").nth(1) {
            port = rest.split(';').next().unwrap().rsplit(':').next().unwrap().parse::<u16>().unwrap();
        }
        if let Some(rest) = line.split("CHOKEPOINT_NODE_SECRET=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let url = format!("http://127.0.0.1:{port}");
    let mut control = v1::control_client::ControlClient::connect(url.clone()).await.expect("connect");
    let request = |toml: &str, secret: &str| {
        let mut r = tonic::Request::new(v1::InjectRequest { events_toml: toml.into() });
        r.metadata_mut().insert("authorization", format!("Bearer {secret}").parse().expect("header"));
        r
    };
    let ban = "[[events]]\ntick = 12\nname = \"aa-ban\"\nnation = \"AA\"\naction = \"export_ban\"\ncommodity = \"co\"\nstage = \"ore\"\n";
    // An inject without the join secret, or with a wrong one, is refused and changes nothing.
    let e = control.inject(v1::InjectRequest { events_toml: ban.into() }).await.expect_err("no secret");
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    let e = control.inject(request(ban, "not-the-secret")).await.expect_err("wrong secret");
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    // An invalid inject is refused with the reason and changes nothing.
    let bad = control
        .inject(request(
            "[[events]]\ntick = 12\nnation = \"ZZ\"\naction = \"export_ban\"\ncommodity = \"co\"\n",
            &secret,
        ))
        .await;
    assert_eq!(bad.as_ref().unwrap_err().code(), tonic::Code::InvalidArgument);
    assert!(bad.unwrap_err().message().contains("unknown nation \"ZZ\""));
    // A valid one is scheduled once the run starts.
    let valid = request(ban, &secret);
    let inject = tokio::spawn(async move { control.inject(valid).await });
    // Give the inject time to reach the coordinator's inbox before the run starts (it is taken
    // before the first tick, and must be before tick 12).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let node = tokio::process::Command::new(env!("CARGO_BIN_EXE_agent-node"))
        .args(["--coordinator", &url, "--name", "n"])
        .env("CHOKEPOINT_NODE_SECRET", &secret)
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

/// Waits until `file` has at least `rows` lines (or panics after a minute).
fn wait_for_rows(file: &Path, rows: usize) {
    let start = std::time::Instant::now();
    while std::fs::read_to_string(file).map(|t| t.lines().count()).unwrap_or(0) < rows {
        assert!(start.elapsed() < Duration::from_secs(60), "{} never reached {rows} rows", file.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `chokepoint --db DB ARGS...` started in `dir`.
fn chokepoint_in(dir: &Path, db: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_chokepoint"))
        .current_dir(dir)
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("runs")
}

/// While a run holds the database, the read-only verbs are answered by it (files land where
/// the asking command was started); other verbs name the process. SIGTERM then stops it like
/// Ctrl-C: outputs flushed to the last tick, the run recorded as interrupted, exit status 143.
#[test]
fn a_running_run_answers_reads_and_stops_cleanly_on_sigterm() {
    let root = temp_dir("live");
    let db = root.join("db");
    let client = root.join("client");
    std::fs::create_dir_all(&client).unwrap();
    let out = root.join("o");
    let start =
        |args: &[&str]| common::command(&db, args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start");
    let o = out.display().to_string();
    let mut child = start(&[
        "run",
        &scenario("baseline-2024.toml"),
        "--ticks",
        "100000",
        "--snapshot-every",
        "5",
        "--quiet",
        "--out",
        &o,
    ]);
    wait_for_rows(&out.join("digests.csv"), 12);

    let runs = ok(&chokepoint(&db, &["runs"]));
    assert!(runs.lines().any(|l| l.trim_start().starts_with("1 ") && l.contains(" running ")), "{runs}");
    let shown = ok(&chokepoint(&db, &["runs", "show", "1"]));
    assert!(shown.contains("status       running"), "{shown}");
    let state = ok(&chokepoint_in(&client, &db, &["state", "1", "--at", "5", "--json", "s.json"]));
    assert!(state.contains("written to") && client.join("s.json").exists(), "{state}");
    assert!(std::fs::read_to_string(client.join("s.json")).unwrap().contains("\"tick\": 5"));
    ok(&chokepoint_in(&client, &db, &["report", "1", "--out", "rep"]));
    assert!(client.join("rep/index.html").exists());
    ok(&chokepoint_in(&client, &db, &["export", "1", "--format", "csv", "--out", "exp"]));
    assert!(client.join("exp/prices.csv").exists());
    let refused = chokepoint(&db, &["replay", "1"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains(&format!("in use by process {}", child.id())), "{stderr}");

    common::signal(&child, libc::SIGTERM);
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(143), "SIGTERM gives exit status 143");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("interrupted by SIGTERM") && stderr.contains("resume 1"), "{stderr}");
    let shown = ok(&chokepoint(&db, &["runs", "show", "1"]));
    assert!(shown.contains("status       interrupted\n"), "{shown}");
    // Every tick run is in the outputs, whole.
    let done: usize = shown
        .lines()
        .find_map(|l| l.trim().strip_prefix("ticks"))
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .expect("ticks done");
    let digests = std::fs::read_to_string(out.join("digests.csv")).unwrap();
    assert_eq!(digests.lines().count(), done + 1, "digests.csv holds every tick run");
    for f in common::OUTPUT_FILES {
        let text = std::fs::read_to_string(out.join(f)).unwrap();
        assert!(text.ends_with('\n'), "{f} ends in a torn row");
    }
    assert!(db.join("chokepoint.closed").exists(), "the database was closed cleanly");

    // A resume stopped the same way continues the same files without a gap or a repeat.
    let mut child = start(&["resume", "1", "--quiet"]);
    wait_for_rows(&out.join("digests.csv"), done + 10);
    common::signal(&child, libc::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(143));
    common::assert_every_tick_once(&out.join("digests.csv"));
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_coordinator_stopped_by_sigterm_records_the_run_interrupted() {
    let root = temp_dir("serve-term");
    let db = root.join("db");
    let mut child =
        common::command(&db, ["serve", &scenario("tiny.toml"), "--listen", "127.0.0.1:0", "--nodes", "1", "--quiet"])
            .args(["--out", &root.join("o").display().to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    assert!(lines.any(|l| l.is_ok_and(|l| l.contains("listening on"))), "the coordinator starts");
    common::signal(&child, libc::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(143));
    let shown = ok(&chokepoint(&db, &["runs", "show", "1"]));
    assert!(shown.contains("status       interrupted"), "{shown}");
    let _ = std::fs::remove_dir_all(root);
}

/// Outputs on a disk that fills up: the run fails at once with the file and the OS error, is
/// recorded as failed with that reason, and once there is room, `resume` finishes it with the
/// same bytes as a run that never failed.
#[test]
fn a_full_disk_under_the_outputs_fails_the_run_and_names_the_file() {
    let root = temp_dir("full-out");
    let db = root.join("db");
    let mut disk = common::SmallDisk::new("full-out", 64);
    disk.fill_up("o/trades.csv");
    let out = disk.dir.join("o");
    let o = out.display().to_string();
    let failed = chokepoint(&db, &["run", &scenario("tiny.toml"), "--snapshot-every", "10", "--quiet", "--out", &o]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "a run whose outputs cannot be written fails");
    assert!(stderr.contains(&format!("cannot write {o}/")), "names the file: {stderr}");
    assert!(stderr.contains("No space left on device (os error 28)"), "{stderr}");
    let shown = ok(&chokepoint(&db, &["runs", "show", "1"]));
    assert!(shown.contains("status       failed — cannot write") && shown.contains("No space left"), "{shown}");

    disk.grow(8192);
    ok(&chokepoint(&db, &["resume", "1", "--quiet"]));
    let clean = root.join("clean");
    ok(&chokepoint(
        &root.join("db2"),
        &["run", &scenario("tiny.toml"), "--quiet", "--out", &clean.display().to_string()],
    ));
    for f in common::OUTPUT_FILES {
        assert!(
            std::fs::read(out.join(f)).unwrap() == std::fs::read(clean.join(f)).unwrap(),
            "{f} differs after the resume"
        );
    }
    let _ = std::fs::remove_dir_all(root);
}

/// The database on a disk that fills up: the error is one sentence about the database file,
/// sled's own words never reach the user, and once there is room the database works again
/// (on a tmpfs, where the run's start was recorded, the run resumes to the end).
#[test]
fn a_full_disk_under_the_database_gets_one_sentence() {
    let root = temp_dir("full-db");
    let mut disk = common::SmallDisk::new("full-db", 128);
    disk.fill_up("db/db");
    let db = disk.dir.join("db");
    let out = root.join("o").display().to_string();
    let failed = chokepoint(&db, &["run", &scenario("baseline-2024.toml"), "--ticks", "60", "--quiet", "--out", &out]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one sentence: {stderr}");
    let sentence =
        format!("the database file {}/db could not be read or written: No space left on device", db.display());
    assert!(stderr.contains(&sentence), "{stderr}");
    for raw in ["Os {", "Some(", "backtrace", "panicked", "sled::"] {
        assert!(!stderr.contains(raw), "raw sled error text {raw:?}: {stderr}");
    }
    disk.grow(65536);
    if disk.mounted {
        let runs = ok(&chokepoint(&db, &["runs"]));
        assert!(runs.contains("resume 1`"), "{runs}");
        let resumed = ok(&chokepoint(&db, &["resume", "1", "--quiet"]));
        assert!(resumed.contains("resumed to tick 60 (completed)"), "{resumed}");
        ok(&chokepoint(&db, &["replay", "1"]));
    } else {
        ok(&chokepoint(&db, &["run", &scenario("tiny.toml"), "--quiet", "--out", &out]));
    }
    let _ = std::fs::remove_dir_all(root);
}
