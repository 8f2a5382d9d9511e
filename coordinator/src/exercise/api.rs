//! The exercise's HTTP interface: the console page and a JSON API behind bearer tokens.
//!
//! * `GET /` — the console (self-contained: no asset comes from outside).
//! * `GET /api/whoami` — the role of the token: a nation or control.
//! * `GET /api/player` — the player's view: its own books in full; others only through public
//!   prices, announced policies and intelligence (exact from allies that share it, a quarter
//!   old and blurred otherwise). The server builds it; no player route returns another nation's
//!   private state.
//! * `POST /api/orders` — sealed orders for the coming turn (limit orders and policy orders);
//!   each is validated, and one invalid order refuses the whole submission with field errors.
//! * `POST /api/message` — a message to other players (journaled).
//! * `GET /api/control` — ground truth for control; `POST /api/control` — pause, resume,
//!   advance, deadline, mode, end; `POST /api/control/inject` — events in the scenario format,
//!   now, at a tick, or when a price condition is met; `POST /api/control/note`.
//!
//! A wrong or missing token gets 401 and changes nothing; an address that keeps failing gets
//! 429 for a minute.

use super::{Conditional, Game, MessageRow, NoteRow, Shared, Submission, token_hash};
use crate::store::JournalInput;
use agents::nation::cover_tenths_of_days;
use agents::{MarketId, NationId, Order, Price, Quantity, Side, Stage};
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use engine::scenario::{EventKind, parse_events};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PAGE: &str = include_str!("console.html");
/// Failed logins from one address within a minute before it is refused for the rest of it.
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Intelligence on nations outside a sharing alliance is this many ticks old, and blurred by
/// up to this much (basis points).
const INTEL_DELAY_TICKS: usize = 13;
const INTEL_NOISE_BP: i64 = 2_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Player(NationId),
    Control,
}

pub struct Api {
    pub shared: Arc<Shared>,
    /// Token hash → role.
    pub tokens: BTreeMap<String, Role>,
    failures: Mutex<BTreeMap<IpAddr, (u32, Instant)>>,
}

impl Api {
    pub fn new(shared: Arc<Shared>, tokens: BTreeMap<String, Role>) -> Arc<Api> {
        Arc::new(Api { shared, tokens, failures: Mutex::new(BTreeMap::new()) })
    }
}

pub fn router(api: Arc<Api>) -> axum::Router {
    axum::Router::new()
        .route("/", get(page))
        .route("/api/whoami", get(whoami))
        .route("/api/player", get(player_view))
        .route("/api/orders", post(orders))
        .route("/api/message", post(message))
        .route("/api/control", get(control_view).post(control_action))
        .route("/api/control/inject", post(inject))
        .route("/api/control/note", post(note))
        .with_state(api)
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:",
            ),
        ],
        PAGE,
    )
        .into_response()
}

