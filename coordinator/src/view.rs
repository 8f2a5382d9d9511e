//! A readable view of the world at one tick, with codes and names instead of dense ids: what
//! `chokepoint state` prints and writes as JSON. Derived from the state, never fed back.

use agents::{MarketId, NationId};
use engine::policy::ActiveRestriction;
use engine::record::describe_restriction;
use engine::scenario::Scenario;
use engine::world::WorldState;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct WorldView {
    pub scenario: String,
    pub seed: u64,
    /// The state at the start of this tick (after `tick` ticks have run).
    pub tick: u32,
    pub digest: String,
    pub markets: Vec<MarketRow>,
    pub nations: Vec<NationRow>,
    pub agents: Vec<AgentRow>,
    pub restrictions: Vec<RestrictionRow>,
    pub shipments_in_transit_kg: i64,
    /// Each alliance and its members now.
    pub alliances: Vec<(String, Vec<String>)>,
    /// Capacity under construction: site, kilograms per tick, first tick on line, delivered.
    pub projects: Vec<ProjectRow>,
    /// Sites shut (accident, fire, blockade), and lane disruptions in force.
    pub outages: Vec<(String, String)>,
    pub disruptions: Vec<(String, String, u32)>,
    /// Recycling by nation and commodity: end-of-life flow per tick and recovery rate.
    pub recycling: Vec<RecyclingRow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProjectRow {
    pub site: String,
    pub decided_tick: u32,
    pub online_tick: u32,
    pub capacity_kg_per_tick: i64,
    pub delivered_kg_per_tick: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RecyclingRow {
    pub nation: String,
    pub commodity: String,
    pub end_of_life_kg_per_tick: i64,
    pub rate_bp: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct MarketRow {
    pub commodity: String,
    pub stage: String,
    pub price_cents_per_kg: i64,
    pub volume_kg: i64,
    pub domestic_prices: Vec<(String, i64)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NationRow {
    pub nation: String,
    pub name: String,
    pub treasury_cents: i64,
    pub stockpiles: Vec<StockpileRow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StockpileRow {
    pub commodity: String,
    pub stock_kg: i64,
    pub target_days: u32,
    pub ordered_release_kg: i64,
    pub price_forecast_cents_per_kg: i64,
    pub demand_forecast_kg_per_tick: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct AgentRow {
    pub id: u32,
    pub name: String,
    pub kind: String,
    pub nation: String,
    pub cash_cents: i64,
    pub holdings: Vec<(String, i64)>,
    pub forecasts: Vec<(String, i64)>,
    /// Mines and refineries: capacity per tick now.
    pub capacity_kg_per_tick: Option<i64>,
    /// Manufacturers: demand level and intensity by commodity (basis points of the scenario's).
    pub demand_bp: Vec<(String, u32, u32)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RestrictionRow {
    pub name: String,
    pub since_tick: u32,
    pub description: String,
}

fn market_name(s: &Scenario, m: MarketId) -> String {
    format!("{} {}", s.commodity_code(m.commodity), m.stage.as_str())
}

impl WorldView {
    pub fn new(s: &Scenario, state: &WorldState, digest: &str) -> WorldView {
        let markets = state
            .markets
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let id = MarketId::from_index(i);
                MarketRow {
                    commodity: s.commodity_code(id.commodity).to_string(),
                    stage: id.stage.as_str().to_string(),
                    price_cents_per_kg: m.last_price.0,
                    volume_kg: m.last_volume.0,
                    domestic_prices: m
                        .domestic_prices
                        .iter()
                        .map(|(n, p)| (s.nation_code(*n).to_string(), p.0))
                        .collect(),
                }
            })
            .collect();
        let nations = state
            .nations
            .iter()
            .enumerate()
            .map(|(n, nation)| {
                let agency = &state.agents[n];
                NationRow {
                    nation: s.nation_code(NationId(n as u16)).to_string(),
                    name: s.nations[n].name.clone(),
                    treasury_cents: agency.cash.0,
                    stockpiles: nation
                        .stockpiles
                        .iter()
                        .map(|p| StockpileRow {
                            commodity: s.commodity_code(p.commodity).to_string(),
                            stock_kg: agency.holding(MarketId::refined(p.commodity)).0,
                            target_days: p.target_days,
                            ordered_release_kg: p.ordered_release.0,
                            price_forecast_cents_per_kg: p.price_forecast.0,
                            demand_forecast_kg_per_tick: p.demand_forecast.0,
                        })
                        .collect(),
                }
            })
            .collect();
        let agents = state
            .agents
            .iter()
            .zip(&s.agents)
            .enumerate()
            .map(|(i, (a, def))| AgentRow {
                id: i as u32,
                name: def.name.clone(),
                kind: def.spec.kind().to_string(),
                nation: s.nation_code(def.spec.nation()).to_string(),
                cash_cents: a.cash.0,
                holdings: a.holdings.iter().map(|(m, q)| (market_name(s, *m), q.0)).collect(),
                forecasts: a.memory.forecasts.iter().map(|(m, p)| (market_name(s, *m), p.0)).collect(),
                capacity_kg_per_tick: s.site(agents::AgentId(i as u32)).map(|_| a.capacity.0),
                demand_bp: a
                    .demand
                    .iter()
                    .map(|d| (s.commodity_code(d.commodity).to_string(), d.level_bp, d.intensity_bp))
                    .collect(),
            })
            .collect();
        let restrictions = state
            .policies
            .active
            .iter()
            .map(|ActiveRestriction { name, since, rule, .. }| RestrictionRow {
                name: name.clone(),
                since_tick: since.0,
                description: describe_restriction(s, rule),
            })
            .collect();
        WorldView {
            scenario: s.name.clone(),
            seed: s.seed,
            tick: state.tick.0,
            digest: digest.to_string(),
            markets,
            nations,
            agents,
            restrictions,
            shipments_in_transit_kg: state.shipments.iter().map(|x| x.quantity.0).sum(),
            alliances: s
                .alliances
                .iter()
                .zip(&state.alliances)
                .map(|(a, m)| (a.code.clone(), m.iter().map(|n| s.nation_code(*n).to_string()).collect()))
                .collect(),
            projects: state
                .projects
                .iter()
                .map(|p| ProjectRow {
                    site: s.agents[p.site.index()].name.clone(),
                    decided_tick: p.start.0,
                    online_tick: p.online.0,
                    capacity_kg_per_tick: p.capacity.0,
                    delivered_kg_per_tick: p.delivered.0,
                })
                .collect(),
            outages: state.outages.iter().map(|o| (o.name.clone(), s.agents[o.site.index()].name.clone())).collect(),
            disruptions: state
                .disruptions
                .iter()
                .map(|d| (d.name.clone(), s.lane(d.lane).code.clone(), d.extra_ticks))
                .collect(),
            recycling: state
                .recycling
                .iter()
                .enumerate()
                .filter(|(_, r)| r.rate_bp > 0)
                .map(|(i, r)| {
                    let c = s.commodities.len().max(1);
                    RecyclingRow {
                        nation: s.nation_code(NationId((i / c) as u16)).to_string(),
                        commodity: s.commodity_code(agents::CommodityId((i % c) as u16)).to_string(),
                        end_of_life_kg_per_tick: r.end_of_life.0,
                        rate_bp: r.rate_bp,
                    }
                })
                .collect(),
        }
    }

    /// A short human-readable summary.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} (seed {}) at the start of tick {}; digest {}",
            self.scenario, self.seed, self.tick, self.digest
        );
        let _ = writeln!(out, "\nMarkets (last clearing price US$/kg, volume t)");
        for m in &self.markets {
            let domestic: Vec<String> =
                m.domestic_prices.iter().map(|(n, p)| format!("{n} {}.{:02}", p / 100, p % 100)).collect();
            let domestic =
                if domestic.is_empty() { String::new() } else { format!("  domestic: {}", domestic.join(", ")) };
            let _ = writeln!(
                out,
                "  {:<6} {:<8} {:>12} {:>12}{domestic}",
                m.commodity,
                m.stage,
                format!("{}.{:02}", m.price_cents_per_kg / 100, m.price_cents_per_kg % 100),
                m.volume_kg / 1000
            );
        }
        let _ = writeln!(out, "\nNations (treasury US$, stockpiles t)");
        for n in &self.nations {
            let piles: Vec<String> =
                n.stockpiles.iter().map(|p| format!("{} {}", p.commodity, p.stock_kg / 1000)).collect();
            let _ = writeln!(out, "  {:<4} {:>18}  {}", n.nation, n.treasury_cents / 100, piles.join(", "));
        }
        if !self.restrictions.is_empty() {
            let _ = writeln!(out, "\nRestrictions in force");
            for r in &self.restrictions {
                let _ = writeln!(out, "  {} (since tick {}): {}", r.name, r.since_tick, r.description);
            }
        }
        let members: Vec<String> = self.alliances.iter().map(|(a, m)| format!("{a}: {}", m.join(", "))).collect();
        if !members.is_empty() {
            let _ = writeln!(out, "\nAlliances\n  {}", members.join("\n  "));
        }
        if !self.outages.is_empty() || !self.disruptions.is_empty() {
            let shut: Vec<&str> = self.outages.iter().map(|(_, site)| site.as_str()).collect();
            let lanes: Vec<String> = self.disruptions.iter().map(|(_, l, x)| format!("{l} +{x} ticks")).collect();
            let _ = writeln!(out, "\nShut: {}; lanes disrupted: {}", shut.join(", "), lanes.join(", "));
        }
        let _ = writeln!(
            out,
            "\n{} projects under construction ({} kg/tick still to come on line)",
            self.projects.len(),
            self.projects.iter().map(|p| p.capacity_kg_per_tick - p.delivered_kg_per_tick).sum::<i64>()
        );
        let _ = writeln!(
            out,
            "\n{} agents; {} kg in transit. Use --json FILE for everything.",
            self.agents.len(),
            self.shipments_in_transit_kg
        );
        out
    }
}
