//! A remote agent node seen from the engine: an `AgentHost` whose `submit` sends the tick's
//! observations down the node's gRPC session and whose `collect` waits, up to the tick deadline,
//! for the node's actions. Each action is converted at the edge; one that does not convert, or
//! names an agent the node does not run, is refused with a reason and the run goes on. Agents
//! moved to or from the node are sent as `Assign`; a node dropped from the run is told why with
//! a `Finish` that is not ok.

use agent_node::{ActionBatch, AgentHost, HostError};
use agents::{AgentActions, AgentId, ObservationBatch, Tick};
use prost::Message;
use proto::v1::{self, coordinator_message};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::Sender;

/// What a node's reader task reports.
#[derive(Debug)]
pub enum NodeEvent {
    Actions(v1::Actions),
    Closed(String),
}

/// Bytes and messages that crossed one node's session.
#[derive(Debug, Default)]
pub struct Traffic {
    pub messages_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub messages_in: AtomicU64,
    pub bytes_in: AtomicU64,
}

pub type Outbound = Sender<Result<v1::CoordinatorMessage, tonic::Status>>;

pub struct RemoteHost {
    name: String,
    to_node: Outbound,
    from_node: Receiver<NodeEvent>,
    deadline: Duration,
    hosted: BTreeSet<AgentId>,
    pending: Option<Tick>,
    traffic: Arc<Traffic>,
    /// What the node said of itself in its Hello.
    deterministic: bool,
}

impl RemoteHost {
    pub fn new(
        name: String,
        to_node: Outbound,
        from_node: Receiver<NodeEvent>,
        deadline: Duration,
        hosted: BTreeSet<AgentId>,
        traffic: Arc<Traffic>,
    ) -> RemoteHost {
        RemoteHost { name, to_node, from_node, deadline, hosted, pending: None, traffic, deterministic: true }
    }

    /// A node that says (in its Hello) whether its actions are `agents::decide`'s.
    pub fn deterministic(mut self, deterministic: bool) -> RemoteHost {
        self.deterministic = deterministic;
        self
    }

    fn send(&mut self, tick: Tick, body: coordinator_message::Body) -> Result<(), HostError> {
        let message = v1::CoordinatorMessage { body: Some(body) };
        self.traffic.messages_out.fetch_add(1, Ordering::Relaxed);
        self.traffic.bytes_out.fetch_add(message.encoded_len() as u64, Ordering::Relaxed);
        self.to_node.blocking_send(Ok(message)).map_err(|_| self.failed(tick, "disconnected"))
    }

    fn failed(&self, tick: Tick, reason: impl Into<String>) -> HostError {
        HostError::Failed { host: format!("node {}", self.name), tick, reason: reason.into() }
    }

    fn convert(&self, actions: v1::Actions) -> ActionBatch {
        let mut batch = ActionBatch { tick: Tick(actions.tick), ..ActionBatch::default() };
        for wire in actions.actions {
            let agent = AgentId(wire.agent);
            match AgentActions::try_from(wire) {
                Ok(a) if self.hosted.contains(&a.agent) => batch.actions.push(a),
                Ok(a) => {
                    tracing::warn!(node = %self.name, "refused an action for {}, which the node does not run", a.agent);
                    batch.rejected.push((a.agent, format!("action for {}, which this node does not run", a.agent)));
                }
                Err(e) => {
                    tracing::warn!(node = %self.name, "refused a malformed action for {agent}: {e}");
                    batch.rejected.push((agent, format!("malformed action: {e}")));
                }
            }
        }
        batch
    }
}

impl AgentHost for RemoteHost {
    fn name(&self) -> String {
        format!("node {}", self.name)
    }

    fn submit(&mut self, batch: ObservationBatch) -> Result<(), HostError> {
        let tick = batch.tick;
        self.send(tick, coordinator_message::Body::Observations((&batch).into()))?;
        self.pending = Some(tick);
        Ok(())
    }

    fn reassign(
        &mut self,
        tick: Tick,
        add: Vec<(AgentId, agents::AgentSpec)>,
        remove: Vec<AgentId>,
    ) -> Result<(), HostError> {
        for agent in &remove {
            self.hosted.remove(agent);
        }
        self.hosted.extend(add.iter().map(|(a, _)| *a));
        let assign = v1::Assign {
            add: add.iter().map(|(a, spec)| v1::HostedAgent { agent: a.0, spec: Some(spec.into()) }).collect(),
            remove: remove.iter().map(|a| a.0).collect(),
            from_tick: tick.0,
        };
        self.send(tick, coordinator_message::Body::Assign(assign))
    }

    fn dismiss(&mut self, reason: &str) {
        // The node may be stopped or gone: never wait for it. Once this host and the registry
        // let go of the session's sender, the session ends after this message.
        let finish = v1::Finish { ok: false, reason: reason.to_string() };
        let message = v1::CoordinatorMessage { body: Some(coordinator_message::Body::Finish(finish)) };
        let _ = self.to_node.try_send(Ok(message));
    }

    fn deterministic(&self) -> bool {
        self.deterministic
    }

    fn collect(&mut self) -> Result<ActionBatch, HostError> {
        let tick = self.pending.take().ok_or(HostError::NothingSubmitted)?;
        let give_up = Instant::now() + self.deadline;
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            match self.from_node.recv_timeout(left) {
                Ok(NodeEvent::Actions(a)) if a.tick == tick.0 => {
                    self.traffic.messages_in.fetch_add(1, Ordering::Relaxed);
                    self.traffic.bytes_in.fetch_add(a.encoded_len() as u64, Ordering::Relaxed);
                    return Ok(self.convert(a));
                }
                Ok(NodeEvent::Actions(a)) => {
                    tracing::warn!(node = %self.name, "ignored actions for tick {} while waiting for tick {tick}", a.tick);
                }
                Ok(NodeEvent::Closed(reason)) => return Err(self.failed(tick, format!("disconnected ({reason})"))),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.failed(tick, format!("missed the tick deadline of {:?}", self.deadline)));
                }
                Err(RecvTimeoutError::Disconnected) => return Err(self.failed(tick, "disconnected")),
            }
        }
    }
}
