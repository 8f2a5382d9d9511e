//! Reading a scenario file from disk; the engine validates its text. The file is read as bytes,
//! so a file that is not UTF-8 is refused at the byte that is not, and a file larger than the
//! engine accepts is refused before it is read.

use engine::scenario::{MAX_SCENARIO_BYTES, Scenario, ScenarioError, parse, text_of, too_large};
use std::path::Path;

/// Reads and validates a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let bytes = read(path, &file)?;
    parse(text_of(&bytes, &file)?, &file)
}

/// A scenario file's bytes, refusing one that cannot be read or is too large.
pub fn read(path: &Path, file: &str) -> Result<Vec<u8>, ScenarioError> {
    let unreadable = |e: std::io::Error| ScenarioError {
        file: file.to_string(),
        line: 1,
        column: 1,
        field: "(file)".into(),
        message: format!("cannot read the scenario: {e}"),
    };
    let size = std::fs::metadata(path).map_err(unreadable)?.len();
    if size > MAX_SCENARIO_BYTES as u64 {
        return Err(too_large(file, size));
    }
    std::fs::read(path).map_err(unreadable)
}
