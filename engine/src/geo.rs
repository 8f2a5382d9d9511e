//! The geopolitical and structural mechanics of a tick: forecasts with skill, announced
//! restrictions, alliances (exemptions, joint procurement, reserve sharing, diplomacy),
//! offtake contracts, shipping lanes, recycling, stockpile security, investment with lead
//! times, local opposition, and substitution.
//!
//! These act on the world's structure rather than on one tick's books, so the engine runs them
//! itself, at fixed points of the tick and in a fixed order, drawing randomness only from the
//! run's named streams keyed by (seed, agent, tick, purpose). Slow decisions (investment,
//! substitution, diplomacy) are taken once a quarter, at fixed ticks.

use super::{Engine, Ledger};
use crate::market::{self, BookOrder, Rules, Zone};
use crate::policy::Restriction;
use crate::record::TickRecord;
use crate::scenario::{Event, EventKind, SubsidyKind};
use crate::world::{Consumption, Disruption, Outage, Project, domestic_consumption};
use agents::observation::Announcement;
use agents::rng::Purpose;
use agents::rng::Rng;
use agents::{AgentId, AgentSpec, CommodityId, MarketId, Money, NationId, Price, Quantity, Stage, Tick};
use std::collections::BTreeMap;

/// Ticks over which the trend price is smoothed; forecasters extrapolate over it.
const TREND_TICKS: i64 = 13;
/// Investors want their capital back within this many years of margin at the forecast price.
const PAYBACK_YEARS: i64 = 4;
/// Yearly probability (basis points) of an opposition episode at a site of footprint 100 in a
/// nation of sensitivity 1.
const OPPOSITION_BP_PER_YEAR: i64 = 2_000;
/// A permit delay or a blockade lasts this many ticks.
const OPPOSITION_TICKS: u32 = 26;
/// Yearly probability (basis points) of theft or an accident at a stockpile, good and poor
/// storage, before security spending; and the share of the stock it costs.
const RISK_BP_PER_YEAR: [i64; 2] = [200, 1_000];
const RISK_LOSS_BP: [i64; 2] = [500, 2_000];
/// Security spending of this much a year halves the risk (and twice as much thirds it).
const SECURITY_HALVES: Money = Money(10_000_000 * 100);
/// Members admit a nation whose affinity with each of them is at least this (0 to 1,000).
pub const ADMIT_AFFINITY: i64 = 700;
/// Research funding of this much a year doubles the speed of substitution.
const RD_DOUBLES: Money = Money(50_000_000 * 100);

/// Member bids pooled by an alliance that procures jointly: one combined bid by `lead`.
pub(super) struct JointBid {
    pub alliance: usize,
    pub market: MarketId,
    pub lead: AgentId,
    /// Each member agency and the quantity it asked for.
    pub members: Vec<(AgentId, Quantity)>,
}

/// Facts derived once from the scenario.
#[derive(Clone, Debug, Default)]
pub(super) struct Derived {
    /// Manufacturers using each commodity in each nation, with their base demand:
    /// `[nation * commodities + commodity]`. Recycled material goes to them.
    pub users: Vec<Vec<(AgentId, Quantity)>>,
    /// The nation with the most refining capacity of each commodity at tick 0.
    pub dominant_refiner: Vec<Option<NationId>>,
}

impl Derived {
    pub fn new(scenario: &crate::scenario::Scenario) -> Derived {
        let commodities = scenario.commodities.len();
        let mut users = vec![Vec::new(); scenario.nations.len() * commodities];
        let mut refining: BTreeMap<(CommodityId, NationId), Quantity> = BTreeMap::new();
        for (i, a) in scenario.agents.iter().enumerate() {
            match &a.spec {
                AgentSpec::Manufacturer { nation, demand_per_tick, .. } => {
                    for (c, q) in demand_per_tick {
                        users[nation.index() * commodities + c.index()].push((AgentId(i as u32), *q));
                    }
                }
                AgentSpec::Refiner { nation, commodity, capacity_per_tick, .. } => {
                    *refining.entry((*commodity, *nation)).or_default() += *capacity_per_tick;
                }
                _ => {}
            }
        }
        let dominant_refiner = (0..commodities)
            .map(|c| {
                let c = CommodityId(c as u16);
                refining.iter().filter(|((k, _), _)| *k == c).max_by_key(|(_, q)| **q).map(|((_, n), _)| *n)
            })
            .collect();
        Derived { users, dominant_refiner }
    }
}

impl Engine {
    // -----------------------------------------------------------------------------------------
    // What agents see.

