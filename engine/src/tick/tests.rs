//! Unit tests of the tick's phases and of the engine's two calls, with no host: actions are
//! written by hand (or decided inline with `agents::decide`), on the tiny scenario's world.
//! Agents of tiny.toml: 0–3 the agencies of AA, BB, CC, DD; 4 AA's co mine, 5 DD's co mine, 6
//! BB's dy mine, 7 AA's dy mine; 8 BB's co refinery, 9 CC's co refinery, 10 BB's dy refinery;
//! 11–15 manufacturers (11 BB batteries: co).

use super::*;
use crate::engine::{Engine, EngineError, TickActions};
use crate::record::{Effect, Occurrence};
use crate::scenario::{EventKind, Scenario};
use agents::{AgentActions, AgentId, MarketId, Money, NationId, Order, Price, Quantity, Side, Tick};
use std::sync::Arc;

fn tiny() -> Scenario {
    crate::scenario::parse(include_str!("../../../scenarios/tiny.toml"), "tiny.toml").expect("tiny is valid")
}

fn engine() -> Engine {
    Engine::new(Arc::new(tiny()))
}

/// Every agent idle this tick.
fn idle(e: &Engine) -> Vec<AgentActions> {
    (0..e.scenario().agents.len()).map(|a| e.idle(AgentId(a as u32))).collect()
}

/// Runs one tick with `actions` changed by `edit`; returns the record.
fn tick_with(e: &mut Engine, edit: impl FnOnce(&mut Vec<AgentActions>)) -> crate::record::TickRecord {
    e.begin_tick().expect("a tick to run");
    let mut actions = idle(e);
    edit(&mut actions);
    e.finish_tick(TickActions { actions, rejections: Vec::new() }).expect("the tick runs")
}

fn co() -> agents::CommodityId {
    agents::CommodityId(0)
}

#[test]
fn finish_without_begin_is_refused_and_begin_is_repeatable() {
    let mut e = engine();
    let refused = e.finish_tick(TickActions::default());
    assert!(matches!(refused, Err(EngineError::NoTickBegun)), "{refused:?}");
    let a = e.begin_tick().expect("begin");
    let b = e.begin_tick().expect("begin again");
    assert_eq!(a, b, "begin_tick twice gives the same observations");
    assert_eq!(a.agents.len(), 16);
}

#[test]
fn a_tick_takes_one_action_per_agent_in_agent_order() {
    let mut e = engine();
    e.begin_tick().expect("begin");
    let mut actions = idle(&e);
    actions.swap(1, 2);
    let refused = e.finish_tick(TickActions { actions, rejections: Vec::new() });
    assert!(matches!(refused, Err(EngineError::Actions { .. })), "{refused:?}");
    // The tick is still begun: the right actions finish it.
    let actions = idle(&e);
    e.finish_tick(TickActions { actions, rejections: Vec::new() }).expect("finish");
    assert_eq!(e.state().tick, Tick(1));
}

/// Deciding every agent inline, with no host at all, is the same run as the golden digests
/// of tests/golden/tiny.digests (the coordinator's hosts decide the same way).
#[test]
fn inline_decisions_reproduce_the_golden_run() {
    let mut e = engine();
    let golden = include_str!("../../../tests/golden/tiny.digests");
    let streams = agents::rng::Streams::new(e.scenario().seed);
    for line in golden.lines().take(12) {
        let batch = e.begin_tick().expect("begin");
        let s = e.scenario_arc();
        let actions = batch
            .agents
            .iter()
            .map(|obs| agents::decide(&s.agents[obs.agent.index()].spec, obs, &batch.public, &streams))
            .collect();
        let record = e.finish_tick(TickActions { actions, rejections: Vec::new() }).expect("finish");
        assert_eq!(line, format!("{} {}", record.tick.0, record.digest));
    }
}

#[test]
fn idle_ticks_conserve_goods_and_money() {
    let mut e = engine();
    for _ in 0..5 {
        let r = tick_with(&mut e, |_| {});
        assert!(r.rejections.is_empty());
        assert_eq!(r.markets.iter().filter(|m| m.traded).count(), 0, "nobody ordered, nothing traded");
    }
    assert_eq!(e.state().tick, Tick(5));
}

