//! Control's commands: the clock (pause, resume, advance, deadline for this turn or all,
//! mode, what a missed deadline means, resolve now, roll back to the start of a past turn,
//! end), adjudication of sealed orders (adjust or refuse one, with a note the player sees),
//! injects from the scenario's event format (now, at a tick, or when a price condition is met;
//! each named by its author, names unique in the run) and notes. Each is taken in by the engine
//! thread between ticks and journaled there.

use super::command::{ApiError, ControlBody, InjectBody, NoteBody, OrdersBody};
use super::views::{status, usd};
use super::{Api, Conditional, Game, MessageRow, NoteRow};
use crate::journal::ControlAction;
use crate::store::JournalInput;
use agents::{MarketId, Stage};
use engine::scenario::parse_events;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::Invalid(message.into())
}

const ACTIONS: &str = "pause, resume, advance, deadline, mode, on_missed, resolve, rollback, adjust, refuse, end";

/// One of control's actions on the clock or on a turn.
pub fn action(api: &Api, body: ControlBody) -> Result<Value, ApiError> {
    let mut game = api.shared.game();
    if game.ended {
        return Err(ApiError::Ended("the exercise has ended".into()));
    }
    let journaled = match body.action.as_str() {
        "adjust" | "refuse" => adjudicate(&mut game, &body)?,
        "rollback" => rollback(&mut game, body.turn)?,
        other => clock(&mut game, other, &body)?,
    };
    if let Some(action) = journaled {
        game.inbox.push(("control".into(), JournalInput::Control(action)));
    }
    let now = status(&game);
    drop(game);
    api.shared.notify();
    Ok(now)
}

/// The clock's actions; returns what to journal.
fn clock(game: &mut Game, action: &str, body: &ControlBody) -> Result<Option<ControlAction>, ApiError> {
    Ok(Some(match action {
        "pause" => {
            game.paused = true;
            ControlAction::Pause
        }
        "resume" => {
            game.paused = false;
            game.turn_started = Instant::now();
            ControlAction::Resume
        }
        "advance" => match body.ticks {
            Some(t) if (1..=520).contains(&t) => {
                game.advance += t;
                ControlAction::Advance { ticks: t }
            }
            _ => return Err(invalid("ticks: between 1 and 520")),
        },
        "deadline" => deadline(game, body)?,
        "mode" => match body.mode.as_deref() {
            Some("turn") => {
                game.realtime = false;
                game.turn_started = Instant::now();
                ControlAction::Mode { realtime: false }
            }
            Some("real-time") => {
                game.realtime = true;
                ControlAction::Mode { realtime: true }
            }
            _ => return Err(invalid("mode: \"turn\" or \"real-time\"")),
        },
        "on_missed" => match body.mode.as_deref() {
            Some("standing") => {
                game.missed_standing = true;
                ControlAction::OnMissed { standing: true }
            }
            Some("ai") => {
                game.missed_standing = false;
                ControlAction::OnMissed { standing: false }
            }
            _ => return Err(invalid("mode: \"standing\" or \"ai\"")),
        },
        "resolve" => {
            if game.realtime {
                return Err(invalid("action: resolve is for turn mode (real-time mode has no turns)"));
            }
            game.resolve_now = true;
            ControlAction::ResolveNow
        }
        "end" => {
            game.ended = true;
            game.ended_by_control = true;
            ControlAction::End
        }
        other => return Err(invalid(format!("action: unknown \"{other}\" ({ACTIONS})"))),
    }))
}

/// A new deadline, counted from the start of the turn: for this turn only, or every turn.
fn deadline(game: &mut Game, body: &ControlBody) -> Result<ControlAction, ApiError> {
    let Some(sec) = body.seconds.filter(|s| s.is_finite() && *s > 0.0 && *s <= 7.0 * 86_400.0) else {
        return Err(invalid("seconds: above 0 and at most a week (604800)"));
    };
    let d = Duration::from_secs_f64(sec);
    let all_turns = match body.scope.as_deref() {
        None | Some("all") => true,
        Some("turn") => false,
        Some(other) => return Err(invalid(format!("scope: \"turn\" or \"all\", not \"{other}\""))),
    };
    if all_turns {
        game.setup.deadline = d;
        game.turn_deadline = None;
    } else {
        game.turn_deadline = Some(d);
    }
    Ok(ControlAction::Deadline { ms: d.as_millis() as u64, all_turns })
}

/// Asks the engine thread to take the exercise back to the start of a past turn.
fn rollback(game: &mut Game, turn: Option<u32>) -> Result<Option<ControlAction>, ApiError> {
    if !game.recorded {
        return Err(invalid("rollback needs a recorded exercise (its snapshots and journal)"));
    }
    let current = game.turn;
    match turn {
        Some(t) if (1..=current).contains(&t) => {
            game.rollback = Some(t);
            // Journaled by the engine thread, as the Rollback entry itself.
            Ok(None)
        }
        _ => Err(invalid(format!("turn: a turn from 1 to {current} (the current one)"))),
    }
}