/// Why a request was refused before it was looked at.
pub struct Refusal(StatusCode, &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// The role of the request's bearer token, or the response refusing it.
fn authenticate(api: &Api, headers: &HeaderMap, from: IpAddr) -> Result<Role, Refusal> {
    {
        let failures = crate::run::lock(&api.failures);
        if let Some((count, since)) = failures.get(&from)
            && *count >= MAX_FAILURES
            && since.elapsed() < FAILURE_WINDOW
        {
            return Err(Refusal(StatusCode::TOO_MANY_REQUESTS, "too many failed attempts; wait a minute"));
        }
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    match api.tokens.get(&token_hash(token)) {
        Some(role) if !token.trim().is_empty() => Ok(role.clone()),
        _ => {
            let mut failures = crate::run::lock(&api.failures);
            let entry = failures.entry(from).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= FAILURE_WINDOW {
                *entry = (0, Instant::now());
            }
            entry.0 += 1;
            Err(Refusal(StatusCode::UNAUTHORIZED, "a valid access token is required"))
        }
    }
}

fn player(api: &Api, headers: &HeaderMap, from: IpAddr) -> Result<NationId, Refusal> {
    match authenticate(api, headers, from)? {
        Role::Player(n) => Ok(n),
        Role::Control => Err(Refusal(StatusCode::FORBIDDEN, "this is a player's route; control uses /api/control")),
    }
}

fn control(api: &Api, headers: &HeaderMap, from: IpAddr) -> Result<(), Refusal> {
    match authenticate(api, headers, from)? {
        Role::Control => Ok(()),
        Role::Player(_) => Err(Refusal(StatusCode::FORBIDDEN, "only the control cell may do this")),
    }
}

type Peer = ConnectInfo<SocketAddr>;

/// A call arriving over gRPC, with its body as the JSON the HTTP route takes.
pub enum Call {
    WhoAmI,
    PlayerView,
    Orders(Value),
    Message(Value),
    ControlView,
    ControlAction(Value),
    Inject(Value),
    Note(Value),
}

/// Runs a gRPC call through the HTTP route's handler (see `grpc.rs`).
pub async fn grpc_call(api: &Arc<Api>, call: Call, headers: HeaderMap, peer: SocketAddr) -> Response {
    fn body<T: serde::de::DeserializeOwned>(v: Value) -> Result<Json<T>, Box<Response>> {
        serde_json::from_value(v)
            .map(Json)
            .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, format!("the request is malformed: {e}"))))
    }
    let (s, p) = (State(api.clone()), ConnectInfo(peer));
    match call {
        Call::WhoAmI => whoami(s, p, headers).await,
        Call::PlayerView => player_view(s, p, headers).await,
        Call::ControlView => control_view(s, p, headers).await,
        Call::Orders(v) => match body(v) {
            Ok(b) => orders(s, p, headers, Ok(b)).await,
            Err(r) => *r,
        },
        Call::Message(v) => match body(v) {
            Ok(b) => message(s, p, headers, Ok(b)).await,
            Err(r) => *r,
        },
        Call::ControlAction(v) => match body(v) {
            Ok(b) => control_action(s, p, headers, Ok(b)).await,
            Err(r) => *r,
        },
        Call::Inject(v) => match body(v) {
            Ok(b) => inject(s, p, headers, Ok(b)).await,
            Err(r) => *r,
        },
        Call::Note(v) => match body(v) {
            Ok(b) => note(s, p, headers, Ok(b)).await,
            Err(r) => *r,
        },
    }
}

