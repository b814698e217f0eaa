//! Evaluates planted-instruction detection (the quarantine endpoint's verdict) on labelled
//! JSONL files.
//!
//! Usage: `cargo run --profile perf -p zerodb-quarantine --example eval_injection [DIR] [--show]`
//! Reads every `*.jsonl` in DIR (default `../shared/data/quarantine`); each line is a JSON
//! object with at least `text` (string) and `label` (1 = an instruction was planted, 0 = clean).
//! Prints per file: rows, injected detected / injected (rate), clean flagged / clean (FPR),
//! then a total line. With `--show`, also prints the id and an excerpt of every miss and false
//! positive.

use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use zerodb_quarantine::{ContentType, Threat, quarantine};

#[derive(Default)]
struct Tally {
    rows: usize,
    inj: usize,
    inj_hit: usize,
    clean: usize,
    clean_hit: usize,
    skipped: usize,
}

fn pct(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

fn excerpt(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out.replace('\n', "⏎")
}

fn print_line(name: &str, t: &Tally) {
    println!(
        "{name:<40} rows {:>5}  injected detected {:>5}/{:<5} ({:>5.1}%)  clean flagged {:>4}/{:<4} (FPR {:>4.1}%){}",
        t.rows,
        t.inj_hit,
        t.inj,
        pct(t.inj_hit, t.inj),
        t.clean_hit,
        t.clean,
        pct(t.clean_hit, t.clean),
        if t.skipped > 0 {
            format!("  ({} unreadable rows skipped)", t.skipped)
        } else {
            String::new()
        }
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let show = args.iter().any(|a| a == "--show");
    let dir = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "../shared/data/quarantine".to_string());
    let mut files: Vec<PathBuf> = match fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().map_or(false, |x| x == "jsonl"))
            .collect(),
        Err(e) => {
            eprintln!("cannot read directory {dir}: {e}");
            std::process::exit(2);
        }
    };
    files.sort();
    if files.is_empty() {
        eprintln!("no *.jsonl files in {dir}");
        std::process::exit(2);
    }
    let mut total = Tally::default();
    let mut bytes = 0usize;
    let started = Instant::now();
    for path in &files {
        let name = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let body = match fs::read_to_string(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("cannot read {}: {e}", path.display());
                continue;
            }
        };
        let mut t = Tally::default();
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            let row: serde_json::Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(_) => {
                    t.skipped += 1;
                    continue;
                }
            };
            let (Some(text), Some(label)) = (
                row.get("text").and_then(|v| v.as_str()),
                row.get("label").and_then(|v| v.as_i64()),
            ) else {
                t.skipped += 1;
                continue;
            };
            bytes += text.len();
            // The endpoint's own verdict, through the whole pipeline for the row's type.
            let kind = row
                .get("content_type")
                .and_then(|v| v.as_str())
                .and_then(|t| t.parse::<ContentType>().ok())
                .unwrap_or(ContentType::Markdown);
            let report = quarantine(text, kind, true);
            let hit = report.threats.contains(&Threat::InstructionInjection);
            let risk = report.risk_score;
            let dets: Vec<_> = report
                .findings
                .iter()
                .filter(|f| f.threat == Threat::InstructionInjection)
                .collect();
            t.rows += 1;
            let id = row.get("id").and_then(|v| v.as_str()).unwrap_or("?");
            if label == 1 {
                t.inj += 1;
                if hit {
                    t.inj_hit += 1;
                } else if show {
                    println!("MISS {id}: {}", excerpt(text, 300));
                }
            } else {
                t.clean += 1;
                if hit {
                    t.clean_hit += 1;
                    if show {
                        for d in &dets {
                            println!("FP   {id} risk {risk:.2}: {}", excerpt(&d.excerpt, 300));
                        }
                    }
                }
            }
        }
        print_line(&name, &t);
        total.rows += t.rows;
        total.inj += t.inj;
        total.inj_hit += t.inj_hit;
        total.clean += t.clean;
        total.clean_hit += t.clean_hit;
        total.skipped += t.skipped;
    }
    print_line("TOTAL", &total);
    let el = started.elapsed();
    println!(
        "({} files, {:.1} MB of text scanned, {:.1} ms including parsing)",
        files.len(),
        bytes as f64 / 1e6,
        el.as_secs_f64() * 1e3
    );
}
