//! Comparing two recorded runs (typically an exercise and its fork) over the ticks both
//! recorded, and only those: the first tick where their states diverge, and how the outcomes
//! differ — prices, shortages, stockpile costs, treasuries — as a table for the terminal and,
//! optionally, as a page of HTML tables with the first divergence marked and price charts of
//! both runs over the shared ticks.

use super::RunData;
use super::chart::{LineChart, Marker, Series, escape};
use crate::store::{RunId, Store, StoreError};
use agents::{MarketId, NationId};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Where two runs' recorded digests first differ, and the range of ticks both recorded.
pub struct Divergence {
    pub first: Option<u32>,
    pub common: Option<(u32, u32)>,
}

/// Where two runs' recorded digests first differ, over the ticks both recorded.
pub fn first_divergence(store: &Store, a: RunId, b: RunId) -> Result<Divergence, StoreError> {
    let ta: BTreeMap<u32, [u8; 32]> = store.ticks(a)?.into_iter().map(|(t, e)| (t, e.digest)).collect();
    let tb: BTreeMap<u32, [u8; 32]> = store.ticks(b)?.into_iter().map(|(t, e)| (t, e.digest)).collect();
    let common: Vec<u32> = ta.keys().filter(|t| tb.contains_key(t)).copied().collect();
    let range = common.first().zip(common.last()).map(|(x, y)| (*x, *y));
    Ok(Divergence { first: common.into_iter().find(|t| ta[t] != tb[t]), common: range })
}

/// Per-run outcome figures over the compared ticks.
struct Outcomes {
    /// By market: (mean, peak) world price in cents.
    prices: BTreeMap<MarketId, (f64, i64)>,
    /// By nation: total unmet demand in kg, stockpile holding cost in cents, treasury at the end.
    shortage: BTreeMap<NationId, i64>,
    reserve_cost: BTreeMap<NationId, i64>,
    treasury_end: BTreeMap<NationId, i64>,
}

fn outcomes(d: &RunData, from: u32, to: u32) -> Outcomes {
    let records: Vec<_> = d.records.iter().filter(|r| r.tick.0 >= from && r.tick.0 <= to).collect();
    let mut prices = BTreeMap::new();
    for i in 0..d.scenario.market_count() {
        let ps: Vec<i64> = records.iter().filter_map(|r| r.markets.get(i).map(|m| m.price.0)).collect();
        if !ps.is_empty() {
            let mean = ps.iter().map(|&p| p as f64).sum::<f64>() / ps.len() as f64;
            prices.insert(MarketId::from_index(i), (mean, ps.iter().copied().max().unwrap_or(0)));
        }
    }
    let mut shortage = BTreeMap::new();
    let mut reserve_cost = BTreeMap::new();
    let mut treasury_end = BTreeMap::new();
    for r in &records {
        for s in &r.shortages {
            *shortage.entry(s.nation).or_insert(0) += (s.wanted - s.consumed).0;
        }
        for p in &r.stockpiles {
            *reserve_cost.entry(p.nation).or_insert(0) += p.holding_cost.0;
        }
        for (n, cash) in &r.treasuries {
            treasury_end.insert(*n, cash.0);
        }
    }
    Outcomes { prices, shortage, reserve_cost, treasury_end }
}

fn usd(cents: f64) -> String {
    format!("{:.2}", cents / 100.0)
}

/// A change with its sign, and no "-0.00" for a change that rounds to nothing.
fn signed(x: f64) -> String {
    let r = (x * 100.0).round() / 100.0;
    if r == 0.0 { "0.00".into() } else { format!("{r:+.2}") }
}

/// Why two runs cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("runs {a} and {b} simulate different worlds and cannot be compared")]
    DifferentWorlds { a: RunId, b: RunId },
    #[error("runs {a} and {b} have no recorded ticks in common")]
    NothingInCommon { a: RunId, b: RunId },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot write to {}: {source}", dir.display())]
    Write { dir: std::path::PathBuf, source: std::io::Error },
}

/// One market's comparison, in US dollars per kilogram.
struct PriceRow {
    market: String,
    mean: (f64, f64),
    peak: (f64, f64),
}

/// One nation's comparison: shortage in tonnes, reserve cost and treasury change in dollars.
struct NationRow {
    nation: String,
    shortage_t: (i64, i64),
    reserve_cost_usd: (i64, i64),
    treasury_delta_usd: i64,
}

/// The two runs compared over the ticks they share.
struct Comparison {
    a: RunId,
    b: RunId,
    from: u32,
    to: u32,
    diverge: Option<u32>,
    prices: Vec<PriceRow>,
    nations: Vec<NationRow>,
}

