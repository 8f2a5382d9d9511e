//! Synthetic worlds for scale tests and benchmarks: `chokepoint synth` writes a valid scenario
//! file with any number of nations and agents in realistic proportions — the baseline's nine
//! commodities and prices, mine output concentrated in a few producer nations per commodity
//! (shares falling off like the real tables), refining concentrated in fewer still, demand
//! spread over every nation by size, and a stockpile policy in the largest consumers. The same
//! parameters and seed always give the same file.

use std::fmt::Write as _;

#[derive(Clone, Debug)]
pub struct SynthOptions {
    pub nations: usize,
    /// Agents in all (the nations' agencies included).
    pub agents: usize,
    pub seed: u64,
    pub ticks: u32,
}

/// The baseline's commodities: (id, name, ore reference, refined reference, world mine output in t/yr).
const COMMODITIES: [(&str, &str, f64, f64, f64); 9] = [
    ("li", "Lithium (Li content)", 42.0, 66.5, 182_500.0),
    ("co", "Cobalt", 17.0, 27.0, 230_000.0),
    ("ni", "Nickel", 11.0, 17.0, 3_600_000.0),
    ("nd", "Neodymium oxide", 35.0, 55.0, 40_000.0),
    ("dy", "Dysprosium oxide", 240.0, 375.0, 2_000.0),
    ("tb", "Terbium oxide", 700.0, 1_100.0, 400.0),
    ("pd", "Palladium", 50_000.0, 70_700.0, 200.0),
    ("pt", "Platinum", 22_000.0, 31_500.0, 170.0),
    ("si", "Polysilicon (feed)", 4.4, 8.0, 1_500_000.0),
];

/// A synthetic world that cannot be made: its size is out of range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SynthError {
    #[error("--nations must be between 2 and 9999 (got {0})")]
    Nations(usize),
    #[error("--agents must be between nations + {FIRMS_MIN} and 10,000,000 (got {0})")]
    Agents(usize),
}

/// How many nations a synthetic world may have.
pub const NATIONS: std::ops::RangeInclusive<usize> = 2..=9_999;
/// Agents beyond the nations' agencies a world needs at least: three per commodity.
pub const FIRMS_MIN: usize = 3 * COMMODITIES.len();
/// The most agents a synthetic world may have.
pub const AGENTS_MAX: usize = 10_000_000;

/// A planned industry: its nation, its sector, and the commodities it uses with their weights.
type Industry = (usize, usize, Vec<(usize, f64)>);

const SECTORS: [&str; 5] = ["batteries", "renewables", "electronics", "defense", "industry"];

/// A deterministic pseudo-random number in [0, 1) for (seed, stream, index).
fn unit(seed: u64, stream: u64, index: u64) -> f64 {
    let mut h = blake3::Hasher::new();
    h.update(b"chokepoint/synth/v1");
    h.update(&seed.to_le_bytes());
    h.update(&stream.to_le_bytes());
    h.update(&index.to_le_bytes());
    let b = h.finalize();
    let mut x = [0u8; 8];
    x.copy_from_slice(&b.as_bytes()[..8]);
    (u64::from_le_bytes(x) >> 11) as f64 / (1u64 << 53) as f64
}

/// Producer shares that fall off geometrically, like the real concentration (top producer
/// ~50–70%).
fn shares(n: usize, ratio: f64) -> Vec<f64> {
    let raw: Vec<f64> = (0..n).map(|i| ratio.powi(i as i32)).collect();
    let total: f64 = raw.iter().sum();
    raw.into_iter().map(|x| x / total).collect()
}

/// What a synthetic world is made of, in the scenario format: the `[scenario]` table, the
/// commodities and nations, and then one table per mine, refinery and industry, produced one at
/// a time so a world of a million agents never has to exist as one text (see
/// `[synthetic]` in the scenario format, which loads a world straight from these parts).
pub struct SynthWorld {
    options: SynthOptions,
    miners: usize,
    refiners: usize,
    manufacturers: usize,
    /// Each nation's share of demand, and the running sums of those shares.
    size: Vec<f64>,
    cumulative: Vec<f64>,
    /// Each commodity's total demand weight over all industries.
    demand_total: [f64; 9],
}

