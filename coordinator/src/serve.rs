//! `chokepoint serve`: the coordinator as a gRPC server. Agent nodes join over the `AgentNodes`
//! service; once the expected number have joined, agents are placed on them (nodes ordered by
//! name, so the default placement is deterministic), each node is welcomed with its agents'
//! specs, and the engine runs on a blocking thread with one `RemoteHost` per node. `Control`
//! reports status and latency, `Player` the public market picture; gRPC health and reflection are
//! served beside them.
//!
//! Failure is never hidden: a node that disconnects or misses the tick deadline stops the run
//! with an error naming the node and the tick, after the outputs of every completed tick are
//! flushed.

use crate::hosts::Placement;
use crate::metrics::Latency;
use crate::output::Summary;
use crate::remote::{NodeEvent, Outbound, RemoteHost, Traffic};
use crate::run::{Hooks, Inject, Persist, RunError, RunOptions, drive, lock};
use crate::sim::Sim;
use crate::store::RunStatus;
use agents::AgentId;
use engine::scenario::Scenario;
use proto::v1::agent_nodes_server::{AgentNodes, AgentNodesServer};
use proto::v1::control_server::{Control, ControlServer};
use proto::v1::player_server::{Player, PlayerServer};
use proto::v1::{self, coordinator_message, node_message};
use proto::{FILE_DESCRIPTOR_SET, PROTOCOL_VERSION};
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

/// How agents are spread over the nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PlacementKind {
    /// Agent i goes to node i mod n.
    RoundRobin,
    /// Contiguous blocks of agents, one per node.
    Blocks,
}

impl PlacementKind {
    pub fn place(self, agents: usize, nodes: usize) -> Placement {
        match self {
            PlacementKind::RoundRobin => Placement::round_robin(agents, nodes),
            PlacementKind::Blocks => Placement::blocks(agents, nodes),
        }
    }
}

pub struct ServeOptions {
    /// The run's id as nodes see it (the store's run number when the run is recorded).
    pub run_id: String,
    /// Where the run is recorded, if it is.
    pub persist: Option<Persist>,
    pub nodes: usize,
    pub placement: PlacementKind,
    /// How long to wait for a node's actions each tick.
    pub tick_deadline: Duration,
    /// How long to wait for all nodes to join.
    pub join_timeout: Duration,
    pub run: RunOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("only {joined} of {expected} agent nodes joined within {timeout:?}")]
    NodesMissing { joined: usize, expected: usize, timeout: Duration },
    #[error("interrupted before the run started")]
    Interrupted,
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("gRPC server failed: {0}")]
    Server(String),
    #[error("the engine thread failed: {0}")]
    Thread(String),
}

/// How a served run went.
#[derive(Debug)]
pub struct ServeReport {
    pub run_id: String,
    pub summary: Summary,
    pub completed: bool,
    pub latency: Latency,
    /// Per node: name, agents hosted, and traffic.
    pub nodes: Vec<(String, usize, Arc<Traffic>)>,
    pub ticks: u32,
}

impl ServeReport {
    /// Messages and bytes per tick over all nodes, both directions.
    pub fn traffic_per_tick(&self) -> (f64, f64) {
        let ticks = f64::from(self.ticks.max(1));
        let (mut messages, mut bytes) = (0u64, 0u64);
        for (_, _, t) in &self.nodes {
            messages += t.messages_out.load(Ordering::Relaxed) + t.messages_in.load(Ordering::Relaxed);
            bytes += t.bytes_out.load(Ordering::Relaxed) + t.bytes_in.load(Ordering::Relaxed);
        }
        (messages as f64 / ticks, bytes as f64 / ticks)
    }
}

/// A node that has joined and waits for the run to start.
struct Joined {
    name: String,
    to_node: Outbound,
    from_node: Option<std::sync::mpsc::Receiver<NodeEvent>>,
}

#[derive(Default)]
struct Registry {
    started: bool,
    nodes: Vec<Joined>,
    /// Names and agent counts once placed, for status.
    placed: Vec<(String, usize)>,
    state: &'static str,
}

struct Shared {
    run_id: String,
    scenario: Arc<Scenario>,
    expected: usize,
    registry: Mutex<Registry>,
    joined: Notify,
    hooks: Hooks,
    /// The names of the events control injected so far, which a later `lift` may target.
    injected: Mutex<Vec<String>>,
}

#[derive(Clone)]
struct NodeService(Arc<Shared>);

#[tonic::async_trait]
impl AgentNodes for NodeService {
    type SessionStream = ReceiverStream<Result<v1::CoordinatorMessage, Status>>;

