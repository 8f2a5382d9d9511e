//! War-game mode through its HTTP API, against a real `chokepoint exercise` process: tokens
//! and their isolation, every order type and validation error, sealed orders revealed at the
//! turn, a missed deadline, control injects and notes, messages, rate limiting, and the journal
//! replaying the exercise to the same digests.

mod common;

use common::exercise::{http, order_errors, start, start_with};
use common::{ok, scenario, temp_dir, wait_with_timeout};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn an_exercise_over_http_from_tokens_to_replay() {
    let mut ex = start("BB,CC,DD", &["--turn", "2", "--deadline", "4s"]);
    let a = &ex.addr;

    // Tokens: each acts for its own nation; wrong, missing or misplaced ones change nothing.
    assert_eq!(http(a, "GET", "/api/player", None, None).0, 401);
    assert_eq!(http(a, "GET", "/api/player", Some("not-a-token"), None).0, 401);
    assert_eq!(ex.get("/api/whoami", "CC").1["nation"], "CC");
    assert_eq!(ex.get("/api/control", "CC").0, 403);
    assert_eq!(ex.get("/api/player", "control").0, 403);
    assert_eq!(http(a, "POST", "/api/orders", Some("nope"), Some(&json!({"orders": []}))).0, 401);
    assert_eq!(http(a, "GET", "/", None, None).0, 200, "the console page is public");

    // The player's view: its own books, others only through public data and estimates.
    let (status, cc) = ex.get("/api/player", "CC");
    assert_eq!(status, 200);
    let own: Vec<&str> =
        cc["books"]["stockpiles"].as_array().unwrap().iter().map(|p| p["commodity"].as_str().unwrap()).collect();
    assert_eq!(own, ["dy"], "CC's own reserve");
    assert!(cc.get("nations").is_none(), "no ground truth for a player");
    for i in cc["intelligence"].as_array().unwrap() {
        assert_eq!(i["source"], "estimate", "no ally shares with CC: {i}");
    }
    let text = cc.to_string();
    assert!(!text.contains("treasury_usd\":500") && !text.contains("\"BB\",\"books\""), "no other nation's books");

    // Every validation error is named by order and field, and refuses the whole submission.
    let bad = json!({"orders": [
        {"type": "barter"},
        {"type": "buy", "commodity": "zz", "quantity_t": 1, "limit_usd_per_kg": 30},
        {"type": "buy", "commodity": "co", "quantity_t": -1, "limit_usd_per_kg": 30},
        {"type": "buy", "commodity": "co", "quantity_t": 1, "limit_usd_per_kg": 1e9},
        {"type": "sell", "commodity": "co", "quantity_t": 1e5, "limit_usd_per_kg": 30},
        {"type": "buy", "commodity": "dy", "quantity_t": 9e5, "limit_usd_per_kg": 14000},
        {"type": "policy", "event": {"action": "export_ban", "nation": "BB", "commodity": "co"}},
        {"type": "policy", "event": {"action": "nationalise"}},
        {"type": "policy", "event": {"action": "export_quota", "commodity": "co"}},
        {"type": "policy", "event": {"action": "stockpile_target", "commodity": "dy", "target_days": -4}},
        {"type": "policy", "event": {"action": "lift", "target": "bb-dy-quota"}},
        {"type": "policy"}
    ]});
    let (status, v) = ex.post("/api/orders", "CC", bad);
    assert_eq!(status, 422, "{v}");
    let errors = order_errors(&v);
    let expect = [
        (0, "type"),
        (1, "commodity"),
        (2, "quantity_t"),
        (3, "limit_usd_per_kg"),
        (4, "quantity_t"),
        (5, "quantity_t"),
        (6, "event.nation"),
        (7, "event.action"),
        (8, "event"),
        (9, "event.target_days"),
        (10, "event.target"),
        (11, "event"),
    ];
    for (index, field) in expect {
        assert!(errors.iter().any(|(i, f)| *i == index && f == field), "order {index} {field}: {v}");
    }
    assert!(ex.get("/api/player", "CC").1["my_submission"].is_null(), "an invalid submission changes nothing");
    assert_eq!(http(a, "POST", "/api/orders", Some(&ex.tokens["CC"]), None).0, 400);

    // Valid orders of every kind, sealed until the turn resolves; DD says nothing.
    let (status, v) = ex.post(
        "/api/orders",
        "BB",
        json!({"orders": [
            {"type": "policy", "event": {"action": "export_ban", "commodity": "dy", "to": ["CC"]}},
            {"type": "policy", "event": {"action": "export_tariff", "commodity": "co", "pct": 5}},
            {"type": "policy", "event": {"action": "export_licensing", "commodity": "co", "delay_ticks": 2, "to": ["DD"]}},
            {"type": "policy", "event": {"action": "import_tariff", "commodity": "dy", "pct": 3}},
            {"type": "policy", "event": {"action": "subsidy", "kind": "processing", "pct": 20}},
            {"type": "policy", "event": {"action": "stockpile_target", "commodity": "co", "target_days": 45}},
            {"type": "buy", "commodity": "co", "quantity_t": 50, "limit_usd_per_kg": 60}
        ], "comment": "<script>alert(1)</script> hold the line"}),
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = ex.post(
        "/api/orders",
        "CC",
        json!({"orders": [
            {"type": "policy", "event": {"action": "stockpile_release", "commodity": "dy", "release_t": 5}},
            {"type": "policy", "event": {"action": "export_quota", "commodity": "co", "pct_of_last_year": 50}},
            {"type": "sell", "commodity": "dy", "quantity_t": 1, "limit_usd_per_kg": 300, "domestic_only": true},
            {"type": "policy", "event": {"action": "rd_funding", "commodity": "dy", "musd_per_year": 10}}
        ]}),
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = ex.post("/api/message", "CC", json!({"to": ["BB"], "text": "<b>please</b> lift the ban"}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(ex.post("/api/message", "CC", json!({"to": ["XX"], "text": "hello"})).0, 422);
    // Nothing is revealed before the turn resolves.
    assert!(
        ex.get("/api/player", "CC").1["public"]["restrictions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| !r["name"].as_str().unwrap().starts_with("BB-"))
    );

    // Control fires an inject and a note; DD misses the deadline; the turn resolves.
    let (status, v) = ex.post(
        "/api/control/inject",
        "control",
        json!({"toml": "[[events]]\ntick = 0\nname = \"mine-accident\"\naction = \"site_outage\"\nsite = \"AA co mine #1\"\n"}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        ex.post("/api/control/inject", "control", json!({"toml": "[[events]]\ntick = 0\naction = \"volcano\"\n"})).0,
        422
    );
    let (status, v) = ex.post(
        "/api/control/inject",
        "control",
        json!({"toml": "[[events]]\ntick = 0\nname = \"panic\"\naction = \"demand_shock\"\ncommodity = \"dy\"\npct = 50\n", "when_price": {"commodity": "co", "ratio": 100.0}}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(ex.post("/api/control/note", "control", json!({"text": "turn 1 adjudicated", "bookmark": true})).0, 200);
    let v = ex.wait_for("the first turn", |v| v["status"]["turn"].as_u64() >= Some(2));
    assert!(v["missed"].to_string().contains("DD"), "{}", v["missed"]);
    assert!(v["events"].to_string().contains("BB bans exports of dy refined to CC"), "{}", v["events"]);
    assert!(v["events"].to_string().contains("AA co mine #1 shut"), "{}", v["events"]);
    assert_eq!(v["conditionals"].as_array().map(Vec::len), Some(1), "the conditional inject waits");
    let cc = ex.get("/api/player", "CC").1;
    assert!(
        cc["public"]["restrictions"].to_string().contains("BB-export_ban"),
        "revealed at the turn: {}",
        cc["public"]
    );
    assert_eq!(cc["messages"][0]["text"], "<b>please</b> lift the ban", "messages are data, kept verbatim");
    assert!(
        ex.get("/api/player", "DD").1["messages"].as_array().unwrap().is_empty(),
        "DD does not see CC's message to BB"
    );

    // Control: pause, advance, deadline, mode; then brute force is refused.
    assert_eq!(ex.post("/api/control", "control", json!({"action": "pause"})).0, 200);
    let paused_at = ex.get("/api/control", "control").1["status"]["tick"].as_u64().unwrap();
    assert_eq!(ex.post("/api/control", "control", json!({"action": "advance", "ticks": 3})).0, 200);
    ex.wait_for("three more ticks", |v| v["status"]["tick"].as_u64() >= Some(paused_at + 3));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ex.get("/api/control", "control").1["status"]["tick"].as_u64(), Some(paused_at + 3), "paused: no more");
    assert_eq!(ex.post("/api/control", "control", json!({"action": "advance", "ticks": 0})).0, 422);
    assert_eq!(ex.post("/api/control", "control", json!({"action": "deadline", "seconds": 60})).0, 200);
    assert_eq!(ex.post("/api/control", "control", json!({"action": "fly"})).0, 422);
    assert_eq!(ex.post("/api/control", "control", json!({"action": "end"})).0, 200);
    let db = ex.db.clone();
    assert!(wait_with_timeout(&mut ex.child, Duration::from_secs(30)), "the exercise exits when control ends it");
    assert!(ex.child.wait().map(|s| s.success()).unwrap_or(false));

    // The journal has everything, with who did it; the replay reproduces every digest.
    let store = coordinator::store::Store::open(&db).expect("open the exercise's store");
    let journal = store.journal(coordinator::store::RunId(1)).expect("journal");
    let sources: Vec<(String, &str)> = journal.iter().map(|j| (j.source.clone(), j.input.kind())).collect();
    for expected in [
        ("BB", "inject"),
        ("BB", "orders"),
        ("BB", "note"),
        ("CC", "orders"),
        ("CC", "message"),
        ("control", "inject"),
        ("control", "bookmark"),
        ("control", "note"),
    ] {
        assert!(sources.iter().any(|(s, k)| s == expected.0 && *k == expected.1), "{expected:?} in {sources:?}");
    }
    let meta = store.run(coordinator::store::RunId(1)).expect("run");
    let hashes = meta.exercise.expect("exercise record").token_hashes;
    assert_eq!(hashes.len(), 4);
    drop(store);
    let replay = ok(&common::chokepoint(&db, &["replay", "1"]));
    assert!(replay.contains("recorded digests match"), "{replay}");
    // A counterfactual from the middle of the exercise, under AI from there on.
    let fork_out = temp_dir("exercise-fork");
    let fork =
        ok(&common::chokepoint(&db, &["fork", "1", "--at", "2", "--quiet", "--out", &fork_out.display().to_string()]));
    let _ = std::fs::remove_dir_all(fork_out);
    assert!(fork.contains("Run 2"), "{fork}");
    // A fork with no changes continues the exercise: the orders revealed at its branch tick
    // (tick 0 here) go into its auctions as they did in the exercise.
    let again = temp_dir("exercise-fork0");
    ok(&common::chokepoint(&db, &["fork", "1", "--at", "0", "--quiet", "--out", &again.display().to_string()]));
    let diff = ok(&common::chokepoint(&db, &["diff", "1", "3"]));
    let _ = std::fs::remove_dir_all(again);
    assert!(diff.contains("No divergence"), "{diff}");
}

/// Limits are per token, never per address: one client's bad token does not lock out another
/// player's good one (every request here comes from the same address), a token that asks too
/// often is slowed alone, and past the global cap only players already in carry on.
#[test]
fn one_bad_token_does_not_block_another_players_good_one() {
    let ex = start("CC,DD", &["--turn", "1", "--deadline", "60s"]);
    let a = &ex.addr;
    assert_eq!(ex.get("/api/whoami", "CC").0, 200, "CC logs in first");
    for _ in 0..10 {
        assert_eq!(http(a, "GET", "/api/whoami", Some("stale-tab-token"), None).0, 401);
    }
    assert_eq!(http(a, "GET", "/api/whoami", Some("stale-tab-token"), None).0, 429, "that token is refused");
    assert_eq!(ex.get("/api/whoami", "CC").0, 200, "another player's good token still works");
    assert_eq!(ex.get("/api/control", "control").0, 200, "and control's");
    assert_eq!(http(a, "GET", "/api/whoami", Some("another-typo"), None).0, 401, "another wrong token is its own");
    // A token asking far too often is slowed, alone.
    let statuses: Vec<u16> = (0..200).map(|_| ex.get("/api/whoami", "DD").0).collect();
    assert!(statuses.contains(&429), "DD was never slowed down: {statuses:?}");
    assert_eq!(ex.get("/api/whoami", "CC").0, 200, "CC is not slowed by DD's requests");
    // Past the global cap of failed logins, those already in carry on; nobody new gets in.
    for i in 0..320 {
        let status = http(a, "GET", "/api/whoami", Some(&format!("guess-{i}")), None).0;
        assert!(status == 401 || status == 429, "{status}");
    }
    assert_eq!(http(a, "GET", "/api/whoami", Some("guess-new"), None).0, 429);
    assert_eq!(ex.get("/api/whoami", "CC").0, 200, "a player already in carries on");
    assert_eq!(ex.get("/api/whoami", "control").0, 200, "so does control");
    // An oversized body is refused before it is read.
    let huge = json!({"orders": [], "comment": "x".repeat(300 * 1024)});
    assert_eq!(ex.post("/api/orders", "CC", huge).0, 413);
}

/// The tools of a real exercise over HTTP: situation reports with filled and unfilled orders,
/// a `lift` of a restriction imposed during the exercise (by a player, by control and in a
/// fork's events), an empty submission that would silently replace a sealed one, control's
/// adjudication, a deadline for one turn, a rollback that replay and debrief follow, and
/// "end" recorded as completed, which `resume` continues only under AI, into a new folder.
#[test]
fn situation_reports_lift_rollback_and_the_end() {
    let mut ex = start("BB,CC", &["--turn", "2", "--deadline", "120s"]);
    let orders = |role: &str, body: Value| {
        let (status, v) = ex.post("/api/orders", role, body);
        assert_eq!(status, 200, "{role}: {v}");
    };
    let zero = ex.post(
        "/api/orders",
        "CC",
        json!({"orders": [{"type": "buy", "commodity": "dy", "quantity_t": 0.0001, "limit_usd_per_kg": 400}]}),
    );
    assert_eq!((zero.0, order_errors(&zero.1)), (422, vec![(0, "quantity_t".to_string())]), "no 0 kg order");
    // Turn 1: BB bans dy exports to CC; CC bids high (filled) and far too low (outbid).
    orders(
        "CC",
        json!({"orders": [
        {"type": "buy", "commodity": "dy", "quantity_t": 1, "limit_usd_per_kg": 14000},
        {"type": "buy", "commodity": "dy", "quantity_t": 2, "limit_usd_per_kg": 11},
        {"type": "buy", "commodity": "co", "quantity_t": 5, "limit_usd_per_kg": 100}
    ], "comment": "fill the dy reserve"}),
    );
    let (status, v) = ex.post("/api/orders", "CC", json!({"orders": []}));
    assert_eq!(status, 422, "an empty submission does not silently replace a sealed one: {v}");
    assert!(v["error"].as_str().unwrap_or("").contains("replace"), "{v}");
    assert_eq!(ex.get("/api/player", "CC").1["my_submission"]["orders"].as_array().map(Vec::len), Some(3));
    // Control sees the sealed orders and refuses CC's cobalt bid, with a note CC sees.
    let sealed = ex.get("/api/control", "control").1;
    assert_eq!(sealed["sealed"]["CC"]["orders"][2]["order"]["commodity"], "co", "{}", sealed["sealed"]);
    let refuse = json!({"action": "refuse", "nation": "CC", "order": 3, "note": "no cobalt this turn"});
    assert_eq!(ex.post("/api/control", "control", refuse).0, 200);
    let cc = ex.get("/api/player", "CC").1;
    assert_eq!(cc["my_submission"]["orders"].as_array().map(Vec::len), Some(2));
    assert!(cc["messages"].to_string().contains("no cobalt this turn"), "CC is told: {}", cc["messages"]);
    orders(
        "BB",
        json!({"orders": [{"type": "policy", "event": {"action": "export_ban", "commodity": "dy", "to": ["CC"]}}]}),
    );
    let v = ex.wait_for("turn 1", |v| v["status"]["turn"].as_u64() >= Some(2));
    let report = v["sitreps"].as_array().unwrap().iter().find(|r| r["nation"] == "CC" && r["turn"] == 1).cloned();
    let report = report.unwrap_or_else(|| panic!("CC's report on turn 1: {}", v["sitreps"]));
    let status_of = |i: usize| report["orders"][i]["status"].as_str().unwrap_or("").to_string();
    assert_eq!(status_of(0), "filled", "{report}");
    assert!(report["orders"][0]["price_usd_per_kg"].as_f64().unwrap_or(0.0) > 11.0, "{report}");
    assert_eq!(status_of(1), "not filled", "{report}");
    assert!(report["orders"][1]["reason"].as_str().unwrap().starts_with("outbid"), "{report}");
    assert_eq!(status_of(2), "refused", "{report}");
    assert!(report["events"].to_string().contains("BB bans exports of dy refined to CC"), "{report}");
    let cc = ex.get("/api/player", "CC").1;
    assert_eq!(cc["sitreps"].as_array().map(Vec::len), Some(1), "CC sees its own report only");
    assert!(!cc["sitreps"].to_string().contains("\"nation\":\"BB\""), "not BB's");

    // A lift of a restriction imposed during the exercise: by control, and by its owner.
    let ban = "[[events]]\ntick = 0\naction = \"export_ban\"\nnation = \"AA\"\ncommodity = \"co\"\n";
    let (status, v) = ex.post("/api/control/inject", "control", json!({"toml": ban}));
    assert_eq!(status, 422, "an inject needs a name: {v}");
    assert_eq!(ex.post("/api/control/inject", "control", json!({"toml": ban, "name": "aa-co-ban"})).0, 200);
    let (status, v) = ex.post("/api/control/inject", "control", json!({"toml": ban, "name": "aa-co-ban"}));
    assert_eq!(status, 422, "names are unique: {v}");
    let restrictions = ex.get("/api/player", "BB").1["public"]["restrictions"].to_string();
    assert!(restrictions.contains("BB-export_ban-t0-0"), "{restrictions}");
    orders("BB", json!({"orders": [{"type": "policy", "event": {"action": "lift", "target": "BB-export_ban-t0-0"}}]}));
    orders("CC", json!({"orders": [], "comment": "waiting"}));
    ex.wait_for("turn 2", |v| v["status"]["turn"].as_u64() >= Some(3));
    let lift = "[[events]]\ntick = 0\naction = \"lift\"\ntarget = \"aa-co-ban\"\n";
    let (status, v) = ex.post("/api/control/inject", "control", json!({"toml": lift, "name": "aa-co-unban"}));
    assert_eq!(status, 200, "control lifts its own inject's restriction: {v}");
    let v = ex.wait_for("the lift", |v| !v["public"]["restrictions"].to_string().contains("BB-export_ban-t0-0"));
    assert!(v["events"].to_string().contains("lifted BB-export_ban-t0-0"), "{}", v["events"]);

    // This turn only: a short deadline; the next turn has the usual one again.
    let short = json!({"action": "deadline", "seconds": 1, "scope": "turn"});
    assert_eq!(ex.post("/api/control", "control", short).0, 200);
    let v = ex.wait_for("turn 3 at its short deadline", |v| v["status"]["turn"].as_u64() >= Some(4));
    assert_eq!(v["status"]["deadline_s"].as_f64(), Some(120.0), "the short deadline was for one turn");

    // Roll back to the start of turn 2: BB's lift is undone, the ban is in force again.
    assert_eq!(ex.post("/api/control", "control", json!({"action": "rollback", "turn": 9})).0, 422);
    assert_eq!(ex.post("/api/control", "control", json!({"action": "rollback", "turn": 2})).0, 200);
    let v = ex.wait_for("the rollback", |v| v["status"]["turn"].as_u64() == Some(2));
    assert_eq!(v["status"]["tick"].as_u64(), Some(2), "{}", v["status"]);
    assert!(v["public"]["restrictions"].to_string().contains("BB-export_ban-t0-0"), "the ban is back");
    assert!(v["sitreps"].as_array().unwrap().iter().all(|r| r["turn"] == 1), "later reports are gone");
    assert_eq!(ex.post("/api/control", "control", json!({"action": "resolve"})).0, 200);
    ex.wait_for("turn 2 again", |v| v["status"]["turn"].as_u64() >= Some(3));
    assert_eq!(ex.post("/api/control", "control", json!({"action": "end"})).0, 200);
    let db = ex.db.clone();
    assert!(wait_with_timeout(&mut ex.child, Duration::from_secs(30)), "the exercise exits when control ends it");

    // Recorded as completed, ended by control; replay and the debrief follow the rollback.
    let store = coordinator::store::Store::open(&db).expect("store");
    let meta = store.run(coordinator::store::RunId(1)).expect("run");
    assert_eq!((meta.status.as_str(), meta.ended_by.as_deref()), ("completed", Some("control")));
    let journal = store.journal(coordinator::store::RunId(1)).expect("journal");
    assert!(journal.iter().any(|j| j.input.kind() == "rollback"), "the rollback is journaled");
    let ended_at = meta.ticks_done;
    let out_dir = meta.out_dir.clone();
    drop(store);
    let replay = ok(&common::chokepoint(&db, &["replay", "1"]));
    assert!(replay.contains("recorded digests match"), "{replay}");
    let report_dir = temp_dir("exercise-rollback-report");
    ok(&common::chokepoint(&db, &["report", "1", "--out", &report_dir.display().to_string()]));
    let digests = std::fs::read_to_string(std::path::Path::new(&out_dir).join("digests.csv")).unwrap();
    assert_eq!(digests.lines().count() as u32, ended_at + 1, "the outputs were cut back at the rollback");

    // A fork's events may lift what the exercise imposed; by default it ends where the parent did.
    let events = report_dir.join("lift.toml");
    std::fs::write(&events, "[[events]]\ntick = 3\naction = \"lift\"\ntarget = \"BB-export_ban-t0-0\"\n").unwrap();
    let fork = ok(&common::chokepoint(
        &db,
        &[
            "fork",
            "1",
            "--at",
            "2",
            "--quiet",
            "--events",
            &events.display().to_string(),
            "--out",
            &report_dir.join("fork").display().to_string(),
        ],
    ));
    assert!(fork.contains(&format!("to tick {ended_at}")), "{fork}");

    // `resume` continues an exercise only when asked, under AI, into a new folder.
    let refused = common::chokepoint(&db, &["resume", "1", "--quiet"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--ai"), "{}", String::from_utf8_lossy(&refused.stderr));
    let ai_out = report_dir.join("ai");
    ok(&common::chokepoint(&db, &["resume", "1", "--ai", "--quiet", "--out", &ai_out.display().to_string()]));
    let ai_digests = std::fs::read_to_string(ai_out.join("digests.csv")).unwrap();
    assert_eq!(ai_digests.lines().count(), 61, "continued to the scenario's end");
    let again = std::fs::read_to_string(std::path::Path::new(&out_dir).join("digests.csv")).unwrap();
    assert_eq!(again, digests, "the exercise's own outputs are left as they were");
    let _ = std::fs::remove_dir_all(report_dir);
}

/// Three players and control in a real headless Chromium (tests/browser/exercise.mjs): a bad
/// token blocks only itself, the charts have axes and a legend, typing survives refreshes,
/// situation reports show a filled and an unfilled order, a lift ends a restriction, and a
/// rollback of one turn brings it back; then the replay of the run passes.
#[test]
#[ignore = "needs Debian's chromium and `npm ci` in tests/browser; .ci/run installs both and runs it with --include-ignored"]
fn the_exercise_console_in_a_real_browser() {
    let mut ex = start("BB,CC,DD", &["--turn", "2", "--deadline", "300s"]);
    let root = temp_dir("exercise-browser");
    let tokens = root.join("tokens.json");
    std::fs::write(&tokens, serde_json::to_string(&ex.tokens).unwrap()).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser/exercise.mjs");
    let shots = std::env::var_os("CHOKEPOINT_SCREENSHOTS").map_or(root.join("screenshots"), std::path::PathBuf::from);
    let out = Command::new("node")
        .arg(&script)
        .args([&format!("http://{}/", ex.addr), &tokens.display().to_string(), &shots.display().to_string()])
        .output()
        .expect("node runs (install Node.js)");
    assert!(
        out.status.success(),
        "the browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shots.join("05-rolled-back-control.png").exists());
    // The server agrees with what the pages showed.
    let v = ex.get("/api/control", "control").1;
    assert!(v["missed"].to_string().contains("DD"));
    assert_eq!(v["status"]["turn"].as_u64(), Some(2), "rolled back to turn 2");
    assert_eq!(ex.post("/api/control", "control", json!({"action": "end"})).0, 200);
    let db = ex.db.clone();
    assert!(wait_with_timeout(&mut ex.child, Duration::from_secs(30)));
    let replay = ok(&common::chokepoint(&db, &["replay", "1"]));
    assert!(replay.contains("recorded digests match"), "the replay of a run with a rollback: {replay}");
    let _ = std::fs::remove_dir_all(root);
}

/// The same operations over gRPC, with the token as metadata.
#[test]
fn the_exercise_over_grpc() {
    use proto::v1::exercise_client::ExerciseClient;
    use proto::v1::{ControlActionRequest, ExerciseEmpty, OrderSpec, SubmitOrdersRequest};
    let ex = start("CC,DD", &["--turn", "1", "--deadline", "60s", "--tick-interval", "0.2s"]);
    let url = format!("http://{}", ex.grpc);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut client = ExerciseClient::connect(url).await.expect("connect");
        fn with<T>(token: &str, body: T) -> tonic::Request<T> {
            let mut r = tonic::Request::new(body);
            r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
            r
        }
        let e = client.who_am_i(ExerciseEmpty {}).await.expect_err("no token");
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        let e = client.who_am_i(with("wrong", ExerciseEmpty {})).await.expect_err("wrong token");
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        let me = client.who_am_i(with(&ex.tokens["CC"], ExerciseEmpty {})).await.expect("who").into_inner();
        assert!(me.json.contains("\"nation\":\"CC\""), "{}", me.json);
        let e =
            client.control_view(with(&ex.tokens["CC"], ExerciseEmpty {})).await.expect_err("a player is not control");
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        let view = client.player_view(with(&ex.tokens["CC"], ExerciseEmpty {})).await.expect("view").into_inner();
        assert!(view.json.contains("\"books\""));

        let bad = SubmitOrdersRequest {
            orders: vec![OrderSpec {
                r#type: "buy".into(),
                commodity: "zz".into(),
                quantity_t: 1.0,
                limit_usd_per_kg: 30.0,
                ..OrderSpec::default()
            }],
            comment: String::new(),
            replace: false,
        };
        let e = client.submit_orders(with(&ex.tokens["CC"], bad)).await.expect_err("invalid");
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("\"field\":\"commodity\""), "{}", e.message());
        let good = SubmitOrdersRequest {
            orders: vec![OrderSpec {
                r#type: "policy".into(),
                event_json: r#"{"action": "stockpile_target", "commodity": "dy", "target_days": 120}"#.into(),
                ..OrderSpec::default()
            }],
            comment: "by bot".into(),
            replace: false,
        };
        let ok = client.submit_orders(with(&ex.tokens["CC"], good)).await.expect("accepted").into_inner();
        assert!(ok.json.contains("accepted"), "{}", ok.json);
        // Real-time mode: the clock runs without waiting for anyone.
        let realtime =
            ControlActionRequest { action: "mode".into(), mode: Some("real-time".into()), ..Default::default() };
        client.control_action(with(&ex.tokens["control"], realtime)).await.expect("real-time");
        let tick = |json: &str| serde_json::from_str::<Value>(json).unwrap()["status"]["tick"].as_u64().unwrap();
        let start_tick =
            tick(&client.control_view(with(&ex.tokens["control"], ExerciseEmpty {})).await.unwrap().into_inner().json);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now = tick(
                &client.control_view(with(&ex.tokens["control"], ExerciseEmpty {})).await.unwrap().into_inner().json,
            );
            if now >= start_tick + 3 {
                break;
            }
            assert!(Instant::now() < deadline, "real-time mode did not advance ({start_tick} -> {now})");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let end = ControlActionRequest { action: "end".into(), ..ControlActionRequest::default() };
        client.control_action(with(&ex.tokens["control"], end)).await.expect("end");
    });
}

/// Joining an alliance takes the members' consent; a nation that misses a deadline keeps its
/// standing orders (or only its AI, as control chooses).
#[test]
fn alliance_proposals_and_standing_orders() {
    let root = temp_dir("exercise-alliance");
    let file = root.join("pact.toml");
    let text = std::fs::read_to_string(scenario("tiny.toml")).unwrap().replacen(
        "name = \"Second consumer\"",
        "name = \"Second consumer\"\nstockpile_budget_musd = 10",
        1,
    ) + "\n[[alliances]]\nid = \"pact\"\nmembers = [\"CC\"]\n";
    std::fs::write(&file, text).unwrap();
    let ex = start_with(&file.display().to_string(), "CC,DD", &["--turn", "1", "--deadline", "2s"]);
    let orders = |role: &str, body: Value| {
        let (status, v) = ex.post("/api/orders", role, body);
        assert_eq!(status, 200, "{role}: {v}");
    };
    orders(
        "DD",
        json!({"orders": [
            {"type": "policy", "event": {"action": "join_alliance", "alliance": "pact"}},
            {"type": "buy", "commodity": "co", "quantity_t": 1, "limit_usd_per_kg": 60}
        ]}),
    );
    let (status, v) = ex.post("/api/orders", "DD", json!({"orders": [{"type": "accept_proposal", "id": 1}]}));
    assert_eq!(status, 422, "no proposal yet: {v}");
    orders("CC", json!({"orders": []}));
    ex.wait_for("turn 1", |v| v["status"]["turn"].as_u64() >= Some(2));
    let cc = ex.get("/api/player", "CC").1;
    assert_eq!(cc["proposals"][0]["nation"], "DD", "CC, a member, sees DD's proposal: {}", cc["proposals"]);
    assert!(cc["public"]["alliances"][0]["members"].to_string().contains("CC"));
    assert!(!cc["public"]["alliances"][0]["members"].to_string().contains("DD"), "not before CC accepts");
    let (status, v) = ex.post("/api/orders", "DD", json!({"orders": [{"type": "accept_proposal", "id": 1}]}));
    assert_eq!(status, 422, "DD is not a member and cannot accept for pact: {v}");
    orders("CC", json!({"orders": [{"type": "accept_proposal", "id": 1}]}));
    // DD says nothing this turn: its standing buy order is placed again.
    let v = ex.wait_for("DD to join", |v| v["public"]["alliances"][0]["members"].to_string().contains("DD"));
    let notes = v["notes"].to_string();
    assert!(notes.contains("DD missed the deadline of turn 2: its standing orders (1 limit order(s))"), "{notes}");
    assert!(notes.contains("proposal #1: DD joins pact"), "{notes}");
    // And leaves again, at once.
    orders("DD", json!({"orders": [{"type": "policy", "event": {"action": "leave_alliance", "alliance": "pact"}}]}));
    orders("CC", json!({"orders": []}));
    ex.wait_for("DD to leave", |v| !v["public"]["alliances"][0]["members"].to_string().contains("DD"));
    assert_eq!(ex.post("/api/control", "control", json!({"action": "on_missed", "mode": "ai"})).0, 200);
    assert_eq!(ex.get("/api/control", "control").1["status"]["on_missed"], "ai");
    assert_eq!(ex.post("/api/control", "control", json!({"action": "on_missed", "mode": "maybe"})).0, 422);
    assert_eq!(ex.post("/api/control", "control", json!({"action": "end"})).0, 200);
    let _ = std::fs::remove_dir_all(root);
}
