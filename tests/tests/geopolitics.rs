//! The geopolitical mechanics, each shown to do what it says on a variant of the test world
//! (`scenarios/tiny.toml`): alliances (exemptions, joint procurement, reserve sharing,
//! diplomacy), ownership and offtake, investment with lead times, subsidies and bloc financing,
//! recycling, substitution and research, lanes and disruptions, stockpile security, local
//! opposition and emissions, forecasting skill, and announced restrictions. Every comparison is
//! between two runs that differ in one lever; the engine checks its conservation invariants on
//! every tick of every run.

use agents::{CommodityId, MarketId, NationId, Quantity};
use chokepoint_tests::scenario_path;
use coordinator::{Placement, Sim};
use engine::record::{Effect, FlowKey, Occurrence, TickRecord};
use engine::scenario::{Scenario, ScenarioError, parse};
use engine::world::WorldState;
use std::sync::Arc;

fn tiny() -> String {
    std::fs::read_to_string(scenario_path("tiny.toml")).expect("tiny.toml exists")
}

/// The test world with `edits` applied (each `from` must exist) and `extra` appended.
fn text(edits: &[(&str, &str)], extra: &str) -> String {
    let mut t = tiny();
    for (from, to) in edits {
        assert!(t.contains(from), "fixture lacks {from:?}");
        t = t.replacen(from, to, 1);
    }
    t.push('\n');
    t.push_str(extra);
    t
}

