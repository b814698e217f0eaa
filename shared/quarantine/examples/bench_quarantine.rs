//! Throughput of `quarantine` on 500,000-character inputs: plain text (a file, e.g. from
//! `tests/bench/gen_plain.py`, or generated here) and an HTML page generated here.
//!
//! `cargo run --profile perf -p zerodb-quarantine --example bench_quarantine -- [--plain FILE] [--repeat N]`

use std::time::{Duration, Instant};

use zerodb_quarantine::{ContentType, quarantine};

const CHARS: usize = 500_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let repeat: usize = arg("--repeat").and_then(|r| r.parse().ok()).unwrap_or(20);
    let plain = match arg("--plain") {
        Some(path) => std::fs::read_to_string(&path).expect("read --plain file"),
        None => prose(CHARS, 7),
    };
    if let Some(path) = arg("--expect") {
        // The generator's copy without the planted characters: exactly what must remain.
        let expected = std::fs::read_to_string(&path).expect("read --expect file");
        let report = quarantine(&plain, ContentType::Ocr, true);
        let removed = plain.chars().count() - report.sanitized.chars().count();
        println!(
            "plain text: sanitized output {} the clean copy ({removed} characters removed); threats {:?}",
            if report.sanitized == expected {
                "equals"
            } else {
                "DIFFERS FROM"
            },
            report
                .threats
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
        );
        if report.sanitized != expected {
            let at = report
                .sanitized
                .bytes()
                .zip(expected.bytes())
                .take_while(|(a, b)| a == b)
                .count();
            let from = at.saturating_sub(40);
            let show = |s: &str| {
                s.get(from..(at + 40).min(s.len()))
                    .map(|x| format!("{x:?}"))
                    .unwrap_or_default()
            };
            println!(
                "  first difference at byte {at}: ours {} expected {}",
                show(&report.sanitized),
                show(&expected)
            );
        }
        for f in report
            .findings
            .iter()
            .filter(|f| f.threat == zerodb_quarantine::Threat::InstructionInjection)
        {
            println!("  instruction_injection finding: {:?}", f.excerpt);
        }
    }
    let html = page(CHARS, 11);
    if let Some(path) = arg("--write-html") {
        std::fs::write(path, &html).expect("write --write-html file");
    }
    println!("input                 chars     bytes   median ms   min ms    MB/s  stripped  safe");
    for (name, text, kind) in [
        ("plain text (ocr)", &plain, ContentType::Ocr),
        ("plain text (markdown)", &plain, ContentType::Markdown),
        ("html page", &html, ContentType::Html),
    ] {
        if arg("--only").is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        let report = quarantine(text, kind, true);
        let mut times: Vec<Duration> = (0..repeat)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(quarantine(std::hint::black_box(text), kind, true));
                started.elapsed()
            })
            .collect();
        times.sort();
        let median = times[times.len() / 2];
        println!(
            "{name:<21} {:>7} {:>9} {:>10.2} {:>8.2} {:>7.1} {:>9} {:>5}",
            text.chars().count(),
            text.len(),
            median.as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            text.len() as f64 / 1e6 / median.as_secs_f64(),
            report.stripped_count,
            report.safe_to_use,
        );
    }
}

/// A small deterministic generator (xorshift), so runs compare like with like.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const WORDS: [&str; 24] = [
    "the",
    "quarterly",
    "report",
    "shows",
    "revenue",
    "growth",
    "in",
    "our",
    "European",
    "markets",
    "and",
    "customers",
    "café",
    "naïve",
    "日本語",
    "данные",
    "العربية",
    "👩‍💻",
    "❤️",
    "team",
    "meeting",
    "schedule",
    "budget",
    "review",
];

fn sentence(rng: &mut Rng) -> String {
    let n = 8 + rng.next() % 12;
    let mut s: String = (0..n)
        .map(|_| rng.pick(&WORDS))
        .collect::<Vec<_>>()
        .join(" ");
    s.push_str(". ");
    s
}

fn prose(chars: usize, seed: u64) -> String {
    let mut rng = Rng(seed);
    let mut out = String::new();
    while out.len() < chars * 2 {
        out.push_str(&sentence(&mut rng));
        if rng.next() % 200 == 0 {
            out.push('\u{200B}');
        }
    }
    out.chars().take(chars).collect()
}

/// A newsletter-like page: paragraphs, links, tables, styled spans, images, and now and
/// then a comment, a hidden block or a tracking pixel.
fn page(chars: usize, seed: u64) -> String {
    let mut rng = Rng(seed);
    let mut out = String::from(
        "<html><head><title>Newsletter</title><style>p{margin:0}</style></head><body>",
    );
    let mut n = 0u64;
    // Counted as it grows (re-counting the whole page each time would be quadratic).
    let mut counted = (0, 0);
    while counted.1 < chars {
        counted.1 += out[counted.0..].chars().count();
        counted.0 = out.len();
        n += 1;
        match rng.next() % 10 {
            0 => out.push_str(&format!(
                "<table class=\"grid\"><tr><th>Item</th><th>Qty</th></tr><tr><td>{}</td><td>{}</td></tr></table>",
                rng.pick(&WORDS),
                rng.next() % 100
            )),
            1 => out.push_str(&format!(
                "<p>Read <a href=\"https://example.com/articles/{n}?utm_source=mail\">{}</a> today.</p>",
                sentence(&mut rng)
            )),
            2 => out.push_str(&format!("<div style=\"color:#333;font-size:14px\"><span>{}</span></div>", sentence(&mut rng))),
            3 if n % 7 == 0 => out.push_str("<!-- tracking block --><img src=\"https://t.example/p.gif\" width=1 height=1>"),
            4 if n % 11 == 0 => out.push_str("<div style=\"display:none\">preheader text</div>"),
            _ => out.push_str(&format!("<p><b>{}</b>{}</p>", rng.pick(&WORDS), sentence(&mut rng))),
        }
        out.push('\n');
    }
    out.push_str("</body></html>");
    out
}
