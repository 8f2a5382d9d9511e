//! The debrief verbs on a recorded run: the HTML report has every chart and the summary, its
//! images are valid SVG of real size, and it references nothing outside its folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scenario(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(file).display().to_string()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chokepoint-debrief-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn chokepoint(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chokepoint")).arg("--db").arg(db).args(args).output().expect("chokepoint runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every `src="…"` and `href="…"` value in an HTML text.
fn references(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            if let Some(end) = rest.find('"') {
                out.push(rest[..end].to_string());
            }
        }
    }
    out
}

#[test]
fn the_report_has_every_chart_and_the_summary_and_stays_in_its_folder() {
    let root = temp_dir("report");
    let db = root.join("db");
    ok(&chokepoint(&db, &["run", &scenario("tiny.toml"), "--quiet", "--out", &root.join("o").display().to_string()]));
    let dir = root.join("report");
    let printed = ok(&chokepoint(&db, &["report", "1", "--out", &dir.display().to_string()]));
    assert!(printed.contains("Largest price move: dy refined"), "{printed}");

    let html = std::fs::read_to_string(dir.join("index.html")).expect("index.html");
    for chart in [
        "price_co.svg",
        "price_dy.svg",
        "cover_co.svg",
        "cover_dy.svg",
        "shortages.svg",
        "shortages_by_sector.svg",
        "flows_co.svg",
        "flows_dy.svg",
        "restrictions.svg",
    ] {
        assert!(html.contains(&format!("src=\"charts/{chart}\"")), "{chart} is not in the report");
        let svg = std::fs::read_to_string(dir.join("charts").join(chart)).expect(chart);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{chart} is not SVG");
        assert!(svg.trim_end().ends_with("</svg>"), "{chart} is truncated");
        assert!(svg.len() > 1500, "{chart} is trivially small ({} bytes)", svg.len());
        assert!(svg.contains("<title>"), "{chart} has no title");
        assert_eq!(
            svg.matches("<text").count(),
            svg.matches("</text>").count(),
            "{chart} has unbalanced text elements"
        );
    }
    for needle in [
        "Largest price move",
        "No nation went short",
        "Largest stockpile drawdown",
        "First restriction: from tick 20",
        "US$ per kg",
        "tick (7 days each)",
    ] {
        assert!(
            html.contains(needle)
                || std::fs::read_dir(dir.join("charts"))
                    .unwrap()
                    .any(|f| std::fs::read_to_string(f.unwrap().path()).unwrap().contains(needle)),
            "{needle} missing"
        );
    }
    for r in references(&html) {
        assert!(
            !r.contains("://") && !r.starts_with('/') && !r.contains(".."),
            "the report references {r} outside its folder"
        );
        assert!(dir.join(&r).exists(), "the report references {r}, which is missing");
    }
    assert!(!html.contains("<script"), "the report needs no script");
    let _ = std::fs::remove_dir_all(root);
}
