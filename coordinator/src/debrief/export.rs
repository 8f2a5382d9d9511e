//! Tidy tables of a recorded run — one row per tick and key — as CSV or as Parquet (zstd),
//! ready for pandas, polars or R: prices, trades, production, stockpiles, shortages, events and
//! orders (the journal of external inputs). Integers stay integers in their base units (kg,
//! US cents); only derived ratios (days of cover) are floating point; a value that does not
//! exist (no cover without consumption) is empty in CSV and null in Parquet, never a sentinel.
//! Descriptions are words, times ISO 8601.

use super::RunData;
use crate::rows;
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    Int(Vec<i64>),
    /// Integers with gaps (null in Parquet, an empty cell in CSV).
    OptInt(Vec<Option<i64>>),
    Float(Vec<f64>),
    /// Numbers with gaps (null in Parquet, an empty cell in CSV).
    OptFloat(Vec<Option<f64>>),
    Text(Vec<String>),
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::Int(v) => v.len(),
            Values::OptInt(v) => v.len(),
            Values::Float(v) => v.len(),
            Values::OptFloat(v) => v.len(),
            Values::Text(v) => v.len(),
        }
    }

    fn cell(&self, i: usize) -> String {
        match self {
            Values::Int(v) => v[i].to_string(),
            Values::OptInt(v) => v[i].map(|x| x.to_string()).unwrap_or_default(),
            // Six decimals at most, without trailing zeros: 1127.07, not 1127.0700000000002.
            Values::Float(v) => float(v[i]),
            Values::OptFloat(v) => v[i].map(float).unwrap_or_default(),
            Values::Text(v) => crate::clean::csv(&v[i]),
        }
    }
}

/// Six decimals at most, without trailing zeros: 1127.07, not 1127.0700000000002; empty for
/// a value that is not a number.
fn float(x: f64) -> String {
    if !x.is_finite() {
        return String::new();
    }
    let s = format!("{x:.6}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

pub struct Table {
    pub name: &'static str,
    pub columns: Vec<(&'static str, Values)>,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, v)| v.len())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Parquet,
}

/// The run's tables.
pub fn tables(data: &RunData) -> Vec<Table> {
    let s = &data.scenario;
    let text = |v: &mut Vec<String>, x: &str| v.push(x.to_string());

    let (mut t, mut c, mut st, mut zone, mut price, mut volume) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut tt, mut tc, mut tst, mut from, mut to, mut tv, mut value) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut pt, mut pn, mut pc, mut pst, mut pq) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut kt, mut kn, mut kc, mut stock, mut target, mut cover) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut qt, mut qn, mut qs, mut qc, mut wanted, mut consumed, mut short) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut et, mut ename, mut edesc) = (vec![], vec![], vec![]);
    for r in &data.records {
        let tick = i64::from(r.tick.0);
        for p in rows::prices(r) {
            t.push(tick);
            text(&mut c, s.commodity_code(p.market.commodity));
            text(&mut st, p.market.stage.as_str());
            text(&mut zone, p.zone.map_or("world", |n| s.nation_code(n)));
            price.push(p.price.0);
            volume.push(p.volume.map(|q| q.0));
        }
        for (k, (q, v)) in &r.flows {
            tt.push(tick);
            text(&mut tc, s.commodity_code(k.market.commodity));
            text(&mut tst, k.market.stage.as_str());
            text(&mut from, s.nation_code(k.from));
            text(&mut to, s.nation_code(k.to));
            tv.push(q.0);
            value.push(v.0);
        }
        for ((n, m), q) in &r.production {
            pt.push(tick);
            text(&mut pn, s.nation_code(*n));
            text(&mut pc, s.commodity_code(m.commodity));
            text(&mut pst, m.stage.as_str());
            pq.push(q.0);
        }
        for p in &r.stockpiles {
            kt.push(tick);
            text(&mut kn, s.nation_code(p.nation));
            text(&mut kc, s.commodity_code(p.commodity));
            stock.push(p.stock.0);
            target.push(i64::from(p.target_days));
            cover.push(rows::cover_tenths(p, s.tick_days).map(|x| x as f64 / 10.0));
        }
        for x in rows::shortages(r) {
            qt.push(tick);
            text(&mut qn, s.nation_code(x.nation));
            text(&mut qs, x.sector.as_str());
            text(&mut qc, s.commodity_code(x.commodity));
            wanted.push(x.wanted.0);
            consumed.push(x.consumed.0);
            short.push(x.short().0);
        }
        for (at, name, desc) in rows::events(s, r) {
            et.push(i64::from(at));
            ename.push(name);
            edesc.push(desc);
        }
    }
    let (mut ot, mut os, mut oseq, mut okind, mut odesc) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut oat, mut olive) = (vec![], vec![]);
    let live: std::collections::BTreeSet<u32> =
        crate::journal::live(data.journal.clone()).iter().map(|j| j.seq).collect();
    for j in &data.journal {
        ot.push(i64::from(j.tick));
        oseq.push(i64::from(j.seq));
        text(&mut os, &j.source);
        text(&mut okind, j.input.kind_by(&j.source));
        odesc.push(j.input.describe(s));
        oat.push(crate::time::iso8601(j.received_unix_ms));
        olive.push(i64::from(live.contains(&j.seq)));
    }
    vec![
        Table {
            name: "prices",
            columns: vec![
                ("tick", Values::Int(t)),
                ("commodity", Values::Text(c)),
                ("stage", Values::Text(st)),
                ("zone", Values::Text(zone)),
                ("price_cents_per_kg", Values::Int(price)),
                ("volume_kg", Values::OptInt(volume)),
            ],
        },
        Table {
            name: "trades",
            columns: vec![
                ("tick", Values::Int(tt)),
                ("commodity", Values::Text(tc)),
                ("stage", Values::Text(tst)),
                ("from", Values::Text(from)),
                ("to", Values::Text(to)),
                ("volume_kg", Values::Int(tv)),
                ("value_cents", Values::Int(value)),
            ],
        },
        Table {
            name: "production",
            columns: vec![
                ("tick", Values::Int(pt)),
                ("nation", Values::Text(pn)),
                ("commodity", Values::Text(pc)),
                ("stage", Values::Text(pst)),
                ("produced_kg", Values::Int(pq)),
            ],
        },
        Table {
            name: "stockpiles",
            columns: vec![
                ("tick", Values::Int(kt)),
                ("nation", Values::Text(kn)),
                ("commodity", Values::Text(kc)),
                ("stock_kg", Values::Int(stock)),
                ("target_days", Values::Int(target)),
                ("cover_days", Values::OptFloat(cover)),
            ],
        },
        Table {
            name: "shortages",
            columns: vec![
                ("tick", Values::Int(qt)),
                ("nation", Values::Text(qn)),
                ("sector", Values::Text(qs)),
                ("commodity", Values::Text(qc)),
                ("wanted_kg", Values::Int(wanted)),
                ("consumed_kg", Values::Int(consumed)),
                ("shortage_kg", Values::Int(short)),
            ],
        },
        Table {
            name: "events",
            columns: vec![
                ("effective_tick", Values::Int(et)),
                ("name", Values::Text(ename)),
                ("description", Values::Text(edesc)),
            ],
        },
        Table {
            name: "orders",
            columns: vec![
                ("tick", Values::Int(ot)),
                ("seq", Values::Int(oseq)),
                ("source", Values::Text(os)),
                ("kind", Values::Text(okind)),
                ("description", Values::Text(odesc)),
                ("received_at", Values::Text(oat)),
                // 1 for an input in force, 0 for one a rollback voided.
                ("in_force", Values::Int(olive)),
            ],
        },
    ]
}

