//! Local opposition: each site draws against a yearly probability set by its footprint and its
//! host's sensitivity. An episode delays a project waiting for its permits or, failing that,
//! blockades the site for a while.

use crate::record::Occurrence;
use crate::scenario::Site;
use crate::tick::Ctx;
use crate::world::Outage;
use agents::Tick;
use agents::rng::{Purpose, Rng};

/// Yearly probability (basis points) of an opposition episode at a site of footprint 100 in a
/// nation of sensitivity 1.
const OPPOSITION_BP_PER_YEAR: i64 = 2_000;
/// A permit delay or a blockade lasts this many ticks.
const OPPOSITION_TICKS: u32 = 26;

pub(crate) fn opposition(cx: &mut Ctx) {
    let tpy = i64::from(cx.scenario.ticks_per_year.max(1));
    for site in &cx.scenario.sites {
        let host = cx.scenario.agents[site.agent.index()].spec.nation();
        let sensitivity = i64::from(cx.scenario.nations[host.index()].env_sensitivity_bp);
        if sensitivity == 0 || site.footprint == 0 {
            continue;
        }
        // Per-tick probability in parts per billion: basis points a year × footprint/100 ×
        // sensitivity/10,000 × 100,000 ppb per basis point ÷ ticks a year.
        let ppb = OPPOSITION_BP_PER_YEAR * i64::from(site.footprint) * sensitivity / 10 / tpy;
        let draw: i64 = cx.streams.stream(site.agent, cx.tick, Purpose::Opposition).random_range(0..1_000_000_000);
        if draw < ppb {
            episode(cx, site);
        }
    }
}

fn episode(cx: &mut Ctx, site: &Site) {
    let tick = cx.tick;
    let waiting = cx.state.projects.iter_mut().find(|p| p.site == site.agent && p.online.0 > tick.0);
    let occurrence = match waiting {
        Some(p) => {
            p.online = Tick(p.online.0 + OPPOSITION_TICKS);
            Occurrence::PermitsDelayed { site: site.agent, due: p.online }
        }
        None => {
            let until = Tick(tick.0 + 1 + OPPOSITION_TICKS);
            cx.state.outages.push(Outage {
                name: format!("opposition/{}/{}", site.agent.0, tick.0),
                site: site.agent,
                until: Some(until),
            });
            Occurrence::Blockade { site: site.agent, until }
        }
    };
    cx.record.events.push((tick, occurrence));
}
