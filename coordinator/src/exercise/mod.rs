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
//! stockpile rules act as before), or when control resolves it now. After each turn every
//! nation gets a situation report (`sitrep`). Control can pause, resume, advance ticks, change
//! the deadline (for this turn or all), switch to real-time mode, adjust or refuse a player's
//! order before the reveal, roll back to the start of any past turn, fire injects (now, at a
//! tick, or when a price condition is met), attach notes and bookmarks, and end the exercise.

pub mod auth;
pub mod command;
mod control;
pub mod fog;
pub mod grpc;
pub mod http;
pub mod intel;
mod orders;
mod serve;
pub mod sitrep;
mod turn;
mod views;

pub use auth::{Role, new_token, token_hash};

/// The line charts both consoles draw (the exercise's and the DVR), put into each page by its
/// server so neither loads anything from elsewhere.
pub const CHARTS_JS: &str = include_str!("charts.js");
pub use serve::{Exercise, ExerciseError, Options, create};
pub use turn::play;

use crate::run::lock;
use crate::store::JournalInput;
use agents::observation::Announcement;
use agents::{MarketId, NationId, Order, Price, Tick};
use engine::record::TickRecord;
use engine::scenario::{Event, Scenario};
use engine::world::WorldState;
use serde::{Deserialize, Serialize};
use serde_json::Value;
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

/// What a played nation submitted for the coming turn, sealed from the other players until the
/// turn resolves (control sees it, to adjudicate).
#[derive(Clone, Debug, Default)]
pub struct Submission {
    /// Its orders, in the order submitted.
    pub items: Vec<Item>,
    pub comment: String,
    /// Orders control refused before the reveal: (as submitted, control's note).
    pub refused: Vec<(Value, String)>,
}

/// One sealed order: as the player wrote it, and validated.
#[derive(Clone, Debug)]
pub struct Item {
    pub raw: Value,
    pub sealed: Sealed,
    /// Control's note when it adjusted this order.
    pub note: Option<String>,
}

#[derive(Clone, Debug)]
pub enum Sealed {
    /// A limit order for the nation's stockpile agency.
    Limit(Order),
    /// A policy order (a scenario event for the nation).
    Policy(Event),
    /// A member accepting an alliance proposal.
    Accept(u32),
}

impl Submission {
    pub fn orders(&self) -> Vec<Order> {
        self.items
            .iter()
            .filter_map(|i| if let Sealed::Limit(o) = &i.sealed { Some(o.clone()) } else { None })
            .collect()
    }

    pub fn events(&self) -> Vec<Event> {
        self.items
            .iter()
            .filter_map(|i| if let Sealed::Policy(e) = &i.sealed { Some(e.clone()) } else { None })
            .collect()
    }

    pub fn accepted(&self) -> Vec<u32> {
        self.items.iter().filter_map(|i| if let Sealed::Accept(id) = i.sealed { Some(id) } else { None }).collect()
    }
}

/// Where a turn began: its number, its first tick, and the journal's next sequence number then
/// (a rollback to it voids the engine inputs from there).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TurnStart {
    pub turn: u32,
    pub tick: u32,
    #[serde(skip)]
    pub seq: u32,
}

