//! Comparing two recorded runs (typically an exercise and its fork): the first tick where their
//! states diverge, and how the outcomes differ — prices, shortages, stockpile costs — as a table,
//! and optionally as a page with price charts of both runs overlaid.

use super::RunData;
use super::chart::{LineChart, Series, escape};
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

/// Per-run outcome figures.
struct Outcomes {
    /// By market: (mean, peak) world price in cents over the compared ticks.
    prices: BTreeMap<MarketId, (f64, i64)>,
    /// By nation: total unmet demand in kg.
    shortage: BTreeMap<NationId, i64>,
    /// By nation: stockpile holding cost in cents, and the treasury at the end.
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

/// The comparison as text (and, with `out`, a page with charts). Both runs must share a scenario
/// world (same commodities and nations).
pub fn compare(store: &Store, a: &RunData, b: &RunData, out: Option<&Path>) -> Result<String, DiffError> {
    if a.scenario.commodities.len() != b.scenario.commodities.len()
        || a.scenario.nations.len() != b.scenario.nations.len()
    {
        return Err(DiffError::DifferentWorlds { a: a.run, b: b.run });
    }
    let Divergence { first: diverge, common } = first_divergence(store, a.run, b.run)?;
    let Some((from, to)) = common else {
        return Err(DiffError::NothingInCommon { a: a.run, b: b.run });
    };
    let (oa, ob) = (outcomes(a, from, to), outcomes(b, from, to));
    let s = &a.scenario;
    let mut text = String::new();
    let _ = writeln!(text, "Run {} vs run {}, ticks {from}..={to} in common", a.run, b.run);
    match diverge {
        Some(t) => {
            let _ = writeln!(text, "First divergence: tick {t} (the states after tick {t} differ)");
        }
        None => {
            let _ = writeln!(text, "No divergence: every common tick has the same state digest");
        }
    }
    let _ = writeln!(text, "\nPrices (US$/kg, world)            mean A     mean B    delta      peak A     peak B");
    for (m, (mean_a, peak_a)) in &oa.prices {
        let (mean_b, peak_b) = ob.prices.get(m).copied().unwrap_or((0.0, 0));
        let _ = writeln!(
            text,
            "  {:<6} {:<8} {:>22} {:>10} {:>+8.2} {:>11} {:>10}",
            s.commodity_code(m.commodity),
            m.stage.as_str(),
            usd(*mean_a),
            usd(mean_b),
            (mean_b - mean_a) / 100.0,
            usd(*peak_a as f64),
            usd(peak_b as f64)
        );
    }
    let _ = writeln!(
        text,
        "\nBy nation                  shortage A (t)  shortage B (t)  reserve cost A ($)  reserve cost B ($)  treasury delta ($)"
    );
    for (n, nation) in s.nations.iter().enumerate() {
        let id = NationId(n as u16);
        let (sa, sb) = (oa.shortage.get(&id).copied().unwrap_or(0), ob.shortage.get(&id).copied().unwrap_or(0));
        let (ca, cb) = (oa.reserve_cost.get(&id).copied().unwrap_or(0), ob.reserve_cost.get(&id).copied().unwrap_or(0));
        let (ta, tb) = (oa.treasury_end.get(&id).copied().unwrap_or(0), ob.treasury_end.get(&id).copied().unwrap_or(0));
        if sa == 0 && sb == 0 && ca == 0 && cb == 0 && ta == tb {
            continue;
        }
        let _ = writeln!(
            text,
            "  {:<24} {:>15} {:>15} {:>19} {:>19} {:>19}",
            nation.code,
            sa / 1000,
            sb / 1000,
            ca / 100,
            cb / 100,
            (tb - ta) / 100
        );
    }
    if let Some(dir) = out {
        write_page(a, b, &text, dir).map_err(|source| DiffError::Write { dir: dir.to_path_buf(), source })?;
    }
    Ok(text)
}

fn write_page(a: &RunData, b: &RunData, text: &str, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("charts"))?;
    let s = &a.scenario;
    let mut html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Run {} vs run {}</title><style>body{{font-family:Helvetica,Arial,sans-serif;max-width:980px;margin:2em auto}} img{{max-width:100%;border:1px solid #ddd}}</style></head><body><h1>Run {} vs run {}</h1><pre>{}</pre>\n",
        a.run,
        b.run,
        a.run,
        b.run,
        escape(text)
    );
    for (c, commodity) in s.commodities.iter().enumerate() {
        let m = MarketId::refined(agents::CommodityId(c as u16));
        let series = |d: &RunData, label: String| Series {
            name: label,
            points: d
                .records
                .iter()
                .filter_map(|r| r.markets.get(m.index()).map(|x| (f64::from(r.tick.0), x.price.0 as f64 / 100.0)))
                .collect(),
        };
        let chart = LineChart {
            title: format!("{} (refined): run {} vs run {}", commodity.name, a.run, b.run),
            x_label: format!("tick ({} days each)", s.tick_days),
            y_label: "US$ per kg".into(),
            series: vec![series(a, format!("run {}", a.run)), series(b, format!("run {}", b.run))],
            markers: Vec::new(),
        };
        let name = format!("charts/price_{}.svg", commodity.code);
        std::fs::write(dir.join(&name), chart.svg())?;
        let _ = writeln!(html, "<img src=\"{name}\" alt=\"{} price, both runs\">", escape(&commodity.name));
    }
    html.push_str("</body></html>\n");
    std::fs::write(dir.join("index.html"), html)
}
