//! The exercise's engine thread: it decides under the game's lock what comes next (wait,
//! resolve a turn, advance ticks, one real-time tick, roll back, stop), then steps the run's
//! driver without the lock, copying the state and record into the game after each tick. Every
//! input — sealed submissions revealed at a turn's start, control's injects, notes and actions,
//! players' messages, alliance proposals, conditional injects — is journaled and applied
//! through the engine's inputs, so `replay` and `fork` need nothing exercise-specific. After a
//! turn's ticks every nation gets its situation report (`sitrep`), kept in the store.

use super::intel::Estimate;
use super::sitrep::{self, Sitrep};
use super::{Game, NoteRow, Proposal, Revealed, Sealed, Shared, Submission, TurnStart, shift};
use crate::history::HistoryError;
use crate::run::{Driver, Hooks, Outcome, Persist, RunError, RunOptions, lock};
use crate::sim::{AgencyTick, Sim};
use crate::store::JournalInput;
use agents::{NationId, Tick};
use engine::policy::ActiveRestriction;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What the engine thread should do next.
enum Next {
    Wait,
    Turn,
    Ticks(u32),
    Rollback(u32),
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

/// What a turn's reveal leaves for its situation reports.
#[derive(Default)]
struct Reveal {
    submissions: BTreeMap<NationId, Submission>,
    missed: Vec<NationId>,
    restrictions: Vec<ActiveRestriction>,
    intel: BTreeMap<NationId, Vec<Estimate>>,
    proposals: Vec<(String, u32)>,
    watched: Vec<AgencyTick>,
    first_tick: u32,
}

/// Runs the exercise on this thread until it ends (control ends it, or the scenario's ticks
/// run out), journaling every input. Returns how the run came out.
pub fn play(
    shared: &Shared,
    mut engine: Sim,
    options: &RunOptions,
    persist: Option<&Persist>,
) -> Result<Outcome, RunError> {
    let hooks = Hooks::default();
    let driver = Driver::start(&mut engine, options, &hooks, persist)?;
    engine.watch(shared.game().setup.players.clone());
    shared.game().recorded = persist.is_some();
    let mut w = Worker { shared, engine, driver, persist, hooks, last_tick_at: Instant::now() };
    let failure = loop {
        let next = w.next()?;
        let resolving = Instant::now();
        let (ticks, mut reveal) = match next {
            Next::Stop => break None,
            Next::Wait => {
                let game = shared.game();
                let _ = shared.wake.wait_timeout(game, Duration::from_millis(100));
                continue;
            }
            Next::Rollback(turn) => {
                w.rollback(turn)?;
                shared.notify();
                continue;
            }
            Next::Ticks(n) => (n, None),
            Next::Turn => {
                let (n, r) = w.resolve_turn()?;
                (n, Some(r))
            }
        };
        if let Some(failure) = w.run_ticks(ticks, reveal.as_mut())? {
            break Some(failure);
        }
        w.last_tick_at = Instant::now();
        if let Some(r) = reveal {
            w.end_turn(r, resolving)?;
        }
        shared.notify();
    };
    let ended_by = {
        let mut game = shared.game();
        game.ended = true;
        game.state = w.engine.state().clone();
        game.ended_by_control.then_some("control")
    };
    shared.notify();
    w.driver.finish_as(&w.engine, persist, failure, ended_by)
}

impl Worker<'_> {
    /// Decides, under the lock, what to do next; the engine itself runs without it.
    fn next(&mut self) -> Result<Next, RunError> {
        let mut game = self.shared.game();
        take_inbox(&mut game, &mut self.engine, &mut self.driver, self.persist)?;
        Ok(if let Some(turn) = game.rollback.take() {
            Next::Rollback(turn)
        } else if game.ended || self.engine.is_finished() {
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
        } else if std::mem::take(&mut game.resolve_now)
            || game.everyone_submitted()
            || game.turn_started.elapsed() >= game.deadline()
        {
            Next::Turn
        } else {
            Next::Wait
        })
    }

