//! The views the server builds for each caller: a player's own books, public facts,
//! intelligence, its sealed orders and its situation reports (never another nation's private
//! state, orders or comments), and control's ground truth with the tools' data (sealed and
//! revealed orders, armed injects, every nation's reports). Values are converted to display
//! units (US dollars per kilogram, tonnes) here, at the edge.

use super::auth::Role;
use super::command::ApiError;
use super::{Api, Game, MessageRow, Proposal, Submission, fog, intel};
use agents::nation::cover_tenths_of_days;
use agents::{AgentSpec, MarketId, NationId, Price, Quantity, Stage};
use engine::record::describe_restriction;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub fn usd(p: Price) -> f64 {
    p.0 as f64 / 100.0
}

pub fn tonnes(q: Quantity) -> f64 {
    q.0 as f64 / 1000.0
}

/// The caller's role, and for a player its nation.
pub fn whoami(api: &Api, role: Role) -> Value {
    match role {
        Role::Control => json!({ "role": "control" }),
        Role::Player(n) => {
            let game = api.shared.game();
            let nation = &game.scenario.nations[n.index()];
            json!({ "role": "player", "nation": nation.code, "name": nation.name })
        }
    }
}

pub fn status(game: &Game) -> Value {
    json!({
        "tick": game.next_tick(),
        "ticks": game.scenario.ticks,
        "turn": game.turn,
        "turn_ticks": game.setup.turn_ticks,
        "deadline_ms_left": game.deadline_left_ms(),
        "deadline_s": game.deadline().as_secs_f64(),
        "deadline_all_turns_s": game.setup.deadline.as_secs_f64(),
        "deadline_this_turn_only": game.turn_deadline.is_some(),
        "paused": game.paused,
        "mode": if game.realtime { "real-time" } else { "turn" },
        "ended": game.ended,
        "ended_by_control": game.ended_by_control,
        "failure": game.failure,
        "last_turn_ms": game.turn_ms.last(),
        "on_missed": if game.missed_standing { "standing" } else { "ai" },
        "submitted": game.submitted.keys().map(|n| game.scenario.nation_code(*n)).collect::<Vec<_>>(),
        "players": game.setup.players.iter().map(|n| game.scenario.nation_code(*n)).collect::<Vec<_>>(),
        "turn_starts": game.turn_starts,
        "rollback_pending": game.rollback,
    })
}

/// Public facts: prices and volumes with their history, restrictions in force (with the names
/// `lift` targets), announcements, alliances.
pub fn public(game: &Game) -> Value {
    let s = &game.scenario;
    let markets: Vec<Value> = game
        .state
        .markets
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let id = MarketId::from_index(i);
            let history: Vec<f64> = game.records.iter().map(|r| usd(r.markets[i].price)).collect();
            let volumes: Vec<f64> = game.records.iter().map(|r| tonnes(r.markets[i].volume)).collect();
            json!({
                "commodity": s.commodity_code(id.commodity),
                "name": s.commodities[id.commodity.index()].name,
                "stage": id.stage.as_str(),
                "price_usd_per_kg": usd(m.last_price),
                "volume_t": tonnes(m.last_volume),
                "history": history,
                "volume_history_t": volumes,
                "start_usd_per_kg": game.start_prices.get(i).map(|p| usd(*p)),
            })
        })
        .collect();
    let restrictions: Vec<Value> = game
        .state
        .policies
        .active
        .iter()
        .map(|a| {
            json!({ "name": a.name, "since": a.since.0, "nation": s.nation_code(a.rule.nation()),
                    "what": describe_restriction(s, &a.rule) })
        })
        .collect();
    let alliances: Vec<Value> = s
        .alliances
        .iter()
        .zip(&game.state.alliances)
        .map(|(def, members)| {
            json!({ "id": def.code, "name": def.name, "open": def.open,
                    "members": members.iter().map(|n| s.nation_code(*n)).collect::<Vec<_>>() })
        })
        .collect();
    // Restrictions announced ahead and not yet in force: the engine's list, the one every
    // agent sees in its public view.
    let next = game.next_tick();
    let announced: Vec<Value> = game
        .announcements
        .iter()
        .filter(|a| a.effective.0 > next)
        .map(|a| {
            json!({
                "exporter": s.nation_code(a.exporter),
                "commodity": s.commodity_code(a.market.commodity),
                "stage": a.market.stage.as_str(),
                "from_tick": a.effective.0,
                "affects": a.affected.iter().map(|n| s.nation_code(*n)).collect::<Vec<_>>(),
                "share_of_trade_pct": f64::from(a.share_bp) / 100.0,
            })
        })
        .collect();
    json!({ "markets": markets, "restrictions": restrictions, "announced": announced, "alliances": alliances,
            "first_tick": game.records.first().map(|r| r.tick.0) })
}

