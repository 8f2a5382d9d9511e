//! What a nation knows of other nations' reserves: exact and current from allies in an
//! alliance that shares intelligence; otherwise an estimate a quarter old and blurred by up to
//! ±20%, the same blur however often it asks. A pure function of the run's records and the
//! alliances at the time, so the exercise console and the debrief's "who knew what" show the
//! same estimates with their age and noise.

use agents::{MarketId, NationId};
use engine::record::TickRecord;
use engine::scenario::Scenario;
use engine::world::WorldState;
use serde::{Deserialize, Serialize};

/// Estimates are this many ticks old, and blurred by up to this much (basis points).
pub const DELAY_TICKS: usize = 13;
pub const NOISE_BP: i64 = 2_000;

/// One figure a nation was shown about another's reserve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub nation: String,
    pub commodity: String,
    pub stock_t: f64,
    /// The tick the figure describes (the reserve after it; for an ally, now).
    pub as_of_tick: u32,
    /// How old the figure was when shown, in ticks.
    pub age_ticks: u32,
    /// "ally" (exact, shared) or "estimate" (blurred).
    pub source: String,
    /// How far off the figure may be, in percent either way (0 for an ally's).
    pub noise_pct: f64,
}

/// What `n` is shown at the start of tick `now` (after `records`, with `state`'s alliances).
pub fn estimates(s: &Scenario, records: &[TickRecord], state: &WorldState, n: NationId) -> Vec<Estimate> {
    let now = state.tick.0;
    let sharing: Vec<NationId> = s
        .alliances
        .iter()
        .zip(&state.alliances)
        .filter(|(def, members)| def.share_intelligence && members.contains(&n))
        .flat_map(|(_, members)| members.iter().copied())
        .collect();
    let old = records.len().checked_sub(DELAY_TICKS + 1).and_then(|i| records.get(i));
    let mut out = Vec::new();
    for other in (0..s.nations.len()).map(|i| NationId(i as u16)).filter(|o| *o != n) {
        if sharing.contains(&other) {
            for p in &state.nations[other.index()].stockpiles {
                let stock = state.agents[other.index()].holding(MarketId::refined(p.commodity));
                out.push(Estimate {
                    nation: s.nation_code(other).into(),
                    commodity: s.commodity_code(p.commodity).into(),
                    stock_t: stock.0 as f64 / 1000.0,
                    as_of_tick: now,
                    age_ticks: 0,
                    source: "ally".into(),
                    noise_pct: 0.0,
                });
            }
        } else if let Some(r) = old {
            for x in r.stockpiles.iter().filter(|x| x.nation == other) {
                // A fixed blur per (observer, observed, commodity, tick): asking again does not
                // average it away.
                let h = blake3::hash(format!("intel/{}/{}/{}/{}", n.0, other.0, x.commodity.0, r.tick.0).as_bytes());
                let b = h.as_bytes();
                let noise = i64::from(u16::from_le_bytes([b[0], b[1]])) % (2 * NOISE_BP + 1) - NOISE_BP;
                out.push(Estimate {
                    nation: s.nation_code(other).into(),
                    commodity: s.commodity_code(x.commodity).into(),
                    stock_t: x.stock.scale_floor(10_000 + noise, 10_000).0 as f64 / 1000.0,
                    as_of_tick: r.tick.0,
                    age_ticks: now.saturating_sub(r.tick.0),
                    source: "estimate".into(),
                    noise_pct: NOISE_BP as f64 / 100.0,
                });
            }
        }
    }
    out
}
