//! Who may join a served run, and how: the `AgentNodes` service, whose Hello is checked (the
//! join secret first, before anything is allocated for the node; then the protocol version,
//! the run and the name), the registry of the run's nodes, and `NodePool`, through which nodes
//! that join a running run to replace a lost one become hosts at the next tick boundary and
//! dropped ones leave the registry.

use crate::guard::{self, JoinSecret, Presented};
use crate::hosts::HostPool;
use crate::remote::{NodeEvent, Outbound, RemoteHost, Traffic};
use crate::run::{Hooks, lock};
use agents::{AgentId, Tick};
use engine::Scenario;
use proto::PROTOCOL_VERSION;
use proto::v1::agent_nodes_server::AgentNodes;
use proto::v1::{self, coordinator_message, node_message};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// A node that has joined: waiting for the run to start (or, in a running run, for the next
/// tick boundary) while `from_node` is still here, hosting agents once it is taken.
pub(crate) struct Joined {
    /// Unique per session, so a node that comes back under the same name is another entry.
    pub id: u64,
    pub name: String,
    pub to_node: Outbound,
    pub from_node: Option<std::sync::mpsc::Receiver<NodeEvent>>,
    pub deterministic: bool,
    pub traffic: Arc<Traffic>,
}

#[derive(Default)]
pub(crate) struct Registry {
    pub started: bool,
    /// The nodes in the run, and those waiting to join it.
    pub nodes: Vec<Joined>,
    /// Every node that has hosted agents, with its traffic, for the report.
    pub hosted: Vec<(String, Arc<Traffic>)>,
    pub state: &'static str,
}

/// What the services and the engine thread share.
pub(crate) struct Shared {
    pub run_id: String,
    pub scenario: Arc<Scenario>,
    /// How many nodes the run is served on (at most this many at once).
    pub expected: usize,
    pub registry: Mutex<Registry>,
    pub joined: Notify,
    pub hooks: Hooks,
    pub secret: JoinSecret,
    pub tick_deadline: Duration,
    pub next_id: AtomicU64,
    /// The names of the events injected so far (by control, or before a resumed run's
    /// restart), which a later `lift` may target.
    pub injected: Mutex<Vec<String>>,
}

impl Shared {
    /// A host for a registered node: `agents` are welcomed with their specs, from `tick`.
    pub fn host(
        &self,
        node: &mut Joined,
        agents: BTreeSet<AgentId>,
        index: usize,
        count: usize,
        tick: Tick,
    ) -> Option<Box<dyn agent_node::AgentHost>> {
        let from_node = node.from_node.take()?;
        let welcome = v1::Welcome {
            run_id: self.run_id.clone(),
            node_index: index as u32,
            node_count: count as u32,
            seed: self.scenario.seed,
            agents: agents
                .iter()
                .map(|a| v1::HostedAgent { agent: a.0, spec: Some((&self.scenario.agents[a.index()].spec).into()) })
                .collect(),
            first_tick: tick.0,
        };
        let message = v1::CoordinatorMessage { body: Some(coordinator_message::Body::Welcome(welcome)) };
        // Nothing else has been sent on this channel, which has room to spare.
        let _ = node.to_node.try_send(Ok(message));
        let host = RemoteHost::new(
            node.name.clone(),
            node.to_node.clone(),
            from_node,
            self.tick_deadline,
            agents,
            node.traffic.clone(),
        )
        .deterministic(node.deterministic);
        Some(Box::new(host))
    }
}

#[derive(Clone)]
pub(crate) struct NodeService(pub Arc<Shared>);

/// The session's first message, which must be a Hello.
async fn hello(inbound: &mut Streaming<v1::NodeMessage>) -> Result<v1::Hello, Status> {
    let first = tokio::time::timeout(Duration::from_secs(10), inbound.message())
        .await
        .map_err(|_| Status::deadline_exceeded("no Hello within 10 s of opening the session"))??;
    match first {
        Some(v1::NodeMessage { body: Some(node_message::Body::Hello(h)) }) => Ok(h),
        _ => Err(Status::invalid_argument("the first message of a session must be Hello")),
    }
}

