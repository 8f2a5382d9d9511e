//! Research at scale: a sweep's results equal single runs of the same seeds, whatever the
//! number of jobs; an interrupted or extended sweep skips the runs it finished; synthetic worlds
//! pass scenario validation and run.

mod common;
use common::{chokepoint, fresh_db, ok, scenario, temp_dir};

fn max_refined_price(markets_csv: &str, commodity: &str) -> f64 {
    markets_csv
        .lines()
        .filter(|l| l.contains(&format!(",{commodity},refined,")))
        .map(|l| l.split(',').nth(3).unwrap().parse::<i64>().unwrap())
        .max()
        .unwrap() as f64
        / 100.0
}

#[test]
fn sweep_results_equal_single_runs_and_resume_skips_finished_runs() {
    let root = temp_dir("sweep");
    let db = fresh_db();
    let one = root.join("one");
    let two = root.join("two");
    let printed = ok(&chokepoint(
        &db,
        &[
            "sweep",
            &scenario("tiny.toml"),
            "--seeds",
            "1..3",
            "--set",
            "stockpile.CC.target_days=30,180",
            "--jobs",
            "1",
            "--quiet",
            "--out",
            &one.display().to_string(),
        ],
    ));
    assert!(printed.contains("6 runs done, 0 already finished"), "{printed}");
    ok(&chokepoint(
        &db,
        &[
            "sweep",
            &scenario("tiny.toml"),
            "--seeds",
            "1..3",
            "--set",
            "stockpile.CC.target_days=30,180",
            "--jobs",
            "3",
            "--quiet",
            "--out",
            &two.display().to_string(),
        ],
    ));
    let runs_one = std::fs::read_to_string(one.join("runs.csv")).unwrap();
    assert_eq!(
        runs_one,
        std::fs::read_to_string(two.join("runs.csv")).unwrap(),
        "the number of jobs changed the results"
    );
    assert_eq!(std::fs::read(one.join("summary.csv")).unwrap(), std::fs::read(two.join("summary.csv")).unwrap());

    // Seed 2 with the scenario's own target (90 days for CC's dy) run alone.
    let single = root.join("single");
    ok(&chokepoint(
        &db,
        &["run", &scenario("tiny.toml"), "--seed", "2", "--quiet", "--out", &single.display().to_string()],
    ));
    let alone = max_refined_price(&std::fs::read_to_string(single.join("markets.csv")).unwrap(), "dy");
    let swept = root.join("swept");
    ok(&chokepoint(
        &db,
        &["sweep", &scenario("tiny.toml"), "--seeds", "2", "--quiet", "--out", &swept.display().to_string()],
    ));
    let runs = std::fs::read_to_string(swept.join("runs.csv")).unwrap();
    let row = runs.lines().find(|l| l.starts_with("2,peak_price_usd_per_kg,dy,")).expect("a dy peak row");
    let value: f64 = row.rsplit(',').next().unwrap().parse().unwrap();
    assert!((value - alone).abs() < 1e-9, "sweep says {value}, the single run {alone}");

    // Extending the seeds reuses the finished runs.
    let again = ok(&chokepoint(
        &db,
        &[
            "sweep",
            &scenario("tiny.toml"),
            "--seeds",
            "1..4",
            "--set",
            "stockpile.CC.target_days=30,180",
            "--quiet",
            "--out",
            &one.display().to_string(),
        ],
    ));
    assert!(again.contains("2 runs done, 6 already finished and skipped"), "{again}");
    let summary = std::fs::read_to_string(one.join("summary.csv")).unwrap();
    assert!(
        summary.starts_with("stockpile.CC.target_days,parameters,outcome,subject,runs,mean,median,p5,p95"),
        "{summary}"
    );
    assert!(summary.contains("180,stockpile.CC.target_days=180,peak_price_usd_per_kg,dy,4,"), "{summary}");
    // No sentinel for "none": a run that ends before tiny's quota (tick 20) has no first
    // restriction, so an empty value, never -1.
    let short = root.join("short");
    ok(&chokepoint(
        &db,
        &[
            "sweep",
            &scenario("tiny.toml"),
            "--seeds",
            "1",
            "--ticks",
            "10",
            "--quiet",
            "--out",
            &short.display().to_string(),
        ],
    ));
    let runs = std::fs::read_to_string(short.join("runs.csv")).unwrap();
    assert!(runs.lines().any(|l| l == "1,first_restriction_tick,world,"), "{runs}");
    assert!(one.join("runs.parquet").exists() && one.join("summary.parquet").exists());

    let bad = chokepoint(
        &db,
        &[
            "sweep",
            &scenario("tiny.toml"),
            "--seeds",
            "1..2",
            "--set",
            "stockpile.ZZ.target_days=3",
            "--out",
            &root.join("bad").display().to_string(),
        ],
    );
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("unknown nation ZZ"));
    let _ = std::fs::remove_dir_all(root);
    let _ = std::fs::remove_dir_all(db);
}

