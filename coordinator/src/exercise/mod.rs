//! War-game mode: `chokepoint exercise`. Analysts play nations from a browser (or over the
//! HTTP API), a control cell runs the clock. Nations nobody plays stay under AI control.
//!
//! The engine runs on its own thread and is the only thing that touches the world. Everything
//! players and control do reaches it through [`Game`] (a mutex and a condition variable): orders
//! are sealed until the turn resolves, then revealed at once, journaled (with game and wall
//! time) and applied — policy orders as events, limit orders as extra orders of the nation's
//! stockpile agency. Because every input is in the journal, `replay` and `fork` work on an
//! exercise like on any run.
//!
//! Turn mode: a turn is `turn_ticks` ticks; it resolves when every played nation has submitted
//! or the deadline passes (a nation that missed it keeps its standing policies: its agency's
//! stockpile rules act as before). Control can pause, resume, advance ticks, change the
//! deadline, switch to real-time mode, fire injects (now, at a tick, or when a price condition
//! is met), attach notes and bookmarks, and end the exercise.

pub mod api;
pub mod grpc;

use crate::run::{Driver, Hooks, Persist, RunError, RunOptions, lock};
use crate::sim::Sim;
use crate::store::JournalInput;
use agents::{MarketId, NationId, Order, Price, Tick};
use engine::record::TickRecord;
use engine::scenario::{Event, Scenario};
use engine::world::WorldState;
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How the exercise is set up.
#[derive(Clone, Debug)]
pub struct Setup {
    pub players: Vec<NationId>,
    pub turn_ticks: u32,
    pub deadline: Duration,
    /// In real-time mode, the wall time between ticks.
    pub tick_interval: Duration,
}

/// What a played nation submitted for the coming turn, sealed until the turn resolves.
#[derive(Clone, Debug, Default)]
pub struct Submission {
    pub events: Vec<Event>,
    pub orders: Vec<Order>,
    pub comment: String,
    /// Proposals (by id) this nation accepts.
    pub accept: Vec<u32>,
}

/// A nation asking to join an alliance: it joins when every member accepts (played members
/// with an order; AI members when they are close enough to it in alignment), or the proposal
/// lapses after two turns.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Proposal {
    pub id: u32,
    pub nation: String,
    pub alliance: String,
    pub turn: u32,
    pub accepted_by: Vec<String>,
    #[serde(skip)]
    pub event: Event,
}

