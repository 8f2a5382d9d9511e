//! A `chokepoint exercise` process for tests: started on free ports with its tokens read from
//! what it prints, and spoken to over plain HTTP/1.1.

use super::{fresh_db, scenario, temp_dir};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Exercise {
    pub child: Child,
    pub addr: String,
    pub grpc: String,
    pub tokens: std::collections::BTreeMap<String, String>,
    pub db: std::path::PathBuf,
}

impl Drop for Exercise {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(players: &str, extra: &[&str]) -> Exercise {
    start_with(&scenario("tiny.toml"), players, extra)
}

pub fn start_with(scenario_file: &str, players: &str, extra: &[&str]) -> Exercise {
    let db = fresh_db();
    let out = temp_dir("exercise-out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_chokepoint"))
        .arg("--db")
        .arg(&db)
        .args([
            "exercise",
            scenario_file,
            "--players",
            players,
            "--listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "127.0.0.1:0",
            "--out",
        ])
        .arg(&out)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chokepoint exercise");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let (mut addr, mut grpc, mut tokens) = (String::new(), String::new(), std::collections::BTreeMap::new());
    let mut line = String::new();
    while reader.read_line(&mut line).expect("read") > 0 {
        if let Some(rest) = line.trim().strip_prefix("Console: http://") {
            addr = rest.trim_end_matches('/').to_string();
        } else if let Some(rest) = line.trim().strip_prefix("gRPC: ") {
            grpc = rest.split_whitespace().next().unwrap_or("").to_string();
        } else if line.starts_with("  ") {
            let mut parts = line.split_whitespace();
            if let (Some(role), Some(token)) = (parts.next(), parts.next()) {
                tokens.insert(role.to_string(), token.to_string());
            }
            if role_is_control(&line) {
                break;
            }
        }
        line.clear();
    }
    // Keep draining stdout so the process never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = reader.read_to_end(&mut sink);
    });
    assert!(!addr.is_empty(), "the exercise printed its address");
    Exercise { child, addr, grpc, tokens, db }
}

fn role_is_control(line: &str) -> bool {
    line.trim_start().starts_with("control")
}

/// One HTTP/1.1 request; returns the status and the JSON body (Null if none).
pub fn http(addr: &str, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
        payload.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status: u16 = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status line");
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

impl Exercise {
    pub fn get(&self, path: &str, role: &str) -> (u16, Value) {
        http(&self.addr, "GET", path, Some(&self.tokens[role]), None)
    }

    pub fn post(&self, path: &str, role: &str, body: Value) -> (u16, Value) {
        http(&self.addr, "POST", path, Some(&self.tokens[role]), Some(&body))
    }

    /// Waits until control's status satisfies `done`.
    pub fn wait_for(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, v) = self.get("/api/control", "control");
            if done(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

pub fn order_errors(v: &Value) -> Vec<(u64, String)> {
    v["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| (e["index"].as_u64().unwrap_or(99), e["field"].as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}
