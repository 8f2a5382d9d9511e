//! Served runs on real processes: a `chokepoint serve` (or `resume --serve`) coordinator, the
//! port and join secret it prints, `agent-node` processes joining it, the embedded run to
//! compare with, and a node played from the test process (for nodes that misbehave on purpose).

use super::{OUTPUT_FILES, fresh_db, scenario, wait_with_timeout};
use agent_node::LocalHost;
use proto::v1::agent_nodes_client::AgentNodesClient;
use proto::v1::{self, coordinator_message, node_message};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tokio_stream::wrappers::ReceiverStream;

/// A coordinator process, the port it listens on and the join secret it printed.
pub struct Coordinator {
    pub child: Child,
    pub port: u16,
    pub secret: String,
    pub db: PathBuf,
    pub stderr: mpsc::Receiver<String>,
    pub scheme: &'static str,
}

impl Coordinator {
    /// `chokepoint serve ARGS` on a fresh database.
    pub fn start(args: &[&str]) -> Coordinator {
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        Coordinator::launch(&fresh_db(), &all)
    }

    /// `chokepoint --db DB ARGS --listen 127.0.0.1:0 --quiet`, once it has printed its port.
    pub fn launch(db: &Path, args: &[&str]) -> Coordinator {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chokepoint"))
            .arg("--db")
            .arg(db)
            .args(args)
            .args(["--listen", "127.0.0.1:0", "--quiet"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the coordinator starts");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let (port_tx, port_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut port = None;
            for line in stdout.lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    port =
                        rest.split(';').next().and_then(|a| a.rsplit(':').next()).and_then(|p| p.parse::<u16>().ok());
                }
                if line.contains("agent-node --coordinator") {
                    let secret = line
                        .split("CHOKEPOINT_NODE_SECRET=")
                        .nth(1)
                        .and_then(|r| r.split_whitespace().next())
                        .unwrap_or_default()
                        .to_string();
                    let scheme = if line.contains("https://") { "https" } else { "http" };
                    let _ = port_tx.send(port.map(|p| (p, secret, scheme)));
                }
            }
        });
        let stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = err_tx.send(line);
            }
        });
        let Ok(Some((port, secret, scheme))) = port_rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let log: Vec<String> = err_rx.try_iter().collect();
            panic!("the coordinator did not print its port and secret:\n{}", log.join("\n"));
        };
        Coordinator { child, port, secret, db: db.to_path_buf(), stderr: err_rx, scheme }
    }

    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// An `agent-node` process joining with the printed secret.
    pub fn node(&self, name: &str) -> Child {
        self.node_with(name, &[])
    }

    pub fn node_with(&self, name: &str, extra: &[&str]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_agent-node"))
            .args(["--coordinator", &self.url(), "--name", name])
            .args(extra)
            .env("CHOKEPOINT_NODE_SECRET", &self.secret)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the agent node starts")
    }

    /// Waits for the coordinator to exit and returns (success, everything it wrote to stderr).
    pub fn finish(mut self) -> (bool, String) {
        let status = wait_with_timeout(&mut self.child, Duration::from_secs(180));
        std::thread::sleep(Duration::from_millis(50));
        let stderr: Vec<String> = self.stderr.try_iter().collect();
        (status, stderr.join("\n"))
    }

    /// Waits until the coordinator logs a line containing `needle`; returns the lines so far.
    pub fn wait_for_log(&self, needle: &str) -> Vec<String> {
        let mut seen = Vec::new();
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(60)) {
            let hit = line.contains(needle);
            seen.push(line);
            if hit {
                return seen;
            }
        }
        panic!("the coordinator never logged {needle:?}; it logged:\n{}", seen.join("\n"));
    }

    /// The tick the run is at, from Control.Status (None while it cannot be asked).
    pub async fn tick(&self) -> Option<u32> {
        let mut control = proto::v1::control_client::ControlClient::connect(self.url()).await.ok()?;
        let status = control.status(v1::StatusRequest {}).await.ok()?.into_inner();
        (status.state == "running").then_some(status.tick)
    }
}

