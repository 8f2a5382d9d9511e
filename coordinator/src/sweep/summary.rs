//! A sweep's tables, made from its finished cells: `runs.csv` and `runs.parquet` (one row per
//! run, outcome and subject; a value that does not exist is an empty cell) and `summary.csv`
//! and `summary.parquet` (runs, mean, median, 5th and 95th percentile per parameter value,
//! outcome and subject, each parameter also a typed column of its own). Each file is replaced whole
//! (`durable`), so a sweep stopped while it writes them leaves the previous tables or the new
//! ones; the same cells always give the same bytes.

use crate::debrief::export::{Table, Values, write_csv, write_parquet};
use crate::durable::{self, WriteError};
use std::collections::BTreeMap;
use std::path::Path;

/// Writes the four tables into `out`. `header` is runs.csv's header; `lines` its rows
/// (`seed,values...,outcome,subject,value`), in any order.
pub fn write(out: &Path, header: &str, mut lines: Vec<String>, params: usize) -> Result<(), WriteError> {
    lines.sort_by(|a, b| order(a).cmp(&order(b)));
    let mut text = String::with_capacity(header.len() + lines.iter().map(|l| l.len() + 1).sum::<usize>() + 2);
    text.push_str(header);
    text.push('\n');
    for l in &lines {
        text.push_str(l);
        text.push('\n');
    }
    durable::replace(&out.join("runs.csv"), text.as_bytes())?;
    let header: Vec<&str> = header.split(',').collect();
    let rows: Vec<Vec<&str>> =
        lines.iter().map(|l| l.split(',').collect::<Vec<_>>()).filter(|c| c.len() == params + 4).collect();
    parquet_file(&out.join("runs.parquet"), &runs_table(&header, &rows, params))?;
    let summary = summary_table(&header, &rows, params);
    durable::replace_with(&out.join("summary.csv"), |tmp| write_csv(&summary, tmp))?;
    parquet_file(&out.join("summary.parquet"), &summary)
}

/// How runs.csv is sorted: by seed as a number, then by the rest of the line.
fn order(line: &str) -> (u64, &str) {
    let (seed, rest) = line.split_once(',').unwrap_or((line, ""));
    (seed.parse().unwrap_or(0), rest)
}

fn parquet_file(path: &Path, table: &Table) -> Result<(), WriteError> {
    durable::replace_with(path, |tmp| write_parquet(table, tmp).map_err(|e| std::io::Error::other(e.to_string())))
}

/// runs.csv as a typed table.
fn runs_table(header: &[&str], rows: &[Vec<&str>], params: usize) -> Table {
    let static_name = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
    let mut columns: Vec<(&'static str, Values)> =
        vec![("seed", Values::Int(rows.iter().map(|r| r[0].parse().unwrap_or(0)).collect()))];
    for (i, name) in header.iter().enumerate().skip(1).take(params) {
        columns.push((static_name(name), typed(rows.iter().map(|r| r[i]).collect())));
    }
    columns.push(("outcome", Values::Text(rows.iter().map(|r| r[params + 1].to_string()).collect())));
    columns.push(("subject", Values::Text(rows.iter().map(|r| r[params + 2].to_string()).collect())));
    columns.push(("value", Values::OptFloat(rows.iter().map(|r| r[params + 3].parse().ok()).collect())));
    Table { name: "runs", columns }
}

/// The summary by (parameter values, outcome, subject).
fn summary_table(header: &[&str], rows: &[Vec<&str>], params: usize) -> Table {
    let mut groups: BTreeMap<(String, String, String), Vec<f64>> = BTreeMap::new();
    for r in rows {
        let values: Vec<String> =
            header[1..=params].iter().zip(&r[1..=params]).map(|(k, v)| format!("{k}={v}")).collect();
        let key = (values.join(";"), r[params + 1].to_string(), r[params + 2].to_string());
        // A run without a value (no restriction ever) counts in no statistic of it.
        let entry = groups.entry(key).or_default();
        if let Ok(v) = r[params + 3].parse::<f64>() {
            entry.push(v);
        }
    }
    let pct = |v: &[f64], q: f64| -> f64 {
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        v[i.min(v.len() - 1)]
    };
    let (mut pv, mut oc, mut sj, mut n, mut mean, mut median, mut p5, mut p95) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut by_param: Vec<Vec<String>> = vec![Vec::new(); params];
    for ((values, outcome, subject), mut v) in groups {
        if v.is_empty() {
            continue;
        }
        v.sort_by(f64::total_cmp);
        for (k, kv) in values.split(';').filter(|x| !x.is_empty()).enumerate() {
            if let Some(col) = by_param.get_mut(k) {
                col.push(kv.split_once('=').map_or(String::new(), |(_, v)| v.to_string()));
            }
        }
        pv.push(values);
        oc.push(outcome);
        sj.push(subject);
        n.push(v.len() as i64);
        mean.push(v.iter().sum::<f64>() / v.len() as f64);
        median.push(pct(&v, 0.5));
        p5.push(pct(&v, 0.05));
        p95.push(pct(&v, 0.95));
    }
    // Each parameter also as a column of its own, typed (numbers sort as numbers).
    let static_name = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
    let mut columns: Vec<(&'static str, Values)> = header[1..=params]
        .iter()
        .zip(&by_param)
        .map(|(name, col)| (static_name(name), typed(col.iter().map(String::as_str).collect())))
        .collect();
    columns.extend([
        // `key=value` pairs joined by `;` (empty when nothing was swept).
        ("parameters", Values::Text(pv)),
        ("outcome", Values::Text(oc)),
        ("subject", Values::Text(sj)),
        ("runs", Values::Int(n)),
        ("mean", Values::Float(mean)),
        ("median", Values::Float(median)),
        ("p5", Values::Float(p5)),
        ("p95", Values::Float(p95)),
    ]);
    Table { name: "summary", columns }
}

/// A column of parameter values: numbers when every value is one (so 90 sorts before 180),
/// text otherwise.
fn typed(values: Vec<&str>) -> Values {
    let numbers: Option<Vec<f64>> = values.iter().map(|v| v.parse::<f64>().ok()).collect();
    match numbers {
        Some(n) => Values::Float(n),
        None => Values::Text(values.into_iter().map(String::from).collect()),
    }
}