#[test]
fn validation_trims_production_drops_oversized_sells_and_overdrawn_bids() {
    let mut e = engine();
    let r = tick_with(&mut e, |a| {
        a[4].produce = Quantity(1_000_000_000);
        a[4].orders.push(Order {
            market: MarketId::ore(co()),
            side: Side::Sell,
            quantity: Quantity(1_000_000_000),
            limit: Price(1_000),
            domestic_only: false,
        });
        a[2].orders.push(Order {
            market: MarketId::refined(agents::CommodityId(1)),
            side: Side::Buy,
            quantity: Quantity(1_000_000_000),
            limit: Price(1_000_000),
            domestic_only: false,
        });
        a[11].orders.push(Order {
            market: MarketId::refined(co()),
            side: Side::Buy,
            quantity: Quantity(10),
            limit: Price(1),
            domestic_only: false,
        });
    });
    let reasons: Vec<&str> = r.rejections.iter().map(|x| x.reason.as_str()).collect();
    assert!(reasons.iter().any(|x| x.contains("exceeds capacity")), "{reasons:?}");
    assert!(reasons.iter().any(|x| x.contains("all its sells in that market dropped")), "{reasons:?}");
    assert!(reasons.iter().any(|x| x.contains("exceed the treasury")), "{reasons:?}");
    assert!(reasons.iter().any(|x| x.contains("outside the market's bounds")), "{reasons:?}");
    let capacity = e.scenario().agents[4].spec.clone();
    let agents::AgentSpec::Miner { capacity_per_tick, .. } = capacity else { panic!("agent 4 is a mine") };
    let mined = r.production.get(&(NationId(0), MarketId::ore(co()))).copied().unwrap_or_default();
    assert_eq!(mined, capacity_per_tick, "production was trimmed to capacity");
}

#[test]
fn a_trade_between_a_willing_buyer_and_seller_settles() {
    let mut e = engine();
    let before_cash = e.state().agents[8].cash;
    let ore = MarketId::ore(co());
    let r = tick_with(&mut e, |a| {
        a[4].orders.push(Order {
            market: ore,
            side: Side::Sell,
            quantity: Quantity(100),
            limit: Price(1_000),
            domestic_only: false,
        });
        a[8].orders.push(Order {
            market: ore,
            side: Side::Buy,
            quantity: Quantity(100),
            limit: Price(2_000),
            domestic_only: false,
        });
    });
    let m = r.markets.iter().find(|m| m.market == ore).expect("ore market");
    assert!(m.traded);
    assert_eq!(m.volume, Quantity(100));
    assert_eq!(m.price, Price(1_500), "the uniform price halfway between the marginal bid and ask");
    assert_eq!(e.state().agents[8].cash, before_cash - Money(150_000));
    let flow = r.flows.get(&crate::record::FlowKey { market: ore, from: NationId(0), to: NationId(1) });
    assert_eq!(flow, Some(&(Quantity(100), Money(150_000))));
}

#[test]
fn a_shortfall_is_recorded_and_stock_is_used_first() {
    let mut e = engine();
    let held = e.state().agents[11].holding(MarketId::refined(co()));
    let r = tick_with(&mut e, |a| a[11].consume = vec![(co(), held + Quantity(5))]);
    let x = r.shortages.iter().find(|x| x.agent == AgentId(11)).expect("a shortage record");
    assert_eq!((x.wanted - x.consumed), Quantity(5));
    assert_eq!(e.state().agents[11].holding(MarketId::refined(co())), Quantity::ZERO);
}

#[test]
fn upkeep_pays_appropriations_and_holding_costs() {
    let mut e = engine();
    let s = e.scenario_arc();
    let bb = &s.nations[1];
    let before = e.state().agents[1].cash;
    let r = tick_with(&mut e, |_| {});
    let pile = r.stockpiles.iter().find(|p| p.nation == NationId(1)).expect("BB's co reserve");
    let appropriation = bb.appropriation_per_year.scale_floor(1, 52);
    assert!(pile.holding_cost.is_positive());
    assert_eq!(e.state().agents[1].cash, before + appropriation - pile.holding_cost);
}