/// A control inject waiting for its condition: the world price of `market` reaching `ratio_bp`
/// of what it was when the inject was set.
#[derive(Clone, Debug)]
pub struct Conditional {
    pub market: MarketId,
    pub base: Price,
    pub ratio_bp: i64,
    pub events: Vec<Event>,
    pub label: String,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct MessageRow {
    pub tick: u32,
    pub from: String,
    pub to: Vec<String>,
    pub text: String,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct NoteRow {
    pub tick: u32,
    pub text: String,
    pub bookmark: bool,
}

/// Everything shared between the engine thread and the web server.
pub struct Game {
    pub scenario: Arc<Scenario>,
    pub setup: Setup,
    /// The world after the last tick (what the views are built from).
    pub state: WorldState,
    /// Every tick's record so far (charts, shortages, events).
    pub records: Vec<TickRecord>,
    pub turn: u32,
    pub turn_started: Instant,
    pub paused: bool,
    pub realtime: bool,
    /// Ticks control asked to run now, whatever the submissions.
    pub advance: u32,
    pub ended: bool,
    pub submitted: BTreeMap<NationId, Submission>,
    /// Inputs from control (injects, notes) and players (messages) to journal and apply.
    pub inbox: Vec<(String, JournalInput)>,
    pub conditionals: Vec<Conditional>,
    pub messages: Vec<MessageRow>,
    pub notes: Vec<NoteRow>,
    /// Who missed which turn's deadline.
    pub missed: Vec<(u32, String)>,
    pub failure: Option<String>,
    /// Wall time each resolved turn took (reveal and ticks), in milliseconds.
    pub turn_ms: Vec<u64>,
    /// What a nation that misses a deadline does: its standing orders (its last limit orders,
    /// placed again, and its stockpile rules) or its AI only (its stockpile rules).
    pub missed_standing: bool,
    pub last_orders: BTreeMap<NationId, Vec<Order>>,
    pub proposals: Vec<Proposal>,
    pub next_proposal: u32,
    /// Each played nation's price forecast for each stockpiled commodity, tick by tick.
    pub forecast_history: BTreeMap<(NationId, agents::CommodityId), Vec<Price>>,
}

impl Game {
    pub fn next_tick(&self) -> u32 {
        self.state.tick.0
    }

    /// Milliseconds until the turn's deadline (0 when passed or not in turn mode).
    pub fn deadline_left_ms(&self) -> u64 {
        if self.realtime || self.paused {
            return 0;
        }
        self.setup.deadline.saturating_sub(self.turn_started.elapsed()).as_millis() as u64
    }

    fn everyone_submitted(&self) -> bool {
        self.setup.players.iter().all(|n| self.submitted.contains_key(n))
    }
}

/// The game and the signal that wakes the engine thread when it changes.
pub struct Shared {
    pub game: Mutex<Game>,
    pub wake: Condvar,
}

impl Shared {
    pub fn new(game: Game) -> Arc<Shared> {
        Arc::new(Shared { game: Mutex::new(game), wake: Condvar::new() })
    }

    pub fn game(&self) -> std::sync::MutexGuard<'_, Game> {
        lock(&self.game)
    }

    pub fn notify(&self) {
        self.wake.notify_all();
    }
}

/// What the engine thread should do next.
enum Next {
    Wait,
    Turn,
    Ticks(u32),
    Stop,
}

/// Runs the exercise on this thread until it ends (control ends it, or the scenario's ticks
/// run out), journaling every input. Returns how the run came out.
pub fn play(
    shared: &Shared,
    mut engine: Sim,
    options: &RunOptions,
    persist: Option<&Persist>,
) -> Result<crate::run::Outcome, RunError> {
    let hooks = Hooks::default();
    let mut driver = Driver::start(&engine, options, persist)?;
    let mut failure = None;
    let mut last_tick_at = Instant::now();
    'outer: loop {
        // Decide, under the lock, what to do; the engine itself runs without it.
        let next = {
            let mut game = shared.game();
            take_inbox(&mut game, &mut engine, &mut driver, persist)?;
            if game.ended || engine.is_finished() {
                Next::Stop
            } else if game.advance > 0 {
                let n = std::mem::take(&mut game.advance);
                Next::Ticks(n)
            } else if game.paused {
                Next::Wait
            } else if game.realtime {
                if last_tick_at.elapsed() >= game.setup.tick_interval {
                    reveal(&mut game, &mut engine, &mut driver, persist)?;
                    Next::Ticks(1)
                } else {
                    Next::Wait
                }
            } else if game.everyone_submitted() || game.turn_started.elapsed() >= game.setup.deadline {
                Next::Turn
            } else {
                Next::Wait
            }
        };
        let resolving = Instant::now();
        let ticks = match next {
            Next::Stop => break,
            Next::Wait => {
                let game = shared.game();
                let _ = shared.wake.wait_timeout(game, Duration::from_millis(100));
                continue;
            }
            Next::Ticks(n) => n,
            Next::Turn => {
                let mut game = shared.game();
                let missing: Vec<String> = game
                    .setup
                    .players
                    .iter()
                    .filter(|n| !game.submitted.contains_key(n))
                    .map(|n| game.scenario.nation_code(*n).to_string())
                    .collect();
                for code in missing {
                    let turn = game.turn;
                    game.missed.push((turn, code.clone()));
                    let nation = game.scenario.nation_by_code(&code).unwrap_or(NationId(0));
                    let standing = game.missed_standing.then(|| game.last_orders.get(&nation).cloned()).flatten();
                    let note = match standing {
                        Some(orders) => {
                            let note = format!(
                                "{code} missed the deadline of turn {turn}: its standing orders ({} limit order(s)) and stockpile rules act",
                                orders.len()
                            );
                            game.submitted.insert(nation, Submission { orders, ..Submission::default() });
                            note
                        }
                        None => format!("{code} missed the deadline of turn {turn}: its stockpile rules (AI) act"),
                    };
                    driver.journal(
                        persist,
                        engine.state().tick.0,
                        "control",
                        JournalInput::Note { text: note.clone(), bookmark: false },
                    )?;
                    let tick = engine.state().tick.0;
                    game.notes.push(NoteRow { tick, text: note, bookmark: false });
                }
                reveal(&mut game, &mut engine, &mut driver, persist)?;
                game.setup.turn_ticks
            }
        };
        for _ in 0..ticks {
            if engine.is_finished() {
                break;
            }
            if let Err(e) = driver.step(&mut engine, &hooks, persist) {
                match e {
                    RunError::Step(e) => {
                        shared.game().failure = Some(e.to_string());
                        failure = Some(e);
                        break 'outer;
                    }
                    other => return Err(other),
                }
            }
            let record = lock(&hooks.last).clone();
            let mut game = shared.game();
            game.state = engine.state().clone();
            if let Some(r) = record {
                game.records.push(r);
            }
            for n in game.setup.players.clone() {
                for p in &engine.state().nations[n.index()].stockpiles {
                    game.forecast_history.entry((n, p.commodity)).or_default().push(p.price_forecast);
                }
            }
            fire_conditionals(&mut game, &mut engine, &mut driver, persist)?;
            if game.ended {
                break;
            }
        }
        last_tick_at = Instant::now();
        let mut game = shared.game();
        if matches!(next, Next::Turn) {
            game.turn_ms.push(resolving.elapsed().as_millis() as u64);
            game.turn += 1;
            game.turn_started = Instant::now();
        }
        shared.notify();
    }
    {
        let mut game = shared.game();
        game.ended = true;
        game.state = engine.state().clone();
    }
    shared.notify();
    driver.finish(&engine, persist, failure)
}

