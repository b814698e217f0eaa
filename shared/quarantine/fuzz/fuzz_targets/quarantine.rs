//! Fuzz target: any input, any content type, either link setting. quarantine must not
//! panic, and quarantining its output again must strip nothing more; for text types the
//! output must also come back unchanged. (For HTML it need not: serializing a parsed tree
//! and parsing it again is not a fixpoint of HTML itself, e.g. misnested <option>s.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerodb_quarantine::{ContentType, quarantine};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let kind = ContentType::ALL[usize::from(selector & 3)];
    let strip_links = selector & 4 != 0;
    let text = String::from_utf8_lossy(rest);
    let first = quarantine(&text, kind, strip_links);
    let second = quarantine(&first.sanitized, kind, strip_links);
    assert_eq!(second.stripped_count, 0, "second pass stripped {:?} from {:?}", second.findings, first.sanitized);
    if kind != ContentType::Html {
        assert_eq!(second.sanitized, first.sanitized);
    }
});
