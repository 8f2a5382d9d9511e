//! A run's simulation as its drivers step it: the engine (the pure core) and the hosts that
//! decide its agents. One tick is `begin_tick` on the engine, the barrier over the hosts, and
//! `finish_tick`; the embedded run, serve, exercise, replay, fork, sweep and debrief all step
//! through here, so they all drive the engine the same way. A re-executed run whose decisions
//! were journaled (a node that is not deterministic, or `serve --journal-actions`) takes those
//! agents' actions from its `DecisionSource` instead of its hosts' own.

use crate::hosts::{Decisions, Hosts, Placement, PlacementChange};
use agent_node::{AgentHost, HostError};
use agents::{MarketId, Money, NationId, Order, Quantity};
use engine::record::{Rejection, TickRecord};
use engine::world::WorldState;
use engine::{Engine, EngineError, Phase, Probe, Scenario, TickActions};
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
    #[error("the journaled decisions of tick {tick} cannot be used: {detail}")]
    Journal { tick: u32, detail: String },
}

/// Where a re-executed run finds the decisions its journaled hosts made.
pub trait DecisionSource: Send {
    /// The journaled batches of `tick`, in the order they were made (none for most ticks).
    fn at(&mut self, tick: u32) -> Result<Vec<Decisions>, String>;
}

/// The engine and its hosts.
pub struct Sim {
    pub engine: Engine,
    hosts: Hosts,
    replayed: Option<Box<dyn DecisionSource>>,
    /// Nations whose agencies' auctions are watched (an exercise's played nations), and what
    /// the last tick showed of them.
    watch: Vec<NationId>,
    watched: Vec<AgencyTick>,
}

/// What one watched nation's stockpile agency did in one tick's auctions: the orders its own
/// rules placed (a player's orders join them inside the engine), its treasury before, and its
/// goods in every market before and after the auctions (holdings plus what it bought that is
/// still in transit). The difference is what it bought (or sold) in each auction.
#[derive(Clone, Debug, Default)]
pub struct AgencyTick {
    pub nation: NationId,
    pub own_orders: Vec<Order>,
    pub cash_before: Money,
    /// By market index.
    pub before: Vec<Quantity>,
    pub after: Vec<Quantity>,
}

impl AgencyTick {
    /// Net bought (positive) or sold (negative) in `market` in the tick's auctions.
    pub fn net(&self, market: MarketId) -> Quantity {
        let i = market.index();
        self.after.get(i).copied().unwrap_or_default() - self.before.get(i).copied().unwrap_or_default()
    }
}

/// The goods an agency has or has bought in each market: holdings plus shipments to it.
fn positions(state: &WorldState, nation: NationId, markets: usize) -> Vec<Quantity> {
    let agency = &state.agents[nation.index()];
    let mut out: Vec<Quantity> = (0..markets).map(|i| agency.holding(MarketId::from_index(i))).collect();
    for s in state.shipments.iter().filter(|s| s.buyer.index() == nation.index()) {
        if let Some(q) = out.get_mut(s.market.index()) {
            *q += s.quantity;
        }
    }
    out
}

/// Times the engine's phases as it reports reaching them, and takes the watched agencies'
/// positions around the auctions.
struct Stopwatch<'a> {
    times: &'a mut PhaseTimes,
    last: Instant,
    in_markets: bool,
    watched: &'a mut [AgencyTick],
    markets: usize,
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

    fn inspect(&mut self, phase: Phase, state: &WorldState) {
        for w in self.watched.iter_mut() {
            match phase {
                Phase::Markets => w.before = positions(state, w.nation, self.markets),
                Phase::AfterMarkets => w.after = positions(state, w.nation, self.markets),
                Phase::Digest => {}
            }
        }
    }
}

impl Sim {
    /// The engine stepped on `hosts`, whose placement is recorded as the one the run (re)starts
    /// with at the engine's tick.
    pub fn new(engine: Engine, mut hosts: Hosts) -> Sim {
        hosts.begin(engine.state().tick);
        Sim { engine, hosts, replayed: None, watch: Vec::new(), watched: Vec::new() }
    }

