//! The exercise's engine thread: it decides under the game's lock what comes next (wait,
//! resolve a turn, advance ticks, one real-time tick, stop), then steps the run's driver without
//! the lock, copying the state and record into the game after each tick. Every input —
//! sealed submissions revealed at a turn's start, control's injects and notes, players'
//! messages, alliance proposals, conditional injects — is journaled and applied through the
//! engine's inputs, so `replay` and `fork` need nothing exercise-specific.

use super::{Game, NoteRow, Proposal, Shared, Submission, shift};
use crate::run::{Driver, Hooks, Outcome, Persist, RunError, RunOptions, lock};
use crate::sim::Sim;
use crate::store::JournalInput;
use agents::{NationId, Tick};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What the engine thread should do next.
enum Next {
    Wait,
    Turn,
    Ticks(u32),
    Stop,
}

/// The engine thread's own state between ticks.
struct Worker<'a> {
    shared: &'a Shared,
    engine: Sim,
    driver: Driver,
    persist: Option<&'a Persist>,
    hooks: Hooks,
    last_tick_at: Instant,
}

/// Runs the exercise on this thread until it ends (control ends it, or the scenario's ticks
/// run out), journaling every input. Returns how the run came out.
pub fn play(
    shared: &Shared,
    mut engine: Sim,
    options: &RunOptions,
    persist: Option<&Persist>,
) -> Result<Outcome, RunError> {
    let driver = Driver::start(&mut engine, options, persist)?;
    let mut w = Worker { shared, engine, driver, persist, hooks: Hooks::default(), last_tick_at: Instant::now() };
    let failure = loop {
        let next = w.next()?;
        let resolving = Instant::now();
        let ticks = match next {
            Next::Stop => break None,
            Next::Wait => {
                let game = shared.game();
                let _ = shared.wake.wait_timeout(game, Duration::from_millis(100));
                continue;
            }
            Next::Ticks(n) => n,
            Next::Turn => w.resolve_turn()?,
        };
        if let Some(failure) = w.run_ticks(ticks)? {
            break Some(failure);
        }
        w.last_tick_at = Instant::now();
        let mut game = shared.game();
        if matches!(next, Next::Turn) {
            game.turn_ms.push(resolving.elapsed().as_millis() as u64);
            game.turn += 1;
            game.turn_started = Instant::now();
        }
        shared.notify();
    };
    {
        let mut game = shared.game();
        game.ended = true;
        game.state = w.engine.state().clone();
    }
    shared.notify();
    w.driver.finish(&w.engine, persist, failure)
}

impl Worker<'_> {
    /// Decides, under the lock, what to do next; the engine itself runs without it.
    fn next(&mut self) -> Result<Next, RunError> {
        let mut game = self.shared.game();
        take_inbox(&mut game, &mut self.engine, &mut self.driver, self.persist)?;
        Ok(if game.ended || self.engine.is_finished() {
            Next::Stop
        } else if game.advance > 0 {
            Next::Ticks(std::mem::take(&mut game.advance))
        } else if game.paused {
            Next::Wait
        } else if game.realtime {
            if self.last_tick_at.elapsed() >= game.setup.tick_interval {
                reveal(&mut game, &mut self.engine, &mut self.driver, self.persist)?;
                Next::Ticks(1)
            } else {
                Next::Wait
            }
        } else if game.everyone_submitted() || game.turn_started.elapsed() >= game.setup.deadline {
            Next::Turn
        } else {
            Next::Wait
        })
    }

    /// A turn resolves: who missed the deadline is noted (their standing orders act, if control
    /// chose so), every submission is revealed; returns the ticks to run.
    fn resolve_turn(&mut self) -> Result<u32, RunError> {
        let mut game = self.shared.game();
        let missing: Vec<NationId> =
            game.setup.players.iter().copied().filter(|n| !game.submitted.contains_key(n)).collect();
        for nation in missing {
            let note = missed(&mut game, nation);
            let tick = self.engine.state().tick.0;
            let input = JournalInput::Note { text: note.clone(), bookmark: false };
            self.driver.journal(self.persist, tick, "control", input)?;
            game.notes.push(NoteRow { tick, text: note, bookmark: false });
        }
        reveal(&mut game, &mut self.engine, &mut self.driver, self.persist)?;
        Ok(game.setup.turn_ticks)
    }

    /// Runs up to `ticks` ticks, copying each into the game; returns the step failure that
    /// ended the exercise, if one did.
    fn run_ticks(&mut self, ticks: u32) -> Result<Option<RunError>, RunError> {
        for _ in 0..ticks {
            if self.engine.is_finished() {
                break;
            }
            // Any failure of a tick (the engine's, an output file's, the store's) ends the
            // exercise, recorded as failed with its reason.
            if let Err(e) = self.driver.step(&mut self.engine, &self.hooks, self.persist) {
                self.shared.game().failure = Some(e.to_string());
                return Ok(Some(e));
            }
            let mut game = self.shared.game();
            self.record(&mut game);
            fire_conditionals(&mut game, &mut self.engine, &mut self.driver, self.persist)?;
            if game.ended {
                break;
            }
        }
        Ok(None)
    }

    /// Copies the tick just run into the game: the state, its record, the players' forecasts
    /// and the restrictions announced.
    fn record(&self, game: &mut Game) {
        game.state = self.engine.state().clone();
        if let Some(r) = lock(&self.hooks.last).clone() {
            game.records.push(r);
        }
        for n in game.setup.players.clone() {
            for p in &self.engine.state().nations[n.index()].stockpiles {
                game.forecast_history.entry((n, p.commodity)).or_default().push(p.price_forecast);
            }
        }
        game.announcements = self.engine.engine.announcements();
    }
}

/// Records that `nation` missed this turn's deadline and, if control chose standing orders,
/// seals its last limit orders again; returns the note saying what acts for it.
fn missed(game: &mut Game, nation: NationId) -> String {
    let code = game.scenario.nation_code(nation).to_string();
    let turn = game.turn;
    game.missed.push((turn, code.clone()));
    let standing = game.missed_standing.then(|| game.last_orders.get(&nation).cloned()).flatten();
    match standing {
        Some(orders) => {
            let note = format!(
                "{code} missed the deadline of turn {turn}: its standing orders ({} limit order(s)) and stockpile rules act",
                orders.len()
            );
            game.submitted.insert(nation, Submission { orders, ..Submission::default() });
            note
        }
        None => format!("{code} missed the deadline of turn {turn}: its stockpile rules (AI) act"),
    }
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
            JournalInput::Orders { .. } | JournalInput::Message { .. } | JournalInput::Note { .. } => {
                engine.state().tick.0
            }
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
