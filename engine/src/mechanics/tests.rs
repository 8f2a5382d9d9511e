//! Unit tests of the mechanics, each on the tiny scenario's world (plus a table or two) with a
//! hand-built tick context: no engine loop, no host.

use super::*;
use crate::market::BookOrder;
use crate::record::TickRecord;
use crate::scenario::Scenario;
use crate::tick::{Ctx, Ledger};
use crate::world::{Outage, WorldState};
use agents::rng::Streams;
use agents::{MarketId, Money, Price, Tick};

fn world(extra: &str) -> Scenario {
    let text = format!("{}\n{extra}", include_str!("../../../scenarios/tiny.toml"));
    crate::scenario::parse(&text, "tiny+.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `f` on a context over `state` at `tick`; returns the record and ledger it left.
fn with_ctx(s: &Scenario, state: &mut WorldState, tick: u32, f: impl FnOnce(&mut Ctx)) -> (TickRecord, Ledger) {
    let streams = Streams::new(s.seed);
    let derived = Derived::new(s);
    let mut record = TickRecord::default();
    let mut ledger = Ledger::new(s.market_count());
    let mut cx = Ctx {
        tick: Tick(tick),
        scenario: s,
        streams: &streams,
        derived: &derived,
        state,
        record: &mut record,
        ledger: &mut ledger,
    };
    f(&mut cx);
    (record, ledger)
}

fn co_refined() -> MarketId {
    MarketId::refined(agents::CommodityId(0))
}

#[test]
fn an_outage_takes_a_sites_capacity_to_zero() {
    let s = world("");
    let mut state = WorldState::initial(&s);
    assert!(capacity_now(&state, AgentId(4)).is_positive());
    state.outages.push(Outage { name: "fire".into(), site: AgentId(4), until: None });
    assert_eq!(capacity_now(&state, AgentId(4)), Quantity::ZERO);
}

#[test]
fn recycled_supply_goes_to_the_nations_users_by_their_demand() {
    let s = world("");
    let mut state = WorldState::initial(&s);
    // BB (nation 1) uses co in one industry (agent 11): give it an end-of-life flow and a rate.
    let i = s.commodities.len();
    state.recycling[i].end_of_life = Quantity(10_000);
    state.recycling[i].rate_bp = 2_500;
    let before = state.agents[11].holding(co_refined());
    let (record, ledger) = with_ctx(&s, &mut state, 0, recycle);
    assert_eq!(state.agents[11].holding(co_refined()), before + Quantity(2_500));
    assert_eq!(ledger.goods_created[co_refined().index()], Quantity(2_500));
    assert_eq!(record.recycled.get(&(NationId(1), agents::CommodityId(0))), Some(&Quantity(2_500)));
}

#[test]
fn a_site_invests_when_its_forecast_margin_pays_back_and_the_capacity_ramps_in() {
    let s = world("");
    let mut state = WorldState::initial(&s);
    let ore = MarketId::ore(agents::CommodityId(0));
    // A very high expected ore price: AA's co mine (agent 4) expands.
    state.agents[4].memory.set_forecast(ore, Price(100_000));
    let (record, _) = with_ctx(&s, &mut state, 12, investment::invest);
    let project = state.projects.iter().find(|p| p.site == AgentId(4)).expect("a project at the mine");
    assert_eq!(record.investments.len(), state.projects.len());
    let online = project.online;
    assert_eq!(online, Tick(12 + 1 + s.commodities[0].mine_lead_ticks));
    // Before it is on line, nothing changes; after, capacity rises a ramp step a tick.
    let capacity = state.agents[4].capacity;
    with_ctx(&s, &mut state, online.0 - 1, investment::build);
    assert_eq!(state.agents[4].capacity, capacity);
    with_ctx(&s, &mut state, online.0, investment::build);
    assert!(state.agents[4].capacity > capacity);
    // A forecast below cost does not invest.
    let mut calm = WorldState::initial(&s);
    calm.agents[4].memory.set_forecast(ore, Price(1));
    with_ctx(&s, &mut calm, 12, investment::invest);
    assert!(calm.projects.iter().all(|p| p.site != AgentId(4)));
}

#[test]
fn members_of_an_exempting_alliance_are_exempt_both_ways_and_joint_bids_pool() {
    let s = world("[[alliances]]\nid = \"buyers\"\nmembers = [\"CC\", \"DD\"]\njoint_procurement = true\n");
    let state = WorldState::initial(&s);
    assert_eq!(exempt_pairs(&s, &state), vec![(NationId(2), NationId(3)), (NationId(3), NationId(2))]);
    let bid = |agent: u32, quantity: i64, limit: i64| BookOrder {
        agent: AgentId(agent),
        nation: NationId(agent as u16),
        seq: 0,
        quantity: Quantity(quantity),
        limit: Price(limit),
        domestic_only: false,
    };
    let mut books = vec![Vec::new(); s.market_count()];
    books[co_refined().index()] = vec![bid(2, 100, 3_000), bid(3, 50, 2_800), bid(1, 10, 5_000)];
    let joint = pool_joint_bids(&s, &state, &mut books);
    assert_eq!(joint.len(), 1);
    let pooled: Vec<&BookOrder> = books[co_refined().index()].iter().filter(|b| b.agent == AgentId(2)).collect();
    assert_eq!(pooled.len(), 1);
    assert_eq!((pooled[0].quantity, pooled[0].limit), (Quantity(150), Price(2_800)), "the sum at the lowest limit");
    assert!(books[co_refined().index()].iter().any(|b| b.agent == AgentId(1)), "BB's own bid stays");
}

#[test]
fn an_announced_restriction_is_public_before_it_starts() {
    let s = world("");
    let mut state = WorldState::initial(&s);
    let mut ban = s.events.iter().find(|e| e.name == "bb-dy-quota").expect("quota").clone();
    ban.announced = Some(Tick(5));
    let events = vec![ban];
    assert!(announcements(&s, &state, &events, Tick(4)).is_empty(), "not yet announced");
    state.exports.begin(Tick(0));
    let list = announcements(&s, &state, &events, Tick(5));
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].exporter, NationId(1));
    assert_eq!(list[0].affected, vec![NationId(2), NationId(3)]);
    assert_eq!(list[0].effective, Tick(20));
}

