//! `[synthetic]` worlds: the generator's commodities, nations and agents in place of written
//! ones.

use super::ScenarioError;
use super::raw::{RawFile, RawWorldPart};
use crate::locate::{FieldPath, line_col, span_of};

/// A file with a `[synthetic]` table gets its commodities, nations, mines, refineries and
/// industries from the generator (`chokepoint synth` writes the same world as a file). Each
/// generated agent's table is parsed on its own, so loading a world of a million agents never
/// holds its whole text or one document tree of it; the file's other tables (events, alliances,
/// lanes, companies, offtakes) may refer to the generated nations (`N0000`, `N0001`, ...) and
/// commodities.
pub(super) fn expand(mut raw: RawFile, text: &str, file: &str) -> Result<RawFile, ScenarioError> {
    let Some(synthetic) = raw.synthetic.take() else { return Ok(raw) };
    let at = |field: &str, message: String| {
        let path = FieldPath::root().key("synthetic").key(field);
        let (line, column) = span_of(text, &path).map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        ScenarioError { file: file.into(), line, column, field: path.to_string(), message }
    };
    let generated = [
        ("commodities", raw.commodities.is_empty()),
        ("nations", raw.nations.is_empty()),
        ("miners", raw.miners.is_empty()),
        ("refiners", raw.refiners.is_empty()),
        ("manufacturers", raw.manufacturers.is_empty()),
    ];
    if let Some((table, _)) = generated.iter().find(|(_, empty)| !empty) {
        return Err(at(
            "agents",
            format!(
                "a [synthetic] world generates its own {table}; remove the [[{table}]] tables or the [synthetic] table"
            ),
        ));
    }
    use crate::synth::{AGENTS_MAX, FIRMS_MIN, NATIONS};
    let nations = usize::try_from(synthetic.nations).ok().filter(|n| NATIONS.contains(n));
    let Some(nations) = nations else {
        return Err(at("nations", format!("must be between 2 and 9999 (got {})", synthetic.nations)));
    };
    let minimum = nations + FIRMS_MIN;
    let agents = usize::try_from(synthetic.agents).ok().filter(|a| (minimum..=AGENTS_MAX).contains(a));
    let Some(agents) = agents else {
        return Err(at(
            "agents",
            format!("must be between nations + {FIRMS_MIN} ({minimum}) and 10,000,000 (got {})", synthetic.agents),
        ));
    };
    let seed = synthetic.seed.unwrap_or(raw.scenario.seed);
    if seed < 0 {
        return Err(at("seed", format!("must not be negative (got {seed})")));
    }
    let options = crate::synth::SynthOptions {
        nations,
        agents,
        seed: seed as u64,
        ticks: raw.scenario.ticks.clamp(0, i64::from(u32::MAX)) as u32,
    };
    let world = crate::synth::SynthWorld::new(&options).map_err(|e| at("agents", e.to_string()))?;
    let broken = |what: &str, e: toml::de::Error| {
        at("agents", format!("the generator wrote an invalid {what} (a bug; please report it): {}", e.message()))
    };
    let part: RawWorldPart = toml::from_str(&world.commodities_and_nations()).map_err(|e| broken("world", e))?;
    raw.commodities = part.commodities;
    raw.nations = part.nations;
    for (kind, body) in world.agents() {
        match kind {
            crate::synth::Kind::Miners => raw.miners.push(toml::from_str(&body).map_err(|e| broken("mine", e))?),
            crate::synth::Kind::Refiners => {
                raw.refiners.push(toml::from_str(&body).map_err(|e| broken("refinery", e))?)
            }
            crate::synth::Kind::Manufacturers => {
                raw.manufacturers.push(toml::from_str(&body).map_err(|e| broken("industry", e))?)
            }
        }
    }
    Ok(raw)
}
