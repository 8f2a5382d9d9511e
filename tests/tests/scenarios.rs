//! Scenario validation: every kind of mistake is refused with a message naming the file, the
//! line and the field; no input makes the loader panic. The bad files are made by editing
//! `scenarios/tiny.toml`, so each case differs from a valid file in exactly one place.

use chokepoint_tests::{load, scenario_path};
use engine::scenario::{Scenario, ScenarioError, parse};

fn tiny() -> String {
    std::fs::read_to_string(scenario_path("tiny.toml")).expect("tiny.toml exists")
}

/// Replaces the first occurrence of `from` (which must exist) with `to`.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "test fixture lacks {from:?}");
    text.replacen(from, to, 1)
}

/// The 1-based line of the first occurrence of `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).expect("needle present") + 1
}

fn refuse(text: &str) -> ScenarioError {
    match parse(text, "bad.toml") {
        Ok(_) => panic!("the scenario was accepted"),
        Err(e) => e,
    }
}

#[test]
fn the_shipped_scenarios_are_valid() {
    for file in [
        "tiny.toml",
        "baseline-2024.toml",
        "cobalt-2016.toml",
        "nickel-ore-ban-2014.toml",
        "cobalt-halt-2025.toml",
        "graphite-licensing-2023.toml",
    ] {
        let s = load(file);
        assert!(!s.agents.is_empty(), "{file} has no agents");
    }
}

#[test]
fn an_unknown_field_is_named_with_its_line() {
    let text = edit(&tiny(), "unit_cost_usd_per_kg = 8.0", "unit_cost_usd_per_kg = 8.0\ncolour = \"red\"");
    let e = refuse(&text);
    assert_eq!(e.file, "bad.toml");
    assert_eq!(e.line, line_of(&text, "colour"), "{e}");
    assert!(e.message.contains("colour"), "{e}");
    assert!(e.to_string().starts_with(&format!("bad.toml:{}:", e.line)), "{e}");
}

#[test]
fn a_miner_in_an_undefined_nation() {
    let text = edit(
        &tiny(),
        "nation = \"DD\"\ncommodity = \"co\"\ncapacity_t_per_year = 5000",
        "nation = \"ZZ\"\ncommodity = \"co\"\ncapacity_t_per_year = 5000",
    );
    let e = refuse(&text);
    assert_eq!(e.field, "miners[1].nation", "{e}");
    assert_eq!(e.line, line_of(&text, "\"ZZ\""), "{e}");
    assert!(e.message.contains("unknown nation \"ZZ\"") && e.message.contains("AA"), "{e}");
}

#[test]
fn a_negative_capacity() {
    let text = edit(&tiny(), "capacity_t_per_year = 20000", "capacity_t_per_year = -20000");
    let e = refuse(&text);
    assert_eq!(e.field, "miners[0].capacity_t_per_year", "{e}");
    assert_eq!(e.line, line_of(&text, "-20000"), "{e}");
    assert!(e.message.contains("negative"), "{e}");
}

#[test]
fn a_quota_over_one_hundred_percent() {
    let text = edit(&tiny(), "pct_of_last_year = 60", "pct_of_last_year = 140");
    let e = refuse(&text);
    assert_eq!(e.field, "events[0].pct_of_last_year", "{e}");
    assert_eq!(e.line, line_of(&text, "pct_of_last_year = 140"), "{e}");
    assert!(e.message.contains("100%"), "{e}");
}

#[test]
fn a_commodity_with_no_refined_stage() {
    let text = edit(
        &tiny(),
        "[commodities.refined]\nreference_usd_per_kg = 27.0\nprice_min_usd_per_kg = 1.0\nprice_max_usd_per_kg = 800.0\n",
        "",
    );
    let e = refuse(&text);
    assert_eq!(e.field, "commodities[0]", "{e}");
    assert!(e.message.contains("no refined stage"), "{e}");
    assert_eq!(e.line, line_of(&text, "[[commodities]]"), "{e}");
}

