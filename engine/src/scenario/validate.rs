//! Validation: turns the raw file into a [`Scenario`], collecting the first error with its
//! place. This file holds the validator's tools (ranges, units, look-ups), the whole-file pass
//! and the commodities and nations; `sites`, `links` and `events` validate the rest.

use super::raw::{RawCommodity, RawFile, RawNation, RawStage};
use super::*;
use crate::locate::{FieldPath, line_col, span_of};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

// Validation keeps the first error with its place; later checks may still run on placeholder
// values, which is why every failing check returns a usable value. Every look-up goes through
// an index built once, so validating a file takes time about linear in its size.

pub(super) struct Validator<'a> {
    pub(super) text: &'a str,
    pub(super) file: &'a str,
    /// The first error (only the first is reported, and only it is located in the file).
    pub(super) errors: Vec<ScenarioError>,
    /// Names of events defined elsewhere that `lift` may target (a fork's parent's events).
    pub(super) known_names: BTreeSet<String>,
    /// The file's nation and commodity ids, indexed (empty until `scenario` builds them).
    nations: Rc<Codes>,
    commodities: Rc<Codes>,
    companies: Codes,
}

/// Ids as written, each with the position of its first definition: a look-up is a search in
/// an ordered map, not a scan, whatever the number of ids.
#[derive(Default)]
pub(super) struct Codes {
    pub(super) list: Vec<String>,
    index: BTreeMap<String, usize>,
}

impl Codes {
    pub(super) fn new<'s>(ids: impl IntoIterator<Item = &'s str>) -> Codes {
        let mut codes = Codes::default();
        for (i, id) in ids.into_iter().enumerate() {
            codes.index.entry(id.to_string()).or_insert(i);
            codes.list.push(id.to_string());
        }
        codes
    }

    pub(super) fn find(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The ids for an error message: all of them when there are few, else the first ones and
    /// how many more.
    pub(super) fn listed(&self) -> String {
        const SHOWN: usize = 40;
        let mut out = self.list.iter().take(SHOWN).map(String::as_str).collect::<Vec<_>>().join(", ");
        if self.list.len() > SHOWN {
            out.push_str(&format!(", ... ({} in all)", self.list.len()));
        }
        out
    }
}

/// Whether `id` appeared among the ones before it: records it in `seen` and says if it was
/// there already (the linear form of `raw[..i].iter().any(|o| o.id == id)`).
pub(super) fn seen_before<'s>(seen: &mut BTreeSet<&'s str>, id: &'s str) -> bool {
    !seen.insert(id)
}

/// Largest yearly tonnage or price accepted; anything beyond is a typo, not a world.
pub(super) const MAX_T_PER_YEAR: f64 = 1.0e9;
pub(super) const MAX_USD_PER_KG: f64 = 1.0e7;
pub(super) const MAX_MUSD: f64 = 1.0e9;

