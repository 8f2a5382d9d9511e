//! A run's simulation as its drivers step it: the engine (the pure core) and the hosts that
//! decide its agents. One tick is `begin_tick` on the engine, the barrier over the hosts, and
//! `finish_tick`; the embedded run, serve, exercise, replay, fork, sweep and debrief all step
//! through here, so they all drive the engine the same way.

use crate::hosts::{Hosts, Placement};
use agent_node::{AgentHost, HostError};
use engine::record::TickRecord;
use engine::world::WorldState;
use engine::{Engine, EngineError, Phase, Probe, Scenario};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Wall time spent in each phase of a tick: building and sending observations, waiting for the
/// hosts' actions, and validating and applying them (digest included). `markets` (the auctions
/// and their settlement) and `digest` are parts of `apply`, reported for profiling.
#[derive(Clone, Copy, Debug, Default)]
pub struct PhaseTimes {
    pub observe: Duration,
    pub wait: Duration,
    pub apply: Duration,
    pub markets: Duration,
    pub digest: Duration,
}

/// Why a tick could not be run.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Host(#[from] HostError),
}

/// The engine and its hosts.
pub struct Sim {
    pub engine: Engine,
    hosts: Hosts,
}

/// Times the engine's phases as it reports reaching them.
struct Stopwatch<'a> {
    times: &'a mut PhaseTimes,
    last: Instant,
    in_markets: bool,
}

impl Probe for Stopwatch<'_> {
    fn mark(&mut self, phase: Phase) {
        let now = Instant::now();
        match phase {
            Phase::Markets => self.in_markets = true,
            Phase::AfterMarkets if self.in_markets => self.times.markets += now - self.last,
            Phase::AfterMarkets => {}
            Phase::Digest => {}
        }
        self.last = now;
    }
}

impl Sim {
    pub fn new(engine: Engine, hosts: Hosts) -> Sim {
        Sim { engine, hosts }
    }

    /// A fresh run with every agent in this process, on one local host that decides large
    /// batches on one thread per core.
    pub fn embedded(scenario: Arc<Scenario>) -> Sim {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        Sim::embedded_on(scenario, threads)
    }

    /// An embedded run deciding on at most `threads` threads: a sweep running several worlds
    /// at once gives each a share of the cores. The results are the same on any number.
    pub fn embedded_on(scenario: Arc<Scenario>, threads: usize) -> Sim {
        let hosts = Hosts::embedded(&scenario, threads);
        Sim::new(Engine::new(scenario), hosts)
    }

    /// A fresh run with one local host per placement group: the same run, spread differently.
    pub fn local(scenario: Arc<Scenario>, placement: Placement) -> Sim {
        let hosts = Hosts::local(&scenario, placement);
        Sim::new(Engine::new(scenario), hosts)
    }

    /// A fresh run on the given hosts.
    pub fn with_hosts(scenario: Arc<Scenario>, hosts: Vec<Box<dyn AgentHost>>, placement: Placement) -> Sim {
        Sim::new(Engine::new(scenario), Hosts::new(hosts, placement))
    }

    /// A run continuing from `state`, on one local host.
    pub fn restore_embedded(scenario: Arc<Scenario>, state: WorldState) -> Sim {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let hosts = Hosts::embedded(&scenario, threads);
        Sim::new(Engine::restore(scenario, state), hosts)
    }

    pub fn scenario(&self) -> &Scenario {
        self.engine.scenario()
    }

    pub fn state(&self) -> &WorldState {
        self.engine.state()
    }

    pub fn is_finished(&self) -> bool {
        self.engine.is_finished()
    }

    /// Runs one tick and reports what happened in it.
    pub fn step(&mut self) -> Result<TickRecord, StepError> {
        self.step_timed().map(|(record, _)| record)
    }

    /// Runs one tick and also reports how long its phases took (wall time, for metrics only:
    /// nothing in the tick depends on it).
    pub fn step_timed(&mut self) -> Result<(TickRecord, PhaseTimes), StepError> {
        let mut times = PhaseTimes::default();
        let started = Instant::now();
        let batch = self.engine.begin_tick()?;
        times.observe = started.elapsed();
        let actions = self.hosts.exchange(&self.engine, batch, &mut times)?;
        let started = Instant::now();
        let mut watch = Stopwatch { times: &mut times, last: started, in_markets: false };
        let record = self.engine.finish_tick_probed(actions, &mut watch)?;
        let last = watch.last;
        times.digest = last.elapsed();
        times.apply = started.elapsed();
        Ok((record, times))
    }
}

impl Sim {
    /// Schedules an external event (see [`Engine::schedule`]).
    pub fn schedule(&mut self, event: engine::scenario::Event) -> Result<(), engine::InputError> {
        self.engine.schedule(event)
    }

    /// Applies one journaled input taking effect at `tick`: an inject is scheduled, orders are
    /// queued; messages and notes change nothing.
    pub fn apply_input(&mut self, tick: u32, input: crate::store::JournalInput) -> Result<(), engine::InputError> {
        match input.into_input(tick) {
            Some(input) => self.engine.apply(input),
            None => Ok(()),
        }
    }
}
