//! `chokepoint serve`: the coordinator as a gRPC server. Agent nodes join over the `AgentNodes`
//! service (`join`); once the expected number have joined, agents are placed on them (nodes
//! ordered by name, so the default placement is deterministic), each node is welcomed with its
//! agents' specs, and the engine runs on a blocking thread with one `RemoteHost` per node.
//! `Control` reports status and latency and takes injects (with the join secret), `Player` the
//! public market picture; gRPC health and reflection are served beside them.
//!
//! The port is for the run's own nodes (`guard`): a join secret, a limit on connections and on
//! the time a connection may stay unauthenticated, per-message size limits from the run's
//! size, and TLS with `--tls-cert`/`--tls-key`. A node that disconnects or misses the tick
//! deadline is dropped and its agents move to the others (`hosts`); with
//! `--on-node-loss stop` the run stops instead, naming the node and the tick, after the
//! outputs of every completed tick are flushed.

use crate::guard::{self, ConnLimit, JoinSecret, Limited, Presented};
use crate::hosts::{Hosts, Placement, Recovery};
use crate::join::{NodePool, NodeService, Registry, Shared};
use crate::metrics::Latency;
use crate::output::Summary;
use crate::remote::Traffic;
use crate::run::{Hooks, Inject, Persist, RunError, RunOptions, drive, lock};
use crate::sim::Sim;
use crate::store::RunStatus;
use crate::tls::Tls;
use agents::AgentId;
use engine::Engine;
use proto::FILE_DESCRIPTOR_SET;
use proto::v1::agent_nodes_server::AgentNodesServer;
use proto::v1::control_server::{Control, ControlServer};
use proto::v1::player_server::{Player, PlayerServer};
use proto::v1::{self, coordinator_message};
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

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
    /// What happens when a node is lost.
    pub recovery: Recovery,
    /// The secret a node must present in its Hello (and a control client with an inject).
    pub secret: String,
    /// Journal every node's action batches, not only those of nodes that are not deterministic.
    pub journal_actions: bool,
    /// The node port's certificate and key, for TLS.
    pub tls: Option<Tls>,
    /// The most connections open at once on the port.
    pub max_connections: usize,
    /// How long a connection may stay open without authenticating.
    pub auth_timeout: Duration,
}

impl ServeOptions {
    /// Options with the defaults of `chokepoint serve`, for `nodes` nodes holding `secret`.
    pub fn new(run_id: impl Into<String>, nodes: usize, secret: impl Into<String>) -> ServeOptions {
        ServeOptions {
            run_id: run_id.into(),
            persist: None,
            nodes,
            placement: PlacementKind::RoundRobin,
            tick_deadline: Duration::from_secs(30),
            join_timeout: Duration::from_secs(600),
            run: RunOptions::default(),
            recovery: Recovery::default(),
            secret: secret.into(),
            journal_actions: false,
            tls: None,
            max_connections: default_max_connections(nodes),
            auth_timeout: Duration::from_secs(10),
        }
    }
}

/// Room for every node twice over (a replacement may arrive before its predecessor's
/// connection is gone) and for a few operators' clients.
pub fn default_max_connections(nodes: usize) -> usize {
    (2 * nodes + 16).max(32)
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
    #[error("{0}")]
    Options(String),
}