    /// A turn resolves: who missed the deadline is noted (their standing orders act, if control
    /// chose so), every submission is revealed; returns the ticks to run and what the turn's
    /// situation reports need from before it.
    fn resolve_turn(&mut self) -> Result<(u32, Reveal), RunError> {
        let mut game = self.shared.game();
        let missing: Vec<NationId> =
            game.setup.players.iter().copied().filter(|n| !game.submitted.contains_key(n)).collect();
        for &nation in &missing {
            let note = missed(&mut game, nation);
            let tick = self.engine.state().tick.0;
            let input = JournalInput::Note { text: note.clone(), bookmark: false };
            self.driver.journal(self.persist, tick, "control", input)?;
            game.notes.push(NoteRow { tick, text: note, bookmark: false });
        }
        let nations = (0..game.scenario.nations.len()).map(|i| NationId(i as u16));
        let intel = nations.map(|n| (n, super::views::intelligence(&game, n))).collect();
        let mut r = Reveal {
            submissions: game.submitted.clone(),
            missed: missing,
            restrictions: self.engine.state().policies.active.clone(),
            intel,
            first_tick: self.engine.state().tick.0,
            ..Reveal::default()
        };
        r.proposals = reveal(&mut game, &mut self.engine, &mut self.driver, self.persist)?;
        Ok((game.setup.turn_ticks, r))
    }

    /// Runs up to `ticks` ticks, copying each into the game; returns the step failure that
    /// ended the exercise, if one did. A turn's first tick leaves its agencies' auctions in
    /// `reveal`.
    fn run_ticks(&mut self, ticks: u32, mut reveal: Option<&mut Reveal>) -> Result<Option<RunError>, RunError> {
        for i in 0..ticks {
            if self.engine.is_finished() {
                break;
            }
            // Any failure of a tick (the engine's, an output file's, the store's) ends the
            // exercise, recorded as failed with its reason.
            if let Err(e) = self.driver.step(&mut self.engine, &self.hooks, self.persist) {
                self.shared.game().failure = Some(e.to_string());
                return Ok(Some(e));
            }
            if i == 0
                && let Some(r) = reveal.as_deref_mut()
            {
                r.watched = self.engine.watched().to_vec();
            }
            let mut game = self.shared.game();
            self.record(&mut game);
            fire_conditionals(&mut game, &mut self.engine, &mut self.driver, self.persist)?;
            if game.ended || game.rollback.is_some() {
                break;
            }
        }
        Ok(None)
    }

    /// Copies the tick just run into the game: the state, its record, the players' forecasts,
    /// the restrictions announced and the run's event names.
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
        sync_events(game, &self.engine);
    }

    /// After a turn's ticks: every nation's situation report, kept and journaled with the
    /// turn's boundary; the next turn begins.
    fn end_turn(&mut self, r: Reveal, resolving: Instant) -> Result<(), RunError> {
        let mut game = self.shared.game();
        let reports = reports(&game, &r);
        if let Some(p) = self.persist {
            for report in &reports {
                let Some(n) = game.scenario.nation_by_code(&report.nation) else { continue };
                let value = serde_json::to_value(report).unwrap_or_default();
                p.store.put_sitrep(p.run, r.first_tick, n.0, &value)?;
            }
        }
        let ran = self.engine.state().tick.0 - r.first_tick;
        let (turn, tick) = (game.turn, r.first_tick);
        self.driver.journal(self.persist, tick, "exercise", JournalInput::Turn { turn, ticks: ran })?;
        game.sitreps.extend(reports);
        game.turn_ms.push(resolving.elapsed().as_millis() as u64);
        game.turn += 1;
        game.turn_started = Instant::now();
        game.turn_deadline = None;
        let start = TurnStart { turn: game.turn, tick: self.engine.state().tick.0, seq: self.driver.journal_seq };
        game.turn_starts.push(start);
        Ok(())
    }

    /// Takes the exercise back to the start of `turn`: journals the rollback (voiding the
    /// inputs since), cuts the run's records back, and continues from an engine rebuilt there
    /// from its snapshots and journal.
    fn rollback(&mut self, turn: u32) -> Result<(), RunError> {
        let Some(p) = self.persist else { return Ok(()) };
        let Some(start) = self.shared.game().turn_starts.get(turn as usize - 1).copied() else { return Ok(()) };
        let input = JournalInput::Rollback { to_tick: start.tick, turn, void_from_seq: start.seq };
        self.driver.journal(self.persist, start.tick, "control", input)?;
        let kept: Vec<_> = self.shared.game().records.iter().filter(|r| r.tick.0 < start.tick).cloned().collect();
        self.driver.rollback(start.tick, &kept, self.persist)?;
        let mut engine = match crate::history::engine_at(&p.store, p.run, start.tick) {
            Ok((engine, _)) => engine,
            Err(HistoryError::Run(e)) => return Err(e),
            Err(HistoryError::Store(e)) => return Err(e.into()),
            Err(other) => return Err(RunError::Rollback(other.to_string())),
        };
        engine.engine.record_parts(true);
        let mut game = self.shared.game();
        engine.watch(game.setup.players.clone());
        self.engine = engine;
        rewind(&mut game, &self.engine, start, self.driver.journal_seq);
        Ok(())
    }
}