#[test]
fn more_mistakes_each_named() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("tick = 20", "tick = -3", "events[0].tick", "negative"),
        ("tick = 20", "tick = 999", "events[0].tick", "after the run ends"),
        ("sector = \"defense\"", "sector = \"navy\"", "manufacturers[2].sector", "unknown sector"),
        ("target = \"bb-co-licensing\"", "target = \"nope\"", "events[2].target", "no event is named"),
        ("ticks = 60", "ticks = 0", "scenario.ticks", "between 1"),
        (
            "demand_t_per_year = { co = 9000 }",
            "demand_t_per_year = { xx = 9000 }",
            "manufacturers[0].demand_t_per_year.xx",
            "unknown commodity",
        ),
        (
            "reference_usd_per_kg = 18.0",
            "reference_usd_per_kg = 900.0",
            "commodities[0].ore.reference_usd_per_kg",
            "between",
        ),
        ("action = \"export_licensing\"", "action = \"export_embargo\"", "events[1].action", "unknown action"),
        ("delay_ticks = 3", "delay_ticks = 0", "events[1].delay_ticks", "between 1"),
        ("elasticity = 0.05", "elasticity = -1", "manufacturers[2].elasticity", "negative"),
        ("id = \"DD\"", "id = \"AA\"", "nations[3].id", "defined twice"),
    ];
    for (from, to, field, words) in cases {
        let text = edit(&tiny(), from, to);
        let e = refuse(&text);
        assert_eq!(&e.field, field, "editing {from:?} -> {to:?}: {e}");
        assert!(e.message.contains(words), "editing {from:?} -> {to:?}: {e}");
        assert!(e.line > 0, "no line for {e}");
    }
}

#[test]
fn syntax_errors_and_wrong_types_name_the_line() {
    let text = edit(&tiny(), "seed = 7", "seed = \"seven\"");
    let e = refuse(&text);
    assert_eq!(e.line, line_of(&text, "seed = \"seven\""), "{e}");
    assert_eq!(e.field, "seed", "{e}");
    let text = edit(&tiny(), "[[miners]]", "[[miners]");
    let e = refuse(&text);
    assert!(e.line > 0, "{e}");
}

#[test]
fn no_input_panics() {
    // Truncations of a valid file at every 97th byte and a few odd inputs all return, and
    // every refusal names the file, the field and the problem.
    let text = tiny();
    assert!(parse(&text, "whole.toml").is_ok(), "the whole file is valid");
    let mut refused = 0;
    for cut in (0..text.len()).step_by(97).filter(|c| text.is_char_boundary(*c)) {
        if let Err(e) = parse(&text[..cut], "cut.toml") {
            assert_eq!(e.file, "cut.toml", "{e}");
            assert!(!e.field.is_empty() && !e.message.is_empty(), "cut at byte {cut}: {e}");
            refused += 1;
        }
    }
    assert!(refused > 0, "truncated files are refused");
    for odd in ["", "\u{0}", "[scenario]\nname = 1", "[[nations]]\nid = \"\"", "x = [[[["] {
        let e = parse(odd, "odd.toml").expect_err(odd);
        assert!(!e.message.is_empty(), "{odd:?}: {e}");
    }
}

