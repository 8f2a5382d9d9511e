//! The after-action report: a folder with `index.html` and its charts as SVG files beside it in
//! `charts/`. The page references nothing outside its folder, so it opens from disk on an
//! isolated machine. It shows the clearing price of every commodity at both stages, stockpile
//! cover per nation, shortages by nation and sector, who supplied whom, the restrictions in force
//! over time, the events and injects on every timeline, and a short summary of the biggest moves.

use super::RunData;
use super::chart::{LineChart, Marker, Matrix, Series, Timeline, escape};
use agents::nation::cover_tenths_of_days;
use agents::{CommodityId, MarketId, NationId, Stage};
use engine::record::describe_restriction;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What the report said, for the command line and tests.
#[derive(Debug)]
pub struct ReportSummary {
    pub index: PathBuf,
    pub charts: Vec<PathBuf>,
    pub highlights: Vec<String>,
}

fn usd(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, (cents % 100).abs())
}

/// Events and injects as chart markers, at the tick they take effect.
fn markers(data: &RunData) -> Vec<Marker> {
    let mut out: Vec<Marker> = data
        .records
        .iter()
        .flat_map(|r| r.events.iter())
        .map(|(at, occurrence)| {
            let text = occurrence.describe(&data.scenario);
            Marker { x: f64::from(at.0), label: text.split(':').next().unwrap_or(&text).to_string() }
        })
        .collect();
    for j in &data.journal {
        out.push(Marker { x: f64::from(j.tick), label: format!("{} (by {})", j.input.describe(), j.source) });
    }
    out
}

