//! An agent node: joins a coordinator's run over gRPC, receives the specs of the agents placed on
//! it, and answers every tick's observations with their actions until the coordinator finishes
//! the run. The node holds no simulation state; it is a `LocalHost` behind a network session.

use crate::LocalHost;
use proto::v1::agent_nodes_client::AgentNodesClient;
use proto::v1::{coordinator_message, node_message};
use proto::{PROTOCOL_VERSION, v1};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// The coordinator's address, e.g. `http://127.0.0.1:7400`.
    pub coordinator: String,
    /// This node's name, unique within the run.
    pub name: String,
    /// The run to join; empty joins whatever the coordinator serves.
    pub run_id: String,
    /// How long to keep trying to reach the coordinator.
    pub connect_timeout: Duration,
    /// How often to tell the coordinator the node is alive while it waits.
    pub heartbeat: Duration,
    /// The protocol version announced (tests set another to check refusal).
    pub protocol_version: u32,
    /// The run's join secret, as the coordinator printed it.
    pub secret: String,
    /// For an `https://` coordinator: the PEM certificate (or CA) to trust, e.g. the
    /// coordinator's self-signed certificate on a closed network.
    pub tls_ca: Option<Vec<u8>>,
    /// The name the coordinator's certificate is checked against (default: the URL's host).
    pub tls_domain: Option<String>,
    /// What the node says of itself in its Hello (see `Hello.deterministic`): true for this
    /// node, whose agents are `agents::decide`.
    pub deterministic: bool,
}

impl NodeOptions {
    pub fn new(coordinator: impl Into<String>, name: impl Into<String>) -> NodeOptions {
        NodeOptions {
            coordinator: coordinator.into(),
            name: name.into(),
            run_id: String::new(),
            connect_timeout: Duration::from_secs(30),
            heartbeat: Duration::from_secs(2),
            protocol_version: PROTOCOL_VERSION,
            secret: String::new(),
            tls_ca: None,
            tls_domain: None,
            deterministic: true,
        }
    }
}

/// How a session ended when the coordinator ended it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeOutcome {
    pub ok: bool,
    pub reason: String,
    pub run_id: String,
    pub agents: usize,
    pub ticks: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot reach the coordinator at {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    #[error("the coordinator refused this node ({code:?}): {message}")]
    Refused { code: tonic::Code, message: String },
    #[error("the coordinator sent an invalid message: {0}")]
    Protocol(String),
    #[error("lost the coordinator after {ticks} ticks: {reason}")]
    Disconnected { ticks: u32, reason: String },
    #[error("interrupted")]
    Interrupted,
}

/// The coordinator's endpoint, with TLS when the address is `https://`.
fn endpoint(options: &NodeOptions) -> Result<tonic::transport::Endpoint, NodeError> {
    let refuse = |reason: String| NodeError::Connect { endpoint: options.coordinator.clone(), reason };
    let mut endpoint = tonic::transport::Endpoint::from_shared(options.coordinator.clone())
        .map_err(|e| refuse(e.to_string()))?
        .tcp_nodelay(true);
    let https = options.coordinator.starts_with("https://");
    match (&options.tls_ca, https) {
        (Some(pem), true) => {
            let mut tls = tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(pem.clone()));
            if let Some(domain) = &options.tls_domain {
                tls = tls.domain_name(domain.clone());
            }
            endpoint = endpoint.tls_config(tls).map_err(|e| refuse(format!("TLS: {e}")))?;
        }
        (None, true) => {
            return Err(refuse("an https:// coordinator needs --tls-ca (the certificate to trust)".into()));
        }
        (Some(_), false) => {
            return Err(refuse("--tls-ca is given but the coordinator's address is not https://".into()));
        }
        (None, false) => {}
    }
    Ok(endpoint)
}

async fn connect(options: &NodeOptions) -> Result<tonic::transport::Channel, NodeError> {
    let endpoint = endpoint(options)?;
    let give_up = Instant::now() + options.connect_timeout;
    loop {
        match endpoint.connect().await {
            Ok(channel) => return Ok(channel),
            Err(e) if Instant::now() >= give_up => {
                return Err(NodeError::Connect { endpoint: options.coordinator.clone(), reason: causes(&e) });
            }
            Err(e) => {
                tracing::debug!("coordinator not reachable yet ({}); retrying", causes(&e));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// An error with every cause under it ("transport error" alone says nothing of a certificate
/// the node does not trust).
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(&format!(": {said}"));
        }
        source = cause.source();
    }
    text
}

fn message(body: node_message::Body) -> v1::NodeMessage {
    v1::NodeMessage { body: Some(body) }
}

/// Joins the run and serves it until the coordinator finishes it, the session breaks, or
/// `shutdown` resolves.
pub async fn run(options: NodeOptions, shutdown: impl Future<Output = ()>) -> Result<NodeOutcome, NodeError> {
    let channel = connect(&options).await?;
    let mut client =
        AgentNodesClient::new(channel).max_decoding_message_size(usize::MAX).max_encoding_message_size(usize::MAX);
    let (tx, rx) = mpsc::channel::<v1::NodeMessage>(16);
    let hello = v1::Hello {
        protocol_version: options.protocol_version,
        node_name: options.name.clone(),
        run_id: options.run_id.clone(),
        join_secret: options.secret.clone(),
        deterministic: options.deterministic,
    };
    tx.send(message(node_message::Body::Hello(hello)))
        .await
        .map_err(|_| NodeError::Protocol("session closed before hello".into()))?;
    let response = client
        .session(ReceiverStream::new(rx))
        .await
        .map_err(|s| NodeError::Refused { code: s.code(), message: s.message().to_string() })?;
    let mut inbound = response.into_inner();
    tracing::info!(node = %options.name, "joined {}; waiting for the run to start", options.coordinator);

    let heartbeat_tx = tx.clone();
    let period = options.heartbeat;
    let heartbeat = tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        loop {
            interval.tick().await;
            if heartbeat_tx.send(message(node_message::Body::Heartbeat(v1::Heartbeat {}))).await.is_err() {
                break;
            }
        }
    });
    let result = serve(&options, &mut inbound, &tx, shutdown).await;
    heartbeat.abort();
    result
}

