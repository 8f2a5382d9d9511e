//! The auctions: every agent's validated orders go into one book per market; allies that
//! procure jointly pool their agencies' bids; then market by market, in `MarketId` order,
//! offtake contracts take their share of the sites' asks, the call auction clears under the
//! restrictions in force, and the trades settle.

use super::Ctx;
use super::settle::{Deltas, record_prices, settle};
use crate::market::{self, BookOrder};
use crate::mechanics::{allocate_joint, exempt_pairs, offtakes, pool_joint_bids};
use agents::{AgentActions, AgentId, MarketId, Quantity, Side};
use std::collections::BTreeMap;

/// What each nation's agency sold, by market (so ordered releases can be drawn down).
pub(crate) type Sold = BTreeMap<(AgentId, MarketId), Quantity>;

/// Runs every market's auction and settles its trades; each agent's orders are taken.
pub(crate) fn auctions(cx: &mut Ctx, deltas: &mut Deltas, actions: &mut [AgentActions]) -> Sold {
    let (mut bids, mut asks) = books(cx, actions);
    let allies = exempt_pairs(cx.scenario, cx.state);
    let joint = pool_joint_bids(cx.scenario, cx.state, &mut bids);
    let nations = cx.scenario.nations.len();
    let mut sold_by_agency = BTreeMap::new();
    for i in 0..cx.scenario.market_count() {
        let market = MarketId::from_index(i);
        // The rules read the restrictions while offtakes and settlement change the rest of the
        // state, so the restrictions are taken out meanwhile.
        let policies = std::mem::take(&mut cx.state.policies);
        let (clearing, restricted) = {
            let (rules, mut quotas) = policies.market_rules(market, &allies);
            offtakes(cx, deltas, market, &rules, &mut quotas, &mut asks[i]);
            (market::clear(&bids[i], &asks[i], &rules, &mut quotas), rules.restricted_exporters(nations))
        };
        cx.state.policies = policies;
        for t in &clearing.trades {
            settle(cx, deltas, market, t);
            // Agencies are agents 0..nations (no look-up in the agent table per trade).
            if t.seller.index() < nations {
                *sold_by_agency.entry((t.seller, market)).or_insert(Quantity::ZERO) += t.quantity;
            }
        }
        deltas.apply(&mut cx.state.agents, market);
        for j in joint.iter().filter(|j| j.market == market) {
            allocate_joint(cx, j, &clearing);
        }
        record_prices(cx, market, &clearing, &restricted);
    }
    sold_by_agency
}

/// One bid book and one ask book per market, sized exactly (on a large world they are the
/// tick's largest vectors); each agent's orders are dropped as they are entered, since nothing
/// reads them afterwards.
fn books(cx: &Ctx, actions: &mut [AgentActions]) -> (Vec<Vec<BookOrder>>, Vec<Vec<BookOrder>>) {
    let markets = cx.scenario.market_count();
    let mut sizes = vec![(0usize, 0usize); markets];
    for o in actions.iter().flat_map(|a| &a.orders) {
        let size = &mut sizes[o.market.index()];
        if o.side == Side::Buy { size.0 += 1 } else { size.1 += 1 }
    }
    let mut bids: Vec<Vec<BookOrder>> = sizes.iter().map(|s| Vec::with_capacity(s.0)).collect();
    let mut asks: Vec<Vec<BookOrder>> = sizes.iter().map(|s| Vec::with_capacity(s.1)).collect();
    for a in actions {
        let nation = cx.scenario.agents[a.agent.index()].spec.nation();
        for (seq, o) in std::mem::take(&mut a.orders).into_iter().enumerate() {
            let book = BookOrder {
                agent: a.agent,
                nation,
                seq: seq as u32,
                quantity: o.quantity,
                limit: o.limit,
                domestic_only: o.domestic_only,
            };
            match o.side {
                Side::Buy => bids[o.market.index()].push(book),
                Side::Sell => asks[o.market.index()].push(book),
            }
        }
    }
    (bids, asks)
}
