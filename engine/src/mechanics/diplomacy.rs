//! The AI's diplomacy, once a quarter: every nation outside an open alliance weighs joining it —
//! affinity (how close its alignment is to the members') plus shared vulnerability (it and a
//! member both stockpile a commodity whose dominant refiner is outside the alliance), blurred by
//! a draw — and the members accept if each is close enough to it. A member that has drifted far
//! from the rest (as others joined) leaves.

use crate::ids::AllianceId;
use crate::record::Occurrence;
use crate::tick::Ctx;
use agents::rng::{Purpose, Rng};
use agents::{AgentId, NationId};

/// Members admit a nation whose affinity with each of them is at least this (0 to 1,000);
/// played nations' proposals in an exercise are judged the same way.
pub const ADMIT_AFFINITY: i64 = 700;

pub(crate) fn diplomacy(cx: &mut Ctx) {
    for k in 0..cx.scenario.alliances.len() {
        if cx.state.alliances[k].is_empty() {
            continue;
        }
        let alliance = AllianceId(k as u16);
        leave_if_drifted(cx, alliance);
        if cx.scenario.alliances[k].open {
            admit(cx, alliance);
        }
    }
}

fn alignment(cx: &Ctx, n: NationId) -> i64 {
    i64::from(cx.scenario.nations[n.index()].alignment_milli)
}

/// The mean alignment of `list` without `except`.
fn mean(cx: &Ctx, list: &[NationId], except: Option<NationId>) -> i64 {
    let v: Vec<i64> = list.iter().filter(|n| Some(**n) != except).map(|n| alignment(cx, *n)).collect();
    if v.is_empty() { 0 } else { v.iter().sum::<i64>() / v.len() as i64 }
}

fn leave_if_drifted(cx: &mut Ctx, alliance: AllianceId) {
    let members = cx.state.alliances[alliance.index()].clone();
    for &m in &members {
        let rest = mean(cx, &members, Some(m));
        if members.len() > 1 && 1_000 - (alignment(cx, m) - rest).abs() / 2 < 500 {
            cx.state.alliances[alliance.index()].retain(|x| *x != m);
            cx.record.events.push((cx.tick, Occurrence::Diplomacy { nation: m, alliance, joined: false }));
        }
    }
}

fn admit(cx: &mut Ctx, alliance: AllianceId) {
    for n in (0..cx.scenario.nations.len()).map(|n| NationId(n as u16)) {
        let members = &cx.state.alliances[alliance.index()];
        if members.contains(&n)
            || cx.state.nations[n.index()].stockpiles.is_empty()
            || !shares_exposure(cx, alliance, n)
        {
            continue;
        }
        let noise: i64 =
            cx.streams.stream(AgentId(u32::from(n.0)), cx.tick, Purpose::Diplomacy).random_range(-100..=100);
        let score = 1_000 - (alignment(cx, n) - mean(cx, members, None)).abs() / 2 + noise;
        let accepted = members.iter().all(|m| cx.scenario.affinity(*m, n) >= ADMIT_AFFINITY);
        if score >= 900 && accepted {
            let at = members.partition_point(|m| *m < n);
            cx.state.alliances[alliance.index()].insert(at, n);
            cx.record.events.push((cx.tick, Occurrence::Diplomacy { nation: n, alliance, joined: true }));
        }
    }
}

/// Whether `n` and a member both stockpile a commodity whose dominant refiner is outside the
/// alliance (and is not `n`).
fn shares_exposure(cx: &Ctx, alliance: AllianceId, n: NationId) -> bool {
    let members = &cx.state.alliances[alliance.index()];
    cx.state.nations[n.index()].stockpiles.iter().any(|p| {
        let dominant = cx.derived.dominant_refiner[p.commodity.index()];
        dominant.is_some_and(|d| d != n && !members.contains(&d))
            && members.iter().any(|m| cx.state.nations[m.index()].stockpiles.iter().any(|q| q.commodity == p.commodity))
    })
}
