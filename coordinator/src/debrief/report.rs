//! The after-action report: a folder with `index.html` and its charts as SVG files beside it in
//! `charts/`. The page references nothing outside its folder, so it opens from disk on an
//! isolated machine. It shows the clearing price of every commodity at both stages, stockpile
//! cover per nation, shortages by nation and sector, who supplied whom, the restrictions in force
//! over time, the events and injects on every timeline, and a short summary of the biggest moves.

use super::RunData;
use super::chart::{LineChart, Marker, Matrix, Series, Timeline, escape};
use crate::journal::JournalInput;
use agents::nation::cover_tenths_of_days;
use agents::{CommodityId, MarketId, NationId, Stage};
use engine::record::{Occurrence, describe_restriction};
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

/// What the charts mark, numbered in tick order: scheduled events (the scenario's, control's
/// injects, players' policy orders) as they take effect, and rollbacks. Orders, notes and
/// messages are in the table of everything that happened, not on the charts.
fn markers(data: &RunData) -> Vec<Marker> {
    let s = &data.scenario;
    let mut out: Vec<(u32, String)> = data
        .records
        .iter()
        .flat_map(|r| r.events.iter())
        .filter(|(_, o)| matches!(o, Occurrence::Event { .. }))
        .map(|(at, o)| (at.0, o.describe(s)))
        .collect();
    for j in &data.journal {
        if let JournalInput::Rollback { to_tick, .. } = j.input {
            out.push((to_tick, j.input.describe(s)));
        }
    }
    out.sort_by_key(|m| m.0);
    out.into_iter().enumerate().map(|(i, (t, label))| Marker { x: f64::from(t), number: i + 1, label }).collect()
}

/// The table of the charts' numbered markers.
fn marker_table(html: &mut String, marks: &[Marker]) {
    if marks.is_empty() {
        html.push_str("<p class=\"note\">No scheduled event took effect in this run.</p>\n");
        return;
    }
    html.push_str("<h3>Events marked on the charts</h3>\n<table class=\"events\"><tr><th>#</th><th>effective tick</th><th>what happened</th></tr>\n");
    for m in marks {
        let _ = writeln!(html, "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", m.number, m.x, escape(&m.label));
    }
    html.push_str("</table>\n");
}

/// Where the charts go, and which have been written.
struct Charts {
    dir: PathBuf,
    written: Vec<PathBuf>,
}

impl Charts {
    /// Writes one chart and returns its path relative to the page.
    fn save(&mut self, name: &str, svg: String) -> std::io::Result<String> {
        let path = self.dir.join(name);
        std::fs::write(&path, svg)?;
        self.written.push(path);
        Ok(format!("charts/{name}"))
    }
}

/// A chart per commodity: (commodity name, chart path).
type Figures = Vec<(String, String)>;

/// Shortages charted and tabulated: the two charts, and wanted and unmet kilograms by nation
/// and commodity.
struct Shortages {
    over_time: String,
    by_sector: String,
    totals: BTreeMap<(NationId, CommodityId), (i64, i64)>,
}

