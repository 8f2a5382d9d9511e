//! Validation of the agents: mines, refineries (with their site facts and owners), companies
//! and manufacturers.

use super::raw::{RawFile, RawMiner, RawRefiner};
use super::validate::{Codes, Validator, round_half_away, seen_before};
use super::*;
use crate::locate::FieldPath;
use std::collections::BTreeSet;

impl Validator<'_> {
    pub(super) fn miners(
        &mut self,
        raw: &RawFile,
        tpy: u32,
        agents: &mut Vec<AgentDef>,
        companies: &[Company],
        sites: &mut Vec<Site>,
    ) {
        for (i, m) in raw.miners.iter().enumerate() {
            let p = FieldPath::root().key("miners").index(i);
            let nation = self.nation(&p.key("nation"), &m.nation);
            let commodity = self.commodity(&p.key("commodity"), &m.commodity);
            let capacity_per_tick = self.per_tick(&p.key("capacity_t_per_year"), m.capacity_t_per_year, tpy);
            let mut unit_cost = self.price(&p.key("unit_cost_usd_per_kg"), m.unit_cost_usd_per_kg);
            let inventory_cap_ticks = self.int_in(&p.key("inventory_cap_ticks"), m.inventory_cap_ticks, 1, 520) as u32;
            let extras = SiteFields {
                owner: &m.owner,
                potential: m.potential_t_per_year,
                footprint: m.footprint,
                low_impact: m.low_impact,
                emissions: m.emissions_t_co2_per_t,
                default_footprint: 50.0,
                default_emissions: 5.0,
            };
            let agent = AgentId(agents.len() as u32);
            sites.push(self.site(&p, raw, agent, nation, capacity_per_tick, tpy, &extras, companies, &mut unit_cost));
            agents.push(AgentDef {
                name: miner_name(m, i),
                spec: AgentSpec::Miner { nation, commodity, capacity_per_tick, unit_cost, inventory_cap_ticks },
            });
        }
    }

    pub(super) fn refiners(
        &mut self,
        raw: &RawFile,
        tpy: u32,
        agents: &mut Vec<AgentDef>,
        companies: &[Company],
        sites: &mut Vec<Site>,
    ) {
        for (i, r) in raw.refiners.iter().enumerate() {
            let p = FieldPath::root().key("refiners").index(i);
            let nation = self.nation(&p.key("nation"), &r.nation);
            let commodity = self.commodity(&p.key("commodity"), &r.commodity);
            let capacity_per_tick = self.per_tick(&p.key("capacity_t_per_year"), r.capacity_t_per_year, tpy);
            let mut unit_cost = self.price(&p.key("unit_cost_usd_per_kg"), r.unit_cost_usd_per_kg);
            let yield_bp = self.pct_bp(&p.key("yield_pct"), r.yield_pct, 100.0);
            if yield_bp == 0 {
                self.fail(&p.key("yield_pct"), "must be above 0");
            }
            let ore_target_ticks = self.int_in(&p.key("ore_target_ticks"), r.ore_target_ticks, 0, 520) as u32;
            let hoard_ticks = self.int_in(&p.key("hoard_ticks"), r.hoard_ticks, 0, 520) as u32;
            let extras = SiteFields {
                owner: &r.owner,
                potential: r.potential_t_per_year,
                footprint: r.footprint,
                low_impact: r.low_impact,
                emissions: r.emissions_t_co2_per_t,
                default_footprint: 40.0,
                default_emissions: 10.0,
            };
            let agent = AgentId(agents.len() as u32);
            sites.push(self.site(&p, raw, agent, nation, capacity_per_tick, tpy, &extras, companies, &mut unit_cost));
            agents.push(AgentDef {
                name: refiner_name(r, i),
                spec: AgentSpec::Refiner {
                    nation,
                    commodity,
                    capacity_per_tick,
                    unit_cost,
                    yield_bp: yield_bp.max(1),
                    ore_target_ticks,
                    hoard_ticks,
                },
            });
        }
    }

    /// A mine's or refinery's site facts. Low-impact methods cost 15% more per kilogram and halve
    /// the footprint and the emissions.
    #[allow(clippy::too_many_arguments)]
    fn site(
        &mut self,
        p: &FieldPath,
        raw: &RawFile,
        agent: AgentId,
        host: NationId,
        capacity: Quantity,
        tpy: u32,
        f: &SiteFields,
        companies: &[Company],
        unit_cost: &mut Price,
    ) -> Site {
        let (owner, owner_code) = match f.owner {
            None => (host, raw.nations.get(host.index()).map(|n| n.id.clone()).unwrap_or_default()),
            Some(code) => match self.nation_codes().find(code) {
                Some(i) => (NationId(i as u16), code.clone()),
                None => match self.company_codes().find(code) {
                    Some(i) => (companies.get(i).map(|c| c.nation).unwrap_or(host), code.clone()),
                    None => {
                        self.fail(
                            &p.key("owner"),
                            format!("unknown owner \"{code}\" (a nation or a [[companies]] id)"),
                        );
                        (host, code.clone())
                    }
                },
            },
        };
        let potential = match f.potential {
            Some(t) => self.per_tick(&p.key("potential_t_per_year"), t, tpy),
            None => capacity.scale_floor(3, 2),
        };
        if potential < capacity {
            self.fail(&p.key("potential_t_per_year"), "must be at least capacity_t_per_year");
        }
        let footprint = self.non_negative(&p.key("footprint"), f.footprint.unwrap_or(f.default_footprint), 100.0);
        let emissions =
            self.non_negative(&p.key("emissions_t_co2_per_t"), f.emissions.unwrap_or(f.default_emissions), 100_000.0);
        let (footprint, emissions) = if f.low_impact {
            *unit_cost = unit_cost.scale_ceil(115, 100);
            (footprint / 2.0, emissions / 2.0)
        } else {
            (footprint, emissions)
        };
        Site {
            agent,
            owner,
            owner_code,
            potential,
            footprint: round_half_away(footprint) as u32,
            low_impact: f.low_impact,
            emissions_g_per_kg: round_half_away(emissions * 1000.0),
        }
    }

    /// Companies, each resolved to the nation at the end of its ownership chain; a chain that
    /// comes back on itself is refused. Each company's chain is followed once: a walk stops at
    /// a company already resolved, so long chains cost time linear in the number of companies.
    pub(super) fn companies(&mut self, raw: &RawFile) -> Vec<Company> {
        self.set_company_codes(Codes::new(raw.companies.iter().map(|c| c.id.as_str())));
        let mut resolved: Vec<Option<NationId>> = vec![None; raw.companies.len()];
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (i, c) in raw.companies.iter().enumerate() {
            let p = FieldPath::root().key("companies").index(i);
            if c.id.is_empty() || self.nation_codes().find(&c.id).is_some() || seen_before(&mut seen, &c.id) {
                self.fail(&p.key("id"), format!("company id \"{}\" is empty, a nation's id, or defined twice", c.id));
            }
            let nation = self.owner_chain(&p, raw, i, &mut resolved);
            out.push(Company {
                code: c.id.clone(),
                name: if c.name.is_empty() { c.id.clone() } else { c.name.clone() },
                nation,
            });
        }
        out
    }

    /// The nation at the end of company `start`'s ownership chain, recording it for every
    /// company on the way.
    fn owner_chain(
        &mut self,
        p: &FieldPath,
        raw: &RawFile,
        start: usize,
        resolved: &mut [Option<NationId>],
    ) -> NationId {
        let mut chain = vec![start];
        let mut on_chain = BTreeSet::from([start]);
        let mut owner = raw.companies[start].owner.as_str();
        let nation = loop {
            if let Some(n) = self.nation_codes().find(owner) {
                break NationId(n as u16);
            }
            let Some(next) = self.company_codes().find(owner) else {
                self.fail(&p.key("owner"), format!("unknown owner \"{owner}\" (a nation or a [[companies]] id)"));
                break NationId(0);
            };
            if let Some(n) = resolved[next] {
                break n;
            }
            if !on_chain.insert(next) {
                let mut names: Vec<&str> = chain.iter().take(20).map(|c| raw.companies[*c].id.as_str()).collect();
                if chain.len() > 20 {
                    names.push("...");
                }
                names.push(owner);
                self.fail(&p.key("owner"), format!("cyclic ownership: {}", names.join(" → ")));
                break NationId(0);
            }
            chain.push(next);
            owner = raw.companies[next].owner.as_str();
        };
        for c in chain {
            resolved[c] = Some(nation);
        }
        nation
    }

    pub(super) fn manufacturers(&mut self, raw: &RawFile, tpy: u32, agents: &mut Vec<AgentDef>) {
        for (i, m) in raw.manufacturers.iter().enumerate() {
            let p = FieldPath::root().key("manufacturers").index(i);
            let nation = self.nation(&p.key("nation"), &m.nation);
            let sector = match Sector::parse(&m.sector) {
                Some(s) => s,
                None => {
                    let known: Vec<&str> = Sector::ALL.iter().map(|s| s.as_str()).collect();
                    self.fail(
                        &p.key("sector"),
                        format!("unknown sector \"{}\" (one of: {})", m.sector, known.join(", ")),
                    );
                    Sector::Industry
                }
            };
            if m.growth_pct_per_year.is_nan() || !(-50.0..=100.0).contains(&m.growth_pct_per_year) {
                self.fail(
                    &p.key("growth_pct_per_year"),
                    format!("must be between -50 and 100 (got {})", m.growth_pct_per_year),
                );
            }
            let elasticity = self.non_negative(&p.key("elasticity"), m.elasticity, 5.0);
            let inventory_target_ticks =
                self.int_in(&p.key("inventory_target_ticks"), m.inventory_target_ticks, 0, 520) as u32;
            if m.demand_t_per_year.is_empty() {
                self.fail(&p.key("demand_t_per_year"), "must name at least one commodity");
            }
            let mut demand_per_tick = Vec::new();
            for (code, t) in &m.demand_t_per_year {
                let dp = p.key("demand_t_per_year").key(code);
                let c = self.commodity(&dp, code);
                demand_per_tick.push((c, self.per_tick(&dp, *t, tpy)));
            }
            demand_per_tick.sort();
            let name = if m.name.is_empty() { format!("{} {} industry", m.nation, m.sector) } else { m.name.clone() };
            agents.push(AgentDef {
                name,
                spec: AgentSpec::Manufacturer {
                    nation,
                    sector,
                    demand_per_tick,
                    growth_bp_per_year: round_half_away(m.growth_pct_per_year.clamp(-50.0, 100.0) * 100.0) as i32,
                    elasticity_milli: round_half_away(elasticity * 1000.0) as u32,
                    inventory_target_ticks,
                },
            });
        }
    }
}

/// The optional site fields shared by mines and refineries.
struct SiteFields<'r> {
    owner: &'r Option<String>,
    potential: Option<f64>,
    footprint: Option<f64>,
    low_impact: bool,
    emissions: Option<f64>,
    default_footprint: f64,
    default_emissions: f64,
}

pub(super) fn miner_name(m: &RawMiner, i: usize) -> String {
    if m.name.is_empty() { format!("{} {} mine #{}", m.nation, m.commodity, i + 1) } else { m.name.clone() }
}

pub(super) fn refiner_name(r: &RawRefiner, i: usize) -> String {
    if r.name.is_empty() { format!("{} {} refinery #{}", r.nation, r.commodity, i + 1) } else { r.name.clone() }
}
