//! The journal of a run's external inputs: what players and the control cell did, as values
//! (`JournalEntry`, `JournalInput`), the entries still in force after a rollback ([`live`]),
//! and their descriptions in words for the report, the exports and the consoles. The store
//! keeps the entries; only the engine inputs among them (injects and limit orders) change a
//! run, the rest (messages, notes, control actions, turn boundaries) are the record.

use agents::{Order, Side};
use engine::scenario::{Event, EventKind, Scenario};
use serde::{Deserialize, Serialize};

/// One external input: something a player or the control cell did, keyed by the tick it takes
/// effect at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub tick: u32,
    pub seq: u32,
    /// Who: "control", a nation's code for a player, or "exercise" for the turn clock.
    pub source: String,
    /// Wall-clock time it was received, milliseconds since the Unix epoch (metadata only).
    pub received_unix_ms: u64,
    pub input: JournalInput,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JournalInput {
    /// An event: injected by the control cell, or a player's policy order.
    Inject(Event),
    /// A played nation's limit orders for its stockpile agency, in the auctions of the entry's
    /// tick.
    Orders { nation: agents::NationId, orders: Vec<agents::Order> },
    /// A message from the entry's source to other players (logged; it changes nothing).
    Message { to: Vec<String>, text: String },
    /// An adjudication note from the control cell, a player's comment, or a bookmark for the
    /// debrief.
    Note { text: String, bookmark: bool },
    /// Something the control cell did to the clock or to a turn (changes no engine input).
    Control(ControlAction),
    /// A turn resolved at the entry's tick (its first): number and length, for the debrief.
    Turn { turn: u32, ticks: u32 },
    /// The control cell rolled the exercise back to the start of turn `turn`, tick `to_tick`:
    /// every engine input journaled from sequence number `void_from_seq` up to this entry is
    /// void (messages and notes stay in the record). Replay, fork and debrief follow [`live`].
    Rollback { to_tick: u32, turn: u32, void_from_seq: u32 },
}

/// What the control cell did that the journal records besides injects and notes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlAction {
    Pause,
    Resume,
    Advance {
        ticks: u32,
    },
    /// A new deadline, for this turn only or for every turn from now.
    Deadline {
        ms: u64,
        all_turns: bool,
    },
    Mode {
        realtime: bool,
    },
    OnMissed {
        standing: bool,
    },
    ResolveNow,
    End,
    /// A player's order (1-based, in its submission) adjusted or refused before the reveal,
    /// with the note the player sees.
    Adjudicated {
        nation: String,
        order: u32,
        refused: bool,
        note: String,
    },
}

impl JournalInput {
    /// The engine input this entry is, taking effect at `tick`; the others are none.
    pub fn into_input(self, tick: u32) -> Option<engine::Input> {
        match self {
            JournalInput::Inject(event) => Some(engine::Input::Event(event)),
            JournalInput::Orders { nation, orders } => {
                Some(engine::Input::Orders { tick: agents::Tick(tick), nation, orders })
            }
            JournalInput::Message { .. }
            | JournalInput::Note { .. }
            | JournalInput::Control(_)
            | JournalInput::Turn { .. }
            | JournalInput::Rollback { .. } => None,
        }
    }

