//! Price forecasting by exponential smoothing, in integers. An agent's forecast of a market is
//! the smoothed history of the prices it faced; the first observation seeds it.

use crate::ids::{MarketId, NationId};
use crate::observation::{AgentMemory, PublicView};
use crate::units::Price;

/// Weight of the newest observation, as a fraction `NUM/DEN`.
const ALPHA_NUM: i64 = 1;
const ALPHA_DEN: i64 = 4;

/// How much a seller shades its ask below its forecast (basis points) as unsold stock fills
/// its yard (`stock` of at most `cap`): half a percent when empty, 3% when half full and
/// 10.5% when full, so a glut moves the price instead of only idling capacity.
pub fn stock_discount_bp(stock: crate::units::Quantity, cap: crate::units::Quantity) -> i64 {
    if cap.0 <= 0 {
        return 50;
    }
    let fill_bp = (i128::from(stock.0.max(0)) * 10_000 / i128::from(cap.0)).min(10_000) as i64;
    50 + 1_000 * fill_bp * fill_bp / 100_000_000
}

/// Blends `observed` into `previous`, rounding toward `previous`.
pub fn smooth(previous: Price, observed: Price) -> Price {
    previous + (observed - previous).scale_floor(ALPHA_NUM, ALPHA_DEN)
}

/// Updates `memory`'s forecast of `market` with the price faced in `nation`, and returns it.
pub fn update(memory: &mut AgentMemory, public: &PublicView, market: MarketId, nation: NationId) -> Price {
    let observed = public.market(market).price_for(nation);
    let next = match memory.forecast(market) {
        Some(previous) => smooth(previous, observed),
        None => observed,
    };
    memory.set_forecast(market, next);
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_moves_a_quarter_of_the_way() {
        assert_eq!(smooth(Price(100), Price(200)), Price(125));
        assert_eq!(smooth(Price(200), Price(100)), Price(175));
        assert_eq!(smooth(Price(100), Price(100)), Price(100));
    }
}
