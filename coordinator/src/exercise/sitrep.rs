//! Situation reports: after every turn, for every nation, what became of each of its orders
//! (filled with the quantity and price, partly filled, not filled and why), the events and
//! restrictions that hit it, shortages that started or ended, prices that moved more than
//! [`PRICE_MOVE_PCT`], changes in its intelligence, and the messages it received. Built on the
//! server from what that nation could know, kept in the run's store, and shown again by the
//! debrief's "who knew what": one report, never a second.
//!
//! What an order got is read from its agency's goods around the auctions of the turn's first
//! tick (`Sim::watched`): the agency's own rules and the player's orders bid together, so the
//! quantity bought is shared out over their bids in price order (the highest bid first; a bid
//! at the clearing price is the marginal one), as a uniform-price call auction fills them.

use super::intel::Estimate;
use super::{Item, MessageRow, Sealed, Submission};
use crate::journal::{describe_order, tonnes};
use crate::sim::AgencyTick;
use agents::{MarketId, Money, NationId, Order, Price, Quantity, Side};
use engine::policy::ActiveRestriction;
use engine::record::{Occurrence, TickRecord, describe_restriction};
use engine::scenario::{Event, Scenario};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A world price move over a turn at least this large (either way) is reported.
pub const PRICE_MOVE_PCT: f64 = 10.0;
/// An estimate of another reserve that moved at least this much is reported.
const INTEL_MOVE_PCT: f64 = 10.0;

/// One nation's report on one turn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sitrep {
    pub turn: u32,
    pub nation: String,
    /// The turn's ticks: `from_tick` to `to_tick`, the last one included.
    pub from_tick: u32,
    pub to_tick: u32,
    /// The nation missed the deadline (its standing orders or its AI acted).
    pub missed_deadline: bool,
    pub orders: Vec<OrderOutcome>,
    pub events: Vec<Line>,
    pub shortages: Vec<ShortageChange>,
    pub prices: Vec<PriceMove>,
    pub intelligence: Vec<IntelChange>,
    pub messages: Vec<MessageRow>,
}

/// What became of one order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderOutcome {
    /// Its place in the submission (1-based).
    pub index: u32,
    pub order: String,
    /// "filled", "partly filled", "not filled", "refused", "in effect", "pending", "proposal".
    pub status: String,
    pub quantity_t: Option<f64>,
    pub filled_t: Option<f64>,
    /// The clearing price it traded at.
    pub price_usd_per_kg: Option<f64>,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub tick: u32,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShortageChange {
    pub sector: String,
    pub commodity: String,
    /// "started", "ended", or "continues".
    pub change: String,
    pub tick: u32,
    /// Unmet demand over the turn, tonnes.
    pub short_t: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PriceMove {
    pub commodity: String,
    pub stage: String,
    pub from_usd_per_kg: f64,
    pub to_usd_per_kg: f64,
    pub change_pct: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntelChange {
    pub nation: String,
    pub commodity: String,
    pub before_t: Option<f64>,
    pub after_t: f64,
    pub as_of_tick: u32,
    pub source: String,
}

/// What is known of a whole turn, the same for every nation.
pub struct Turn<'a> {
    pub scenario: &'a Scenario,
    pub turn: u32,
    /// The turn's records, in tick order (the first is the tick its orders went into).
    pub records: &'a [TickRecord],
    /// The record before the turn, if any; else the prices at the start.
    pub before: Option<&'a TickRecord>,
    pub start_prices: Vec<Price>,
    /// Restrictions in force while the orders were in the auctions.
    pub restrictions: &'a [ActiveRestriction],
    /// Each watched agency in the orders' tick.
    pub watched: &'a [AgencyTick],
}

/// What one nation brought to the turn and was shown around it.
pub struct Nation<'a> {
    pub nation: NationId,
    /// What it submitted (as revealed; a missed deadline's standing orders), if anything.
    pub submission: Option<&'a Submission>,
    pub missed: bool,
    pub intel_before: &'a [Estimate],
    pub intel_after: &'a [Estimate],
    /// Messages to it during the turn.
    pub messages: Vec<MessageRow>,
    /// Proposals its join orders became: (event name, proposal id).
    pub proposals: &'a [(String, u32)],
}

