//! Opening a database without making damage worse. sled repairs what it finds wrong when it
//! opens a database (it cuts a log it cannot read at the first bad record), so it is only
//! allowed to open, in place, a database known to be as it was left: one closed cleanly, whose
//! files still match the manifest (name, size and BLAKE3 of every file) written when it was
//! closed. Any other — one whose process was killed, or one changed since it was closed — is
//! first copied, and sled opens the copy:
//!
//! - to read (`runs`, `state`, `report`, `db check`, ...), the copy is read and then removed;
//!   the original is never written;
//! - to write (`run`, `resume`, `fork`, ...), the repaired copy becomes the database once sled
//!   has opened it, and the original is kept beside it, renamed, byte for byte as it was.
//!
//! When sled cannot open even the copy, the original is left as it was and the error says how
//! to see what can be saved (`db check`) and save it (`db salvage`).

use super::StoreError;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The manifest written when a database is closed cleanly.
const CLOSED: &str = "chokepoint.closed";
/// Who has the database open: process id, command line and the address of its read socket.
pub const OWNER: &str = "chokepoint.owner";
const MANIFEST_HEAD: &str = "chokepoint database, closed cleanly, manifest v1";

/// What the caller will do with the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Record runs (run, serve, exercise, resume, fork).
    Write,
    /// Only read it (runs, state, report, export, replay, diff, debrief, db check).
    Read,
}

/// The state of a database before sled sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// There is none yet.
    New,
    /// Closed cleanly and unchanged since.
    Clean,
    /// Not closed cleanly: its last process was killed or crashed (or an older version, which
    /// kept no manifest, wrote it).
    Unclosed,
    /// Closed cleanly, but its files have changed since: damaged, or edited.
    Changed,
}

/// Who holds a database open, as it wrote in [`OWNER`].
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub command: String,
    /// The Unix socket it answers read-only requests on, when it serves one.
    #[serde(default)]
    pub socket: Option<PathBuf>,
    /// Whether it opened the database only to read it (`runs`, `state`, `report`, ...): such a
    /// holder usually lets go within moments, so a process that wants the database waits for it.
    #[serde(default)]
    pub reading: bool,
}

/// How long a process that wants the database waits for a reader holding it to finish (a
/// `runs` or `state` typed while a run is being resumed): longer than any quick read takes, short
/// enough that a long-lived reader (a debrief server) is named soon.
const READER_WAIT: Duration = Duration::from_secs(15);

/// A database opened by sled: where (the database itself, or a copy of it), what it was found
/// like, and what to do when it is closed.
pub(super) struct Opened {
    pub db: sled::Db,
    pub condition: Condition,
    pub closer: Closer,
    /// What the user should be told about how it was opened (a copy read, a repair).
    pub notice: Option<String>,
}

/// Runs when a store is dropped, after sled: writes the manifest of a database closed cleanly
/// in place, or removes a copy that was only read.
pub(super) struct Closer {
    dir: PathBuf,
    /// A copy to remove instead of a database to mark.
    scratch: bool,
    /// Whether every flush at a store's drop succeeded (a database whose writes failed is not
    /// clean).
    pub clean: std::sync::atomic::AtomicBool,
}

impl Drop for Closer {
    fn drop(&mut self) {
        if self.scratch {
            let _ = std::fs::remove_dir_all(&self.dir);
            return;
        }
        let _ = std::fs::remove_file(self.dir.join(OWNER));
        // sled lets go of its files a moment after its last handle is dropped; wait for that,
        // so that the database can be opened again as soon as this returns. The manifest is
        // written under the same lock, so nothing can change the files meanwhile.
        let Ok(Some(_lock)) = wait_for_lock(&self.dir, Duration::from_secs(5)) else { return };
        if !self.clean.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        if let Ok(manifest) = manifest(&self.dir) {
            let _ = crate::durable::replace(&self.dir.join(CLOSED), manifest.as_bytes());
        }
    }
}

