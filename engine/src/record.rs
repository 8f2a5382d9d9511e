//! What one tick did, for outputs and summaries: prices, flows between nations, shortages,
//! stockpiles, rejected actions and what happened ([`Occurrence`]). Records are derived from the
//! tick, never fed back into it, so writing or skipping them cannot change a run. They hold
//! values, not words: `describe` turns an occurrence or a restriction into the text the outputs
//! show, at the edge.

use crate::digest::{Digest, Part};
use crate::ids::{AllianceId, LaneId};
use crate::policy::{Partners, Restriction, Rule};
use crate::scenario::{Scenario, SubsidyKind};
use agents::{AgentId, CommodityId, MarketId, Money, NationId, Price, Quantity, Sector, Tick};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub struct TickRecord {
    pub tick: Tick,
    /// The digest of the state after this tick.
    pub digest: Digest,
    /// The digests of its parts, when the engine was asked for them (`Engine::record_parts`).
    pub parts: Vec<Part>,
    /// In market order.
    pub markets: Vec<MarketRecord>,
    /// Output of mines (ore) and refineries (refined) by nation and market.
    pub production: BTreeMap<(NationId, MarketId), Quantity>,
    /// Traded quantity and value by market and route.
    pub flows: BTreeMap<FlowKey, (Quantity, Money)>,
    pub shortages: Vec<ShortageRecord>,
    pub stockpiles: Vec<StockpileRecord>,
    pub treasuries: Vec<(NationId, Money)>,
    pub tariffs: Money,
    pub rejections: Vec<Rejection>,
    /// The restrictions in force after this tick, by the name of the event that imposed them.
    pub restrictions: Vec<(String, Rule)>,
    /// What happened beyond the auctions, each with its tick: events applied (with the tick
    /// they take effect at: events due at tick t+1 are applied at the end of tick t, those due
    /// at 0 before the first tick), joint purchases, shared reserves, losses, opposition,
    /// diplomacy.
    pub events: Vec<(Tick, Occurrence)>,
    /// CO2 emitted by mines and refineries, by host nation (kilograms).
    pub emissions: BTreeMap<NationId, i64>,
    /// Freight paid on shipping lanes.
    pub freight: Money,
    /// New capacity decided this tick: (site, kilograms per tick, first tick online).
    pub investments: Vec<(AgentId, Quantity, Tick)>,
    /// Recycled supply delivered, by nation and commodity.
    pub recycled: BTreeMap<(NationId, CommodityId), Quantity>,
}

#[derive(Clone, Debug)]
pub struct MarketRecord {
    pub market: MarketId,
    /// The world price (carried forward from the last trade when nothing traded).
    pub price: Price,
    pub volume: Quantity,
    pub traded: bool,
    /// Domestic prices of restricted exporters.
    pub domestic: Vec<(NationId, Price)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    pub market: MarketId,
    pub from: NationId,
    pub to: NationId,
}

#[derive(Clone, Debug)]
pub struct ShortageRecord {
    pub agent: AgentId,
    pub nation: NationId,
    pub sector: Sector,
    pub commodity: CommodityId,
    pub wanted: Quantity,
    pub consumed: Quantity,
}

#[derive(Clone, Debug)]
pub struct StockpileRecord {
    pub nation: NationId,
    pub commodity: CommodityId,
    pub stock: Quantity,
    pub target_days: u32,
    pub consumption_per_tick: Quantity,
    pub holding_cost: Money,
    pub loss: Quantity,
}

/// An action, or part of one, that the coordinator refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub tick: Tick,
    pub agent: AgentId,
    pub reason: String,
}

fn partners(s: &Scenario, p: &Partners) -> String {
    match p {
        Partners::All => "all".into(),
        Partners::Only(list) => list.iter().map(|n| s.nation_code(*n)).collect::<Vec<_>>().join("+"),
    }
}

/// A one-line description of a restriction in force, for logs and outputs.
pub fn describe_restriction(s: &Scenario, r: &Rule) -> String {
    let m = |market: &MarketId| format!("{} {}", s.commodity_code(market.commodity), market.stage.as_str());
    match r {
        Restriction::ExportBan { nation, market, to } => {
            format!("{} bans exports of {} to {}", s.nation_code(*nation), m(market), partners(s, to))
        }
        Restriction::ExportQuota { nation, market, to, size } => {
            format!(
                "{} caps exports of {} to {} at {} per tick",
                s.nation_code(*nation),
                m(market),
                partners(s, to),
                size
            )
        }
        Restriction::ExportLicensing { nation, market, to, delay_ticks } => {
            format!(
                "{} licenses exports of {} to {} ({delay_ticks} ticks' delay)",
                s.nation_code(*nation),
                m(market),
                partners(s, to)
            )
        }
        Restriction::ExportTariff { nation, market, to, bp } => {
            format!(
                "{} taxes exports of {} to {} at {}.{:02}%",
                s.nation_code(*nation),
                m(market),
                partners(s, to),
                bp / 100,
                bp % 100
            )
        }
        Restriction::ImportTariff { nation, market, from, bp } => {
            format!(
                "{} taxes imports of {} from {} at {}.{:02}%",
                s.nation_code(*nation),
                m(market),
                partners(s, from),
                bp / 100,
                bp % 100
            )
        }
    }
}