async fn whoami(State(api): State<Arc<Api>>, ConnectInfo(peer): Peer, headers: HeaderMap) -> Response {
    match authenticate(&api, &headers, peer.ip()) {
        Ok(Role::Control) => Json(json!({ "role": "control" })).into_response(),
        Ok(Role::Player(n)) => {
            let game = api.shared.game();
            let nation = &game.scenario.nations[n.index()];
            Json(json!({ "role": "player", "nation": nation.code, "name": nation.name })).into_response()
        }
        Err(r) => r.into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// Views.

fn usd(p: Price) -> f64 {
    p.0 as f64 / 100.0
}

fn tonnes(q: Quantity) -> f64 {
    q.0 as f64 / 1000.0
}

fn status(game: &Game) -> Value {
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
fn public(game: &Game) -> Value {
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
        .map(
            |a| json!({ "name": a.name, "since": a.since.0, "what": engine::record::describe_restriction(s, &a.rule) }),
        )
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
    // Restrictions announced ahead and not yet in force (the scenario's; injects are not
    // announced).
    let next = game.next_tick();
    let announced: Vec<Value> = s
        .events
        .iter()
        .filter(|e| e.announced.is_some_and(|a| a.0 <= next) && e.tick.0 > next)
        .map(|e| json!({ "name": e.name, "from_tick": e.tick.0, "note": e.note }))
        .collect();
    json!({ "markets": markets, "restrictions": restrictions, "announced": announced, "alliances": alliances })
}

/// A nation's own stockpiles (with forecasts) and its industry's shortages last tick.
fn books(game: &Game, n: NationId) -> Value {
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
fn intelligence(game: &Game, n: NationId) -> Vec<Value> {
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

async fn player_view(State(api): State<Arc<Api>>, ConnectInfo(peer): Peer, headers: HeaderMap) -> Response {
    let n = match player(&api, &headers, peer.ip()) {
        Ok(n) => n,
        Err(r) => return r.into_response(),
    };
    let game = api.shared.game();
    let s = &game.scenario;
    let messages: Vec<&MessageRow> = game
        .messages
        .iter()
        .filter(|m| m.from == s.nation_code(n) || m.to.iter().any(|t| t == s.nation_code(n) || t == "all"))
        .collect();
    let mine = game.submitted.get(&n).map(|sub| json!({ "orders": sub.orders.len(), "policies": sub.events.len() }));
    // Proposals it made, and those to alliances it belongs to.
    let proposals: Vec<&super::Proposal> = game
        .proposals
        .iter()
        .filter(|p| {
            p.nation == s.nation_code(n)
                || s.alliances.iter().zip(&game.state.alliances).any(|(a, m)| a.code == p.alliance && m.contains(&n))
        })
        .collect();
    Json(json!({
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
    .into_response()
}

// ---------------------------------------------------------------------------------------------
// Orders.

#[derive(Deserialize)]
struct OrdersBody {
    #[serde(default)]
    orders: Vec<Value>,
    #[serde(default)]
    comment: String,
}

#[derive(serde::Serialize)]
struct FieldError {
    index: usize,
    field: String,
    message: String,
}

/// Validates one submission against the world as it is now. One bad order refuses all.
fn validate(game: &Game, n: NationId, body: &OrdersBody) -> Result<Submission, Vec<FieldError>> {
    let s = &game.scenario;
    let code = s.nation_code(n).to_string();
    let mut errors = Vec::new();
    let mut sub = Submission { comment: body.comment.chars().take(2000).collect(), ..Submission::default() };
    let next = game.next_tick();
    let agency = &game.state.agents[n.index()];
    let mut committed: i128 = 0;
    let mut fail = |index: usize, field: &str, message: String| {
        errors.push(FieldError { index, field: field.to_string(), message });
    };
    for (i, o) in body.orders.iter().enumerate() {
        let kind = o.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "buy" | "sell" => {
                let Some(c) = o.get("commodity").and_then(Value::as_str).and_then(|c| s.commodity_by_code(c)) else {
                    fail(i, "commodity", "unknown commodity".into());
                    continue;
                };
                let market = MarketId::new(c, Stage::Refined);
                let bounds = s.stage(market);
                let qty = o.get("quantity_t").and_then(Value::as_f64).unwrap_or(f64::NAN);
                if !qty.is_finite() || qty <= 0.0 || qty > 1.0e6 {
                    fail(i, "quantity_t", "must be a number of tonnes above 0 and at most 1,000,000".into());
                    continue;
                }
                let limit = o.get("limit_usd_per_kg").and_then(Value::as_f64).unwrap_or(f64::NAN);
                let limit_c = if limit.is_finite() { Price((limit * 100.0).round() as i64) } else { Price(-1) };
                if limit_c < bounds.price_min || limit_c > bounds.price_max {
                    fail(
                        i,
                        "limit_usd_per_kg",
                        format!("must be between {} and {} US$/kg", usd(bounds.price_min), usd(bounds.price_max)),
                    );
                    continue;
                }
                let quantity = Quantity((qty * 1000.0).round() as i64);
                let side = if kind == "buy" { Side::Buy } else { Side::Sell };
                if side == Side::Sell && quantity > agency.holding(market) {
                    fail(i, "quantity_t", format!("the reserve holds only {} t", tonnes(agency.holding(market))));
                    continue;
                }
                if side == Side::Buy {
                    committed += i128::from(limit_c.value_of(quantity).0);
                    if committed > i128::from(agency.cash.0.max(0)) {
                        fail(i, "quantity_t", "these bids together exceed the treasury".into());
                        continue;
                    }
                }
                let domestic_only =
                    o.get("domestic_only").and_then(Value::as_bool).unwrap_or(false) && side == Side::Sell;
                sub.orders.push(Order { market, side, quantity, limit: limit_c, domestic_only });
            }
            "accept_proposal" => {
                let id = o.get("id").and_then(Value::as_u64).unwrap_or(u64::MAX);
                match game.proposals.iter().find(|p| u64::from(p.id) == id) {
                    None => fail(i, "id", "no open proposal has that id".into()),
                    Some(p) => {
                        let member = s
                            .alliances
                            .iter()
                            .position(|a| a.code == p.alliance)
                            .is_some_and(|k| game.state.alliances[k].contains(&n));
                        if member {
                            sub.accept.push(p.id);
                        } else {
                            fail(i, "id", format!("{code} is not a member of {}", p.alliance));
                        }
                    }
                }
            }
            "policy" => match policy_event(game, n, &code, next, i, o.get("event")) {
                Ok(e) => sub.events.push(e),
                Err((field, message)) => fail(i, &field, message),
            },
            _ => fail(i, "type", "must be \"buy\", \"sell\", \"policy\" or \"accept_proposal\"".into()),
        }
    }
    if errors.is_empty() { Ok(sub) } else { Err(errors) }
}

/// A policy order, written as a scenario `[[events]]` table in JSON, validated exactly like a
/// scenario's events (so errors name the field). It acts for the player's own nation only.
fn policy_event(
    game: &Game,
    n: NationId,
    code: &str,
    next: u32,
    index: usize,
    event: Option<&Value>,
) -> Result<engine::scenario::Event, (String, String)> {
    const ALLOWED: [&str; 12] = [
        "export_ban",
        "export_quota",
        "export_licensing",
        "export_tariff",
        "import_tariff",
        "stockpile_target",
        "stockpile_release",
        "subsidy",
        "rd_funding",
        "join_alliance",
        "leave_alliance",
        "lift",
    ];
    let Some(Value::Object(map)) = event else {
        return Err(("event".into(), "a policy order needs an \"event\" object".into()));
    };
    let action = map.get("action").and_then(Value::as_str).unwrap_or("");
    if !ALLOWED.contains(&action) {
        return Err(("event.action".into(), format!("must be one of: {}", ALLOWED.join(", "))));
    }
    if let Some(other) = map.get("nation").and_then(Value::as_str)
        && other != code
    {
        return Err(("event.nation".into(), "a player acts for its own nation only".into()));
    }
    let mut table = toml::Table::new();
    for (k, v) in map {
        if matches!(k.as_str(), "tick" | "nation" | "name" | "until_tick" | "announce_tick") {
            continue;
        }
        let value = toml::Value::try_from(v).map_err(|_| (format!("event.{k}"), "has an unsupported value".into()))?;
        table.insert(k.clone(), value);
    }
    let name = format!("{code}-{action}-t{next}-{index}");
    table.insert("tick".into(), toml::Value::Integer(i64::from(next) + 1));
    if action != "lift" {
        table.insert("nation".into(), toml::Value::String(code.to_string()));
    }
    table.insert("name".into(), toml::Value::String(name));
    let mut file = toml::Table::new();
    file.insert("events".into(), toml::Value::Array(vec![toml::Value::Table(table)]));
    let text = toml::to_string(&file).map_err(|e| ("event".into(), e.to_string()))?;
    let events = parse_events(&text, "order", &game.scenario).map_err(|e| {
        let field = e.field.strip_prefix("events[0]").unwrap_or(&e.field).trim_start_matches('.');
        (if field.is_empty() { "event".to_string() } else { format!("event.{field}") }, e.message)
    })?;
    let event = events.into_iter().next().ok_or_else(|| ("event".to_string(), "no event".to_string()))?;
    match &event.kind {
        EventKind::Lift { target } => {
            let own = game.state.policies.active.iter().any(|a| {
                a.name == *target
                    && matches!(&a.rule,
                        engine::policy::Restriction::ExportBan { nation, .. }
                        | engine::policy::Restriction::ExportQuota { nation, .. }
                        | engine::policy::Restriction::ExportLicensing { nation, .. }
                        | engine::policy::Restriction::ExportTariff { nation, .. }
                        | engine::policy::Restriction::ImportTariff { nation, .. } if *nation == n)
            });
            if !own {
                return Err(("event.target".into(), format!("{code} has no restriction in force named \"{target}\"")));
            }
        }
        EventKind::JoinAlliance { alliance, .. } if !game.scenario.alliance(*alliance).open => {
            return Err(("event.alliance".into(), "that alliance does not take new members".into()));
        }
        _ => {}
    }
    Ok(event)
}

async fn orders(
    State(api): State<Arc<Api>>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    body: Result<Json<OrdersBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let n = match player(&api, &headers, peer.ip()) {
        Ok(n) => n,
        Err(r) => return r.into_response(),
    };
    let Ok(Json(body)) = body else {
        return error(StatusCode::BAD_REQUEST, "the body must be JSON: {\"orders\": [...], \"comment\": \"...\"}");
    };
    let mut game = api.shared.game();
    if game.ended {
        return error(StatusCode::CONFLICT, "the exercise has ended");
    }
    if body.orders.len() > 200 {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "at most 200 orders a turn");
    }
    match validate(&game, n, &body) {
        Ok(sub) => {
            let counts = json!({ "orders": sub.orders.len(), "policies": sub.events.len(), "turn": game.turn });
            game.submitted.insert(n, sub);
            drop(game);
            api.shared.notify();
            Json(json!({ "accepted": counts })).into_response()
        }
        Err(errors) => (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "errors": errors }))).into_response(),
    }
}

#[derive(Deserialize)]
struct MessageBody {
    to: Vec<String>,
    text: String,
}

async fn message(
    State(api): State<Arc<Api>>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    body: Result<Json<MessageBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let n = match player(&api, &headers, peer.ip()) {
        Ok(n) => n,
        Err(r) => return r.into_response(),
    };
    let Ok(Json(body)) = body else {
        return error(StatusCode::BAD_REQUEST, "the body must be JSON: {\"to\": [\"US\"], \"text\": \"...\"}");
    };
    let mut game = api.shared.game();
    let s = game.scenario.clone();
    if body.text.trim().is_empty() || body.text.chars().count() > 2000 {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "text: between 1 and 2000 characters");
    }
    if let Some(bad) = body.to.iter().find(|t| *t != "all" && s.nation_by_code(t).is_none()) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, format!("to: unknown nation \"{bad}\""));
    }
    let from = s.nation_code(n).to_string();
    let tick = game.next_tick();
    game.messages.push(MessageRow { tick, from: from.clone(), to: body.to.clone(), text: body.text.clone() });
    game.inbox.push((from, JournalInput::Message { to: body.to, text: body.text }));
    drop(game);
    api.shared.notify();
    Json(json!({ "sent": true })).into_response()
}