fn comparison(a: &RunData, b: &RunData, d: &Divergence) -> Option<Comparison> {
    let (from, to) = d.common?;
    let (oa, ob) = (outcomes(a, from, to), outcomes(b, from, to));
    let s = &a.scenario;
    let prices = oa
        .prices
        .iter()
        .map(|(m, (mean_a, peak_a))| {
            let (mean_b, peak_b) = ob.prices.get(m).copied().unwrap_or((0.0, 0));
            PriceRow {
                market: format!("{} {}", s.commodity_code(m.commodity), m.stage.as_str()),
                mean: (mean_a / 100.0, mean_b / 100.0),
                peak: (*peak_a as f64 / 100.0, peak_b as f64 / 100.0),
            }
        })
        .collect();
    let get = |m: &BTreeMap<NationId, i64>, n: NationId| m.get(&n).copied().unwrap_or(0);
    let nations = (0..s.nations.len())
        .map(|i| NationId(i as u16))
        .filter_map(|n| {
            let row = NationRow {
                nation: s.nation_code(n).to_string(),
                shortage_t: (get(&oa.shortage, n) / 1000, get(&ob.shortage, n) / 1000),
                reserve_cost_usd: (get(&oa.reserve_cost, n) / 100, get(&ob.reserve_cost, n) / 100),
                treasury_delta_usd: (get(&ob.treasury_end, n) - get(&oa.treasury_end, n)) / 100,
            };
            let quiet = row.shortage_t == (0, 0) && row.reserve_cost_usd == (0, 0) && row.treasury_delta_usd == 0;
            (!quiet).then_some(row)
        })
        .collect();
    Some(Comparison { a: a.run, b: b.run, from, to, diverge: d.first, prices, nations })
}

/// The comparison as text (and, with `out`, a page of tables and charts). Both runs must share
/// a scenario world (same commodities and nations).
pub fn compare(store: &Store, a: &RunData, b: &RunData, out: Option<&Path>) -> Result<String, DiffError> {
    if a.scenario.commodities.len() != b.scenario.commodities.len()
        || a.scenario.nations.len() != b.scenario.nations.len()
    {
        return Err(DiffError::DifferentWorlds { a: a.run, b: b.run });
    }
    let d = first_divergence(store, a.run, b.run)?;
    let Some(c) = comparison(a, b, &d) else {
        return Err(DiffError::NothingInCommon { a: a.run, b: b.run });
    };
    if let Some(dir) = out {
        write_page(a, b, &c, dir).map_err(|source| DiffError::Write { dir: dir.to_path_buf(), source })?;
    }
    Ok(text(&c))
}

fn text(c: &Comparison) -> String {
    let mut text = String::new();
    let _ =
        writeln!(text, "Run {} vs run {}, ticks {}..={} in common (only those are compared)", c.a, c.b, c.from, c.to);
    match c.diverge {
        Some(t) => {
            let _ = writeln!(text, "First divergence: tick {t} (the states after tick {t} differ)");
        }
        None => {
            let _ = writeln!(text, "No divergence: every common tick has the same state digest");
        }
    }
    let _ = writeln!(text, "\nPrices (US$/kg, world)            mean A     mean B    delta      peak A     peak B");
    for p in &c.prices {
        let _ = writeln!(
            text,
            "  {:<15} {:>22} {:>10} {:>+8.2} {:>11} {:>10}",
            p.market,
            usd(p.mean.0 * 100.0),
            usd(p.mean.1 * 100.0),
            p.mean.1 - p.mean.0,
            usd(p.peak.0 * 100.0),
            usd(p.peak.1 * 100.0)
        );
    }
    let _ = writeln!(
        text,
        "\nBy nation                  shortage A (t)  shortage B (t)  reserve cost A ($)  reserve cost B ($)  treasury delta ($)"
    );
    for n in &c.nations {
        let _ = writeln!(
            text,
            "  {:<24} {:>15} {:>15} {:>19} {:>19} {:>19}",
            n.nation, n.shortage_t.0, n.shortage_t.1, n.reserve_cost_usd.0, n.reserve_cost_usd.1, n.treasury_delta_usd
        );
    }
    text
}