#[test]
fn security_and_research_spending_leave_the_treasury() {
    let mut s = world("");
    s.nations[1].security_per_year = Money(52_000);
    let mut state = WorldState::initial(&s);
    let before = state.agents[1].cash;
    let (_, ledger) = with_ctx(&s, &mut state, 0, security::stockpile_security);
    assert_eq!(state.agents[1].cash, before - Money(1_000));
    assert_eq!(ledger.money_out, Money(1_000));
}

#[test]
fn a_member_far_from_the_rest_leaves() {
    let mut s = world("[[alliances]]\nid = \"odd\"\nmembers = [\"AA\", \"BB\"]\n");
    s.nations[0].alignment_milli = 1_000;
    s.nations[1].alignment_milli = -1_000;
    let mut state = WorldState::initial(&s);
    let (record, _) = with_ctx(&s, &mut state, 6, diplomacy::diplomacy);
    assert!(state.alliances[0].len() < 2, "{:?}", state.alliances[0]);
    assert!(record.events.iter().any(|(_, o)| matches!(o, crate::record::Occurrence::Diplomacy { joined: false, .. })));
}

#[test]
fn an_offtake_takes_its_share_of_the_sites_offer_at_its_formula_price() {
    let s = world(
        "[[offtakes]]\nsite = \"AA co mine #1\"\nbuyer = \"CC co refinery #2\"\nshare_pct = 50\nprice_pct_of_world = 90\n",
    );
    let mut state = WorldState::initial(&s);
    let ore = MarketId::ore(agents::CommodityId(0));
    let mut asks = vec![BookOrder {
        agent: AgentId(4),
        nation: NationId(0),
        seq: 0,
        quantity: Quantity(1_000),
        limit: Price(1_000),
        domestic_only: false,
    }];
    let mut deltas = crate::tick::settle::Deltas::default();
    let before = state.agents[9].holding(ore);
    let world_price = state.markets[ore.index()].last_price;
    let (record, _) = with_ctx(&s, &mut state, 0, |cx| {
        offtakes(cx, &mut deltas, ore, &crate::market::FreeTrade, &mut [], &mut asks);
    });
    assert_eq!(asks[0].quantity, Quantity(500), "the site's offer shrank by the contract's half");
    assert_eq!(state.agents[9].holding(ore), before + Quantity(500));
    let flow = record.flows.values().next().expect("the contract's trade");
    assert_eq!(flow.1, world_price.scale_floor(9_000, 10_000).value_of(Quantity(500)));
}
