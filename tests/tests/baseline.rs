//! The baseline scenario against the calibration data (../shared/data/calibration.md): in the
//! first simulated year each listed producer's share of world mine output is within five
//! percentage points of the 2023 table, and the run is quiet (no rejected actions).

use agents::{Quantity, Stage};
use chokepoint_tests::load;
use coordinator::Sim;
use std::collections::BTreeMap;
use std::sync::Arc;

/// (commodity, producer, share of world mine output in percent), from calibration.md.
const SHARES: &[(&str, &str, f64)] = &[
    ("li", "AU", 48.0),
    ("li", "CL", 24.0),
    ("li", "CN", 18.0),
    ("li", "AR", 5.0),
    ("co", "CD", 74.0),
    ("co", "ID", 7.0),
    ("co", "RU", 4.0),
    ("ni", "ID", 50.0),
    ("ni", "PH", 11.1),
    ("ni", "RU", 5.6),
    ("nd", "CN", 69.0),
    ("nd", "US", 12.0),
    ("nd", "MM", 11.0),
    ("nd", "AU", 5.0),
    ("pt", "ZA", 70.6),
    ("pt", "RU", 13.5),
    ("pd", "ZA", 35.5),
    ("pd", "RU", 46.0),
];

#[test]
fn first_year_mine_output_matches_the_calibration_shares() {
    let mut scenario = load("baseline-2024.toml");
    scenario.ticks = scenario.ticks_per_year;
    let s = Arc::new(scenario);
    let mut engine = Sim::embedded(s.clone());
    let mut output: BTreeMap<(String, String), Quantity> = BTreeMap::new();
    let mut rejections = 0;
    while !engine.is_finished() {
        let r = engine.step().unwrap_or_else(|e| panic!("seed {}: {e}", s.seed));
        rejections += r.rejections.len();
        for ((nation, market), q) in &r.production {
            if market.stage == Stage::Ore {
                *output
                    .entry((s.commodity_code(market.commodity).into(), s.nation_code(*nation).into()))
                    .or_default() += *q;
            }
        }
    }
    let mut failures = Vec::new();
    for (commodity, producer, want) in SHARES {
        let world: Quantity = output.iter().filter(|((cc, _), _)| cc == commodity).map(|(_, q)| *q).sum();
        let mine = output.get(&(commodity.to_string(), producer.to_string())).copied().unwrap_or_default();
        let got = mine.0 as f64 * 100.0 / world.0.max(1) as f64;
        if (got - want).abs() > 5.0 {
            failures.push(format!("{commodity} {producer}: {got:.1}% of mine output, table says {want}%"));
        }
    }
    assert!(failures.is_empty(), "first-year shares off by more than 5 points:\n{}", failures.join("\n"));
    let world: Quantity = output.iter().filter(|((cc, _), _)| cc == "si").map(|(_, q)| *q).sum();
    let cn = output.get(&("si".to_string(), "CN".to_string())).copied().unwrap_or_default();
    assert!(cn.0 * 100 > world.0 * 80, "China should make over 80% of polysilicon ({cn} of {world})");
    assert_eq!(rejections, 0, "the baseline's agents should never be refused");
}
