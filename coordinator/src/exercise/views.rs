//! The views the server builds for each caller: a player's own books, public facts and
//! intelligence (never another nation's private state), and control's ground truth. Values are
//! converted to display units (US dollars per kilogram, tonnes) here, at the edge.

use super::auth::Role;
use super::command::ApiError;
use super::{Api, Game, MessageRow, Proposal};
use agents::nation::cover_tenths_of_days;
use agents::{MarketId, NationId, Price, Quantity};
use engine::record::describe_restriction;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Intelligence on nations outside a sharing alliance is this many ticks old, and blurred by
/// up to this much (basis points).
const INTEL_DELAY_TICKS: usize = 13;
const INTEL_NOISE_BP: i64 = 2_000;

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
        "paused": game.paused,
        "mode": if game.realtime { "real-time" } else { "turn" },
        "ended": game.ended,
        "failure": game.failure,
        "last_turn_ms": game.turn_ms.last(),
        "on_missed": if game.missed_standing { "standing" } else { "ai" },
        "submitted": game.submitted.keys().map(|n| game.scenario.nation_code(*n)).collect::<Vec<_>>(),
        "players": game.setup.players.iter().map(|n| game.scenario.nation_code(*n)).collect::<Vec<_>>(),
    })
}

/// Public facts: prices and volumes with their history, restrictions in force (announced
/// policies), announcements, alliances.
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
            json!({
                "commodity": s.commodity_code(id.commodity),
                "stage": id.stage.as_str(),
                "price_usd_per_kg": usd(m.last_price),
                "volume_t": tonnes(m.last_volume),
                "history": history,
            })
        })
        .collect();
    let restrictions: Vec<Value> = game
        .state
        .policies
        .active
        .iter()
        .map(|a| json!({ "name": a.name, "since": a.since.0, "what": describe_restriction(s, &a.rule) }))
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
    json!({ "markets": markets, "restrictions": restrictions, "announced": announced, "alliances": alliances })
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
    let mut short: BTreeMap<(String, String), (Quantity, Quantity)> = BTreeMap::new();
    if let Some(r) = last {
        for x in r.shortages.iter().filter(|x| x.nation == n) {
            let e =
                short.entry((x.sector.as_str().to_string(), s.commodity_code(x.commodity).to_string())).or_default();
            e.0 += x.wanted;
            e.1 += x.wanted - x.consumed;
        }
    }
    let shortages: Vec<Value> = short
        .into_iter()
        .map(|((sector, c), (wanted, unmet))| json!({ "sector": sector, "commodity": c, "wanted_t": tonnes(wanted), "short_t": tonnes(unmet) }))
        .collect();
    let shortage_history: Vec<f64> = game
        .records
        .iter()
        .map(|r| r.shortages.iter().filter(|x| x.nation == n).map(|x| tonnes(x.wanted - x.consumed)).sum())
        .collect();
    let sites: Vec<Value> = s
        .sites
        .iter()
        .filter(|site| s.agents[site.agent.index()].spec.nation() == n || site.owner == n)
        .map(|site| {
            let def = &s.agents[site.agent.index()];
            json!({
                "name": def.name,
                "kind": def.spec.kind(),
                "host": s.nation_code(def.spec.nation()),
                "owner": site.owner_code,
                "capacity_t_per_year": tonnes(game.state.agents[site.agent.index()].capacity) * f64::from(s.ticks_per_year),
            })
        })
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

