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

use crate::digest::digest_with;
use crate::market::{self, BookOrder, Zone};
use crate::policy::Policies;
use crate::record::{FlowKey, MarketRecord, Rejection, ShortageRecord, StockpileRecord, TickRecord};
use crate::scenario::{Event, EventKind, Scenario};
use crate::world::{Consumption, Shipment, WorldState, domestic_consumption};
use agents::observation::{MarketView, StockpileView};
use agents::{
    AgentActions, AgentId, AgentObservation, AgentSpec, MarketId, Money, ObservationBatch, Order, PublicView, Quantity,
    Side, Stage, Tick,
};
use std::collections::BTreeMap;
use std::sync::Arc;

#[path = "geo.rs"]
mod geo;
pub use geo::ADMIT_AFFINITY;

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
    initial_events: Vec<(Tick, String)>,
    /// The run's random streams (for the engine's own draws: forecasts, opposition, risk,
    /// diplomacy).
    streams: agents::rng::Streams,
    derived: geo::Derived,
    /// Limit orders played nations gave their agencies, by (tick, nation): inputs from the
    /// journal, added to the agency's own orders at that tick and validated like them.
    player_orders: BTreeMap<(u32, u16), Vec<Order>>,
    /// The block buffer each tick's digest gathers the state's encoding in, kept between ticks.
    digest_buffer: Vec<u8>,
    /// Scratch space for settling a market's trades, kept between markets and ticks.
    deltas: Deltas,
    /// The tick begun and not yet finished: what `begin_tick` computed that `finish_tick` needs.
    pending: Option<Pending>,
}

/// A begun tick's consumption (stockpile targets and upkeep use it).
struct Pending {
    tick: Tick,
    consumption: Consumption,
}

/// One market's settlement, gathered before it is applied: what each agent's cash and holding
/// in the market change by. Trades reach agents in matching order, which on a large world is
/// random order over a state too large for the caches; adding into these dense arrays and then
/// applying each agent's total in agent order gives the same sums (integer addition commutes,
/// and an agent gets its holding entry exactly when a trade would have created it) with far
/// fewer cache misses.
#[derive(Default)]
struct Deltas {
    cash: Vec<Money>,
    goods: Vec<Quantity>,
    /// Whether a trade moved the agent's goods (so its holding entry exists afterwards).
    moves_goods: Vec<bool>,
    seen: Vec<bool>,
    touched: Vec<u32>,
}

impl Deltas {
    fn touch(&mut self, agent: AgentId) -> usize {
        let i = agent.index();
        if i >= self.seen.len() {
            let n = (i + 1).max(self.seen.len() * 2);
            self.cash.resize(n, Money::ZERO);
            self.goods.resize(n, Quantity::ZERO);
            self.moves_goods.resize(n, false);
            self.seen.resize(n, false);
        }
        if !self.seen[i] {
            self.seen[i] = true;
            self.touched.push(agent.0);
        }
        i
    }

    fn cash(&mut self, agent: AgentId, delta: Money) {
        let i = self.touch(agent);
        self.cash[i] += delta;
    }

    fn goods(&mut self, agent: AgentId, delta: Quantity) {
        let i = self.touch(agent);
        self.goods[i] += delta;
        self.moves_goods[i] = true;
    }

    /// Applies everything gathered to `agents` (holdings in `market`) and starts afresh.
    fn apply(&mut self, agents: &mut [crate::world::AgentState], market: MarketId) {
        self.touched.sort_unstable();
        for &a in &self.touched {
            let i = a as usize;
            let agent = &mut agents[i];
            agent.cash += std::mem::take(&mut self.cash[i]);
            if std::mem::take(&mut self.moves_goods[i]) {
                agent.add(market, std::mem::take(&mut self.goods[i]));
            }
            self.seen[i] = false;
        }
        self.touched.clear();
    }
}

/// What the validated actions of a tick add up to, ready to apply.
struct Plan {
    actions: Vec<AgentActions>,
    rejections: Vec<Rejection>,
}

/// Explicit creations and destructions during a tick, for the conservation invariants.
#[derive(Default)]
struct Ledger {
    goods_created: Vec<Quantity>,
    goods_destroyed: Vec<Quantity>,
    money_in: Money,
    money_out: Money,
}