/// How a served run went.
#[derive(Debug)]
pub struct ServeReport {
    pub run_id: String,
    pub summary: Summary,
    pub completed: bool,
    pub latency: Latency,
    /// Per node that hosted agents: name, agents hosted at the end, and traffic.
    pub nodes: Vec<(String, usize, Arc<Traffic>)>,
    /// Every change of placement, the start included.
    pub placements: Vec<crate::hosts::PlacementChange>,
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

#[derive(Clone)]
struct ControlService(Arc<Shared>);

#[tonic::async_trait]
impl Control for ControlService {
    async fn status(&self, _: Request<v1::StatusRequest>) -> Result<Response<v1::StatusReply>, Status> {
        let s = &self.0;
        let registry = lock(&s.registry);
        let tick = lock(&s.hooks.last).as_ref().map_or(0, |r| r.tick.0 + 1);
        let placed = lock(&s.hooks.placement).last().map(|c| c.hosts.clone()).unwrap_or_default();
        // Hosts are named "node NAME" (or "coordinator" when it runs the agents itself); a node
        // is listed by its own name.
        let mut nodes: Vec<v1::NodeStatus> = placed
            .iter()
            .map(|(host, agents)| {
                let name = host.strip_prefix("node ").unwrap_or(host).to_string();
                v1::NodeStatus { name, agents: agents.len() as u32, connected: true }
            })
            .collect();
        // Nodes waiting to start, or to replace a lost one at the next tick.
        for n in registry.nodes.iter().filter(|n| n.from_node.is_some()) {
            nodes.push(v1::NodeStatus { name: n.name.clone(), agents: 0, connected: true });
        }
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
        // Changing the run takes the join secret, as `authorization: Bearer <secret>`.
        let bearer = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        match s.secret.check(bearer.trim()) {
            Presented::Right => {}
            Presented::Missing => {
                return Err(Status::unauthenticated(
                    "an inject needs the join secret as `authorization: Bearer <secret>`",
                ));
            }
            Presented::Wrong => return Err(Status::unauthenticated("wrong join secret")),
        }
        if let Some(c) = guard::conn_state(&request) {
            c.authenticate();
        }
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

/// Control, player and health requests are small; a client may send no more than this.
const SMALL_REQUEST_BYTES: usize = 1 << 20;

/// The gRPC server on `listener`, until `stopped` resolves: every service, behind the
/// connection limit and (with `tls`) TLS.
fn server(
    listener: TcpListener,
    shared: &Arc<Shared>,
    options: &ServeOptions,
    health: tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> Result<tokio::task::JoinHandle<Result<(), tonic::transport::Error>>, ServeError> {
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Server(e.to_string()))?
        .max_decoding_message_size(SMALL_REQUEST_BYTES);
    // Older grpcurl and grpcui releases still ask for the v1alpha reflection service.
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| ServeError::Server(e.to_string()))?
        .max_decoding_message_size(SMALL_REQUEST_BYTES);
    let limits = guard::node_limits(&shared.scenario);
    let nodes = AgentNodesServer::new(NodeService(shared.clone()))
        .max_decoding_message_size(limits.rest)
        .max_encoding_message_size(usize::MAX);
    let connections = ConnLimit::new(options.max_connections, options.auth_timeout);
    let incoming = TcpListenerStream::new(listener).filter_map(move |accepted| match accepted {
        Ok(stream) => connections.admit(stream).map(Ok),
        Err(e) => Some(Err(e)),
    });
    let mut builder =
        tonic::transport::Server::builder().http2_max_header_list_size(16 * 1024).max_concurrent_streams(Some(16));
    if let Some(tls) = &options.tls {
        crate::tls::install_provider();
        builder = builder.tls_config(tls.grpc()).map_err(|e| ServeError::Options(format!("TLS: {e}")))?;
    }
    let server = builder
        .add_service(health.max_decoding_message_size(SMALL_REQUEST_BYTES))
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(Limited::new(nodes, limits))
        .add_service(ControlServer::new(ControlService(shared.clone())).max_decoding_message_size(SMALL_REQUEST_BYTES))
        .add_service(PlayerServer::new(PlayerService(shared.clone())).max_decoding_message_size(SMALL_REQUEST_BYTES))
        .serve_with_incoming_shutdown(incoming, stopped);
    Ok(tokio::spawn(server))
}

/// The names of the events injected into the run so far, which a later `lift` may target:
/// those `engine` has scheduled that its scenario does not define and, for a recorded run, every
/// inject in its journal still in force (a run resumed from a snapshot has no past events
/// scheduled, though its restrictions are in the state).
fn injected_names(engine: &Engine, persist: Option<&Persist>) -> Result<Vec<String>, ServeError> {
    let defined = &engine.scenario().events;
    let mut names: Vec<String> =
        engine.events().iter().filter(|e| !defined.iter().any(|d| d.name == e.name)).map(|e| e.name.clone()).collect();
    if let Some(p) = persist {
        let journal = p.store.live_journal(p.run).map_err(RunError::from)?;
        names.extend(journal.iter().filter_map(|j| j.input.event()).map(|e| e.name.clone()));
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// Serves `engine` (a fresh run, or a recorded one restored to where it is to continue) on
/// `listener` until the run ends, fails, or `shutdown` resolves. The listener is already bound,
/// so the caller knows the address (and can print it) before this is called.
pub async fn serve(
    listener: TcpListener,
    engine: Engine,
    mut options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ServeReport, ServeError> {
    let run_id = options.run_id.clone();
    if options.secret.is_empty() {
        return Err(ServeError::Options("a served run needs a join secret".into()));
    }
    let injected = Mutex::new(injected_names(&engine, options.persist.as_ref())?);
    let shared = Arc::new(Shared {
        run_id: run_id.clone(),
        scenario: engine.scenario_arc(),
        expected: options.nodes.max(1),
        registry: Mutex::new(Registry { state: "waiting for nodes", ..Registry::default() }),
        joined: Notify::new(),
        hooks: Hooks::default(),
        secret: JoinSecret::new(&options.secret),
        tick_deadline: options.tick_deadline,
        next_id: AtomicU64::new(0),
        injected,
    });
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<AgentNodesServer<NodeService>>().await;
    health.set_serving::<ControlServer<ControlService>>().await;
    health.set_serving::<PlayerServer<PlayerService>>().await;
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = server(listener, &shared, &options, health_service, async {
        let _ = server_stopped.await;
    })?;

    // Ctrl-C (or the caller's shutdown) sets the stop flag the engine checks between ticks.
    let (interrupted_tx, mut interrupted) = tokio::sync::watch::channel(false);
    let stop = shared.hooks.stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop.store(true, Ordering::Relaxed);
        let _ = interrupted_tx.send(true);
    });

    let result = run_when_joined(&shared, engine, &mut options, &mut interrupted).await;
    // A run that never started is still on record: say how it ended.
    if let (Err(e), Some(p)) = (&result, &options.persist) {
        let status = if matches!(e, ServeError::Interrupted) { RunStatus::Interrupted } else { RunStatus::Failed };
        let _ = p.store.update_run(p.run, |m| {
            m.status = status;
            m.error = Some(e.to_string());
        });
        let _ = p.store.flush();
    }
    finish_nodes(&shared, &result).await;
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

/// Tells every node still in the registry how the run ended.
async fn finish_nodes(shared: &Arc<Shared>, result: &Result<ServeReport, ServeError>) {
    let run_id = &shared.run_id;
    let (ok, reason) = match result {
        Ok(r) if r.completed => (true, format!("run {run_id} completed {} ticks", r.ticks)),
        Ok(r) => (false, format!("run {run_id} was interrupted after {} ticks", r.ticks)),
        Err(e) => (false, e.to_string()),
    };
    let senders: Vec<_> = lock(&shared.registry).nodes.iter().map(|n| n.to_node.clone()).collect();
    for to_node in senders {
        let finish = v1::CoordinatorMessage {
            body: Some(coordinator_message::Body::Finish(v1::Finish { ok, reason: reason.clone() })),
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), to_node.send(Ok(finish))).await;
    }
    lock(&shared.registry).state = if ok { "finished" } else { "failed" };
    // Let the Finish messages go out before the server closes the streams.
    tokio::time::sleep(Duration::from_millis(100)).await;
    lock(&shared.registry).nodes.clear();
}

/// Waits until every expected node has joined.
async fn wait_for_nodes(
    shared: &Arc<Shared>,
    timeout: Duration,
    interrupted: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let joined = lock(&shared.registry).nodes.len();
        if joined >= shared.expected {
            return Ok(());
        }
        tokio::select! {
            _ = shared.joined.notified() => {}
            _ = interrupted.changed() => return Err(ServeError::Interrupted),
            _ = tokio::time::sleep_until(deadline) => {
                return Err(ServeError::NodesMissing { joined, expected: shared.expected, timeout });
            }
            // Nodes that leave while waiting are noticed on the next wake-up.
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// Places the agents on the nodes that joined (ordered by name) and makes their hosts.
fn start_hosts(
    shared: &Arc<Shared>,
    options: &ServeOptions,
    tick: agents::Tick,
) -> Result<(Hosts, NodePool), ServeError> {
    let agents = shared.scenario.agents.len();
    let mut registry = lock(&shared.registry);
    registry.started = true;
    registry.state = "running";
    registry.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let placement = options.placement.place(agents, registry.nodes.len());
    let count = registry.nodes.len();
    let mut hosts: Vec<Box<dyn agent_node::AgentHost>> = Vec::new();
    let mut pool = NodePool { shared: shared.clone(), ids: Vec::new() };
    let mut hosted = Vec::new();
    for (i, node) in registry.nodes.iter_mut().enumerate() {
        let mine: BTreeSet<AgentId> =
            (0..agents).filter(|a| placement.host_of[*a] == i).map(|a| AgentId(a as u32)).collect();
        let host = shared
            .host(node, mine, i, count, tick)
            .ok_or_else(|| ServeError::Server(format!("node {} joined twice", node.name)))?;
        pool.ids.push((host.name(), node.id));
        hosted.push((node.name.clone(), node.traffic.clone()));
        hosts.push(host);
    }
    registry.hosted.extend(hosted);
    let mut hosts = Hosts::new(hosts, placement).with_recovery(options.recovery);
    hosts.set_journaling(options.journal_actions);
    Ok((hosts, pool))
}

async fn run_when_joined(
    shared: &Arc<Shared>,
    engine: Engine,
    options: &mut ServeOptions,
    interrupted: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<ServeReport, ServeError> {
    wait_for_nodes(shared, options.join_timeout, interrupted).await?;
    let (hosts, pool) = start_hosts(shared, options, engine.state().tick)?;
    tracing::info!("all {} nodes joined; run {} starts", shared.expected, shared.run_id);

    let hooks = shared.hooks.clone();
    let run = options.run.clone();
    let persist = options.persist.take();
    let engine_thread = tokio::task::spawn_blocking(move || {
        let mut sim = Sim::new(engine, hosts.with_pool(Box::new(pool)));
        drive(&mut sim, &run, &hooks, persist.as_ref())
    });
    let outcome = engine_thread.await.map_err(|e| ServeError::Thread(e.to_string()))??;
    let latency = lock(&shared.hooks.latency).clone();
    let placements = lock(&shared.hooks.placement).clone();
    let placed = placements.last().map(|c| c.hosts.clone()).unwrap_or_default();
    let nodes = lock(&shared.registry)
        .hosted
        .iter()
        .map(|(name, traffic)| {
            let host = format!("node {name}");
            let agents = placed.iter().find(|(n, _)| *n == host).map_or(0, |(_, a)| a.len());
            (name.clone(), agents, traffic.clone())
        })
        .collect();
    Ok(ServeReport {
        run_id: shared.run_id.clone(),
        ticks: outcome.summary.ticks,
        completed: outcome.completed,
        summary: outcome.summary,
        latency,
        nodes,
        placements,
    })
}
