//! Planted-instruction detection on the project's own labelled texts (written for this
//! project, in styles apart from the development data): detection and false-positive rates
//! must stay at the targets, so a change to the rules cannot quietly trade one away.

use zerodb_quarantine::{ContentType, Threat, quarantine};

#[test]
fn detects_planted_instructions_without_flagging_clean_text() {
    let data = include_str!("data/injection-fixtures.jsonl");
    let (mut injected, mut caught, mut clean, mut flagged) = (0, 0, 0, 0);
    let mut misses = Vec::new();
    for line in data.lines().filter(|l| !l.trim().is_empty()) {
        let row: serde_json::Value = serde_json::from_str(line).expect("fixture row");
        let text = row["text"].as_str().expect("text");
        let kind: ContentType = row["content_type"]
            .as_str()
            .unwrap_or("markdown")
            .parse()
            .expect("type");
        let hit = quarantine(text, kind, true)
            .threats
            .contains(&Threat::InstructionInjection);
        if row["label"] == 1 {
            injected += 1;
            caught += usize::from(hit);
        } else {
            clean += 1;
            flagged += usize::from(hit);
        }
        if hit != (row["label"] == 1) {
            misses.push(row["id"].as_str().unwrap_or("?").to_owned());
        }
    }
    let rate = caught as f64 / injected as f64;
    let fpr = flagged as f64 / clean as f64;
    assert!(
        injected >= 60 && clean >= 60,
        "fixture set shrank: {injected} injected, {clean} clean"
    );
    assert!(
        rate >= 0.90 && fpr <= 0.03,
        "detected {caught}/{injected}, flagged {flagged}/{clean}; wrong: {misses:?}"
    );
}
