//! The run store: one sled database per coordinator, and the only module that touches sled.
//!
//! Keys are versioned and big-endian so scans come back in (run, tick) order:
//!
//! | key | value |
//! |---|---|
//! | `v1/run/` run | `RunMeta` as JSON, without the scenario's text |
//! | `v1/text/` run | the scenario's text (written once; older records kept it in `RunMeta`) |
//! | `v1/tick/` run tick | `TickEntry` (digest and per-part digests), postcard |
//! | `v1/snap/` run tick | a snapshot envelope: magic, format version, BLAKE3 checksum, postcard `WorldState` |
//! | `v1/jrnl/` run tick seq | `JournalEntry` as JSON |
//! | `v1/srep/` run tick nation | an exercise's situation report for a nation, for the turn starting at tick, as JSON |
//! | `v1/acts/` run tick seq | `Decisions` (a journaled host's action batch), postcard |
//! | `v1/place/` run tick seq | `PlacementChange` (which host runs which agents from the tick) as JSON |
//!
//! A snapshot is flushed to disk before `put_snapshot` returns. Reading one checks its magic,
//! version and checksum; a torn or corrupted snapshot is skipped (with a warning) in favour of the
//! one before it. sled holds an exclusive lock on the database: a second process gets
//! [`StoreError::Locked`], naming the process that holds it, never a panic. `open` opens a
//! database so that damage is never made worse; `check` says what each run's records are worth
//! and `salvage` copies what is intact into a new database. Every sled error is put in one
//! sentence about the database, naming its file.

mod check;
mod open;

pub use check::{Health, RunHealth, Salvaged};
pub use open::{Access, Condition, Holder, OWNER, holder, set_socket};

use crate::hosts::{Decisions, PlacementChange};
pub use crate::journal::{ControlAction, JournalEntry, JournalInput};
use engine::scenario::Event;
use engine::world::WorldState;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A run's number in its database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RunId(pub u64);

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Completed,
    Failed,
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// Everything needed to rebuild a run's scenario exactly, and what became of the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMeta {
    pub scenario_name: String,
    /// Where the scenario was read from (informational).
    pub scenario_path: String,
    /// The file's text, verbatim. Stored under its own key, once (a large world's text is
    /// tens of megabytes, and the record is rewritten at every snapshot).
    #[serde(default, skip_serializing)]
    pub scenario_text: String,
    pub seed: u64,
    pub ticks: u32,
    /// The full list of scheduled events when it differs from the scenario's (a fork with
    /// `--events`).
    pub events: Option<Vec<Event>>,
    pub version: String,
    /// Wall-clock start, milliseconds since the Unix epoch (metadata only).
    pub started_unix_ms: u64,
    pub status: RunStatus,
    /// Ticks completed and recorded.
    pub ticks_done: u32,
    pub snapshot_every: u32,
    /// `(parent, tick)` for a fork.
    pub parent: Option<(RunId, u32)>,
    /// "embedded" or "served on N nodes".
    pub mode: String,
    /// The output folder, absolute (records made before version 0.1 of this field's rule may
    /// hold a relative one).
    pub out_dir: String,
    pub error: Option<String>,
    /// For a war-game exercise: who played, the turn length and the access tokens' hashes.
    #[serde(default)]
    pub exercise: Option<ExerciseMeta>,
    /// Who ended the run before its last tick ("control" for an exercise its control cell
    /// ended): such a run is complete at the tick it was ended.
    #[serde(default)]
    pub ended_by: Option<String>,
    /// Whether every host's decisions are journaled (`serve --journal-actions`); a resumed run
    /// keeps journaling them.
    #[serde(default)]
    pub journal_actions: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExerciseMeta {
    /// The played nations' codes.
    pub players: Vec<String>,
    pub turn_ticks: u32,
    /// (role, BLAKE3 of the token in hex): a nation's code, or "control". Tokens themselves are
    /// never stored.
    pub token_hashes: Vec<(String, String)>,
    /// When the exercise was continued under AI (`resume --ai`): the tick it was taken over at
    /// and the exercise's own output folder, left as the exercise wrote it.
    #[serde(default)]
    pub ai_from: Option<(u32, String)>,
}

