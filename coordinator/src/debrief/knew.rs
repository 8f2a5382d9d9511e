//! Who knew what, when: what the DVR shows of a run at one tick, for the control cell (ground
//! truth: every figure, the whole journal, every report) and as one nation saw it. A nation's
//! view is built here, on the server, from what that nation had at that tick — its own books,
//! public prices and announced restrictions, the intelligence estimates it was shown (with
//! their age and noise), the messages it sent and received, its own comments and its situation
//! reports — and never holds another nation's comments, control's notes or ground truth.

use super::RunData;
use crate::exercise::{fog, intel};
use crate::journal::{JournalEntry, JournalInput};
use crate::view::{AgentRow, MarketRow, NationRow, RestrictionRow, WorldView};
use agents::NationId;
use agents::observation::Announcement;
use engine::record::{TickRecord, describe_restriction};
use engine::scenario::Scenario;
use engine::world::WorldState;
use serde::Serialize;
use serde_json::{Value, json};

/// Firms' negative cash, explained where the DVR shows it.
pub const CREDIT: &str = "Mines, refineries and manufacturers are not held to their cash: they pay production costs and buy inputs on an unlimited, interest-free credit line, so their cash goes negative when costs and purchases run ahead of sales. Only a nation's stockpile agency is held to its treasury.";

/// A restriction announced ahead and not yet in force, as the public saw it.
#[derive(Clone, Debug, Serialize)]
pub struct AnnouncedRow {
    pub exporter: String,
    pub commodity: String,
    pub stage: String,
    pub from_tick: u32,
    pub affects: Vec<String>,
}

pub fn announced(s: &Scenario, tick: u32, list: &[Announcement]) -> Vec<AnnouncedRow> {
    list.iter()
        .filter(|a| a.effective.0 > tick)
        .map(|a| AnnouncedRow {
            exporter: s.nation_code(a.exporter).into(),
            commodity: s.commodity_code(a.market.commodity).into(),
            stage: a.market.stage.as_str().into(),
            from_tick: a.effective.0,
            affects: a.affected.iter().map(|n| s.nation_code(*n).to_string()).collect(),
        })
        .collect()
}

/// The records of the ticks run before `tick` (the state at the start of `tick` follows them).
pub fn before(data: &RunData, tick: u32) -> &[TickRecord] {
    let n = data.records.iter().take_while(|r| r.tick.0 < tick).count();
    &data.records[..n]
}

/// What the tick that led to `tick` did (the record of `tick - 1`), seen by `n` or by control:
/// trades, restrictions imposed and lifted, shortages, events.
pub fn changes(data: &RunData, tick: u32, n: Option<NationId>) -> Value {
    let s = &data.scenario;
    let done = before(data, tick);
    let Some(r) = done.last() else { return json!({ "tick_run": null }) };
    let prior = done.len().checked_sub(2).map(|i| &done[i]);
    let mine = |x: NationId| n.is_none_or(|n| n == x);
    let trades: Vec<Value> = r
        .flows
        .iter()
        .filter(|(k, _)| mine(k.from) || mine(k.to))
        .map(|(k, (q, v))| {
            json!({ "market": format!("{} {}", s.commodity_code(k.market.commodity), k.market.stage.as_str()),
                    "from": s.nation_code(k.from), "to": s.nation_code(k.to),
                    "t": q.0 as f64 / 1000.0, "usd": v.0 as f64 / 100.0 })
        })
        .collect();
    let was: Vec<&String> = prior.map(|p| p.restrictions.iter().map(|x| &x.0).collect()).unwrap_or_default();
    let imposed: Vec<String> = r
        .restrictions
        .iter()
        .filter(|(name, _)| !was.contains(&name))
        .map(|(name, rule)| format!("{} ({name})", describe_restriction(s, rule)))
        .collect();
    let lifted: Vec<&String> = was.into_iter().filter(|w| !r.restrictions.iter().any(|(name, _)| name == *w)).collect();
    let shortages: Vec<Value> = crate::rows::shortages(r)
        .into_iter()
        .filter(|x| x.short().is_positive() && mine(x.nation))
        .map(|x| {
            json!({ "nation": s.nation_code(x.nation), "sector": x.sector.as_str(),
                         "commodity": s.commodity_code(x.commodity), "short_t": x.short().0 as f64 / 1000.0 })
        })
        .collect();
    let events: Vec<Value> = r
        .events
        .iter()
        .filter(|(_, o)| n.is_none_or(|n| fog::visible_to(s, o, n)))
        .map(|(at, o)| json!({ "tick": at.0, "text": o.describe(s) }))
        .collect();
    json!({ "tick_run": r.tick.0, "trades": trades, "imposed": imposed, "lifted": lifted,
            "shortages": shortages, "events": events })
}

