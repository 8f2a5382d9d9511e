//! A debrief server on a recorded run, and plain HTTP GETs to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A debrief server for run 1 of `db`, and its base URL.
pub fn debrief(db: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chokepoint"))
        .arg("--db")
        .arg(db)
        .args(["debrief", "1", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("debrief starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("it prints its address");
    let url = line.split(" at ").nth(1).and_then(|r| r.split_whitespace().next()).expect("an address").to_string();
    (child, url)
}

/// A plain HTTP/1.1 GET, returning (status, body).
pub fn get(base: &str, path: &str) -> (u16, String) {
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}