/// The kind of agent a generated table describes: its array's name in the scenario format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Miners,
    Refiners,
    Manufacturers,
}

impl Kind {
    pub fn table(self) -> &'static str {
        match self {
            Kind::Miners => "miners",
            Kind::Refiners => "refiners",
            Kind::Manufacturers => "manufacturers",
        }
    }
}

fn code(n: usize) -> String {
    format!("N{n:04}")
}

impl SynthWorld {
    pub fn new(o: &SynthOptions) -> Result<SynthWorld, SynthError> {
        if !NATIONS.contains(&o.nations) {
            return Err(SynthError::Nations(o.nations));
        }
        if !(o.nations + FIRMS_MIN..=AGENTS_MAX).contains(&o.agents) {
            return Err(SynthError::Agents(o.agents));
        }
        let firms = o.agents - o.nations;
        // Proportions of the baseline: about 40% mines, 20% refineries, 40% manufacturers.
        let miners = (firms * 2 / 5).max(COMMODITIES.len());
        let refiners = (firms / 5).max(COMMODITIES.len());
        let manufacturers = firms - miners - refiners;
        // Nation sizes (share of demand): a long tail.
        let size = shares(o.nations, 0.97);
        let cumulative: Vec<f64> = size
            .iter()
            .scan(0.0, |sum, w| {
                *sum += w;
                Some(*sum)
            })
            .collect();
        let mut world = SynthWorld {
            options: o.clone(),
            miners,
            refiners,
            manufacturers,
            size,
            cumulative,
            demand_total: [0.0; 9],
        };
        let mut demand_total = [0.0f64; 9];
        for i in 0..manufacturers {
            for (c, w) in world.industry(i).2 {
                demand_total[c] += w;
            }
        }
        world.demand_total = demand_total;
        Ok(world)
    }

    /// Industry `i`: its nation, its sector, and the commodities it uses with their weights.
    fn industry(&self, i: usize) -> Industry {
        let o = &self.options;
        let u = unit(o.seed, 5, i as u64);
        // The first nation whose running share exceeds the draw.
        let nation = self.cumulative.partition_point(|c| *c <= u).min(o.nations - 1);
        let sector = (unit(o.seed, 6, i as u64) * SECTORS.len() as f64) as usize % SECTORS.len();
        let first = (unit(o.seed, 7, i as u64) * 9.0) as usize % 9;
        let uses = (0..3).map(|k| ((first + k * 4) % 9, 0.5 + unit(o.seed, 8, (i * 3 + k) as u64))).collect();
        (nation, sector, uses)
    }

    /// The `[scenario]` table.
    pub fn scenario_table(&self) -> String {
        let o = &self.options;
        format!(
            "[scenario]\nname = \"synth-{}n-{}a\"\ndescription = \"Synthetic world for scale tests\"\nseed = {}\nticks = {}\nticks_per_year = 52\ntick_days = 7\n",
            o.nations, o.agents, o.seed, o.ticks
        )
    }

    /// The `[[commodities]]` and `[[nations]]` tables.
    pub fn commodities_and_nations(&self) -> String {
        let o = &self.options;
        let mut t = String::new();
        for (id, name, ore, refined, _) in COMMODITIES {
            let _ = writeln!(
                t,
                "[[commodities]]\nid = \"{id}\"\nname = \"{name}\"\nstockpile_loss_pct_per_year = 0.5\nholding_cost_usd_per_kg_year = {:.2}\n[commodities.ore]\nreference_usd_per_kg = {ore}\nprice_min_usd_per_kg = {:.2}\nprice_max_usd_per_kg = {:.2}\n[commodities.refined]\nreference_usd_per_kg = {refined}\nprice_min_usd_per_kg = {:.2}\nprice_max_usd_per_kg = {:.2}\n",
                refined * 0.01,
                ore * 0.02,
                ore * 30.0,
                refined * 0.02,
                refined * 30.0
            );
        }
        let stockpilers = (o.nations / 5).max(1);
        for (n, weight) in self.size.iter().enumerate() {
            let _ = writeln!(t, "[[nations]]\nid = \"{}\"", code(n));
            if n < stockpilers {
                let _ = writeln!(
                    t,
                    "stockpile_budget_musd = {:.0}\nstockpile_appropriation_musd_per_year = {:.0}",
                    50_000.0 * weight,
                    20_000.0 * weight
                );
                for (c, (id, ..)) in COMMODITIES.iter().enumerate() {
                    if unit(o.seed, 1, (n * 16 + c) as u64) < 0.5 {
                        let _ = writeln!(
                            t,
                            "[[nations.stockpiles]]\ncommodity = \"{id}\"\ntarget_days = {}\ninitial_days = 20",
                            30 + (unit(o.seed, 2, (n * 16 + c) as u64) * 150.0) as u32
                        );
                    }
                }
            }
            t.push('\n');
        }
        t
    }