/// Journals and applies what control and players sent since the last look.
fn take_inbox(
    game: &mut Game,
    engine: &mut Sim,
    driver: &mut Driver,
    persist: Option<&Persist>,
) -> Result<(), RunError> {
    for (source, input) in std::mem::take(&mut game.inbox) {
        let tick = match &input {
            JournalInput::Inject(e) => e.tick.0,
            _ => engine.state().tick.0,
        };
        if let Err(reason) = engine.apply_input(tick, input.clone()) {
            game.notes.push(NoteRow {
                tick: engine.state().tick.0,
                text: format!("refused: {reason}"),
                bookmark: false,
            });
            continue;
        }
        driver.journal(persist, tick, &source, input)?;
    }
    Ok(())
}

/// Reveals every sealed submission at once (in nation order) and applies it: policy orders as
/// events from the next tick, limit orders in the next tick's auctions.
fn reveal(game: &mut Game, engine: &mut Sim, driver: &mut Driver, persist: Option<&Persist>) -> Result<(), RunError> {
    let tick = engine.state().tick;
    let submissions = std::mem::take(&mut game.submitted);
    settle_proposals(game, engine, driver, persist, &submissions)?;
    for (nation, sub) in submissions {
        let code = game.scenario.nation_code(nation).to_string();
        if !sub.orders.is_empty() {
            game.last_orders.insert(nation, sub.orders.clone());
        }
        for mut event in sub.events {
            // Sealed orders take effect after the first tick of the turn they were revealed at.
            event.tick = Tick(tick.0 + 1);
            if let engine::scenario::EventKind::JoinAlliance { alliance, .. } = &event.kind {
                // Joining takes the members' consent: it becomes a proposal.
                let id = game.next_proposal;
                game.next_proposal += 1;
                let alliance = game.scenario.alliance(*alliance).code.clone();
                game.notes.push(NoteRow {
                    tick: tick.0,
                    text: format!("proposal #{id}: {code} asks to join {alliance}"),
                    bookmark: false,
                });
                let turn = game.turn;
                game.proposals.push(Proposal {
                    id,
                    nation: code.clone(),
                    alliance,
                    turn,
                    accepted_by: Vec::new(),
                    event,
                });
                continue;
            }
            if event.tick.0 >= game.scenario.ticks {
                continue;
            }
            match engine.schedule(event.clone()) {
                Ok(()) => driver.journal(persist, event.tick.0, &code, JournalInput::Inject(event))?,
                Err(reason) => {
                    game.notes.push(NoteRow { tick: tick.0, text: format!("{code}: {reason}"), bookmark: false })
                }
            }
        }
        if !sub.orders.is_empty() {
            let input = JournalInput::Orders { nation, orders: sub.orders };
            if engine.apply_input(tick.0, input.clone()).is_ok() {
                driver.journal(persist, tick.0, &code, input)?;
            }
        }
        if !sub.comment.is_empty() {
            let input = JournalInput::Note { text: format!("{code}: {}", sub.comment), bookmark: false };
            driver.journal(persist, tick.0, &code, input)?;
        }
    }
    Ok(())
}