/// A `[synthetic]` table loads the world `chokepoint synth` writes, without its text: the same
/// scenario (source aside) and the same run; the file's own events may name generated nations.
#[test]
fn a_synthetic_table_loads_the_world_synth_writes() {
    use engine::synth::{SynthOptions, SynthWorld, generate};
    let options = SynthOptions { nations: 12, agents: 900, seed: 4, ticks: 6 };
    let written = parse(&generate(&options).expect("generate"), "written.toml").expect("valid");
    let header = SynthWorld::new(&options).expect("world").scenario_table();
    let short = format!("{header}\n[synthetic]\nnations = 12\nagents = 900\nseed = 4\n");
    let loaded = parse(&short, "short.toml").expect("valid");
    assert_eq!(loaded.agents.len(), 900);
    assert_eq!(
        engine::scenario::Scenario { source: String::new(), ..loaded.clone() },
        engine::scenario::Scenario { source: String::new(), ..written.clone() }
    );
    let n = loaded.agents.len();
    assert_eq!(
        chokepoint_tests::digests(&loaded, coordinator::Placement::single(n), 6),
        chokepoint_tests::digests(&written, coordinator::Placement::single(n), 6)
    );

    // The generator's seed defaults to the scenario's (4 here), and events may use its nations.
    let with_event = format!(
        "{header}\n[synthetic]\nnations = 12\nagents = 900\n\n[[events]]\ntick = 2\naction = \"export_ban\"\nnation = \"N0003\"\ncommodity = \"co\"\nstage = \"refined\"\n"
    );
    let scenario = parse(&with_event, "event.toml").expect("valid");
    assert_eq!(scenario.events.len(), 1);
    assert_eq!(
        Scenario { source: String::new(), events: Vec::new(), ..scenario },
        Scenario { source: String::new(), ..loaded }
    );
}

#[test]
fn a_synthetic_table_names_its_mistakes() {
    let header = "[scenario]\nname = \"s\"\nseed = 1\nticks = 5\n";
    let e = refuse(&format!("{header}\n[synthetic]\nnations = 1\nagents = 500\n"));
    assert_eq!((e.field.as_str(), e.line), ("synthetic.nations", 7), "{e}");
    assert!(e.message.contains("between 2 and 9999"), "{e}");
    let e = refuse(&format!("{header}\n[synthetic]\nnations = 10\nagents = 20\n"));
    assert_eq!(e.field, "synthetic.agents", "{e}");
    assert!(e.message.contains("nations + 27"), "{e}");
    let e = refuse(&format!("{header}\n[synthetic]\nnations = 10\nagents = 500\nsize = 3\n"));
    assert!(e.message.contains("size"), "{e}");
    let e = refuse(&format!("{header}\n[synthetic]\nnations = 10\nagents = 500\n\n[[nations]]\nid = \"XX\"\n"));
    assert!(e.message.contains("generates its own nations"), "{e}");
}

/// Asserts an error is placed (a line and column from 1) and names a field and the problem.
fn placed(e: &ScenarioError, case: &str) {
    assert!(e.line >= 1 && e.column >= 1, "{case}: no place in {e}");
    assert!(!e.field.is_empty() && !e.message.is_empty(), "{case}: no field or message in {e}");
    assert!(e.to_string().starts_with(&format!("{}:{}:{}: ", e.file, e.line, e.column)), "{case}: {e}");
}

