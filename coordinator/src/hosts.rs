//! The barrier over agent hosts: a tick's observations split by placement, handed to every host,
//! and every host's actions collected back into one action per agent, in agent order. Whatever
//! a host fails to deliver for an agent (a malformed action, one for an agent it does not run,
//! none at all) becomes a recorded rejection and the agent does nothing that tick.
//!
//! A host that fails outright (a node lost, a deadline missed) is recovered from here, never in
//! the engine: under `OnNodeLoss::Redistribute` its agents move to the surviving hosts (or to a
//! local host in this process when none is left and that is allowed), the tick is begun again
//! for them alone and re-issued, and the tick goes on. Agents keep no state between ticks and
//! the engine owns the world, so nothing is rolled back and the result is the embedded run's.
//! Replacement hosts (from a `HostPool`) take agents at a tick boundary. Every change of
//! placement is reported as a `PlacementChange`, and the batches of journaled hosts as
//! `Decisions`, for the driver to record.

use crate::sim::StepError;
use agent_node::{AgentHost, HostError, LocalHost};
use agents::{AgentActions, AgentId, AgentObservation, ObservationBatch, Tick};
use engine::record::Rejection;
use engine::{Engine, Scenario, TickActions};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;

/// How agents are spread over hosts: `host_of[agent]` is an index into the host list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub host_of: Vec<usize>,
}

impl Placement {
    /// Every agent on host 0.
    pub fn single(agents: usize) -> Placement {
        Placement { host_of: vec![0; agents] }
    }

    /// Agents dealt round-robin over `hosts` hosts.
    pub fn round_robin(agents: usize, hosts: usize) -> Placement {
        Placement { host_of: (0..agents).map(|a| a % hosts.max(1)).collect() }
    }

    /// Contiguous blocks of agents, one block per host.
    pub fn blocks(agents: usize, hosts: usize) -> Placement {
        let hosts = hosts.max(1);
        let per = agents.div_ceil(hosts).max(1);
        Placement { host_of: (0..agents).map(|a| (a / per).min(hosts - 1)).collect() }
    }

    pub fn hosts(&self) -> usize {
        self.host_of.iter().copied().max().map_or(1, |m| m + 1)
    }
}

/// What a run does when a host fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OnNodeLoss {
    /// Stop the run, naming the host and the tick (a later `resume` finishes it).
    Stop,
    /// Move the host's agents to the surviving hosts and go on.
    #[default]
    Redistribute,
}

/// How a run recovers from a lost host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    pub on_loss: OnNodeLoss,
    /// When the last remote host is lost, run its agents on a local host in this process
    /// rather than stop.
    pub local_fallback: bool,
}

/// Hosts that may join a running run, and where dropped ones are reported (the serving
/// coordinator's registry of nodes).
pub trait HostPool: Send {
    /// Hosts that joined since the last call, ready to be given agents from `tick`.
    fn joined(&mut self, tick: Tick) -> Vec<Box<dyn AgentHost>>;
    /// `host` was dropped from the run for `reason`.
    fn dropped(&mut self, host: &str, reason: &str);
}

/// A set of agents as inclusive ranges of their ids, ascending: `0-3, 7, 9-12`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSet(pub Vec<(u32, u32)>);

impl AgentSet {
    /// The set of ascending ids.
    pub fn from_sorted(ids: impl IntoIterator<Item = u32>) -> AgentSet {
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for id in ids {
            match ranges.last_mut() {
                Some((_, end)) if *end + 1 == id => *end = id,
                _ => ranges.push((id, id)),
            }
        }
        AgentSet(ranges)
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|(a, b)| (b - a + 1) as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, agent: u32) -> bool {
        self.0.iter().any(|(a, b)| (*a..=*b).contains(&agent))
    }
}

impl std::fmt::Display for AgentSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (a, b)) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            if a == b { write!(f, "{sep}{a}")? } else { write!(f, "{sep}{a}-{b}")? }
        }
        Ok(())
    }
}

