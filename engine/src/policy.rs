//! The trade restrictions in force and the events that switch them on and off. A restriction
//! is world state (it is in every digest and snapshot); [`MarketRules`] reads the restrictions of
//! one market and answers the auction's questions about routes.

use crate::market::{Route, Rules};
use crate::scenario::{EventKind, Partners, QuotaSize};
use agents::{MarketId, NationId, Quantity, Tick};
use serde::{Deserialize, Serialize};

/// A restriction in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Restriction {
    ExportBan {
        nation: NationId,
        market: MarketId,
        to: Partners,
    },
    /// At most `per_tick` may leave for the covered destinations each tick.
    ExportQuota {
        nation: NationId,
        market: MarketId,
        to: Partners,
        per_tick: Quantity,
    },
    ExportLicensing {
        nation: NationId,
        market: MarketId,
        to: Partners,
        delay_ticks: u32,
    },
    ExportTariff {
        nation: NationId,
        market: MarketId,
        to: Partners,
        bp: u32,
    },
    ImportTariff {
        nation: NationId,
        market: MarketId,
        from: Partners,
        bp: u32,
    },
}

impl Restriction {
    pub fn market(&self) -> MarketId {
        match self {
            Restriction::ExportBan { market, .. }
            | Restriction::ExportQuota { market, .. }
            | Restriction::ExportLicensing { market, .. }
            | Restriction::ExportTariff { market, .. }
            | Restriction::ImportTariff { market, .. } => *market,
        }
    }