    /// Each nation's forecasts of its stockpiled commodities at its horizon: the domestic price
    /// extrapolated along its trend, and consumption, both blurred by the nation's noise.
    pub(super) fn make_forecasts(&mut self, tick: Tick, consumption: &Consumption) {
        let mut ahead: Vec<(u32, Consumption)> = Vec::new();
        for n in 0..self.scenario.nations.len() {
            let spec = &self.scenario.nations[n];
            if self.state.nations[n].stockpiles.is_empty() {
                continue;
            }
            let horizon = spec.forecast_horizon_ticks;
            if !ahead.iter().any(|(h, _)| *h == horizon) {
                let later = if horizon == 0 {
                    consumption.clone()
                } else {
                    domestic_consumption(&self.scenario, &self.state, Tick(tick.0.saturating_add(horizon)))
                };
                ahead.push((horizon, later));
            }
            let later = &ahead.iter().find(|(h, _)| *h == horizon).expect("just added").1;
            let noise = i64::from(spec.forecast_noise_bp);
            let mut rng = self.streams.stream(AgentId(n as u32), tick, Purpose::Forecast);
            let nation = NationId(n as u16);
            for pile in &mut self.state.nations[n].stockpiles {
                let market = MarketId::refined(pile.commodity);
                let m = &self.state.markets[market.index()];
                let last = m.domestic_prices.iter().find(|(d, _)| *d == nation).map_or(m.last_price, |(_, p)| *p);
                // The trend is the world price's: for a restricted exporter the gap between its
                // domestic price and the world trend is the zone's spread, not a movement.
                let slope = (m.last_price - m.trend_price).scale_floor(i64::from(horizon), TREND_TICKS);
                let bounds = self.scenario.stage(market);
                let (price_noise, demand_noise) = if noise > 0 {
                    (rng.random_range(-noise..=noise), rng.random_range(-noise..=noise))
                } else {
                    (0, 0)
                };
                pile.price_forecast =
                    (last + slope).scale_floor(10_000 + price_noise, 10_000).clamp(bounds.price_min, bounds.price_max);
                pile.demand_forecast = later.get(nation, pile.commodity).scale_floor(10_000 + demand_noise, 10_000);
            }
        }
    }

    /// Goods in transit to each agent, by market.
    pub(super) fn incoming(&self) -> BTreeMap<AgentId, Vec<(MarketId, Quantity)>> {
        let mut out: BTreeMap<AgentId, Vec<(MarketId, Quantity)>> = BTreeMap::new();
        for s in &self.state.shipments {
            let list = out.entry(s.buyer).or_default();
            match list.binary_search_by_key(&s.market, |(m, _)| *m) {
                Ok(i) => list[i].1 += s.quantity,
                Err(i) => list.insert(i, (s.market, s.quantity)),
            }
        }
        out
    }

    /// Export restrictions that limit trade: in force, and announced but not yet in force at
    /// `tick`. Nations exempt as allies are not among the affected.
    pub(super) fn announcements(&self, tick: Tick) -> Vec<Announcement> {
        let allies = self.exempt_pairs();
        let mut out = Vec::new();
        for a in &self.state.policies.active {
            let (exporter, market, to) = match &a.rule {
                Restriction::ExportBan { nation, market, to }
                | Restriction::ExportQuota { nation, market, to, .. }
                | Restriction::ExportLicensing { nation, market, to, .. } => (*nation, *market, to),
                _ => continue,
            };
            out.push(self.announcement(exporter, market, to, a.allies_exempt, a.since, &allies));
        }
        for e in self.events.iter().filter(|e| e.announced.is_some_and(|a| a <= tick) && e.tick > tick) {
            let (exporter, market, to) = match &e.kind {
                EventKind::ExportBan { nation, market, to }
                | EventKind::ExportQuota { nation, market, to, .. }
                | EventKind::ExportLicensing { nation, market, to, .. } => (*nation, *market, to),
                _ => continue,
            };
            out.push(self.announcement(exporter, market, to, e.allies_exempt, e.tick, &allies));
        }
        out.sort_by_key(|a| a.effective);
        out
    }

    /// A restriction by `exporter` on `market` to `to`, effective at `effective`, as the public
    /// sees it: whose imports it restricts and how much of the trade the exporter holds.
    fn announcement(
        &self,
        exporter: NationId,
        market: MarketId,
        to: &crate::scenario::Partners,
        allies_exempt: bool,
        effective: Tick,
        allies: &[(NationId, NationId)],
    ) -> Announcement {
        let affected = (0..self.scenario.nations.len())
            .map(|n| NationId(n as u16))
            .filter(|n| {
                *n != exporter && to.includes(*n) && !(allies_exempt && allies.binary_search(&(exporter, *n)).is_ok())
            })
            .collect();
        Announcement { market, exporter, effective, affected, share_bp: self.export_share_bp(exporter, market) }
    }

    /// `nation`'s share of the world's cross-border trade in `market` over the last year, in
    /// basis points (from the export ledger).
    fn export_share_bp(&self, nation: NationId, market: MarketId) -> u32 {
        let all: i128 = (0..self.scenario.nations.len())
            .map(|n| i128::from(self.state.exports.last_year(NationId(n as u16), market).0))
            .sum();
        if all <= 0 {
            return 0;
        }
        (i128::from(self.state.exports.last_year(nation, market).0) * 10_000 / all).clamp(0, 10_000) as u32
    }

    /// A mine's or refinery's capacity this tick: none while an outage lasts.
    pub(super) fn capacity_now(&self, agent: AgentId) -> Quantity {
        if self.state.outages.iter().any(|o| o.site == agent) {
            return Quantity::ZERO;
        }
        self.state.agents[agent.index()].capacity
    }

