//! Reading a scenario file from disk; the engine validates its text.

use engine::scenario::{Scenario, ScenarioError, parse};
use std::path::Path;

/// Reads and validates a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: file.clone(),
        line: 0,
        column: 0,
        field: "(file)".into(),
        message: format!("cannot read the scenario: {e}"),
    })?;
    parse(&text, &file)
}
