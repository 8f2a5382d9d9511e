//! One market's sealed-bid call auction, as a pure function of its order book and the trade
//! rules in force. It knows nothing of agents' books or of the world; the engine validates orders
//! before they arrive here and settles the trades that come out.
//!
//! Matching takes bids from the highest limit down and fills each from the cheapest ask it may
//! legally take, where "cheapest" counts the tariffs on that route. Ties are broken by
//! (agent, order position), never by arrival. Without restrictions this is the classic call
//! auction and every trade clears at one price between the marginal bid and the marginal ask.
//! With restrictions, a nation whose exports are restricted has its own domestic price zone (its
//! domestic trades clear at a price of their own, typically below the world's), and every trade's
//! price is kept inside both parties' limits after tariffs.

use agents::{AgentId, NationId, Price, Quantity};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One order in the book, already validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookOrder {
    pub agent: AgentId,
    pub nation: NationId,
    /// The order's position among its agent's orders: the second half of the tie-break key.
    pub seq: u32,
    pub quantity: Quantity,
    pub limit: Price,
    /// A sell order only buyers in its own nation may take.
    pub domestic_only: bool,
}

/// What the trade rules say about one route from a seller's nation to a buyer's nation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Route {
    pub allowed: bool,
    /// Ad valorem tariff the exporter's government takes from the seller, in basis points.
    pub export_tariff_bp: u32,
    /// Ad valorem tariff the importer's government takes from the buyer, in basis points.
    pub import_tariff_bp: u32,
    /// Ticks the goods wait for an export licence before delivery.
    pub delay_ticks: u32,
    /// The quota this route draws on, if any (an index into the quota table).
    pub quota: Option<usize>,
}

/// The trade rules in force for one market.
pub trait Rules {
    /// The route from `seller` to `buyer`; only called for two different nations.
    fn route(&self, seller: NationId, buyer: NationId) -> Route;
    /// Whether `nation`'s exports of this market are restricted at all, which gives it a
    /// domestic price zone of its own.
    fn exports_restricted(&self, nation: NationId) -> bool;
    /// Whether no rule applies at all (every route open and free), so routes need not be asked.
    fn is_free(&self) -> bool {
        false
    }
    /// Whether some rule may make a route from `nation` to another nation anything but open and
    /// free. `false` promises `route(nation, b)` is open and free for every `b` whose
    /// `import_rules` is also false. The default (`true`) is always correct, only slower.
    fn export_rules(&self, nation: NationId) -> bool {
        let _ = nation;
        true
    }
    /// Whether some rule may make a route into `nation` anything but open and free (an import
    /// tariff). See [`Rules::export_rules`].
    fn import_rules(&self, nation: NationId) -> bool {
        let _ = nation;
        true
    }
}

/// No restrictions anywhere: every route open and free.
pub struct FreeTrade;

impl Rules for FreeTrade {
    fn route(&self, _: NationId, _: NationId) -> Route {
        Route { allowed: true, ..Route::default() }
    }
    fn exports_restricted(&self, _: NationId) -> bool {
        false
    }
    fn is_free(&self) -> bool {
        true
    }
    fn export_rules(&self, _: NationId) -> bool {
        false
    }
    fn import_rules(&self, _: NationId) -> bool {
        false
    }
}