#[test]
fn synthetic_worlds_pass_validation_and_run() {
    let root = temp_dir("synth");
    let db = fresh_db();
    for (nations, agents) in [("5", "60"), ("40", "2000")] {
        let file = root.join(format!("synth-{agents}.toml"));
        let printed = ok(&chokepoint(
            &db,
            &["synth", "--nations", nations, "--agents", agents, "--ticks", "8", "--out", &file.display().to_string()],
        ));
        assert!(printed.contains(&format!("{nations} nations, 9 commodities, {agents} agents")), "{printed}");
        ok(&chokepoint(&db, &["check", &file.display().to_string()]));
        let out = ok(&chokepoint(
            &db,
            &["run", &file.display().to_string(), "--quiet", "--out", &root.join(agents).display().to_string()],
        ));
        assert!(out.contains("Rejected actions: 0"), "{out}");
    }
    // The same parameters give the same file.
    let (a, b) = (root.join("a.toml"), root.join("b.toml"));
    ok(&chokepoint(&db, &["synth", "--nations", "7", "--agents", "300", "--out", &a.display().to_string()]));
    ok(&chokepoint(&db, &["synth", "--nations", "7", "--agents", "300", "--out", &b.display().to_string()]));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let bad = chokepoint(&db, &["synth", "--nations", "1", "--agents", "10", "--out", &a.display().to_string()]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("--nations"));

    // A [synthetic] scenario runs as the written file does, on one decision thread or three
    // (7,000 agents: three threads of 2,048 or more), with the same final digest.
    let written = root.join("written.toml");
    ok(&chokepoint(
        &db,
        &[
            "synth",
            "--nations",
            "30",
            "--agents",
            "7000",
            "--seed",
            "2",
            "--ticks",
            "3",
            "--out",
            &written.display().to_string(),
        ],
    ));
    let short = root.join("short.toml");
    std::fs::write(
        &short,
        "[scenario]\nname = \"synth-30n-7000a\"\ndescription = \"Synthetic world for scale tests\"\nseed = 2\nticks = 3\n\n[synthetic]\nnations = 30\nagents = 7000\n",
    )
    .unwrap();
    let digest = |file: &std::path::Path, threads: &str, out: &str| {
        let printed = ok(&chokepoint(
            &db,
            &[
                "run",
                &file.display().to_string(),
                "--quiet",
                "--threads",
                threads,
                "--out",
                &root.join(out).display().to_string(),
            ],
        ));
        printed.lines().find(|l| l.starts_with("Final state digest")).map(str::to_string).expect("digest printed")
    };
    let reference = digest(&written, "1", "w1");
    assert_eq!(reference, digest(&short, "1", "s1"), "[synthetic] differs from the written world");
    assert_eq!(reference, digest(&short, "3", "s3"), "three decision threads differ from one");
    let bad = chokepoint(&db, &["run", &short.display().to_string(), "--threads", "0"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("--threads"));
    let _ = std::fs::remove_dir_all(root);
    let _ = std::fs::remove_dir_all(db);
}

/// `chokepoint sweep tiny.toml ARGS... --quiet --out DIR`.
fn sweep_args<'a>(dir: &'a str, more: &[&'a str]) -> Vec<String> {
    let mut args = vec!["sweep".to_string(), scenario("tiny.toml")];
    args.extend(more.iter().map(|s| s.to_string()));
    args.extend(["--quiet".to_string(), "--out".to_string(), dir.to_string()]);
    args
}

fn sweep(db: &std::path::Path, dir: &std::path::Path, more: &[&str]) -> std::process::Output {
    let d = dir.display().to_string();
    let args = sweep_args(&d, more);
    chokepoint(db, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The rows of runs.csv for `outcome`.
fn rows_of(dir: &std::path::Path, outcome: &str) -> usize {
    std::fs::read_to_string(dir.join("runs.csv"))
        .unwrap()
        .lines()
        .filter(|l| l.contains(&format!(",{outcome},")))
        .count()
}

#[test]
fn a_sweep_is_resumed_by_its_cells_whatever_the_flags() {
    let root = temp_dir("cells");
    let db = fresh_db();
    let dir = root.join("s");
    // Without --set, a second sweep does nothing again and counts each run once.
    let first = ok(&sweep(&db, &dir, &["--seeds", "1..20", "--ticks", "2"]));
    assert!(first.contains("20 runs done, 0 already finished"), "{first}");
    let again = ok(&sweep(&db, &dir, &["--seeds", "1..20", "--ticks", "2", "--jobs", "1"]));
    assert!(again.contains("0 runs done, 20 already finished and skipped"), "{again}");
    assert_eq!(rows_of(&dir, "first_restriction_tick"), 20, "every seed once in runs.csv");
    let summary = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    assert!(summary.contains(",shortage_days,AA,20,"), "{summary}");
    // No restriction comes in two ticks: the tick is an empty cell in runs.csv (also when read
    // back from the cells), and no run has a value to summarize.
    let runs = std::fs::read_to_string(dir.join("runs.csv")).unwrap();
    assert!(runs.lines().filter(|l| l.contains(",first_restriction_tick,")).all(|l| l.ends_with(",world,")), "{runs}");
    assert!(!summary.contains(",first_restriction_tick,"), "{summary}");

    // Another length is another configuration: nothing is reused, and the sweep says so.
    let longer = ok(&sweep(&db, &dir, &["--seeds", "1..20", "--ticks", "3"]));
    assert!(longer.contains("20 runs done, 0 already finished"), "{longer}");
    assert!(longer.contains("20 finished runs of other configurations"), "{longer}");
    // So is another scenario text (a comment added), and another parameter value; the order
    // of --set flags is not.
    let edited = root.join("tiny-edited.toml");
    std::fs::write(&edited, format!("# edited\n{}", std::fs::read_to_string(scenario("tiny.toml")).unwrap())).unwrap();
    let d = dir.display().to_string();
    let other_text = ok(&chokepoint(
        &db,
        &["sweep", &edited.display().to_string(), "--seeds", "1..3", "--ticks", "2", "--quiet", "--out", &d],
    ));
    assert!(other_text.contains("3 runs done, 0 already finished"), "{other_text}");
    let two = [
        "--seeds",
        "1..2",
        "--ticks",
        "2",
        "--set",
        "stockpile.CC.target_days=30",
        "--set",
        "stockpile.BB.target_days=60",
    ];
    assert!(ok(&sweep(&db, &dir, &two)).contains("2 runs done, 0 already"));
    let swapped = [
        "--seeds",
        "1..2",
        "--ticks",
        "2",
        "--set",
        "stockpile.BB.target_days=60",
        "--set",
        "stockpile.CC.target_days=30",
    ];
    assert!(ok(&sweep(&db, &dir, &swapped)).contains("0 runs done, 2 already finished"));

    // A damaged record is noticed and its run done again.
    let small = root.join("small");
    ok(&sweep(&db, &small, &["--seeds", "1..3", "--ticks", "2"]));
    let tables = std::fs::read(small.join("runs.csv")).unwrap();
    let cell = std::fs::read_dir(small.join("cells")).unwrap().flatten().next().unwrap().path();
    let text = std::fs::read_to_string(&cell).unwrap();
    std::fs::write(&cell, text.replacen(",0\n", ",7\n", 1)).unwrap();
    let redone = sweep(&db, &small, &["--seeds", "1..3", "--ticks", "2"]);
    assert!(ok(&redone).contains("1 runs done, 2 already finished"));
    assert!(String::from_utf8_lossy(&redone.stderr).contains("was damaged (its checksum does not match)"));
    assert_eq!(std::fs::read(small.join("runs.csv")).unwrap(), tables);
    let _ = std::fs::remove_dir_all(root);
    let _ = std::fs::remove_dir_all(db);
}

/// A small random-number generator for the test's kill times (the seed is printed, and
/// `CHOKEPOINT_TEST_SEED` replays it).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

#[test]
fn twenty_kills_during_a_sweep_leave_the_tables_of_a_clean_sweep() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let root = temp_dir("kills");
    let db = fresh_db();
    let more = ["--seeds", "1..60", "--set", "stockpile.CC.target_days=30,180", "--ticks", "5", "--jobs", "2"];
    let clean = root.join("clean");
    let started = std::time::Instant::now();
    ok(&sweep(&db, &clean, &more));
    let whole_ms = started.elapsed().as_millis() as u64;

    // A different seed each time (the test process's id and its clock), unless one is given.
    let seed = std::env::var("CHOKEPOINT_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()) << 32 | u64::from(started.elapsed().subsec_nanos()));
    println!("kill times from CHOKEPOINT_TEST_SEED={seed}");
    let mut rng = Lcg(seed);
    let killed = root.join("killed");
    let d = killed.display().to_string();
    let args = sweep_args(&d, &more);
    for i in 0..20 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chokepoint"))
            .arg("--db")
            .arg(&db)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sweep");
        if i < 14 {
            // Anywhere in the runs.
            std::thread::sleep(std::time::Duration::from_millis(rng.below(whole_ms) + 5));
        } else {
            // While it writes the tables: right after it says it starts to.
            let stdout = child.stdout.take().unwrap();
            let _ = std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .find(|l| l.starts_with("Writing runs.csv"));
            std::thread::sleep(std::time::Duration::from_micros(rng.below(20_000)));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    let last = ok(&sweep(&db, &killed, &more));
    assert!(last.contains("0 failed"), "{last}");
    for f in ["runs.csv", "summary.csv"] {
        assert!(
            std::fs::read(clean.join(f)).unwrap() == std::fs::read(killed.join(f)).unwrap(),
            "{f} differs from the clean sweep's (kill times from CHOKEPOINT_TEST_SEED={seed})"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(&killed)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let _ = std::fs::remove_dir_all(root);
    let _ = std::fs::remove_dir_all(db);
}

#[test]
fn a_sweep_on_a_full_disk_fails_the_runs_it_cannot_record_and_resumes() {
    let root = temp_dir("sweep-full");
    let db = fresh_db();
    let more = ["--seeds", "1..40", "--ticks", "3", "--jobs", "2"];
    let clean = root.join("clean");
    ok(&sweep(&db, &clean, &more));
    let mut disk = common::SmallDisk::new("sweep-full", 96);
    disk.limit_file_size(4096);
    let dir = disk.dir.join("s");
    let d = dir.display().to_string();
    let args = sweep_args(&d, &more);
    let full = disk.command(&db, &args.iter().map(String::as_str).collect::<Vec<_>>()).output().unwrap();
    let stderr = String::from_utf8_lossy(&full.stderr);
    assert!(!full.status.success(), "a sweep that cannot write its records fails");
    assert!(stderr.contains(&format!("cannot write {d}/")), "names the file: {stderr}");
    assert!(stderr.contains(disk.full_error()), "{stderr}");
    // Every record on the disk is whole: the rerun, with room, gives the clean sweep's tables.
    disk.grow(65536);
    let rerun = ok(&disk.command(&db, &args.iter().map(String::as_str).collect::<Vec<_>>()).output().unwrap());
    assert!(rerun.contains("0 failed"), "{rerun}");
    for f in ["runs.csv", "summary.csv"] {
        assert!(std::fs::read(clean.join(f)).unwrap() == std::fs::read(dir.join(f)).unwrap(), "{f} differs");
    }
    let _ = std::fs::remove_dir_all(root);
    let _ = std::fs::remove_dir_all(db);
}

#[test]
fn a_sweep_stopped_by_sigterm_writes_its_tables_and_finishes_later() {
    use std::process::{Command, Stdio};
    let root = temp_dir("sweep-term");
    let db = fresh_db();
    let more = ["--seeds", "1..200", "--ticks", "5", "--jobs", "1"];
    let clean = root.join("clean");
    ok(&sweep(&db, &clean, &more));
    let dir = root.join("s");
    let d = dir.display().to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_chokepoint"))
        .arg("--db")
        .arg(&db)
        .args(sweep_args(&d, &more))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sweep");
    let start = std::time::Instant::now();
    while std::fs::read_dir(dir.join("cells")).map_or(0, |d| d.count()) < 10 {
        assert!(start.elapsed() < std::time::Duration::from_secs(60));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    common::signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped by SIGTERM"));
    let partial = rows_of(&dir, "first_restriction_tick");
    assert!((10..200).contains(&partial), "the tables hold the {partial} runs finished");
    ok(&sweep(&db, &dir, &more));
    for f in ["runs.csv", "summary.csv"] {
        assert!(std::fs::read(clean.join(f)).unwrap() == std::fs::read(dir.join(f)).unwrap(), "{f} differs");
    }
    let _ = std::fs::remove_dir_all(root);
    let _ = std::fs::remove_dir_all(db);
}
