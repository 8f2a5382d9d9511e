//! Damaged databases, with the real binary: 25 kinds of damage (bytes flipped, zeroed or cut
//! from sled's log, its configuration, index and blob files damaged or removed), each done to
//! a database holding a finished run and to one holding a run stopped by SIGTERM. Whatever the
//! damage, reading never changes the database; no error shows sled's own words or a panic;
//! what `db check` calls intact replays with every digest checked after `db salvage`, and what
//! it calls recoverable resumes from where it says; a command that records runs either works
//! on a repaired copy, keeping the original byte for byte, or refuses and leaves it as it was.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

mod common;
use common::{chokepoint, files, ok, scenario, temp_dir};

/// A damage: its name and what it does to a database folder.
type Damage = (&'static str, fn(&Path));

fn flip(path: &Path, at: usize, n: usize) {
    let mut b = std::fs::read(path).expect("a file to damage");
    let at = at.min(b.len().saturating_sub(n));
    for x in b.iter_mut().skip(at).take(n) {
        *x ^= 0x5A;
    }
    std::fs::write(path, b).unwrap();
}

fn size(path: &Path) -> usize {
    std::fs::metadata(path).map_or(0, |m| m.len() as usize)
}

fn truncate(path: &Path, len: usize) {
    std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(len as u64).unwrap();
}

/// The database's blob files, largest last; when it has none, its data file (so that the
/// damages meant for blobs still damage something).
fn blobs(db: &Path) -> Vec<PathBuf> {
    let mut b: Vec<PathBuf> =
        std::fs::read_dir(db.join("blobs")).into_iter().flatten().flatten().map(|e| e.path()).collect();
    b.sort_by_key(|p| size(p));
    if b.is_empty() { vec![db.join("db")] } else { b }
}

fn snaps(db: &Path) -> Vec<PathBuf> {
    let found: Vec<PathBuf> = std::fs::read_dir(db)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("snap.")))
        .collect();
    if found.is_empty() { vec![db.join("conf")] } else { found }
}

const DAMAGES: [Damage; 25] = [
    ("10 bytes flipped at 1/4 of the log", |d| flip(&d.join("db"), size(&d.join("db")) / 4, 10)),
    ("10 bytes flipped at 1/2 of the log", |d| flip(&d.join("db"), size(&d.join("db")) / 2, 10)),
    ("10 bytes flipped at 3/4 of the log", |d| flip(&d.join("db"), size(&d.join("db")) * 3 / 4, 10)),
    ("10 bytes flipped near the log's end", |d| flip(&d.join("db"), size(&d.join("db")) - 100, 10)),
    ("10 bytes flipped at the log's start", |d| flip(&d.join("db"), 0, 10)),
    ("4 KiB zeroed in the log's middle", |d| {
        let p = d.join("db");
        let mut b = std::fs::read(&p).unwrap();
        let m = b.len() / 2;
        let end = (m + 4096).min(b.len());
        b[m..end].fill(0);
        std::fs::write(p, b).unwrap();
    }),
    ("4 KiB overwritten at the log's start", |d| {
        let p = d.join("db");
        let mut b = std::fs::read(&p).unwrap();
        for (i, x) in b.iter_mut().take(4096).enumerate() {
            *x = (i * 7 + 13) as u8;
        }
        std::fs::write(p, b).unwrap();
    }),
    ("the log cut to half", |d| truncate(&d.join("db"), size(&d.join("db")) / 2)),
    ("the log cut to 3/4", |d| truncate(&d.join("db"), size(&d.join("db")) * 3 / 4)),
    ("the log's last byte cut", |d| truncate(&d.join("db"), size(&d.join("db")) - 1)),
    ("1 KiB of garbage after the log", |d| {
        use std::io::Write;
        let junk: Vec<u8> = (0..1024u32).map(|i| (i * 31 + 7) as u8).collect();
        std::fs::OpenOptions::new().append(true).open(d.join("db")).unwrap().write_all(&junk).unwrap();
    }),
    ("the log's halves swapped", |d| {
        let b = std::fs::read(d.join("db")).unwrap();
        let h = b.len() / 2;
        std::fs::write(d.join("db"), [&b[h..], &b[..h]].concat()).unwrap();
    }),
    ("the log removed", |d| std::fs::remove_file(d.join("db")).unwrap()),
    ("the log emptied", |d| truncate(&d.join("db"), 0)),
    ("the configuration file damaged", |d| flip(&d.join("conf"), 5, 3)),
    ("the configuration file removed", |d| std::fs::remove_file(d.join("conf")).unwrap()),
    ("the configuration file cut", |d| truncate(&d.join("conf"), 10)),
    ("the largest blob damaged", |d| {
        let b = blobs(d).pop().unwrap();
        flip(&b, size(&b) / 2, 10);
    }),
    ("the largest blob removed", |d| std::fs::remove_file(blobs(d).pop().unwrap()).unwrap()),
    ("the largest blob cut", |d| {
        let b = blobs(d).pop().unwrap();
        truncate(&b, size(&b) / 2);
    }),
    ("every blob damaged", |d| {
        for b in blobs(d) {
            flip(&b, size(&b) / 2, 10);
        }
    }),
    ("the smallest blob damaged", |d| {
        let b = blobs(d).remove(0);
        flip(&b, size(&b) / 3, 4);
    }),
    ("the index files damaged", |d| {
        for s in snaps(d) {
            flip(&s, size(&s) / 2, 10);
        }
    }),
    ("the index files removed", |d| {
        for s in snaps(d) {
            let _ = std::fs::remove_file(s);
        }
    }),
    ("the clean-close manifest removed", |d| std::fs::remove_file(d.join("chokepoint.closed")).unwrap()),
];