impl<'a> Validator<'a> {
    pub(super) fn new(text: &'a str, file: &'a str, known_names: BTreeSet<String>) -> Validator<'a> {
        Validator {
            text,
            file,
            errors: Vec::new(),
            known_names,
            nations: Rc::default(),
            commodities: Rc::default(),
            companies: Codes::default(),
        }
    }

    /// Records a mistake at `path`. Only the first is kept: locating each would parse the file
    /// again, which on a file with many mistakes would cost time quadratic in its size.
    pub(super) fn fail(&mut self, path: &FieldPath, message: impl Into<String>) {
        if self.has_errors() {
            return;
        }
        // A field that is not in the file (a missing table or entry) is placed at its closest
        // enclosing part, and a path with no part in the file at the file's start; text that
        // is no file (a player's order) has no line.
        let located = span_of(self.text, path).map(|s| line_col(self.text, s.start));
        let (line, column) = located.unwrap_or(if self.text.is_empty() { (0, 0) } else { (1, 1) });
        self.errors.push(ScenarioError {
            file: self.file.into(),
            line,
            column,
            field: path.to_string(),
            message: message.into(),
        });
    }

    pub(super) fn int_in(&mut self, path: &FieldPath, v: i64, min: i64, max: i64) -> i64 {
        if v < min || v > max {
            self.fail(path, format!("must be between {min} and {max} (got {v})"));
            return min;
        }
        v
    }

    pub(super) fn non_negative(&mut self, path: &FieldPath, v: f64, max: f64) -> f64 {
        if !v.is_finite() || v < 0.0 {
            self.fail(path, format!("must not be negative (got {v})"));
            return 0.0;
        }
        if v > max {
            self.fail(path, format!("is implausibly large (got {v}, at most {max})"));
            return 0.0;
        }
        v
    }

    /// Dollars per kilogram to cents per kilogram, rounded to the nearest cent.
    pub(super) fn price(&mut self, path: &FieldPath, usd_per_kg: f64) -> Price {
        Price(round_half_away(self.non_negative(path, usd_per_kg, MAX_USD_PER_KG) * 100.0))
    }

    /// Tonnes per year to kilograms per tick, rounded down to whole kilograms.
    pub(super) fn per_tick(&mut self, path: &FieldPath, t_per_year: f64, ticks_per_year: u32) -> Quantity {
        let kg_per_year = round_half_away(self.non_negative(path, t_per_year, MAX_T_PER_YEAR) * 1000.0);
        Quantity(kg_per_year / i64::from(ticks_per_year.max(1)))
    }

    pub(super) fn pct_bp(&mut self, path: &FieldPath, pct: f64, max_pct: f64) -> u32 {
        round_half_away(self.non_negative(path, pct, max_pct) * 100.0) as u32
    }

    /// The nation `code` names among the file's nations.
    pub(super) fn nation(&mut self, path: &FieldPath, code: &str) -> NationId {
        let codes = self.nations.clone();
        self.nation_named(path, code, &codes)
    }

    /// [`Validator::nation`] among `codes`.
    pub(super) fn nation_named(&mut self, path: &FieldPath, code: &str, codes: &Codes) -> NationId {
        match codes.find(code) {
            Some(i) => NationId(i as u16),
            None if self.has_errors() => NationId(0),
            None => {
                self.fail(path, format!("unknown nation \"{code}\" (defined nations: {})", codes.listed()));
                NationId(0)
            }
        }
    }

    /// The commodity `code` names among the file's commodities.
    pub(super) fn commodity(&mut self, path: &FieldPath, code: &str) -> CommodityId {
        let codes = self.commodities.clone();
        self.commodity_named(path, code, &codes)
    }

    /// [`Validator::commodity`] among `codes`.
    pub(super) fn commodity_named(&mut self, path: &FieldPath, code: &str, codes: &Codes) -> CommodityId {
        match codes.find(code) {
            Some(i) => CommodityId(i as u16),
            None if self.has_errors() => CommodityId(0),
            None => {
                self.fail(path, format!("unknown commodity \"{code}\" (defined commodities: {})", codes.listed()));
                CommodityId(0)
            }
        }
    }

    /// The file's nation ids, indexed.
    pub(super) fn nation_codes(&self) -> &Codes {
        &self.nations
    }

    /// The file's company ids, indexed (once `companies` has run).
    pub(super) fn company_codes(&self) -> &Codes {
        &self.companies
    }

    pub(super) fn set_company_codes(&mut self, codes: Codes) {
        self.companies = codes;
    }

    pub(super) fn scenario(&mut self, raw: RawFile) -> Scenario {
        let root = FieldPath::root();
        let h = root.key("scenario");
        let seed = self.int_in(&h.key("seed"), raw.scenario.seed, 0, i64::MAX) as u64;
        let ticks = self.int_in(&h.key("ticks"), raw.scenario.ticks, 1, 1_000_000) as u32;
        let ticks_per_year = self.int_in(&h.key("ticks_per_year"), raw.scenario.ticks_per_year, 1, 366) as u32;
        let tick_days = self.int_in(&h.key("tick_days"), raw.scenario.tick_days, 1, 366) as u32;
        if raw.commodities.is_empty() {
            self.fail(&root.key("commodities"), "a scenario needs at least one [[commodities]] entry");
        }
        if raw.nations.is_empty() {
            self.fail(&root.key("nations"), "a scenario needs at least one [[nations]] entry");
        }
        if raw.commodities.len() > 1000 {
            let n = raw.commodities.len();
            self.fail(&root.key("commodities").index(1000), format!("too many commodities ({n}; at most 1000)"));
        }
        if raw.nations.len() > 10_000 {
            let n = raw.nations.len();
            self.fail(&root.key("nations").index(10_000), format!("too many nations ({n}; at most 10000)"));
        }
        self.nations = Rc::new(Codes::new(raw.nations.iter().map(|n| n.id.as_str())));
        self.commodities = Rc::new(Codes::new(raw.commodities.iter().map(|c| c.id.as_str())));
        let commodities = self.commodities(&raw.commodities, ticks_per_year);
        let mut regions: Vec<String> = raw.nations.iter().map(region_of).collect();
        regions.sort();
        regions.dedup();
        let nations = self.nations(&raw, &regions);
        let companies = self.companies(&raw);
        let mut sites = Vec::new();
        let mut agents: Vec<AgentDef> = nations
            .iter()
            .enumerate()
            .map(|(i, n)| AgentDef {
                name: format!("{} stockpile agency", n.code),
                spec: AgentSpec::Nation { nation: NationId(i as u16) },
            })
            .collect();
        self.miners(&raw, ticks_per_year, &mut agents, &companies, &mut sites);
        self.refiners(&raw, ticks_per_year, &mut agents, &companies, &mut sites);
        self.manufacturers(&raw, ticks_per_year, &mut agents);
        let alliances = self.alliances(&raw);
        let lanes = self.lanes(&raw, &regions);
        let offtakes = self.offtakes(&raw, &agents);
        let events = self.events(&raw.events, &super::events::Names::of_file(&raw), ticks);
        Scenario {
            name: raw.scenario.name,
            description: raw.scenario.description,
            seed,
            ticks,
            ticks_per_year,
            tick_days,
            commodities,
            nations,
            agents,
            events,
            source: self.text.to_string(),
            regions,
            companies,
            sites,
            alliances,
            lanes,
            offtakes,
        }
    }

    pub(super) fn commodities(&mut self, raw: &[RawCommodity], tpy: u32) -> Vec<Commodity> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, c) in raw.iter().enumerate() {
            let p = FieldPath::root().key("commodities").index(i);
            if c.id.is_empty() || !c.id.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') {
                self.fail(&p.key("id"), format!("\"{}\" is not a valid id (letters, digits, - and _)", c.id));
            }
            if seen_before(&mut seen, &c.id) {
                self.fail(&p.key("id"), format!("commodity \"{}\" is defined twice", c.id));
            }
            let stage = |v: &mut Self, name: &str, s: &Option<RawStage>| -> StageSpec {
                let sp = p.key(name);
                let Some(s) = s else {
                    v.fail(&p, format!("commodity \"{}\" has no {name} stage: every commodity trades as ore and as refined product, add [commodities.{name}]", c.id));
                    return StageSpec { reference: Price(1), price_min: Price(1), price_max: Price(1) };
                };
                let reference = v.price(&sp.key("reference_usd_per_kg"), s.reference_usd_per_kg);
                let price_min = v.price(&sp.key("price_min_usd_per_kg"), s.price_min_usd_per_kg);
                let price_max = v.price(&sp.key("price_max_usd_per_kg"), s.price_max_usd_per_kg);
                if price_min.0 < 1 {
                    v.fail(&sp.key("price_min_usd_per_kg"), "must be at least one cent");
                }
                if !(price_min <= reference && reference <= price_max) {
                    v.fail(&sp.key("reference_usd_per_kg"), format!("must lie between price_min_usd_per_kg and price_max_usd_per_kg ({price_min} .. {price_max}, got {reference})"));
                }
                StageSpec { reference, price_min, price_max }
            };
            let ore = stage(self, "ore", &c.ore);
            let refined = stage(self, "refined", &c.refined);
            let loss = self.pct_bp(&p.key("stockpile_loss_pct_per_year"), c.stockpile_loss_pct_per_year, 100.0);
            let holding = self.non_negative(
                &p.key("holding_cost_usd_per_kg_year"),
                c.holding_cost_usd_per_kg_year,
                MAX_USD_PER_KG,
            );
            let recycling_bp = self.pct_bp(&p.key("recycling_pct"), c.recycling_pct, 100.0);
            let years = |v: &mut Self, field: &str, y: f64, max: f64| -> u32 {
                let y = v.non_negative(&p.key(field), y, max);
                round_half_away(y * f64::from(tpy)) as u32
            };
            let recycling_lag_ticks = years(self, "recycling_lag_years", c.recycling_lag_years, 50.0).max(1);
            let mine_lead_ticks = years(self, "mine_lead_time_years", c.mine_lead_time_years, 40.0);
            let refinery_lead_ticks = years(self, "refinery_lead_time_years", c.refinery_lead_time_years, 40.0);
            let ramp_ticks = years(self, "ramp_years", c.ramp_years, 20.0).max(1);
            // Without a figure, a year's capacity costs about two years of output at the
            // refined reference price (ASSUMPTION, in line with mine capital intensities).
            let capex = match c.capex_usd_per_kg_year {
                Some(v) => Money(round_half_away(
                    self.non_negative(&p.key("capex_usd_per_kg_year"), v, MAX_USD_PER_KG) * 100.0,
                )),
                None => Money(refined.reference.0.saturating_mul(2)),
            };
            let substitution_bp_per_year =
                self.pct_bp(&p.key("substitution_pct_per_year"), c.substitution_pct_per_year, 100.0);
            let substitution_floor_bp = self.pct_bp(&p.key("substitution_floor_pct"), c.substitution_floor_pct, 100.0);
            let substitution_trigger_bp =
                self.pct_bp(&p.key("substitution_trigger_pct"), c.substitution_trigger_pct, 10_000.0);
            out.push(Commodity {
                code: c.id.clone(),
                name: if c.name.is_empty() { c.id.clone() } else { c.name.clone() },
                note: c.note.clone(),
                stages: [ore, refined],
                stockpile_loss_bp_per_year: i64::from(loss),
                holding_cost_per_kg_year: Money(round_half_away(holding * 100.0)),
                recycling_bp,
                recycling_lag_ticks,
                mine_lead_ticks,
                refinery_lead_ticks,
                ramp_ticks,
                capex_per_kg_year: capex,
                substitution_bp_per_year,
                substitution_floor_bp,
                substitution_trigger_bp,
            });
        }
        out
    }

    pub(super) fn nations(&mut self, raw: &RawFile, regions: &[String]) -> Vec<Nation> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, n) in raw.nations.iter().enumerate() {
            let p = FieldPath::root().key("nations").index(i);
            if n.id.is_empty() || !n.id.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') {
                self.fail(&p.key("id"), format!("\"{}\" is not a valid id (letters, digits, - and _)", n.id));
            }
            if seen_before(&mut seen, &n.id) {
                self.fail(&p.key("id"), format!("nation \"{}\" is defined twice", n.id));
            }
            let budget = self.non_negative(&p.key("stockpile_budget_musd"), n.stockpile_budget_musd, MAX_MUSD);
            let approp = self.non_negative(
                &p.key("stockpile_appropriation_musd_per_year"),
                n.stockpile_appropriation_musd_per_year,
                MAX_MUSD,
            );
            let mut stockpiles = Vec::new();
            let mut covered = BTreeSet::new();
            for (j, s) in n.stockpiles.iter().enumerate() {
                let sp = p.key("stockpiles").index(j);
                let commodity = self.commodity(&sp.key("commodity"), &s.commodity);
                if !covered.insert(commodity) && !self.has_errors() {
                    self.fail(
                        &sp.key("commodity"),
                        format!("nation \"{}\" has two stockpile policies for \"{}\"", n.id, s.commodity),
                    );
                }
                stockpiles.push(StockpilePolicy {
                    commodity,
                    target_days: self.int_in(&sp.key("target_days"), s.target_days, 0, 3650) as u32,
                    initial_days: self.int_in(&sp.key("initial_days"), s.initial_days, 0, 3650) as u32,
                    buy_max_price_bp: self.pct_bp(&sp.key("buy_max_price_pct"), s.buy_max_price_pct, 10_000.0),
                    release_price_bp: self.pct_bp(&sp.key("release_price_pct"), s.release_price_pct, 10_000.0),
                    release_on_shortage: s.release_on_shortage,
                });
            }
            stockpiles.sort_by_key(|s| s.commodity);
            let region = region_of(n);
            let region = RegionId(regions.binary_search(&region).unwrap_or(0) as u16);
            if !n.alignment.is_finite() || !(-1.0..=1.0).contains(&n.alignment) {
                self.fail(&p.key("alignment"), format!("must be between -1 and 1 (got {})", n.alignment));
            }
            let env = self.non_negative(&p.key("env_sensitivity"), n.env_sensitivity, 1.0);
            let horizon = self.int_in(&p.key("forecast_horizon_ticks"), n.forecast_horizon_ticks, 0, 520) as u32;
            let noise = self.pct_bp(&p.key("forecast_noise_pct"), n.forecast_noise_pct, 100.0);
            let security = self.non_negative(&p.key("security_musd_per_year"), n.security_musd_per_year, MAX_MUSD);
            let poor_storage = match n.storage.as_deref() {
                None | Some("good") => false,
                Some("poor") => true,
                Some(other) => {
                    self.fail(&p.key("storage"), format!("unknown storage \"{other}\" (good or poor)"));
                    false
                }
            };
            let sp = p.key("subsidies");
            let subsidies = Subsidies {
                mining_bp: self.pct_bp(&sp.key("mining_pct"), n.subsidies.mining_pct, 100.0),
                processing_bp: self.pct_bp(&sp.key("processing_pct"), n.subsidies.processing_pct, 100.0),
                recycling_bp: self.pct_bp(&sp.key("recycling_pct"), n.subsidies.recycling_pct, 100.0),
            };
            let mut rd_per_year = Vec::new();
            for (code, musd) in &n.rd_musd_per_year {
                let rp = p.key("rd_musd_per_year").key(code);
                let c = self.commodity(&rp, code);
                let m = self.non_negative(&rp, *musd, MAX_MUSD);
                rd_per_year.push((c, Money(round_half_away(m * 1.0e8))));
            }
            rd_per_year.sort();
            out.push(Nation {
                code: n.id.clone(),
                name: if n.name.is_empty() { n.id.clone() } else { n.name.clone() },
                treasury: Money(round_half_away(budget * 1.0e8)),
                appropriation_per_year: Money(round_half_away(approp * 1.0e8)),
                stockpiles,
                region,
                alignment_milli: round_half_away(n.alignment.clamp(-1.0, 1.0) * 1000.0) as i32,
                env_sensitivity_bp: round_half_away(env * 10_000.0) as u32,
                forecast_horizon_ticks: horizon,
                forecast_noise_bp: noise,
                security_per_year: Money(round_half_away(security * 1.0e8)),
                poor_storage,
                subsidies,
                rd_per_year,
            });
        }
        out
    }

    pub(super) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}

pub(super) fn region_of(n: &RawNation) -> String {
    n.region.clone().unwrap_or_else(|| "world".to_string())
}

/// Rounds half away from zero (an exactly specified IEEE operation, the same on every platform).
pub(super) fn round_half_away(x: f64) -> i64 {
    if x.is_finite() { x.round().clamp(i64::MIN as f64, i64::MAX as f64) as i64 } else { 0 }
}
