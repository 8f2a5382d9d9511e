//! Validation of `[[events]]`: each action's fields, announcements, `until_tick` and `lift`.
//! Names are looked up in tables built once per file, so validating n events takes time linear
//! in n (a file of tens of thousands of events checks in well under a second).

use super::raw::{RawEvent, RawFile};
use super::sites::{miner_name, refiner_name};
use super::validate::{Codes, MAX_MUSD, MAX_T_PER_YEAR, Validator, round_half_away};
use super::*;
use crate::locate::FieldPath;
use std::collections::{BTreeMap, BTreeSet};

/// Every action an event may name.
const ACTIONS: &str = "export_ban, export_quota, export_licensing, export_tariff, import_tariff, stockpile_target, stockpile_release, lift, demand_shock, site_outage, lane_disruption, join_alliance, leave_alliance, subsidy, rd_funding";

/// What events may refer to by name, gathered once: from the file being validated, or from a
/// validated scenario (for injects, players' orders and a fork's events).
pub(super) struct Names {
    nations: Codes,
    commodities: Codes,
    lanes: Codes,
    alliances: Codes,
    /// Every event's name among those being validated.
    events: BTreeSet<String>,
    /// Mines and refineries by name (the first of a name wins), with their agent ids.
    sites: BTreeMap<String, AgentId>,
}

impl Names {
    pub(super) fn of_file(raw: &RawFile) -> Names {
        let mut names = Names {
            nations: Codes::new(raw.nations.iter().map(|n| n.id.as_str())),
            commodities: Codes::new(raw.commodities.iter().map(|c| c.id.as_str())),
            lanes: Codes::new(raw.lanes.iter().map(|l| l.id.as_str())),
            alliances: Codes::new(raw.alliances.iter().map(|a| a.id.as_str())),
            events: event_names(&raw.events),
            sites: BTreeMap::new(),
        };
        // Only an outage names a site: a large world without one never builds the table.
        if !raw.events.iter().any(|e| e.action == "site_outage") {
            return names;
        }
        let base = raw.nations.len();
        let mines = raw.miners.iter().enumerate().map(|(i, m)| (miner_name(m, i), base + i));
        let refineries =
            raw.refiners.iter().enumerate().map(|(i, r)| (refiner_name(r, i), base + raw.miners.len() + i));
        for (name, agent) in mines.chain(refineries) {
            names.sites.entry(name).or_insert(AgentId(agent as u32));
        }
        names
    }

    /// The names of a validated scenario, for validating `events` against it.
    pub(super) fn of_scenario(s: &Scenario, events: &[RawEvent]) -> Names {
        let mut sites = BTreeMap::new();
        for site in &s.sites {
            sites.entry(s.agents[site.agent.index()].name.clone()).or_insert(site.agent);
        }
        Names {
            nations: Codes::new(s.nations.iter().map(|n| n.code.as_str())),
            commodities: Codes::new(s.commodities.iter().map(|c| c.code.as_str())),
            lanes: Codes::new(s.lanes.iter().map(|l| l.code.as_str())),
            alliances: Codes::new(s.alliances.iter().map(|a| a.code.as_str())),
            events: event_names(events),
            sites,
        }
    }
}

fn event_names(events: &[RawEvent]) -> BTreeSet<String> {
    events.iter().enumerate().map(|(i, e)| event_name(e, i)).collect()
}

