//! History reproduced: each calibration episode is a scenario that only switches levers and
//! events (no price path is written anywhere), and each test holds the run to the direction,
//! rough size and timing of what happened, as bands. The figures the bands come from are in
//! `../shared/data/calibration.md`; the resulting prices are tabled in `docs/history.md`.

use agents::{MarketId, NationId, Stage};
use chokepoint_tests::load;
use coordinator::Sim;
use engine::record::TickRecord;
use engine::scenario::Scenario;
use std::sync::Arc;

struct Run {
    scenario: Scenario,
    records: Vec<TickRecord>,
}

fn run(file: &str) -> Run {
    run_scenario(load(file))
}

/// The same world with none of its events: the counterfactual.
fn without_events(file: &str) -> Run {
    let mut scenario = load(file);
    scenario.events.clear();
    run_scenario(scenario)
}

fn run_scenario(scenario: Scenario) -> Run {
    let file = scenario.name.clone();
    let mut engine = Sim::embedded(Arc::new(scenario.clone()));
    let mut records = Vec::new();
    while !engine.is_finished() {
        records.push(engine.step().unwrap_or_else(|e| panic!("{file}: {e}")));
    }
    Run { scenario, records }
}

impl Run {
    fn nation(&self, code: &str) -> NationId {
        self.scenario.nation_by_code(code).unwrap_or_else(|| panic!("no nation {code}"))
    }

    fn market(&self, commodity: &str, stage: Stage) -> MarketId {
        MarketId::new(self.scenario.commodity_by_code(commodity).expect("commodity"), stage)
    }

    /// World price at each tick, in US$/kg.
    fn prices(&self, market: MarketId) -> Vec<f64> {
        self.records.iter().map(|r| r.markets[market.index()].price.0 as f64 / 100.0).collect()
    }

    fn production(&self, nation: NationId, market: MarketId) -> Vec<f64> {
        self.records.iter().map(|r| r.production.get(&(nation, market)).map_or(0.0, |q| q.0 as f64)).collect()
    }