    /// Whether this restriction limits what `nation` may export (bans, quotas and licensing do;
    /// a tariff only prices it).
    fn limits_exports_of(&self, nation: NationId) -> bool {
        match self {
            Restriction::ExportBan { nation: n, .. }
            | Restriction::ExportQuota { nation: n, .. }
            | Restriction::ExportLicensing { nation: n, .. } => *n == nation,
            _ => false,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Restriction::ExportBan { .. } => "export_ban",
            Restriction::ExportQuota { .. } => "export_quota",
            Restriction::ExportLicensing { .. } => "export_licensing",
            Restriction::ExportTariff { .. } => "export_tariff",
            Restriction::ImportTariff { .. } => "import_tariff",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveRestriction {
    /// The name of the event that imposed it; `lift` refers to it.
    pub name: String,
    pub since: Tick,
    pub rule: Restriction,
    /// Whether the exporter's allies (in an alliance that exempts members) escape it.
    #[serde(default)]
    pub allies_exempt: bool,
}

/// Every restriction in force, in the order they were imposed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policies {
    pub active: Vec<ActiveRestriction>,
}

impl Policies {
    /// Turns a restriction event into a rule in force. Quotas given as a share of last year's
    /// exports are sized now, from `exports_last_year`.
    pub fn impose(
        &mut self,
        name: &str,
        tick: Tick,
        kind: &EventKind,
        allies_exempt: bool,
        exports_last_year: impl Fn(NationId, MarketId) -> Quantity,
        ticks_per_year: u32,
    ) -> bool {
        let rule = match kind.clone() {
            EventKind::ExportBan { nation, market, to } => Restriction::ExportBan { nation, market, to },
            EventKind::ExportQuota { nation, market, to, size } => {
                let per_year = match size {
                    QuotaSize::PerYear(q) => q,
                    QuotaSize::ShareOfLastYearBp(bp) => {
                        exports_last_year(nation, market).scale_floor(i64::from(bp), 10_000)
                    }
                };
                Restriction::ExportQuota {
                    nation,
                    market,
                    to,
                    per_tick: per_year.scale_floor(1, i64::from(ticks_per_year.max(1))),
                }
            }
            EventKind::ExportLicensing { nation, market, to, delay_ticks } => {
                Restriction::ExportLicensing { nation, market, to, delay_ticks }
            }
            EventKind::ExportTariff { nation, market, to, bp } => Restriction::ExportTariff { nation, market, to, bp },
            EventKind::ImportTariff { nation, market, from, bp } => {
                Restriction::ImportTariff { nation, market, from, bp }
            }
            _ => return false,
        };
        self.active.push(ActiveRestriction { name: name.to_string(), since: tick, rule, allies_exempt });
        true
    }

    /// Ends the restriction imposed by the event `name`; false if none is in force.
    pub fn lift(&mut self, name: &str) -> bool {
        let before = self.active.len();
        self.active.retain(|a| a.name != name);
        self.active.len() != before
    }

    /// The rules of one market, with the quota table the auction draws down. `allies` lists
    /// the pairs of nations (both orders, sorted) whose alliances exempt them from each other's
    /// export restrictions.
    pub fn market_rules<'a>(
        &'a self,
        market: MarketId,
        allies: &'a [(NationId, NationId)],
    ) -> (MarketRules<'a>, Vec<Quantity>) {
        let rules: Vec<(&Restriction, bool)> =
            self.active.iter().filter(|a| a.rule.market() == market).map(|a| (&a.rule, a.allies_exempt)).collect();
        let quotas = rules
            .iter()
            .filter_map(|(r, _)| match r {
                Restriction::ExportQuota { per_tick, .. } => Some(*per_tick),
                _ => None,
            })
            .collect();
        (MarketRules { rules, allies }, quotas)
    }
}

/// The restrictions of one market.
pub struct MarketRules<'a> {
    rules: Vec<(&'a Restriction, bool)>,
    allies: &'a [(NationId, NationId)],
}

impl MarketRules<'_> {
    pub fn is_free(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Rules for MarketRules<'_> {
    fn route(&self, seller: NationId, buyer: NationId) -> Route {
        let mut route = Route { allowed: true, ..Route::default() };
        let mut quota_slot = 0;
        let allied = self.allies.binary_search(&(seller, buyer)).is_ok();
        for (r, allies_exempt) in &self.rules {
            let exempt = allied && *allies_exempt && !matches!(r, Restriction::ImportTariff { .. });
            if exempt {
                if matches!(r, Restriction::ExportQuota { .. }) {
                    quota_slot += 1;
                }
                continue;
            }
            match r {
                Restriction::ExportBan { nation, to, .. } if *nation == seller && to.includes(buyer) => {
                    route.allowed = false
                }
                Restriction::ExportQuota { nation, to, .. } => {
                    // The first quota covering the route applies; later ones on the same route
                    // are redundant until it is lifted.
                    if *nation == seller && to.includes(buyer) && route.quota.is_none() {
                        route.quota = Some(quota_slot);
                    }
                    quota_slot += 1;
                }
                Restriction::ExportLicensing { nation, to, delay_ticks, .. }
                    if *nation == seller && to.includes(buyer) =>
                {
                    route.delay_ticks = route.delay_ticks.max(*delay_ticks)
                }
                Restriction::ExportTariff { nation, to, bp, .. } if *nation == seller && to.includes(buyer) => {
                    route.export_tariff_bp = route.export_tariff_bp.saturating_add(*bp)
                }
                Restriction::ImportTariff { nation, from, bp, .. } if *nation == buyer && from.includes(seller) => {
                    route.import_tariff_bp = route.import_tariff_bp.saturating_add(*bp)
                }
                _ => {}
            }
        }
        route
    }

    fn exports_restricted(&self, nation: NationId) -> bool {
        self.rules.iter().any(|(r, _)| r.limits_exports_of(nation))
    }

    fn is_free(&self) -> bool {
        self.rules.is_empty()
    }

    fn export_rules(&self, nation: NationId) -> bool {
        self.rules.iter().any(|(r, _)| match r {
            Restriction::ExportBan { nation: n, .. }
            | Restriction::ExportQuota { nation: n, .. }
            | Restriction::ExportLicensing { nation: n, .. }
            | Restriction::ExportTariff { nation: n, .. } => *n == nation,
            Restriction::ImportTariff { .. } => false,
        })
    }

    fn import_rules(&self, nation: NationId) -> bool {
        self.rules.iter().any(|(r, _)| matches!(r, Restriction::ImportTariff { nation: n, .. } if *n == nation))
    }
}