impl Shared {
    /// The Hello's secret, version, run and name, in that order; the node's name if all hold.
    fn check(&self, hello: &v1::Hello) -> Result<String, Status> {
        match self.secret.check(&hello.join_secret) {
            Presented::Right => {}
            Presented::Missing => {
                return Err(Status::unauthenticated(
                    "no join secret in the Hello: give the node the secret the coordinator printed (agent-node --secret-file FILE, or CHOKEPOINT_NODE_SECRET)",
                ));
            }
            Presented::Wrong => return Err(Status::unauthenticated("wrong join secret")),
        }
        if hello.protocol_version != PROTOCOL_VERSION {
            return Err(Status::failed_precondition(format!(
                "protocol version {} is not supported: this coordinator speaks version {PROTOCOL_VERSION}",
                hello.protocol_version
            )));
        }
        if !hello.run_id.is_empty() && hello.run_id != self.run_id {
            return Err(Status::not_found(format!(
                "no run {}: this coordinator serves run {}",
                hello.run_id, self.run_id
            )));
        }
        let name = hello.node_name.trim().to_string();
        if name.is_empty() || name.len() > 200 {
            return Err(Status::invalid_argument("a node needs a name of 1 to 200 characters"));
        }
        Ok(name)
    }

    /// Takes the node into the registry, or says why not.
    fn register(&self, node: Joined) -> Result<(), Status> {
        let mut registry = lock(&self.registry);
        if registry.nodes.iter().any(|n| n.name == node.name) {
            return Err(Status::already_exists(format!(
                "a node named {} has already joined run {}",
                node.name, self.run_id
            )));
        }
        if registry.nodes.len() >= self.expected {
            return Err(if registry.started {
                Status::failed_precondition(format!(
                    "run {} has already started with its {} nodes; a node may join a running run only to replace a lost one",
                    self.run_id, self.expected
                ))
            } else {
                Status::resource_exhausted(format!("run {} already has its {} nodes", self.run_id, self.expected))
            });
        }
        if registry.started {
            tracing::info!(node = %node.name, "a replacement node joined; it takes agents at the next tick");
        }
        registry.nodes.push(node);
        Ok(())
    }
}

#[tonic::async_trait]
impl AgentNodes for NodeService {
    type SessionStream = ReceiverStream<Result<v1::CoordinatorMessage, Status>>;

    async fn session(
        &self,
        request: Request<Streaming<v1::NodeMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let shared = &self.0;
        let connection = guard::conn_state(&request);
        let mut inbound = request.into_inner();
        let hello = hello(&mut inbound).await?;
        let name = shared.check(&hello)?;
        if let Some(c) = &connection {
            c.authenticate();
        }
        let (to_node, rx) = mpsc::channel(4);
        let (events, from_node) = std::sync::mpsc::channel();
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let traffic = Arc::new(Traffic::default());
        shared.register(Joined {
            id,
            name: name.clone(),
            to_node,
            from_node: Some(from_node),
            deterministic: hello.deterministic,
            traffic,
        })?;
        tracing::info!(node = %name, deterministic = hello.deterministic, "agent node joined");
        shared.joined.notify_one();
        tokio::spawn(read_session(shared.clone(), inbound, events, id, name));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Passes a node's actions to its host until the session ends, then says why it ended. A node
/// that leaves before it hosted agents frees its place.
async fn read_session(
    shared: Arc<Shared>,
    mut inbound: Streaming<v1::NodeMessage>,
    events: std::sync::mpsc::Sender<NodeEvent>,
    id: u64,
    name: String,
) {
    let reason = loop {
        match inbound.message().await {
            Ok(Some(v1::NodeMessage { body: Some(node_message::Body::Actions(a)) })) => {
                if events.send(NodeEvent::Actions(a)).is_err() {
                    break "the run no longer uses this node".to_string();
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
    lock(&shared.registry).nodes.retain(|n| n.id != id || n.from_node.is_none());
}

/// The registry as the engine thread sees it: replacements become hosts at tick boundaries,
/// dropped hosts leave the registry.
pub(crate) struct NodePool {
    pub shared: Arc<Shared>,
    /// Host name (as `AgentHost::name` gives it) to registry id, for every host handed out.
    pub ids: Vec<(String, u64)>,
}

impl HostPool for NodePool {
    fn joined(&mut self, tick: Tick) -> Vec<Box<dyn agent_node::AgentHost>> {
        let shared = self.shared.clone();
        let mut registry = lock(&shared.registry);
        let count = registry.nodes.len();
        let mut hosts = Vec::new();
        let mut hosted = Vec::new();
        for (index, node) in registry.nodes.iter_mut().enumerate().filter(|(_, n)| n.from_node.is_some()) {
            if let Some(host) = shared.host(node, BTreeSet::new(), index, count, tick) {
                self.ids.push((host.name(), node.id));
                hosted.push((node.name.clone(), node.traffic.clone()));
                hosts.push(host);
            }
        }
        registry.hosted.extend(hosted);
        hosts
    }

    fn dropped(&mut self, host: &str, reason: &str) {
        let Some(at) = self.ids.iter().position(|(name, _)| name == host) else { return };
        let (_, id) = self.ids.remove(at);
        tracing::info!("{host} leaves the run: {reason}");
        lock(&self.shared.registry).nodes.retain(|n| n.id != id);
    }
}