/// Words that must never reach the user: sled's own errors and panics.
const RAW: [&str; 7] = ["Some(", "Inline", "backtrace", "panicked", "Os {", "sled::", "RUST_BACKTRACE"];

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a command's error output is in our words: lines of notes and warnings, and at most
/// one error, a single line.
fn in_words(case: &str, what: &str, out: &Output) {
    let text = stderr(out);
    for raw in RAW {
        assert!(!text.contains(raw), "{case}: {what} shows {raw:?}: {text}");
    }
    for line in text.lines() {
        assert!(
            ["error: ", "note: ", "warning: "].iter().any(|p| line.starts_with(p)),
            "{case}: {what} printed a line that is not a sentence of ours: {line:?}\n{text}"
        );
    }
    assert!(text.matches("error: ").count() <= 1, "{case}: {what}: {text}");
}

/// The verdict `db check` gives each run: (run, verdict line).
fn verdicts(check: &str) -> Vec<(u64, String)> {
    check
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("run ")?;
            let id = rest.split([' ', ':']).next()?.parse().ok()?;
            Some((id, l.to_string()))
        })
        .collect()
}

/// Runs one case: damages a copy of `pristine`, then reads, checks, salvages and writes it.
fn one_case(root: &Path, pristine: &Path, label: &str, (name, damage): Damage) -> String {
    let case = format!("{label}, {name}");
    let dir = root.join(format!("case-{label}-{}", name.replace([' ', '/', '\''], "_")));
    let db = dir.join("db");
    std::fs::create_dir_all(&dir).unwrap();
    for (rel, bytes) in files(pristine) {
        std::fs::create_dir_all(db.join(&rel).parent().unwrap()).unwrap();
        std::fs::write(db.join(rel), bytes).unwrap();
    }
    damage(&db);
    let damaged = files(&db);

    let runs = chokepoint(&db, &["runs"]);
    in_words(&case, "runs", &runs);
    let check = chokepoint(&db, &["db", "check"]);
    in_words(&case, "db check", &check);
    let salvaged = dir.join("salvaged");
    let salvage = chokepoint(&db, &["db", "salvage", "--out", &salvaged.display().to_string()]);
    in_words(&case, "db salvage", &salvage);
    assert!(files(&db) == damaged, "{case}: reading the damaged database changed it");

    // What check calls intact replays, every digest checked, in the salvaged copy; what it
    // calls recoverable is kept up to its snapshot and resumes from there.
    let check_text = String::from_utf8_lossy(&check.stdout).into_owned();
    for (run, verdict) in verdicts(&check_text) {
        let id = run.to_string();
        // sled may give back an earlier state of the log (a run as it stood a few ticks in).
        let done = verdict.split(", ").find_map(|p| p.split('/').next()?.parse::<u32>().ok()).unwrap_or(0);
        if verdict.contains(": intact") && done > 0 {
            ok(&chokepoint(&salvaged, &["replay", &id]));
        } else if verdict.contains("recoverable from the snapshot at tick") {
            let shown = ok(&chokepoint(&salvaged, &["runs", "show", &id]));
            let at = verdict.split("snapshot at tick ").nth(1).and_then(|t| t.split(' ').next()).unwrap();
            assert!(shown.contains(&format!("ticks        {at} of")), "{case}: {shown}");
        }
    }

    // A command that records a run: on a repaired copy, keeping the original as it was, or not
    // at all, leaving the database as it was.
    let out = dir.join("o").display().to_string();
    let write = chokepoint(&db, &["run", &scenario("tiny.toml"), "--ticks", "2", "--quiet", "--out", &out]);
    in_words(&case, "run", &write);
    let kept: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| ["db.damaged-", "db.unclosed"].iter().any(|k| n.to_string_lossy().starts_with(k)))
        })
        .collect();
    match (write.status.success(), kept.as_slice()) {
        (_, [original]) => assert!(files(original) == damaged, "{case}: the original kept aside is not as it was"),
        (false, []) => assert!(files(&db) == damaged, "{case}: a refused run changed the database"),
        (true, []) => panic!("{case}: a damaged database was written in place"),
        (_, many) => panic!("{case}: {} copies kept", many.len()),
    }
    let found = verdicts(&check_text);
    let lost = if found.is_empty() {
        "no run found"
    } else if found.iter().any(|(_, v)| v.contains(": lost")) {
        "a run lost"
    } else {
        "no run lost"
    };
    let runs_ok = if runs.status.success() { "runs works" } else { "runs refused" };
    let summary =
        format!("{case}: {runs_ok}; {lost}; a new run {}", if write.status.success() { "recorded" } else { "refused" });
    let _ = std::fs::remove_dir_all(&dir);
    summary
}

