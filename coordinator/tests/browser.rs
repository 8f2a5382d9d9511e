//! The DVR console (`chokepoint debrief`): its API never gives a nation another nation's private
//! books, and — in a real headless Chromium driven by tests/browser/dvr.mjs — moving the slider
//! to a tick shows that tick's prices as `chokepoint state` reports them, and a nation's view shows
//! only its own data. The browser part needs Debian's chromium and `npm ci` in tests/browser, so
//! it is `#[ignore]`d; .ci/run installs both and runs it with `--include-ignored`.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::debrief::{debrief, get};
use common::{ok, scenario, temp_dir};

fn chokepoint(db: &Path, args: &[&str]) {
    ok(&common::chokepoint(db, args));
}

fn recorded_run(name: &str) -> (PathBuf, PathBuf) {
    let root = temp_dir(name);
    let db = root.join("db");
    chokepoint(&db, &["run", &scenario("tiny.toml"), "--quiet", "--out", &root.join("o").display().to_string()]);
    (root, db)
}

#[test]
fn a_nation_view_carries_only_that_nations_books() {
    let (root, db) = recorded_run("api");
    let state = root.join("s30.json");
    chokepoint(&db, &["state", "1", "--at", "30", "--json", &state.display().to_string()]);
    let truth: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let (mut server, url) = debrief(&db);

    let (status, page) = get(&url, "/");
    assert_eq!(status, 200);
    // The SVG namespace is a name, not an address the page loads.
    let page = page.replace("http://www.w3.org/2000/svg", "");
    assert!(!page.contains("http://") && !page.contains("https://"), "the page loads nothing from elsewhere");
    let (status, world) = get(&url, "/api/world?tick=30");
    assert_eq!(status, 200);
    let world: serde_json::Value = serde_json::from_str(&world).unwrap();
    assert_eq!(world["digest"], truth["digest"], "the DVR shows the same world as `state`");

    let (status, body) = get(&url, "/api/nation/BB?tick=30");
    assert_eq!(status, 200);
    for n in truth["nations"].as_array().unwrap().iter().filter(|n| n["nation"] != "BB") {
        let treasury = n["treasury_cents"].as_i64().unwrap();
        if treasury != 0 {
            assert!(!body.contains(&treasury.to_string()), "BB's view holds {}'s treasury", n["nation"]);
        }
    }
    for a in truth["agents"].as_array().unwrap().iter().filter(|a| a["nation"] != "BB") {
        assert!(!body.contains(a["name"].as_str().unwrap()), "BB's view names {}", a["name"]);
    }
    assert_eq!(get(&url, "/api/nation/ZZ?tick=30").0, 404);
    assert_eq!(get(&url, "/api/world?tick=61").0, 400);
    assert_eq!(get(&url, "/api/world").0, 400);
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(root);
}

#[test]
#[ignore = "needs Debian's chromium and `npm ci` in tests/browser; .ci/run installs both and runs it with --include-ignored"]
fn the_dvr_in_a_real_browser() {
    let (root, db) = recorded_run("dvr");
    let state = root.join("s30.json");
    chokepoint(&db, &["state", "1", "--at", "30", "--json", &state.display().to_string()]);
    let (mut server, url) = debrief(&db);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser/dvr.mjs");
    let shots = root.join("screenshots");
    let out = Command::new("node")
        .arg(&script)
        .args([&url, &state.display().to_string(), "30", "BB", &shots.display().to_string()])
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
    assert!(shots.join("nation-BB.png").exists());
    let _ = std::fs::remove_dir_all(root);
}
