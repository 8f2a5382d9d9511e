//! A sweep's finished runs ("cells"), one file each in `OUT/cells/`, named by a content hash of
//! everything the run's result depends on: the scenario's text, the seed, the number of ticks,
//! the swept parameters' values and the version of the program. A rerun with any flags finds
//! exactly the cells it needs already done, and never takes one of another configuration.
//!
//! A cell is written whole (to a temporary file, flushed, renamed; see `durable`), so it exists
//! only once every one of its rows is on disk, and it ends with a checksum of its content, so a
//! file damaged later is noticed and its run done again.

use crate::durable::{self, WriteError};
use std::path::{Path, PathBuf};

/// What a cell is the result of. `params` are the swept (key, value) pairs other than `ticks`,
/// which is counted in `ticks` as the run had it.
pub struct CellKey<'a> {
    pub scenario_text: &'a str,
    pub seed: u64,
    pub ticks: u32,
    pub params: Vec<(&'a str, &'a str)>,
}

/// A cell's identity: the first 16 bytes of the BLAKE3 hash of its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CellId(pub [u8; 16]);

impl std::fmt::Display for CellId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl CellKey<'_> {
    /// The identity of this key. Every part is length-prefixed, so no two keys hash alike by
    /// running into each other; parameters are sorted by key, so the order of `--set` flags
    /// does not matter.
    pub fn id(&self) -> CellId {
        let mut h = blake3::Hasher::new();
        let mut part = |bytes: &[u8]| {
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        part(b"chokepoint/sweep-cell/v1");
        part(env!("CARGO_PKG_VERSION").as_bytes());
        part(self.scenario_text.as_bytes());
        part(&self.seed.to_le_bytes());
        part(&self.ticks.to_le_bytes());
        let mut params = self.params.clone();
        params.sort();
        for (k, v) in params {
            part(k.as_bytes());
            part(v.as_bytes());
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&h.finalize().as_bytes()[..16]);
        CellId(id)
    }

    /// The key in words, for the head of its file.
    fn describe(&self) -> String {
        let mut words = format!("seed={} ticks={}", self.seed, self.ticks);
        for (k, v) in &self.params {
            words.push_str(&format!(" {k}={v}"));
        }
        words
    }
}

/// What is on disk for one cell.
pub enum Found {
    /// Finished: its rows, `outcome,subject,value` each.
    Finished(Vec<String>),
    Missing,
    /// There, but not whole or not what was written (the reason).
    Damaged(String),
}

/// The folder of a sweep's cells.
pub struct Cells {
    dir: PathBuf,
}

const MAGIC: &str = "# chokepoint sweep cell v1 ";
const END: &str = "# end ";

impl Cells {
    /// Opens (creating it if needed) `out/cells`, clearing what processes killed mid-write left.
    pub fn open(out: &Path) -> Result<Cells, WriteError> {
        let dir = out.join("cells");
        std::fs::create_dir_all(&dir).map_err(|e| WriteError::new(&dir, e))?;
        durable::remove_stale_temporaries(&dir);
        Ok(Cells { dir })
    }

    fn path(&self, id: CellId) -> PathBuf {
        self.dir.join(format!("{id}.csv"))
    }

    /// The finished cells in the folder, of any configuration.
    pub fn count(&self) -> usize {
        std::fs::read_dir(&self.dir).map_or(0, |entries| {
            entries.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".csv")).count()
        })
    }

    /// What the folder holds for `id`.
    pub fn read(&self, id: CellId) -> Found {
        let text = match std::fs::read(self.path(id)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Found::Missing,
            Err(e) => return Found::Damaged(e.to_string()),
        };
        let Ok(text) = String::from_utf8(text) else { return Found::Damaged("not text".into()) };
        let Some(end) = text.trim_end_matches('\n').rfind('\n').map(|i| i + 1) else {
            return Found::Damaged("too short".into());
        };
        let (body, tail) = text.split_at(end);
        if tail.trim_end() != format!("{END}{}", blake3::hash(body.as_bytes()).to_hex()) {
            return Found::Damaged("its checksum does not match".into());
        }
        let mut lines = body.lines();
        if lines.next() != Some(format!("{MAGIC}{id}").as_str()) {
            return Found::Damaged("it is the record of another run".into());
        }
        let rows = lines.filter(|l| !l.starts_with('#') && *l != "outcome,subject,value").map(String::from).collect();
        Found::Finished(rows)
    }

    /// Records a finished cell: its rows are durable when this returns, and not before.
    pub fn write(&self, key: &CellKey<'_>, rows: &[String]) -> Result<(), WriteError> {
        let id = key.id();
        let mut body = format!("{MAGIC}{id}\n# {}\noutcome,subject,value\n", key.describe());
        for r in rows {
            body.push_str(r);
            body.push('\n');
        }
        let sum = blake3::hash(body.as_bytes()).to_hex();
        body.push_str(&format!("{END}{sum}\n"));
        durable::replace(&self.path(id), body.as_bytes())
    }
}