impl Engine {
    /// A fresh run of `scenario`: the initial world, with the events due at tick 0 applied
    /// (and reported with tick 0's record).
    pub fn new(scenario: Arc<Scenario>) -> Engine {
        let state = WorldState::initial(&scenario);
        let mut engine = Engine::restore(scenario, state);
        engine.next_event = 0;
        let mut log = Vec::new();
        engine.apply_events(Tick(0), &mut log);
        engine.initial_events = log;
        engine
    }

    /// An engine that continues from a saved state (a snapshot). The events due at or before
    /// the state's tick are taken as applied already.
    pub fn restore(scenario: Arc<Scenario>, state: WorldState) -> Engine {
        let events = scenario.events.clone();
        let next_event = events.partition_point(|e| e.tick <= state.tick);
        let streams = agents::rng::Streams::new(scenario.seed);
        let derived = geo::Derived::new(&scenario);
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
        self.make_forecasts(tick, &consumption);
        let public = Arc::new(self.public_view(tick));
        let incoming = self.incoming();
        let agents =
            (0..self.state.agents.len()).map(|a| self.observe(AgentId(a as u32), &consumption, &incoming)).collect();
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
        let mut plan = self.validate(tick, actions);
        edge_rejections.append(&mut plan.rejections);
        plan.rejections = edge_rejections;
        let mut record = TickRecord {
            tick,
            rejections: plan.rejections,
            events: std::mem::take(&mut self.initial_events),
            ..TickRecord::default()
        };
        let markets = self.scenario.market_count();
        let mut ledger = Ledger {
            goods_created: vec![Quantity::ZERO; markets],
            goods_destroyed: vec![Quantity::ZERO; markets],
            ..Ledger::default()
        };
        let (goods_before, money_before) = self.totals();

        for a in &plan.actions {
            self.state.agents[a.agent.index()].memory = a.memory.clone();
        }
        self.produce(&plan.actions, &mut ledger, &mut record);
        self.state.exports.begin(tick);
        probe.mark(Phase::Markets);
        let released = self.auctions(tick, &mut plan.actions, &mut record, &mut ledger);
        probe.mark(Phase::AfterMarkets);
        self.deliver(tick);
        self.recycle(tick, &mut record, &mut ledger);
        self.consume(&plan.actions, &mut record, &mut ledger);
        self.upkeep(tick, &consumption, &released, &mut record, &mut ledger);
        self.share_reserves(tick, &mut record);
        self.slow_processes(tick, &mut record, &mut ledger);
        let next = tick.next();
        if next.0 < self.scenario.ticks {
            self.apply_events(next, &mut record.events);
        }

        self.check_conservation(tick, &goods_before, money_before, &ledger)?;
        record.restrictions = self
            .state
            .policies
            .active
            .iter()
            .map(|a| (a.name.clone(), crate::record::describe_restriction(&self.scenario, &a.rule)))
            .collect();
        self.state.tick = next;
        probe.mark(Phase::Digest);
        record.digest = digest_with(&self.state, &mut self.digest_buffer);
        Ok(record)
    }

