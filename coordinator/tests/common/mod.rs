//! Helpers shared by the coordinator's multi-process tests: where the scenarios are, private
//! folders and run databases per test, and running the `chokepoint` binary; `served` has
//! coordinators and agent nodes, `debrief` a
//! debrief server.
#![allow(dead_code)]

pub mod debrief;
pub mod exercise;
pub mod served;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

/// Every CSV file a run writes.
pub const OUTPUT_FILES: [&str; 13] = [
    "production.csv",
    "markets.csv",
    "domestic_prices.csv",
    "trades.csv",
    "stockpiles.csv",
    "shortages.csv",
    "nations.csv",
    "digests.csv",
    "events.csv",
    "emissions.csv",
    "investments.csv",
    "recycling.csv",
    "rejections.csv",
];

/// The path of a file in `scenarios/`.
pub fn scenario(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(file).display().to_string()
}

/// A fresh, empty folder for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chokepoint-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A run database of its own for each process, so tests running in parallel never share one
/// (sled holds an exclusive lock).
pub fn fresh_db() -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("chokepoint-test-db-{}-{n}", std::process::id()))
}

/// The command `chokepoint --db DB ARGS...`, for a test to run or spawn.
pub fn command<S: AsRef<std::ffi::OsStr>>(db: &Path, args: impl IntoIterator<Item = S>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_chokepoint"));
    c.arg("--db").arg(db).args(args);
    c
}

/// Runs `chokepoint --db DB ARGS...` to completion.
pub fn chokepoint(db: &Path, args: &[&str]) -> Output {
    command(db, args).output().expect("chokepoint runs")
}

/// Asserts a command succeeded and returns its standard output.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits for a child to exit, killing it (and failing) after `timeout`; true if it succeeded.
/// Asserts that `digests` (a digests.csv) has one row for each tick from 0, in order: no gap
/// and no repeat (what a run stopped and resumed must leave).
pub fn assert_every_tick_once(digests: &Path) {
    let ticks: Vec<u32> = std::fs::read_to_string(digests)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(ticks.iter().enumerate().all(|(i, t)| *t as usize == i), "digests.csv has a gap or a repeat");
}

pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> bool {
    let start = std::time::Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("process did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` (e.g. `libc::SIGTERM`) to a child process.
pub fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) with a pid we spawned and a valid signal number has no memory effects.
    let done = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(done, 0, "cannot signal process {}", child.id());
}

/// Every file under `dir` with its bytes, by path relative to `dir`.
pub fn files(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.insert(p.strip_prefix(root).unwrap_or(&p).to_path_buf(), bytes);
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A small file system for full-disk tests. Where this process may mount one (it runs as
/// root with the right to mount), a tmpfs of the given size on a fresh folder, which fills up
/// for real ("No space left on device"); elsewhere a plain folder where the failure is made
/// another way: [`SmallDisk::fill_up`] turns a chosen file into a link to `/dev/full`, where
/// every write fails the same way, and [`SmallDisk::command`] starts a process whose files may
/// not grow past a limit ("File too large"). Dropping it unmounts the tmpfs.
pub struct SmallDisk {
    pub dir: PathBuf,
    pub mounted: bool,
    full: Vec<PathBuf>,
    /// Without a tmpfs: the largest file a command started with `command` may write.
    limit_bytes: Option<u64>,
}

impl SmallDisk {
    pub fn new(name: &str, kib: u64) -> SmallDisk {
        let dir = temp_dir(&format!("disk-{name}"));
        let mounted = mount_tmpfs(&dir, kib);
        if !mounted {
            eprintln!("no tmpfs can be mounted here: files on the small disk write to /dev/full instead");
        }
        SmallDisk { dir, mounted, full: Vec::new(), limit_bytes: None }
    }

    /// Without a tmpfs, limits the size of each file commands started with
    /// [`SmallDisk::command`] write (the only way to fail writes to files whose names are not
    /// known in advance).
    pub fn limit_file_size(&mut self, bytes: u64) {
        if !self.mounted {
            self.limit_bytes = Some(bytes);
        }
    }

    /// The operating system's words for a write that does not fit here.
    pub fn full_error(&self) -> &'static str {
        if self.mounted || self.limit_bytes.is_none() {
            "No space left on device (os error 28)"
        } else {
            "File too large (os error 27)"
        }
    }

    /// `chokepoint --db DB ARGS...`, with the file-size limit when there is one.
    pub fn command(&self, db: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_chokepoint"));
        c.arg("--db").arg(db).args(args);
        if let Some(limit) = self.limit_bytes {
            use std::os::unix::process::CommandExt;
            // SAFETY: only async-signal-safe calls (signal, setrlimit) run in the child before
            // it executes the program.
            unsafe {
                c.pre_exec(move || {
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    let r = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &r) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        c
    }

    /// Without a tmpfs, makes the file `rel` (under the disk) one that no write fits in.
    pub fn fill_up(&mut self, rel: &str) {
        if self.mounted {
            return;
        }
        let path = self.dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("a file in a folder")).expect("folder");
        std::os::unix::fs::symlink("/dev/full", &path).expect("link to /dev/full");
        self.full.push(path);
    }

    /// Makes room: a larger tmpfs, or the files that were full removed.
    pub fn grow(&mut self, kib: u64) {
        for f in self.full.drain(..) {
            let _ = std::fs::remove_file(f);
        }
        self.limit_bytes = None;
        if self.mounted {
            let target = std::ffi::CString::new(self.dir.as_os_str().as_encoded_bytes()).expect("path");
            let opts = std::ffi::CString::new(format!("size={kib}k")).expect("options");
            // SAFETY: valid NUL-terminated strings for mount(2); no memory is handed over.
            let done = unsafe {
                libc::mount(
                    c"tmpfs".as_ptr(),
                    target.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_REMOUNT,
                    opts.as_ptr().cast(),
                )
            };
            assert_eq!(done, 0, "cannot grow the tmpfs: {}", std::io::Error::last_os_error());
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if self.mounted {
            let target = std::ffi::CString::new(self.dir.as_os_str().as_encoded_bytes()).expect("path");
            // SAFETY: a valid NUL-terminated path for umount2(2).
            unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Mounts a tmpfs of `kib` KiB on `dir`; false when this process may not.
fn mount_tmpfs(dir: &Path, kib: u64) -> bool {
    let target = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).expect("path");
    let opts = std::ffi::CString::new(format!("size={kib}k")).expect("options");
    // SAFETY: valid NUL-terminated strings for mount(2); no memory is handed over.
    let done = unsafe { libc::mount(c"tmpfs".as_ptr(), target.as_ptr(), c"tmpfs".as_ptr(), 0, opts.as_ptr().cast()) };
    done == 0
}