    async fn session(
        &self,
        request: Request<Streaming<v1::NodeMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let shared = &self.0;
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(Duration::from_secs(10), inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no Hello within 10 s of opening the session"))??;
        let hello = match first {
            Some(v1::NodeMessage { body: Some(node_message::Body::Hello(h)) }) => h,
            _ => return Err(Status::invalid_argument("the first message of a session must be Hello")),
        };
        if hello.protocol_version != PROTOCOL_VERSION {
            return Err(Status::failed_precondition(format!(
                "protocol version {} is not supported: this coordinator speaks version {PROTOCOL_VERSION}",
                hello.protocol_version
            )));
        }
        if !hello.run_id.is_empty() && hello.run_id != shared.run_id {
            return Err(Status::not_found(format!(
                "no run {}: this coordinator serves run {}",
                hello.run_id, shared.run_id
            )));
        }
        let name = hello.node_name.trim().to_string();
        if name.is_empty() || name.len() > 200 {
            return Err(Status::invalid_argument("a node needs a name of 1 to 200 characters"));
        }
        let (to_node, rx) = mpsc::channel(4);
        let (events, from_node) = std::sync::mpsc::channel();
        {
            let mut registry = lock(&shared.registry);
            if registry.started {
                return Err(Status::failed_precondition(format!(
                    "run {} has already started with {} nodes; a late node cannot join",
                    shared.run_id, shared.expected
                )));
            }
            if registry.nodes.iter().any(|n| n.name == name) {
                return Err(Status::already_exists(format!(
                    "a node named {name} has already joined run {}",
                    shared.run_id
                )));
            }
            if registry.nodes.len() >= shared.expected {
                return Err(Status::resource_exhausted(format!(
                    "run {} already has its {} nodes",
                    shared.run_id, shared.expected
                )));
            }
            registry.nodes.push(Joined { name: name.clone(), to_node, from_node: Some(from_node) });
        }
        tracing::info!(node = %name, "agent node joined");
        shared.joined.notify_one();
        let shared = shared.clone();
        tokio::spawn(async move {
            let reason = loop {
                match inbound.message().await {
                    Ok(Some(v1::NodeMessage { body: Some(node_message::Body::Actions(a)) })) => {
                        if events.send(NodeEvent::Actions(a)).is_err() {
                            break "the run is over".to_string();
                        }
                    }
                    Ok(Some(v1::NodeMessage { body: Some(node_message::Body::Heartbeat(_)) })) => {}
                    Ok(Some(_)) => tracing::warn!(node = %name, "ignored an unexpected message"),
                    Ok(None) => break "the node closed its session".to_string(),
                    Err(s) => break format!("session error: {}", s.message()),
                }
            };
            tracing::info!(node = %name, "session ended: {reason}");
            let _ = events.send(NodeEvent::Closed(reason));
            let mut registry = lock(&shared.registry);
            // A node that leaves before the run starts frees its place.
            if !registry.started {
                registry.nodes.retain(|n| n.name != name);
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

#[derive(Clone)]
struct ControlService(Arc<Shared>);

#[tonic::async_trait]
impl Control for ControlService {
    async fn status(&self, _: Request<v1::StatusRequest>) -> Result<Response<v1::StatusReply>, Status> {
        let s = &self.0;
        let registry = lock(&s.registry);
        let tick = lock(&s.hooks.last).as_ref().map_or(0, |r| r.tick.0 + 1);
        let nodes = if registry.started {
            registry
                .placed
                .iter()
                .map(|(name, agents)| v1::NodeStatus { name: name.clone(), agents: *agents as u32, connected: true })
                .collect()
        } else {
            registry.nodes.iter().map(|n| v1::NodeStatus { name: n.name.clone(), agents: 0, connected: true }).collect()
        };
        let latency = lock(&s.hooks.latency)
            .summaries()
            .into_iter()
            .map(|p| v1::PhaseLatency {
                phase: p.phase.to_string(),
                count: p.count,
                p50_us: p.p50_us,
                p90_us: p.p90_us,
                p99_us: p.p99_us,
                max_us: p.max_us,
            })
            .collect();
        Ok(Response::new(v1::StatusReply {
            run_id: s.run_id.clone(),
            scenario: s.scenario.name.clone(),
            seed: s.scenario.seed,
            tick,
            ticks: s.scenario.ticks,
            state: registry.state.to_string(),
            nodes,
            latency,
        }))
    }

    async fn inject(&self, request: Request<v1::InjectRequest>) -> Result<Response<v1::InjectReply>, Status> {
        let s = &self.0;
        let text = request.into_inner().events_toml;
        let known: Vec<String> =
            s.scenario.events.iter().map(|e| e.name.clone()).chain(lock(&s.injected).iter().cloned()).collect();
        let events = engine::scenario::parse_events(&text, "inject", &s.scenario, known)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        if events.is_empty() {
            return Err(Status::invalid_argument("no [[events]] table in the request"));
        }
        let mut effective_ticks = Vec::new();
        for event in events {
            let (reply, verdict) = tokio::sync::oneshot::channel();
            let name = event.name.clone();
            lock(&s.hooks.inbox).push(Inject { event, source: "control".into(), reply });
            match verdict.await {
                Ok(Ok(tick)) => {
                    lock(&s.injected).push(name);
                    effective_ticks.push(tick)
                }
                Ok(Err(why)) => return Err(Status::failed_precondition(why)),
                Err(_) => return Err(Status::unavailable("the run ended before the inject could be scheduled")),
            }
        }
        Ok(Response::new(v1::InjectReply { effective_ticks }))
    }
}

#[derive(Clone)]
struct PlayerService(Arc<Shared>);

#[tonic::async_trait]
impl Player for PlayerService {
    async fn markets(&self, _: Request<v1::MarketsRequest>) -> Result<Response<v1::MarketsReply>, Status> {
        let s = &self.0;
        let last = lock(&s.hooks.last);
        let Some(record) = last.as_ref() else {
            return Ok(Response::new(v1::MarketsReply { tick: 0, markets: Vec::new() }));
        };
        let markets = record
            .markets
            .iter()
            .map(|m| v1::MarketPrice {
                commodity: s.scenario.commodity_code(m.market.commodity).to_string(),
                stage: m.market.stage.as_str().to_string(),
                price_cents_per_kg: m.price.0,
                volume_kg: m.volume.0,
            })
            .collect();
        Ok(Response::new(v1::MarketsReply { tick: record.tick.0, markets }))
    }
}

/// Ticks are small request/response exchanges: send each at once rather than batching (Nagle).
fn no_delay(stream: std::io::Result<tokio::net::TcpStream>) -> std::io::Result<tokio::net::TcpStream> {
    if let Ok(s) = &stream {
        let _ = s.set_nodelay(true);
    }
    stream
}

/// Serves `scenario` on `listener` until the run ends, fails, or `shutdown` resolves. The
/// listener is already bound, so the caller knows the address (and can print it) before this
/// is called.
pub async fn serve(
    listener: TcpListener,
    scenario: Arc<Scenario>,
    mut options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ServeReport, ServeError> {
    let run_id = options.run_id.clone();
    let shared = Arc::new(Shared {
        run_id: run_id.clone(),
        scenario: scenario.clone(),
        expected: options.nodes.max(1),
        registry: Mutex::new(Registry { state: "waiting for nodes", ..Registry::default() }),
        joined: Notify::new(),
        hooks: Hooks::default(),
        injected: Mutex::new(Vec::new()),
    });
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<AgentNodesServer<NodeService>>().await;
    health.set_serving::<ControlServer<ControlService>>().await;
    health.set_serving::<PlayerServer<PlayerService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Server(e.to_string()))?;
    // Older grpcurl and grpcui releases still ask for the v1alpha reflection service.
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| ServeError::Server(e.to_string()))?;

    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(
            AgentNodesServer::new(NodeService(shared.clone()))
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(ControlServer::new(ControlService(shared.clone())))
        .add_service(PlayerServer::new(PlayerService(shared.clone())))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener).map(no_delay), async {
            let _ = server_stopped.await;
        });
    let server = tokio::spawn(server);

    // Ctrl-C (or the caller's shutdown) sets the stop flag the engine checks between ticks.
    let (interrupted_tx, mut interrupted) = tokio::sync::watch::channel(false);
    let stop = shared.hooks.stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop.store(true, Ordering::Relaxed);
        let _ = interrupted_tx.send(true);
    });

    let result = run_when_joined(&shared, &mut options, &mut interrupted).await;
    // A run that never started is still on record: say how it ended.
    if let (Err(e), Some(p)) = (&result, &options.persist) {
        let status = if matches!(e, ServeError::Interrupted) { RunStatus::Interrupted } else { RunStatus::Failed };
        let _ = p.store.update_run(p.run, |m| {
            m.status = status;
            m.error = Some(e.to_string());
        });
        let _ = p.store.flush();
    }
    // Tell every node how the run ended, then stop serving.
    let (ok, reason) = match &result {
        Ok(r) if r.completed => (true, format!("run {run_id} completed {} ticks", r.ticks)),
        Ok(r) => (false, format!("run {run_id} was interrupted after {} ticks", r.ticks)),
        Err(e) => (false, e.to_string()),
    };
    let senders: Vec<Outbound> = lock(&shared.registry).nodes.iter().map(|n| n.to_node.clone()).collect();
    for to_node in senders {
        let finish = v1::CoordinatorMessage {
            body: Some(coordinator_message::Body::Finish(v1::Finish { ok, reason: reason.clone() })),
        };
        let _ = to_node.send(Ok(finish)).await;
    }
    lock(&shared.registry).state = if ok { "finished" } else { "failed" };
    // Let the Finish messages go out before the server closes the streams.
    tokio::time::sleep(Duration::from_millis(100)).await;
    lock(&shared.registry).nodes.clear();
    let _ = stop_server.send(());
    // Graceful shutdown waits for peers to hang up; a peer that never does must not keep the
    // coordinator alive once the run is over.
    let abort = server.abort_handle();
    match tokio::time::timeout(Duration::from_secs(3), server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!("gRPC server: {e}"),
        Ok(Err(e)) => tracing::warn!("gRPC server task: {e}"),
        Err(_) => {
            tracing::warn!("peers still connected after the run; closing their connections");
            abort.abort();
        }
    }
    result
}

async fn run_when_joined(
    shared: &Arc<Shared>,
    options: &mut ServeOptions,
    interrupted: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<ServeReport, ServeError> {
    let deadline = tokio::time::Instant::now() + options.join_timeout;
    loop {
        let joined = lock(&shared.registry).nodes.len();
        if joined >= shared.expected {
            break;
        }
        tokio::select! {
            _ = shared.joined.notified() => {}
            _ = interrupted.changed() => return Err(ServeError::Interrupted),
            _ = tokio::time::sleep_until(deadline) => {
                return Err(ServeError::NodesMissing { joined, expected: shared.expected, timeout: options.join_timeout });
            }
            // Nodes that leave while waiting are noticed on the next wake-up.
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }

    let scenario = shared.scenario.clone();
    let agents = scenario.agents.len();
    let (hosts, placement, nodes) = {
        let mut registry = lock(&shared.registry);
        registry.started = true;
        registry.state = "running";
        registry.nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let placement = options.placement.place(agents, registry.nodes.len());
        let count = registry.nodes.len() as u32;
        let mut hosts: Vec<Box<dyn agent_node::AgentHost>> = Vec::new();
        let mut nodes = Vec::new();
        for (i, node) in registry.nodes.iter_mut().enumerate() {
            let hosted: BTreeSet<AgentId> =
                (0..agents).filter(|a| placement.host_of[*a] == i).map(|a| AgentId(a as u32)).collect();
            let welcome = v1::Welcome {
                run_id: shared.run_id.clone(),
                node_index: i as u32,
                node_count: count,
                seed: scenario.seed,
                agents: hosted
                    .iter()
                    .map(|a| v1::HostedAgent { agent: a.0, spec: Some((&scenario.agents[a.index()].spec).into()) })
                    .collect(),
            };
            let message = v1::CoordinatorMessage { body: Some(coordinator_message::Body::Welcome(welcome)) };
            // The channel was created with room to spare and nothing else has been sent on it.
            let _ = node.to_node.try_send(Ok(message));
            let traffic = Arc::new(Traffic::default());
            let from_node =
                node.from_node.take().ok_or_else(|| ServeError::Server(format!("node {} joined twice", node.name)))?;
            nodes.push((node.name.clone(), hosted.len(), traffic.clone()));
            hosts.push(Box::new(RemoteHost::new(
                node.name.clone(),
                node.to_node.clone(),
                from_node,
                options.tick_deadline,
                hosted,
                traffic,
            )));
        }
        registry.placed = nodes.iter().map(|(n, a, _)| (n.clone(), *a)).collect();
        (hosts, placement, nodes)
    };
    tracing::info!("all {} nodes joined; run {} starts", nodes.len(), shared.run_id);

    let hooks = shared.hooks.clone();
    let run = options.run.clone();
    let persist = options.persist.take();
    let engine_thread = tokio::task::spawn_blocking(move || {
        let mut engine = Sim::with_hosts(scenario, hosts, placement);
        drive(&mut engine, &run, &hooks, persist.as_ref())
    });
    let outcome = engine_thread.await.map_err(|e| ServeError::Thread(e.to_string()))??;
    let latency = lock(&shared.hooks.latency).clone();
    Ok(ServeReport {
        run_id: shared.run_id.clone(),
        ticks: outcome.summary.ticks,
        completed: outcome.completed,
        summary: outcome.summary,
        latency,
        nodes,
    })
}