/// A submission as it was revealed, for control's page.
#[derive(Clone, Debug, Serialize)]
pub struct Revealed {
    pub turn: u32,
    pub tick: u32,
    pub nation: String,
    pub orders: Vec<Value>,
    pub comment: String,
    pub missed_deadline: bool,
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
    /// The tick it was armed at, and the one it fired at (a rollback re-arms what fired after
    /// the tick it returns to, and drops what was armed after it).
    pub armed_tick: u32,
    pub fired_tick: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageRow {
    /// In the order sent (the console marks those not yet read).
    pub id: u32,
    pub tick: u32,
    pub from: String,
    pub to: Vec<String>,
    pub text: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct NoteRow {
    pub tick: u32,
    pub text: String,
    pub bookmark: bool,
}

/// Everything shared between the engine thread and the web server.
pub struct Game {
    pub scenario: Arc<Scenario>,
    pub setup: Setup,
    /// A deadline for the current turn only (control's), cleared when the turn resolves.
    pub turn_deadline: Option<Duration>,
    /// Control asked to resolve the turn now.
    pub resolve_now: bool,
    /// Control asked to roll back to the start of this turn.
    pub rollback: Option<u32>,
    /// Control ended the exercise (not Ctrl-C).
    pub ended_by_control: bool,
    /// Whether the run is recorded (a rollback needs its snapshots and journal).
    pub recorded: bool,
    /// Where each turn so far began, the current one last.
    pub turn_starts: Vec<TurnStart>,
    /// Every nation's situation report after every turn, in turn order.
    pub sitreps: Vec<sitrep::Sitrep>,
    /// Submissions as revealed, for control.
    pub revealed: Vec<Revealed>,
    /// The names of the run's events so far (the scenario's and those injected): what `lift`
    /// may target and what a new inject's name must differ from.
    pub event_names: Vec<String>,
    pub next_message: u32,
    /// World prices at the start of the exercise (the charts' index base).
    pub start_prices: Vec<Price>,
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
    /// Inputs from control (injects, notes, actions) and players (messages) to journal and
    /// apply.
    pub inbox: Vec<(String, JournalInput)>,
    /// Conditional injects, armed and fired.
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
    /// Export restrictions in force and announced ahead, as the engine publishes them to every
    /// agent (so players and AI see the same list).
    pub announcements: Vec<Announcement>,
}

impl Game {
    /// The game at the start of an exercise of `scenario`, from the engine's first state.
    pub fn new(scenario: Arc<Scenario>, setup: Setup, engine: &engine::Engine) -> Game {
        let event_names = engine.events().iter().map(|e| e.name.clone()).collect();
        Game {
            scenario,
            setup,
            turn_deadline: None,
            resolve_now: false,
            rollback: None,
            ended_by_control: false,
            recorded: false,
            turn_starts: vec![TurnStart { turn: 1, tick: engine.state().tick.0, seq: 0 }],
            sitreps: Vec::new(),
            revealed: Vec::new(),
            event_names,
            next_message: 1,
            start_prices: engine.state().markets.iter().map(|m| m.last_price).collect(),
            state: engine.state().clone(),
            records: Vec::new(),
            turn: 1,
            turn_started: Instant::now(),
            paused: false,
            realtime: false,
            advance: 0,
            ended: false,
            submitted: BTreeMap::new(),
            inbox: Vec::new(),
            conditionals: Vec::new(),
            messages: Vec::new(),
            notes: Vec::new(),
            missed: Vec::new(),
            failure: None,
            turn_ms: Vec::new(),
            missed_standing: true,
            last_orders: BTreeMap::new(),
            proposals: Vec::new(),
            next_proposal: 1,
            forecast_history: BTreeMap::new(),
            announcements: engine.announcements(),
        }
    }

    pub fn next_tick(&self) -> u32 {
        self.state.tick.0
    }

    /// The current turn's deadline: control's for this turn, or every turn's.
    pub fn deadline(&self) -> Duration {
        self.turn_deadline.unwrap_or(self.setup.deadline)
    }

    /// Milliseconds until the turn's deadline (0 when passed, ended, or not in turn mode).
    pub fn deadline_left_ms(&self) -> u64 {
        if self.realtime || self.paused || self.ended {
            return 0;
        }
        self.deadline().saturating_sub(self.turn_started.elapsed()).as_millis() as u64
    }

    pub(crate) fn everyone_submitted(&self) -> bool {
        self.setup.players.iter().all(|n| self.submitted.contains_key(n))
    }

    /// Conditional injects still waiting.
    pub fn armed(&self) -> impl Iterator<Item = &Conditional> {
        self.conditionals.iter().filter(|c| c.fired_tick.is_none())
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

/// What the front ends share: the game and who holds which token.
pub struct Api {
    pub shared: Arc<Shared>,
    /// Token hash → role.
    pub tokens: BTreeMap<String, Role>,
    /// Request rates and failed attempts (`auth`).
    limits: Mutex<auth::Limits>,
}

impl Api {
    pub fn new(shared: Arc<Shared>, tokens: BTreeMap<String, Role>) -> Arc<Api> {
        Arc::new(Api { shared, tokens, limits: Mutex::new(auth::Limits::default()) })
    }
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