/// Something that happened in a tick beyond the auctions, as a value: the report, the console
/// and the CSV writer turn it into words ([`Occurrence::describe`]); tests assert on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Occurrence {
    /// A scheduled event (from the scenario, a control inject or a player's order) took effect.
    Event { name: String, effect: Effect },
    /// An alliance's jointly bought goods shared out: `member` took `quantity` for `cost`.
    JointPurchase { alliance: AllianceId, member: NationId, commodity: CommodityId, quantity: Quantity, cost: Money },
    /// Reserve sharing: `giver` sold `quantity` of its reserve to `taker` at `price`.
    ReserveShared {
        alliance: AllianceId,
        giver: NationId,
        taker: NationId,
        commodity: CommodityId,
        quantity: Quantity,
        price: Price,
    },
    /// Theft or an accident at a nation's stockpile.
    StockpileLoss { nation: NationId, commodity: CommodityId, lost: Quantity },
    /// Local opposition delayed a site's new capacity until `due`.
    PermitsDelayed { site: AgentId, due: Tick },
    /// Local opposition blockaded a site until `until`.
    Blockade { site: AgentId, until: Tick },
    /// A nation joined or left an alliance of its own accord (the engine's diplomacy).
    Diplomacy { nation: NationId, alliance: AllianceId, joined: bool },
}

/// What a scheduled event did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// `lift` ended the restriction, outage or disruption named `target` (or found none).
    Lifted {
        target: String,
        found: bool,
    },
    Restricted(Rule),
    StockpileTarget {
        nation: NationId,
        commodity: CommodityId,
        days: u32,
    },
    StockpileRelease {
        nation: NationId,
        commodity: CommodityId,
        quantity: Quantity,
    },
    /// Demand changed by `bp` basis points for `manufacturers` manufacturers' use of it.
    DemandShock {
        commodity: CommodityId,
        nation: Option<NationId>,
        bp: i32,
        manufacturers: u32,
    },
    SiteShut {
        site: AgentId,
    },
    LaneDisrupted {
        lane: LaneId,
        extra_ticks: u32,
    },
    Joined {
        nation: NationId,
        alliance: AllianceId,
    },
    Left {
        nation: NationId,
        alliance: AllianceId,
    },
    Subsidy {
        nation: NationId,
        kind: SubsidyKind,
        bp: u32,
    },
    RdFunding {
        nation: NationId,
        commodity: CommodityId,
        per_year: Money,
    },
}

impl Occurrence {
    /// The occurrence in words, as the outputs show it.
    pub fn describe(&self, s: &Scenario) -> String {
        match self {
            Occurrence::Event { name, effect } => format!("{name}: {}", effect.describe(s)),
            Occurrence::JointPurchase { alliance, member, commodity, quantity, cost } => format!(
                "{}: {} took {quantity} of {} bought jointly, for {cost}",
                s.alliance(*alliance).code,
                s.nation_code(*member),
                s.commodity_code(*commodity)
            ),
            Occurrence::ReserveShared { alliance, giver, taker, commodity, quantity, price } => format!(
                "{}: {} shared {quantity} of {} reserves with {} at {price}",
                s.alliance(*alliance).code,
                s.nation_code(*giver),
                s.commodity_code(*commodity),
                s.nation_code(*taker)
            ),
            Occurrence::StockpileLoss { nation, commodity, lost } => format!(
                "theft or accident at {}'s {} stockpile: {lost} lost",
                s.nation_code(*nation),
                s.commodity_code(*commodity)
            ),
            Occurrence::PermitsDelayed { site, due } => format!(
                "opposition at {}: permits delayed, new capacity now due at tick {due}",
                s.agents[site.index()].name
            ),
            Occurrence::Blockade { site, until } => {
                format!("opposition at {}: site blockaded until tick {until}", s.agents[site.index()].name)
            }
            Occurrence::Diplomacy { nation, alliance, joined } => format!(
                "{} {} {}",
                s.nation_code(*nation),
                if *joined { "joined" } else { "left" },
                s.alliance(*alliance).code
            ),
        }
    }
}

impl Effect {
    pub fn describe(&self, s: &Scenario) -> String {
        match self {
            Effect::Lifted { target, found: true } => format!("lifted {target}"),
            Effect::Lifted { target, found: false } => format!("nothing to lift for {target}"),
            Effect::Restricted(rule) => describe_restriction(s, rule),
            Effect::StockpileTarget { nation, commodity, days } => format!(
                "{} stockpile target for {} set to {days} days",
                s.nation_code(*nation),
                s.commodity_code(*commodity)
            ),
            Effect::StockpileRelease { nation, commodity, quantity } => {
                format!("{} ordered release of {quantity} of {}", s.nation_code(*nation), s.commodity_code(*commodity))
            }
            Effect::DemandShock { commodity, nation, bp, manufacturers } => format!(
                "demand for {} {}{}% in {} ({manufacturers} manufacturers)",
                s.commodity_code(*commodity),
                if *bp >= 0 { "+" } else { "" },
                f64::from(*bp) / 100.0,
                nation.map_or("every nation".to_string(), |n| s.nation_code(n).to_string())
            ),
            Effect::SiteShut { site } => format!("{} shut", s.agents[site.index()].name),
            Effect::LaneDisrupted { lane, extra_ticks } => {
                format!("lane {} disrupted: +{extra_ticks} ticks in transit", s.lane(*lane).code)
            }
            Effect::Joined { nation, alliance } => {
                format!("{} joined {}", s.nation_code(*nation), s.alliance(*alliance).code)
            }
            Effect::Left { nation, alliance } => {
                format!("{} left {}", s.nation_code(*nation), s.alliance(*alliance).code)
            }
            Effect::Subsidy { nation, kind, bp } => {
                format!("{} {} subsidy set to {}%", s.nation_code(*nation), kind.as_str(), f64::from(*bp) / 100.0)
            }
            Effect::RdFunding { nation, commodity, per_year } => format!(
                "{} funds {per_year} a year of research on {}",
                s.nation_code(*nation),
                s.commodity_code(*commodity)
            ),
        }
    }
}