/// The page: the runs, the shared ticks, the first divergence, the two tables and a price chart
/// per commodity over the shared ticks with the divergence marked.
fn write_page(a: &RunData, b: &RunData, c: &Comparison, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("charts"))?;
    let mut html = String::new();
    page_head(&mut html, a, b, c);
    html.push_str("<h2>Prices (US$ per kg, world)</h2>\n<table><tr><th>market</th><th>mean A</th><th>mean B</th><th>change</th><th>peak A</th><th>peak B</th></tr>\n");
    for p in &c.prices {
        let changed = if (p.mean.1 - p.mean.0).abs() > 0.005 { " class=\"changed\"" } else { "" };
        let _ = writeln!(
            html,
            "<tr{changed}><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td></tr>",
            escape(&p.market),
            p.mean.0,
            p.mean.1,
            signed(p.mean.1 - p.mean.0),
            p.peak.0,
            p.peak.1
        );
    }
    html.push_str("</table>\n<h2>By nation</h2>\n");
    if c.nations.is_empty() {
        html.push_str("<p>No nation went short, held a reserve or changed its treasury differently.</p>\n");
    } else {
        html.push_str("<table><tr><th>nation</th><th>shortage A (t)</th><th>shortage B (t)</th><th>reserve cost A (US$)</th><th>reserve cost B (US$)</th><th>treasury B − A (US$)</th></tr>\n");
        for n in &c.nations {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:+}</td></tr>",
                escape(&n.nation),
                n.shortage_t.0,
                n.shortage_t.1,
                n.reserve_cost_usd.0,
                n.reserve_cost_usd.1,
                n.treasury_delta_usd
            );
        }
        html.push_str("</table>\n");
    }
    price_charts(&mut html, a, b, c, dir)?;
    html.push_str("</body></html>\n");
    std::fs::write(dir.join("index.html"), html)
}

fn page_head(html: &mut String, a: &RunData, b: &RunData, c: &Comparison) {
    let diverge = match c.diverge {
        Some(t) => format!(
            "<p class=\"divergence\">First divergence: tick {t}. The states after tick {t} differ; every tick before it is the same in both runs.</p>"
        ),
        None => "<p class=\"same\">No divergence: every shared tick has the same state digest.</p>".into(),
    };
    let _ = write!(
        html,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Run {a} vs run {b}</title>
<style>body{{font-family:Helvetica,Arial,sans-serif;max-width:980px;margin:2em auto;color:#222}} img{{max-width:100%;border:1px solid #ddd}}
table{{border-collapse:collapse;margin:0.5em 0}} td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}} th:first-child,td:first-child{{text-align:left}}
tr.changed td{{background:#fff4e5}} .divergence{{background:#fdecea;border-left:4px solid #B22222;padding:8px 12px;font-weight:bold}} .same{{background:#eef6ee;padding:8px 12px}} .note{{color:#555}}</style></head><body>
<h1>Run {a} vs run {b}</h1>
<p>A: run {a} — {ka}<br>B: run {b} — {kb}</p>
<p class="note">Compared over the {n} ticks both runs recorded, ticks {from} to {to}; ticks only one of them has are left out of every figure and chart.</p>
{diverge}
"#,
        a = c.a,
        b = c.b,
        ka = escape(&super::kind(a)),
        kb = escape(&super::kind(b)),
        n = c.to - c.from + 1,
        from = c.from,
        to = c.to,
    );
}

fn price_charts(html: &mut String, a: &RunData, b: &RunData, c: &Comparison, dir: &Path) -> std::io::Result<()> {
    let s = &a.scenario;
    html.push_str("<h2>Refined prices over the shared ticks</h2>\n");
    for (i, commodity) in s.commodities.iter().enumerate() {
        let m = MarketId::refined(agents::CommodityId(i as u16));
        let series = |d: &RunData, label: String| Series {
            name: label,
            points: d
                .records
                .iter()
                .filter(|r| r.tick.0 >= c.from && r.tick.0 <= c.to)
                .filter_map(|r| r.markets.get(m.index()).map(|x| (f64::from(r.tick.0), x.price.0 as f64 / 100.0)))
                .collect(),
        };
        let markers = c
            .diverge
            .map(|t| vec![Marker { x: f64::from(t), number: 1, label: format!("first divergence: tick {t}") }])
            .unwrap_or_default();
        let chart = LineChart {
            title: format!("{} (refined): run {} vs run {}", commodity.name, c.a, c.b),
            x_label: format!("tick ({} days each); marker 1: the first divergence", s.tick_days),
            y_label: "US$ per kg".into(),
            series: vec![series(a, format!("run {} (A)", c.a)), series(b, format!("run {} (B)", c.b))],
            markers,
        };
        let name = format!("charts/price_{}.svg", commodity.code);
        std::fs::write(dir.join(&name), chart.svg())?;
        let _ = writeln!(html, "<img src=\"{name}\" alt=\"{} price, both runs\">", escape(&commodity.name));
    }
    Ok(())
}