/// What `n` knows of other nations' reserves: exact and current from allies that share
/// intelligence; otherwise a quarter old and blurred.
pub fn intelligence(game: &Game, n: NationId) -> Vec<Value> {
    let s = &game.scenario;
    let sharing: Vec<NationId> = s
        .alliances
        .iter()
        .zip(&game.state.alliances)
        .filter(|(def, members)| def.share_intelligence && members.contains(&n))
        .flat_map(|(_, members)| members.iter().copied())
        .collect();
    let old = game.records.len().checked_sub(INTEL_DELAY_TICKS + 1).and_then(|i| game.records.get(i));
    let mut out = Vec::new();
    for other in (0..s.nations.len()).map(|i| NationId(i as u16)).filter(|o| *o != n) {
        if sharing.contains(&other) {
            for p in &game.state.nations[other.index()].stockpiles {
                let stock = game.state.agents[other.index()].holding(MarketId::refined(p.commodity));
                out.push(json!({ "nation": s.nation_code(other), "commodity": s.commodity_code(p.commodity),
                                 "stock_t": tonnes(stock), "as_of_tick": game.next_tick(), "source": "ally" }));
            }
        } else if let Some(r) = old {
            for x in r.stockpiles.iter().filter(|x| x.nation == other) {
                // A fixed blur per (observer, observed, commodity, tick): asking again does not
                // average it away.
                let h = blake3::hash(format!("intel/{}/{}/{}/{}", n.0, other.0, x.commodity.0, r.tick.0).as_bytes());
                let b = h.as_bytes();
                let noise = i64::from(u16::from_le_bytes([b[0], b[1]])) % (2 * INTEL_NOISE_BP + 1) - INTEL_NOISE_BP;
                out.push(json!({ "nation": s.nation_code(other), "commodity": s.commodity_code(x.commodity),
                                 "stock_t": tonnes(x.stock.scale_floor(10_000 + noise, 10_000)),
                                 "as_of_tick": r.tick.0, "source": "estimate" }));
            }
        }
    }
    out
}

/// The player's view: its own books in full; others only through public prices, announced
/// policies and intelligence.
pub fn player(api: &Api, n: NationId) -> Result<Value, ApiError> {
    let game = api.shared.game();
    let s = &game.scenario;
    let messages: Vec<&MessageRow> = game
        .messages
        .iter()
        .filter(|m| m.from == s.nation_code(n) || m.to.iter().any(|t| t == s.nation_code(n) || t == "all"))
        .collect();
    let mine = game.submitted.get(&n).map(|sub| json!({ "orders": sub.orders.len(), "policies": sub.events.len() }));
    // Proposals it made, and those to alliances it belongs to.
    let proposals: Vec<&Proposal> = game
        .proposals
        .iter()
        .filter(|p| {
            p.nation == s.nation_code(n)
                || s.alliances.iter().zip(&game.state.alliances).any(|(a, m)| a.code == p.alliance && m.contains(&n))
        })
        .collect();
    Ok(json!({
        "nation": s.nation_code(n),
        "name": s.nations[n.index()].name,
        "status": status(&game),
        "books": books(&game, n),
        "public": public(&game),
        "intelligence": intelligence(&game, n),
        "messages": messages,
        "proposals": proposals,
        "my_submission": mine,
    }))
}

/// Control's view: ground truth for every nation, and the exercise's log.
pub fn control(api: &Api) -> Value {
    let game = api.shared.game();
    let s = &game.scenario;
    let nations: Vec<Value> = (0..s.nations.len())
        .map(|i| {
            let n = NationId(i as u16);
            json!({ "nation": s.nation_code(n), "played": game.setup.players.contains(&n), "books": books(&game, n) })
        })
        .collect();
    let events: Vec<Value> = game
        .records
        .iter()
        .flat_map(|r| r.events.iter().map(|(t, e)| json!({ "tick": t.0, "event": e.describe(s) })))
        .collect();
    json!({
        "status": status(&game),
        "public": public(&game),
        "nations": nations,
        "events": events,
        "notes": game.notes,
        "messages": game.messages,
        "missed": game.missed,
        "proposals": game.proposals,
        "conditionals": game.conditionals.iter().map(|c| c.label.clone()).collect::<Vec<_>>(),
        "sites": s.sites.iter().map(|x| s.agents[x.agent.index()].name.clone()).collect::<Vec<_>>(),
        "lanes": s.lanes.iter().map(|l| l.code.clone()).collect::<Vec<_>>(),
    })
}
