//! An agent node hosts a subset of a run's agents: it receives each tick's observations for its
//! agents and returns their actions. [`AgentHost`] is the one interface the coordinator drives,
//! whether the host is [`LocalHost`] in the same process (the embedded run) or a remote node
//! behind the network; the two differ only in transport.
//!
//! `node` is the network side: a process that joins a coordinator over gRPC and serves its
//! agents through a `LocalHost`; `cli` is the `agent-node` command.
//!
//! A host keeps no simulation state between ticks: an agent's memory travels in its observation
//! and comes back in its actions, so any host can run any agent at any tick.

pub mod cli;
pub mod node;

use agents::rng::Streams;
use agents::{AgentActions, AgentId, AgentSpec, ObservationBatch, Tick};
use std::collections::BTreeMap;

/// Why a host could not deliver a tick's actions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("observation for {agent}, which this host does not run")]
    UnknownAgent { agent: AgentId },
    #[error("collect called with no batch submitted")]
    NothingSubmitted,
    #[error("{host} failed at tick {tick}: {reason}")]
    Failed { host: String, tick: Tick, reason: String },
}

/// One tick's actions from one host. `rejected` lists actions that arrived but could not be
/// understood (a malformed message from a remote node), each with the reason; the coordinator
/// records them and treats the agent as having done nothing that tick.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionBatch {
    pub tick: Tick,
    pub actions: Vec<AgentActions>,
    pub rejected: Vec<(AgentId, String)>,
}

/// Something that runs agents. The coordinator submits one batch to every host, then collects
/// from every host, so hosts work in parallel while the coordinator waits at the barrier.
pub trait AgentHost: Send {
    /// A name for logs and errors.
    fn name(&self) -> String;
    /// Hands over this tick's observations.
    fn submit(&mut self, batch: ObservationBatch) -> Result<(), HostError>;
    /// Waits for the actions of the batch last submitted.
    fn collect(&mut self) -> Result<ActionBatch, HostError>;
}

/// Runs agents in the calling process.
pub struct LocalHost {
    name: String,
    specs: BTreeMap<AgentId, AgentSpec>,
    streams: Option<Streams>,
    pending: Option<ObservationBatch>,
}

impl LocalHost {
    /// A host for the given agents.
    pub fn new(name: impl Into<String>, specs: impl IntoIterator<Item = (AgentId, AgentSpec)>) -> LocalHost {
        LocalHost { name: name.into(), specs: specs.into_iter().collect(), streams: None, pending: None }
    }

    pub fn agents(&self) -> impl Iterator<Item = AgentId> + '_ {
        self.specs.keys().copied()
    }

    /// Decides every agent of a batch.
    pub fn run(&mut self, batch: &ObservationBatch) -> Result<ActionBatch, HostError> {
        let streams = match &self.streams {
            Some(s) if s.seed() == batch.seed => s,
            _ => self.streams.insert(Streams::new(batch.seed)),
        };
        let actions = batch
            .agents
            .iter()
            .map(|obs| {
                let spec = self.specs.get(&obs.agent).ok_or(HostError::UnknownAgent { agent: obs.agent })?;
                Ok(agents::decide(spec, obs, &batch.public, streams))
            })
            .collect::<Result<Vec<_>, HostError>>()?;
        Ok(ActionBatch { tick: batch.tick, actions, rejected: Vec::new() })
    }
}

impl AgentHost for LocalHost {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn submit(&mut self, batch: ObservationBatch) -> Result<(), HostError> {
        self.pending = Some(batch);
        Ok(())
    }

    fn collect(&mut self) -> Result<ActionBatch, HostError> {
        let batch = self.pending.take().ok_or(HostError::NothingSubmitted)?;
        self.run(&batch)
    }
}
