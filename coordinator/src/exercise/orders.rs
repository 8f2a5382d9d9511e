//! Players' orders: a submission's limit orders, policy orders and acceptances, each validated
//! against the world as it is now (one invalid order refuses the whole submission, with the
//! order and field named), and messages between players. Policy orders are scenario events
//! given as values and validated exactly like a scenario's (`engine::scenario::event_from_table`).

use super::command::{ApiError, FieldError, MessageBody, OrdersBody};
use super::views::{tonnes, usd};
use super::{Api, Game, Item, MessageRow, Sealed, Submission};
use crate::store::JournalInput;
use agents::{MarketId, NationId, Order, Price, Quantity, Side, Stage};
use engine::scenario::{EventKind, event_from_table};
use serde_json::{Value, json};

/// At most this many orders a turn.
const MAX_ORDERS: usize = 200;

/// Seals a player's submission for the coming turn.
pub fn submit(api: &Api, n: NationId, body: OrdersBody) -> Result<Value, ApiError> {
    let mut game = api.shared.game();
    if game.ended {
        return Err(ApiError::Ended("the exercise has ended".into()));
    }
    if body.orders.len() > MAX_ORDERS {
        return Err(ApiError::TooLarge(format!("at most {MAX_ORDERS} orders a turn")));
    }
    if body.orders.is_empty()
        && !body.replace
        && let Some(sealed) = game.submitted.get(&n).filter(|s| !s.items.is_empty())
    {
        return Err(ApiError::Invalid(format!(
            "orders: this empty submission would withdraw the {} order(s) already sealed for turn {}; send \"replace\": true to withdraw them",
            sealed.items.len(),
            game.turn
        )));
    }
    let sub = validate(&game, n, &body).map_err(ApiError::Fields)?;
    let counts = json!({ "orders": sub.orders().len(), "policies": sub.events().len(), "turn": game.turn });
    game.submitted.insert(n, sub);
    drop(game);
    api.shared.notify();
    Ok(json!({ "accepted": counts }))
}

/// A message from a player to others (or "all"), journaled.
pub fn message(api: &Api, n: NationId, body: MessageBody) -> Result<Value, ApiError> {
    let mut game = api.shared.game();
    let s = game.scenario.clone();
    if body.text.trim().is_empty() || body.text.chars().count() > 2000 {
        return Err(ApiError::Invalid("text: between 1 and 2000 characters".into()));
    }
    if let Some(bad) = body.to.iter().find(|t| *t != "all" && s.nation_by_code(t).is_none()) {
        return Err(ApiError::Invalid(format!("to: unknown nation \"{bad}\"")));
    }
    let from = s.nation_code(n).to_string();
    let tick = game.next_tick();
    let id = game.next_message;
    game.next_message += 1;
    game.messages.push(MessageRow { id, tick, from: from.clone(), to: body.to.clone(), text: body.text.clone() });
    game.inbox.push((from, JournalInput::Message { to: body.to, text: body.text }));
    drop(game);
    api.shared.notify();
    Ok(json!({ "sent": true }))
}