// ---------------------------------------------------------------------------------------------
// Control.

async fn control_view(State(api): State<Arc<Api>>, ConnectInfo(peer): Peer, headers: HeaderMap) -> Response {
    if let Err(r) = control(&api, &headers, peer.ip()) {
        return r.into_response();
    }
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
    Json(json!({
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
    }))
    .into_response()
}

#[derive(Deserialize)]
struct ControlBody {
    action: String,
    #[serde(default)]
    ticks: Option<u32>,
    #[serde(default)]
    seconds: Option<f64>,
    #[serde(default)]
    mode: Option<String>,
}

async fn control_action(
    State(api): State<Arc<Api>>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    body: Result<Json<ControlBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(r) = control(&api, &headers, peer.ip()) {
        return r.into_response();
    }
    let Ok(Json(body)) = body else {
        return error(StatusCode::BAD_REQUEST, "the body must be JSON: {\"action\": \"pause\"}");
    };
    let mut game = api.shared.game();
    match body.action.as_str() {
        "pause" => game.paused = true,
        "resume" => {
            game.paused = false;
            game.turn_started = Instant::now();
        }
        "advance" => match body.ticks {
            Some(t) if (1..=520).contains(&t) => game.advance += t,
            _ => return error(StatusCode::UNPROCESSABLE_ENTITY, "ticks: between 1 and 520"),
        },
        "deadline" => match body.seconds {
            Some(sec) if sec.is_finite() && sec > 0.0 && sec <= 7.0 * 86_400.0 => {
                game.setup.deadline = Duration::from_secs_f64(sec);
            }
            _ => return error(StatusCode::UNPROCESSABLE_ENTITY, "seconds: above 0 and at most a week (604800)"),
        },
        "mode" => match body.mode.as_deref() {
            Some("turn") => {
                game.realtime = false;
                game.turn_started = Instant::now();
            }
            Some("real-time") => game.realtime = true,
            _ => return error(StatusCode::UNPROCESSABLE_ENTITY, "mode: \"turn\" or \"real-time\""),
        },
        "on_missed" => match body.mode.as_deref() {
            Some("standing") => game.missed_standing = true,
            Some("ai") => game.missed_standing = false,
            _ => return error(StatusCode::UNPROCESSABLE_ENTITY, "mode: \"standing\" or \"ai\""),
        },
        "end" => game.ended = true,
        other => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("action: unknown \"{other}\" (pause, resume, advance, deadline, mode, on_missed, end)"),
            );
        }
    }
    let now = status(&game);
    drop(game);
    api.shared.notify();
    Json(now).into_response()
}

