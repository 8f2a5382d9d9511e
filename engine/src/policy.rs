//! Trade restrictions: the one [`Restriction`] type that an event imposes and that is then in
//! force, and [`MarketRules`], which reads the restrictions of one market and answers the
//! auction's questions about routes. A restriction in force is world state (it is in every
//! digest and snapshot).
//!
//! An event's restriction states its quota as written ([`QuotaSize`]: a share of last year's
//! exports or a tonnage); once imposed, the quota is a quantity per tick ([`Rule`]). Everything
//! else is the same value before and after.

use crate::market::{Route, Rules};
use agents::{MarketId, NationId, Quantity, Tick};
use serde::{Deserialize, Serialize};

/// Destinations or origins a restriction applies to: every other nation, or a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Partners {
    All,
    Only(Vec<NationId>),
}

impl Partners {
    pub fn includes(&self, nation: NationId) -> bool {
        match self {
            Partners::All => true,
            Partners::Only(list) => list.binary_search(&nation).is_ok(),
        }
    }
}

/// An export quota as written in an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuotaSize {
    /// A share of the exporter's exports of this market over the last year (basis points).
    ShareOfLastYearBp(u32),
    /// A fixed yearly amount.
    PerYear(Quantity),
}

/// A trade restriction by `nation` on `market`. `Q` is how an export quota is sized: as written
/// ([`QuotaSize`]) in an event, per tick ([`Quantity`]) once in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Restriction<Q> {
    ExportBan {
        nation: NationId,
        market: MarketId,
        to: Partners,
    },
    /// At most `size` may leave for the covered destinations (per tick once in force).
    ExportQuota {
        nation: NationId,
        market: MarketId,
        to: Partners,
        size: Q,
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

/// A restriction in force: its quota, if any, per tick.
pub type Rule = Restriction<Quantity>;

/// The three kinds of restriction that limit what may leave (a tariff only prices it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Ban,
    Quota,
    Licensing,
}

impl<Q> Restriction<Q> {
    /// The nation that imposes it (the exporter, or the importer for an import tariff).
    pub fn nation(&self) -> NationId {
        match self {
            Restriction::ExportBan { nation, .. }
            | Restriction::ExportQuota { nation, .. }
            | Restriction::ExportLicensing { nation, .. }
            | Restriction::ExportTariff { nation, .. }
            | Restriction::ImportTariff { nation, .. } => *nation,
        }
    }

    pub fn market(&self) -> MarketId {
        match self {
            Restriction::ExportBan { market, .. }
            | Restriction::ExportQuota { market, .. }
            | Restriction::ExportLicensing { market, .. }
            | Restriction::ExportTariff { market, .. }
            | Restriction::ImportTariff { market, .. } => *market,
        }
    }

    /// For a restriction that limits exports (a ban, a quota, licensing): what kind, the
    /// exporter, and the destinations it covers.
    pub fn export_limit(&self) -> Option<(Limit, NationId, &Partners)> {
        match self {
            Restriction::ExportBan { nation, to, .. } => Some((Limit::Ban, *nation, to)),
            Restriction::ExportQuota { nation, to, .. } => Some((Limit::Quota, *nation, to)),
            Restriction::ExportLicensing { nation, to, .. } => Some((Limit::Licensing, *nation, to)),
            Restriction::ExportTariff { .. } | Restriction::ImportTariff { .. } => None,
        }
    }

    /// Whether this restriction limits what `nation` may export.
    fn limits_exports_of(&self, nation: NationId) -> bool {
        self.export_limit().is_some_and(|(_, n, _)| n == nation)
    }