/// One change of placement: from `tick` on, which host runs which agents (every host in the
/// run after the change), and why it changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementChange {
    pub tick: u32,
    pub cause: String,
    pub hosts: Vec<(String, AgentSet)>,
    /// For a change forced by a lost host: the wall time from noticing the loss to the end of
    /// the tick's re-issued barrier, in microseconds (metadata; nothing depends on it).
    #[serde(default)]
    pub recovery_us: Option<u64>,
}

/// A rejection as journaled with a host's decisions: `missing` when no valid action came for
/// the agent at all (the agent then idled).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournaledRejection {
    pub agent: AgentId,
    pub reason: String,
    pub missing: bool,
}

/// One batch of a journaled host's decisions: for each agent the host was sent in this batch,
/// the action that entered the tick (its own, or idle when none valid came), and the
/// rejections made at the edge for it. Replaying these instead of deciding the agents again
/// makes a run exact whatever ran them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decisions {
    pub tick: u32,
    pub host: String,
    pub actions: Vec<AgentActions>,
    pub rejections: Vec<JournaledRejection>,
}

/// One host of the run; `host` is `None` once it was dropped (its index stays, unused).
struct Slot {
    name: String,
    host: Option<Box<dyn AgentHost>>,
    journaled: bool,
    /// The local host this process starts when no remote host is left.
    fallback: bool,
}

/// The name of the local host that takes the agents when no remote host is left.
const FALLBACK: &str = "coordinator";

/// The hosts of a run and which agents each runs.
pub struct Hosts {
    slots: Vec<Slot>,
    placement: Placement,
    recovery: Recovery,
    pool: Option<Box<dyn HostPool>>,
    journal_all: bool,
    changes: Vec<PlacementChange>,
    decisions: Vec<Decisions>,
}

/// What one tick's exchange has gathered so far.
struct Gathered {
    tick: Tick,
    slots: Vec<Option<AgentActions>>,
    edge: Vec<Rejection>,
    missing: Vec<Rejection>,
}

impl Hosts {
    pub fn new(hosts: Vec<Box<dyn AgentHost>>, placement: Placement) -> Hosts {
        let slots = hosts
            .into_iter()
            .map(|host| Slot { name: host.name(), host: Some(host), journaled: false, fallback: false })
            .collect();
        let mut hosts = Hosts {
            slots,
            placement,
            recovery: Recovery { on_loss: OnNodeLoss::Stop, local_fallback: false },
            pool: None,
            journal_all: false,
            changes: Vec::new(),
            decisions: Vec::new(),
        };
        hosts.set_journaling(false);
        hosts
    }

    /// Every agent of `scenario` on one local host that shares the scenario's agent table and
    /// decides large batches on at most `threads` threads.
    pub fn embedded(scenario: &Arc<Scenario>, threads: usize) -> Hosts {
        let placement = Placement::single(scenario.agents.len());
        let table: Arc<dyn agents::SpecTable> = scenario.clone();
        let host = Box::new(LocalHost::shared("local-0", table).with_threads(threads)) as Box<dyn AgentHost>;
        Hosts::new(vec![host], placement)
    }

    /// One local host per placement group, each with its own copy of its agents' specs.
    pub fn local(scenario: &Scenario, placement: Placement) -> Hosts {
        let hosts = (0..placement.hosts())
            .map(|h| {
                let specs = scenario
                    .agents
                    .iter()
                    .enumerate()
                    .filter(|(a, _)| placement.host_of[*a] == h)
                    .map(|(a, def)| (AgentId(a as u32), def.spec.clone()));
                Box::new(LocalHost::new(format!("local-{h}"), specs)) as Box<dyn AgentHost>
            })
            .collect();
        Hosts::new(hosts, placement)
    }

    /// How the run recovers from a lost host (by default it stops).
    pub fn with_recovery(mut self, recovery: Recovery) -> Hosts {
        self.recovery = recovery;
        self
    }