/// What a site produces: (commodity, stage) for mines (ore) and refineries (refined).
fn site_output(spec: &AgentSpec) -> Option<(agents::CommodityId, Stage)> {
    match spec {
        AgentSpec::Miner { commodity, .. } => Some((*commodity, Stage::Ore)),
        AgentSpec::Refiner { commodity, .. } => Some((*commodity, Stage::Refined)),
        AgentSpec::Nation { .. } | AgentSpec::Manufacturer { .. } => None,
    }
}

/// A site as both views show it: its name with what it makes.
fn site_row(game: &Game, site: &engine::scenario::Site) -> Value {
    let s = &game.scenario;
    let def = &s.agents[site.agent.index()];
    let (commodity, stage) = site_output(&def.spec).map_or(("", ""), |(c, st)| (s.commodity_code(c), st.as_str()));
    json!({
        "name": def.name,
        "kind": if def.spec.kind() == "miner" { "mine" } else { "refinery" },
        "commodity": commodity,
        "stage": stage,
        "host": s.nation_code(def.spec.nation()),
        "owner": site.owner_code,
        "capacity_t_per_year": tonnes(game.state.agents[site.agent.index()].capacity) * f64::from(s.ticks_per_year),
        "shut": game.state.outages.iter().any(|o| o.site == site.agent),
    })
}

/// A nation's own stockpiles (with forecasts) and its industry's shortages last tick.
pub fn books(game: &Game, n: NationId) -> Value {
    let s = &game.scenario;
    let agency = &game.state.agents[n.index()];
    let last = game.records.last();
    let stockpiles: Vec<Value> = game.state.nations[n.index()]
        .stockpiles
        .iter()
        .map(|p| {
            let stock = agency.holding(MarketId::refined(p.commodity));
            let use_per_tick = last
                .and_then(|r| r.stockpiles.iter().find(|x| x.nation == n && x.commodity == p.commodity))
                .map_or(Quantity::ZERO, |x| x.consumption_per_tick);
            let cover = cover_tenths_of_days(stock, use_per_tick, s.tick_days).map(|t| t as f64 / 10.0);
            let history: Vec<f64> = game
                .records
                .iter()
                .map(|r| {
                    r.stockpiles
                        .iter()
                        .find(|x| x.nation == n && x.commodity == p.commodity)
                        .map_or(0.0, |x| tonnes(x.stock))
                })
                .collect();
            json!({
                "commodity": s.commodity_code(p.commodity),
                "stock_t": tonnes(stock),
                "target_days": p.target_days,
                "cover_days": cover,
                "price_forecast_usd_per_kg": usd(p.price_forecast),
                "demand_forecast_t_per_tick": tonnes(p.demand_forecast),
                "history_t": history,
            })
        })
        .collect();
    let sites: Vec<Value> = s
        .sites
        .iter()
        .filter(|site| s.agents[site.agent.index()].spec.nation() == n || site.owner == n)
        .map(|site| site_row(game, site))
        .collect();
    // Supply contracts: offtakes the nation's own agents sell or buy under.
    let contracts: Vec<Value> = s
        .offtakes
        .iter()
        .filter(|o| s.agents[o.site.index()].spec.nation() == n || s.agents[o.buyer.index()].spec.nation() == n)
        .map(|o| {
            json!({
                "site": s.agents[o.site.index()].name,
                "buyer": s.agents[o.buyer.index()].name,
                "share_pct": f64::from(o.share_bp) / 100.0,
                "price_pct_of_world": f64::from(o.price_bp) / 100.0,
            })
        })
        .collect();
    let forecasts: Vec<Value> = game.state.nations[n.index()]
        .stockpiles
        .iter()
        .map(|p| {
            let history: Vec<f64> = game
                .forecast_history
                .get(&(n, p.commodity))
                .map_or(Vec::new(), |h| h.iter().map(|x| usd(*x)).collect());
            json!({ "commodity": s.commodity_code(p.commodity), "history": history })
        })
        .collect();
    let (shortages, shortage_history) = shortages(game, n);
    json!({
        "treasury_usd": agency.cash.0 as f64 / 100.0,
        "stockpiles": stockpiles,
        "contracts": contracts,
        "forecast_history_usd_per_kg": forecasts,
        "shortages": shortages,
        "shortage_history_t": shortage_history,
        "sites": sites,
    })
}

