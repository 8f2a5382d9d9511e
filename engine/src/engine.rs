//! The tick lifecycle, with no I/O. [`Engine::begin_tick`] derives every agent's observation from
//! the world state and hands them out; whoever drives the engine has them decided (by hosts in
//! this process or on other machines) and gives the actions back to [`Engine::finish_tick`],
//! which sorts nothing (the actions come one per agent, in agent order), validates them, and
//! applies them in a fixed order — production, the auctions, deliveries, consumption, stockpile
//! upkeep, then the events due next tick — before it checks the invariants and computes the
//! state digest (raft-rs's `ready`/`advance` split).
//!
//! The engine owns the world state and the scenario. It never reads a clock and never touches a
//! host, a file or the network; its own random draws (forecast noise, opposition, stockpile
//! risk, diplomacy) come from the run's named streams keyed by (seed, agent, tick, purpose), so
//! a tick is a pure function of the state, the scenario, the external inputs and the actions.

use crate::digest::{digest_with, fingerprint};
use crate::mechanics::{self, Derived};
use crate::record::{Occurrence, Rejection, TickRecord};
use crate::scenario::{Event, Scenario};
use crate::tick::settle::Deltas;
use crate::tick::{self, Ctx, Ledger};
use crate::world::{Consumption, WorldState, domestic_consumption};
use agents::observation::Announcement;
use agents::{AgentActions, AgentId, ObservationBatch, Order, Tick};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invariant `{name}` violated at tick {tick}: {detail}")]
    Invariant { name: &'static str, tick: Tick, detail: String },
    #[error("the run is complete ({ticks} ticks)")]
    Finished { ticks: u32 },
    #[error("finish_tick was called with no tick begun")]
    NoTickBegun,
    #[error("tick {tick}: expected one action per agent in agent order ({agents} agents); {detail}")]
    Actions { tick: Tick, agents: usize, detail: String },
}

/// Why an external input was refused. An expected outcome (a late inject), not a failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("an inject must take effect after tick {now} (the earliest is tick {earliest}); tick {at} is too early")]
    TooEarly { now: Tick, earliest: u32, at: Tick },
    #[error("orders for tick {at} come too late: the next tick to run is {now}")]
    OrdersTooLate { at: Tick, now: Tick },
    #[error("no nation #{nation}")]
    UnknownNation { nation: u16 },
}

/// An external input to a run: a scheduled event (a control inject, a player's policy order, a
/// fork's replacement events) or a played nation's limit orders for its stockpile agency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Event(Event),
    Orders { tick: Tick, nation: agents::NationId, orders: Vec<Order> },
}

/// What the driver gives back for a tick begun with [`Engine::begin_tick`]: one action per
/// agent, in agent order (an agent whose host failed it does nothing: [`Engine::idle`]), and the
/// actions refused before they reached the engine (malformed, missing, for the wrong agent),
/// sorted by agent.
#[derive(Clone, Debug, Default)]
pub struct TickActions {
    pub actions: Vec<AgentActions>,
    pub rejections: Vec<Rejection>,
}

/// The points of a tick a caller may want to time. The engine calls [`Probe::mark`] as it
/// reaches each; it never reads a clock itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Validation and production are done; the auctions start.
    Markets,
    /// The auctions are settled; deliveries, consumption, upkeep and the slow processes start.
    AfterMarkets,
    /// The state is final; its digest starts.
    Digest,
}

/// Told where each phase of a tick starts (for metrics; nothing in the tick depends on it).
pub trait Probe {
    fn mark(&mut self, phase: Phase);

    /// Shown the state, read-only, where the auctions start ([`Phase::Markets`]) and where they
    /// are settled ([`Phase::AfterMarkets`]): the difference is what the auctions did, which an
    /// exercise reads to tell a player what became of its orders. Nothing in the tick depends on
    /// it; the default looks at nothing.
    fn inspect(&mut self, phase: Phase, state: &WorldState) {
        let _ = (phase, state);
    }
}

impl Probe for () {
    fn mark(&mut self, _: Phase) {}
}

pub struct Engine {
    scenario: Arc<Scenario>,
    state: WorldState,
    /// The scheduled events (the scenario's, plus any injected), sorted by tick, and the index
    /// of the first not yet applied.
    events: Vec<Event>,
    next_event: usize,
    /// Events applied before the first tick, reported with tick 0's record.
    initial_events: Vec<(Tick, Occurrence)>,
    /// The run's random streams (for the engine's own draws: forecasts, opposition, risk,
    /// diplomacy).
    streams: agents::rng::Streams,
    derived: Derived,
    /// Limit orders played nations gave their agencies, by (tick, nation): inputs from the
    /// journal, added to the agency's own orders at that tick and validated like them.
    player_orders: BTreeMap<(u32, u16), Vec<Order>>,
    /// The block buffer each tick's digest gathers the state's encoding in, kept between ticks.
    digest_buffer: Vec<u8>,
    /// Scratch space for settling a market's trades, kept between markets and ticks.
    deltas: Deltas,
    /// The tick begun and not yet finished: what `begin_tick` computed that `finish_tick` needs.
    pending: Option<Pending>,
    /// Whether each tick's record carries the digests of the state's parts (a recorded run
    /// keeps them, so a replay can say where it diverges).
    with_parts: bool,
}