    /// Where replacement hosts come from.
    pub fn with_pool(mut self, pool: Box<dyn HostPool>) -> Hosts {
        self.pool = Some(pool);
        self
    }

    /// Journals the decisions of every host (`all`), or else of the hosts that do not call
    /// themselves deterministic.
    pub fn set_journaling(&mut self, all: bool) {
        self.journal_all = all;
        for slot in &mut self.slots {
            slot.journaled = all || slot.host.as_ref().is_some_and(|h| !h.deterministic());
        }
    }

    /// Records the placement the run starts (or restarts) with at `tick`.
    pub fn begin(&mut self, tick: Tick) {
        let change = self.change(tick, "start".into());
        self.changes.push(change);
    }

    /// The placement changes since the last call, oldest first.
    pub fn take_changes(&mut self) -> Vec<PlacementChange> {
        std::mem::take(&mut self.changes)
    }

    /// The journaled hosts' decisions since the last call.
    pub fn take_decisions(&mut self) -> Vec<Decisions> {
        std::mem::take(&mut self.decisions)
    }

    /// The placement as it stands, from `tick`.
    fn change(&self, tick: Tick, cause: String) -> PlacementChange {
        let mut sets: Vec<Vec<u32>> = vec![Vec::new(); self.slots.len()];
        for (a, &h) in self.placement.host_of.iter().enumerate() {
            sets[h].push(a as u32);
        }
        let hosts = self
            .slots
            .iter()
            .zip(sets)
            .filter(|(slot, _)| slot.host.is_some())
            .map(|(slot, ids)| (slot.name.clone(), AgentSet::from_sorted(ids)))
            .collect();
        PlacementChange { tick: tick.0, cause, hosts, recovery_us: None }
    }

    /// Indices of the hosts still in the run.
    fn alive(&self) -> Vec<usize> {
        (0..self.slots.len()).filter(|&s| self.slots[s].host.is_some()).collect()
    }

    /// Hands every host its agents' observations, then collects every host's actions (the
    /// barrier), and returns one action per agent in agent order with the rejections made on
    /// the way, sorted by agent. A host that fails is recovered from as `Recovery` says: its
    /// agents move and the tick is begun again for them, on their new hosts.
    pub fn exchange(
        &mut self,
        engine: &mut Engine,
        batch: ObservationBatch,
        times: &mut crate::sim::PhaseTimes,
    ) -> Result<TickActions, StepError> {
        let tick = batch.tick;
        let mut gathered =
            Gathered { tick, slots: vec![None; batch.agents.len()], edge: Vec::new(), missing: Vec::new() };
        let mut lost = self.admit(engine, tick);
        // Changes from here on are recoveries from lost hosts, timed from the first loss.
        let (recoveries, mut lost_at) = (self.changes.len(), None);
        if !lost.is_empty() {
            lost_at = Some(Instant::now());
            self.recover(engine, tick, lost, &gathered)?;
        }
        let mut next = Some(batch);
        let mut first = true;
        loop {
            let batch = match next.take() {
                Some(batch) => batch,
                None => self.reissue(engine, &gathered)?,
            };
            let started = Instant::now();
            let (targets, mut failed) = self.submit(batch, first);
            first = false;
            times.observe += started.elapsed();
            let started = Instant::now();
            failed.extend(self.collect(&targets, engine, &mut gathered));
            times.wait += started.elapsed();
            lost = failed;
            if lost.is_empty() {
                break;
            }
            lost_at.get_or_insert_with(Instant::now);
            self.recover(engine, tick, lost, &gathered)?;
        }
        if let Some(at) = lost_at {
            let us = at.elapsed().as_micros() as u64;
            tracing::warn!(
                "tick {tick} recovered from the lost host(s) in {:.1} ms; the run goes on",
                us as f64 / 1000.0
            );
            for change in &mut self.changes[recoveries..] {
                change.recovery_us = Some(us);
            }
        }
        let Gathered { slots, mut edge, missing, .. } = gathered;
        let actions =
            slots.into_iter().enumerate().map(|(i, a)| a.unwrap_or_else(|| engine.idle(AgentId(i as u32)))).collect();
        edge.extend(missing);
        edge.sort_by_key(|r| r.agent);
        Ok(TickActions { actions, rejections: edge })
    }