    /// Whether the entry changes the run (an inject or orders), so a rollback voids it.
    pub fn is_engine_input(&self) -> bool {
        matches!(self, JournalInput::Inject(_) | JournalInput::Orders { .. })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            JournalInput::Inject(_) => "inject",
            JournalInput::Orders { .. } => "orders",
            JournalInput::Message { .. } => "message",
            JournalInput::Note { bookmark: true, .. } => "bookmark",
            JournalInput::Note { .. } => "note",
            JournalInput::Control(_) => "control",
            JournalInput::Turn { .. } => "turn",
            JournalInput::Rollback { .. } => "rollback",
        }
    }

    /// What kind of input it was, as a reader names it: a player's event is a policy order.
    pub fn kind_by(&self, source: &str) -> &'static str {
        match self {
            JournalInput::Inject(_) if source != "control" => "policy order",
            other => other.kind(),
        }
    }

    /// One line describing the input, with codes and units.
    pub fn describe(&self, s: &Scenario) -> String {
        match self {
            JournalInput::Inject(e) => describe_event(s, e),
            JournalInput::Orders { orders, .. } => {
                let each: Vec<String> = orders.iter().map(|o| describe_order(s, o)).collect();
                format!("limit orders: {}", each.join("; "))
            }
            JournalInput::Message { to, text } => format!("message to {}: {text}", to.join(", ")),
            JournalInput::Note { text, bookmark } => {
                format!("{}: {text}", if *bookmark { "bookmark" } else { "note" })
            }
            JournalInput::Control(action) => format!("control: {}", action.describe()),
            JournalInput::Turn { turn, ticks } => format!("turn {turn} resolved ({ticks} ticks)"),
            JournalInput::Rollback { to_tick, turn, .. } => {
                format!("rollback: control rolled the exercise back to the start of turn {turn} (tick {to_tick})")
            }
        }
    }

    /// The event, for an inject.
    pub fn event(&self) -> Option<&Event> {
        match self {
            JournalInput::Inject(e) => Some(e),
            JournalInput::Orders { .. }
            | JournalInput::Message { .. }
            | JournalInput::Note { .. }
            | JournalInput::Control(_)
            | JournalInput::Turn { .. }
            | JournalInput::Rollback { .. } => None,
        }
    }
}

impl ControlAction {
    pub fn describe(&self) -> String {
        match self {
            ControlAction::Pause => "paused the clock".into(),
            ControlAction::Resume => "resumed the clock".into(),
            ControlAction::Advance { ticks } => format!("advanced {ticks} tick(s)"),
            ControlAction::Deadline { ms, all_turns } => format!(
                "set the deadline to {} s {}",
                ms / 1000,
                if *all_turns { "for every turn from now" } else { "for this turn only" }
            ),
            ControlAction::Mode { realtime: true } => "switched to real-time mode".into(),
            ControlAction::Mode { realtime: false } => "switched to turn mode".into(),
            ControlAction::OnMissed { standing: true } => "a missed deadline keeps standing orders".into(),
            ControlAction::OnMissed { standing: false } => "a missed deadline hands the nation to its AI".into(),
            ControlAction::ResolveNow => "resolved the turn now".into(),
            ControlAction::End => "ended the exercise".into(),
            ControlAction::Adjudicated { nation, order, refused, note } => format!(
                "{} {nation}'s order {order}{}",
                if *refused { "refused" } else { "adjusted" },
                if note.is_empty() { String::new() } else { format!(": {note}") }
            ),
        }
    }

    /// Whether this is an adjudication (the report counts them apart from the clock).
    pub fn is_adjudication(&self) -> bool {
        matches!(self, ControlAction::Adjudicated { .. })
    }
}

/// The entries still in force: a rollback voids the engine inputs journaled between the start
/// of the turn it returned to and itself. Order is kept (tick, then sequence number).
pub fn live(entries: Vec<JournalEntry>) -> Vec<JournalEntry> {
    let mut by_seq: Vec<&JournalEntry> = entries.iter().collect();
    by_seq.sort_by_key(|e| e.seq);
    let mut void = std::collections::BTreeSet::new();
    for (i, e) in by_seq.iter().enumerate() {
        if let JournalInput::Rollback { void_from_seq, .. } = e.input {
            for earlier in &by_seq[..i] {
                if earlier.seq >= void_from_seq && earlier.input.is_engine_input() {
                    void.insert(earlier.seq);
                }
            }
        }
    }
    entries.into_iter().filter(|e| !void.contains(&e.seq)).collect()
}

/// A limit order in words: "buy 5 t of dy refined at up to US$450.00/kg".
pub fn describe_order(s: &Scenario, o: &Order) -> String {
    let (verb, bound) = match o.side {
        Side::Buy => ("buy", "up to"),
        Side::Sell => ("sell", "at least"),
    };
    format!(
        "{verb} {} t of {} {} at {bound} US{}{}",
        tonnes(o.quantity.0),
        s.commodity_code(o.market.commodity),
        o.market.stage.as_str(),
        o.limit,
        if o.domestic_only { " (domestic buyers only)" } else { "" }
    )
}