/// Writes the report for `data` into `dir` (created if needed).
pub fn write(data: &RunData, dir: &Path) -> std::io::Result<ReportSummary> {
    let charts_dir = dir.join("charts");
    std::fs::create_dir_all(&charts_dir)?;
    let s = &data.scenario;
    let mut charts = Vec::new();
    let mut save = |name: &str, svg: String| -> std::io::Result<String> {
        let path = charts_dir.join(name);
        std::fs::write(&path, svg)?;
        charts.push(path);
        Ok(format!("charts/{name}"))
    };
    let marks = markers(data);
    let mut html = String::new();

    // Prices.
    let mut price_imgs = Vec::new();
    for (c, commodity) in s.commodities.iter().enumerate() {
        let mut series = Vec::new();
        for stage in Stage::ALL {
            let m = MarketId::new(CommodityId(c as u16), stage);
            let points = data
                .records
                .iter()
                .filter_map(|r| {
                    r.markets.iter().find(|x| x.market == m).map(|x| (f64::from(r.tick.0), x.price.0 as f64 / 100.0))
                })
                .collect();
            series.push(Series { name: format!("{} (world)", stage.as_str()), points });
            // Domestic prices of restricted exporters, where there were any.
            let mut domestic: BTreeMap<NationId, Vec<(f64, f64)>> = BTreeMap::new();
            for r in &data.records {
                if let Some(x) = r.markets.iter().find(|x| x.market == m) {
                    for (n, p) in &x.domestic {
                        domestic.entry(*n).or_default().push((f64::from(r.tick.0), p.0 as f64 / 100.0));
                    }
                }
            }
            for (n, points) in domestic {
                series.push(Series { name: format!("{} in {}", stage.as_str(), s.nation_code(n)), points });
            }
        }
        let chart = LineChart {
            title: format!("{} — clearing price", commodity.name),
            x_label: format!("tick ({} days each)", s.tick_days),
            y_label: "US$ per kg".into(),
            series,
            markers: marks.iter().map(|m| Marker { x: m.x, label: m.label.clone() }).collect(),
        };
        price_imgs.push((commodity.name.clone(), save(&format!("price_{}.svg", commodity.code), chart.svg())?));
    }

    // Stockpile cover.
    let mut cover_imgs = Vec::new();
    for (c, commodity) in s.commodities.iter().enumerate() {
        let id = CommodityId(c as u16);
        let mut by_nation: BTreeMap<NationId, Vec<(f64, f64)>> = BTreeMap::new();
        for r in &data.records {
            for p in r.stockpiles.iter().filter(|p| p.commodity == id) {
                let cover = cover_tenths_of_days(p.stock, p.consumption_per_tick, s.tick_days).unwrap_or(0);
                by_nation.entry(p.nation).or_default().push((f64::from(r.tick.0), cover as f64 / 10.0));
            }
        }
        if by_nation.is_empty() {
            continue;
        }
        let series =
            by_nation.into_iter().map(|(n, points)| Series { name: s.nation_code(n).to_string(), points }).collect();
        let chart = LineChart {
            title: format!("{} — strategic stockpile cover", commodity.name),
            x_label: format!("tick ({} days each)", s.tick_days),
            y_label: "days of domestic consumption".into(),
            series,
            markers: Vec::new(),
        };
        cover_imgs.push((commodity.name.clone(), save(&format!("cover_{}.svg", commodity.code), chart.svg())?));
    }

    // Shortages over time by nation, and totals by nation and sector.
    let mut short_by_nation: BTreeMap<NationId, BTreeMap<u32, f64>> = BTreeMap::new();
    let mut by_sector: BTreeMap<(NationId, agents::Sector), f64> = BTreeMap::new();
    let mut wanted_total: BTreeMap<(NationId, CommodityId), (i64, i64)> = BTreeMap::new();
    for r in &data.records {
        for x in &r.shortages {
            let short = (x.wanted - x.consumed).0 as f64 / 1000.0;
            *short_by_nation.entry(x.nation).or_default().entry(r.tick.0).or_default() += short;
            *by_sector.entry((x.nation, x.sector)).or_default() += short;
            let e = wanted_total.entry((x.nation, x.commodity)).or_default();
            e.0 += x.wanted.0;
            e.1 += (x.wanted - x.consumed).0;
        }
    }
    let mut totals: Vec<(NationId, f64)> = short_by_nation.iter().map(|(n, m)| (*n, m.values().sum())).collect();
    totals.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut series: Vec<Series> = totals
        .iter()
        .filter(|(_, t)| *t > 0.0)
        .take(10)
        .map(|(n, _)| Series {
            name: s.nation_code(*n).to_string(),
            points: data
                .records
                .iter()
                .map(|r| (f64::from(r.tick.0), short_by_nation[n].get(&r.tick.0).copied().unwrap_or(0.0)))
                .collect(),
        })
        .collect();
    if series.is_empty() {
        series.push(Series {
            name: "all nations".into(),
            points: data.records.iter().map(|r| (f64::from(r.tick.0), 0.0)).collect(),
        });
    }
    let shortage_img = save(
        "shortages.svg",
        LineChart {
            title: "Shortage: demand industry could not buy".into(),
            x_label: format!("tick ({} days each)", s.tick_days),
            y_label: "tonnes per tick".into(),
            series,
            markers: marks.iter().map(|m| Marker { x: m.x, label: m.label.clone() }).collect(),
        }
        .svg(),
    )?;
    let sectors: Vec<agents::Sector> = agents::Sector::ALL.to_vec();
    let nations_with_demand: Vec<NationId> =
        by_sector.keys().map(|(n, _)| *n).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let sector_img = save(
        "shortages_by_sector.svg",
        Matrix {
            title: "Shortage by nation and sector, whole run".into(),
            row_label: "nation".into(),
            col_label: "sector".into(),
            unit: "tonnes".into(),
            rows: nations_with_demand.iter().map(|n| s.nation_code(*n).to_string()).collect(),
            cols: sectors.iter().map(|x| x.as_str().to_string()).collect(),
            values: nations_with_demand
                .iter()
                .map(|n| sectors.iter().map(|sec| by_sector.get(&(*n, *sec)).copied().unwrap_or(0.0).round()).collect())
                .collect(),
        }
        .svg(),
    )?;

    // Trade flows per commodity (refined), who supplied whom.
    let mut flow_imgs = Vec::new();
    for (c, commodity) in s.commodities.iter().enumerate() {
        let m = MarketId::refined(CommodityId(c as u16));
        let mut flows: BTreeMap<(NationId, NationId), f64> = BTreeMap::new();
        for r in &data.records {
            for (k, (q, _)) in
                r.flows.range(engine::record::FlowKey { market: m, from: NationId(0), to: NationId(0) }..)
            {
                if k.market != m {
                    break;
                }
                *flows.entry((k.from, k.to)).or_default() += q.0 as f64 / 1000.0;
            }
        }
        let from: Vec<NationId> =
            flows.keys().map(|k| k.0).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        let to: Vec<NationId> =
            flows.keys().map(|k| k.1).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        let matrix = Matrix {
            title: format!("{} (refined) — who supplied whom, whole run", commodity.name),
            row_label: "supplier".into(),
            col_label: "buyer".into(),
            unit: "tonnes".into(),
            rows: from.iter().map(|n| s.nation_code(*n).to_string()).collect(),
            cols: to.iter().map(|n| s.nation_code(*n).to_string()).collect(),
            values: from
                .iter()
                .map(|f| to.iter().map(|t| flows.get(&(*f, *t)).copied().unwrap_or(0.0).round()).collect())
                .collect(),
        };
        flow_imgs.push((commodity.name.clone(), save(&format!("flows_{}.svg", commodity.code), matrix.svg())?));
    }

    // Restrictions over time.
    let mut spans: BTreeMap<String, (u32, u32, String)> = BTreeMap::new();
    let end = data.records.last().map_or(0, |r| r.tick.0 + 1);
    for r in &data.records {
        for (name, rule) in &r.restrictions {
            let e = spans
                .entry(name.clone())
                .or_insert_with(|| (r.tick.0 + 1, r.tick.0 + 1, describe_restriction(&data.scenario, rule)));
            e.1 = r.tick.0 + 1;
        }
    }
    let mut rows: Vec<(String, f64, f64)> =
        spans.values().map(|(a, b, d)| (d.clone(), f64::from(*a), f64::from((*b).min(end)))).collect();
    rows.sort_by(|a, b| a.1.total_cmp(&b.1));
    let inject_marks: Vec<Marker> = data
        .journal
        .iter()
        .filter_map(|j| j.input.event().map(|e| Marker { x: f64::from(j.tick), label: format!("inject: {}", e.name) }))
        .collect();
    let restriction_img = save(
        "restrictions.svg",
        Timeline {
            title: "Export restrictions and tariffs in force".into(),
            x_label: "tick".into(),
            x_max: f64::from(end),
            rows: rows.clone(),
            markers: inject_marks,
        }
        .svg(),
    )?;

    let highlights = highlights(data, &wanted_total);

    // The page.
    let title = format!("Chokepoint after-action report — run {} ({}, seed {})", data.run, s.name, data.meta.seed);
    let _ = write!(
        html,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{t}</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 980px; color: #222; }}
h1 {{ font-size: 1.5em; }} h2 {{ margin-top: 2em; border-bottom: 1px solid #ccc; }}
img {{ max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }} .note {{ color: #555; }}
</style></head><body>
<h1>{t}</h1>
<p class="note">Ticks {first}–{last} ({days} days each). Scenario {scen} recorded as run {run}{parent}. Status: {status}. Final state digest {digest}.</p>
<h2>Summary: the biggest moves</h2><ul>
"#,
        t = escape(&title),
        first = data.first_tick,
        last = end,
        days = s.tick_days,
        scen = escape(&data.meta.scenario_path),
        run = data.run,
        parent = data.meta.parent.map(|(p, t)| format!(", forked from run {p} at tick {t}")).unwrap_or_default(),
        status = data.meta.status.as_str(),
        digest = data.records.last().map(|r| r.digest.to_string()).unwrap_or_default(),
    );
    for h in &highlights {
        let _ = writeln!(html, "<li>{}</li>", escape(h));
    }
    html.push_str("</ul>\n<h2>Clearing prices</h2>\n<p class=\"note\">World clearing price per tick at both stages; where a nation restricted its exports, its domestic price is drawn too. Dashed red lines mark events and injects as they take effect.</p>\n");
    for (name, img) in &price_imgs {
        let _ = writeln!(html, "<img src=\"{img}\" alt=\"{} clearing price\">", escape(name));
    }
    html.push_str("<h2>Strategic stockpile cover</h2>\n");
    if cover_imgs.is_empty() {
        html.push_str("<p>No nation keeps a strategic stockpile in this scenario.</p>\n");
    }
    for (name, img) in &cover_imgs {
        let _ = writeln!(html, "<img src=\"{img}\" alt=\"{} stockpile cover\">", escape(name));
    }
    let _ = writeln!(
        html,
        "<h2>Shortages</h2>\n<img src=\"{shortage_img}\" alt=\"shortage by nation over time\">\n<img src=\"{sector_img}\" alt=\"shortage by nation and sector\">"
    );
    html.push_str(
        "<table><tr><th>nation</th><th>commodity</th><th>wanted (t)</th><th>unmet (t)</th><th>unmet share</th></tr>\n",
    );
    for ((n, c), (wanted, short)) in wanted_total.iter().filter(|(_, (_, short))| *short > 0) {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td></tr>",
            escape(s.nation_code(*n)),
            escape(s.commodity_code(*c)),
            wanted / 1000,
            short / 1000,
            *short as f64 * 100.0 / (*wanted).max(1) as f64
        );
    }
    html.push_str("</table>\n<h2>Trade flows</h2>\n");
    for (name, img) in &flow_imgs {
        let _ = writeln!(html, "<img src=\"{img}\" alt=\"{} trade flows\">", escape(name));
    }
    let _ = writeln!(
        html,
        "<h2>Restrictions, injects and decisions</h2>\n<img src=\"{restriction_img}\" alt=\"restrictions timeline\">"
    );
    html.push_str("<p class=\"note\">Alliances are not modelled in this version, so there is no alliance timeline.</p>\n<table><tr><th>effective tick</th><th>what happened</th></tr>\n");
    for r in &data.records {
        for (at, occurrence) in &r.events {
            let text = occurrence.describe(&data.scenario);
            let _ = writeln!(html, "<tr><td>{}</td><td>{}</td></tr>", at.0, escape(&text));
        }
    }
    for j in &data.journal {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{} (by {})</td></tr>",
            j.tick,
            escape(&j.input.describe()),
            escape(&j.source)
        );
    }
    html.push_str("</table>\n</body></html>\n");
    let index = dir.join("index.html");
    std::fs::write(&index, html)?;
    Ok(ReportSummary { index, charts, highlights })
}

/// The short text summary: largest price change, worst shortage, largest stockpile drawdown,
/// first restriction.
fn highlights(data: &RunData, wanted_total: &BTreeMap<(NationId, CommodityId), (i64, i64)>) -> Vec<String> {
    let s = &data.scenario;
    let mut out = Vec::new();
    // Largest price change: the market whose price moved furthest (up or down) from its start.
    let mut best: Option<(f64, String)> = None;
    for i in 0..s.market_count() {
        let m = MarketId::from_index(i);
        let prices: Vec<(u32, i64)> =
            data.records.iter().filter_map(|r| r.markets.get(i).map(|x| (r.tick.0, x.price.0))).collect();
        let Some(&(_, start)) = prices.first() else { continue };
        for &(t, p) in &prices {
            let change = (p as f64 / start.max(1) as f64).ln().abs();
            if best.as_ref().is_none_or(|b| change > b.0) {
                let pct = (p as f64 / start.max(1) as f64 - 1.0) * 100.0;
                let text = format!(
                    "Largest price move: {} {} went from {} to {} per kg by tick {t} ({pct:+.0}%).",
                    s.commodity_code(m.commodity),
                    m.stage.as_str(),
                    usd(start),
                    usd(p)
                );
                best = Some((change, text));
            }
        }
    }
    out.push(best.map(|b| b.1).unwrap_or_else(|| "No prices were recorded.".into()));
    // Worst shortage.
    match wanted_total.iter().filter(|(_, (_, short))| *short > 0).max_by_key(|(_, (_, short))| *short) {
        Some(((n, c), (wanted, short))) => out.push(format!(
            "Worst shortage: {} went short of {} t of {} ({:.1}% of what its industry wanted).",
            s.nation_code(*n),
            short / 1000,
            s.commodity_code(*c),
            *short as f64 * 100.0 / (*wanted).max(1) as f64
        )),
        None => out.push("No nation went short: every industry bought what it wanted.".into()),
    }
    // Largest stockpile drawdown: the biggest fall from a running peak.
    let mut draw: Option<(i64, String)> = None;
    let mut peaks: BTreeMap<(NationId, CommodityId), (i64, u32)> = BTreeMap::new();
    for r in &data.records {
        for p in &r.stockpiles {
            let peak = peaks.entry((p.nation, p.commodity)).or_insert((p.stock.0, r.tick.0));
            if p.stock.0 > peak.0 {
                *peak = (p.stock.0, r.tick.0);
            }
            let fall = peak.0 - p.stock.0;
            if fall > 0 && draw.as_ref().is_none_or(|d| fall > d.0) {
                draw = Some((
                    fall,
                    format!(
                        "Largest stockpile drawdown: {} drew its {} reserve down by {} t ({:.0}%) between tick {} and tick {}.",
                        s.nation_code(p.nation),
                        s.commodity_code(p.commodity),
                        fall / 1000,
                        fall as f64 * 100.0 / peak.0.max(1) as f64,
                        peak.1,
                        r.tick.0
                    ),
                ));
            }
        }
    }
    out.push(draw.map(|d| d.1).unwrap_or_else(|| "No strategic stockpile was drawn down.".into()));
    // First restriction.
    match data.records.iter().find(|r| !r.restrictions.is_empty()) {
        Some(r) => out.push(format!(
            "First restriction: from tick {}, {}.",
            r.tick.0 + 1,
            describe_restriction(&data.scenario, &r.restrictions[0].1)
        )),
        None => out.push("No export restriction or tariff was in force.".into()),
    }
    out
}
