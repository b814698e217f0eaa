//! What a markdown renderer shows as code: the content of code spans and fenced code
//! blocks, as a CommonMark parser reads them (pulldown-cmark), so the stripper leaves
//! literal examples alone and never mistakes markup a renderer would run for code.
//!
//! A byte counts as code only if it is code both in plain CommonMark and with the GFM
//! extensions and front matter on (where table cells split code spans at `|` and front
//! matter swallows fences): whichever of those a renderer uses, what it shows as HTML is
//! outside these ranges. A fenced block counts when it is closed, or when it is at the top
//! level and runs to the end of the text (it is then closed explicitly, see
//! `closing_fence`); one ended by its list item or quote without a closing fence does not.

use std::ops::Range;

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

/// Byte ranges of code content in `s`, sorted and disjoint.
pub(crate) fn code_ranges(s: &str) -> Vec<Range<usize>> {
    // Only backticks and tildes open code: most texts never reach the parser.
    if !s.contains('`') && !s.contains('~') {
        return Vec::new();
    }
    let core = view(s, Options::empty()).ranges;
    if core.is_empty() {
        return core;
    }
    let gfm = view(
        s,
        Options::ENABLE_TABLES
            | Options::ENABLE_FOOTNOTES
            | Options::ENABLE_STRIKETHROUGH
            | Options::ENABLE_TASKLISTS
            | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS,
    )
    .ranges;
    intersect(&core, &gfm)
}

/// The line that closes a top-level fence left open at the end of `s`, if the fence's
/// content counts as code in both readings. CommonMark already runs such a block to the
/// end; closing it explicitly keeps renderers that want a closing fence from reading its
/// content as HTML.
pub(crate) fn closing_fence(s: &str) -> Option<String> {
    if !s.contains('`') && !s.contains('~') {
        return None;
    }
    let fence = view(s, Options::empty()).open_fence?;
    let code = code_ranges(s);
    // The open block's content is the text's tail; it must have stayed code in both.
    if code.last().is_some_and(|r| r.end != s.len()) {
        return None;
    }
    let newline = if s.ends_with('\n') { "" } else { "\n" };
    Some(format!("{newline}{fence}"))
}

struct View {
    ranges: Vec<Range<usize>>,
    /// The fence string (```` ``` ````, `~~~~`) of a top-level block open at the end.
    open_fence: Option<String>,
}

fn view(s: &str, options: Options) -> View {
    let b = s.as_bytes();
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let mut open_fence = None;
    // While inside a fenced block: where its content ranges start, and the block itself.
    let mut block: Option<(usize, Range<usize>)> = None;
    for (event, range) in Parser::new_ext(s, options).into_offset_iter() {
        match event {
            Event::Code(_) => {
                // The range holds the backtick runs on both sides; the content is between.
                let ticks = b[range.clone()].iter().take_while(|&&c| c == b'`').count();
                let (start, end) = (range.start + ticks, range.end.saturating_sub(ticks));
                if start < end {
                    push(&mut ranges, start..end);
                }
            }
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(_))) => {
                block = Some((ranges.len(), range));
            }
            Event::Text(_) if block.is_some() => push(&mut ranges, range),
            Event::End(TagEnd::CodeBlock) => {
                let Some((first, whole)) = block.take() else {
                    continue;
                };
                let fence = fence_of(&s[whole.clone()]);
                if is_closed(&s[whole.clone()], &fence) {
                    continue;
                }
                let line_start = s[..whole.start].rfind('\n').map_or(0, |p| p + 1);
                let top_level = b[line_start..whole.start].iter().all(|&c| c == b' ');
                if top_level && whole.end == s.len() {
                    open_fence = Some(fence);
                } else {
                    // Ended by its container, not by a fence: not counted as code.
                    ranges.truncate(first);
                }
            }
            _ => {}
        }
    }
    View { ranges, open_fence }
}

/// Appends, merging with the previous range when they touch (code blocks come per line).
fn push(ranges: &mut Vec<Range<usize>>, r: Range<usize>) {
    match ranges.last_mut() {
        Some(last) if last.end >= r.start => last.end = last.end.max(r.end),
        _ => ranges.push(r),
    }
}

/// The opening fence of a fenced block's source: its run of backticks or tildes.
fn fence_of(block: &str) -> String {
    let t = block.trim_start_matches(' ');
    let c = t.chars().next().unwrap_or('`');
    t.chars().take_while(|&x| x == c).collect()
}