/// Writes the report for `data` into `dir` (created if needed).
pub fn write(data: &RunData, dir: &Path) -> std::io::Result<ReportSummary> {
    let mut charts = Charts { dir: dir.join("charts"), written: Vec::new() };
    std::fs::create_dir_all(&charts.dir)?;
    let marks = markers(data);
    let prices = price_charts(data, &marks, &mut charts)?;
    let covers = cover_charts(data, &mut charts)?;
    let shortages = shortage_charts(data, &marks, &mut charts)?;
    let flows = flow_charts(data, &mut charts)?;
    let (restrictions, end) = restriction_chart(data, &marks, &mut charts)?;
    let highlights = highlights(data, &shortages.totals);
    let mut html = String::new();
    page_head(&mut html, data, end, &highlights);
    figures(
        &mut html,
        "Clearing prices",
        "<p class=\"note\">World clearing price per tick at both stages; where a nation restricted its exports, its domestic price is drawn too. Numbered red markers are the events of the table below, at the tick they take effect.</p>\n",
        &prices,
        "clearing price",
    );
    marker_table(&mut html, &marks);
    html.push_str("<h2>Strategic stockpile cover</h2>\n");
    if covers.is_empty() {
        html.push_str("<p>No nation keeps a strategic stockpile in this scenario.</p>\n");
    }
    for (name, img) in &covers {
        let _ = writeln!(html, "<img src=\"{img}\" alt=\"{} stockpile cover\">", escape(name));
    }
    shortage_section(&mut html, data, &shortages);
    html.push_str("</table>\n<h2>Trade flows</h2>\n");
    for (name, img) in &flows {
        let _ = writeln!(html, "<img src=\"{img}\" alt=\"{} trade flows\">", escape(name));
    }
    events_section(&mut html, data, &restrictions);
    let index = dir.join("index.html");
    std::fs::write(&index, html)?;
    Ok(ReportSummary { index, charts: charts.written, highlights })
}

fn tick_label(data: &RunData) -> String {
    format!("tick ({} days each)", data.scenario.tick_days)
}

/// Clearing prices of each commodity at both stages, with restricted exporters' domestic prices.
fn price_charts(data: &RunData, marks: &[Marker], charts: &mut Charts) -> std::io::Result<Figures> {
    let s = &data.scenario;
    let mut out = Vec::new();
    for (c, commodity) in s.commodities.iter().enumerate() {
        let mut series = Vec::new();
        for stage in Stage::ALL {
            series.extend(price_series(data, MarketId::new(CommodityId(c as u16), stage)));
        }
        let chart = LineChart {
            title: format!("{} — clearing price", commodity.name),
            x_label: tick_label(data),
            y_label: "US$ per kg".into(),
            series,
            markers: marks.to_vec(),
        };
        out.push((commodity.name.clone(), charts.save(&format!("price_{}.svg", commodity.code), chart.svg())?));
    }
    Ok(out)
}

/// One market's world price, and the domestic prices of nations that restricted its exports.
fn price_series(data: &RunData, m: MarketId) -> Vec<Series> {
    let s = &data.scenario;
    let points = data
        .records
        .iter()
        .filter_map(|r| {
            r.markets.iter().find(|x| x.market == m).map(|x| (f64::from(r.tick.0), x.price.0 as f64 / 100.0))
        })
        .collect();
    let mut series = vec![Series { name: format!("{} (world)", m.stage.as_str()), points }];
    let mut domestic: BTreeMap<NationId, Vec<(f64, f64)>> = BTreeMap::new();
    for r in &data.records {
        if let Some(x) = r.markets.iter().find(|x| x.market == m) {
            for (n, p) in &x.domestic {
                domestic.entry(*n).or_default().push((f64::from(r.tick.0), p.0 as f64 / 100.0));
            }
        }
    }
    for (n, points) in domestic {
        series.push(Series { name: format!("{} in {}", m.stage.as_str(), s.nation_code(n)), points });
    }
    series
}

/// Days of cover of each commodity's strategic stockpiles, by nation.
fn cover_charts(data: &RunData, charts: &mut Charts) -> std::io::Result<Figures> {
    let s = &data.scenario;
    let mut out = Vec::new();
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
            x_label: tick_label(data),
            y_label: "days of domestic consumption".into(),
            series,
            markers: Vec::new(),
        };
        out.push((commodity.name.clone(), charts.save(&format!("cover_{}.svg", commodity.code), chart.svg())?));
    }
    Ok(out)
}

