//! Hidden Unicode: characters a person does not see but a model reads (tag characters,
//! zero-width and bidi controls, stray variation selectors, private-use and unassigned
//! code points), removed without touching legitimate text in any script or emoji.

use std::borrow::Cow;

use unicode_properties::{GeneralCategory, UnicodeEmoji, UnicodeGeneralCategory};

use crate::{Log, Threat};

/// Removes hidden characters; each run of consecutive removed characters is one item.
/// `at_start` says whether `s` begins the document (where U+FEFF is a byte-order mark).
pub(crate) fn strip_hidden<'a>(s: &'a str, at_start: bool, log: &mut Log) -> Cow<'a, str> {
    let b = s.as_bytes();
    // Built only once something is removed; most texts pass through borrowed.
    let mut out: Option<String> = None;
    // Start of the kept stretch not yet copied to `out`, and of the run being removed.
    let mut keep_from = 0;
    let mut run: Option<usize> = None;
    // The last character kept, for context rules (variation selectors, joiners).
    let mut prev: Option<char> = None;
    let mut i = 0;
    while i < b.len() {
        let plain =
            |byte: u8| (0x20..0x7f).contains(&byte) || matches!(byte, b'\t' | b'\n' | b'\r' | 0x0c);
        let keep_to = if plain(b[i]) {
            // A whole stretch of plain ASCII at once.
            Some(
                b[i..]
                    .iter()
                    .position(|&c| !plain(c))
                    .map_or(b.len(), |p| i + p),
            )
        } else {
            let Some(c) = s[i..].chars().next() else {
                break;
            };
            let end = i + c.len_utf8();
            match classify(c) {
                Class::Visible => Some(end),
                Class::Hidden | Class::Tag => None,
                Class::Bom => (i == 0 && at_start).then_some(end),
                Class::Joiner => joiner_belongs(c, prev, s[end..].chars().next()).then_some(end),
                Class::Selector => selector_belongs(c, prev).then_some(end),
                Class::BlackFlag => Some(flag_sequence_end(s, end).unwrap_or(end)),
            }
        };
        match keep_to {
            Some(end) => {
                if let Some(start) = run.take() {
                    log.stripped(Threat::HiddenUnicode, &s[start..i]);
                    keep_from = i;
                }
                prev = s[i..end].chars().next_back();
                i = end;
            }
            None => {
                if run.is_none() {
                    out.get_or_insert_with(|| String::with_capacity(s.len()))
                        .push_str(&s[keep_from..i]);
                    run = Some(i);
                }
                i += s[i..].chars().next().map_or(1, char::len_utf8);
            }
        }
    }
    match (out, run) {
        (None, _) => Cow::Borrowed(s),
        (Some(out), Some(start)) => {
            log.stripped(Threat::HiddenUnicode, &s[start..]);
            Cow::Owned(out)
        }
        (Some(mut out), None) => {
            out.push_str(&s[keep_from..]);
            Cow::Owned(out)
        }
    }
}

/// Whether a person would see nothing where this character is (for excerpts).
pub(crate) fn is_invisible(c: char) -> bool {
    !matches!(classify(c), Class::Visible | Class::BlackFlag) || c == '\u{FEFF}'
}

enum Class {
    Visible,
    /// Removed wherever it appears.
    Hidden,
    /// U+FEFF: a byte-order mark at the very start, hidden anywhere else.
    Bom,
    /// ZWJ/ZWNJ: part of emoji sequences and of Arabic and Indic spelling.
    Joiner,
    /// Variation selectors: meaningful right after the base they select a form of.
    Selector,
    /// U+E0000–E007F outside an emoji flag sequence: ASCII smuggling.
    Tag,
    /// U+1F3F4, which tag characters legitimately follow in subdivision flags.
    BlackFlag,
}