fn world(edits: &[(&str, &str)], extra: &str) -> Scenario {
    parse(&text(edits, extra), "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn refuse(edits: &[(&str, &str)], extra: &str) -> ScenarioError {
    match parse(&text(edits, extra), "bad.toml") {
        Ok(_) => panic!("the scenario was accepted"),
        Err(e) => e,
    }
}

/// Runs `ticks` ticks (embedded) and returns every record and the final state.
fn run(mut s: Scenario, ticks: u32) -> (Vec<TickRecord>, WorldState) {
    s.ticks = ticks;
    let placement = Placement::single(s.agents.len());
    let mut engine = Sim::local(Arc::new(s), placement);
    let mut records = Vec::new();
    while !engine.is_finished() {
        records.push(engine.step().unwrap_or_else(|e| panic!("{e}")));
    }
    (records, engine.state().clone())
}

fn nation(s: &Scenario, code: &str) -> NationId {
    s.nation_by_code(code).expect("nation")
}

fn commodity(s: &Scenario, code: &str) -> CommodityId {
    s.commodity_by_code(code).expect("commodity")
}

/// Quantity of `market` that went from `from` to `to` over the records in `range`.
fn flow(records: &[TickRecord], range: std::ops::Range<usize>, market: MarketId, from: NationId, to: NationId) -> i64 {
    records[range].iter().filter_map(|r| r.flows.get(&FlowKey { market, from, to })).map(|(q, _)| q.0).sum()
}

fn events(records: &[TickRecord]) -> Vec<Occurrence> {
    records.iter().flat_map(|r| r.events.iter().map(|(_, e)| e.clone())).collect()
}

// ---------------------------------------------------------------------------------------------
// Bad input.

#[test]
fn cyclic_ownership_is_refused() {
    let e = refuse(
        &[("unit_cost_usd_per_kg = 8.0", "unit_cost_usd_per_kg = 8.0\nowner = \"alpha\"")],
        "[[companies]]\nid = \"alpha\"\nowner = \"beta\"\n\n[[companies]]\nid = \"beta\"\nowner = \"alpha\"\n",
    );
    assert_eq!(e.field, "companies[0].owner", "{e}");
    assert!(e.message.contains("cyclic ownership: alpha → beta → alpha"), "{e}");
    assert!(e.line > 0, "{e}");
}

#[test]
fn an_alliance_with_an_unknown_member_is_refused() {
    let e = refuse(&[], "[[alliances]]\nid = \"bloc\"\nmembers = [\"CC\", \"XX\"]\n");
    assert_eq!(e.field, "alliances[0].members[1]", "{e}");
    assert!(e.message.contains("unknown nation \"XX\""), "{e}");
}

#[test]
fn a_lane_to_nowhere_is_refused() {
    let e = refuse(
        &[("name = \"Producer\"", "name = \"Producer\"\nregion = \"africa\"")],
        "[[lanes]]\nid = \"sea\"\nfrom = \"africa\"\nto = \"atlantis\"\ntransit_ticks = 4\n",
    );
    assert_eq!(e.field, "lanes[0].to", "{e}");
    assert!(e.message.contains("lane to nowhere") && e.message.contains("atlantis"), "{e}");
}

#[test]
fn an_event_at_a_negative_tick_and_other_mistakes_are_refused() {
    let e = refuse(&[("tick = 20\nname = \"bb-dy-quota\"", "tick = -3\nname = \"bb-dy-quota\"")], "");
    assert_eq!(e.field, "events[0].tick", "{e}");
    assert!(e.message.contains("must not be negative"), "{e}");

    let cases: &[(&str, &str, &str)] = &[
        (
            "[[offtakes]]\nsite = \"no such mine\"\nbuyer = \"CC co refinery #2\"\nshare_pct = 10\n",
            "offtakes[0].site",
            "no agent is named",
        ),
        (
            "[[offtakes]]\nsite = \"AA co mine #1\"\nbuyer = \"BB dy refinery #3\"\nshare_pct = 10\n",
            "offtakes[0].buyer",
            "does not buy",
        ),
        ("[[events]]\ntick = 5\naction = \"site_outage\"\nsite = \"nowhere\"\n", "events[3]", "no mine or refinery"),
        (
            "[[events]]\ntick = 5\naction = \"join_alliance\"\nnation = \"CC\"\nalliance = \"none\"\n",
            "events[3].alliance",
            "no alliance",
        ),
        (
            "[[events]]\ntick = 5\naction = \"export_ban\"\nnation = \"AA\"\ncommodity = \"co\"\nannounce_tick = 9\n",
            "events[3].announce_tick",
            "between 0",
        ),
        (
            "[[events]]\ntick = 5\naction = \"demand_shock\"\ncommodity = \"co\"\npct = -95\n",
            "events[3].pct",
            "between -90%",
        ),
        ("[[companies]]\nid = \"alpha\"\nowner = \"nobody\"\n", "companies[0].owner", "unknown owner"),
    ];
    for (extra, field, message) in cases {
        let e = refuse(&[], extra);
        assert!(e.field.starts_with(field), "{extra}: {e}");
        assert!(e.message.contains(message), "{extra}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Alliances.

const BB_BANS_REFINED_CO: &str =
    "[[events]]\ntick = 5\nname = \"bb-ban\"\naction = \"export_ban\"\nnation = \"BB\"\ncommodity = \"co\"\n";

#[test]
fn allies_are_exempt_from_each_others_export_bans() {
    let alone = world(&[], BB_BANS_REFINED_CO);
    let allied =
        world(&[], &format!("{BB_BANS_REFINED_CO}\n[[alliances]]\nid = \"pact\"\nmembers = [\"BB\", \"CC\"]\n"));
    let not_exempt = world(
        &[],
        &format!(
            "{BB_BANS_REFINED_CO}allies_exempt = false\n\n[[alliances]]\nid = \"pact\"\nmembers = [\"BB\", \"CC\"]\n"
        ),
    );
    let co = MarketId::refined(commodity(&alone, "co"));
    let (bb, cc, dd) = (nation(&alone, "BB"), nation(&alone, "CC"), nation(&alone, "DD"));
    let (r_alone, _) = run(alone, 40);
    let (r_allied, _) = run(allied, 40);
    let (r_not, _) = run(not_exempt, 40);
    assert_eq!(flow(&r_alone, 6..40, co, bb, cc), 0, "the ban stops BB's exports to CC");
    assert!(flow(&r_allied, 6..40, co, bb, cc) > 0, "an ally still buys from BB");
    assert_eq!(flow(&r_allied, 6..40, co, bb, dd), 0, "a non-member does not");
    assert_eq!(flow(&r_not, 6..40, co, bb, cc), 0, "a ban that names allies too applies to them");
}

#[test]
fn joint_procurement_pools_the_members_bids_and_shares_the_goods() {
    let dd_reserve = (
        "name = \"Second consumer\"",
        "name = \"Second consumer\"\nstockpile_budget_musd = 100\n[[nations.stockpiles]]\ncommodity = \"dy\"\ntarget_days = 90\n",
    );
    let jointly =
        world(&[dd_reserve], "[[alliances]]\nid = \"buyers\"\nmembers = [\"CC\", \"DD\"]\njoint_procurement = true\n");
    let s = jointly.clone();
    let dy = MarketId::refined(commodity(&s, "dy"));
    let dd = nation(&s, "DD");
    let (records, state) = run(jointly, 40);
    // The pooled bid is CC's (the first member): DD's agency never bids, yet its reserve fills
    // from its share of what the pool bought, at the pool's price.
    let took = events(&records)
        .into_iter()
        .filter(|e| matches!(e, Occurrence::JointPurchase { member, quantity, .. } if *member == dd && quantity.is_positive()))
        .count();
    assert!(took > 0, "DD got a share of a joint purchase");
    assert!(state.agents[dd.index()].holding(dy).is_positive(), "DD's reserve holds it");
    let (separately, _) = run(world(&[dd_reserve], ""), 40);
    assert!(!events(&separately).iter().any(|e| matches!(e, Occurrence::JointPurchase { .. })));
}

#[test]
fn an_ally_short_of_a_commodity_draws_on_allies_reserves() {
    let ban_dy =
        "[[events]]\ntick = 3\nname = \"dy-ban\"\naction = \"export_ban\"\nnation = \"BB\"\ncommodity = \"dy\"\n";
    let dd_reserve = (
        "name = \"Second consumer\"",
        "name = \"Second consumer\"\nstockpile_budget_musd = 100\n[[nations.stockpiles]]\ncommodity = \"dy\"\ntarget_days = 0\n",
    );
    let sharing = world(
        &[dd_reserve],
        &format!(
            "{ban_dy}\n[[alliances]]\nid = \"pact\"\nmembers = [\"CC\", \"DD\"]\nreserve_sharing_price_pct = 100\n"
        ),
    );
    let alone = world(&[dd_reserve], ban_dy);
    let (shared, _) = run(sharing, 40);
    let (not_shared, _) = run(alone, 40);
    let log = events(&shared);
    let (cc, dd) = (NationId(2), NationId(3));
    let shared_cc_dd =
        |e: &Occurrence| matches!(e, Occurrence::ReserveShared { giver, taker, .. } if *giver == cc && *taker == dd);
    assert!(log.iter().any(shared_cc_dd), "{log:?}");
    assert!(!events(&not_shared).iter().any(|e| matches!(e, Occurrence::ReserveShared { .. })));
    let short = |records: &[TickRecord]| -> i64 {
        records
            .iter()
            .flat_map(|r| r.shortages.iter())
            .filter(|s| s.nation.0 == 3)
            .map(|s| (s.wanted - s.consumed).0)
            .sum()
    };
    assert!(short(&shared) < short(&not_shared), "sharing eased DD's shortage");
}

#[test]
fn nations_join_an_open_alliance_they_are_close_to_and_not_one_they_are_far_from() {
    let align = |code: &str, a: f64| (format!("id = \"{code}\"\n"), format!("id = \"{code}\"\nalignment = {a}\n"));
    let (cc_from, cc_to) = align("CC", 0.3);
    let (dd_from, dd_to) = align("DD", 0.2);
    let (bb_from, bb_to) = align("BB", -0.9);
    let dd_reserve = (
        "name = \"Second consumer\"",
        "name = \"Second consumer\"\nstockpile_budget_musd = 100\n[[nations.stockpiles]]\ncommodity = \"dy\"\ntarget_days = 30\n",
    );
    let s = world(
        &[(&cc_from, &cc_to), (&dd_from, &dd_to), (&bb_from, &bb_to), dd_reserve],
        "[[alliances]]\nid = \"msp\"\nmembers = [\"CC\"]\n",
    );
    let (records, state) = run(s, 60);
    let log = events(&records);
    let joined =
        |n: u16| move |e: &Occurrence| matches!(e, Occurrence::Diplomacy { nation, joined: true, .. } if nation.0 == n);
    assert!(log.iter().any(joined(3)), "DD joined msp: {log:?}");
    assert!(!log.iter().any(joined(1)), "BB did not: {log:?}");
    assert_eq!(state.alliances[0], vec![NationId(2), NationId(3)]);
}

// ---------------------------------------------------------------------------------------------
// Ownership and offtake.

#[test]
fn an_offtake_takes_its_share_first_unless_the_host_bans_the_route() {
    let offtake = "[[offtakes]]\nsite = \"AA co mine #1\"\nbuyer = \"CC co refinery #2\"\nshare_pct = 50\nprice_pct_of_world = 90\n";
    let ban = "[[events]]\ntick = 20\nname = \"aa-ore-ban\"\naction = \"export_ban\"\nnation = \"AA\"\ncommodity = \"co\"\nstage = \"ore\"\nto = [\"CC\"]\n";
    let with = world(&[], &format!("{offtake}{ban}"));
    let without = world(&[], ban);
    let ore = MarketId::ore(commodity(&with, "co"));
    let (aa, cc) = (nation(&with, "AA"), nation(&with, "CC"));
    let (r_with, _) = run(with, 40);
    let (r_without, _) = run(without, 40);
    let produced: i64 = r_with[1..20].iter().map(|r| r.production.get(&(aa, ore)).map_or(0, |q| q.0)).sum();
    let taken = flow(&r_with, 1..20, ore, aa, cc);
    assert!(taken * 100 >= produced * 40, "CC took {taken} of AA's {produced}");
    assert!(taken > flow(&r_without, 1..20, ore, aa, cc), "more than the spot market gave it");
    assert_eq!(flow(&r_with, 21..40, ore, aa, cc), 0, "the host's ban overrides the contract");
}

// ---------------------------------------------------------------------------------------------
// Investment.

/// DD's cobalt mine (cost $11/kg against an $18 reference) with room to grow and a quick lead.
fn investable(capex: f64, extra_nation: &str, extra: &str) -> Scenario {
    world(
        &[
            (
                "stockpile_loss_pct_per_year = 0.5",
                &format!(
                    "stockpile_loss_pct_per_year = 0.5\ncapex_usd_per_kg_year = {capex}\nmine_lead_time_years = 0.25\nramp_years = 0.1"
                ),
            ),
            (
                "capacity_t_per_year = 5000\nunit_cost_usd_per_kg = 11.0",
                "capacity_t_per_year = 5000\nunit_cost_usd_per_kg = 11.0\npotential_t_per_year = 10000",
            ),
            ("name = \"Second consumer\"", &format!("name = \"Second consumer\"\n{extra_nation}")),
        ],
        extra,
    )
}

fn dd_mine_capacity(s: Scenario, ticks: u32) -> (Quantity, Vec<TickRecord>) {
    let mine = s.agent_by_name("DD co mine #2").expect("mine");
    let (records, state) = run(s, ticks);
    (state.agents[mine.index()].capacity, records)
}

#[test]
fn a_profitable_mine_invests_and_the_capacity_arrives_after_the_lead_time() {
    let s = investable(10.0, "", "");
    let initial = s.agents[s.agent_by_name("DD co mine #2").unwrap().index()].spec.clone();
    let agents::AgentSpec::Miner { capacity_per_tick, .. } = initial else { panic!() };
    let (early, _) = dd_mine_capacity(s.clone(), 20);
    assert_eq!(early, capacity_per_tick, "nothing arrives before the lead time");
    let (late, records) = dd_mine_capacity(s, 45);
    assert!(late > capacity_per_tick, "{late} > {capacity_per_tick}");
    let decided = records.iter().flat_map(|r| r.investments.iter()).next().expect("an investment");
    assert_eq!(decided.2.0, 12 + 1 + 13, "decided at the first quarter's end, on line a lead time later");
}

#[test]
fn subsidies_and_bloc_financing_make_a_marginal_project_go_ahead() {
    let (plain, _) = dd_mine_capacity(investable(40.0, "", ""), 45);
    let (subsidised, _) = dd_mine_capacity(investable(40.0, "[nations.subsidies]\nmining_pct = 50", ""), 45);
    let (financed, _) = dd_mine_capacity(
        investable(40.0, "", "[[alliances]]\nid = \"bank\"\nmembers = [\"DD\"]\nfinancing_pct = 50\n"),
        45,
    );
    assert!(subsidised > plain, "a 50% subsidy makes it pay");
    assert!(financed > plain, "cheap bloc financing makes it pay");
}

// ---------------------------------------------------------------------------------------------
// Recycling and substitution.

#[test]
fn recycling_adds_supply_and_a_subsidy_adds_more() {
    let base = (
        "stockpile_loss_pct_per_year = 0.5",
        "stockpile_loss_pct_per_year = 0.5\nrecycling_pct = 30\nrecycling_lag_years = 0.1",
    );
    let plain = world(&[base], "");
    let subsidised = world(
        &[
            base,
            (
                "[[nations.stockpiles]]\ncommodity = \"dy\"",
                "[nations.subsidies]\nrecycling_pct = 20\n[[nations.stockpiles]]\ncommodity = \"dy\"",
            ),
        ],
        "",
    );
    let none = world(&[], "");
    let co = commodity(&plain, "co");
    let cc = nation(&plain, "CC");
    let total =
        |records: &[TickRecord]| -> i64 { records.iter().filter_map(|r| r.recycled.get(&(cc, co))).map(|q| q.0).sum() };
    let (r_plain, _) = run(plain, 30);
    let (r_sub, _) = run(subsidised, 30);
    let (r_none, _) = run(none, 30);
    assert_eq!(total(&r_none), 0);
    assert!(total(&r_plain) > 0);
    assert!(total(&r_sub) > total(&r_plain), "{} > {}", total(&r_sub), total(&r_plain));
}

#[test]
fn a_lasting_price_rise_makes_industry_thrift_and_research_speeds_it_up() {
    let shock = "[[events]]\ntick = 1\naction = \"demand_shock\"\ncommodity = \"dy\"\npct = 150\n";
    let plain = world(&[], shock);
    let funded = world(&[("name = \"Consumer\"", "name = \"Consumer\"\nrd_musd_per_year = { dy = 100 }")], shock);
    let intensity = |s: &Scenario, state: &WorldState, nation_code: &str| -> u32 {
        let n = s.nation_by_code(nation_code).unwrap();
        let dy = s.commodity_by_code("dy").unwrap();
        s.agents
            .iter()
            .enumerate()
            .filter(|(_, a)| a.spec.nation() == n && matches!(a.spec, agents::AgentSpec::Manufacturer { .. }))
            .flat_map(|(i, _)| state.agents[i].demand.iter().filter(|d| d.commodity == dy).map(|d| d.intensity_bp))
            .min()
            .unwrap()
    };
    let (_, st_plain) = run(plain.clone(), 60);
    let (_, st_funded) = run(funded.clone(), 60);
    assert!(intensity(&plain, &st_plain, "DD") < 10_000, "dy stayed dear: DD thrifted");
    assert!(intensity(&funded, &st_funded, "CC") < intensity(&plain, &st_plain, "CC"), "research sped CC up");
}

// ---------------------------------------------------------------------------------------------
// Logistics and stockpile security.

fn with_lanes(extra: &str) -> Scenario {
    world(
        &[
            ("name = \"Producer\"", "name = \"Producer\"\nregion = \"africa\""),
            ("name = \"Refiner\"", "name = \"Refiner\"\nregion = \"asia\""),
            ("name = \"Consumer\"", "name = \"Consumer\"\nregion = \"europe\""),
            ("name = \"Second consumer\"", "name = \"Second consumer\"\nregion = \"europe\""),
        ],
        &format!(
            "[[lanes]]\nid = \"cape\"\nfrom = \"africa\"\nto = \"asia\"\ntransit_ticks = 3\ncost_usd_per_kg = 0.1\n\n\
             [[lanes]]\nid = \"suez\"\nfrom = \"asia\"\nto = \"europe\"\ntransit_ticks = 4\ncost_usd_per_kg = 0.2\n{extra}"
        ),
    )
}

#[test]
fn goods_between_regions_travel_by_lane_and_a_disruption_delays_them() {
    let (records, state) = run(with_lanes(""), 20);
    assert!(records.iter().all(|r| r.freight.is_positive() || r.tick.0 == 0));
    let longest = |state: &WorldState| state.shipments.iter().map(|s| s.arrival.0 - state.tick.0).max().unwrap_or(0);
    assert!(!state.shipments.is_empty(), "goods are at sea");
    assert!(longest(&state) <= 4);
    let disrupted = with_lanes(
        "\n[[events]]\ntick = 10\nname = \"red-sea\"\naction = \"lane_disruption\"\nlane = \"suez\"\nextra_ticks = 6\n",
    );
    let (records, state) = run(disrupted, 20);
    assert!(longest(&state) > 4 && longest(&state) <= 10, "{}", longest(&state));
    assert!(
        events(&records)
            .iter()
            .any(|e| matches!(e, Occurrence::Event { effect: Effect::LaneDisrupted { extra_ticks: 6, .. }, .. }))
    );
    // Buyers count what is at sea: the run has no shortage spiral from goods in transit.
    let short: i64 = records[15..].iter().flat_map(|r| r.shortages.iter()).map(|s| (s.wanted - s.consumed).0).sum();
    let wanted: i64 = records[15..].iter().flat_map(|r| r.shortages.iter()).map(|s| s.wanted.0).sum();
    assert!(short * 10 < wanted, "short {short} of {wanted}");
}

#[test]
fn poor_storage_loses_more_and_security_costs_money() {
    let good = world(&[], "");
    let poor = world(&[("name = \"Consumer\"", "name = \"Consumer\"\nstorage = \"poor\"")], "");
    let guarded = world(&[("name = \"Consumer\"", "name = \"Consumer\"\nsecurity_musd_per_year = 52")], "");
    let cc = nation(&good, "CC");
    let lost = |records: &[TickRecord]| -> i64 {
        records.iter().flat_map(|r| r.stockpiles.iter()).filter(|p| p.nation == cc).map(|p| p.loss.0).sum()
    };
    let (r_good, s_good) = run(good, 30);
    let (r_poor, _) = run(poor, 30);
    let (_, s_guarded) = run(guarded, 30);
    assert!(lost(&r_poor) > 2 * lost(&r_good), "{} vs {}", lost(&r_poor), lost(&r_good));
    let spent = s_good.agents[cc.index()].cash - s_guarded.agents[cc.index()].cash;
    assert!(spent.0 >= 30 * 100_000_000 - 100_000_000, "security cost {spent}");
}

// ---------------------------------------------------------------------------------------------
// Environment.

#[test]
fn opposition_strikes_sensitive_hosts_and_emissions_are_reported() {
    let sensitive = |low_impact: bool| {
        world(
            &[
                ("name = \"Producer\"", "name = \"Producer\"\nenv_sensitivity = 1.0"),
                (
                    "capacity_t_per_year = 20000\nunit_cost_usd_per_kg = 8.0",
                    &format!(
                        "capacity_t_per_year = 20000\nunit_cost_usd_per_kg = 8.0\nfootprint = 100\nemissions_t_co2_per_t = 4\nlow_impact = {low_impact}"
                    ),
                ),
            ],
            "",
        )
    };
    let calm = world(&[], "");
    let (r_sensitive, _) = run(sensitive(false), 520);
    let (r_calm, _) = run(calm, 520);
    // Agent 4 is the first mine (after the four nations' agencies), AA's co mine #1.
    let opposed = |r: &[TickRecord]| {
        let at_mine = |e: &&Occurrence| matches!(e, Occurrence::PermitsDelayed { site, .. } | Occurrence::Blockade { site, .. } if site.0 == 4);
        events(r).iter().filter(at_mine).count()
    };
    // 20% a year at footprint 100 and sensitivity 1: about two episodes in ten years.
    let episodes = opposed(&r_sensitive);
    assert!((1..=8).contains(&episodes), "{episodes} episodes in ten years");
    assert_eq!(opposed(&r_calm), 0);
    // Emissions: 4 t CO2 a tonne, halved by low-impact methods.
    let (r_low, _) = run(sensitive(true), 10);
    let (r_high, _) = run(sensitive(false), 10);
    let aa = NationId(0);
    let per_kg = |r: &[TickRecord]| {
        let ore = MarketId::ore(CommodityId(0));
        let e: i64 = r.iter().map(|x| x.emissions.get(&aa).copied().unwrap_or(0)).sum();
        let p: i64 = r.iter().map(|x| x.production.get(&(aa, ore)).map_or(0, |q| q.0)).sum();
        (e, p)
    };
    let (e_high, p_high) = per_kg(&r_high);
    let (e_low, p_low) = per_kg(&r_low);
    assert!(e_high >= 4 * p_high - 1000 && e_high <= 4 * p_high + 2 * p_high / 10, "{e_high} for {p_high}");
    assert!(p_low > 0 && p_high > 0);
    assert!(
        (e_low as i128) * (p_high as i128) * 10 < (e_high as i128) * (p_low as i128) * 6,
        "low impact emits about half a kilogram: {e_low}/{p_low} vs {e_high}/{p_high}"
    );
}

// ---------------------------------------------------------------------------------------------
// Forecasting and announcements.

#[test]
fn forecasting_skill_sets_horizon_and_noise() {
    let shock = "[[events]]\ntick = 2\naction = \"demand_shock\"\ncommodity = \"dy\"\npct = 60\n";
    let sharp = world(
        &[("name = \"Consumer\"", "name = \"Consumer\"\nforecast_horizon_ticks = 26\nforecast_noise_pct = 0")],
        shock,
    );
    let naive = world(
        &[("name = \"Consumer\"", "name = \"Consumer\"\nforecast_horizon_ticks = 0\nforecast_noise_pct = 0")],
        shock,
    );
    let noisy = world(
        &[("name = \"Consumer\"", "name = \"Consumer\"\nforecast_horizon_ticks = 0\nforecast_noise_pct = 30")],
        shock,
    );
    let cc = 2usize;
    let dy = MarketId::refined(commodity(&sharp, "dy"));
    // Forecasts made at the start of tick 12, while the price is still climbing.
    let forecast_at = |s: Scenario| {
        let (_, state) = run(s, 12);
        let pile = state.nations[cc].stockpiles.iter().find(|p| p.commodity == dy.commodity).unwrap().clone();
        (pile.price_forecast, state.markets[dy.index()].last_price)
    };
    let (sharp_f, _) = forecast_at(sharp);
    let (naive_f, _) = forecast_at(naive);
    let (noisy_f, _) = forecast_at(noisy);
    assert!(sharp_f > naive_f, "a longer horizon sees the rise continue: {sharp_f} > {naive_f}");
    assert_ne!(noisy_f, naive_f, "noise moves the forecast");
}

#[test]
fn an_announced_restriction_makes_buyers_stock_up_before_it_starts() {
    let licensing = |announce: &str| {
        format!(
            "[[events]]\ntick = 25\nname = \"licensing\"\naction = \"export_licensing\"\nnation = \"BB\"\ncommodity = \"co\"\ndelay_ticks = 4\n{announce}"
        )
    };
    let announced = world(&[], &licensing("announce_tick = 18\n"));
    let surprise = world(&[], &licensing(""));
    let co = MarketId::refined(commodity(&announced, "co"));
    let (bb, cc) = (nation(&announced, "BB"), nation(&announced, "CC"));
    let (r_ann, _) = run(announced, 25);
    let (r_sur, _) = run(surprise, 25);
    let before_ann = flow(&r_ann, 18..25, co, bb, cc);
    let before_sur = flow(&r_sur, 18..25, co, bb, cc);
    assert!(before_ann * 10 > before_sur * 12, "pre-buying: {before_ann} vs {before_sur}");
}

#[test]
fn the_mechanics_keep_runs_deterministic_across_layouts() {
    let s = with_lanes(
        "[[alliances]]\nid = \"pact\"\nmembers = [\"CC\", \"DD\"]\njoint_procurement = true\nreserve_sharing_price_pct = 100\n\n\
         [[offtakes]]\nsite = \"AA co mine #1\"\nbuyer = \"CC co refinery #2\"\nshare_pct = 30\n",
    );
    let mut s = s;
    s.ticks = 40;
    let one = chokepoint_tests::digests(&s, Placement::single(s.agents.len()), 40);
    let four = chokepoint_tests::digests(&s, Placement::round_robin(s.agents.len(), 4), 40);
    assert_eq!(one, four);
}
