//! The debrief verbs: `report`, `export`, `diff` and `debrief`.

use super::open_store;
use crate::store::RunId;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub(super) fn report(db: &Path, run: u64, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let store = open_store(db)?;
    let started = std::time::Instant::now();
    let data = crate::debrief::collect(&store, RunId(run))?;
    let out = out.unwrap_or_else(|| PathBuf::from("out").join(format!("report-run{run}")));
    let report = crate::debrief::report::write(&data, &out)
        .with_context(|| format!("cannot write the report to {}", out.display()))?;
    for h in &report.highlights {
        println!("  {h}");
    }
    println!(
        "Report for run {run} ({} ticks, {} charts) written to {} in {:.1} s",
        data.records.len(),
        report.charts.len(),
        report.index.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn export(
    db: &Path,
    run: u64,
    format: crate::debrief::export::Format,
    out: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let store = open_store(db)?;
    let data = crate::debrief::collect(&store, RunId(run))?;
    let out = out.unwrap_or_else(|| PathBuf::from("out").join(format!("export-run{run}")));
    let files = crate::debrief::export::write(&data, &out, format)
        .with_context(|| format!("cannot write to {}", out.display()))?;
    for table in crate::debrief::export::tables(&data) {
        println!("  {:<12} {:>8} rows", table.name, table.rows());
    }
    println!("Run {run}: {} tables written to {}", files.len(), out.display());
    Ok(ExitCode::SUCCESS)
}

pub(super) fn diff(db: &Path, a: u64, b: u64, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let store = open_store(db)?;
    let da = crate::debrief::collect(&store, RunId(a))?;
    let db_ = crate::debrief::collect(&store, RunId(b))?;
    let text = crate::debrief::diff::compare(&store, &da, &db_, out.as_deref())?;
    print!("{text}");
    if let Some(out) = out {
        println!("Charts written to {}", out.join("index.html").display());
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn debrief(db: &Path, run: u64, listen: String) -> anyhow::Result<ExitCode> {
    let store = open_store(db)?;
    let id = RunId(run);
    store.run(id)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let listener =
            tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on {listen}"))?;
        println!("Debrief of run {run} at http://{}/ (Ctrl-C to stop)", listener.local_addr()?);
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        crate::debrief::web::serve(store, id, listener, shutdown).await?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