/// The game as it was at the start of turn `start.turn`, the engine rebuilt there: later
/// records, reports, reveals and armed injects are dropped (what fired after it is armed
/// again); messages and notes stay, with a note of the rollback.
fn rewind(game: &mut Game, engine: &Sim, start: TurnStart, seq: u32) {
    let to = start.tick;
    game.records.retain(|r| r.tick.0 < to);
    let kept = game.records.len();
    for h in game.forecast_history.values_mut() {
        h.truncate(kept);
    }
    game.state = engine.state().clone();
    game.announcements = engine.engine.announcements();
    sync_events(game, engine);
    game.turn = start.turn;
    game.turn_started = Instant::now();
    game.turn_deadline = None;
    game.resolve_now = false;
    game.advance = 0;
    game.submitted.clear();
    game.turn_starts.truncate(start.turn as usize - 1);
    game.turn_starts.push(TurnStart { seq, ..start });
    game.sitreps.retain(|r| r.turn < start.turn);
    game.revealed.retain(|r| r.turn < start.turn);
    game.missed.retain(|(t, _)| *t < start.turn);
    game.turn_ms.truncate(start.turn as usize - 1);
    game.proposals.retain(|p| p.turn < start.turn);
    game.conditionals.retain(|c| c.armed_tick < to);
    for c in &mut game.conditionals {
        if c.fired_tick.is_some_and(|t| t > to) {
            c.fired_tick = None;
        }
    }
    game.notes.push(NoteRow {
        tick: to,
        text: format!("rolled back to the start of turn {} (tick {to})", start.turn),
        bookmark: true,
    });
    // Every player is told, as a message from control (journaled with the next look).
    let text = format!(
        "Control rolled the exercise back to the start of turn {} (tick {to}): the world is as it was then; submit your orders for the turn again.",
        start.turn
    );
    let id = game.next_message;
    game.next_message += 1;
    game.messages.push(super::MessageRow {
        id,
        tick: to,
        from: "control".into(),
        to: vec!["all".into()],
        text: text.clone(),
    });
    game.inbox.push(("control".into(), JournalInput::Message { to: vec!["all".into()], text }));
}

/// The run's event names, as the engine holds them now.
fn sync_events(game: &mut Game, engine: &Sim) {
    if game.event_names.len() != engine.engine.events().len() {
        game.event_names = engine.engine.events().iter().map(|e| e.name.clone()).collect();
    }
}

/// Every nation's situation report on the turn just run.
fn reports(game: &Game, r: &Reveal) -> Vec<Sitrep> {
    let s = &game.scenario;
    let from = game.records.iter().position(|x| x.tick.0 >= r.first_tick).unwrap_or(game.records.len());
    let before = from.checked_sub(1).and_then(|i| game.records.get(i));
    let turn = sitrep::Turn {
        scenario: s,
        turn: game.turn,
        records: &game.records[from..],
        before,
        start_prices: game.start_prices.clone(),
        restrictions: &r.restrictions,
        watched: &r.watched,
    };
    let end = game.next_tick();
    let begun = game.turn_starts.last().map_or(r.first_tick, |t| t.tick);
    (0..s.nations.len())
        .map(|i| {
            let n = NationId(i as u16);
            let code = s.nation_code(n);
            let messages = game
                .messages
                .iter()
                .filter(|m| m.tick >= begun && m.tick < end && m.from != code)
                .filter(|m| m.to.iter().any(|t| t == code || t == "all"))
                .cloned()
                .collect();
            let after = super::views::intelligence(game, n);
            let nation = sitrep::Nation {
                nation: n,
                submission: r.submissions.get(&n),
                missed: r.missed.contains(&n),
                intel_before: r.intel.get(&n).map_or(&[], |v| v.as_slice()),
                intel_after: &after,
                messages,
                proposals: &r.proposals,
            };
            sitrep::build(&turn, &nation)
        })
        .collect()
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
            let items = sitrep::standing(&game.scenario, &orders);
            game.submitted.insert(nation, Submission { items, ..Submission::default() });
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
            JournalInput::Orders { .. }
            | JournalInput::Message { .. }
            | JournalInput::Note { .. }
            | JournalInput::Control(_)
            | JournalInput::Turn { .. }
            | JournalInput::Rollback { .. } => engine.state().tick.0,
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
    sync_events(game, engine);
    Ok(())
}