    /// The tick's observations again, for the agents still without an action alone.
    fn reissue(&mut self, engine: &mut Engine, gathered: &Gathered) -> Result<ObservationBatch, StepError> {
        let mut batch = engine.begin_tick()?;
        batch.agents.retain(|obs| gathered.slots[obs.agent.index()].is_none());
        Ok(batch)
    }

    /// Hands each host the observations of the agents it runs (every host on the first pass
    /// of a tick, even one with no agents, so a lost host is noticed at once; only the hosts
    /// with agents in the batch when a tick is re-issued). Returns the hosts given a batch and
    /// those that failed to take it.
    fn submit(&mut self, batch: ObservationBatch, first: bool) -> (Vec<usize>, Vec<(usize, HostError)>) {
        let alive = self.alive();
        let mut failed = Vec::new();
        if let ([only], true) = (&alive[..], first) {
            // One host runs everyone: the batch goes as it is (on a large world the
            // observations are the tick's largest allocation; no second copy is made).
            let host = self.slots[*only].host.as_mut().map(|h| h.submit(batch));
            if let Some(Err(e)) = host {
                failed.push((*only, e));
            }
            return (if failed.is_empty() { vec![*only] } else { Vec::new() }, failed);
        }
        let ObservationBatch { tick, seed, public, agents } = batch;
        let mut per_host: Vec<Vec<AgentObservation>> = vec![Vec::new(); self.slots.len()];
        let mut counts = vec![0usize; self.slots.len()];
        for obs in &agents {
            counts[self.placement.host_of[obs.agent.index()]] += 1;
        }
        for (h, part) in per_host.iter_mut().enumerate() {
            part.reserve_exact(counts[h]);
        }
        for obs in agents {
            per_host[self.placement.host_of[obs.agent.index()]].push(obs);
        }
        let mut targets = Vec::new();
        for (s, agents) in per_host.into_iter().enumerate() {
            let Some(host) = self.slots[s].host.as_mut() else { continue };
            if agents.is_empty() && !first {
                continue;
            }
            match host.submit(ObservationBatch { tick, seed, public: public.clone(), agents }) {
                Ok(()) => targets.push(s),
                Err(e) => failed.push((s, e)),
            }
        }
        (targets, failed)
    }