/// Records the acceptances submitted this turn, then admits every proposal all members accept
/// (AI members accept a nation close to them in alignment, as in the engine's diplomacy) and
/// drops those older than two turns.
fn settle_proposals(
    game: &mut Game,
    engine: &mut Sim,
    driver: &mut Driver,
    persist: Option<&Persist>,
    submissions: &BTreeMap<NationId, Submission>,
) -> Result<(), RunError> {
    let s = game.scenario.clone();
    for (nation, sub) in submissions {
        for id in &sub.accept {
            if let Some(p) = game.proposals.iter_mut().find(|p| p.id == *id) {
                let code = s.nation_code(*nation).to_string();
                if !p.accepted_by.contains(&code) {
                    p.accepted_by.push(code);
                }
            }
        }
    }
    let tick = engine.state().tick;
    let mut keep = Vec::new();
    for mut p in std::mem::take(&mut game.proposals) {
        let Some(k) = s.alliances.iter().position(|a| a.code == p.alliance) else { continue };
        let Some(applicant) = s.nation_by_code(&p.nation) else { continue };
        let members = engine.state().alliances[k].clone();
        let all = members.iter().all(|m| {
            let code = s.nation_code(*m);
            if game.setup.players.contains(m) {
                p.accepted_by.iter().any(|a| a == code)
            } else {
                s.affinity(*m, applicant) >= engine::ADMIT_AFFINITY
            }
        });
        if all {
            p.event.tick = Tick(tick.0 + 1);
            if p.event.tick.0 < s.ticks && engine.schedule(p.event.clone()).is_ok() {
                driver.journal(persist, p.event.tick.0, &p.nation, JournalInput::Inject(p.event.clone()))?;
                game.notes.push(NoteRow {
                    tick: tick.0,
                    text: format!("proposal #{}: {} joins {}", p.id, p.nation, p.alliance),
                    bookmark: true,
                });
            }
        } else if game.turn < p.turn + 2 {
            keep.push(p);
        } else {
            game.notes.push(NoteRow {
                tick: tick.0,
                text: format!("proposal #{}: {} was not admitted to {}", p.id, p.nation, p.alliance),
                bookmark: false,
            });
        }
    }
    game.proposals = keep;
    Ok(())
}

/// Fires the conditional injects whose price condition holds after the last tick.
fn fire_conditionals(
    game: &mut Game,
    engine: &mut Sim,
    driver: &mut Driver,
    persist: Option<&Persist>,
) -> Result<(), RunError> {
    let next = engine.state().tick.0;
    let mut keep = Vec::new();
    for c in std::mem::take(&mut game.conditionals) {
        let price = engine.state().markets[c.market.index()].last_price;
        let (now, threshold) = (i128::from(price.0) * 10_000, i128::from(c.base.0) * i128::from(c.ratio_bp));
        // A ratio of 2 waits for the price to double; a ratio of 0.5 for it to halve.
        let met = if c.ratio_bp >= 10_000 { now >= threshold } else { now <= threshold };
        if !met {
            keep.push(c);
            continue;
        }
        // Keep the injects' spacing (an outage and its end, an announcement and its restriction).
        let first = c.events.iter().map(|e| e.tick.0).min().unwrap_or(0);
        for mut e in c.events {
            let at = next + 1 + (e.tick.0 - first);
            shift(&mut e, at);
            if e.tick.0 < game.scenario.ticks && engine.schedule(e.clone()).is_ok() {
                driver.journal(persist, e.tick.0, "control", JournalInput::Inject(e))?;
            }
        }
        game.notes.push(NoteRow { tick: next, text: format!("condition met: {}", c.label), bookmark: true });
    }
    game.conditionals = keep;
    Ok(())
}

/// Moves an event to take effect at `tick`, its announcement (if any) by as much.
pub fn shift(event: &mut Event, tick: u32) {
    if let Some(a) = event.announced {
        let lead = event.tick.0.saturating_sub(a.0);
        event.announced = Some(Tick(tick.saturating_sub(lead)));
    }
    event.tick = Tick(tick);
}

/// Parses a deadline like `10m`, `90s`, `1h` or a number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let value: f64 = number.trim().parse().map_err(|_| format!("\"{text}\" is not a duration (try 10m, 90s or 1h)"))?;
    let seconds = match unit {
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("\"{text}\": unknown unit \"{unit}\" (s, m or h)")),
    };
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 7.0 * 86_400.0 {
        return Err(format!("\"{text}\" must be between a second and a week"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A fresh random token: 128 bits from the operating system, in hex.
pub fn new_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// How a token is stored: its BLAKE3 hash in hex.
pub fn token_hash(token: &str) -> String {
    blake3::hash(token.trim().as_bytes()).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1m").is_err());
        assert!(parse_duration("3d").is_err());
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_ne!(token_hash(&a), a);
        assert_eq!(token_hash(&a), token_hash(&format!(" {a}\n")));
    }
}