/// Reveals every sealed submission at once (in nation order) and applies it: policy orders as
/// events from the next tick, limit orders in the next tick's auctions. Returns the proposals
/// join orders became: (event name, proposal id).
fn reveal(
    game: &mut Game,
    engine: &mut Sim,
    driver: &mut Driver,
    persist: Option<&Persist>,
) -> Result<Vec<(String, u32)>, RunError> {
    let tick = engine.state().tick;
    let submissions = std::mem::take(&mut game.submitted);
    settle_proposals(game, engine, driver, persist, &submissions)?;
    let mut proposals = Vec::new();
    for (nation, sub) in submissions {
        let code = game.scenario.nation_code(nation).to_string();
        let orders = sub.orders();
        if !orders.is_empty() {
            game.last_orders.insert(nation, orders.clone());
        }
        let missed = game.missed.iter().any(|(t, c)| *t == game.turn && *c == code);
        game.revealed.push(Revealed {
            turn: game.turn,
            tick: tick.0,
            nation: code.clone(),
            orders: sub.items.iter().map(|i| i.raw.clone()).collect(),
            comment: sub.comment.clone(),
            missed_deadline: missed,
        });
        for event in sub.events() {
            if let Some(p) = policy(game, engine, driver, persist, &code, tick, event)? {
                proposals.push(p);
            }
        }
        if !orders.is_empty() {
            let input = JournalInput::Orders { nation, orders };
            if engine.apply_input(tick.0, input.clone()).is_ok() {
                driver.journal(persist, tick.0, &code, input)?;
            }
        }
        if !sub.comment.is_empty() {
            let input = JournalInput::Note { text: format!("{code}: {}", sub.comment), bookmark: false };
            driver.journal(persist, tick.0, &code, input)?;
        }
    }
    Ok(proposals)
}

/// One revealed policy order: scheduled from the tick after the turn's first and journaled, or
/// (joining an alliance) made a proposal, whose (event name, id) is returned.
fn policy(
    game: &mut Game,
    engine: &mut Sim,
    driver: &mut Driver,
    persist: Option<&Persist>,
    code: &str,
    tick: Tick,
    mut event: engine::scenario::Event,
) -> Result<Option<(String, u32)>, RunError> {
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
        let name = event.name.clone();
        let turn = game.turn;
        game.proposals.push(Proposal { id, nation: code.into(), alliance, turn, accepted_by: Vec::new(), event });
        return Ok(Some((name, id)));
    }
    if event.tick.0 >= game.scenario.ticks {
        return Ok(None);
    }
    match engine.schedule(event.clone()) {
        Ok(()) => {
            driver.journal(persist, event.tick.0, code, JournalInput::Inject(event))?;
        }
        Err(reason) => game.notes.push(NoteRow { tick: tick.0, text: format!("{code}: {reason}"), bookmark: false }),
    }
    Ok(None)
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
        for item in &sub.items {
            let Sealed::Accept(id) = item.sealed else { continue };
            if let Some(p) = game.proposals.iter_mut().find(|p| p.id == id) {
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
    let ticks = game.scenario.ticks;
    let mut fired = Vec::new();
    for c in game.conditionals.iter_mut().filter(|c| c.fired_tick.is_none()) {
        let price = engine.state().markets[c.market.index()].last_price;
        let (now, threshold) = (i128::from(price.0) * 10_000, i128::from(c.base.0) * i128::from(c.ratio_bp));
        // A ratio of 2 waits for the price to double; a ratio of 0.5 for it to halve.
        let met = if c.ratio_bp >= 10_000 { now >= threshold } else { now <= threshold };
        if !met {
            continue;
        }
        c.fired_tick = Some(next);
        // Keep the injects' spacing (an outage and its end, an announcement and its restriction).
        let first = c.events.iter().map(|e| e.tick.0).min().unwrap_or(0);
        for mut e in c.events.clone() {
            let at = next + 1 + (e.tick.0 - first);
            shift(&mut e, at);
            if e.tick.0 < ticks && engine.schedule(e.clone()).is_ok() {
                driver.journal(persist, e.tick.0, "control", JournalInput::Inject(e))?;
            }
        }
        fired.push(c.label.clone());
    }
    for label in fired {
        game.notes.push(NoteRow { tick: next, text: format!("condition met: {label}"), bookmark: true });
    }
    Ok(())
}
