//! Property tests of one call auction (`engine::market::clear`): order of submission never
//! matters, restricted routes never trade, quotas hold, the free-market price is uniform and lies
//! between the marginal bid and ask, every trade respects both limits after tariffs, and
//! quantities are conserved.

use agents::{AgentId, NationId, Price, Quantity};
use engine::market::{BookOrder, Clearing, FreeTrade, Route, Rules, Zone, clear, clear_by_scanning};
use proptest::prelude::*;
use std::collections::BTreeMap;

const NATIONS: u16 = 4;

fn order(agent: u32, seq: u32, nation: u16, qty: i64, limit: i64, domestic_only: bool) -> BookOrder {
    BookOrder {
        agent: AgentId(agent),
        nation: NationId(nation),
        seq,
        quantity: Quantity(qty),
        limit: Price(limit),
        domestic_only,
    }
}

/// Bids from agents 0..100 and asks from agents 100..200, each (agent, seq) unique.
fn book() -> impl Strategy<Value = (Vec<BookOrder>, Vec<BookOrder>)> {
    let side = |base: u32, domestic: bool| {
        prop::collection::vec((0..NATIONS, 1i64..500, 50i64..150, any::<bool>()), 0..25).prop_map(move |v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (n, q, p, d))| order(base + (i as u32 % 7), i as u32, n, q, p, d && domestic))
                .collect::<Vec<_>>()
        })
    };
    (side(0, false), side(100, true))
}

/// Random restrictions: banned routes, tariffs, and quotas by exporter.
#[derive(Clone, Debug)]
struct TestRules {
    banned: Vec<(u16, u16)>,
    export_bp: BTreeMap<u16, u32>,
    import_bp: BTreeMap<u16, u32>,
    quota_of: BTreeMap<u16, usize>,
}

impl Rules for TestRules {
    fn route(&self, seller: NationId, buyer: NationId) -> Route {
        Route {
            allowed: !self.banned.contains(&(seller.0, buyer.0)),
            export_tariff_bp: self.export_bp.get(&seller.0).copied().unwrap_or(0),
            import_tariff_bp: self.import_bp.get(&buyer.0).copied().unwrap_or(0),
            delay_ticks: 0,
            quota: self.quota_of.get(&seller.0).copied(),
        }
    }
    fn exports_restricted(&self, nation: NationId) -> bool {
        self.banned.iter().any(|(s, _)| *s == nation.0) || self.quota_of.contains_key(&nation.0)
    }
    fn export_rules(&self, nation: NationId) -> bool {
        self.banned.iter().any(|(s, _)| *s == nation.0)
            || self.export_bp.contains_key(&nation.0)
            || self.quota_of.contains_key(&nation.0)
    }
    fn import_rules(&self, nation: NationId) -> bool {
        self.import_bp.contains_key(&nation.0)
    }
}

fn rules() -> impl Strategy<Value = (TestRules, Vec<Quantity>)> {
    (
        prop::collection::vec((0..NATIONS, 0..NATIONS), 0..5),
        prop::collection::btree_map(0..NATIONS, 0u32..3000, 0..3),
        prop::collection::btree_map(0..NATIONS, 0u32..3000, 0..3),
        prop::collection::btree_map(0..NATIONS, 0i64..300, 0..3),
    )
        .prop_map(|(banned, export_bp, import_bp, quotas)| {
            let banned = banned.into_iter().filter(|(s, b)| s != b).collect();
            let mut quota_of = BTreeMap::new();
            let mut table = Vec::new();
            for (n, q) in quotas {
                quota_of.insert(n, table.len());
                table.push(Quantity(q));
            }
            (TestRules { banned, export_bp, import_bp, quota_of }, table)
        })
}