#[test]
fn every_kind_of_mistake_has_a_line_and_a_field() {
    let text = tiny();
    let deep_array = format!("x = {}{}", "[".repeat(200), "]".repeat(200));
    let deep_table = format!("x = {}1{}", "{a = ".repeat(200), "}".repeat(200));
    let deep_key = format!("[x{}]", ".a".repeat(300));
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("2^63 in an integer field", edit(&text, "seed = 7", "seed = 9223372036854775808"), "seed", "2^63"),
        ("2^64 in an integer field", edit(&text, "tick = 20", "tick = 18446744073709551616"), "tick", "2^63"),
        ("below -2^63", edit(&text, "seed = 7", "seed = -9223372036854775809"), "seed", "2^63"),
        (
            "2^63 in a number field",
            edit(&text, "capacity_t_per_year = 20000", "capacity_t_per_year = 9223372036854775808"),
            "miners[0].capacity_t_per_year",
            "implausibly large",
        ),
        (
            "2^63 in a quota",
            edit(&text, "pct_of_last_year = 60", "pct_of_last_year = 9223372036854775808"),
            "events[0].pct_of_last_year",
            "100%",
        ),
        (
            "arrays nested too deep",
            edit(&text, "seed = 7", &format!("seed = 7\n{deep_array}")),
            "x",
            "nested too deeply",
        ),
        (
            "tables nested too deep",
            edit(&text, "seed = 7", &format!("seed = 7\n{deep_table}")),
            "x",
            "nested too deeply",
        ),
        (
            "a key nested too deep",
            edit(&text, "seed = 7", &format!("seed = 7\n{deep_key}")),
            "x.a.a",
            "nested too deeply",
        ),
        ("no [scenario]", text[text.find("[[commodities]]").unwrap()..].to_string(), "scenario", "no [scenario] table"),
        ("a field missing from [scenario]", edit(&text, "name = \"tiny\"", ""), "scenario.name", "missing field"),
        (
            "no [[commodities]]",
            format!("{}{}", &text[..text.find("[[commodities]]").unwrap()], &text[text.find("[[nations]]").unwrap()..]),
            "commodities",
            "at least one [[commodities]]",
        ),
        (
            "no [[nations]]",
            format!("{}{}", &text[..text.find("[[nations]]").unwrap()], &text[text.find("[[miners]]").unwrap()..]),
            "nations",
            "at least one [[nations]]",
        ),
    ];
    for (case, bad, field, words) in &cases {
        let e = refuse(bad);
        placed(&e, case);
        assert!(e.field.starts_with(field), "{case}: field {:?} in {e}", e.field);
        assert!(e.message.contains(words), "{case}: {e}");
    }
}

#[test]
fn a_file_that_is_not_utf8_is_refused_at_its_byte() {
    let text = tiny();
    let at = text.find("name = \"tiny\"").unwrap() + "name = \"ti".len();
    let mut bytes = text.clone().into_bytes();
    bytes[at] = 0xE9;
    let e = engine::scenario::text_of(&bytes, "latin1.toml").expect_err("not UTF-8");
    placed(&e, "non-UTF-8");
    assert_eq!((e.line, e.column), (line_of(&text, "name = \"tiny\""), 11), "{e}");
    assert_eq!(e.field, "name", "{e}");
    assert!(e.message.contains(&format!("byte 0xE9 at byte offset {at}")), "{e}");

    // The same through the file loader, which reads bytes.
    let dir = std::env::temp_dir().join(format!("chokepoint-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("latin1.toml");
    std::fs::write(&file, &bytes).unwrap();
    let e = coordinator::load_scenario(&file).expect_err("not UTF-8");
    assert!(e.message.contains("not UTF-8") && e.line > 1, "{e}");
    // A file over the size limit is refused before it is read (a sparse file: nothing is
    // written).
    let huge = dir.join("huge.toml");
    std::fs::File::create(&huge).unwrap().set_len(engine::scenario::MAX_SCENARIO_BYTES as u64 + 1).unwrap();
    let e = coordinator::load_scenario(&huge).expect_err("too large");
    assert!(e.message.contains("at most 256 MiB"), "{e}");
    placed(&e, "too large");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn damaged_files_are_refused_with_a_place() {
    // Every 53rd byte of a valid file replaced by each of a few characters that break TOML or
    // the scenario's rules: whatever the damage, the refusal has a line and a field.
    let text = tiny();
    let mut refused = 0;
    for at in (0..text.len()).step_by(53).filter(|c| text.is_char_boundary(*c) && text.is_char_boundary(c + 1)) {
        for ch in ["\"", "[", "=", "\n", "9", "}", "-", "."] {
            let bad = format!("{}{ch}{}", &text[..at], &text[at + 1..]);
            if let Err(e) = parse(&bad, "damaged.toml") {
                placed(&e, &format!("byte {at} replaced by {ch:?}"));
                refused += 1;
            }
        }
    }
    assert!(refused > 100, "only {refused} damaged files were refused");
}