    /// Whether some route out of `nation` is touched by it (everything but an import tariff).
    fn rules_exports_of(&self, nation: NationId) -> bool {
        match self {
            Restriction::ImportTariff { .. } => false,
            other => other.nation() == nation,
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

impl Restriction<QuotaSize> {
    /// The rule in force when this is imposed: a quota given as a share of last year's exports
    /// is sized now, from `exports_last_year`, and spread over the ticks of a year.
    pub fn sized(&self, exports_last_year: impl Fn(NationId, MarketId) -> Quantity, ticks_per_year: u32) -> Rule {
        match self.clone() {
            Restriction::ExportBan { nation, market, to } => Restriction::ExportBan { nation, market, to },
            Restriction::ExportQuota { nation, market, to, size } => {
                let per_year = match size {
                    QuotaSize::PerYear(q) => q,
                    QuotaSize::ShareOfLastYearBp(bp) => {
                        exports_last_year(nation, market).scale_floor(i64::from(bp), 10_000)
                    }
                };
                let size = per_year.scale_floor(1, i64::from(ticks_per_year.max(1)));
                Restriction::ExportQuota { nation, market, to, size }
            }
            Restriction::ExportLicensing { nation, market, to, delay_ticks } => {
                Restriction::ExportLicensing { nation, market, to, delay_ticks }
            }
            Restriction::ExportTariff { nation, market, to, bp } => {
                Restriction::ExportTariff { nation, market, to, bp }
            }
            Restriction::ImportTariff { nation, market, from, bp } => {
                Restriction::ImportTariff { nation, market, from, bp }
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveRestriction {
    /// The name of the event that imposed it; `lift` refers to it.
    pub name: String,
    pub since: Tick,
    pub rule: Rule,
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
    /// Puts `rule` in force under the event name `name`.
    pub fn impose(&mut self, name: &str, tick: Tick, rule: Rule, allies_exempt: bool) {
        self.active.push(ActiveRestriction { name: name.to_string(), since: tick, rule, allies_exempt });
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
        let rules: Vec<(&Rule, bool)> =
            self.active.iter().filter(|a| a.rule.market() == market).map(|a| (&a.rule, a.allies_exempt)).collect();
        let quotas = rules
            .iter()
            .filter_map(|(r, _)| match r {
                Restriction::ExportQuota { size, .. } => Some(*size),
                Restriction::ExportBan { .. }
                | Restriction::ExportLicensing { .. }
                | Restriction::ExportTariff { .. }
                | Restriction::ImportTariff { .. } => None,
            })
            .collect();
        (MarketRules { rules, allies }, quotas)
    }
}

/// The restrictions of one market.
pub struct MarketRules<'a> {
    rules: Vec<(&'a Rule, bool)>,
    allies: &'a [(NationId, NationId)],
}

impl MarketRules<'_> {
    pub fn is_free(&self) -> bool {
        self.rules.is_empty()
    }

    /// The nations among the first `nations` whose exports of this market are restricted
    /// (each has a domestic price zone of its own).
    pub fn restricted_exporters(&self, nations: usize) -> Vec<NationId> {
        if self.is_free() {
            return Vec::new();
        }
        (0..nations).map(|n| NationId(n as u16)).filter(|n| self.exports_restricted(*n)).collect()
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
                Restriction::ExportBan { nation, to, .. } => {
                    if *nation == seller && to.includes(buyer) {
                        route.allowed = false
                    }
                }
                Restriction::ExportQuota { nation, to, .. } => {
                    // The first quota covering the route applies; later ones on the same route
                    // are redundant until it is lifted.
                    if *nation == seller && to.includes(buyer) && route.quota.is_none() {
                        route.quota = Some(quota_slot);
                    }
                    quota_slot += 1;
                }
                Restriction::ExportLicensing { nation, to, delay_ticks, .. } => {
                    if *nation == seller && to.includes(buyer) {
                        route.delay_ticks = route.delay_ticks.max(*delay_ticks)
                    }
                }
                Restriction::ExportTariff { nation, to, bp, .. } => {
                    if *nation == seller && to.includes(buyer) {
                        route.export_tariff_bp = route.export_tariff_bp.saturating_add(*bp)
                    }
                }
                Restriction::ImportTariff { nation, from, bp, .. } => {
                    if *nation == buyer && from.includes(seller) {
                        route.import_tariff_bp = route.import_tariff_bp.saturating_add(*bp)
                    }
                }
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
        self.rules.iter().any(|(r, _)| r.rules_exports_of(nation))
    }

    fn import_rules(&self, nation: NationId) -> bool {
        self.rules.iter().any(|(r, _)| matches!(r, Restriction::ImportTariff { nation: n, .. } if *n == nation))
    }
}
