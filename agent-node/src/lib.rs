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

/// Re-exported from `agents`, where the trait lives so the simulation core can implement it.
pub use agents::SpecTable;

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
///
/// Between batches the coordinator may move agents: `reassign` adds agents (with their specs)
/// and removes others, so the next batch may hold observations for any agent the host now runs.
/// A host that failed is `dismiss`ed, with the reason, and never used again.
pub trait AgentHost: Send {
    /// A name for logs and errors.
    fn name(&self) -> String;
    /// Hands over this tick's observations.
    fn submit(&mut self, batch: ObservationBatch) -> Result<(), HostError>;
    /// Waits for the actions of the batch last submitted.
    fn collect(&mut self) -> Result<ActionBatch, HostError>;
    /// Starts running `add` and stops running `remove`, from the next batch on (`tick` is the
    /// first tick the new set holds for).
    fn reassign(&mut self, tick: Tick, add: Vec<(AgentId, AgentSpec)>, remove: Vec<AgentId>) -> Result<(), HostError>;
    /// The host is dropped from the run (it failed or missed a deadline): says why, if it can
    /// still hear it, and lets go of it.
    fn dismiss(&mut self, reason: &str) {
        let _ = reason;
    }
    /// Whether the host's actions are the pure function of observations that `agents::decide`
    /// computes, so a replay need not journal them. True for `LocalHost`; a remote node says
    /// so itself in its Hello.
    fn deterministic(&self) -> bool {
        true
    }
}

/// Below this many agents per thread a batch is decided on the calling thread alone: starting
/// threads would cost more than it saves.
const MIN_AGENTS_PER_THREAD: usize = 2_048;

/// Runs agents in the calling process.
pub struct LocalHost {
    name: String,
    specs: std::sync::Arc<dyn SpecTable>,
    /// Agents taken over since the host was made (`reassign`), looked up when `specs` has none.
    adopted: BTreeMap<AgentId, AgentSpec>,
    streams: Option<Streams>,
    pending: Option<ObservationBatch>,
    /// The most threads a batch is decided on (one per core unless set).
    threads: usize,
}

impl LocalHost {
    /// A host for the given agents.
    pub fn new(name: impl Into<String>, specs: impl IntoIterator<Item = (AgentId, AgentSpec)>) -> LocalHost {
        let specs: BTreeMap<AgentId, AgentSpec> = specs.into_iter().collect();
        LocalHost::shared(name, std::sync::Arc::new(specs))
    }

    /// A host for every agent of `specs`, which it shares rather than copies.
    pub fn shared(name: impl Into<String>, specs: std::sync::Arc<dyn SpecTable>) -> LocalHost {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        LocalHost { name: name.into(), specs, adopted: BTreeMap::new(), streams: None, pending: None, threads }
    }

    /// Decides batches on at most `threads` threads (at least one). The actions are the same on
    /// any number; this only changes how fast they come.
    pub fn with_threads(mut self, threads: usize) -> LocalHost {
        self.threads = threads.max(1);
        self
    }

    /// How many agents this host knows the specs of.
    pub fn agent_count(&self) -> usize {
        self.specs.len() + self.adopted.len()
    }

    /// Decides every agent of a batch. Large batches are split into contiguous slices decided on
    /// one thread per core; decisions are pure functions of their inputs and the actions are
    /// put back in batch order, so the result is the same on any number of threads.
    pub fn run(&mut self, batch: ObservationBatch) -> Result<ActionBatch, HostError> {
        let threads = self.threads.min(batch.agents.len() / MIN_AGENTS_PER_THREAD).max(1);
        let streams = match &self.streams {
            Some(s) if s.seed() == batch.seed => s,
            _ => self.streams.insert(Streams::new(batch.seed)),
        };
        let (specs, adopted) = (&*self.specs, &self.adopted);
        let ObservationBatch { tick, public, agents: mut observations, .. } = batch;
        // Each part's observations become its actions in place (the buffer is reused, each
        // observation dropped once decided).
        let decide_all = |observations: Vec<agents::AgentObservation>| {
            observations
                .into_iter()
                .map(|obs| {
                    let spec = specs
                        .spec(obs.agent)
                        .or_else(|| adopted.get(&obs.agent))
                        .ok_or(HostError::UnknownAgent { agent: obs.agent })?;
                    Ok(agents::decide(spec, &obs, &public, streams))
                })
                .collect::<Result<Vec<AgentActions>, HostError>>()
        };
        let mut actions = if threads == 1 {
            decide_all(observations)?
        } else {
            // Contiguous parts, the first kept in the original buffer, which is large enough to
            // take every part's actions back in batch order.
            let slice = observations.len().div_ceil(threads);
            let mut rest = Vec::new();
            while observations.len() > slice {
                // The start of the last slice-sized part (the last may be shorter).
                let at = slice * ((observations.len() - 1) / slice);
                rest.push(observations.split_off(at));
            }
            rest.reverse();
            let parts: Vec<Result<Vec<AgentActions>, HostError>> = std::thread::scope(|scope| {
                let handles: Vec<_> = std::iter::once(observations)
                    .chain(rest)
                    .map(|part| scope.spawn(move || decide_all(part)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(HostError::Failed {
                                host: self.name.clone(),
                                tick,
                                reason: "a decision thread panicked".into(),
                            })
                        })
                    })
                    .collect()
            });
            let mut parts = parts.into_iter();
            let mut actions = parts.next().unwrap_or_else(|| Ok(Vec::new()))?;
            for part in parts {
                actions.extend(part?);
            }
            actions
        };
        // Actions are smaller than observations: give back what the reused buffer does not need.
        actions.shrink_to_fit();
        Ok(ActionBatch { tick, actions, rejected: Vec::new() })
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
        self.run(batch)
    }

    /// A local host decides whatever it is sent: added agents are remembered (unless its table
    /// has them already), removed ones are simply no longer sent.
    fn reassign(&mut self, _tick: Tick, add: Vec<(AgentId, AgentSpec)>, remove: Vec<AgentId>) -> Result<(), HostError> {
        for agent in remove {
            self.adopted.remove(&agent);
        }
        for (agent, spec) in add {
            if self.specs.spec(agent).is_none() {
                self.adopted.insert(agent, spec);
            }
        }
        Ok(())
    }
}
