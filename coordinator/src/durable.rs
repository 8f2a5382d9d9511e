//! Files replaced whole, never truncated in place: the new content is written beside its
//! destination, flushed to disk, renamed over it, and the rename itself is flushed. A reader,
//! or a process killed at any moment, sees the old file or the new one, never a part of either.
//! Every failure names the file and carries the operating system's error.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A file that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {error}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub error: std::io::Error,
}

impl WriteError {
    pub fn new(path: &Path, error: std::io::Error) -> WriteError {
        WriteError { path: path.to_path_buf(), error }
    }
}

/// Where a file's next content is written before it replaces the file: beside it (so the
/// rename stays on one file system), hidden, and private to this process.
pub fn temporary(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Replaces `path` with `bytes`.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    replace_with(path, |tmp| {
        let mut f = std::fs::File::create(tmp)?;
        f.write_all(bytes)?;
        f.flush()
    })
}

/// Replaces `path` with what `write` writes to the temporary file it is given (for writers
/// that open their own file, such as Parquet's).
pub fn replace_with(path: &Path, write: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<(), WriteError> {
    let tmp = temporary(path);
    let done = write(&tmp)
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .map_err(|e| WriteError::new(&tmp, e))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| WriteError::new(path, e)))
        .and_then(|()| sync_dir(path));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// Flushes the directory holding `path`, so a file created or renamed in it survives a crash.
pub fn sync_dir(path: &Path) -> Result<(), WriteError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| WriteError::new(dir, e))
}

/// Removes the temporary files that processes no longer running left in `dir` (a process
/// killed while it replaced a file).
pub fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) =
            name.strip_suffix(".tmp").and_then(|n| n.rsplit('.').next()).and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if name.starts_with('.') && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