    /// Every mine, refinery and industry in file order, each as the body of its table (without
    /// the `[[miners]]`-style header), generated as the iterator is advanced.
    pub fn agents(&self) -> impl Iterator<Item = (Kind, String)> + '_ {
        let sites = |kind: Kind, count: usize, stream: u64, scale: f64| {
            COMMODITIES.iter().enumerate().flat_map(move |(c, &(id, _, ore, refined, output))| {
                let o = &self.options;
                let here = count / COMMODITIES.len() + usize::from(c < count % COMMODITIES.len());
                let producers = here.clamp(1, 12.min(o.nations));
                let share = shares(producers, 0.5);
                let first = (unit(o.seed, stream, c as u64) * o.nations as f64) as usize;
                (0..here).map(move |i| {
                    let p = i % producers;
                    let nation = code((first + p * 7) % o.nations);
                    let sites_of_p = here / producers + usize::from(p < here % producers);
                    let capacity = output * scale * share[p] / sites_of_p.max(1) as f64;
                    let cost = if kind == Kind::Miners {
                        ore * (0.4 + 0.3 * unit(o.seed, stream + 10, (c * 100_000 + i) as u64))
                    } else {
                        refined * (0.1 + 0.1 * unit(o.seed, stream + 10, (c * 100_000 + i) as u64))
                    };
                    (
                        kind,
                        format!(
                            "nation = \"{nation}\"\ncommodity = \"{id}\"\ncapacity_t_per_year = {capacity:.3}\nunit_cost_usd_per_kg = {cost:.2}\n"
                        ),
                    )
                })
            })
        };
        // Industries: spread over nations by size; each uses two or three commodities.
        let industries = (0..self.manufacturers).map(|i| {
            let (nation, sector, uses) = self.industry(i);
            let demand: Vec<String> = uses
                .iter()
                .filter(|(c, _)| self.demand_total[*c] > 0.0)
                .map(|(c, w)| {
                    format!(
                        "{} = {:.3}",
                        COMMODITIES[*c].0,
                        COMMODITIES[*c].4 * 0.95 * 0.97 * w / self.demand_total[*c]
                    )
                })
                .collect();
            (
                Kind::Manufacturers,
                format!(
                    "nation = \"{}\"\nsector = \"{}\"\ngrowth_pct_per_year = 0.3\nelasticity = 0.2\ndemand_t_per_year = {{ {} }}\n",
                    code(nation),
                    SECTORS[sector],
                    demand.join(", ")
                ),
            )
        });
        sites(Kind::Miners, self.miners, 3, 1.0).chain(sites(Kind::Refiners, self.refiners, 4, 1.05)).chain(industries)
    }
}

/// Writes the scenario text.
pub fn generate(o: &SynthOptions) -> Result<String, SynthError> {
    let world = SynthWorld::new(o)?;
    let mut t = String::with_capacity(o.agents * 150);
    let _ = writeln!(
        t,
        "# Synthetic world: {} nations, {} agents ({} mines, {} refineries, {} industries), seed {}.\n# Generated by `chokepoint synth`; every figure is synthetic, scaled from the baseline's commodities.\n",
        o.nations, o.agents, world.miners, world.refiners, world.manufacturers, o.seed
    );
    t.push_str(&world.scenario_table());
    t.push('\n');
    t.push_str(&world.commodities_and_nations());
    for (kind, body) in world.agents() {
        let _ = writeln!(t, "[[{}]]\n{body}", kind.table());
    }
    Ok(t)
}