fn filled(orders: &[BookOrder], c: &Clearing, buy: bool) -> BTreeMap<(AgentId, NationId), Quantity> {
    let mut m = BTreeMap::new();
    for t in &c.trades {
        let k = if buy { (t.buyer, t.buyer_nation) } else { (t.seller, t.seller_nation) };
        *m.entry(k).or_insert(Quantity::ZERO) += t.quantity;
    }
    let _ = orders;
    m
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The indexed book (plain groups by price, rule-bound ones scanned) finds exactly the
    /// trades the plain scan of every group finds, with and without restrictions.
    #[test]
    fn the_indexed_book_clears_as_the_scan_does((bids, asks) in book(), (rules, quotas) in rules()) {
        let (mut q1, mut q2) = (quotas.clone(), quotas.clone());
        prop_assert_eq!(clear(&bids, &asks, &rules, &mut q1), clear_by_scanning(&bids, &asks, &rules, &mut q2));
        prop_assert_eq!(q1, q2);
        let free = clear(&bids, &asks, &FreeTrade, &mut []);
        prop_assert_eq!(free, clear_by_scanning(&bids, &asks, &FreeTrade, &mut []));
    }

    #[test]
    fn order_of_submission_never_matters((bids, asks) in book(), (rules, quotas) in rules(), seed in any::<u64>()) {
        let mut q1 = quotas.clone();
        let reference = clear(&bids, &asks, &rules, &mut q1);
        let mut shuffled_bids = bids.clone();
        let mut shuffled_asks = asks.clone();
        // A deterministic shuffle driven by the generated seed.
        let mut s = seed | 1;
        let mut next = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
        for i in (1..shuffled_bids.len()).rev() { let j = (next() % (i as u64 + 1)) as usize; shuffled_bids.swap(i, j); }
        for i in (1..shuffled_asks.len()).rev() { let j = (next() % (i as u64 + 1)) as usize; shuffled_asks.swap(i, j); }
        shuffled_bids.reverse();
        let mut q2 = quotas.clone();
        let again = clear(&shuffled_bids, &shuffled_asks, &rules, &mut q2);
        prop_assert_eq!(reference, again);
        prop_assert_eq!(q1, q2);
    }

    #[test]
    fn restricted_routes_never_trade_and_quotas_hold((bids, asks) in book(), (rules, quotas) in rules()) {
        let mut left = quotas.clone();
        let c = clear(&bids, &asks, &rules, &mut left);
        let mut used = vec![Quantity::ZERO; quotas.len()];
        for t in &c.trades {
            if t.seller_nation != t.buyer_nation {
                prop_assert!(!rules.banned.contains(&(t.seller_nation.0, t.buyer_nation.0)), "banned route traded: {:?}", t);
                if let Some(q) = rules.quota_of.get(&t.seller_nation.0) { used[*q] += t.quantity; }
            }
        }
        for (i, u) in used.iter().enumerate() {
            prop_assert!(*u <= quotas[i], "quota {} exceeded: {:?} > {:?}", i, u, quotas[i]);
            prop_assert_eq!(quotas[i] - *u, left[i]);
        }
        // Reserve releases (domestic only) go to their own nation's buyers.
        for t in &c.trades {
            let ask = asks.iter().find(|a| a.agent == t.seller && a.nation == t.seller_nation).unwrap();
            if asks.iter().filter(|a| a.agent == t.seller).all(|a| a.domestic_only) {
                prop_assert_eq!(t.seller_nation, t.buyer_nation, "domestic-only ask {:?} sold abroad", ask);
            }
        }
    }

    #[test]
    fn every_trade_respects_both_limits_after_tariffs((bids, asks) in book(), (rules, mut quotas) in rules()) {
        let c = clear(&bids, &asks, &rules, &mut quotas);
        for t in &c.trades {
            prop_assert!(t.quantity.is_positive());
            let best_bid = bids.iter().filter(|b| b.agent == t.buyer && b.nation == t.buyer_nation).map(|b| b.limit).max().unwrap();
            let worst_ask = asks.iter().filter(|a| a.agent == t.seller && a.nation == t.seller_nation).map(|a| a.limit).min().unwrap();
            let paid = t.price.0 as i128 * (10_000 + t.route.import_tariff_bp as i128);
            let got = t.price.0 as i128 * (10_000 - t.route.export_tariff_bp as i128);
            prop_assert!(paid <= best_bid.0 as i128 * 10_000, "buyer pays above its best bid: {:?}", t);
            prop_assert!(got >= worst_ask.0 as i128 * 10_000, "seller nets below its lowest ask: {:?}", t);
        }
    }

    #[test]
    fn quantities_are_conserved((bids, asks) in book(), (rules, mut quotas) in rules()) {
        let c = clear(&bids, &asks, &rules, &mut quotas);
        let bought = filled(&bids, &c, true);
        let sold = filled(&asks, &c, false);
        let total_bought: Quantity = bought.values().copied().sum();
        let total_sold: Quantity = sold.values().copied().sum();
        prop_assert_eq!(total_bought, total_sold);
        prop_assert_eq!(total_bought, c.volume());
        for ((agent, nation), q) in bought {
            let offered: Quantity = bids.iter().filter(|b| b.agent == agent && b.nation == nation).map(|b| b.quantity).sum();
            prop_assert!(q <= offered);
        }
        for ((agent, nation), q) in sold {
            let offered: Quantity = asks.iter().filter(|a| a.agent == agent && a.nation == nation).map(|a| a.quantity).sum();
            prop_assert!(q <= offered);
        }
    }

    /// Without restrictions: one uniform price between the marginal matched bid and ask, and the
    /// book is left uncrossed (no remaining bid at or above a remaining ask).
    #[test]
    fn free_market_clears_at_one_price_between_the_marginal_orders((bids, asks) in book()) {
        let asks: Vec<BookOrder> = asks.into_iter().map(|a| BookOrder { domestic_only: false, ..a }).collect();
        let c = clear(&bids, &asks, &FreeTrade, &mut []);
        if c.trades.is_empty() {
            let best_bid = bids.iter().map(|b| b.limit).max();
            let best_ask = asks.iter().map(|a| a.limit).min();
            if let (Some(b), Some(a)) = (best_bid, best_ask) { prop_assert!(b < a, "crossed book left unmatched"); }
            return Ok(());
        }
        let price = c.zone_prices[&Zone::World];
        prop_assert_eq!(c.zone_prices.len(), 1);
        prop_assert!(c.trades.iter().all(|t| t.price == price));
        // Marginal orders: the lowest bid and highest ask that traded.
        let key = |o: &BookOrder| (o.agent, o.seq);
        let mut bid_left: BTreeMap<(AgentId, u32), Quantity> = bids.iter().map(|b| (key(b), b.quantity)).collect();
        let mut ask_left: BTreeMap<(AgentId, u32), Quantity> = asks.iter().map(|a| (key(a), a.quantity)).collect();
        // Re-derive fills in priority order to find the marginal orders.
        let mut sorted_bids = bids.clone();
        sorted_bids.sort_by(|a, b| b.limit.cmp(&a.limit).then(key(a).cmp(&key(b))));
        let mut sorted_asks = asks.clone();
        sorted_asks.sort_by(|a, b| a.limit.cmp(&b.limit).then(key(a).cmp(&key(b))));
        let volume = c.volume();
        let take = |sorted: &[BookOrder], left: &mut BTreeMap<(AgentId, u32), Quantity>| {
            let mut v = volume;
            let mut marginal = None;
            for o in sorted {
                if !v.is_positive() { break; }
                let q = o.quantity.min(v);
                v -= q;
                *left.get_mut(&key(o)).unwrap() -= q;
                marginal = Some(o.limit);
            }
            marginal.unwrap()
        };
        let marginal_bid = take(&sorted_bids, &mut bid_left);
        let marginal_ask = take(&sorted_asks, &mut ask_left);
        prop_assert!(marginal_ask <= price && price <= marginal_bid, "price {:?} not within [{:?}, {:?}]", price, marginal_ask, marginal_bid);
        let best_left_bid = sorted_bids.iter().filter(|b| bid_left[&key(b)].is_positive()).map(|b| b.limit).max();
        let best_left_ask = sorted_asks.iter().filter(|a| ask_left[&key(a)].is_positive()).map(|a| a.limit).min();
        if let (Some(b), Some(a)) = (best_left_bid, best_left_ask) { prop_assert!(b < a, "book left crossed: bid {:?} >= ask {:?}", b, a); }
    }
}

#[test]
fn a_restricted_exporter_gets_its_own_lower_domestic_price() {
    // Nation 0 produces cheaply and bans exports to nation 1, which bids high.
    let rules = TestRules {
        banned: vec![(0, 1)],
        export_bp: BTreeMap::new(),
        import_bp: BTreeMap::new(),
        quota_of: BTreeMap::new(),
    };
    let asks = vec![order(100, 0, 0, 100, 10, false), order(101, 0, 1, 50, 60, false)];
    let bids = vec![order(1, 0, 0, 80, 20, false), order(2, 0, 1, 100, 90, false)];
    let c = clear(&bids, &asks, &rules, &mut []);
    let domestic = c.zone_prices[&Zone::Domestic(NationId(0))];
    let world = c.zone_prices[&Zone::World];
    assert!(domestic < world, "domestic {domestic:?} should be below world {world:?}");
    assert!(c.trades.iter().all(|t| !(t.seller_nation == NationId(0) && t.buyer_nation == NationId(1))));
}