/// The report for one nation on one turn.
pub fn build(t: &Turn, n: &Nation) -> Sitrep {
    let s = t.scenario;
    let from_tick = t.records.first().map_or(0, |r| r.tick.0);
    Sitrep {
        turn: t.turn,
        nation: s.nation_code(n.nation).to_string(),
        from_tick,
        to_tick: t.records.last().map_or(from_tick, |r| r.tick.0),
        missed_deadline: n.missed,
        orders: n.submission.map(|sub| outcomes(t, n, sub)).unwrap_or_default(),
        events: events(t, n.nation),
        shortages: shortages(t, n.nation),
        prices: price_moves(t),
        intelligence: intel_changes(n.intel_before, n.intel_after),
        messages: n.messages.clone(),
    }
}

fn outcomes(t: &Turn, n: &Nation, sub: &Submission) -> Vec<OrderOutcome> {
    let watched = t.watched.iter().find(|w| w.nation == n.nation);
    let limits: Vec<Order> = sub.orders();
    let fills = watched.map(|w| fills(t, w, &limits)).unwrap_or_default();
    let mut out = Vec::new();
    let mut limit_index = 0;
    for (i, item) in sub.items.iter().enumerate() {
        let index = i as u32 + 1;
        let mut o = match &item.sealed {
            Sealed::Limit(order) => {
                let fill = fills.get(limit_index).cloned();
                limit_index += 1;
                limit_outcome(t.scenario, index, order, fill)
            }
            Sealed::Policy(event) => policy_outcome(t, index, event, n.proposals),
            Sealed::Accept(id) => plain(index, format!("accept proposal #{id}"), "in effect", "acceptance recorded"),
        };
        if let Some(note) = &item.note {
            o.reason = format!("{} (adjusted by control: {note})", o.reason);
        }
        out.push(o);
    }
    for (k, (raw, note)) in sub.refused.iter().enumerate() {
        let what = describe_raw(raw);
        out.push(plain(
            (sub.items.len() + k) as u32 + 1,
            what,
            "refused",
            &format!("refused by control before the reveal: {note}"),
        ));
    }
    out
}

fn plain(index: u32, order: String, status: &str, reason: &str) -> OrderOutcome {
    OrderOutcome {
        index,
        order,
        status: status.into(),
        quantity_t: None,
        filled_t: None,
        price_usd_per_kg: None,
        reason: reason.into(),
    }
}

/// An order as the player wrote it, in a few words.
fn describe_raw(raw: &serde_json::Value) -> String {
    let kind = raw.get("type").and_then(|v| v.as_str()).unwrap_or("order");
    match kind {
        "policy" => format!("policy: {}", raw.get("event").map(|e| e.to_string()).unwrap_or_default()),
        _ => {
            let c = raw.get("commodity").and_then(|v| v.as_str()).unwrap_or("?");
            let q = raw.get("quantity_t").map(|v| v.to_string()).unwrap_or_default();
            let l = raw.get("limit_usd_per_kg").map(|v| v.to_string()).unwrap_or_default();
            format!("{kind} {q} t of {c} at US${l}/kg")
        }
    }
}

/// A limit order's fate, from what its bid got (or why it got nothing).
fn limit_outcome(s: &Scenario, index: u32, order: &Order, fill: Option<Fill>) -> OrderOutcome {
    let quantity = order.quantity.0 as f64 / 1000.0;
    let fill = fill.unwrap_or(Fill { filled: Quantity::ZERO, price: None, reason: "no record of the auction".into() });
    let status = if fill.filled == order.quantity {
        "filled"
    } else if fill.filled.is_positive() {
        "partly filled"
    } else {
        "not filled"
    };
    OrderOutcome {
        index,
        order: describe_order(s, order),
        status: status.into(),
        quantity_t: Some(quantity),
        filled_t: Some(fill.filled.0 as f64 / 1000.0),
        price_usd_per_kg: fill.price.filter(|_| fill.filled.is_positive()).map(|p| p.0 as f64 / 100.0),
        reason: fill.reason,
    }
}

/// A policy order's fate: the effect it had, when it takes effect, or the proposal it became.
fn policy_outcome(t: &Turn, index: u32, event: &Event, proposals: &[(String, u32)]) -> OrderOutcome {
    let s = t.scenario;
    let what = crate::journal::describe_event(s, event);
    if let Some((_, id)) = proposals.iter().find(|(name, _)| *name == event.name) {
        return plain(index, what, "proposal", &format!("became proposal #{id}; the members answer over two turns"));
    }
    let effect = t.records.iter().flat_map(|r| &r.events).find_map(|(at, o)| match o {
        Occurrence::Event { name, .. } if *name == event.name => Some((at.0, o.describe(s))),
        _ => None,
    });
    match effect {
        Some((at, text)) => plain(index, what, "in effect", &format!("took effect at tick {at}: {text}")),
        None if t.records.last().is_none_or(|r| event.tick.0 > r.tick.0) => {
            plain(index, what, "pending", &format!("takes effect at tick {}", event.tick.0))
        }
        None => plain(index, what, "not filled", "it did not take effect (see the control cell's notes)"),
    }
}

