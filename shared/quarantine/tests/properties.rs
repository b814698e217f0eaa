//! Properties over generated inputs that mix every threat kind with ordinary text in
//! several scripts: quarantine never panics, its output holds none of the stripped
//! classes (checked independently of the code under test), and it is idempotent.

use proptest::prelude::*;
use scraper::{Html, Node};
use zerodb_quarantine::{ContentType, quarantine};

/// Pieces of ordinary text, including what must survive (emoji sequences, RTL, joiners).
const NORMAL: &[&str] = &[
    "The quarterly report",
    " is attached.",
    " Café déjà vu",
    " 日本語のテキスト",
    " Привет",
    " مرحبا بالعالم",
    " می\u{200C}خواهم",
    " 👩\u{200D}💻",
    " ❤\u{FE0F}",
    " 👍🏽",
    "\n\n",
    " a < b > c",
    " 3:30pm",
    " x=1;",
    "!",
    " (see above)",
    " [note]",
    " -- ",
    " <b>bold</b>",
    " <p>para</p>",
    " `code`",
    " 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
];

/// Pieces that carry a threat, whole or broken (unterminated, nested, split).
const THREATS: &[&str] = &[
    "\u{200B}",
    "\u{200D}",
    "\u{202E}",
    "\u{2066}",
    "\u{FEFF}",
    "\u{AD}",
    "\u{2060}",
    "\u{E0041}\u{E0042}",
    "\u{FE01}",
    "\u{E000}",
    "\u{1B}",
    "<!-- hidden -->",
    "<!--",
    "-->",
    "--!>",
    "<script>alert(1)</script>",
    "<script>",
    "</script>",
    "<SCRIPT src=x>",
    "<iframe src=//x>",
    "<embed src=y>",
    "<img src=x onerror=alert(1)>",
    "<a href=\"javascript:alert(1)\">l</a>",
    "javascript:alert(1)",
    "JaVaScRiPt:",
    "vbscript:msgbox",
    "data:text/html;base64,PHNjcmlwdD4=",
    "https://evil.example/x?q=1",
    "http://a.b",
    "www.example.org",
    "mailto:a@b.c",
    "[link](https://x.example/p)",
    "![img](https://x.example/i.png)",
    "](",
    "![",
    "<div style=\"display:none\">secret</div>",
    "<span hidden>h</span>",
    "<p aria-hidden=\"true\">a</p>",
    "<",
    ">",
    "<scr",
    "ipt>",
    "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk=",
    "QUJDREVGR0hJSktMTU5PUFFS",
    "java",
    "script:",
    "<!-",
    "-",
    "ht",
    "tp://",
    "<style>p{}</style>",
    "<noscript>n</noscript>",
    "<template>t</template>",
];

fn document() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => proptest::sample::select(NORMAL).prop_map(str::to_owned),
        3 => proptest::sample::select(THREATS).prop_map(str::to_owned),
        1 => "[a-zA-Z0-9+/=<>!\\-\\[\\]():. \n]{0,12}",
        1 => any::<char>().prop_map(|c| c.to_string()),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

fn content_type() -> impl Strategy<Value = ContentType> {
    proptest::sample::select(ContentType::ALL.to_vec())
}

/// Characters that must never be in the output (a flag's tag sequence aside, which the
/// generator never builds).
fn hidden(c: char) -> bool {
    matches!(c,
        '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}'
        | '\u{AD}' | '\u{E0000}'..='\u{E007F}' | '\u{FE00}'..='\u{FE0D}' | '\u{E000}'..='\u{F8FF}'
        | '\u{F0000}'..='\u{10FFFF}' | '\u{0}'..='\u{8}' | '\u{B}' | '\u{E}'..='\u{1F}' | '\u{7F}'..='\u{9F}')
}

fn base64_blob(s: &str) -> bool {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || "+/-_".contains(c)))
        .any(|run| {
            run.len() >= 60
                && run.bytes().any(|b| b.is_ascii_uppercase())
                && run.bytes().any(|b| b.is_ascii_lowercase())
                && run.bytes().any(|b| b.is_ascii_digit())
        })
}