    fn public_view(&self, tick: Tick) -> PublicView {
        let markets = self
            .state
            .markets
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let market = MarketId::from_index(i);
                let spec = self.scenario.stage(market);
                MarketView {
                    market,
                    reference: spec.reference,
                    price_min: spec.price_min,
                    price_max: spec.price_max,
                    last_price: m.last_price,
                    domestic_prices: m.domestic_prices.clone(),
                    last_volume: m.last_volume,
                }
            })
            .collect();
        PublicView {
            tick,
            ticks_per_year: self.scenario.ticks_per_year,
            tick_days: self.scenario.tick_days,
            markets,
            announcements: self.announcements(tick),
        }
    }

    fn observe(
        &self,
        agent: AgentId,
        consumption: &Consumption,
        incoming: &BTreeMap<AgentId, Vec<(MarketId, Quantity)>>,
    ) -> AgentObservation {
        let state = &self.state.agents[agent.index()];
        let stockpiles = match &self.scenario.agents[agent.index()].spec {
            AgentSpec::Nation { nation } => self.state.nations[nation.index()]
                .stockpiles
                .iter()
                .map(|p| StockpileView {
                    commodity: p.commodity,
                    stock: state.holding(MarketId::refined(p.commodity)),
                    target_days: p.target_days,
                    buy_max_price_bp: p.buy_max_price_bp,
                    release_price_bp: p.release_price_bp,
                    release_on_shortage: p.release_on_shortage,
                    consumption_per_tick: consumption.get(*nation, p.commodity),
                    shortage_last_tick: p.shortage_last_tick,
                    ordered_release: p.ordered_release,
                    price_forecast: p.price_forecast,
                    demand_forecast: p.demand_forecast,
                })
                .collect(),
            _ => Vec::new(),
        };
        let intensity_bp = state.demand.iter().map(|d| (d.commodity, d.combined_bp())).collect();
        AgentObservation {
            agent,
            memory: state.memory.clone(),
            cash: state.cash,
            holdings: state.holdings.clone(),
            stockpiles,
            capacity: self.capacity_now(agent),
            incoming: incoming.get(&agent).cloned().unwrap_or_default(),
            intensity_bp,
        }
    }

    // -----------------------------------------------------------------------------------------
    // Validation: an action that does not fit the agent's books or the scenario is rejected
    // (in whole or in part) with a reason; a rejection is an outcome, not an error.

    fn validate(&self, tick: Tick, mut actions: Vec<AgentActions>) -> Plan {
        let mut rejections = Vec::new();
        for a in &mut actions {
            let spec = &self.scenario.agents[a.agent.index()].spec;
            let state = &self.state.agents[a.agent.index()];
            let mut reject = |reason: String| rejections.push(Rejection { tick, agent: a.agent, reason });
            if a.memory.forecasts.len() > self.scenario.market_count()
                || a.memory.forecasts.iter().any(|(m, _)| m.commodity.index() >= self.scenario.commodities.len())
            {
                reject("memory names markets that do not exist; kept the previous memory".into());
                a.memory = state.memory.clone();
            }
            a.produce = self.validate_production(spec, state, self.capacity_now(a.agent), a.produce, &mut reject);
            a.consume = self.validate_consumption(spec, std::mem::take(&mut a.consume), &mut reject);
            a.orders = self.validate_orders(spec, state, a.produce, std::mem::take(&mut a.orders), &mut reject);
        }
        Plan { actions, rejections }
    }

    fn validate_production(
        &self,
        spec: &AgentSpec,
        state: &crate::world::AgentState,
        capacity: Quantity,
        produce: Quantity,
        reject: &mut impl FnMut(String),
    ) -> Quantity {
        let capacity_per_tick = &capacity;
        if produce.0 < 0 {
            reject(format!("negative production ({produce})"));
            return Quantity::ZERO;
        }
        match spec {
            AgentSpec::Miner { .. } if produce > *capacity_per_tick => {
                reject(format!("production {produce} exceeds capacity {capacity_per_tick}"));
                *capacity_per_tick
            }
            AgentSpec::Refiner { commodity, yield_bp, .. } => {
                let by_ore = state.holding(MarketId::ore(*commodity)).scale_floor(i64::from(*yield_bp), 10_000);
                let allowed = (*capacity_per_tick).min(by_ore);
                if produce > allowed {
                    reject(format!("production {produce} exceeds what capacity and ore on hand allow ({allowed})"));
                    return allowed;
                }
                produce
            }
            AgentSpec::Nation { .. } | AgentSpec::Manufacturer { .. } if produce.is_positive() => {
                reject(format!("a {} cannot produce", spec.kind()));
                Quantity::ZERO
            }
            _ => produce,
        }
    }

    fn validate_consumption(
        &self,
        spec: &AgentSpec,
        consume: Vec<(agents::CommodityId, Quantity)>,
        reject: &mut impl FnMut(String),
    ) -> Vec<(agents::CommodityId, Quantity)> {
        let AgentSpec::Manufacturer { demand_per_tick, .. } = spec else {
            if !consume.is_empty() {
                reject(format!("a {} cannot consume", spec.kind()));
            }
            return Vec::new();
        };
        let mut out: Vec<(agents::CommodityId, Quantity)> = Vec::new();
        for (c, q) in consume {
            let Some((_, base)) = demand_per_tick.iter().find(|(d, _)| *d == c) else {
                reject(format!("consumption of commodity #{} it does not use", c.0));
                continue;
            };
            // A manufacturer may want more than its base demand (growth, cheap prices), but not
            // absurdly more.
            let ceiling = Quantity(base.0.saturating_mul(1_000).max(1_000_000));
            if q.0 < 0 || q > ceiling || out.iter().any(|(d, _)| *d == c) {
                reject(format!("consumption {q} of commodity #{} is negative, duplicated or absurd", c.0));
                continue;
            }
            out.push((c, q));
        }
        out.sort();
        out
    }

    fn validate_orders(
        &self,
        spec: &AgentSpec,
        state: &crate::world::AgentState,
        produce: Quantity,
        orders: Vec<Order>,
        reject: &mut impl FnMut(String),
    ) -> Vec<Order> {
        let mut kept: Vec<Order> = Vec::new();
        for o in orders {
            if o.market.commodity.index() >= self.scenario.commodities.len() {
                reject(format!("order in unknown commodity #{}", o.market.commodity.0));
                continue;
            }
            let bounds = self.scenario.stage(o.market);
            if !o.quantity.is_positive() || o.quantity.0 > MAX_ORDER_KG {
                reject(format!("order quantity {} is not between 1 kg and {MAX_ORDER_KG} kg", o.quantity));
                continue;
            }
            if o.limit < bounds.price_min || o.limit > bounds.price_max {
                reject(format!(
                    "limit {} outside the market's bounds {} .. {}",
                    o.limit, bounds.price_min, bounds.price_max
                ));
                continue;
            }
            if !may_trade(spec, o.market, o.side) {
                reject(format!(
                    "a {} may not {:?} in {} {}",
                    spec.kind(),
                    o.side,
                    self.scenario.commodity_code(o.market.commodity),
                    o.market.stage.as_str()
                ));
                continue;
            }
            if o.domestic_only && o.side == Side::Buy {
                reject("domestic_only applies to sell orders only".into());
                continue;
            }
            kept.push(o);
        }
        // Sells may not exceed what the agent holds once this tick's production is in.
        let mut sells: agents::SmallMap<MarketId, Quantity> = agents::SmallMap::new();
        for o in kept.iter().filter(|o| o.side == Side::Sell) {
            *sells.entry_or(o.market, Quantity::ZERO) += o.quantity;
        }
        let produced_market = match spec {
            AgentSpec::Miner { commodity, .. } => Some(MarketId::ore(*commodity)),
            AgentSpec::Refiner { commodity, .. } => Some(MarketId::refined(*commodity)),
            _ => None,
        };
        for &(market, total) in &sells {
            let available =
                state.holding(market) + if produced_market == Some(market) { produce } else { Quantity::ZERO };
            if total > available {
                reject(format!(
                    "sell orders for {total} exceed the {available} on hand; all its sells in that market dropped"
                ));
                kept.retain(|o| !(o.side == Side::Sell && o.market == market));
            }
        }
        // A nation's agency may not bid beyond its treasury.
        if let AgentSpec::Nation { .. } = spec {
            let committed: i128 =
                kept.iter().filter(|o| o.side == Side::Buy).map(|o| o.limit.value_of(o.quantity).0 as i128).sum();
            if committed > state.cash.0.max(0) as i128 {
                reject(format!(
                    "bids worth {} exceed the treasury of {}; all its bids dropped",
                    Money(committed.min(i64::MAX as i128) as i64),
                    state.cash
                ));
                kept.retain(|o| o.side != Side::Buy);
            }
        }
        kept
    }

    // -----------------------------------------------------------------------------------------
    // Applying a tick.

    fn produce(&mut self, actions: &[AgentActions], ledger: &mut Ledger, record: &mut TickRecord) {
        for a in actions.iter().filter(|a| a.produce.is_positive()) {
            let agent = &mut self.state.agents[a.agent.index()];
            let spec = &self.scenario.agents[a.agent.index()].spec;
            if let AgentSpec::Miner { commodity, .. } | AgentSpec::Refiner { commodity, .. } = spec {
                let stage = if matches!(spec, AgentSpec::Miner { .. }) { Stage::Ore } else { Stage::Refined };
                *record.production.entry((spec.nation(), MarketId::new(*commodity, stage))).or_default() += a.produce;
                if let Some(site) = self.scenario.site(a.agent) {
                    let kg = (i128::from(a.produce.0) * i128::from(site.emissions_g_per_kg) / 1000) as i64;
                    *record.emissions.entry(spec.nation()).or_default() += kg;
                }
            }
            match spec {
                AgentSpec::Miner { commodity, unit_cost, .. } => {
                    let m = MarketId::ore(*commodity);
                    agent.add(m, a.produce);
                    ledger.goods_created[m.index()] += a.produce;
                    let cost = unit_cost.value_of(a.produce);
                    agent.cash -= cost;
                    ledger.money_out += cost;
                }
                AgentSpec::Refiner { commodity, unit_cost, yield_bp, .. } => {
                    let ore = MarketId::ore(*commodity);
                    let refined = MarketId::refined(*commodity);
                    // Ore used, rounded up so refining never makes material from nothing.
                    let y = i128::from((*yield_bp).max(1));
                    let used = Quantity(((a.produce.0 as i128 * 10_000 + y - 1) / y) as i64).min(agent.holding(ore));
                    agent.add(ore, -used);
                    agent.add(refined, a.produce);
                    ledger.goods_destroyed[ore.index()] += used;
                    ledger.goods_created[refined.index()] += a.produce;
                    let cost = unit_cost.value_of(a.produce);
                    agent.cash -= cost;
                    ledger.money_out += cost;
                }
                _ => {}
            }
        }
    }

    /// Runs every market's auction in market order and settles the trades. Before a market
    /// clears, offtake contracts take their share of the sites' output, and the bids of allies
    /// that procure jointly are pooled. Returns, per nation agency and market, what it sold (so
    /// ordered releases can be drawn down).
    fn auctions(
        &mut self,
        tick: Tick,
        actions: &mut [AgentActions],
        record: &mut TickRecord,
        ledger: &mut Ledger,
    ) -> BTreeMap<(AgentId, MarketId), Quantity> {
        let markets = self.scenario.market_count();
        // Books sized exactly (on a large world they are the tick's largest vectors), and each
        // agent's orders dropped as they are entered: nothing reads them afterwards.
        let mut sizes = vec![(0usize, 0usize); markets];
        for o in actions.iter().flat_map(|a| &a.orders) {
            let size = &mut sizes[o.market.index()];
            if o.side == Side::Buy { size.0 += 1 } else { size.1 += 1 }
        }
        let mut bids: Vec<Vec<BookOrder>> = sizes.iter().map(|s| Vec::with_capacity(s.0)).collect();
        let mut asks: Vec<Vec<BookOrder>> = sizes.iter().map(|s| Vec::with_capacity(s.1)).collect();
        for a in actions {
            let nation = self.scenario.agents[a.agent.index()].spec.nation();
            for (seq, o) in std::mem::take(&mut a.orders).into_iter().enumerate() {
                let book = BookOrder {
                    agent: a.agent,
                    nation,
                    seq: seq as u32,
                    quantity: o.quantity,
                    limit: o.limit,
                    domestic_only: o.domestic_only,
                };
                match o.side {
                    Side::Buy => bids[o.market.index()].push(book),
                    Side::Sell => asks[o.market.index()].push(book),
                }
            }
        }
        let allies = self.exempt_pairs();
        let joint = self.pool_joint_bids(&mut bids);
        let mut sold_by_agency = BTreeMap::new();
        for i in 0..markets {
            let market = MarketId::from_index(i);
            let policies = std::mem::take(&mut self.state.policies);
            let clearing = {
                let (rules, mut quotas) = policies.market_rules(market, &allies);
                self.offtakes(tick, market, &rules, &mut quotas, &mut asks[i], record, ledger);
                market::clear(&bids[i], &asks[i], &rules, &mut quotas)
            };
            let restricted: Vec<agents::NationId> =
                restricted_exporters(&policies, market, self.scenario.nations.len(), &allies);
            self.state.policies = policies;
            let mut deltas = std::mem::take(&mut self.deltas);
            for t in &clearing.trades {
                self.settle(tick, market, t, record, ledger, &mut deltas);
                // Agencies are agents 0..nations (no look-up in the agent table per trade).
                if t.seller.index() < self.scenario.nations.len() {
                    *sold_by_agency.entry((t.seller, market)).or_insert(Quantity::ZERO) += t.quantity;
                }
            }
            deltas.apply(&mut self.state.agents, market);
            self.deltas = deltas;
            for j in joint.iter().filter(|j| j.market == market) {
                self.allocate_joint(tick, j, &clearing, record);
            }
            self.update_market(market, &clearing, &restricted, record);
        }
        sold_by_agency
    }

    fn settle(
        &mut self,
        tick: Tick,
        market: MarketId,
        t: &market::Trade,
        record: &mut TickRecord,
        ledger: &mut Ledger,
        deltas: &mut Deltas,
    ) {
        let value = t.price.value_of(t.quantity);
        let export_tariff = value.scale_floor(i64::from(t.route.export_tariff_bp), 10_000);
        let import_tariff = value.scale_floor(i64::from(t.route.import_tariff_bp), 10_000);
        // Goods crossing between regions go by lane: they arrive after its transit time (plus
        // any disruption) and the buyer pays the freight on top of the price.
        let (delay, freight) = self.lane_terms(t.seller_nation, t.buyer_nation, t.quantity);
        let delay = t.route.delay_ticks + delay;
        deltas.goods(t.seller, -t.quantity);
        deltas.cash(t.seller, value - export_tariff);
        deltas.cash(t.buyer, -(value + import_tariff + freight));
        ledger.money_out += freight;
        record.freight += freight;
        // A nation's treasury is its agency's cash; agencies are agents 0..nations.
        if export_tariff != Money::ZERO {
            deltas.cash(AgentId(u32::from(t.seller_nation.0)), export_tariff);
        }
        if import_tariff != Money::ZERO {
            deltas.cash(AgentId(u32::from(t.buyer_nation.0)), import_tariff);
        }
        if delay > 0 {
            let s = Shipment { arrival: Tick(tick.0 + delay), buyer: t.buyer, market, quantity: t.quantity };
            let at = self.state.shipments.partition_point(|x| x <= &s);
            self.state.shipments.insert(at, s);
        } else {
            deltas.goods(t.buyer, t.quantity);
        }
        if t.seller_nation != t.buyer_nation {
            self.state.exports.record(t.seller_nation, market, tick, t.quantity);
        }
        let flow = record.flows.entry(FlowKey { market, from: t.seller_nation, to: t.buyer_nation }).or_default();
        flow.0 += t.quantity;
        flow.1 += value;
        record.tariffs += export_tariff + import_tariff;
    }

    fn update_market(
        &mut self,
        market: MarketId,
        clearing: &market::Clearing,
        restricted: &[agents::NationId],
        record: &mut TickRecord,
    ) {
        let state = &mut self.state.markets[market.index()];
        if let Some(p) = clearing.zone_prices.get(&Zone::World) {
            state.last_price = *p;
        }
        let previous = std::mem::take(&mut state.domestic_prices);
        for &n in restricted {
            let price = clearing
                .zone_prices
                .get(&Zone::Domestic(n))
                .copied()
                .or_else(|| previous.iter().find(|(m, _)| *m == n).map(|(_, p)| *p))
                .unwrap_or(state.last_price);
            state.domestic_prices.push((n, price));
        }
        state.last_volume = clearing.volume();
        record.markets.push(MarketRecord {
            market,
            price: state.last_price,
            volume: state.last_volume,
            traded: clearing.zone_prices.contains_key(&Zone::World),
            domestic: state.domestic_prices.clone(),
        });
    }

    fn deliver(&mut self, tick: Tick) {
        let due = self.state.shipments.partition_point(|s| s.arrival <= tick);
        for s in self.state.shipments.drain(..due).collect::<Vec<_>>() {
            self.state.agents[s.buyer.index()].add(s.market, s.quantity);
        }
    }

    fn consume(&mut self, actions: &[AgentActions], record: &mut TickRecord, ledger: &mut Ledger) {
        record.shortages.reserve_exact(actions.iter().map(|a| a.consume.len()).sum());
        for a in actions.iter().filter(|a| !a.consume.is_empty()) {
            let AgentSpec::Manufacturer { nation, sector, .. } = &self.scenario.agents[a.agent.index()].spec else {
                continue;
            };
            let agent = &mut self.state.agents[a.agent.index()];
            for &(commodity, wanted) in &a.consume {
                let m = MarketId::refined(commodity);
                let used = wanted.min(agent.holding(m)).max(Quantity::ZERO);
                agent.add(m, -used);
                ledger.goods_destroyed[m.index()] += used;
                record.shortages.push(ShortageRecord {
                    agent: a.agent,
                    nation: *nation,
                    sector: *sector,
                    commodity,
                    wanted,
                    consumed: used,
                });
            }
        }
    }

    /// Stockpile upkeep: appropriations in, holding costs out, losses, and what the agencies
    /// need to know next tick (shortages, what remains of ordered releases).
    fn upkeep(
        &mut self,
        tick: Tick,
        consumption: &Consumption,
        released: &BTreeMap<(AgentId, MarketId), Quantity>,
        record: &mut TickRecord,
        ledger: &mut Ledger,
    ) {
        let tpy = i64::from(self.scenario.ticks_per_year);
        let mut shortage: BTreeMap<(agents::NationId, agents::CommodityId), Quantity> = BTreeMap::new();
        for s in &record.shortages {
            *shortage.entry((s.nation, s.commodity)).or_default() += s.wanted - s.consumed;
        }
        for (n, nation) in self.scenario.nations.iter().enumerate() {
            let id = agents::NationId(n as u16);
            let agency = AgentId(n as u32);
            let appropriation = nation.appropriation_per_year.scale_floor(1, tpy);
            let agent = &mut self.state.agents[n];
            agent.cash += appropriation;
            ledger.money_in += appropriation;
            for pile in &mut self.state.nations[n].stockpiles {
                let c = &self.scenario.commodities[pile.commodity.index()];
                let m = MarketId::refined(pile.commodity);
                let stock = agent.holding(m);
                let cost = Money(((c.holding_cost_per_kg_year.0 as i128 * stock.0 as i128) / tpy as i128) as i64);
                // Poor storage loses three times as much.
                let loss_bp = c.stockpile_loss_bp_per_year * if nation.poor_storage { 3 } else { 1 };
                let loss = stock.scale_floor(loss_bp, 10_000 * tpy);
                agent.cash -= cost;
                ledger.money_out += cost;
                agent.add(m, -loss);
                ledger.goods_destroyed[m.index()] += loss;
                pile.shortage_last_tick = shortage.get(&(id, pile.commodity)).copied().unwrap_or_default();
                let sold = released.get(&(agency, m)).copied().unwrap_or_default();
                pile.ordered_release = (pile.ordered_release - sold).max(Quantity::ZERO).min(agent.holding(m));
                record.stockpiles.push(StockpileRecord {
                    nation: id,
                    commodity: pile.commodity,
                    stock: agent.holding(m),
                    target_days: pile.target_days,
                    consumption_per_tick: consumption.get(id, pile.commodity),
                    holding_cost: cost,
                    loss,
                });
            }
            record.treasuries.push((id, agent.cash));
        }
        let _ = tick;
    }

    /// Applies the scheduled events of `tick`, describing each in `log`.
    fn apply_events(&mut self, tick: Tick, log: &mut Vec<(Tick, String)>) {
        while let Some(e) = self.events.get(self.next_event).filter(|e| e.tick <= tick) {
            let e = e.clone();
            self.next_event += 1;
            let tpy = self.scenario.ticks_per_year;
            let exports = &self.state.exports;
            let note = match &e.kind {
                EventKind::Lift { target } => {
                    let outages = self.state.outages.len();
                    self.state.outages.retain(|o| o.name != *target);
                    let disruptions = self.state.disruptions.len();
                    self.state.disruptions.retain(|d| d.name != *target);
                    let lifted = self.state.policies.lift(target)
                        || outages != self.state.outages.len()
                        || disruptions != self.state.disruptions.len();
                    if lifted { format!("lifted {target}") } else { format!("nothing to lift for {target}") }
                }
                EventKind::DemandShock { .. }
                | EventKind::SiteOutage { .. }
                | EventKind::LaneDisruption { .. }
                | EventKind::JoinAlliance { .. }
                | EventKind::LeaveAlliance { .. }
                | EventKind::Subsidy { .. }
                | EventKind::RdFunding { .. } => self.apply_geo_event(&e),
                EventKind::StockpileTarget { nation, commodity, target_days } => {
                    match self.state.nations[nation.index()].stockpiles.iter_mut().find(|p| p.commodity == *commodity) {
                        Some(p) => p.target_days = *target_days,
                        None => {
                            let pos = self.state.nations[nation.index()]
                                .stockpiles
                                .partition_point(|p| p.commodity < *commodity);
                            self.state.nations[nation.index()]
                                .stockpiles
                                .insert(pos, crate::world::StockpileState::new(*commodity, *target_days));
                        }
                    }
                    format!(
                        "{} stockpile target for {} set to {target_days} days",
                        self.scenario.nation_code(*nation),
                        self.scenario.commodity_code(*commodity)
                    )
                }
                EventKind::StockpileRelease { nation, commodity, quantity } => {
                    if let Some(p) =
                        self.state.nations[nation.index()].stockpiles.iter_mut().find(|p| p.commodity == *commodity)
                    {
                        p.ordered_release += *quantity;
                    }
                    format!(
                        "{} ordered release of {quantity} of {}",
                        self.scenario.nation_code(*nation),
                        self.scenario.commodity_code(*commodity)
                    )
                }
                kind => {
                    self.state.policies.impose(
                        &e.name,
                        tick,
                        kind,
                        e.allies_exempt,
                        |n, m| exports.last_year(n, m),
                        tpy,
                    );
                    let rule = &self.state.policies.active.last().expect("just imposed").rule;
                    crate::record::describe_restriction(&self.scenario, rule)
                }
            };
            log.push((tick, format!("{}: {note}", e.name)));
        }
    }

    // -----------------------------------------------------------------------------------------
    // Invariants.

    fn totals(&self) -> (Vec<Quantity>, Money) {
        let mut goods = vec![Quantity::ZERO; self.scenario.market_count()];
        let mut money = Money::ZERO;
        for a in &self.state.agents {
            money += a.cash;
            for (m, q) in &a.holdings {
                goods[m.index()] += *q;
            }
        }
        for s in &self.state.shipments {
            goods[s.market.index()] += s.quantity;
        }
        (goods, money)
    }

    fn check_conservation(
        &self,
        tick: Tick,
        goods_before: &[Quantity],
        money_before: Money,
        ledger: &Ledger,
    ) -> Result<(), EngineError> {
        let (goods_after, money_after) = self.totals();
        for (i, (before, after)) in goods_before.iter().zip(&goods_after).enumerate() {
            let expected = *before + ledger.goods_created[i] - ledger.goods_destroyed[i];
            if *after != expected {
                let m = MarketId::from_index(i);
                return Err(EngineError::Invariant {
                    name: "goods_conserved",
                    tick,
                    detail: format!(
                        "{} {}: {after} held, expected {expected}",
                        self.scenario.commodity_code(m.commodity),
                        m.stage.as_str()
                    ),
                });
            }
        }
        let expected = money_before + ledger.money_in - ledger.money_out;
        if money_after != expected {
            return Err(EngineError::Invariant {
                name: "money_conserved",
                tick,
                detail: format!("{money_after} held, expected {expected}"),
            });
        }
        if let Some(a) = self.state.agents.iter().position(|a| a.holdings.iter().any(|(_, q)| q.0 < 0)) {
            return Err(EngineError::Invariant {
                name: "holdings_non_negative",
                tick,
                detail: format!("agent#{a} holds a negative quantity"),
            });
        }
        Ok(())
    }
}