/// The price zone a trade cleared in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Zone {
    World,
    /// Domestic trades inside a nation whose exports are restricted.
    Domestic(NationId),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trade {
    pub buyer: AgentId,
    pub buyer_nation: NationId,
    pub seller: AgentId,
    pub seller_nation: NationId,
    pub quantity: Quantity,
    /// The clearing price, before tariffs.
    pub price: Price,
    pub route: Route,
    pub zone: Zone,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Clearing {
    /// In matching order.
    pub trades: Vec<Trade>,
    /// The uniform price of each zone that traded.
    pub zone_prices: BTreeMap<Zone, Price>,
}

impl Clearing {
    pub fn volume(&self) -> Quantity {
        self.trades.iter().map(|t| t.quantity).sum()
    }
}

/// The lowest pre-tariff price at which a seller asking `ask` nets at least its ask.
fn seller_floor(ask: Price, export_tariff_bp: u32) -> Price {
    if export_tariff_bp == 0 {
        return ask;
    }
    let keep = 10_000 - i64::from(export_tariff_bp.min(9_999));
    ask.scale_ceil(10_000, keep)
}

/// The highest pre-tariff price at which a buyer bidding `bid` pays at most its bid.
fn buyer_ceiling(bid: Price, import_tariff_bp: u32) -> Price {
    if import_tariff_bp == 0 {
        return bid;
    }
    bid.scale_floor(10_000, 10_000 + i64::from(import_tariff_bp))
}

struct Ask {
    order: BookOrder,
    left: Quantity,
}

/// Asks grouped by (nation, domestic only): within a group every route is the same, so the
/// group's cheapest ask is its head.
type Key = (NationId, bool);
type Groups = BTreeMap<Key, VecDeque<Ask>>;

/// A matched pair before pricing: its limits in pre-tariff price terms.
struct Match {
    trade: Trade,
    floor: Price,
    ceiling: Price,
}

/// The ask groups of one market, indexed for finding a bid's cheapest legal ask quickly.
///
/// A bid may take the head of any group whose route to it is allowed, at a floor price that
/// depends on the route's tariffs; it takes the one with the lowest (floor, group key). Most
/// groups are *plain*: open to every buyer at no tariff (not domestic only, and no rule names
/// their nation as an exporter). Their heads sit in `plain`, ordered by (limit, key), so the
/// cheapest of them is the first entry; only the few groups of nations that rules name
/// (`special`), and the bid's own nation's domestic-only group, are looked at one by one. A
/// buyer whose imports some rule touches has every group scanned, as the reference does.
struct Book {
    groups: Groups,
    plain: BTreeSet<(Price, Key)>,
    special: Vec<Key>,
    /// Scan every group for every bid (the reference `clear_by_scanning` uses).
    scan_all: bool,
}

impl Book {
    fn new(asks: &[BookOrder], rules: &dyn Rules, scan_all: bool) -> Book {
        let mut sorted_asks: Vec<&BookOrder> = asks.iter().filter(|a| a.quantity.is_positive()).collect();
        // (agent, position) is unique within a side, so an unstable sort gives the one order.
        sorted_asks.sort_unstable_by_key(|a| (a.limit, a.agent, a.seq));
        let mut groups: Groups = BTreeMap::new();
        for a in sorted_asks {
            groups
                .entry((a.nation, a.domestic_only))
                .or_default()
                .push_back(Ask { order: a.clone(), left: a.quantity });
        }
        let mut plain = BTreeSet::new();
        let mut special = Vec::new();
        for (&key, queue) in &groups {
            if key.1 {
                continue;
            }
            if rules.export_rules(key.0) {
                special.push(key);
            } else if let Some(head) = queue.front() {
                plain.insert((head.order.limit, key));
            }
        }
        Book { groups, plain, special, scan_all }
    }

    /// The cheapest ask `bid` may take, with its route and the pair's price limits.
    fn best_ask(
        &self,
        bid: &BookOrder,
        rules: &dyn Rules,
        free: bool,
        quotas: &[Quantity],
    ) -> Option<(Key, Route, Price, Price)> {
        if self.scan_all || (!free && rules.import_rules(bid.nation)) {
            return best_by_scanning(bid, self.groups.iter(), rules, free, quotas);
        }
        let mut best = self.plain.first().and_then(|&(limit, key)| {
            (limit <= bid.limit).then_some((key, Route { allowed: true, ..Route::default() }, limit, bid.limit))
        });
        let own = (bid.nation, true);
        let others = self.special.iter().chain(std::iter::once(&own)).filter_map(|k| self.groups.get_key_value(k));
        if let Some(found) = best_by_scanning(bid, others, rules, free, quotas)
            && best.as_ref().is_none_or(|b| (found.2, found.0) < (b.2, b.0))
        {
            best = Some(found);
        }
        best
    }

    /// Takes `quantity` from the head of group `key`, moving on to the next ask when the head is
    /// used up. Returns the seller.
    fn take(&mut self, key: Key, quantity: Quantity) -> AgentId {
        let queue = self.groups.get_mut(&key).expect("best_ask returns an existing group");
        let ask = queue.front_mut().expect("best_ask returns a non-empty group");
        ask.left -= quantity;
        let seller = ask.order.agent;
        if !ask.left.is_positive() {
            let old = ask.order.limit;
            queue.pop_front();
            if self.plain.remove(&(old, key))
                && let Some(next) = queue.front()
            {
                self.plain.insert((next.order.limit, key));
            }
        }
        seller
    }
}

/// Clears one market. `quotas` holds the remaining quantity of each quota the rules refer to and
/// is drawn down by the trades made.
pub fn clear(bids: &[BookOrder], asks: &[BookOrder], rules: &dyn Rules, quotas: &mut [Quantity]) -> Clearing {
    clear_with(bids, asks, rules, quotas, false)
}

/// The same auction as [`clear`], found the plain way: every bid looks at the head of every ask
/// group. Slower with many nations; kept as the reference the indexed book is tested against.
pub fn clear_by_scanning(
    bids: &[BookOrder],
    asks: &[BookOrder],
    rules: &dyn Rules,
    quotas: &mut [Quantity],
) -> Clearing {
    clear_with(bids, asks, rules, quotas, true)
}

fn clear_with(
    bids: &[BookOrder],
    asks: &[BookOrder],
    rules: &dyn Rules,
    quotas: &mut [Quantity],
    scan_all: bool,
) -> Clearing {
    // Copies, not references, so matching reads the sorted book in order (on a large market
    // the references would send every read to a random place).
    let mut bids: Vec<BookOrder> = bids.iter().filter(|b| b.quantity.is_positive()).cloned().collect();
    bids.sort_unstable_by_key(|b| (std::cmp::Reverse(b.limit), b.agent, b.seq));
    let mut book = Book::new(asks, rules, scan_all);

    let free = rules.is_free();
    // In a free market with no domestic-only asks every bid sees the same asks, so once one bid
    // finds none it may take, no later (lower) bid can find one either.
    let uniform = free && !scan_all && book.groups.keys().all(|(_, domestic_only)| !domestic_only);
    let mut matches = Vec::new();
    for bid in &bids {
        let mut left = bid.quantity;
        while left.is_positive() {
            let Some((key, route, floor, ceiling)) = book.best_ask(bid, rules, free, quotas) else { break };
            let head = book.groups.get(&key).and_then(|q| q.front()).map_or(Quantity::ZERO, |a| a.left);
            let mut quantity = left.min(head);
            if let Some(q) = route.quota {
                quantity = quantity.min(quotas[q]);
                quotas[q] -= quantity;
            }
            left -= quantity;
            let seller = book.take(key, quantity);
            let zone = if !free && key.0 == bid.nation && rules.exports_restricted(bid.nation) {
                Zone::Domestic(bid.nation)
            } else {
                Zone::World
            };
            let trade = Trade {
                buyer: bid.agent,
                buyer_nation: bid.nation,
                seller,
                seller_nation: key.0,
                quantity,
                price: Price::ZERO,
                route,
                zone,
            };
            matches.push(Match { trade, floor, ceiling });
        }
        if uniform && left.is_positive() {
            break;
        }
    }
    price(matches)
}

/// The cheapest ask `bid` may take among `groups` (in key order), with its route and the
/// pair's price limits.
fn best_by_scanning<'a>(
    bid: &BookOrder,
    groups: impl Iterator<Item = (&'a Key, &'a VecDeque<Ask>)>,
    rules: &dyn Rules,
    free: bool,
    quotas: &[Quantity],
) -> Option<(Key, Route, Price, Price)> {
    let mut best: Option<(Key, Route, Price, Price)> = None;
    for (&(nation, domestic_only), queue) in groups {
        let Some(head) = queue.front() else { continue };
        let route = if nation == bid.nation || (free && !domestic_only) {
            Route { allowed: true, ..Route::default() }
        } else if domestic_only {
            continue;
        } else {
            rules.route(nation, bid.nation)
        };
        if !route.allowed || route.quota.is_some_and(|q| !quotas[q].is_positive()) {
            continue;
        }
        let floor = seller_floor(head.order.limit, route.export_tariff_bp);
        let ceiling = buyer_ceiling(bid.limit, route.import_tariff_bp);
        if floor > ceiling {
            continue;
        }
        // Strictly cheaper wins; on a tie the earlier group (by nation) does.
        if best.as_ref().is_none_or(|b| (floor, (nation, domestic_only)) < (b.2, b.0)) {
            best = Some(((nation, domestic_only), route, floor, ceiling));
        }
    }
    best
}

/// Sets each zone's uniform price halfway between its marginal (lowest) ceiling and marginal
/// (highest) floor, rounded down, and clamps each trade into its own limits.
fn price(matches: Vec<Match>) -> Clearing {
    let mut bounds: BTreeMap<Zone, (Price, Price)> = BTreeMap::new();
    for m in &matches {
        let e = bounds.entry(m.trade.zone).or_insert((m.ceiling, m.floor));
        e.0 = e.0.min(m.ceiling);
        e.1 = e.1.max(m.floor);
    }
    let zone_prices: BTreeMap<Zone, Price> =
        bounds.into_iter().map(|(z, (ceiling, floor))| (z, Price::midpoint_floor(ceiling, floor))).collect();
    let trades = matches
        .into_iter()
        .map(|m| {
            let uniform = zone_prices[&m.trade.zone];
            Trade { price: uniform.clamp(m.floor, m.ceiling), ..m.trade }
        })
        .collect();
    Clearing { trades, zone_prices }
}