#[test]
fn events_take_effect_at_their_tick_and_lift_says_whether_it_found_something() {
    let mut e = engine();
    let s = e.scenario_arc();
    let mut event = s.events.iter().find(|x| x.name == "bb-co-licensing").expect("licensing").clone();
    event.tick = Tick(2);
    event.name = "early".into();
    e.schedule(event).expect("in the future");
    let lift = crate::scenario::Event {
        tick: Tick(3),
        name: "lift-nothing".into(),
        kind: EventKind::Lift { target: "nothing-by-this-name".into() },
        note: String::new(),
        announced: None,
        allies_exempt: true,
    };
    e.schedule(lift).expect("in the future");
    let r0 = tick_with(&mut e, |_| {});
    assert!(r0.events.is_empty());
    let r1 = tick_with(&mut e, |_| {});
    assert!(
        matches!(&r1.events[..], [(Tick(2), Occurrence::Event { effect: Effect::Restricted(_), .. })]),
        "{:?}",
        r1.events
    );
    assert_eq!(e.state().policies.active.len(), 1);
    let r2 = tick_with(&mut e, |_| {});
    assert!(matches!(&r2.events[..], [(_, Occurrence::Event { effect: Effect::Lifted { found: false, .. }, .. })]));
    assert!(e.schedule(r2_event()).is_err(), "an inject for a past tick is refused");
}

fn r2_event() -> crate::scenario::Event {
    crate::scenario::Event {
        tick: Tick(1),
        name: "late".into(),
        kind: EventKind::Lift { target: "early".into() },
        note: String::new(),
        announced: None,
        allies_exempt: true,
    }
}

#[test]
fn licensing_holds_goods_as_shipments_until_their_delay_has_passed() {
    let mut e = engine();
    let s = e.scenario_arc();
    let mut event = s.events.iter().find(|x| x.name == "bb-co-licensing").expect("licensing").clone();
    event.tick = Tick(1);
    e.schedule(event).expect("in the future");
    tick_with(&mut e, |_| {});
    let refined = MarketId::refined(co());
    let held = e.state().agents[8].holding(refined);
    tick_with(&mut e, |a| {
        a[8].orders.push(Order {
            market: refined,
            side: Side::Sell,
            quantity: held.min(Quantity(50)),
            limit: Price(100),
            domestic_only: false,
        });
        a[14].orders.push(Order {
            market: refined,
            side: Side::Buy,
            quantity: Quantity(50),
            limit: Price(10_000),
            domestic_only: false,
        });
    });
    assert_eq!(e.state().shipments.len(), 1, "DD's purchase waits for its licence");
    assert_eq!(e.state().shipments[0].arrival, Tick(1 + 3));
    let before = e.state().agents[14].holding(refined);
    tick_with(&mut e, |_| {});
    tick_with(&mut e, |_| {});
    assert_eq!(e.state().shipments.len(), 1, "still waiting at tick 3");
    tick_with(&mut e, |_| {});
    assert!(e.state().shipments.is_empty(), "delivered at its arrival tick, 4");
    assert_eq!(e.state().agents[14].holding(refined), before + Quantity(50));
}

#[test]
fn the_invariants_catch_goods_made_from_nothing() {
    let s = tiny();
    let mut state = crate::world::WorldState::initial(&s);
    let before = invariants::totals(&s, &state);
    let ledger = Ledger::new(s.market_count());
    assert!(invariants::check(&s, &state, Tick(0), &before, &ledger).is_ok());
    state.agents[11].add(MarketId::refined(co()), Quantity(1));
    let err = invariants::check(&s, &state, Tick(0), &before, &ledger).expect_err("one kilogram from nothing");
    assert!(matches!(err, EngineError::Invariant { name: "goods_conserved", .. }), "{err}");
}