    /// Exports of `market` by `from` to every other nation, per tick.
    fn exports(&self, from: NationId, market: MarketId) -> Vec<f64> {
        self.records
            .iter()
            .map(|r| {
                r.flows
                    .iter()
                    .filter(|(k, _)| k.market == market && k.from == from && k.to != from)
                    .map(|(_, (q, _))| q.0 as f64)
                    .sum()
            })
            .collect()
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn max_at(v: &[f64], from: usize, to: usize) -> (usize, f64) {
    (from..to).map(|t| (t, v[t])).fold((from, f64::MIN), |a, b| if b.1 > a.1 { b } else { a })
}

#[test]
fn cobalt_2016_expectations_and_hoarding_then_new_supply() {
    let r = run("cobalt-2016.toml");
    let refined = r.prices(r.market("co", Stage::Refined));
    let shock = 36;
    let before = mean(&refined[24..shock]);
    let (peak_tick, peak) = max_at(&refined, shock, refined.len());
    let table = format!("before {before:.1}, peak {peak:.1} at tick {peak_tick}");
    // A multi-fold rise (history: 3.6x), within two years of the shock (history: 18 months).
    assert!((2.0..=6.0).contains(&(peak / before)), "{table}");
    assert!(peak_tick > shock + 8 && peak_tick <= shock + 104, "{table}");
    // It reverses as new supply arrives: down to 60% of the peak or less within about two years
    // of it (history: a third of the peak eleven months later), and not below the old level.
    let after = &refined[peak_tick..(peak_tick + 110).min(refined.len())];
    let low = after.iter().copied().fold(f64::MAX, f64::min);
    assert!(low <= 0.6 * peak && low >= 0.8 * before, "{table}, low {low:.1}");
    // The new supply is DRC mine expansions, several of them decided after the shock.
    let cd = r.nation("CD");
    let drc = r.production(cd, r.market("co", Stage::Ore));
    let quarters: Vec<f64> = drc.chunks(13).map(mean).collect();
    let best = quarters.iter().copied().fold(f64::MIN, f64::max);
    assert!(best >= 1.25 * quarters[1], "DRC output by quarter {quarters:?}");
    let invested = r
        .records
        .iter()
        .filter(|x| x.tick.0 as usize > shock)
        .flat_map(|x| x.investments.iter())
        .filter(|(a, _, _)| r.scenario.agents[a.index()].spec.nation() == cd);
    assert!(invested.count() >= 2);
    // And without the demand shock there is no multi-fold rise.
    let calm = without_events("cobalt-2016.toml");
    let calm_price = calm.prices(calm.market("co", Stage::Refined));
    let calm_peak = calm_price.iter().copied().fold(f64::MIN, f64::max);
    assert!(calm_peak < 1.3 * before, "without the shock the peak is {calm_peak:.1}");
}

#[test]
fn nickel_ore_ban_2014_second_supplier_and_domestic_processing() {
    let r = run("nickel-ore-ban-2014.toml");
    let (id, ph) = (r.nation("ID"), r.nation("PH"));
    let (ore, refined) = (r.market("ni", Stage::Ore), r.market("ni", Stage::Refined));
    let price = r.prices(refined);
    let ban = 14;
    let before = mean(&price[2..ban]);
    // The price rises by a third or more within months (history: +45% by May 2014).
    let (at, high) = max_at(&price, ban, ban + 30);
    assert!(high >= 1.33 * before && high <= 2.5 * before, "before {before:.2}, high {high:.2} at {at}");
    assert!(price[ban + 2] <= 1.1 * before, "no jump on the first days");
    // Indonesian ore stops crossing the border, and its domestic ore price falls below the world's.
    let id_ore_exports = r.exports(id, ore);
    assert!(id_ore_exports[ban + 1..178].iter().all(|q| *q == 0.0));
    let zone = &r.records[60].markets[ore.index()];
    let domestic = zone.domestic.iter().find(|(n, _)| *n == id).map(|(_, p)| *p).expect("ID has a domestic ore price");
    assert!(domestic < zone.price, "ID ore {domestic} vs world {}", zone.price);
    // Philippine ore replaces it.
    let ph_ore = r.production(ph, ore);
    assert!(mean(&ph_ore[104..156]) >= 1.2 * mean(&ph_ore[0..ban]), "PH ore output");
    let ph_exports = r.exports(ph, ore);
    assert!(mean(&ph_exports[104..156]) > 1.15 * mean(&ph_exports[2..ban]), "PH ore exports");
    // Indonesia builds domestic processing over the following years, because of the ban: the
    // same world without it builds much less.
    let id_refined = r.production(id, refined);
    assert!(mean(&id_refined[208..260]) >= 2.5 * mean(&id_refined[0..ban]), "ID refining");
    assert!(mean(&id_refined[60..80]) < 1.2 * mean(&id_refined[0..ban]), "it takes years, not months");
    let calm = without_events("nickel-ore-ban-2014.toml");
    let calm_refined = calm.production(id, refined);
    assert!(
        mean(&id_refined[208..260]) >= 1.5 * mean(&calm_refined[208..260]),
        "with the ban {:.0}, without {:.0}",
        mean(&id_refined[208..260]),
        mean(&calm_refined[208..260])
    );
    let calm_price = calm.prices(refined);
    assert!(mean(&calm_price[ban..ban + 30]) < 1.15 * before, "no rise without the ban");
}

#[test]
fn cobalt_halt_2025_sharp_rise_then_easing() {
    let r = run("cobalt-halt-2025.toml");
    let price = r.prices(r.market("co", Stage::Refined));
    let (halt, end) = (16, 33);
    let before = mean(&price[4..halt]);
    // A sharp rise within a month (history: +37%).
    let (_, month) = max_at(&price, halt, halt + 5);
    assert!(month >= 1.15 * before, "before {before:.2}, first month {month:.2}");
    // The whole halt: up, not absurdly.
    let (peak_tick, peak) = max_at(&price, halt, end + 1);
    assert!((1.25..=2.5).contains(&(peak / before)), "before {before:.2}, peak {peak:.2} at {peak_tick}");
    // Easing after the halt ends.
    assert!(mean(&price[end + 8..end + 28]) < 0.92 * peak, "after {:?}", &price[end..]);
    // No DRC ore leaves during the halt.
    let cd_exports = r.exports(r.nation("CD"), r.market("co", Stage::Ore));
    assert!(cd_exports[halt..end].iter().all(|q| *q == 0.0));
    assert!(cd_exports[end + 2] > 0.0, "exports resume");
}

#[test]
fn graphite_licensing_2023_prebuying_collapse_and_recovery() {
    let r = run("graphite-licensing-2023.toml");
    let cn = r.nation("CN");
    let exports = r.exports(cn, r.market("gr", Stage::Refined));
    let (announced, effective) = (41, 47);
    let usual = mean(&exports[12..40]);
    // Buyers pre-buy between announcement and start (history: +162% in November 2023).
    let prebuy = mean(&exports[announced..effective]);
    assert!(prebuy >= 1.5 * usual, "usual {usual:.0}, pre-buying {prebuy:.0}");
    assert!(exports[announced] > 1.5 * exports[announced - 1], "it starts with the announcement");
    // Exports collapse when licensing starts (history: -75% to -94% in December).
    let first = mean(&exports[effective..effective + 5]);
    assert!(first <= 0.3 * usual, "usual {usual:.0}, first weeks {first:.0}");
    // And recover as licences are granted.
    assert!(mean(&exports[effective + 5..effective + 13]) > first);
    assert!(mean(&exports[84..104]) >= 0.6 * usual, "recovered: {:.0}", mean(&exports[84..104]));
}