/// A begun tick's consumption (stockpile targets and upkeep use it).
struct Pending {
    tick: Tick,
    consumption: Consumption,
}

impl Engine {
    /// A fresh run of `scenario`: the initial world, with the events due at tick 0 applied
    /// (and reported with tick 0's record).
    pub fn new(scenario: Arc<Scenario>) -> Engine {
        let state = WorldState::initial(&scenario);
        let mut engine = Engine::restore(scenario, state);
        engine.next_event = 0;
        let mut log = Vec::new();
        tick::events::apply_due(
            &engine.scenario,
            &mut engine.state,
            &engine.events,
            &mut engine.next_event,
            Tick(0),
            &mut log,
        );
        engine.initial_events = log;
        engine
    }

    /// An engine that continues from a saved state (a snapshot). The events due at or before
    /// the state's tick are taken as applied already.
    pub fn restore(scenario: Arc<Scenario>, state: WorldState) -> Engine {
        let events = scenario.events.clone();
        let next_event = events.partition_point(|e| e.tick <= state.tick);
        let streams = agents::rng::Streams::new(scenario.seed);
        let derived = Derived::new(&scenario);
        Engine {
            scenario,
            state,
            events,
            next_event,
            initial_events: Vec::new(),
            streams,
            derived,
            player_orders: BTreeMap::new(),
            digest_buffer: Vec::new(),
            deltas: Deltas::default(),
            pending: None,
            with_parts: false,
        }
    }

    /// Schedules an external event (a control inject). It must take effect after the current
    /// tick: events due at the next tick to run were applied when the last tick ended.
    pub fn schedule(&mut self, event: Event) -> Result<(), InputError> {
        if event.tick <= self.state.tick {
            return Err(InputError::TooEarly { now: self.state.tick, earliest: self.state.tick.0 + 1, at: event.tick });
        }
        let at = self.events.partition_point(|e| e.tick <= event.tick);
        self.events.insert(at, event);
        Ok(())
    }

    /// Gives a nation's stockpile agency extra limit orders at `tick` (a player's orders): they
    /// join the agency's own orders and are validated like them.
    pub fn add_orders(&mut self, tick: Tick, nation: agents::NationId, orders: Vec<Order>) -> Result<(), InputError> {
        if tick < self.state.tick {
            return Err(InputError::OrdersTooLate { at: tick, now: self.state.tick });
        }
        if nation.index() >= self.scenario.nations.len() {
            return Err(InputError::UnknownNation { nation: nation.0 });
        }
        self.player_orders.entry((tick.0, nation.0)).or_default().extend(orders);
        Ok(())
    }