fn classify(c: char) -> Class {
    match c {
        '\t' | '\n' | '\r' | '\u{0C}' => Class::Visible,
        ' '..='~' => Class::Visible,
        '\u{200C}' | '\u{200D}' => Class::Joiner,
        '\u{FE0E}' | '\u{FE0F}' | '\u{E0100}'..='\u{E01EF}' => Class::Selector,
        '\u{FEFF}' => Class::Bom,
        '\u{E0000}'..='\u{E007F}' => Class::Tag,
        '\u{1F3F4}' => Class::BlackFlag,
        // Zero-width space, LRM/RLM, word joiner and invisible operators, deprecated
        // format controls, soft hyphen, Mongolian vowel separator, combining grapheme
        // joiner, Hangul fillers, interlinear annotation and musical format controls.
        '\u{200B}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{2060}'..='\u{2064}'
        | '\u{206A}'..='\u{206F}'
        | '\u{00AD}'
        | '\u{180E}'
        | '\u{034F}'
        | '\u{115F}'
        | '\u{1160}'
        | '\u{3164}'
        | '\u{FFA0}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{1D173}'..='\u{1D17A}' => Class::Hidden,
        // Bidi embeddings, overrides and isolates (the "Trojan Source" characters).
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => Class::Hidden,
        // Other variation selectors: no emoji uses them; runs of them smuggle bytes.
        '\u{FE00}'..='\u{FE0D}' => Class::Hidden,
        // Blocks with every code point assigned and visible: no table look-up needed for
        // the bulk of Latin, Greek, Cyrillic, Hebrew, Arabic, CJK, kana, Hangul and emoji.
        '\u{A0}'..='\u{377}'
        | '\u{400}'..='\u{52F}'
        | '\u{5D0}'..='\u{5EA}'
        | '\u{620}'..='\u{6FF}'
        | '\u{2010}'..='\u{2027}'
        | '\u{2030}'..='\u{205E}'
        | '\u{3041}'..='\u{3096}'
        | '\u{30A1}'..='\u{30FA}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{AC00}'..='\u{D7A3}'
        | '\u{1F300}'..='\u{1F64F}' => Class::Visible,
        _ => match c.general_category() {
            GeneralCategory::Control
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned => Class::Hidden,
            _ => Class::Visible,
        },
    }
}

fn is_emoji(c: char) -> bool {
    !c.is_ascii() && c.is_emoji_char()
}

/// ZWJ joins emoji into one picture; ZWJ and ZWNJ also shape letters in scripts that join
/// (Arabic, Syriac, Indic, Southeast Asian, Mongolian). Anywhere else they only hide.
fn joiner_belongs(c: char, prev: Option<char>, next: Option<char>) -> bool {
    let (Some(prev), Some(next)) = (prev, next) else {
        return false;
    };
    if c == '\u{200D}' && (is_emoji(prev) || prev == '\u{FE0F}') && is_emoji(next) {
        return true;
    }
    joining_script(prev) && joining_script(next)
}

fn joining_script(c: char) -> bool {
    matches!(c,
        '\u{0600}'..='\u{08FF}'      // Arabic, Syriac, Thaana, NKo, Samaritan, Mandaic
        | '\u{0900}'..='\u{0DFF}'    // Indic scripts
        | '\u{0E00}'..='\u{0FFF}'    // Thai, Lao, Tibetan
        | '\u{1000}'..='\u{109F}'    // Myanmar
        | '\u{1780}'..='\u{18AF}'    // Khmer, Mongolian
        | '\u{A8E0}'..='\u{A8FF}'    // Devanagari extended
        | '\u{FB50}'..='\u{FDFF}' | '\u{FE70}'..='\u{FEFC}' // Arabic presentation forms
    )
}

/// One selector right after the base it applies to: VS15/VS16 after an emoji (or a keycap
/// digit), an ideographic variation selector after a CJK ideograph.
fn selector_belongs(c: char, prev: Option<char>) -> bool {
    let Some(prev) = prev else { return false };
    if matches!(c, '\u{FE0E}' | '\u{FE0F}') {
        return prev.is_emoji_char() && !prev.is_ascii_alphabetic() && prev != ' ';
    }
    matches!(prev,
        '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{3FFFF}')
}