impl RunMeta {
    /// The record of a new run of `scenario` (its text, seed and length as they are now),
    /// started now and not yet run.
    pub fn new(
        scenario: &engine::scenario::Scenario,
        scenario_path: String,
        out_dir: String,
        snapshot_every: u32,
        mode: String,
    ) -> RunMeta {
        RunMeta {
            scenario_name: scenario.name.clone(),
            scenario_path,
            scenario_text: scenario.source.clone(),
            seed: scenario.seed,
            ticks: scenario.ticks,
            events: None,
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_unix_ms: now_unix_ms(),
            status: RunStatus::Running,
            ticks_done: 0,
            snapshot_every,
            parent: None,
            mode,
            out_dir: absolute(&out_dir),
            error: None,
            exercise: None,
            ended_by: None,
            journal_actions: false,
        }
    }
}

/// What is kept for every tick: the state digest and digests of its parts, so a replay that
/// diverges can say where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickEntry {
    pub digest: [u8; 32],
    /// (part name, first 16 bytes of its digest), in a fixed order.
    pub parts: Vec<(String, [u8; 16])>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}", locked_words(path, holder.as_ref()))]
    Locked { path: PathBuf, holder: Option<Holder> },
    #[error(
        "the database at {} is damaged: {detail}; it was left as it is: `chokepoint --db {} db check` says which runs can be saved and `chokepoint --db {} db salvage --out NEWDB` copies them into a new database",
        path.display(), path.display(), path.display()
    )]
    Damaged { path: PathBuf, detail: String },
    #[error("the database file {}/db {detail}", path.display())]
    Sled { path: PathBuf, detail: String },
    #[error("the database at {} could not be copied aside before opening it, and was left as it is: {detail}", path.display())]
    Copy { path: PathBuf, detail: String },
    #[error("there is no run {0} in this database (see `chokepoint runs`)")]
    NoRun(RunId),
    #[error("the record of run {run} is unreadable: {detail}")]
    BadRecord { run: RunId, detail: String },
    #[error(
        "snapshot of run {run} at tick {tick} has format version {found}; this build reads version {SNAPSHOT_FORMAT}"
    )]
    IncompatibleSnapshot { run: RunId, tick: u32, found: u16 },
}

/// The first bytes of every snapshot.
const SNAPSHOT_MAGIC: &[u8; 4] = b"CKPT";
/// Bump when `WorldState`'s encoding changes; older snapshots are then refused.
pub const SNAPSHOT_FORMAT: u16 = 2;
const HEADER: usize = 4 + 2 + 32;

/// A run's id and its record, or why the record cannot be read.
pub type RunRecord = (RunId, Result<RunMeta, StoreError>);

/// A Locked error's sentence: who holds the database, and what to do.
fn locked_words(path: &Path, holder: Option<&Holder>) -> String {
    let who = match holder {
        Some(h) => format!("process {} (`{}`)", h.pid, h.command),
        None => "another process".to_string(),
    };
    format!(
        "the database at {} is in use by {who} (sled lets one process at a time open it); `runs`, `runs show`, `state`, `report` and `export` read it through that process while it runs; for other commands wait until it ends (or stop it with Ctrl-C or `kill`), or pass another --db",
        path.display()
    )
}

/// What a sled error means, as the end of a sentence about the database's file.
pub(crate) fn sled_words(e: &sled::Error) -> String {
    match e {
        sled::Error::Io(io) => format!("could not be read or written: {}", io_words(io)),
        sled::Error::Corruption { .. } => {
            "holds a damaged record (one whose checksum does not match what was written)".to_string()
        }
        sled::Error::CollectionNotFound(_) => "lacks a part this program expects".to_string(),
        sled::Error::Unsupported(why) => format!("cannot do what was asked ({why})"),
        sled::Error::ReportableBug(why) => format!("is in a state sled does not expect ({why})"),
    }
}