/// What one limit order got.
#[derive(Clone, Debug)]
struct Fill {
    filled: Quantity,
    price: Option<Price>,
    reason: String,
}

/// Shares what the agency bought and sold in each market over its bids and asks (its own
/// rules' and the player's `limits`), highest bid and lowest ask first; returns the player's
/// orders' fills in their order.
fn fills(t: &Turn, w: &AgencyTick, limits: &[Order]) -> Vec<Fill> {
    let Some(record) = t.records.first() else { return Vec::new() };
    let s = t.scenario;
    let all_buys: i128 = w
        .own_orders
        .iter()
        .chain(limits)
        .filter(|o| o.side == Side::Buy)
        .map(|o| i128::from(o.limit.value_of(o.quantity).0))
        .sum();
    let over_budget = all_buys > i128::from(w.cash_before.0.max(0));
    limits
        .iter()
        .enumerate()
        .map(|(i, o)| {
            if over_budget && o.side == Side::Buy {
                let worth = Money(all_buys.min(i128::from(i64::MAX)) as i64);
                return Fill {
                    filled: Quantity::ZERO,
                    price: None,
                    reason: format!(
                        "over budget: the agency's bids (worth {worth} with its own) exceed the treasury of {}",
                        w.cash_before
                    ),
                };
            }
            share(s, record, t.restrictions, w, limits, i)
        })
        .collect()
}

/// The `i`th player order's share of what its side of the market got.
fn share(
    s: &Scenario,
    record: &TickRecord,
    restrictions: &[ActiveRestriction],
    w: &AgencyTick,
    limits: &[Order],
    i: usize,
) -> Fill {
    let o = &limits[i];
    let m = o.market;
    let Some(market) = record.markets.iter().find(|x| x.market == m) else {
        return Fill { filled: Quantity::ZERO, price: None, reason: "no auction was held".into() };
    };
    let price = market.domestic.iter().find(|(n, _)| *n == w.nation).map_or(market.price, |(_, p)| *p);
    let buy = o.side == Side::Buy;
    let got = if buy { w.net(m) } else { -w.net(m) };
    let crosses = |x: &Order| if buy { x.limit >= price } else { x.limit <= price };
    // Bids highest first (asks lowest first); the agency's own orders come before the player's
    // at the same limit, as they are entered first.
    let mut book: Vec<(usize, &Order)> = w
        .own_orders
        .iter()
        .map(|x| (usize::MAX, x))
        .chain(limits.iter().enumerate())
        .filter(|(_, x)| x.market == m && x.side == o.side && crosses(x))
        .collect();
    book.sort_by(|a, b| if buy { b.1.limit.cmp(&a.1.limit) } else { a.1.limit.cmp(&b.1.limit) });
    let mut left = got.max(Quantity::ZERO);
    let mut filled = Quantity::ZERO;
    for (j, x) in book {
        let take = left.min(x.quantity);
        left -= take;
        if j == i {
            filled = take;
        }
    }
    let at = usd(price);
    let reason = if filled == o.quantity {
        format!("{} at the clearing price of {at}", if buy { "bought" } else { "sold" })
    } else if !market.traded {
        format!("nothing traded in {} this tick", market_name(s, m))
    } else if !crosses(o) {
        if buy {
            format!("outbid: the market cleared at {at}, above the limit of {}", usd(o.limit))
        } else {
            format!("priced out: the market cleared at {at}, below the limit of {}", usd(o.limit))
        }
    } else if let Some(r) =
        restrictions.iter().find(|r| buy && r.rule.market() == m && super::fog::limits_imports(&r.rule, w.nation))
    {
        format!("restricted: {} ({})", describe_restriction(s, &r.rule), r.name)
    } else if buy {
        format!("rationed at the margin: sellers at {at} were taken by other bids")
    } else {
        format!("rationed at the margin: buyers at {at} were taken by other offers")
    };
    Fill { filled, price: Some(price), reason }
}

