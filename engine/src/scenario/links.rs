//! Validation of what links nations and sites: alliances, shipping lanes and offtake contracts.

use super::raw::RawFile;
use super::validate::{Validator, seen_before};
use super::*;
use crate::locate::FieldPath;
use std::collections::{BTreeMap, BTreeSet};

impl Validator<'_> {
    pub(super) fn alliances(&mut self, raw: &RawFile) -> Vec<AllianceDef> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, a) in raw.alliances.iter().enumerate() {
            let p = FieldPath::root().key("alliances").index(i);
            if a.id.is_empty() || seen_before(&mut seen, &a.id) {
                self.fail(&p.key("id"), format!("alliance id \"{}\" is empty or defined twice", a.id));
            }
            let mut members: Vec<NationId> =
                a.members.iter().enumerate().map(|(j, code)| self.nation(&p.key("members").index(j), code)).collect();
            members.sort();
            members.dedup();
            let reserve_sharing_price_bp =
                a.reserve_sharing_price_pct.map(|v| self.pct_bp(&p.key("reserve_sharing_price_pct"), v, 10_000.0));
            out.push(AllianceDef {
                code: a.id.clone(),
                name: if a.name.is_empty() { a.id.clone() } else { a.name.clone() },
                members,
                exempt_from_restrictions: a.exempt_from_restrictions,
                joint_procurement: a.joint_procurement,
                reserve_sharing_price_bp,
                share_intelligence: a.share_intelligence,
                financing_bp: self.pct_bp(&p.key("financing_pct"), a.financing_pct, 100.0),
                open: a.open,
            });
        }
        out
    }

    pub(super) fn lanes(&mut self, raw: &RawFile, regions: &[String]) -> Vec<Lane> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, l) in raw.lanes.iter().enumerate() {
            let p = FieldPath::root().key("lanes").index(i);
            if l.id.is_empty() || seen_before(&mut seen, &l.id) {
                self.fail(&p.key("id"), format!("lane id \"{}\" is empty or defined twice", l.id));
            }
            let end = |v: &mut Self, field: &str, name: &str| -> RegionId {
                match regions.binary_search_by(|r| r.as_str().cmp(name)) {
                    Ok(r) => RegionId(r as u16),
                    Err(_) => {
                        v.fail(
                            &p.key(field),
                            format!(
                                "a lane to nowhere: no nation is in region \"{name}\" (regions: {})",
                                regions.join(", ")
                            ),
                        );
                        RegionId(0)
                    }
                }
            };
            let from = end(self, "from", &l.from);
            let to = end(self, "to", &l.to);
            if from == to && !self.has_errors() {
                self.fail(&p.key("to"), "a lane must join two different regions");
            }
            let transit_ticks = self.int_in(&p.key("transit_ticks"), l.transit_ticks, 0, 520) as u32;
            let cost_per_kg = self.price(&p.key("cost_usd_per_kg"), l.cost_usd_per_kg);
            out.push(Lane { code: l.id.clone(), from, to, transit_ticks, cost_per_kg });
        }
        out
    }

    pub(super) fn offtakes(&mut self, raw: &RawFile, agents: &[AgentDef]) -> Vec<Offtake> {
        let mut out: Vec<Offtake> = Vec::new();
        // Agents by name (the first of a name wins), and each site's offtake shares so far.
        let mut by_name: BTreeMap<&str, AgentId> = BTreeMap::new();
        if !raw.offtakes.is_empty() {
            for (i, a) in agents.iter().enumerate() {
                by_name.entry(a.name.as_str()).or_insert(AgentId(i as u32));
            }
        }
        let find = |name: &str| by_name.get(name).copied();
        let mut shares: BTreeMap<AgentId, u32> = BTreeMap::new();
        for (i, o) in raw.offtakes.iter().enumerate() {
            let p = FieldPath::root().key("offtakes").index(i);
            let site = find(&o.site);
            let buyer = find(&o.buyer);
            let (Some(site), Some(buyer)) = (site, buyer) else {
                let (field, name) = if site.is_none() { ("site", &o.site) } else { ("buyer", &o.buyer) };
                self.fail(&p.key(field), format!("no agent is named \"{name}\""));
                continue;
            };
            let (site_spec, buyer_spec) = (&agents[site.index()].spec, &agents[buyer.index()].spec);
            let product = match site_spec {
                AgentSpec::Miner { commodity, .. } => MarketId::ore(*commodity),
                AgentSpec::Refiner { commodity, .. } => MarketId::refined(*commodity),
                AgentSpec::Nation { .. } | AgentSpec::Manufacturer { .. } => {
                    self.fail(&p.key("site"), format!("\"{}\" is not a mine or refinery", o.site));
                    continue;
                }
            };
            let buyer_ok = match buyer_spec {
                AgentSpec::Refiner { commodity, .. } => product == MarketId::ore(*commodity),
                AgentSpec::Nation { .. } => product.stage == Stage::Refined,
                AgentSpec::Manufacturer { demand_per_tick, .. } => {
                    product.stage == Stage::Refined && demand_per_tick.iter().any(|(c, _)| *c == product.commodity)
                }
                AgentSpec::Miner { .. } => false,
            };
            if !buyer_ok {
                self.fail(&p.key("buyer"), format!("\"{}\" does not buy what \"{}\" produces", o.buyer, o.site));
                continue;
            }
            let share_bp = self.pct_bp(&p.key("share_pct"), o.share_pct, 100.0);
            let total = shares.entry(site).or_default();
            *total += share_bp;
            if *total > 10_000 {
                self.fail(&p.key("share_pct"), format!("offtakes of \"{}\" add up to more than 100%", o.site));
            }
            let price_bp = self.pct_bp(&p.key("price_pct_of_world"), o.price_pct_of_world, 1000.0);
            out.push(Offtake { site, buyer, share_bp, price_bp });
        }
        out
    }
}