/// An I/O error in words. sled hands some errors on as the debug text of the original
/// (`Os { code: 28, kind: StorageFull, message: "No space left on device" }`), which is put
/// back into the usual form, "No space left on device (os error 28)".
fn io_words(e: &std::io::Error) -> String {
    let text = e.to_string();
    if e.raw_os_error().is_some() {
        return text;
    }
    let field = |name: &str| {
        text.split(&format!("{name}: "))
            .nth(1)
            .map(|rest| rest.split([',', '}']).next().unwrap_or("").trim().to_string())
    };
    match (field("message"), field("code")) {
        (Some(message), Some(code)) => format!("{} (os error {code})", message.trim_matches(['"', '\\'])),
        _ => text,
    }
}

/// A sled error as a [`StoreError`] about the database at `path`.
pub(crate) fn sled_error(path: &Path, e: sled::Error) -> StoreError {
    StoreError::Sled { path: path.to_path_buf(), detail: sled_words(&e) }
}

/// A sled database opened safely (see `open`); clones share it (sled's handles are
/// reference-counted). Fields drop in order: sled first, then the closer, which, when the last
/// clone is dropped, marks the database closed cleanly (or removes the copy that was read).
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    path: PathBuf,
    condition: Condition,
    notice: Option<String>,
    /// The runs this process created or resumed, and so drives.
    live: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<RunId>>>,
    closer: std::sync::Arc<open::Closer>,
}

impl Drop for Store {
    fn drop(&mut self) {
        if self.db.flush().is_err() {
            self.closer.clean.store(false, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

fn run_key(run: RunId) -> Vec<u8> {
    run_prefix(RUN, run)
}

/// The 8 bytes of a run id in a key, after its prefix.
fn id_bytes(key: &[u8], prefix_len: usize) -> [u8; 8] {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[prefix_len..prefix_len + 8]);
    b
}

fn tick_key(prefix: &[u8], run: RunId, tick: u32) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&run.0.to_be_bytes());
    k.extend_from_slice(&tick.to_be_bytes());
    k
}

fn run_prefix(prefix: &[u8], run: RunId) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&run.0.to_be_bytes());
    k
}

fn tick_of(key: &[u8], prefix_len: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&key[prefix_len + 8..prefix_len + 12]);
    u32::from_be_bytes(b)
}

const RUN: &[u8] = b"v1/run/";
const TEXT: &[u8] = b"v1/text/";
const NEXT_RUN: &[u8] = b"v1/meta/next-run";
const TICK: &[u8] = b"v1/tick/";
const SNAP: &[u8] = b"v1/snap/";
const JRNL: &[u8] = b"v1/jrnl/";
const SREP: &[u8] = b"v1/srep/";
const ACTS: &[u8] = b"v1/acts/";
const PLACE: &[u8] = b"v1/place/";

/// `path` made absolute against the current folder, so a run resumed from anywhere continues
/// its own outputs (an empty path stays empty).
pub fn absolute(path: &str) -> String {
    if path.is_empty() {
        return String::new();
    }
    std::path::absolute(path).map_or_else(|_| path.to_string(), |p| p.display().to_string())
}

