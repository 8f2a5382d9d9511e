//! Control's commands: the clock (pause, resume, advance, deadline, mode, what a missed
//! deadline means, end), injects from the scenario's event format (now, at a tick, or when a
//! price condition is met) and notes. Each is taken in by the engine thread between ticks and
//! journaled there.

use super::command::{ApiError, ControlBody, InjectBody, NoteBody};
use super::views::{status, usd};
use super::{Api, Conditional, NoteRow};
use crate::store::JournalInput;
use agents::{MarketId, Stage};
use engine::scenario::parse_events;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::Invalid(message.into())
}

/// Pause, resume, advance, deadline, mode, on_missed or end.
pub fn action(api: &Api, body: ControlBody) -> Result<Value, ApiError> {
    let mut game = api.shared.game();
    match body.action.as_str() {
        "pause" => game.paused = true,
        "resume" => {
            game.paused = false;
            game.turn_started = Instant::now();
        }
        "advance" => match body.ticks {
            Some(t) if (1..=520).contains(&t) => game.advance += t,
            _ => return Err(invalid("ticks: between 1 and 520")),
        },
        "deadline" => match body.seconds {
            Some(sec) if sec.is_finite() && sec > 0.0 && sec <= 7.0 * 86_400.0 => {
                game.setup.deadline = Duration::from_secs_f64(sec);
            }
            _ => return Err(invalid("seconds: above 0 and at most a week (604800)")),
        },
        "mode" => match body.mode.as_deref() {
            Some("turn") => {
                game.realtime = false;
                game.turn_started = Instant::now();
            }
            Some("real-time") => game.realtime = true,
            _ => return Err(invalid("mode: \"turn\" or \"real-time\"")),
        },
        "on_missed" => match body.mode.as_deref() {
            Some("standing") => game.missed_standing = true,
            Some("ai") => game.missed_standing = false,
            _ => return Err(invalid("mode: \"standing\" or \"ai\"")),
        },
        "end" => game.ended = true,
        other => {
            return Err(invalid(format!(
                "action: unknown \"{other}\" (pause, resume, advance, deadline, mode, on_missed, end)"
            )));
        }
    }
    let now = status(&game);
    drop(game);
    api.shared.notify();
    Ok(now)
}

/// Events in the scenario format, now, at a tick, or when a price condition is met.
pub fn inject(api: &Api, body: InjectBody) -> Result<Value, ApiError> {
    let mut game = api.shared.game();
    let next = game.next_tick();
    let scenario = game.scenario.clone();
    let mut events = match parse_events(&body.toml, "inject", &scenario) {
        Ok(e) if !e.is_empty() => e,
        Ok(_) => return Err(invalid("no [[events]] table")),
        Err(e) => return Err(invalid(e.to_string())),
    };
    if let Some(w) = body.when_price {
        let stage = match w.stage.as_deref().map(Stage::parse) {
            None => Stage::Refined,
            Some(Some(s)) => s,
            Some(None) => return Err(invalid("when_price.stage: ore or refined")),
        };
        let Some(c) = scenario.commodity_by_code(&w.commodity) else {
            return Err(invalid("when_price.commodity: unknown commodity"));
        };
        if !w.ratio.is_finite() || w.ratio <= 0.0 || w.ratio > 100.0 {
            return Err(invalid("when_price.ratio: above 0 and at most 100"));
        }
        let market = MarketId::new(c, stage);
        let base = game.state.markets[market.index()].last_price;
        let label =
            format!("{} when {} {} reaches {}x {}", events[0].name, w.commodity, stage.as_str(), w.ratio, usd(base));
        let ratio_bp = (w.ratio * 10_000.0).round() as i64;
        game.conditionals.push(Conditional { market, base, ratio_bp, events, label: label.clone() });
        return Ok(json!({ "armed": label }));
    }
    let at = body.at_tick.unwrap_or(next + 1);
    if at <= next {
        return Err(invalid(format!(
            "at_tick: tick {at} is past; the earliest an inject can take effect is tick {}",
            next + 1
        )));
    }
    if at >= scenario.ticks {
        return Err(invalid(format!("at_tick: the exercise ends at tick {}", scenario.ticks)));
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
    Ok(json!({ "scheduled": names, "at_tick": at }))
}

/// An adjudication note or a bookmark, journaled.
pub fn note(api: &Api, body: NoteBody) -> Result<Value, ApiError> {
    if body.text.trim().is_empty() || body.text.chars().count() > 4000 {
        return Err(invalid("text: between 1 and 4000 characters"));
    }
    let mut game = api.shared.game();
    let tick = game.next_tick();
    game.notes.push(NoteRow { tick, text: body.text.clone(), bookmark: body.bookmark });
    game.inbox.push(("control".into(), JournalInput::Note { text: body.text, bookmark: body.bookmark }));
    drop(game);
    api.shared.notify();
    Ok(json!({ "noted_at_tick": tick }))
}
