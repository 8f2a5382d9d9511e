//! Tidiness that keeps the docs true: every file ARCHITECTURE.md names exists, the page stays
//! within 1,500 words, and every Rust source file opens with a `//!` paragraph saying what it
//! owns (rust-analyzer's tidy check does the same).

use chokepoint_tests::workspace_root;
use std::path::{Path, PathBuf};

/// The files a text names in backticks: anything without spaces that has a file extension
/// (`engine/src/world.rs`, `hosts.rs`, `tests/tests/*.rs`).
fn named_paths(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            !s.contains(' ')
                && !s.contains("::")
                && Path::new(s).extension().is_some_and(|e| e == "rs" || e == "proto" || e == "digests" || e == "md")
        })
        .map(str::to_string)
        .collect()
}

/// Whether `named` exists: a path from the root (a `*` matching any file of its folder), or a
/// bare file name that some source file has.
fn exists(root: &Path, named: &str, files: &[PathBuf]) -> bool {
    if let Some((dir, pattern)) = named.rsplit_once("/*") {
        return std::fs::read_dir(root.join(dir))
            .is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(pattern))));
    }
    if named.contains('/') {
        return root.join(named).exists();
    }
    files.iter().any(|f| f.file_name().is_some_and(|n| n == named))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if matches!(name.to_str(), Some("target" | "node_modules" | ".git")) {
            continue;
        }
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_file_architecture_md_names_exists() {
    let root = workspace_root();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let named = named_paths(&text);
    assert!(named.len() > 20, "the page names its files: {named:?}");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let missing: Vec<&String> = named.iter().filter(|p| !exists(&root, p, &files)).collect();
    assert!(missing.is_empty(), "ARCHITECTURE.md names files that do not exist: {missing:?}");
}

#[test]
fn architecture_md_stays_short() {
    let text = std::fs::read_to_string(workspace_root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let words = text.split_whitespace().count();
    assert!(words <= 1_500, "ARCHITECTURE.md has {words} words; describe structure and invariants, not every field");
}

#[test]
fn every_source_file_opens_with_a_module_doc() {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["agents", "engine", "proto", "agent-node", "coordinator", "tests", "benches"] {
        sources(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "found the sources: {}", files.len());
    let bare: Vec<String> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).is_ok_and(|t| t.starts_with("//!")))
        .map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string())
        .collect();
    assert!(bare.is_empty(), "files without a //! paragraph: {bare:?}");
}

#[test]
fn the_path_finder_finds_paths() {
    assert_eq!(
        named_paths("see `engine/src/world.rs`, `hosts.rs` and `Engine`, not `a b/c.rs`"),
        vec!["engine/src/world.rs", "hosts.rs"]
    );
    let root = workspace_root();
    let mut files = Vec::new();
    sources(&root, &mut files);
    assert!(exists(&root, "tests/tests/*.rs", &files) && exists(&root, "hosts.rs", &files));
    assert!(!exists(&root, "engine/src/nowhere.rs", &files) && !exists(&root, "nowhere.rs", &files));
}