/// What the node holds between messages: the specs of the agents it runs, and the host that
/// decides them (rebuilt when the coordinator assigns or removes agents).
#[derive(Default)]
struct Hosting {
    run_id: String,
    specs: std::collections::BTreeMap<agents::AgentId, agents::AgentSpec>,
    host: Option<LocalHost>,
}

impl Hosting {
    fn decode(agents: Vec<v1::HostedAgent>) -> Result<Vec<(agents::AgentId, agents::AgentSpec)>, NodeError> {
        agents
            .into_iter()
            .map(|a| {
                let spec = a.spec.ok_or_else(|| NodeError::Protocol("agent without a spec".into()))?;
                let spec = agents::AgentSpec::try_from(spec).map_err(|e| NodeError::Protocol(e.to_string()))?;
                Ok((agents::AgentId(a.agent), spec))
            })
            .collect()
    }

    fn welcome(&mut self, name: &str, w: v1::Welcome) -> Result<(), NodeError> {
        self.specs = Hosting::decode(w.agents)?.into_iter().collect();
        tracing::info!(node = %name, run = %w.run_id, "hosting {} agents as node {} of {}, from tick {}", self.specs.len(), w.node_index + 1, w.node_count, w.first_tick);
        self.run_id = w.run_id;
        self.host = Some(LocalHost::new(name.to_string(), self.specs.clone()));
        Ok(())
    }

    fn assign(&mut self, name: &str, a: v1::Assign) -> Result<(), NodeError> {
        if self.host.is_none() {
            return Err(NodeError::Protocol("assign before welcome".into()));
        }
        for agent in &a.remove {
            self.specs.remove(&agents::AgentId(*agent));
        }
        let added = Hosting::decode(a.add)?;
        let count = added.len();
        self.specs.extend(added);
        tracing::info!(node = %name, "from tick {}: {count} agents added, {} removed, {} hosted", a.from_tick, a.remove.len(), self.specs.len());
        self.host = Some(LocalHost::new(name.to_string(), self.specs.clone()));
        Ok(())
    }
}

async fn serve(
    options: &NodeOptions,
    inbound: &mut tonic::Streaming<v1::CoordinatorMessage>,
    tx: &mpsc::Sender<v1::NodeMessage>,
    shutdown: impl Future<Output = ()>,
) -> Result<NodeOutcome, NodeError> {
    tokio::pin!(shutdown);
    let mut hosting = Hosting::default();
    let mut ticks = 0u32;
    // A tick may be sent again (for agents just assigned); it is counted once.
    let mut last_tick = None;
    loop {
        let next = tokio::select! {
            _ = &mut shutdown => return Err(NodeError::Interrupted),
            m = inbound.message() => m,
        };
        let body = match next {
            Ok(Some(v1::CoordinatorMessage { body: Some(body) })) => body,
            Ok(Some(_)) => return Err(NodeError::Protocol("empty message".into())),
            Ok(None) => {
                return Err(NodeError::Disconnected { ticks, reason: "the coordinator closed the session".into() });
            }
            Err(s) if ticks == 0 && hosting.host.is_none() && s.code() != tonic::Code::Unknown => {
                return Err(NodeError::Refused { code: s.code(), message: s.message().to_string() });
            }
            Err(s) => return Err(NodeError::Disconnected { ticks, reason: s.message().to_string() }),
        };
        match body {
            coordinator_message::Body::Welcome(w) => hosting.welcome(&options.name, w)?,
            coordinator_message::Body::Assign(a) => hosting.assign(&options.name, a)?,
            coordinator_message::Body::Observations(o) => {
                let host =
                    hosting.host.as_mut().ok_or_else(|| NodeError::Protocol("observations before welcome".into()))?;
                let batch = agents::ObservationBatch::try_from(o).map_err(|e| NodeError::Protocol(e.to_string()))?;
                let tick = batch.tick;
                let actions = host.run(batch).map_err(|e| NodeError::Protocol(e.to_string()))?;
                let reply = v1::Actions { tick: tick.0, actions: actions.actions.iter().map(Into::into).collect() };
                tx.send(message(node_message::Body::Actions(reply)))
                    .await
                    .map_err(|_| NodeError::Disconnected { ticks, reason: "session closed".into() })?;
                if last_tick != Some(tick) {
                    ticks += 1;
                    last_tick = Some(tick);
                }
            }
            coordinator_message::Body::Finish(f) => {
                let agents = hosting.specs.len();
                return Ok(NodeOutcome { ok: f.ok, reason: f.reason, run_id: hosting.run_id, agents, ticks });
            }
        }
    }
}
