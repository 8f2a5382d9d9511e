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