fn usd(p: Price) -> String {
    format!("US{p}")
}

fn market_name(s: &Scenario, m: MarketId) -> String {
    format!("{} {}", s.commodity_code(m.commodity), m.stage.as_str())
}

/// The occurrences of the turn the nation learnt of and that hit it.
fn events(t: &Turn, n: NationId) -> Vec<Line> {
    let s = t.scenario;
    t.records
        .iter()
        .flat_map(|r| &r.events)
        .filter(|(_, o)| super::fog::visible_to(s, o, n) && super::fog::hits(s, o, n))
        .map(|(at, o)| Line { tick: at.0, text: o.describe(s) })
        .collect()
}

/// Shortages of the nation's industry that started or ended over the turn (or go on).
fn shortages(t: &Turn, n: NationId) -> Vec<ShortageChange> {
    let s = t.scenario;
    let short_in = |r: &TickRecord| {
        let mut by: BTreeMap<(agents::Sector, agents::CommodityId), Quantity> = BTreeMap::new();
        for x in r.shortages.iter().filter(|x| x.nation == n) {
            *by.entry((x.sector, x.commodity)).or_default() += x.wanted - x.consumed;
        }
        by
    };
    let mut was = t.before.map(short_in).unwrap_or_default();
    let mut total: BTreeMap<(agents::Sector, agents::CommodityId), Quantity> = BTreeMap::new();
    let mut changes: BTreeMap<(agents::Sector, agents::CommodityId), (String, u32)> = BTreeMap::new();
    for r in t.records {
        let now = short_in(r);
        let keys: Vec<_> = was.keys().chain(now.keys()).copied().collect();
        for k in keys {
            let (a, b) = (was.get(&k).copied().unwrap_or_default(), now.get(&k).copied().unwrap_or_default());
            *total.entry(k).or_default() += b;
            if !a.is_positive() && b.is_positive() {
                changes.insert(k, ("started".into(), r.tick.0));
            } else if a.is_positive() && !b.is_positive() {
                changes.insert(k, ("ended".into(), r.tick.0));
            } else if b.is_positive() {
                changes.entry(k).or_insert(("continues".into(), r.tick.0));
            }
        }
        was = now;
    }
    changes
        .into_iter()
        .map(|((sector, c), (change, tick))| ShortageChange {
            sector: sector.as_str().into(),
            commodity: s.commodity_code(c).into(),
            change,
            tick,
            short_t: total.get(&(sector, c)).map_or(0.0, |q| q.0 as f64 / 1000.0),
        })
        .collect()
}

/// World prices that moved at least [`PRICE_MOVE_PCT`] over the turn.
fn price_moves(t: &Turn) -> Vec<PriceMove> {
    let s = t.scenario;
    let Some(last) = t.records.last() else { return Vec::new() };
    last.markets
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let from = t.before.and_then(|b| b.markets.get(i)).map_or(t.start_prices.get(i).copied()?, |x| x.price);
            let change = (m.price.0 as f64 / from.0.max(1) as f64 - 1.0) * 100.0;
            (change.abs() >= PRICE_MOVE_PCT).then(|| PriceMove {
                commodity: s.commodity_code(m.market.commodity).into(),
                stage: m.market.stage.as_str().into(),
                from_usd_per_kg: from.0 as f64 / 100.0,
                to_usd_per_kg: m.price.0 as f64 / 100.0,
                change_pct: (change * 10.0).round() / 10.0,
            })
        })
        .collect()
}

/// Estimates that are new, or moved at least [`INTEL_MOVE_PCT`], over the turn.
fn intel_changes(before: &[Estimate], after: &[Estimate]) -> Vec<IntelChange> {
    after
        .iter()
        .filter_map(|a| {
            let b = before.iter().find(|b| b.nation == a.nation && b.commodity == a.commodity);
            let moved = b.is_none_or(|b| {
                (a.stock_t - b.stock_t).abs() >= b.stock_t.abs() * INTEL_MOVE_PCT / 100.0 && a.stock_t != b.stock_t
            });
            moved.then(|| IntelChange {
                nation: a.nation.clone(),
                commodity: a.commodity.clone(),
                before_t: b.map(|b| b.stock_t),
                after_t: a.stock_t,
                as_of_tick: a.as_of_tick,
                source: a.source.clone(),
            })
        })
        .collect()
}

