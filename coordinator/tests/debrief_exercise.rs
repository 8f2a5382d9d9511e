//! Debriefs of real exercises. Who knew what: an exercise where every nation writes a secret
//! comment and a message to one other nation, and control writes notes; each nation's view in
//! the DVR holds its own and what was sent to it, never another's, over HTTP and (ignored
//! without Chromium) in the browser. Fuzzing: messages, notes, comments and inject names of
//! random Unicode and control bytes, then every SVG the report and the diff write parses as
//! XML and every CSV the run and the export write reads back as CSV.

mod common;

use common::debrief::{debrief, get};
use common::exercise::{Exercise, start};
use common::{chokepoint, ok, temp_dir, wait_with_timeout};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Who writes to whom in the secrets exercise.
const PAIRS: [(&str, &str); 3] = [("BB", "CC"), ("CC", "DD"), ("DD", "BB")];

fn comment(n: &str) -> String {
    format!("secret-comment-of-{n}-91c2")
}

fn message(from: &str, to: &str) -> String {
    format!("msg-from-{from}-to-{to}-7f3a")
}

const CONTROL_SECRETS: [&str; 2] = ["control-note-4b8e", "control-bookmark-2d6f"];

fn resolve_and_wait(ex: &Exercise, turn: u64) {
    assert_eq!(ex.post("/api/control", "control", json!({"action": "resolve"})).0, 200);
    ex.wait_for("the turn", |v| v["status"]["turn"].as_u64() >= Some(turn));
}

/// Plays two eight-tick turns of tiny with secrets in them and ends; returns the database and
/// the tick the run ended at.
fn secrets_exercise() -> (PathBuf, u32) {
    let mut ex = start("BB,CC,DD", &["--turn", "8", "--deadline", "120s"]);
    for (from, to) in PAIRS {
        let (status, v) = ex.post("/api/message", from, json!({"to": [to], "text": message(from, to)}));
        assert_eq!(status, 200, "{v}");
        let (status, v) = ex.post("/api/orders", from, json!({"orders": [], "comment": comment(from)}));
        assert_eq!(status, 200, "{v}");
    }
    assert_eq!(ex.post("/api/control/note", "control", json!({"text": CONTROL_SECRETS[0]})).0, 200);
    assert_eq!(ex.post("/api/control/note", "control", json!({"text": CONTROL_SECRETS[1], "bookmark": true})).0, 200);
    ex.wait_for("turn 1", |v| v["status"]["turn"].as_u64() >= Some(2));
    resolve_and_wait(&ex, 3);
    assert_eq!(ex.post("/api/control", "control", json!({"action": "end"})).0, 200);
    let db = ex.db.clone();
    assert!(wait_with_timeout(&mut ex.child, Duration::from_secs(30)));
    (db, 16)
}

/// What `nation` must see and must not see in its view.
fn expectations(nation: &str) -> (Vec<String>, Vec<String>) {
    let mut known = vec![comment(nation)];
    let mut unknown: Vec<String> = CONTROL_SECRETS.iter().map(|s| s.to_string()).collect();
    for (from, to) in PAIRS {
        if from == nation || to == nation {
            known.push(message(from, to));
        } else {
            unknown.push(message(from, to));
        }
        if from != nation {
            unknown.push(comment(from));
        }
    }
    (known, unknown)
}