/// Opens the database at `path` for `access` (see the module's description).
pub(super) fn open(path: &Path, access: Access) -> Result<Opened, StoreError> {
    finish_interrupted_repair(path);
    remove_abandoned_copies(path);
    // A process that has just closed the database may not have let go of it yet: retry for a
    // moment; a running process that is only reading it, for a little longer; a running process
    // that records runs keeps it for as long as it runs, so the error comes at once.
    let start = Instant::now();
    let lock = loop {
        match try_lock(path) {
            Ok(lock) => break lock,
            Err(_) => {
                let patience = match running_holder(path) {
                    None => Duration::from_secs(2),
                    Some(h) if h.reading => READER_WAIT,
                    Some(_) => Duration::ZERO,
                };
                if start.elapsed() >= patience {
                    return Err(StoreError::Locked { path: path.to_path_buf(), holder: holder(path) });
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
    };
    let condition = condition(path);
    match condition {
        Condition::New | Condition::Clean => {
            drop(lock);
            let db = sled_open(path)?;
            // Open now: no longer closed cleanly until it is closed again.
            let _ = std::fs::remove_file(path.join(CLOSED));
            write_holder(path, access);
            Ok(Opened {
                db,
                condition,
                closer: Closer { dir: path.to_path_buf(), scratch: false, clean: true.into() },
                notice: None,
            })
        }
        Condition::Unclosed | Condition::Changed => open_a_copy(path, access, condition, lock),
    }
}

/// sled opens a copy of the database; the original is untouched until the copy has opened.
fn open_a_copy(path: &Path, access: Access, condition: Condition, lock: Option<File>) -> Result<Opened, StoreError> {
    let why = match condition {
        Condition::Changed => "has changed since it was last closed (it may be damaged)",
        Condition::New | Condition::Clean | Condition::Unclosed => {
            "was not closed cleanly (its last process was killed or crashed, or an older version wrote it)"
        }
    };
    let kind = if access == Access::Read { "reading" } else { "repairing" };
    let mut copy = sibling(path, &format!("{kind}-{}", std::process::id()));
    if let Err(e) = copy_tree(path, &copy) {
        let _ = std::fs::remove_dir_all(&copy);
        // A copy only to be read may go anywhere: beside the database first (the same disk),
        // else the temporary folder (when that disk is full).
        let elsewhere = std::env::temp_dir().join(format!("chokepoint-{kind}-{}", std::process::id()));
        if access == Access::Write || copy_tree(path, &elsewhere).is_err() {
            let _ = std::fs::remove_dir_all(&elsewhere);
            return Err(StoreError::Copy { path: path.to_path_buf(), detail: e.to_string() });
        }
        copy = elsewhere;
    }
    let (db, how) = match sled_open(&copy) {
        Ok(db) => (db, ""),
        Err(StoreError::Damaged { detail, .. } | StoreError::Sled { detail, .. }) => match rebuilt(path, &copy) {
            Some(opened) => opened,
            None => {
                let _ = std::fs::remove_dir_all(&copy);
                return Err(StoreError::Damaged { path: path.to_path_buf(), detail });
            }
        },
        Err(other) => {
            let _ = std::fs::remove_dir_all(&copy);
            return Err(other);
        }
    };
    if access == Access::Read {
        let notice = format!(
            "note: the database at {} {why}; reading a copy{how} and leaving it as it is (`chokepoint --db {} db check` checks every run)",
            path.display(),
            path.display()
        );
        let closer = Closer { dir: copy, scratch: true, clean: true.into() };
        return Ok(Opened { db, condition, closer, notice: Some(notice) });
    }
    // Close the repaired copy cleanly, then put it in the original's place.
    let flushed = db.flush().is_ok();
    drop(db);
    drop(Closer { dir: copy.clone(), scratch: false, clean: flushed.into() });
    // A database changed since it was closed is kept under a name of its own each time; one
    // only left open by a killed process is kept once (the last such copy), so that a job
    // preempted again and again does not fill the disk with copies.
    let kept = match condition {
        Condition::Changed => PathBuf::from(format!("{}.damaged-{}", path.display(), crate::store::now_unix_ms())),
        Condition::New | Condition::Clean | Condition::Unclosed => {
            PathBuf::from(format!("{}.unclosed", path.display()))
        }
    };
    let _ = std::fs::remove_dir_all(&kept);
    std::fs::rename(path, &kept)
        .and_then(|()| std::fs::rename(&copy, path))
        .map_err(|e| StoreError::Copy { path: path.to_path_buf(), detail: e.to_string() })?;
    let _ = crate::durable::sync_dir(path);
    drop(lock);
    let mut opened = open(path, Access::Write)?;
    opened.notice = Some(format!(
        "warning: the database at {} {why}; sled repaired a copy{how}, which is now the database, and the original is kept as it was in {} (remove it once it is no longer needed)",
        path.display(),
        kept.display()
    ));
    opened.condition = condition;
    Ok(opened)
}

/// For a database sled cannot open even as a copy: fresh copies it is given a better chance
/// with, tried in turn — without its index (`snap.*` files), which sled then rebuilds from its
/// log, and with a fresh configuration file as well (`conf` holds nothing but sled's defaults).
/// Returns the one that opened (in `copy`) and how it was made, in words.
fn rebuilt(path: &Path, copy: &Path) -> Option<(sled::Db, &'static str)> {
    for fresh_conf in [false, true] {
        copy_tree(path, copy).ok()?;
        for e in std::fs::read_dir(copy).ok()?.flatten() {
            if e.file_name().to_string_lossy().starts_with("snap.") {
                let _ = std::fs::remove_file(e.path());
            }
        }
        if fresh_conf && write_fresh_conf(copy).is_err() {
            return None;
        }
        if let Ok(db) = sled_open(copy) {
            let how = if fresh_conf {
                " (with its index rebuilt from its log and a fresh configuration file)"
            } else {
                " (with its index rebuilt from its log)"
            };
            return Some((db, how));
        }
    }
    None
}

/// Writes into `dir` the configuration file sled writes for a new database.
fn write_fresh_conf(dir: &Path) -> Result<(), StoreError> {
    let fresh = sibling(dir, "conf");
    let _ = std::fs::remove_dir_all(&fresh);
    drop(sled_open(&fresh)?);
    let copied = std::fs::copy(fresh.join("conf"), dir.join("conf"));
    let _ = std::fs::remove_dir_all(&fresh);
    copied.map(|_| ()).map_err(|e| StoreError::Copy { path: dir.to_path_buf(), detail: e.to_string() })
}

/// A folder beside `path`, hidden: `.NAME.what`.
fn sibling(path: &Path, what: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "db".into());
    path.with_file_name(format!(".{name}.{what}"))
}

/// A repair whose process was killed between putting the original aside and the copy in its
/// place leaves no database at `path`: put the copy, closed cleanly, in place.
fn finish_interrupted_repair(path: &Path) {
    if path.exists() {
        return;
    }
    let Some(parent) = path.parent() else { return };
    let prefix =
        format!(".{}.repairing-", path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && e.path().join(CLOSED).exists() {
            let _ = std::fs::rename(e.path(), path);
            return;
        }
    }
}

/// Removes the copies beside `path` that processes no longer running were reading
/// or repairing (`.NAME.reading-PID`, `.NAME.repairing-PID`): a command killed meanwhile.
fn remove_abandoned_copies(path: &Path) {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = file.strip_prefix(&format!(".{name}.")) else { continue };
        let pid = rest.strip_prefix("reading-").or_else(|| rest.strip_prefix("repairing-"));
        if pid.and_then(|p| p.parse::<u32>().ok()).is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Takes sled's own lock on the database's data file (`flock`), if the file exists: `None`
/// when there is no database yet; an error when another process holds it.
fn try_lock(path: &Path) -> std::io::Result<Option<File>> {
    use fs2::FileExt;
    let file = match std::fs::OpenOptions::new().read(true).write(true).open(path.join("db")) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    file.try_lock_exclusive()?;
    Ok(Some(file))
}

/// [`try_lock`], retried until `wait` has passed.
fn wait_for_lock(path: &Path, wait: Duration) -> std::io::Result<Option<File>> {
    let deadline = Instant::now() + wait;
    loop {
        match try_lock(path) {
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            other => return other,
        }
    }
}

fn condition(path: &Path) -> Condition {
    let mut files = Vec::new();
    if list(path, Path::new(""), &mut files).is_err() || files.is_empty() {
        return Condition::New;
    }
    let Ok(written) = std::fs::read_to_string(path.join(CLOSED)) else { return Condition::Unclosed };
    match manifest(path) {
        Ok(now) if now == written => Condition::Clean,
        Ok(_) | Err(_) => Condition::Changed,
    }
}

/// Every file of the database (its own, not ours), sorted, with its size and BLAKE3 hash.
fn manifest(dir: &Path) -> std::io::Result<String> {
    let mut files = Vec::new();
    list(dir, Path::new(""), &mut files)?;
    files.sort();
    let mut out = format!("{MANIFEST_HEAD}\n");
    for rel in files {
        let mut hasher = blake3::Hasher::new();
        let mut file = File::open(dir.join(&rel))?;
        let size = std::io::copy(&mut file, &mut hasher)?;
        out.push_str(&format!("{} {size} {}\n", hasher.finalize().to_hex(), rel.display()));
    }
    Ok(out)
}

/// The files under `dir/rel`, relative to `dir`, leaving out Chokepoint's own.
fn list(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir.join(rel))? {
        let entry = entry?;
        let name = entry.file_name();
        if rel.as_os_str().is_empty() && name.to_string_lossy().starts_with("chokepoint.") {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            list(dir, &rel.join(&name), out)?;
        } else if kind.is_file() {
            out.push(rel.join(&name));
        }
    }
    Ok(())
}

/// Copies sled's files of the database at `from` to a new folder `to`.
pub(super) fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    let _ = std::fs::remove_dir_all(to);
    let mut files = Vec::new();
    list(from, Path::new(""), &mut files)?;
    std::fs::create_dir_all(to)?;
    for rel in files {
        if let Some(parent) = rel.parent() {
            std::fs::create_dir_all(to.join(parent))?;
        }
        std::fs::copy(from.join(&rel), to.join(&rel))?;
    }
    Ok(())
}

/// Records this process as the database's holder.
fn write_holder(path: &Path, access: Access) {
    let holder = Holder {
        pid: std::process::id(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        socket: None,
        reading: access == Access::Read,
    };
    if let Ok(text) = serde_json::to_vec(&holder) {
        let _ = crate::durable::replace(&path.join(OWNER), &text);
    }
}

/// The database's recorded holder, if it is another process that is still running.
fn running_holder(path: &Path) -> Option<Holder> {
    holder(path).filter(|h| h.pid != std::process::id() && Path::new(&format!("/proc/{}", h.pid)).exists())
}

/// Who holds the database at `path` open, as it recorded.
pub fn holder(path: &Path) -> Option<Holder> {
    let text = std::fs::read(path.join(OWNER)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Records the socket the holder (this process) answers read-only requests on.
pub fn set_socket(path: &Path, socket: Option<&Path>) {
    if let Some(mut h) = holder(path).filter(|h| h.pid == std::process::id()) {
        h.socket = socket.map(Path::to_path_buf);
        if let Ok(text) = serde_json::to_vec(&h) {
            let _ = crate::durable::replace(&path.join(OWNER), &text);
        }
    }
}

/// sled's open, with its panics on some damaged files caught and every error put in words.
pub(super) fn sled_open(path: &Path) -> Result<sled::Db, StoreError> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let opened = std::panic::catch_unwind(|| sled::Config::new().path(path).open());
    std::panic::set_hook(previous);
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(sled::Error::Io(e))) if e.to_string().contains("could not acquire lock") => {
            Err(StoreError::Locked { path: path.to_path_buf(), holder: holder(path) })
        }
        Ok(Err(e @ (sled::Error::Corruption { .. } | sled::Error::ReportableBug(_)))) => {
            Err(StoreError::Damaged { path: path.to_path_buf(), detail: super::sled_words(&e) })
        }
        Ok(Err(e)) => Err(super::sled_error(path, e)),
        // sled's own words for what it tripped over are about its internals; logged only.
        Err(panic) => {
            let detail =
                panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            tracing::debug!("sled panicked opening {}: {detail:?}", path.display());
            Err(StoreError::Damaged {
                path: path.to_path_buf(),
                detail: "sled stopped while reading its log (an internal check failed on what it found)".into(),
            })
        }
    }
}
