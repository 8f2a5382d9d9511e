//! The fog of war over what happened: which occurrences a nation learns of (public news, and
//! what concerns its own books) and which of them hit it. The exercise's views, its situation
//! reports and the debrief's "who knew what" all ask here, so they draw the line in one place.

use agents::NationId;
use engine::policy::{Restriction, Rule};
use engine::record::{Effect, Occurrence};
use engine::scenario::Scenario;

/// Whether nation `n` learns of `o`: restrictions, lifts, outages, disruptions, alliance
/// changes, demand shocks and opposition are public; a nation's own reserve decisions,
/// subsidies, research, losses and shared or pooled purchases are known only to it (and its
/// partners in them).
pub fn visible_to(s: &Scenario, o: &Occurrence, n: NationId) -> bool {
    match o {
        Occurrence::Event { effect, .. } => match effect {
            Effect::Lifted { .. }
            | Effect::Restricted(_)
            | Effect::DemandShock { .. }
            | Effect::SiteShut { .. }
            | Effect::LaneDisrupted { .. }
            | Effect::Joined { .. }
            | Effect::Left { .. } => true,
            Effect::StockpileTarget { nation, .. }
            | Effect::StockpileRelease { nation, .. }
            | Effect::Subsidy { nation, .. }
            | Effect::RdFunding { nation, .. } => *nation == n,
        },
        Occurrence::JointPurchase { member, .. } => *member == n,
        Occurrence::ReserveShared { giver, taker, .. } => *giver == n || *taker == n,
        Occurrence::StockpileLoss { nation, .. } => *nation == n,
        Occurrence::PermitsDelayed { .. } | Occurrence::Blockade { .. } | Occurrence::Diplomacy { .. } => {
            let _ = s;
            true
        }
    }
}

/// Whether `o` hits nation `n` directly: a restriction it imposes or that covers it, its own
/// sites, its alliances, demand in it, its own reserve.
pub fn hits(s: &Scenario, o: &Occurrence, n: NationId) -> bool {
    let site_of = |site: &agents::AgentId| {
        s.agents[site.index()].spec.nation() == n || s.site(*site).is_some_and(|x| x.owner == n)
    };
    match o {
        Occurrence::Event { effect, .. } => match effect {
            Effect::Restricted(rule) => restriction_hits(rule, n),
            Effect::Lifted { .. } | Effect::LaneDisrupted { .. } => true,
            Effect::DemandShock { nation, .. } => nation.is_none_or(|x| x == n),
            Effect::SiteShut { site } => site_of(site),
            Effect::Joined { nation, alliance } | Effect::Left { nation, alliance } => {
                *nation == n || s.alliance(*alliance).members.contains(&n)
            }
            Effect::StockpileTarget { nation, .. }
            | Effect::StockpileRelease { nation, .. }
            | Effect::Subsidy { nation, .. }
            | Effect::RdFunding { nation, .. } => *nation == n,
        },
        Occurrence::JointPurchase { member, .. } => *member == n,
        Occurrence::ReserveShared { giver, taker, .. } => *giver == n || *taker == n,
        Occurrence::StockpileLoss { nation, .. } => *nation == n,
        Occurrence::PermitsDelayed { site, .. } | Occurrence::Blockade { site, .. } => site_of(site),
        Occurrence::Diplomacy { nation, .. } => *nation == n,
    }
}

/// Whether a restriction is `n`'s own or covers `n` as a destination or origin.
pub fn restriction_hits(rule: &Rule, n: NationId) -> bool {
    match rule {
        Restriction::ExportBan { nation, to, .. }
        | Restriction::ExportQuota { nation, to, .. }
        | Restriction::ExportLicensing { nation, to, .. }
        | Restriction::ExportTariff { nation, to, .. } => *nation == n || to.includes(n),
        Restriction::ImportTariff { nation, from, .. } => *nation == n || from.includes(n),
    }
}

/// Whether a restriction limits what `n` can buy abroad (an exporter's ban, quota or licensing
/// covering it), the reason a bid at the clearing price may go unfilled.
pub fn limits_imports(rule: &Rule, n: NationId) -> bool {
    match rule {
        Restriction::ExportBan { nation, to, .. }
        | Restriction::ExportQuota { nation, to, .. }
        | Restriction::ExportLicensing { nation, to, .. } => *nation != n && to.includes(n),
        Restriction::ExportTariff { .. } | Restriction::ImportTariff { .. } => false,
    }
}
