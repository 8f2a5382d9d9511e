//! Text from users (messages, notes, comments, inject and event names) on its way into a file a
//! program must parse: an SVG or HTML page, a CSV or Parquet table. Control characters (a bell,
//! an escape sequence, a NUL) are not allowed in XML at all, even escaped, and garble a terminal
//! or a CSV reader, so [`printable`] strips them (line breaks and tabs become spaces) along with
//! the two code points XML forbids, U+FFFE and U+FFFF. The journal keeps what was written;
//! only the outputs are cleaned, here.

use std::borrow::Cow;

/// `s` without control characters: tab, line feed and carriage return become spaces, every other
/// control character (C0, DEL, C1) and U+FFFE, U+FFFF are dropped.
pub fn printable(s: &str) -> Cow<'_, str> {
    let bad = |c: char| c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}';
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .filter_map(|c| match c {
                '\t' | '\n' | '\r' => Some(' '),
                c if bad(c) => None,
                c => Some(c),
            })
            .collect(),
    )
}

/// `s` cleaned and escaped for XML and HTML text and attribute values.
pub fn xml(s: &str) -> String {
    printable(s)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `s` cleaned and quoted for a CSV cell when it needs quoting.
pub fn csv(s: &str) -> String {
    let s = printable(s);
    if s.contains([',', '"']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.into_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_stripped_and_markup_escaped() {
        assert_eq!(printable("plain"), "plain");
        assert_eq!(printable("a\u{7}b\u{1b}[31mc\u{0}d\u{85}e\u{FFFE}"), "ab[31mcde");
        assert_eq!(printable("two\nlines\tand\rmore"), "two lines and more");
        assert_eq!(xml("<b>\"x\" & 'y'</b>\u{7}"), "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;");
        assert_eq!(csv("a,b \"c\"\n"), "\"a,b \"\"c\"\" \"");
        assert_eq!(csv("no\nbreak"), "no break");
        assert_eq!(csv("δ—中文"), "δ—中文");
    }
}
