//! The debrief verbs that only run here: `diff` and `debrief` (`report` and `export` are in
//! `reads`, as a running process can answer them).

use super::open_read;
use crate::store::RunId;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub(super) fn diff(db: &Path, a: u64, b: u64, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let store = open_read(db)?;
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
    let store = std::sync::Arc::new(open_read(db)?);
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