#[test]
fn who_knew_what_shows_each_nation_its_own_secrets_and_no_others() {
    let (db, end) = secrets_exercise();
    let (mut server, url) = debrief(&db);
    let (status, run) = get(&url, "/api/run");
    assert_eq!(status, 200);
    for secret in PAIRS.iter().flat_map(|(f, t)| [comment(f), message(f, t)]).chain(CONTROL_SECRETS.map(String::from)) {
        assert!(!run.contains(&secret), "/api/run, which every view loads, holds {secret}");
    }
    let (status, world) = get(&url, &format!("/api/world?tick={end}"));
    assert_eq!(status, 200);
    for secret in PAIRS.iter().flat_map(|(f, t)| [comment(f), message(f, t)]).chain(CONTROL_SECRETS.map(String::from)) {
        assert!(world.contains(&secret), "control's view holds everything, {secret} included");
    }
    for (nation, _) in PAIRS {
        let (status, body) = get(&url, &format!("/api/nation/{nation}?tick={end}"));
        assert_eq!(status, 200, "{body}");
        let (known, unknown) = expectations(nation);
        for k in &known {
            assert!(body.contains(k), "{nation}'s view lacks {k}");
        }
        for u in &unknown {
            assert!(!body.contains(u), "{nation}'s view holds {u}, which it never knew");
        }
        let v: Value = serde_json::from_str(&body).unwrap();
        let reports = v["sitreps"].as_array().expect("its situation reports");
        assert_eq!(reports.len(), 2, "two turns ended before tick {end}");
        assert!(reports.iter().all(|r| r["nation"] == nation), "only its own reports");
        let intel = v["intelligence"].as_array().expect("the intelligence it was shown");
        assert!(!intel.is_empty(), "after 14 ticks estimates are shown");
        assert!(intel.iter().all(|i| i["age_ticks"].as_u64().is_some() && i["noise_pct"].as_f64().is_some()));
        assert!(intel.iter().all(|i| i["nation"] != nation), "estimates are of others");
        // Earlier, it knew less: before the messages were sent, none is there.
        let (_, start) = get(&url, &format!("/api/nation/{nation}?tick=0"));
        let v0: Value = serde_json::from_str(&start).unwrap();
        assert!(v0["sitreps"].as_array().unwrap().is_empty(), "no report at tick 0");
    }
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
#[ignore = "needs Debian's chromium and `npm ci` in tests/browser; .ci/run installs both and runs it with --include-ignored"]
fn the_who_knew_what_view_in_a_real_browser() {
    let (db, end) = secrets_exercise();
    let (mut server, url) = debrief(&db);
    let root = temp_dir("whoknew");
    let expect: serde_json::Map<String, Value> = PAIRS
        .iter()
        .map(|(n, _)| {
            let (known, unknown) = expectations(n);
            (n.to_string(), json!({"known": known, "unknown": unknown}))
        })
        .collect();
    let file = root.join("expect.json");
    std::fs::write(&file, Value::Object(expect).to_string()).unwrap();
    let shots = std::env::var_os("CHOKEPOINT_SCREENSHOTS").map_or(root.join("shots"), PathBuf::from);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser/whoknew.mjs");
    let out = Command::new("node")
        .arg(&script)
        .args([&url, &end.to_string(), &file.display().to_string(), &shots.display().to_string()])
        .output()
        .expect("node runs (install Node.js)");
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        out.status.success(),
        "the browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(root);
}

/// xorshift64*: reproducible random text without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Text mixing control bytes, markup, quotes, separators and far-off Unicode, with at least
    /// one letter so it is not blank.
    fn nasty(&mut self) -> String {
        const ODD: &[char] = &[
            '<',
            '>',
            '&',
            '"',
            '\'',
            ',',
            ';',
            '\n',
            '\r',
            '\t',
            '\u{0}',
            '\u{7}',
            '\u{8}',
            '\u{1b}',
            '\u{7f}',
            '\u{85}',
            '\u{9b}',
            '\u{2028}',
            '\u{202e}',
            '\u{feff}',
            '\u{fffe}',
            '\u{ffff}',
            '\u{301}',
            'é',
            'ß',
            'Ж',
            '中',
            '🦀',
            '\u{10ffff}',
        ];
        let len = 1 + self.below(30);
        let mut s = String::from("x");
        for _ in 0..len {
            let c = match self.below(4) {
                0 => char::from_u32(self.below(0x20) as u32).unwrap_or('?'),
                1 => ODD[self.below(ODD.len() as u64) as usize],
                2 => char::from_u32(0x20 + self.below(0x5f) as u32).unwrap_or('?'),
                _ => char::from_u32(0xa0 + self.below(0x2f00) as u32).unwrap_or('?'),
            };
            s.push(c);
        }
        s
    }
}

/// `s` as a TOML basic string, every character escaped.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        out.push_str(&format!("\\U{:08X}", c as u32));
    }
    out.push('"');
    out
}

fn control_chars(s: &str) -> Vec<char> {
    s.chars().filter(|c| (c.is_control() && !matches!(c, '\n')) || matches!(c, '\u{fffe}' | '\u{ffff}')).collect()
}