/// Adjusts (replaces) or refuses one of a nation's sealed orders before the reveal; the
/// player is told, with control's note, by a message and in its situation report.
fn adjudicate(game: &mut Game, body: &ControlBody) -> Result<Option<ControlAction>, ApiError> {
    let s = game.scenario.clone();
    let code = body.nation.as_deref().unwrap_or("");
    let Some(n) = s.nation_by_code(code) else {
        return Err(invalid(format!("nation: unknown nation \"{code}\"")));
    };
    let note = body.note.clone().unwrap_or_default();
    if note.trim().is_empty() || note.chars().count() > 2000 {
        return Err(invalid("note: the player is told why: between 1 and 2000 characters"));
    }
    let Some(sub) = game.submitted.get(&n) else {
        return Err(invalid(format!("nation: {code} has no sealed orders this turn")));
    };
    let count = sub.items.len() as u32;
    let index = match body.order {
        Some(i) if (1..=count).contains(&i) => i as usize - 1,
        _ => return Err(invalid(format!("order: 1 to {count} ({code}'s sealed orders)"))),
    };
    let refused = body.action == "refuse";
    let mut raws: Vec<Value> = sub.items.iter().map(|i| i.raw.clone()).collect();
    if refused {
        raws.remove(index);
    } else {
        let Some(replacement) = body.replacement.clone() else {
            return Err(invalid("replacement: the order that replaces it, as a player writes one"));
        };
        raws[index] = replacement;
    }
    let comment = sub.comment.clone();
    let mut refused_list = sub.refused.clone();
    let notes: Vec<Option<String>> = sub.items.iter().map(|i| i.note.clone()).collect();
    let check = OrdersBody { orders: raws, comment, replace: true };
    let mut new = super::orders::validate(game, n, &check).map_err(ApiError::Fields)?;
    let mut kept_notes = notes;
    if refused {
        refused_list.push((sub.items[index].raw.clone(), note.clone()));
        kept_notes.remove(index);
    } else {
        kept_notes[index] = Some(note.clone());
    }
    for (item, note) in new.items.iter_mut().zip(kept_notes) {
        item.note = note;
    }
    new.refused = refused_list;
    game.submitted.insert(n, new);
    let verb = if refused { "refused" } else { "adjusted" };
    tell(game, code, format!("Control {verb} your order {} for turn {}: {note}", index + 1, game.turn));
    Ok(Some(ControlAction::Adjudicated { nation: code.into(), order: index as u32 + 1, refused, note }))
}

/// A message from control to one nation (journaled like a player's).
fn tell(game: &mut Game, nation: &str, text: String) {
    let id = game.next_message;
    game.next_message += 1;
    let tick = game.next_tick();
    let to = vec![nation.to_string()];
    game.messages.push(MessageRow { id, tick, from: "control".into(), to: to.clone(), text: text.clone() });
    game.inbox.push(("control".into(), JournalInput::Message { to, text }));
}

/// Events in the scenario format, now, at a tick, or when a price condition is met.
pub fn inject(api: &Api, body: InjectBody) -> Result<Value, ApiError> {
    let mut game = api.shared.game();
    if game.ended {
        return Err(ApiError::Ended("the exercise has ended".into()));
    }
    let next = game.next_tick();
    let scenario = game.scenario.clone();
    let text = named(&body.toml, body.name.as_deref())?;
    let mut events = match parse_events(&text, "inject", &scenario, game.event_names.clone()) {
        Ok(e) if !e.is_empty() => e,
        Ok(_) => return Err(invalid("no [[events]] table")),
        Err(e) => return Err(invalid(e.to_string())),
    };
    let taken = |name: &str| {
        game.event_names.iter().any(|n| n == name)
            || game.armed().flat_map(|c| &c.events).any(|e| e.name == name)
            || game.inbox.iter().any(|(_, i)| i.event().is_some_and(|e| e.name == name))
    };
    if let Some(e) = events.iter().find(|e| taken(&e.name)) {
        return Err(invalid(format!(
            "name: an event is already named \"{}\"; give the inject a name of its own",
            e.name
        )));
    }
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
        let armed =
            Conditional { market, base, ratio_bp, events, label: label.clone(), armed_tick: next, fired_tick: None };
        game.conditionals.push(armed);
        game.notes.push(NoteRow { tick: next, text: format!("armed: {label}"), bookmark: false });
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

/// The inject's text with `name` written into each `[[events]]` table that has none (the
/// first gets `name`, the next `name-2`, ...). Without a name, every table must name itself:
/// the name is how players, `lift` and the debrief refer to it.
fn named(text: &str, name: Option<&str>) -> Result<String, ApiError> {
    let mut doc: toml::Table = toml::from_str(text).map_err(|e| invalid(format!("toml: {}", e.message())))?;
    let Some(toml::Value::Array(events)) = doc.get_mut("events") else { return Ok(text.to_string()) };
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    if name.is_some_and(|n| n.chars().count() > 80 || n.chars().any(char::is_control)) {
        return Err(invalid("name: at most 80 characters, none of them control characters"));
    }
    let mut k = 0;
    for e in events.iter_mut() {
        let toml::Value::Table(t) = e else { continue };
        if t.contains_key("name") {
            continue;
        }
        let Some(name) = name else {
            return Err(invalid("name: give the inject a name (players, lift and the debrief refer to it by name)"));
        };
        k += 1;
        let this = if k == 1 { name.to_string() } else { format!("{name}-{k}") };
        t.insert("name".into(), toml::Value::String(this));
    }
    toml::to_string(&doc).map_err(|e| invalid(format!("toml: {e}")))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unnamed_inject_takes_its_authors_name() {
        let text = "[[events]]\ntick = 0\naction = \"demand_shock\"\ncommodity = \"dy\"\npct = 5\n\n[[events]]\ntick = 2\naction = \"demand_shock\"\ncommodity = \"dy\"\npct = -5\n";
        let out = named(text, Some("panic")).expect("named");
        assert!(out.contains("name = \"panic\"") && out.contains("name = \"panic-2\""), "{out}");
        assert!(named(text, None).is_err(), "an inject needs a name");
        assert!(named(text, Some("a\u{7}b")).is_err(), "no control characters in a name");
    }
}
