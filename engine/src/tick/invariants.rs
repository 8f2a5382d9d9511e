//! The named invariants checked after every tick: goods and money are conserved except for the
//! explicit creations and destructions in the tick's ledger, and no holding is negative. A
//! violation is a bug and stops the run (`EngineError::Invariant`).

use super::Ledger;
use crate::engine::EngineError;
use crate::scenario::Scenario;
use crate::world::WorldState;
use agents::{MarketId, Money, Quantity, Tick};

/// Goods per market (held and in transit) and money, summed over the world.
pub(crate) fn totals(s: &Scenario, state: &WorldState) -> (Vec<Quantity>, Money) {
    let mut goods = vec![Quantity::ZERO; s.market_count()];
    let mut money = Money::ZERO;
    for a in &state.agents {
        money += a.cash;
        for (m, q) in &a.holdings {
            goods[m.index()] += *q;
        }
    }
    for sh in &state.shipments {
        goods[sh.market.index()] += sh.quantity;
    }
    (goods, money)
}

pub(crate) fn check(
    s: &Scenario,
    state: &WorldState,
    tick: Tick,
    before: &(Vec<Quantity>, Money),
    ledger: &Ledger,
) -> Result<(), EngineError> {
    let (goods_after, money_after) = totals(s, state);
    for (i, (before, after)) in before.0.iter().zip(&goods_after).enumerate() {
        let expected = *before + ledger.goods_created[i] - ledger.goods_destroyed[i];
        if *after != expected {
            let m = MarketId::from_index(i);
            return Err(EngineError::Invariant {
                name: "goods_conserved",
                tick,
                detail: format!(
                    "{} {}: {after} held, expected {expected}",
                    s.commodity_code(m.commodity),
                    m.stage.as_str()
                ),
            });
        }
    }
    let expected = before.1 + ledger.money_in - ledger.money_out;
    if money_after != expected {
        return Err(EngineError::Invariant {
            name: "money_conserved",
            tick,
            detail: format!("{money_after} held, expected {expected}"),
        });
    }
    if let Some(a) = state.agents.iter().position(|a| a.holdings.iter().any(|(_, q)| q.0 < 0)) {
        return Err(EngineError::Invariant {
            name: "holdings_non_negative",
            tick,
            detail: format!("agent#{a} holds a negative quantity"),
        });
    }
    Ok(())
}