/// Every `.svg` under `dir` parses as XML; every `.csv` reads back with as many fields per row
/// as its header, none holding a control character; every `.html` holds no control character
/// and no script. Returns how many files of each.
fn check_files(dir: &Path, counts: &mut (usize, usize, usize)) {
    for entry in std::fs::read_dir(dir).expect("a folder") {
        let path = entry.unwrap().path();
        if path.is_dir() {
            check_files(&path, counts);
            continue;
        }
        let text = || std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{} is not UTF-8: {e}", path.display()));
        match path.extension().and_then(|e| e.to_str()) {
            Some("svg") => {
                let t = text();
                roxmltree::Document::parse(&t).unwrap_or_else(|e| panic!("{} is not valid XML: {e}", path.display()));
                counts.0 += 1;
            }
            Some("csv") => {
                let mut reader = csv::ReaderBuilder::new().flexible(false).from_path(&path).expect("open csv");
                let width = reader.headers().expect("a header").len();
                for record in reader.records() {
                    let record = record.unwrap_or_else(|e| panic!("{} is not valid CSV: {e}", path.display()));
                    assert_eq!(record.len(), width, "{}", path.display());
                    for field in &record {
                        assert!(
                            control_chars(field).is_empty(),
                            "{}: a control character in {field:?}",
                            path.display()
                        );
                    }
                }
                counts.1 += 1;
            }
            Some("html") => {
                let t = text();
                assert!(control_chars(&t).is_empty(), "{}: control characters {:?}", path.display(), control_chars(&t));
                assert!(!t.contains("<script"), "{}: markup from a message got through", path.display());
                counts.2 += 1;
            }
            _ => {}
        }
    }
}

#[test]
fn fuzzed_messages_notes_and_inject_names_keep_every_svg_and_csv_valid() {
    let seed = std::env::var("CHOKEPOINT_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_cafe_u64);
    eprintln!("fuzz seed {seed} (CHOKEPOINT_FUZZ_SEED reruns it)");
    let mut rng = Rng(seed | 1);
    let mut ex = start("BB,CC,DD", &["--turn", "3", "--deadline", "120s"]);
    for turn in 1..=3u64 {
        for (from, to) in PAIRS {
            let text = rng.nasty();
            let (status, v) = ex.post("/api/message", from, json!({"to": [to], "text": text}));
            assert_eq!(status, 200, "{text:?}: {v}");
            let (status, v) = ex.post("/api/orders", from, json!({"orders": [], "comment": rng.nasty()}));
            assert_eq!(status, 200, "{v}");
        }
        let note = json!({"text": rng.nasty(), "bookmark": turn % 2 == 0});
        assert_eq!(ex.post("/api/control/note", "control", note).0, 200);
        let name = format!("{}-{turn}", rng.nasty());
        let toml = format!(
            "[[events]]\ntick = 0\nname = {}\naction = \"demand_shock\"\ncommodity = \"dy\"\npct = 5\nnote = {}\n",
            toml_string(&name),
            toml_string(&rng.nasty())
        );
        let (status, v) = ex.post("/api/control/inject", "control", json!({"toml": toml}));
        assert_eq!(status, 200, "{name:?}: {v}");
        ex.wait_for("the turn", |v| v["status"]["turn"].as_u64() > Some(turn));
    }
    assert_eq!(ex.post("/api/control", "control", json!({"action": "end"})).0, 200);
    let db = ex.db.clone();
    assert!(wait_with_timeout(&mut ex.child, Duration::from_secs(30)));
    let store = coordinator::store::Store::open(&db).expect("store");
    let out_dir = PathBuf::from(store.run(coordinator::store::RunId(1)).unwrap().out_dir);
    drop(store);
    let root = temp_dir("fuzz");
    let report = root.join("report");
    ok(&chokepoint(&db, &["report", "1", "--out", &report.display().to_string()]));
    let export = root.join("export");
    ok(&chokepoint(&db, &["export", "1", "--format", "csv", "--out", &export.display().to_string()]));
    ok(&chokepoint(&db, &["fork", "1", "--at", "3", "--quiet", "--out", &root.join("fork").display().to_string()]));
    let diff = root.join("diff");
    ok(&chokepoint(&db, &["diff", "1", "2", "--out", &diff.display().to_string()]));
    let mut counts = (0, 0, 0);
    for dir in [&report, &export, &diff, &out_dir] {
        check_files(dir, &mut counts);
    }
    assert!(counts.0 >= 9 && counts.1 >= 13 && counts.2 >= 2, "files checked (svg, csv, html): {counts:?}");
    let orders = std::fs::read_to_string(export.join("orders.csv")).unwrap();
    assert!(orders.lines().count() > 20, "the journal of the fuzzed exercise is exported: {orders}");
    let _ = std::fs::remove_dir_all(root);
}
