//! Scheduled events taking effect: restrictions imposed and lifted, stockpile policy, demand
//! shocks, outages, lane disruptions, alliance membership, subsidies and research funding.
//! Events due at tick t+1 are applied at the end of tick t (an event "at tick 26" governs tick
//! 26's auctions); those due at tick 0 before the first tick.

use crate::record::{Effect, Occurrence};
use crate::scenario::{Event, EventKind, Scenario, SubsidyKind};
use crate::world::{Disruption, Outage, StockpileState, WorldState};
use agents::{AgentSpec, Tick};

/// Applies every event of `events` from `*next` on that is due by `tick`, advancing `*next`
/// and logging what each did.
pub(crate) fn apply_due(
    s: &Scenario,
    state: &mut WorldState,
    events: &[Event],
    next: &mut usize,
    tick: Tick,
    log: &mut Vec<(Tick, Occurrence)>,
) {
    while let Some(e) = events.get(*next).filter(|e| e.tick <= tick) {
        *next += 1;
        let effect = apply(s, state, e, tick);
        log.push((tick, Occurrence::Event { name: e.name.clone(), effect }));
    }
}

fn apply(s: &Scenario, state: &mut WorldState, e: &Event, tick: Tick) -> Effect {
    match &e.kind {
        EventKind::Restrict(r) => {
            let rule = r.sized(|n, m| state.exports.last_year(n, m), s.ticks_per_year);
            state.policies.impose(&e.name, tick, rule.clone(), e.allies_exempt);
            Effect::Restricted(rule)
        }
        EventKind::Lift { target } => lift(state, target),
        EventKind::StockpileTarget { nation, commodity, target_days } => {
            let piles = &mut state.nations[nation.index()].stockpiles;
            match piles.iter_mut().find(|p| p.commodity == *commodity) {
                Some(p) => p.target_days = *target_days,
                None => {
                    let pos = piles.partition_point(|p| p.commodity < *commodity);
                    piles.insert(pos, StockpileState::new(*commodity, *target_days));
                }
            }
            Effect::StockpileTarget { nation: *nation, commodity: *commodity, days: *target_days }
        }
        EventKind::StockpileRelease { nation, commodity, quantity } => {
            let piles = &mut state.nations[nation.index()].stockpiles;
            if let Some(p) = piles.iter_mut().find(|p| p.commodity == *commodity) {
                p.ordered_release += *quantity;
            }
            Effect::StockpileRelease { nation: *nation, commodity: *commodity, quantity: *quantity }
        }
        EventKind::DemandShock { commodity, nation, bp, sector: _ } => {
            let manufacturers = demand_shock(s, state, e);
            Effect::DemandShock { commodity: *commodity, nation: *nation, bp: *bp, manufacturers }
        }
        EventKind::SiteOutage { site } => {
            state.outages.push(Outage { name: e.name.clone(), site: *site, until: None });
            Effect::SiteShut { site: *site }
        }
        EventKind::LaneDisruption { lane, extra_ticks } => {
            state.disruptions.push(Disruption { name: e.name.clone(), lane: *lane, extra_ticks: *extra_ticks });
            Effect::LaneDisrupted { lane: *lane, extra_ticks: *extra_ticks }
        }
        EventKind::JoinAlliance { nation, alliance } => {
            let members = &mut state.alliances[alliance.index()];
            if let Err(at) = members.binary_search(nation) {
                members.insert(at, *nation);
            }
            Effect::Joined { nation: *nation, alliance: *alliance }
        }
        EventKind::LeaveAlliance { nation, alliance } => {
            state.alliances[alliance.index()].retain(|n| n != nation);
            Effect::Left { nation: *nation, alliance: *alliance }
        }
        EventKind::Subsidy { nation, kind, bp } => {
            let sub = &mut state.nations[nation.index()].subsidies;
            match kind {
                SubsidyKind::Mining => sub.mining_bp = *bp,
                SubsidyKind::Processing => sub.processing_bp = *bp,
                SubsidyKind::Recycling => sub.recycling_bp = *bp,
            }
            Effect::Subsidy { nation: *nation, kind: *kind, bp: *bp }
        }
        EventKind::RdFunding { nation, commodity, per_year } => {
            let rd = &mut state.nations[nation.index()].rd_per_year;
            match rd.binary_search_by_key(commodity, |(c, _)| *c) {
                Ok(i) => rd[i].1 = *per_year,
                Err(i) => rd.insert(i, (*commodity, *per_year)),
            }
            Effect::RdFunding { nation: *nation, commodity: *commodity, per_year: *per_year }
        }
    }
}

/// Ends whatever the event named `target` started: a restriction, an outage or a disruption.
fn lift(state: &mut WorldState, target: &str) -> Effect {
    let outages = state.outages.len();
    state.outages.retain(|o| o.name != target);
    let disruptions = state.disruptions.len();
    state.disruptions.retain(|d| d.name != target);
    let found = state.policies.lift(target) || outages != state.outages.len() || disruptions != state.disruptions.len();
    Effect::Lifted { target: target.to_string(), found }
}

/// Moves the demand level of the manufacturers a demand shock covers; returns how many
/// (manufacturer, commodity) demands it moved.
fn demand_shock(s: &Scenario, state: &mut WorldState, e: &Event) -> u32 {
    let EventKind::DemandShock { commodity, nation, sector, bp } = &e.kind else { return 0 };
    let mut hit = 0;
    for (i, def) in s.agents.iter().enumerate() {
        let AgentSpec::Manufacturer { nation: n, sector: sec, .. } = &def.spec else { continue };
        if nation.is_some_and(|x| x != *n) || sector.is_some_and(|x| x != *sec) {
            continue;
        }
        for d in state.agents[i].demand.iter_mut().filter(|d| d.commodity == *commodity) {
            let level = i64::from(d.level_bp) * (10_000 + i64::from(*bp)) / 10_000;
            d.level_bp = level.clamp(1, i64::from(u32::MAX)) as u32;
            hit += 1;
        }
    }
    hit
}