    /// Applies one external input: schedules an event or queues a nation's orders.
    pub fn apply(&mut self, input: Input) -> Result<(), InputError> {
        match input {
            Input::Event(event) => self.schedule(event),
            Input::Orders { tick, nation, orders } => self.add_orders(tick, nation, orders),
        }
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The scenario, shared (no copy).
    pub fn scenario_arc(&self) -> Arc<Scenario> {
        self.scenario.clone()
    }

    pub fn state(&self) -> &WorldState {
        &self.state
    }

    pub fn is_finished(&self) -> bool {
        self.state.tick.0 >= self.scenario.ticks
    }

    /// Starts the next tick: makes the nations' forecasts and returns every agent's observation,
    /// in agent order, with the public view they share. Calling it again before
    /// [`Engine::finish_tick`] returns the same observations.
    pub fn begin_tick(&mut self) -> Result<ObservationBatch, EngineError> {
        if self.is_finished() {
            return Err(EngineError::Finished { ticks: self.scenario.ticks });
        }
        let tick = self.state.tick;
        let consumption = domestic_consumption(&self.scenario, &self.state, tick);
        mechanics::make_forecasts(&self.scenario, &mut self.state, &self.streams, tick, &consumption);
        let public = Arc::new(tick::observe::public_view(&self.scenario, &self.state, &self.events, tick));
        let incoming = tick::observe::incoming(&self.state);
        let agents = (0..self.state.agents.len())
            .map(|a| tick::observe::observe(&self.scenario, &self.state, AgentId(a as u32), &consumption, &incoming))
            .collect();
        self.pending = Some(Pending { tick, consumption });
        Ok(ObservationBatch { tick, seed: self.scenario.seed, public, agents })
    }

    /// What an agent does when no action came for it: nothing, keeping its memory.
    pub fn idle(&self, agent: AgentId) -> AgentActions {
        AgentActions { agent, memory: self.state.agents[agent.index()].memory.clone(), ..AgentActions::default() }
    }

    /// Finishes the tick begun with [`Engine::begin_tick`] with its actions, and reports what
    /// happened in it.
    pub fn finish_tick(&mut self, actions: TickActions) -> Result<TickRecord, EngineError> {
        self.finish_tick_probed(actions, &mut ())
    }

    /// [`Engine::finish_tick`], telling `probe` where each phase starts.
    pub fn finish_tick_probed(
        &mut self,
        actions: TickActions,
        probe: &mut dyn Probe,
    ) -> Result<TickRecord, EngineError> {
        let Some(Pending { tick, consumption }) = self.pending.take() else {
            return Err(EngineError::NoTickBegun);
        };
        let TickActions { mut actions, rejections: mut edge_rejections } = actions;
        if let Some(detail) = misordered(&actions, self.state.agents.len()) {
            self.pending = Some(Pending { tick, consumption });
            return Err(EngineError::Actions { tick, agents: self.state.agents.len(), detail });
        }
        while let Some((&(t, n), _)) = self.player_orders.first_key_value() {
            if t > tick.0 {
                break;
            }
            let orders = self.player_orders.remove(&(t, n)).unwrap_or_default();
            if t == tick.0
                && let Some(a) = actions.get_mut(usize::from(n))
            {
                a.orders.extend(orders);
            }
        }
        let mut rejections = tick::validate::validate(&self.scenario, &self.state, tick, &mut actions);
        edge_rejections.append(&mut rejections);
        let mut record = TickRecord {
            tick,
            rejections: edge_rejections,
            events: std::mem::take(&mut self.initial_events),
            ..TickRecord::default()
        };
        let mut ledger = Ledger::new(self.scenario.market_count());
        let before = tick::invariants::totals(&self.scenario, &self.state);
        for a in &actions {
            self.state.agents[a.agent.index()].memory = a.memory.clone();
        }
        let mut cx = Ctx {
            tick,
            scenario: &self.scenario,
            streams: &self.streams,
            derived: &self.derived,
            state: &mut self.state,
            record: &mut record,
            ledger: &mut ledger,
        };
        apply(&mut cx, &mut self.deltas, &mut actions, &consumption, probe);
        let next = tick.next();
        if next.0 < self.scenario.ticks {
            let (events, next_event) = (&self.events, &mut self.next_event);
            tick::events::apply_due(&self.scenario, &mut self.state, events, next_event, next, &mut record.events);
        }
        tick::invariants::check(&self.scenario, &self.state, tick, &before, &ledger)?;
        record.restrictions = self.state.policies.active.iter().map(|a| (a.name.clone(), a.rule.clone())).collect();
        self.state.tick = next;
        probe.mark(Phase::Digest);
        if self.with_parts {
            (record.digest, record.parts) = fingerprint(&self.state, &self.scenario, &mut self.digest_buffer);
        } else {
            record.digest = digest_with(&self.state, &mut self.digest_buffer);
        }
        Ok(record)
    }

    /// Asks for the digests of the state's parts in every tick's record (from the same encoding
    /// as the whole digest).
    pub fn record_parts(&mut self, on: bool) {
        self.with_parts = on;
    }

    /// Export restrictions in force and announced ahead, as the public sees them now (the
    /// list every agent's public view carries, and the exercise console shows).
    pub fn announcements(&self) -> Vec<Announcement> {
        mechanics::announcements(&self.scenario, &self.state, &self.events, self.state.tick)
    }

    /// The scheduled events, applied and to come, sorted by tick.
    pub fn events(&self) -> &[Event] {
        &self.events
    }
}

/// The phases that apply a tick's validated actions, in their fixed order.
fn apply(
    cx: &mut Ctx,
    deltas: &mut Deltas,
    actions: &mut [AgentActions],
    consumption: &Consumption,
    probe: &mut dyn Probe,
) {
    tick::produce::produce(cx, actions);
    cx.state.exports.begin(cx.tick);
    probe.mark(Phase::Markets);
    probe.inspect(Phase::Markets, cx.state);
    let released = tick::auctions::auctions(cx, deltas, actions);
    probe.mark(Phase::AfterMarkets);
    probe.inspect(Phase::AfterMarkets, cx.state);
    tick::deliver::deliver(cx);
    mechanics::recycle(cx);
    tick::consume::consume(cx, actions);
    tick::upkeep::upkeep(cx, consumption, &released);
    mechanics::share_reserves(cx);
    mechanics::slow_processes(cx);
}

/// Why `actions` is not one action per agent in agent order, if it is not.
fn misordered(actions: &[AgentActions], agents: usize) -> Option<String> {
    if actions.len() != agents {
        return Some(format!("got {} actions", actions.len()));
    }
    let i = actions.iter().enumerate().position(|(i, a)| a.agent.index() != i)?;
    Some(format!("action #{i} is for {}", actions[i].agent))
}