    /// Collects the actions of every host in `targets`, filling the agents' places; returns
    /// the hosts that failed. An agent of a host that answered but sent nothing valid for it
    /// idles, with a rejection saying so. A journaled host's batch is kept as `Decisions`.
    fn collect(&mut self, targets: &[usize], engine: &Engine, g: &mut Gathered) -> Vec<(usize, HostError)> {
        let mut failed = Vec::new();
        let tick = g.tick;
        let mut answered = vec![false; self.slots.len()];
        // Per journaled host that answered: the agents it decided in this batch, its rejections.
        let mut journal: Vec<Option<(Vec<usize>, Vec<JournaledRejection>)>> = vec![None; self.slots.len()];
        for &s in targets {
            let Some(host) = self.slots[s].host.as_mut() else { continue };
            let batch = match host.collect() {
                Ok(batch) => batch,
                Err(e) => {
                    failed.push((s, e));
                    continue;
                }
            };
            answered[s] = true;
            let name = &self.slots[s].name;
            let edge_from = g.edge.len();
            let mut mine = Vec::new();
            for (agent, reason) in batch.rejected {
                g.edge.push(Rejection { tick, agent, reason: format!("from {name}: {reason}") });
            }
            for a in batch.actions {
                let i = a.agent.index();
                if self.placement.host_of.get(i) != Some(&s) || g.slots.get(i).is_none_or(Option::is_some) {
                    let reason = format!("{name} sent an action for {}, which it does not run (or twice)", a.agent);
                    g.edge.push(Rejection { tick, agent: a.agent, reason });
                    continue;
                }
                g.slots[i] = Some(a);
                mine.push(i);
            }
            if self.slots[s].journaled {
                let rejections = g.edge[edge_from..]
                    .iter()
                    .map(|r| JournaledRejection { agent: r.agent, reason: r.reason.clone(), missing: false })
                    .collect();
                journal[s] = Some((mine, rejections));
            }
        }
        for i in 0..g.slots.len() {
            let s = self.placement.host_of[i];
            if g.slots[i].is_some() || !answered[s] {
                continue;
            }
            let agent = AgentId(i as u32);
            let reason = format!("no valid action from {}", self.slots[s].name);
            if let Some((mine, rejections)) = journal[s].as_mut() {
                mine.push(i);
                rejections.push(JournaledRejection { agent, reason: reason.clone(), missing: true });
            }
            g.missing.push(Rejection { tick, agent, reason });
            g.slots[i] = Some(engine.idle(agent));
        }
        for (s, entry) in journal.into_iter().enumerate() {
            let Some((mut mine, rejections)) = entry else { continue };
            mine.sort_unstable();
            let actions = mine.iter().filter_map(|&i| g.slots[i].clone()).collect();
            self.decisions.push(Decisions { tick: tick.0, host: self.slots[s].name.clone(), actions, rejections });
        }
        failed
    }
}

impl Hosts {
    /// Drops the failed hosts and moves their agents still without an action this tick to the
    /// hosts left (ordered by name, dealt round-robin in agent order, so the same losses give
    /// the same placement), or to a local host when none is left and that is allowed. Fails,
    /// with the first host's error, when the run must stop.
    fn recover(
        &mut self,
        engine: &Engine,
        tick: Tick,
        lost: Vec<(usize, HostError)>,
        g: &Gathered,
    ) -> Result<(), StepError> {
        let Some((_, first)) = lost.first() else { return Ok(()) };
        if self.recovery.on_loss == OnNodeLoss::Stop {
            return Err(first.clone().into());
        }
        let first = first.clone();
        let mut causes = Vec::new();
        for (s, error) in lost {
            let reason = match &error {
                HostError::Failed { reason, .. } => reason.clone(),
                other => other.to_string(),
            };
            let name = self.slots[s].name.clone();
            tracing::warn!("{name} lost at tick {tick} ({reason}); its agents move to the hosts left");
            if let Some(mut host) = self.slots[s].host.take() {
                host.dismiss(&format!("dropped from the run at tick {tick}: {reason}"));
            }
            if let Some(pool) = self.pool.as_mut() {
                pool.dropped(&name, &reason);
            }
            causes.push(format!("{name} lost ({reason})"));
        }
        let mut alive = self.alive();
        if alive.is_empty() {
            if !self.recovery.local_fallback {
                return Err(first.into());
            }
            tracing::warn!("no agent node left at tick {tick}; the coordinator runs every agent itself");
            let table: Arc<dyn agents::SpecTable> = engine.scenario_arc();
            let host = Box::new(LocalHost::shared(FALLBACK, table)) as Box<dyn AgentHost>;
            self.slots.push(Slot {
                name: FALLBACK.into(),
                host: Some(host),
                journaled: self.journal_all,
                fallback: true,
            });
            alive.push(self.slots.len() - 1);
        }
        alive.sort_by(|a, b| self.slots[*a].name.cmp(&self.slots[*b].name));
        let orphans: Vec<usize> = (0..g.slots.len())
            .filter(|&i| g.slots[i].is_none() && self.slots[self.placement.host_of[i]].host.is_none())
            .collect();
        let mut moves: Vec<Vec<usize>> = vec![Vec::new(); self.slots.len()];
        for (k, &i) in orphans.iter().enumerate() {
            let to = alive[k % alive.len()];
            self.placement.host_of[i] = to;
            moves[to].push(i);
        }
        let failed = self.send_moves(engine, tick, moves, Vec::new());
        let change = self.change(tick, causes.join("; "));
        self.changes.push(change);
        if failed.is_empty() { Ok(()) } else { self.recover(engine, tick, failed, g) }
    }