/// Price history of every market up to `tick`, and the stockpiles of `n` (or every nation).
pub fn history(data: &RunData, tick: u32, n: Option<NationId>) -> Value {
    let s = &data.scenario;
    let done = before(data, tick);
    let markets: Vec<Value> = (0..s.market_count())
        .map(|i| {
            let m = agents::MarketId::from_index(i);
            let values: Vec<f64> =
                done.iter().map(|r| r.markets.get(i).map_or(f64::NAN, |x| x.price.0 as f64 / 100.0)).collect();
            json!({ "commodity": s.commodity_code(m.commodity), "stage": m.stage.as_str(), "values": values })
        })
        .collect();
    let mut piles: std::collections::BTreeMap<(NationId, agents::CommodityId), Vec<f64>> = Default::default();
    for (i, r) in done.iter().enumerate() {
        for p in r.stockpiles.iter().filter(|p| n.is_none_or(|n| n == p.nation)) {
            let v = piles.entry((p.nation, p.commodity)).or_insert_with(|| vec![f64::NAN; i]);
            v.resize(i, f64::NAN);
            v.push(p.stock.0 as f64 / 1000.0);
        }
    }
    let stocks: Vec<Value> = piles
        .into_iter()
        .map(|((nation, c), values)| json!({ "nation": s.nation_code(nation), "commodity": s.commodity_code(c), "values": values }))
        .collect();
    // Scheduled events as they took effect, for the charts' numbered markers: those `n` learnt of.
    let marks: Vec<Value> = done
        .iter()
        .flat_map(|r| &r.events)
        .filter(|(_, o)| matches!(o, engine::record::Occurrence::Event { .. }))
        .filter(|(_, o)| n.is_none_or(|n| fog::visible_to(s, o, n)))
        .map(|(at, o)| json!({ "tick": at.0, "text": o.describe(s) }))
        .collect();
    json!({ "first_tick": data.first_tick, "markets": markets, "stocks": stocks, "marks": marks })
}

/// A journal entry as the DVR lists it.
fn entry(s: &Scenario, j: &JournalEntry) -> Value {
    json!({ "tick": j.tick, "source": j.source, "kind": j.input.kind_by(&j.source), "text": j.input.describe(s) })
}

/// Everything journaled by `tick`, for control.
pub fn journal(data: &RunData, tick: u32) -> Vec<Value> {
    data.journal.iter().filter(|j| j.tick <= tick).map(|j| entry(&data.scenario, j)).collect()
}

/// The reports a nation (or control, every nation's) had been given by `tick`.
pub fn reports(sitreps: &[(u32, u16, Value)], tick: u32, n: Option<NationId>) -> Vec<Value> {
    sitreps
        .iter()
        .filter(|(_, nation, r)| {
            n.is_none_or(|n| n.0 == *nation)
                && r.get("to_tick").and_then(Value::as_u64).is_some_and(|t| t < u64::from(tick))
        })
        .map(|(_, _, r)| r.clone())
        .collect()
}

/// The messages `code` sent and received by `tick`, and its own comments: nothing else of the
/// journal.
fn own_inputs(data: &RunData, tick: u32, code: &str) -> (Vec<Value>, Vec<Value>) {
    let mut messages = Vec::new();
    let mut comments = Vec::new();
    for j in data.journal.iter().filter(|j| j.tick <= tick) {
        match &j.input {
            JournalInput::Message { to, text } if j.source == code || to.iter().any(|t| t == code || t == "all") => {
                messages.push(json!({ "tick": j.tick, "from": j.source, "to": to, "text": text }));
            }
            JournalInput::Note { text, .. } if j.source == code => {
                comments
                    .push(json!({ "tick": j.tick, "text": text.strip_prefix(&format!("{code}: ")).unwrap_or(text) }));
            }
            JournalInput::Message { .. }
            | JournalInput::Note { .. }
            | JournalInput::Inject(_)
            | JournalInput::Orders { .. }
            | JournalInput::Control(_)
            | JournalInput::Turn { .. }
            | JournalInput::Rollback { .. } => {}
        }
    }
    (messages, comments)
}

/// What one nation knew at the start of `tick`.
pub struct NationAt<'a> {
    pub data: &'a RunData,
    pub view: &'a WorldView,
    pub state: &'a WorldState,
    pub announcements: &'a [Announcement],
    pub sitreps: &'a [(u32, u16, Value)],
}

#[derive(Serialize)]
struct Own<'a> {
    #[serde(flatten)]
    nation: &'a NationRow,
    agents: Vec<&'a AgentRow>,
}

impl NationAt<'_> {
    /// `n`'s view: `code` is its code.
    pub fn view(&self, n: NationId, code: &str, tick: u32) -> Value {
        let s = &self.data.scenario;
        let own = self.view.nations.iter().find(|x| x.nation == code);
        let agents: Vec<&AgentRow> = self.view.agents.iter().filter(|a| a.nation == code).collect();
        let (messages, comments) = own_inputs(self.data, tick, code);
        let shown = intel::estimates(s, before(self.data, tick), self.state, n);
        let markets: &Vec<MarketRow> = &self.view.markets;
        let restrictions: &Vec<RestrictionRow> = &self.view.restrictions;
        json!({
            "nation": code,
            "tick": tick,
            "public": { "markets": markets, "restrictions": restrictions,
                        "announced": announced(s, tick, self.announcements) },
            "own": own.map(|nation| Own { nation, agents }),
            "intelligence": shown,
            "messages": messages,
            "comments": comments,
            "sitreps": reports(self.sitreps, tick, Some(n)),
            "changes": changes(self.data, tick, Some(n)),
            "history": history(self.data, tick, Some(n)),
            "credit": self.view.agents.iter().any(|a| a.nation == code && a.cash_cents < 0).then_some(CREDIT),
        })
    }
}
