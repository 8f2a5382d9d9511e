//! The barrier over agent hosts: a tick's observations split by placement, handed to every host,
//! and every host's actions collected back into one action per agent, in agent order. Whatever
//! a host fails to deliver for an agent (a malformed action, one for an agent it does not run,
//! none at all) becomes a recorded rejection and the agent does nothing that tick; a host that
//! fails outright (a node lost, a deadline missed) fails the tick with a `HostError`.

use agent_node::{AgentHost, HostError, LocalHost};
use agents::{AgentActions, AgentId, AgentObservation, ObservationBatch};
use engine::record::Rejection;
use engine::{Engine, Scenario, TickActions};
use std::sync::Arc;

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

/// The hosts of a run and which agents each runs.
pub struct Hosts {
    hosts: Vec<Box<dyn AgentHost>>,
    placement: Placement,
}

impl Hosts {
    pub fn new(hosts: Vec<Box<dyn AgentHost>>, placement: Placement) -> Hosts {
        Hosts { hosts, placement }
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

    /// Hands each host the observations of the agents it runs.
    fn submit_split(&mut self, batch: ObservationBatch) -> Result<(), HostError> {
        let ObservationBatch { tick, seed, public, agents } = batch;
        let mut per_host: Vec<Vec<AgentObservation>> = (0..self.hosts.len())
            .map(|h| Vec::with_capacity(self.placement.host_of.iter().filter(|&&x| x == h).count()))
            .collect();
        for obs in agents {
            per_host[self.placement.host_of[obs.agent.index()]].push(obs);
        }
        for (host, agents) in self.hosts.iter_mut().zip(per_host) {
            host.submit(ObservationBatch { tick, seed, public: public.clone(), agents })?;
        }
        Ok(())
    }

    /// Hands every host its agents' observations, then collects every host's actions (the
    /// barrier), and returns one action per agent in agent order with the rejections made on
    /// the way, sorted by agent.
    pub fn exchange(
        &mut self,
        engine: &Engine,
        batch: ObservationBatch,
        times: &mut crate::sim::PhaseTimes,
    ) -> Result<TickActions, HostError> {
        let started = std::time::Instant::now();
        let (tick, agent_count) = (batch.tick, batch.agents.len());
        if let [host] = &mut self.hosts[..] {
            // One host runs everyone: the batch goes as it is (on a large world the
            // observations are the tick's largest allocation; no second copy is made).
            host.submit(batch)?;
        } else {
            self.submit_split(batch)?;
        }
        times.observe += started.elapsed();
        let started = std::time::Instant::now();
        let mut slots: Vec<Option<AgentActions>> = vec![None; agent_count];
        let mut rejections = Vec::new();
        for (h, host) in self.hosts.iter_mut().enumerate() {
            let batch = host.collect()?;
            for (agent, reason) in batch.rejected {
                rejections.push(Rejection { tick, agent, reason: format!("from {}: {reason}", host.name()) });
            }
            for a in batch.actions {
                let i = a.agent.index();
                if self.placement.host_of.get(i) != Some(&h) || slots[i].is_some() {
                    let reason =
                        format!("{} sent an action for {}, which it does not run (or twice)", host.name(), a.agent);
                    rejections.push(Rejection { tick, agent: a.agent, reason });
                    continue;
                }
                slots[i] = Some(a);
            }
        }
        times.wait = started.elapsed();
        let actions = slots
            .into_iter()
            .enumerate()
            .map(|(i, slot)| {
                slot.unwrap_or_else(|| {
                    let agent = AgentId(i as u32);
                    let host = self.placement.host_of[i];
                    rejections.push(Rejection {
                        tick,
                        agent,
                        reason: format!("no valid action from {}", self.hosts[host].name()),
                    });
                    engine.idle(agent)
                })
            })
            .collect();
        rejections.sort_by_key(|r| r.agent);
        Ok(TickActions { actions, rejections })
    }
}