/// A limit order as the JSON a player writes (for standing orders placed again).
pub fn raw_of(s: &Scenario, o: &Order) -> serde_json::Value {
    serde_json::json!({
        "type": if o.side == Side::Buy { "buy" } else { "sell" },
        "commodity": s.commodity_code(o.market.commodity),
        "quantity_t": tonnes(o.quantity.0).parse::<f64>().unwrap_or(0.0),
        "limit_usd_per_kg": o.limit.0 as f64 / 100.0,
        "domestic_only": o.domestic_only,
    })
}

/// Items for standing orders placed again.
pub fn standing(s: &Scenario, orders: &[Order]) -> Vec<Item> {
    orders.iter().map(|o| Item { raw: raw_of(s, o), sealed: Sealed::Limit(o.clone()), note: None }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exercise::{Item, Sealed, Submission};
    use agents::{CommodityId, Tick};
    use engine::policy::{Partners, Restriction};
    use engine::record::MarketRecord;

    fn tiny() -> Scenario {
        engine::scenario::parse(include_str!("../../../scenarios/tiny.toml"), "tiny.toml").expect("tiny")
    }

    fn buy(kg: i64, cents: i64) -> Order {
        Order {
            market: MarketId::refined(CommodityId(1)),
            side: Side::Buy,
            quantity: Quantity(kg),
            limit: Price(cents),
            domestic_only: false,
        }
    }

    /// The statuses and reasons of CC's three dy bids, with the agency having bought `bought` kg.
    fn outcomes_of(bought: i64, cash: i64, restrictions: &[ActiveRestriction]) -> Vec<(String, String)> {
        let s = tiny();
        let cc = NationId(2);
        let markets = (0..s.market_count())
            .map(|i| MarketRecord {
                market: MarketId::from_index(i),
                price: Price(40_000),
                volume: Quantity(1),
                traded: true,
                domestic: Vec::new(),
            })
            .collect();
        let record = TickRecord { tick: Tick(0), markets, ..TickRecord::default() };
        let dy = MarketId::refined(CommodityId(1)).index();
        let mut before = vec![Quantity::ZERO; s.market_count()];
        let mut after = before.clone();
        before[dy] = Quantity(5_000);
        after[dy] = Quantity(5_000 + bought);
        let watched = [AgencyTick { nation: cc, own_orders: Vec::new(), cash_before: Money(cash), before, after }];
        let records = [record];
        let turn = Turn {
            scenario: &s,
            turn: 1,
            records: &records,
            before: None,
            start_prices: Vec::new(),
            restrictions,
            watched: &watched,
        };
        let orders = [buy(1_000, 50_000), buy(2_000, 40_000), buy(1_000, 1_000)];
        let items = orders
            .iter()
            .map(|o| Item { raw: serde_json::json!({}), sealed: Sealed::Limit(o.clone()), note: None })
            .collect();
        let sub = Submission { items, ..Submission::default() };
        let nation = Nation {
            nation: cc,
            submission: Some(&sub),
            missed: false,
            intel_before: &[],
            intel_after: &[],
            messages: Vec::new(),
            proposals: &[],
        };
        build(&turn, &nation).orders.into_iter().map(|o| (o.status, o.reason)).collect()
    }

    #[test]
    fn bids_are_filled_highest_first_and_each_shortfall_says_why() {
        let got = outcomes_of(2_000, 1_000_000_000, &[]);
        assert_eq!(got[0].0, "filled", "{got:?}");
        assert_eq!(got[1].0, "partly filled", "the marginal bid at the clearing price: {got:?}");
        assert!(got[1].1.starts_with("rationed at the margin"), "{got:?}");
        assert_eq!(got[2].0, "not filled");
        assert!(got[2].1.starts_with("outbid"), "{got:?}");
    }

    #[test]
    fn an_unfilled_bid_is_over_budget_or_restricted() {
        let got = outcomes_of(0, 100, &[]);
        assert!(got.iter().all(|(s, r)| s == "not filled" && r.starts_with("over budget")), "{got:?}");
        let ban = ActiveRestriction {
            name: "bb-ban".into(),
            since: Tick(0),
            rule: Restriction::ExportBan {
                nation: NationId(1),
                market: MarketId::refined(CommodityId(1)),
                to: Partners::All,
            },
            allies_exempt: true,
        };
        let got = outcomes_of(0, 1_000_000_000, &[ban]);
        assert!(got[0].1.starts_with("restricted: BB bans exports of dy refined"), "{got:?}");
    }
}
