//! Finds where a field sits in a TOML file, so an error about `miners[3].nation` can name the
//! line. It walks the TOML parser's own span-preserving tree (`toml::de::DeTable`, which keeps
//! numbers as written, so a file with an integer too large for any type still parses here)
//! along the field's path. Validation locates only its first error, so a file is parsed here
//! at most once whatever its size or number of mistakes.

use std::ops::Range;
use toml::de::{DeTable, DeValue};

/// One step of a path into a TOML document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A field path such as `miners[3].nation`, built step by step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    pub fn root() -> FieldPath {
        FieldPath(Vec::new())
    }

    pub fn key(&self, k: &str) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }

    pub fn index(&self, i: usize) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// The 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let col = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    (line, col)
}

/// The byte range of the deepest part of `path` that exists in `text`: the key of the last
/// field when it is there, else the closest enclosing table or value.
pub fn span_of(text: &str, path: &FieldPath) -> Option<Range<usize>> {
    let doc = DeTable::parse(text).ok()?;
    let mut node = Node::Table(doc.get_ref());
    let mut best = None;
    for seg in &path.0 {
        let Some((span, next)) = node.child(seg) else { break };
        best = Some(span);
        node = match next {
            DeValue::Table(t) => Node::Table(t),
            other => Node::Value(other),
        };
    }
    best
}

/// A place in the tree: a table (the document, a `[table]` or an inline table) or a value.
#[derive(Clone, Copy)]
enum Node<'d, 'i> {
    Table(&'d DeTable<'i>),
    Value(&'d DeValue<'i>),
}

impl<'d, 'i> Node<'d, 'i> {
    /// The child at `seg`, with the span of the key that names it (of the element itself in an
    /// array).
    fn child(self, seg: &Seg) -> Option<(Range<usize>, &'d DeValue<'i>)> {
        match (seg, self) {
            (Seg::Key(k), Node::Table(t)) => t.get_key_value(k.as_str()).map(|(key, v)| (key.span(), v.get_ref())),
            (Seg::Index(i), Node::Value(DeValue::Array(a))) => a.get(*i).map(|v| (v.span(), v.get_ref())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_in_arrays_of_tables() {
        let text = "[scenario]\nname = \"x\"\n\n[[miners]]\nnation = \"AU\"\n\n[[miners]]\nnation = \"ZZ\"\n";
        let path = FieldPath::root().key("miners").index(1).key("nation");
        assert_eq!(path.to_string(), "miners[1].nation");
        let span = span_of(text, &path).expect("the field exists");
        assert_eq!(line_col(text, span.start).0, 8);
    }

    #[test]
    fn finds_inline_table_entries_and_falls_back_to_the_parent() {
        let text = "[[manufacturers]]\nsector = \"x\"\ndemand_t_per_year = { li = 5, co = -1 }\n";
        let path = FieldPath::root().key("manufacturers").index(0).key("demand_t_per_year").key("co");
        assert_eq!(line_col(text, span_of(text, &path).unwrap().start).0, 3);
        let missing = FieldPath::root().key("manufacturers").index(0).key("nation");
        assert_eq!(line_col(text, span_of(text, &missing).unwrap().start).0, 1);
    }

    #[test]
    fn numbers_too_large_for_any_type_do_not_hide_the_place() {
        let text = "[[miners]]\nnation = \"AU\"\ncapacity_t_per_year = 9223372036854775808\n";
        let path = FieldPath::root().key("miners").index(0).key("capacity_t_per_year");
        assert_eq!(line_col(text, span_of(text, &path).expect("located").start), (3, 1));
    }
}