/// A database with one run of the 2024 baseline: finished (40 ticks), or stopped by SIGTERM.
fn pristine(root: &Path, interrupted: bool) -> PathBuf {
    let db = root.join(if interrupted { "pristine-interrupted" } else { "pristine-finished" });
    let out = root.join(format!("o-{interrupted}")).display().to_string();
    let ticks = if interrupted { "100000" } else { "40" };
    let args =
        ["run", &scenario("baseline-2024.toml"), "--ticks", ticks, "--snapshot-every", "10", "--quiet", "--out", &out];
    if !interrupted {
        ok(&chokepoint(&db, &args));
        return db;
    }
    let mut child = common::command(&db, args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("run");
    let digests = Path::new(&out).join("digests.csv");
    let start = std::time::Instant::now();
    while std::fs::read_to_string(&digests).map_or(0, |t| t.lines().count()) < 26 {
        assert!(start.elapsed() < Duration::from_secs(60), "the run never got going");
        std::thread::sleep(Duration::from_millis(10));
    }
    common::signal(&child, libc::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(143));
    assert!(ok(&chokepoint(&db, &["runs"])).contains("interrupted"));
    db
}

#[test]
fn damaged_databases_are_never_made_worse() {
    let root = temp_dir("damage");
    let finished = pristine(&root, false);
    let interrupted = pristine(&root, true);
    let cases: Vec<(&Path, &str, Damage)> = [(finished.as_path(), "finished"), (interrupted.as_path(), "interrupted")]
        .into_iter()
        .flat_map(|(db, label)| DAMAGES.iter().map(move |d| (db, label, *d)))
        .collect();
    // Two at a time: the cases are independent.
    let next = std::sync::Mutex::new(cases.into_iter());
    let summaries = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let Some((db, label, damage)) = next.lock().unwrap().next() else { break };
                    let line = one_case(&root, db, label, damage);
                    summaries.lock().unwrap().push(line);
                }
            });
        }
    });
    let mut summaries = summaries.into_inner().unwrap();
    summaries.sort();
    for s in &summaries {
        println!("{s}");
    }
    assert_eq!(summaries.len(), 50);
    // Damage sled catches value by value leaves the rest readable: a damaged blob, a removed
    // index, garbage after the log.
    for kind in ["the largest blob damaged", "the index files removed", "1 KiB of garbage"] {
        for s in summaries.iter().filter(|s| s.contains(kind)) {
            assert!(s.contains("runs works; no run lost"), "{s}");
        }
    }
    let _ = std::fs::remove_dir_all(root);
}
