//! The debrief verbs on a recorded run: the HTML report has every chart and the summary, its
//! images are valid SVG of real size, and it references nothing outside its folder.

mod common;
use common::{chokepoint, ok, scenario, temp_dir};

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

#[test]
fn exports_read_back_with_the_expected_columns_and_rows() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor;
    let root = temp_dir("export");
    let db = root.join("db");
    ok(&chokepoint(&db, &["run", &scenario("tiny.toml"), "--quiet", "--out", &root.join("o").display().to_string()]));
    let csv = root.join("csv");
    let pq = root.join("pq");
    ok(&chokepoint(&db, &["export", "1", "--format", "csv", "--out", &csv.display().to_string()]));
    let printed = ok(&chokepoint(&db, &["export", "1", "--format", "parquet", "--out", &pq.display().to_string()]));
    assert!(printed.contains("7 tables"), "{printed}");
    let expected: &[(&str, &[&str])] = &[
        ("prices", &["tick", "commodity", "stage", "zone", "price_cents_per_kg", "volume_kg"]),
        ("trades", &["tick", "commodity", "stage", "from", "to", "volume_kg", "value_cents"]),
        ("production", &["tick", "nation", "commodity", "stage", "produced_kg"]),
        ("stockpiles", &["tick", "nation", "commodity", "stock_kg", "target_days", "cover_days"]),
        ("shortages", &["tick", "nation", "sector", "commodity", "wanted_kg", "consumed_kg", "shortage_kg"]),
        ("events", &["effective_tick", "name", "description"]),
        ("orders", &["tick", "seq", "source", "kind", "description", "received_at", "in_force"]),
    ];
    for (table, columns) in expected {
        let text = std::fs::read_to_string(csv.join(format!("{table}.csv"))).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), columns.join(","), "{table}.csv header");
        let csv_rows = lines.count();
        let reader = SerializedFileReader::new(std::fs::File::open(pq.join(format!("{table}.parquet"))).unwrap())
            .expect("valid parquet");
        let meta = reader.metadata();
        let names: Vec<String> =
            meta.file_metadata().schema_descr().columns().iter().map(|c| c.name().to_string()).collect();
        assert_eq!(names, columns.iter().map(|c| c.to_string()).collect::<Vec<_>>(), "{table}.parquet columns");
        assert_eq!(meta.file_metadata().num_rows() as usize, csv_rows, "{table}: parquet and csv row counts");
        assert!(meta.row_groups().iter().all(|g| {
            g.columns().iter().all(|c| c.compression() == parquet::basic::Compression::ZSTD(Default::default()))
        }));
    }
    // Concrete counts: 60 ticks × 4 markets of world prices plus the domestic rows, and the
    // first price row matches markets.csv from the run itself.
    let prices = std::fs::read_to_string(csv.join("prices.csv")).unwrap();
    let world = prices.lines().filter(|l| l.contains(",world,")).count();
    assert_eq!(world, 240);
    let run_markets = std::fs::read_to_string(root.join("o/markets.csv")).unwrap();
    let first = run_markets.lines().nth(1).unwrap();
    let price = first.split(',').nth(3).unwrap();
    let reader = SerializedFileReader::new(std::fs::File::open(pq.join("prices.parquet")).unwrap()).unwrap();
    let row = reader.get_row_iter(None).unwrap().next().unwrap().unwrap();
    assert_eq!(row.get_long(4).unwrap().to_string(), price);
    assert_eq!(row.get_string(3).unwrap(), "world");
    let events = std::fs::read_to_string(csv.join("events.csv")).unwrap();
    assert!(events.contains("bb-dy-quota"), "{events}");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn diff_names_the_first_divergence_and_the_outcome_deltas() {
    let root = temp_dir("diff");
    let db = root.join("db");
    ok(&chokepoint(&db, &["run", &scenario("tiny.toml"), "--quiet", "--out", &root.join("a").display().to_string()]));
    ok(&chokepoint(&db, &["fork", "1", "--at", "25", "--quiet", "--out", &root.join("b").display().to_string()]));
    let same = ok(&chokepoint(&db, &["diff", "1", "2"]));
    assert!(same.contains("ticks 25..=59 in common") && same.contains("No divergence"), "{same}");
    // Counterfactual: keep the scheduled events, but ban cobalt exports from BB from tick 35.
    let events = root.join("events.toml");
    std::fs::write(
        &events,
        "[[events]]\ntick = 30\nname = \"bb-co-licensing\"\nnation = \"BB\"\naction = \"export_licensing\"\ncommodity = \"co\"\ndelay_ticks = 3\n\n[[events]]\ntick = 40\naction = \"lift\"\ntarget = \"bb-co-licensing\"\n\n[[events]]\ntick = 45\naction = \"lift\"\ntarget = \"bb-dy-quota\"\n\n[[events]]\ntick = 35\nname = \"co-ban\"\nnation = \"BB\"\naction = \"export_ban\"\ncommodity = \"co\"\n",
    )
    .unwrap();
    ok(&chokepoint(
        &db,
        &[
            "fork",
            "1",
            "--at",
            "25",
            "--events",
            &events.display().to_string(),
            "--quiet",
            "--out",
            &root.join("c").display().to_string(),
        ],
    ));
    let out = root.join("diff");
    let changed = ok(&chokepoint(&db, &["diff", "1", "3", "--out", &out.display().to_string()]));
    assert!(
        changed.contains("First divergence: tick 34"),
        "the ban of tick 35 is applied at the end of tick 34:\n{changed}"
    );
    let co = changed.lines().find(|l| l.trim_start().starts_with("co refined")).expect("a co refined row");
    let delta: f64 = co.split_whitespace().nth(4).unwrap().parse().unwrap();
    assert!(delta > 0.0, "banning the refiner's exports raises the world price: {co}");
    assert!(out.join("index.html").exists() && out.join("charts/price_co.svg").exists());
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(page.contains("<table>") && !page.contains("<pre>"), "the diff page is tables");
    assert!(page.contains("class=\"divergence\">First divergence: tick 34"), "the first divergence is marked");
    // A shorter fork: the diff compares only the ticks both have, and charts only those.
    ok(&chokepoint(
        &db,
        &["fork", "1", "--at", "25", "--ticks", "40", "--quiet", "--out", &root.join("d").display().to_string()],
    ));
    let short = root.join("diff-short");
    let text = ok(&chokepoint(&db, &["diff", "1", "4", "--out", &short.display().to_string()]));
    assert!(text.contains("ticks 25..=39 in common"), "{text}");
    let svg = std::fs::read_to_string(short.join("charts/price_co.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("valid SVG");
    let labels: Vec<f64> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text") && n.attribute("text-anchor") == Some("middle"))
        .filter(|n| n.parent_element().and_then(|p| p.attribute("class")) != Some("marker"))
        .filter_map(|n| n.text().and_then(|t| t.replace(',', "").parse().ok()))
        .collect();
    assert!(
        !labels.is_empty() && labels.iter().all(|x| (25.0..=40.0).contains(x)),
        "x axis over the shared ticks only: {labels:?}"
    );
    let _ = std::fs::remove_dir_all(root);
}