/// Validates one submission against the world as it is now. One bad order refuses all.
pub fn validate(game: &Game, n: NationId, body: &OrdersBody) -> Result<Submission, Vec<FieldError>> {
    let s = &game.scenario;
    let code = s.nation_code(n).to_string();
    let mut errors = Vec::new();
    let mut sub = Submission { comment: body.comment.chars().take(2000).collect(), ..Submission::default() };
    let mut keep = |raw: &Value, sealed: Sealed| sub.items.push(Item { raw: raw.clone(), sealed, note: None });
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
                if !quantity.is_positive() {
                    fail(i, "quantity_t", "must be at least 0.001 t (1 kg)".into());
                    continue;
                }
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
                keep(o, Sealed::Limit(Order { market, side, quantity, limit: limit_c, domestic_only }));
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
                            keep(o, Sealed::Accept(p.id));
                        } else {
                            fail(i, "id", format!("{code} is not a member of {}", p.alliance));
                        }
                    }
                }
            }
            "policy" => match policy_event(game, n, &code, next, i, o.get("event")) {
                Ok(e) => keep(o, Sealed::Policy(e)),
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
    // A lift may target any event of the run so far: the scenario's and those injected since.
    let events = event_from_table(table, &game.scenario, game.event_names.clone()).map_err(|e| {
        let field = e.field.strip_prefix("events[0]").unwrap_or(&e.field).trim_start_matches('.');
        (if field.is_empty() { "event".to_string() } else { format!("event.{field}") }, e.message)
    })?;
    let event = events.into_iter().next().ok_or_else(|| ("event".to_string(), "no event".to_string()))?;
    match &event.kind {
        EventKind::Lift { target } => {
            let own = game.state.policies.active.iter().any(|a| a.name == *target && a.rule.nation() == n);
            if !own {
                return Err(("event.target".into(), format!("{code} has no restriction in force named \"{target}\"")));
            }
        }
        EventKind::JoinAlliance { alliance, .. } => {
            if !game.scenario.alliance(*alliance).open {
                return Err(("event.alliance".into(), "that alliance does not take new members".into()));
            }
        }
        // The actions a player may order act for its own nation (checked above) and need no
        // more than the scenario's own validation.
        EventKind::StockpileRelease { quantity, .. } if !quantity.is_positive() => {
            return Err(("event.release_t".into(), "must be at least 0.001 t (1 kg)".into()));
        }
        EventKind::Restrict(_)
        | EventKind::StockpileTarget { .. }
        | EventKind::StockpileRelease { .. }
        | EventKind::LeaveAlliance { .. }
        | EventKind::Subsidy { .. }
        | EventKind::RdFunding { .. } => {}
        // Not among the actions a player may order (refused above).
        EventKind::DemandShock { .. } | EventKind::SiteOutage { .. } | EventKind::LaneDisruption { .. } => {
            return Err(("event.action".into(), "is not a player's order".into()));
        }
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exercise::Setup;
    use std::sync::Arc;
    use std::time::Duration;

    fn game() -> Game {
        let text = include_str!("../../../scenarios/tiny.toml");
        let s = Arc::new(engine::scenario::parse(text, "tiny.toml").expect("tiny"));
        let setup = Setup {
            players: vec![NationId(2)],
            turn_ticks: 4,
            deadline: Duration::from_secs(60),
            tick_interval: Duration::from_secs(1),
        };
        let e = engine::Engine::new(s.clone());
        Game::new(s, setup, &e)
    }

    fn submit(orders: Vec<Value>) -> Result<Submission, Vec<FieldError>> {
        validate(&game(), NationId(2), &OrdersBody { orders, comment: "plan".into(), replace: false })
    }

    fn field_of(result: Result<Submission, Vec<FieldError>>) -> String {
        let errors = result.expect_err("refused");
        errors[0].field.clone()
    }

    #[test]
    fn a_valid_buy_and_a_policy_order_are_accepted() {
        let sub = submit(vec![
            json!({"type": "buy", "commodity": "dy", "quantity_t": 1.5, "limit_usd_per_kg": 400.0}),
            json!({"type": "policy", "event": {"action": "stockpile_target", "commodity": "dy", "target_days": 120}}),
        ])
        .expect("valid");
        assert_eq!(sub.orders().len(), 1);
        assert_eq!(sub.orders()[0].quantity, Quantity(1_500));
        assert_eq!(sub.events().len(), 1);
        assert_eq!(sub.events()[0].name, "CC-stockpile_target-t0-1");
        assert_eq!(sub.comment, "plan");
    }

    #[test]
    fn each_bad_order_names_its_field() {
        let buy =
            |q: f64, limit: f64| json!({"type": "buy", "commodity": "dy", "quantity_t": q, "limit_usd_per_kg": limit});
        assert_eq!(field_of(submit(vec![json!({"type": "buy", "commodity": "zz"})])), "commodity");
        assert_eq!(field_of(submit(vec![buy(0.0, 400.0)])), "quantity_t");
        assert_eq!(field_of(submit(vec![buy(0.0004, 400.0)])), "quantity_t", "no 0 kg order");
        assert_eq!(field_of(submit(vec![buy(1.0, 1.0e9)])), "limit_usd_per_kg");
        assert_eq!(field_of(submit(vec![buy(1.0e6, 14_999.0)])), "quantity_t", "beyond the treasury");
        let sell = json!({"type": "sell", "commodity": "co", "quantity_t": 1.0, "limit_usd_per_kg": 30.0});
        assert_eq!(field_of(submit(vec![sell])), "quantity_t", "CC holds no cobalt reserve");
        assert_eq!(field_of(submit(vec![json!({"type": "teleport"})])), "type");
        let other = json!({"type": "policy", "event": {"action": "export_ban", "nation": "BB", "commodity": "dy"}});
        assert_eq!(field_of(submit(vec![other])), "event.nation");
        let unknown = json!({"type": "policy", "event": {"action": "export_ban", "commodity": "xx"}});
        assert_eq!(field_of(submit(vec![unknown])), "event.commodity");
    }

    #[test]
    fn one_bad_order_refuses_the_whole_submission_with_every_error() {
        let errors = submit(vec![
            json!({"type": "buy", "commodity": "dy", "quantity_t": 1.0, "limit_usd_per_kg": 400.0}),
            json!({"type": "buy", "commodity": "zz"}),
            json!({"type": "accept_proposal", "id": 99}),
        ])
        .expect_err("refused");
        let at: Vec<(usize, &str)> = errors.iter().map(|e| (e.index, e.field.as_str())).collect();
        assert_eq!(at, vec![(1, "commodity"), (2, "id")]);
    }

    #[test]
    fn a_player_can_lift_its_restriction_imposed_during_the_exercise() {
        let mut g = game();
        let name = "CC-export_ban-t3-0".to_string();
        let rule = engine::policy::Restriction::ExportBan {
            nation: NationId(2),
            market: MarketId::refined(agents::CommodityId(0)),
            to: engine::policy::Partners::All,
        };
        g.state.policies.impose(&name, agents::Tick(4), rule, true);
        g.event_names.push(name.clone());
        let lift = json!({"type": "policy", "event": {"action": "lift", "target": name}});
        let body = OrdersBody { orders: vec![lift], comment: String::new(), replace: false };
        let sub = validate(&g, NationId(2), &body).expect("the lift of an exercise's own restriction is valid");
        assert!(matches!(&sub.events()[0].kind, EventKind::Lift { target } if *target == name));
    }

    #[test]
    fn a_player_can_lift_only_its_own_restrictions() {
        let lift = json!({"type": "policy", "event": {"action": "lift", "target": "bb-dy-quota"}});
        assert_eq!(field_of(submit(vec![lift])), "event.target", "BB's quota is not CC's to lift");
    }
}
