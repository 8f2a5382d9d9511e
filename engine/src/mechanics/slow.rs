//! The slow processes, after the markets and in this order: stockpile security, projects
//! coming on line, outages ending, opposition, recycling rates; once a quarter investment and
//! substitution (at its last tick) and diplomacy (at its middle); then the trend prices.

use super::TREND_TICKS;
use super::diplomacy::diplomacy;
use super::investment::{build, invest};
use super::opposition::opposition;
use super::recycling::update_rates;
use super::security::stockpile_security;
use super::substitution::substitute;
use crate::tick::Ctx;

pub(crate) fn slow_processes(cx: &mut Ctx) {
    stockpile_security(cx);
    build(cx);
    let next = cx.tick.0 + 1;
    cx.state.outages.retain(|o| o.until.is_none_or(|u| u.0 > next));
    opposition(cx);
    update_rates(cx);
    // Slow decisions are taken once a quarter: every 13 weekly ticks, every 3 monthly ones.
    let quarter = (cx.scenario.ticks_per_year / 4).max(1);
    if cx.tick.0 % quarter == quarter - 1 {
        invest(cx);
        substitute(cx);
    }
    if cx.tick.0 % quarter == quarter / 2 {
        diplomacy(cx);
    }
    for m in &mut cx.state.markets {
        m.trend_price = m.trend_price + (m.last_price - m.trend_price).scale_floor(1, TREND_TICKS);
    }
}