/// Shortages over time by nation (the ten worst), and totals by nation and sector.
fn shortage_charts(data: &RunData, marks: &[Marker], charts: &mut Charts) -> std::io::Result<Shortages> {
    let s = &data.scenario;
    let mut short_by_nation: BTreeMap<NationId, BTreeMap<u32, f64>> = BTreeMap::new();
    let mut by_sector: BTreeMap<(NationId, agents::Sector), f64> = BTreeMap::new();
    let mut totals: BTreeMap<(NationId, CommodityId), (i64, i64)> = BTreeMap::new();
    for r in &data.records {
        for x in &r.shortages {
            let short = (x.wanted - x.consumed).0 as f64 / 1000.0;
            *short_by_nation.entry(x.nation).or_default().entry(r.tick.0).or_default() += short;
            *by_sector.entry((x.nation, x.sector)).or_default() += short;
            let e = totals.entry((x.nation, x.commodity)).or_default();
            e.0 += x.wanted.0;
            e.1 += (x.wanted - x.consumed).0;
        }
    }
    let chart = LineChart {
        title: "Shortage: demand industry could not buy".into(),
        x_label: tick_label(data),
        y_label: "tonnes per tick".into(),
        series: worst_shortages(data, &short_by_nation),
        markers: marks.to_vec(),
    };
    let over_time = charts.save("shortages.svg", chart.svg())?;
    let sectors: Vec<agents::Sector> = agents::Sector::ALL.to_vec();
    let nations: Vec<NationId> =
        by_sector.keys().map(|(n, _)| *n).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let matrix = Matrix {
        title: "Shortage by nation and sector, whole run".into(),
        row_label: "nation".into(),
        col_label: "sector".into(),
        unit: "tonnes".into(),
        rows: nations.iter().map(|n| s.nation_code(*n).to_string()).collect(),
        cols: sectors.iter().map(|x| x.as_str().to_string()).collect(),
        values: nations
            .iter()
            .map(|n| sectors.iter().map(|sec| by_sector.get(&(*n, *sec)).copied().unwrap_or(0.0).round()).collect())
            .collect(),
    };
    let by_sector = charts.save("shortages_by_sector.svg", matrix.svg())?;
    Ok(Shortages { over_time, by_sector, totals })
}

/// The shortage series of the ten nations worst hit (a flat line when none was).
fn worst_shortages(data: &RunData, by_nation: &BTreeMap<NationId, BTreeMap<u32, f64>>) -> Vec<Series> {
    let mut totals: Vec<(NationId, f64)> = by_nation.iter().map(|(n, m)| (*n, m.values().sum())).collect();
    totals.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut series: Vec<Series> = totals
        .iter()
        .filter(|(_, t)| *t > 0.0)
        .take(10)
        .map(|(n, _)| Series {
            name: data.scenario.nation_code(*n).to_string(),
            points: data
                .records
                .iter()
                .map(|r| (f64::from(r.tick.0), by_nation[n].get(&r.tick.0).copied().unwrap_or(0.0)))
                .collect(),
        })
        .collect();
    if series.is_empty() {
        series.push(Series {
            name: "all nations".into(),
            points: data.records.iter().map(|r| (f64::from(r.tick.0), 0.0)).collect(),
        });
    }
    series
}