fn check_text(out: &str, strip_links: bool) -> Result<(), TestCaseError> {
    let lower = out.to_ascii_lowercase();
    prop_assert!(!out.contains("<!--"), "comment opener left in {out:?}");
    for name in [
        "script", "iframe", "object", "embed", "applet", "frameset", "frame",
    ] {
        let open = format!("<{name}");
        for (i, _) in lower.match_indices(&open) {
            let next = lower.as_bytes().get(i + open.len());
            prop_assert!(
                !next.is_none_or(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/'),
                "<{name}> left in {out:?}"
            );
        }
    }
    prop_assert!(
        !lower.contains("javascript:") && !lower.contains("vbscript:"),
        "script URL left in {out:?}"
    );
    if strip_links {
        prop_assert!(!has_url(&lower), "URL left in {out:?}");
    }
    Ok(())
}

/// `scheme://` (a scheme starts with a letter) or a `www.` word.
fn has_url(s: &str) -> bool {
    let b = s.as_bytes();
    let scheme_char = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'.' | b'-');
    let scheme = s.match_indices("://").any(|(i, _)| {
        let start = b[..i]
            .iter()
            .rposition(|&c| !scheme_char(c))
            .map_or(0, |p| p + 1);
        start < i && b[start].is_ascii_alphabetic()
    });
    let www = s.match_indices("www.").any(|(i, _)| {
        (i == 0 || !b[i - 1].is_ascii_alphanumeric())
            && b.get(i + 4).is_some_and(|c| c.is_ascii_alphanumeric())
    });
    scheme || www
}

fn check_html(out: &str, strip_links: bool) -> Result<(), TestCaseError> {
    let doc = Html::parse_fragment(out);
    for node in doc.tree.nodes() {
        match node.value() {
            Node::Comment(_) => prop_assert!(false, "comment left in {out:?}"),
            Node::Element(el) => {
                let name = el.name();
                prop_assert!(
                    ![
                        "script", "iframe", "object", "embed", "applet", "frame", "frameset",
                        "noscript", "template"
                    ]
                    .contains(&name),
                    "<{name}> left in {out:?}"
                );
                prop_assert!(
                    el.attr("hidden").is_none(),
                    "hidden element left in {out:?}"
                );
                for (attr, value) in el.attrs() {
                    prop_assert!(!attr.starts_with("on"), "handler {attr} left in {out:?}");
                    let v = value.to_ascii_lowercase();
                    prop_assert!(
                        !v.trim().starts_with("javascript:") && !v.trim().starts_with("data:"),
                        "{attr}={value} left"
                    );
                }
                if strip_links {
                    prop_assert!(
                        !(name == "a" && el.attr("href").is_some()),
                        "link left in {out:?}"
                    );
                }
            }
            Node::Text(t) => check_text(
                &t.text
                    .to_ascii_lowercase()
                    .replace("<!--", "")
                    .replace('<', ""),
                strip_links,
            )?,
            _ => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn output_holds_no_stripped_class_and_a_second_pass_strips_nothing(
        doc in document(), kind in content_type(), strip_links in any::<bool>()
    ) {
        let first = quarantine(&doc, kind, strip_links);
        let out = &first.sanitized;
        prop_assert!(!out.chars().skip(1).any(hidden), "hidden character left in {out:?}");
        prop_assert!(!base64_blob(out), "base64 blob left in {out:?}");
        match kind {
            ContentType::Html => check_html(out, strip_links)?,
            _ => check_text(out, strip_links)?,
        }
        let second = quarantine(out, kind, strip_links);
        prop_assert_eq!(second.stripped_count, 0, "second pass stripped {:?} from {:?} (input {:?})", second.findings, out, doc);
        prop_assert_eq!(&second.sanitized, out);
    }

    #[test]
    fn verdicts_follow_the_threats_found(doc in document(), kind in content_type()) {
        let r = quarantine(&doc, kind, true);
        prop_assert_eq!(r.safe_to_use, !r.threats.iter().any(|t| t.blocks_use()));
        prop_assert!((0.0..=1.0).contains(&r.risk_score));
        prop_assert_eq!(r.threats.is_empty(), r.risk_score == 0.0);
        prop_assert!(r.findings.len() <= zerodb_quarantine::MAX_FINDINGS);
    }
}