#[derive(Deserialize)]
struct InjectBody {
    /// One or more `[[events]]` tables in the scenario format.
    toml: String,
    /// "now" (the default), a tick, or a condition.
    #[serde(default)]
    at_tick: Option<u32>,
    #[serde(default)]
    when_price: Option<WhenPrice>,
}

#[derive(Deserialize)]
struct WhenPrice {
    commodity: String,
    #[serde(default)]
    stage: Option<String>,
    /// e.g. 2.0: when the price doubles.
    ratio: f64,
}

async fn inject(
    State(api): State<Arc<Api>>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    body: Result<Json<InjectBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(r) = control(&api, &headers, peer.ip()) {
        return r.into_response();
    }
    let Ok(Json(body)) = body else {
        return error(StatusCode::BAD_REQUEST, "the body must be JSON: {\"toml\": \"[[events]] ...\"}");
    };
    let mut game = api.shared.game();
    let next = game.next_tick();
    let scenario = game.scenario.clone();
    let mut events = match parse_events(&body.toml, "inject", &scenario) {
        Ok(e) if !e.is_empty() => e,
        Ok(_) => return error(StatusCode::UNPROCESSABLE_ENTITY, "no [[events]] table"),
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    if let Some(w) = body.when_price {
        let stage = match w.stage.as_deref().map(Stage::parse) {
            None => Stage::Refined,
            Some(Some(s)) => s,
            Some(None) => return error(StatusCode::UNPROCESSABLE_ENTITY, "when_price.stage: ore or refined"),
        };
        let Some(c) = scenario.commodity_by_code(&w.commodity) else {
            return error(StatusCode::UNPROCESSABLE_ENTITY, "when_price.commodity: unknown commodity");
        };
        if !w.ratio.is_finite() || w.ratio <= 0.0 || w.ratio > 100.0 {
            return error(StatusCode::UNPROCESSABLE_ENTITY, "when_price.ratio: above 0 and at most 100");
        }
        let market = MarketId::new(c, stage);
        let base = game.state.markets[market.index()].last_price;
        let label =
            format!("{} when {} {} reaches {}x {}", events[0].name, w.commodity, stage.as_str(), w.ratio, usd(base));
        game.conditionals.push(Conditional {
            market,
            base,
            ratio_bp: (w.ratio * 10_000.0).round() as i64,
            events,
            label: label.clone(),
        });
        return Json(json!({ "armed": label })).into_response();
    }
    let at = body.at_tick.unwrap_or(next + 1);
    if at <= next {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("at_tick: tick {at} is past; the earliest an inject can take effect is tick {}", next + 1),
        );
    }
    if at >= scenario.ticks {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("at_tick: the exercise ends at tick {}", scenario.ticks),
        );
    }
    let names: Vec<String> = events.iter().map(|e| e.name.clone()).collect();
    let first = events.iter().map(|e| e.tick.0).min().unwrap_or(0);
    for e in &mut events {
        let offset = e.tick.0 - first;
        super::shift(e, at + offset);
    }
    for e in events {
        game.inbox.push(("control".into(), JournalInput::Inject(e)));
    }
    drop(game);
    api.shared.notify();
    Json(json!({ "scheduled": names, "at_tick": at })).into_response()
}

#[derive(Deserialize)]
struct NoteBody {
    text: String,
    #[serde(default)]
    bookmark: bool,
}

async fn note(
    State(api): State<Arc<Api>>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    body: Result<Json<NoteBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(r) = control(&api, &headers, peer.ip()) {
        return r.into_response();
    }
    let Ok(Json(body)) = body else {
        return error(StatusCode::BAD_REQUEST, "the body must be JSON: {\"text\": \"...\", \"bookmark\": false}");
    };
    if body.text.trim().is_empty() || body.text.chars().count() > 4000 {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "text: between 1 and 4000 characters");
    }
    let mut game = api.shared.game();
    let tick = game.next_tick();
    game.notes.push(NoteRow { tick, text: body.text.clone(), bookmark: body.bookmark });
    game.inbox.push(("control".into(), JournalInput::Note { text: body.text, bookmark: body.bookmark }));
    drop(game);
    api.shared.notify();
    Json(json!({ "noted_at_tick": tick })).into_response()
}
