//! Reading a database while another process holds it. sled lets one process open a database,
//! so a process that keeps one open for long (`run`, `serve`, `exercise`, `resume`, `fork`)
//! answers the read-only verbs itself: it listens on a Unix socket (in the database's folder,
//! or under the temporary folder when that path is too long for a socket), whose path it
//! records in the database's owner file, and answers one request per connection — a JSON
//! `Read` — with the text the verb would have printed. A command that finds the database
//! locked reads the owner file, asks over the socket, and prints the answer; when there is no
//! socket to ask, its error names the process holding the database.
//!
//! The socket is readable and writable by its owner only: an answer can write files (a report,
//! an export) where the request says, with the rights of the process answering.

use super::reads::{self, Read};
use crate::store::{RunId, Store};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// An answer: the verb's text, and its error when it failed.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Answer {
    pub text: String,
    pub error: Option<String>,
}

/// A read socket being served; dropping it stops the server and removes the socket.
pub struct Serving {
    path: PathBuf,
    db: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept with a connection of our own.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
        crate::store::set_socket(&self.db, None);
    }
}

/// Where the read socket of the database at `db` lives: in its folder when that path fits in
/// a socket address (about 100 bytes), else in the temporary folder under a name made from it.
fn socket_path(db: &Path) -> PathBuf {
    let inside = std::path::absolute(db).unwrap_or_else(|_| db.to_path_buf()).join("chokepoint.sock");
    if inside.as_os_str().len() < 100 {
        return inside;
    }
    let hash = blake3::hash(inside.as_os_str().as_encoded_bytes()).to_hex();
    std::env::temp_dir().join(format!("chokepoint-{}.sock", &hash[..16]))
}

/// Starts answering read requests about `store` (the database at `db`) on a socket. Returns
/// `None` (after a warning) when no socket can be made: readers are then told which process
/// holds the database.
pub fn serve(store: Arc<Store>, db: &Path) -> Option<Serving> {
    let path = socket_path(db);
    let _ = std::fs::remove_file(&path);
    let listener = match UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("cannot serve reads of {} on {}: {e}", db.display(), path.display());
            return None;
        }
    };
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    crate::store::set_socket(db, Some(&path));
    let stop = Arc::new(AtomicBool::new(false));
    let (halt, dir) = (stop.clone(), db.to_path_buf());
    let thread = std::thread::spawn(move || {
        for conn in listener.incoming() {
            if halt.load(Ordering::SeqCst) {
                break;
            }
            if let Ok(conn) = conn {
                let _ = answer_one(&store, &dir, &store.live_runs(), conn);
            }
        }
    });
    Some(Serving { path, db: db.to_path_buf(), stop, thread: Some(thread) })
}

fn answer_one(store: &Store, db: &Path, live: &BTreeSet<RunId>, conn: UnixStream) -> std::io::Result<()> {
    let mut line = String::new();
    BufReader::new(&conn).read_line(&mut line)?;
    let answer = match serde_json::from_str::<Read>(&line) {
        Ok(read) => {
            let mut text = String::new();
            let error = reads::answer(store, db, &read, live, &mut text).err().map(|e| format!("{e:#}"));
            Answer { text, error }
        }
        Err(e) => Answer { text: String::new(), error: Some(format!("not a read request: {e}")) },
    };
    let mut conn = conn;
    conn.write_all(&serde_json::to_vec(&answer).map_err(std::io::Error::other)?)?;
    conn.flush()
}

/// Asks the process answering on `socket` for `read`; `None` when it cannot be reached.
pub fn ask(socket: &Path, read: Read) -> Option<Answer> {
    let mut conn = UnixStream::connect(socket).ok()?;
    let mut request = serde_json::to_vec(&read.absolute()).ok()?;
    request.push(b'\n');
    conn.write_all(&request).ok()?;
    conn.shutdown(std::net::Shutdown::Write).ok()?;
    let mut reply = Vec::new();
    std::io::Read::read_to_end(&mut conn, &mut reply).ok()?;
    serde_json::from_slice(&reply).ok()
}