/// Writes every table to `dir` in `format`; returns the files written.
pub fn write(data: &RunData, dir: &Path, format: Format) -> Result<Vec<PathBuf>, std::io::Error> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    for table in tables(data) {
        let path = match format {
            Format::Csv => {
                let path = dir.join(format!("{}.csv", table.name));
                write_csv(&table, &path)?;
                path
            }
            Format::Parquet => {
                let path = dir.join(format!("{}.parquet", table.name));
                write_parquet(&table, &path).map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
                path
            }
        };
        files.push(path);
    }
    Ok(files)
}

pub fn write_csv(table: &Table, path: &Path) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    let header: Vec<&str> = table.columns.iter().map(|(n, _)| *n).collect();
    writeln!(w, "{}", header.join(","))?;
    for i in 0..table.rows() {
        let row: Vec<String> = table.columns.iter().map(|(_, v)| v.cell(i)).collect();
        writeln!(w, "{}", row.join(","))?;
    }
    w.flush()
}

pub fn write_parquet(table: &Table, path: &Path) -> parquet::errors::Result<()> {
    use parquet::basic::{LogicalType, Repetition, Type as Physical};
    let fields = table
        .columns
        .iter()
        .map(|(name, values)| {
            let (physical, repetition, logical) = match values {
                Values::Int(_) => (Physical::INT64, Repetition::REQUIRED, None),
                Values::OptInt(_) => (Physical::INT64, Repetition::OPTIONAL, None),
                Values::Float(_) => (Physical::DOUBLE, Repetition::REQUIRED, None),
                Values::OptFloat(_) => (Physical::DOUBLE, Repetition::OPTIONAL, None),
                Values::Text(_) => (Physical::BYTE_ARRAY, Repetition::REQUIRED, Some(LogicalType::String)),
            };
            Type::primitive_type_builder(name, physical)
                .with_repetition(repetition)
                .with_logical_type(logical)
                .build()
                .map(Arc::new)
        })
        .collect::<parquet::errors::Result<Vec<_>>>()?;
    let schema = Arc::new(Type::group_type_builder(table.name).with_fields(fields).build()?);
    let props = Arc::new(WriterProperties::builder().set_compression(Compression::ZSTD(Default::default())).build());
    let mut writer = SerializedFileWriter::new(std::fs::File::create(path)?, schema, props)?;
    let mut group = writer.next_row_group()?;
    for (_, values) in &table.columns {
        let Some(mut column) = group.next_column()? else { break };
        match values {
            Values::Int(v) => {
                column.typed::<Int64Type>().write_batch(v, None, None)?;
            }
            Values::OptInt(v) => {
                let present: Vec<i64> = v.iter().flatten().copied().collect();
                let levels: Vec<i16> = v.iter().map(|x| i16::from(x.is_some())).collect();
                column.typed::<Int64Type>().write_batch(&present, Some(&levels), None)?;
            }
            Values::Float(v) => {
                column.typed::<DoubleType>().write_batch(v, None, None)?;
            }
            Values::OptFloat(v) => {
                let present: Vec<f64> = v.iter().flatten().copied().collect();
                let levels: Vec<i16> = v.iter().map(|x| i16::from(x.is_some())).collect();
                column.typed::<DoubleType>().write_batch(&present, Some(&levels), None)?;
            }
            Values::Text(v) => {
                let bytes: Vec<ByteArray> =
                    v.iter().map(|s| ByteArray::from(crate::clean::printable(s).as_ref())).collect();
                column.typed::<ByteArrayType>().write_batch(&bytes, None, None)?;
            }
        }
        column.close()?;
    }
    group.close()?;
    writer.close()?;
    Ok(())
}