/// The nation's industry's demand and unmet demand last tick by sector and commodity (short
/// first), and its total unmet demand per tick.
fn shortages(game: &Game, n: NationId) -> (Vec<Value>, Vec<f64>) {
    let s = &game.scenario;
    let mut short: BTreeMap<(String, String), (Quantity, Quantity)> = BTreeMap::new();
    if let Some(r) = game.records.last() {
        for x in r.shortages.iter().filter(|x| x.nation == n) {
            let e =
                short.entry((x.sector.as_str().to_string(), s.commodity_code(x.commodity).to_string())).or_default();
            e.0 += x.wanted;
            e.1 += x.wanted - x.consumed;
        }
    }
    let mut rows: Vec<(Quantity, Value)> = short
        .into_iter()
        .map(|((sector, c), (wanted, unmet))| {
            let pct = if wanted.is_positive() { unmet.0 as f64 * 100.0 / wanted.0 as f64 } else { 0.0 };
            (
                unmet,
                json!({ "sector": sector, "commodity": c, "wanted_t": tonnes(wanted), "short_t": tonnes(unmet),
                            "short_pct": (pct * 10.0).round() / 10.0 }),
            )
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    let history: Vec<f64> = game
        .records
        .iter()
        .map(|r| r.shortages.iter().filter(|x| x.nation == n).map(|x| tonnes(x.wanted - x.consumed)).sum())
        .collect();
    (rows.into_iter().map(|(_, v)| v).collect(), history)
}

/// What `n` knows of other nations' reserves now.
pub fn intelligence(game: &Game, n: NationId) -> Vec<intel::Estimate> {
    intel::estimates(&game.scenario, &game.records, &game.state, n)
}

/// The occurrences `n` learnt of, for marking charts: (tick, text).
fn news(game: &Game, n: Option<NationId>) -> Vec<Value> {
    let s = &game.scenario;
    game.records
        .iter()
        .flat_map(|r| r.events.iter())
        .filter(|(_, o)| n.is_none_or(|n| fog::visible_to(s, o, n)))
        .map(|(at, o)| json!({ "tick": at.0, "text": o.describe(s) }))
        .collect()
}

/// A sealed submission as its author (or control) sees it: each order as written, with
/// control's notes, and the orders control refused.
fn sealed(sub: &Submission) -> Value {
    let orders: Vec<Value> = sub.items.iter().map(|i| json!({ "order": i.raw, "note": i.note })).collect();
    let refused: Vec<Value> = sub.refused.iter().map(|(raw, note)| json!({ "order": raw, "note": note })).collect();
    json!({
        "orders": orders,
        "refused": refused,
        "comment": sub.comment,
        "limit_orders": sub.orders().len(),
        "policies": sub.events().len(),
    })
}

/// The player's view: its own books in full; others only through public prices, announced
/// policies and intelligence; its sealed orders, messages and situation reports.
pub fn player(api: &Api, n: NationId) -> Result<Value, ApiError> {
    let game = api.shared.game();
    let s = &game.scenario;
    let code = s.nation_code(n);
    let messages: Vec<&MessageRow> =
        game.messages.iter().filter(|m| m.from == code || m.to.iter().any(|t| t == code || t == "all")).collect();
    let mine = game.submitted.get(&n).map(sealed);
    // Proposals it made, and those to alliances it belongs to.
    let proposals: Vec<&Proposal> = game
        .proposals
        .iter()
        .filter(|p| {
            p.nation == code
                || s.alliances.iter().zip(&game.state.alliances).any(|(a, m)| a.code == p.alliance && m.contains(&n))
        })
        .collect();
    let sitreps: Vec<&super::sitrep::Sitrep> = game.sitreps.iter().filter(|r| r.nation == code).collect();
    Ok(json!({
        "nation": code,
        "name": s.nations[n.index()].name,
        "status": status(&game),
        "books": books(&game, n),
        "public": public(&game),
        "news": news(&game, Some(n)),
        "intelligence": intelligence(&game, n),
        "messages": messages,
        "proposals": proposals,
        "my_submission": mine,
        "sitreps": sitreps,
    }))
}

/// Control's view: ground truth for every nation, and the exercise's log and tools.
pub fn control(api: &Api) -> Value {
    let game = api.shared.game();
    let s = &game.scenario;
    let nations: Vec<Value> = (0..s.nations.len())
        .map(|i| {
            let n = NationId(i as u16);
            json!({ "nation": s.nation_code(n), "played": game.setup.players.contains(&n), "books": books(&game, n) })
        })
        .collect();
    let sealed_orders: BTreeMap<&str, Value> =
        game.submitted.iter().map(|(n, sub)| (s.nation_code(*n), sealed(sub))).collect();
    let armed: Vec<Value> = game
        .conditionals
        .iter()
        .map(|c| {
            json!({ "label": c.label, "armed_tick": c.armed_tick, "fired_tick": c.fired_tick,
                         "events": c.events.iter().map(|e| e.name.clone()).collect::<Vec<_>>() })
        })
        .collect();
    json!({
        "status": status(&game),
        "public": public(&game),
        "nations": nations,
        "events": news(&game, None),
        "notes": game.notes,
        "messages": game.messages,
        "missed": game.missed,
        "proposals": game.proposals,
        "conditionals": game.armed().map(|c| c.label.clone()).collect::<Vec<_>>(),
        "injects": armed,
        "sealed": sealed_orders,
        "revealed": game.revealed,
        "sitreps": game.sitreps,
        "sites": s.sites.iter().map(|x| site_row(&game, x)).collect::<Vec<_>>(),
        "lanes": s.lanes.iter().map(|l| l.code.clone()).collect::<Vec<_>>(),
        "alliances": s.alliances.iter().map(|a| a.code.clone()).collect::<Vec<_>>(),
        "event_names": game.event_names,
    })
}