    // -----------------------------------------------------------------------------------------
    // Alliances.

    /// Pairs of nations (both orders, sorted) exempt from each other's export restrictions.
    pub(super) fn exempt_pairs(&self) -> Vec<(NationId, NationId)> {
        let mut pairs = Vec::new();
        for (def, members) in self.scenario.alliances.iter().zip(&self.state.alliances) {
            if !def.exempt_from_restrictions {
                continue;
            }
            for a in members {
                for b in members {
                    if a != b {
                        pairs.push((*a, *b));
                    }
                }
            }
        }
        pairs.sort();
        pairs.dedup();
        pairs
    }

    /// Pools the agencies' bids of each alliance that procures jointly: in each market where
    /// two or more members bid, their bids become one, by the first member, for the sum of the
    /// quantities at the lowest of their limits (the price all members accept).
    pub(super) fn pool_joint_bids(&self, bids: &mut [Vec<BookOrder>]) -> Vec<JointBid> {
        let mut out = Vec::new();
        let mut pooled: Vec<AgentId> = Vec::new();
        for (k, (def, members)) in self.scenario.alliances.iter().zip(&self.state.alliances).enumerate() {
            if !def.joint_procurement || members.len() < 2 {
                continue;
            }
            let agencies: Vec<AgentId> =
                members.iter().map(|n| AgentId(n.index() as u32)).filter(|a| !pooled.contains(a)).collect();
            for (i, book) in bids.iter_mut().enumerate() {
                let market = MarketId::from_index(i);
                let mut asked: Vec<(AgentId, Quantity)> = Vec::new();
                let mut limit: Option<Price> = None;
                for b in book.iter().filter(|b| agencies.contains(&b.agent)) {
                    match asked.iter_mut().find(|(a, _)| *a == b.agent) {
                        Some(entry) => entry.1 += b.quantity,
                        None => asked.push((b.agent, b.quantity)),
                    }
                    limit = Some(limit.map_or(b.limit, |l| l.min(b.limit)));
                }
                let (Some(limit), true) = (limit, asked.len() >= 2) else { continue };
                asked.sort();
                book.retain(|b| !agencies.contains(&b.agent));
                let lead = asked[0].0;
                let total = asked.iter().map(|(_, q)| *q).sum();
                book.push(BookOrder {
                    agent: lead,
                    nation: NationId(lead.0 as u16),
                    seq: 1_000_000 + k as u32,
                    quantity: total,
                    limit,
                    domestic_only: false,
                });
                out.push(JointBid { alliance: k, market, lead, members: asked });
            }
            pooled.extend(agencies);
        }
        out
    }

    /// Shares what a pooled bid bought among the members, in proportion to what each asked
    /// for, at the average price paid (what is still in transit stays with the lead).
    pub(super) fn allocate_joint(
        &mut self,
        tick: Tick,
        j: &JointBid,
        clearing: &market::Clearing,
        record: &mut TickRecord,
    ) {
        let (mut bought, mut paid) = (Quantity::ZERO, Money::ZERO);
        for t in clearing.trades.iter().filter(|t| t.buyer == j.lead) {
            bought += t.quantity;
            paid += t.price.value_of(t.quantity);
        }
        let asked: Quantity = j.members.iter().map(|(_, q)| *q).sum();
        if !bought.is_positive() || !asked.is_positive() {
            return;
        }
        for &(member, q) in j.members.iter().filter(|(m, _)| *m != j.lead) {
            let share = bought.scale_floor(q.0, asked.0).min(self.state.agents[j.lead.index()].holding(j.market));
            if !share.is_positive() {
                continue;
            }
            let cost = paid.scale_floor(share.0, bought.0);
            self.state.agents[j.lead.index()].add(j.market, -share);
            self.state.agents[j.lead.index()].cash += cost;
            self.state.agents[member.index()].add(j.market, share);
            self.state.agents[member.index()].cash -= cost;
            record.events.push((
                tick,
                format!(
                    "{}: {} took {share} of {} bought jointly, for {cost}",
                    self.scenario.alliances[j.alliance].code,
                    self.scenario.nation_code(NationId(member.0 as u16)),
                    self.scenario.commodity_code(j.market.commodity)
                ),
            ));
        }
    }