/// Who supplied whom, per commodity (refined), over the whole run.
fn flow_charts(data: &RunData, charts: &mut Charts) -> std::io::Result<Figures> {
    let s = &data.scenario;
    let mut out = Vec::new();
    for (c, commodity) in s.commodities.iter().enumerate() {
        let m = MarketId::refined(CommodityId(c as u16));
        let mut flows: BTreeMap<(NationId, NationId), f64> = BTreeMap::new();
        for r in &data.records {
            let start = engine::record::FlowKey { market: m, from: NationId(0), to: NationId(0) };
            for (k, (q, _)) in r.flows.range(start..).take_while(|(k, _)| k.market == m) {
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
        out.push((commodity.name.clone(), charts.save(&format!("flows_{}.svg", commodity.code), matrix.svg())?));
    }
    Ok(out)
}

/// The restrictions in force over time, with injects marked; returns the chart and the tick
/// after the last recorded one.
fn restriction_chart(data: &RunData, marks: &[Marker], charts: &mut Charts) -> std::io::Result<(String, u32)> {
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
    let timeline = Timeline {
        title: "Export restrictions and tariffs in force".into(),
        x_label: "tick".into(),
        x_max: f64::from(end),
        rows,
        markers: marks.iter().filter(|m| m.x <= f64::from(end)).cloned().collect(),
    };
    Ok((charts.save("restrictions.svg", timeline.svg())?, end))
}

/// The page's head, title, run facts and the summary of the biggest moves.
fn page_head(html: &mut String, data: &RunData, end: u32, highlights: &[String]) {
    let s = &data.scenario;
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
table.events td, table.events th {{ text-align: left; vertical-align: top; }} table.events td:first-child {{ text-align: right; }}
</style></head><body>
<h1>{t}</h1>
<p class="kind">{kind}</p>
<p class="note">Ticks {first}–{last} ({days} days each). Scenario {scen} recorded as run {run}{parent}. Status: {status}. Final state digest {digest}.</p>
<h2>Summary: the biggest moves</h2><ul>
"#,
        t = escape(&title),
        kind = escape(&super::kind(data)),
        first = data.first_tick,
        last = end,
        days = s.tick_days,
        scen = escape(&data.meta.scenario_path),
        run = data.run,
        parent = data.meta.parent.map(|(p, t)| format!(", forked from run {p} at tick {t}")).unwrap_or_default(),
        status = data.meta.status.as_str(),
        digest = data.records.last().map(|r| r.digest.to_string()).unwrap_or_default(),
    );
    for h in highlights {
        let _ = writeln!(html, "<li>{}</li>", escape(h));
    }
    html.push_str("</ul>\n");
}

/// A section of one figure per commodity.
fn figures(html: &mut String, heading: &str, note: &str, figures: &Figures, alt: &str) {
    let _ = write!(html, "<h2>{heading}</h2>\n{note}");
    for (name, img) in figures {
        let _ = writeln!(html, "<img src=\"{img}\" alt=\"{} {alt}\">", escape(name));
    }
}

/// The shortage charts and the table of unmet demand (left open for the next section).
fn shortage_section(html: &mut String, data: &RunData, shortages: &Shortages) {
    let s = &data.scenario;
    let _ = writeln!(
        html,
        "<h2>Shortages</h2>\n<img src=\"{}\" alt=\"shortage by nation over time\">\n<img src=\"{}\" alt=\"shortage by nation and sector\">",
        shortages.over_time, shortages.by_sector
    );
    html.push_str(
        "<table><tr><th>nation</th><th>commodity</th><th>wanted (t)</th><th>unmet (t)</th><th>unmet share</th></tr>\n",
    );
    for ((n, c), (wanted, short)) in shortages.totals.iter().filter(|(_, (_, short))| *short > 0) {
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
}

/// The restrictions timeline and the table of everything that happened (what the world did,
/// and who did what, by tick), ending the page.
fn events_section(html: &mut String, data: &RunData, restrictions: &str) {
    let s = &data.scenario;
    let _ = writeln!(
        html,
        "<h2>Restrictions, injects and decisions</h2>\n<img src=\"{restrictions}\" alt=\"restrictions timeline\">"
    );
    html.push_str("<p class=\"note\">Alliance changes (joining, leaving, diplomacy), shared reserves and joint purchases are in the table with everything else that happened.</p>\n<table class=\"events\"><tr><th>tick</th><th>what happened</th><th>who</th></tr>\n");
    let mut rows: Vec<(u32, String, String)> = Vec::new();
    for r in &data.records {
        for (at, occurrence) in &r.events {
            rows.push((at.0, occurrence.describe(s), String::new()));
        }
    }
    for j in &data.journal {
        let who = if j.source == "exercise" {
            String::new()
        } else {
            format!("{} ({})", j.source, j.input.kind_by(&j.source))
        };
        rows.push((j.tick, j.input.describe(s), who));
    }
    rows.sort_by_key(|r| r.0);
    for (tick, what, who) in rows {
        let _ = writeln!(html, "<tr><td>{tick}</td><td>{}</td><td>{}</td></tr>", escape(&what), escape(&who));
    }
    html.push_str("</table>\n</body></html>\n");
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
