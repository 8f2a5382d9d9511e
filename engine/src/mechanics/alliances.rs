//! Alliances in the markets: members exempt from each other's export restrictions (unless a
//! restriction says otherwise), joint procurement (members' agency bids pooled into one, the
//! fill shared pro rata at the average price), and reserve sharing at an agreed price when a
//! member's industry goes short.

use crate::ids::AllianceId;
use crate::market::{BookOrder, Clearing};
use crate::record::Occurrence;
use crate::scenario::Scenario;
use crate::tick::Ctx;
use crate::world::WorldState;
use agents::{AgentId, MarketId, Money, NationId, Price, Quantity};

/// Member bids pooled by an alliance that procures jointly: one combined bid by `lead`.
pub(crate) struct JointBid {
    pub alliance: AllianceId,
    pub market: MarketId,
    pub lead: AgentId,
    /// Each member agency and the quantity it asked for.
    pub members: Vec<(AgentId, Quantity)>,
}

/// Pairs of nations (both orders, sorted) exempt from each other's export restrictions.
pub(crate) fn exempt_pairs(s: &Scenario, state: &WorldState) -> Vec<(NationId, NationId)> {
    let mut pairs = Vec::new();
    for (def, members) in s.alliances.iter().zip(&state.alliances) {
        if !def.exempt_from_restrictions {
            continue;
        }
        for a in members {
            for b in members.iter().filter(|b| *b != a) {
                pairs.push((*a, *b));
            }
        }
    }
    pairs.sort();
    pairs.dedup();
    pairs
}

/// Pools the agencies' bids of each alliance that procures jointly: in each market where two
/// or more members bid, their bids become one, by the first member, for the sum of the
/// quantities at the lowest of their limits (the price all members accept).
pub(crate) fn pool_joint_bids(s: &Scenario, state: &WorldState, bids: &mut [Vec<BookOrder>]) -> Vec<JointBid> {
    let mut out = Vec::new();
    let mut pooled: Vec<AgentId> = Vec::new();
    for (k, (def, members)) in s.alliances.iter().zip(&state.alliances).enumerate() {
        if !def.joint_procurement || members.len() < 2 {
            continue;
        }
        let agencies: Vec<AgentId> =
            members.iter().map(|n| AgentId(n.index() as u32)).filter(|a| !pooled.contains(a)).collect();
        for (i, book) in bids.iter_mut().enumerate() {
            if let Some(j) = pool_market(AllianceId(k as u16), MarketId::from_index(i), book, &agencies) {
                out.push(j);
            }
        }
        pooled.extend(agencies);
    }
    out
}

/// Pools `agencies`' bids in one market's book, if two or more of them bid.
fn pool_market(
    alliance: AllianceId,
    market: MarketId,
    book: &mut Vec<BookOrder>,
    agencies: &[AgentId],
) -> Option<JointBid> {
    let mut asked: Vec<(AgentId, Quantity)> = Vec::new();
    let mut limit: Option<Price> = None;
    for b in book.iter().filter(|b| agencies.contains(&b.agent)) {
        match asked.iter_mut().find(|(a, _)| *a == b.agent) {
            Some(entry) => entry.1 += b.quantity,
            None => asked.push((b.agent, b.quantity)),
        }
        limit = Some(limit.map_or(b.limit, |l| l.min(b.limit)));
    }
    let (Some(limit), true) = (limit, asked.len() >= 2) else { return None };
    asked.sort();
    book.retain(|b| !agencies.contains(&b.agent));
    let lead = asked[0].0;
    let total = asked.iter().map(|(_, q)| *q).sum();
    book.push(BookOrder {
        agent: lead,
        nation: NationId(lead.0 as u16),
        seq: 1_000_000 + u32::from(alliance.0),
        quantity: total,
        limit,
        domestic_only: false,
    });
    Some(JointBid { alliance, market, lead, members: asked })
}

/// Shares what a pooled bid bought among the members, in proportion to what each asked for, at
/// the average price paid (what is still in transit stays with the lead).
pub(crate) fn allocate_joint(cx: &mut Ctx, j: &JointBid, clearing: &Clearing) {
    let (mut bought, mut paid) = (Quantity::ZERO, Money::ZERO);
    for t in clearing.trades.iter().filter(|t| t.buyer == j.lead) {
        bought += t.quantity;
        paid += t.price.value_of(t.quantity);
    }
    let asked: Quantity = j.members.iter().map(|(_, q)| *q).sum();
    if !bought.is_positive() || !asked.is_positive() {
        return;
    }
    let agents = &mut cx.state.agents;
    for &(member, q) in j.members.iter().filter(|(m, _)| *m != j.lead) {
        let share = bought.scale_floor(q.0, asked.0).min(agents[j.lead.index()].holding(j.market));
        if !share.is_positive() {
            continue;
        }
        let cost = paid.scale_floor(share.0, bought.0);
        agents[j.lead.index()].add(j.market, -share);
        agents[j.lead.index()].cash += cost;
        agents[member.index()].add(j.market, share);
        agents[member.index()].cash -= cost;
        let occurrence = Occurrence::JointPurchase {
            alliance: j.alliance,
            member: NationId(member.0 as u16),
            commodity: j.market.commodity,
            quantity: share,
            cost,
        };
        cx.record.events.push((cx.tick, occurrence));
    }
}

/// Reserve sharing: a member of an alliance that shares reserves whose industry went short and
/// whose own reserve cannot cover it buys from allies' reserves at the agreed price (each ally
/// gives at most a quarter of its stock a tick). Its agency then releases it.
pub(crate) fn share_reserves(cx: &mut Ctx) {
    for (k, def) in cx.scenario.alliances.iter().enumerate() {
        let Some(price_bp) = def.reserve_sharing_price_bp else { continue };
        let members = cx.state.alliances[k].clone();
        for &taker in &members {
            for p in 0..cx.state.nations[taker.index()].stockpiles.len() {
                let pile = &cx.state.nations[taker.index()].stockpiles[p];
                let (commodity, short) = (pile.commodity, pile.shortage_last_tick);
                let market = MarketId::refined(commodity);
                let need = short - cx.state.agents[taker.index()].holding(market);
                let price = cx.scenario.stage(market).reference.scale_floor(i64::from(price_bp), 10_000);
                let share = Share { alliance: AllianceId(k as u16), taker, market, price };
                share.take(cx, &members, need);
            }
        }
    }
}

/// One member's draw on its allies' reserves of one commodity.
struct Share {
    alliance: AllianceId,
    taker: NationId,
    market: MarketId,
    price: Price,
}

impl Share {
    fn take(&self, cx: &mut Ctx, members: &[NationId], mut need: Quantity) {
        for &giver in members.iter().filter(|g| **g != self.taker) {
            if !need.is_positive() {
                break;
            }
            let agents = &mut cx.state.agents;
            let stock = agents[giver.index()].holding(self.market);
            let cash = agents[self.taker.index()].cash.max(Money::ZERO);
            let give = need.min(stock.scale_floor(1, 4)).min(self.price.affordable(cash));
            if !give.is_positive() {
                continue;
            }
            let cost = self.price.value_of(give);
            agents[giver.index()].add(self.market, -give);
            agents[giver.index()].cash += cost;
            agents[self.taker.index()].add(self.market, give);
            agents[self.taker.index()].cash -= cost;
            need -= give;
            let occurrence = Occurrence::ReserveShared {
                alliance: self.alliance,
                giver,
                taker: self.taker,
                commodity: self.market.commodity,
                quantity: give,
                price: self.price,
            };
            cx.record.events.push((cx.tick, occurrence));
        }
    }
}