    /// Reserve sharing: a member of an alliance that shares reserves whose industry went short
    /// and whose own reserve cannot cover it buys from allies' reserves at the agreed price
    /// (each ally gives at most a quarter of its stock a tick). Its agency then releases it.
    pub(super) fn share_reserves(&mut self, tick: Tick, record: &mut TickRecord) {
        for (def, members) in self.scenario.alliances.iter().zip(self.state.alliances.clone()) {
            let Some(price_bp) = def.reserve_sharing_price_bp else { continue };
            for &taker in &members {
                for p in 0..self.state.nations[taker.index()].stockpiles.len() {
                    let pile = &self.state.nations[taker.index()].stockpiles[p];
                    let (commodity, short) = (pile.commodity, pile.shortage_last_tick);
                    let market = MarketId::refined(commodity);
                    let own = self.state.agents[taker.index()].holding(market);
                    let mut need = short - own;
                    let price = self.scenario.stage(market).reference.scale_floor(i64::from(price_bp), 10_000);
                    for &giver in members.iter().filter(|g| **g != taker) {
                        if !need.is_positive() {
                            break;
                        }
                        let stock = self.state.agents[giver.index()].holding(market);
                        let cash = self.state.agents[taker.index()].cash.max(Money::ZERO);
                        let give = need.min(stock.scale_floor(1, 4)).min(price.affordable(cash));
                        if !give.is_positive() {
                            continue;
                        }
                        let cost = price.value_of(give);
                        self.state.agents[giver.index()].add(market, -give);
                        self.state.agents[giver.index()].cash += cost;
                        self.state.agents[taker.index()].add(market, give);
                        self.state.agents[taker.index()].cash -= cost;
                        need -= give;
                        record.events.push((
                            tick,
                            format!(
                                "{}: {} shared {give} of {} reserves with {} at {price}",
                                def.code,
                                self.scenario.nation_code(giver),
                                self.scenario.commodity_code(commodity),
                                self.scenario.nation_code(taker)
                            ),
                        ));
                    }
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Offtakes and lanes.

    /// Offtake contracts: before `market` clears, each contract takes its share of what the
    /// site offers, at its formula price (a share of the price the site faces), if the host's
    /// restrictions allow the route (a ban blocks it; a quota counts it; licensing delays it).
    /// The site's offers shrink by what was taken.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn offtakes(
        &mut self,
        tick: Tick,
        market: MarketId,
        rules: &dyn Rules,
        quotas: &mut [Quantity],
        asks: &mut [BookOrder],
        record: &mut TickRecord,
        ledger: &mut Ledger,
    ) {
        let scenario = self.scenario.clone();
        for o in &scenario.offtakes {
            let spec = &scenario.agents[o.site.index()].spec;
            let product = match spec {
                AgentSpec::Miner { commodity, .. } => MarketId::ore(*commodity),
                AgentSpec::Refiner { commodity, .. } => MarketId::refined(*commodity),
                _ => continue,
            };
            if product != market {
                continue;
            }
            let offered: Quantity = asks.iter().filter(|a| a.agent == o.site).map(|a| a.quantity).sum();
            let mut quantity = offered.scale_floor(i64::from(o.share_bp), 10_000);
            let (seller_nation, buyer_nation) = (spec.nation(), scenario.agents[o.buyer.index()].spec.nation());
            let route = if seller_nation == buyer_nation {
                market::Route { allowed: true, ..market::Route::default() }
            } else {
                rules.route(seller_nation, buyer_nation)
            };
            if !route.allowed {
                continue;
            }
            if let Some(k) = route.quota {
                quantity = quantity.min(quotas[k]);
            }
            let m = &self.state.markets[market.index()];
            let faced = m.domestic_prices.iter().find(|(n, _)| *n == seller_nation).map_or(m.last_price, |(_, p)| *p);
            let price = faced.scale_floor(i64::from(o.price_bp), 10_000).max(Price(1));
            if matches!(scenario.agents[o.buyer.index()].spec, AgentSpec::Nation { .. }) {
                quantity = quantity.min(price.affordable(self.state.agents[o.buyer.index()].cash.max(Money::ZERO)));
            }
            if !quantity.is_positive() {
                continue;
            }
            if let Some(k) = route.quota {
                quotas[k] -= quantity;
            }
            let mut left = quantity;
            for a in asks.iter_mut().rev().filter(|a| a.agent == o.site) {
                let cut = left.min(a.quantity);
                a.quantity -= cut;
                left -= cut;
            }
            let trade = market::Trade {
                buyer: o.buyer,
                buyer_nation,
                seller: o.site,
                seller_nation,
                quantity,
                price,
                route,
                zone: Zone::World,
            };
            let mut deltas = std::mem::take(&mut self.deltas);
            self.settle(tick, market, &trade, record, ledger, &mut deltas);
            deltas.apply(&mut self.state.agents, market);
            self.deltas = deltas;
        }
    }

    /// Transit time and freight for goods going from one nation to another.
    pub(super) fn lane_terms(&self, from: NationId, to: NationId, quantity: Quantity) -> (u32, Money) {
        let (a, b) = (self.scenario.nations[from.index()].region, self.scenario.nations[to.index()].region);
        if a == b {
            return (0, Money::ZERO);
        }
        match self.scenario.lane_between(a, b) {
            Some((id, lane)) => {
                let extra: u32 = self.state.disruptions.iter().filter(|d| d.lane == id).map(|d| d.extra_ticks).sum();
                (lane.transit_ticks + extra, lane.cost_per_kg.value_of(quantity))
            }
            None => (0, Money::ZERO),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Recycling.

    /// Recycled supply: what reaches end of life now times the recovery rate, delivered to the
    /// nation's manufacturers of the commodity in proportion to their base demand.
    pub(super) fn recycle(&mut self, _tick: Tick, record: &mut TickRecord, ledger: &mut Ledger) {
        let commodities = self.scenario.commodities.len();
        for i in 0..self.state.recycling.len() {
            let r = &self.state.recycling[i];
            if r.rate_bp == 0 || !r.end_of_life.is_positive() || self.derived.users[i].is_empty() {
                continue;
            }
            let total = r.end_of_life.scale_floor(i64::from(r.rate_bp), 10_000);
            if !total.is_positive() {
                continue;
            }
            let (n, c) = (NationId((i / commodities) as u16), CommodityId((i % commodities) as u16));
            let market = MarketId::refined(c);
            let weights: Quantity = self.derived.users[i].iter().map(|(_, q)| *q).sum();
            let mut given = Quantity::ZERO;
            for (k, &(agent, q)) in self.derived.users[i].iter().enumerate() {
                let share = if k + 1 == self.derived.users[i].len() {
                    total - given
                } else if weights.is_positive() {
                    total.scale_floor(q.0, weights.0)
                } else {
                    Quantity::ZERO
                };
                self.state.agents[agent.index()].add(market, share);
                given += share;
            }
            ledger.goods_created[market.index()] += total;
            *record.recycled.entry((n, c)).or_default() += total;
        }
    }

    // -----------------------------------------------------------------------------------------
    // The slow processes, after the markets.

    pub(super) fn slow_processes(&mut self, tick: Tick, record: &mut TickRecord, ledger: &mut Ledger) {
        self.stockpile_security(tick, record, ledger);
        self.build(tick);
        self.state.outages.retain(|o| o.until.is_none_or(|u| u.0 > tick.0 + 1));
        self.opposition(tick, record);
        self.update_recycling(record);
        // Slow decisions are taken once a quarter: every 13 weekly ticks, every 3 monthly ones.
        let quarter = (self.scenario.ticks_per_year / 4).max(1);
        if tick.0 % quarter == quarter - 1 {
            self.invest(tick, record, ledger);
            self.substitute();
        }
        if tick.0 % quarter == quarter / 2 {
            self.diplomacy(tick, record);
        }
        for m in &mut self.state.markets {
            m.trend_price = m.trend_price + (m.last_price - m.trend_price).scale_floor(1, TREND_TICKS);
        }
    }

    /// Security and research spending, and theft and accidents at stockpiles (the risk falls
    /// with security spending; poor storage raises it and what an incident costs).
    fn stockpile_security(&mut self, tick: Tick, record: &mut TickRecord, ledger: &mut Ledger) {
        let tpy = i64::from(self.scenario.ticks_per_year.max(1));
        for n in 0..self.scenario.nations.len() {
            let spec = &self.scenario.nations[n];
            let rd: Money = self.state.nations[n].rd_per_year.iter().map(|(_, m)| *m).sum();
            let spend = spec.security_per_year.scale_floor(1, tpy) + rd.scale_floor(1, tpy);
            if spend.is_positive() {
                self.state.agents[n].cash -= spend;
                ledger.money_out += spend;
            }
            if self.state.nations[n].stockpiles.is_empty() {
                continue;
            }
            let poor = usize::from(spec.poor_storage);
            // Per-tick probability in parts per billion.
            let ppb = RISK_BP_PER_YEAR[poor] * 100_000 / tpy * SECURITY_HALVES.0
                / (SECURITY_HALVES.0 + spec.security_per_year.0.max(0));
            let mut rng = self.streams.stream(AgentId(n as u32), tick, Purpose::StockpileRisk);
            for p in 0..self.state.nations[n].stockpiles.len() {
                let commodity = self.state.nations[n].stockpiles[p].commodity;
                let market = MarketId::refined(commodity);
                let draw: i64 = rng.random_range(0..1_000_000_000);
                let stock = self.state.agents[n].holding(market);
                if draw >= ppb || !stock.is_positive() {
                    continue;
                }
                let lost = stock.scale_floor(RISK_LOSS_BP[poor], 10_000);
                self.state.agents[n].add(market, -lost);
                ledger.goods_destroyed[market.index()] += lost;
                record.events.push((
                    tick,
                    format!(
                        "theft or accident at {}'s {} stockpile: {lost} lost",
                        spec.code,
                        self.scenario.commodity_code(commodity)
                    ),
                ));
            }
        }
    }

    /// Projects coming on line add capacity, linearly over the commodity's ramp-up.
    fn build(&mut self, tick: Tick) {
        let mut done = Vec::new();
        for (i, p) in self.state.projects.iter_mut().enumerate() {
            if p.online.0 > tick.0 {
                continue;
            }
            let commodity = match &self.scenario.agents[p.site.index()].spec {
                AgentSpec::Miner { commodity, .. } | AgentSpec::Refiner { commodity, .. } => *commodity,
                _ => continue,
            };
            let ramp = i64::from(self.scenario.commodities[commodity.index()].ramp_ticks.max(1));
            let step = Quantity((p.capacity.0 + ramp - 1) / ramp).min(p.capacity - p.delivered);
            p.delivered += step;
            self.state.agents[p.site.index()].capacity += step;
            if p.delivered >= p.capacity {
                done.push(i);
            }
        }
        for i in done.into_iter().rev() {
            self.state.projects.remove(i);
        }
    }

    /// Local opposition: each site draws against a yearly probability set by its footprint and
    /// its host's sensitivity. An episode delays a project waiting for its permits or, failing
    /// that, blockades the site for a while.
    fn opposition(&mut self, tick: Tick, record: &mut TickRecord) {
        let tpy = i64::from(self.scenario.ticks_per_year.max(1));
        for s in 0..self.scenario.sites.len() {
            let site = &self.scenario.sites[s];
            let host = self.scenario.agents[site.agent.index()].spec.nation();
            let sensitivity = i64::from(self.scenario.nations[host.index()].env_sensitivity_bp);
            if sensitivity == 0 || site.footprint == 0 {
                continue;
            }
            // Per-tick probability in parts per billion: basis points a year × footprint/100 ×
            // sensitivity/10,000 × 100,000 ppb per basis point ÷ ticks a year.
            let ppb = OPPOSITION_BP_PER_YEAR * i64::from(site.footprint) * sensitivity / 10 / tpy;
            let draw: i64 = self.streams.stream(site.agent, tick, Purpose::Opposition).random_range(0..1_000_000_000);
            if draw >= ppb {
                continue;
            }
            let name = self.scenario.agents[site.agent.index()].name.clone();
            let waiting = self.state.projects.iter_mut().find(|p| p.site == site.agent && p.online.0 > tick.0);
            let note = match waiting {
                Some(p) => {
                    p.online = Tick(p.online.0 + OPPOSITION_TICKS);
                    format!("opposition at {name}: permits delayed, new capacity now due at tick {}", p.online)
                }
                None => {
                    let until = Tick(tick.0 + 1 + OPPOSITION_TICKS);
                    self.state.outages.push(Outage {
                        name: format!("opposition/{}/{}", site.agent.0, tick.0),
                        site: site.agent,
                        until: Some(until),
                    });
                    format!("opposition at {name}: site blockaded until tick {until}")
                }
            };
            record.events.push((tick, note));
        }
    }

    /// Recycling follows consumption with the commodity's lag, and its rate moves slowly toward
    /// what price and policy make worthwhile (half to twice the base rate as the price goes
    /// from half to twice the reference, plus any subsidy).
    fn update_recycling(&mut self, record: &TickRecord) {
        let commodities = self.scenario.commodities.len();
        let mut consumed: BTreeMap<(NationId, CommodityId), Quantity> = BTreeMap::new();
        for s in &record.shortages {
            *consumed.entry((s.nation, s.commodity)).or_default() += s.consumed;
        }
        for i in 0..self.state.recycling.len() {
            let (n, c) = (NationId((i / commodities) as u16), CommodityId((i % commodities) as u16));
            let spec = &self.scenario.commodities[c.index()];
            let subsidy = self.state.nations[n.index()].subsidies.recycling_bp;
            let r = &mut self.state.recycling[i];
            if spec.recycling_bp == 0 && subsidy == 0 && r.rate_bp == 0 {
                continue;
            }
            let used = consumed.get(&(n, c)).copied().unwrap_or_default();
            r.end_of_life = r.end_of_life + (used - r.end_of_life).scale_floor(1, i64::from(spec.recycling_lag_ticks));
            let market = MarketId::refined(c);
            let price = self.state.markets[market.index()].last_price.0.max(1);
            let reference = spec.stages[1].reference.0.max(1);
            let factor_bp = (i128::from(price) * 10_000 / i128::from(reference)).clamp(5_000, 20_000) as i64;
            let target = (i64::from(spec.recycling_bp) * factor_bp / 10_000 + i64::from(subsidy)).min(9_500);
            let rate = i64::from(r.rate_bp);
            let step = (target - rate) / 26;
            let step = if step == 0 { (target - rate).signum() } else { step };
            r.rate_bp = (rate + step).max(0) as u32;
        }
    }

    /// Once a quarter each mine and refinery below its potential appraises an expansion: it
    /// invests if its forecast margin pays the capital back within the payback period (longer
    /// with a bloc's cheap financing; the capital cheaper with the host's subsidy). The new
    /// capacity comes on line after the commodity's lead time.
    fn invest(&mut self, tick: Tick, record: &mut TickRecord, ledger: &mut Ledger) {
        let tpy = i64::from(self.scenario.ticks_per_year.max(1));
        for s in 0..self.scenario.sites.len() {
            let site = &self.scenario.sites[s];
            let agent = site.agent;
            let spec = &self.scenario.agents[agent.index()].spec;
            if self.state.projects.iter().any(|p| p.site == agent) || self.state.outages.iter().any(|o| o.site == agent)
            {
                continue;
            }
            let state = &self.state.agents[agent.index()];
            let room = site.potential - state.capacity;
            if !room.is_positive() {
                continue;
            }
            let forecast = |m: MarketId| state.memory.forecast(m).unwrap_or(self.state.markets[m.index()].last_price);
            let host = spec.nation();
            let subsidies = self.state.nations[host.index()].subsidies;
            let (commodity, margin, subsidy_bp, lead) = match spec {
                AgentSpec::Miner { commodity, unit_cost, .. } => (
                    *commodity,
                    forecast(MarketId::ore(*commodity)) - *unit_cost,
                    subsidies.mining_bp,
                    self.scenario.commodities[commodity.index()].mine_lead_ticks,
                ),
                AgentSpec::Refiner { commodity, unit_cost, yield_bp, .. } => {
                    let ore = forecast(MarketId::ore(*commodity)).scale_floor(10_000, i64::from((*yield_bp).max(1)));
                    (
                        *commodity,
                        forecast(MarketId::refined(*commodity)) - *unit_cost - ore,
                        subsidies.processing_bp,
                        self.scenario.commodities[commodity.index()].refinery_lead_ticks,
                    )
                }
                _ => continue,
            };
            if margin.0 <= 0 {
                continue;
            }
            let financing = self
                .scenario
                .alliances
                .iter()
                .zip(&self.state.alliances)
                .filter(|(_, members)| members.contains(&site.owner))
                .map(|(def, _)| def.financing_bp)
                .max()
                .unwrap_or(0);
            let capex = self.scenario.commodities[commodity.index()].capex_per_kg_year;
            let net_capex = capex.scale_floor(i64::from(10_000 - subsidy_bp.min(10_000)), 10_000);
            let allowed =
                Money(margin.0.saturating_mul(PAYBACK_YEARS)).scale_floor(i64::from(10_000 + financing), 10_000);
            if net_capex > allowed {
                continue;
            }
            let step =
                site.potential.scale_floor(1, 4).max(state.capacity.scale_floor(1, 4)).max(Quantity(1)).min(room);
            // Rounding leaves some sites a few kilograms short of their potential: not a project.
            if step.0.saturating_mul(tpy) < 1_000 {
                continue;
            }
            let online = Tick(tick.0 + 1 + lead);
            let per_year = Quantity(step.0.saturating_mul(tpy));
            let cost = Money(capex.0.saturating_mul(per_year.0));
            let public = cost.scale_floor(i64::from(subsidy_bp.min(10_000)), 10_000);
            self.state.agents[agent.index()].cash -= cost - public;
            self.state.agents[host.index()].cash -= public;
            ledger.money_out += cost;
            let project = Project { site: agent, start: tick, online, capacity: step, delivered: Quantity::ZERO };
            let at = self.state.projects.partition_point(|p| p <= &project);
            self.state.projects.insert(at, project);
            // Reported in investments.csv and the run summary, not as events (there are many).
            record.investments.push((agent, step, online));
        }
    }

    /// Once a quarter manufacturers whose forecast of a commodity stays above its substitution
    /// trigger use less of it (thrifting, switching), down to the floor; research funding by
    /// their nation speeds this up.
    fn substitute(&mut self) {
        for (i, def) in self.scenario.agents.iter().enumerate() {
            let AgentSpec::Manufacturer { nation, .. } = &def.spec else { continue };
            let rd = &self.state.nations[nation.index()].rd_per_year;
            let agent = &mut self.state.agents[i];
            for d in &mut agent.demand {
                let spec = &self.scenario.commodities[d.commodity.index()];
                let market = MarketId::refined(d.commodity);
                let forecast = agent.memory.forecast(market).unwrap_or(self.state.markets[market.index()].last_price);
                let reference = spec.stages[Stage::Refined as usize].reference;
                if i128::from(forecast.0) * 10_000 < i128::from(reference.0) * i128::from(spec.substitution_trigger_bp)
                {
                    continue;
                }
                let funding = rd.iter().find(|(c, _)| *c == d.commodity).map_or(Money::ZERO, |(_, m)| *m);
                let speed_bp = 10_000 + (funding.0 as i128 * 10_000 / RD_DOUBLES.0 as i128).min(40_000) as i64;
                let per_quarter = i64::from(spec.substitution_bp_per_year) * speed_bp / 10_000 / 4;
                let cut = i64::from(d.intensity_bp) * per_quarter / 10_000;
                d.intensity_bp =
                    (i64::from(d.intensity_bp) - cut.max(1)).max(i64::from(spec.substitution_floor_bp)) as u32;
            }
        }
    }

    /// Once a quarter, every nation outside an open alliance weighs joining it: affinity (how
    /// close its alignment is to the members') plus shared vulnerability (it and a member both
    /// stockpile a commodity whose dominant refiner is outside the alliance), blurred by a
    /// draw. The members accept if each is close enough to it. A member that has drifted far
    /// from the rest (as others joined) leaves.
    fn diplomacy(&mut self, tick: Tick, record: &mut TickRecord) {
        let nations = self.scenario.nations.len();
        for k in 0..self.scenario.alliances.len() {
            let def = &self.scenario.alliances[k];
            let members = self.state.alliances[k].clone();
            if members.is_empty() {
                continue;
            }
            let align = |n: NationId| i64::from(self.scenario.nations[n.index()].alignment_milli);
            let mean = |list: &[NationId], except: Option<NationId>| {
                let v: Vec<i64> = list.iter().filter(|n| Some(**n) != except).map(|n| align(*n)).collect();
                if v.is_empty() { 0 } else { v.iter().sum::<i64>() / v.len() as i64 }
            };
            for &m in &members {
                let rest = mean(&members, Some(m));
                if members.len() > 1 && 1_000 - (align(m) - rest).abs() / 2 < 500 {
                    self.state.alliances[k].retain(|x| *x != m);
                    record.events.push((tick, format!("{} left {}", self.scenario.nation_code(m), def.code)));
                }
            }
            if !def.open {
                continue;
            }
            for n in (0..nations).map(|n| NationId(n as u16)) {
                if self.state.alliances[k].contains(&n) || self.state.nations[n.index()].stockpiles.is_empty() {
                    continue;
                }
                let members = &self.state.alliances[k];
                let shared = self.state.nations[n.index()].stockpiles.iter().any(|p| {
                    let dominant = self.derived.dominant_refiner[p.commodity.index()];
                    dominant.is_some_and(|d| d != n && !members.contains(&d))
                        && members.iter().any(|m| {
                            self.state.nations[m.index()].stockpiles.iter().any(|q| q.commodity == p.commodity)
                        })
                });
                if !shared {
                    continue;
                }
                let noise: i64 =
                    self.streams.stream(AgentId(n.0 as u32), tick, Purpose::Diplomacy).random_range(-100..=100);
                let score = 1_000 - (align(n) - mean(members, None)).abs() / 2 + noise;
                let accepted = members.iter().all(|m| self.scenario.affinity(*m, n) >= ADMIT_AFFINITY);
                if score >= 900 && accepted {
                    let at = members.partition_point(|m| *m < n);
                    self.state.alliances[k].insert(at, n);
                    record.events.push((tick, format!("{} joined {}", self.scenario.nation_code(n), def.code)));
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Events.

    pub(super) fn apply_geo_event(&mut self, e: &Event) -> String {
        let s = &self.scenario;
        match &e.kind {
            EventKind::DemandShock { commodity, nation, sector, bp } => {
                let mut hit = 0;
                for (i, def) in s.agents.iter().enumerate() {
                    let AgentSpec::Manufacturer { nation: n, sector: sec, .. } = &def.spec else { continue };
                    if nation.is_some_and(|x| x != *n) || sector.is_some_and(|x| x != *sec) {
                        continue;
                    }
                    for d in self.state.agents[i].demand.iter_mut().filter(|d| d.commodity == *commodity) {
                        let level = i64::from(d.level_bp) * (10_000 + i64::from(*bp)) / 10_000;
                        d.level_bp = level.clamp(1, i64::from(u32::MAX)) as u32;
                        hit += 1;
                    }
                }
                format!(
                    "demand for {} {}{}% in {} ({hit} manufacturers)",
                    s.commodity_code(*commodity),
                    if *bp >= 0 { "+" } else { "" },
                    f64::from(*bp) / 100.0,
                    nation.map_or("every nation".to_string(), |n| s.nation_code(n).to_string())
                )
            }
            EventKind::SiteOutage { site } => {
                self.state.outages.push(Outage { name: e.name.clone(), site: *site, until: None });
                format!("{} shut", s.agents[site.index()].name)
            }
            EventKind::LaneDisruption { lane, extra_ticks } => {
                self.state.disruptions.push(Disruption {
                    name: e.name.clone(),
                    lane: *lane,
                    extra_ticks: *extra_ticks,
                });
                format!("lane {} disrupted: +{extra_ticks} ticks in transit", s.lanes[*lane as usize].code)
            }
            EventKind::JoinAlliance { nation, alliance } => {
                let members = &mut self.state.alliances[*alliance as usize];
                if let Err(at) = members.binary_search(nation) {
                    members.insert(at, *nation);
                }
                format!("{} joined {}", s.nation_code(*nation), s.alliances[*alliance as usize].code)
            }
            EventKind::LeaveAlliance { nation, alliance } => {
                self.state.alliances[*alliance as usize].retain(|n| n != nation);
                format!("{} left {}", s.nation_code(*nation), s.alliances[*alliance as usize].code)
            }
            EventKind::Subsidy { nation, kind, bp } => {
                let sub = &mut self.state.nations[nation.index()].subsidies;
                let name = match kind {
                    SubsidyKind::Mining => {
                        sub.mining_bp = *bp;
                        "mining"
                    }
                    SubsidyKind::Processing => {
                        sub.processing_bp = *bp;
                        "processing"
                    }
                    SubsidyKind::Recycling => {
                        sub.recycling_bp = *bp;
                        "recycling"
                    }
                };
                format!("{} {name} subsidy set to {}%", s.nation_code(*nation), f64::from(*bp) / 100.0)
            }
            EventKind::RdFunding { nation, commodity, per_year } => {
                let rd = &mut self.state.nations[nation.index()].rd_per_year;
                match rd.binary_search_by_key(commodity, |(c, _)| *c) {
                    Ok(i) => rd[i].1 = *per_year,
                    Err(i) => rd.insert(i, (*commodity, *per_year)),
                }
                format!(
                    "{} funds {per_year} a year of research on {}",
                    s.nation_code(*nation),
                    s.commodity_code(*commodity)
                )
            }
            _ => String::new(),
        }
    }
}