/// Milliseconds since the Unix epoch, for metadata only (never for simulation).
#[allow(clippy::disallowed_methods)]
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Store {
    /// Opens (creating if needed) the database at `path` to record runs in it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_for(path, Access::Write)
    }

    /// Opens the database at `path` to read it: one not known to be intact is read from a
    /// copy, and never written.
    pub fn open_read(path: &Path) -> Result<Store, StoreError> {
        Store::open_for(path, Access::Read)
    }

    pub fn open_for(path: &Path, access: Access) -> Result<Store, StoreError> {
        let opened = open::open(path, access)?;
        Ok(Store {
            db: opened.db,
            path: path.to_path_buf(),
            condition: opened.condition,
            notice: opened.notice,
            live: Default::default(),
            closer: std::sync::Arc::new(opened.closer),
        })
    }

    /// The runs this process created or resumed (and so drives, while it runs).
    pub fn live_runs(&self) -> std::collections::BTreeSet<RunId> {
        crate::run::lock(&self.live).clone()
    }

    /// Notes that this process drives `run` (a resumed run).
    pub fn mark_live(&self, run: RunId) {
        crate::run::lock(&self.live).insert(run);
    }

    /// What the user should be told about how the database was opened (a copy read because it
    /// was not closed cleanly, a repair), if anything.
    pub fn notice(&self) -> Option<&str> {
        self.notice.as_deref()
    }

    /// What the database was found like before it was opened.
    pub fn condition(&self) -> Condition {
        self.condition
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: sled::Error) -> StoreError {
        sled_error(&self.path, e)
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(|e| self.err(e))
    }

    /// Records a new run and returns its id.
    pub fn create_run(&self, meta: &RunMeta) -> Result<RunId, StoreError> {
        // Ids start at 1 and grow by one; the counter is its own key, updated atomically.
        let next = self
            .db
            .update_and_fetch(NEXT_RUN, |old| {
                let n = old.and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_be_bytes);
                Some((n + 1).to_be_bytes().to_vec())
            })
            .map_err(|e| self.err(e))?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map_or(1, u64::from_be_bytes);
        let id = RunId(next);
        self.mark_live(id);
        self.db.insert(run_prefix(TEXT, id), meta.scenario_text.as_bytes()).map_err(|e| self.err(e))?;
        self.put_run(id, meta)?;
        self.flush()?;
        Ok(id)
    }

    /// Writes a run's record (its scenario text is written once, by `create_run`).
    pub fn put_run(&self, id: RunId, meta: &RunMeta) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(meta).map_err(|e| StoreError::BadRecord { run: id, detail: e.to_string() })?;
        self.db.insert(run_key(id), bytes).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A run's record with its scenario's text.
    pub fn run(&self, id: RunId) -> Result<RunMeta, StoreError> {
        let mut meta = self.record(id)?;
        if meta.scenario_text.is_empty()
            && let Some(text) = self.db.get(run_prefix(TEXT, id)).map_err(|e| self.err(e))?
        {
            meta.scenario_text = String::from_utf8(text.to_vec())
                .map_err(|_| StoreError::BadRecord { run: id, detail: "its scenario text is not UTF-8".into() })?;
        }
        Ok(meta)
    }

    /// A run's record, without its scenario's text (unless an older version kept it there).
    fn record(&self, id: RunId) -> Result<RunMeta, StoreError> {
        let bytes = self.db.get(run_key(id)).map_err(|e| self.err(e))?.ok_or(StoreError::NoRun(id))?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::BadRecord { run: id, detail: e.to_string() })
    }

    /// Changes a run's record.
    pub fn update_run(&self, id: RunId, f: impl FnOnce(&mut RunMeta)) -> Result<RunMeta, StoreError> {
        let mut meta = self.record(id)?;
        f(&mut meta);
        self.put_run(id, &meta)?;
        Ok(meta)
    }

    /// Every run, in id order, without their scenario texts (`run` has one's).
    pub fn runs(&self) -> Result<Vec<(RunId, RunMeta)>, StoreError> {
        self.run_records()?.into_iter().map(|(id, meta)| meta.map(|m| (id, m))).collect()
    }

    /// Every run's record (without its scenario text), in id order, each read on its own so
    /// that a damaged one is reported while the others are still listed: the ids up to the
    /// last one given out, and any other a scan of the records finds.
    pub fn run_records(&self) -> Result<Vec<RunRecord>, StoreError> {
        let mut ids = std::collections::BTreeSet::new();
        let counted = self.db.get(NEXT_RUN).ok().flatten().and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok());
        ids.extend((1..=counted.map_or(0, u64::from_be_bytes)).map(RunId));
        for key in self.db.scan_prefix(RUN).keys() {
            match key {
                Ok(k) if k.len() == RUN.len() + 8 => ids.insert(RunId(u64::from_be_bytes(id_bytes(&k, RUN.len())))),
                Ok(_) => false,
                // A damaged index page ends the scan; the counter still gives the ids.
                Err(_) if counted.is_some() => break,
                Err(e) => return Err(self.err(e)),
            };
        }
        let mut out = Vec::new();
        for id in ids {
            match self.record(id) {
                Err(StoreError::NoRun(_)) => {}
                other => out.push((id, other)),
            }
        }
        Ok(out)
    }

    pub fn put_tick(&self, run: RunId, tick: u32, entry: &TickEntry) -> Result<(), StoreError> {
        let bytes = postcard::to_allocvec(entry).map_err(|e| StoreError::BadRecord { run, detail: e.to_string() })?;
        self.db.insert(tick_key(TICK, run, tick), bytes).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The recorded entries of a run's ticks, in tick order.
    pub fn ticks(&self, run: RunId) -> Result<Vec<(u32, TickEntry)>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix(run_prefix(TICK, run)) {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let entry = postcard::from_bytes(&v).map_err(|e| StoreError::BadRecord { run, detail: e.to_string() })?;
            out.push((tick_of(&k, TICK.len()), entry));
        }
        Ok(out)
    }

    /// Forgets recorded ticks from `from` on (a resumed run re-records them).
    pub fn truncate_ticks(&self, run: RunId, from: u32) -> Result<(), StoreError> {
        self.forget_from(&[TICK], run, from)
    }

    /// Removes, in one batch, the records of each of `spaces` keyed by `run` and a tick at or
    /// after `from`.
    fn forget_from(&self, spaces: &[&[u8]], run: RunId, from: u32) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for space in spaces {
            for k in self.db.range(tick_key(space, run, from)..run_prefix(space, RunId(run.0 + 1))).keys() {
                batch.remove(k.map_err(|e| self.err(e))?);
            }
        }
        self.db.apply_batch(batch).map_err(|e| self.err(e))
    }

    /// Writes a snapshot of the state at the start of `tick` and flushes it to disk. Returns
    /// its size in bytes.
    pub fn put_snapshot(&self, run: RunId, tick: u32, state: &WorldState) -> Result<usize, StoreError> {
        let payload = postcard::to_allocvec(state).map_err(|e| StoreError::BadRecord { run, detail: e.to_string() })?;
        let mut bytes = Vec::with_capacity(HEADER + payload.len());
        bytes.extend_from_slice(SNAPSHOT_MAGIC);
        bytes.extend_from_slice(&SNAPSHOT_FORMAT.to_be_bytes());
        bytes.extend_from_slice(blake3::hash(&payload).as_bytes());
        bytes.extend_from_slice(&payload);
        let size = bytes.len();
        self.db.insert(tick_key(SNAP, run, tick), bytes).map_err(|e| self.err(e))?;
        self.flush()?;
        Ok(size)
    }

    /// Overwrites a snapshot's raw bytes (tests use this to simulate a torn write).
    pub fn put_raw_snapshot(&self, run: RunId, tick: u32, bytes: &[u8]) -> Result<(), StoreError> {
        self.db.insert(tick_key(SNAP, run, tick), bytes).map_err(|e| self.err(e))?;
        self.flush()
    }

    /// The ticks at which `run` has snapshots.
    ///
    /// A scan of the keys reads the snapshots themselves, so one damaged snapshot ends it; the
    /// ticks are then found by asking for every tick a snapshot would have been taken at.
    pub fn snapshot_ticks(&self, run: RunId) -> Result<Vec<u32>, StoreError> {
        let scanned: Result<Vec<u32>, sled::Error> =
            self.db.scan_prefix(run_prefix(SNAP, run)).keys().map(|k| k.map(|k| tick_of(&k, SNAP.len()))).collect();
        match scanned {
            Ok(ticks) => Ok(ticks),
            Err(e) => match self.record(run) {
                Ok(meta) => Ok(self.probe_snapshots(run, &meta)),
                Err(_) => Err(self.err(e)),
            },
        }
    }

    /// The ticks among those `run` would have snapshots at where there is one (readable or
    /// not): its first tick, every multiple of its snapshot interval up to one interval past
    /// its last recorded tick, and its end.
    fn probe_snapshots(&self, run: RunId, meta: &RunMeta) -> Vec<u32> {
        let first = meta.parent.map_or(0, |(_, at)| at);
        let every = meta.snapshot_every.max(1);
        let last = meta.ticks_done.saturating_add(every).min(meta.ticks);
        let mut ticks: Vec<u32> = (first..=last).filter(|t| *t == first || t % every == 0).collect();
        ticks.extend([meta.ticks_done, meta.ticks]);
        ticks.sort_unstable();
        ticks.dedup();
        ticks.retain(|t| !matches!(self.db.get(tick_key(SNAP, run, *t)), Ok(None)));
        ticks
    }

    /// The latest readable snapshot at or before `tick`. Corrupted ones are skipped with a
    /// warning; one of an incompatible format is an error (it would be wrong to skip it silently).
    pub fn snapshot_at_or_before(&self, run: RunId, tick: u32) -> Result<Option<(u32, WorldState)>, StoreError> {
        let candidates: Vec<u32> = self.snapshot_ticks(run)?.into_iter().filter(|t| *t <= tick).collect();
        for t in candidates.into_iter().rev() {
            let bytes = match self.db.get(tick_key(SNAP, run, t)) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => continue,
                Err(e) => {
                    let why = sled_words(&e);
                    eprintln!(
                        "warning: snapshot of run {run} at tick {t} is damaged (it {why}); using the one before it"
                    );
                    continue;
                }
            };
            match decode_snapshot(&bytes) {
                Ok(state) => return Ok(Some((t, state))),
                Err(SnapshotProblem::Version(found)) => {
                    return Err(StoreError::IncompatibleSnapshot { run, tick: t, found });
                }
                Err(SnapshotProblem::Damaged(why)) => {
                    tracing::warn!("snapshot of run {run} at tick {t} is damaged ({why}); using the one before it");
                    eprintln!("warning: snapshot of run {run} at tick {t} is damaged ({why}); using the one before it");
                }
            }
        }
        Ok(None)
    }

    pub fn append_journal(&self, run: RunId, entry: &JournalEntry) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(entry).map_err(|e| StoreError::BadRecord { run, detail: e.to_string() })?;
        let mut key = tick_key(JRNL, run, entry.tick);
        key.extend_from_slice(&entry.seq.to_be_bytes());
        self.db.insert(key, bytes).map_err(|e| self.err(e))?;
        self.flush()
    }

    /// Overwrites one journal entry in place (tests use this to tamper with a run).
    pub fn put_raw_journal(&self, run: RunId, tick: u32, seq: u32, bytes: &[u8]) -> Result<(), StoreError> {
        let mut key = tick_key(JRNL, run, tick);
        key.extend_from_slice(&seq.to_be_bytes());
        self.db.insert(key, bytes).map_err(|e| self.err(e))?;
        self.flush()
    }

    /// A run's journal, in (tick, seq) order.
    pub fn journal(&self, run: RunId) -> Result<Vec<JournalEntry>, StoreError> {
        self.db
            .scan_prefix(run_prefix(JRNL, run))
            .values()
            .map(|v| {
                let v = v.map_err(|e| self.err(e))?;
                serde_json::from_slice(&v)
                    .map_err(|e| StoreError::BadRecord { run, detail: format!("journal entry: {e}") })
            })
            .collect()
    }

    /// A run's journal with what rollbacks voided left out (see `journal::live`): the inputs
    /// replay, fork and debrief apply.
    pub fn live_journal(&self, run: RunId) -> Result<Vec<JournalEntry>, StoreError> {
        Ok(crate::journal::live(self.journal(run)?))
    }

    /// Forgets the snapshots after `tick` (a rollback to `tick` leaves them in another history).
    pub fn truncate_snapshots_after(&self, run: RunId, tick: u32) -> Result<(), StoreError> {
        let Some(from) = tick.checked_add(1) else { return Ok(()) };
        self.forget_from(&[SNAP], run, from)?;
        self.flush()
    }

    /// Keeps an exercise's situation report for `nation` on the turn starting at `tick`.
    pub fn put_sitrep(&self, run: RunId, tick: u32, nation: u16, report: &serde_json::Value) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(report).map_err(|e| StoreError::BadRecord { run, detail: e.to_string() })?;
        let mut key = tick_key(SREP, run, tick);
        key.extend_from_slice(&nation.to_be_bytes());
        self.db.insert(key, bytes).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A run's situation reports: (first tick of the turn, nation, report), in that order.
    pub fn sitreps(&self, run: RunId) -> Result<Vec<(u32, u16, serde_json::Value)>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix(run_prefix(SREP, run)) {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let nation = u16::from_be_bytes([k[SREP.len() + 12], k[SREP.len() + 13]]);
            let report = serde_json::from_slice(&v)
                .map_err(|e| StoreError::BadRecord { run, detail: format!("situation report: {e}") })?;
            out.push((tick_of(&k, SREP.len()), nation, report));
        }
        Ok(out)
    }

    /// Forgets the situation reports of turns starting at or after `tick` (a rollback).
    pub fn truncate_sitreps(&self, run: RunId, tick: u32) -> Result<(), StoreError> {
        self.forget_from(&[SREP], run, tick)
    }

    /// Records one journaled host's action batch, the `seq`th journaled at its tick.
    pub fn put_decisions(&self, run: RunId, seq: u32, decisions: &Decisions) -> Result<(), StoreError> {
        let bytes =
            postcard::to_allocvec(decisions).map_err(|e| StoreError::BadRecord { run, detail: e.to_string() })?;
        let mut key = tick_key(ACTS, run, decisions.tick);
        key.extend_from_slice(&seq.to_be_bytes());
        self.db.insert(key, bytes).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The journaled action batches of `tick`, in the order they were made.
    pub fn decisions(&self, run: RunId, tick: u32) -> Result<Vec<Decisions>, StoreError> {
        self.db
            .scan_prefix(tick_key(ACTS, run, tick))
            .values()
            .map(|v| {
                let v = v.map_err(|e| self.err(e))?;
                postcard::from_bytes(&v).map_err(|e| StoreError::BadRecord {
                    run,
                    detail: format!("journaled decisions at tick {tick}: {e}"),
                })
            })
            .collect()
    }

    /// The ticks with journaled decisions.
    pub fn decision_ticks(&self, run: RunId) -> Result<std::collections::BTreeSet<u32>, StoreError> {
        self.db
            .scan_prefix(run_prefix(ACTS, run))
            .keys()
            .map(|k| k.map(|k| tick_of(&k, ACTS.len())).map_err(|e| self.err(e)))
            .collect()
    }

    /// Records a change of placement, the `seq`th at its tick.
    pub fn put_placement(&self, run: RunId, seq: u32, change: &PlacementChange) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(change).map_err(|e| StoreError::BadRecord { run, detail: e.to_string() })?;
        let mut key = tick_key(PLACE, run, change.tick);
        key.extend_from_slice(&seq.to_be_bytes());
        self.db.insert(key, bytes).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A run's placement changes, in (tick, seq) order.
    pub fn placements(&self, run: RunId) -> Result<Vec<PlacementChange>, StoreError> {
        self.db
            .scan_prefix(run_prefix(PLACE, run))
            .values()
            .map(|v| {
                let v = v.map_err(|e| self.err(e))?;
                serde_json::from_slice(&v)
                    .map_err(|e| StoreError::BadRecord { run, detail: format!("placement record: {e}") })
            })
            .collect()
    }

    /// Forgets the journaled decisions and placement changes of ticks from `from` on (a
    /// resumed run makes them again).
    pub fn truncate_hosting(&self, run: RunId, from: u32) -> Result<(), StoreError> {
        self.forget_from(&[ACTS, PLACE], run, from)
    }

    /// The database's size on disk in bytes.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

enum SnapshotProblem {
    Version(u16),
    Damaged(String),
}

fn decode_snapshot(bytes: &[u8]) -> Result<WorldState, SnapshotProblem> {
    if bytes.len() < HEADER || &bytes[..4] != SNAPSHOT_MAGIC {
        return Err(SnapshotProblem::Damaged("bad header".into()));
    }
    let version = u16::from_be_bytes([bytes[4], bytes[5]]);
    if version != SNAPSHOT_FORMAT {
        return Err(SnapshotProblem::Version(version));
    }
    let payload = &bytes[HEADER..];
    if blake3::hash(payload).as_bytes() != &bytes[6..38] {
        return Err(SnapshotProblem::Damaged("checksum mismatch".into()));
    }
    postcard::from_bytes(payload).map_err(|e| SnapshotProblem::Damaged(e.to_string()))
}

/// The size of a state's snapshot payload in bytes.
pub fn encoded_len(state: &WorldState) -> usize {
    postcard::to_allocvec(state).map_or(0, |v| v.len())
}
