//! Free text the agent puts in a report, held to the controller's rules so a report is never
//! refused for a message the agent wrote itself.

use engine::agents::wire::MAX_TEXT;
use engine::fleet::is_bidi_control;

/// Whether the controller accepts `v` as free text (bounded, no control characters).
pub(crate) fn acceptable(v: &str) -> bool {
    v.len() <= MAX_TEXT && !v.chars().any(|c| c.is_control() || is_bidi_control(c))
}

/// `v` made acceptable: control characters replaced, cut at a character boundary.
pub(crate) fn bounded(v: &str) -> String {
    let mut out = String::with_capacity(v.len().min(MAX_TEXT));
    for c in v.chars() {
        let c = if c.is_control() || is_bidi_control(c) {
            ' '
        } else {
            c
        };
        if out.len() + c.len_utf8() > MAX_TEXT {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_text_is_acceptable() {
        let long = "é".repeat(MAX_TEXT);
        assert!(!acceptable(&long));
        assert!(acceptable(&bounded(&long)));
        assert_eq!(bounded("a\nb\u{202e}c"), "a b c");
        assert!(acceptable("25.09"));
    }
}