/// Kilograms as tonnes, with as many decimals as needed: 5, 2.5, 0.001.
pub fn tonnes(kg: i64) -> String {
    let sign = if kg < 0 { "-" } else { "" };
    let (t, rest) = (kg.unsigned_abs() / 1000, kg.unsigned_abs() % 1000);
    if rest == 0 { format!("{sign}{t}") } else { format!("{sign}{t}.{}", format!("{rest:03}").trim_end_matches('0')) }
}

/// An event in words: its name, when and what it does.
pub fn describe_event(s: &Scenario, e: &Event) -> String {
    let what = describe_kind(s, &e.kind);
    let note = if e.note.is_empty() { String::new() } else { format!(" ({})", e.note) };
    format!("{}: {what} from tick {}{note}", e.name, e.tick.0)
}

fn describe_kind(s: &Scenario, kind: &EventKind) -> String {
    let n = |id: agents::NationId| s.nation_code(id).to_string();
    let c = |id: agents::CommodityId| s.commodity_code(id).to_string();
    match kind {
        EventKind::StockpileTarget { nation, commodity, target_days } => {
            format!("{} sets its {} stockpile target to {target_days} days", n(*nation), c(*commodity))
        }
        EventKind::StockpileRelease { nation, commodity, quantity } => {
            format!("{} releases {} t of its {} reserve", n(*nation), tonnes(quantity.0), c(*commodity))
        }
        EventKind::Lift { target } => format!("lift {target}"),
        EventKind::DemandShock { commodity, nation, sector, bp } => format!(
            "demand for {} {}{}% in {}{}",
            c(*commodity),
            if *bp >= 0 { "+" } else { "" },
            f64::from(*bp) / 100.0,
            nation.map_or("every nation".to_string(), n),
            sector.map(|x| format!(" ({})", x.as_str())).unwrap_or_default()
        ),
        EventKind::SiteOutage { site } => format!("{} shut", s.agents[site.index()].name),
        EventKind::LaneDisruption { lane, extra_ticks } => {
            format!("lane {} disrupted (+{extra_ticks} ticks)", s.lane(*lane).code)
        }
        EventKind::JoinAlliance { nation, alliance } => format!("{} joins {}", n(*nation), s.alliance(*alliance).code),
        EventKind::LeaveAlliance { nation, alliance } => {
            format!("{} leaves {}", n(*nation), s.alliance(*alliance).code)
        }
        EventKind::Subsidy { nation, kind, bp } => {
            format!("{} sets its {} subsidy to {}%", n(*nation), kind.as_str(), f64::from(*bp) / 100.0)
        }
        EventKind::RdFunding { nation, commodity, per_year } => {
            format!("{} funds {per_year} a year of research on {}", n(*nation), c(*commodity))
        }
        EventKind::Restrict(r) => {
            let market = format!("{} {}", c(r.market().commodity), r.market().stage.as_str());
            format!("{} {} on {market}", n(r.nation()), r.kind().replace('_', " "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u32, tick: u32, input: JournalInput) -> JournalEntry {
        JournalEntry { tick, seq, source: "control".into(), received_unix_ms: 0, input }
    }

    #[test]
    fn a_rollback_voids_the_engine_inputs_since_the_turn_it_returns_to() {
        let orders = |n: u16| JournalInput::Orders { nation: agents::NationId(n), orders: Vec::new() };
        let note = JournalInput::Note { text: "said".into(), bookmark: false };
        let entries = vec![
            entry(0, 2, orders(0)),
            entry(1, 4, orders(1)),
            entry(2, 4, note.clone()),
            entry(3, 6, orders(2)),
            entry(4, 4, JournalInput::Rollback { to_tick: 4, turn: 2, void_from_seq: 1 }),
            entry(5, 4, orders(3)),
        ];
        let kept: Vec<u32> = live(entries).iter().map(|e| e.seq).collect();
        assert_eq!(kept, vec![0, 2, 4, 5], "orders after the turn's start are void; the note stays");
    }

    #[test]
    fn tonnes_are_written_plainly() {
        assert_eq!(tonnes(5_000), "5");
        assert_eq!(tonnes(2_500), "2.5");
        assert_eq!(tonnes(1), "0.001");
    }
}