/// Runs `file` embedded with `extra` arguments, writing to `out`.
pub fn embedded(file: &str, extra: &[&str], out: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_chokepoint"))
        .arg("--db")
        .arg(fresh_db())
        .args(["run", &scenario(file), "--quiet", "--out", &out.display().to_string()])
        .args(extra)
        .stdout(Stdio::null())
        .status()
        .expect("embedded run");
    assert!(status.success());
}

/// The `serve` arguments for `file` on `nodes` nodes, writing to `out`.
pub fn serve_args(file: &str, nodes: usize, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec![scenario(file), "--nodes".into(), nodes.to_string(), "--out".into(), out.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

pub fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Asserts that every output file is byte-identical in `a` and `b`.
pub fn assert_same_outputs(a: &Path, b: &Path, what: &str) {
    for f in OUTPUT_FILES {
        let x = std::fs::read(a.join(f)).unwrap_or_else(|e| panic!("{}: {e}", a.join(f).display()));
        let y = std::fs::read(b.join(f)).unwrap_or_else(|e| panic!("{}: {e}", b.join(f).display()));
        assert!(x == y, "{f} differs between the embedded run and {what}");
    }
}

/// Opens a node session from this process: a Hello with these fields.
pub async fn open(
    url: &str,
    hello: v1::Hello,
) -> Result<(tokio::sync::mpsc::Sender<v1::NodeMessage>, tonic::Streaming<v1::CoordinatorMessage>), tonic::Status> {
    let mut client = AgentNodesClient::connect(url.to_string()).await.expect("connect");
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tx.send(v1::NodeMessage { body: Some(node_message::Body::Hello(hello)) }).await.expect("queue hello");
    let response = client.session(ReceiverStream::new(rx)).await?;
    Ok((tx, response.into_inner()))
}

/// A Hello with the right version, the name and the secret.
pub fn hello(name: &str, secret: &str) -> v1::Hello {
    v1::Hello {
        protocol_version: proto::PROTOCOL_VERSION,
        node_name: name.into(),
        run_id: String::new(),
        join_secret: secret.into(),
        deterministic: true,
    }
}

/// Plays a node from this process until the coordinator finishes the run: each tick's actions
/// are decided as agent-node would, then passed through `edit` (tick, wire actions) before
/// they are sent. Returns the Finish message.
pub async fn play_node(
    tx: tokio::sync::mpsc::Sender<v1::NodeMessage>,
    mut inbound: tonic::Streaming<v1::CoordinatorMessage>,
    name: &str,
    mut edit: impl FnMut(u32, &mut Vec<v1::AgentActions>),
) -> v1::Finish {
    let mut specs = std::collections::BTreeMap::new();
    loop {
        let message = inbound.message().await.expect("stream").expect("a message");
        match message.body.expect("body") {
            coordinator_message::Body::Welcome(w) => {
                for a in w.agents {
                    specs.insert(
                        agents::AgentId(a.agent),
                        agents::AgentSpec::try_from(a.spec.expect("spec")).expect("spec"),
                    );
                }
            }
            coordinator_message::Body::Assign(a) => {
                for agent in a.remove {
                    specs.remove(&agents::AgentId(agent));
                }
                for a in a.add {
                    specs.insert(
                        agents::AgentId(a.agent),
                        agents::AgentSpec::try_from(a.spec.expect("spec")).expect("spec"),
                    );
                }
            }
            coordinator_message::Body::Observations(o) => {
                let batch = agents::ObservationBatch::try_from(o).expect("valid observations");
                let tick = batch.tick.0;
                let mut host = LocalHost::new(name.to_string(), specs.clone());
                let actions = host.run(batch).expect("decide");
                let mut wire: Vec<v1::AgentActions> = actions.actions.iter().map(Into::into).collect();
                edit(tick, &mut wire);
                let reply = v1::Actions { tick, actions: wire };
                if tx.send(v1::NodeMessage { body: Some(node_message::Body::Actions(reply)) }).await.is_err() {
                    return v1::Finish { ok: false, reason: "session closed".into() };
                }
            }
            coordinator_message::Body::Finish(f) => return f,
        }
    }
}