impl Validator<'_> {
    pub(super) fn events(&mut self, events: &[RawEvent], names: &Names, ticks: u32) -> Vec<Event> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (i, e) in events.iter().enumerate() {
            let p = FieldPath::root().key("events").index(i);
            self.event_tick(&p, e.tick, ticks);
            let name = event_name(e, i);
            if !seen.insert(name.clone()) {
                self.fail(&p.key("name"), format!("two events are named \"{name}\""));
            }
            if let Some(kind) = self.event_kind(&p, e, names) {
                self.event(&p, e, name, kind, ticks, &mut out);
            }
        }
        out.sort_by_key(|e| e.tick);
        out
    }

    fn event_tick(&mut self, p: &FieldPath, tick: i64, ticks: u32) {
        if tick < 0 {
            self.fail(&p.key("tick"), format!("must not be negative (got {tick})"));
        } else if tick >= i64::from(ticks) {
            self.fail(
                &p.key("tick"),
                format!("is after the run ends (the scenario has {ticks} ticks, so the last is {})", ticks - 1),
            );
        }
    }

    /// The event of kind `kind`, with its announcement and, for `until_tick`, the `lift` that
    /// ends it.
    fn event(&mut self, p: &FieldPath, e: &RawEvent, name: String, kind: EventKind, ticks: u32, out: &mut Vec<Event>) {
        let restriction = matches!(kind, EventKind::Restrict(_));
        let announced = match e.announce_tick {
            None => None,
            Some(_) if !restriction => {
                self.fail(&p.key("announce_tick"), "only trade restrictions can be announced ahead");
                None
            }
            Some(a) if a < 0 || a >= e.tick => {
                self.fail(
                    &p.key("announce_tick"),
                    format!("must be between 0 and the event's tick - 1 (got {a}, tick {})", e.tick),
                );
                None
            }
            Some(a) => Some(Tick(a as u32)),
        };
        let liftable = restriction || matches!(kind, EventKind::SiteOutage { .. } | EventKind::LaneDisruption { .. });
        if e.allies_exempt.is_some() && !restriction {
            self.fail(&p.key("allies_exempt"), "applies to trade restrictions only");
        }
        let tick = Tick(e.tick.clamp(0, i64::from(u32::MAX)) as u32);
        let allies_exempt = e.allies_exempt.unwrap_or(true);
        out.push(Event { tick, name: name.clone(), kind, note: e.note.clone(), announced, allies_exempt });
        let Some(until) = e.until_tick else { return };
        if !liftable {
            self.fail(
                &p.key("until_tick"),
                format!(
                    "action \"{}\" cannot be lifted: until_tick applies to restrictions, outages and lane disruptions",
                    e.action
                ),
            );
        } else if until <= e.tick {
            self.fail(&p.key("until_tick"), format!("must come after tick ({} <= {})", until, e.tick));
        } else if until < i64::from(ticks) {
            out.push(Event {
                tick: Tick(until as u32),
                name: format!("{name}/end"),
                kind: EventKind::Lift { target: name },
                note: String::new(),
                announced: None,
                allies_exempt: true,
            });
        }
    }

    pub(super) fn required<'r, T>(
        &mut self,
        p: &FieldPath,
        field: &str,
        action: &str,
        v: &'r Option<T>,
    ) -> Option<&'r T> {
        if v.is_none() {
            self.fail(p, format!("action \"{action}\" needs the field `{field}`"));
        }
        v.as_ref()
    }

    fn partners(&mut self, p: &FieldPath, list: &Option<Vec<String>>, names: &Names) -> Partners {
        match list {
            None => Partners::All,
            Some(codes) if codes.iter().any(|c| c == "all") => Partners::All,
            Some(codes) => {
                let mut ids: Vec<NationId> =
                    codes.iter().enumerate().map(|(i, c)| self.nation_named(&p.index(i), c, &names.nations)).collect();
                ids.sort();
                ids.dedup();
                Partners::Only(ids)
            }
        }
    }

    fn event_kind(&mut self, p: &FieldPath, e: &RawEvent, names: &Names) -> Option<EventKind> {
        match e.action.as_str() {
            "lift" => self.lift(p, e, names),
            "site_outage" => self.site_outage(p, e, names),
            "lane_disruption" => self.lane_disruption(p, e, names),
            "join_alliance" | "leave_alliance" => self.alliance_change(p, e, names),
            "subsidy" => self.subsidy(p, e, names),
            "demand_shock" => self.demand_shock(p, e, names),
            "rd_funding" => self.rd_funding(p, e, names),
            "stockpile_target" | "stockpile_release" => self.stockpile(p, e, names),
            "export_ban" | "export_quota" | "export_licensing" | "export_tariff" | "import_tariff" => {
                self.restriction(p, e, names).map(EventKind::Restrict)
            }
            other => {
                self.fail(&p.key("action"), format!("unknown action \"{other}\" (one of: {ACTIONS})"));
                None
            }
        }
    }

    fn lift(&mut self, p: &FieldPath, e: &RawEvent, names: &Names) -> Option<EventKind> {
        let target = self.required(p, "target", &e.action, &e.target)?.clone();
        if !names.events.contains(&target) && !self.known_names.contains(&target) {
            self.fail(&p.key("target"), format!("no event is named \"{target}\""));
        }
        Some(EventKind::Lift { target })
    }

    fn site_outage(&mut self, p: &FieldPath, e: &RawEvent, names: &Names) -> Option<EventKind> {
        let name = self.required(p, "site", &e.action, &e.site)?.clone();
        let Some(site) = names.sites.get(&name).copied() else {
            self.fail(&p.key("site"), format!("no mine or refinery is named \"{name}\""));
            return None;
        };
        Some(EventKind::SiteOutage { site })
    }

    fn lane_disruption(&mut self, p: &FieldPath, e: &RawEvent, names: &Names) -> Option<EventKind> {
        let code = self.required(p, "lane", &e.action, &e.lane)?.clone();
        let extra = *self.required(p, "extra_ticks", &e.action, &e.extra_ticks)?;
        let Some(lane) = names.lanes.find(&code) else {
            self.fail(&p.key("lane"), format!("no lane is named \"{code}\""));
            return None;
        };
        let extra_ticks = self.int_in(&p.key("extra_ticks"), extra, 1, 520) as u32;
        Some(EventKind::LaneDisruption { lane: LaneId(lane as u16), extra_ticks })
    }

    /// The event's own nation (`nation`, required).
    fn acting_nation(&mut self, p: &FieldPath, e: &RawEvent, names: &Names) -> Option<NationId> {
        let code = self.required(p, "nation", &e.action, &e.nation)?.clone();
        Some(self.nation_named(&p.key("nation"), &code, &names.nations))
    }

    /// The event's commodity (`commodity`, required).
    fn event_commodity(&mut self, p: &FieldPath, e: &RawEvent, names: &Names) -> Option<CommodityId> {
        let code = self.required(p, "commodity", &e.action, &e.commodity)?.clone();
        Some(self.commodity_named(&p.key("commodity"), &code, &names.commodities))
    }

    fn alliance_change(&mut self, p: &FieldPath, e: &RawEvent, names: &Names) -> Option<EventKind> {
        let nation = self.acting_nation(p, e, names)?;
        let code = self.required(p, "alliance", &e.action, &e.alliance)?.clone();
        let Some(alliance) = names.alliances.find(&code) else {
            self.fail(&p.key("alliance"), format!("no alliance is named \"{code}\""));
            return None;
        };
        let alliance = AllianceId(alliance as u16);
        Some(if e.action == "join_alliance" {
            EventKind::JoinAlliance { nation, alliance }
        } else {
            EventKind::LeaveAlliance { nation, alliance }
        })
    }

    fn subsidy(&mut self, p: &FieldPath, e: &RawEvent, names: &Names) -> Option<EventKind> {
        let nation = self.acting_nation(p, e, names)?;
        let kind = match self.required(p, "kind", &e.action, &e.kind)?.as_str() {
            "mining" => SubsidyKind::Mining,
            "processing" => SubsidyKind::Processing,
            "recycling" => SubsidyKind::Recycling,
            other => {
                self.fail(&p.key("kind"), format!("unknown subsidy \"{other}\" (mining, processing or recycling)"));
                return None;
            }
        };
        let pct = *self.required(p, "pct", &e.action, &e.pct)?;
        Some(EventKind::Subsidy { nation, kind, bp: self.pct_bp(&p.key("pct"), pct, 100.0) })
    }

    fn demand_shock(&mut self, p: &FieldPath, e: &RawEvent, names: &Names) -> Option<EventKind> {
        let commodity = self.event_commodity(p, e, names)?;
        let nation = e.nation.as_ref().map(|n| self.nation_named(&p.key("nation"), n, &names.nations));
        let sector = match e.sector.as_deref() {
            None => None,
            Some(name) => match Sector::parse(name) {
                Some(s) => Some(s),
                None => {
                    self.fail(&p.key("sector"), format!("unknown sector \"{name}\""));
                    return None;
                }
            },
        };
        let pct = *self.required(p, "pct", &e.action, &e.pct)?;
        if !pct.is_finite() || !(-90.0..=500.0).contains(&pct) {
            self.fail(&p.key("pct"), format!("a demand shock must be between -90% and +500% (got {pct}%)"));
            return None;
        }
        Some(EventKind::DemandShock { commodity, nation, sector, bp: round_half_away(pct * 100.0) as i32 })
    }

    fn rd_funding(&mut self, p: &FieldPath, e: &RawEvent, names: &Names) -> Option<EventKind> {
        let nation = self.acting_nation(p, e, names)?;
        let commodity = self.event_commodity(p, e, names)?;
        let m = *self.required(p, "musd_per_year", &e.action, &e.musd_per_year)?;
        let m = self.non_negative(&p.key("musd_per_year"), m, MAX_MUSD);
        Some(EventKind::RdFunding { nation, commodity, per_year: Money(round_half_away(m * 1.0e8)) })
    }

    fn stockpile(&mut self, p: &FieldPath, e: &RawEvent, names: &Names) -> Option<EventKind> {
        let nation = self.acting_nation(p, e, names)?;
        let commodity = self.event_commodity(p, e, names)?;
        self.event_market(p, e, commodity);
        let _ = self.partners(&p.key("to"), &e.to, names);
        if e.action == "stockpile_target" {
            let d = *self.required(p, "target_days", &e.action, &e.target_days)?;
            let target_days = self.int_in(&p.key("target_days"), d, 0, 3650) as u32;
            return Some(EventKind::StockpileTarget { nation, commodity, target_days });
        }
        let t = *self.required(p, "release_t", &e.action, &e.release_t)?;
        let quantity = Quantity(round_half_away(self.non_negative(&p.key("release_t"), t, MAX_T_PER_YEAR) * 1000.0));
        Some(EventKind::StockpileRelease { nation, commodity, quantity })
    }

    /// The market an event names: its commodity at `stage` (refined unless given).
    fn event_market(&mut self, p: &FieldPath, e: &RawEvent, commodity: CommodityId) -> MarketId {
        let stage = match e.stage.as_deref() {
            None => Stage::Refined,
            Some(s) => Stage::parse(s).unwrap_or_else(|| {
                self.fail(&p.key("stage"), format!("unknown stage \"{s}\" (ore or refined)"));
                Stage::Refined
            }),
        };
        MarketId::new(commodity, stage)
    }

    fn restriction(&mut self, p: &FieldPath, e: &RawEvent, names: &Names) -> Option<Restriction<QuotaSize>> {
        let nation = self.acting_nation(p, e, names)?;
        let commodity = self.event_commodity(p, e, names)?;
        let market = self.event_market(p, e, commodity);
        let to = self.partners(&p.key("to"), &e.to, names);
        Some(match e.action.as_str() {
            "export_ban" => Restriction::ExportBan { nation, market, to },
            "export_quota" => Restriction::ExportQuota { nation, market, to, size: self.quota_size(p, e)? },
            "export_licensing" => {
                let d = *self.required(p, "delay_ticks", &e.action, &e.delay_ticks)?;
                let delay_ticks = self.int_in(&p.key("delay_ticks"), d, 1, 520) as u32;
                Restriction::ExportLicensing { nation, market, to, delay_ticks }
            }
            "export_tariff" => {
                let pct = *self.required(p, "pct", &e.action, &e.pct)?;
                Restriction::ExportTariff { nation, market, to, bp: self.pct_bp(&p.key("pct"), pct, 1000.0) }
            }
            _ => {
                let pct = *self.required(p, "pct", &e.action, &e.pct)?;
                let from = self.partners(&p.key("from"), &e.from, names);
                Restriction::ImportTariff { nation, market, from, bp: self.pct_bp(&p.key("pct"), pct, 1000.0) }
            }
        })
    }

    fn quota_size(&mut self, p: &FieldPath, e: &RawEvent) -> Option<QuotaSize> {
        match (e.pct_of_last_year, e.t_per_year) {
            (Some(pct), None) => {
                if !(0.0..=100.0).contains(&pct) {
                    self.fail(
                        &p.key("pct_of_last_year"),
                        format!("a quota must be between 0% and 100% of last year's exports (got {pct}%)"),
                    );
                }
                Some(QuotaSize::ShareOfLastYearBp(round_half_away(pct.clamp(0.0, 100.0) * 100.0) as u32))
            }
            (None, Some(t)) => Some(QuotaSize::PerYear(Quantity(round_half_away(
                self.non_negative(&p.key("t_per_year"), t, MAX_T_PER_YEAR) * 1000.0,
            )))),
            _ => {
                self.fail(p, "action \"export_quota\" needs exactly one of `pct_of_last_year` or `t_per_year`");
                None
            }
        }
    }
}

/// An event's name: its `name`, or `event-N` for the N-th event in the file (1-based).
pub(super) fn event_name(e: &RawEvent, index: usize) -> String {
    e.name.clone().unwrap_or_else(|| format!("event-{}", index + 1))
}