/// Whether the block's last line is a closing fence for `fence` (same character, at least
/// as long, nothing after it but spaces and tabs). Container markers (`>`, indentation)
/// may precede it.
fn is_closed(block: &str, fence: &str) -> bool {
    let body = block.strip_suffix('\n').unwrap_or(block);
    let body = body.strip_suffix('\r').unwrap_or(body);
    let Some(nl) = body.rfind('\n') else {
        // A one-line block is only its opening fence.
        return false;
    };
    let last = body[nl + 1..].trim_start_matches([' ', '\t', '>']);
    let c = fence.as_bytes().first().copied().unwrap_or(b'`');
    let run = last.bytes().take_while(|&x| x == c).count();
    run >= fence.len() && last[run..].bytes().all(|x| x == b' ' || x == b'\t')
}

fn intersect(a: &[Range<usize>], b: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let start = a[i].start.max(b[j].start);
        let end = a[i].end.min(b[j].end);
        if start < end {
            out.push(start..end);
        }
        if a[i].end < b[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Answers "is this byte in code?" for increasing positions in one forward sweep.
pub(crate) struct CodeMask<'a> {
    ranges: &'a [Range<usize>],
    next: usize,
}

impl<'a> CodeMask<'a> {
    pub(crate) fn new(ranges: &'a [Range<usize>]) -> Self {
        Self { ranges, next: 0 }
    }

    /// If `at` is inside code, the end of that code; positions must not decrease by more
    /// than a range (the scanners only look back within a construct they are parsing).
    pub(crate) fn code_end(&mut self, at: usize) -> Option<usize> {
        while self.next > 0 && self.ranges[self.next - 1].end > at {
            self.next -= 1;
        }
        while self.next < self.ranges.len() && self.ranges[self.next].end <= at {
            self.next += 1;
        }
        self.ranges
            .get(self.next)
            .filter(|r| r.start <= at)
            .map(|r| r.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> Vec<&str> {
        code_ranges(s).into_iter().map(|r| &s[r]).collect()
    }

    #[test]
    fn spans_pair_backtick_runs_of_equal_length() {
        assert_eq!(code("a `x` b ``y ` z`` c"), ["x", "y ` z"]);
        assert_eq!(code("``not closed` here"), Vec::<&str>::new());
        // An escaped backtick opens nothing; inside a span a backslash is literal.
        assert_eq!(code("\\`<b>` x"), Vec::<&str>::new());
        // A tag that starts first wins over the backtick inside it.
        assert_eq!(code("<a title=\"`\">`"), Vec::<&str>::new());
    }

    #[test]
    fn fences_of_backticks_or_tildes_up_to_three_spaces_in() {
        assert_eq!(code("```html\n<p>\n```\nafter"), ["<p>\n"]);
        assert_eq!(code("   ~~~\n<p>\n~~~"), ["<p>\n"]);
        // Four spaces make an indented code block, which this module does not count.
        assert_eq!(code("    ```\n    <p>\n    ```"), Vec::<&str>::new());
        // A shorter or different fence does not close; the block runs on.
        assert_eq!(
            code("````\na\n```\n~~~~\nb\n````\nc"),
            ["a\n```\n~~~~\nb\n"]
        );
    }

    #[test]
    fn an_open_fence_runs_to_the_end_only_at_the_top_level() {
        assert_eq!(code("x\n```\n<script>\n"), ["<script>\n"]);
        assert_eq!(closing_fence("x\n```\n<script>\n").as_deref(), Some("```"));
        assert_eq!(closing_fence("~~~~\na").as_deref(), Some("\n~~~~"));
        assert_eq!(closing_fence("```\na\n```"), None);
        // Ended by the quote or the list item: not code at all.
        assert_eq!(code("> ```\n> <script>\n\nz"), Vec::<&str>::new());
        assert_eq!(code("- i\n  ```\n  <s>\n<script>\n"), Vec::<&str>::new());
        assert_eq!(code("> ```\n> <s>\n> ```\n"), ["<s>\n"]);
    }

    #[test]
    fn what_a_renderer_reads_as_html_is_never_code() {
        for s in [
            // A fence inside an HTML block is raw HTML.
            "<div>\n```\n<script>alert(1)</script>\n```\n",
            // A table cell ends at '|', splitting the span.
            "| a | b |\n|---|---|\n| `<script>|x` | y |\n",
            // Front matter swallows the fence.
            "---\n```\n---\n<script>\n",
        ] {
            assert!(
                code(s).iter().all(|c| !c.contains("<script")),
                "{s:?}: {:?}",
                code(s)
            );
        }
    }

    #[test]
    fn the_mask_answers_in_one_sweep() {
        let ranges = [2..4, 6..9];
        let mut m = CodeMask::new(&ranges);
        let got: Vec<_> = (0..10).map(|i| m.code_end(i)).collect();
        assert_eq!(
            got,
            [
                None,
                None,
                Some(4),
                Some(4),
                None,
                None,
                Some(9),
                Some(9),
                Some(9),
                None
            ]
        );
        assert_eq!(m.code_end(3), Some(4));
    }
}