    /// Takes journaled agents' actions from `source` rather than deciding them again.
    pub fn replaying(mut self, source: Box<dyn DecisionSource>) -> Sim {
        self.replayed = Some(source);
        self
    }

    /// The placement changes (the start included) since the last call.
    pub fn take_placement_changes(&mut self) -> Vec<PlacementChange> {
        self.hosts.take_changes()
    }

    /// The journaled hosts' decisions since the last call.
    pub fn take_decisions(&mut self) -> Vec<Decisions> {
        self.hosts.take_decisions()
    }

    /// Journals every host's decisions, not only those of hosts that are not deterministic.
    pub fn journal_all_decisions(&mut self) {
        self.hosts.set_journaling(true);
    }

    /// Watches these nations' agencies in every tick's auctions from now on (see
    /// [`Sim::watched`]). Watching changes nothing in the run.
    pub fn watch(&mut self, nations: Vec<NationId>) {
        self.watch = nations;
    }

    /// What the last tick's auctions did for each watched agency.
    pub fn watched(&self) -> &[AgencyTick] {
        &self.watched
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
        Sim::on_local_host(Engine::restore(scenario, state))
    }

    /// `engine` (fresh or restored) with every agent on one local host, deciding large batches
    /// on one thread per core.
    pub fn on_local_host(engine: Engine) -> Sim {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let hosts = Hosts::embedded(&engine.scenario_arc(), threads);
        Sim::new(engine, hosts)
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
        let mut actions = self.hosts.exchange(&mut self.engine, batch, &mut times)?;
        if let Some(source) = self.replayed.as_mut() {
            let tick = self.engine.state().tick.0;
            let journaled = source.at(tick).map_err(|detail| StepError::Journal { tick, detail })?;
            substitute(&mut actions, journaled, tick)?;
        }
        self.watched = self
            .watch
            .iter()
            .map(|&n| AgencyTick {
                nation: n,
                own_orders: actions.actions.get(n.index()).map(|a| a.orders.clone()).unwrap_or_default(),
                cash_before: self.engine.state().agents[n.index()].cash,
                ..AgencyTick::default()
            })
            .collect();
        let started = Instant::now();
        let markets = self.engine.scenario().market_count();
        let mut watch =
            Stopwatch { times: &mut times, last: started, in_markets: false, watched: &mut self.watched, markets };
        let record = self.engine.finish_tick_probed(actions, &mut watch)?;
        let last = watch.last;
        times.digest = last.elapsed();
        times.apply = started.elapsed();
        Ok((record, times))
    }
}

/// Puts journaled decisions in place of the hosts' own: each journaled agent's action, and
/// the rejections that were made for it at the edge (edge rejections first, then those for
/// agents that sent nothing valid, each in journal order, then all by agent, as the barrier
/// orders them).
fn substitute(actions: &mut TickActions, journaled: Vec<Decisions>, tick: u32) -> Result<(), StepError> {
    if journaled.is_empty() {
        return Ok(());
    }
    let mut replaced = vec![false; actions.actions.len()];
    let (mut edge, mut missing) = (Vec::new(), Vec::new());
    for batch in journaled {
        for a in batch.actions {
            let i = a.agent.index();
            let Some(slot) = actions.actions.get_mut(i) else {
                return Err(StepError::Journal {
                    tick,
                    detail: format!("{} decided {}, who does not exist", batch.host, a.agent),
                });
            };
            *slot = a;
            replaced[i] = true;
        }
        for r in batch.rejections {
            let rejection = Rejection { tick: agents::Tick(tick), agent: r.agent, reason: r.reason };
            if r.missing { missing.push(rejection) } else { edge.push(rejection) }
        }
    }
    let mut rejections: Vec<Rejection> = std::mem::take(&mut actions.rejections)
        .into_iter()
        .filter(|r| !replaced.get(r.agent.index()).copied().unwrap_or(false))
        .collect();
    rejections.extend(edge);
    rejections.extend(missing);
    rejections.sort_by_key(|r| r.agent);
    actions.rejections = rejections;
    Ok(())
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