/// Why `actions` is not one action per agent in agent order, if it is not.
fn misordered(actions: &[AgentActions], agents: usize) -> Option<String> {
    if actions.len() != agents {
        return Some(format!("got {} actions", actions.len()));
    }
    let i = actions.iter().enumerate().position(|(i, a)| a.agent.index() != i)?;
    Some(format!("action #{i} is for {}", actions[i].agent))
}

/// No single order may exceed this (a trillion kilograms): anything larger is a bug or an attack.
pub const MAX_ORDER_KG: i64 = 1_000_000_000_000;

/// What each kind of agent may trade: miners sell ore, refiners buy ore and sell refined,
/// manufacturers buy refined, agencies buy and sell refined.
fn may_trade(spec: &AgentSpec, market: MarketId, side: Side) -> bool {
    match spec {
        AgentSpec::Nation { .. } => market.stage == Stage::Refined,
        AgentSpec::Miner { commodity, .. } => market == MarketId::ore(*commodity) && side == Side::Sell,
        AgentSpec::Refiner { commodity, .. } => {
            market.commodity == *commodity && (market.stage == Stage::Ore) == (side == Side::Buy)
        }
        AgentSpec::Manufacturer { demand_per_tick, .. } => {
            market.stage == Stage::Refined
                && side == Side::Buy
                && demand_per_tick.iter().any(|(c, _)| *c == market.commodity)
        }
    }
}

fn restricted_exporters(
    policies: &Policies,
    market: MarketId,
    nations: usize,
    allies: &[(agents::NationId, agents::NationId)],
) -> Vec<agents::NationId> {
    let (rules, _) = policies.market_rules(market, allies);
    if rules.is_free() {
        return Vec::new();
    }
    (0..nations).map(|n| agents::NationId(n as u16)).filter(|n| market::Rules::exports_restricted(&rules, *n)).collect()
}