    /// Tells hosts of the agents they gain (`gain[slot]`) and lose (`lose[slot]`); returns the
    /// hosts that could not be told.
    fn send_moves(
        &mut self,
        engine: &Engine,
        tick: Tick,
        gain: Vec<Vec<usize>>,
        lose: Vec<Vec<usize>>,
    ) -> Vec<(usize, HostError)> {
        let mut failed = Vec::new();
        let specs = &engine.scenario().agents;
        for s in 0..self.slots.len() {
            let add: Vec<_> =
                gain.get(s).into_iter().flatten().map(|&i| (AgentId(i as u32), specs[i].spec.clone())).collect();
            let remove: Vec<AgentId> = lose.get(s).into_iter().flatten().map(|&i| AgentId(i as u32)).collect();
            if add.is_empty() && remove.is_empty() {
                continue;
            }
            let Some(host) = self.slots[s].host.as_mut() else { continue };
            if let Err(e) = host.reassign(tick, add, remove) {
                failed.push((s, e));
            }
        }
        failed
    }

    /// Takes in the hosts that joined since the last tick and gives them agents: all of the
    /// local fallback host's, if it runs any, otherwise an even share taken from the busiest
    /// hosts (their highest-numbered agents). Returns the hosts that could not be told.
    fn admit(&mut self, engine: &Engine, tick: Tick) -> Vec<(usize, HostError)> {
        let joined = match self.pool.as_mut() {
            Some(pool) => pool.joined(tick),
            None => Vec::new(),
        };
        if joined.is_empty() {
            return Vec::new();
        }
        let mut names = Vec::new();
        let mut newcomers = Vec::new();
        for host in joined {
            let journaled = self.journal_all || !host.deterministic();
            names.push(host.name());
            self.slots.push(Slot { name: host.name(), host: Some(host), journaled, fallback: false });
            newcomers.push(self.slots.len() - 1);
        }
        newcomers.sort_by(|a, b| self.slots[*a].name.cmp(&self.slots[*b].name));
        let (gain, lose) = self.rebalance(&newcomers);
        let failed = self.send_moves(engine, tick, gain, lose);
        for (s, slot) in self.slots.iter_mut().enumerate() {
            if slot.fallback && !self.placement.host_of.contains(&s) {
                slot.host = None;
            }
        }
        tracing::info!("{} joined at tick {tick}; agents move to it from this tick", names.join(", "));
        let change = self.change(tick, format!("{} joined", names.join(", ")));
        self.changes.push(change);
        failed
    }

    /// The moves that give `newcomers` their share; changes the placement accordingly.
    fn rebalance(&mut self, newcomers: &[usize]) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
        let n = self.slots.len();
        let (mut gain, mut lose) = (vec![Vec::new(); n], vec![Vec::new(); n]);
        let mut held: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (a, &h) in self.placement.host_of.iter().enumerate() {
            held[h].push(a);
        }
        let fallback = (0..n).find(|&s| self.slots[s].fallback && self.slots[s].host.is_some());
        if let Some(local) = fallback {
            // The coordinator gives every agent back to the nodes that have come.
            for (k, a) in std::mem::take(&mut held[local]).into_iter().enumerate() {
                let to = newcomers[k % newcomers.len()];
                self.placement.host_of[a] = to;
                gain[to].push(a);
                lose[local].push(a);
            }
            return (gain, lose);
        }
        let hosts = self.alive().len().max(1);
        let share = self.placement.host_of.len() / hosts;
        for &to in newcomers {
            while held[to].len() < share {
                let from = (0..n).filter(|s| !newcomers.contains(s) && self.slots[*s].host.is_some()).max_by(|a, b| {
                    held[*a].len().cmp(&held[*b].len()).then(self.slots[*b].name.cmp(&self.slots[*a].name))
                });
                let Some(from) = from.filter(|&f| held[f].len() > share) else { break };
                let Some(a) = held[from].pop() else { break };
                self.placement.host_of[a] = to;
                held[to].push(a);
                gain[to].push(a);
                lose[from].push(a);
            }
        }
        (gain, lose)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{DecisionSource, Sim};
    use agent_node::ActionBatch;

