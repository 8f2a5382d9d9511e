//! Investment: once a quarter each mine and refinery below its potential appraises an
//! expansion and invests if its forecast margin pays the capital back within the payback period
//! (longer with a bloc's cheap financing; the capital cheaper with the host's subsidy). The new
//! capacity comes on line after the commodity's lead time, linearly over its ramp-up.

use crate::scenario::Site;
use crate::tick::Ctx;
use crate::world::Project;
use agents::{AgentSpec, CommodityId, MarketId, Money, Price, Quantity, Tick};

/// Investors want their capital back within this many years of margin at the forecast price.
const PAYBACK_YEARS: i64 = 4;

/// What an appraisal needs to know about a site's business.
struct Case {
    commodity: CommodityId,
    /// Forecast margin per kilogram.
    margin: Price,
    subsidy_bp: u32,
    lead_ticks: u32,
}

pub(crate) fn invest(cx: &mut Ctx) {
    for s in 0..cx.scenario.sites.len() {
        let site = &cx.scenario.sites[s];
        let agent = site.agent;
        let busy =
            cx.state.projects.iter().any(|p| p.site == agent) || cx.state.outages.iter().any(|o| o.site == agent);
        let room = site.potential - cx.state.agents[agent.index()].capacity;
        if busy || !room.is_positive() {
            continue;
        }
        let Some(case) = case(cx, site) else { continue };
        if case.margin.0 <= 0 || !pays_back(cx, site, &case) {
            continue;
        }
        start_project(cx, site, &case, room);
    }
}

/// The site's forecast margin, subsidy and lead time; none for an agent that is not a site.
fn case(cx: &Ctx, site: &Site) -> Option<Case> {
    let state = &cx.state.agents[site.agent.index()];
    let spec = &cx.scenario.agents[site.agent.index()].spec;
    let forecast = |m: MarketId| state.memory.forecast(m).unwrap_or(cx.state.markets[m.index()].last_price);
    let subsidies = cx.state.nations[spec.nation().index()].subsidies;
    match spec {
        AgentSpec::Miner { commodity, unit_cost, .. } => Some(Case {
            commodity: *commodity,
            margin: forecast(MarketId::ore(*commodity)) - *unit_cost,
            subsidy_bp: subsidies.mining_bp,
            lead_ticks: cx.scenario.commodities[commodity.index()].mine_lead_ticks,
        }),
        AgentSpec::Refiner { commodity, unit_cost, yield_bp, .. } => {
            let ore = forecast(MarketId::ore(*commodity)).scale_floor(10_000, i64::from((*yield_bp).max(1)));
            Some(Case {
                commodity: *commodity,
                margin: forecast(MarketId::refined(*commodity)) - *unit_cost - ore,
                subsidy_bp: subsidies.processing_bp,
                lead_ticks: cx.scenario.commodities[commodity.index()].refinery_lead_ticks,
            })
        }
        AgentSpec::Nation { .. } | AgentSpec::Manufacturer { .. } => None,
    }
}

/// Whether the payback period's margin covers the capital, net of subsidy.
fn pays_back(cx: &Ctx, site: &Site, case: &Case) -> bool {
    let financing = cx
        .scenario
        .alliances
        .iter()
        .zip(&cx.state.alliances)
        .filter(|(_, members)| members.contains(&site.owner))
        .map(|(def, _)| def.financing_bp)
        .max()
        .unwrap_or(0);
    let capex = cx.scenario.commodities[case.commodity.index()].capex_per_kg_year;
    let net_capex = capex.scale_floor(i64::from(10_000 - case.subsidy_bp.min(10_000)), 10_000);
    let allowed = Money(case.margin.0.saturating_mul(PAYBACK_YEARS)).scale_floor(i64::from(10_000 + financing), 10_000);
    net_capex <= allowed
}

/// Commits to an expansion of a quarter of the site's potential (or of its capacity, if
/// larger), at most what is left of it; the owner and the host's subsidy pay.
fn start_project(cx: &mut Ctx, site: &Site, case: &Case, room: Quantity) {
    let tpy = i64::from(cx.scenario.ticks_per_year.max(1));
    let capacity = cx.state.agents[site.agent.index()].capacity;
    let step = site.potential.scale_floor(1, 4).max(capacity.scale_floor(1, 4)).max(Quantity(1)).min(room);
    // Rounding leaves some sites a few kilograms short of their potential: not a project.
    if step.0.saturating_mul(tpy) < 1_000 {
        return;
    }
    let online = Tick(cx.tick.0 + 1 + case.lead_ticks);
    let per_year = Quantity(step.0.saturating_mul(tpy));
    let capex = cx.scenario.commodities[case.commodity.index()].capex_per_kg_year;
    let cost = Money(capex.0.saturating_mul(per_year.0));
    let public = cost.scale_floor(i64::from(case.subsidy_bp.min(10_000)), 10_000);
    let host = cx.scenario.agents[site.agent.index()].spec.nation();
    cx.state.agents[site.agent.index()].cash -= cost - public;
    cx.state.agents[host.index()].cash -= public;
    cx.ledger.money_out += cost;
    let project = Project { site: site.agent, start: cx.tick, online, capacity: step, delivered: Quantity::ZERO };
    let at = cx.state.projects.partition_point(|p| p <= &project);
    cx.state.projects.insert(at, project);
    // Reported in investments.csv and the run summary, not as occurrences (there are many).
    cx.record.investments.push((site.agent, step, online));
}

/// Projects coming on line add capacity, linearly over the commodity's ramp-up.
pub(crate) fn build(cx: &mut Ctx) {
    let mut done = Vec::new();
    for (i, p) in cx.state.projects.iter_mut().enumerate() {
        if p.online.0 > cx.tick.0 {
            continue;
        }
        let commodity = match &cx.scenario.agents[p.site.index()].spec {
            AgentSpec::Miner { commodity, .. } | AgentSpec::Refiner { commodity, .. } => *commodity,
            AgentSpec::Nation { .. } | AgentSpec::Manufacturer { .. } => continue,
        };
        let ramp = i64::from(cx.scenario.commodities[commodity.index()].ramp_ticks.max(1));
        let step = Quantity((p.capacity.0 + ramp - 1) / ramp).min(p.capacity - p.delivered);
        p.delivered += step;
        cx.state.agents[p.site.index()].capacity += step;
        if p.delivered >= p.capacity {
            done.push(i);
        }
    }
    for i in done.into_iter().rev() {
        cx.state.projects.remove(i);
    }
}
