//! Announced restrictions: the export bans, quotas and licensing regimes in force and those
//! announced ahead of their start, as the public sees them — whose imports they restrict and how
//! much of the trade the exporter holds. Agents read them in the public view; the exercise
//! console shows the same list.

use super::exempt_pairs;
use crate::policy::Partners;
use crate::scenario::{Event, EventKind, Scenario};
use crate::world::WorldState;
use agents::observation::Announcement;
use agents::{MarketId, NationId, Tick};

/// Restrictions that limit exports: in force, and announced in `events` but not yet in force
/// at `tick`, sorted by the tick they take effect. Nations exempt as allies are not among the
/// affected.
pub fn announcements(s: &Scenario, state: &WorldState, events: &[Event], tick: Tick) -> Vec<Announcement> {
    let allies = exempt_pairs(s, state);
    let mut out = Vec::new();
    for a in &state.policies.active {
        if let Some((_, exporter, to)) = a.rule.export_limit() {
            out.push(announcement(s, state, exporter, a.rule.market(), to, a.allies_exempt, a.since, &allies));
        }
    }
    for e in events.iter().filter(|e| e.announced.is_some_and(|a| a <= tick) && e.tick > tick) {
        let EventKind::Restrict(r) = &e.kind else { continue };
        if let Some((_, exporter, to)) = r.export_limit() {
            out.push(announcement(s, state, exporter, r.market(), to, e.allies_exempt, e.tick, &allies));
        }
    }
    out.sort_by_key(|a| a.effective);
    out
}

/// A restriction by `exporter` on `market` to `to`, effective at `effective`, as the public
/// sees it.
#[allow(clippy::too_many_arguments)]
fn announcement(
    s: &Scenario,
    state: &WorldState,
    exporter: NationId,
    market: MarketId,
    to: &Partners,
    allies_exempt: bool,
    effective: Tick,
    allies: &[(NationId, NationId)],
) -> Announcement {
    let affected = (0..s.nations.len())
        .map(|n| NationId(n as u16))
        .filter(|n| {
            *n != exporter && to.includes(*n) && !(allies_exempt && allies.binary_search(&(exporter, *n)).is_ok())
        })
        .collect();
    Announcement { market, exporter, effective, affected, share_bp: export_share_bp(s, state, exporter, market) }
}

/// `nation`'s share of the world's cross-border trade in `market` over the last year, in basis
/// points (from the export ledger).
fn export_share_bp(s: &Scenario, state: &WorldState, nation: NationId, market: MarketId) -> u32 {
    let all: i128 =
        (0..s.nations.len()).map(|n| i128::from(state.exports.last_year(NationId(n as u16), market).0)).sum();
    if all <= 0 {
        return 0;
    }
    (i128::from(state.exports.last_year(nation, market).0) * 10_000 / all).clamp(0, 10_000) as u32
}
