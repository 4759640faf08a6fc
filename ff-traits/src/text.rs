//! Which characters hide from a person reading a name: the rule lock names
//! follow, and the one every display of untrusted text escapes by.
//!
//! A carriage return or `ESC[2K` can erase a line already printed, a
//! right-to-left override reverses what follows ("Trojan Source"), and a
//! zero-width space makes `de\u{200b}ploy` look like `deploy`. Names that
//! look identical but differ decide nothing safely, so lock names refuse
//! them, and text shown to people shows them escaped.

/// Whether `c` is invisible or changes how the text around it displays:
/// a control character (C0, DEL, C1), a bidirectional control, a
/// zero-width or other invisible formatting character, a line or
/// paragraph separator, a variation selector, or a tag character.
///
/// ```
/// use ff_traits::text::is_hidden;
///
/// assert!(is_hidden('\u{1b}') && is_hidden('\r') && is_hidden('\u{202e}') && is_hidden('\u{200b}'));
/// assert!(!is_hidden('a') && !is_hidden('é') && !is_hidden(' '));
/// ```
#[must_use]
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'                      // soft hyphen
            | '\u{034f}'                    // combining grapheme joiner
            | '\u{061c}'                    // Arabic letter mark (bidi)
            | '\u{115f}' | '\u{1160}'       // Hangul fillers
            | '\u{17b4}' | '\u{17b5}'       // Khmer inherent vowels
            | '\u{180b}'..='\u{180f}'       // Mongolian selectors, vowel separator
            | '\u{200b}'..='\u{200f}'       // zero-width space, joiners, LRM, RLM
            | '\u{2028}'..='\u{202e}'       // separators, bidi embeddings and overrides
            | '\u{2060}'..='\u{206f}'       // word joiner, invisible operators, bidi isolates
            | '\u{3164}'                    // Hangul filler
            | '\u{fe00}'..='\u{fe0f}'       // variation selectors
            | '\u{feff}'                    // zero-width no-break space (BOM)
            | '\u{ffa0}'                    // halfwidth Hangul filler
            | '\u{fff0}'..='\u{fffb}'       // specials, interlinear annotation
            | '\u{1d173}'..='\u{1d17a}'     // musical formatting
            | '\u{e0000}'..='\u{e0fff}' // tags, variation selectors supplement
        )
}

/// The first character of `s` that NFKC normalisation would change: a
/// compatibility form that looks like another character (fullwidth `ｄ`,
/// ligature `ﬁ`, superscript `²`, the Kelvin sign), or one left
/// unnormalised. `None` when `s` is in NFKC.
///
/// ```
/// use ff_traits::text::not_normalised;
///
/// assert_eq!(not_normalised("ｄeploy"), Some('ｄ'));
/// assert_eq!(not_normalised("deploy/prod é"), None);
/// ```
#[must_use]
pub fn not_normalised(s: &str) -> Option<char> {
    use unicode_normalization::UnicodeNormalization as _;
    use unicode_normalization::{IsNormalized, is_nfkc_quick};
    if is_nfkc_quick(s.chars()) == IsNormalized::Yes {
        return None;
    }
    // Slow path, rare: find the character whose own normal form differs
    // (a combining sequence that composes is named by its first mark).
    s.chars()
        .find(|c| {
            let one = c.to_string();
            one.nfkc().ne(one.chars())
        })
        .or_else(|| (s.nfkc().ne(s.chars())).then(|| s.chars().next()).flatten())
}