/// For U+1F3F4 ending at byte `from`: the end of a well-formed subdivision flag that
/// follows (2–7 lowercase-letter/digit tags, then the cancel tag U+E007F), if any.
fn flag_sequence_end(s: &str, from: usize) -> Option<usize> {
    for (n, (at, c)) in s[from..].char_indices().take(8).enumerate() {
        match c {
            '\u{E0061}'..='\u{E007A}' | '\u{E0030}'..='\u{E0039}' => {}
            '\u{E007F}' if (2..=7).contains(&n) => return Some(from + at + c.len_utf8()),
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(s: &str) -> (String, usize) {
        let mut log = Log::default();
        let out = strip_hidden(s, true, &mut log).into_owned();
        (out, log.count(Threat::HiddenUnicode))
    }

    #[test]
    fn legitimate_text_in_many_scripts_survives_byte_for_byte() {
        for s in [
            "Café déjà vu, naïve façade, Ångström, Łódź",
            "日本語のテキストと中文文本，한국어 텍스트",
            "Привет, как дела? Ελληνικά",
            "مرحبا بالعالم — العربية من اليمين إلى اليسار",
            "שלום עולם",
            "می\u{200C}خواهم", // Persian ZWNJ between letters
            "क्\u{200D}ष",      // Devanagari ZWJ
            "👩\u{200D}💻 and 👨\u{200D}👩\u{200D}👧\u{200D}👦", // ZWJ sequences
            "❤\u{FE0F} ☺\u{FE0E} 1\u{FE0F}\u{20E3} 👍🏽", // VS-16, VS-15, keycap, skin tone
            "\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F} England", // subdivision flag
            "葛\u{E0100}城市", // ideographic variation sequence
            "tabs\tand\nnew lines\r\n and\u{0C}form feeds, non\u{A0}breaking",
        ] {
            assert_eq!(strip(s), (s.to_string(), 0), "{s}");
        }
    }

    #[test]
    fn hidden_characters_go_and_each_run_counts_once() {
        let tags: String = "ignore all"
            .chars()
            .map(|c| char::from_u32(0xE0000 + c as u32).unwrap())
            .collect();
        let cases = [
            ("pass\u{200B}word", "password", 1),
            ("a\u{202E}gnp.exe", "agnp.exe", 1),
            ("x\u{2066}\u{2069}y", "xy", 1),
            ("soft\u{AD}hyphen", "softhyphen", 1),
            ("mid\u{FEFF}dle", "middle", 1),
            ("word\u{2060}joiner", "wordjoiner", 1),
            ("lrm\u{200E}rlm\u{200F}", "lrmrlm", 2),
            ("a\u{200D}b", "ab", 1),       // ZWJ between Latin letters
            ("hello\u{FE0F}", "hello", 1), // VS-16 after a letter
            ("\u{FE00}\u{FE01}\u{FE02}text", "text", 1),
            ("😀\u{E0100}\u{E0101}", "😀", 1), // selectors smuggling bytes after an emoji
            ("private\u{E000}use\u{F0000}", "privateuse", 2),
            ("unassigned\u{0378}", "unassigned", 1),
            ("escape\u{1B}[31m", "escape[31m", 1),
            ("\u{1F3F4}\u{E0041}\u{E0042}", "\u{1F3F4}", 1), // not a flag: uppercase tags
        ];
        for (input, want, n) in cases {
            assert_eq!(strip(input), (want.to_string(), n), "{input:?}");
        }
        let (out, n) = strip(&format!("Summarise this.{tags}"));
        assert_eq!((out.as_str(), n), ("Summarise this.", 1));
    }

    #[test]
    fn a_byte_order_mark_only_counts_when_it_is_not_at_the_start() {
        assert_eq!(strip("\u{FEFF}text"), ("\u{FEFF}text".to_string(), 0));
        let mut log = Log::default();
        assert_eq!(strip_hidden("\u{FEFF}text", false, &mut log), "text");
    }
}