    fn tiny() -> Arc<Scenario> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/tiny.toml");
        Arc::new(crate::scenario_file::load(&path).expect("tiny"))
    }

    /// A local host that fails from tick `fail_at` on, or that answers with no orders at all
    /// (and says it is not deterministic) when `perturb` is set.
    struct Odd {
        inner: LocalHost,
        fail_at: Option<u32>,
        perturb: bool,
        tick: u32,
    }

    impl AgentHost for Odd {
        fn name(&self) -> String {
            self.inner.name()
        }
        fn submit(&mut self, batch: ObservationBatch) -> Result<(), HostError> {
            self.tick = batch.tick.0;
            self.inner.submit(batch)
        }
        fn collect(&mut self) -> Result<ActionBatch, HostError> {
            let mut batch = self.inner.collect()?;
            if self.fail_at.is_some_and(|t| self.tick >= t) {
                return Err(HostError::Failed { host: self.name(), tick: Tick(self.tick), reason: "gone".into() });
            }
            if self.perturb && self.tick % 3 == 1 {
                batch.actions.iter_mut().for_each(|a| a.orders.clear());
            }
            Ok(batch)
        }
        fn reassign(
            &mut self,
            tick: Tick,
            add: Vec<(AgentId, agents::AgentSpec)>,
            remove: Vec<AgentId>,
        ) -> Result<(), HostError> {
            self.inner.reassign(tick, add, remove)
        }
        fn deterministic(&self) -> bool {
            !self.perturb
        }
    }

    /// Three local hosts over tiny's agents, round-robin; host 1 is `odd`.
    fn three(s: &Scenario, odd: impl FnOnce(LocalHost) -> Odd) -> Hosts {
        let placement = Placement::round_robin(s.agents.len(), 3);
        let host = |h: usize| {
            let specs = (0..s.agents.len())
                .filter(|a| placement.host_of[*a] == h)
                .map(|a| (AgentId(a as u32), s.agents[a].spec.clone()));
            LocalHost::new(format!("host-{h}"), specs)
        };
        let hosts: Vec<Box<dyn AgentHost>> = vec![Box::new(host(0)), Box::new(odd(host(1))), Box::new(host(2))];
        Hosts::new(hosts, placement)
    }

    fn digests(sim: &mut Sim, ticks: u32) -> Vec<String> {
        (0..ticks).map(|_| sim.step().expect("tick").digest.to_string()).collect()
    }

    fn failing(at: u32) -> impl FnOnce(LocalHost) -> Odd {
        move |inner| Odd { inner, fail_at: Some(at), perturb: false, tick: 0 }
    }

    #[test]
    fn a_lost_hosts_agents_move_to_the_others_and_the_run_is_the_embedded_one() {
        let s = tiny();
        let embedded = digests(&mut Sim::embedded(s.clone()), 20);
        let recovery = Recovery { on_loss: OnNodeLoss::Redistribute, local_fallback: false };
        let mut sim = Sim::new(Engine::new(s.clone()), three(&s, failing(5)).with_recovery(recovery));
        assert_eq!(digests(&mut sim, 20), embedded);
        let changes = sim.take_placement_changes();
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!((changes[1].tick, changes[1].cause.as_str()), (5, "host-1 lost (gone)"));
        // Host 1 ran agents 1, 4, 7, 10, 13; they are dealt to host-0 and host-2 in turn.
        let after: Vec<(String, String)> = changes[1].hosts.iter().map(|(h, a)| (h.clone(), a.to_string())).collect();
        assert_eq!(
            after,
            [("host-0".into(), "0-1, 3, 6-7, 9, 12-13, 15".into()), ("host-2".into(), "2, 4-5, 8, 10-11, 14".into())]
        );
    }

    #[test]
    fn under_stop_a_lost_host_fails_the_tick_with_its_name() {
        let s = tiny();
        let mut sim = Sim::new(Engine::new(s.clone()), three(&s, failing(3)));
        digests(&mut sim, 3);
        let e = sim.step().expect_err("tick 3 fails");
        assert!(e.to_string().contains("host-1 failed at tick 3: gone"), "{e}");
    }

    /// A pool that offers one fresh local host at tick `at`.
    struct Later {
        at: u32,
        host: Option<Box<dyn AgentHost>>,
        dropped: Vec<String>,
    }

    impl HostPool for Later {
        fn joined(&mut self, tick: Tick) -> Vec<Box<dyn AgentHost>> {
            if tick.0 >= self.at { self.host.take().into_iter().collect() } else { Vec::new() }
        }
        fn dropped(&mut self, host: &str, _: &str) {
            self.dropped.push(host.to_string());
        }
    }

    #[test]
    fn the_local_fallback_takes_every_agent_and_gives_them_to_a_replacement() {
        let s = tiny();
        let embedded = digests(&mut Sim::embedded(s.clone()), 16);
        let only = Odd { inner: LocalHost::shared("only", s.clone()), fail_at: Some(4), perturb: false, tick: 0 };
        let pool = Later { at: 9, host: Some(Box::new(LocalHost::new("late", Vec::new()))), dropped: Vec::new() };
        let hosts = Hosts::new(vec![Box::new(only)], Placement::single(s.agents.len()))
            .with_recovery(Recovery { on_loss: OnNodeLoss::Redistribute, local_fallback: true })
            .with_pool(Box::new(pool));
        let mut sim = Sim::new(Engine::new(s.clone()), hosts);
        assert_eq!(digests(&mut sim, 16), embedded);
        let changes = sim.take_placement_changes();
        let seen: Vec<(u32, String, Vec<String>)> = changes
            .iter()
            .map(|c| (c.tick, c.cause.clone(), c.hosts.iter().map(|(h, a)| format!("{h} {a}")).collect()))
            .collect();
        assert_eq!(
            seen,
            [
                (0, "start".into(), vec!["only 0-15".into()]),
                (4, "only lost (gone)".into(), vec!["coordinator 0-15".into()]),
                (9, "late joined".into(), vec!["late 0-15".into()]),
            ]
        );
    }

    /// Decisions replayed from a journal, as `history` reads them from the store.
    struct Journal(Vec<Decisions>);

    impl DecisionSource for Journal {
        fn at(&mut self, tick: u32) -> Result<Vec<Decisions>, String> {
            Ok(self.0.iter().filter(|d| d.tick == tick).cloned().collect())
        }
    }

    #[test]
    fn a_non_deterministic_hosts_batches_are_journaled_and_replay_exactly() {
        let s = tiny();
        let perturbed = |inner| Odd { inner, fail_at: None, perturb: true, tick: 0 };
        let mut sim = Sim::new(Engine::new(s.clone()), three(&s, perturbed));
        let original = digests(&mut sim, 12);
        let journal = sim.take_decisions();
        assert_eq!(journal.len(), 12, "one batch per tick, from host-1 only");
        assert!(journal.iter().all(|d| d.host == "host-1" && d.actions.len() == 5));
        assert_ne!(original, digests(&mut Sim::embedded(s.clone()), 12), "the perturbation changes the run");
        let mut replayed = Sim::embedded(s.clone()).replaying(Box::new(Journal(journal)));
        assert_eq!(digests(&mut replayed, 12), original);
    }
}
